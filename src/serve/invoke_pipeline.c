/*
 * invoke_pipeline.c - one invocation through one model: the Accept check, input_fn, the
 * model's batcher (predict_fn) and output_fn. server.c's workers run it for /invocations on
 * the single model, the multi-model routes on the model a request names.
 */
#include <stdio.h>
#include <stdlib.h>

#include "serve/invoke_pipeline.h"
#include "serve/serve.h"

int serve_invoke(const struct sm_handlers *h, const struct sm_context *ctx, struct batcher *b,
                 const struct sm_request *req, struct sm_response *resp, struct sm_error *err)
{
    if (h->output_fn == serve_output_fn && !serve_accept_supported(req->accept)) {
        snprintf(err->message, sizeof err->message,
                 "unsupported Accept \"%s\": ask for application/json, application/x-npy or "
                 "application/jsonlines", req->accept);
        return 406;
    }
    struct sm_batch batch = {0};
    struct sm_scores scores = {0};
    batcher_expect(b, 1);
    int status = h->input_fn(ctx, req, &batch, err);
    if (status == 0)
        status = batcher_submit(b, &batch, &scores, err);
    else
        batcher_expect(b, -1);
    if (status == 0) {
        scores.records = batch.records;
        scores.n_records = batch.records ? batch.n_records : 0;
        status = h->output_fn(ctx, &scores, req, resp, err);
    }
    free(batch.data);
    free(batch.records);
    free(scores.probs);
    free(scores.logits);
    if (status != 0) {
        free(resp->body);
        resp->body = NULL;
        if (status < 400 || status > 599)
            status = 500;
    }
    return status;
}
