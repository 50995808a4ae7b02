/*
 * test_torchc_api.c DIR - the contract of torchc.h: errors come back as C errors with
 * readable messages and stay sticky, scopes own and free what they should, data goes in and
 * out intact, optimizers follow PyTorch's update rules, and bad files are refused.
 */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/transform.h"
#include "test_util.h"

static tc_device cpu;

static void test_errors_are_sticky(void)
{
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {1, 3, 8, 8}, ws[4] = {4, 5, 3, 3}; /* 5 input channels: wrong */
    tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, cpu);
    tc_tensor *w = tc_randn(ws, 4, TC_FLOAT32, cpu);
    tc_clear_error();
    tc_tensor *y = tc_conv2d(x, w, NULL, 1, 1, 1, 1);
    CHECK(y == NULL);
    CHECK_CONTAINS(tc_last_error(), "tc_conv2d: ");
    CHECK_CONTAINS(tc_last_error(), "channels");
    char first[1024];
    snprintf(first, sizeof first, "%s", tc_last_error());
    /* Later operations on the failed result fail too and keep the first message. */
    tc_tensor *z = tc_linear(tc_flatten(tc_relu(y), 1), w, NULL);
    CHECK(z == NULL);
    CHECK(strcmp(tc_last_error(), first) == 0);
    CHECK_INT_EQ(tc_backward(z), TC_ERR_NULL);

    tc_clear_error();
    CHECK(tc_relu(NULL) == NULL);
    CHECK_CONTAINS(tc_last_error(), "tc_relu: an input tensor is NULL");

    int64_t bad[2] = {2, -3};
    CHECK(tc_zeros(bad, 2, TC_FLOAT32, cpu) == NULL);
    CHECK_CONTAINS(tc_last_error(), "negative size");

    CHECK_INT_EQ(tc_backward(x), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "one-element loss");
    CHECK(tc_grad(x) == NULL);
    CHECK_CONTAINS(tc_last_error(), "has no gradient");

    int64_t ls[2] = {2, 3}, ts[1] = {2};
    CHECK(tc_cross_entropy(tc_zeros(ls, 2, TC_FLOAT32, cpu), tc_zeros(ts, 1, TC_INT64, cpu), 1.5) == NULL);
    CHECK_CONTAINS(tc_last_error(), "label_smoothing");
    CHECK_INT_EQ(tc_autocast_begin(TC_CPU, TC_FLOAT32), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "float16 or bfloat16");
    tc_scope_end(s);
}

static void test_scopes_own_and_free(void)
{
    int64_t base = tc_live_tensors();
    int64_t shape[1] = {16};
    tc_tensor *kept;
    tc_scope *outer = tc_scope_begin();
    {
        tc_scope *inner = tc_scope_begin();
        tc_tensor *a = tc_ones(shape, 1, TC_FLOAT32, cpu);
        tc_tensor *b = tc_mul_scalar(tc_add(a, a), 3.0);
        CHECK_INT_EQ(tc_live_tensors(), base + 3);
        kept = tc_keep(b); /* moves to the outer scope */
        tc_scope_end(inner);
    }
    CHECK_INT_EQ(tc_live_tensors(), base + 1);
    double v = 0;
    CHECK_INT_EQ(tc_item_double(tc_sum(kept), &v), TC_OK);
    CHECK(v == 16 * 6.0);
    tc_tensor *owned = tc_own(tc_ones(shape, 1, TC_FLOAT32, cpu)); /* survives the scope */
    tc_tensor *freed_early = tc_zeros(shape, 1, TC_FLOAT32, cpu);
    tc_free(freed_early); /* freeing a scoped handle early is allowed */
    tc_scope *forgotten = tc_scope_begin();
    (void)tc_ones(shape, 1, TC_FLOAT32, cpu);
    (void)forgotten;
    tc_scope_end(outer); /* ends the forgotten inner scope as well */
    CHECK_INT_EQ(tc_live_tensors(), base + 1);
    tc_free(owned);
    CHECK_INT_EQ(tc_live_tensors(), base);
    CHECK(tc_keep(NULL) == NULL);
}

