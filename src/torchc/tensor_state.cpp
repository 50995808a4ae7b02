/*
 * tensor_state.cpp - what changes a tensor rather than computing a new one from others:
 * conversions (device, dtype, memory format, shape), in-place updates, torch.nn.init's
 * initialisers, and autograd and autocast state.
 */
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdarg>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <exception>
#include <mutex>
#include <vector>

#include "internal.h"

using tc::guard_status;
using tc::guard_tensor;

/* ---- conversions and in-place updates ---- */

/* A scalar an integer tensor accepts when the value is whole (num_batches_tracked += 1). */
static at::Scalar scalar_for(const at::Tensor &t, double value)
{
    if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false) && value == std::floor(value))
        return at::Scalar((int64_t)value);
    return at::Scalar(value);
}

extern "C" tc_tensor *tc_to_device(const tc_tensor *t, tc_device d)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.to(tc::to_device(d)); });
}

extern "C" tc_tensor *tc_to_dtype(const tc_tensor *t, enum tc_dtype dt)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.to(tc::to_scalar_type(dt)); });
}

extern "C" tc_tensor *tc_clone(const tc_tensor *t)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.clone(); });
}

extern "C" tc_tensor *tc_detach(const tc_tensor *t)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.detach(); });
}

extern "C" tc_tensor *tc_contiguous(const tc_tensor *t)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.contiguous(); });
}

extern "C" tc_tensor *tc_to_channels_last(const tc_tensor *t)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.contiguous(at::MemoryFormat::ChannelsLast); });
}

extern "C" tc_tensor *tc_pixels_lookup(const tc_tensor *pixels, const tc_tensor *table,
                                       bool channels_last)
{
    TC_NEED_TENSOR(pixels);
    TC_NEED_TENSOR(table);
    return guard_tensor(__func__, [&] {
        const at::Tensor &p = pixels->t;
        TORCH_CHECK(p.dim() == 4 && p.scalar_type() == at::kByte, "pixels must be uint8 [N,H,W,C]");
        int64_t channels = p.size(3);
        TORCH_CHECK(table->t.numel() == channels * 256 && table->t.scalar_type() == at::kFloat,
                    "the table must be float [C*256]");
        /* index = byte + 256 * channel, in int32 (index_select takes it; a quarter of int64's
         * traffic), then one gather from the table. */
        at::Tensor offsets = at::arange(channels, p.options().dtype(at::kInt)).mul_(256);
        at::Tensor index = p.to(at::kInt).add_(offsets).reshape({-1});
        at::Tensor nhwc = table->t.reshape({-1}).index_select(0, index).view(p.sizes());
        at::Tensor nchw = nhwc.permute({0, 3, 1, 2}); /* channels-last strides already */
        return channels_last ? nchw.contiguous(at::MemoryFormat::ChannelsLast) : nchw.contiguous();
    });
}

extern "C" tc_tensor *tc_reshape(const tc_tensor *t, const int64_t *shape, int ndim)
{
    TC_NEED_TENSOR(t);
    if (ndim < 0 || ndim > 16 || (ndim > 0 && !shape)) {
        tc::set_error(__func__, "bad shape");
        return nullptr;
    }
    return guard_tensor(__func__, [&] { return t->t.reshape(at::IntArrayRef(shape, (size_t)ndim)); });
}

extern "C" tc_tensor *tc_narrow(const tc_tensor *t, int dim, int64_t start, int64_t length)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__, [&] { return t->t.narrow(dim, start, length); });
}

extern "C" int tc_move_(tc_tensor *t, tc_device d, bool channels_last)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        at::Tensor src = t->t.detach(), moved;
        if (src.dim() == 4) {
            /* A fresh tensor in the format asked for, not .contiguous(format): that keeps a
             * 1x1 kernel's strides when they already pass for the format (size-1 dimensions
             * are ignored), so a kernel made channels-last would stay so when moved back, and
             * one left NCHW while its gradients come channels-last makes DDP's Reducer, which
             * lays its bucket views out as the parameters, warn and copy them stride by
             * stride. */
            auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
            moved = at::empty(src.sizes(), src.options().device(tc::to_device(d)).memory_format(format));
            moved.copy_(src);
        } else {
            moved = src.to(tc::to_device(d)).contiguous();
        }
        /* set_data keeps the TensorImpl, so every other reference (optimizers) follows. */
        t->t.set_data(moved);
    });
}

