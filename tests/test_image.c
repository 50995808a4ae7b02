/*
 * test_image.c DIR - image decoding (decode.h) and the shared preprocessing (transform.h).
 *
 * Every test file is made here at run time with libjpeg's compressor and libpng's writer (the
 * files are also left in DIR for inspection when a check fails): round trips for each PNG
 * layout PIL meets in practice, JPEG colour spaces and DCT scaling, and the files that must be
 * refused (truncated, oversized headers, not an image). The transforms are checked against
 * their definitions and, for the resampler, against numbers Pillow 13 computed once:
 *     Image.frombytes("RGB", (13, 9), px).resize(size, Image.BILINEAR, box=box)
 * with px as make_pattern() below.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "common/error.h"
#include "common/rng.h"
#include "image/decode.h"
#include "image/jitter.h"
#include "image/transform.h"
#include "test_util.h"

static const char *scratch;

/* mkdir -p: on a fresh build tree even the parent of DIR may not exist yet. */
static void make_dirs(const char *dir)
{
    char path[4096];
    REQUIRE(strlen(dir) < sizeof path, "path too long: %s", dir);
    strcpy(path, dir);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
    struct stat st;
    REQUIRE(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "cannot create %s", dir);
}

static void save(const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    REQUIRE(fwrite(data, 1, len, f) == len, "short write to %s", path);
    fclose(f);
}

/* ---- making test files ---- */

/* A JPEG of w x h pixels with `components` interleaved samples in colour space `cs`, in a
 * malloc'd buffer. The compressor's default error handler exits, which fails the test. */
static uint8_t *make_jpeg(const uint8_t *pixels, int w, int h, int components, J_COLOR_SPACE cs,
                          int quality, bool progressive, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * w * components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *len = size;
    return buf;
}

struct membuf {
    uint8_t *data;
    size_t len, cap;
};

static void membuf_write(png_structp png, png_bytep data, size_t n)
{
    struct membuf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown)
            png_error(png, "out of memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void membuf_flush(png_structp png)
{
    (void)png;
}

struct png_spec {
    int width, height, color_type, bit_depth;
    bool interlaced;
    const png_color *palette;
    int palette_len;
    const png_byte *trans; /* palette alpha, or NULL */
    int trans_len;
};

/* A PNG from rows already in PNG's packing (samples of bit_depth bits, 16-bit big-endian). */
static uint8_t *make_png(const struct png_spec *s, const uint8_t *packed, size_t *len)
{
    static struct membuf buf; /* static: unchanged by longjmp, whatever the optimiser does */
    memset(&buf, 0, sizeof buf);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    REQUIRE(png, "png_create_write_struct");
    png_infop info = png_create_info_struct(png);
    REQUIRE(info, "png_create_info_struct");
    if (setjmp(png_jmpbuf(png)))
        REQUIRE(0, "libpng could not write the test PNG");
    png_set_write_fn(png, &buf, membuf_write, membuf_flush);
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth,
                 s->color_type, s->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->palette_len);
    if (s->trans)
        png_set_tRNS(png, info, s->trans, s->trans_len, NULL);
    png_write_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    png_bytep *rows = malloc((size_t)s->height * sizeof *rows);
    REQUIRE(rows, "out of memory");
    for (int y = 0; y < s->height; y++)
        rows[y] = (png_bytep)(packed + (size_t)y * stride);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *len = buf.len;
    return buf.data;
}

/* A smooth colour gradient with some texture: JPEG keeps it well, so round-trip errors stay
 * small, and no two neighbouring rows or columns are alike. */
static uint8_t *make_gradient(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    REQUIRE(p, "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(255 * x / (w - 1));
            q[1] = (uint8_t)(255 * y / (h - 1));
            q[2] = (uint8_t)(128 + 100 * sin(x * 0.1) * cos(y * 0.07));
        }
    return p;
}

/* The pattern the Pillow reference numbers were computed on (see the top of the file). */
static void make_pattern(struct image *img, int w, int h)
{
    *img = (struct image){.width = w, .height = h}; /* no budget: image_free gives none back */
    img->pixels = malloc((size_t)w * h * 3);
    REQUIRE(img->pixels, "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img->pixels[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)((x * 37 + y * 91 + c * 53 + (x * y) % 17 * 5) & 255);
}

static double mean_abs_error(const uint8_t *a, const uint8_t *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += abs((int)a[i] - (int)b[i]);
    return sum / (double)n;
}

/* Decodes and requires success: everything after it needs the pixels. */
static void decode_ok(const uint8_t *data, size_t len, int min_side, struct image *img,
                      const char *what)
{
    err_clear();
    int rc = image_decode(data, len, min_side, img);
    REQUIRE(rc == 0, "%s: image_decode failed: %s", what, err_msg());
    REQUIRE(img->pixels, "%s: no pixels", what);
}

/* Decodes and expects failure with a message containing `needle`, and an empty image. */
static void check_refused(const uint8_t *data, size_t len, const char *needle, const char *what)
{
    struct image img = {.pixels = (uint8_t *)"stale", .width = 7, .height = 7};
    err_clear();
    int rc = image_decode(data, len, 0, &img);
    CHECK(rc < 0);
    CHECK(img.pixels == NULL && img.width == 0 && img.height == 0);
    CHECK_CONTAINS(err_msg(), needle);
    printf("ok   %s refused: %s\n", what, err_msg());
    if (rc == 0)
        image_free(&img);
}

/* ---- decoding ---- */

static void test_sniff(void)
{
    const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0};
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK_INT_EQ(image_sniff(jpeg, sizeof jpeg), IMAGE_FORMAT_JPEG);
    CHECK_INT_EQ(image_sniff(png, sizeof png), IMAGE_FORMAT_PNG);
    CHECK_INT_EQ(image_sniff(png, sizeof png - 1), IMAGE_FORMAT_UNKNOWN);
    CHECK_INT_EQ(image_sniff((const uint8_t *)"GIF89a", 6), IMAGE_FORMAT_UNKNOWN);
    CHECK_INT_EQ(image_sniff(NULL, 0), IMAGE_FORMAT_UNKNOWN);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_JPEG), "JPEG") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_PNG), "PNG") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_UNKNOWN), "unknown") == 0);

    struct image img = {0};
    image_free(&img);
    image_free(&img);
    image_free(NULL);
}

