/*
 * model_settings.c - how the default model_fn's model is to be fed and run
 * (model_settings.h): preprocessing from the defaults, a metadata.json or the SM_MODEL_*
 * variables, and the inference settings SERVE_FOLD_BATCHNORM, SERVE_CHANNELS_LAST and
 * SERVE_PRECISION. Every value is checked; a bad one is an error naming where it came from.
 */
#define _DEFAULT_SOURCE
#include "serve/model_settings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "serve/accept.h"
#include "models/arch.h"
#include "serve/python_transforms.h"

/* A bare model.pth: ImageNet's Resize(256) + CenterCrop(224) and statistics, as torchvision's
 * scripts preprocess. LeNet takes 32x32 inputs, with ImageNet's statistics unless stated (a
 * bare LeNet state dict does not say it was trained with the CIFAR seed's 0.5). The CIFAR VGG
 * exists only in CIFAR scripts: 32x32 images as they come, and the CIFAR-10 seed's 0.5/0.5. */
void model_settings_defaults(struct serve_model *sm)
{
    const struct arch_info *a = arch_find(sm->arch);
    bool cifar_vgg = a && a->family == ARCH_VGG_CIFAR;
    sm->image_size = a ? a->default_image_size : 224;
    sm->resize_size = a && a->fixed_input_size ? a->fixed_input_size
                      : cifar_vgg             ? sm->image_size
                                              : (int)lround(sm->image_size * 8.0 / 7.0);
    sm->resize_mode = IMAGE_RESIZE_CROP;
    sm->response_shape = -1;
    memcpy(sm->mean, cifar_vgg ? a->mean : arch_imagenet_mean, sizeof sm->mean);
    memcpy(sm->std, cifar_vgg ? a->std : arch_imagenet_std, sizeof sm->std);
}

static int set_size(int *dst, double v, int lo, int hi, const char *what, const char *where)
{
    if (!(v >= lo && v <= hi) || v != (int)v)
        return err_set("%s %s is %g; it must be a whole number from %d to %d", where, what, v, lo, hi);
    *dst = (int)v;
    return 0;
}

static int set_resize_mode(struct serve_model *sm, const char *mode, const char *where)
{
    if (image_resize_mode_parse(mode, &sm->resize_mode) < 0)
        return err_set("%s resize_mode is \"%.32s\"; it must be \"crop\" (shorter side to "
                       "resize_size, then the centre image_size square), \"squash\" (the whole "
                       "image resized to image_size x image_size) or \"auto\" (as crop, but an "
                       "image already image_size on its shorter side is only centre-cropped)",
                       where, mode);
    return 0;
}

static int set_channels(float dst[3], const double v[3], bool is_std, const char *what,
                        const char *where)
{
    for (int c = 0; c < 3; c++)
        if (!isfinite(v[c]) || (is_std && !(v[c] > 0)) || fabs(v[c]) > 1000)
            return err_set("%s %s holds %g; give 3 finite numbers%s", where, what, v[c],
                           is_std ? " above 0" : "");
    for (int c = 0; c < 3; c++)
        dst[c] = (float)v[c];
    return 0;
}

/* mean or std from JSON: a list of 3 numbers, or one number for all channels. */
static int json_channels(const cJSON *j, float dst[3], bool is_std, const char *what,
                         const char *where)
{
    double v[3];
    if (cJSON_IsNumber(j)) {
        v[0] = v[1] = v[2] = j->valuedouble;
    } else if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 3) {
        for (int c = 0; c < 3; c++) {
            const cJSON *e = cJSON_GetArrayItem(j, c);
            if (!cJSON_IsNumber(e))
                return err_set("%s %s must hold numbers", where, what);
            v[c] = e->valuedouble;
        }
    } else {
        return err_set("%s %s must be a list of 3 numbers (or one number)", where, what);
    }
    return set_channels(dst, v, is_std, what, where);
}

/* "0.5,0.5,0.5", "[0.5, 0.5, 0.5]" or "0.5" */
static int env_channels(const char *name, float dst[3], bool is_std)
{
    const char *text = getenv(name);
    if (!text || !*text)
        return 0;
    double v[3];
    int n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '[' || *p == ',' || *p == '(')
            p++;
        if (!*p || *p == ']' || *p == ')')
            break;
        char *end;
        double x = strtod(p, &end);
        if (end == p || n == 3)
            return err_set("%s is \"%.64s\"; give 3 numbers separated by commas, or one", name, text);
        v[n++] = x;
        p = end;
    }
    if (n == 1)
        v[1] = v[2] = v[0];
    else if (n != 3)
        return err_set("%s is \"%.64s\"; give 3 numbers separated by commas, or one", name, text);
    return set_channels(dst, v, is_std, "", name);
}

