/*
 * model_dir.c - the default model_fn: what is in /opt/ml/model becomes a ready network.
 *
 * Accepted, in this order:
 *   1. model.tar.gz inside the directory (SageMaker usually extracts it for us): extracted in
 *      place by model_archive.c before model_fn runs;
 *   2. model.pth + metadata.json as `train` writes them, or as a Python user writes it with
 *      only some fields (arch, class_names, image_size, resize_size, mean, std, resize_mode);
 *   3. a bare model.pth that a Python user saved from torchvision (or the seeds' LeNet): the
 *      architecture and class count come from SM_MODEL_ARCH / SM_NUM_CLASSES when set, or
 *      are read off the tensors' names and shapes; ImageNet preprocessing at 224 (32 and
 *      0.5/0.5 for lenet and the CIFAR VGG).
 * Preprocessing stated in SM_MODEL_MEAN, SM_MODEL_STD, SM_MODEL_IMAGE_SIZE,
 * SM_MODEL_RESIZE_SIZE and SM_MODEL_RESIZE_MODE ("crop": shorter side to resize_size, centre
 * crop; "squash": both sides to image_size; "auto": as crop, but an image already image_size on
 * its shorter side is only centre-cropped) wins over metadata.json and the defaults; those
 * settings are read and checked in model_settings.c. The batch norms are then folded, the
 * network moved to the GPU when there is one (channels-last unless said otherwise) and run
 * once (warm-up), so that /ping only says 200 for a model that has really produced an output.
 */
#define _DEFAULT_SOURCE
#include "serve/model_dir.h"
#include "serve/serve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/json_file.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "models/arch.h"
#include "serve/batcher.h"
#include "serve/model_archive.h"
#include "serve/model_settings.h"

static void set_error(struct sm_error *err, const char *msg)
{
    snprintf(err->message, sizeof err->message, "%s", msg);
}

/* Max index i such that "<prefix><i>." starts some key, or -1. */
static int max_index(const tc_state_dict *sd, const char *prefix)
{
    int best = -1;
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < tc_state_dict_size(sd); i++) {
        const char *k = tc_state_dict_name(sd, i);
        if (strncmp(k, prefix, plen) == 0) {
            int v = atoi(k + plen);
            if (v > best)
                best = v;
        }
    }
    return best;
}

/* A ResNet's fc written as nn.Sequential(nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, N)):
 * keys fc.<i>.weight / fc.<i>.bias of linear layers, whatever holds no weights between two of
 * them (a gap in the places: ReLU, Dropout) taken as ReLU, as transfer-learning scripts write
 * such heads. 0 with head->layers 0 when there is no such head; an error for a layer that is
 * not linear. */
static int sequential_head(const tc_state_dict *sd, struct model_head *head)
{
    head->layers = 0;
    for (size_t i = 0; i < tc_state_dict_size(sd); i++) {
        const char *k = tc_state_dict_name(sd, i);
        if (strncmp(k, "fc.", 3) != 0)
            continue;
        char *end;
        long index = strtol(k + 3, &end, 10);
        if (end == k + 3 || *end != '.' || index < 0 || index > 1000)
            return err_set("the classifier head has a tensor %s this image cannot place", k);
        if (strcmp(end, ".bias") == 0)
            continue;
        tc_scope *s = tc_scope_begin();
        const tc_tensor *w = tc_state_dict_get(sd, k);
        int dims = tc_dim(w);
        int64_t out = tc_size(w, 0);
        tc_scope_end(s);
        if (strcmp(end, ".weight") != 0 || dims != 2)
            return err_set("the classifier head fc is an nn.Sequential with a layer other than "
                           "nn.Linear (%s): this image serves Linear layers with ReLU (or "
                           "Dropout) between them",
                           k);
        if (head->layers == MODEL_HEAD_MAX)
            return err_set("the classifier head fc has more than %d linear layers", MODEL_HEAD_MAX);
        int at = head->layers++; /* insertion in index order */
        while (at > 0 && head->index[at - 1] > index) {
            head->index[at] = head->index[at - 1];
            head->out[at] = head->out[at - 1];
            at--;
        }
        head->index[at] = (int)index;
        head->out[at] = out;
    }
    return 0;
}

