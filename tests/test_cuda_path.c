/*
 * test_cuda_path.c - the CUDA path, where a GPU exists (skipped with exit code 77 elsewhere):
 *   - start-up: the checked device count agrees with the plain one, the device can be made
 *     current, cuDNN benchmark and TF32 switch on and off;
 *   - for ResNet-18 and VGG-11-BN: a model moved to the GPU in channels-last gives the CPU's
 *     logits, compared by normalised error ||gpu-cpu||/||cpu||: 1e-4 with TF32 off (fp32
 *     throughout: catches any layout or kernel bug) and 2e-2 with TF32 on (Ampere/Hopper
 *     convolutions and matrix products keep 10 mantissa bits, what PyTorch allows by default
 *     for convolutions);
 *   - training the way the trainer does (zero_grad, forward, fp32 loss, backward, step) for
 *     two steps with SGD+momentum and with Adam, against the CPU doing the same in fp32: in
 *     fp32 with TF32 off, the same losses (1e-3) and the same update of the first layer
 *     (normalised error 1e-2); with bf16 autocast, losses within 5% and weights that moved
 *     (VGG's dropout masks differ between devices: finiteness and movement only);
 *   - optimizer state saved from the GPU and loaded back lands on the parameters' device and
 *     the next step runs (the resume path);
 *   - the training feed's device path: pinned bytes, a side-stream copy, an event, the lookup
 *     normalisation giving the CPU's values exactly;
 *   - data parallelism over NCCL with one rank: the process group forms, host values reduce,
 *     and two training steps run through gradient sync.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "image/transform.h"
#include "models/model.h"
#include "test_util.h"

static const tc_device *gpu_dev(void) /* cuda:0 */
{
    static tc_device d;
    d = tc_device_cuda(0);
    return &d;
}

/* Eval logits on the GPU (channels-last) against the CPU's, TF32 off then on. */
static void check_eval_parity(const char *arch, int64_t size)
{
    tc_manual_seed(5);
    struct model *m;
    REQUIRE(model_create(arch, 10, &m) == 0, "%s", err_msg());
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {4, 3, size, size};
    tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, tc_device_cpu());
    bool grad_was = tc_set_grad_enabled(false);
    tc_tensor *cpu_logits = model_forward(m, x, false);
    REQUIRE(model_to(m, *gpu_dev(), true) == 0, "%s", err_msg());
    tc_tensor *xg = tc_to_channels_last(tc_to_device(x, *gpu_dev()));
    char what[128];
    tc_cuda_set_performance(true, false);
    snprintf(what, sizeof what, "%s eval logits, cuda fp32 (TF32 off) vs cpu", arch);
    check_close(what, model_forward(m, xg, false), cpu_logits, 1e-4);
    tc_cuda_set_performance(true, true);
    snprintf(what, sizeof what, "%s eval logits, cuda TF32 vs cpu", arch);
    check_close(what, model_forward(m, xg, false), cpu_logits, 2e-2);
    tc_set_grad_enabled(grad_was);
    tc_scope_end(s);
    model_free(m);
}

static tc_optimizer *make_optimizer(struct model *m, bool adam)
{
    tc_tensor **params;
    size_t n;
    REQUIRE(model_parameters(m, MODEL_PARAMS_ALL, &params, &n) == 0, "%s", err_msg());
    tc_optimizer *opt;
    if (adam) {
        struct tc_adam_options o = tc_adam_default_options();
        opt = tc_adam_new(params, n, &o);
    } else {
        struct tc_sgd_options o = tc_sgd_default_options();
        o.momentum = 0.9;
        o.weight_decay = 1e-4;
        opt = tc_sgd_new(params, n, &o);
    }
    free(params);
    REQUIRE(opt, "%s", tc_last_error());
    return opt;
}

