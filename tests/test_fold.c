/*
 * test_fold.c - batch norms folded into their convolutions for serving (model_fold_batchnorm):
 * ResNet-18 and VGG-11 with batch norm, their batch-norm statistics and affine parameters
 * made far from the identity, give the same evaluation logits folded as unfolded (within
 * float rounding), and a folded model refuses to train and to be saved as torchvision's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

/* Every batch-norm tensor of m uniform in [lo, hi]: a "trained" network, not the identity. */
static void scramble_batchnorms(struct model *m)
{
    for (size_t i = 0; i < m->params.count; i++) {
        const char *n = m->params.entries[i].name;
        tc_tensor *t = m->params.entries[i].tensor;
        bool bn = strstr(n, "bn") || strstr(n, "downsample.1") || strstr(n, "running_");
        if (!bn || strstr(n, "num_batches_tracked"))
            continue;
        if (strstr(n, "running_var") || strstr(n, ".weight"))
            REQUIRE(tc_init_uniform_(t, 0.5, 1.5) == 0, "%s", tc_last_error());
        else
            REQUIRE(tc_init_uniform_(t, -0.3, 0.3) == 0, "%s", tc_last_error());
    }
}

/* VGG's batch norms are features.<i> right after a conv: named by index, not "bn". */
static void scramble_vgg(struct model *m)
{
    for (size_t i = 0; i < m->params.count; i++) {
        const char *n = m->params.entries[i].name;
        tc_tensor *t = m->params.entries[i].tensor;
        if (strncmp(n, "features.", 9) != 0 || tc_dim(t) != 1 || strstr(n, "num_batches"))
            continue;
        int64_t c = tc_size(t, 0);
        (void)c;
        if (strstr(n, "running_var"))
            REQUIRE(tc_init_uniform_(t, 0.5, 1.5) == 0, "%s", tc_last_error());
        else if (strstr(n, "running_mean") || strstr(n, ".bias"))
            REQUIRE(tc_init_uniform_(t, -0.3, 0.3) == 0, "%s", tc_last_error());
        else
            REQUIRE(tc_init_uniform_(t, 0.5, 1.5) == 0, "%s", tc_last_error());
    }
}

static float *logits(struct model *m, const tc_tensor *x, int64_t n)
{
    float *out = malloc((size_t)n * sizeof *out);
    tc_scope *s = tc_scope_begin();
    bool g = tc_set_grad_enabled(false);
    tc_tensor *y = model_forward(m, x, false);
    REQUIRE(y && tc_to_data(y, out, (size_t)n * sizeof *out) == 0, "%s", tc_last_error());
    tc_set_grad_enabled(g);
    tc_scope_end(s);
    return out;
}

static void check_arch(const char *arch, int size)
{
    struct model *m;
    tc_manual_seed(3);
    REQUIRE(model_create(arch, 10, &m) == 0, "%s", err_msg());
    if (strncmp(arch, "vgg", 3) == 0)
        scramble_vgg(m);
    else
        scramble_batchnorms(m);
    tc_scope *s = tc_scope_begin();
    int64_t shape[4] = {2, 3, size, size};
    tc_tensor *x = tc_randn(shape, 4, TC_FLOAT32, tc_device_cpu());
    float *before = logits(m, x, 20);
    CHECK(model_fold_batchnorm(m) == 0);
    CHECK(m->folded);
    float *after = logits(m, x, 20);
    double worst = 0, scale = 0;
    for (int i = 0; i < 20; i++) {
        worst = fmax(worst, fabs(before[i] - after[i]));
        scale = fmax(scale, fabs(before[i]));
    }
    printf("%s: max |folded - unfolded| %.3g over logits up to %.3g\n", arch, worst, scale);
    CHECK(scale > 0.1);           /* the comparison means something */
    CHECK(worst <= 1e-4 * scale); /* float rounding, not a different network */
    /* Folding twice is a no-op. */
    CHECK(model_fold_batchnorm(m) == 0);
    float *again = logits(m, x, 20);
    CHECK(memcmp(again, after, 20 * sizeof *again) == 0);
    /* No training, no torchvision state dict. */
    tc_clear_error();
    CHECK(model_forward(m, x, true) == NULL);
    CHECK_CONTAINS(tc_last_error(), "folded");
    CHECK(model_state_dict(m) == NULL);
    tc_scope_end(s);
    free(before);
    free(after);
    free(again);
    model_free(m);
}

int main(void)
{
    check_arch("resnet18", 64);
    check_arch("vgg11_bn", 32);
    /* LeNet has no batch norm: folding is nothing, and it still trains. */
    struct model *m;
    REQUIRE(model_create("lenet", 10, &m) == 0, "%s", err_msg());
    CHECK(model_fold_batchnorm(m) == 0 && !m->folded);
    model_free(m);
    return test_finish("test_fold");
}