/* The architecture a torchvision (or LeNet) state dict belongs to, and its class count. */
int model_dir_infer_arch(const tc_state_dict *sd, char *arch, size_t len, int *num_classes,
                         struct model_head *fc_head)
{
    const char *head = NULL;
    struct model_head sequential = {0};
    if (fc_head)
        fc_head->layers = 0;
    if (!tc_state_dict_has(sd, "fc.weight") && tc_state_dict_has(sd, "layer1.0.conv1.weight") &&
        sequential_head(sd, &sequential) < 0)
        return -1;
    if (tc_state_dict_has(sd, "fc3.weight") && tc_state_dict_has(sd, "conv2.weight")) {
        snprintf(arch, len, "lenet");
        head = "fc3.weight";
    } else if ((tc_state_dict_has(sd, "fc.weight") || sequential.layers > 0) &&
               tc_state_dict_has(sd, "layer1.0.conv1.weight")) {
        int blocks[4];
        for (int l = 0; l < 4; l++) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "layer%d.", l + 1);
            blocks[l] = max_index(sd, prefix) + 1;
        }
        bool bottleneck = tc_state_dict_has(sd, "layer1.0.conv3.weight");
        int depth = !bottleneck && blocks[1] == 2 ? 18 : !bottleneck ? 34
                  : blocks[2] == 6 ? 50 : blocks[2] == 23 ? 101 : 152;
        snprintf(arch, len, "resnet%d", depth);
        head = "fc.weight";
        if (sequential.layers > 0) {
            *num_classes = (int)sequential.out[sequential.layers - 1];
            if (fc_head)
                *fc_head = sequential;
            return 0;
        }
    } else if ((tc_state_dict_has(sd, "classifier.6.weight") ||
                (tc_state_dict_has(sd, "classifier.weight") && tc_state_dict_has(sd, "features.1.running_mean"))) &&
               tc_state_dict_has(sd, "features.0.weight")) {
        /* torchvision's VGG (classifier.{0,3,6}), or the CIFAR VGG of PyTorch CIFAR scripts
         * (batch norm, one Linear(512) named classifier). */
        int convs = 0;
        for (size_t i = 0; i < tc_state_dict_size(sd); i++) {
            const char *k = tc_state_dict_name(sd, i);
            size_t n = strlen(k);
            if (strncmp(k, "features.", 9) == 0 && n > 7 && strcmp(k + n - 7, ".weight") == 0) {
                char key[128];
                snprintf(key, sizeof key, "%.*s.running_mean", (int)(n - 7), k);
                convs += !tc_state_dict_has(sd, key); /* batch norm weights have running stats */
            }
        }
        int depth = convs == 8 ? 11 : convs == 10 ? 13 : convs == 13 ? 16 : 19;
        bool cifar = !tc_state_dict_has(sd, "classifier.6.weight");
        snprintf(arch, len, "vgg%d%s", depth,
                 cifar ? "_cifar" : tc_state_dict_has(sd, "features.1.running_mean") ? "_bn" : "");
        head = cifar ? "classifier.weight" : "classifier.6.weight";
    } else if (tc_state_dict_has(sd, "layer1.0.conv1.weight") || tc_state_dict_has(sd, "features.0.weight")) {
        /* A torchvision backbone under a head that is neither torchvision's nor a Sequential
         * of linear layers. */
        bool resnet = tc_state_dict_has(sd, "layer1.0.conv1.weight");
        return err_set("this state dict has a torchvision %s but not its head (no %s): a head "
                       "of another shape is not an architecture this image serves, and "
                       "SM_MODEL_ARCH cannot change that; train the model with this image's "
                       "train%s",
                       resnet ? "ResNet backbone (layer1.*)" : "VGG feature stack (features.*)",
                       resnet ? "fc.weight" : "classifier.6.weight",
                       resnet ? ", or save it with fc = one nn.Linear or an nn.Sequential of "
                                "them" : "");
    } else {
        return err_set("cannot tell the architecture of this state dict (no fc.weight with "
                       "layer1.*, classifier.6.weight or classifier.weight with features.*, or "
                       "fc3.weight): set "
                       "SM_MODEL_ARCH");
    }
    tc_scope *s = tc_scope_begin();
    *num_classes = (int)tc_size(tc_state_dict_get(sd, head), 0);
    tc_scope_end(s);
    return 0;
}

static int index_class_names(struct serve_model *sm)
{
    sm->class_names = calloc((size_t)sm->num_classes + 1, sizeof *sm->class_names);
    for (int i = 0; sm->class_names && i < sm->num_classes; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        if (!(sm->class_names[i] = strdup(n)))
            return err_set("out of memory");
    }
    return sm->class_names ? 0 : err_set("out of memory");
}