static int env_size(const char *name, int *dst, int lo, int hi, bool *given)
{
    const char *text = getenv(name);
    if (!text || !*text)
        return 0;
    char *end;
    double v = strtod(text, &end);
    if (*end)
        return err_set("%s is \"%.32s\"; give a whole number from %d to %d", name, text, lo, hi);
    *given = true;
    return set_size(dst, v, lo, hi, "", name);
}

/* name=true|false|1|0 into *on (unset: unchanged). */
static int env_switch(const char *name, bool *on)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *on = true;
    else if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *on = false;
    else
        return err_set("%s=\"%.32s\": true or false expected", name, v);
    return 0;
}

/* name=auto|true|false into *v as -1/1/0 (unset: unchanged). */
static int env_auto_switch(const char *name, int *v)
{
    const char *text = getenv(name);
    if (text && strcasecmp(text, "auto") == 0) {
        *v = -1;
        return 0;
    }
    bool on = *v > 0;
    int rc = env_switch(name, &on);
    if (rc == 0 && text && *text)
        *v = on;
    return rc;
}

/* SERVE_PRECISION: float32 (default) or bfloat16 (the forward pass under bf16 autocast). */
static int env_precision(bool *bf16)
{
    const char *v = getenv("SERVE_PRECISION");
    if (!v || !*v || strcasecmp(v, "float32") == 0 || strcasecmp(v, "fp32") == 0)
        *bf16 = false;
    else if (strcasecmp(v, "bfloat16") == 0 || strcasecmp(v, "bf16") == 0)
        *bf16 = true;
    else
        return err_set("SERVE_PRECISION=\"%.32s\": float32 or bfloat16 expected", v);
    return 0;
}

/* The preprocessing fields of a metadata.json (all optional): image_size, resize_size, mean,
 * std, resize_mode. */
int model_settings_from_metadata(const cJSON *j, const char *path, struct serve_model *sm)
{
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "image_size");
    const cJSON *resize = cJSON_GetObjectItemCaseSensitive(j, "resize_size");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean");
    const cJSON *std = cJSON_GetObjectItemCaseSensitive(j, "std");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "resize_mode");
    if (!mode) /* the hyperparameter's own name, as some metadata.json files have it */
        mode = cJSON_GetObjectItemCaseSensitive(j, "eval_resize");
    int rc = 0;
    if (size && !cJSON_IsNumber(size))
        rc = err_set("%s image_size must be a number", path);
    else if (size && (rc = set_size(&sm->image_size, size->valuedouble, 16, 1024, "image_size", path)) == 0)
        sm->resize_size = sm->image_size; /* unless resize_size says otherwise */
    if (rc == 0 && resize && !cJSON_IsNumber(resize))
        rc = err_set("%s resize_size must be a number", path);
    else if (rc == 0 && resize)
        rc = set_size(&sm->resize_size, resize->valuedouble, 16, 4096, "resize_size", path);
    if (rc == 0 && mean)
        rc = json_channels(mean, sm->mean, false, "mean", path);
    if (rc == 0 && std)
        rc = json_channels(std, sm->std, true, "std", path);
    if (rc == 0 && mode)
        rc = cJSON_IsString(mode) ? set_resize_mode(sm, mode->valuestring, path)
                                  : err_set("%s resize_mode must be a string", path);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "response_format");
    enum serve_shape s;
    if (rc == 0 && shape &&
        (!cJSON_IsString(shape) || serve_shape_parse(shape->valuestring, strlen(shape->valuestring), &s) < 0))
        rc = err_set("%s response_format must be \"default\", \"builtin\" or \"pytorch\"", path);
    else if (rc == 0 && shape)
        sm->response_shape = (int)s;
    return rc;
}

/* "Resize((224, 224)), ToTensor, Normalize(...)": what was read, for the log. */
static void describe(const struct py_transforms *t, char *buf, size_t len)
{
    int n = 0;
    if (t->resize_h)
        n = snprintf(buf, len, "Resize((%d, %d)), ", t->resize_h, t->resize_w);
    else if (t->resize)
        n = snprintf(buf, len, "Resize(%d), ", t->resize);
    if (t->crop && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "CenterCrop(%d), ", t->crop);
    if (n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "%s, Normalize(mean=(%g, %g, %g), std=(%g, %g, %g))",
                 t->pixels_0_255 ? "PILToTensor" : "ToTensor", t->mean[0], t->mean[1],
                 t->mean[2], t->std[0], t->std[1], t->std[2]);
}

/* The handler's pipeline as serve's preprocessing; false (with a reason) where serve's
 * resize-then-square-crop cannot do what it does. */
