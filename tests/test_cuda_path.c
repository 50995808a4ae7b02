/*
 * test_cuda_path.c - the CUDA path, where a GPU exists (skipped with exit code 77 elsewhere):
 * a model moved to the GPU in channels-last gives the CPU's logits, and a bf16-autocast
 * training step runs and yields a finite loss. The code path is the CPU one with another
 * tc_device, which is the point. Then data parallelism over NCCL with one rank: the process
 * group forms, host values reduce, and a backward pass runs through gradient sync.
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

    CHECK(tc_dist_has_nccl());
    struct tc_dist_options d = {.master_addr = "127.0.0.1", .master_port = 29561, .rank = 0,
                                .world_size = 1, .device = gpu, .timeout_s = 60};
    tc_dist *dist = tc_dist_init(&d);
    REQUIRE(dist, "NCCL process group: %s", tc_last_error());
    double values[2] = {1.5, -2};
    CHECK_INT_EQ(tc_dist_all_reduce(dist, values, 2, TC_REDUCE_SUM), 0);
    CHECK(values[0] == 1.5 && values[1] == -2);
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    CHECK_INT_EQ(tc_dist_broadcast(dist, params, n, 0), 0);
    tc_grad_sync *sync = tc_grad_sync_new(dist, params, NULL, n, 0);
    REQUIRE(sync, "gradient sync: %s", tc_last_error());
    free(params);
    s = tc_scope_begin();
    loss = tc_cross_entropy(model_forward(m, tc_to_device(x, gpu), true),
                            tc_to_device(tc_randint(10, ys, 1, tc_device_cpu()), gpu), 0.0);
    REQUIRE(tc_grad_sync_before_backward(sync) == 0 && tc_backward(loss) == 0, "%s", tc_last_error());
    printf("nccl: one-rank group, all-reduce and a synchronised backward pass ran\n");
    tc_scope_end(s);
    tc_grad_sync_free(sync);
    tc_dist_free(dist);

    tc_optimizer_free(opt);
    model_free(m);
    return test_finish("cuda_path");
}
