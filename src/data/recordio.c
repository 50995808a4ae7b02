/*
 * recordio.c - the RecordIO record reader and IRHeader parser (see recordio.h).
 */
#define _FILE_OFFSET_BITS 64
#include "data/recordio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define MAX_PARTS 4096

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads exactly n bytes; 1 ok, 0 end of file before any byte, -1 short (truncated). */
static int read_exact(FILE *f, void *buf, size_t n)
{
    size_t got = fread(buf, 1, n, f);
    if (got == n)
        return 1;
    return got == 0 && feof(f) ? 0 : -1;
}

int recordio_read(FILE *f, uint64_t offset, uint8_t **data, uint32_t *len, uint64_t *next,
                  bool *truncated)
{
    *data = NULL;
    *len = 0;
    *truncated = false;
    if (offset > (uint64_t)INT64_MAX || fseeko(f, (off_t)offset, SEEK_SET) != 0)
        return err_set("cannot seek to byte %llu: %s", (unsigned long long)offset, strerror(errno));
    uint8_t *buf = NULL;
    size_t size = 0;
    uint64_t pos = offset;
    for (int part = 0;; part++) {
        uint8_t head[8];
        int r = read_exact(f, head, sizeof head);
        if (r == 0 && part == 0)
            return 0;
        if (r <= 0) {
            free(buf);
            *truncated = true;
            return err_set("the file ends inside the record at byte %llu",
                           (unsigned long long)offset);
        }
        if (le32(head) != RECORDIO_MAGIC) {
            free(buf);
            return err_set("no RecordIO magic number at byte %llu (found 0x%08x)",
                           (unsigned long long)pos, le32(head));
        }
        uint32_t lrec = le32(head + 4), n = lrec & ((1u << 29) - 1), cflag = lrec >> 29;
        bool first = part == 0;
        if (cflag > 3 || (first && cflag > 1) || (!first && cflag < 2)) {
            free(buf);
            return err_set("record part at byte %llu has continuation flag %u, which cannot "
                           "follow %s",
                           (unsigned long long)pos, cflag, first ? "a record's end" : "a first part");
        }
        size_t extra = first ? 0 : 4; /* the magic number the writer split at */
        if (size + extra + n > RECORDIO_MAX_RECORD || part >= MAX_PARTS) {
            free(buf);
            return err_set("the record at byte %llu is larger than %u bytes (or in more than %d "
                           "parts)",
                           (unsigned long long)offset, RECORDIO_MAX_RECORD, MAX_PARTS);
        }
        uint8_t *grown = realloc(buf, size + extra + n + 1);
        if (!grown) {
            free(buf);
            return err_set("out of memory reading a %u-byte record", n);
        }
        buf = grown;
        if (!first) {
            const uint8_t magic[4] = {0x0a, 0x23, 0xd7, 0xce};
            memcpy(buf + size, magic, 4);
            size += 4;
        }
        uint32_t padded = (n + 3u) & ~3u;
        if (n && read_exact(f, buf + size, n) != 1) {
            free(buf);
            *truncated = true;
            return err_set("the file ends inside the record at byte %llu (it claims %u bytes)",
                           (unsigned long long)offset, n);
        }
        size += n;
        uint8_t pad[4];
        if (padded > n && read_exact(f, pad, padded - n) != 1) {
            free(buf);
            *truncated = true;
            return err_set("the file ends inside the padding of the record at byte %llu",
                           (unsigned long long)offset);
        }
        pos += 8 + padded;
        if (cflag == 0 || cflag == 3)
            break;
    }
    *data = buf;
    *len = (uint32_t)size;
    *next = pos;
    return 1;
}

int recordio_parse(const uint8_t *data, uint32_t len, double *label, uint32_t *image_offset,
                   uint32_t *label_count)
{
    *label_count = 0;
    if (len < RECORDIO_HEADER_BYTES)
        return err_set("the record holds %u bytes, less than its 24-byte header", len);
    uint32_t flag = le32(data), bits;
    float f;
    if (flag == 0) {
        bits = le32(data + 4); /* an IEEE float, little endian */
        memcpy(&f, &bits, 4);
        *label_count = 1;
        *label = f;
        *image_offset = RECORDIO_HEADER_BYTES;
        return 0;
    }
    *label_count = flag;
    if ((uint64_t)flag * 4 > len - RECORDIO_HEADER_BYTES)
        return err_set("the record's header says %u labels follow, but it holds only %u bytes",
                       flag, len);
    if (flag > 1)
        return err_set("the record holds %u labels: multi-label records are not supported "
                       "(one label per image)",
                       flag);
    bits = le32(data + RECORDIO_HEADER_BYTES);
    memcpy(&f, &bits, 4);
    *label = f;
    *image_offset = RECORDIO_HEADER_BYTES + 4;
    return 0;
}
