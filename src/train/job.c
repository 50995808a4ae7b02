/*
 * job.c - setting up a training job from /opt/ml: hyperparameters, hosts, channels and their
 * datasets, the model (optionally from pretrained weights), the device and the optimizer.
 * Every check that can fail does so here, before the first training step.
 */
#define _DEFAULT_SOURCE
#include "train/job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "common/json_file.h"
#include "common/log.h"
#include "models/arch.h"
#include "train/distributed.h"

/* Stated image sizes for which the default model is the CIFAR VGG rather than ResNet-50: it
 * takes any side from 32 up (its five poolings are averaged), and small images are what it
 * is for. */
#define SMALL_IMAGE_MIN 32
#define SMALL_IMAGE_MAX 64


/* resourceconfig.json and the launcher's layout: which host and rank this process is. */
static int read_layout(struct train_job *job)
{
    if (cluster_read(job->config.paths.config_dir, &job->cluster) < 0)
        return -1;
    snprintf(job->host, sizeof job->host, "%s", job->cluster.current_host);
    struct worker_layout *w = &job->layout;
    if (w->world_size < 1) { /* not started by the launcher: the only process */
        if (job->cluster.host_count > 1)
            return err_set("resourceconfig.json lists %d hosts, but this process was started "
                           "without a launcher layout", job->cluster.host_count);
        w->world_size = w->local_world_size = 1;
        w->rank = w->local_rank = 0;
    }
    return 0;
}

/* checkpointconfig.json's LocalPath, when checkpointing is configured. */
static int read_checkpoint_config(struct train_job *job)
{
    char path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_join(path, sizeof path, job->config.paths.config_dir, "checkpointconfig.json") < 0)
        return -1;
    if (access(path, F_OK) != 0)
        return 0;
    cJSON *cfg;
    if (json_read_file(path, 1 << 20, &cfg) < 0)
        return -1;
    const cJSON *local = cJSON_GetObjectItemCaseSensitive(cfg, "LocalPath");
    int rc = 0;
    if (cJSON_IsString(local) && local->valuestring[0] &&
        opt_ml_copy(job->config.paths.checkpoint_dir, sizeof job->config.paths.checkpoint_dir,
                    local->valuestring) < 0)
        rc = err_prefix("%s, LocalPath: ", path);
    cJSON_Delete(cfg);
    return rc;
}

/* Image files of a channel that the Python scripts' ImageFolder read and this image skips. */
static void warn_ignored(const struct dataset *d, const char *channel)
{
    if (d->ignored_images)
        log_warn("%s channel: %zu image file(s) in formats this image does not read (BMP, GIF, "
                 "TIFF, WebP, PPM/PGM; only JPEG and PNG) left out, such as %s; torchvision's "
                 "ImageFolder would have read them: convert them to JPEG or PNG",
                 channel, d->ignored_images, d->ignored_example);
}

static int open_datasets(struct train_job *job)
{
    const struct channel_set *ch = &job->config.channels;
    if (dataset_open(ch->train, ch->train_lst[0] ? ch->train_lst : NULL, NULL, 0, &job->train) < 0)
        return err_prefix("train channel: ");
    log_info("train channel: %zu images in %d classes (%s)", job->train.count,
             job->train.num_classes, job->train.format);
    warn_ignored(&job->train, "train");
    if (ch->validation[0]) {
        if (dataset_open(ch->validation, ch->validation_lst[0] ? ch->validation_lst : NULL,
                         job->train.class_names, job->train.num_classes, &job->val) < 0)
            return err_prefix("validation channel: ");
        warn_ignored(&job->val, "validation");
        snprintf(job->val_source, sizeof job->val_source, "the validation channel");
    } else {
        struct dataset all = job->train;
        if (dataset_split(&all, job->config.hp.validation_fraction, job->config.hp.seed,
                          &job->train, &job->val) < 0) {
            job->train = all;
            return err_prefix("no validation channel, and ");
        }
        dataset_free(&all);
        snprintf(job->val_source, sizeof job->val_source, "%.0f%% held out of train (no validation channel)",
                 job->config.hp.validation_fraction * 100);
    }
    log_info("validation: %zu images from %s", job->val.count, job->val_source);
    if (ch->test[0]) {
        if (dataset_open(ch->test, ch->test_lst[0] ? ch->test_lst : NULL, job->train.class_names,
                         job->train.num_classes, &job->test) < 0)
            return err_prefix("test channel: ");
        job->has_test = true;
        log_info("test channel: %zu images", job->test.count);
        warn_ignored(&job->test, "test");
    }
    return 0;
}

