/*
 * bench_loader.c DIR SIZE THREADS BATCH EPOCHS - our data pipeline alone: indexes the class
 * folders in DIR and runs the training loader (decode, random-resized-crop to SIZE, flip,
 * normalise into float batches) for EPOCHS epochs with THREADS worker threads, then prints
 * "images_per_sec=<n> images_per_cpu_sec=<n>" for the last epoch (the first warms the page
 * cache); the second figure divides by the CPU time all threads used, i.e. per core. Driven by
 * bench/bench_train.py, which runs the Python pipeline beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "common/error.h"
#include "data/loader.h"

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s DIR SIZE THREADS BATCH EPOCHS\n", argv[0]);
        return 2;
    }
    struct dataset d;
    if (dataset_open(argv[1], NULL, NULL, 0, &d) < 0) {
        fprintf(stderr, "%s\n", err_msg());
        return 1;
    }
    struct loader_config c = {
        .batch_size = atoi(argv[4]), .image_size = atoi(argv[2]), .resize_size = atoi(argv[2]),
        .train = true, .augment = true, .min_crop_scale = 0.08, .threads = atoi(argv[3]),
        .seed = 1, .rank = 0, .world_size = 1,
        .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f},
    };
    double rate = 0, cpu_rate = 0;
    for (int epoch = 0; epoch < atoi(argv[5]); epoch++) {
        struct loader *l;
        if (loader_start(&l, &d, &c, epoch, 0) < 0) {
            fprintf(stderr, "%s\n", err_msg());
            return 1;
        }
        double t0 = now_s(), c0 = cpu_s(), checksum = 0;
        size_t images = 0;
        struct batch *b;
        while (loader_next(l, &b) > 0) {
            images += (size_t)b->n;
            checksum += b->images[0]; /* touch the data as a consumer would */
            loader_release(l, b);
        }
        struct loader_stats stats = {0};
        loader_stop(l, &stats);
        rate = (double)images / (now_s() - t0);
        cpu_rate = (double)images / (cpu_s() - c0);
        fprintf(stderr, "epoch %d: %zu images, %.1f images/s (checksum %.3f)\n", epoch, images, rate, checksum);
    }
    printf("images_per_sec=%.1f images_per_cpu_sec=%.1f\n", rate, cpu_rate);
    dataset_free(&d);
    return 0;
}
