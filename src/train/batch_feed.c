/*
 * batch_feed.c - the loader's batches as tensors on the training device (see batch_feed.h).
 *
 * The device path's order of events for batch k in staging buffer i (k % 2, alternating):
 *   copy stream:    wait consumed[i] (batch k-2 read out of buffer i), copy bytes and labels of
 *                   batch k into buffer i, record copied[i]          -- in batch_feed_next(k-1)
 *   compute stream: wait copied[i], look up the floats, clone the labels, record consumed[i]
 *                                                                      -- batch_feed_tensors(k)
 *   host:           the step of batch k is enqueued; synchronize copied[i] (long passed, as a
 *                   rule), give the page-locked slot back to the loader -- batch_feed_done(k)
 * so the copy of batch k+1 runs on the copy engine while batch k computes, and the host only
 * waits if it has run more than a batch ahead of the GPU.
 */
#include "train/batch_feed.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "image/transform.h"
#include "train/job.h"

struct stage {
    tc_tensor *pixels;   /* device uint8 [batch,S,S,3] */
    tc_tensor *labels;   /* device int64 [batch] */
    tc_event *copied;    /* on the copy stream, after this batch's copies */
    tc_event *consumed;  /* on the compute stream, after the last read of the buffer */
    struct batch *host;  /* the loader's batch in it; NULL when free */
};

struct batch_feed {
    struct loader *loader;
    tc_device device;
    int size; /* image side S */
    bool channels_last, prefetch;
    /* device path */
    tc_stream *copy_stream;
    tc_tensor *table; /* normalisation of each byte of each channel: float [3*256] */
    struct stage stage[2];
    int next_stage; /* the buffer the next batch is copied into */
    int ahead;      /* the buffer holding the batch copied ahead, or -1 */
    int ahead_got;  /* loader_next's answer when fetching ahead: 1, 0 (end) or -1 */
};

/* The loader's slot memory: page-locked, so that copies from it to the GPU are asynchronous. */
static void *pinned_alloc(size_t bytes, void *ctx)
{
    (void)ctx;
    return tc_host_alloc(bytes, true);
}

static void host_release(void *p, void *ctx)
{
    (void)ctx;
    tc_host_free(p);
}

static int setup_device_path(struct batch_feed *f, const struct train_job *job, int batch_size)
{
    float table[3][256];
    image_normalize_table(job->config.mean, job->config.std, table);
    int64_t table_shape[1] = {3 * 256}, pixels_shape[4] = {batch_size, f->size, f->size, 3};
    int64_t labels_shape[1] = {batch_size};
    tc_scope *scope = tc_scope_begin(); /* the host copy of the table */
    f->table = tc_own(tc_to_device(tc_from_data(table, table_shape, 1, TC_FLOAT32), f->device));
    tc_scope_end(scope);
    f->copy_stream = tc_stream_new(f->device);
    bool ok = f->table && f->copy_stream;
    for (int i = 0; i < 2 && ok; i++) {
        struct stage *s = &f->stage[i];
        s->pixels = tc_own(tc_empty(pixels_shape, 4, TC_UINT8, f->device));
        s->labels = tc_own(tc_empty(labels_shape, 1, TC_INT64, f->device));
        s->copied = tc_event_new(f->device);
        s->consumed = tc_event_new(f->device);
        ok = s->pixels && s->labels && s->copied && s->consumed;
    }
    return ok ? 0 : err_set_reason(ERR_REASON_OUT_OF_MEMORY, "device staging buffers: %s",
                                   tc_last_error());
}

static struct loader_config loader_config_for(const struct train_job *job, bool train)
{
    struct loader_config c = {
        .batch_size = job->config.hp.batch_size,
        .image_size = job->config.image_size,
        .resize_size = job->config.resize_size,
        .resize_mode = job->config.resize_mode,
        .train = train,
        .augment = job->config.hp.augment,
        .min_crop_scale = job->config.hp.min_crop_scale,
        .pixels = job->config.device_prefetch ? LOADER_UINT8_HWC : LOADER_FLOAT_CHW,
        .threads = job->config.threads,
        .seed = job->config.hp.seed,
        .rank = job->layout.rank,
        .world_size = job->layout.world_size,
    };
    memcpy(c.mean, job->config.mean, sizeof c.mean);
    memcpy(c.std, job->config.std, sizeof c.std);
    return c;
}

size_t batch_feed_batch_count(const struct train_job *job, const struct dataset *d, bool train)
{
    struct loader_config c = loader_config_for(job, train);
    return loader_batch_count(d->count, &c);
}

int batch_feed_start(struct batch_feed **out, struct train_job *job, const struct dataset *d,
                     bool train, int epoch, size_t first_batch)
{
    *out = NULL;
    struct batch_feed *f = calloc(1, sizeof *f);
    if (!f)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory starting the batch feed");
    f->device = job->device;
    f->size = job->config.image_size;
    f->channels_last = job->config.channels_last;
    f->prefetch = job->config.device_prefetch;
    f->ahead = -1;
    f->ahead_got = 1;
    struct loader_config c = loader_config_for(job, train);
    if (f->prefetch && f->device.type == TC_CUDA)
        c.memory = (struct loader_memory){pinned_alloc, host_release, NULL};
    if ((f->prefetch && setup_device_path(f, job, c.batch_size) < 0) ||
        loader_start(&f->loader, d, &c, epoch, first_batch) < 0) {
        batch_feed_stop(f, NULL);
        return -1;
    }
    *out = f;
    return 0;
}

