/*
 * hyperparams.c - reading hyperparameters.json (see hyperparams.h). One table lists every key
 * with its aliases, type, range and the allowed values its error message names, so that the
 * parser and its messages cannot drift apart; README.md's table is written by hand, and a
 * test (tests/test_hyperparams_readme.c) fails when it misses a name or an alias of this one.
 * The string forms of values are parsed in hyperparams_values.c, the keys checked together
 * in hyperparams_rules.c.
 */
#include "train/hyperparams.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "common/json_file.h"
#include "common/log.h"
#include "models/arch.h"
#include "train/hyperparams_rules.h"
#include "train/hyperparams_values.h"

enum kind {
    K_INT,
    K_DOUBLE,
    K_BOOL,
    K_SEED,
    K_AUTO_BOOL, /* "auto" or a bool, into an int: -1/0/1 */
    K_MODEL,
    K_OPTIMIZER,
    K_SCHEDULE,
    K_IMAGE_SHAPE, /* built-in algorithm: "3,224,224" */
    K_NUM_LAYERS,  /* built-in algorithm: ResNet depth */
    K_STEP_RANGE,  /* "5-10", "7" or "none": steps to trace */
    K_TRIBOOL,     /* a bool into an int that starts at -1 (unset) */
    K_AUGMENT,     /* augment=true/false: RandomResizedCrop + flip, or none */
    K_AUG_TYPE,    /* built-in algorithm: crop, crop_color, crop_color_transform */
    K_LR_STEPS,    /* built-in algorithm: "10,20" */
    K_TRIPLE,      /* "0.5" or "0.485,0.456,0.406" (or a JSON list) into float[3] */
    K_RESIZE_MODE, /* auto, crop or squash */
    K_PRECISION,   /* float32 or float16 */
    K_LONG,        /* a count into long long */
    K_KV_STORE,    /* dist_sync or dist_async (meaningless here: said in the log) */
    K_MULTI_LABEL, /* 0, or refused */
};

struct field {
    const char *names[4]; /* first is the canonical name */
    enum kind kind;
    size_t offset;
    double min, max;
    const char *allowed; /* for the error message */
};

