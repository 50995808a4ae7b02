/*
 * transform.c - crop boxes, PIL's bilinear resample, normalisation (see transform.h).
 *
 * The resampler follows Pillow's libImaging/Resample.c step by step (precompute_coeffs,
 * horizontal pass into an 8-bit intermediate, vertical pass) and its 22-bit fixed point. The crop boxes follow torchvision's transforms.py, including
 * Python's round() (halves to even) where torchvision calls it.
 *
 * Not here: any other filter (bicubic, Lanczos), other pixel formats than RGB.
 */
#include "image/transform.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/rng.h"

/* ---- resampling ---- */

/* Pillow's fixed point: weights scaled by 2^22, so that 255 * 2^22 still fits an int32. */
#define PRECISION_BITS 22

/* For every output position along one axis: the first source index, how many follow, and
 * their fixed-point weights (ksize slots each, unused ones zero). */
struct resample_axis {
    int *start;
    int *count;
    int32_t *weights; /* [out_size, ksize] */
    int ksize;
};

static void resample_axis_free(struct resample_axis *a)
{
    free(a->start);
    free(a->count);
    free(a->weights);
    memset(a, 0, sizeof *a);
}

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs for the bilinear filter (support 1) over source [in0, in1). */
static int resample_axis_init(struct resample_axis *a, int in_size, double in0, double in1,
                              int out_size)
{
    double scale = (in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale; /* widen only when shrinking: antialias */
    double support = filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->start = malloc((size_t)out_size * sizeof *a->start);
    a->count = malloc((size_t)out_size * sizeof *a->count);
    a->weights = calloc((size_t)out_size * (size_t)a->ksize, sizeof *a->weights);
    double *w = malloc((size_t)a->ksize * sizeof *w);
    if (!a->start || !a->count || !a->weights || !w) {
        free(w);
        resample_axis_free(a);
        return err_set("out of memory resampling to %d pixels", out_size);
    }
    for (int i = 0; i < out_size; i++) {
        double centre = in0 + (i + 0.5) * scale;
        /* Pillow truncates toward zero here; the clamp makes the sign immaterial. */
        int lo = (int)(centre - support + 0.5);
        int hi = (int)(centre + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in_size)
            hi = in_size;
        int n = hi - lo;
        if (n < 0)
            n = 0;
        if (n > a->ksize)
            n = a->ksize; /* cannot happen: the window spans at most 2 * ceil(support) + 1 */
        double total = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = triangle((k + lo - centre + 0.5) / filterscale);
            total += w[k];
        }
        for (int k = 0; k < n; k++) {
            double norm = total != 0.0 ? w[k] / total : 0.0;
            a->weights[(size_t)i * a->ksize + k] = (int32_t)(norm * (1 << PRECISION_BITS) + 0.5);
        }
        a->start[i] = lo;
        a->count[i] = n;
    }
    free(w);
    return 0;
}