/* Takes the loader's next batch and starts its copy into the next staging buffer. */
static int fetch_ahead(struct batch_feed *f)
{
    struct batch *hb;
    f->ahead_got = loader_next(f->loader, &hb);
    if (f->ahead_got <= 0)
        return f->ahead_got;
    int i = f->next_stage;
    struct stage *s = &f->stage[i];
    if (s->host) {
        loader_release(f->loader, hb);
        f->ahead_got = -1;
        return err_set_reason(ERR_REASON_INTERNAL, "batch feed: next before done");
    }
    s->host = hb;
    f->ahead = i;
    f->next_stage = 1 - i;
    if (hb->n == 0)
        return 1; /* every image skipped: nothing to copy */
    tc_scope *scope = tc_scope_begin();
    int64_t pixels_shape[4] = {hb->n, f->size, f->size, 3}, labels_shape[1] = {hb->n};
    int rc = tc_event_wait(s->consumed, f->copy_stream) == 0 &&
                     tc_copy_async_(tc_narrow(s->pixels, 0, 0, hb->n),
                                    tc_from_blob(hb->pixels, pixels_shape, 4, TC_UINT8),
                                    f->copy_stream) == 0 &&
                     tc_copy_async_(tc_narrow(s->labels, 0, 0, hb->n),
                                    tc_from_blob(hb->labels, labels_shape, 1, TC_INT64),
                                    f->copy_stream) == 0 &&
                     tc_event_record(s->copied, f->copy_stream) == 0
                 ? 1
                 : err_set("copying batch %zu to the device: %s", hb->index, tc_last_error());
    tc_scope_end(scope);
    if (rc < 0)
        f->ahead_got = -1;
    return rc;
}

int batch_feed_next(struct batch_feed *f, struct fed_batch *b)
{
    b->host = NULL;
    b->stage = -1;
    if (!f->prefetch) {
        int got = loader_next(f->loader, &b->host);
        return got < 0 ? err_default_reason(ERR_REASON_INTERNAL) : got;
    }
    if (f->ahead < 0 && f->ahead_got > 0 && fetch_ahead(f) < 0)
        return -1;
    if (f->ahead < 0)
        return f->ahead_got;
    b->stage = f->ahead;
    b->host = f->stage[f->ahead].host;
    f->ahead = -1;
    /* The batch after it starts its copy now, while this one computes. */
    return fetch_ahead(f) < 0 ? -1 : 1;
}

int batch_feed_tensors(struct batch_feed *f, const struct fed_batch *b, tc_tensor **x,
                       tc_tensor **y)
{
    const struct batch *hb = b->host;
    *x = *y = NULL;
    if (hb->n < 1)
        return err_set_reason(ERR_REASON_INTERNAL, "batch feed: an empty batch has no tensors");
    if (f->prefetch) {
        struct stage *s = &f->stage[b->stage];
        if (tc_event_wait(s->copied, NULL) < 0)
            return err_set("waiting for batch %zu's copy: %s", hb->index, tc_last_error());
        *x = tc_pixels_lookup(tc_narrow(s->pixels, 0, 0, hb->n), f->table, f->channels_last);
        /* The loss's backward reads the labels after the buffer is refilled: a copy of them. */
        *y = tc_clone(tc_narrow(s->labels, 0, 0, hb->n));
        if (!*x || !*y || tc_event_record(s->consumed, NULL) < 0)
            return err_set("normalising batch %zu on the device: %s", hb->index, tc_last_error());
        return 0;
    }
    int64_t xs[4] = {hb->n, 3, f->size, f->size}, ys[1] = {hb->n};
    *x = tc_from_blob(hb->images, xs, 4, TC_FLOAT32);
    *y = tc_from_blob(hb->labels, ys, 1, TC_INT64);
    if (f->device.type == TC_CUDA) {
        *x = tc_to_device(*x, f->device);
        *y = tc_to_device(*y, f->device);
    }
    if (f->channels_last)
        *x = tc_to_channels_last(*x);
    return *x && *y ? 0 : err_set("batch %zu as tensors: %s", hb->index, tc_last_error());
}

int batch_feed_done(struct batch_feed *f, struct fed_batch *b)
{
    if (!b->host)
        return 0;
    int rc = 0;
    if (b->stage >= 0) {
        struct stage *s = &f->stage[b->stage];
        /* The slot is page-locked memory the copy engine reads: only back once it has. */
        if (b->host->n > 0 && tc_event_synchronize(s->copied) < 0)
            rc = err_set("waiting for batch %zu's copy: %s", b->host->index, tc_last_error());
        s->host = NULL;
    }
    loader_release(f->loader, b->host);
    b->host = NULL;
    return rc;
}

void batch_feed_stop(struct batch_feed *f, struct loader_stats *stats)
{
    if (!f)
        return;
    /* No copy may still read a slot or write a buffer when they are freed. */
    for (int i = 0; i < 2; i++)
        if (f->stage[i].copied && f->stage[i].host)
            tc_event_synchronize(f->stage[i].copied);
    if (f->loader)
        loader_stop(f->loader, stats);
    for (int i = 0; i < 2; i++) {
        struct stage *s = &f->stage[i];
        tc_free(s->pixels);
        tc_free(s->labels);
        tc_event_free(s->copied);
        tc_event_free(s->consumed);
    }
    tc_free(f->table);
    tc_stream_free(f->copy_stream);
    free(f);
}