#define F(member) offsetof(struct hyperparams, member)
static const struct field fields[] = {
    {{"model", "arch", "model_name"}, K_MODEL, F(model), 0, 0, NULL},
    {{"num_classes"}, K_INT, F(num_classes), 0, 1000000, "an integer from 1 to 1000000 (0: count)"},
    {{"epochs", "num_epochs", "epoch"}, K_INT, F(epochs), 1, 100000, "an integer from 1 to 100000"},
    {{"batch_size", "mini_batch_size"}, K_INT, F(batch_size), 1, 65536, "an integer from 1 to 65536"},
    {{"lr", "learning_rate"}, K_DOUBLE, F(lr), 1e-12, 10, "a number in (0, 10]"},
    {{"momentum"}, K_DOUBLE, F(momentum), 0, 0.999999, "a number in [0, 1)"},
    {{"weight_decay", "wd"}, K_DOUBLE, F(weight_decay), 0, 1, "a number in [0, 1]"},
    {{"optimizer"}, K_OPTIMIZER, F(optimizer), 0, 0, "sgd, nag, adam, adamw or rmsprop"},
    {{"beta_1", "beta1"}, K_DOUBLE, F(beta1), 0, 0.999999, "a number in [0, 1)"},
    {{"beta_2", "beta2"}, K_DOUBLE, F(beta2), 0, 0.999999, "a number in [0, 1)"},
    {{"eps", "epsilon"}, K_DOUBLE, F(eps), 1e-30, 1, "a number in (0, 1]"},
    {{"gamma", "rmsprop_gamma"}, K_DOUBLE, F(rms_gamma), 0, 0.999999, "a number in [0, 1)"},
    {{"lr_scheduler", "scheduler"}, K_SCHEDULE, F(lr_scheduler), 0, 0, "none, step or cosine"},
    {{"lr_step_size", "lr_scheduler_step_size"}, K_INT, F(lr_step_size), 1, 100000, "an integer >= 1"},
    {{"lr_gamma", "lr_scheduler_factor"}, K_DOUBLE, F(lr_gamma), 1e-6, 1, "a number in (0, 1]"},
    {{"lr_scheduler_step", "lr_steps"}, K_LR_STEPS, F(lr_steps), 1, 100000, "epochs separated by commas, ascending, such as \"10,20\""},
    {{"warmup_epochs"}, K_INT, F(warmup_epochs), 0, 100000, "an integer >= 0"},
    {{"label_smoothing"}, K_DOUBLE, F(label_smoothing), 0, 0.999, "a number in [0, 1)"},
    {{"image_size", "input_size"}, K_INT, F(image_size), 16, 1024, "an integer from 16 to 1024"},
    {{"image_shape"}, K_IMAGE_SHAPE, F(image_size), 16, 1024, "\"3,H,W\" with H == W, 16 to 1024"},
    {{"num_layers"}, K_NUM_LAYERS, F(model), 0, 0, "18, 34, 50, 101 or 152"},
    {{"freeze_backbone", "feature_extract"}, K_BOOL, F(freeze_backbone), 0, 0, "true or false"},
    {{"seed", "random_seed"}, K_SEED, F(seed), 0, 0, "an integer >= 0"},
    {{"num_workers", "workers"}, K_INT, F(num_workers), 0, 256, "an integer from 0 to 256"},
    {{"early_stopping"}, K_TRIBOOL, F(early_stopping), 0, 0, "true or false"},
    {{"early_stopping_patience"}, K_INT, F(early_stopping_patience), 0, 100000, "an integer >= 0"},
    {{"early_stopping_min_epochs"}, K_INT, F(early_stopping_min_epochs), 0, 100000, "an integer >= 0"},
    {{"early_stopping_tolerance"}, K_DOUBLE, F(early_stopping_tolerance), 0, 1, "a number in [0, 1]"},
    {{"amp", "bf16"}, K_AUTO_BOOL, F(amp), 0, 0, "auto, true or false"},
    {{"channels_last"}, K_AUTO_BOOL, F(channels_last), 0, 0, "auto, true or false"},
    {{"tf32", "allow_tf32"}, K_BOOL, F(tf32), 0, 0, "true or false"},
    {{"device_prefetch"}, K_AUTO_BOOL, F(device_prefetch), 0, 0, "auto, true or false"},
    {{"validation_fraction", "val_fraction"}, K_DOUBLE, F(validation_fraction), 0.001, 0.9, "a number in [0.001, 0.9]"},
    {{"min_crop_scale"}, K_DOUBLE, F(min_crop_scale), 0.01, 1, "a number in [0.01, 1]"},
    {{"augment", "augmentation"}, K_AUGMENT, F(augment), 0, 0, "true or false"},
    {{"augmentation_type"}, K_AUG_TYPE, F(augment), 0, 0, "crop, crop_color or crop_color_transform"},
    {{"mean", "normalize_mean"}, K_TRIPLE, F(mean), -10, 10, "one number or three separated by commas, each in [-10, 10]"},
    {{"std", "normalize_std"}, K_TRIPLE, F(std), 1e-6, 100, "one number or three separated by commas, each in (0, 100]"},
    {{"eval_resize", "resize_mode"}, K_RESIZE_MODE, F(eval_resize), 0, 0, "auto, crop (shorter side + centre crop) or squash (the whole image to the square)"},
    {{"resize"}, K_INT, F(resize), 16, 4096, "an integer from 16 to 4096"},
    {{"use_weighted_loss"}, K_BOOL, F(use_weighted_loss), 0, 0, "true or false (1 or 0)"},
    {{"precision_dtype"}, K_PRECISION, F(precision), 0, 0, "float32 or float16"},
    {{"checkpoint_frequency"}, K_INT, F(checkpoint_frequency), 1, 100000, "an integer >= 1"},
    {{"top_k"}, K_INT, F(top_k), 2, 1000000, "an integer >= 2"},
    {{"num_training_samples"}, K_LONG, F(num_training_samples), 1, 1e15, "a positive integer"},
    {{"use_pretrained_model"}, K_BOOL, F(use_pretrained_model), 0, 0, "0 or 1"},
    {{"kv_store"}, K_KV_STORE, F(kv_store), 0, 0, "dist_sync or dist_async"},
    {{"multi_label"}, K_MULTI_LABEL, 0, 0, 0, "0"},
    {{"num_processes", "processes_per_host"}, K_INT, F(num_processes), 0, 256, "an integer from 0 to 256 (0: one per GPU, or 1 without GPUs)"},
    {{"master_port"}, K_INT, F(master_port), 1024, 65535, "an integer from 1024 to 65535"},
    {{"dist_timeout", "collective_timeout"}, K_DOUBLE, F(dist_timeout_s), 1, 86400, "seconds, from 1 to 86400"},
    {{"profile_steps"}, K_STEP_RANGE, F(profile_steps_from), 0, 1000,
     "\"FIRST-LAST\" (steps counted from 0, at most 1000 of them), one step, or \"none\""},
    {{"gradient_norm_interval"}, K_INT, F(grad_norm_interval), 0, 1000000, "an integer >= 0 (0: off)"},
    {{"training_report"}, K_BOOL, F(training_report), 0, 0, "true or false"},
};
#undef F
#define FIELD_COUNT (sizeof fields / sizeof *fields)
_Static_assert(FIELD_COUNT <= 64, "hyperparams.given has one bit per field");