/* Fixed-point sum (rounding bias included) to a byte, clamped. */
static uint8_t clip8(int32_t acc)
{
    int32_t v = acc >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static bool box_inside(struct image_box b, int width, int height)
{
    /* A box computed from the image's own size may overshoot its edge by rounding. */
    const double slack = 1e-6;
    return isfinite(b.x) && isfinite(b.y) && isfinite(b.w) && isfinite(b.h) && b.w > 0 &&
           b.h > 0 && b.x >= -slack && b.y >= -slack && b.x + b.w <= width + slack &&
           b.y + b.h <= height + slack;
}

/* What both resample outputs share: the axes and the horizontally resampled source rows
 * [first, last) as 8-bit RGB, rounded as Pillow rounds its intermediate image. */
struct resample_state {
    struct resample_axis horiz, vert;
    uint8_t *rows;
    int first;
    int32_t *acc;
};

static void resample_state_free(struct resample_state *st)
{
    free(st->acc);
    free(st->rows);
    resample_axis_free(&st->vert);
    resample_axis_free(&st->horiz);
}

static int resample_horizontal(const struct image *src, struct image_box box, int out_w,
                               int out_h, struct resample_state *st)
{
    memset(st, 0, sizeof *st);
    if (!src || !src->pixels || src->width < 1 || src->height < 1 ||
        src->width > IMAGE_MAX_SIDE || src->height > IMAGE_MAX_SIDE)
        return err_set("resample: the source image is empty or larger than %d pixels a side",
                       IMAGE_MAX_SIDE);
    if (out_w < 1 || out_h < 1 || out_w > IMAGE_MAX_SIDE || out_h > IMAGE_MAX_SIDE)
        return err_set("resample: output size %dx%d is not within 1..%d a side", out_w, out_h,
                       IMAGE_MAX_SIDE);
    if (!box_inside(box, src->width, src->height))
        return err_set("resample: box (x %g, y %g, w %g, h %g) is empty or not inside the %dx%d "
                       "image",
                       box.x, box.y, box.w, box.h, src->width, src->height);
    if (resample_axis_init(&st->horiz, src->width, box.x, box.x + box.w, out_w) < 0 ||
        resample_axis_init(&st->vert, src->height, box.y, box.y + box.h, out_h) < 0) {
        resample_state_free(st);
        return -1;
    }
    /* Only the source rows the vertical pass reads are resampled horizontally. */
    st->first = st->vert.start[0];
    int last = st->vert.start[out_h - 1] + st->vert.count[out_h - 1];
    if (last <= st->first)
        last = st->first + 1; /* an all-zero vertical window, impossible for a valid box */
    size_t out_stride = (size_t)out_w * 3, src_stride = (size_t)src->width * 3;
    st->rows = malloc((size_t)(last - st->first) * out_stride);
    st->acc = malloc(out_stride * sizeof *st->acc);
    if (!st->rows || !st->acc) {
        resample_state_free(st);
        return err_set("out of memory resampling to %dx%d", out_w, out_h);
    }
    const int32_t bias = 1 << (PRECISION_BITS - 1);
    for (int y = st->first; y < last; y++) {
        const uint8_t *in = src->pixels + (size_t)y * src_stride;
        uint8_t *row = st->rows + (size_t)(y - st->first) * out_stride;
        for (int x = 0; x < out_w; x++) {
            const int32_t *w = st->horiz.weights + (size_t)x * st->horiz.ksize;
            const uint8_t *p = in + (size_t)st->horiz.start[x] * 3;
            int32_t r = bias, g = bias, b = bias;
            for (int k = 0; k < st->horiz.count[x]; k++, p += 3) {
                r += w[k] * p[0];
                g += w[k] * p[1];
                b += w[k] * p[2];
            }
            row[3 * x + 0] = clip8(r);
            row[3 * x + 1] = clip8(g);
            row[3 * x + 2] = clip8(b);
        }
    }
    return 0;
}

/* The vertical pass for output row y into st->acc (whole rows: contiguous, vectorisable). */
static void resample_vertical_row(struct resample_state *st, int y, size_t out_stride)
{
    const int32_t *w = st->vert.weights + (size_t)y * st->vert.ksize;
    const int32_t bias = 1 << (PRECISION_BITS - 1);
    for (size_t i = 0; i < out_stride; i++)
        st->acc[i] = bias;
    for (int k = 0; k < st->vert.count[y]; k++) {
        const uint8_t *row = st->rows + (size_t)(st->vert.start[y] + k - st->first) * out_stride;
        int32_t wk = w[k];
        for (size_t i = 0; i < out_stride; i++)
            st->acc[i] += wk * row[i];
    }
}

int image_resample(const struct image *src, struct image_box box, int out_w, int out_h,
                   uint8_t *out)
{
    if (!out)
        return err_set("resample: no output buffer");
    struct resample_state st;
    if (resample_horizontal(src, box, out_w, out_h, &st) < 0)
        return -1;
    size_t out_stride = (size_t)out_w * 3;
    for (int y = 0; y < out_h; y++) {
        resample_vertical_row(&st, y, out_stride);
        uint8_t *dst = out + (size_t)y * out_stride;
        for (size_t i = 0; i < out_stride; i++)
            dst[i] = clip8(st.acc[i]);
    }
    resample_state_free(&st);
    return 0;
}

int image_resample_normalized(const struct image *src, struct image_box box, int size,
                              const float mean[3], const float std[3], bool flip, float *out)
{
    struct resample_state st;
    if (resample_horizontal(src, box, size, size, &st) < 0)
        return -1;
    size_t out_stride = (size_t)size * 3, plane = (size_t)size * size;
    uint8_t *row = malloc(out_stride);
    if (!row) {
        resample_state_free(&st);
        return err_set("out of memory resampling to %dx%d", size, size);
    }
    float table[3][256];
    image_normalize_table(mean, std, table);
    for (int y = 0; y < size; y++) {
        resample_vertical_row(&st, y, out_stride);
        for (size_t i = 0; i < out_stride; i++) /* contiguous: vectorised */
            row[i] = clip8(st.acc[i]);
        for (int c = 0; c < 3; c++) {
            float *line = out + c * plane + (size_t)y * size;
            const float *t = table[c];
            if (flip)
                for (int x = 0; x < size; x++)
                    line[size - 1 - x] = t[row[3 * x + c]];
            else
                for (int x = 0; x < size; x++)
                    line[x] = t[row[3 * x + c]];
        }
    }
    free(row);
    resample_state_free(&st);
    return 0;
}

const char *image_augment_name(enum image_augment a)
{
    switch (a) {
    case IMAGE_AUGMENT_RANDOM_RESIZED:
        return "RandomResizedCrop + horizontal flip";
    case IMAGE_AUGMENT_CROP:
        return "crop (random crop + horizontal flip)";
    case IMAGE_AUGMENT_CROP_COLOR:
        return "crop_color (random crop + flip + HLS shift)";
    case IMAGE_AUGMENT_CROP_COLOR_TRANSFORM:
        return "crop_color_transform (random crop + flip + HLS shift + rotation/shear/aspect)";
    default:
        return "none";
    }
}

const char *image_resize_mode_name(enum image_resize_mode m)
{
    return m == IMAGE_RESIZE_SQUASH ? "squash" : m == IMAGE_RESIZE_AUTO ? "auto" : "crop";
}

int image_resize_mode_parse(const char *name, enum image_resize_mode *mode)
{
    static const enum image_resize_mode all[] = {IMAGE_RESIZE_CROP, IMAGE_RESIZE_SQUASH,
                                                 IMAGE_RESIZE_AUTO};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(name, image_resize_mode_name(all[i])) == 0) {
            *mode = all[i];
            return 0;
        }
    return -1;
}

