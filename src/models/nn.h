/*
 * nn.h - the layers the networks are built from (conv2d, batch norm, linear) and the
 * registry that names their tensors exactly as torchvision's state_dict() does.
 *
 * A registry owns every parameter and buffer of one network, in state-dict order, each
 * tagged as backbone or head so that a caller can freeze the backbone. Layer structs only
 * borrow the registry's tensors. Creation errors are sticky: a layer whose tensor could not
 * be made records it in the registry (`failed`), and the network's constructor checks once.
 */
#ifndef MODELS_NN_H
#define MODELS_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torchc.h"

#define NN_NAME_MAX 96

enum nn_group { NN_BACKBONE, NN_HEAD };

struct nn_entry {
    char name[NN_NAME_MAX]; /* "layer1.0.bn1.running_mean" */
    tc_tensor *tensor;      /* owned by the registry */
    bool is_buffer;         /* running stats: saved, never trained */
    enum nn_group group;
};

struct nn_registry {
    struct nn_entry *entries;
    size_t count, cap;
    enum nn_group group; /* the group new entries join */
    bool failed;         /* a tensor could not be created: see tc_last_error() */
};

/* How a layer's weights start, following torchvision. */
enum nn_init {
    NN_INIT_TORCH_DEFAULT, /* nn.Conv2d/nn.Linear defaults: kaiming_uniform(a=sqrt(5)),
                              bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    NN_INIT_KAIMING_OUT,   /* kaiming_normal(fan_out, relu), bias 0 (ResNet/VGG convs) */
    NN_INIT_NORMAL_001,    /* N(0, 0.01), bias 0 (VGG's linear layers) */
};

struct nn_conv2d {
    tc_tensor *weight; /* [out, in, k, k] */
    tc_tensor *bias;   /* [out] or NULL */
    int64_t stride, padding;
};

struct nn_batchnorm {
    tc_tensor *weight, *bias, *running_mean, *running_var; /* [C] each */
    tc_tensor *num_batches_tracked;                        /* [] int64 */
    double momentum, eps;
    bool folded; /* folded into the conv before it (nn_fold_batchnorm): forward passes through */
};

struct nn_linear {
    tc_tensor *weight; /* [out, in] */
    tc_tensor *bias;   /* [out] */
};

void nn_registry_init(struct nn_registry *r);
void nn_registry_free(struct nn_registry *r);
/* Adds a tensor under `name`, taking ownership; NULL marks the registry failed. */
tc_tensor *nn_registry_add(struct nn_registry *r, const char *name, tc_tensor *t,
                           bool is_buffer);
const struct nn_entry *nn_registry_find(const struct nn_registry *r, const char *name);

/* Each creates and registers the layer's tensors as "<name>.weight" etc., initialised. */
void nn_conv2d_create(struct nn_conv2d *c, struct nn_registry *r, const char *name,
                      int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                      bool bias, enum nn_init init);
void nn_batchnorm_create(struct nn_batchnorm *bn, struct nn_registry *r, const char *name,
                         int64_t channels);
void nn_linear_create(struct nn_linear *l, struct nn_registry *r, const char *name, int64_t in,
                      int64_t out, enum nn_init init);

/* Forward passes; x may be NULL (sticky errors). */
tc_tensor *nn_conv2d_forward(const struct nn_conv2d *c, const tc_tensor *x);
/* training: batch statistics, running stats and num_batches_tracked updated in place. */
/* Folds bn (evaluation mode) into conv, the convolution it follows: conv's weight is scaled
 * and its bias becomes bn's bias tensor, rewritten (tc_fold_batchnorm_); bn then passes its
 * input through. The registry's tensors are changed: the network serves, and no longer
 * trains or saves as torchvision's. */
int nn_fold_batchnorm(struct nn_conv2d *conv, struct nn_batchnorm *bn);
tc_tensor *nn_batchnorm_forward(const struct nn_batchnorm *bn, const tc_tensor *x, bool training);
tc_tensor *nn_linear_forward(const struct nn_linear *l, const tc_tensor *x);

#endif
