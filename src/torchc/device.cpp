/*
 * device.cpp - devices and process-wide settings: CPU and CUDA devices (counted once, checked
 * loudly), the current CUDA device, cuDNN and TF32 switches, the fatal-error handler, seeds
 * and random state, intra-op threads.
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

extern "C" tc_device tc_device_cpu(void)
{
    return tc_device{TC_CPU, 0};
}

extern "C" tc_device tc_device_cuda(int index)
{
    return tc_device{TC_CUDA, index};
}

extern "C" int tc_cuda_device_count(void)
{
    try {
        return torch::cuda::is_available() ? (int)torch::cuda::device_count() : 0;
    } catch (...) {
        return 0;
    }
}

/* The first NVIDIA GPU node (nvidia0, nvidia1...) in dev_dir, or "" when there is none. */
static std::string first_gpu_node(const char *dev_dir)
{
    DIR *d = opendir(dev_dir);
    if (!d)
        return "";
    std::string found;
    while (struct dirent *e = readdir(d)) {
        const char *n = e->d_name;
        if (std::strncmp(n, "nvidia", 6) == 0 && n[6] >= '0' && n[6] <= '9') {
            found = std::string(dev_dir) + "/" + n;
            break;
        }
    }
    closedir(d);
    return found;
}

extern "C" int tc_cuda_devices_checked(const char *dev_dir)
{
    int n = tc_cuda_device_count();
    if (n > 0)
        return n;
    const char *visible = std::getenv("CUDA_VISIBLE_DEVICES");
    if (visible && (!visible[0] || std::strcmp(visible, "-1") == 0))
        return 0; /* the GPUs were hidden on purpose */
    std::string node = first_gpu_node(dev_dir ? dev_dir : "/dev");
    if (node.empty())
        return 0;
    /* A CPU-only libtorch (the CPU image) has no CUDA to start: the CPU is its choice. */
    if (!at::CUDAHooksRegistry()->Has("CUDAHooks"))
        return 0;
    std::string why = "CUDA reports no usable device";
    try {
        at::detail::getCUDAHooks().init(); /* throws the driver's or the runtime's error */
    } catch (const c10::Error &e) {
        why = e.what_without_backtrace();
    } catch (const std::exception &e) {
        why = e.what();
    }
    tc::set_error(__func__, node + " exists (this host has an NVIDIA GPU) but CUDA cannot start: " +
                                why +
                                " (check the driver: it must support this image's CUDA; set "
                                "CUDA_VISIBLE_DEVICES=\"\" to run on the CPU on purpose)");
    return TC_ERR;
}

extern "C" int tc_cuda_set_device(int index)
{
    return guard_status(__func__, [&] {
        if (index < 0 || index >= tc_cuda_device_count())
            throw std::out_of_range("no CUDA device " + std::to_string(index) + " (" +
                                    std::to_string(tc_cuda_device_count()) + " here)");
        c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
            ->setDevice(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index)));
    });
}

extern "C" void tc_cuda_set_performance(bool cudnn_benchmark, bool tf32)
{
    at::Context &ctx = at::globalContext();
    ctx.setBenchmarkCuDNN(cudnn_benchmark);
    ctx.setAllowTF32CuDNN(tf32);
    ctx.setAllowTF32CuBLAS(tf32);
}

static void (*fatal_handler)(const char *) = nullptr;

/* std::terminate's handler: libtorch's background threads (NCCL's watchdog on a failed or
 * stalled collective) end the process by rethrowing there; say what they threw first. */
[[noreturn]] static void on_terminate()
{
    std::string what = "std::terminate without an exception";
    if (std::exception_ptr e = std::current_exception()) {
        try {
            std::rethrow_exception(e);
        } catch (const c10::Error &err) {
            what = err.what_without_backtrace();
        } catch (const std::exception &err) {
            what = err.what();
        } catch (...) {
            what = "an unknown C++ exception";
        }
    }
    if (fatal_handler)
        fatal_handler(what.c_str());
    std::abort();
}

extern "C" void tc_set_fatal_handler(void (*handler)(const char *message))
{
    fatal_handler = handler;
    std::set_terminate(handler ? on_terminate : nullptr);
}

extern "C" int tc_cuda_synchronize(tc_device d)
{
    if (d.type != TC_CUDA)
        return TC_OK;
    return guard_status(__func__, [&] {
        tc::count_device_wait(true);
        torch::cuda::synchronize(d.index);
    });
}

extern "C" void tc_manual_seed(uint64_t seed)
{
    torch::manual_seed(seed); /* seeds CUDA generators too when CUDA is present */
}

extern "C" tc_tensor *tc_rng_state(void)
{
    return guard_tensor(__func__, [] {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        return gen.get_state();
    });
}

extern "C" int tc_rng_set_state(const tc_tensor *state)
{
    TC_NEED_STATUS(state);
    return guard_status(__func__, [&] {
        auto gen = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state->t);
    });
}

extern "C" void tc_set_num_threads(int n)
{
    if (n > 0)
        at::set_num_threads(n);
}

extern "C" int tc_get_num_threads(void)
{
    return at::get_num_threads();
}
