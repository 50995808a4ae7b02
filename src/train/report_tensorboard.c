/*
 * report_tensorboard.c - the TFRecord/Event encoder behind tb_scalar (see the header for
 * the wire layout and why it is written by hand).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "train/report_tensorboard.h"

#define TB_MAX_EVENT 1024

uint32_t tb_crc32c(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t masked_crc(const void *data, size_t n)
{
    uint32_t c = tb_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* A little protobuf writer over a fixed buffer; `len` past `cap` means it did not fit. */
struct pb {
    unsigned char b[TB_MAX_EVENT];
    size_t len;
};

static void pb_byte(struct pb *p, unsigned v)
{
    if (p->len < sizeof p->b) p->b[p->len] = (unsigned char)v;
    p->len++;
}

static void pb_varint(struct pb *p, uint64_t v)
{
    do {
        pb_byte(p, (unsigned)(v & 0x7f) | (v > 0x7f ? 0x80u : 0));
        v >>= 7;
    } while (v);
}

static void pb_raw(struct pb *p, const void *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pb_byte(p, ((const unsigned char *)d)[i]);
}

/* Little-endian fixed-width values, as protobuf stores double and float. */
static void pb_fixed(struct pb *p, uint64_t bits, int bytes)
{
    for (int i = 0; i < bytes; i++)
        pb_byte(p, (unsigned)(bits >> (8 * i)) & 0xff);
}

static void pb_key(struct pb *p, int field, int wire)
{
    pb_varint(p, (uint64_t)field << 3 | (uint64_t)wire);
}

static void pb_double(struct pb *p, int field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pb_key(p, field, 1);
    pb_fixed(p, bits, 8);
}

static void pb_bytes(struct pb *p, int field, const void *d, size_t n)
{
    pb_key(p, field, 2);
    pb_varint(p, n);
    pb_raw(p, d, n);
}

static double wall_time(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static int write_record(struct tb_writer *w, const struct pb *ev)
{
    if (ev->len > sizeof ev->b)
        return err_set("TensorBoard event of %zu bytes is over %d", ev->len, TB_MAX_EVENT);
    unsigned char head[12];
    uint64_t n = ev->len;
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)(n >> (8 * i));
    uint32_t hc = masked_crc(head, 8), dc = masked_crc(ev->b, ev->len);
    for (int i = 0; i < 4; i++) {
        head[8 + i] = (unsigned char)(hc >> (8 * i));
    }
    unsigned char tail[4];
    for (int i = 0; i < 4; i++)
        tail[i] = (unsigned char)(dc >> (8 * i));
    if (fwrite(head, 1, 12, w->f) != 12 || fwrite(ev->b, 1, ev->len, w->f) != ev->len ||
        fwrite(tail, 1, 4, w->f) != 4)
        return err_set("writing %s failed", w->path);
    return 0;
}

int tb_open(struct tb_writer *w, const char *dir, const char *host)
{
    memset(w, 0, sizeof *w);
    if (opt_ml_mkdirs(dir) < 0) return -1;
    if (opt_ml_joinf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s", dir,
                     (long long)time(NULL), host && *host ? host : "localhost") < 0)
        return err_prefix("TensorBoard events file: ");
    w->f = fopen(w->path, "ab");
    if (!w->f) return err_set("cannot create %s: %s", w->path, strerror(errno));
    struct pb ev = {.len = 0};
    pb_double(&ev, 1, wall_time());
    pb_bytes(&ev, 3, "brain.Event:2", 13);
    if (write_record(w, &ev) < 0) {
        tb_close(w);
        return -1;
    }
    return 0;
}

int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value)
{
    if (!w->f) return 0;
    struct pb value_msg = {.len = 0}, summary = {.len = 0}, ev = {.len = 0};
    size_t tag_len = strnlen(tag, 256);
    pb_bytes(&value_msg, 1, tag, tag_len);
    float f = (float)value;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    pb_key(&value_msg, 2, 5);
    pb_fixed(&value_msg, bits, 4);
    pb_bytes(&summary, 1, value_msg.b, value_msg.len);
    pb_double(&ev, 1, wall_time());
    pb_key(&ev, 2, 0);
    pb_varint(&ev, (uint64_t)step);
    pb_bytes(&ev, 5, summary.b, summary.len);
    if (write_record(w, &ev) < 0) {
        log_warn("TensorBoard: %s; no more events are written", err_msg());
        tb_close(w);
        return -1;
    }
    return 0;
}

void tb_flush(struct tb_writer *w)
{
    if (w->f) fflush(w->f);
}

void tb_close(struct tb_writer *w)
{
    if (w->f) fclose(w->f);
    w->f = NULL;
}