static int load_pretrained(struct train_job *job)
{
    char file[OPT_ML_PATH_MAX * 2];
    if (!job->config.channels.pretrained[0])
        return 0;
    if (channels_pretrained_file(job->config.channels.pretrained, file, sizeof file) < 0)
        return -1;
    if (!file[0])
        return err_set("the pretrained channel %s holds no .pth or .pt file",
                       job->config.channels.pretrained);
    struct model_load_options opts = {.skip_mismatched_head = true};
    struct model_load_report report;
    if (model_load_file(job->model, file, &opts, &report) < 0)
        return err_prefix("pretrained channel: ");
    log_info("started from %s: %zu tensors loaded%s%s", file, report.loaded,
             report.head_skipped ? "; classifier head re-initialised (class count differs)" : "",
             report.stripped_module_prefix ? "; \"module.\" prefix removed" : "");
    return 0;
}

/* Resize, normalisation and augmentation: from the hyperparameters, else the defaults, said
 * in one line with the reason. */
static int preprocessing(struct train_job *job, const struct arch_info *arch)
{
    struct train_config *cfg = &job->config;
    const struct hyperparams *hp = &cfg->hp;
    cfg->resize_mode = hp->eval_resize;
    /* An explicit resize is the built-in algorithm's "shorter side after resizing": for every
     * image, including those already at image_size. */
    if (hp->resize && cfg->resize_mode == IMAGE_RESIZE_AUTO)
        cfg->resize_mode = IMAGE_RESIZE_CROP;
    /* 224 -> 256 */
    cfg->resize_size = hp->resize ? hp->resize : (int)lround(cfg->image_size * 8.0 / 7.0);
    if (hp->resize && hp->resize < cfg->image_size)
        return err_set("hyperparameter resize=%d is smaller than the %dx%d input: it must be at "
                       "least image_size",
                       hp->resize, cfg->image_size, cfg->image_size);
    const char *why;
    if (hp->mean_set || hp->std_set)
        why = "from the mean/std hyperparameters";
    else if (arch->mean != arch_imagenet_mean)
        why = "the CIFAR networks' default, as the CIFAR-10 seed's Normalize(0.5, 0.5)";
    else
        why = "ImageNet statistics, what torchvision's pretrained weights expect";
    memcpy(cfg->mean, hp->mean_set ? hp->mean : arch->mean, sizeof cfg->mean);
    memcpy(cfg->std, hp->std_set ? hp->std : arch->std, sizeof cfg->std);
    const char *aug_why = hp->augment == IMAGE_AUGMENT_NONE
                              ? "the default, as the built-in algorithm without augmentation_type "
                                "and the seeds' scripts train; augmentation_type or augment=true "
                                "turn it on"
                          : hyperparams_given(hp, "augmentation_type") ? "augmentation_type"
                                                                        : "augment=true";
    char resize[160];
    int size = cfg->image_size;
    if (cfg->resize_mode == IMAGE_RESIZE_SQUASH)
        snprintf(resize, sizeof resize, "squash: the whole image to %dx%d", size, size);
    else if (cfg->resize_mode == IMAGE_RESIZE_AUTO)
        snprintf(resize, sizeof resize, "auto: images %d px on the shorter side as they are, "
                 "others that side to %d, then the centre %dx%d",
                 size, cfg->resize_size, size, size);
    else
        snprintf(resize, sizeof resize, "crop: the shorter side to %d, then the centre %dx%d",
                 cfg->resize_size, size, size);
    log_info("preprocessing: augmentation %s (%s); normalisation mean (%g, %g, %g) std (%g, %g, "
             "%g) (%s); resize %s",
             image_augment_name(hp->augment), aug_why, cfg->mean[0], cfg->mean[1], cfg->mean[2],
             cfg->std[0], cfg->std[1], cfg->std[2], why, resize);
    return 0;
}

/* The built-in algorithm's settings that depend on the data or the channels. */
static int check_builtin_settings(struct train_job *job, int classes)
{
    const struct hyperparams *hp = &job->config.hp;
    if (hp->use_pretrained_model && !job->config.channels.pretrained[0])
        return err_set("hyperparameter use_pretrained_model=1: this image downloads nothing. Save "
                       "torchvision's weights (torchvision.models.%s(weights=\"DEFAULT\")."
                       "state_dict(), with torch.save) to a model.pth and pass it as the "
                       "\"pretrained\" channel; the classifier head is re-initialised as the "
                       "built-in algorithm does",
                       hp->model);
    if (hp->num_training_samples) {
        size_t total = job->train.count + (job->config.channels.validation[0] ? 0 : job->val.count);
        if ((size_t)hp->num_training_samples != total)
            log_warn("hyperparameter num_training_samples=%lld, but the train channel holds %zu "
                     "images: training uses the %zu images found (the schedule counts epochs, "
                     "not samples)",
                     hp->num_training_samples, total, total);
    }
    if (hp->top_k > classes)
        return err_set("hyperparameter top_k=%d is more than the %d classes", hp->top_k, classes);
    return 0;
}