extern "C" int tc_copy_(tc_tensor *dst, const tc_tensor *src)
{
    TC_NEED_STATUS(dst);
    TC_NEED_STATUS(src);
    return guard_status(__func__, [&] {
        if (dst->t.sizes() != src->t.sizes())
            throw std::invalid_argument("shape mismatch: destination " +
                                        c10::str(dst->t.sizes()) + ", source " +
                                        c10::str(src->t.sizes()));
        at::NoGradGuard no_grad;
        dst->t.copy_(src->t);
    });
}

extern "C" int tc_fill_(tc_tensor *t, double value)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        t->t.fill_(scalar_for(t->t, value));
    });
}

extern "C" int tc_add_scalar_(tc_tensor *t, double value)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        t->t.add_(scalar_for(t->t, value));
    });
}

extern "C" int tc_mul_scalar_(tc_tensor *t, double value)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        t->t.mul_(scalar_for(t->t, value));
    });
}

/* ---- initialisation ---- */

extern "C" int tc_init_kaiming_normal_(tc_tensor *t, enum tc_fan_mode mode)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        if (mode == TC_FAN_OUT)
            torch::nn::init::kaiming_normal_(t->t, 0.0, torch::kFanOut, torch::kReLU);
        else
            torch::nn::init::kaiming_normal_(t->t, 0.0, torch::kFanIn, torch::kReLU);
    });
}

extern "C" int tc_init_kaiming_uniform_(tc_tensor *t, double a)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        torch::nn::init::kaiming_uniform_(t->t, a, torch::kFanIn, torch::kLeakyReLU);
    });
}

extern "C" int tc_init_normal_(tc_tensor *t, double mean, double std)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] { torch::nn::init::normal_(t->t, mean, std); });
}

extern "C" int tc_init_uniform_(tc_tensor *t, double low, double high)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] { torch::nn::init::uniform_(t->t, low, high); });
}

extern "C" int64_t tc_fan_in(const tc_tensor *weight)
{
    if (!weight || weight->t.dim() < 2)
        return -1;
    int64_t fan_in = weight->t.size(1);
    for (int64_t i = 2; i < weight->t.dim(); i++)
        fan_in *= weight->t.size(i);
    return fan_in;
}

/* ---- autograd ---- */

extern "C" int tc_set_requires_grad(tc_tensor *t, bool requires_grad)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] { t->t.requires_grad_(requires_grad); });
}

extern "C" bool tc_requires_grad(const tc_tensor *t)
{
    return t && t->t.requires_grad();
}

extern "C" tc_tensor *tc_grad(const tc_tensor *t)
{
    TC_NEED_TENSOR(t);
    if (!t->t.grad().defined()) {
        tc::set_error(__func__, "the tensor has no gradient (it does not require grad, or "
                                "backward has not reached it yet)");
        return nullptr;
    }
    return guard_tensor(__func__, [&] { return t->t.grad(); });
}

extern "C" bool tc_has_grad(const tc_tensor *t)
{
    return t && t->t.grad().defined();
}

extern "C" int tc_zero_grad(tc_tensor *t)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] { t->t.mutable_grad().reset(); });
}

extern "C" int tc_backward(const tc_tensor *loss)
{
    TC_NEED_STATUS(loss);
    return guard_status(__func__, [&] {
        if (loss->t.numel() != 1)
            throw std::invalid_argument("backward needs a one-element loss, got shape " +
                                        c10::str(loss->t.sizes()));
        loss->t.backward();
    });
}

extern "C" bool tc_set_grad_enabled(bool enabled)
{
    bool previous = at::GradMode::is_enabled();
    at::GradMode::set_enabled(enabled);
    return previous;
}

static at::DeviceType autocast_device(enum tc_device_type dev)
{
    return dev == TC_CUDA ? at::kCUDA : at::kCPU;
}

extern "C" int tc_autocast_begin(enum tc_device_type dev, enum tc_dtype dt)
{
    return guard_status(__func__, [&] {
        at::ScalarType st = tc::to_scalar_type(dt);
        if (st != at::kHalf && st != at::kBFloat16)
            throw std::invalid_argument("autocast needs float16 or bfloat16");
        at::autocast::set_autocast_dtype(autocast_device(dev), st);
        at::autocast::set_autocast_enabled(autocast_device(dev), true);
        at::autocast::increment_nesting();
    });
}

extern "C" int tc_autocast_end(enum tc_device_type dev)
{
    return guard_status(__func__, [&] {
        if (at::autocast::decrement_nesting() == 0)
            at::autocast::clear_cache();
        at::autocast::set_autocast_enabled(autocast_device(dev), false);
    });
}
