/*
 * optim.cpp - SGD (momentum, nesterov, weight decay), Adam, AdamW and RMSprop over parameter groups,
 * on libtorch's own optimizers so that the update rules are PyTorch's.
 */
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/archive.h>

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/_fused_sgd.h>

#include <memory>
#include <sstream>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "internal.h"

using tc::guard_status;

enum class optimizer_kind { sgd, adam, adamw, rmsprop };

/* The fused Adam kernels take each parameter's step count as a float tensor on its device;
 * libtorch's AdamParamState keeps it as a host integer (what checkpoints save). This is the
 * device copy, and the host count it was made from (a stale one is made again). */
struct device_step {
    at::Tensor count;
    int64_t host_step = -1;
};

struct tc_optimizer {
    tc_optimizer(optimizer_kind k, std::unique_ptr<torch::optim::Optimizer> i)
        : kind(k), impl(std::move(i))
    {
    }
    optimizer_kind kind;
    std::unique_ptr<torch::optim::Optimizer> impl;
    int fused = -1; /* fused steps: -1 where the parameters are on CUDA, 0 never, 1 always */
    std::unordered_map<const void *, device_step> adam_steps; /* by parameter TensorImpl */
};

/* The device of the first parameter (CPU for an optimizer without parameters). */
static at::Device params_device(const torch::optim::Optimizer &o)
{
    for (const auto &group : o.param_groups())
        for (const auto &p : group.params())
            return p.device();
    return at::Device(at::kCPU);
}

static std::vector<at::Tensor> collect(tc_tensor *const *params, size_t n)
{
    if (n > 0 && !params)
        throw std::invalid_argument("params is NULL");
    std::vector<at::Tensor> out;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) {
        if (!params[i])
            throw std::invalid_argument("parameter " + std::to_string(i) + " is NULL");
        if (!params[i]->t.is_leaf())
            throw std::invalid_argument("parameter " + std::to_string(i) +
                                        " is not a leaf tensor (it was computed from others)");
        out.push_back(params[i]->t);
    }
    return out;
}

extern "C" struct tc_sgd_options tc_sgd_default_options(void)
{
    struct tc_sgd_options o = {};
    o.lr = 0.01;
    return o;
}

extern "C" struct tc_adam_options tc_adam_default_options(void)
{
    struct tc_adam_options o = {};
    o.lr = 1e-3;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    return o;
}

static void check_lr(double lr)
{
    if (!(lr >= 0.0) || !std::isfinite(lr))
        throw std::invalid_argument("learning rate must be a finite number >= 0, got " +
                                    std::to_string(lr));
}

extern "C" tc_optimizer *tc_sgd_new(tc_tensor *const *params, size_t n,
                                    const struct tc_sgd_options *o)
{
    std::unique_ptr<tc_optimizer> opt;
    int rc = guard_status(__func__, [&] {
        check_lr(o->lr);
        if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
            throw std::invalid_argument("nesterov needs momentum > 0 and dampening 0");
        auto options = torch::optim::SGDOptions(o->lr)
                           .momentum(o->momentum)
                           .dampening(o->dampening)
                           .weight_decay(o->weight_decay)
                           .nesterov(o->nesterov);
        opt.reset(new tc_optimizer{optimizer_kind::sgd,
                                   std::make_unique<torch::optim::SGD>(collect(params, n), options)});
    });
    return rc == TC_OK ? opt.release() : nullptr;
}

extern "C" tc_optimizer *tc_adam_new(tc_tensor *const *params, size_t n,
                                     const struct tc_adam_options *o)
{
    std::unique_ptr<tc_optimizer> opt;
    int rc = guard_status(__func__, [&] {
        check_lr(o->lr);
        if (o->decoupled_weight_decay) {
            auto options = torch::optim::AdamWOptions(o->lr)
                               .betas({o->beta1, o->beta2})
                               .eps(o->eps)
                               .weight_decay(o->weight_decay)
                               .amsgrad(o->amsgrad);
            opt.reset(new tc_optimizer{optimizer_kind::adamw, std::make_unique<torch::optim::AdamW>(
                                                                  collect(params, n), options)});
        } else {
            auto options = torch::optim::AdamOptions(o->lr)
                               .betas({o->beta1, o->beta2})
                               .eps(o->eps)
                               .weight_decay(o->weight_decay)
                               .amsgrad(o->amsgrad);
            opt.reset(new tc_optimizer{optimizer_kind::adam, std::make_unique<torch::optim::Adam>(
                                                                 collect(params, n), options)});
        }
    });
    return rc == TC_OK ? opt.release() : nullptr;
}

