/*
 * model_archive.h - model.tar.gz into the model directory, as SageMaker would have unpacked it:
 * only plain files and folders, every name kept inside the directory, a cap on entries and
 * bytes. Needs libarchive only (no libtorch), so that it is fuzzed on its own
 * (tests/fuzz/fuzz_model_archive.c).
 */
#ifndef SERVE_MODEL_ARCHIVE_H
#define SERVE_MODEL_ARCHIVE_H

#include <stdint.h>

#define MODEL_ARCHIVE_MAX_BYTES ((int64_t)8 << 30) /* the entries' sizes added up */
#define MODEL_ARCHIVE_MAX_ENTRIES 10000

/* Extracts tarball (tar, optionally gzip/bzip2/xz-compressed) into dir. Refused, with a
 * message naming the entry: absolute names, a ".." component, links, devices and fifos,
 * names too long for a path, more than MODEL_ARCHIVE_MAX_ENTRIES entries or
 * MODEL_ARCHIVE_MAX_BYTES bytes. What was extracted before a refusal stays (the server
 * does not start). */
int model_archive_extract(const char *tarball, const char *dir);

/* Extracts <dir>/model.tar.gz when there is no model.pth beside it; 0 when there is nothing
 * to do. Runs before custom handlers in its code/ folder are looked for. */
int model_archive_prepare(const char *dir);

#endif
