/*
 * recordio.h - reading MXNet RecordIO (.rec) files as im2rec writes them for SageMaker's
 * built-in image-classification algorithm (channel content type application/x-recordio).
 *
 * The format (dmlc-core's recordio and MXNet's recordio.pack, restated):
 *   a record part:  uint32 magic 0xced7230a, uint32 lrec, lrec & (2^29 - 1) bytes of data,
 *                   zero padding to a multiple of 4 bytes; lrec >> 29 is cflag:
 *                   0 a whole record, 1 its first part, 2 a middle part, 3 the last part.
 *                   Parts of one record are joined with the magic number between them (the
 *                   writer splits where the magic number occurs in the data).
 *   a record:       IRHeader {uint32 flag; float label; uint64 id; uint64 id2} (24 bytes,
 *                   little endian); when flag > 0, `flag` float labels follow and the label
 *                   field is unused; then the encoded image (JPEG or PNG).
 * The .idx file beside a .rec (lines "key<TAB>byte offset") only speeds up random access;
 * reading here scans the .rec itself, so a missing, stale or lying .idx cannot mislead it.
 *
 * Everything read is bounded: a record's total size (RECORDIO_MAX_RECORD), its part count,
 * the label count, the file's length; a damaged file is reported with the byte offset.
 */
#ifndef DATA_RECORDIO_H
#define DATA_RECORDIO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define RECORDIO_MAGIC 0xced7230au
#define RECORDIO_MAX_RECORD (64u << 20)
#define RECORDIO_HEADER_BYTES 24

/* One record read from `offset`: data (malloc'd, the parts joined), and where the next
 * record starts. Returns 1 when a record was read, 0 at a clean end of file, -1 with a
 * message (bad magic, bad flag, size beyond RECORDIO_MAX_RECORD, truncated: `truncated` is
 * then set when the file simply ends inside the record). */
int recordio_read(FILE *f, uint64_t offset, uint8_t **data, uint32_t *len, uint64_t *next,
                  bool *truncated);

/* The record's IRHeader: its one label (flag 0, or flag 1 with one float label) and where
 * the image starts. -1 with a message when the header is short, lies about its label count,
 * or holds several labels (multi-label records: label_count says how many). */
int recordio_parse(const uint8_t *data, uint32_t len, double *label, uint32_t *image_offset,
                   uint32_t *label_count);

#endif
