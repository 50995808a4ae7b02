/*
 * core.cpp - torchc's foundations: the thread-local error, dtypes, scopes and handle
 * ownership, creating tensors, reading them back and asking their shape. Devices and global
 * settings are in device.cpp; conversions, initialisation and autograd in tensor_state.cpp;
 * the operations in ops.cpp, optimizers in optim.cpp, state dicts in state_dict.cpp.
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

struct tc_scope {
    std::vector<tc_tensor *> owned; /* slots may be nullptr after tc_keep/tc_free */
    tc_scope *parent;
};

namespace {
thread_local std::string last_error;
thread_local tc_scope *current_scope = nullptr;
std::atomic<int64_t> live_tensors{0};

void scope_forget(tc_scope *s, tc_tensor *t)
{
    /* The handle is usually among the last ones created: search from the back. */
    for (auto it = s->owned.rbegin(); it != s->owned.rend(); ++it) {
        if (*it == t) {
            *it = nullptr;
            return;
        }
    }
}

void delete_handle(tc_tensor *t)
{
    delete t;
    live_tensors.fetch_sub(1, std::memory_order_relaxed);
}
} // namespace

namespace tc {

void set_error(const char *fn, const std::string &message)
{
    last_error = std::string(fn) + ": " + message;
}

bool has_error()
{
    return !last_error.empty();
}

void note_null_input(const char *fn)
{
    if (last_error.empty())
        set_error(fn, "an input tensor is NULL (was it never created, or did creating it fail?)");
}

tc_tensor *wrap(at::Tensor t)
{
    auto *h = new (std::nothrow) tc_tensor{std::move(t), current_scope};
    if (!h) {
        set_error("tc", "out of memory for a tensor handle");
        return nullptr;
    }
    if (current_scope) {
        try {
            current_scope->owned.push_back(h);
        } catch (...) {
            delete h;
            set_error("tc", "out of memory for a tensor handle");
            return nullptr;
        }
    }
    live_tensors.fetch_add(1, std::memory_order_relaxed);
    return h;
}

at::ScalarType to_scalar_type(enum tc_dtype dt)
{
    switch (dt) {
    case TC_FLOAT32: return at::kFloat;
    case TC_FLOAT64: return at::kDouble;
    case TC_FLOAT16: return at::kHalf;
    case TC_BFLOAT16: return at::kBFloat16;
    case TC_INT64: return at::kLong;
    case TC_INT32: return at::kInt;
    case TC_UINT8: return at::kByte;
    case TC_INT8: return at::kChar;
    case TC_BOOL: return at::kBool;
    }
    throw std::invalid_argument("unknown tc_dtype " + std::to_string((int)dt));
}

bool from_scalar_type(at::ScalarType st, enum tc_dtype *out)
{
    switch (st) {
    case at::kFloat: *out = TC_FLOAT32; return true;
    case at::kDouble: *out = TC_FLOAT64; return true;
    case at::kHalf: *out = TC_FLOAT16; return true;
    case at::kBFloat16: *out = TC_BFLOAT16; return true;
    case at::kLong: *out = TC_INT64; return true;
    case at::kInt: *out = TC_INT32; return true;
    case at::kByte: *out = TC_UINT8; return true;
    case at::kChar: *out = TC_INT8; return true;
    case at::kBool: *out = TC_BOOL; return true;
    default: return false;
    }
}

at::Device to_device(tc_device d)
{
    if (d.type == TC_CUDA)
        return at::Device(at::kCUDA, (c10::DeviceIndex)d.index);
    return at::Device(at::kCPU);
}

tc_device from_device(const at::Device &d)
{
    if (d.is_cuda())
        return tc_device{TC_CUDA, d.has_index() ? (int)d.index() : 0};
    return tc_device{TC_CPU, 0};
}

at::IntArrayRef shape_ref(const int64_t *shape, int ndim)
{
    if (ndim < 0 || ndim > 16 || (ndim > 0 && !shape))
        throw std::invalid_argument("bad shape: ndim " + std::to_string(ndim));
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            throw std::invalid_argument("bad shape: negative size " + std::to_string(shape[i]));
    return at::IntArrayRef(shape, (size_t)ndim);
}

} // namespace tc

using tc::guard_status;
using tc::guard_tensor;

/* ---- errors and dtypes ---- */

extern "C" const char *tc_last_error(void)
{
    return last_error.c_str();
}

extern "C" void tc_clear_error(void)
{
    last_error.clear();
}

extern "C" void tc_set_error(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    last_error = buf;
}

