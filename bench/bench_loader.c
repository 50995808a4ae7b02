/*
 * bench_loader.c DIR SIZE THREADS BATCH EPOCHS [MODE] - our data pipeline alone: indexes the
 * class folders in DIR and runs the training loader for EPOCHS epochs with THREADS worker
 * threads, then prints "images_per_sec=<n> images_per_cpu_sec=<n>" for the last epoch (the
 * first warms the page cache); the second figure divides by the CPU time all threads used,
 * i.e. per core. MODE:
 *   augment  (default) decode, random-resized-crop to SIZE, flip, normalise into float batches
 *   eval     decode, shorter side to SIZE * 8/7, centre SIZE crop, normalise: what training
 *            does without augmentation (the default) and what validation does
 *   decode   each file read and decoded at the DCT scale the eval resize needs, and nothing
 *            else, on one thread: the limit a decoding pipeline can reach
 * Driven by bench/bench_train.py and bench/bench_train224.py, which run the Python pipeline
 * beside it.
 */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
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
    const char *mode = argc == 7 ? argv[6] : "augment";
    if ((argc != 6 && argc != 7) ||
        (strcmp(mode, "augment") && strcmp(mode, "eval") && strcmp(mode, "decode"))) {
        fprintf(stderr, "usage: %s DIR SIZE THREADS BATCH EPOCHS [augment|eval|decode]\n", argv[0]);
        return 2;
    }
    struct dataset d;
    if (dataset_open(argv[1], NULL, NULL, 0, &d) < 0) {
        fprintf(stderr, "%s\n", err_msg());
        return 1;
    }
    struct loader_config c = {
        .batch_size = atoi(argv[4]), .image_size = atoi(argv[2]), .resize_size = atoi(argv[2]),
        .train = true, .augment = IMAGE_AUGMENT_RANDOM_RESIZED, .min_crop_scale = 0.08,
        .threads = atoi(argv[3]),
        .seed = 1, .rank = 0, .world_size = 1,
        .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f},
    };
    if (strcmp(mode, "augment") != 0) {
        c.augment = IMAGE_AUGMENT_NONE;
        c.resize_mode = IMAGE_RESIZE_CROP;
        c.resize_size = (int)lround(c.image_size * 8.0 / 7.0);
    }
    double rate = 0, cpu_rate = 0;
    if (strcmp(mode, "decode") == 0) {
        for (int epoch = 0; epoch < atoi(argv[5]); epoch++) {
            double t0 = now_s(), c0 = cpu_s();
            for (size_t i = 0; i < d.count; i++) {
                struct image img;
                if (dataset_load_image(&d, i, c.resize_size, &img) < 0) {
                    fprintf(stderr, "%s\n", err_msg());
                    return 1;
                }
                image_free(&img);
            }
            rate = (double)d.count / (now_s() - t0);
            cpu_rate = (double)d.count / (cpu_s() - c0);
        }
        printf("images_per_sec=%.1f images_per_cpu_sec=%.1f\n", rate, cpu_rate);
        dataset_free(&d);
        return 0;
    }
    for (int epoch = 0; epoch < atoi(argv[5]); epoch++) {
        struct loader *l;
        if (loader_start(&l, &d, &c, epoch, 0) < 0) {
            fprintf(stderr, "%s\n", err_msg());
            return 1;
        }
        double t0 = now_s(), c0 = cpu_s(), checksum = 0, first_s = -1;
        size_t images = 0;
        struct batch *b;
        while (loader_next(l, &b) > 0) {
            if (first_s < 0) /* what the first training step waits for */
                first_s = now_s() - t0;
            images += (size_t)b->n;
            checksum += b->images[0]; /* touch the data as a consumer would */
            loader_release(l, b);
        }
        struct loader_stats stats = {0};
        loader_stop(l, &stats);
        rate = (double)images / (now_s() - t0);
        cpu_rate = (double)images / (cpu_s() - c0);
        fprintf(stderr, "epoch %d: %zu images, %.1f images/s, first batch after %.0f ms (checksum %.3f)\n",
                epoch, images, rate, first_s * 1000, checksum);
    }
    printf("images_per_sec=%.1f images_per_cpu_sec=%.1f\n", rate, cpu_rate);
    dataset_free(&d);
    return 0;
}
