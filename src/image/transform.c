/*
 * transform.c - crop boxes, PIL's bilinear resample, normalisation (see transform.h).
 *
 * The resampler follows Pillow's libImaging/Resample.c step by step (precompute_coeffs,
 * horizontal pass into an 8-bit intermediate, vertical pass), with float weights in place of
 * its 22-bit fixed point. The crop boxes follow torchvision's transforms.py, including
 * Python's round() (halves to even) where torchvision calls it.
 *
 * Not here: any other filter (bicubic, Lanczos), other pixel formats than RGB.
 */
#include "image/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* ---- resampling ---- */

/* For every output position along one axis: the first source index, how many follow, and
 * their weights (ksize slots each, unused ones zero). */
struct resample_axis {
    int *start;
    int *count;
    float *weights; /* [out_size, ksize] */
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
        for (int k = 0; k < n; k++)
            a->weights[(size_t)i * a->ksize + k] = (float)(total != 0.0 ? w[k] / total : 0.0);
        a->start[i] = lo;
        a->count[i] = n;
    }
    free(w);
    return 0;
}

static uint8_t round_to_u8(float v)
{
    v += 0.5f;
    if (!(v > 0.0f)) /* also NaN, which cannot arise from finite weights */
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)v;
}

static bool box_inside(struct image_box b, int width, int height)
{
    /* A box computed from the image's own size may overshoot its edge by rounding. */
    const double slack = 1e-6;
    return isfinite(b.x) && isfinite(b.y) && isfinite(b.w) && isfinite(b.h) && b.w > 0 &&
           b.h > 0 && b.x >= -slack && b.y >= -slack && b.x + b.w <= width + slack &&
           b.y + b.h <= height + slack;
}

int image_resample(const struct image *src, struct image_box box, int out_w, int out_h,
                   uint8_t *out)
{
    if (!src || !src->pixels || src->width < 1 || src->height < 1 ||
        src->width > IMAGE_MAX_SIDE || src->height > IMAGE_MAX_SIDE)
        return err_set("resample: the source image is empty or larger than %d pixels a side",
                       IMAGE_MAX_SIDE);
    if (out_w < 1 || out_h < 1 || out_w > IMAGE_MAX_SIDE || out_h > IMAGE_MAX_SIDE || !out)
        return err_set("resample: output size %dx%d is not within 1..%d a side", out_w, out_h,
                       IMAGE_MAX_SIDE);
    if (!box_inside(box, src->width, src->height))
        return err_set("resample: box (x %g, y %g, w %g, h %g) is empty or not inside the %dx%d "
                       "image",
                       box.x, box.y, box.w, box.h, src->width, src->height);

    struct resample_axis horiz = {0}, vert = {0};
    uint8_t *rows = NULL;
    float *acc = NULL;
    int rc = -1;
    if (resample_axis_init(&horiz, src->width, box.x, box.x + box.w, out_w) < 0)
        goto done;
    if (resample_axis_init(&vert, src->height, box.y, box.y + box.h, out_h) < 0)
        goto done;

    /* Only the source rows the vertical pass reads are resampled horizontally. */
    int first = vert.start[0];
    int last = vert.start[out_h - 1] + vert.count[out_h - 1];
    if (last <= first)
        last = first + 1; /* an all-zero vertical window, which cannot happen for a valid box */
    size_t out_stride = (size_t)out_w * 3, src_stride = (size_t)src->width * 3;
    rows = malloc((size_t)(last - first) * out_stride);
    acc = malloc(out_stride * sizeof *acc);
    if (!rows || !acc) {
        err_set("out of memory resampling to %dx%d", out_w, out_h);
        goto done;
    }

    /* Horizontal pass into 8-bit rows, rounded as Pillow rounds its intermediate image. */
    for (int y = first; y < last; y++) {
        const uint8_t *in = src->pixels + (size_t)y * src_stride;
        uint8_t *row = rows + (size_t)(y - first) * out_stride;
        for (int x = 0; x < out_w; x++) {
            const float *w = horiz.weights + (size_t)x * horiz.ksize;
            const uint8_t *p = in + (size_t)horiz.start[x] * 3;
            float r = 0.0f, g = 0.0f, b = 0.0f;
            for (int k = 0; k < horiz.count[x]; k++, p += 3) {
                r += w[k] * p[0];
                g += w[k] * p[1];
                b += w[k] * p[2];
            }
            row[3 * x + 0] = round_to_u8(r);
            row[3 * x + 1] = round_to_u8(g);
            row[3 * x + 2] = round_to_u8(b);
        }
    }

    /* Vertical pass: whole rows at a time, so the inner loop runs over contiguous bytes. */
    for (int y = 0; y < out_h; y++) {
        const float *w = vert.weights + (size_t)y * vert.ksize;
        memset(acc, 0, out_stride * sizeof *acc);
        for (int k = 0; k < vert.count[y]; k++) {
            const uint8_t *row = rows + (size_t)(vert.start[y] + k - first) * out_stride;
            for (size_t i = 0; i < out_stride; i++)
                acc[i] += w[k] * row[i];
        }
        uint8_t *dst = out + (size_t)y * out_stride;
        for (size_t i = 0; i < out_stride; i++)
            dst[i] = round_to_u8(acc[i]);
    }
    rc = 0;

done:
    free(acc);
    free(rows);
    resample_axis_free(&vert);
    resample_axis_free(&horiz);
    return rc;
}