extern "C" const char *tc_dtype_name(enum tc_dtype t)
{
    static const char *names[] = {"float32", "float64", "float16", "bfloat16", "int64",
                                  "int32",   "uint8",   "int8",    "bool"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

extern "C" size_t tc_dtype_size(enum tc_dtype t)
{
    try {
        return c10::elementSize(tc::to_scalar_type(t));
    } catch (...) {
        return 0;
    }
}

extern "C" int64_t tc_live_tensors(void)
{
    return live_tensors.load(std::memory_order_relaxed);
}

/* ---- scopes and ownership ---- */

extern "C" tc_scope *tc_scope_begin(void)
{
    auto *s = new (std::nothrow) tc_scope;
    if (!s) {
        tc::set_error(__func__, "out of memory");
        return nullptr;
    }
    s->parent = current_scope;
    current_scope = s;
    return s;
}

static bool scope_is_open(const tc_scope *s)
{
    for (tc_scope *p = current_scope; p; p = p->parent)
        if (p == s)
            return true;
    return false;
}

extern "C" void tc_scope_end(tc_scope *s)
{
    if (!s || !scope_is_open(s))
        return;
    while (current_scope) {
        tc_scope *inner = current_scope;
        current_scope = inner->parent;
        for (tc_tensor *t : inner->owned)
            if (t)
                delete_handle(t);
        delete inner;
        if (inner == s)
            break;
    }
}

extern "C" tc_tensor *tc_keep(tc_tensor *t)
{
    if (!t || !t->scope)
        return t;
    tc_scope *from = t->scope;
    scope_forget(from, t);
    t->scope = from->parent;
    if (t->scope)
        t->scope->owned.push_back(t);
    return t;
}

extern "C" tc_tensor *tc_own(tc_tensor *t)
{
    if (t && t->scope) {
        scope_forget(t->scope, t);
        t->scope = nullptr;
    }
    return t;
}

extern "C" void tc_free(tc_tensor *t)
{
    if (!t)
        return;
    if (t->scope)
        scope_forget(t->scope, t);
    delete_handle(t);
}

/* ---- creation and read-back ---- */

static at::TensorOptions options_for(enum tc_dtype dt, tc_device d)
{
    return at::TensorOptions().dtype(tc::to_scalar_type(dt)).device(tc::to_device(d));
}

extern "C" tc_tensor *tc_empty(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d)
{
    return guard_tensor(__func__, [&] { return at::empty(tc::shape_ref(shape, ndim), options_for(dt, d)); });
}

extern "C" tc_tensor *tc_zeros(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d)
{
    return guard_tensor(__func__, [&] { return at::zeros(tc::shape_ref(shape, ndim), options_for(dt, d)); });
}

extern "C" tc_tensor *tc_ones(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d)
{
    return guard_tensor(__func__, [&] { return at::ones(tc::shape_ref(shape, ndim), options_for(dt, d)); });
}

extern "C" tc_tensor *tc_full(const int64_t *shape, int ndim, double value, enum tc_dtype dt,
                              tc_device d)
{
    return guard_tensor(__func__, [&] {
        return at::full(tc::shape_ref(shape, ndim), value, options_for(dt, d));
    });
}

extern "C" tc_tensor *tc_randn(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d)
{
    return guard_tensor(__func__, [&] { return at::randn(tc::shape_ref(shape, ndim), options_for(dt, d)); });
}

extern "C" tc_tensor *tc_randint(int64_t high, const int64_t *shape, int ndim, tc_device d)
{
    return guard_tensor(__func__, [&] {
        return at::randint(high, tc::shape_ref(shape, ndim), options_for(TC_INT64, d));
    });
}

extern "C" tc_tensor *tc_scalar_tensor(double value, enum tc_dtype dt, tc_device d)
{
    return guard_tensor(__func__, [&] { return at::scalar_tensor(value, options_for(dt, d)); });
}

extern "C" tc_tensor *tc_from_data(const void *data, const int64_t *shape, int ndim,
                                   enum tc_dtype dt)
{
    if (!data) {
        tc::set_error(__func__, "data is NULL");
        return nullptr;
    }
    return guard_tensor(__func__, [&] {
        at::Tensor t = at::empty(tc::shape_ref(shape, ndim), options_for(dt, tc_device_cpu()));
        std::memcpy(t.data_ptr(), data, t.nbytes());
        return t;
    });
}

extern "C" int tc_to_data(const tc_tensor *t, void *dst, size_t dst_bytes)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        tc::count_device_wait(t->t.is_cuda());
        at::Tensor c = t->t.detach().to(at::kCPU).contiguous();
        if (c.nbytes() != dst_bytes)
            throw std::invalid_argument("destination holds " + std::to_string(dst_bytes) +
                                        " bytes but the tensor has " + std::to_string(c.nbytes()));
        if (dst_bytes)
            std::memcpy(dst, c.data_ptr(), dst_bytes);
    });
}

extern "C" int tc_item_double(const tc_tensor *t, double *out)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        tc::count_device_wait(t->t.is_cuda());
        *out = t->t.item<double>();
    });
}

extern "C" int tc_item_int64(const tc_tensor *t, int64_t *out)
{
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        tc::count_device_wait(t->t.is_cuda());
        *out = t->t.item<int64_t>();
    });
}

/* ---- queries ---- */

extern "C" int tc_dim(const tc_tensor *t)
{
    return t ? (int)t->t.dim() : -1;
}

extern "C" int64_t tc_size(const tc_tensor *t, int dim)
{
    if (!t)
        return -1;
    int64_t n = t->t.dim();
    if (dim < 0)
        dim += (int)n;
    return dim >= 0 && dim < n ? t->t.size(dim) : -1;
}

extern "C" int64_t tc_numel(const tc_tensor *t)
{
    return t ? t->t.numel() : -1;
}

extern "C" int tc_shape(const tc_tensor *t, int64_t *shape, int max_dims)
{
    if (!t)
        return -1;
    int n = (int)t->t.dim();
    for (int i = 0; i < n && i < max_dims; i++)
        shape[i] = t->t.size(i);
    return n;
}

extern "C" enum tc_dtype tc_dtype_of(const tc_tensor *t)
{
    enum tc_dtype dt = TC_FLOAT32;
    if (t)
        tc::from_scalar_type(t->t.scalar_type(), &dt);
    return dt;
}

extern "C" tc_device tc_device_of(const tc_tensor *t)
{
    return t ? tc::from_device(t->t.device()) : tc_device_cpu();
}

extern "C" bool tc_same_shape(const tc_tensor *a, const tc_tensor *b)
{
    return a && b && a->t.sizes() == b->t.sizes();
}

extern "C" const char *tc_shape_str(const tc_tensor *t, char *buf, size_t len)
{
    if (!buf || len == 0)
        return "";
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int64_t i = 0; i < t->t.dim() && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "",
                                 (long long)t->t.size(i));
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}