extern "C" tc_optimizer *tc_rmsprop_new(tc_tensor *const *params, size_t n,
                                        const struct tc_rmsprop_options *o)
{
    std::unique_ptr<tc_optimizer> opt;
    int rc = guard_status(__func__, [&] {
        check_lr(o->lr);
        auto options = torch::optim::RMSpropOptions(o->lr)
                           .alpha(o->alpha)
                           .eps(o->eps)
                           .weight_decay(o->weight_decay)
                           .momentum(o->momentum);
        opt.reset(new tc_optimizer{optimizer_kind::rmsprop, std::make_unique<torch::optim::RMSprop>(
                                                                collect(params, n), options)});
    });
    return rc == TC_OK ? opt.release() : nullptr;
}

extern "C" int tc_optimizer_add_group(tc_optimizer *opt, tc_tensor *const *params, size_t n,
                                      double lr, double weight_decay)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    int index = -1;
    int rc = guard_status(__func__, [&] {
        check_lr(lr);
        /* The new group starts from the optimizer's defaults (momentum, betas...). */
        std::unique_ptr<torch::optim::OptimizerOptions> options = opt->impl->defaults().clone();
        options->set_lr(lr);
        switch (opt->kind) {
        case optimizer_kind::sgd:
            static_cast<torch::optim::SGDOptions &>(*options).weight_decay(weight_decay);
            break;
        case optimizer_kind::adam:
            static_cast<torch::optim::AdamOptions &>(*options).weight_decay(weight_decay);
            break;
        case optimizer_kind::adamw:
            static_cast<torch::optim::AdamWOptions &>(*options).weight_decay(weight_decay);
            break;
        case optimizer_kind::rmsprop:
            static_cast<torch::optim::RMSpropOptions &>(*options).weight_decay(weight_decay);
            break;
        }
        opt->impl->add_param_group(
            torch::optim::OptimizerParamGroup(collect(params, n), std::move(options)));
        index = (int)opt->impl->param_groups().size() - 1;
    });
    return rc == TC_OK ? index : rc;
}

extern "C" int tc_optimizer_group_count(const tc_optimizer *opt)
{
    return opt ? (int)opt->impl->param_groups().size() : 0;
}

extern "C" int tc_optimizer_set_lr(tc_optimizer *opt, int group, double lr)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] {
        check_lr(lr);
        auto &groups = opt->impl->param_groups();
        if (group >= (int)groups.size())
            throw std::out_of_range("no parameter group " + std::to_string(group));
        for (size_t i = 0; i < groups.size(); i++)
            if (group < 0 || (size_t)group == i)
                groups[i].options().set_lr(lr);
    });
}

extern "C" double tc_optimizer_get_lr(const tc_optimizer *opt, int group)
{
    if (!opt)
        return NAN;
    const auto &groups = opt->impl->param_groups();
    size_t g = group < 0 ? 0 : (size_t)group;
    return g < groups.size() ? groups[g].options().get_lr() : NAN;
}

extern "C" int tc_optimizer_zero_grad(tc_optimizer *opt)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    /* Gradients dropped as PyTorch's Optimizer.zero_grad(set_to_none=True) drops them: the
     * handle let go, nothing written. libtorch's own zero_grad detaches each gradient in
     * place first, and a gradient that is a view of a data-parallel bucket
     * (gradient_as_bucket_view) refuses that, leaving every gradient in place. */
    return guard_status(__func__, [&] {
        for (auto &group : opt->impl->param_groups())
            for (auto &p : group.params())
                p.mutable_grad().reset();
    });
}

/* The optimizer's state-map key of parameter p, whichever key type this libtorch uses (the
 * TensorImpl's address, as a pointer or, in older releases, as its printed string). */
[[maybe_unused]] static void *state_key(const at::Tensor &p, void *const *)
{
    return p.unsafeGetTensorImpl();
}
[[maybe_unused]] static std::string state_key(const at::Tensor &p, const std::string *)
{
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
}

/* Whether the fused kernels apply to every group: dense gradients, one dtype and one device
 * per group. */