static bool apply_transforms(const struct py_transforms *t, struct serve_model *sm, char *why,
                             size_t why_len)
{
    if (t->resize_h && t->crop && t->crop != t->resize_h) {
        snprintf(why, why_len, "a square resize followed by a smaller crop");
        return false;
    }
    if (!t->resize && !t->resize_h && t->crop) {
        snprintf(why, why_len, "a centre crop of the image at its own size, with no resize");
        return false;
    }
    if (t->resize && t->crop > t->resize) {
        snprintf(why, why_len, "a crop larger than the resize (padding)");
        return false;
    }
    if (t->resize_h) {
        sm->resize_mode = IMAGE_RESIZE_SQUASH;
        sm->image_size = sm->resize_size = t->resize_h;
    } else if (t->resize) {
        sm->resize_mode = IMAGE_RESIZE_CROP;
        sm->resize_size = t->resize;
        sm->image_size = t->crop ? t->crop : t->resize;
    }
    float scale = t->pixels_0_255 ? 255.0f : 1.0f; /* mean/std stated on 0-255 pixels */
    for (int c = 0; c < 3; c++) {
        sm->mean[c] = t->mean[c] / scale;
        sm->std[c] = t->std[c] / scale;
    }
    return true;
}

int model_settings_from_handler(const char *model_dir, struct serve_model *sm)
{
    const char *program = getenv("SAGEMAKER_PROGRAM");
    const char *base = program && *program ? strrchr(program, '/') : NULL;
    base = base ? base + 1 : program && *program ? program : "inference.py";
    size_t blen = strlen(base);
    if (blen < 4 || strcmp(base + blen - 3, ".py") != 0 || blen > 200)
        return 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/code/%s", model_dir, base) >= (int)sizeof path)
        return 0;
    char *src = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0)
        return 0; /* no such script: the defaults */
    if (fileio_read_all(path, PY_SOURCE_MAX, &src, &len) < 0) {
        log_warn("code/%s is not read (%s); serving with the architecture's defaults", base, err_msg());
        err_clear();
        return 0;
    }
    struct py_transforms t;
    char why[256], what[256];
    int found = py_transforms_find(src, len, &t, why, sizeof why);
    free(src);
    if (found && apply_transforms(&t, sm, why, sizeof why)) {
        describe(&t, what, sizeof what);
        log_info("preprocessing from code/%s, as that handler transforms its input: %s%s", base,
                 what, t.resize || t.resize_h ? "" : " (no Resize there: images go to the "
                                                     "architecture's default size)");
        if (t.resize && !t.crop)
            log_warn("code/%s resizes the shorter side to %d without a crop: the model saw "
                     "non-square images whole there, and sees their centre %dx%d here (the same "
                     "for square images)",
                     base, t.resize, t.resize, t.resize);
    } else {
        log_warn("code/%s: its preprocessing is not taken (%s); serving with the architecture's "
                 "defaults unless SM_MODEL_MEAN, SM_MODEL_STD, SM_MODEL_IMAGE_SIZE or "
                 "SM_MODEL_RESIZE_MODE say otherwise",
                 base, why);
    }
    return 0;
}

/* SM_MODEL_MEAN, SM_MODEL_STD, SM_MODEL_IMAGE_SIZE, SM_MODEL_RESIZE_SIZE, SM_MODEL_RESIZE_MODE:
 * a Python user's statement of their preprocessing, above metadata.json and the defaults. */
int model_settings_from_env(struct serve_model *sm)
{
    bool size_given = false, resize_given = false;
    int rc = env_size("SM_MODEL_IMAGE_SIZE", &sm->image_size, 16, 1024, &size_given);
    if (rc == 0 && size_given)
        sm->resize_size = sm->image_size;
    if (rc == 0)
        rc = env_size("SM_MODEL_RESIZE_SIZE", &sm->resize_size, 16, 4096, &resize_given);
    if (rc == 0)
        rc = env_channels("SM_MODEL_MEAN", sm->mean, false);
    if (rc == 0)
        rc = env_channels("SM_MODEL_STD", sm->std, true);
    const char *mode = getenv("SM_MODEL_RESIZE_MODE");
    if (rc == 0 && mode && *mode)
        rc = set_resize_mode(sm, mode, "SM_MODEL_RESIZE_MODE:");
    if (rc == 0 && sm->resize_mode != IMAGE_RESIZE_SQUASH && sm->resize_size < sm->image_size)
        rc = err_set("resize_size %d is smaller than image_size %d: the centre crop would leave "
                     "the image (use resize_mode \"squash\" to resize to the square instead)",
                     sm->resize_size, sm->image_size);
    return rc;
}

int model_settings_inference(bool *fold, int *channels_last, bool *bf16, bool *dct_scaling)
{
    int rc = env_switch("SERVE_FOLD_BATCHNORM", fold);
    if (rc == 0)
        rc = env_switch("SERVE_JPEG_DCT_SCALING", dct_scaling);
    if (rc == 0)
        rc = env_auto_switch("SERVE_CHANNELS_LAST", channels_last);
    if (rc == 0)
        rc = env_precision(bf16);
    return rc;
}
