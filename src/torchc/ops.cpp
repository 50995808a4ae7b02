/*
 * ops.cpp - the per-operation calls the C networks are written with: convolution, batch
 * norm, activations, pooling, linear layers, arithmetic, losses and reductions. Each one
 * checks its inputs for NULL (sticky errors) and turns any libtorch error into a C error.
 */
#include <cmath>

#include "internal.h"

using tc::guard_status;
using tc::guard_tensor;

static c10::optional<at::Tensor> optional_tensor(const tc_tensor *t)
{
    if (!t)
        return c10::nullopt;
    return t->t;
}

extern "C" tc_tensor *tc_conv2d(const tc_tensor *x, const tc_tensor *w, const tc_tensor *b,
                                int64_t stride, int64_t padding, int64_t dilation, int64_t groups)
{
    TC_NEED_TENSOR(x);
    TC_NEED_TENSOR(w);
    return guard_tensor(__func__, [&] {
        return at::conv2d(x->t, w->t, optional_tensor(b), {stride, stride}, {padding, padding},
                          {dilation, dilation}, groups);
    });
}

extern "C" tc_tensor *tc_batch_norm(const tc_tensor *x, const tc_tensor *weight,
                                    const tc_tensor *bias, tc_tensor *running_mean,
                                    tc_tensor *running_var, bool training, double momentum,
                                    double eps)
{
    TC_NEED_TENSOR(x);
    TC_NEED_TENSOR(weight);
    TC_NEED_TENSOR(bias);
    TC_NEED_TENSOR(running_mean);
    TC_NEED_TENSOR(running_var);
    return guard_tensor(__func__, [&] {
        return at::batch_norm(x->t, weight->t, bias->t, running_mean->t, running_var->t, training,
                              momentum, eps, at::globalContext().userEnabledCuDNN());
    });
}

extern "C" int tc_fold_batchnorm_(tc_tensor *conv_weight, const tc_tensor *conv_bias,
                                  const tc_tensor *bn_weight, tc_tensor *bn_bias,
                                  const tc_tensor *mean, const tc_tensor *var, double eps)
{
    TC_NEED_STATUS(conv_weight);
    TC_NEED_STATUS(bn_weight);
    TC_NEED_STATUS(bn_bias);
    TC_NEED_STATUS(mean);
    TC_NEED_STATUS(var);
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        at::Tensor scale = bn_weight->t / at::sqrt(var->t + eps);
        at::Tensor bias = conv_bias ? conv_bias->t : at::zeros_like(mean->t);
        at::Tensor folded = (bias - mean->t) * scale + bn_bias->t;
        conv_weight->t.mul_(scale.reshape({-1, 1, 1, 1}));
        bn_bias->t.copy_(folded);
    });
}

extern "C" tc_tensor *tc_relu(const tc_tensor *x)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::relu(x->t); });
}

extern "C" tc_tensor *tc_relu_(tc_tensor *x)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::relu_(x->t); });
}

extern "C" tc_tensor *tc_max_pool2d(const tc_tensor *x, int64_t kernel, int64_t stride,
                                    int64_t padding, bool ceil_mode)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] {
        return at::max_pool2d(x->t, {kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1},
                              ceil_mode);
    });
}

extern "C" tc_tensor *tc_avg_pool2d(const tc_tensor *x, int64_t kernel, int64_t stride,
                                    int64_t padding)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] {
        return at::avg_pool2d(x->t, {kernel, kernel}, {stride, stride}, {padding, padding});
    });
}

extern "C" tc_tensor *tc_adaptive_avg_pool2d(const tc_tensor *x, int64_t out_h, int64_t out_w)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::adaptive_avg_pool2d(x->t, {out_h, out_w}); });
}

extern "C" tc_tensor *tc_linear(const tc_tensor *x, const tc_tensor *w, const tc_tensor *b)
{
    TC_NEED_TENSOR(x);
    TC_NEED_TENSOR(w);
    return guard_tensor(__func__, [&] { return at::linear(x->t, w->t, optional_tensor(b)); });
}

extern "C" tc_tensor *tc_add(const tc_tensor *a, const tc_tensor *b)
{
    TC_NEED_TENSOR(a);
    TC_NEED_TENSOR(b);
    return guard_tensor(__func__, [&] { return at::add(a->t, b->t); });
}

extern "C" tc_tensor *tc_add_(tc_tensor *a, const tc_tensor *b)
{
    TC_NEED_TENSOR(a);
    TC_NEED_TENSOR(b);
    return guard_tensor(__func__, [&] { return a->t.add_(b->t); });
}

extern "C" tc_tensor *tc_sub(const tc_tensor *a, const tc_tensor *b)
{
    TC_NEED_TENSOR(a);
    TC_NEED_TENSOR(b);
    return guard_tensor(__func__, [&] { return at::sub(a->t, b->t); });
}

