/*
 * model_registry.c - the table of a multi-model endpoint's models: loading under a memory
 * budget with least-recently-used unloading of idle models, reference counts so that an
 * unload never pulls a model from under a request, and paged listing (see model_registry.h).
 *
 * Memory estimate of a model: the bytes of its files on disk (the archive it was extracted
 * from excepted) plus a fixed overhead for its batcher thread and libtorch's bookkeeping.
 * Weights dominate and are held in memory about as they are stored, so the estimate tracks
 * what a model really costs without measuring the process (which concurrent loads and
 * requests would blur).
 *
 * The table is a list sorted by name: lookups are linear, which stays cheap for the hundreds
 * to thousands of models an instance holds, and listing pages come out in order for free.
 *
 * Devices: each model is loaded once, on one device; on a host with several GPUs the loads
 * take the GPUs in turn (the context's device_index counts loads), so that models and their
 * traffic spread over them. The budget counts host memory only.
 */
#define _GNU_SOURCE
#include "serve/model_registry.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/memory_limit.h"
#include "serve/model_archive.h"

#define MODEL_OVERHEAD_BYTES ((size_t)1 << 20)
#define DIR_SCAN_MAX_DEPTH 8
#define DIR_SCAN_MAX_ENTRIES 100000

struct entry {
    struct loaded_model m; /* first: a struct loaded_model * is a struct entry * */
    int refs;              /* 1 for being in the table, +1 per request holding it */
    bool ready;            /* false while loading: invisible to get, list and unload */
    bool owns_model;       /* m.ctx.model is what serve_model_fn made: freed with the entry */
    double last_used;
    struct entry *next;    /* in name order */
};

struct model_registry {
    struct model_registry_config config;
    pthread_mutex_t mu;
    struct entry *head;
    size_t used;           /* estimates of models in the table, loading, or unloaded but held */
    int count;             /* ready models in the table */
    unsigned loads;        /* loads begun: the next one's device_index */
};

bool model_registry_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > MODEL_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- the budget ---- */

size_t model_registry_default_budget(char *source, size_t source_len)
{
    char dummy[8];
    if (!source) {
        source = dummy;
        source_len = sizeof dummy;
    }
    const char *mb = getenv("SERVE_MODEL_MEMORY_MB");
    if (mb && *mb) {
        char *end;
        long long x = strtoll(mb, &end, 10);
        if (!*end && x >= 1 && x <= (1LL << 24)) {
            snprintf(source, source_len, "SERVE_MODEL_MEMORY_MB");
            return (size_t)x << 20;
        }
        log_warn("SERVE_MODEL_MEMORY_MB=\"%s\" is not a number of MiB from 1 to %lld; ignored", mb,
                 1LL << 24);
    }
    const char *from;
    size_t limit = memory_limit_bytes(&from);
    size_t rss = memory_resident_bytes();
    snprintf(source, source_len, "3/4 of %s less the server's own memory", from);
    return limit > rss ? (limit - rss) / 4 * 3 : 0;
}

/* Bytes of the regular files under dir, skipping skip_top (a name in dir itself). */
static size_t dir_bytes(const char *dir, const char *skip_top, int depth, int *entries)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) && ++*entries < DIR_SCAN_MAX_ENTRIES) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (skip_top && !strcmp(e->d_name, skip_top)))
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            total += (size_t)st.st_size;
        else if (S_ISDIR(st.st_mode) && depth < DIR_SCAN_MAX_DEPTH)
            total += dir_bytes(path, NULL, depth + 1, entries);
    }
    closedir(d);
    return total;
}

/* ---- the table (callers hold r->mu) ---- */

static struct entry *find(struct model_registry *r, const char *name)
{
    for (struct entry *e = r->head; e; e = e->next) {
        int c = strcmp(e->m.name, name);
        if (c == 0)
            return e;
        if (c > 0)
            break;
    }
    return NULL;
}

static void insert(struct model_registry *r, struct entry *e)
{
    struct entry **link = &r->head;
    while (*link && strcmp((*link)->m.name, e->m.name) < 0)
        link = &(*link)->next;
    e->next = *link;
    *link = e;
}

static void unlink_entry(struct model_registry *r, struct entry *e)
{
    for (struct entry **link = &r->head; *link; link = &(*link)->next)
        if (*link == e) {
            *link = e->next;
            e->next = NULL;
            return;
        }
}

/* Makes room for need bytes, unloading least recently used idle models into *victims (to be
 * freed by the caller once the lock is released). 0, or -1 (nothing unloaded) when even
 * unloading every idle model would not make room. */
