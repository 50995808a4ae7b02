/*
 * test_no_leaks.c - repeated forward/backward/step cycles hold no handles and no growing
 * memory: the live-handle count is the same after every step, the resident set stays flat,
 * and creating and freeing models leaves nothing behind. Under the sanitizer build,
 * LeakSanitizer checks the same at exit for every allocation our code made.
 */
#include <stdio.h>
#include <unistd.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

static long resident_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void)
{
    tc_manual_seed(3);
    for (int i = 0; i < 3; i++) {
        struct model *m;
        REQUIRE(model_create(i == 1 ? "vgg11_bn" : "resnet18", 10, &m) == 0, "%s", err_msg());
        model_free(m);
        CHECK_INT_EQ(tc_live_tensors(), 0);
    }

    struct model *m;
    REQUIRE(model_create("resnet18", 10, &m) == 0, "%s", err_msg());
    tc_tensor **params;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    struct tc_sgd_options o = tc_sgd_default_options();
    o.momentum = 0.9;
    tc_optimizer *opt = tc_sgd_new(params, n, &o);
    free(params);
    int64_t handles_after_first = -1;
    long rss_at_5 = 0, rss_at_end = 0;
    const int steps = 30;
    for (int step = 0; step < steps; step++) {
        tc_scope *s = tc_scope_begin();
        int64_t xs[4] = {8, 3, 32, 32}, ys[1] = {8};
        tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, tc_device_cpu());
        tc_tensor *y = tc_randint(10, ys, 1, tc_device_cpu());
        tc_optimizer_zero_grad(opt);
        tc_tensor *loss = tc_cross_entropy(model_forward(m, x, true), y, 0.1);
        REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0, "%s", tc_last_error());
        tc_scope_end(s);
        if (step == 0)
            handles_after_first = tc_live_tensors();
        CHECK_INT_EQ(tc_live_tensors(), handles_after_first);
        if (step == 5)
            rss_at_5 = resident_kib();
    }
    rss_at_end = resident_kib();
    printf("handles: %lld (the model's %zu tensors); resident: %ld KiB at step 5, %ld KiB at step %d\n",
           (long long)handles_after_first, m->params.count, rss_at_5, rss_at_end, steps);
    CHECK_INT_EQ(handles_after_first, (int64_t)m->params.count);
    /* 25 steps that each allocate ~50 MB of activations: a leak of one step would show. */
    CHECK(rss_at_end - rss_at_5 < 40 * 1024);
    tc_optimizer_free(opt);
    model_free(m);
    CHECK_INT_EQ(tc_live_tensors(), 0);
    return test_finish("no_leaks");
}
