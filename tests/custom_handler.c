/*
 * custom_handler.c - a user's custom handlers, as the tests build and ship them in a model's
 * code/ folder: model_fn takes a second longer (so that the tests can see /ping answer 503
 * while the model loads) and then does the default's work; output_fn adds text/plain (the
 * top label alone) and leaves every other Accept to the default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sm_handlers.h"

static sm_model_fn default_model_fn;
static sm_output_fn default_output_fn;

static int slow_model_fn(const char *model_dir, struct sm_context *ctx, struct sm_error *err)
{
    sleep(1);
    return default_model_fn(model_dir, ctx, err);
}

static int text_output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                          const struct sm_request *req, struct sm_response *out,
                          struct sm_error *err)
{
    if (strcmp(req->accept, "text/plain") != 0)
        return default_output_fn(ctx, scores, req, out, err);
    size_t cap = (size_t)scores->n * 64 + 1;
    char *text = malloc(cap);
    if (!text) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return 500;
    }
    size_t used = 0;
    for (int64_t i = 0; i < scores->n; i++) {
        const float *p = scores->probs + i * scores->k;
        int64_t best = 0;
        for (int64_t j = 1; j < scores->k; j++)
            if (p[j] > p[best])
                best = j;
        used += (size_t)snprintf(text + used, cap - used, "%.60s\n", ctx->class_names[best]);
    }
    out->body = (uint8_t *)text;
    out->len = used;
    snprintf(out->content_type, sizeof out->content_type, "text/plain");
    return 0;
}

int sm_handlers_init(struct sm_handlers *h)
{
    default_model_fn = h->model_fn;
    default_output_fn = h->output_fn;
    h->model_fn = slow_model_fn;
    h->output_fn = text_output_fn;
    return 0;
}
