/*
 * test_cuda_path.c - the CUDA path, where a GPU exists (skipped with exit code 77 elsewhere):
 * a model moved to the GPU in channels-last gives the CPU's logits, and a bf16-autocast
 * training step runs and yields a finite loss. The code path is the CPU one with another
 * tc_device, which is the point.
 */
#include <math.h>
#include <stdio.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

int main(void)
{
    if (tc_cuda_device_count() == 0) {
        printf("cuda_path: no CUDA device here, skipped\n");
        return 77;
    }
    tc_manual_seed(5);
    struct model *m;
    REQUIRE(model_create("resnet18", 10, &m) == 0, "%s", err_msg());
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {4, 3, 64, 64}, ys[1] = {4};
    tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, tc_device_cpu());
    bool grad_was = tc_set_grad_enabled(false);
    tc_tensor *cpu_logits = model_forward(m, x, false);
    tc_device gpu = tc_device_cuda(0);
    REQUIRE(model_to(m, gpu, true) == 0, "%s", err_msg());
    tc_tensor *gpu_logits = model_forward(m, tc_to_channels_last(tc_to_device(x, gpu)), false);
    tc_set_grad_enabled(grad_was);
    check_close("cuda eval logits vs cpu", gpu_logits, cpu_logits, 1e-3);

    tc_tensor **params;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    struct tc_sgd_options o = tc_sgd_default_options();
    tc_optimizer *opt = tc_sgd_new(params, n, &o);
    free(params);
    REQUIRE(tc_autocast_begin(TC_CUDA, TC_BFLOAT16) == 0, "%s", tc_last_error());
    tc_tensor *logits = model_forward(m, tc_to_device(x, gpu), true);
    tc_tensor *loss = tc_cross_entropy(logits, tc_to_device(tc_randint(10, ys, 1, tc_device_cpu()), gpu), 0.1);
    tc_autocast_end(TC_CUDA);
    CHECK_INT_EQ(tc_dtype_of(logits), TC_BFLOAT16);
    REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0, "%s", tc_last_error());
    double v = NAN;
    tc_item_double(loss, &v);
    printf("cuda bf16 train step: loss %.4f\n", v);
    CHECK(isfinite(v));
    tc_scope_end(s);
    tc_optimizer_free(opt);
    model_free(m);
    return test_finish("cuda_path");
}
