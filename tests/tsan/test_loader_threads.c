/*
 * test_loader_threads.c - the training loader's worker threads under ThreadSanitizer: a CIFAR
 * batch file of 300 records is loaded with 1, 4 and 3 threads for two epochs (each batch cut
 * into chunks the threads fill together, unevenly with 3); the batches must be identical (order and augmentation depend only on seed, epoch and index), and an
 * epoch stopped half-way must shut its workers down cleanly.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "data/loader.h"

static double epoch_checksum(const struct dataset *d, int threads, int epoch, size_t stop_after)
{
    struct loader_config c = {.batch_size = 16, .image_size = 24, .resize_size = 28,
                              .train = true, .augment = true, .min_crop_scale = 0.5,
                              .threads = threads, .seed = 7, .rank = 0, .world_size = 1,
                              .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
    struct loader *l;
    if (loader_start(&l, d, &c, epoch, 0) < 0) {
        fprintf(stderr, "FAIL: %s\n", err_msg());
        exit(1);
    }
    double sum = 0;
    size_t batches = 0;
    struct batch *b;
    while ((stop_after == 0 || batches < stop_after) && loader_next(l, &b) > 0) {
        for (int i = 0; i < b->n * 3 * 24 * 24; i += 97)
            sum += b->images[i] * (double)(i % 13 + 1);
        for (int i = 0; i < b->n; i++)
            sum += (double)b->labels[i] * (double)(b->index + 1);
        loader_release(l, b);
        batches++;
    }
    struct loader_stats stats = {0};
    loader_stop(l, &stats);
    return sum;
}

int main(void)
{
    char dir[] = "/tmp/tsan-loader-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    FILE *f = fopen(path, "wb");
    unsigned seed = 1;
    for (int r = 0; r < 300; r++) {
        fputc(r % 10, f);
        for (int i = 0; i < 3072; i++)
            fputc((int)(rand_r(&seed) & 0xff), f);
    }
    fclose(f);
    struct dataset d;
    if (dataset_open(dir, NULL, NULL, 0, &d) < 0) {
        fprintf(stderr, "FAIL: %s\n", err_msg());
        return 1;
    }
    int failures = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        /* 4 threads: chunks of 4 images; 3 threads: 6, 6 and 4 */
        double one = epoch_checksum(&d, 1, epoch, 0), four = epoch_checksum(&d, 4, epoch, 0);
        double three = epoch_checksum(&d, 3, epoch, 0);
        if (one != four || one != three) {
            fprintf(stderr, "FAIL epoch %d: 1 thread %.6f, 4 threads %.6f, 3 threads %.6f\n",
                    epoch, one, four, three);
            failures++;
        }
    }
    (void)epoch_checksum(&d, 4, 0, 3); /* stopped mid-epoch */
    dataset_free(&d);
    unlink(path);
    rmdir(dir);
    if (failures)
        return 1;
    printf("loader threads: 1, 3 and 4 threads give the same batches; a stop mid-epoch is clean\n");
    return 0;
}