static void test_jpeg_rgb(void)
{
    const int w = 64, h = 48;
    uint8_t *src = make_gradient(w, h);
    const bool progressive[2] = {false, true};
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *file = make_jpeg(src, w, h, 3, JCS_RGB, 95, progressive[i], &len);
        save(progressive[i] ? "rgb_progressive.jpg" : "rgb.jpg", file, len);
        struct image img;
        decode_ok(file, len, 0, &img, "RGB JPEG");
        CHECK_INT_EQ(img.width, w);
        CHECK_INT_EQ(img.height, h);
        double mae = mean_abs_error(img.pixels, src, (size_t)w * h * 3);
        CHECK(mae < 2.0);
        printf("ok   RGB JPEG (%s) round trip: mean abs error %.3f\n",
               progressive[i] ? "progressive" : "baseline", mae);
        image_free(&img);
        CHECK(img.pixels == NULL);
        free(file);
    }
    free(src);
}

static void test_jpeg_gray(void)
{
    const int w = 40, h = 30;
    uint8_t *gray = malloc((size_t)w * h);
    REQUIRE(gray, "out of memory");
    for (int i = 0; i < w * h; i++)
        gray[i] = (uint8_t)(i * 7 % 256 / 4 + 60 + (i / w) * 3);
    size_t len;
    uint8_t *file = make_jpeg(gray, w, h, 1, JCS_GRAYSCALE, 95, false, &len);
    save("gray.jpg", file, len);
    struct image img;
    decode_ok(file, len, 0, &img, "grayscale JPEG");
    CHECK_INT_EQ(img.width, w);
    CHECK_INT_EQ(img.height, h);
    int unequal = 0;
    double err = 0;
    for (int i = 0; i < w * h; i++) {
        const uint8_t *p = img.pixels + 3 * i;
        unequal += p[0] != p[1] || p[1] != p[2];
        err += abs(p[0] - gray[i]);
    }
    CHECK_INT_EQ(unequal, 0);
    CHECK(err / (w * h) < 3.0);
    printf("ok   grayscale JPEG -> RGB with R=G=B, mean abs error %.3f\n", err / (w * h));
    image_free(&img);
    free(file);
    free(gray);
}

/* Adobe-style CMYK (libjpeg writes the Adobe marker): stored values are inverted ink, and
 * R = C * K / 255 on the stored values. */
static void test_jpeg_cmyk(void)
{
    const int w = 16, h = 16;
    const uint8_t cmyk[4] = {200, 100, 50, 220};
    uint8_t *pixels = malloc((size_t)w * h * 4);
    REQUIRE(pixels, "out of memory");
    for (int i = 0; i < w * h; i++)
        memcpy(pixels + 4 * i, cmyk, 4);
    size_t len;
    uint8_t *file = make_jpeg(pixels, w, h, 4, JCS_CMYK, 100, false, &len);
    save("cmyk.jpg", file, len);
    struct image img;
    decode_ok(file, len, 0, &img, "CMYK JPEG");
    int worst = 0;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) {
            int expected = (cmyk[c] * cmyk[3] + 127) / 255;
            int d = abs(img.pixels[3 * i + c] - expected);
            worst = d > worst ? d : worst;
        }
    CHECK(worst <= 2);
    printf("ok   CMYK JPEG -> RGB (%d %d %d), worst error %d\n", img.pixels[0], img.pixels[1],
           img.pixels[2], worst);
    image_free(&img);
    free(file);
    free(pixels);
}

static void test_jpeg_dct_scaling(void)
{
    const int w = 400, h = 300;
    uint8_t *src = make_gradient(w, h);
    size_t len;
    uint8_t *file = make_jpeg(src, w, h, 3, JCS_RGB, 90, false, &len);
    save("scaling.jpg", file, len);
    /* min_side -> expected size: the smallest of 1/8, 1/4, 1/2, 1 with both sides >= min_side. */
    const struct {
        int min_side, width, height;
    } cases[] = {
        {0, 400, 300},   {64, 100, 75},  {75, 100, 75},
        {76, 200, 150}, /* 1/2: 3/8 would do, but only the SIMD scales are used */
        {1, 50, 38},     {300, 400, 300}, {1000, 400, 300}, /* never below full size */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct image img;
        decode_ok(file, len, cases[i].min_side, &img, "DCT-scaled JPEG");
        CHECK_INT_EQ(img.width, cases[i].width);
        CHECK_INT_EQ(img.height, cases[i].height);
        /* The reduced image is the same picture: its mean colour matches the source's. */
        double mean_src = 0, mean_img = 0;
        for (size_t k = 0; k < (size_t)w * h * 3; k++)
            mean_src += src[k];
        for (size_t k = 0; k < (size_t)img.width * img.height * 3; k++)
            mean_img += img.pixels[k];
        mean_src /= (double)w * h * 3;
        mean_img /= (double)img.width * img.height * 3;
        CHECK(fabs(mean_src - mean_img) < 2.0);
        image_free(&img);
    }
    printf("ok   DCT scaling: 400x300 with min_side 64 decodes at 100x75\n");
    free(file);
    free(src);
}

