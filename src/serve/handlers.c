/*
 * handlers.c - the default predict_fn (one batched, gradient-free forward pass and a softmax;
 * both the logits and the probabilities are handed on)
 * and the handler table: the defaults, and a user's own code/<name>.so replacing some of them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dir_walk.h"
#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "serve/handlers.h"
#include "serve/serve.h"

int serve_predict_fn(const struct sm_context *ctx, const struct sm_batch *in, struct sm_scores *out,
                     struct sm_error *err)
{
    const struct serve_model *sm = ctx->model;
    tc_scope *s = tc_scope_begin();
    bool grad_was = tc_set_grad_enabled(false);
    int64_t shape[4] = {in->n, 3, in->height, in->width};
    /* The batch as the batcher assembled it (page-locked on a GPU host): not copied again. */
    tc_tensor *x = tc_from_blob(in->data, shape, 4, TC_FLOAT32);
    tc_tensor *logits = serve_model_forward(sm, x);       /* [n,k] float32 */
    tc_tensor *probs = tc_softmax(logits, 1);              /* [n,k] */
    out->n = in->n;
    out->k = sm->num_classes;
    size_t bytes = (size_t)(out->n * out->k) * sizeof(float);
    out->probs = malloc(bytes);
    out->logits = malloc(bytes);
    /* Both read back with one wait for the device. */
    const tc_tensor *results[2] = {probs, logits};
    void *dsts[2] = {out->probs, out->logits};
    size_t sizes[2] = {bytes, bytes};
    int rc = 0;
    if (!out->probs || !out->logits || tc_to_data_many(results, 2, dsts, sizes) < 0) {
        snprintf(err->message, sizeof err->message, "prediction failed: %s",
                 out->probs && out->logits ? tc_last_error() : "out of memory");
        free(out->probs);
        free(out->logits);
        out->probs = out->logits = NULL;
        rc = 500;
    }
    tc_set_grad_enabled(grad_was);
    tc_scope_end(s);
    return rc;
}

void serve_default_handlers(struct sm_handlers *h)
{
    h->model_fn = serve_model_fn;
    h->input_fn = serve_input_fn;
    h->predict_fn = serve_predict_fn;
    h->output_fn = serve_output_fn;
}

int serve_load_custom_handlers(const char *model_dir, struct sm_handlers *h)
{
    char dir[4096], path[4096 + 256];
    if (opt_ml_join(dir, sizeof dir, model_dir, "code") < 0)
        return -1;
    char **names = NULL;
    size_t count = 0;
    if (dir_list_names(dir, &names, &count) < 0) {
        err_clear();
        return 0; /* no code/ folder: the defaults */
    }
    /* In sorted order, so that with several libraries the last one's handlers win on every
     * filesystem alike. */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        size_t n = strlen(names[i]);
        if (n < 4 || strcmp(names[i] + n - 3, ".so") != 0)
            continue;
        if ((rc = opt_ml_join(path, sizeof path, dir, names[i])) < 0)
            break;
        /* The library stays loaded for the life of the process. */
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            rc = err_set("cannot load custom handlers %s: %s", path, dlerror());
            break;
        }
        sm_handlers_init_fn init = (sm_handlers_init_fn)dlsym(lib, "sm_handlers_init");
        if (!init) {
            rc = err_set("%s does not export sm_handlers_init", path);
            break;
        }
        if (init(h) != 0 || !h->model_fn || !h->input_fn || !h->predict_fn || !h->output_fn) {
            rc = err_set("%s: sm_handlers_init failed or left a handler empty", path);
            break;
        }
        log_info("custom handlers loaded from %s", path);
    }
    dir_names_free(names, count);
    return rc;
}
