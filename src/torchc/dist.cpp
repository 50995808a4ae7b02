/*
 * dist.cpp - data parallelism for torchc: the process group (TCPStore rendezvous, Gloo on
 * CPU, NCCL on CUDA with Gloo beside it for host values), broadcasts, host-value reductions
 * and gradient synchronisation with DDP's own Reducer. These are libtorch's c10d pieces
 * that torch.nn.parallel.DistributedDataParallel drives from Python; here C drives them
 * through a few calls.
 *
 * The wheel ships c10d's headers but not Gloo's; ProcessGroupGloo.hpp compiles against
 * Debian's libgloo-dev headers because we only pass Gloo devices around as shared_ptrs
 * (no Gloo code is compiled here, and libgloo itself is never linked: libtorch_cpu has it).
 */
#include "internal.h"

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#ifdef TORCHC_WITH_NCCL
#include "dist.h"
#endif

struct tc_dist {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroup> group;
    at::Device device{at::kCPU};
    bool host_values_on_cpu = false; /* CUDA groups: host values go over Gloo, not NCCL */
};

struct tc_grad_sync {
    std::shared_ptr<c10d::Reducer> reducer;
};

namespace {

constexpr size_t kBroadcastBucketBytes = 250u << 20; /* DDP's broadcast_bucket_size */
constexpr size_t kDefaultBucketBytes = 25u << 20;    /* DDP's bucket_cap_mb=25 */
constexpr size_t kFirstBucketBytes = 1u << 20;       /* DDP's first, smaller bucket */

std::chrono::milliseconds timeout_of(double seconds)
{
    return std::chrono::milliseconds(static_cast<int64_t>((seconds > 0 ? seconds : 1800) * 1000));
}

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const struct tc_dist_options *o,
                                                    const c10::intrusive_ptr<c10d::Store> &store)
{
    auto options = c10d::ProcessGroupGloo::Options::create(timeout_of(o->timeout_s));
    if (o->interface && o->interface[0])
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(o->interface));
    else
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
            o->local_addr && o->local_addr[0] ? o->local_addr : "127.0.0.1"));
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, o->rank, o->world_size, options);
}

} // namespace

extern "C" bool tc_dist_has_nccl(void)
{
#ifdef TORCHC_WITH_NCCL
    return true;
#else
    return false;
#endif
}

extern "C" tc_dist *tc_dist_init(const struct tc_dist_options *o)
{
    if (!o || !o->master_addr || o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size ||
        o->master_port < 1 || o->master_port > 65535) {
        tc::set_error(__func__, "invalid options (rank, world size, master address or port)");
        return nullptr;
    }
    auto d = std::make_unique<tc_dist>();
    int rc = tc::guard_status(__func__, [&] {
        c10d::TCPStoreOptions so;
        so.port = static_cast<uint16_t>(o->master_port);
        so.isServer = o->rank == 0;
        so.numWorkers = o->world_size;
        so.waitWorkers = true;
        so.timeout = timeout_of(o->timeout_s);
        d->store = c10::make_intrusive<c10d::TCPStore>(o->master_addr, so);
        d->group = c10::make_intrusive<c10d::ProcessGroup>(d->store, o->rank, o->world_size);
        if (o->device.type == TC_CUDA) {
#ifdef TORCHC_WITH_NCCL
            d->device = tc::to_device(o->device);
            /* NCCL for the model's tensors; beside it Gloo for host values (the per-step
             * stop/skip agreement, metric sums), so that agreeing never waits for the GPU.
             * Each backend keys its rendezvous under its own prefix, as PyTorch's
             * "cuda:nccl,cpu:gloo" groups do. */
            auto nccl = tc::make_nccl_backend(c10::make_intrusive<c10d::PrefixStore>("cuda/", d->store),
                                              o->rank, o->world_size, timeout_of(o->timeout_s),
                                              o->device.index);
            d->group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
            auto gloo = make_gloo_backend(o, c10::make_intrusive<c10d::PrefixStore>("cpu/", d->store));
            d->group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
            d->group->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
            d->host_values_on_cpu = true;
#else
            throw std::runtime_error("this build of libtorchc has no NCCL (CPU-only libtorch)");
#endif
        } else {
            auto gloo = make_gloo_backend(o, d->store);
            d->group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
            d->group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
        }
    });
    return rc == TC_OK ? d.release() : nullptr;
}