static void test_data_round_trip(void)
{
    float in[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
    int64_t shape[2] = {2, 3};
    tc_tensor *t = tc_from_data(in, shape, 2, TC_FLOAT32);
    CHECK_INT_EQ(tc_dim(t), 2);
    CHECK_INT_EQ(tc_size(t, -1), 3);
    CHECK_INT_EQ(tc_to_data(t, out, sizeof out), TC_OK);
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK_INT_EQ(tc_to_data(t, out, sizeof out - 4), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "holds 20 bytes but the tensor has 24");
    char buf[32];
    CHECK(strcmp(tc_shape_str(t, buf, sizeof buf), "[2, 3]") == 0);

    tc_tensor *v, *i;
    CHECK_INT_EQ(tc_topk(t, 2, 1, &v, &i), TC_OK);
    int64_t idx[4];
    tc_to_data(i, idx, sizeof idx);
    CHECK(idx[0] == 2 && idx[1] == 1 && idx[2] == 2 && idx[3] == 1);
    tc_free(v);
    tc_free(i);
    tc_free(t);
}

/* The training feed's pieces on the CPU: a host buffer, a copy through a stream with events
 * (no-ops here), and the lookup that normalises bytes, which must give image_normalize_chw's
 * values bit for bit, in NCHW or channels-last memory. */
static void test_pixels_lookup_matches_host_normaliser(void)
{
    enum { N = 3, S = 7 };
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    uint8_t *pixels = tc_host_alloc(N * S * S * 3, false);
    CHECK(pixels != NULL && !tc_host_is_pinned(pixels));
    for (int i = 0; i < N * S * S * 3; i++)
        pixels[i] = (uint8_t)(i * 37 + i / 5);
    float table[3][256], expected[N * 3 * S * S], got[N * 3 * S * S];
    image_normalize_table(mean, std, table);
    for (int i = 0; i < N; i++)
        image_normalize_chw(pixels + i * S * S * 3, S, mean, std, false, expected + i * 3 * S * S);

    int64_t px_shape[4] = {N, S, S, 3}, table_shape[1] = {3 * 256};
    tc_scope *scope = tc_scope_begin();
    tc_tensor *host = tc_from_blob(pixels, px_shape, 4, TC_UINT8);
    tc_tensor *staged = tc_empty(px_shape, 4, TC_UINT8, tc_device_cpu());
    tc_stream *stream = tc_stream_new(tc_device_cpu());
    tc_event *copied = tc_event_new(tc_device_cpu());
    CHECK_INT_EQ(tc_copy_async_(staged, host, stream), TC_OK);
    CHECK_INT_EQ(tc_event_record(copied, stream), TC_OK);
    CHECK_INT_EQ(tc_event_wait(copied, NULL), TC_OK);
    CHECK_INT_EQ(tc_event_synchronize(copied), TC_OK);
    tc_tensor *t = tc_from_data(table, table_shape, 1, TC_FLOAT32);
    for (int channels_last = 0; channels_last < 2; channels_last++) {
        tc_tensor *x = tc_pixels_lookup(staged, t, channels_last);
        CHECK(x != NULL && tc_dim(x) == 4 && tc_size(x, 1) == 3 && tc_size(x, 3) == S);
        CHECK_INT_EQ(tc_to_data(x, got, sizeof got), TC_OK);
        CHECK(memcmp(got, expected, sizeof got) == 0);
    }
    CHECK(tc_pixels_lookup(tc_narrow(staged, 3, 0, 2), t, false) == NULL); /* 2 channels */
    CHECK_CONTAINS(tc_last_error(), "table must be float [C*256]");
    tc_clear_error();
    CHECK_INT_EQ(tc_device_waits(), 0); /* only a GPU makes the host wait */
    tc_event_free(copied);
    tc_stream_free(stream);
    tc_scope_end(scope);
    tc_host_free(pixels);
}

/* One SGD step with momentum and nesterov, checked against the formula PyTorch documents. */
static void test_sgd_rule(void)
{
    tc_scope *s = tc_scope_begin();
    float w0[2] = {1.0f, -2.0f};
    int64_t shape[1] = {2};
    tc_tensor *w = tc_own(tc_from_data(w0, shape, 1, TC_FLOAT32));
    tc_set_requires_grad(w, true);
    struct tc_sgd_options o = tc_sgd_default_options();
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    o.nesterov = true;
    tc_optimizer *opt = tc_sgd_new(&w, 1, &o);
    REQUIRE(opt, "%s", tc_last_error());
    for (int step = 0; step < 2; step++) {
        tc_optimizer_zero_grad(opt);
        CHECK_INT_EQ(tc_backward(tc_sum(tc_mul(w, w))), TC_OK); /* grad = 2w */
        CHECK_INT_EQ(tc_optimizer_step(opt), TC_OK);
    }
    /* By hand: g = 2w + wd*w; buf = g (first step) then 0.9*buf + g; w -= lr*(g + 0.9*buf). */
    for (int k = 0; k < 2; k++) {
        double x = w0[k], buf = 0;
        for (int step = 0; step < 2; step++) {
            double g = 2 * x + 0.01 * x;
            buf = step == 0 ? g : 0.9 * buf + g;
            x -= 0.1 * (g + 0.9 * buf);
        }
        float got[2];
        tc_to_data(w, got, sizeof got);
        if (fabs(got[k] - x) > 1e-5) {
            fprintf(stderr, "sgd w[%d]: got %.7f, expected %.7f\n", k, got[k], x);
            test_failures++;
        }
    }
    CHECK_INT_EQ(tc_optimizer_add_group(opt, &w, 0, 0.5, 0.0), 1);
    CHECK_INT_EQ(tc_optimizer_group_count(opt), 2);
    CHECK_INT_EQ(tc_optimizer_set_lr(opt, 1, 0.25), TC_OK);
    CHECK(tc_optimizer_get_lr(opt, 1) == 0.25 && tc_optimizer_get_lr(opt, 0) == 0.1);
    CHECK_INT_EQ(tc_optimizer_set_lr(opt, 5, 0.1), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "no parameter group 5");
    CHECK_INT_EQ(tc_optimizer_set_lr(opt, -1, -1.0), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "learning rate must be");
    struct tc_sgd_options bad = o;
    bad.dampening = 0.5;
    CHECK(tc_sgd_new(&w, 1, &bad) == NULL);
    CHECK_CONTAINS(tc_last_error(), "nesterov needs momentum > 0 and dampening 0");
    tc_optimizer_free(opt);
    tc_free(w);
    tc_scope_end(s);
}

/* Adam's first step moves every weight by lr (bias correction makes |update| = lr). */
static void test_adam_rule(void)
{
    float w0[3] = {0.5f, -1.0f, 3.0f}, got[3];
    int64_t shape[1] = {3};
    tc_scope *s = tc_scope_begin();
    tc_tensor *w = tc_own(tc_from_data(w0, shape, 1, TC_FLOAT32));
    tc_set_requires_grad(w, true);
    struct tc_adam_options o = tc_adam_default_options();
    o.lr = 0.01;
    tc_optimizer *opt = tc_adam_new(&w, 1, &o);
    tc_backward(tc_sum(tc_mul(w, w)));
    CHECK_INT_EQ(tc_optimizer_step(opt), TC_OK);
    tc_to_data(w, got, sizeof got);
    for (int k = 0; k < 3; k++) {
        double expect = w0[k] - 0.01 * (w0[k] > 0 ? 1 : -1);
        if (fabs(got[k] - expect) > 1e-5) {
            fprintf(stderr, "adam w[%d]: got %.7f, expected %.7f\n", k, got[k], expect);
            test_failures++;
        }
    }
    tc_optimizer_free(opt);
    tc_free(w);
    tc_scope_end(s);
}

/* Resume: an optimizer saved after one step and loaded into a fresh one (over a copy of the
 * weights) continues exactly as the uninterrupted one, for SGD with momentum and for Adam; the
 * state goes through the load path that places it on the parameters' device. */
static void test_optimizer_resume(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/optimizer.pt", dir);
    for (int kind = 0; kind < 2; kind++) {
        tc_scope *s = tc_scope_begin();
        float w0[4] = {0.5f, -1.0f, 3.0f, 0.25f};
        int64_t shape[1] = {4};
        tc_tensor *a = tc_from_data(w0, shape, 1, TC_FLOAT32);
        tc_tensor *b = tc_from_data(w0, shape, 1, TC_FLOAT32);
        tc_set_requires_grad(a, true);
        tc_set_requires_grad(b, true);
        struct tc_sgd_options so = tc_sgd_default_options();
        so.momentum = 0.9;
        so.lr = 0.01;
        struct tc_adam_options ao = tc_adam_default_options();
        ao.lr = 0.05;
        tc_optimizer *oa = kind == 0 ? tc_sgd_new(&a, 1, &so) : tc_adam_new(&a, 1, &ao);
        REQUIRE(oa, "%s", tc_last_error());
        for (int step = 0; step < 3; step++) {
            tc_optimizer_zero_grad(oa);
            tc_backward(tc_sum(tc_mul(tc_mul(a, a), a))); /* grad = 3a^2: state matters */
            CHECK_INT_EQ(tc_optimizer_step(oa), TC_OK);
            if (step == 0) {
                CHECK_INT_EQ(tc_optimizer_save(oa, path), TC_OK);
                tc_copy_(b, a);
            }
        }
        tc_optimizer *ob = kind == 0 ? tc_sgd_new(&b, 1, &so) : tc_adam_new(&b, 1, &ao);
        REQUIRE(ob, "%s", tc_last_error());
        CHECK_INT_EQ(tc_optimizer_load(ob, path), TC_OK);
        for (int step = 1; step < 3; step++) {
            tc_optimizer_zero_grad(ob);
            tc_backward(tc_sum(tc_mul(tc_mul(b, b), b)));
            CHECK_INT_EQ(tc_optimizer_step(ob), TC_OK);
        }
        float ga[4], gb[4];
        tc_to_data(a, ga, sizeof ga);
        tc_to_data(b, gb, sizeof gb);
        for (int k = 0; k < 4; k++)
            if (ga[k] != gb[k]) {
                fprintf(stderr, "%s resume w[%d]: %.8f resumed vs %.8f uninterrupted\n",
                        kind ? "adam" : "sgd", k, gb[k], ga[k]);
                test_failures++;
            }
        CHECK(tc_device_of(b).type == TC_CPU);
        tc_optimizer_free(oa);
        tc_optimizer_free(ob);
        tc_scope_end(s);
    }
}

/* A host with an NVIDIA device node where CUDA cannot start is an error naming why, not a
 * silent CPU: simulated with a directory holding a node named nvidia0 (here CUDA has no
 * driver). Hidden GPUs (CUDA_VISIBLE_DEVICES="") and hosts without nodes count 0. */
static void test_cuda_start_failure_is_loud(const char *dir)
{
    if (tc_cuda_device_count() > 0) {
        printf("cuda start failure: a GPU works here, not simulated\n");
        return;
    }
    char devdir[512], node[600];
    snprintf(devdir, sizeof devdir, "%s/fake_dev", dir);
    mkdir(devdir, 0755);
    CHECK_INT_EQ(tc_cuda_devices_checked(devdir), 0); /* no node: a CPU host */
    snprintf(node, sizeof node, "%s/nvidia0", devdir);
    FILE *f = fopen(node, "w");
    REQUIRE(f, "cannot create %s", node);
    fclose(f);
    int rc = tc_cuda_devices_checked(devdir);
    if (tc_dist_has_nccl()) { /* a CUDA libtorch: CUDA must be tried and its error named */
        CHECK_INT_EQ(rc, TC_ERR);
        CHECK_CONTAINS(tc_last_error(), "nvidia0 exists (this host has an NVIDIA GPU) but CUDA cannot start: ");
        printf("cuda start failure: %s\n", tc_last_error());
    } else { /* the CPU-only image runs on the CPU by design */
        CHECK_INT_EQ(rc, 0);
    }
    setenv("CUDA_VISIBLE_DEVICES", "", 1);
    CHECK_INT_EQ(tc_cuda_devices_checked(devdir), 0);
    unsetenv("CUDA_VISIBLE_DEVICES");
    remove(node);
    rmdir(devdir);
    tc_clear_error();
}

enum fused_kind { FUSED_SGD, FUSED_ADAM, FUSED_ADAMW };

static tc_optimizer *make_fused_test_optimizer(enum fused_kind kind, tc_tensor **w)
{
    if (kind == FUSED_SGD) {
        struct tc_sgd_options o = tc_sgd_default_options();
        o.lr = 0.05;
        o.momentum = 0.9;
        o.weight_decay = 0.01;
        o.nesterov = true;
        return tc_sgd_new(w, 2, &o);
    }
    struct tc_adam_options o = tc_adam_default_options();
    o.lr = 0.05;
    o.weight_decay = 0.01;
    o.decoupled_weight_decay = kind == FUSED_ADAMW;
    return tc_adam_new(w, 2, &o);
}

/* The fused SGD, Adam and AdamW steps (a few kernels per group, what runs on CUDA) against
 * libtorch's loop, on the CPU: momentum, nesterov or the moments, weight decay, two groups, a
 * parameter without a gradient, and a checkpoint taken from the fused one and resumed by the
 * looping one (Adam's step counts must carry over). */
static void test_fused_matches_loop(const char *dir, enum fused_kind kind)
{
    static const char *const names[] = {"sgd", "adam", "adamw"};
    tc_scope *s = tc_scope_begin();
    int64_t shape_a[2] = {3, 5}, shape_b[1] = {7};
    tc_tensor *w[2][3];
    tc_manual_seed(11);
    tc_tensor *init[3] = {tc_randn(shape_a, 2, TC_FLOAT32, cpu), tc_randn(shape_b, 1, TC_FLOAT32, cpu),
                          tc_randn(shape_b, 1, TC_FLOAT32, cpu)};
    tc_optimizer *opt[2];
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 3; i++) {
            w[f][i] = tc_clone(init[i]);
            tc_set_requires_grad(w[f][i], true);
        }
        opt[f] = make_fused_test_optimizer(kind, w[f]);
        REQUIRE(opt[f], "%s", tc_last_error());
        CHECK_INT_EQ(tc_optimizer_add_group(opt[f], &w[f][2], 1, 0.2, 0.0), 1);
        CHECK_INT_EQ(tc_optimizer_set_fused(opt[f], f), TC_OK);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/fused_%s.pt", dir, names[kind]);
    for (int step = 0; step < 4; step++) {
        if (step == 2) { /* the fused one's state, resumed by a looping optimizer */
            CHECK_INT_EQ(tc_optimizer_save(opt[1], path), TC_OK);
            tc_optimizer_set_fused(opt[1], 0);
            CHECK_INT_EQ(tc_optimizer_load(opt[1], path), TC_OK);
        }
        if (step == 3) /* and fused again, after a looping step moved the step counts on */
            tc_optimizer_set_fused(opt[1], 1);
        for (int f = 0; f < 2; f++) {
            tc_optimizer_zero_grad(opt[f]);
            tc_tensor *loss = tc_add(tc_sum(tc_mul(tc_mul(w[f][0], w[f][0]), w[f][0])),
                                     tc_sum(tc_mul(w[f][1], w[f][1])));
            if (step != 1) /* the second group gets no gradient at step 1 */
                loss = tc_add(loss, tc_sum(tc_mul(w[f][2], w[f][2])));
            CHECK_INT_EQ(tc_backward(loss), TC_OK);
            CHECK_INT_EQ(tc_optimizer_step(opt[f]), TC_OK);
        }
    }
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "fused %s vs loop, parameter %d after 4 steps", names[kind], i);
        check_close(what, w[1][i], w[0][i], 1e-6);
        double moved = 0;
        tc_normalised_error(w[1][i], init[i], &moved);
        CHECK(moved > 1e-3);
    }
    for (int f = 0; f < 2; f++) {
        tc_optimizer_free(opt[f]);
        for (int i = 0; i < 3; i++)
            tc_free(w[f][i]);
    }
    tc_scope_end(s);
}

