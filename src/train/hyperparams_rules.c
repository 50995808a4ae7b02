/*
 * hyperparams_rules.c - the hyperparameters checked together (see hyperparams_rules.h). Every
 * value here was already read and range-checked one by one (hyperparams.c).
 */
#include "train/hyperparams_rules.h"

#include <stdbool.h>

#include "common/error.h"
#include "common/log.h"

int hyperparams_finish(struct hyperparams *hp)
{
    const char *opt = optimizer_name(hp->optimizer);
    bool adam = hp->optimizer == OPTIMIZER_ADAM || hp->optimizer == OPTIMIZER_ADAMW;
    if (hyperparams_given(hp, "augment") && hyperparams_given(hp, "augmentation_type"))
        return err_set("hyperparameters augment and augmentation_type are both given: use "
                       "augmentation_type (crop, crop_color, crop_color_transform) or augment=true "
                       "(RandomResizedCrop + flip), not both");
    if (hyperparams_given(hp, "min_crop_scale") && hp->augment != IMAGE_AUGMENT_RANDOM_RESIZED)
        log_info("hyperparameter min_crop_scale is not used: it bounds augment=true's "
                 "RandomResizedCrop, and this job trains with augmentation %s",
                 image_augment_name(hp->augment));
    /* Early stopping: the built-in algorithm's switch and defaults (patience 5, at least 10
     * epochs), or this image's own early_stopping_patience alone. */
    if (hp->early_stopping == 1) {
        if (!hp->early_stopping_patience)
            hp->early_stopping_patience = 5;
        if (hp->early_stopping_min_epochs < 0)
            hp->early_stopping_min_epochs = 10;
    } else if (hp->early_stopping == 0) {
        if (hyperparams_given(hp, "early_stopping_patience") ||
            hyperparams_given(hp, "early_stopping_min_epochs") ||
            hyperparams_given(hp, "early_stopping_tolerance"))
            log_info("early_stopping=false: the other early_stopping_* hyperparameters are not used");
        hp->early_stopping_patience = 0;
    }
    if (hp->early_stopping_min_epochs < 0)
        hp->early_stopping_min_epochs = 0;
    if (hp->early_stopping != 1 && hp->early_stopping_patience == 0 &&
        (hyperparams_given(hp, "early_stopping_min_epochs") ||
         hyperparams_given(hp, "early_stopping_tolerance")))
        log_info("early stopping is off (early_stopping=true or early_stopping_patience turn it "
                 "on): early_stopping_min_epochs and early_stopping_tolerance are not used");
    /* The learning-rate schedule: lr_scheduler_step is the built-in algorithm's multistep. */
    if (hp->lr_step_count > 0) {
        if (hyperparams_given(hp, "lr_scheduler") && hp->lr_scheduler != LR_SCHEDULE_MULTISTEP)
            return err_set("hyperparameters lr_scheduler=%s and lr_scheduler_step are both given: "
                           "lr_scheduler_step is a multistep schedule; leave lr_scheduler out",
                           lr_schedule_name(hp->lr_scheduler));
        hp->lr_scheduler = LR_SCHEDULE_MULTISTEP;
    } else if (hp->lr_scheduler == LR_SCHEDULE_MULTISTEP) {
        return err_set("hyperparameter lr_scheduler=multistep needs lr_scheduler_step (epochs "
                       "such as \"10,20\")");
    }
    /* What each optimizer reads, named when the user set something it does not read. */
    if (hp->optimizer == OPTIMIZER_NAG && hp->momentum <= 0) {
        log_info("optimizer=nag with momentum=0 is plain sgd (Nesterov needs momentum > 0)");
        hp->optimizer = OPTIMIZER_SGD;
    }
    if (hyperparams_given(hp, "momentum") && (adam || hp->optimizer == OPTIMIZER_RMSPROP))
        log_info("hyperparameter momentum is not used by optimizer=%s (only sgd and nag use it, "
                 "as in the built-in algorithm)", opt);
    if ((hyperparams_given(hp, "beta_1") || hyperparams_given(hp, "beta_2")) && !adam)
        log_info("hyperparameters beta_1/beta_2 are not used by optimizer=%s (only adam)", opt);
    if (hyperparams_given(hp, "eps") && !adam && hp->optimizer != OPTIMIZER_RMSPROP)
        log_info("hyperparameter eps is not used by optimizer=%s (only adam and rmsprop)", opt);
    if (hyperparams_given(hp, "gamma") && hp->optimizer != OPTIMIZER_RMSPROP)
        log_info("hyperparameter gamma is not used by optimizer=%s (only rmsprop)", opt);
    if (hyperparams_given(hp, "weight_decay") && (adam || hp->optimizer == OPTIMIZER_RMSPROP))
        log_info("hyperparameter weight_decay applies to optimizer=%s here too (the built-in "
                 "algorithm uses it with sgd and nag only)", opt);
    /* Not given: the built-in's 1e-4 is for sgd and nag, which it applies it to; the others
     * start from PyTorch's defaults (the built-in leaves adam and rmsprop without any). */
    if (!hyperparams_given(hp, "weight_decay") && hp->optimizer != OPTIMIZER_SGD &&
        hp->optimizer != OPTIMIZER_NAG) {
        hp->weight_decay = hp->optimizer == OPTIMIZER_ADAMW ? 1e-2 : 0;
        log_info("weight_decay %g for optimizer=%s (not given: PyTorch's default for it%s)",
                 hp->weight_decay, opt,
                 hp->optimizer == OPTIMIZER_ADAMW ? "" : "; the built-in algorithm uses weight "
                                                          "decay with sgd and nag only");
    }
    /* precision_dtype: float16 is served by bfloat16 autocast, which needs no loss scaling. */
    if (hp->precision == 16) {
        if (hyperparams_given(hp, "amp") && hp->amp == 0)
            return err_set("hyperparameters precision_dtype=float16 and amp=false contradict "
                           "each other");
        hp->amp = 1;
        log_info("precision_dtype=float16: training runs under bfloat16 autocast (float32 "
                 "weights, bf16 activations, no loss scaling needed) rather than float16");
    } else if (hp->precision == 32) {
        if (hyperparams_given(hp, "amp") && hp->amp == 1)
            return err_set("hyperparameters precision_dtype=float32 and amp=true contradict "
                           "each other");
        hp->amp = 0;
    }
    if (hp->kv_store[0])
        log_info("hyperparameter kv_store=%s has no meaning here: gradients are always averaged "
                 "synchronously across every process (all-reduce, as dist_sync)",
                 hp->kv_store);
    return 0;
}
