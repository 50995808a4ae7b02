/*
 * distributed.c - what a training job does differently when it is one of several processes:
 * meeting the others, starting from rank 0's weights, agreeing step by step on whether to
 * stop or skip, and summing metrics. Gradient averaging itself happens inside backward
 * (tc_grad_sync). With one process every function here returns at once, so the trainer has
 * one code path.
 */
#define _DEFAULT_SOURCE
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "train/distributed.h"
#include "train/job.h"
#include "train/launcher.h"

static bool distributed(const struct train_job *job)
{
    return job->layout.world_size > 1;
}

/* Rank 0's tensors (buffers_only: the batch-norm statistics) to every rank, in state-dict
 * order. */
static int broadcast_model(struct train_job *job, bool buffers_only)
{
    tc_tensor **ts;
    size_t n;
    if (model_tensors(job->model, buffers_only ? MODEL_BUFFERS : MODEL_TENSORS_ALL, &ts, NULL,
                      &n) < 0)
        return err_default_reason(ERR_REASON_OUT_OF_MEMORY);
    int rc = n == 0 || tc_dist_broadcast(job->dist, ts, n, 0) == 0
                 ? 0
                 : err_set_reason(ERR_REASON_PEER_FAILED, "broadcasting the model from rank 0: %s",
                                  tc_last_error());
    free(ts);
    return rc;
}

/* The address Gloo binds for this process's traffic: by interface when SageMaker names one
 * that exists here, else by this host's own address. */
static int choose_transport(const struct train_job *job, struct tc_dist_options *o, char *addr,
                            size_t cap)
{
    const struct cluster *c = &job->cluster;
    if (c->interface[0] && if_nametoindex(c->interface) != 0) {
        o->interface = c->interface;
        setenv("NCCL_SOCKET_IFNAME", c->interface, 0); /* NCCL's sockets follow it too */
        return 0;
    }
    if (c->interface[0])
        log_warn("network interface %s (resourceconfig.json) does not exist here; using the "
                 "address of %s",
                 c->interface, c->current_host);
    if (c->host_count == 1) {
        snprintf(addr, cap, "127.0.0.1");
    } else if (cluster_resolve(c->current_host, job->config.hp.dist_timeout_s, NULL, addr,
                               cap) < 0) {
        return -1;
    }
    o->local_addr = addr;
    return 0;
}

/* Every rank must run the same job on the same data, or their steps and collectives part
 * ways. Compared: the smallest and largest value of each across the ranks. */
static int check_same_job(struct train_job *job)
{
    static const char *const what[] = {
        "train images", "validation images", "test images (-1: no test channel)", "classes",
        "model parameters", "processes per host", "batch_size", "epochs", "image_size"};
    enum { N = sizeof what / sizeof *what };
    double mine[N] = {(double)job->train.count, (double)job->val.count,
                      job->has_test ? (double)job->test.count : -1, job->model->num_classes,
                      (double)model_parameter_count(job->model, MODEL_PARAMS_ALL),
                      job->layout.local_world_size, job->config.hp.batch_size,
                      job->config.hp.epochs, job->config.image_size};
    double v[2 * N];
    for (int i = 0; i < N; i++) {
        v[i] = mine[i];
        v[N + i] = -mine[i];
    }
    if (tc_dist_all_reduce(job->dist, v, 2 * N, TC_REDUCE_MAX) < 0)
        return err_set_reason(ERR_REASON_PEER_FAILED, "comparing the job across ranks: %s",
                              tc_last_error());
    for (int i = 0; i < N; i++)
        if (v[i] != -v[N + i])
            return err_set_reason(ERR_REASON_CONFIG,
                                  "the ranks disagree on the %s (from %.0f to %.0f; this rank: "
                                  "%.0f): every host must see the same channels and "
                                  "hyperparameters and have as many GPUs",
                                  what[i], -v[N + i], v[i], mine[i]);
    return 0;
}

/* Resumed hosts must all stand at the same place: each host restores its own checkpoint. */
static int check_progress_agrees(struct train_job *job)
{
    const struct train_progress *p = &job->progress;
    double v[4] = {p->next_epoch, (double)p->next_batch, -p->next_epoch, -(double)p->next_batch};
    if (tc_dist_all_reduce(job->dist, v, 4, TC_REDUCE_MAX) < 0)
        return err_set_reason(ERR_REASON_PEER_FAILED, "comparing progress across ranks: %s",
                              tc_last_error());
    if (v[0] != -v[2] || v[1] != -v[3])
        return err_set_reason(ERR_REASON_MODEL,
                              "the hosts' checkpoints disagree (epochs %.0f to %.0f, batches "
                              "%.0f to %.0f): remove the checkpoints of the job to start over",
                              -v[2] + 1, v[0] + 1, -v[3], v[1]);
    return 0;
}

