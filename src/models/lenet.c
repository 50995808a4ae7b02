/*
 * lenet.c - the wide LeNet of the CIFAR-10 seed: conv 3->32 5x5, max-pool 2, conv 32->64 5x5,
 * max-pool 2, fc 1600->120->84->N, ReLU between. Takes 32x32 inputs only (the 1600 is
 * 64 channels x 5 x 5). Names are the seed's: conv1, conv2, fc1, fc2, fc3 (the head).
 * Initialisation: PyTorch's defaults for Conv2d and Linear, as the seed used.
 */
#include <stdlib.h>

#include "common/error.h"
#include "models/model.h"

struct lenet {
    struct nn_conv2d conv1, conv2;
    struct nn_linear fc1, fc2, fc3;
};

static tc_tensor *lenet_forward(struct model *m, const tc_tensor *x, bool training)
{
    (void)training; /* no batch norm, no dropout */
    const struct lenet *net = m->impl.net;
    tc_scope *s = tc_scope_begin();
    tc_tensor *h = tc_max_pool2d(tc_relu_(nn_conv2d_forward(&net->conv1, x)), 2, 2, 0, false);
    h = tc_max_pool2d(tc_relu_(nn_conv2d_forward(&net->conv2, h)), 2, 2, 0, false); /* [N,64,5,5] */
    h = tc_flatten(h, 1);                                                            /* [N,1600] */
    h = tc_relu_(nn_linear_forward(&net->fc1, h));
    h = tc_relu_(nn_linear_forward(&net->fc2, h));
    tc_tensor *logits = tc_keep(nn_linear_forward(&net->fc3, h));
    tc_scope_end(s);
    return logits;
}

int lenet_build(struct model *m)
{
    struct lenet *net = calloc(1, sizeof *net);
    if (!net)
        return err_set("out of memory building lenet");
    m->impl = (struct model_impl){net, lenet_forward, free, NULL}; /* no batch norm to fold */

    struct nn_registry *r = &m->params;
    nn_conv2d_create(&net->conv1, r, "conv1", 3, 32, 5, 1, 0, true, NN_INIT_TORCH_DEFAULT);
    nn_conv2d_create(&net->conv2, r, "conv2", 32, 64, 5, 1, 0, true, NN_INIT_TORCH_DEFAULT);
    nn_linear_create(&net->fc1, r, "fc1", 64 * 5 * 5, 120, NN_INIT_TORCH_DEFAULT);
    nn_linear_create(&net->fc2, r, "fc2", 120, 84, NN_INIT_TORCH_DEFAULT);
    r->group = NN_HEAD;
    nn_linear_create(&net->fc3, r, "fc3", 84, m->num_classes, NN_INIT_TORCH_DEFAULT);
    return 0;
}
