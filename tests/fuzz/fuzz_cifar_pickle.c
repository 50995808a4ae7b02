/*
 * fuzz_cifar_pickle.c - libFuzzer target: the CIFAR python-batch reader (data/cifar_pickle.c)
 * on any bytes, as a batch (the "labels" of a CIFAR-10 batch and the "fine_labels" of a
 * CIFAR-100 one) and as a meta file (class names). It must stop with a message on anything
 * malformed, never read past the buffer, and a batch it accepts must hold its records' bytes
 * within the input, or within the bytes it decoded (Python 3's protocol-2 bytes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data/cifar_pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const char *const keys[] = {"labels", "fine_labels"};
    for (int k = 0; k < 2; k++) {
        struct cifar_pickle_batch b;
        if (cifar_pickle_batch(data, len, keys[k], &b) == 0) {
            const uint8_t *from = b.owned ? b.owned : data;
            size_t size = b.owned ? b.records * 3072 : len;
            if (b.records && (b.pixels < from || b.pixels + b.records * 3072 > from + size))
                abort(); /* the pixels must lie inside the input (or the decoded bytes) */
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < b.records * 3072; i++)
                sum += b.pixels[i]; /* readable: ASan watches */
            (void)sum;
            cifar_pickle_batch_free(&b);
        }
    }
    char **names;
    int n;
    if (cifar_pickle_names(data, len, "label_names", &names, &n) == 0) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    return 0;
}
