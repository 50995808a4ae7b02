/*
 * hyperparams.c - parsing and validating hyperparameters.json (see hyperparams.h).
 * One table lists every key with its aliases, type, range and help text, so the parser, the
 * error messages and the README's table cannot drift apart.
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
#include "models/model.h"

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
    K_IGNORED,     /* known, accepted, unused (said once in the log) */
    K_STEP_RANGE,  /* "5-10", "7" or "none": steps to trace */
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
    {{"optimizer"}, K_OPTIMIZER, F(optimizer), 0, 0, "sgd, adam or adamw"},
    {{"lr_scheduler", "scheduler"}, K_SCHEDULE, F(lr_scheduler), 0, 0, "none, step or cosine"},
    {{"lr_step_size", "lr_scheduler_step_size"}, K_INT, F(lr_step_size), 1, 100000, "an integer >= 1"},
    {{"lr_gamma", "lr_scheduler_factor"}, K_DOUBLE, F(lr_gamma), 1e-6, 1, "a number in (0, 1]"},
    {{"warmup_epochs"}, K_INT, F(warmup_epochs), 0, 100000, "an integer >= 0"},
    {{"label_smoothing"}, K_DOUBLE, F(label_smoothing), 0, 0.999, "a number in [0, 1)"},
    {{"image_size", "input_size"}, K_INT, F(image_size), 16, 1024, "an integer from 16 to 1024"},
    {{"image_shape"}, K_IMAGE_SHAPE, F(image_size), 16, 1024, "\"3,H,W\" with H == W, 16 to 1024"},
    {{"num_layers"}, K_NUM_LAYERS, F(model), 0, 0, "18, 34, 50, 101 or 152"},
    {{"freeze_backbone", "feature_extract"}, K_BOOL, F(freeze_backbone), 0, 0, "true or false"},
    {{"seed", "random_seed"}, K_SEED, F(seed), 0, 0, "an integer >= 0"},
    {{"num_workers", "workers"}, K_INT, F(num_workers), 0, 256, "an integer from 0 to 256"},
    {{"early_stopping_patience"}, K_INT, F(early_stopping_patience), 0, 100000, "an integer >= 0"},
    {{"amp", "bf16"}, K_AUTO_BOOL, F(amp), 0, 0, "auto, true or false"},
    {{"channels_last"}, K_AUTO_BOOL, F(channels_last), 0, 0, "auto, true or false"},
    {{"tf32", "allow_tf32"}, K_BOOL, F(tf32), 0, 0, "true or false"},
    {{"validation_fraction", "val_fraction"}, K_DOUBLE, F(validation_fraction), 0.001, 0.9, "a number in [0.001, 0.9]"},
    {{"min_crop_scale"}, K_DOUBLE, F(min_crop_scale), 0.01, 1, "a number in [0.01, 1]"},
    {{"augment", "augmentation"}, K_BOOL, F(augment), 0, 0, "true or false"},
    {{"num_processes", "processes_per_host"}, K_INT, F(num_processes), 0, 256, "an integer from 0 to 256 (0: one per GPU, or 1 without GPUs)"},
    {{"master_port"}, K_INT, F(master_port), 1024, 65535, "an integer from 1024 to 65535"},
    {{"dist_timeout", "collective_timeout"}, K_DOUBLE, F(dist_timeout_s), 1, 86400, "seconds, from 1 to 86400"},
    {{"profile_steps"}, K_STEP_RANGE, F(profile_steps_from), 0, 1000,
     "\"FIRST-LAST\" (steps counted from 0, at most 1000 of them), one step, or \"none\""},
    {{"gradient_norm_interval"}, K_INT, F(grad_norm_interval), 0, 1000000, "an integer >= 0 (0: off)"},
    {{"training_report"}, K_BOOL, F(training_report), 0, 0, "true or false"},
    {{"num_training_samples", "use_pretrained_model", "augmentation_type", "early_stopping"},
     K_IGNORED, 0, 0, 0, NULL},
};
#undef F
#define FIELD_COUNT (sizeof fields / sizeof *fields)

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
    hp->channels_last = -1;
    hp->tf32 = true; /* PyTorch's default for cuDNN convolutions */
    hp->validation_fraction = 0.1;
    hp->min_crop_scale = 0.08;
    hp->augment = true;
    hp->master_port = 7777;
    hp->dist_timeout_s = 600;
    hp->profile_steps_from = 0;
    hp->profile_steps_to = -1;
    hp->grad_norm_interval = 50;
    hp->training_report = true;
}

