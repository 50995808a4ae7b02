/*
 * loader.c - worker threads filling a ring of batch slots in order (see loader.h).
 *
 * A batch is cut into chunks of about batch_size / threads images, and the workers take the
 * chunks in order from one counter: every batch, the epoch's first included, is built by all
 * workers at once, so the first step waits for one chunk's decoding, not a whole batch's on one
 * core (half a second at batch 256 and 224 px). Batch b goes into slot (b - first) % slots; an
 * image keeps its place in the batch while the chunks are filled, and the worker finishing the
 * last chunk closes the gaps left by unreadable images. A slot is reused for batch b + slots
 * once the consumer has released batch b. Batches are therefore handed out strictly in order,
 * and the worst case in memory is `slots` batches.
 */
#define _GNU_SOURCE
#include "data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"
#include "image/jitter.h"
#include "image/transform.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY };

struct slot {
    struct batch batch;
    enum slot_state state;
    size_t expected; /* the batch index this slot holds next */
    int chunks_done; /* of the batch being filled */
    bool *ok;        /* [batch_size]: the image at that place was read */
};

struct worker {
    struct loader *l;
    int id;
    pthread_t thread;
    bool started;
};

struct loader {
    const struct dataset *d;
    struct loader_config c;
    int epoch;
    size_t *indices; /* this rank's samples, in epoch order */
    size_t shard_len;
    size_t first_batch, end_batch;
    struct slot *slots;
    int slot_count;
    struct worker *workers;
    int worker_count;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    size_t next; /* next batch to hand out */
    size_t next_chunk; /* next chunk for a worker, counted from first_batch's first */
    int chunk_images, chunks_per_batch;
    bool stopping;
    struct loader_stats stats;
};

static size_t shard_length(size_t n, const struct loader_config *c)
{
    size_t world = (size_t)(c->world_size > 0 ? c->world_size : 1);
    size_t rank = (size_t)c->rank;
    if (c->train) /* padded so that every rank takes the same number of steps */
        return (n + world - 1) / world;
    return n / world + (rank < n % world ? 1 : 0);
}

size_t loader_batch_count(size_t dataset_size, const struct loader_config *c)
{
    size_t len = shard_length(dataset_size, c), bs = (size_t)c->batch_size;
    /* A last training batch of one image would break batch norm: it is dropped. */
    if (c->train && len % bs == 1 && len > 1)
        return len / bs;
    return (len + bs - 1) / bs;
}

/* The epoch's sample order for this rank: shuffled for training (seeded by seed and epoch),
 * padded by wrapping around, then every world_size-th sample from rank. */
static int make_indices(struct loader *l)
{
    size_t n = l->d->count;
    size_t world = (size_t)(l->c.world_size > 0 ? l->c.world_size : 1);
    size_t *order = malloc(n * sizeof *order);
    l->shard_len = shard_length(n, &l->c);
    l->indices = malloc((l->shard_len + 1) * sizeof *l->indices);
    if (!order || !l->indices) {
        free(order);
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory ordering %zu samples", n);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (l->c.train) {
        uint64_t s = l->c.seed * 1000003u + (uint64_t)l->epoch;
        rng_shuffle(order, n, &s);
    }
    for (size_t k = 0; k < l->shard_len; k++)
        l->indices[k] = order[(k * world + (size_t)l->c.rank) % n];
    free(order);
    return 0;
}

static void note_skipped(struct loader *l, const char *message)
{
    pthread_mutex_lock(&l->mu);
    if (l->stats.skipped < 3)
        snprintf(l->stats.first_bad[l->stats.skipped], sizeof l->stats.first_bad[0], "%s", message);
    l->stats.skipped++;
    pthread_mutex_unlock(&l->mu);
}

/* A random-resized crop of a file, decoded at the smallest JPEG DCT scale at which the crop
 * still has image_size pixels a side: the box is drawn on the full size (so it is the same
 * whatever the scale), then scaled to what was decoded. */
static int decode_random_crop(struct loader *l, size_t idx, uint64_t *rng, struct image *img,
                              struct image_box *box)
{
    char *data;
    size_t len;
    int w, h;
    if (dataset_read_file(l->d, idx, &data, &len) < 0)
        return -1;
    const uint8_t *bytes = (const uint8_t *)data;
    int rc = image_probe(bytes, len, &w, &h);
    if (rc == 0) {
        *box = image_random_resized_crop_box(w, h, l->c.min_crop_scale, rng);
        double need = fmax(l->c.image_size / box->w, l->c.image_size / box->h);
        int min_side = (int)ceil((w < h ? w : h) * fmin(need, 1.0));
        rc = image_decode(bytes, len, min_side, img);
    }
    free(data);
    if (rc < 0 && !l->d->items[idx].path)
        return err_prefix("RecordIO record %u: ", l->d->items[idx].record);
    if (rc < 0)
        return err_prefix("%s: ", l->d->items[idx].path);
    double sx = (double)img->width / w, sy = (double)img->height / h;
    *box = (struct image_box){box->x * sx, box->y * sy, box->w * sx, box->h * sy};
    return 0;
}

