/*
 * media_types.c - the type names and their kinds (media_types.h).
 */
#include "serve/media_types.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum media_kind kind;
} names[] = {
    {"image/jpeg", MEDIA_KIND_IMAGE},
    {"image/jpg", MEDIA_KIND_IMAGE},
    {"image/png", MEDIA_KIND_IMAGE},
    {"application/x-image", MEDIA_KIND_IMAGE},
    {MEDIA_NPY, MEDIA_KIND_NPY},
    {"tensor/pt", MEDIA_KIND_NPY}, /* the SDK's TorchTensorSerializer/Deserializer: .npy bytes */
    {MEDIA_JSON, MEDIA_KIND_JSON},
    {MEDIA_JSONLINES, MEDIA_KIND_JSONLINES},
    {"application/jsonl", MEDIA_KIND_JSONLINES},
    {"application/x-jsonlines", MEDIA_KIND_JSONLINES},
    {"application/octet-stream", MEDIA_KIND_SNIFF},
    {"binary/octet-stream", MEDIA_KIND_SNIFF},
    {"file-path/raw-bytes", MEDIA_KIND_SNIFF}, /* the SDK's DataSerializer: a file's bytes */
};

enum media_kind media_kind_of(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncasecmp(s, names[i].name, len) == 0)
            return names[i].kind;
    return MEDIA_KIND_OTHER;
}

void media_type_bare(const char *raw, char *out, size_t len)
{
    size_t n = 0;
    while (*raw && isspace((unsigned char)*raw))
        raw++;
    for (; *raw && *raw != ';' && n + 1 < len; raw++)
        if (!isspace((unsigned char)*raw))
            out[n++] = (char)tolower((unsigned char)*raw);
    out[n] = '\0';
}
