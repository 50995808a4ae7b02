/*
 * fuzz_recordio.c - libFuzzer target: the RecordIO reader (data/recordio.c) on any bytes, as
 * a .rec file: every record framed by recordio_read (magic, length word, continuation parts,
 * padding) and its IRHeader parsed by recordio_parse, until the end, the first error or 64
 * records. The reader must stop with a message on anything malformed, never read out of
 * bounds or allocate what the file does not hold.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/recordio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    FILE *f = fmemopen((void *)data, len, "rb");
    if (!f)
        return 0;
    uint64_t offset = 0;
    for (int n = 0; n < 64; n++) {
        uint8_t *rec = NULL;
        uint32_t rec_len = 0;
        uint64_t next = 0;
        bool truncated = false;
        int rc = recordio_read(f, offset, &rec, &rec_len, &next, &truncated);
        if (rc == 1) {
            double label;
            uint32_t image_offset, label_count;
            if (recordio_parse(rec, rec_len, &label, &image_offset, &label_count) == 0 &&
                image_offset > rec_len)
                abort(); /* the image must lie inside the record */
        }
        free(rec);
        if (rc != 1 || next <= offset)
            break;
        offset = next;
    }
    fclose(f);
    return 0;
}
