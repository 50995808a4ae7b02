/*
 * optim.cpp - SGD (momentum, nesterov, weight decay), Adam, AdamW and RMSprop over parameter groups,
 * on libtorch's own optimizers so that the update rules are PyTorch's.
 */
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/archive.h>

#include <memory>
#include <vector>

#include "internal.h"

using tc::guard_status;

enum class optimizer_kind { sgd, adam, adamw, rmsprop };

struct tc_optimizer {
    optimizer_kind kind;
    std::unique_ptr<torch::optim::Optimizer> impl;
};

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
    return guard_status(__func__, [&] { opt->impl->zero_grad(true); });
}

extern "C" int tc_optimizer_step(tc_optimizer *opt)
{
    if (!opt) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] { opt->impl->step(); });
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

extern "C" int tc_optimizer_load(tc_optimizer *opt, const char *path)
{
    if (!opt || !path) {
        tc::note_null_input(__func__);
        return TC_ERR_NULL;
    }
    return guard_status(__func__, [&] {
        torch::serialize::InputArchive archive;
        archive.load_from(path);
        opt->impl->load(archive);
    });
}

extern "C" void tc_optimizer_free(tc_optimizer *opt)
{
    delete opt;
}
