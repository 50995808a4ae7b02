/*
 * replicas.h - the single model served by several replicas: one copy of the model per device,
 * each with its own batcher thread (loading: replicas.c), and the choice of a replica per
 * request (replica_dispatch.c).
 */
#ifndef SERVE_REPLICAS_H
#define SERVE_REPLICAS_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/batcher.h"
#include "serve/model_dir.h"
#include "sm_handlers.h"

#define REPLICAS_MAX 64

struct replica {
    struct sm_context ctx;      /* model_fn's, with device_index = this replica's number */
    struct batcher *batcher;    /* runs predict_fn on ctx */
    struct serve_model *owned;  /* what the default model_fn made for it (freed with it), or NULL */
    char device[32];            /* "cuda:1", "cpu": for logs */
};

struct replica_set {
    int n;
    struct replica *r; /* n of them */
    unsigned next;     /* where the next search for the least busy replica starts */
};

/* SERVE_REPLICAS, a whole number from 1 to REPLICAS_MAX; unset: SAGEMAKER_MODEL_SERVER_WORKERS
 * (the PyTorch container's worker count) when given, else one per GPU (gpus); either only when
 * predict_fn is the default (a custom predict_fn was written for one thread: 1); 1 on the CPU.
 * 0 with *n set, or -1 with msg saying what is wrong. */
int replicas_from_env(int gpus, bool default_predict, int *n, char *msg, size_t msg_len);

/* Loads n replicas of the model in model_dir: h->model_fn once per replica (replica i's context
 * has device_index i, so the default model_fn puts it on cuda:i), all at once when model_fn is
 * the default (each warms up on its own device), one after the other for a custom model_fn;
 * then a batcher each. 0, or -1 with err naming the replica that failed and nothing left
 * running. */
int replica_set_load(struct replica_set *set, int n, const struct sm_handlers *h,
                     const char *model_dir, int max_batch, int batch_delay_us,
                     struct sm_error *err);

/* The replica for the next request: the one with the fewest images queued, in the forward
 * pass or announced (batcher_load); ties go round robin. */
struct replica *replica_set_pick(struct replica_set *set);

/* "cuda:0, cuda:1" into buf: the replicas' devices, for the start-up log. */
const char *replica_set_devices(const struct replica_set *set, char *buf, size_t len);

/* Stops the batchers (the requests they hold are answered first) and logs how many requests
 * each replica served. */
void replica_set_stop(struct replica_set *set);
/* replica_set_stop, then frees the models the default model_fn made and the set's memory. */
void replica_set_free(struct replica_set *set);

#endif