static bool fusable(const torch::optim::Optimizer &o)
{
    for (const auto &group : o.param_groups())
        for (const auto &p : group.params())
            if (p.grad().defined() &&
                (p.grad().is_sparse() || p.scalar_type() != group.params()[0].scalar_type() ||
                 p.device() != group.params()[0].device() || p.grad().scalar_type() != p.scalar_type()))
                return false;
    return true;
}

/* SGD's step as one fused kernel per parameter group (at::_fused_sgd_, what PyTorch's
 * SGD(fused=True) runs) instead of libtorch's loop of several kernels per parameter: about
 * 650 launches per ResNet-50 step become a handful. The momentum buffers stay libtorch's own
 * SGDParamState, so checkpoints and a later unfused step see the same state. Returns false
 * (nothing done) where the fused kernel does not apply: mixed devices or dtypes, sparse
 * gradients. */
static bool fused_sgd_step(torch::optim::SGD &sgd)
{
    using Key = std::decay_t<decltype(sgd.state())>::key_type;
    if (!fusable(sgd)) /* check everything before changing anything */
        return false;
    at::NoGradGuard no_grad;
    auto &states = sgd.state();
    for (auto &group : sgd.param_groups()) {
        const auto &o = static_cast<const torch::optim::SGDOptions &>(group.options());
        /* Parameters whose momentum starts now (buffer = gradient) and those that have one. */
        std::vector<at::Tensor> params[2], grads[2], bufs[2];
        for (const auto &p : group.params()) {
            if (!p.grad().defined())
                continue;
            int first = 0;
            if (o.momentum() != 0) {
                Key key = state_key(p, static_cast<const Key *>(nullptr));
                auto it = states.find(key);
                if (it == states.end()) {
                    auto st = std::make_unique<torch::optim::SGDParamState>();
                    st->momentum_buffer(at::empty_like(p.grad(), at::MemoryFormat::Preserve));
                    bufs[1].push_back(st->momentum_buffer());
                    states[key] = std::move(st);
                    first = 1;
                } else {
                    bufs[0].push_back(
                        static_cast<torch::optim::SGDParamState &>(*it->second).momentum_buffer());
                }
            }
            params[first].push_back(p);
            grads[first].push_back(p.grad());
        }
        for (int first = 0; first < 2; first++)
            if (!params[first].empty())
                at::_fused_sgd_(params[first], grads[first], bufs[first], o.weight_decay(),
                                o.momentum(), o.lr(), o.dampening(), o.nesterov(),
                                /*maximize=*/false, /*is_first_step=*/first == 1);
    }
    return true;
}

/* Adam's or AdamW's step as PyTorch's Adam(fused=True) / AdamW(fused=True): per parameter
 * group, one _foreach_add_ for the step counts and one fused kernel for the moments and the
 * update, instead of about ten kernels per parameter (1,450 launches per ResNet-50 step). The
 * moments stay libtorch's own AdamParamState / AdamWParamState, whose host step count is kept
 * in step with the device one, so checkpoints and a later unfused step see the same state.
 * Returns false (nothing done) where the kernels do not apply: amsgrad, sparse gradients,
 * mixed devices or dtypes. */
template <class State, class Options>
static bool fused_adam_step(tc_optimizer &opt, bool decoupled_weight_decay)
{
    torch::optim::Optimizer &o = *opt.impl;
    using Key = std::decay_t<decltype(o.state())>::key_type;
    for (const auto &group : o.param_groups())
        if (static_cast<const Options &>(group.options()).amsgrad())
            return false;
    if (!fusable(o))
        return false;
    at::NoGradGuard no_grad;
    auto &states = o.state();
    for (auto &group : o.param_groups()) {
        const auto &options = static_cast<const Options &>(group.options());
        std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
        for (const auto &p : group.params()) {
            if (!p.grad().defined())
                continue;
            Key key = state_key(p, static_cast<const Key *>(nullptr));
            auto it = states.find(key);
            if (it == states.end()) {
                auto st = std::make_unique<State>();
                st->step(0);
                st->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
                st->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
                it = states.emplace(key, std::move(st)).first;
            }
            auto &st = static_cast<State &>(*it->second);
            device_step &ds = opt.adam_steps[p.unsafeGetTensorImpl()];
            if (!ds.count.defined() || ds.host_step != st.step())
                ds.count = at::full({}, static_cast<double>(st.step()),
                                    p.options().dtype(at::kFloat));
            st.step(st.step() + 1); /* the _foreach_add_ below, on the host */
            ds.host_step = st.step();
            params.push_back(p);
            grads.push_back(p.grad());
            exp_avgs.push_back(st.exp_avg());
            exp_avg_sqs.push_back(st.exp_avg_sq());
            steps.push_back(ds.count);
        }
        if (params.empty())
            continue;
        at::_foreach_add_(steps, 1);
        auto [beta1, beta2] = options.betas();
        if (decoupled_weight_decay)
            at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, options.lr(), beta1,
                              beta2, options.weight_decay(), options.eps(), /*amsgrad=*/false,
                              /*maximize=*/false, std::nullopt, std::nullopt);
        else
            at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, options.lr(), beta1,
                             beta2, options.weight_decay(), options.eps(), /*amsgrad=*/false,
                             /*maximize=*/false, std::nullopt, std::nullopt);
    }
    return true;
}