/* The built-in algorithm's crop levels: random crop + flip, then optionally an HLS shift and
 * an affine jitter, on the 8-bit crop. Returns the bytes to use (in *buffer, which the caller
 * frees) and whether to flip them. */
static int crop_augment(struct loader *l, size_t idx, uint64_t *rng, uint8_t **buffer,
                        const uint8_t **pixels, bool *flip)
{
    const struct loader_config *c = &l->c;
    struct image img = {0};
    int s = c->image_size;
    uint8_t *crop = *buffer = malloc((size_t)s * s * 3 * 2);
    int rc = crop ? dataset_load_image(l->d, idx, c->resize_size, &img)
                  : err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory");
    if (rc == 0) {
        struct image_box box = image_random_crop_box(img.width, img.height, c->resize_mode,
                                                     c->resize_size, s, rng);
        rc = image_resample(&img, box, s, s, crop);
    }
    if (rc == 0) {
        *flip = rng_uniform(rng) < 0.5;
        *pixels = crop;
        if (c->augment >= IMAGE_AUGMENT_CROP_COLOR) {
            int dh = (int)lrint(rng_uniform(rng) * 72 - 36);
            int ds = (int)lrint(rng_uniform(rng) * 100 - 50);
            int dl = (int)lrint(rng_uniform(rng) * 100 - 50);
            image_jitter_hls(crop, (size_t)s * s, dh, ds, dl);
        }
        if (c->augment == IMAGE_AUGMENT_CROP_COLOR_TRANSFORM) {
            double angle = rng_uniform(rng) * 20 - 10;
            double shear = rng_uniform(rng) * 0.2 - 0.1;
            double aspect = rng_uniform(rng) * 0.5 - 0.25;
            *pixels = crop + (size_t)s * s * 3;
            image_affine_jitter(crop, s, angle, shear, aspect, crop + (size_t)s * s * 3);
        }
    }
    image_free(&img);
    return rc;
}

/* Where one sample goes: floats [3,S,S] or bytes [S,S,3], by the configured format. */
struct sample_out {
    float *chw;
    uint8_t *hwc;
};

/* Resamples `box` of img into out, mirrored when flip: the last step of every transform. */
static int emit_box(const struct loader_config *c, const struct image *img, struct image_box box,
                    bool flip, struct sample_out out)
{
    int s = c->image_size;
    if (out.chw)
        return image_resample_normalized(img, box, s, c->mean, c->std, flip, out.chw);
    if (image_resample(img, box, s, s, out.hwc) < 0)
        return -1;
    if (flip)
        image_mirror(out.hwc, s, s);
    return 0;
}

/* Decodes and transforms sample `idx` into out; false if it had to be skipped. */
static bool load_sample(struct loader *l, size_t idx, struct sample_out out)
{
    const struct loader_config *c = &l->c;
    struct image img = {0};
    uint64_t rng = rng_seed(c->seed, (uint64_t)l->epoch, idx);
    struct image_box box;
    bool flip = false;
    int rc;
    if (!c->train || c->augment == IMAGE_AUGMENT_NONE) {
        rc = dataset_load_image(l->d, idx, c->resize_size, &img);
        if (rc == 0) {
            box = image_eval_box(img.width, img.height, c->resize_mode, c->resize_size,
                                 c->image_size);
            rc = emit_box(c, &img, box, false, out);
        }
    } else if (c->augment != IMAGE_AUGMENT_RANDOM_RESIZED) {
        uint8_t *buffer = NULL;
        const uint8_t *pixels = NULL;
        rc = crop_augment(l, idx, &rng, &buffer, &pixels, &flip);
        int s = c->image_size;
        if (rc == 0 && out.chw) {
            image_normalize_chw(pixels, s, c->mean, c->std, flip, out.chw);
        } else if (rc == 0) {
            memcpy(out.hwc, pixels, (size_t)s * s * 3);
            if (flip)
                image_mirror(out.hwc, s, s);
        }
        free(buffer);
    } else {
        if (l->d->source != DATASET_CIFAR) {
            rc = decode_random_crop(l, idx, &rng, &img, &box);
        } else {
            rc = dataset_load_image(l->d, idx, c->image_size, &img);
            if (rc == 0)
                box = image_random_resized_crop_box(img.width, img.height, c->min_crop_scale, &rng);
        }
        flip = rng_uniform(&rng) < 0.5;
        if (rc == 0)
            rc = emit_box(c, &img, box, flip, out);
    }
    image_free(&img);
    if (rc < 0) {
        note_skipped(l, err_msg());
        return false;
    }
    return true;
}