/* ---- crop boxes ---- */

/* A uniform integer in [0, n), torch.randint(0, n)'s job. */
static int rng_below(uint64_t *rng, int n)
{
    int k = (int)(image_rng_uniform(rng) * n);
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
        double target_area = area * (min_scale + (1.0 - min_scale) * image_rng_uniform(rng));
        double ratio = exp(log_lo + (log_hi - log_lo) * image_rng_uniform(rng));
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

struct image_box image_center_crop_box(int width, int height, int resize_to, int crop)
{
    struct image_box box = {0, 0, 0, 0};
    if (width < 1 || height < 1 || resize_to < 1 || crop < 1)
        return box;
    /* torchvision's _compute_resized_output_size: the long side is truncated, not rounded. */
    int new_w, new_h;
    if (width <= height) {
        new_w = resize_to;
        new_h = (int)((double)resize_to * height / width);
    } else {
        new_h = resize_to;
        new_w = (int)((double)resize_to * width / height);
    }
    /* center_crop: int(round((size - crop) / 2.0)), a half rounding to even. */
    double top = rint((new_h - crop) / 2.0);
    double left = rint((new_w - crop) / 2.0);
    /* Resized pixel i has its centre at source (i + 0.5) * width / new_w, so the crop's
     * pixels are those of the source box scaled by the same factor. */
    double sx = (double)width / new_w, sy = (double)height / new_h;
    box.x = left * sx;
    box.y = top * sy;
    box.w = crop * sx;
    box.h = crop * sy;
    return box;
}

/* ---- normalisation ---- */

void image_normalize_chw(const uint8_t *rgb, int size, const float mean[3], const float std[3],
                         bool flip, float *out)
{
    size_t plane = (size_t)size * size;
    for (int c = 0; c < 3; c++) {
        float *dst = out + c * plane;
        for (int y = 0; y < size; y++) {
            const uint8_t *row = rgb + (size_t)y * size * 3;
            for (int x = 0; x < size; x++) {
                int sx = flip ? size - 1 - x : x;
                /* ToTensor divides by 255 and Normalize subtracts then divides, each in float:
                 * the same operations in the same order give torchvision's values exactly. */
                float v = (float)row[3 * sx + c] / 255.0f;
                dst[(size_t)y * size + x] = (v - mean[c]) / std[c];
            }
        }
    }
}

/* ---- random numbers ---- */

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

/* splitmix64's output function: a bijection of 64-bit values with good avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t image_rng_seed(uint64_t seed, uint64_t a, uint64_t b)
{
    /* Chained so that each input passes through a full mix: nearby (seed, epoch, index)
     * triples give unrelated states, not shifted copies of one stream. */
    uint64_t h = mix64(seed + GOLDEN_GAMMA);
    h = mix64(h + a + GOLDEN_GAMMA);
    return mix64(h + b + GOLDEN_GAMMA);
}

double image_rng_uniform(uint64_t *state)
{
    *state += GOLDEN_GAMMA;
    return (double)(mix64(*state) >> 11) * 0x1.0p-53;
}