void hyperparams_default(struct hyperparams *hp)
{
    memset(hp, 0, sizeof *hp);
    snprintf(hp->model, sizeof hp->model, "resnet50");
    hp->epochs = 10;
    hp->batch_size = 32;
    hp->lr = 0.01;
    hp->momentum = 0.9;
    hp->weight_decay = 1e-4;
    hp->optimizer = OPTIMIZER_SGD;
    hp->lr_scheduler = LR_SCHEDULE_NONE;
    hp->lr_step_size = 30;
    hp->lr_gamma = 0.1;
    hp->seed = 42;
    hp->amp = -1;
    hp->device_prefetch = -1;
    hp->channels_last = -1;
    hp->tf32 = true; /* PyTorch's default for cuDNN convolutions */
    hp->validation_fraction = 0.1;
    hp->beta1 = 0.9;
    hp->beta2 = 0.999;
    hp->eps = 1e-8;
    hp->rms_gamma = 0.9;
    hp->early_stopping = -1;
    hp->early_stopping_min_epochs = -1;
    hp->min_crop_scale = 0.08;
    /* No augmentation unless asked, as the built-in algorithm and the seeds' scripts train:
     * README.md "Augmentation" has the measurements behind this default. */
    hp->augment = IMAGE_AUGMENT_NONE;
    /* Images already at image_size go in as they are (README.md "Resizing"). */
    hp->eval_resize = IMAGE_RESIZE_AUTO;
    hp->precision = -1;
    hp->checkpoint_frequency = 1;
    hp->master_port = 7777;
    hp->dist_timeout_s = 600;
    hp->profile_steps_from = 0;
    hp->profile_steps_to = -1;
    hp->grad_norm_interval = 50;
    hp->training_report = true;
}

const char *optimizer_name(enum optimizer_kind k)
{
    static const char *names[] = {"sgd", "adam", "adamw", "rmsprop", "nag"};
    return (unsigned)k < 5 ? names[k] : "sgd";
}

