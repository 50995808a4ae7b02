/*
 * media_types.h - the media types serve reads and writes, and their accepted spellings, in one
 * place: request decoding (Content-Type), Accept negotiation and the answers all use these.
 */
#ifndef SERVE_MEDIA_TYPES_H
#define SERVE_MEDIA_TYPES_H

#include <stddef.h>

#define MEDIA_JSON "application/json"
#define MEDIA_JSONLINES "application/jsonlines"
#define MEDIA_NPY "application/x-npy"
/* For messages: what a client may send, and what it may ask for. */
#define MEDIA_INPUTS_TEXT                                                                         \
    "image/jpeg, image/png, application/x-image, application/x-npy, application/json or "        \
    "application/jsonlines"
#define MEDIA_OUTPUTS_TEXT "application/json, application/x-npy or application/jsonlines"

enum media_kind {
    MEDIA_KIND_OTHER = 0,
    MEDIA_KIND_IMAGE,     /* image/jpeg, image/jpg, image/png, application/x-image */
    MEDIA_KIND_NPY,       /* application/x-npy, tensor/pt */
    MEDIA_KIND_JSON,      /* application/json */
    MEDIA_KIND_JSONLINES, /* application/jsonlines, application/jsonl, application/x-jsonlines */
    MEDIA_KIND_SNIFF,     /* application/octet-stream, binary/octet-stream, file-path/raw-bytes:
                           * told by the bytes */
};

/* The kind of the type name s[0..len), compared without regard to case; no parameters (the
 * caller cuts them off) and no wildcards (Accept's are handled by accept.c). */
enum media_kind media_kind_of(const char *s, size_t len);

/* A Content-Type header without its parameters, blanks and case: "Image/JPEG; charset=x" ->
 * "image/jpeg" (truncated to len - 1 bytes). */
void media_type_bare(const char *raw, char *out, size_t len);

#endif