static void test_jpeg_damaged(void)
{
    const int w = 64, h = 48;
    uint8_t *src = make_gradient(w, h);
    size_t len;
    uint8_t *file = make_jpeg(src, w, h, 3, JCS_RGB, 90, false, &len);

    save("truncated.jpg", file, len / 2);
    check_refused(file, len / 2, "corrupt JPEG: Premature end of JPEG file", "truncated JPEG");
    size_t plen;
    uint8_t *prog = make_jpeg(src, w, h, 3, JCS_RGB, 90, true, &plen);
    check_refused(prog, plen / 2, "corrupt JPEG: Premature end", "truncated progressive JPEG");
    /* A progressive header of 13375x13375 (179 MP: 1 MB files of it exist): libjpeg would
     * allocate the whole image's coefficients (0.5-1 GB) in jpeg_start_decompress, whatever
     * the scale. Refused before it: at full size by the decoded size, at a 1/8 scale because
     * a progressive file's header is held to IMAGE_MAX_PIXELS. */
    size_t sof2 = 2;
    while (sof2 + 9 < plen && !(prog[sof2] == 0xff && prog[sof2 + 1] == 0xc2))
        sof2++;
    REQUIRE(sof2 + 9 < plen, "no SOF2 marker in the progressive test JPEG");
    prog[sof2 + 5] = prog[sof2 + 7] = 13375 >> 8;
    prog[sof2 + 6] = prog[sof2 + 8] = 13375 & 255;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    check_refused(prog, plen, "decoded at 13375x13375", "progressive 13375x13375 at full size");
    struct image scaled_prog = {0};
    err_clear();
    CHECK(image_decode(prog, plen, 224, &scaled_prog) < 0);
    CHECK_CONTAINS(err_msg(), "progressive: JPEG image is 13375x13375 pixels");
    getrusage(RUSAGE_SELF, &after);
    CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024); /* KiB: nothing large allocated */
    printf("ok   a 179 MP progressive header is refused before its coefficients are allocated\n");
    free(prog);
    /* Everything but the end marker: the pixels may be complete, the file is not. */
    check_refused(file, len - 2, "corrupt JPEG", "JPEG without its end marker");

    /* Stray bytes before the end marker only earn a warning from libjpeg (common in real
     * datasets) and leave the pixels alone: accepted, same pixels. */
    REQUIRE(file[len - 2] == 0xff && file[len - 1] == 0xd9, "no EOI at the end");
    uint8_t *stray = malloc(len + 3);
    REQUIRE(stray, "out of memory");
    memcpy(stray, file, len - 2);
    memcpy(stray + len - 2, "\x12\x34\x56\xff\xd9", 5);
    struct image clean, noisy;
    decode_ok(file, len, 0, &clean, "clean JPEG");
    decode_ok(stray, len + 3, 0, &noisy, "JPEG with stray bytes");
    CHECK(memcmp(clean.pixels, noisy.pixels, (size_t)w * h * 3) == 0);
    printf("ok   stray bytes before the end marker are tolerated\n");
    image_free(&clean);
    image_free(&noisy);
    free(stray);

    /* A header claiming 20000x20000: refused before libjpeg or we allocate pixel memory. */
    size_t sof = 2;
    while (sof + 9 < len && !(file[sof] == 0xff && file[sof + 1] == 0xc0))
        sof++;
    REQUIRE(sof + 9 < len, "no SOF0 marker in the test JPEG");
    uint8_t *big = malloc(len);
    REQUIRE(big, "out of memory");
    memcpy(big, file, len);
    big[sof + 5] = 20000 >> 8; /* height */
    big[sof + 6] = 20000 & 255;
    big[sof + 7] = 20000 >> 8; /* width */
    big[sof + 8] = 20000 & 255;
    save("huge_header.jpg", big, len);
    check_refused(big, len, "JPEG image is 20000x20000 pixels; the limit is 65535 pixels per "
                            "side and 178956970 pixels in all",
                  "JPEG with a 20000x20000 header");
    /* 12000x9000 (a 108 MP photo): within PIL's header limit, but over IMAGE_MAX_PIXELS at
     * full size, so refused as decoded before the pixels are allocated; at the 1/8 scale a
     * 224-pixel crop needs (1500x1125) the decoder starts, and fails on the data this header
     * does not match (not on the size). */
    big[sof + 5] = 9000 >> 8;
    big[sof + 6] = 9000 & 255;
    big[sof + 7] = 12000 >> 8;
    big[sof + 8] = 12000 & 255;
    check_refused(big, len, "decoded at 12000x9000; the limit is 89478485 pixels in all as decoded",
                  "JPEG with a 12000x9000 header, at full size");
    struct image scaled = {0};
    err_clear();
    CHECK(image_decode(big, len, 224, &scaled) < 0);
    CHECK(strstr(err_msg(), "limit") == NULL && strstr(err_msg(), "corrupt JPEG") != NULL);
    printf("ok   the same header at a 1/8 scale passes the size check: %s\n", err_msg());
    free(big);
    free(file);
    free(src);
}

static void test_png_rgb(void)
{
    const int w = 37, h = 23; /* odd sizes: every Adam7 pass is partial */
    uint8_t *src = make_gradient(w, h);
    for (int interlaced = 0; interlaced < 2; interlaced++) {
        struct png_spec s = {w, h, PNG_COLOR_TYPE_RGB, 8, interlaced, NULL, 0, NULL, 0};
        size_t len;
        uint8_t *file = make_png(&s, src, &len);
        save(interlaced ? "rgb_interlaced.png" : "rgb.png", file, len);
        struct image img;
        decode_ok(file, len, 64, &img, "RGB PNG"); /* min_side means nothing to PNG */
        CHECK_INT_EQ(img.width, w);
        CHECK_INT_EQ(img.height, h);
        CHECK(memcmp(img.pixels, src, (size_t)w * h * 3) == 0);
        image_free(&img);
        if (!interlaced) {
            check_refused(file, len / 2, "corrupt PNG", "truncated PNG");
            /* A flipped bit in the pixel data fails IDAT's CRC: a critical chunk, an error. */
            uint8_t *bad = malloc(len);
            REQUIRE(bad, "out of memory");
            memcpy(bad, file, len);
            bad[len / 2] ^= 0x10;
            check_refused(bad, len, "corrupt PNG", "PNG with a damaged IDAT");
            free(bad);
        }
        free(file);
    }
    printf("ok   8-bit RGB PNG (plain and interlaced): exact round trip\n");
    free(src);
}

static void test_png_rgba(void)
{
    const int w = 9, h = 7;
    uint8_t rgba[9 * 7 * 4];
    for (int i = 0; i < w * h; i++) {
        rgba[4 * i + 0] = (uint8_t)(i * 3);
        rgba[4 * i + 1] = (uint8_t)(255 - i);
        rgba[4 * i + 2] = (uint8_t)(i * 11);
        rgba[4 * i + 3] = (uint8_t)(i * 4); /* mostly transparent: must not darken anything */
    }
    struct png_spec s = {w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, false, NULL, 0, NULL, 0};
    size_t len;
    uint8_t *file = make_png(&s, rgba, &len);
    save("rgba.png", file, len);
    struct image img;
    decode_ok(file, len, 0, &img, "RGBA PNG");
    int wrong = 0;
    for (int i = 0; i < w * h; i++)
        wrong += memcmp(img.pixels + 3 * i, rgba + 4 * i, 3) != 0;
    CHECK_INT_EQ(wrong, 0);
    printf("ok   RGBA PNG: alpha dropped, colours exact\n");
    image_free(&img);
    free(file);
}