/* How many images batch `index` holds before any is skipped: batch_size, or fewer at the end. */
static size_t batch_length(const struct loader *l, size_t index)
{
    size_t start = index * (size_t)l->c.batch_size;
    size_t left = l->shard_len - start;
    return left < (size_t)l->c.batch_size ? left : (size_t)l->c.batch_size;
}

/* The images of chunk `chunk` of batch `index` at their places in the batch. */
static void fill_chunk(struct loader *l, struct slot *s, size_t index, int chunk)
{
    struct batch *b = &s->batch;
    size_t per_image = 3 * (size_t)l->c.image_size * (size_t)l->c.image_size;
    size_t start = index * (size_t)l->c.batch_size;
    size_t from = start + (size_t)chunk * (size_t)l->chunk_images;
    size_t to = from + (size_t)l->chunk_images, end = start + batch_length(l, index);
    to = to < end ? to : end;
    /* Read without the lock: a late stop only costs finishing this chunk. */
    for (size_t k = from; k < to && !__atomic_load_n(&l->stopping, __ATOMIC_RELAXED); k++) {
        size_t idx = l->indices[k], place = k - start, at = place * per_image;
        struct sample_out out = {b->images ? b->images + at : NULL, b->pixels ? b->pixels + at : NULL};
        s->ok[place] = load_sample(l, idx, out);
        b->labels[place] = l->d->items[idx].label;
    }
}

/* Once every chunk is in: the images that were read, moved together in order. */
static void close_gaps(struct loader *l, struct slot *s)
{
    struct batch *b = &s->batch;
    size_t per_image = 3 * (size_t)l->c.image_size * (size_t)l->c.image_size;
    size_t bytes = per_image * (b->images ? sizeof(float) : 1);
    size_t len = batch_length(l, b->index);
    int n = 0;
    for (size_t k = 0; k < len; k++) {
        if (!s->ok[k])
            continue;
        if ((size_t)n != k) {
            char *base = b->images ? (char *)b->images : (char *)b->pixels;
            memmove(base + (size_t)n * bytes, base + k * bytes, bytes);
            b->labels[n] = b->labels[k];
        }
        n++;
    }
    b->n = n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct loader *l = w->l;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        size_t unit = l->next_chunk++;
        size_t b = l->first_batch + unit / (size_t)l->chunks_per_batch;
        int chunk = (int)(unit % (size_t)l->chunks_per_batch);
        struct slot *s = &l->slots[(b - l->first_batch) % (size_t)l->slot_count];
        while (b < l->end_batch && !l->stopping && !(s->expected == b && s->state != SLOT_READY))
            pthread_cond_wait(&l->changed, &l->mu);
        if (b >= l->end_batch || l->stopping) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        if (s->state == SLOT_FREE) { /* the batch's first chunk to start */
            s->state = SLOT_FILLING;
            s->chunks_done = 0;
            s->batch.index = b;
            s->batch.n = 0;
            memset(s->ok, 0, (size_t)l->c.batch_size * sizeof *s->ok);
        }
        pthread_mutex_unlock(&l->mu);

        fill_chunk(l, s, b, chunk);

        pthread_mutex_lock(&l->mu);
        bool last = ++s->chunks_done == l->chunks_per_batch;
        pthread_mutex_unlock(&l->mu);
        if (!last)
            continue;
        close_gaps(l, s); /* no other worker touches the slot now */
        pthread_mutex_lock(&l->mu);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->mu);
    }
    return NULL;
}

static void *slot_alloc(const struct loader_config *c, size_t bytes)
{
    return c->memory.alloc ? c->memory.alloc(bytes, c->memory.ctx) : malloc(bytes);
}

static void slot_release(const struct loader_config *c, void *p)
{
    if (p && c->memory.release)
        c->memory.release(p, c->memory.ctx);
    else if (p)
        free(p);
}