/* use_weighted_loss: each class weighs total / (classes * its count), as sklearn's
 * "balanced" weights; a class without training images gets weight 0. */
static int make_class_weights(struct train_job *job, int classes)
{
    if (!job->config.hp.use_weighted_loss)
        return 0;
    float *w = calloc((size_t)classes, sizeof *w);
    size_t *count = calloc((size_t)classes, sizeof *count);
    if (!w || !count) {
        free(w);
        free(count);
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory for class weights");
    }
    for (size_t i = 0; i < job->train.count; i++)
        if (job->train.items[i].label >= 0 && job->train.items[i].label < classes)
            count[job->train.items[i].label]++;
    float lo = 0, hi = 0;
    for (int c = 0; c < classes; c++) {
        w[c] = count[c] ? (float)((double)job->train.count / ((double)classes * (double)count[c])) : 0.0f;
        if (count[c] && (lo == 0 || w[c] < lo))
            lo = w[c];
        if (w[c] > hi)
            hi = w[c];
    }
    int64_t shape[1] = {classes};
    job->class_weights = tc_own(tc_from_data(w, shape, 1, TC_FLOAT32));
    free(w);
    free(count);
    if (!job->class_weights)
        return err_set("class weights: %s", tc_last_error());
    log_info("use_weighted_loss: cross entropy weighted by inverse class frequency (weights "
             "%.3g to %.3g)",
             lo, hi);
    return 0;
}

static int make_optimizer(struct train_job *job)
{
    tc_tensor **params;
    size_t n;
    if (model_parameters(job->model, MODEL_PARAMS_TRAINABLE, &params, &n) < 0)
        return -1;
    const struct hyperparams *hp = &job->config.hp;
    if (hp->optimizer == OPTIMIZER_SGD || hp->optimizer == OPTIMIZER_NAG) {
        struct tc_sgd_options o = tc_sgd_default_options();
        o.lr = hp->lr;
        o.momentum = hp->momentum;
        o.weight_decay = hp->weight_decay;
        o.nesterov = hp->optimizer == OPTIMIZER_NAG;
        job->optimizer = tc_sgd_new(params, n, &o);
    } else if (hp->optimizer == OPTIMIZER_RMSPROP) {
        struct tc_rmsprop_options o = {.lr = hp->lr, .alpha = hp->rms_gamma, .eps = hp->eps,
                                       .weight_decay = hp->weight_decay};
        job->optimizer = tc_rmsprop_new(params, n, &o);
    } else {
        struct tc_adam_options o = tc_adam_default_options();
        o.lr = hp->lr;
        o.beta1 = hp->beta1;
        o.beta2 = hp->beta2;
        o.eps = hp->eps;
        o.weight_decay = hp->weight_decay;
        o.decoupled_weight_decay = hp->optimizer == OPTIMIZER_ADAMW;
        job->optimizer = tc_adam_new(params, n, &o);
    }
    free(params);
    if (!job->optimizer)
        return err_set("creating the %s optimizer: %s", optimizer_name(hp->optimizer), tc_last_error());
    return 0;
}

/* The worker's own GPU, made current before anything else touches CUDA (the model, a
 * checkpoint, NCCL), so that no rank ever makes a context on another rank's GPU. */
static int claim_device(struct train_job *job)
{
    int gpus = tc_cuda_devices_checked(NULL);
    if (gpus < 0)
        return err_set("%s", tc_last_error());
    int local_rank = job->layout.local_rank;
    if (gpus > 0 && local_rank >= gpus)
        return err_set("local rank %d has no GPU of its own (%d on this host)", local_rank, gpus);
    job->device = gpus > 0 ? tc_device_cuda(local_rank) : tc_device_cpu();
    if (gpus > 0) {
        if (tc_cuda_set_device(local_rank) < 0)
            return err_set("selecting cuda:%d: %s", local_rank, tc_last_error());
        tc_cuda_set_performance(true, job->config.hp.tf32);
    }
    return 0;
}