static void test_png_palette(void)
{
    const png_color palette[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {12, 34, 56}};
    const png_byte trans[2] = {0, 128}; /* a tRNS chunk: PIL's convert("RGB") ignores it */
    const int w = 10, h = 3;
    uint8_t idx[10 * 3];
    for (int i = 0; i < w * h; i++)
        idx[i] = (uint8_t)(i % 4);
    /* 8-bit indices, then the same image packed 2 bits per pixel. */
    uint8_t packed[3 * 3] = {0};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            packed[y * 3 + x / 4] |= (uint8_t)(idx[y * w + x] << (6 - 2 * (x % 4)));
    const struct {
        int depth;
        const uint8_t *rows;
        const png_byte *trans;
        const char *name;
    } cases[] = {{8, idx, NULL, "palette8.png"},
                 {2, packed, NULL, "palette2.png"},
                 {8, idx, trans, "palette8_trns.png"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct png_spec s = {w,       h, PNG_COLOR_TYPE_PALETTE, cases[k].depth, false,
                             palette, 4, cases[k].trans,         2};
        size_t len;
        uint8_t *file = make_png(&s, cases[k].rows, &len);
        save(cases[k].name, file, len);
        struct image img;
        decode_ok(file, len, 0, &img, cases[k].name);
        int wrong = 0;
        for (int i = 0; i < w * h; i++) {
            const png_color *c = &palette[idx[i]];
            const uint8_t *p = img.pixels + 3 * i;
            wrong += p[0] != c->red || p[1] != c->green || p[2] != c->blue;
        }
        CHECK_INT_EQ(wrong, 0);
        image_free(&img);
        free(file);
    }
    printf("ok   palette PNG (8-bit, 2-bit, with tRNS) -> exact palette colours\n");
}

static void test_png_gray(void)
{
    const int w = 12, h = 5;
    /* 16-bit gray, big-endian: clipped at 255, as PIL converts its mode I;16 (Pillow 13:
     * 0, 100, 255, 256, 1000, 30000, 65535 -> 0, 100, 255, 255, 255, 255, 255). */
    uint8_t g16[12 * 5 * 2];
    unsigned want16[12 * 5];
    for (int i = 0; i < w * h; i++) {
        unsigned v = i == w * h - 1 ? 65535 : (unsigned)i * 7; /* 0..406 and white */
        g16[2 * i] = (uint8_t)(v >> 8);
        g16[2 * i + 1] = (uint8_t)v;
        want16[i] = v > 255 ? 255 : v;
    }
    struct png_spec s16 = {w, h, PNG_COLOR_TYPE_GRAY, 16, false, NULL, 0, NULL, 0};
    size_t len;
    uint8_t *file = make_png(&s16, g16, &len);
    save("gray16.png", file, len);
    struct image img;
    decode_ok(file, len, 0, &img, "16-bit gray PNG");
    int wrong = 0;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            wrong += img.pixels[3 * i + c] != want16[i];
    CHECK_INT_EQ(wrong, 0);
    image_free(&img);
    free(file);

    /* 1-bit gray: 0 -> 0, 1 -> 255. Rows of 12 bits, padded to 2 bytes. */
    uint8_t g1[5 * 2];
    for (int y = 0; y < h; y++) {
        g1[2 * y] = (uint8_t)(0xa5 ^ y);
        g1[2 * y + 1] = (uint8_t)(0x30 | (y << 6));
    }
    struct png_spec s1 = {w, h, PNG_COLOR_TYPE_GRAY, 1, false, NULL, 0, NULL, 0};
    file = make_png(&s1, g1, &len);
    save("gray1.png", file, len);
    decode_ok(file, len, 0, &img, "1-bit gray PNG");
    wrong = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int bit = (g1[2 * y + x / 8] >> (7 - x % 8)) & 1;
            for (int c = 0; c < 3; c++)
                wrong += img.pixels[(y * w + x) * 3 + c] != (bit ? 255 : 0);
        }
    CHECK_INT_EQ(wrong, 0);
    image_free(&img);
    free(file);

    /* 8-bit gray with alpha: gray to RGB, alpha dropped. */
    uint8_t ga[12 * 5 * 2];
    for (int i = 0; i < w * h; i++) {
        ga[2 * i] = (uint8_t)(i * 4 + 1);
        ga[2 * i + 1] = (uint8_t)(i & 1 ? 0 : 255);
    }
    struct png_spec sga = {w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, NULL, 0, NULL, 0};
    file = make_png(&sga, ga, &len);
    save("gray_alpha.png", file, len);
    decode_ok(file, len, 0, &img, "gray+alpha PNG");
    wrong = 0;
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            wrong += img.pixels[3 * i + c] != ga[2 * i];
    CHECK_INT_EQ(wrong, 0);
    image_free(&img);
    free(file);
    printf("ok   gray PNG: 16-bit clipped at 255 (PIL's I;16), 1-bit expands to 0/255, alpha "
           "dropped\n");
}

/* A PNG signature and an IHDR chunk (with a valid CRC, so libpng would believe it) claiming
 * width x height, then IEND. */
static size_t make_png_header(uint32_t width, uint32_t height, uint8_t out[45])
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *p = out;
    memcpy(p, sig, 8);
    p += 8;
    const uint8_t ihdr[4 + 4 + 13] = {0,
                                      0,
                                      0,
                                      13,
                                      'I',
                                      'H',
                                      'D',
                                      'R',
                                      (uint8_t)(width >> 24),
                                      (uint8_t)(width >> 16),
                                      (uint8_t)(width >> 8),
                                      (uint8_t)width,
                                      (uint8_t)(height >> 24),
                                      (uint8_t)(height >> 16),
                                      (uint8_t)(height >> 8),
                                      (uint8_t)height,
                                      8, /* bit depth */
                                      2, /* RGB */
                                      0,
                                      0,
                                      0};
    memcpy(p, ihdr, sizeof ihdr);
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 4 + 13); /* over type and data */
    p += sizeof ihdr;
    *p++ = (uint8_t)(crc >> 24);
    *p++ = (uint8_t)(crc >> 16);
    *p++ = (uint8_t)(crc >> 8);
    *p++ = (uint8_t)crc;
    const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(p, iend, sizeof iend);
    p += sizeof iend;
    return (size_t)(p - out);
}

static void test_png_oversized(void)
{
    uint8_t file[45];
    /* Were 100000 x 100000 x 3 bytes (30 GB) ever requested, ASan would abort the test. */
    size_t len = make_png_header(100000, 100000, file);
    save("huge_header.png", file, len);
    check_refused(file, len, "PNG image is 100000x100000 pixels; the limit is 65535 pixels per "
                             "side and 89478485 pixels in all",
                  "PNG with a 100000x100000 header");
    /* Within the side limit, over the pixel limit (PIL's MAX_IMAGE_PIXELS) by one row. */
    len = make_png_header(10000, 8948, file);
    check_refused(file, len, "89478485 pixels", "PNG with a 10000x8948 header");
    /* Zero width is invalid PNG. */
    len = make_png_header(0, 10, file);
    check_refused(file, len, "no pixels", "PNG with a 0x10 header");
}

