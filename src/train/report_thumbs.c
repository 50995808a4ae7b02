/*
 * report_thumbs.c - keeps misclassified images as thumbnails and encodes them as PNG
 * (see report_thumbs.h). Downscaling averages the source pixels under each thumbnail pixel.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "train/report_thumbs.h"

void thumbs_reset(struct thumbs *t)
{
    t->count = 0;
}

static unsigned char to_byte(float v)
{
    v = v * 255.0f + 0.5f;
    return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)v;
}

/* Channel c of pixel (x, y) of image i of the batch, as a value in [0, 1]. */
static float pixel_value(const struct batch *b, int i, int s, int c, int y, int x,
                         const float mean[3], const float std[3])
{
    size_t image = (size_t)i * 3 * (size_t)s * (size_t)s;
    if (b->pixels)
        return b->pixels[image + ((size_t)y * s + x) * 3 + c] / 255.0f;
    return b->images[image + ((size_t)c * s + y) * s + x] * std[c] + mean[c];
}

void thumbs_note(struct thumbs *t, const struct batch *b, const int64_t *pred, int s,
                 const float mean[3], const float std[3])
{
    for (int i = 0; i < b->n && t->count < THUMB_MAX; i++) {
        if (b->labels[i] == pred[i]) continue;
        struct thumb *th = &t->items[t->count++];
        th->truth = (int)b->labels[i];
        th->pred = (int)pred[i];
        th->size = s < THUMB_SIZE ? s : THUMB_SIZE;
        for (int y = 0; y < th->size; y++)
            for (int x = 0; x < th->size; x++) {
                int y0 = y * s / th->size, y1 = (y + 1) * s / th->size;
                int x0 = x * s / th->size, x1 = (x + 1) * s / th->size;
                for (int c = 0; c < 3; c++) {
                    double sum = 0;
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++)
                            sum += pixel_value(b, i, s, c, yy, xx, mean, std);
                    th->rgb[(y * th->size + x) * 3 + c] =
                        to_byte((float)(sum / ((y1 - y0) * (x1 - x0))));
                }
            }
    }
}

struct png_mem {
    unsigned char *data;
    size_t len, cap;
    int failed;
};

static void png_mem_write(png_structp png, png_bytep data, png_size_t n)
{
    struct png_mem *m = png_get_io_ptr(png);
    if (m->failed) return;
    if (m->len + n > m->cap) {
        size_t cap = (m->len + n) * 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void png_mem_flush(png_structp png)
{
    (void)png;
}

int thumb_png(const struct thumb *t, unsigned char **png_out, size_t *len)
{
    struct png_mem mem = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return err_set("out of memory for a PNG thumbnail");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(mem.data);
        return err_set("encoding a PNG thumbnail failed");
    }
    png_set_write_fn(png, &mem, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)t->size, (png_uint_32)t->size, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < t->size; y++)
        png_write_row(png, (png_const_bytep)(t->rgb + (size_t)y * t->size * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (mem.failed) {
        free(mem.data);
        return err_set("out of memory for a PNG thumbnail");
    }
    *png_out = mem.data;
    *len = mem.len;
    return 0;
}
