/*
 * test_roundtrip_save.c DIR - the C half of the round trip: for each architecture, trains one
 * step (so that weights, running statistics and num_batches_tracked have moved from their
 * initial values), then saves DIR/<arch>.model.pth with model_save and DIR/<arch>.expected.pth
 * holding an input and our eval-mode logits for it. tests/python/check_roundtrip.py then loads
 * the model into torchvision and must get the same logits.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

static void save_case(const char *dir, const char *arch, int classes, int64_t size)
{
    struct model *m;
    REQUIRE(model_create(arch, classes, &m) == 0, "%s", err_msg());
    tc_tensor **params;
    size_t n;
    REQUIRE(model_parameters(m, MODEL_PARAMS_ALL, &params, &n) == 0, "%s", err_msg());
    struct tc_sgd_options o = tc_sgd_default_options();
    o.lr = 0.05;
    o.momentum = 0.9;
    tc_optimizer *opt = tc_sgd_new(params, n, &o);
    free(params);
    REQUIRE(opt, "%s", tc_last_error());

    tc_scope *s = tc_scope_begin();
    int64_t xshape[4] = {4, 3, size, size}, yshape[1] = {4};
    tc_tensor *x = tc_randn(xshape, 4, TC_FLOAT32, tc_device_cpu());
    tc_tensor *y = tc_randint(classes, yshape, 1, tc_device_cpu());
    tc_tensor *loss = tc_cross_entropy(model_forward(m, x, true), y, 0.1);
    REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0, "%s", tc_last_error());

    bool grad_was = tc_set_grad_enabled(false);
    tc_tensor *logits = model_forward(m, x, false);
    tc_set_grad_enabled(grad_was);
    REQUIRE(logits, "%s", tc_last_error());

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.model.pth", dir, arch);
    REQUIRE(model_save(m, path) == 0, "%s", err_msg());
    tc_state_dict *expected = tc_state_dict_new();
    tc_state_dict_set(expected, "input", x);
    tc_state_dict_set(expected, "logits", logits);
    snprintf(path, sizeof path, "%s/%s.expected.pth", dir, arch);
    REQUIRE(tc_state_dict_save(expected, path) == 0, "%s", tc_last_error());
    tc_state_dict_free(expected);
    printf("saved %s (%d classes)\n", arch, classes);
    tc_scope_end(s);
    tc_optimizer_free(opt);
    model_free(m);
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s DIR", argv[0]);
    mkdir(argv[1], 0755);
    tc_manual_seed(7);
    save_case(argv[1], "resnet18", 3, 64);
    save_case(argv[1], "lenet", 6, 32);
    save_case(argv[1], "vgg11_cifar", 4, 32);
    return test_finish("roundtrip_save");
}