/* Images over 40 MP are read (PIL reads up to 89.5 MP) within a process-wide memory budget:
 * decodes run side by side while their bytes fit, a decode that would overdraw it waits until
 * another image is freed (on any thread), and images under 40 MP never wait. */
struct budget_decode {
    const uint8_t *file;
    size_t len;
    struct image img;
    atomic_int started, done;
    int rc;
};

static void *budget_decode_thread(void *arg)
{
    struct budget_decode *g = arg;
    atomic_store(&g->started, 1);
    g->rc = image_decode(g->file, g->len, 0, &g->img);
    atomic_store(&g->done, 1);
    return NULL;
}

static void start_decode(struct budget_decode *g, pthread_t *t)
{
    REQUIRE(pthread_create(t, NULL, budget_decode_thread, g) == 0, "pthread_create");
    while (!atomic_load(&g->started))
        usleep(1000);
}

static void test_large_images_share_a_budget(void)
{
    const int side = 6400; /* 40.96 MP: over the 40 MP from which images count */
    const size_t bytes = (size_t)side * side * 3;
    uint8_t *gray = calloc((size_t)side * side, 1);
    REQUIRE(gray, "out of memory");
    struct png_spec spec = {side, side, PNG_COLOR_TYPE_GRAY, 8, false, NULL, 0, NULL, 0};
    size_t len;
    uint8_t *file = make_png(&spec, gray, &len);
    free(gray);
    image_large_budget_set(bytes * 5 / 2); /* two fit, a third does not */

    struct image held;
    decode_ok(file, len, 0, &held, "a 6400x6400 PNG");
    CHECK(held.budget == bytes);
    struct budget_decode second = {.file = file, .len = len}, third = {.file = file, .len = len};
    pthread_t t2, t3;
    start_decode(&second, &t2);
    pthread_join(t2, NULL); /* fits beside the first: no wait */
    CHECK(second.rc == 0 && second.img.budget == bytes);
    start_decode(&third, &t3);
    usleep(2000 * 1000); /* a decode of this size takes well under a second when let through */
    CHECK(!atomic_load(&third.done));

    size_t small_len;
    uint8_t *small_px = make_gradient(64, 48);
    uint8_t *small = make_jpeg(small_px, 64, 48, 3, JCS_RGB, 90, false, &small_len);
    struct budget_decode s = {.file = small, .len = small_len};
    pthread_t ts;
    start_decode(&s, &ts);
    pthread_join(ts, NULL);
    CHECK(s.rc == 0 && s.img.budget == 0);
    printf("ok   a small image is decoded while the budget is full\n");
    image_free(&s.img);

    image_free(&second.img); /* decoded on another thread: its bytes go back all the same */
    pthread_join(t3, NULL);
    CHECK(third.rc == 0 && third.img.budget == bytes && third.img.width == side);
    printf("ok   a third large image waited until one of two was freed (by another thread)\n");
    image_free(&third.img);
    image_free(&held);

    image_large_budget_set(bytes); /* everything given back: one at a time still runs */
    for (int i = 0; i < 2; i++) {
        struct image again;
        decode_ok(file, len, 0, &again, "a large PNG after the others were freed");
        image_free(&again);
    }
    image_large_budget_set(0);
    free(small_px);
    free(small);
    free(file);
}

static void test_not_an_image(void)
{
    const uint8_t garbage[] = "GIF89a this is not a JPEG or a PNG";
    save("garbage.bin", garbage, sizeof garbage);
    check_refused(garbage, sizeof garbage, "not a JPEG or PNG image", "garbage");
    check_refused(garbage, sizeof garbage, "47 49 46 38 39 61", "garbage");
    check_refused(garbage, 0, "not a JPEG or PNG image", "empty data");
    const uint8_t jpeg_magic_only[] = {0xff, 0xd8, 0xff};
    check_refused(jpeg_magic_only, sizeof jpeg_magic_only, "corrupt JPEG", "JPEG magic alone");
}

/* ---- transforms ---- */

