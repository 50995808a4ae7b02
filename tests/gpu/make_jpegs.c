/*
 * make_jpegs.c - writes a generated image-classification dataset for the GPU check, with
 * libjpeg-turbo alone (the GPU machines have no Pillow): DIR/<split>/class_NN/img_NNNNN.jpg,
 * W x H pixels, quality 90. Each class has its own colour gradient and stripe frequency with
 * per-image noise, so that a network can learn it and JPEG decoding does real work.
 *
 *   make_jpegs DIR CLASSES TRAIN_PER_CLASS VAL_PER_CLASS [W H]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

static int write_jpeg(const char *path, const unsigned char *rgb, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f);
}

static void draw(unsigned char *rgb, int w, int h, int cls, unsigned *seed)
{
    int period = 6 + 3 * cls;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            int stripe = ((x + y * (cls % 3)) / period) % 2;
            int noise = (int)(rand_r(seed) % 48);
            p[0] = (unsigned char)((cls * 37 + x * 255 / w) % 200 + noise);
            p[1] = (unsigned char)((cls * 71 + y * 255 / h) % 200 + noise);
            p[2] = (unsigned char)(stripe ? 200 : 40 + noise);
        }
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: %s DIR CLASSES TRAIN_PER_CLASS VAL_PER_CLASS [W H]\n", argv[0]);
        return 2;
    }
    int classes = atoi(argv[2]), per[2] = {atoi(argv[3]), atoi(argv[4])};
    int w = argc == 7 ? atoi(argv[5]) : 500, h = argc == 7 ? atoi(argv[6]) : 375;
    if (classes < 2 || classes > 100 || per[0] < 1 || per[1] < 1 || w < 16 || h < 16 ||
        w > 4096 || h > 4096) {
        fprintf(stderr, "make_jpegs: bad arguments\n");
        return 2;
    }
    unsigned char *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb)
        return 1;
    const char *splits[2] = {"train", "validation"};
    char path[4096];
    unsigned seed = 1;
    mkdir(argv[1], 0755);
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], splits[s]);
        mkdir(path, 0755);
        for (int c = 0; c < classes; c++) {
            snprintf(path, sizeof path, "%s/%s/class_%02d", argv[1], splits[s], c);
            if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                perror(path);
                return 1;
            }
            for (int i = 0; i < per[s]; i++) {
                draw(rgb, w, h, c, &seed);
                snprintf(path, sizeof path, "%s/%s/class_%02d/img_%05d.jpg", argv[1], splits[s], c, i);
                if (write_jpeg(path, rgb, w, h) != 0) {
                    perror(path);
                    return 1;
                }
            }
        }
    }
    free(rgb);
    return 0;
}
