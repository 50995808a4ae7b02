/*
 * bench_allreduce.c - the cost of gradient synchronisation per training step, through the
 * same path training uses (tc_grad_sync: DDP's Reducer, bucketed Gloo all-reduce inside
 * backward). The "loss" is the sum of all parameters, so backward itself is trivial and the
 * step time is mostly the all-reduce of a whole model's gradients. bench/bench_dist.py runs
 * it with 1 and 2 ranks beside the same measurement through PyTorch's DDP.
 *
 * usage: bench_allreduce ARCH RANK WORLD PORT STEPS
 * prints (rank 0): arch=... grad_mb=... world=... step_ms_median=... step_ms_min=...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/model.h"
#include "torchc.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s ARCH RANK WORLD PORT STEPS\n", argv[0]);
        return 2;
    }
    int rank = atoi(argv[2]), world = atoi(argv[3]), port = atoi(argv[4]), steps = atoi(argv[5]);
    if (world < 1 || rank < 0 || rank >= world || steps < 1 || steps > 100000) {
        fprintf(stderr, "bad RANK, WORLD or STEPS\n");
        return 2;
    }
    /* The cores are shared by the ranks, as train shares them. */
    int threads = tc_get_num_threads() / world;
    tc_set_num_threads(threads > 0 ? threads : 1);
    struct model *m;
    if (model_create(argv[1], 1000, &m) < 0) {
        fprintf(stderr, "model %s: %s\n", argv[1], tc_last_error());
        return 1;
    }
    tc_tensor **params;
    size_t n;
    if (model_parameters(m, MODEL_PARAMS_TRAINABLE, &params, &n) < 0)
        return 1;
    int64_t count = model_parameter_count(m, MODEL_PARAMS_TRAINABLE);

    tc_dist *dist = NULL;
    tc_grad_sync *sync = NULL;
    if (world > 1) {
        struct tc_dist_options o = {.master_addr = "127.0.0.1", .master_port = port,
                                    .rank = rank, .world_size = world,
                                    .device = tc_device_cpu(), .timeout_s = 120};
        dist = tc_dist_init(&o);
        sync = dist ? tc_grad_sync_new(dist, params, NULL, n, 0) : NULL;
        if (!sync) {
            fprintf(stderr, "rank %d: %s\n", rank, tc_last_error());
            return 1;
        }
    }
    const int warmup = 3;
    double *ms = calloc((size_t)steps, sizeof *ms);
    for (int step = 0; step < warmup + steps; step++) {
        tc_scope *s = tc_scope_begin();
        tc_tensor *loss = tc_sum(params[0]);
        for (size_t i = 1; i < n; i++)
            loss = tc_add(loss, tc_sum(params[i]));
        double t0 = now_ms();
        if ((sync && tc_grad_sync_before_backward(sync) < 0) || tc_backward(loss) < 0) {
            fprintf(stderr, "rank %d step %d: %s\n", rank, step, tc_last_error());
            return 1;
        }
        if (step >= warmup)
            ms[step - warmup] = now_ms() - t0;
        tc_scope_end(s);
    }
    qsort(ms, (size_t)steps, sizeof *ms, compare_doubles);
    if (rank == 0)
        printf("arch=%s params=%lld grad_mb=%.1f world=%d step_ms_median=%.2f step_ms_min=%.2f\n",
               argv[1], (long long)count, (double)count * 4 / (1 << 20), world, ms[steps / 2], ms[0]);
    free(ms);
    tc_grad_sync_free(sync);
    tc_dist_free(dist);
    free(params);
    model_free(m);
    return 0;
}
