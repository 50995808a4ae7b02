/*
 * fuzz_dataset_files.c - libFuzzer target: the channel formats dataset_open reads from files
 * a job is given: CIFAR binary batches (byte 0 even: the input is data_batch_1.bin) and .lst
 * manifests (byte 0 odd: the input is train.lst beside one real PNG, a.png).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "fuzz_util.h"

/* A 1x1 PNG, so that manifest lines naming a.png point at a real image. */
static const uint8_t tiny_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
    0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
    0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1)
        return 0;
    static char dir[1024];
    char cifar[1100], lst[1100], png[1100];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/channel", fuzz_scratch());
        mkdir(dir, 0755);
    }
    snprintf(cifar, sizeof cifar, "%s/data_batch_1.bin", dir);
    snprintf(lst, sizeof lst, "%s/train.lst", dir);
    snprintf(png, sizeof png, "%s/a.png", dir);
    bool manifest = data[0] & 1;
    if (manifest) {
        fuzz_write(png, tiny_png, sizeof tiny_png);
        fuzz_write(lst, data + 1, len - 1);
    } else {
        fuzz_write(cifar, data + 1, len - 1);
    }
    struct dataset d = {0};
    if (dataset_open(dir, NULL, NULL, 0, &d) == 0)
        dataset_free(&d);
    unlink(manifest ? lst : cifar);
    unlink(png);
    return 0;
}
