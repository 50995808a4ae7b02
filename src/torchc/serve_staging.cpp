/*
 * serve_staging.cpp - what `serve`'s batcher needs to hand a batch to a GPU without extra
 * copies: host buffers (page-locked when asked, so that a copy from them to a CUDA device runs
 * without the host waiting; tc_from_blob in async_copy.cpp makes a tensor over one), a
 * non-blocking copy to a device, and reading several results back with one wait for the device.
 *
 * Not a general stream or event API: the batcher reads its results back on the stream it
 * copied on, which orders the copy before the read, so no event is needed to know when a
 * buffer may be written again.
 */
#include <ATen/ATen.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <cstring>
#include <vector>

#include "internal.h"

using tc::guard_status;
using tc::guard_tensor;

struct tc_staging_buffer {
    at::Tensor bytes; /* uint8 [n], on the CPU, pinned or not */
    bool pinned;
};

extern "C" tc_staging_buffer *tc_staging_buffer_new(size_t bytes, bool pinned)
{
    tc_staging_buffer *b = nullptr;
    int rc = guard_status(__func__, [&] {
        /* A CPU-only libtorch has no page-locking allocator: ordinary memory then. */
        bool can_pin = pinned && at::detail::getCUDAHooks().hasCUDA();
        at::Tensor t = at::empty({(int64_t)(bytes ? bytes : 1)},
                                 at::TensorOptions().dtype(at::kByte).pinned_memory(can_pin));
        b = new tc_staging_buffer{std::move(t), can_pin};
    });
    return rc == TC_OK ? b : nullptr;
}

extern "C" void *tc_staging_buffer_data(tc_staging_buffer *b)
{
    return b ? b->bytes.data_ptr() : nullptr;
}

extern "C" bool tc_staging_buffer_pinned(const tc_staging_buffer *b)
{
    return b && b->pinned;
}

/* Freed pinned memory goes back to libtorch's host allocator, which does not hand it out
 * again before the copies recorded on it have finished. */
extern "C" void tc_staging_buffer_free(tc_staging_buffer *b)
{
    delete b;
}

extern "C" tc_tensor *tc_to_device_nonblocking(const tc_tensor *t, tc_device d)
{
    TC_NEED_TENSOR(t);
    return guard_tensor(__func__,
                        [&] { return t->t.to(tc::to_device(d), /*non_blocking=*/true); });
}

extern "C" int tc_to_data_many(const tc_tensor *const *ts, size_t n, void *const *dsts,
                               const size_t *dst_bytes)
{
    for (size_t i = 0; i < n; i++)
        TC_NEED_STATUS(ts[i]);
    return guard_status(__func__, [&] {
        std::vector<at::Tensor> flat;
        for (size_t i = 0; i < n; i++) {
            const at::Tensor &t = ts[i]->t;
            if (t.scalar_type() != ts[0]->t.scalar_type() || t.device() != ts[0]->t.device())
                throw std::invalid_argument("tensors of different dtypes or devices");
            if (t.nbytes() != dst_bytes[i])
                throw std::invalid_argument("destination " + std::to_string(i) + " holds " +
                                            std::to_string(dst_bytes[i]) +
                                            " bytes but the tensor has " +
                                            std::to_string(t.nbytes()));
            flat.push_back(t.detach().reshape({-1}));
        }
        tc::count_device_wait(ts[0]->t.is_cuda());
        at::Tensor all = at::cat(flat).to(at::kCPU).contiguous(); /* the one wait */
        const char *p = static_cast<const char *>(all.data_ptr());
        for (size_t i = 0; i < n; i++) {
            if (dst_bytes[i])
                std::memcpy(dsts[i], p, dst_bytes[i]);
            p += dst_bytes[i];
        }
    });
}
