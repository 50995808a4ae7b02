/*
 * resnet.c - torchvision's ResNet (v1.5: the stride sits in the 3x3 conv of a bottleneck),
 * depths 18/34 (basic blocks) and 50/101/152 (bottlenecks), any number of classes.
 *
 * Names follow torchvision: conv1, bn1, layer{1..4}.{i}.{conv,bn}{1,2,3},
 * layer{n}.{i}.downsample.{0,1}, fc. Initialisation: convs kaiming_normal(fan_out, relu),
 * batch norm weight 1 / bias 0, fc PyTorch's Linear default.
 *
 * fc may instead be a Sequential of linear layers (m->head), as transfer-learning scripts
 * write it: fc.0, fc.2, ... named by their places in it, with ReLU where something without
 * weights sat between two of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/model.h"

struct resnet_block {
    bool bottleneck;
    struct nn_conv2d conv1, conv2, conv3;
    struct nn_batchnorm bn1, bn2, bn3;
    bool has_downsample;
    struct nn_conv2d down_conv;
    struct nn_batchnorm down_bn;
};

struct resnet {
    struct nn_conv2d conv1;
    struct nn_batchnorm bn1;
    struct resnet_block *blocks;
    int block_count;
    struct nn_linear fc[MODEL_HEAD_MAX]; /* one, or the Sequential head's layers */
    int fc_count;
};

static void block_create(struct resnet_block *b, struct nn_registry *r, const char *name,
                         bool bottleneck, int64_t in, int64_t planes, int64_t stride)
{
    char n[NN_NAME_MAX * 2]; /* room for any suffix; the registry rejects names too long */
    int64_t out = bottleneck ? planes * 4 : planes;
    b->bottleneck = bottleneck;
#define NAME(field) (snprintf(n, sizeof n, "%s.%s", name, field), n)
    if (bottleneck) {
        nn_conv2d_create(&b->conv1, r, NAME("conv1"), in, planes, 1, 1, 0, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->bn1, r, NAME("bn1"), planes);
        nn_conv2d_create(&b->conv2, r, NAME("conv2"), planes, planes, 3, stride, 1, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->bn2, r, NAME("bn2"), planes);
        nn_conv2d_create(&b->conv3, r, NAME("conv3"), planes, out, 1, 1, 0, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->bn3, r, NAME("bn3"), out);
    } else {
        nn_conv2d_create(&b->conv1, r, NAME("conv1"), in, planes, 3, stride, 1, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->bn1, r, NAME("bn1"), planes);
        nn_conv2d_create(&b->conv2, r, NAME("conv2"), planes, planes, 3, 1, 1, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->bn2, r, NAME("bn2"), planes);
    }
    b->has_downsample = stride != 1 || in != out;
    if (b->has_downsample) {
        nn_conv2d_create(&b->down_conv, r, NAME("downsample.0"), in, out, 1, stride, 0, false, NN_INIT_KAIMING_OUT);
        nn_batchnorm_create(&b->down_bn, r, NAME("downsample.1"), out);
    }
#undef NAME
}

/* x [N,in,H,W] -> [N,out,H/stride,W/stride]; temporaries die in the block's own scope. */
static tc_tensor *block_forward(const struct resnet_block *b, const tc_tensor *x, bool training)
{
    tc_scope *s = tc_scope_begin();
    tc_tensor *out = tc_relu_(nn_batchnorm_forward(&b->bn1, nn_conv2d_forward(&b->conv1, x), training));
    out = nn_batchnorm_forward(&b->bn2, nn_conv2d_forward(&b->conv2, out), training);
    if (b->bottleneck)
        out = nn_batchnorm_forward(&b->bn3, nn_conv2d_forward(&b->conv3, tc_relu_(out)), training);
    const tc_tensor *identity = x;
    if (b->has_downsample)
        identity = nn_batchnorm_forward(&b->down_bn, nn_conv2d_forward(&b->down_conv, x), training);
    out = tc_keep(tc_relu_(tc_add_(out, identity)));
    tc_scope_end(s);
    return out;
}

