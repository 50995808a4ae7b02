/*
 * decode.c - JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory (see decode.h).
 *
 * Both libraries report errors by calling a handler that must not return, so each decoder
 * longjmps back to a setjmp in its own function. Everything the error path must free (the
 * codec state, the pixel buffer, PNG's row pointers) lives in a context struct that belongs to
 * the *calling* function's frame: C leaves automatic variables of the function that called
 * setjmp indeterminate after a longjmp if they changed in between, but says nothing against
 * memory owned by another frame, so no local needs to be volatile and the caller frees
 * whatever the context holds, on success and failure alike.
 *
 * Not here: anything about what the pixels are used for (transform.c).
 */
#include "image/decode.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "common/error.h"
#include "common/memory_limit.h"

/* A progressive JPEG can hold any number of scans, each a pass over the whole coefficient
 * buffer, so a small file can cost minutes of CPU. libjpeg-turbo's own tools cap them at 500
 * (TJFLAG_LIMITSCANS); real encoders write about 10. */
#define JPEG_MAX_SCANS 500

/* Ancillary PNG chunks (text, ICC profiles) that libpng would keep in memory are capped at
 * this size; pixel data (IDAT) is streamed and not affected. */
#define PNG_CHUNK_MAX (8 * 1024 * 1024)

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