static void test_resample_constant(void)
{
    struct image img = {.pixels = NULL, .width = 31, .height = 17};
    img.pixels = malloc(31 * 17 * 3);
    REQUIRE(img.pixels, "out of memory");
    for (int i = 0; i < 31 * 17; i++) {
        img.pixels[3 * i + 0] = 17;
        img.pixels[3 * i + 1] = 128;
        img.pixels[3 * i + 2] = 250;
    }
    const struct {
        struct image_box box;
        int w, h;
    } cases[] = {
        {{0, 0, 31, 17}, 7, 5},         /* shrink */
        {{0, 0, 31, 17}, 100, 60},      /* enlarge */
        {{3.3, 1.7, 20.2, 9.9}, 13, 4}, /* fractional box */
        {{0, 0, 31, 17}, 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = (size_t)cases[k].w * cases[k].h;
        uint8_t *out = malloc(n * 3);
        REQUIRE(out, "out of memory");
        REQUIRE(image_resample(&img, cases[k].box, cases[k].w, cases[k].h, out) == 0, "%s",
                err_msg());
        int wrong = 0;
        for (size_t i = 0; i < n; i++)
            wrong += out[3 * i] != 17 || out[3 * i + 1] != 128 || out[3 * i + 2] != 250;
        CHECK_INT_EQ(wrong, 0);
        free(out);
    }
    printf("ok   resampling a constant image gives the constant\n");
    image_free(&img);
}

static void test_resample_antialias(void)
{
    const int n = 32;
    struct image img = {.pixels = malloc((size_t)n * n * 3), .width = n, .height = n};
    REQUIRE(img.pixels, "out of memory");
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            memset(img.pixels + ((size_t)y * n + x) * 3, (x + y) % 2 ? 255 : 0, 3);
    uint8_t out[16 * 16 * 3];
    REQUIRE(image_resample(&img, (struct image_box){0, 0, n, n}, 16, 16, out) == 0, "%s",
            err_msg());
    /* Point sampling would give 0s or 255s; the widened triangle averages each 2x2 cell
     * with its neighbours to mid-grey. At the border the clamped filter is lopsided (as in
     * PIL), so only the interior is exactly grey. */
    int worst = 0;
    double mean = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            for (int c = 0; c < 3; c++) {
                int v = out[(y * 16 + x) * 3 + c];
                mean += v;
                if (x > 0 && y > 0 && x < 15 && y < 15)
                    worst = abs(v - 128) > worst ? abs(v - 128) : worst;
            }
    mean /= 16 * 16 * 3;
    CHECK(worst <= 1);
    CHECK(fabs(mean - 127.5) < 3.0);
    printf("ok   2x downscale of a checkerboard: interior within %d of 128, mean %.2f\n", worst,
           mean);
    image_free(&img);
}

static void test_resample_identity(void)
{
    const int w = 29, h = 13;
    struct image img = {.pixels = malloc((size_t)w * h * 3), .width = w, .height = h};
    REQUIRE(img.pixels, "out of memory");
    uint64_t rng = rng_seed(1, 2, 3);
    for (int i = 0; i < w * h * 3; i++)
        img.pixels[i] = (uint8_t)(rng_uniform(&rng) * 256);
    uint8_t out[29 * 13 * 3];
    REQUIRE(image_resample(&img, (struct image_box){0, 0, w, h}, w, h, out) == 0, "%s",
            err_msg());
    CHECK(memcmp(out, img.pixels, sizeof out) == 0);
    /* An integer-aligned box at scale 1 is an exact crop. */
    uint8_t crop[10 * 5 * 3];
    REQUIRE(image_resample(&img, (struct image_box){4, 6, 10, 5}, 10, 5, crop) == 0, "%s",
            err_msg());
    int wrong = 0;
    for (int y = 0; y < 5; y++)
        wrong += memcmp(crop + y * 10 * 3, img.pixels + ((size_t)(y + 6) * w + 4) * 3, 30) != 0;
    CHECK_INT_EQ(wrong, 0);
    printf("ok   identity resample and integer crops reproduce the pixels exactly\n");
    image_free(&img);
}

static void test_resample_matches_pillow(void)
{
    /* Pillow 13.0: Image.frombytes("RGB", (13, 9), pattern).resize(size, BILINEAR, box=...) */
    static const uint8_t shrink[5 * 4 * 3] = {
        121, 130, 130, 108, 126, 138, 130, 111, 127, 122, 106, 118, 125, 128, 134,
        122, 125, 129, 122, 109, 119, 143, 95,  115, 128, 136, 139, 160, 122, 131,
        110, 133, 120, 116, 130, 134, 136, 95,  107, 127, 132, 141, 130, 147, 151,
        91,  140, 121, 110, 132, 116, 148, 104, 130, 122, 131, 134, 130, 120, 155};
    static const uint8_t enlarge[6 * 4 * 3] = {
        144, 197, 92,  168, 146, 74,  192, 53,  98,  108, 69,  122, 40,  93,  139, 64,  117, 130,
        131, 165, 86,  138, 128, 76,  163, 56,  101, 98,  74,  127, 47,  100, 142, 72,  125, 116,
        74,  78,  112, 52,  96,  134, 79,  109, 161, 93,  135, 188, 110, 163, 187, 136, 189, 78,
        86,  110, 163, 86,  139, 147, 115, 168, 106, 143, 131, 129, 158, 106, 142, 116, 134, 91};
    static const uint8_t whole[4 * 3 * 3] = {112, 129, 138, 121, 120, 127, 123, 111, 127,
                                             131, 128, 133, 115, 134, 119, 121, 117, 126,
                                             138, 117, 121, 145, 135, 141, 105, 141, 127,
                                             116, 126, 120, 134, 116, 132, 128, 127, 153};
    const struct {
        struct image_box box;
        int w, h;
        const uint8_t *expected;
        const char *what;
    } cases[] = {
        {{1.5, 0.25, 10.75, 8.5}, 5, 4, shrink, "fractional box, shrink"},
        {{2.0, 1.0, 3.5, 2.25}, 6, 4, enlarge, "fractional box, enlarge"},
        {{0, 0, 13, 9}, 4, 3, whole, "whole image"},
    };
    struct image img;
    make_pattern(&img, 13, 9);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t out[6 * 4 * 3];
        size_t n = (size_t)cases[k].w * cases[k].h * 3;
        REQUIRE(image_resample(&img, cases[k].box, cases[k].w, cases[k].h, out) == 0, "%s",
                err_msg());
        int worst = 0, exact = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs(out[i] - cases[k].expected[i]);
            worst = d > worst ? d : worst;
            exact += d == 0;
        }
        /* Pillow's weights are 22-bit fixed point, ours float: a rounding step at most. */
        CHECK(worst <= 1);
        printf("ok   resample vs Pillow (%s): %d of %zu values exact, worst difference %d\n",
               cases[k].what, exact, n, worst);
    }
    image_free(&img);
}

static void test_resample_refuses(void)
{
    struct image img;
    make_pattern(&img, 13, 9);
    uint8_t out[64 * 3];
    const struct image_box bad[] = {
        {-1, 0, 5, 5}, {0, 0, 14, 9}, {10, 5, 4, 1}, {0, 0, 0, 5}, {0, 0, NAN, 5}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err_clear();
        CHECK(image_resample(&img, bad[k], 8, 8, out) < 0);
        CHECK_CONTAINS(err_msg(), "not inside the 13x9 image");
    }
    err_clear();
    CHECK(image_resample(&img, (struct image_box){0, 0, 13, 9}, 0, 8, out) < 0);
    CHECK_CONTAINS(err_msg(), "output size 0x8");
    struct image empty = {0};
    CHECK(image_resample(&empty, (struct image_box){0, 0, 1, 1}, 1, 1, out) < 0);
    CHECK_CONTAINS(err_msg(), "source image is empty");
    image_free(&img);
}