/* Autocast switches the dtype conv2d computes in, and only between begin and end. */
static void test_autocast_and_grad_mode(void)
{
    tc_scope *s = tc_scope_begin();
    int64_t xs[4] = {1, 3, 8, 8}, ws[4] = {4, 3, 3, 3};
    tc_tensor *x = tc_randn(xs, 4, TC_FLOAT32, cpu);
    tc_tensor *w = tc_randn(ws, 4, TC_FLOAT32, cpu);
    REQUIRE(tc_autocast_begin(TC_CPU, TC_BFLOAT16) == 0, "%s", tc_last_error());
    CHECK_INT_EQ(tc_dtype_of(tc_conv2d(x, w, NULL, 1, 1, 1, 1)), TC_BFLOAT16);
    CHECK_INT_EQ(tc_autocast_end(TC_CPU), TC_OK);
    CHECK_INT_EQ(tc_dtype_of(tc_conv2d(x, w, NULL, 1, 1, 1, 1)), TC_FLOAT32);

    tc_set_requires_grad(w, true);
    bool was = tc_set_grad_enabled(false);
    CHECK(was);
    CHECK(!tc_requires_grad(tc_conv2d(x, w, NULL, 1, 1, 1, 1)));
    tc_set_grad_enabled(was);
    CHECK(tc_requires_grad(tc_conv2d(x, w, NULL, 1, 1, 1, 1)));
    tc_scope_end(s);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_state_dict_files(const char *dir)
{
    char path[4096], bad[4096];
    tc_scope *s = tc_scope_begin();
    tc_state_dict *sd = tc_state_dict_new();
    int64_t shape[2] = {3, 4};
    tc_tensor *a = tc_randn(shape, 2, TC_FLOAT32, cpu);
    tc_state_dict_set(sd, "a", a);
    tc_state_dict_set(sd, "n", tc_scalar_tensor(5, TC_INT64, cpu));
    snprintf(path, sizeof path, "%s/sd.pth", dir);
    CHECK_INT_EQ(tc_state_dict_save(sd, path), TC_OK);
    tc_state_dict *back = tc_state_dict_load(path);
    REQUIRE(back, "%s", tc_last_error());
    CHECK_INT_EQ(tc_state_dict_size(back), 2);
    CHECK(strcmp(tc_state_dict_name(back, 0), "a") == 0);
    double err = 1;
    tc_normalised_error(tc_state_dict_get(back, "a"), a, &err);
    CHECK(err == 0);
    CHECK(tc_state_dict_get(back, "missing") == NULL);
    CHECK_CONTAINS(tc_last_error(), "no entry \"missing\" in the state dict");

    snprintf(bad, sizeof bad, "%s/garbage.pth", dir);
    write_file(bad, "this is not a checkpoint", 24);
    CHECK(tc_state_dict_load(bad) == NULL);
    CHECK_CONTAINS(tc_last_error(), "is not a torch.save file");

    /* The first half of a real file: a zip without its central directory. */
    FILE *f = fopen(path, "rb");
    static char half[1 << 16];
    size_t n = fread(half, 1, sizeof half, f);
    fclose(f);
    snprintf(bad, sizeof bad, "%s/truncated.pth", dir);
    write_file(bad, half, n / 2);
    CHECK(tc_state_dict_load(bad) == NULL);
    CHECK_CONTAINS(tc_last_error(), "tc_state_dict_load: ");
    printf("truncated file: %s\n", tc_last_error());

    unsigned char legacy[8] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46};
    snprintf(bad, sizeof bad, "%s/legacy.pth", dir);
    write_file(bad, legacy, sizeof legacy);
    CHECK(tc_state_dict_load(bad) == NULL);
    CHECK_CONTAINS(tc_last_error(), "legacy torch.save format");

    snprintf(bad, sizeof bad, "%s/does-not-exist.pth", dir);
    CHECK(tc_state_dict_load(bad) == NULL);
    CHECK_CONTAINS(tc_last_error(), "cannot open");

    CHECK_INT_EQ(tc_state_dict_save(sd, "/nonexistent-dir/x.pth"), TC_ERR);
    CHECK_CONTAINS(tc_last_error(), "cannot create /nonexistent-dir/x.pth");
    tc_state_dict_free(back);
    tc_state_dict_free(sd);
    tc_scope_end(s);
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s DIR", argv[0]);
    char parent[512];
    snprintf(parent, sizeof parent, "%s", argv[1]);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0755); /* build/test-data may not exist yet */
    }
    mkdir(argv[1], 0755);
    cpu = tc_device_cpu();
    tc_manual_seed(1);
    test_errors_are_sticky();
    test_scopes_own_and_free();
    test_data_round_trip();
    test_pixels_lookup_matches_host_normaliser();
    test_sgd_rule();
    test_adam_rule();
    test_optimizer_resume(argv[1]);
    test_cuda_start_failure_is_loud(argv[1]);
    for (int kind = FUSED_SGD; kind <= FUSED_ADAMW; kind++)
        test_fused_matches_loop(argv[1], (enum fused_kind)kind);
    test_autocast_and_grad_mode();
    test_state_dict_files(argv[1]);
    CHECK_INT_EQ(tc_live_tensors(), 0);
    return test_finish("torchc_api");
}