/* Architecture and class count from SM_MODEL_ARCH / SM_NUM_CLASSES, or read off the state
 * dict's tensors. */
static int arch_from_env_or_tensors(const tc_state_dict *sd, struct serve_model *sm)
{
    const char *arch = getenv("SM_MODEL_ARCH"), *classes = getenv("SM_NUM_CLASSES");
    int rc = model_dir_infer_arch(sd, sm->arch, sizeof sm->arch, &sm->num_classes, &sm->head);
    if (arch && *arch)
        snprintf(sm->arch, sizeof sm->arch, "%s", arch);
    if (classes && *classes)
        sm->num_classes = atoi(classes);
    if (rc < 0 && arch && *arch && classes && *classes)
        rc = 0; /* the variables suffice */
    if (rc == 0 && (sm->num_classes < 1 || sm->num_classes > 100000))
        rc = err_set("the model has %d classes; SM_NUM_CLASSES must be 1 to 100000", sm->num_classes);
    return rc;
}

/* A metadata.json: `train` writes every field; a Python user may write only some (see the
 * README): arch and class_names are then read off the tensors, preprocessing defaults to
 * the architecture's. */
static int read_metadata(const char *path, const tc_state_dict *sd, struct serve_model *sm)
{
    cJSON *j;
    if (json_read_file(path, 16 << 20, &j) < 0)
        return -1;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "arch");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "class_names");
    int rc = 0;
    if (!cJSON_IsObject(j))
        rc = err_set("%s must hold a JSON object", path);
    else if ((arch && !cJSON_IsString(arch)) || (names && !cJSON_IsArray(names)))
        rc = err_set("%s: arch must be a string and class_names a list", path);
    else if (arch)
        snprintf(sm->arch, sizeof sm->arch, "%s", arch->valuestring);
    else
        rc = arch_from_env_or_tensors(sd, sm);
    if (rc == 0 && arch) {
        /* The tensors say the class count (unless class_names does) and a Sequential head,
         * whatever the file states. */
        char inferred[32];
        int counted = 0;
        int inferred_rc = model_dir_infer_arch(sd, inferred, sizeof inferred, &counted, &sm->head);
        if (names && inferred_rc < 0)
            err_clear(); /* the file's arch and class_names suffice */
        else if (!names && (rc = inferred_rc) == 0)
            sm->num_classes = counted;
    }
    if (rc == 0 && names) {
        sm->num_classes = cJSON_GetArraySize(names);
        if (sm->num_classes < 1)
            rc = err_set("%s class_names is empty", path);
    }
    if (rc == 0) {
        model_settings_defaults(sm);
        rc = model_settings_from_metadata(j, path, sm);
    }
    if (rc == 0 && names) {
        sm->class_names = calloc((size_t)sm->num_classes + 1, sizeof *sm->class_names);
        for (int i = 0; sm->class_names && i < sm->num_classes; i++) {
            const cJSON *n = cJSON_GetArrayItem(names, i);
            sm->class_names[i] = strdup(cJSON_IsString(n) ? n->valuestring : "");
            if (!sm->class_names[i])
                rc = err_set("out of memory");
        }
        if (!sm->class_names)
            rc = err_set("out of memory");
    } else if (rc == 0) {
        rc = index_class_names(sm);
    }
    cJSON_Delete(j);
    return rc;
}

/* torch.save(nn.DataParallel(net).state_dict()), as the CIFAR-10 seed's script saves on a
 * multi-GPU host, names every key "module.<name>": the same tensors under their plain names,
 * so that the architecture is read off them (model_load.c strips the prefix too). sd is
 * returned when its keys are not all prefixed; otherwise it is freed. */
static tc_state_dict *without_module_prefix(tc_state_dict *sd)
{
    static const char prefix[] = "module.";
    size_t n = tc_state_dict_size(sd);
    for (size_t i = 0; i < n; i++)
        if (strncmp(tc_state_dict_name(sd, i), prefix, sizeof prefix - 1) != 0)
            return sd;
    tc_state_dict *plain = n ? tc_state_dict_new() : NULL;
    if (!plain)
        return sd;
    tc_scope *s = tc_scope_begin();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tc_tensor *t = tc_state_dict_at(sd, i);
        rc = t ? tc_state_dict_set(plain, tc_state_dict_name(sd, i) + sizeof prefix - 1, t) : -1;
    }
    tc_scope_end(s);
    if (rc < 0) {
        tc_state_dict_free(plain);
        return sd;
    }
    log_info("model.pth was saved from nn.DataParallel: its \"module.\" key prefix is dropped");
    tc_state_dict_free(sd);
    return plain;
}

