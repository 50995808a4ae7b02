/*
 * fuzz_image_decode.c - libFuzzer target: JPEG and PNG decoding (image_probe, image_decode at
 * full size and with a shrink-on-load minimum side), as serve and the loader call them on
 * bytes from a client or a channel.
 */
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    int w, h;
    (void)image_probe(data, len, &w, &h);
    struct image img = {0};
    if (image_decode(data, len, 0, &img) == 0)
        image_free(&img);
    struct image small = {0};
    if (image_decode(data, len, 40, &small) == 0)
        image_free(&small);
    return 0;
}