extern "C" tc_tensor *tc_mul(const tc_tensor *a, const tc_tensor *b)
{
    TC_NEED_TENSOR(a);
    TC_NEED_TENSOR(b);
    return guard_tensor(__func__, [&] { return at::mul(a->t, b->t); });
}

extern "C" tc_tensor *tc_mul_scalar(const tc_tensor *a, double s)
{
    TC_NEED_TENSOR(a);
    return guard_tensor(__func__, [&] { return at::mul(a->t, s); });
}

extern "C" tc_tensor *tc_div_scalar(const tc_tensor *a, double s)
{
    TC_NEED_TENSOR(a);
    return guard_tensor(__func__, [&] { return at::div(a->t, s); });
}

extern "C" tc_tensor *tc_flatten(const tc_tensor *x, int64_t start_dim)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::flatten(x->t, start_dim); });
}

extern "C" tc_tensor *tc_dropout(const tc_tensor *x, double p, bool training)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::dropout(x->t, p, training); });
}

extern "C" tc_tensor *tc_softmax(const tc_tensor *x, int64_t dim)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::softmax(x->t, dim); });
}

extern "C" tc_tensor *tc_log_softmax(const tc_tensor *x, int64_t dim)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::log_softmax(x->t, dim); });
}

extern "C" tc_tensor *tc_cross_entropy(const tc_tensor *logits, const tc_tensor *targets,
                                       double label_smoothing)
{
    TC_NEED_TENSOR(logits);
    TC_NEED_TENSOR(targets);
    return guard_tensor(__func__, [&] {
        if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
            throw std::invalid_argument("label_smoothing must be in [0, 1), got " +
                                        std::to_string(label_smoothing));
        return at::cross_entropy_loss(logits->t, targets->t, c10::nullopt, at::Reduction::Mean,
                                      -100, label_smoothing);
    });
}

extern "C" tc_tensor *tc_cross_entropy_weighted(const tc_tensor *logits, const tc_tensor *targets,
                                                const tc_tensor *weights, double label_smoothing)
{
    TC_NEED_TENSOR(logits);
    TC_NEED_TENSOR(targets);
    TC_NEED_TENSOR(weights);
    return guard_tensor(__func__, [&] {
        if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
            throw std::invalid_argument("label_smoothing must be in [0, 1), got " +
                                        std::to_string(label_smoothing));
        at::Tensor w = weights->t.to(logits->t.device(), logits->t.scalar_type());
        return at::cross_entropy_loss(logits->t, targets->t, w, at::Reduction::Mean, -100,
                                      label_smoothing);
    });
}

extern "C" tc_tensor *tc_argmax(const tc_tensor *x, int64_t dim)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::argmax(x->t, dim); });
}

extern "C" int tc_topk(const tc_tensor *x, int64_t k, int64_t dim, tc_tensor **values,
                       tc_tensor **indices)
{
    *values = nullptr;
    *indices = nullptr;
    TC_NEED_STATUS(x);
    at::Tensor v, i;
    int rc = guard_status(__func__, [&] { std::tie(v, i) = at::topk(x->t, k, dim); });
    if (rc < 0)
        return rc;
    *values = tc::wrap(std::move(v));
    *indices = tc::wrap(std::move(i));
    if (!*values || !*indices) {
        tc_free(*values);
        tc_free(*indices);
        *values = *indices = nullptr;
        return TC_ERR;
    }
    return TC_OK;
}

extern "C" tc_tensor *tc_sum(const tc_tensor *x)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::sum(x->t); });
}

extern "C" tc_tensor *tc_mean(const tc_tensor *x)
{
    TC_NEED_TENSOR(x);
    return guard_tensor(__func__, [&] { return at::mean(x->t); });
}

extern "C" tc_tensor *tc_eq(const tc_tensor *a, const tc_tensor *b)
{
    TC_NEED_TENSOR(a);
    TC_NEED_TENSOR(b);
    return guard_tensor(__func__, [&] { return at::eq(a->t, b->t); });
}

extern "C" int tc_normalised_error(const tc_tensor *a, const tc_tensor *b, double *out)
{
    TC_NEED_STATUS(a);
    TC_NEED_STATUS(b);
    return guard_status(__func__, [&] {
        if (a->t.sizes() != b->t.sizes())
            throw std::invalid_argument("shape mismatch: " + c10::str(a->t.sizes()) + " vs " +
                                        c10::str(b->t.sizes()));
        at::NoGradGuard no_grad;
        at::Tensor ad = a->t.detach().to(at::kCPU).to(at::kDouble);
        at::Tensor bd = b->t.detach().to(at::kCPU).to(at::kDouble);
        double diff = at::norm(ad - bd).item<double>();
        double ref = at::norm(bd).item<double>();
        *out = diff / std::max(ref, 1e-30);
    });
}