static tc_tensor *resnet_forward(struct model *m, const tc_tensor *x, bool training)
{
    const struct resnet *net = m->impl.net;
    tc_scope *s = tc_scope_begin();
    tc_tensor *h = tc_relu_(nn_batchnorm_forward(&net->bn1, nn_conv2d_forward(&net->conv1, x), training));
    h = tc_max_pool2d(h, 3, 2, 1, false); /* [N,64,H/4,W/4] */
    for (int i = 0; i < net->block_count; i++)
        h = block_forward(&net->blocks[i], h, training);
    h = tc_flatten(tc_adaptive_avg_pool2d(h, 1, 1), 1); /* [N,C] */
    for (int i = 0; i < net->fc_count; i++) {
        h = nn_linear_forward(&net->fc[i], h);
        if (i + 1 < net->fc_count && model_head_activated(&m->head, i))
            h = tc_relu_(h);
    }
    tc_tensor *logits = tc_keep(h);
    tc_scope_end(s);
    return logits;
}

static int resnet_fold_batchnorm(struct model *m)
{
    struct resnet *net = m->impl.net;
    int rc = nn_fold_batchnorm(&net->conv1, &net->bn1);
    for (int i = 0; rc == 0 && i < net->block_count; i++) {
        struct resnet_block *b = &net->blocks[i];
        rc = nn_fold_batchnorm(&b->conv1, &b->bn1);
        if (rc == 0)
            rc = nn_fold_batchnorm(&b->conv2, &b->bn2);
        if (rc == 0 && b->bottleneck)
            rc = nn_fold_batchnorm(&b->conv3, &b->bn3);
        if (rc == 0 && b->has_downsample)
            rc = nn_fold_batchnorm(&b->down_conv, &b->down_bn);
    }
    return rc;
}

static void resnet_free(void *p)
{
    struct resnet *net = p;
    if (net)
        free(net->blocks);
    free(net);
}

int resnet_build(struct model *m, int depth)
{
    static const struct {
        int depth;
        bool bottleneck;
        int blocks[4];
    } configs[] = {
        {18, false, {2, 2, 2, 2}},  {34, false, {3, 4, 6, 3}},  {50, true, {3, 4, 6, 3}},
        {101, true, {3, 4, 23, 3}}, {152, true, {3, 8, 36, 3}},
    };
    int c = -1;
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
        if (configs[i].depth == depth)
            c = (int)i;
    if (c < 0)
        return err_set("no ResNet of depth %d (have 18, 34, 50, 101, 152)", depth);

    struct resnet *net = calloc(1, sizeof *net);
    int total = 0;
    for (int l = 0; l < 4; l++)
        total += configs[c].blocks[l];
    if (net)
        net->blocks = calloc((size_t)total, sizeof *net->blocks);
    if (!net || !net->blocks) {
        resnet_free(net);
        return err_set("out of memory building resnet%d", depth);
    }
    m->impl = (struct model_impl){net, resnet_forward, resnet_free, resnet_fold_batchnorm};

    struct nn_registry *r = &m->params;
    bool bottleneck = configs[c].bottleneck;
    nn_conv2d_create(&net->conv1, r, "conv1", 3, 64, 7, 2, 3, false, NN_INIT_KAIMING_OUT);
    nn_batchnorm_create(&net->bn1, r, "bn1", 64);
    int64_t in = 64;
    for (int l = 0; l < 4; l++) {
        int64_t planes = 64LL << l;
        for (int i = 0; i < configs[c].blocks[l]; i++) {
            char name[NN_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%d", l + 1, i);
            block_create(&net->blocks[net->block_count++], r, name, bottleneck, in, planes,
                         i == 0 && l > 0 ? 2 : 1);
            in = bottleneck ? planes * 4 : planes;
        }
    }
    r->group = NN_HEAD;
    if (m->head.layers == 0) {
        net->fc_count = 1;
        nn_linear_create(&net->fc[0], r, "fc", in, m->num_classes, NN_INIT_TORCH_DEFAULT);
        return 0;
    }
    for (int i = 0; i < m->head.layers; i++) {
        char name[NN_NAME_MAX];
        snprintf(name, sizeof name, "fc.%d", m->head.index[i]);
        nn_linear_create(&net->fc[net->fc_count++], r, name, in, m->head.out[i], NN_INIT_TORCH_DEFAULT);
        in = m->head.out[i];
    }
    return 0;
}
