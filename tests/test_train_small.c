/*
 * test_train_small.c - a short training loop in C learns: the wide LeNet drives its loss down
 * on generated images whose class is written into their pixels; and with the backbone frozen,
 * only the head's parameters move (while the optimizer was given all of them).
 */
#include <stdio.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

#define CLASSES 3

/* images [n,3,32,32]: unit noise plus 0.2 in the channel that names the class; labels [n]. */
static void make_batch(int n, tc_tensor **images, tc_tensor **labels)
{
    int64_t lshape[1] = {n}, ishape[4] = {n, 3, 32, 32};
    *labels = tc_randint(CLASSES, lshape, 1, tc_device_cpu());
    int64_t lab[256];
    tc_to_data(*labels, lab, sizeof(int64_t) * (size_t)n);
    static float pix[256 * 3 * 32 * 32];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 32 * 32; p++)
                pix[((i * 3 + c) * 32 * 32) + p] = (c == lab[i]) ? 0.2f : 0.0f;
    tc_tensor *pattern = tc_from_data(pix, ishape, 4, TC_FLOAT32);
    *images = tc_add(pattern, tc_randn(ishape, 4, TC_FLOAT32, tc_device_cpu()));
}

static void test_loss_goes_down(void)
{
    struct model *m;
    REQUIRE(model_create("lenet", CLASSES, &m) == 0, "%s", err_msg());
    tc_tensor **params;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    struct tc_adam_options o = tc_adam_default_options();
    o.lr = 2e-3;
    tc_optimizer *opt = tc_adam_new(params, n, &o);
    free(params);
    REQUIRE(opt, "%s", tc_last_error());

    double first = 0, last = 0;
    for (int step = 0; step < 40; step++) {
        tc_scope *s = tc_scope_begin();
        tc_tensor *x, *y;
        make_batch(32, &x, &y);
        tc_optimizer_zero_grad(opt);
        tc_tensor *loss = tc_cross_entropy(model_forward(m, x, true), y, 0.0);
        REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0, "%s", tc_last_error());
        tc_item_double(loss, step == 0 ? &first : &last);
        tc_scope_end(s);
    }
    /* Held-out accuracy. */
    tc_scope *s = tc_scope_begin();
    tc_tensor *x, *y;
    make_batch(128, &x, &y);
    bool grad_was = tc_set_grad_enabled(false);
    tc_tensor *correct = tc_sum(tc_eq(tc_argmax(model_forward(m, x, false), 1), y));
    tc_set_grad_enabled(grad_was);
    int64_t right = 0;
    tc_item_int64(correct, &right);
    tc_scope_end(s);
    printf("lenet: loss %.4f -> %.4f, held-out accuracy %lld/128\n", first, last, (long long)right);
    CHECK(last < 0.5 * first);
    CHECK(right >= 115);
    tc_optimizer_free(opt);
    model_free(m);
}

static void test_frozen_backbone(void)
{
    struct model *m;
    REQUIRE(model_create("resnet18", CLASSES, &m) == 0, "%s", err_msg());
    REQUIRE(model_freeze_backbone(m, true) == 0, "%s", err_msg());
    CHECK_INT_EQ(model_parameter_count(m, MODEL_PARAMS_TRAINABLE), 512 * CLASSES + CLASSES);

    /* Snapshots of every parameter, then an optimizer over all of them with weight decay:
     * frozen ones have no gradient, so even weight decay must leave them alone. */
    tc_tensor **params;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    tc_tensor **before = calloc(n, sizeof *before);
    for (size_t i = 0; i < n; i++)
        before[i] = tc_own(tc_clone(params[i]));
    struct tc_sgd_options o = tc_sgd_default_options();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    tc_optimizer *opt = tc_sgd_new(params, n, &o);
    REQUIRE(opt, "%s", tc_last_error());
    for (int step = 0; step < 3; step++) {
        tc_scope *s = tc_scope_begin();
        tc_tensor *x, *y;
        make_batch(8, &x, &y);
        tc_optimizer_zero_grad(opt);
        tc_tensor *loss = tc_cross_entropy(model_forward(m, x, true), y, 0.0);
        REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0, "%s", tc_last_error());
        tc_scope_end(s);
    }
    size_t moved_backbone = 0, moved_head = 0, head = 0;
    for (size_t i = 0, p = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        if (e->is_buffer)
            continue;
        double err = 0;
        tc_normalised_error(params[p], before[p], &err);
        if (e->group == NN_HEAD) {
            head++;
            moved_head += err > 0;
        } else {
            moved_backbone += err > 0;
            CHECK(!tc_has_grad(e->tensor));
        }
        p++;
    }
    printf("frozen resnet18: %zu backbone tensors moved (want 0), %zu of %zu head tensors moved\n",
           moved_backbone, moved_head, head);
    CHECK_INT_EQ(moved_backbone, 0);
    CHECK_INT_EQ(moved_head, head);
    CHECK_INT_EQ(head, 2);

    REQUIRE(model_freeze_backbone(m, false) == 0, "%s", err_msg());
    CHECK_INT_EQ(model_parameter_count(m, MODEL_PARAMS_TRAINABLE),
                 model_parameter_count(m, MODEL_PARAMS_ALL));
    for (size_t i = 0; i < n; i++)
        tc_free(before[i]);
    free(before);
    free(params);
    tc_optimizer_free(opt);
    model_free(m);
}

int main(void)
{
    tc_manual_seed(42);
    test_loss_goes_down();
    test_frozen_backbone();
    return test_finish("train_small");
}
