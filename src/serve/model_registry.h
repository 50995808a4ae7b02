/*
 * model_registry.h - the models of a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true), by name.
 *
 * Each loaded model has what one model has in single-model mode - its handlers (the defaults
 * or its own code/<name>.so), its context and its own batcher - plus a memory estimate, a reference
 * count and the time it was last used. The registry keeps the estimates under a budget: a load
 * that does not fit first unloads the least recently used idle models (those no request holds),
 * and fails with 507 when even that is not enough.
 *
 * Locking: one mutex guards the table and the counts; loading (reading, extracting, model_fn,
 * warm-up) and freeing happen outside it, so a slow load never blocks requests to other models.
 * A model unloaded while requests hold it leaves the table at once and is freed when the last
 * of them lets go.
 */
#ifndef SERVE_MODEL_REGISTRY_H
#define SERVE_MODEL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/serve.h"

#define MODEL_NAME_MAX 256
#define MODEL_URL_MAX 1024

struct model_registry;

/* A loaded model, as a request sees it between model_registry_get and model_registry_put.
 * Everything here is read-only for the holder. */
struct loaded_model {
    char name[MODEL_NAME_MAX + 1];
    char url[MODEL_URL_MAX + 1];
    struct sm_handlers handlers;
    struct sm_context ctx;
    struct batcher *batcher;
    size_t memory_bytes; /* the estimate the budget counts */
};

struct model_registry_config {
    size_t budget_bytes; /* the sum of the loaded models' estimates stays under this */
    int max_batch;       /* per model's batcher, as SERVE_MAX_BATCH */
    int batch_delay_us;  /* as SERVE_BATCH_DELAY_MS */
};

/* The budget when none is given: SERVE_MODEL_MEMORY_MB if set (exactly that), else three
 * quarters of what the container may still use - its cgroup memory limit (v2 memory.max or v1
 * memory.limit_in_bytes), else the physical memory, less what the server holds already.
 * source (may be NULL) receives where the number came from, for the start-up log. */
size_t model_registry_default_budget(char *source, size_t source_len);

int model_registry_init(struct model_registry **out, const struct model_registry_config *config);
/* Frees every model; call once no request can reach the registry any more. */
void model_registry_free(struct model_registry *r);

/* Loads the model in directory url (train's output, a bare model.pth, a model.tar.gz, custom
 * handlers in code/) under name. Returns 0, or an HTTP status with err filled in: 400 (bad
 * name or url), 409 (name already loaded or loading), 507 (does not fit the budget even
 * after unloading every idle model), 500 (the model could not be loaded; err says why). */
int model_registry_load(struct model_registry *r, const char *name, const char *url,
                        struct sm_error *err);
/* The loaded model called name, held until model_registry_put (marks it used now), or NULL. */
struct loaded_model *model_registry_get(struct model_registry *r, const char *name);
void model_registry_put(struct model_registry *r, struct loaded_model *m);
/* Copies the url of the loaded model called name: 0, or 404 when it is not loaded. Unlike
 * model_registry_get it does not count as a use (describing a model keeps it no warmer). */
int model_registry_describe(struct model_registry *r, const char *name, char *url, size_t len);
/* Takes name out of the table: 0, or 404 when it is not loaded. Requests holding it finish;
 * the last one frees it. */
int model_registry_unload(struct model_registry *r, const char *name);

/* Calls each(arg, name, url) for up to limit loaded models in name order, starting at the
 * first name >= from ("" or NULL: the first). next receives the name to pass as from for the
 * following page, or "" when there is none. Returns how many were listed. */
int model_registry_list(struct model_registry *r, const char *from, int limit,
                        void (*each)(void *arg, const char *name, const char *url), void *arg,
                        char *next, size_t next_len);

/* Snapshot of the counts, for logs and tests. */
void model_registry_usage(struct model_registry *r, int *models, size_t *used_bytes,
                          size_t *budget_bytes);

/* True when name is a model name this registry accepts: 1-256 of [A-Za-z0-9._-], not
 * starting with '.'. */
bool model_registry_valid_name(const char *name);

#endif
