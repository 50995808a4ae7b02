/*
 * async_copy.cpp - what moving batches between host and device without needless waits is made
 * of, for train's feed and serve's batcher: host buffers that are page-locked when bound for a
 * GPU, tensors over caller-owned memory, side streams, events, copies enqueued on a stream or
 * without blocking, several results read back with one wait, and the count of the host's
 * waits for a device.
 *
 * Everything goes through c10's device-generic Stream, Event and StreamGuard, so no CUDA
 * header is needed here and the same calls run on a CPU-only libtorch. On the CPU a stream or
 * an event is a placeholder: copies are synchronous and recording, waiting and synchronising
 * do nothing, so the CPU runs the exact code path a GPU runs, in order.
 */
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "internal.h"

using tc::guard_status;
using tc::guard_tensor;

struct tc_stream {
    std::optional<c10::Stream> stream; /* empty on the CPU */
};

struct tc_event {
    std::optional<c10::Event> event; /* empty on the CPU */
    at::Device device{at::kCPU};
    bool recorded = false;
};

static std::atomic<int64_t> device_waits{0};

namespace tc {
void count_device_wait(bool on_gpu)
{
    if (on_gpu)
        device_waits.fetch_add(1, std::memory_order_relaxed);
}
} // namespace tc

extern "C" int64_t tc_device_waits(void)
{
    return device_waits.load(std::memory_order_relaxed);
}

/* ---- host buffers ---- */

/* Each buffer's owner (the allocator's DataPtr) and kind, by address. */
struct host_buffer {
    at::DataPtr owner;
    bool pinned;
};
static std::mutex host_mu;
static std::unordered_map<const void *, host_buffer> host_buffers;

extern "C" void *tc_host_alloc(size_t bytes, bool pinned)
{
    void *p = nullptr;
    int rc = guard_status(__func__, [&] {
        bool can_pin = pinned && at::detail::getCUDAHooks().hasCUDA();
        at::Allocator *a = can_pin ? at::detail::getCUDAHooks().getPinnedMemoryAllocator()
                                   : at::getCPUAllocator();
        at::DataPtr owner = a->allocate(bytes ? bytes : 1);
        p = owner.get();
        std::lock_guard<std::mutex> lock(host_mu);
        host_buffers.emplace(p, host_buffer{std::move(owner), can_pin});
    });
    return rc == TC_OK ? p : nullptr;
}

extern "C" bool tc_host_is_pinned(const void *p)
{
    std::lock_guard<std::mutex> lock(host_mu);
    auto it = host_buffers.find(p);
    return it != host_buffers.end() && it->second.pinned;
}

extern "C" void tc_host_free(void *p)
{
    if (!p)
        return;
    at::DataPtr owner;
    {
        std::lock_guard<std::mutex> lock(host_mu);
        auto it = host_buffers.find(p);
        if (it == host_buffers.end())
            return;
        owner = std::move(it->second.owner);
        host_buffers.erase(it);
    }
    /* owner frees the memory here, outside the lock */
}

extern "C" tc_tensor *tc_from_blob(void *data, const int64_t *shape, int ndim, enum tc_dtype dt)
{
    if (!data) {
        tc::set_error(__func__, "data is NULL");
        return nullptr;
    }
    return guard_tensor(__func__, [&] {
        return at::from_blob(data, tc::shape_ref(shape, ndim),
                             at::TensorOptions().dtype(tc::to_scalar_type(dt)));
    });
}

/* ---- streams and events ---- */

extern "C" tc_stream *tc_stream_new(tc_device d)
{
    auto *s = new (std::nothrow) tc_stream;
    if (!s) {
        tc::set_error(__func__, "out of memory");
        return nullptr;
    }
    if (d.type != TC_CUDA)
        return s;
    if (guard_status(__func__, [&] {
            c10::impl::VirtualGuardImpl impl(at::kCUDA);
            s->stream = impl.getStreamFromGlobalPool(tc::to_device(d), /*isHighPriority=*/false);
        }) != TC_OK) {
        delete s;
        return nullptr;
    }
    return s;
}

void tc_stream_free(tc_stream *s)
{
    delete s;
}

extern "C" int tc_copy_async_(tc_tensor *dst, const tc_tensor *src, tc_stream *s)
{
    TC_NEED_STATUS(dst);
    TC_NEED_STATUS(src);
    return guard_status(__func__, [&] {
        if (s && s->stream) {
            c10::StreamGuard on(*s->stream);
            dst->t.copy_(src->t, /*non_blocking=*/true);
        } else {
            dst->t.copy_(src->t, /*non_blocking=*/dst->t.is_cuda() && src->t.is_pinned());
        }
    });
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

extern "C" tc_event *tc_event_new(tc_device d)
{
    auto *e = new (std::nothrow) tc_event;
    if (!e) {
        tc::set_error(__func__, "out of memory");
        return nullptr;
    }
    if (d.type == TC_CUDA) {
        e->event.emplace(at::kCUDA);
        e->device = tc::to_device(d);
    }
    return e;
}

void tc_event_free(tc_event *e)
{
    delete e;
}

/* The stream an event call is about: s's, or the current one of the event's device. */
static c10::Stream stream_or_current(const tc_stream *s, const tc_event *e)
{
    if (s && s->stream)
        return *s->stream;
    c10::impl::VirtualGuardImpl impl(at::kCUDA);
    return impl.getStream(e->device);
}

extern "C" int tc_event_record(tc_event *e, tc_stream *s)
{
    if (!e)
        return TC_ERR_NULL;
    if (!e->event)
        return TC_OK;
    return guard_status(__func__, [&] {
        e->event->record(stream_or_current(s, e));
        e->recorded = true;
    });
}

extern "C" int tc_event_wait(tc_event *e, tc_stream *s)
{
    if (!e)
        return TC_ERR_NULL;
    if (!e->event || !e->recorded)
        return TC_OK;
    return guard_status(__func__, [&] { e->event->block(stream_or_current(s, e)); });
}

extern "C" int tc_event_synchronize(tc_event *e)
{
    if (!e)
        return TC_ERR_NULL;
    if (!e->event || !e->recorded)
        return TC_OK;
    return guard_status(__func__, [&] {
        if (!e->event->query())
            device_waits.fetch_add(1, std::memory_order_relaxed);
        e->event->synchronize();
    });
}