const char *lr_schedule_name(enum lr_schedule s)
{
    static const char *names[] = {"none", "step", "cosine", "multistep"};
    return (unsigned)s < 4 ? names[s] : "none";
}

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < FIELD_COUNT; i++)
        for (int a = 0; a < 4 && fields[i].names[a]; a++)
            if (strcmp(fields[i].names[a], key) == 0)
                return &fields[i];
    return NULL;
}

static int bad_value(const struct field *f, const char *key, const char *value)
{
    return err_set("hyperparameter %s=\"%s\" is not valid: %s expected", key, value, f->allowed);
}

static int set_field(struct hyperparams *hp, const struct field *f, const char *key, const char *v)
{
    char *base = (char *)hp + f->offset;
    hp->given |= 1ull << (f - fields);
    long long i;
    double d;
    bool b;
    switch (f->kind) {
    case K_INT:
        if (!hyperparams_parse_long(v, &i) || i < f->min || i > f->max)
            return bad_value(f, key, v);
        *(int *)base = (int)i;
        return 0;
    case K_SEED:
        if (!hyperparams_parse_long(v, &i) || i < 0)
            return bad_value(f, key, v);
        *(uint64_t *)base = (uint64_t)i;
        return 0;
    case K_DOUBLE:
        if (!hyperparams_parse_double(v, &d) || d < f->min || d > f->max)
            return bad_value(f, key, v);
        *(double *)base = d;
        return 0;
    case K_BOOL:
        if (!hyperparams_parse_bool(v, &b))
            return bad_value(f, key, v);
        *(bool *)base = b;
        return 0;
    case K_AUTO_BOOL:
        if (strcasecmp(v, "auto") == 0)
            *(int *)base = -1;
        else if (hyperparams_parse_bool(v, &b))
            *(int *)base = b;
        else
            return bad_value(f, key, v);
        return 0;
    case K_MODEL: {
        char lower[32];
        size_t n = strlen(v);
        if (n >= sizeof lower)
            n = sizeof lower - 1;
        for (size_t k = 0; k < n; k++)
            lower[k] = (char)tolower((unsigned char)v[k]);
        lower[n] = '\0';
        char names[ARCH_NAMES_MAX];
        if (!arch_find(lower))
            return err_set("hyperparameter %s=\"%s\" is not a model this image has: %s", key, v,
                           arch_names(names, sizeof names));
        snprintf(hp->model, sizeof hp->model, "%s", lower);
        return 0;
    }
    case K_NUM_LAYERS:
        if (hyperparams_parse_long(v, &i) && (i == 20 || i == 32 || i == 44 || i == 56 || i == 110 || i == 200))
            return err_set("hyperparameter %s=\"%s\": the built-in algorithm's ResNet-%lld is not "
                           "one this image has (no CIFAR-style 20/32/44/56/110 nor 200-layer "
                           "ResNet); 18, 34, 50, 101 or 152 expected, or model=lenet for small "
                           "images",
                           key, v, i);
        if (!hyperparams_parse_long(v, &i) || !(i == 18 || i == 34 || i == 50 || i == 101 || i == 152))
            return bad_value(f, key, v);
        snprintf(hp->model, sizeof hp->model, "resnet%lld", i);
        return 0;
    case K_OPTIMIZER:
        if (strcasecmp(v, "sgd") == 0)
            hp->optimizer = OPTIMIZER_SGD;
        else if (strcasecmp(v, "adam") == 0)
            hp->optimizer = OPTIMIZER_ADAM;
        else if (strcasecmp(v, "adamw") == 0)
            hp->optimizer = OPTIMIZER_ADAMW;
        else if (strcasecmp(v, "rmsprop") == 0)
            hp->optimizer = OPTIMIZER_RMSPROP;
        else if (strcasecmp(v, "nag") == 0)
            hp->optimizer = OPTIMIZER_NAG;
        else
            return bad_value(f, key, v);
        return 0;
    case K_SCHEDULE:
        if (strcasecmp(v, "none") == 0 || strcasecmp(v, "constant") == 0)
            hp->lr_scheduler = LR_SCHEDULE_NONE;
        else if (strcasecmp(v, "step") == 0)
            hp->lr_scheduler = LR_SCHEDULE_STEP;
        else if (strcasecmp(v, "cosine") == 0)
            hp->lr_scheduler = LR_SCHEDULE_COSINE;
        else if (strcasecmp(v, "multistep") == 0)
            hp->lr_scheduler = LR_SCHEDULE_MULTISTEP;
        else
            return bad_value(f, key, v);
        return 0;
    case K_IMAGE_SHAPE: {
        int c, h, w;
        char extra;
        if (sscanf(v, "%d,%d,%d%c", &c, &h, &w, &extra) != 3 || c != 3 || h != w ||
            h < f->min || h > f->max)
            return bad_value(f, key, v);
        hp->image_size = h;
        return 0;
    }
    case K_STEP_RANGE: {
        long long first, last;
        char extra;
        if (strcasecmp(v, "none") == 0 || strcasecmp(v, "off") == 0 || *v == '\0') {
            hp->profile_steps_from = 0, hp->profile_steps_to = -1;
            return 0;
        }
        int got = sscanf(v, "%lld-%lld%c", &first, &last, &extra);
        if (got == 1 && strchr(v, '-') == NULL && sscanf(v, "%lld%c", &first, &extra) == 1)
            last = first;
        else if (got != 2)
            return bad_value(f, key, v);
        if (first < 0 || last < first || last - first >= (long long)f->max)
            return bad_value(f, key, v);
        hp->profile_steps_from = first, hp->profile_steps_to = last;
        return 0;
    }
    case K_TRIBOOL:
        if (!hyperparams_parse_bool(v, &b))
            return bad_value(f, key, v);
        *(int *)base = b;
        return 0;
    case K_AUGMENT:
        if (!hyperparams_parse_bool(v, &b))
            return bad_value(f, key, v);
        hp->augment = b ? IMAGE_AUGMENT_RANDOM_RESIZED : IMAGE_AUGMENT_NONE;
        return 0;
    case K_AUG_TYPE:
        if (strcasecmp(v, "crop") == 0)
            hp->augment = IMAGE_AUGMENT_CROP;
        else if (strcasecmp(v, "crop_color") == 0)
            hp->augment = IMAGE_AUGMENT_CROP_COLOR;
        else if (strcasecmp(v, "crop_color_transform") == 0)
            hp->augment = IMAGE_AUGMENT_CROP_COLOR_TRANSFORM;
        else
            return bad_value(f, key, v);
        return 0;
    case K_LR_STEPS:
        if (!hyperparams_parse_steps(v, f->min, f->max, hp->lr_steps, &hp->lr_step_count,
                                     HP_MAX_LR_STEPS))
            return bad_value(f, key, v);
        return 0;
    case K_TRIPLE:
        if (!hyperparams_parse_triple(v, f->min, f->max, (float *)base))
            return bad_value(f, key, v);
        if (f->offset == offsetof(struct hyperparams, mean))
            hp->mean_set = true;
        else
            hp->std_set = true;
        return 0;
    case K_RESIZE_MODE:
        if (strcasecmp(v, "center_crop") == 0)
            /* Images already at image_size go in as they are (README.md "Resizing"). */
    hp->eval_resize = IMAGE_RESIZE_AUTO;
        else if (image_resize_mode_parse(v, &hp->eval_resize) < 0)
            return bad_value(f, key, v);
        return 0;
    case K_PRECISION:
        if (strcasecmp(v, "float32") == 0)
            hp->precision = 32;
        else if (strcasecmp(v, "float16") == 0)
            hp->precision = 16;
        else
            return bad_value(f, key, v);
        return 0;
    case K_LONG:
        if (!hyperparams_parse_long(v, &i) || i < f->min || i > f->max)
            return bad_value(f, key, v);
        *(long long *)base = i;
        return 0;
    case K_KV_STORE:
        if (strcasecmp(v, "dist_sync") != 0 && strcasecmp(v, "dist_async") != 0 &&
            strcasecmp(v, "local") != 0 && strcasecmp(v, "device") != 0)
            return bad_value(f, key, v);
        snprintf(hp->kv_store, sizeof hp->kv_store, "%.*s", (int)sizeof hp->kv_store - 1,
                 v); /* one of the four names above */
        return 0;
    case K_MULTI_LABEL:
        if (!hyperparams_parse_bool(v, &b))
            return bad_value(f, key, v);
        if (b)
            return err_set("hyperparameter %s=\"%s\": multi-label training (several labels per "
                           "image, sigmoid outputs) is not supported by this image; it trains one "
                           "label per image with softmax outputs. Use the built-in algorithm for "
                           "multi-label jobs, or give each image one class",
                           key, v);
        return 0;
    }
    return bad_value(f, key, v);
}