enum image_format image_sniff(const uint8_t *data, size_t len)
{
    if (!data)
        return IMAGE_FORMAT_UNKNOWN;
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return IMAGE_FORMAT_JPEG;
    if (len >= sizeof png_signature && memcmp(data, png_signature, sizeof png_signature) == 0)
        return IMAGE_FORMAT_PNG;
    return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(enum image_format f)
{
    switch (f) {
    case IMAGE_FORMAT_JPEG:
        return "JPEG";
    case IMAGE_FORMAT_PNG:
        return "PNG";
    case IMAGE_FORMAT_UNKNOWN:
        break;
    }
    return "unknown";
}


/* A header's size against the caps, before a byte of pixels is allocated: max_pixels is
 * IMAGE_MAX_PIXELS for what is decoded at full size, IMAGE_MAX_HEADER_PIXELS for a JPEG that
 * may be decoded at a reduced scale (checked again, as decoded, by check_decoded). */
static int check_size(enum image_format f, unsigned long width, unsigned long height,
                      unsigned long long max_pixels)
{
    if (width == 0 || height == 0)
        return err_set("%s image has no pixels (%lux%lu)", image_format_name(f), width, height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE ||
        (unsigned long long)width * height > max_pixels)
        return err_set("%s image is %lux%lu pixels; the limit is %d pixels per side and %llu "
                       "pixels in all",
                       image_format_name(f), width, height, IMAGE_MAX_SIDE, max_pixels);
    return 0;
}

/* The pixels a decoder is about to write, against the cap. */
static int check_decoded(enum image_format f, unsigned long width, unsigned long height,
                         unsigned long declared_w, unsigned long declared_h)
{
    if ((unsigned long long)width * height <= IMAGE_MAX_PIXELS)
        return 0;
    return err_set("%s image is %lux%lu pixels, decoded at %lux%lu; the limit is %d pixels in "
                   "all as decoded",
                   image_format_name(f), declared_w, declared_h, width, height, IMAGE_MAX_PIXELS);
}

/* ---- a memory budget for very large images ----
 *
 * Images up to IMAGE_MAX_PIXELS are read, as PIL reads them. A decode that will hold more than
 * LARGE_IMAGE_BYTES (what a 40 MP image takes, the cap of before) first takes its bytes (the
 * pixels, and a progressive JPEG's coefficients) from a process-wide budget, a quarter of the
 * memory limit, and image_free gives them back, on whichever thread frees: eight serve
 * connections or loader threads each holding a 268 MB image would take 2 GB, and a client
 * sending such PNGs (they compress 1000:1) could otherwise exhaust a small endpoint. A decode
 * that would overdraw the budget waits for others to be freed; one is always let through when
 * none is held, so no single image waits for ever. No caller holds a large image while it
 * decodes another (that could wait for itself once the budget is short). */
#define LARGE_IMAGE_BYTES ((size_t)40 * 1000 * 1000 * 3)

static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_cv = PTHREAD_COND_INITIALIZER;
static size_t budget_bytes; /* 0: not set yet (the default is taken at first use) */
static size_t budget_held;

void image_large_budget_set(size_t bytes)
{
    pthread_mutex_lock(&budget_mu);
    budget_bytes = bytes;
    pthread_cond_broadcast(&budget_cv);
    pthread_mutex_unlock(&budget_mu);
}

/* bytes from the budget (0 when the decode is not large); they go back with budget_give. */
static size_t budget_take(size_t bytes)
{
    if (bytes <= LARGE_IMAGE_BYTES)
        return 0;
    pthread_mutex_lock(&budget_mu);
    if (!budget_bytes) {
        size_t floor = (size_t)2 * IMAGE_MAX_PIXELS * 3;
        size_t quarter = memory_limit_bytes(NULL) / 4;
        budget_bytes = quarter > floor ? quarter : floor;
    }
    while (budget_held > 0 && budget_held + bytes > budget_bytes)
        pthread_cond_wait(&budget_cv, &budget_mu);
    budget_held += bytes;
    pthread_mutex_unlock(&budget_mu);
    return bytes;
}

static void budget_give(size_t bytes)
{
    if (!bytes)
        return;
    pthread_mutex_lock(&budget_mu);
    budget_held -= bytes;
    pthread_cond_broadcast(&budget_cv);
    pthread_mutex_unlock(&budget_mu);
}

static void release_pixels(uint8_t *pixels, size_t budget)
{
    free(pixels);
    budget_give(budget);
}

void image_free(struct image *img)
{
    if (!img)
        return;
    release_pixels(img->pixels, img->budget);
    img->pixels = NULL;
    img->width = 0;
    img->height = 0;
    img->budget = 0;
}

/* ---- JPEG ---- */

struct jpeg_context {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err; /* cinfo.err points here */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    uint8_t *pixels; /* the caller frees it unless handed to the image */
    size_t budget;   /* bytes taken from the large-image budget, handed on with pixels */
};

/* Every handler gets the cinfo; the context around it is found from the cinfo's address,
 * which is the context's first member. */
static struct jpeg_context *jpeg_context_of(j_common_ptr cinfo)
{
    return (struct jpeg_context *)(void *)cinfo;
}

static _Noreturn void jpeg_fail(j_common_ptr cinfo)
{
    struct jpeg_context *ctx = jpeg_context_of(cinfo);
    (*cinfo->err->format_message)(cinfo, ctx->message);
    longjmp(ctx->jump, 1);
}

/* Warnings are where libjpeg reports damaged data: at the end of a truncated file it warns
 * "Premature end of JPEG file", inserts a fake end marker and fills the rest of the image with
 * grey. A classifier must not train on or answer for such pixels, so warnings fail the decode,
 * except for those that leave every pixel intact: stray bytes between markers (common in
 * ImageNet), an unknown JFIF revision or Adobe transform code, a bad ICC marker, and SOS
 * parameters that are merely unusual. PIL accepts those files too. Trace messages (level > 0)
 * are ignored, and nothing is ever printed to stderr. */
static void jpeg_on_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level >= 0)
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC:
    case JWRN_NOT_SEQUENTIAL:
        return;
    default:
        jpeg_fail(cinfo);
    }
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor)
        return;
    struct jpeg_context *ctx = jpeg_context_of(cinfo);
    if (ctx->cinfo.input_scan_number > JPEG_MAX_SCANS) {
        snprintf(ctx->message, sizeof ctx->message,
                 "progressive JPEG has more than %d scans (a decompression bomb?)",
                 JPEG_MAX_SCANS);
        longjmp(ctx->jump, 1);
    }
}

/* Picks the smallest of the 1/8, 1/4, 1/2 and 1 DCT scales with both output sides >= min_side.
 * libjpeg-turbo has SIMD code for exactly these; its other n/8 scales run plain C and cost more
 * than the pixels they save (and they are the ones PIL's draft() uses). */
