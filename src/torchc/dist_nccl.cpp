/*
 * dist_nccl.cpp - the NCCL backend for tc_dist: libtorch's ProcessGroupNCCL, which runs NCCL
 * on its own streams with the event handling DDP relies on. Compiled only against a CUDA
 * libtorch; the rest of the data-parallel code (dist.cpp) is the same for CPU and GPU.
 */
#include "dist.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace tc {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store> &store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int device_index)
{
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

} // namespace tc