static void test_random_resized_crop(void)
{
    const int w = 320, h = 240;
    const double min_scale = 0.08;
    uint64_t rng = rng_seed(42, 0, 7);
    int outside = 0, fractional = 0, too_small = 0, too_big = 0, fallbacks = 0;
    double min_frac = 1, max_frac = 0;
    struct image_box first[5];
    for (int i = 0; i < 1000; i++) {
        struct image_box b = image_random_resized_crop_box(w, h, min_scale, &rng);
        if (i < 5)
            first[i] = b;
        outside += b.x < 0 || b.y < 0 || b.w < 1 || b.h < 1 || b.x + b.w > w || b.y + b.h > h;
        fractional += b.x != floor(b.x) || b.y != floor(b.y) || b.w != floor(b.w) ||
                      b.h != floor(b.h);
        double frac = b.w * b.h / (w * h);
        /* w and h are each rounded to the nearest integer, which may take the area a little
         * under the drawn fraction: allow half a pixel on each side. */
        double slack = 0.5 * (b.w + b.h) / (w * h) + 0.25 / (w * h);
        too_small += frac < min_scale - slack;
        too_big += frac > 1.0;
        fallbacks += b.w == w && b.h == h;
        min_frac = frac < min_frac ? frac : min_frac;
        max_frac = frac > max_frac ? frac : max_frac;
    }
    CHECK_INT_EQ(outside, 0);
    CHECK_INT_EQ(fractional, 0);
    CHECK_INT_EQ(too_small, 0);
    CHECK_INT_EQ(too_big, 0);
    CHECK(min_frac < 0.15 && max_frac > 0.8); /* the whole range is drawn from */
    printf("ok   1000 random resized crops of 320x240 inside the image, area fraction %.3f..%.3f, "
           "%d whole-image\n",
           min_frac, max_frac, fallbacks);

    /* The same (seed, epoch, index) gives the same crops; another index, others. */
    uint64_t again = rng_seed(42, 0, 7), other = rng_seed(42, 0, 8);
    int same = 0, differ = 0;
    for (int i = 0; i < 5; i++) {
        struct image_box a = image_random_resized_crop_box(w, h, min_scale, &again);
        struct image_box o = image_random_resized_crop_box(w, h, min_scale, &other);
        same += memcmp(&a, &first[i], sizeof a) == 0;
        differ += memcmp(&o, &first[i], sizeof o) != 0;
    }
    CHECK_INT_EQ(same, 5);
    CHECK(differ >= 4);

    /* Ten misses are certain when the image is far from the ratio range: the fallback is
     * torchvision's centre crop clamped to ratio 3/4 (tall) or 4/3 (wide). */
    struct image_box tall = image_random_resized_crop_box(10, 1000, 0.9, &rng);
    CHECK(tall.x == 0 && tall.y == 493 && tall.w == 10 && tall.h == 13);
    struct image_box wide = image_random_resized_crop_box(1000, 10, 0.9, &rng);
    CHECK(wide.x == 493 && wide.y == 0 && wide.w == 13 && wide.h == 10);
    printf("ok   fallback crops: tall (%g, %g, %g, %g), wide (%g, %g, %g, %g)\n", tall.x, tall.y,
           tall.w, tall.h, wide.x, wide.y, wide.w, wide.h);

    /* The generator: [0, 1), centred. */
    uint64_t s = rng_seed(0, 0, 0);
    double sum = 0;
    int out_of_range = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&s);
        out_of_range += !(u >= 0.0 && u < 1.0);
        sum += u;
    }
    CHECK_INT_EQ(out_of_range, 0);
    CHECK(fabs(sum / 100000 - 0.5) < 0.01);
    CHECK(rng_seed(1, 2, 3) != rng_seed(1, 3, 2));
}

static bool box_near(struct image_box a, struct image_box b)
{
    return fabs(a.x - b.x) < 1e-9 && fabs(a.y - b.y) < 1e-9 && fabs(a.w - b.w) < 1e-9 &&
           fabs(a.h - b.h) < 1e-9;
}

static void test_center_crop_box(void)
{
    /* 64x48, Resize(36): the short side 48 -> 36, the long one int(36 * 64 / 48) = 48, so the
     * resized image is 48x36 and both scale factors are 64 / 48 = 48 / 36 = 4/3. CenterCrop(32):
     * left round((48 - 32) / 2) = 8, top round((36 - 32) / 2) = 2. In source pixels: x 8 * 4/3,
     * y 2 * 4/3, and 32 * 4/3 on each side. */
    const double s = 4.0 / 3.0;
    struct image_box b = image_center_crop_box(64, 48, 36, 32);
    CHECK(box_near(b, (struct image_box){8 * s, 2 * s, 32 * s, 32 * s}));
    printf("ok   center crop box of 64x48 (36, 32): (%.4f, %.4f, %.4f, %.4f)\n", b.x, b.y, b.w,
           b.h);
    /* Crop 31: offsets (48 - 31) / 2 = 8.5 and (36 - 31) / 2 = 2.5, which Python's round()
     * takes to the even neighbours 8 and 2. */
    b = image_center_crop_box(64, 48, 36, 31);
    CHECK(box_near(b, (struct image_box){8 * s, 2 * s, 31 * s, 31 * s}));
    /* Portrait: the same, transposed. */
    b = image_center_crop_box(48, 64, 36, 32);
    CHECK(box_near(b, (struct image_box){2 * s, 8 * s, 32 * s, 32 * s}));
    /* The long side is truncated: 100x33 -> int(20 * 100 / 33) = int(60.6) = 60 by 20. */
    b = image_center_crop_box(100, 33, 20, 20);
    CHECK(box_near(b, (struct image_box){20 * 100.0 / 60, 0, 20 * 100.0 / 60, 33}));

    /* Resize then crop, done in two resamples, equals the one-box resample. */
    struct image img;
    make_pattern(&img, 64, 48);
    uint8_t *resized = malloc(48 * 36 * 3), one[32 * 32 * 3];
    REQUIRE(resized, "out of memory");
    REQUIRE(image_resample(&img, (struct image_box){0, 0, 64, 48}, 48, 36, resized) == 0, "%s",
            err_msg());
    REQUIRE(image_resample(&img, image_center_crop_box(64, 48, 36, 32), 32, 32, one) == 0, "%s",
            err_msg());
    int worst = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32 * 3; x++) {
            int d = abs(one[y * 32 * 3 + x] - resized[(y + 2) * 48 * 3 + 8 * 3 + x]);
            worst = d > worst ? d : worst;
        }
    CHECK(worst <= 1);
    printf("ok   resize + center crop as one box = two steps (worst difference %d)\n", worst);
    free(resized);
    image_free(&img);
}

static void test_normalize(void)
{
    enum { size = 4 };
    uint8_t rgb[size * size * 3];
    for (int i = 0; i < size * size * 3; i++)
        rgb[i] = (uint8_t)(i * 5 + 3);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float plain[3 * size * size], flipped[3 * size * size];
    image_normalize_chw(rgb, size, mean, std, false, plain);
    image_normalize_chw(rgb, size, mean, std, true, flipped);
    int wrong = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                float v = ((float)rgb[(y * size + x) * 3 + c] / 255.0f - mean[c]) / std[c];
                wrong += plain[(c * size + y) * size + x] != v;
                wrong += flipped[(c * size + y) * size + (size - 1 - x)] != v;
            }
    CHECK_INT_EQ(wrong, 0);
    /* Pixel (0, 0) of channel 1 lands at (0, size - 1) when flipped. */
    float expected = ((float)rgb[1] / 255.0f - mean[1]) / std[1];
    CHECK(flipped[size * size + size - 1] == expected);
    CHECK(plain[size * size] == expected);
    printf("ok   normalize_chw: CHW layout, mean/std, horizontal flip\n");
}

