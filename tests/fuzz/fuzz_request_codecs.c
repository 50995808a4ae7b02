/*
 * fuzz_request_codecs.c - libFuzzer target: the request codecs of serve (NPY, JSON pixels,
 * base64 images in JSON, JSON Lines, raw or base64 images, untyped bodies told by their bytes;
 * {"url"} bodies with fetching turned off) through serve_input_fn, the Accept check (q-values, format= and verbose= parameters), and
 * the answer formats (ours, the built-in algorithm's, the PyTorch container's) through
 * serve_output_fn with the custom attributes (top_k,
 * threshold) taken from the input.
 * Input: byte 0 picks the Content-Type, byte 1 the Accept, byte 2 the length of the custom
 * attributes that follow; the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "serve/serve.h"

static const char *const types[] = {"application/x-npy", "application/json",
                                    "application/jsonlines", "application/x-image",
                                    "image/png", "image/jpeg", "text/csv", "",
                                    "application/octet-stream"};
static const char *const accepts[] = {"application/json", "application/x-npy",
                                      "application/jsonlines", "*/*", "",
                                      "application/json;verbose", "text/csv",
                                      "application/json; format=builtin",
                                      "application/jsonlines; verbose=true; format=builtin",
                                      "application/json; format=pytorch",
                                      "application/x-npy;q=0.1, application/json;q=0.9"};

/* {"url": ...} bodies must never reach the network from a fuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("SERVE_URL_FETCH", "0", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 3)
        return 0;
    const char *type = types[data[0] % (sizeof types / sizeof *types)];
    const char *accept = accepts[data[1] % (sizeof accepts / sizeof *accepts)];
    size_t attr_len = data[2] % 32;
    data += 3;
    len -= 3;
    if (attr_len > len)
        attr_len = len;
    char *attributes = fuzz_cstring(data, attr_len);
    data += attr_len;
    len -= attr_len;

    static const char *const names[] = {"cat", "dog", "bird"};
    struct sm_context ctx = {.class_names = names, .num_classes = 3, .image_size = 8,
                             .resize_size = 10, .mean = {0.5f, 0.5f, 0.5f},
                             .std = {0.25f, 0.25f, 0.25f}};
    struct sm_request req = {data, len, type, accept, attributes};
    struct sm_error err = {{0}};
    struct sm_batch batch = {0};
    char *accept_copy = fuzz_cstring(data, len < 256 ? len : 256);
    (void)serve_accept_supported(accept_copy);
    free(accept_copy);
    if (serve_input_fn(&ctx, &req, &batch, &err) == 0 && serve_accept_supported(accept)) {
        struct sm_scores scores = {0};
        scores.n = batch.n;
        scores.k = 3;
        scores.probs = calloc((size_t)batch.n * 3 + 1, sizeof(float));
        scores.logits = calloc((size_t)batch.n * 3 + 1, sizeof(float));
        for (int64_t i = 0; scores.probs && scores.logits && i < batch.n * 3; i++) {
            scores.probs[i] = (float)((i % 3) + 1) / 6.0f;
            scores.logits[i] = (float)(i % 3) - 1.0f;
        }
        scores.records = batch.records;
        scores.n_records = batch.records ? batch.n_records : 0;
        struct sm_response resp = {0};
        if (scores.probs && scores.logits)
            (void)serve_output_fn(&ctx, &scores, &req, &resp, &err);
        free(resp.body);
        free(scores.probs);
        free(scores.logits);
    }
    free(batch.data);
    free(batch.records);
    free(attributes);
    return 0;
}