static int reserve(struct model_registry *r, size_t need, struct entry **victims)
{
    size_t idle = 0;
    for (struct entry *e = r->head; e; e = e->next)
        if (e->ready && e->refs == 1)
            idle += e->m.memory_bytes;
    if (need > r->config.budget_bytes || r->used - idle + need > r->config.budget_bytes)
        return -1;
    while (r->used + need > r->config.budget_bytes) {
        struct entry *lru = NULL;
        for (struct entry *e = r->head; e; e = e->next)
            if (e->ready && e->refs == 1 && (!lru || e->last_used < lru->last_used))
                lru = e;
        unlink_entry(r, lru);
        lru->refs = 0;
        r->used -= lru->m.memory_bytes;
        r->count--;
        lru->next = *victims;
        *victims = lru;
    }
    r->used += need;
    return 0;
}

/* Frees a model no one holds any more (outside the lock: it joins the batcher thread). */
static void free_entry(struct entry *e)
{
    batcher_stop(e->m.batcher);
    /* A custom model_fn that returns the default's model (wrapping serve_model_fn) leaves it to
     * us; any other context is the user's, and there is no handler to free it with. */
    if (e->owns_model)
        serve_model_free(e->m.ctx.model);
    free(e);
}

/* ---- the API ---- */

int model_registry_init(struct model_registry **out, const struct model_registry_config *config)
{
    struct model_registry *r = calloc(1, sizeof *r);
    if (!r)
        return err_set("out of memory");
    r->config = *config;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return 0;
}