extern "C" int tc_optimizer_set_fused(tc_optimizer *opt, int mode)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    opt->fused = mode < 0 ? -1 : mode > 0;
    return TC_OK;
}

extern "C" int tc_optimizer_step(tc_optimizer *opt)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] {
        bool fused = opt->fused == 1 || (opt->fused < 0 && params_device(*opt->impl).is_cuda());
        bool done = false;
        if (fused && opt->kind == optimizer_kind::sgd)
            done = fused_sgd_step(static_cast<torch::optim::SGD &>(*opt->impl));
        else if (fused && opt->kind == optimizer_kind::adam)
            done = fused_adam_step<torch::optim::AdamParamState, torch::optim::AdamOptions>(*opt, false);
        else if (fused && opt->kind == optimizer_kind::adamw)
            done = fused_adam_step<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(*opt, true);
        if (!done)
            opt->impl->step();
    });
}

extern "C" int tc_optimizer_save(const tc_optimizer *opt, const char *path)
{
    if (!opt || !path) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] {
        torch::serialize::OutputArchive archive;
        opt->impl->save(archive);
        archive.save_to(path);
    });
}

static void move_to(at::Tensor &t, const at::Device &device)
{
    if (t.defined() && t.device() != device)
        t = t.to(device);
}

/* Adam's or AdamW's moments on `device`. */
template <class State> static void move_moments_to(State &st, const at::Device &device)
{
    at::Tensor a = st.exp_avg(), b = st.exp_avg_sq(), c = st.max_exp_avg_sq();
    move_to(a, device);
    move_to(b, device);
    move_to(c, device);
    st.exp_avg(a).exp_avg_sq(b).max_exp_avg_sq(c);
}

/* Every state tensor on `device` (a no-op where it is there already), whatever the optimizer
 * kind: SGD's momentum, Adam's and AdamW's moments, RMSprop's averages. The parameters of one
 * optimizer share a device, so the state map is walked without its (version-dependent) keys. */
static void place_state_on(torch::optim::Optimizer &o, const at::Device &device)
{
    for (auto &entry : o.state()) {
        torch::optim::OptimizerParamState *st = entry.second.get();
        if (auto *sgd = dynamic_cast<torch::optim::SGDParamState *>(st)) {
            at::Tensor b = sgd->momentum_buffer();
            move_to(b, device);
            sgd->momentum_buffer(b);
        } else if (auto *adam = dynamic_cast<torch::optim::AdamParamState *>(st)) {
            move_moments_to(*adam, device);
        } else if (auto *adamw = dynamic_cast<torch::optim::AdamWParamState *>(st)) {
            move_moments_to(*adamw, device);
        } else if (auto *rms = dynamic_cast<torch::optim::RMSpropParamState *>(st)) {
            at::Tensor a = rms->square_avg(), b = rms->momentum_buffer(), c = rms->grad_avg();
            move_to(a, device);
            move_to(b, device);
            move_to(c, device);
            rms->square_avg(a).momentum_buffer(b).grad_avg(c);
        }
    }
}

extern "C" int tc_optimizer_load(tc_optimizer *opt, const char *path)
{
    if (!opt || !path) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] {
        /* Onto the parameters' device, not the one the file was saved from: only local rank 0
         * saves, so without this every other rank would get its state on cuda:0. */
        const at::Device device = params_device(*opt->impl);
        torch::serialize::InputArchive archive;
        archive.load_from(path, device);
        opt->impl->load(archive);
        place_state_on(*opt->impl, device);
        opt->adam_steps.clear(); /* the moments are new tensors, with their own step counts */
    });
}

extern "C" void tc_optimizer_free(tc_optimizer *opt)
{
    delete opt;
}