/* One step as trainer.c takes it; returns the loss. */
static double train_step(struct model *m, tc_optimizer *opt, const tc_tensor *x,
                         const tc_tensor *y, tc_device d, bool amp)
{
    tc_scope *s = tc_scope_begin();
    tc_optimizer_zero_grad(opt);
    tc_tensor *logits;
    if (amp) {
        REQUIRE(tc_autocast_begin(d.type, TC_BFLOAT16) == 0, "%s", tc_last_error());
        logits = model_forward(m, x, true);
        tc_autocast_end(d.type);
        CHECK_INT_EQ(tc_dtype_of(logits), TC_BFLOAT16);
        logits = tc_to_dtype(logits, TC_FLOAT32);
    } else {
        logits = model_forward(m, x, true);
    }
    tc_tensor *loss = tc_cross_entropy(logits, y, 0.1);
    double v = NAN;
    REQUIRE(tc_backward(loss) == 0 && tc_optimizer_step(opt) == 0 && tc_item_double(loss, &v) == 0,
            "%s", tc_last_error());
    tc_scope_end(s);
    return v;
}

/* Two models with the same weights: one on the CPU, one on the GPU in channels-last. */
static void twin_models(const char *arch, struct model **cpu_m, struct model **gpu_m)
{
    tc_manual_seed(7);
    REQUIRE(model_create(arch, 10, cpu_m) == 0 && model_create(arch, 10, gpu_m) == 0, "%s",
            err_msg());
    tc_tensor **cp, **gp;
    size_t n, n2;
    model_tensors(*cpu_m, MODEL_TENSORS_ALL, &cp, NULL, &n);
    model_tensors(*gpu_m, MODEL_TENSORS_ALL, &gp, NULL, &n2);
    for (size_t i = 0; i < n && i < n2; i++)
        tc_copy_(gp[i], cp[i]);
    free(cp);
    free(gp);
    REQUIRE(model_to(*gpu_m, *gpu_dev(), true) == 0, "%s", err_msg());
}

/* The first parameter (conv1's weight) of m, on the CPU. */
static tc_tensor *first_weight(struct model *m)
{
    tc_tensor **p;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &p, &n);
    tc_tensor *w = tc_to_device(p[0], tc_device_cpu());
    free(p);
    return w;
}

/* Two training steps on the GPU against the same two on the CPU from the same weights.
 * fp32 (TF32 off) must agree closely: same maths, other kernels. bf16 autocast, the trainer's
 * default on a GPU, is a precision choice: its losses must stay near fp32's, its weights move;
 * its update is not compared element by element (bf16 gradients of the first layer differ from
 * fp32's by tens of percent through batch norm, measured 0.45 on an H200 with SGD). VGG trains
 * with dropout, whose masks differ between the devices: there, only finiteness and movement. */