static int choose_device(struct train_job *job)
{
    struct train_config *cfg = &job->config;
    int gpus = job->device.type == TC_CUDA;
    int local_rank = job->layout.local_rank;
    cfg->amp = cfg->hp.amp < 0 ? gpus > 0 : cfg->hp.amp == 1;
    /* Channels-last: cuDNN's and oneDNN's fast layout (README.md "Performance": ResNet-50
     * training at 224 on CPU 7.2 against 6.3 images/s); LeNet's 32x32 inputs gain nothing. */
    cfg->channels_last = cfg->hp.channels_last < 0 ? gpus > 0 || !job->model->fixed_input_size
                                                   : cfg->hp.channels_last == 1;
    cfg->device_prefetch = cfg->hp.device_prefetch < 0 ? gpus > 0 : cfg->hp.device_prefetch == 1;
    if (model_to(job->model, job->device, cfg->channels_last) < 0)
        return -1;
    char name[16] = "cpu";
    if (gpus > 0)
        snprintf(name, sizeof name, "cuda:%d", local_rank);
    log_info("device: %s%s%s%s%s", name, cfg->amp ? ", bf16 autocast" : "",
             cfg->channels_last ? ", channels-last" : "",
             cfg->device_prefetch ? ", byte batches prefetched and normalised on the device" : "",
             gpus > 0 ? (cfg->hp.tf32 ? ", cuDNN benchmark, TF32" : ", cuDNN benchmark") : "");
    return 0;
}

int job_read_hyperparameters(struct train_job *job)
{
    char path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_join(path, sizeof path, job->config.paths.config_dir, "hyperparameters.json") < 0)
        return -1;
    return hyperparams_load(path, &job->config.hp);
}

