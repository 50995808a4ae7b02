/*
 * batcher.c - dynamic batching: requests that arrive close together share one forward pass.
 *
 * Request threads announce themselves before decoding their input (batcher_expect), then
 * submit their batch and wait. One worker thread takes the oldest pending request and, while
 * announced requests are still decoding, waits up to max_delay for them (stopping early once
 * max_batch images are there); it concatenates those of the same image size, runs predict_fn
 * once and hands each request its rows. A lone request never waits; under load the model sees
 * full batches, so throughput grows with concurrency.
 *
 * Staging: the batch predict_fn sees is assembled once, from the requests' own inputs into one
 * host buffer (torchc's staging buffer), which predict_fn does not copy again. For a model on
 * a GPU that buffer is page-locked, so the copy to the device is non-blocking and the thread
 * waits only when it reads the results back; the buffer goes back to libtorch's host allocator,
 * which reuses it once that copy is done. On the CPU a lone request's input is the batch as it
 * is: no copy at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/env.h"
#include "common/error.h"
#include "common/log.h"
#include "serve/batcher.h"
#include "serve/serve.h"
#include "torchc.h"

struct job {
    const struct sm_batch *in;
    struct sm_scores *out;
    struct sm_error *err;
    int status;
    bool done;
    struct job *next;
};

struct batcher {
    const struct sm_context *ctx;
    sm_predict_fn predict;
    int max_batch, max_delay_us;
    pthread_mutex_t mu;
    pthread_cond_t arrived, finished;
    struct job *head, *tail;
    int incoming; /* announced requests still decoding their input */
    int64_t queued_images, running_images; /* in the queue; in the forward pass under way */
    struct batcher_stats stats;
    bool pinned; /* stage batches in page-locked memory (the model is on a GPU) */
    bool stopping;
    pthread_t thread;
    /* The jobs of one forward pass; allocated with the batcher, so that the thread never fails
     * to allocate and leaves later requests waiting for it. */
    struct job **group;
};

static void deadline_after(struct timespec *ts, int us)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)us * 1000;
    ts->tv_sec += ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

/* The batch of a group of jobs in one staging buffer (*staging, from tc_host_alloc, freed by
 * the caller), or, on the CPU, a lone job's own input. 0, or 500 with msg filled. */
static int stage_group(struct batcher *b, struct job **group, int count, struct sm_batch *merged,
                       float **staging, char *msg, size_t msg_len)
{
    *merged = *group[0]->in;
    if (count == 1 && !b->pinned)
        return 0;
    size_t per = 3 * (size_t)merged->height * (size_t)merged->width;
    merged->n = 0;
    for (int i = 0; i < count; i++)
        merged->n += group[i]->in->n;
    size_t bytes = (size_t)merged->n * per * sizeof(float);
    *staging = tc_host_alloc(bytes, b->pinned);
    if (!*staging && b->pinned) {
        log_warn("batches are staged in ordinary memory from now on: page-locked memory failed: %s",
                 tc_last_error());
        b->pinned = false;
        if (count == 1)
            return 0;
        *staging = tc_host_alloc(bytes, false);
    }
    if (!*staging) {
        snprintf(msg, msg_len, "out of memory batching %lld images: %s", (long long)merged->n,
                 tc_last_error());
        return 500;
    }
    merged->data = *staging;
    for (int i = 0, at = 0; i < count; i++) {
        memcpy(merged->data + (size_t)at * per, group[i]->in->data,
               (size_t)group[i]->in->n * per * sizeof(float));
        at += (int)group[i]->in->n;
    }
    return 0;
}

/* Runs one group (same image size) through predict_fn and splits the result. */
static void run_group(struct batcher *b, struct job **group, int count)
{
    struct sm_batch merged;
    struct sm_scores scores = {0};
    struct sm_error err = {{0}};
    float *staging = NULL;
    int status = stage_group(b, group, count, &merged, &staging, err.message, sizeof err.message);
    if (status == 0)
        status = b->predict(b->ctx, &merged, &scores, &err);
    if (status == 0 && (scores.n != merged.n || !scores.probs)) {
        status = 500;
        snprintf(err.message, sizeof err.message, "predict_fn returned %lld rows for %lld images",
                 (long long)scores.n, (long long)merged.n);
    }
    for (int i = 0, at = 0; i < count; i++) {
        struct job *j = group[i];
        j->status = status;
        if (status == 0) {
            size_t bytes = (size_t)(j->in->n * scores.k) * sizeof(float);
            j->out->probs = malloc(bytes);
            j->out->n = j->in->n;
            j->out->k = scores.k;
            j->out->logits = scores.logits ? malloc(bytes) : NULL;
            if (j->out->probs && (j->out->logits || !scores.logits)) {
                memcpy(j->out->probs, scores.probs + (size_t)at * (size_t)scores.k, bytes);
                if (scores.logits)
                    memcpy(j->out->logits, scores.logits + (size_t)at * (size_t)scores.k, bytes);
            } else {
                j->status = 500;
                snprintf(j->err->message, sizeof j->err->message, "out of memory");
            }
        } else {
            memcpy(j->err, &err, sizeof err);
        }
        at += (int)j->in->n;
    }
    free(scores.probs);
    free(scores.logits);
    tc_host_free(staging);
}