/* The shorter side the image is resized to before a size x size crop: resize_to, or under
 * IMAGE_RESIZE_AUTO the image's own when it already is `size`. */
static int crop_resize_to(int width, int height, enum image_resize_mode mode, int resize_to,
                          int size)
{
    int shorter = width < height ? width : height;
    return mode == IMAGE_RESIZE_AUTO && shorter == size ? size : resize_to;
}

struct image_box image_eval_box(int width, int height, enum image_resize_mode mode,
                                int resize_size, int size)
{
    if (mode == IMAGE_RESIZE_SQUASH) {
        struct image_box whole = {0, 0, width, height};
        return width < 1 || height < 1 ? (struct image_box){0, 0, 0, 0} : whole;
    }
    return image_center_crop_box(width, height,
                                 crop_resize_to(width, height, mode, resize_size, size), size);
}

int image_eval_transform(const struct image *img, enum image_resize_mode mode, int resize_size,
                         int size, const float mean[3], const float std[3], float *out)
{
    struct image_box box = image_eval_box(img->width, img->height, mode, resize_size, size);
    return image_resample_normalized(img, box, size, mean, std, false, out);
}

/* ---- crop boxes ---- */

/* A uniform integer in [0, n), torch.randint(0, n)'s job. */
static int rng_below(uint64_t *rng, int n)
{
    int k = (int)(rng_uniform(rng) * n);
    return k < n ? k : n - 1; /* u * n can round up to n when u is just below 1 */
}

struct image_box image_random_resized_crop_box(int width, int height, double min_scale,
                                               uint64_t *rng)
{
    struct image_box box = {0, 0, 0, 0};
    if (width < 1 || height < 1)
        return box;
    if (!(min_scale >= 0.0))
        min_scale = 0.0;
    if (min_scale > 1.0)
        min_scale = 1.0;
    const double min_ratio = 3.0 / 4.0, max_ratio = 4.0 / 3.0;
    double area = (double)width * height;
    double log_lo = log(min_ratio), log_hi = log(max_ratio);

    for (int attempt = 0; attempt < 10; attempt++) {
        /* Draw order as torchvision's: area, ratio, then top, then left. */
        double target_area = area * (min_scale + (1.0 - min_scale) * rng_uniform(rng));
        double ratio = exp(log_lo + (log_hi - log_lo) * rng_uniform(rng));
        double w = rint(sqrt(target_area * ratio)); /* Python's round(): halves to even */
        double h = rint(sqrt(target_area / ratio));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            box.h = h;
            box.w = w;
            box.y = rng_below(rng, height - (int)h + 1);
            box.x = rng_below(rng, width - (int)w + 1);
            return box;
        }
    }

    /* Ten misses (a very long or tall image): the centre crop, clamped to the ratio range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < min_ratio)
        h = (int)rint(w / min_ratio);
    else if (in_ratio > max_ratio)
        w = (int)rint(h * max_ratio);
    box.x = (width - w) / 2;
    box.y = (height - h) / 2;
    box.w = w;
    box.h = h;
    return box;
}

/* Resize(resize_to)'s output size, as torchvision's _compute_resized_output_size: the shorter
 * side becomes resize_to and the long side is truncated, not rounded; squash makes both sides
 * resize_to. */