static int load(const char *dir, struct serve_model *sm)
{
    char pth[4096], meta[4096];
    if (opt_ml_join(pth, sizeof pth, dir, "model.pth") < 0 ||
        opt_ml_join(meta, sizeof meta, dir, "metadata.json") < 0 || model_archive_prepare(dir) < 0)
        return -1;
    if (access(pth, F_OK) != 0)
        return err_set("no model.pth in %s (nor a model.tar.gz holding one)", dir);
    tc_state_dict *sd = tc_state_dict_load(pth);
    if (!sd)
        return err_set("loading %s: %s", pth, tc_last_error());
    sd = without_module_prefix(sd);
    int rc = 0;
    bool has_metadata = access(meta, F_OK) == 0;
    if (has_metadata) {
        rc = read_metadata(meta, sd, sm);
    } else {
        rc = arch_from_env_or_tensors(sd, sm);
        if (rc == 0) {
            model_settings_defaults(sm);
            rc = model_settings_from_handler(dir, sm);
        }
        if (rc == 0)
            rc = index_class_names(sm);
    }
    if (rc == 0)
        rc = model_settings_from_env(sm);
    if (rc == 0)
        log_info("%s: serving %s with %d classes; preprocessing: %s to %d (resize %d), mean "
                 "%g,%g,%g, std %g,%g,%g",
                 has_metadata ? "metadata.json" : "no metadata.json", sm->arch, sm->num_classes,
                 image_resize_mode_name(sm->resize_mode), sm->image_size, sm->resize_size, sm->mean[0],
                 sm->mean[1], sm->mean[2], sm->std[0], sm->std[1], sm->std[2]);
    if (rc == 0)
        rc = model_create_with_head(sm->arch, sm->num_classes, &sm->head, &sm->net);
    if (rc == 0 && sm->head.layers > 0) {
        char layers[256];
        log_info("classifier head: fc = nn.Sequential of %s (what holds no weights between two "
                 "linear layers, ReLU or Dropout, is applied as ReLU; other activations are not "
                 "told apart by a state dict)",
                 model_head_describe(sm->net, layers, sizeof layers));
    }
    if (rc == 0 && model_load_state_dict(sm->net, sd, NULL, NULL) < 0)
        rc = err_prefix("%s: ", pth);
    tc_state_dict_free(sd);
    return rc;
}

/* x on the host -> logits. From the batcher's page-locked staging memory the copy to the GPU
 * does not hold the host up; reading the logits back waits for it with the forward pass. */
tc_tensor *serve_model_forward(const struct serve_model *sm, const tc_tensor *x)
{
    if (sm->device.type == TC_CUDA)
        x = tc_to_device_nonblocking(x, sm->device);
    if (sm->channels_last)
        x = tc_to_channels_last(x);
    if (!sm->bf16)
        return model_forward(sm->net, x, false);
    if (tc_autocast_begin(sm->device.type, TC_BFLOAT16) < 0)
        return NULL;
    tc_tensor *logits = model_forward(sm->net, x, false);
    tc_autocast_end(sm->device.type);
    return tc_to_dtype(logits, TC_FLOAT32);
}

/* One forward pass of n blank images. */
static int warm_up_batch(struct serve_model *sm, int64_t n)
{
    tc_scope *s = tc_scope_begin();
    int64_t shape[4] = {n, 3, sm->image_size, sm->image_size};
    tc_tensor *x = tc_zeros(shape, 4, TC_FLOAT32, tc_device_cpu());
    tc_tensor *y = tc_softmax(serve_model_forward(sm, x), 1);
    int rc = tc_numel(y) == n * sm->num_classes
                 ? 0
                 : err_set("warm-up forward pass of %lld image(s) failed: %s", (long long)n,
                           tc_last_error());
    tc_scope_end(s);
    return rc;
}

/* The first forward pass proves the model runs: its failure is the model's. On a GPU,
 * cuDNN's benchmark mode picks its kernels per input shape on first sight, so the batch sizes
 * the batcher forms (1 to SERVE_MAX_BATCH, at most WARM_UP_MAX_SIZES of them) are run once
 * now and no request pays for that choice; one that fails (out of GPU memory, say) only
 * ends the warm-up, with a warning. A single request of more images than SERVE_MAX_BATCH is
 * a batch of its own and still meets its size first when it comes. On the CPU the kernels do
 * not depend on the batch size: one image suffices. */