static void *batcher_main(void *arg)
{
    struct batcher *b = arg;
    struct job **group = b->group;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stopping)
            pthread_cond_wait(&b->arrived, &b->mu);
        if (!b->head)
            break; /* stopping and nothing left */
        struct timespec deadline;
        deadline_after(&deadline, b->max_delay_us);
        while (!b->stopping && b->incoming > 0 && b->queued_images < b->max_batch &&
               pthread_cond_timedwait(&b->arrived, &b->mu, &deadline) != ETIMEDOUT)
            ;
        /* Take the oldest job and every following one of the same size, up to max_batch. */
        int count = 0;
        int64_t images = 0;
        struct job **link = &b->head, *prev = NULL;
        const struct sm_batch *first = b->head->in;
        while (*link && count < b->max_batch) {
            struct job *j = *link;
            bool fits = j->in->height == first->height && j->in->width == first->width &&
                        (count == 0 || images + j->in->n <= b->max_batch);
            if (fits) {
                group[count++] = j;
                images += j->in->n;
                *link = j->next;
                if (b->tail == j)
                    b->tail = prev;
                if (images >= b->max_batch)
                    break;
            } else {
                prev = j;
                link = &j->next;
            }
        }
        b->queued_images -= images;
        b->running_images = images;
        pthread_mutex_unlock(&b->mu);
        run_group(b, group, count);
        pthread_mutex_lock(&b->mu);
        b->running_images = 0;
        b->stats.requests += count;
        b->stats.images += images;
        b->stats.batches++;
        for (int i = 0; i < count; i++)
            group[i]->done = true;
        pthread_cond_broadcast(&b->finished);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int batcher_max_batch_from_env(void)
{
    return (int)env_long("SERVE_MAX_BATCH", BATCHER_DEFAULT_MAX_BATCH, 1, BATCHER_MAX_BATCH_LIMIT);
}

int batcher_start(struct batcher **out, const struct sm_context *ctx, sm_predict_fn predict,
                  int max_batch, int max_delay_us, bool pinned_staging)
{
    struct batcher *b = calloc(1, sizeof *b);
    if (!b)
        return err_set("out of memory");
    b->ctx = ctx;
    b->predict = predict;
    b->max_batch = max_batch > 0 ? max_batch : 1;
    b->max_delay_us = max_delay_us >= 0 ? max_delay_us : 0;
    b->pinned = pinned_staging;
    b->group = malloc(sizeof *b->group * (size_t)(b->max_batch + 1));
    if (!b->group) {
        free(b);
        return err_set("out of memory");
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->arrived, NULL);
    pthread_cond_init(&b->finished, NULL);
    if (pthread_create(&b->thread, NULL, batcher_main, b) != 0) {
        free(b->group);
        free(b);
        return err_set("cannot start the batcher thread");
    }
    *out = b;
    return 0;
}

void batcher_expect(struct batcher *b, int delta)
{
    pthread_mutex_lock(&b->mu);
    b->incoming += delta;
    if (delta < 0)
        pthread_cond_signal(&b->arrived); /* one fewer to wait for */
    pthread_mutex_unlock(&b->mu);
}

int batcher_submit(struct batcher *b, const struct sm_batch *in, struct sm_scores *out,
                   struct sm_error *err)
{
    struct job j = {in, out, err, 0, false, NULL};
    pthread_mutex_lock(&b->mu);
    b->incoming--; /* announced with batcher_expect(b, 1) */
    if (in->n < 1 || !in->data) {
        pthread_cond_signal(&b->arrived);
        pthread_mutex_unlock(&b->mu);
        snprintf(err->message, sizeof err->message, "input_fn produced no image");
        return 500;
    }
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        snprintf(err->message, sizeof err->message, "the server is shutting down");
        return 503;
    }
    if (b->tail)
        b->tail->next = &j;
    else
        b->head = &j;
    b->tail = &j;
    b->queued_images += in->n;
    pthread_cond_signal(&b->arrived);
    while (!j.done)
        pthread_cond_wait(&b->finished, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return j.status;
}

int64_t batcher_load(struct batcher *b)
{
    pthread_mutex_lock(&b->mu);
    int64_t load = b->queued_images + b->running_images + b->incoming;
    pthread_mutex_unlock(&b->mu);
    return load;
}

void batcher_stop(struct batcher *b)
{
    batcher_stop_stats(b, NULL);
}

void batcher_stop_stats(struct batcher *b, struct batcher_stats *out)
{
    if (out)
        *out = (struct batcher_stats){0, 0, 0};
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true; /* pending jobs are still served, then the thread ends */
    pthread_cond_broadcast(&b->arrived);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    if (out)
        *out = b->stats;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->arrived);
    pthread_cond_destroy(&b->finished);
    free(b->group);
    free(b);
}
