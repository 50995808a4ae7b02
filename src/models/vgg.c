/*
 * vgg.c - torchvision's VGG 11/13/16/19, with or without batch norm, any number of classes;
 * and the CIFAR VGG that PyTorch CIFAR scripts define (the CIFAR-10 seed's VGG('VGG11')).
 *
 * Names follow torchvision's nn.Sequential indices: features.<i> for each conv (and its
 * batch norm at i+1), classifier.{0,3,6} for the three linear layers; classifier.6 is the
 * head. The features end in AdaptiveAvgPool2d(7x7), so any input of 32x32 or more works.
 * Initialisation: convs kaiming_normal(fan_out, relu) with zero bias, batch norm 1/0,
 * linear layers N(0, 0.01) with zero bias.
 *
 * The CIFAR VGG has the same features, always with batch norm, then one nn.Linear(512,
 * classes) named `classifier`: at 32x32 the five poolings leave 1x1x512, flattened. Here the
 * features end in an average over what is left (1x1 at 32 px, so the same network there;
 * any side of 32 or more works). nn.Conv2d's and nn.Linear's default initialisation, as the
 * scripts that define it get.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "models/model.h"

#define VGG_MAX_LAYERS 21 /* vgg19: 16 convs + 5 pools */
#define POOL 0

struct vgg_layer {
    bool is_pool;
    struct nn_conv2d conv;
    bool has_bn;
    struct nn_batchnorm bn;
};

struct vgg {
    struct vgg_layer layers[VGG_MAX_LAYERS];
    int layer_count;
    struct nn_linear fc1, fc2, head;
    bool cifar_head; /* one linear layer on the pooled 512 features */
};

static int vgg_fold_batchnorm(struct model *m)
{
    struct vgg *net = m->impl.net;
    for (int i = 0; i < net->layer_count; i++) {
        struct vgg_layer *l = &net->layers[i];
        if (!l->is_pool && l->has_bn && nn_fold_batchnorm(&l->conv, &l->bn) < 0)
            return -1;
    }
    return 0;
}

static tc_tensor *vgg_forward(struct model *m, const tc_tensor *x, bool training)
{
    const struct vgg *net = m->impl.net;
    tc_scope *s = tc_scope_begin();
    tc_tensor *h = (tc_tensor *)x;
    for (int i = 0; i < net->layer_count; i++) {
        const struct vgg_layer *l = &net->layers[i];
        if (l->is_pool) {
            h = tc_max_pool2d(h, 2, 2, 0, false);
            continue;
        }
        h = nn_conv2d_forward(&l->conv, h);
        if (l->has_bn)
            h = nn_batchnorm_forward(&l->bn, h, training);
        h = tc_relu_(h);
    }
    if (net->cifar_head) {
        h = tc_flatten(tc_adaptive_avg_pool2d(h, 1, 1), 1); /* [N,512] */
        tc_tensor *logits = tc_keep(nn_linear_forward(&net->head, h));
        tc_scope_end(s);
        return logits;
    }
    h = tc_flatten(tc_adaptive_avg_pool2d(h, 7, 7), 1); /* [N,512*7*7] */
    h = tc_dropout(tc_relu_(nn_linear_forward(&net->fc1, h)), 0.5, training);
    h = tc_dropout(tc_relu_(nn_linear_forward(&net->fc2, h)), 0.5, training);
    tc_tensor *logits = tc_keep(nn_linear_forward(&net->head, h));
    tc_scope_end(s);
    return logits;
}

int vgg_build(struct model *m, int depth, bool batch_norm, bool cifar_head)
{
    static const struct {
        int depth;
        int widths[VGG_MAX_LAYERS + 1]; /* POOL for max-pooling, -1 ends */
    } configs[] = {
        {11, {64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL, -1}},
        {13, {64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL, -1}},
        {16, {64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512,
              512, POOL, -1}},
        {19, {64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
              512, 512, 512, 512, POOL, -1}},
    };
    int c = -1;
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
        if (configs[i].depth == depth)
            c = (int)i;
    if (c < 0)
        return err_set("no VGG of depth %d (have 11, 13, 16, 19)", depth);

    struct vgg *net = calloc(1, sizeof *net);
    if (!net)
        return err_set("out of memory building vgg%d", depth);
    m->impl = (struct model_impl){net, vgg_forward, free, vgg_fold_batchnorm};
    net->cifar_head = cifar_head;
    enum nn_init conv_init = cifar_head ? NN_INIT_TORCH_DEFAULT : NN_INIT_KAIMING_OUT;

    struct nn_registry *r = &m->params;
    int64_t in = 3;
    int index = 0; /* position in torchvision's features Sequential */
    for (const int *w = configs[c].widths; *w >= 0; w++) {
        struct vgg_layer *l = &net->layers[net->layer_count++];
        char name[NN_NAME_MAX];
        if (*w == POOL) {
            l->is_pool = true;
            index += 1;
            continue;
        }
        snprintf(name, sizeof name, "features.%d", index);
        nn_conv2d_create(&l->conv, r, name, in, *w, 3, 1, 1, true, conv_init);
        if (batch_norm) {
            snprintf(name, sizeof name, "features.%d", index + 1);
            nn_batchnorm_create(&l->bn, r, name, *w);
            l->has_bn = true;
        }
        index += batch_norm ? 3 : 2; /* conv [bn] relu */
        in = *w;
    }
    if (cifar_head) {
        r->group = NN_HEAD;
        nn_linear_create(&net->head, r, "classifier", 512, m->num_classes, NN_INIT_TORCH_DEFAULT);
        return 0;
    }
    nn_linear_create(&net->fc1, r, "classifier.0", 512 * 7 * 7, 4096, NN_INIT_NORMAL_001);
    nn_linear_create(&net->fc2, r, "classifier.3", 4096, 4096, NN_INIT_NORMAL_001);
    r->group = NN_HEAD;
    nn_linear_create(&net->head, r, "classifier.6", 4096, m->num_classes, NN_INIT_NORMAL_001);
    return 0;
}
