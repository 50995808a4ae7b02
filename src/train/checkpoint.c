/*
 * checkpoint.c - saving and resuming a training job, which is how managed spot training and
 * SIGTERM survive: <checkpoint dir>/<host>/ holds model.pth (the current weights),
 * optimizer.pt (momentum/Adam state), rng.pth (the torch generator) and state.json (epoch,
 * batch within the epoch, partial sums, best so far, history). Named per host so that hosts
 * never clash in S3.
 *
 * A checkpoint is written whole into a temporary folder, which then replaces the previous one
 * (the old folder is moved aside first and removed last), so a crash at any moment leaves one
 * complete checkpoint: the new, or the old one as "<host>.old".
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
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
#include "train/checkpoint.h"
#include "train/job.h"

#define FORMAT "sagemaker-image-classifier-c/checkpoint/1"

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            opt_ml_join(path, sizeof path, dir, e->d_name) < 0)
            continue;
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* The best model so far lives in the model dir; a checkpoint carries it too, because on a
 * spot restart the model dir starts empty while the checkpoint dir is restored. A hard link
 * costs nothing per epoch and stays right: the model file is replaced by rename, never
 * rewritten in place. Across filesystems the bytes are copied. */
static int share_file(const char *from, const char *to)
{
    if (link(from, to) == 0)
        return 0;
    char *data;
    size_t len;
    if (fileio_read_all(from, (size_t)8 << 30, &data, &len) < 0)
        return -1;
    int rc = fileio_write_atomic(to, data, len);
    free(data);
    return rc;
}

static cJSON *state_json(const struct train_job *job)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", FORMAT);
    cJSON_AddStringToObject(j, "arch", job->model->arch);
    cJSON_AddNumberToObject(j, "num_classes", job->model->num_classes);
    cJSON_AddNumberToObject(j, "epochs", job->config.hp.epochs);
    /* next_batch counts batches of this size in this many shards */
    cJSON_AddNumberToObject(j, "world_size", job->layout.world_size);
    cJSON_AddNumberToObject(j, "batch_size", job->config.hp.batch_size);
    progress_to_json(&job->progress, j);
    return j;
}

int checkpoint_save(const struct train_job *job)
{
    if (job->layout.local_rank != 0) /* one checkpoint per host; the ranks hold the same state */
        return 0;
    char final_dir[OPT_ML_PATH_MAX * 2], tmp_dir[OPT_ML_PATH_MAX * 2], old_dir[OPT_ML_PATH_MAX * 2];
    char path[OPT_ML_PATH_MAX * 3];
    const char *base = job->config.paths.checkpoint_dir;
    if (opt_ml_join(final_dir, sizeof final_dir, base, job->host) < 0 ||
        opt_ml_joinf(tmp_dir, sizeof tmp_dir, "%s/.%s.tmp-%ld", base, job->host,
                     (long)getpid()) < 0 ||
        opt_ml_joinf(old_dir, sizeof old_dir, "%s/%s.old", base, job->host) < 0)
        return err_prefix("checkpoint: ");
    remove_tree(tmp_dir);
    if (opt_ml_mkdirs(tmp_dir) < 0)
        return err_prefix("checkpoint: ");

    int rc = opt_ml_join(path, sizeof path, tmp_dir, "model.pth");
    if (rc == 0)
        rc = model_save(job->model, path);
    if (rc == 0 && opt_ml_join(path, sizeof path, tmp_dir, "optimizer.pt") < 0)
        rc = -1;
    if (rc == 0 && tc_optimizer_save(job->optimizer, path) < 0)
        rc = err_set("saving the optimizer state: %s", tc_last_error());
    if (rc == 0 && opt_ml_join(path, sizeof path, tmp_dir, "rng.pth") < 0)
        rc = -1;
    if (rc == 0) {
        tc_scope *s = tc_scope_begin();
        tc_state_dict *rng = tc_state_dict_new();
        tc_state_dict_set(rng, "cpu", tc_rng_state());
        if (tc_state_dict_save(rng, path) < 0)
            rc = err_set("saving the random generator state: %s", tc_last_error());
        tc_state_dict_free(rng);
        tc_scope_end(s);
    }
    char best[OPT_ML_PATH_MAX * 2];
    if (rc == 0 && (opt_ml_join(best, sizeof best, job->config.paths.model_dir, "model.pth") < 0 ||
                    opt_ml_join(path, sizeof path, tmp_dir, "best.pth") < 0))
        rc = -1;
    if (rc == 0 && access(best, F_OK) == 0)
        rc = share_file(best, path);
    if (rc == 0 && opt_ml_join(path, sizeof path, tmp_dir, "state.json") < 0)
        rc = -1;
    if (rc == 0) {
        cJSON *state = state_json(job);
        rc = json_write_file(path, state); /* written last: its presence marks a whole checkpoint */
        cJSON_Delete(state);
    }
    if (rc == 0) {
        /* With a current checkpoint, it becomes .old; without one (a crash between the renames
         * last time), .old is the only complete one and is kept until the new one is in place. */
        if (access(final_dir, F_OK) == 0) {
            remove_tree(old_dir);
            if (rename(final_dir, old_dir) != 0)
                rc = err_set("checkpoint: cannot move %s aside: %s", final_dir, strerror(errno));
        }
        if (rc == 0 && rename(tmp_dir, final_dir) != 0)
            rc = err_set("checkpoint: cannot rename %s: %s", tmp_dir, strerror(errno));
        if (rc == 0)
            remove_tree(old_dir);
    }
    if (rc < 0) {
        remove_tree(tmp_dir);
        err_default_reason(ERR_REASON_IO);
        return err_prefix("writing the checkpoint in %s: ", base);
    }
    if (job->progress.next_batch == 0)
        log_info("checkpoint saved after epoch %d (%s)", job->progress.next_epoch, final_dir);
    else
        log_info("checkpoint saved in epoch %d at batch %zu (%s)", job->progress.next_epoch + 1,
                 job->progress.next_batch, final_dir);
    return 0;
}