static void jpeg_choose_scale(struct jpeg_decompress_struct *cinfo, int min_side)
{
    cinfo->scale_denom = 8;
    for (unsigned n = 1; n <= 8; n *= 2) {
        cinfo->scale_num = n;
        jpeg_calc_output_dimensions(cinfo);
        if (cinfo->output_width >= (JDIMENSION)min_side &&
            cinfo->output_height >= (JDIMENSION)min_side)
            return;
    }
    /* Smaller than min_side even at full size: decode at full size (scale_num is 8). */
}

/* What libjpeg's whole-image coefficient buffer of a multi-scan (progressive) file takes:
 * each component's blocks, padded to its sampling factors, 128 bytes a block. */
static size_t jpeg_coefficient_bytes(const struct jpeg_decompress_struct *cinfo)
{
    size_t bytes = 0;
    for (int c = 0; c < cinfo->num_components; c++) {
        const jpeg_component_info *ci = &cinfo->comp_info[c];
        size_t w = ci->width_in_blocks, h = ci->height_in_blocks;
        size_t hs = ci->h_samp_factor > 0 ? (size_t)ci->h_samp_factor : 1;
        size_t vs = ci->v_samp_factor > 0 ? (size_t)ci->v_samp_factor : 1;
        bytes += (w + hs - 1) / hs * hs * ((h + vs - 1) / vs * vs) * sizeof(JBLOCK);
    }
    return bytes;
}

/* Adobe Photoshop writes CMYK JPEGs inverted (0 = full ink) and PIL assumes that convention
 * for every CMYK JPEG; this is PIL's CMYK;I unpacking followed by its cmyk2rgb, rounding
 * included, so the pixels match PIL's exactly. */