/* The loader's fused resample + normalise gives exactly what the two steps give. */
static void test_resample_normalized(void)
{
    enum { w = 57, h = 43, size = 24 };
    struct image img = {.pixels = malloc(w * h * 3), .width = w, .height = h};
    for (int i = 0; i < w * h * 3; i++)
        img.pixels[i] = (uint8_t)((i * 37) ^ (i >> 3));
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    struct image_box box = {3.5, 2.25, 40.0, 33.0};
    uint8_t rgb[size * size * 3];
    float two_steps[3 * size * size], fused[3 * size * size];
    int wrong = 0;
    for (int flip = 0; flip < 2; flip++) {
        REQUIRE(image_resample(&img, box, size, size, rgb) == 0, "%s", err_msg());
        image_normalize_chw(rgb, size, mean, std, flip, two_steps);
        REQUIRE(image_resample_normalized(&img, box, size, mean, std, flip, fused) == 0, "%s",
                err_msg());
        wrong += memcmp(two_steps, fused, sizeof fused) != 0;
    }
    CHECK_INT_EQ(wrong, 0);
    image_free(&img);
    printf("ok   resample_normalized = resample then normalize_chw, bit for bit\n");
}

/* The built-in algorithm's augmentations and the squash eval box. */
static void test_builtin_augmentations(void)
{
    /* squash: the whole image, whatever its shape; crop: shorter side then centre. */
    struct image_box b = image_eval_box(70, 30, IMAGE_RESIZE_SQUASH, 37, 32);
    CHECK(b.x == 0 && b.y == 0 && b.w == 70 && b.h == 30);
    b = image_eval_box(70, 30, IMAGE_RESIZE_CROP, 37, 32);
    struct image_box c = image_center_crop_box(70, 30, 37, 32);
    CHECK(b.x == c.x && b.y == c.y && b.w == c.w && b.h == c.h);
    /* auto: an image already 32 on its shorter side is only centre-cropped (32x40: the middle
     * 32 rows at full resolution); any other size is resized as crop does. */
    b = image_eval_box(32, 40, IMAGE_RESIZE_AUTO, 37, 32);
    CHECK(b.x == 0 && b.y == 4 && b.w == 32 && b.h == 32);
    b = image_eval_box(32, 32, IMAGE_RESIZE_AUTO, 37, 32);
    CHECK(b.x == 0 && b.y == 0 && b.w == 32 && b.h == 32);
    b = image_eval_box(33, 33, IMAGE_RESIZE_AUTO, 37, 32);
    c = image_center_crop_box(33, 33, 37, 32);
    CHECK(b.x == c.x && b.y == c.y && b.w == c.w && b.h == c.h && b.w < 32);
    b = image_eval_box(32, 32, IMAGE_RESIZE_CROP, 37, 32); /* crop enlarges even these */
    CHECK(b.w < 32 && b.x > 0);
    b = image_random_crop_box(32, 32, IMAGE_RESIZE_AUTO, 37, 32, &(uint64_t){7});
    CHECK(b.x == 0 && b.y == 0 && b.w == 32 && b.h == 32); /* no room: the whole image */
    enum image_resize_mode m = IMAGE_RESIZE_CROP;
    CHECK(image_resize_mode_parse("Auto", &m) == 0 && m == IMAGE_RESIZE_AUTO);
    CHECK(image_resize_mode_parse("squash", &m) == 0 && m == IMAGE_RESIZE_SQUASH);
    CHECK(image_resize_mode_parse("stretch", &m) < 0 && m == IMAGE_RESIZE_SQUASH);
    /* random crop: inside the image, the crop's size in resized pixels, positions vary. */
    uint64_t rng = rng_seed(1, 2, 3);
    double xs[2] = {1e9, -1};
    for (int i = 0; i < 200; i++) {
        b = image_random_crop_box(64, 48, IMAGE_RESIZE_CROP, 40, 32, &rng);
        CHECK(b.x >= 0 && b.y >= 0 && b.x + b.w <= 64 + 1e-9 && b.y + b.h <= 48 + 1e-9);
        CHECK(fabs(b.h - 32 * 48.0 / 40) < 1e-9);
        xs[0] = fmin(xs[0], b.x);
        xs[1] = fmax(xs[1], b.x);
    }
    CHECK(xs[0] == 0 && xs[1] > 20);
    b = image_random_crop_box(64, 48, IMAGE_RESIZE_CROP, 20, 32, &rng); /* resize < crop */
    CHECK(b.w == 0 && b.h == 0);
    /* HLS shift: zero is the identity (within rounding); lightness +50 brightens. */
    uint8_t px[6] = {200, 30, 90, 10, 120, 240}, orig[6];
    memcpy(orig, px, sizeof px);
    image_jitter_hls(px, 2, 0, 0, 0);
    for (int i = 0; i < 6; i++)
        CHECK(abs(px[i] - orig[i]) <= 1);
    image_jitter_hls(px, 2, 0, 0, 50);
    CHECK(px[0] + px[1] + px[2] > orig[0] + orig[1] + orig[2]);
    /* affine: no rotation/shear/aspect is the identity; 10 degrees moves pixels. */
    uint8_t src[16 * 16 * 3], out[16 * 16 * 3];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7);
    image_affine_jitter(src, 16, 0, 0, 0, out);
    CHECK(memcmp(src, out, sizeof src) == 0);
    image_affine_jitter(src, 16, 10, 0.1, 0.25, out);
    CHECK(memcmp(src, out, sizeof src) != 0);
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s DIR", argv[0]);
    scratch = argv[1];
    make_dirs(scratch);

    test_sniff();
    test_jpeg_rgb();
    test_jpeg_gray();
    test_jpeg_cmyk();
    test_jpeg_dct_scaling();
    test_resample_normalized();
    test_jpeg_damaged();
    test_png_rgb();
    test_png_rgba();
    test_png_palette();
    test_png_gray();
    test_png_oversized();
    test_large_images_share_a_budget();
    test_not_an_image();

    test_resample_constant();
    test_resample_antialias();
    test_resample_identity();
    test_resample_matches_pillow();
    test_resample_refuses();
    test_random_resized_crop();
    test_center_crop_box();
    test_normalize();
    test_builtin_augmentations();
    return test_finish("test_image");
}
