/*
 * internal.h - what the files of src/torchc/ share: the handle structs, error capture and
 * the conversions between torchc's C enums and ATen's types. Never included from C.
 */
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <string>

#include "torchc.h"

struct tc_tensor {
    at::Tensor t;
    tc_scope *scope; /* the scope that owns this handle, or nullptr: the caller owns it */
};

namespace tc {

/* Records "fn: message" as this thread's last error. */
void set_error(const char *fn, const std::string &message);
bool has_error();
/* For a NULL handle: keeps an earlier error (the usual cause) or records a new one. */
void note_null_input(const char *fn);

/* A new handle for t, owned by the current scope if there is one. */
tc_tensor *wrap(at::Tensor t);

at::ScalarType to_scalar_type(enum tc_dtype dt);
bool from_scalar_type(at::ScalarType st, enum tc_dtype *out);
at::Device to_device(tc_device d);
tc_device from_device(const at::Device &d);
at::IntArrayRef shape_ref(const int64_t *shape, int ndim);
/* Counts a host wait for a device when it is a GPU (tc_device_waits). */
void count_device_wait(bool on_gpu);

/* Runs f and returns TC_OK, or TC_ERR with the error recorded. */
template <class F> int guard_status(const char *fn, F &&f)
{
    try {
        f();
        return TC_OK;
    } catch (const c10::Error &e) {
        set_error(fn, e.what_without_backtrace());
    } catch (const std::exception &e) {
        set_error(fn, e.what());
    } catch (...) {
        set_error(fn, "unknown C++ exception");
    }
    return TC_ERR;
}

/* Runs f and returns its tensor wrapped, or nullptr with the error recorded. */
template <class F> tc_tensor *guard_tensor(const char *fn, F &&f)
{
    at::Tensor out;
    if (guard_status(fn, [&] { out = f(); }) != TC_OK)
        return nullptr;
    return wrap(std::move(out));
}

} // namespace tc

/* Sticky errors: a NULL input makes the operation fail without touching the first message. */
#define TC_NEED_TENSOR(x)                                                                          \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            tc::note_null_input(__func__);                                                         \
            return nullptr;                                                                        \
        }                                                                                          \
    } while (0)
#define TC_NEED_STATUS(x)                                                                          \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            tc::note_null_input(__func__);                                                         \
            return TC_ERR_NULL;                                                                    \
        }                                                                                          \
    } while (0)