static void cmyk_row_to_rgb(const uint8_t *cmyk, JDIMENSION width, uint8_t *rgb)
{
    for (JDIMENSION x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int nk = cmyk[3]; /* inverted K is 255 - ink, PIL's nk */
        for (int c = 0; c < 3; c++) {
            int ink = 255 - cmyk[c];
            int t = ink * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8); /* nk - round(ink * nk / 255) */
            rgb[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

/* The output size: the smallest DCT scale whose sides stay >= min_side (0: full size), or
 * >= over_cap_side for an image too large at full size (image_decode_full: reduced rather
 * than refused). */
static void jpeg_set_scale(struct jpeg_decompress_struct *cinfo, int min_side, int over_cap_side)
{
    if (min_side <= 0 && over_cap_side > 0 &&
        (unsigned long long)cinfo->image_width * cinfo->image_height > IMAGE_MAX_PIXELS)
        min_side = over_cap_side;
    if (min_side > 0)
        jpeg_choose_scale(cinfo, min_side);
    else
        jpeg_calc_output_dimensions(cinfo);
}

/* Decodes into ctx->pixels; on failure, the caller frees what ctx holds. header_only: stop
 * after the (checked) header, with only out->width and out->height set. */
static int jpeg_decode_into(struct jpeg_context *ctx, const uint8_t *data, size_t len,
                            int min_side, int over_cap_side, bool header_only, struct image *out)
{
    struct jpeg_decompress_struct *cinfo = &ctx->cinfo;
    cinfo->err = jpeg_std_error(&ctx->err);
    ctx->err.error_exit = jpeg_fail;
    ctx->err.emit_message = jpeg_on_message;
    ctx->progress.progress_monitor = jpeg_on_progress;
    if (setjmp(ctx->jump))
        return err_set("corrupt JPEG: %s", ctx->message);

    jpeg_create_decompress(cinfo);
    cinfo->progress = &ctx->progress;
    if ((unsigned long)len != len)
        return err_set("JPEG file of %zu bytes is too large", len);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    if (check_size(IMAGE_FORMAT_JPEG, cinfo->image_width, cinfo->image_height,
                   IMAGE_MAX_HEADER_PIXELS) < 0)
        return -1;
    if (header_only) {
        out->width = (int)cinfo->image_width;
        out->height = (int)cinfo->image_height;
        return 0;
    }

    /* libjpeg converts grayscale and YCbCr to RGB itself, and YCCK to CMYK; CMYK to RGB is
     * ours. Anything else (2-channel, unknown transforms) fails in jpeg_start_decompress with
     * libjpeg's "Bogus colour conversion" message. */
    bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_scale(cinfo, min_side, over_cap_side);
    /* Everything that could be large is checked and taken from the budget before
     * jpeg_start_decompress: for a progressive file that call allocates the coefficients of
     * the whole image at full size, whatever the scale, and reads every scan into them. */
    JDIMENSION width = cinfo->output_width, height = cinfo->output_height;
    if (check_decoded(IMAGE_FORMAT_JPEG, width, height, cinfo->image_width,
                      cinfo->image_height) < 0)
        return -1;
    size_t coefficients = 0;
    if (jpeg_has_multiple_scans(cinfo)) {
        if (check_size(IMAGE_FORMAT_JPEG, cinfo->image_width, cinfo->image_height,
                       IMAGE_MAX_PIXELS) < 0)
            return err_prefix("progressive: ");
        coefficients = jpeg_coefficient_bytes(cinfo);
    }
    ctx->budget = budget_take(coefficients + (size_t)width * height * 3);
    jpeg_start_decompress(cinfo);

    if (cinfo->output_width != width || cinfo->output_height != height)
        return err_set("JPEG decoder changed its output size from %ux%u to %ux%u", width, height,
                       cinfo->output_width, cinfo->output_height);
    if (cinfo->output_components != (cmyk ? 4 : 3))
        return err_set("JPEG decoder gave %d channels for a %s image", cinfo->output_components,
                       cmyk ? "CMYK" : "RGB");
    ctx->pixels = malloc((size_t)width * height * 3); /* checked by check_decoded */
    if (!ctx->pixels)
        return err_set("out of memory decoding a %ux%u JPEG", width, height);

    size_t stride = (size_t)width * 3;
    if (cmyk) {
        /* A row buffer from libjpeg's pool: jpeg_destroy frees it on every path. */
        JSAMPARRAY row = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                      width * 4, 1);
        while (cinfo->output_scanline < height) {
            JDIMENSION y = cinfo->output_scanline;
            if (jpeg_read_scanlines(cinfo, row, 1) != 1)
                return err_set("corrupt JPEG: no data for row %u", y);
            cmyk_row_to_rgb(row[0], width, ctx->pixels + y * stride);
        }
    } else {
        /* Rows straight into the result, as many per call as libjpeg offers. */
        JSAMPARRAY rows = (*cinfo->mem->alloc_small)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                      height * sizeof(JSAMPROW));
        for (JDIMENSION y = 0; y < height; y++)
            rows[y] = ctx->pixels + y * stride;
        while (cinfo->output_scanline < height) {
            JDIMENSION y = cinfo->output_scanline;
            if (jpeg_read_scanlines(cinfo, rows + y, height - y) == 0)
                return err_set("corrupt JPEG: no data for row %u", y);
        }
    }
    /* Reads up to the end marker, so a file cut off after the last row still fails. */
    jpeg_finish_decompress(cinfo);

    out->pixels = ctx->pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->budget = ctx->budget;
    ctx->pixels = NULL;
    ctx->budget = 0;
    return 0;
}

static int decode_jpeg(const uint8_t *data, size_t len, int min_side, int over_cap_side,
                       bool header_only, struct image *out)
{
    struct jpeg_context ctx;
    memset(&ctx, 0, sizeof ctx); /* cinfo.mem NULL: jpeg_destroy is safe before create */
    int rc = jpeg_decode_into(&ctx, data, len, min_side, over_cap_side, header_only, out);
    jpeg_destroy_decompress(&ctx.cinfo);
    release_pixels(ctx.pixels, ctx.budget);
    return rc;
}

/* ---- PNG ---- */

struct png_context {
    const uint8_t *data;
    size_t len, pos;
    char message[256];
    png_structp png;
    png_infop info;
    uint8_t *pixels;
    size_t budget; /* bytes taken from the large-image budget, handed on with pixels */
    png_bytep *rows;
};

static void png_read_from_memory(png_structp png, png_bytep dest, size_t n)
{
    struct png_context *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos)
        png_error(png, "unexpected end of file (truncated?)");
    memcpy(dest, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_context *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (an sRGB profile libpng knows to be wrong, a bad CRC in an ancillary chunk) leave
 * the pixels intact; they are not printed, since stderr belongs to the program. Damage to
 * pixel data is an error in libpng. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Reads IHDR's width and height from the raw bytes, so that an oversized image is refused
 * with a message naming our limit: libpng's own check (png_set_user_limits, kept as a second
 * line) only says "Invalid IHDR data". */
static int png_check_ihdr(const uint8_t *data, size_t len)
{
    if (len < 24 || memcmp(data + 12, "IHDR", 4) != 0)
        return 0; /* libpng explains what is wrong */
    const uint8_t *p = data + 16;
    unsigned long width = (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
                          (unsigned long)p[2] << 8 | p[3];
    unsigned long height = (unsigned long)p[4] << 24 | (unsigned long)p[5] << 16 |
                           (unsigned long)p[6] << 8 | p[7];
    return check_size(IMAGE_FORMAT_PNG, width, height, IMAGE_MAX_PIXELS);
}

/* A row of big-endian 16-bit gray samples, in place, into RGB clipped at 255 (PIL's I;16 to
 * RGB). From the last pixel back: pixel x is read from bytes 2x..2x+1 before bytes 3x..3x+2
 * are written, and no pixel before it is stored at or after 3x. */
static void gray16_row_to_rgb(uint8_t *row, png_uint_32 width)
{
    for (png_uint_32 x = width; x-- > 0;) {
        unsigned v = (unsigned)row[2 * (size_t)x] << 8 | row[2 * (size_t)x + 1];
        uint8_t g = (uint8_t)(v > 255 ? 255 : v);
        row[3 * (size_t)x] = row[3 * (size_t)x + 1] = row[3 * (size_t)x + 2] = g;
    }
}

static int png_decode_into(struct png_context *ctx, struct image *out)
{
    ctx->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error, png_on_warning);
    if (!ctx->png)
        return err_set("out of memory starting the PNG decoder");
    ctx->info = png_create_info_struct(ctx->png);
    if (!ctx->info)
        return err_set("out of memory starting the PNG decoder");
    if (setjmp(png_jmpbuf(ctx->png)))
        return err_set("corrupt PNG: %s", ctx->message);

    png_structp png = ctx->png;
    png_infop info = ctx->info;
    png_set_read_fn(png, ctx, png_read_from_memory);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MAX);
    /* Text and colour-profile chunks mean nothing to a classifier; skipping them also skips
     * inflating zTXt/iTXt/iCCP, where a small chunk can expand a lot. */
    static const png_byte ignored_chunks[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks, 5);

    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if (check_size(IMAGE_FORMAT_PNG, width, height, IMAGE_MAX_PIXELS) < 0)
        return -1;

    /* Every PNG to 8-bit RGB, as PIL's convert("RGB") would have it. 16-bit samples keep their
     * high byte, except 16-bit gray: PIL opens it as mode I;16, whose conversion clips at 255
     * instead (256 and 65535 are both white), and that is what a Python user trained on and
     * serves with, so it is read whole and clipped (gray16_row_to_rgb). */
    bool gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    if (bit_depth == 16 && !gray16)
        png_set_strip_16(png); /* the high byte, not a rounded scale (png_set_scale_16) */
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if ((color_type == PNG_COLOR_TYPE_GRAY && !gray16) ||
        color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    /* Unconditionally: a palette with a tRNS chunk expands to RGBA, and stripping is a no-op
     * on rows without alpha. Gray/RGB tRNS is never turned into alpha (no png_set_tRNS_to_alpha),
     * so it is dropped too. */
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t stride = (size_t)width * 3; /* 16-bit gray rows (2 bytes a pixel) fit in it too */
    if (png_get_bit_depth(png, info) != (gray16 ? 16 : 8) ||
        png_get_channels(png, info) != (gray16 ? 1 : 3) ||
        png_get_rowbytes(png, info) != (gray16 ? (size_t)width * 2 : stride))
        return err_set("PNG (color type %d, %d-bit) did not convert to 8-bit RGB", color_type,
                       bit_depth);
    ctx->budget = budget_take((size_t)width * height * 3);
    ctx->pixels = malloc((size_t)width * height * 3); /* checked by check_size */
    ctx->rows = malloc((size_t)height * sizeof *ctx->rows);
    if (!ctx->pixels || !ctx->rows)
        return err_set("out of memory decoding a %lux%lu PNG", (unsigned long)width,
                       (unsigned long)height);
    for (png_uint_32 y = 0; y < height; y++)
        ctx->rows[y] = ctx->pixels + y * stride;
    /* libpng fails here when image data is missing ("Not enough image data"); what follows the
     * image data (png_read_end: trailing chunks, IEND) cannot change the pixels, so it is not
     * read, as PIL does not insist on it either. */
    png_read_image(png, ctx->rows);
    for (png_uint_32 y = 0; gray16 && y < height; y++)
        gray16_row_to_rgb(ctx->rows[y], width);

    out->pixels = ctx->pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->budget = ctx->budget;
    ctx->pixels = NULL;
    ctx->budget = 0;
    return 0;
}

static int decode_png(const uint8_t *data, size_t len, struct image *out)
{
    if (png_check_ihdr(data, len) < 0)
        return -1;
    struct png_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.len = len;
    int rc = png_decode_into(&ctx, out);
    png_destroy_read_struct(&ctx.png, &ctx.info, NULL); /* NULL-safe */
    free(ctx.rows);
    release_pixels(ctx.pixels, ctx.budget);
    return rc;
}

int image_probe(const uint8_t *data, size_t len, int *width, int *height)
{
    *width = *height = 0;
    switch (image_sniff(data, len)) {
    case IMAGE_FORMAT_JPEG: {
        struct image header = {0};
        int rc = decode_jpeg(data, len, 0, 0, true, &header);
        *width = header.width;
        *height = header.height;
        return rc;
    }
    case IMAGE_FORMAT_PNG:
        if (len < 24 || memcmp(data + 12, "IHDR", 4) != 0)
            return err_set("corrupt PNG: no IHDR chunk at its start");
        if (png_check_ihdr(data, len) < 0)
            return -1;
        /* IHDR's width and height follow the signature, the chunk length and "IHDR". */
        *width = (int)((uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | data[18] << 8 | data[19]);
        *height = (int)((uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | data[22] << 8 | data[23]);
        return 0;
    default:
        return err_set("not a JPEG or PNG image");
    }
}

/* image_decode and image_decode_full: over_cap_side > 0 decodes a JPEG too large at full
 * size at the smallest scale whose sides stay >= it. */
static int decode_any(const uint8_t *data, size_t len, int min_side, int over_cap_side,
                      struct image *out)
{
    memset(out, 0, sizeof *out);
    switch (image_sniff(data, len)) {
    case IMAGE_FORMAT_JPEG:
        return decode_jpeg(data, len, min_side, over_cap_side, false, out);
    case IMAGE_FORMAT_PNG:
        return decode_png(data, len, out);
    case IMAGE_FORMAT_UNKNOWN:
        break;
    }
    if (!data || len == 0)
        return err_set("not a JPEG or PNG image: the data is empty");
    /* The first bytes tell a user what the file really is (GIF8, RIFF....WEBP, <htm...). */
    char head[3 * 8] = "";
    for (size_t i = 0; i < len && i < 8; i++)
        snprintf(head + 3 * i, sizeof head - 3 * i, i + 1 < len && i < 7 ? "%02x " : "%02x",
                 data[i]);
    return err_set("not a JPEG or PNG image (%zu bytes, starting %s)", len, head);
}

int image_decode(const uint8_t *data, size_t len, int min_side, struct image *out)
{
    return decode_any(data, len, min_side, 0, out);
}

int image_decode_full(const uint8_t *data, size_t len, int over_cap_side, struct image *out)
{
    return decode_any(data, len, 0, over_cap_side, out);
}