static void check_training(const char *arch, bool adam, bool amp, const char *dir)
{
    bool dropout = strncmp(arch, "vgg", 3) == 0;
    struct model *cpu_m, *gpu_m;
    twin_models(arch, &cpu_m, &gpu_m);
    tc_cuda_set_performance(true, false); /* TF32 off: the fp32 comparison is exact maths */
    tc_optimizer *copt = make_optimizer(cpu_m, adam), *gopt = make_optimizer(gpu_m, adam);
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {8, 3, 64, 64}, ys[1] = {8};
    tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, tc_device_cpu());
    tc_tensor *y = tc_randint(10, ys, 1, tc_device_cpu());
    tc_tensor *xg = tc_to_channels_last(tc_to_device(x, *gpu_dev())), *yg = tc_to_device(y, *gpu_dev());
    tc_tensor *before = first_weight(cpu_m); /* the common starting weights */
    const char *mode = amp ? "cuda bf16" : "cuda fp32";
    for (int step = 0; step < 2; step++) {
        double lc = train_step(cpu_m, copt, x, y, tc_device_cpu(), false);
        double lg = train_step(gpu_m, gopt, xg, yg, *gpu_dev(), amp);
        printf("%s %s step %d: loss cpu fp32 %.5f, %s %.5f\n", arch, adam ? "adam" : "sgd",
               step + 1, lc, mode, lg);
        CHECK(isfinite(lg));
        if (!dropout)
            CHECK(fabs(lg - lc) < (amp ? 0.05 * fabs(lc) + 0.05 : 1e-3 * fabs(lc) + 1e-4));
    }
    tc_tensor *gpu_delta = tc_sub(first_weight(gpu_m), before);
    tc_tensor *cpu_delta = tc_sub(first_weight(cpu_m), before);
    double moved = 0, diff = 0;
    CHECK_INT_EQ(tc_normalised_error(gpu_delta, tc_mul_scalar(before, 0.0), &moved), TC_OK);
    CHECK(isfinite(moved) && moved > 0);
    tc_normalised_error(gpu_delta, cpu_delta, &diff);
    printf("%s %s: update of conv1 over 2 steps, %s vs cpu fp32: normalised error %.3g\n", arch,
           adam ? "adam" : "sgd", mode, diff);
    if (!amp && !dropout) {
        char what[128];
        snprintf(what, sizeof what, "%s %s: update of conv1 over 2 steps, cuda fp32 vs cpu fp32",
                 arch, adam ? "adam" : "sgd");
        check_close(what, gpu_delta, cpu_delta, 1e-2);
    }
    tc_cuda_set_performance(true, true);

    /* Resume: the state saved from the GPU, loaded into a new optimizer, steps on. */
    char path[512];
    snprintf(path, sizeof path, "%s/cuda_optimizer.pt", dir);
    REQUIRE(tc_optimizer_save(gopt, path) == 0, "%s", tc_last_error());
    tc_optimizer *resumed = make_optimizer(gpu_m, adam);
    CHECK_INT_EQ(tc_optimizer_load(resumed, path), TC_OK);
    double lr = train_step(gpu_m, resumed, xg, yg, *gpu_dev(), amp);
    CHECK(isfinite(lr));
    tc_scope_end(s);
    tc_optimizer_free(resumed);
    tc_optimizer_free(copt);
    tc_optimizer_free(gopt);
    model_free(cpu_m);
    model_free(gpu_m);
}

static void check_nccl(void)
{
    CHECK(tc_dist_has_nccl());
    tc_manual_seed(5);
    struct model *m;
    REQUIRE(model_create("resnet18", 10, &m) == 0, "%s", err_msg());
    REQUIRE(model_to(m, *gpu_dev(), true) == 0, "%s", err_msg());
    struct tc_dist_options d = {.master_addr = "127.0.0.1", .master_port = 29561, .rank = 0,
                                .world_size = 1, .device = *gpu_dev(), .timeout_s = 60};
    tc_dist *dist = tc_dist_init(&d);
    REQUIRE(dist, "NCCL process group: %s", tc_last_error());
    double values[2] = {1.5, -2};
    CHECK_INT_EQ(tc_dist_all_reduce(dist, values, 2, TC_REDUCE_SUM), 0);
    CHECK(values[0] == 1.5 && values[1] == -2);
    tc_tensor **params;
    size_t n;
    model_parameters(m, MODEL_PARAMS_ALL, &params, &n);
    CHECK_INT_EQ(tc_dist_broadcast(dist, params, n, 0), 0);
    tc_grad_sync *sync = tc_grad_sync_new(dist, params, NULL, n, 0);
    REQUIRE(sync, "gradient sync: %s", tc_last_error());
    tc_optimizer *opt = make_optimizer(m, false);
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {4, 3, 64, 64}, ys[1] = {4};
    tc_tensor *x = tc_to_device(tc_randn(xs, 4, TC_FLOAT32, tc_device_cpu()), *gpu_dev());
    tc_tensor *y = tc_to_device(tc_randint(10, ys, 1, tc_device_cpu()), *gpu_dev());
    for (int step = 0; step < 2; step++) { /* the second step runs on rebuilt buckets */
        tc_optimizer_zero_grad(opt);
        tc_tensor *loss = tc_cross_entropy(model_forward(m, x, true), y, 0.0);
        REQUIRE(tc_grad_sync_before_backward(sync) == 0 && tc_backward(loss) == 0 &&
                    tc_optimizer_step(opt) == 0,
                "%s", tc_last_error());
        CHECK(tc_has_grad(params[0]));
    }
    printf("nccl: one-rank group, all-reduce and two synchronised steps ran\n");
    tc_scope_end(s);
    free(params);
    tc_optimizer_free(opt);
    tc_grad_sync_free(sync);
    tc_dist_free(dist);
    model_free(m);
}