#define WARM_UP_MAX_SIZES 64
static int warm_up(struct serve_model *sm)
{
    bool grad_was = tc_set_grad_enabled(false);
    int sizes = sm->device.type == TC_CUDA ? batcher_max_batch_from_env() : 1;
    if (sizes > WARM_UP_MAX_SIZES)
        sizes = WARM_UP_MAX_SIZES;
    double t0 = clock_now_s();
    int rc = warm_up_batch(sm, 1), n = 2;
    for (; rc == 0 && n <= sizes; n++)
        if (warm_up_batch(sm, n) < 0) {
            log_warn("warm-up stopped at batch size %d: %s", n, err_msg());
            break;
        }
    if (rc == 0 && sizes > 1)
        log_info("%s: warmed up batch sizes 1 to %d in %.1f s", sm->device_name, n - 1,
                 clock_now_s() - t0);
    tc_set_grad_enabled(grad_was);
    return rc;
}

static _Thread_local struct serve_model *last_made;

struct serve_model *serve_model_fn_take_last(void)
{
    struct serve_model *sm = last_made;
    last_made = NULL;
    return sm;
}

int serve_model_fn(const char *model_dir, struct sm_context *ctx, struct sm_error *err)
{
    struct serve_model *sm = calloc(1, sizeof *sm);
    if (!sm) {
        set_error(err, "out of memory");
        return 500;
    }
    int rc = load(model_dir, sm);
    bool fold = true, dct_scaling = false;
    int channels_last = -1;
    if (rc == 0)
        rc = model_settings_inference(&fold, &channels_last, &sm->bf16, &dct_scaling);
    if (rc == 0 && fold)
        rc = model_fold_batchnorm(sm->net);
    if (rc == 0) {
        /* The replica's GPU (ctx->device_index, set by the caller), wrapped onto those here. */
        int gpus = tc_cuda_device_count();
        sm->device = gpus > 0 ? tc_device_cuda(((ctx->device_index % gpus) + gpus) % gpus)
                              : tc_device_cpu();
        if (sm->device.type == TC_CUDA)
            snprintf(sm->device_name, sizeof sm->device_name, "cuda:%d", sm->device.index);
        else
            snprintf(sm->device_name, sizeof sm->device_name, "cpu");
        /* Measured in README.md "Serving speed": channels-last is faster for ResNet on
         * oneDNN and cuDNN; LeNet's 32x32 inputs gain nothing from the conversions. */
        sm->channels_last = channels_last >= 0 ? channels_last
                                               : sm->device.type == TC_CUDA || !sm->net->fixed_input_size;
        rc = model_to(sm->net, sm->device, sm->channels_last);
        if (rc == 0)
            log_info("inference on %s: %s, batch norms %s, %s, JPEGs decoded %s "
                     "(SERVE_PRECISION, SERVE_FOLD_BATCHNORM, SERVE_CHANNELS_LAST, "
                     "SERVE_JPEG_DCT_SCALING)",
                     sm->device_name, sm->bf16 ? "bfloat16 autocast" : "float32",
                     sm->net->folded ? "folded into the convolutions" : "as trained",
                     sm->channels_last ? "channels-last" : "NCHW",
                     dct_scaling ? "at the smallest DCT scale the resize allows"
                                 : "at full size, as Pillow decodes them");
    }
    if (rc == 0)
        rc = warm_up(sm);
    if (rc < 0) {
        set_error(err, err_msg());
        serve_model_free(sm);
        return 500;
    }
    ctx->model = sm;
    last_made = sm;
    ctx->class_names = (const char *const *)sm->class_names;
    ctx->num_classes = sm->num_classes;
    ctx->image_size = sm->image_size;
    ctx->resize_size = sm->resize_size;
    ctx->resize_mode = (int)sm->resize_mode;
    ctx->squash = sm->resize_mode == IMAGE_RESIZE_SQUASH;
    ctx->jpeg_dct_scaling = dct_scaling;
    memcpy(ctx->mean, sm->mean, sizeof ctx->mean);
    memcpy(ctx->std, sm->std, sizeof ctx->std);
    return 0;
}

void serve_model_free(struct serve_model *sm)
{
    if (!sm)
        return;
    model_free(sm->net);
    for (int i = 0; sm->class_names && i < sm->num_classes; i++)
        free(sm->class_names[i]);
    free(sm->class_names);
    free(sm);
}