const char *hyperparams_key_name(size_t i, size_t a)
{
    if (i >= FIELD_COUNT || a >= sizeof fields[i].names / sizeof *fields[i].names)
        return NULL;
    return fields[i].names[a];
}

bool hyperparams_given(const struct hyperparams *hp, const char *key)
{
    const struct field *f = find_field(key);
    return f && (hp->given >> (f - fields) & 1);
}

int hyperparams_set(struct hyperparams *hp, const char *raw_key, const char *raw_value)
{
    char key[128], value[512];
    snprintf(key, sizeof key, "%s", raw_key); /* a longer key is none of ours: warned below */
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    if (strncmp(key, "sagemaker_", 10) == 0 || key[0] == '_')
        return 0; /* the SDK's and the tuner's own keys */
    int unwrapped = hyperparams_unwrap_value(raw_value, value, sizeof value);
    const struct field *f = strlen(raw_key) < sizeof key ? find_field(key) : NULL;
    if (!f) {
        if (unwrapped < 0)
            log_warn("unknown hyperparameter %s ignored (a value of %zu characters)", raw_key,
                     strlen(raw_value));
        else
            log_warn("unknown hyperparameter %s=\"%s\" ignored", raw_key, value);
        return 0;
    }
    if (unwrapped < 0) /* none of ours is that long: refused rather than cut */
        return err_set_reason(ERR_REASON_CONFIG, "hyperparameter %s: %s", raw_key, err_msg());
    return set_field(hp, f, raw_key, value);
}