void model_registry_free(struct model_registry *r)
{
    if (!r)
        return;
    while (r->head) {
        struct entry *e = r->head;
        r->head = e->next;
        free_entry(e);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int check_url(const char *url, struct sm_error *err)
{
    size_t n = strlen(url);
    if (n < 2 || n > MODEL_URL_MAX || url[0] != '/')
        return serve_fail(err, 400, "\"url\" must be an absolute path of at most %d characters, such "
                              "as /opt/ml/models/<name>/model", MODEL_URL_MAX);
    for (const char *p = url; (p = strstr(p, "..")); p += 2)
        if ((p == url || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return serve_fail(err, 400, "\"url\" %s contains a \"..\" component", url);
    struct stat st;
    if (stat(url, &st) != 0 || !S_ISDIR(st.st_mode))
        return serve_fail(err, 400, "the model directory %s does not exist or is not a directory", url);
    return 0;
}

/* Takes a failed load's placeholder out of the table and gives its reservation back. */
static void drop_placeholder(struct model_registry *r, struct entry *e)
{
    pthread_mutex_lock(&r->mu);
    unlink_entry(r, e);
    r->used -= e->m.memory_bytes;
    pthread_mutex_unlock(&r->mu);
    free_entry(e);
}

int model_registry_load(struct model_registry *r, const char *name, const char *url,
                        struct sm_error *err)
{
    if (!model_registry_valid_name(name))
        return serve_fail(err, 400, "\"model_name\" must be 1 to %d of A-Z a-z 0-9 . _ - (not "
                              "starting with '.')", MODEL_NAME_MAX);
    int status = check_url(url, err);
    if (status)
        return status;
    double t0 = clock_now_s();
    struct entry *e = calloc(1, sizeof *e);
    if (!e)
        return serve_fail(err, 507, "out of memory");
    snprintf(e->m.name, sizeof e->m.name, "%s", name);
    snprintf(e->m.url, sizeof e->m.url, "%s", url);
    e->refs = 1;
    pthread_mutex_lock(&r->mu);
    struct entry *old = find(r, name);
    bool old_ready = old && old->ready;
    if (!old) {
        insert(r, e); /* reserves the name: a second load of it is a conflict */
        e->m.ctx.device_index = (int)(r->loads++ % REPLICAS_MAX);
    }
    pthread_mutex_unlock(&r->mu);
    if (old) {
        free(e);
        return serve_fail(err, 409, "model %s is already %s", name, old_ready ? "loaded" : "loading");
    }

    /* Files first (an archive extracted, the user's handlers): they tell the estimate. */
    serve_default_handlers(&e->m.handlers);
    if (model_archive_prepare(url) < 0 || serve_load_custom_handlers(url, &e->m.handlers) < 0) {
        status = serve_fail(err, 500, "cannot load model %s: %s", name, err_msg());
        drop_placeholder(r, e);
        return status;
    }
    int scanned = 0;
    size_t need = dir_bytes(url, "model.tar.gz", 0, &scanned) + MODEL_OVERHEAD_BYTES;
    struct entry *victims = NULL;
    pthread_mutex_lock(&r->mu);
    int fits = reserve(r, need, &victims);
    if (fits == 0)
        e->m.memory_bytes = need;
    size_t used = r->used, budget = r->config.budget_bytes;
    pthread_mutex_unlock(&r->mu);
    for (struct entry *v = victims, *next; v; v = next) {
        next = v->next;
        log_info("unloading model %s (least recently used, idle) to make room for %s", v->m.name,
                 name);
        free_entry(v);
    }
    if (fits < 0) {
        if (need > budget)
            status = serve_fail(err, 507, "model %s needs about %.1f MiB, more than the whole %.1f MiB "
                                    "budget (SERVE_MODEL_MEMORY_MB)",
                          name, (double)need / (1 << 20), (double)budget / (1 << 20));
        else
            status = serve_fail(err, 507, "model %s needs about %.1f MiB; %.1f of the %.1f MiB budget "
                                    "(SERVE_MODEL_MEMORY_MB) are held by models in use or "
                                    "loading",
                          name, (double)need / (1 << 20), (double)used / (1 << 20),
                          (double)budget / (1 << 20));
        drop_placeholder(r, e);
        return status;
    }

    serve_model_fn_take_last();
    status = e->m.handlers.model_fn(url, &e->m.ctx, err);
    e->owns_model = status == 0 && e->m.ctx.model && serve_model_fn_take_last() == e->m.ctx.model;
    if (status != 0) {
        char reason[SM_ERROR_MAX];
        snprintf(reason, sizeof reason, "%s", err->message[0] ? err->message : "model_fn failed");
        serve_fail(err, 500, "cannot load model %s: %s", name, reason);
        drop_placeholder(r, e);
        return 500;
    }
    const struct serve_model *made = e->owns_model ? e->m.ctx.model : NULL;
    bool on_gpu = made ? made->device.type == TC_CUDA : tc_cuda_device_count() > 0;
    if (batcher_start(&e->m.batcher, &e->m.ctx, e->m.handlers.predict_fn, r->config.max_batch,
                      r->config.batch_delay_us, on_gpu) < 0) {
        status = serve_fail(err, 500, "cannot load model %s: %s", name, err_msg());
        drop_placeholder(r, e);
        return status;
    }
    pthread_mutex_lock(&r->mu);
    e->ready = true;
    e->last_used = clock_now_s();
    int count = ++r->count;
    used = r->used;
    pthread_mutex_unlock(&r->mu);
    log_info("loaded model %s from %s on %s in %.1f ms (about %.1f MiB; %d models, %.1f of "
             "%.1f MiB)",
             name, url, made ? made->device_name : "its own device (custom model_fn)",
             (clock_now_s() - t0) * 1e3, (double)need / (1 << 20), count,
             (double)used / (1 << 20), (double)budget / (1 << 20));
    return 0;
}

struct loaded_model *model_registry_get(struct model_registry *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    struct entry *e = find(r, name);
    if (e && e->ready) {
        e->refs++;
        e->last_used = clock_now_s();
    } else {
        e = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return e ? &e->m : NULL;
}

void model_registry_put(struct model_registry *r, struct loaded_model *m)
{
    struct entry *e = (struct entry *)m;
    pthread_mutex_lock(&r->mu);
    bool last = --e->refs == 0;
    if (last)
        r->used -= e->m.memory_bytes;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        log_info("model %s freed after its last request", e->m.name);
        free_entry(e);
    }
}

int model_registry_describe(struct model_registry *r, const char *name, char *url, size_t len)
{
    pthread_mutex_lock(&r->mu);
    struct entry *e = find(r, name);
    bool found = e && e->ready;
    if (found)
        snprintf(url, len, "%s", e->m.url);
    pthread_mutex_unlock(&r->mu);
    return found ? 0 : 404;
}

int model_registry_unload(struct model_registry *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    struct entry *e = find(r, name);
    if (!e || !e->ready) {
        pthread_mutex_unlock(&r->mu);
        return 404;
    }
    unlink_entry(r, e);
    r->count--;
    int held = --e->refs;
    if (!held)
        r->used -= e->m.memory_bytes;
    pthread_mutex_unlock(&r->mu);
    if (held)
        log_info("unloading model %s once its %d request(s) in flight finish", name, held);
    else
        free_entry(e);
    return 0;
}

int model_registry_list(struct model_registry *r, const char *from, int limit,
                        void (*each)(void *arg, const char *name, const char *url), void *arg,
                        char *next, size_t next_len)
{
    int n = 0;
    next[0] = '\0';
    pthread_mutex_lock(&r->mu);
    for (struct entry *e = r->head; e; e = e->next) {
        if (!e->ready || (from && strcmp(e->m.name, from) < 0))
            continue;
        if (n == limit) {
            snprintf(next, next_len, "%s", e->m.name);
            break;
        }
        each(arg, e->m.name, e->m.url);
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

void model_registry_usage(struct model_registry *r, int *models, size_t *used_bytes,
                          size_t *budget_bytes)
{
    pthread_mutex_lock(&r->mu);
    *models = r->count;
    *used_bytes = r->used;
    *budget_bytes = r->config.budget_bytes;
    pthread_mutex_unlock(&r->mu);
}