extern "C" void tc_dist_free(tc_dist *d)
{
    if (!d)
        return;
    tc::guard_status(__func__, [&] {
        d->group.reset();
        d->store.reset();
    });
    delete d;
}

extern "C" int tc_dist_broadcast(tc_dist *d, tc_tensor *const *tensors, size_t n, int root)
{
    TC_NEED_STATUS(d);
    std::vector<at::Tensor> ts;
    ts.reserve(n);
    for (size_t i = 0; i < n; i++) {
        TC_NEED_STATUS(tensors[i]);
        ts.push_back(tensors[i]->t);
    }
    return tc::guard_status(__func__, [&] {
        at::NoGradGuard no_grad; /* parameters are leaves that require grad */
        c10d::broadcast_coalesced(d->group, ts, kBroadcastBucketBytes, root);
    });
}

extern "C" int tc_dist_all_reduce(tc_dist *d, double *values, size_t n, enum tc_reduce_op op)
{
    TC_NEED_STATUS(d);
    if (n == 0)
        return TC_OK;
    return tc::guard_status(__func__, [&] {
        at::Tensor host = at::from_blob(values, {static_cast<int64_t>(n)}, at::kDouble);
        at::Device where = d->host_values_on_cpu ? at::Device(at::kCPU) : d->device;
        std::vector<at::Tensor> t{host.to(where, /*non_blocking=*/false, /*copy=*/true)};
        c10d::AllreduceOptions opts;
        opts.reduceOp = op == TC_REDUCE_MAX   ? c10d::ReduceOp::MAX
                        : op == TC_REDUCE_MIN ? c10d::ReduceOp::MIN
                                              : c10d::ReduceOp::SUM;
        d->group->allreduce(t, opts)->wait();
        host.copy_(t[0].cpu());
    });
}

extern "C" tc_grad_sync *tc_grad_sync_new(tc_dist *d, tc_tensor *const *params,
                                          const char *const *names, size_t n, size_t bucket_bytes)
{
    TC_NEED_TENSOR(d);
    if (n == 0) {
        tc::set_error(__func__, "no trainable parameters to synchronise");
        return nullptr;
    }
    std::vector<at::Tensor> ps;
    std::unordered_map<size_t, std::string> param_names;
    for (size_t i = 0; i < n; i++) {
        TC_NEED_TENSOR(params[i]);
        ps.push_back(params[i]->t);
        if (names && names[i])
            param_names[i] = names[i];
    }
    auto g = std::make_unique<tc_grad_sync>();
    int rc = tc::guard_status(__func__, [&] {
        int64_t cap = static_cast<int64_t>(bucket_bytes ? bucket_bytes : kDefaultBucketBytes);
        /* Buckets in parameter order, then reversed as DDP does: gradients become ready from
         * the last layer backwards, so the first bucket to fill holds the last layers. */
        auto [indices, limits] = c10d::compute_bucket_assignment_by_size(
            ps, {kFirstBucketBytes, static_cast<size_t>(cap)}, std::vector<bool>(n, false), {},
            std::nullopt);
        std::reverse(indices.begin(), indices.end());
        std::vector<int64_t> caps(limits.rbegin(), limits.rend());
        /* Gradients as views of the buckets (DDP's gradient_as_bucket_view=True): no second
         * copy of every gradient, and no copy back after each all-reduce. */
        g->reducer = std::make_shared<c10d::Reducer>(
            ps, indices, d->group, std::vector<bool>(n, false), cap,
            /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/true, param_names,
            static_cast<int64_t>(kFirstBucketBytes), /*skip_all_reduce_unused_params=*/false,
            /*use_python_reducer=*/false, caps);
    });
    return rc == TC_OK ? g.release() : nullptr;
}

extern "C" int tc_grad_sync_before_backward(tc_grad_sync *g)
{
    TC_NEED_STATUS(g);
    return tc::guard_status(__func__, [&] {
        /* What DDP's forward does around the module call, in order: count the iteration,
         * re-bucket once by the order gradients arrived in (a collective, same step on
         * every rank), then arm the hooks for the coming backward pass. */
        g->reducer->prepare_for_forward();
        g->reducer->rebuild_buckets();
        g->reducer->prepare_for_backward({});
    });
}

extern "C" void tc_grad_sync_free(tc_grad_sync *g)
{
    if (!g)
        return;
    tc::guard_status(__func__, [&] { g->reducer.reset(); });
    delete g;
}