static void loader_free(struct loader *l)
{
    for (int i = 0; l->slots && i < l->slot_count; i++) {
        struct batch *b = &l->slots[i].batch;
        slot_release(&l->c, b->images ? (void *)b->images : (void *)b->pixels);
        slot_release(&l->c, b->labels);
        free(l->slots[i].ok);
    }
    free(l->slots);
    free(l->workers);
    free(l->indices);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->changed);
    free(l);
}

int loader_start(struct loader **out, const struct dataset *d, const struct loader_config *c,
                 int epoch, size_t first_batch)
{
    *out = NULL;
    if (c->batch_size < 1 || c->image_size < 1 || c->threads < 1 || d->count == 0)
        return err_set("loader: bad configuration");
    struct loader *l = calloc(1, sizeof *l);
    if (!l)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory starting the data loader");
    l->d = d;
    l->c = *c;
    l->epoch = epoch;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->changed, NULL);
    if (make_indices(l) < 0) {
        loader_free(l);
        return -1;
    }
    l->end_batch = loader_batch_count(d->count, c);
    l->first_batch = first_batch < l->end_batch ? first_batch : l->end_batch;
    l->next = l->first_batch;
    l->worker_count = c->threads;
    l->slot_count = c->threads + 2;
    l->chunk_images = (c->batch_size + c->threads - 1) / c->threads;
    l->chunks_per_batch = (c->batch_size + l->chunk_images - 1) / l->chunk_images;
    l->slots = calloc((size_t)l->slot_count, sizeof *l->slots);
    l->workers = calloc((size_t)l->worker_count, sizeof *l->workers);
    size_t values = (size_t)c->batch_size * 3 * (size_t)c->image_size * (size_t)c->image_size;
    bool bytes = c->pixels == LOADER_UINT8_HWC;
    for (int i = 0; l->slots && i < l->slot_count; i++) {
        struct batch *b = &l->slots[i].batch;
        void *images = slot_alloc(c, values * (bytes ? 1 : sizeof(float)));
        b->images = bytes ? NULL : images;
        b->pixels = bytes ? images : NULL;
        b->labels = slot_alloc(c, (size_t)c->batch_size * sizeof(int64_t));
        l->slots[i].ok = calloc((size_t)c->batch_size, sizeof *l->slots[i].ok);
        l->slots[i].expected = l->first_batch + (size_t)i;
        if (!images || !b->labels || !l->slots[i].ok) {
            loader_free(l);
            return err_set_reason(ERR_REASON_OUT_OF_MEMORY,
                                  "out of memory for %d batches of %d images of %dx%d",
                                  l->slot_count, c->batch_size, c->image_size, c->image_size);
        }
    }
    if (!l->slots || !l->workers) {
        loader_free(l);
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory starting the data loader");
    }
    for (int i = 0; i < l->worker_count; i++) {
        l->workers[i] = (struct worker){l, i, 0, false};
        if (pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) != 0) {
            loader_stop(l, NULL);
            return err_set("cannot start data loader thread %d", i);
        }
        l->workers[i].started = true;
    }
    *out = l;
    return 0;
}

int loader_next(struct loader *l, struct batch **out)
{
    *out = NULL;
    if (l->next >= l->end_batch)
        return 0;
    struct slot *s = &l->slots[(l->next - l->first_batch) % (size_t)l->slot_count];
    pthread_mutex_lock(&l->mu);
    while (!l->stopping && !(s->state == SLOT_READY && s->batch.index == l->next))
        pthread_cond_wait(&l->changed, &l->mu);
    bool ok = !l->stopping;
    if (ok)
        l->next++;
    pthread_mutex_unlock(&l->mu);
    if (!ok)
        return err_set("the data loader was stopped while a batch was awaited");
    l->stats.images += (size_t)s->batch.n;
    *out = &s->batch;
    return 1;
}

void loader_release(struct loader *l, struct batch *b)
{
    struct slot *s = &l->slots[(b->index - l->first_batch) % (size_t)l->slot_count];
    pthread_mutex_lock(&l->mu);
    s->state = SLOT_FREE;
    s->expected += (size_t)l->slot_count;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mu);
}

void loader_stop(struct loader *l, struct loader_stats *stats)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    __atomic_store_n(&l->stopping, true, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->worker_count; i++)
        if (l->workers[i].started)
            pthread_join(l->workers[i].thread, NULL);
    if (stats) {
        for (size_t k = 0; k < 3 && stats->skipped + k < 3 && k < l->stats.skipped; k++)
            memcpy(stats->first_bad[stats->skipped + k], l->stats.first_bad[k], sizeof stats->first_bad[0]);
        stats->images += l->stats.images;
        stats->skipped += l->stats.skipped;
    }
    loader_free(l);
}
