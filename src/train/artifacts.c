/*
 * artifacts.c - what a training job leaves behind:
 *   <model dir>/model.pth      the best weights, a torchvision state dict
 *   <model dir>/metadata.json  arch, classes in index order, input size, resize, mean/std,
 *                              hyperparameters, final metrics: what `serve` needs
 *   <output data>/metrics.json every epoch's metrics, per-class accuracy and confusion
 *                              matrices of the best model on validation and test
 *   <opt_ml>/output/model.tar.gz  (local runs only) the model dir as SageMaker would tar it
 * Everything is written to a temporary name and renamed.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/json_file.h"
#include "common/log.h"
#include "train/artifacts.h"
#include "train/job.h"

#define METADATA_FORMAT "sagemaker-image-classifier-c/model/1"

static cJSON *float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *hyperparams_json(const struct hyperparams *hp, const struct train_job *job)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "model", hp->model);
    cJSON_AddNumberToObject(h, "epochs", hp->epochs);
    cJSON_AddNumberToObject(h, "batch_size", hp->batch_size);
    cJSON_AddNumberToObject(h, "lr", hp->lr);
    cJSON_AddNumberToObject(h, "momentum", hp->momentum);
    cJSON_AddNumberToObject(h, "weight_decay", hp->weight_decay);
    cJSON_AddStringToObject(h, "optimizer", optimizer_name(hp->optimizer));
    cJSON_AddStringToObject(h, "lr_scheduler", lr_schedule_name(hp->lr_scheduler));
    cJSON_AddNumberToObject(h, "lr_scheduler_factor", hp->lr_gamma);
    if (hp->lr_step_count) {
        cJSON *steps = cJSON_AddArrayToObject(h, "lr_scheduler_step");
        for (int i = 0; i < hp->lr_step_count; i++)
            cJSON_AddItemToArray(steps, cJSON_CreateNumber(hp->lr_steps[i]));
    }
    cJSON_AddStringToObject(h, "augmentation", image_augment_name(hp->augment));
    cJSON_AddStringToObject(h, "eval_resize", image_resize_mode_name(job->config.resize_mode));
    cJSON_AddNumberToObject(h, "resize", job->config.resize_size);
    cJSON_AddItemToObject(h, "mean", float_array(job->config.mean, 3));
    cJSON_AddItemToObject(h, "std", float_array(job->config.std, 3));
    cJSON_AddBoolToObject(h, "use_weighted_loss", hp->use_weighted_loss);
    cJSON_AddNumberToObject(h, "early_stopping_patience", hp->early_stopping_patience);
    cJSON_AddNumberToObject(h, "early_stopping_min_epochs", hp->early_stopping_min_epochs);
    cJSON_AddNumberToObject(h, "early_stopping_tolerance", hp->early_stopping_tolerance);
    cJSON_AddNumberToObject(h, "warmup_epochs", hp->warmup_epochs);
    cJSON_AddNumberToObject(h, "label_smoothing", hp->label_smoothing);
    cJSON_AddNumberToObject(h, "image_size", job->config.image_size);
    cJSON_AddBoolToObject(h, "freeze_backbone", hp->freeze_backbone);
    cJSON_AddNumberToObject(h, "seed", (double)hp->seed);
    cJSON_AddBoolToObject(h, "amp", job->config.amp);
    cJSON_AddBoolToObject(h, "channels_last", job->config.channels_last);
    return h;
}

static cJSON *eval_json(const struct eval_result *r, const struct train_job *job)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "loss", r->loss);
    cJSON_AddNumberToObject(e, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(e, "images", (double)r->count);
    cJSON *per = cJSON_AddArrayToObject(e, "per_class");
    for (int i = 0; r->per_class_total && i < r->num_classes; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "class", i < job->train.num_classes ? job->train.class_names[i] : "");
        cJSON_AddNumberToObject(c, "images", (double)r->per_class_total[i]);
        cJSON_AddNumberToObject(c, "accuracy", r->per_class_total[i]
                                                   ? (double)r->per_class_correct[i] / (double)r->per_class_total[i]
                                                   : 0.0);
        cJSON_AddItemToArray(per, c);
    }
    if (r->confusion) {
        cJSON *m = cJSON_AddArrayToObject(e, "confusion_matrix"); /* [true][predicted] */
        for (int i = 0; i < r->num_classes; i++) {
            cJSON *row = cJSON_CreateArray();
            for (int j = 0; j < r->num_classes; j++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[i * r->num_classes + j]));
            cJSON_AddItemToArray(m, row);
        }
    }
    return e;
}

