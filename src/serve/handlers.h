/*
 * handlers.h - the default predict_fn and the handler table, with a user's code/<name>.so
 * replacing some handlers (handlers.c).
 */
#ifndef SERVE_HANDLERS_H
#define SERVE_HANDLERS_H

#include "sm_handlers.h"

int serve_predict_fn(const struct sm_context *ctx, const struct sm_batch *in,
                     struct sm_scores *out, struct sm_error *err);
void serve_default_handlers(struct sm_handlers *h);
/* Loads the shared objects in <model_dir>/code, if any, and lets them replace handlers. */
int serve_load_custom_handlers(const char *model_dir, struct sm_handlers *h);

#endif
