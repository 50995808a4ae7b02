/*
 * fuzz_python_transforms.c - libFuzzer target: reading the torchvision pipeline out of a
 * Python handler's source (serve/python_transforms.c) on any bytes. It must end with 0 or 1
 * and a reason, never read past the buffer, and what it accepts must be usable: positive
 * sizes, positive standard deviations.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "serve/python_transforms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct py_transforms t;
    char why[256];
    int found = py_transforms_find((const char *)data, len, &t, why, sizeof why);
    if (found != 0 && found != 1)
        abort();
    if (found == 1) {
        if (t.resize < 0 || t.resize_h < 0 || t.crop < 0 || t.resize > 4096 || t.crop > 4096)
            abort();
        for (int c = 0; c < 3; c++)
            if (!(t.std[c] > 0) || !isfinite(t.mean[c]))
                abort();
    }
    return 0;
}