static void resized_size(int width, int height, enum image_resize_mode mode, int resize_to,
                         int *new_w, int *new_h)
{
    *new_w = *new_h = resize_to;
    if (mode == IMAGE_RESIZE_SQUASH)
        return;
    if (width <= height)
        *new_h = (int)((double)resize_to * height / width);
    else
        *new_w = (int)((double)resize_to * width / height);
}

/* The source box whose pixels become the crop x crop square at (left, top) of the image
 * resized to new_w x new_h: resized pixel i has its centre at source (i + 0.5) * width / new_w,
 * so the crop's pixels are those of the source box scaled by the same factor. */
static struct image_box source_box(int width, int height, int new_w, int new_h, double left,
                                   double top, int crop)
{
    double sx = (double)width / new_w, sy = (double)height / new_h;
    struct image_box box = {left * sx, top * sy, crop * sx, crop * sy};
    return box;
}

struct image_box image_center_crop_box(int width, int height, int resize_to, int crop)
{
    struct image_box box = {0, 0, 0, 0};
    if (width < 1 || height < 1 || resize_to < 1 || crop < 1)
        return box;
    int new_w, new_h;
    resized_size(width, height, IMAGE_RESIZE_CROP, resize_to, &new_w, &new_h);
    /* center_crop: int(round((size - crop) / 2.0)), a half rounding to even. */
    return source_box(width, height, new_w, new_h, rint((new_w - crop) / 2.0),
                      rint((new_h - crop) / 2.0), crop);
}

struct image_box image_random_crop_box(int width, int height, enum image_resize_mode mode,
                                       int resize_to, int crop, uint64_t *rng)
{
    struct image_box box = {0, 0, 0, 0};
    if (width < 1 || height < 1 || resize_to < crop || crop < 1)
        return box;
    resize_to = crop_resize_to(width, height, mode, resize_to, crop);
    int new_w, new_h;
    resized_size(width, height, mode, resize_to, &new_w, &new_h);
    int top = rng_below(rng, new_h - crop + 1), left = rng_below(rng, new_w - crop + 1);
    return source_box(width, height, new_w, new_h, left, top, crop);
}

/* ---- normalisation ---- */

void image_normalize_table(const float mean[3], const float std[3], float table[3][256])
{
    /* ToTensor divides by 255 and Normalize subtracts then divides, each in float: the same
     * operations in the same order give torchvision's values exactly. */
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            table[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
}

void image_normalize_chw(const uint8_t *rgb, int size, const float mean[3], const float std[3],
                         bool flip, float *out)
{
    size_t plane = (size_t)size * size;
    float table[3][256];
    image_normalize_table(mean, std, table);
    for (int c = 0; c < 3; c++) {
        float *dst = out + c * plane;
        for (int y = 0; y < size; y++) {
            const uint8_t *row = rgb + (size_t)y * size * 3 + c;
            float *line = dst + (size_t)y * size;
            if (flip)
                for (int x = 0; x < size; x++)
                    line[size - 1 - x] = table[c][row[3 * x]];
            else
                for (int x = 0; x < size; x++)
                    line[x] = table[c][row[3 * x]];
        }
    }
}

void image_mirror(uint8_t *rgb, int width, int height)
{
    for (int y = 0; y < height; y++) {
        uint8_t *row = rgb + (size_t)y * width * 3;
        for (int l = 0, r = width - 1; l < r; l++, r--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * l + c];
                row[3 * l + c] = row[3 * r + c];
                row[3 * r + c] = t;
            }
    }
}