static int write_metadata(const struct train_job *job, bool final)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", METADATA_FORMAT);
    cJSON_AddStringToObject(j, "arch", job->model->arch);
    cJSON_AddNumberToObject(j, "num_classes", job->model->num_classes);
    cJSON *names = cJSON_AddArrayToObject(j, "class_names");
    for (int i = 0; i < job->model->num_classes; i++) {
        char fallback[16];
        snprintf(fallback, sizeof fallback, "%d", i);
        cJSON_AddItemToArray(names, cJSON_CreateString(i < job->train.num_classes
                                                           ? job->train.class_names[i]
                                                           : fallback));
    }
    cJSON_AddNumberToObject(j, "image_size", job->config.image_size);
    cJSON_AddNumberToObject(j, "resize_size", job->config.resize_size);
    cJSON_AddItemToObject(j, "mean", float_array(job->config.mean, 3));
    cJSON_AddItemToObject(j, "std", float_array(job->config.std, 3));
    cJSON_AddStringToObject(j, "resize_mode", image_resize_mode_name(job->config.resize_mode));
    /* num_training_samples is required by the built-in image-classification algorithm and
     * means nothing to anyone else: the job came from it, and so will its endpoint's clients
     * (a flat list of probabilities; serve answers so unless told otherwise). */
    if (hyperparams_given(&job->config.hp, "num_training_samples"))
        cJSON_AddStringToObject(j, "response_format", "builtin");
    cJSON_AddItemToObject(j, "hyperparameters", hyperparams_json(&job->config.hp, job));
    cJSON *m = cJSON_AddObjectToObject(j, "metrics");
    cJSON_AddNumberToObject(m, "best_epoch", job->progress.best_epoch);
    cJSON_AddNumberToObject(m, "best_val_acc", job->progress.best_val_acc);
    if (final) {
        cJSON_AddNumberToObject(m, "val_loss", job->final_val.loss);
        cJSON_AddNumberToObject(m, "val_acc", job->final_val.accuracy);
        if (job->has_test) {
            cJSON_AddNumberToObject(m, "test_loss", job->final_test.loss);
            cJSON_AddNumberToObject(m, "test_acc", job->final_test.accuracy);
        }
    }
    cJSON *data = cJSON_AddObjectToObject(j, "train_data");
    cJSON_AddStringToObject(data, "format", job->train.format);
    cJSON_AddNumberToObject(data, "train_images", (double)job->train.count);
    cJSON_AddStringToObject(data, "validation", job->val_source);
    char path[OPT_ML_PATH_MAX * 2];
    int rc = opt_ml_join(path, sizeof path, job->config.paths.model_dir, "metadata.json");
    if (rc == 0)
        rc = json_write_file(path, j);
    cJSON_Delete(j);
    return rc;
}

int artifacts_save_best_model(const struct train_job *job)
{
    char path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_mkdirs(job->config.paths.model_dir) < 0)
        return -1;
    if (opt_ml_join(path, sizeof path, job->config.paths.model_dir, "model.pth") < 0 ||
        model_save(job->model, path) < 0 || write_metadata(job, false) < 0)
        return err_prefix("saving the best model: ");
    return 0;
}

static int write_metrics(const struct train_job *job)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *epochs = cJSON_AddArrayToObject(j, "epochs");
    for (int i = 0; i < job->progress.history_count; i++)
        cJSON_AddItemToArray(epochs, epoch_metrics_to_json(&job->progress.history[i]));
    cJSON_AddNumberToObject(j, "best_epoch", job->progress.best_epoch);
    cJSON_AddItemToObject(j, "validation", eval_json(&job->final_val, job));
    if (job->has_test)
        cJSON_AddItemToObject(j, "test", eval_json(&job->final_test, job));
    cJSON_AddNumberToObject(j, "skipped_images", (double)job->skipped_images);
    char path[OPT_ML_PATH_MAX * 2];
    int rc = opt_ml_mkdirs(job->config.paths.output_data_dir);
    if (rc == 0)
        rc = opt_ml_join(path, sizeof path, job->config.paths.output_data_dir, "metrics.json");
    if (rc == 0)
        rc = json_write_file(path, j);
    cJSON_Delete(j);
    return rc;
}

/* model.tar.gz with the model dir's files at its root, as SageMaker packs /opt/ml/model. */
static int write_model_tarball(const struct train_job *job)
{
    const char *files[] = {"model.pth", "metadata.json"};
    char out[OPT_ML_PATH_MAX * 2], tmp[OPT_ML_PATH_MAX * 2], path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_join(out, sizeof out, job->config.paths.output_dir, "model.tar.gz") < 0 ||
        opt_ml_mkdirs(job->config.paths.output_dir) < 0 ||
        fileio_temp_path(out, tmp, sizeof tmp) < 0)
        return -1;
    struct archive *a = archive_write_new();
    if (!a)
        return err_set("out of memory writing %s", out);
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    int rc = archive_write_open_filename(a, tmp) == ARCHIVE_OK ? 0 : err_set("cannot create %s: %s", tmp, archive_error_string(a));
    for (size_t i = 0; rc == 0 && i < sizeof files / sizeof *files; i++) {
        char *data;
        size_t len;
        if (opt_ml_join(path, sizeof path, job->config.paths.model_dir, files[i]) < 0 ||
            fileio_read_all(path, (size_t)4 << 30, &data, &len) < 0) {
            rc = -1;
            break;
        }
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, files[i]);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, time(NULL), 0);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            archive_write_data(a, data, len) != (la_ssize_t)len)
            rc = err_set("writing %s: %s", tmp, archive_error_string(a));
        archive_entry_free(e);
        free(data);
    }
    if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
        rc = err_set("writing %s: %s", tmp, archive_error_string(a));
    archive_write_free(a);
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    if (fileio_commit(tmp, out) < 0)
        return -1;
    log_info("local run: the model directory is also packed as %s (deployable like SageMaker's)", out);
    return 0;
}

int artifacts_write_final(const struct train_job *job)
{
    if (write_metadata(job, true) < 0 || write_metrics(job) < 0)
        return err_prefix("writing the results: ");
    if (job->config.local_run && write_model_tarball(job) < 0)
        return err_prefix("packing model.tar.gz: ");
    return 0;
}
