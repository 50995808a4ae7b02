/*
 * test_serve_threads.c - the serve side's own threads under ThreadSanitizer: libmicrohttpd's
 * event loops, the request workers (suspend, queue, resume), the connection reaper, the choice
 * among two replicas and their batchers, driven by real HTTP clients on loopback. The handlers
 * are small C functions (a "model" that sums pixels), so that no uninstrumented libtorch code
 * runs; every answer is checked against the sum its request should give.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "serve/server.h"

static int failures;

/* The batcher assembles batches in torchc's host buffers; libtorch is not in this build, so
 * ordinary memory stands in for them (what they are on a CPU-only host). */
void *tc_host_alloc(size_t bytes, bool pinned)
{
    (void)pinned;
    return malloc(bytes ? bytes : 1);
}
void tc_host_free(void *p)
{
    free(p);
}
const char *tc_last_error(void)
{
    return "out of memory";
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                                \
        }                                                                                      \
    } while (0)

/* The body is a decimal number v: one 1x1 "image" whose three pixels are v. */
static int input_fn(const struct sm_context *ctx, const struct sm_request *req,
                    struct sm_batch *out, struct sm_error *err)
{
    (void)ctx;
    char text[32] = {0};
    memcpy(text, req->body, req->body_len < 31 ? req->body_len : 31);
    out->data = malloc(3 * sizeof(float));
    if (!out->data) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return 500;
    }
    float v = strtof(text, NULL);
    out->data[0] = out->data[1] = out->data[2] = v;
    out->n = out->height = out->width = 1;
    return 0;
}

static int predict_fn(const struct sm_context *ctx, const struct sm_batch *in,
                      struct sm_scores *out, struct sm_error *err)
{
    (void)ctx;
    (void)err;
    out->n = in->n;
    out->k = 1;
    out->probs = malloc((size_t)in->n * sizeof(float));
    for (int64_t i = 0; out->probs && i < in->n; i++)
        out->probs[i] = in->data[3 * i] + in->data[3 * i + 1] + in->data[3 * i + 2];
    return out->probs ? 0 : 500;
}

static int output_fn(const struct sm_context *ctx, const struct sm_scores *scores,
                     const struct sm_request *req, struct sm_response *out, struct sm_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    char *text = malloc(32);
    if (!text)
        return 500;
    out->len = (size_t)snprintf(text, 32, "%.0f", scores->probs[0]);
    out->body = (uint8_t *)text;
    snprintf(out->content_type, sizeof out->content_type, "text/plain");
    return 0;
}

static int port;

/* One HTTP/1.1 exchange on a fresh connection; the status, and the body in body. */
static int http(const char *method, const char *path, const char *payload, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, payload ? strlen(payload) : 0, payload ? payload : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char resp[4096];
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof resp && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

static void *client(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < 40; i++) {
        char payload[32], body[256], want[32];
        int v = k * 1000 + i;
        snprintf(payload, sizeof payload, "%d", v);
        snprintf(want, sizeof want, "%d", 3 * v);
        int status = http("POST", "/invocations", payload, body, sizeof body);
        CHECK(status == 200 && strcmp(body, want) == 0, "client %d: %d \"%s\", want 200 \"%s\"", k,
              status, body, want);
        if (i % 8 == 0) {
            status = http("GET", "/ping", NULL, body, sizeof body);
            CHECK(status == 200, "ping: %d", status);
        }
    }
    return NULL;
}

int main(void)
{
    static struct server srv;
    srv.config = (struct server_config){.max_body_bytes = 1 << 20, .max_concurrent_transforms = 1,
                                        .batch_strategy = "MULTI_RECORD", .max_batch = 8,
                                        .batch_delay_us = 500, .max_inflight = 4,
                                        .header_timeout_s = 5, .body_timeout_s = 5};
    srv.handlers = (struct sm_handlers){NULL, input_fn, predict_fn, output_fn};
    /* A free port: bind 0, read it back, release it for the server. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(probe, (struct sockaddr *)&a, sizeof a);
    getsockname(probe, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(probe);
    srv.config.port = port;
    /* Two replicas; the second stages even a lone request (as on a GPU). */
    static struct replica replicas[2];
    srv.replicas = (struct replica_set){2, replicas, 0};
    for (int i = 0; i < 2; i++) {
        snprintf(replicas[i].device, sizeof replicas[i].device, "test:%d", i);
        if (batcher_start(&replicas[i].batcher, &replicas[i].ctx, predict_fn, srv.config.max_batch,
                          srv.config.batch_delay_us, i == 1) < 0) {
            fprintf(stderr, "FAIL: %s\n", err_msg());
            return 1;
        }
    }
    if (server_start(&srv) < 0) {
        fprintf(stderr, "FAIL: %s\n", err_msg());
        return 1;
    }
    __atomic_store_n(&srv.ready, true, __ATOMIC_RELEASE);
    pthread_t t[12];
    for (int k = 0; k < 12; k++)
        pthread_create(&t[k], NULL, client, (void *)(intptr_t)k);
    for (int k = 0; k < 12; k++)
        pthread_join(t[k], NULL);
    server_stop(&srv, 5.0);
    replica_set_stop(&srv.replicas);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("serve threads: 480 invocations and 60 pings answered correctly\n");
    return 0;
}
