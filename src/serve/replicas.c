/*
 * replicas.c - one copy of the model per device, each behind its own batcher (replicas.h).
 *
 * On a host with N GPUs, `serve` loads the model N times, replica i on cuda:i, so that every
 * GPU runs forward passes and each has a thread assembling its batches. A request goes to the
 * replica with the least work (images queued or running, requests announced): a burst spreads
 * over the devices, and a replica held up by a large request gets the next ones last.
 *
 * On the CPU one replica is the default: libtorch's threads already use every core within one
 * forward pass. More (SERVE_REPLICAS) are allowed, each a full copy of the model; main.c then
 * shares the cores among them. The CPU tests use that to cover the dispatch.
 *
 * Here: SERVE_REPLICAS and loading; the choice of a replica per request and stopping are in
 * replica_dispatch.c (no libtorch there, so that the ThreadSanitizer test builds it). Not here:
 * a multi-model endpoint's models (model_registry.c puts each model on one device, in turn).
 */
#define _GNU_SOURCE
#include "serve/replicas.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/error.h"
#include "common/log.h"
#include "serve/serve.h"

/* SAGEMAKER_MODEL_SERVER_WORKERS, which PyTorchModel(model_server_workers=N) sets for the
 * PyTorch container: N worker processes there, each with a copy of the model; N replicas here.
 * A value that is not a whole number in range is warned about and left out (the variable is
 * that container's, not ours). 0 when not given. */
static int workers_from_sdk(void)
{
    long x = 0;
    enum env_whole got = env_whole("SAGEMAKER_MODEL_SERVER_WORKERS", 1, REPLICAS_MAX, &x);
    if (got == ENV_ABSENT)
        return 0;
    if (got == ENV_INVALID) {
        log_warn("SAGEMAKER_MODEL_SERVER_WORKERS=\"%.32s\" ignored: a whole number from 1 to %d "
                 "gives that many copies of the model (SERVE_REPLICAS)",
                 getenv("SAGEMAKER_MODEL_SERVER_WORKERS"), REPLICAS_MAX);
        return 0;
    }
    log_info("SAGEMAKER_MODEL_SERVER_WORKERS=%ld (the PyTorch container's worker count, as "
             "PyTorchModel(model_server_workers=...) sets it): %ld copies of the model, one "
             "batcher each",
             x, x);
    return (int)x;
}

int replicas_from_env(int gpus, bool default_predict, int *n, char *msg, size_t msg_len)
{
    long x = 0;
    enum env_whole got = env_whole("SERVE_REPLICAS", 1, REPLICAS_MAX, &x);
    if (got == ENV_ABSENT) {
        int workers = default_predict ? workers_from_sdk() : 0;
        *n = workers                      ? workers
             : gpus > 0 && default_predict ? (gpus < REPLICAS_MAX ? gpus : REPLICAS_MAX)
                                           : 1;
        return 0;
    }
    if (got == ENV_INVALID) {
        snprintf(msg, msg_len,
                 "SERVE_REPLICAS=\"%.32s\": give a whole number from 1 to %d (copies of the model, "
                 "each with its own batcher; unset: one per GPU, 1 on the CPU)",
                 getenv("SERVE_REPLICAS"), REPLICAS_MAX);
        return -1;
    }
    *n = (int)x;
    return 0;
}

struct load_job {
    const struct sm_handlers *h;
    const char *model_dir;
    struct replica *r;
    struct sm_error err;
    int status;
};

/* model_fn for one replica, on the calling thread (serve_model_fn_take_last is per thread). */
static void *load_one(void *arg)
{
    struct load_job *j = arg;
    serve_model_fn_take_last();
    j->status = j->h->model_fn(j->model_dir, &j->r->ctx, &j->err);
    /* The default's model, or a custom model_fn's that returned it, is ours to free; one a
     * custom model_fn keeps elsewhere (ctx->user) is left alone, as model_registry.c does. */
    struct serve_model *made = serve_model_fn_take_last();
    if (j->status == 0 && made && made == j->r->ctx.model)
        j->r->owned = made;
    return NULL;
}

static void describe_device(struct replica *r, int index)
{
    int gpus = tc_cuda_device_count();
    if (r->owned)
        snprintf(r->device, sizeof r->device, "%s", r->owned->device_name);
    else if (gpus > 0)
        snprintf(r->device, sizeof r->device, "cuda:%d (custom model)", index % gpus);
    else
        snprintf(r->device, sizeof r->device, "cpu");
}

/* After replica_set_stop, or with batchers that never ran a request. */
static void free_replicas(struct replica_set *set)
{
    for (int i = 0; i < set->n; i++) {
        batcher_stop(set->r[i].batcher);
        serve_model_free(set->r[i].owned);
    }
    free(set->r);
    set->r = NULL;
    set->n = 0;
}

int replica_set_load(struct replica_set *set, int n, const struct sm_handlers *h,
                     const char *model_dir, int max_batch, int batch_delay_us,
                     struct sm_error *err)
{
    memset(set, 0, sizeof *set);
    set->r = calloc((size_t)n, sizeof *set->r);
    struct load_job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    bool *started = calloc((size_t)n, sizeof *started);
    if (!set->r || !jobs || !threads || !started) {
        free(set->r);
        free(jobs);
        free(threads);
        free(started);
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    set->n = n;
    for (int i = 0; i < n; i++) {
        set->r[i].ctx.device_index = i;
        jobs[i] = (struct load_job){h, model_dir, &set->r[i], {{0}}, 0};
    }
    /* The default model_fn is safe to run on several threads; a user's may not be. A thread
     * that cannot be made loads on this one. */
    bool parallel = n > 1 && h->model_fn == serve_model_fn;
    for (int i = 0; parallel && i < n; i++)
        started[i] = pthread_create(&threads[i], NULL, load_one, &jobs[i]) == 0;
    for (int i = 0; i < n; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            load_one(&jobs[i]);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        struct replica *r = &set->r[i];
        describe_device(r, i);
        if (jobs[i].status != 0) {
            const char *why = jobs[i].err.message[0] ? jobs[i].err.message : "model_fn failed";
            if (n > 1)
                snprintf(err->message, sizeof err->message, "replica %d (%.31s): %.440s", i,
                         r->device, why);
            else
                snprintf(err->message, sizeof err->message, "%s", why);
            rc = -1;
        }
    }
    for (int i = 0; i < n && rc == 0 && n > 1; i++)
        log_info("replica %d of %d loaded on %s", i, n, set->r[i].device);
    int gpus = tc_cuda_device_count();
    for (int i = 0; i < n && rc == 0; i++) {
        struct replica *r = &set->r[i];
        bool on_gpu = r->owned ? r->owned->device.type == TC_CUDA : gpus > 0;
        if (batcher_start(&r->batcher, &r->ctx, h->predict_fn, max_batch, batch_delay_us,
                          on_gpu) < 0) {
            snprintf(err->message, sizeof err->message, "%s", err_msg());
            rc = -1;
        }
    }
    free(jobs);
    free(threads);
    free(started);
    if (rc < 0)
        free_replicas(set);
    return rc;
}

void replica_set_free(struct replica_set *set)
{
    replica_set_stop(set);
    free_replicas(set);
}
