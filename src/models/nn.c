/*
 * nn.c - layers and the tensor registry (see nn.h).
 */
#include "models/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nn_registry_init(struct nn_registry *r)
{
    memset(r, 0, sizeof *r);
    r->group = NN_BACKBONE;
}

void nn_registry_free(struct nn_registry *r)
{
    for (size_t i = 0; i < r->count; i++)
        tc_free(r->entries[i].tensor);
    free(r->entries);
    memset(r, 0, sizeof *r);
}

tc_tensor *nn_registry_add(struct nn_registry *r, const char *name, tc_tensor *t,
                           bool is_buffer)
{
    if (!t || strlen(name) >= NN_NAME_MAX) {
        if (t)
            tc_set_error("tensor name too long: %s", name);
        tc_free(t);
        r->failed = true;
        return NULL;
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct nn_entry *grown = realloc(r->entries, cap * sizeof *grown);
        if (!grown) {
            tc_set_error("out of memory registering %s", name);
            tc_free(t);
            r->failed = true;
            return NULL;
        }
        r->entries = grown;
        r->cap = cap;
    }
    struct nn_entry *e = &r->entries[r->count++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->tensor = tc_own(t); /* a network outlives any scope it was created in */
    e->is_buffer = is_buffer;
    e->group = r->group;
    return e->tensor;
}

const struct nn_entry *nn_registry_find(const struct nn_registry *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->entries[i].name, name) == 0)
            return &r->entries[i];
    return NULL;
}

static tc_tensor *add_named(struct nn_registry *r, const char *layer, const char *field,
                            tc_tensor *t, bool is_buffer)
{
    char name[NN_NAME_MAX * 2];
    snprintf(name, sizeof name, "%s.%s", layer, field);
    return nn_registry_add(r, name, t, is_buffer);
}

static tc_tensor *new_param(const int64_t *shape, int ndim)
{
    return tc_empty(shape, ndim, TC_FLOAT32, tc_device_cpu());
}

/* Fills weight (and bias) in place as `init` says; then both become trainable. */
static void init_weight_and_bias(tc_tensor *weight, tc_tensor *bias, enum nn_init init)
{
    double bound;
    switch (init) {
    case NN_INIT_TORCH_DEFAULT:
        tc_init_kaiming_uniform_(weight, sqrt(5.0));
        bound = 1.0 / sqrt((double)tc_fan_in(weight));
        if (bias)
            tc_init_uniform_(bias, -bound, bound);
        break;
    case NN_INIT_KAIMING_OUT:
        tc_init_kaiming_normal_(weight, TC_FAN_OUT);
        if (bias)
            tc_fill_(bias, 0.0);
        break;
    case NN_INIT_NORMAL_001:
        tc_init_normal_(weight, 0.0, 0.01);
        if (bias)
            tc_fill_(bias, 0.0);
        break;
    }
    tc_set_requires_grad(weight, true);
    if (bias)
        tc_set_requires_grad(bias, true);
}

void nn_conv2d_create(struct nn_conv2d *c, struct nn_registry *r, const char *name,
                      int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                      bool bias, enum nn_init init)
{
    int64_t wshape[4] = {out, in, kernel, kernel};
    int64_t bshape[1] = {out};
    c->stride = stride;
    c->padding = padding;
    c->weight = add_named(r, name, "weight", new_param(wshape, 4), false);
    c->bias = bias ? add_named(r, name, "bias", new_param(bshape, 1), false) : NULL;
    if (c->weight && (!bias || c->bias))
        init_weight_and_bias(c->weight, c->bias, init);
}

void nn_batchnorm_create(struct nn_batchnorm *bn, struct nn_registry *r, const char *name,
                         int64_t channels)
{
    int64_t shape[1] = {channels};
    tc_device cpu = tc_device_cpu();
    bn->momentum = 0.1;
    bn->eps = 1e-5;
    bn->weight = add_named(r, name, "weight", tc_ones(shape, 1, TC_FLOAT32, cpu), false);
    bn->bias = add_named(r, name, "bias", tc_zeros(shape, 1, TC_FLOAT32, cpu), false);
    bn->running_mean = add_named(r, name, "running_mean", tc_zeros(shape, 1, TC_FLOAT32, cpu), true);
    bn->running_var = add_named(r, name, "running_var", tc_ones(shape, 1, TC_FLOAT32, cpu), true);
    bn->num_batches_tracked =
        add_named(r, name, "num_batches_tracked", tc_zeros(NULL, 0, TC_INT64, cpu), true);
    tc_set_requires_grad(bn->weight, true);
    tc_set_requires_grad(bn->bias, true);
}

void nn_linear_create(struct nn_linear *l, struct nn_registry *r, const char *name, int64_t in,
                      int64_t out, enum nn_init init)
{
    int64_t wshape[2] = {out, in};
    int64_t bshape[1] = {out};
    l->weight = add_named(r, name, "weight", new_param(wshape, 2), false);
    l->bias = add_named(r, name, "bias", new_param(bshape, 1), false);
    if (l->weight && l->bias)
        init_weight_and_bias(l->weight, l->bias, init);
}

tc_tensor *nn_conv2d_forward(const struct nn_conv2d *c, const tc_tensor *x)
{
    return tc_conv2d(x, c->weight, c->bias, c->stride, c->padding, 1, 1);
}

int nn_fold_batchnorm(struct nn_conv2d *conv, struct nn_batchnorm *bn)
{
    if (bn->folded)
        return 0;
    if (tc_fold_batchnorm_(conv->weight, conv->bias, bn->weight, bn->bias, bn->running_mean,
                           bn->running_var, bn->eps) < 0)
        return -1;
    conv->bias = bn->bias; /* borrowed from the registry, as every layer tensor is */
    bn->folded = true;
    return 0;
}

tc_tensor *nn_batchnorm_forward(const struct nn_batchnorm *bn, const tc_tensor *x, bool training)
{
    if (bn->folded) /* the conv that made x already applied it; x is that conv's fresh output */
        return (tc_tensor *)x;
    if (training && x) {
        /* nn.BatchNorm2d counts batches even though momentum makes the count unused. */
        if (tc_add_scalar_(bn->num_batches_tracked, 1.0) < 0)
            return NULL;
    }
    return tc_batch_norm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var, training,
                         bn->momentum, bn->eps);
}

tc_tensor *nn_linear_forward(const struct nn_linear *l, const tc_tensor *x)
{
    return tc_linear(x, l->weight, l->bias);
}
