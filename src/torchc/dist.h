/*
 * dist.h - what dist.cpp needs from dist_nccl.cpp: the NCCL backend, which exists only in
 * builds against a CUDA libtorch (TORCHC_WITH_NCCL). Never included from C.
 */
#pragma once

#include <chrono>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace tc {

/* ProcessGroupNCCL on CUDA device `device_index` (made current for this thread). */
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store> &store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int device_index);

} // namespace tc