int hyperparams_load(const char *path, struct hyperparams *hp)
{
    hyperparams_default(hp);
    FILE *probe = fopen(path, "r");
    if (!probe)
        return hyperparams_finish(hp); /* no file: every default */
    fclose(probe);
    cJSON *json;
    if (json_read_file(path, 1 << 20, &json) < 0)
        return -1;
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return err_set("%s must hold one JSON object of hyperparameters", path);
    }
    int count = 0, rc = 0;
    for (cJSON *item = json->child; item && rc == 0; item = item->next) {
        if (++count > 1000) {
            rc = err_set("%s has more than 1000 hyperparameters", path);
            break;
        }
        char number[64];
        const char *value;
        if (cJSON_IsString(item)) {
            value = item->valuestring;
        } else if (cJSON_IsNumber(item)) { /* local runs write plain numbers too */
            snprintf(number, sizeof number, "%.17g", item->valuedouble);
            value = number;
        } else if (cJSON_IsBool(item)) {
            value = cJSON_IsTrue(item) ? "true" : "false";
        } else {
            rc = err_set("hyperparameter %s in %s must be a string, got another JSON type",
                         item->string, path);
            break;
        }
        rc = hyperparams_set(hp, item->string, value);
    }
    cJSON_Delete(json);
    return rc < 0 ? rc : hyperparams_finish(hp);
}