const char *optimizer_name(enum optimizer_kind k)
{
    return k == OPTIMIZER_ADAM ? "adam" : k == OPTIMIZER_ADAMW ? "adamw" : "sgd";
}

const char *lr_schedule_name(enum lr_schedule s)
{
    return s == LR_SCHEDULE_STEP ? "step" : s == LR_SCHEDULE_COSINE ? "cosine" : "none";
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

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

static bool parse_long(const char *v, long long *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end); /* "32.0" happens; "3e2" too */
    if (*v == '\0' || *end != '\0' || errno || !isfinite(d) || d != floor(d) || fabs(d) > 9e15)
        return false;
    *out = (long long)d;
    return true;
}

static bool parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return *v != '\0' && *end == '\0' && !errno && isfinite(*out);
}

static int set_field(struct hyperparams *hp, const struct field *f, const char *key, const char *v)
{
    char *base = (char *)hp + f->offset;
    long long i;
    double d;
    bool b;
    switch (f->kind) {
    case K_INT:
        if (!parse_long(v, &i) || i < f->min || i > f->max)
            return bad_value(f, key, v);
        *(int *)base = (int)i;
        return 0;
    case K_SEED:
        if (!parse_long(v, &i) || i < 0)
            return bad_value(f, key, v);
        *(uint64_t *)base = (uint64_t)i;
        return 0;
    case K_DOUBLE:
        if (!parse_double(v, &d) || d < f->min || d > f->max)
            return bad_value(f, key, v);
        *(double *)base = d;
        return 0;
    case K_BOOL:
        if (!parse_bool(v, &b))
            return bad_value(f, key, v);
        *(bool *)base = b;
        return 0;
    case K_AUTO_BOOL:
        if (strcasecmp(v, "auto") == 0)
            *(int *)base = -1;
        else if (parse_bool(v, &b))
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
        if (!model_arch_known(lower))
            return err_set("hyperparameter %s=\"%s\" is not a model this image has: resnet18, "
                           "resnet34, resnet50, resnet101, resnet152, vgg11, vgg13, vgg16, vgg19 "
                           "(each also as _bn), lenet",
                           key, v);
        snprintf(hp->model, sizeof hp->model, "%s", lower);
        return 0;
    }
    case K_NUM_LAYERS:
        if (!parse_long(v, &i) || !(i == 18 || i == 34 || i == 50 || i == 101 || i == 152))
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
    case K_IGNORED:
        log_info("hyperparameter %s=\"%s\" is accepted for compatibility and not used", key, v);
        return 0;
    }
    return bad_value(f, key, v);
}

/* "\"256\"" -> "256": the SDK JSON-encodes values that are already strings. */
static void unwrap_value(const char *raw, char *out, size_t len)
{
    while (isspace((unsigned char)*raw))
        raw++;
    snprintf(out, len, "%s", raw);
    size_t n = strlen(out);
    while (n && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    if (n >= 2 && out[0] == '"' && out[n - 1] == '"') {
        cJSON *s = cJSON_Parse(out);
        if (s && cJSON_IsString(s))
            snprintf(out, len, "%s", s->valuestring);
        cJSON_Delete(s);
    }
}

int hyperparams_set(struct hyperparams *hp, const char *raw_key, const char *raw_value)
{
    char key[128], value[512];
    snprintf(key, sizeof key, "%s", raw_key);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    if (strncmp(key, "sagemaker_", 10) == 0 || key[0] == '_')
        return 0; /* the SDK's and the tuner's own keys */
    unwrap_value(raw_value, value, sizeof value);
    const struct field *f = find_field(key);
    if (!f) {
        log_warn("unknown hyperparameter %s=\"%s\" ignored", raw_key, value);
        return 0;
    }
    return set_field(hp, f, raw_key, value);
}

int hyperparams_load(const char *path, struct hyperparams *hp)
{
    hyperparams_default(hp);
    FILE *probe = fopen(path, "r");
    if (!probe)
        return 0; /* no file: every default */
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
    return rc;
}