static int restore(struct train_job *job, const char *dir)
{
    char path[OPT_ML_PATH_MAX * 3];
    cJSON *state;
    if (opt_ml_join(path, sizeof path, dir, "state.json") < 0 ||
        json_read_file(path, 16 << 20, &state) < 0)
        return -1;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(state, "format");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(state, "arch");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT) != 0 || !cJSON_IsString(arch) ||
        strcmp(arch->valuestring, job->model->arch) != 0 ||
        (int)json_number(state, "num_classes") != job->model->num_classes) {
        cJSON_Delete(state);
        log_warn("checkpoint in %s is for another model or format; starting afresh", dir);
        return CHECKPOINT_NONE;
    }
    int rc = opt_ml_join(path, sizeof path, dir, "model.pth");
    if (rc == 0 && model_load_file(job->model, path, NULL, NULL) < 0)
        rc = -1;
    if (rc == 0 && opt_ml_join(path, sizeof path, dir, "optimizer.pt") < 0)
        rc = -1;
    if (rc == 0 && tc_optimizer_load(job->optimizer, path) < 0)
        rc = err_set("loading the optimizer state %s: %s", path, tc_last_error());
    if (rc == 0 && opt_ml_join(path, sizeof path, dir, "rng.pth") < 0)
        rc = -1;
    tc_state_dict *rng = rc == 0 ? tc_state_dict_load(path) : NULL;
    if (rc == 0) {
        tc_scope *s = tc_scope_begin();
        if (!rng || tc_rng_set_state(tc_state_dict_get(rng, "cpu")) < 0)
            rc = err_set("restoring the random generator from %s: %s", path, tc_last_error());
        tc_scope_end(s);
    }
    tc_state_dict_free(rng);
    char best[OPT_ML_PATH_MAX * 2];
    if (rc == 0 && (opt_ml_join(best, sizeof best, job->config.paths.model_dir, "model.pth") < 0 ||
                    opt_ml_join(path, sizeof path, dir, "best.pth") < 0))
        rc = -1;
    if (rc == 0 && access(best, F_OK) != 0 && access(path, F_OK) == 0 &&
        (opt_ml_mkdirs(job->config.paths.model_dir) < 0 || share_file(path, best) < 0))
        rc = -1;
    struct train_progress *p = &job->progress;
    if (rc == 0)
        rc = progress_from_json(state, p);
    if (rc == 0) {
        int world = (int)json_number(state, "world_size");
        int batch = (int)json_number(state, "batch_size");
        if (p->next_batch > 0 && ((world && world != job->layout.world_size) ||
                                  (batch && batch != job->config.hp.batch_size))) {
            log_warn("the checkpoint stopped mid-epoch with %d process(es) of batch %d; now %d of "
                     "batch %d: epoch %d restarts from its beginning",
                     world, batch, job->layout.world_size, job->config.hp.batch_size,
                     p->next_epoch + 1);
            p->next_batch = 0;
            p->partial_loss_sum = p->partial_correct = p->partial_seen = 0;
        }
    }
    cJSON_Delete(state);
    return rc < 0 ? err_prefix("resuming from the checkpoint in %s: ", dir) : CHECKPOINT_RESUMED;
}

/* Temporary folders of processes that died mid-save ("<dir>/.<host>.tmp-<pid>"). */
static void remove_stale_temporaries(const struct train_job *job)
{
    char prefix[CLUSTER_HOST_MAX + 16], path[OPT_ML_PATH_MAX * 2];
    snprintf(prefix, sizeof prefix, ".%s.tmp-", job->host); /* host: < CLUSTER_HOST_MAX */
    DIR *d = opendir(job->config.paths.checkpoint_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            opt_ml_join(path, sizeof path, job->config.paths.checkpoint_dir, e->d_name) == 0)
            remove_tree(path);
    if (d)
        closedir(d);
}

int checkpoint_resume(struct train_job *job)
{
    char dir[OPT_ML_PATH_MAX * 2], path[OPT_ML_PATH_MAX * 3];
    remove_stale_temporaries(job);
    const char *candidates[] = {"", ".old"}; /* .old: a crash mid-swap */
    for (int i = 0; i < 2; i++) {
        if (opt_ml_joinf(dir, sizeof dir, "%s/%s%s", job->config.paths.checkpoint_dir, job->host,
                         candidates[i]) < 0 ||
            opt_ml_join(path, sizeof path, dir, "state.json") < 0)
            return err_prefix("resuming from a checkpoint: ");
        if (access(path, F_OK) != 0)
            continue;
        int rc = restore(job, dir);
        if (rc == CHECKPOINT_RESUMED)
            log_info("resumed from the checkpoint in %s: epoch %d, batch %zu", dir,
                     job->progress.next_epoch + 1, job->progress.next_batch);
        return rc;
    }
    return CHECKPOINT_NONE;
}
