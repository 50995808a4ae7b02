/*
 * profile.cpp - what the training profiler needs from libtorch: every parameter's gradient
 * norm in one device round trip, device-side timing with events (CUDA), and the device
 * allocator's memory figures. Only c10's device-generic interfaces are used, so this file
 * needs no CUDA header and builds against CPU and CUDA libtorch alike.
 */
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/Event.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <vector>

#include "internal.h"

using tc::guard_status;

struct tc_timer {
    c10::Device device;
    std::vector<c10::Event> events;
};

extern "C" int tc_grad_norms(tc_tensor *const *params, size_t n, float *out)
{
    return guard_status(__func__, [&] {
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> grads;
        std::vector<size_t> where;
        for (size_t i = 0; i < n; i++) {
            out[i] = 0;
            if (params[i] && params[i]->t.grad().defined()) {
                grads.push_back(params[i]->t.grad());
                where.push_back(i);
            }
        }
        if (grads.empty())
            return;
        /* One fused call (as clip_grad_norm_ does), then one copy to the host. */
        std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
        at::Tensor all = at::stack(norms).to(at::kFloat).to(at::kCPU).contiguous();
        const float *v = all.data_ptr<float>();
        for (size_t k = 0; k < where.size(); k++)
            out[where[k]] = v[k];
    });
}

extern "C" tc_timer *tc_timer_new(tc_device d, size_t slots)
{
    if (d.type != TC_CUDA) {
        tc::set_error(__func__, "device timers need a CUDA device");
        return nullptr;
    }
    tc_timer *t = nullptr;
    if (guard_status(__func__, [&] {
            t = new tc_timer{tc::to_device(d), {}};
            t->events.reserve(slots);
            for (size_t i = 0; i < slots; i++)
                t->events.emplace_back(c10::DeviceType::CUDA, c10::EventFlag::BACKEND_DEFAULT);
        }) != TC_OK) {
        delete t;
        return nullptr;
    }
    return t;
}

extern "C" int tc_timer_record(tc_timer *t, size_t slot)
{
    if (!t || slot >= t->events.size()) {
        tc::set_error(__func__, "no such timer slot");
        return TC_ERR;
    }
    return guard_status(__func__, [&] {
        const auto *impl = c10::impl::getDeviceGuardImpl(t->device.type());
        t->events[slot].record(impl->getStream(t->device));
    });
}

extern "C" int tc_timer_elapsed_ms(tc_timer *t, size_t from, size_t to, double *ms)
{
    if (!t || from >= t->events.size() || to >= t->events.size()) {
        tc::set_error(__func__, "no such timer slot");
        return TC_ERR;
    }
    return guard_status(__func__, [&] {
        t->events[to].synchronize();
        *ms = t->events[from].elapsedTime(t->events[to]);
    });
}

extern "C" void tc_timer_free(tc_timer *t)
{
    delete t;
}

extern "C" int tc_device_memory(tc_device d, double *allocated_bytes, double *peak_bytes,
                                double *reserved_bytes)
{
    *allocated_bytes = *peak_bytes = *reserved_bytes = 0;
    if (d.type != TC_CUDA) return TC_OK;
    return guard_status(__func__, [&] {
        auto stats = c10::getDeviceAllocator(c10::DeviceType::CUDA)
                         ->getDeviceStats((c10::DeviceIndex)d.index);
        const size_t all = (size_t)c10::CachingAllocator::StatType::AGGREGATE;
        *allocated_bytes = (double)stats.allocated_bytes[all].current;
        *peak_bytes = (double)stats.allocated_bytes[all].peak;
        *reserved_bytes = (double)stats.reserved_bytes[all].current;
    });
}