/* The training feed's device path (train/batch_feed.c): bytes in page-locked memory, copied
 * on a side stream, waited for by the compute stream through an event, normalised there by
 * the lookup: the CPU's values bit for bit (a table lookup, no arithmetic on the device). */
static void check_feed_pieces(void)
{
    enum { N = 4, S = 16 };
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    const tc_device gpu = *gpu_dev();
    uint8_t *pinned = tc_host_alloc(N * S * S * 3, true);
    CHECK(pinned != NULL && tc_host_is_pinned(pinned));
    for (int i = 0; i < N * S * S * 3; i++)
        pinned[i] = (uint8_t)(i * 131 + i / 3);
    float table[3][256], on_cpu[N * 3 * S * S], on_gpu[N * 3 * S * S];
    image_normalize_table(mean, std, table);
    int64_t px_shape[4] = {N, S, S, 3}, table_shape[1] = {3 * 256};
    tc_scope *scope = tc_scope_begin();
    tc_tensor *host = tc_from_blob(pinned, px_shape, 4, TC_UINT8);
    tc_tensor *t_cpu = tc_from_data(table, table_shape, 1, TC_FLOAT32);
    CHECK_INT_EQ(tc_to_data(tc_pixels_lookup(host, t_cpu, true), on_cpu, sizeof on_cpu), TC_OK);

    tc_tensor *staged = tc_empty(px_shape, 4, TC_UINT8, gpu);
    tc_stream *stream = tc_stream_new(gpu);
    tc_event *copied = tc_event_new(gpu);
    CHECK(staged && stream && copied);
    CHECK_INT_EQ(tc_copy_async_(staged, host, stream), TC_OK);
    CHECK_INT_EQ(tc_event_record(copied, stream), TC_OK);
    CHECK_INT_EQ(tc_event_wait(copied, NULL), TC_OK);
    tc_tensor *x = tc_pixels_lookup(staged, tc_to_device(t_cpu, gpu), true);
    int64_t waits = tc_device_waits();
    CHECK_INT_EQ(tc_to_data(x, on_gpu, sizeof on_gpu), TC_OK);
    CHECK(tc_device_waits() == waits + 1);
    CHECK(memcmp(on_cpu, on_gpu, sizeof on_cpu) == 0);
    CHECK_INT_EQ(tc_event_synchronize(copied), TC_OK);
    tc_event_free(copied);
    tc_stream_free(stream);
    tc_scope_end(scope);
    tc_host_free(pinned);
    printf("ok feed: pinned bytes copied on a side stream, looked up on the GPU = the CPU's\n");
}

int main(int argc, char **argv)
{
    if (tc_cuda_device_count() == 0) {
        printf("cuda_path: no CUDA device here, skipped\n");
        return 77;
    }
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    CHECK_INT_EQ(tc_cuda_devices_checked(NULL), tc_cuda_device_count());
    CHECK_INT_EQ(tc_cuda_set_device(0), TC_OK);
    CHECK_INT_EQ(tc_cuda_set_device(tc_cuda_device_count()), TC_ERR);
    check_eval_parity("resnet18", 64);
    check_eval_parity("vgg11_bn", 64);
    for (int amp = 0; amp < 2; amp++) {
        check_training("resnet18", false, amp, dir);
        check_training("resnet18", true, amp, dir);
        check_training("vgg11_bn", false, amp, dir);
    }
    check_feed_pieces();
    check_nccl();
    return test_finish("cuda_path");
}
