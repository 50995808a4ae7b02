/*
 * report_tensorboard.h - TensorBoard scalar event files, written by hand: TFRecord framing
 * (length, masked CRC-32C of the length, the record, masked CRC-32C of the record) around
 * Event protocol buffers {wall_time=1 double, step=2 int64, file_version=3 string,
 * summary=5 {value=1 {tag=1 string, simple_value=2 float}}}.
 *
 * A hand encoder rather than protobuf-c: scalars use five fields of two messages, the
 * encoder is ~100 lines with no generated code, no .proto to vendor and no new library in
 * the image; tests read the files with TensorBoard's own reader.
 */
#ifndef TRAIN_REPORT_TENSORBOARD_H
#define TRAIN_REPORT_TENSORBOARD_H

#include <stdint.h>
#include <stdio.h>

struct tb_writer {
    FILE *f;
    char path[4096];
};

/* Creates dir (and parents) and a new events.out.tfevents.<time>.<host> file in it. */
int tb_open(struct tb_writer *w, const char *dir, const char *host);
/* One scalar; a write error is reported once and the writer closes itself. */
int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value);
void tb_flush(struct tb_writer *w);
void tb_close(struct tb_writer *w);
/* CRC-32C (Castagnoli) of n bytes, as TFRecord frames use before masking. */
uint32_t tb_crc32c(const void *data, size_t n);

#endif