int distributed_start(struct train_job *job)
{
    if (!distributed(job))
        return 0;
    const struct worker_layout *w = &job->layout;
    char local_addr[64] = "";
    struct tc_dist_options o = {
        .master_addr = w->master_addr,
        .master_port = w->master_port,
        .rank = w->rank,
        .world_size = w->world_size,
        .device = job->device,
        .timeout_s = job->config.hp.dist_timeout_s,
    };
    if (choose_transport(job, &o, local_addr, sizeof local_addr) < 0)
        return -1;
    job->dist = tc_dist_init(&o);
    if (!job->dist)
        return err_set_reason(ERR_REASON_PEER_FAILED,
                              "rank %d of %d could not join the job at %s:%d within %.0f s: %s",
                              w->rank, w->world_size, w->master_addr, w->master_port,
                              job->config.hp.dist_timeout_s, tc_last_error());
    if (check_same_job(job) < 0 || check_progress_agrees(job) < 0 || broadcast_model(job, false) < 0)
        return -1;
    if (w->rank != 0) /* a resumed epoch's running sums count once, on rank 0 */
        job->progress.partial_loss_sum = job->progress.partial_correct =
            job->progress.partial_seen = 0;

    tc_tensor **params; /* frozen layers send nothing */
    const char **names;
    size_t n;
    if (model_tensors(job->model, MODEL_PARAMS_TRAINABLE, &params, &names, &n) < 0)
        return err_default_reason(ERR_REASON_OUT_OF_MEMORY);
    job->grad_sync = tc_grad_sync_new(job->dist, params, names, n, 0);
    free(params);
    free(names);
    if (!job->grad_sync)
        return err_set("setting up gradient synchronisation: %s", tc_last_error());
    log_info("data parallel: %d processes on %d host(s) over %s, global batch %d (%d per "
             "process), rendezvous at %s:%d",
             w->world_size, job->cluster.host_count, job->device.type == TC_CUDA ? "NCCL" : "Gloo",
             job->config.hp.batch_size * w->world_size, job->config.hp.batch_size, w->master_addr,
             w->master_port);
    return 0;
}

void distributed_stop(struct train_job *job)
{
    tc_grad_sync_free(job->grad_sync);
    job->grad_sync = NULL;
    tc_dist_free(job->dist);
    job->dist = NULL;
}

int distributed_agree(struct train_job *job, bool want_stop, bool batch_usable, bool *stop,
                      bool *skip)
{
    *stop = want_stop;
    *skip = !batch_usable;
    if (!distributed(job))
        return 0;
    double v[3] = {want_stop, !batch_usable, 0};
    if (tc_dist_all_reduce(job->dist, v, 3, TC_REDUCE_MAX) < 0)
        return err_set_reason(ERR_REASON_PEER_FAILED, "agreeing on the next step: %s",
                              tc_last_error());
    if (v[2] > 0)
        return err_set_reason(ERR_REASON_PEER_FAILED,
                              "stopped because rank %.0f failed (its host's failure file says why)",
                              v[2] - 1);
    *stop = v[0] > 0;
    *skip = v[1] > 0;
    return 0;
}

void distributed_report_failure(struct train_job *job)
{
    if (!distributed(job))
        return;
    /* The peers are at their next agreement, the same collective: they learn of it there
     * instead of waiting for a collective this rank will never join. */
    char saved[ERR_MSG_MAX];
    snprintf(saved, sizeof saved, "%s", err_msg());
    enum err_reason reason = err_reason();
    double v[3] = {0, 0, job->layout.rank + 1};
    tc_dist_all_reduce(job->dist, v, 3, TC_REDUCE_MAX);
    err_set_reason(reason, "%s", saved);
}

int distributed_sum(struct train_job *job, double *values, size_t n)
{
    if (!distributed(job))
        return 0;
    return tc_dist_all_reduce(job->dist, values, n, TC_REDUCE_SUM) == 0
               ? 0
               : err_set_reason(ERR_REASON_PEER_FAILED, "summing across ranks: %s",
                                tc_last_error());
}

int distributed_sync_buffers(struct train_job *job)
{
    return distributed(job) ? broadcast_model(job, true) : 0;
}

int distributed_sync_model(struct train_job *job)
{
    return distributed(job) ? broadcast_model(job, false) : 0;
}

int distributed_before_backward(struct train_job *job)
{
    if (!job->grad_sync)
        return 0;
    return tc_grad_sync_before_backward(job->grad_sync);
}
