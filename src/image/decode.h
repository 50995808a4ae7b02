/*
 * decode.h - JPEG and PNG files, held in memory, decoded into 8-bit RGB pixels.
 *
 * This is the one place where untrusted image bytes (training files, HTTP request bodies) meet
 * a codec, so it is defensive: the size in the header is checked against IMAGE_MAX_SIDE and
 * the pixel caps below before anything is allocated, a truncated or corrupt file is an error with
 * the codec's own message rather than an image with grey rows, and every error path frees
 * what it took. The result is what PIL's Image.open(f).convert("RGB") gives: alpha and tRNS
 * are dropped (not composited), 16-bit samples keep their high byte (16-bit gray, PIL's mode
 * I;16, is clipped at 255 instead, as PIL converts it), CMYK JPEGs are read with Adobe's
 * inverted convention.
 *
 * Not here: resizing, cropping and normalisation (transform.h), reading files (fileio.h),
 * other formats (GIF, WebP, BMP, TIFF), colour management (ICC profiles and gamma are ignored,
 * as PIL ignores them), EXIF orientation.
 *
 *     struct image img = {0};
 *     if (image_decode(body, body_len, 0, &img) < 0)
 *         return err_prefix("request body: ");   // "request body: corrupt JPEG: ..."
 *     ...
 *     image_free(&img);
 */
#ifndef IMAGE_DECODE_H
#define IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Pixels are RGB, interleaved, row-major (HWC): width * height * 3 bytes, malloc'd and owned
 * by the struct; image_free releases them. */
struct image {
    uint8_t *pixels;
    int width, height;
    size_t budget; /* bytes a large image took from decode.c's memory budget; image_free
                    * gives them back */
};

/* The caps are PIL's, so that what a Python handler opens we open too (a 48 MP phone photo, a
 * 20000-pixel panorama), and a hostile header is refused before anything is allocated:
 * decoded pixels at most PIL's Image.MAX_IMAGE_PIXELS (89478485, 268 MB of RGB; PIL opens up
 * to it without a warning); a JPEG's header may claim up to twice that (PIL's
 * DecompressionBombError threshold) when it is decoded at a reduced scale that brings it
 * under the cap (serve at 224 px decodes a 108 MP photo at 1/8). A side is at most 65535
 * (JPEG's own limit is 65500). */
#define IMAGE_MAX_SIDE 65535
#define IMAGE_MAX_PIXELS 89478485
#define IMAGE_MAX_HEADER_PIXELS (2 * IMAGE_MAX_PIXELS)

enum image_format { IMAGE_FORMAT_UNKNOWN, IMAGE_FORMAT_JPEG, IMAGE_FORMAT_PNG };

/* The format by its magic bytes (the file name's extension is not trusted). */
enum image_format image_sniff(const uint8_t *data, size_t len);
/* "JPEG", "PNG" or "unknown"; a static string. */
const char *image_format_name(enum image_format f);

/* Decodes data[0..len) into *out (overwritten; on failure it is left empty: pixels NULL, size
 * 0). min_side: when > 0, a JPEG may be decoded at a reduced DCT scale (1/8, 1/4 or 1/2) as long
 * as both output sides stay >= min_side, which is much cheaper than decoding at full size and
 * resizing afterwards; the smallest such scale is used. 0 decodes at full size. PNG ignores
 * it. Returns 0, or -1 with err_msg() saying why ("not a JPEG or PNG image", "corrupt JPEG:
 * Premature end of JPEG file", "PNG image is 100000x100000 pixels; the limit is ..."). */
int image_decode(const uint8_t *data, size_t len, int min_side, struct image *out);

/* At full size, as Pillow's Image.open decodes, except a JPEG over IMAGE_MAX_PIXELS (a 108 MP
 * photo, which Pillow opens with a warning): that one at the smallest DCT scale whose sides stay
 * >= over_cap_side, rather than refused. */
int image_decode_full(const uint8_t *data, size_t len, int over_cap_side, struct image *out);

/* The width and height a JPEG or PNG header declares, without decoding the pixels: lets a
 * caller choose its crop first and then decode at the smallest DCT scale that still covers
 * the crop. Checks the same limits as image_decode. */
int image_probe(const uint8_t *data, size_t len, int *width, int *height);

/* Frees the pixels and empties *img (and gives a large image's bytes back to the budget, on
 * whichever thread frees). NULL-safe and idempotent. */
void image_free(struct image *img);

/* The memory budget that decodes holding more than a 40 MP image's bytes share (their pixels,
 * and a progressive JPEG's coefficients): one that would overdraw it waits until others are
 * freed; one always goes when none is held. By default a quarter of the memory limit (cgroup
 * or physical), at least two of the largest images. For tests; 0 restores the default. */
void image_large_budget_set(size_t bytes);

#endif