int job_setup(struct train_job *job)
{
    struct hyperparams *hp = &job->config.hp;
    if (read_layout(job) < 0 || read_checkpoint_config(job) < 0)
        return err_default_reason(ERR_REASON_CONFIG);
    if (claim_device(job) < 0)
        return err_default_reason(ERR_REASON_INTERNAL);
    if (channels_find(&job->config.paths, &job->config.channels) < 0)
        return err_default_reason(ERR_REASON_DATA);
    /* Every rank reads the whole dataset and takes its own shard of it. */
    if (job->cluster.host_count > 1 && job->config.channels.sharded[0])
        return err_set_reason(ERR_REASON_CONFIG,
                              "channel %s is distributed ShardedByS3Key: each host would see "
                              "other images; use FullyReplicated (every host reads the whole "
                              "dataset and takes its own shard)",
                              job->config.channels.sharded);
    if (open_datasets(job) < 0)
        return err_default_reason(ERR_REASON_DATA);

    bool model_given = hyperparams_given(hp, "model") || hyperparams_given(hp, "num_layers");
    if (!model_given && job->train.source == DATASET_CIFAR) {
        /* CIFAR's 32x32 images get a CIFAR network, not ResNet-50 at 224 px: the CIFAR-10
         * seed gives no hyperparameters, and its script trained its VGG('VGG11'). */
        snprintf(hp->model, sizeof hp->model, "vgg11_cifar");
        log_info("model: vgg11_cifar, the default for CIFAR data (%s, 32x32: the CIFAR-10 "
                 "seed's VGG('VGG11'); resnet50 at 224 px otherwise); the model "
                 "hyperparameter chooses another",
                 job->train.format);
    } else if (!model_given && hp->image_size >= SMALL_IMAGE_MIN &&
               hp->image_size <= SMALL_IMAGE_MAX) {
        /* Small images stated (the built-in algorithm's users give image_shape "3,32,32" and
         * no num_layers): ImageNet's ResNet-50 takes a 32-pixel image down to 8x8 in its first
         * two layers and trains poorly from scratch on it (README "The default model"). */
        snprintf(hp->model, sizeof hp->model, "vgg11_cifar");
        log_info("model: vgg11_cifar, the default for images of %d px (image_size or "
                 "image_shape given, no model or num_layers; resnet50 is the default from %d px "
                 "up); the model hyperparameter chooses another",
                 hp->image_size, SMALL_IMAGE_MAX + 1);
    }
    int classes = job->train.num_classes;
    if (hp->num_classes && hp->num_classes < classes)
        return err_set_reason(ERR_REASON_CONFIG,
                              "hyperparameter num_classes=%d, but the train channel has %d classes",
                       hp->num_classes, classes);
    if (hp->num_classes)
        classes = hp->num_classes;
    const struct arch_info *arch = arch_find(hp->model); /* hyperparams checked the name */
    if (!arch)
        return err_set_reason(ERR_REASON_INTERNAL, "model \"%s\" is not in the table", hp->model);
    job->config.image_size = hp->image_size ? hp->image_size : arch->default_image_size;
    if (arch->fixed_input_size && job->config.image_size != arch->fixed_input_size)
        return err_set_reason(ERR_REASON_CONFIG,
                              "hyperparameter image_size=%d: %s takes %dx%d images only",
                              job->config.image_size, arch->name, arch->fixed_input_size,
                              arch->fixed_input_size);
    if (preprocessing(job, arch) < 0 || check_builtin_settings(job, classes) < 0)
        return err_default_reason(ERR_REASON_CONFIG);
    /* The cores are shared by this host's training processes. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int share = (int)(cores > 0 ? cores : 1) / job->layout.local_world_size;
    share = share > 0 ? share : 1;
    job->config.threads = hp->num_workers ? hp->num_workers : share;
    if (job->layout.local_world_size > 1)
        tc_set_num_threads(share);
    job->config.local_run = getenv("TRAINING_JOB_NAME") == NULL;

    tc_manual_seed(hp->seed);
    if (model_create(hp->model, classes, &job->model) < 0)
        return err_default_reason(ERR_REASON_INTERNAL);
    if (load_pretrained(job) < 0)
        return err_default_reason(ERR_REASON_MODEL);
    bool torchvision_has_weights = arch->family != ARCH_LENET && arch->family != ARCH_VGG_CIFAR;
    if (!job->config.channels.pretrained[0] && torchvision_has_weights)
        /* The seeds' scripts build models.resnet50(pretrained=True) and freeze the backbone:
         * nothing in their hyperparameters says so, and nothing is downloaded here. */
        log_warn("model %s starts from random weights (no pretrained channel); scripts that "
                 "built it with torchvision's pretrained=True started from ImageNet weights: "
                 "give torch.save(torchvision.models.%s(weights=\"DEFAULT\").state_dict(), "
                 "\"%s.pth\") as a channel named pretrained, and freeze_backbone=true to train "
                 "only the new head as they did",
                 hp->model, hp->model, hp->model);
    if (hp->freeze_backbone && model_freeze_backbone(job->model, true) < 0)
        return err_default_reason(ERR_REASON_INTERNAL);
    if (choose_device(job) < 0 || make_optimizer(job) < 0 || make_class_weights(job, classes) < 0)
        return err_default_reason(ERR_REASON_INTERNAL);
    log_info("model %s: %d classes, %lld parameters (%lld trainable), %dx%d inputs", hp->model,
             classes, (long long)model_parameter_count(job->model, MODEL_PARAMS_ALL),
             (long long)model_parameter_count(job->model, MODEL_PARAMS_TRAINABLE),
             job->config.image_size, job->config.image_size);
    log_info("training: %d epochs, batch %d, %s lr %g (schedule %s, warmup %d), %d loader threads",
             hp->epochs, hp->batch_size, optimizer_name(hp->optimizer), hp->lr,
             lr_schedule_name(hp->lr_scheduler), hp->warmup_epochs, job->config.threads);
    if (hp->lr_scheduler == LR_SCHEDULE_MULTISTEP) {
        char steps[256] = "";
        for (int i = 0, n = 0; i < hp->lr_step_count && n < (int)sizeof steps - 16; i++)
            n += snprintf(steps + n, sizeof steps - (size_t)n, "%s%d", i ? ", " : "", hp->lr_steps[i]);
        log_info("lr schedule: lr x %g after each of epochs %s (lr_scheduler_step)", hp->lr_gamma, steps);
    }
    if (hp->early_stopping_patience > 0)
        log_info("early stopping: after %d epochs without a validation accuracy better by a "
                 "relative %g, from epoch %d on",
                 hp->early_stopping_patience, hp->early_stopping_tolerance,
                 hp->early_stopping_min_epochs);
    if (hp->checkpoint_frequency > 1)
        log_info("checkpoints every %d epochs (checkpoint_frequency), and on a stop signal",
                 hp->checkpoint_frequency);
    return 0;
}

void job_free(struct train_job *job)
{
    distributed_stop(job);
    tc_optimizer_free(job->optimizer);
    tc_free(job->class_weights);
    job->class_weights = NULL;
    model_free(job->model);
    dataset_free(&job->train);
    dataset_free(&job->val);
    dataset_free(&job->test);
    eval_result_free(&job->final_val);
    eval_result_free(&job->final_test);
    progress_free(&job->progress);
}
