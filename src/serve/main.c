/*
 * main.c - `serve`: what `docker run IMAGE serve` runs. Listens at once (so /ping can say
 * 503 while loading), loads the model from $OPT_ML/model (default /opt/ml/model) through the
 * handlers - the defaults, or a user's shared objects in code/ - warms it up, then says 200
 * to /ping.
 * SIGTERM: stop accepting, finish what is in flight, exit 0.
 *
 * Environment: SAGEMAKER_BIND_TO_PORT (8080), SAGEMAKER_MAX_PAYLOAD_IN_MB (6),
 * SAGEMAKER_BATCH_STRATEGY, SAGEMAKER_MAX_CONCURRENT_TRANSFORMS, SERVE_MAX_BATCH (32),
 * SERVE_BATCH_DELAY_MS (2), SERVE_MAX_INFLIGHT (4 x cores: requests decoding or predicting at
 * once; the rest wait), SERVE_REPLICAS (copies of the model, one batcher each: one per GPU, 1
 * on the CPU; replicas.h), SERVE_THREADS (libtorch threads per forward pass), SM_MODEL_ARCH and
 * SM_NUM_CLASSES (for a bare model.pth whose architecture should not be inferred),
 * SERVE_HEADER_TIMEOUT_S / SERVE_BODY_TIMEOUT_S (60: deadlines for a connection's request
 * headers and body, which trickled bytes do not extend).
 * SAGEMAKER_MULTI_MODEL=true: a multi-model endpoint instead (multi_model.h; budget
 * SERVE_MODEL_MEMORY_MB).
 * SM_MODEL_MEAN/STD/IMAGE_SIZE/RESIZE_SIZE/RESIZE_MODE (a bare model's preprocessing, see
 * model_dir.c), SERVE_RESPONSE_FORMAT (accept.h) and SERVE_URL_* (url_fetch.h).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve/accept.h"
#include "serve/batcher.h"
#include "serve/url_fetch.h"

#include "common/env.h"
#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"
#include "serve/model_archive.h"
#include "serve/multi_model.h"
#include "serve/server.h"

/* libmicrohttpd's fatal inconsistencies end the process; say which before it does. */
static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    log_error("libmicrohttpd panic at %s:%u: %s", file ? file : "?", line, reason ? reason : "");
    abort();
}

/* The PyTorch container's batching settings, which PyTorchModel(env={...}) users set:
 * SAGEMAKER_TS_BATCH_SIZE and SAGEMAKER_TS_MAX_BATCH_DELAY (milliseconds) stand for
 * SERVE_MAX_BATCH and SERVE_BATCH_DELAY_MS when those are not set, and the log says so.
 * TorchServe holds even a lone request for its delay; here the delay only bounds the wait for
 * requests already being decoded (a lone request never waits), capped at 1 s. */
static void torchserve_batching(struct server_config *c)
{
    if (env_given("SAGEMAKER_TS_BATCH_SIZE") && !env_given("SERVE_MAX_BATCH")) {
        c->max_batch = (int)env_long("SAGEMAKER_TS_BATCH_SIZE", c->max_batch, 1,
                                     BATCHER_MAX_BATCH_LIMIT);
        log_info("SAGEMAKER_TS_BATCH_SIZE (the PyTorch container's): up to %d images a batch",
                 c->max_batch);
    }
    if (env_given("SAGEMAKER_TS_MAX_BATCH_DELAY") && !env_given("SERVE_BATCH_DELAY_MS")) {
        long ms = env_long("SAGEMAKER_TS_MAX_BATCH_DELAY", c->batch_delay_us / 1000, 0, 86400000);
        ms = ms < 1000 ? ms : 1000;
        c->batch_delay_us = (int)ms * 1000;
        log_info("SAGEMAKER_TS_MAX_BATCH_DELAY (the PyTorch container's): a batch waits up to "
                 "%ld ms for requests already being decoded (a lone request never waits)",
                 ms);
    }
}

static void read_config(struct server_config *c)
{
    c->port = (int)env_long("SAGEMAKER_BIND_TO_PORT", 8080, 1, 65535);
    c->max_body_bytes = (size_t)env_long("SAGEMAKER_MAX_PAYLOAD_IN_MB", 6, 1, 100) << 20;
    c->max_concurrent_transforms = (int)env_long("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", 1, 1, 1000);
    const char *strategy = getenv("SAGEMAKER_BATCH_STRATEGY");
    snprintf(c->batch_strategy, sizeof c->batch_strategy, "%s",
             strategy && !strcmp(strategy, "SINGLE_RECORD") ? "SINGLE_RECORD" : "MULTI_RECORD");
    c->max_batch = batcher_max_batch_from_env();
    c->batch_delay_us = (int)env_long("SERVE_BATCH_DELAY_MS", 2, 0, 1000) * 1000;
    torchserve_batching(c);
    c->log_pings = getenv("SERVE_LOG_PINGS") != NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->max_inflight = (int)env_long("SERVE_MAX_INFLIGHT", cores > 0 ? 4 * cores : 8, 1, 4096);
    c->header_timeout_s = (int)env_long("SERVE_HEADER_TIMEOUT_S", 60, 1, 3600);
    c->body_timeout_s = (int)env_long("SERVE_BODY_TIMEOUT_S", 60, 1, 3600);
    const char *multi = getenv("SAGEMAKER_MULTI_MODEL");
    c->multi_model = multi && strcasecmp(multi, "true") == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* SageMaker passes "serve" */
    MHD_set_panic_func(mhd_panic, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Every thread made from here on inherits the mask; main alone takes the signals. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    static struct server srv;
    struct opt_ml paths;
    read_config(&srv.config);
    if (srv.config.multi_model)
        srv.answer_multi_model = multi_model_answer;
    long threads = env_long("SERVE_THREADS", 0, 0, 1024);
    bool threads_set = threads > 0;
    if (threads_set)
        tc_set_num_threads((int)threads);
    else
        threads = tc_get_num_threads();
    /* A GPU instance whose driver cannot start CUDA would otherwise serve on its CPU, 50-100x
     * slower, with nothing said: it stops here, with the driver's own error. */
    if (tc_cuda_devices_checked(NULL) < 0) {
        log_error("serve: %s", tc_last_error());
        return 1;
    }
    if (opt_ml_init(&paths) < 0 || server_start(&srv) < 0) {
        log_error("serve: %s", err_msg());
        return 1;
    }
    if (srv.config.multi_model)
        return multi_model_run(&srv, &stop);
    log_info("listening on port %d (payload limit %zu MiB); loading the model from %s",
             srv.config.port, srv.config.max_body_bytes >> 20, paths.model_dir);

    serve_default_handlers(&srv.handlers);
    struct sm_error err = {{0}};
    enum serve_shape shape;
    struct url_fetch_options url_options;
    int rc = 0, replicas = 1, gpus = tc_cuda_device_count();
    /* Settings read per request are checked once here, so that a typo stops the endpoint
     * at start instead of failing every request. */
    if (serve_shape_from_env(&shape, err.message, sizeof err.message) < 0 ||
        url_fetch_options_from_env(&url_options, err.message, sizeof err.message) < 0)
        rc = -1;
    else if ((rc = model_archive_prepare(paths.model_dir)) == 0)
        rc = serve_load_custom_handlers(paths.model_dir, &srv.handlers);
    if (rc == 0 && replicas_from_env(gpus, srv.handlers.predict_fn == serve_predict_fn, &replicas,
                                     err.message, sizeof err.message) < 0)
        rc = -1;
    if (rc == 0 && gpus == 0 && replicas > 1 && !threads_set) {
        /* libtorch's threads are per forward pass and the replicas run theirs at once: share
         * the cores among them rather than run replicas x cores threads. */
        threads = threads / replicas > 0 ? threads / replicas : 1;
        tc_set_num_threads((int)threads);
    }
    if (rc < 0 && !err.message[0])
        snprintf(err.message, sizeof err.message, "%s", err_msg());
    else if (rc == 0 && replica_set_load(&srv.replicas, replicas, &srv.handlers, paths.model_dir,
                                         srv.config.max_batch, srv.config.batch_delay_us, &err) < 0)
        rc = -1;
    if (rc < 0) {
        log_error("serve: cannot serve the model: %s", err.message);
        server_stop(&srv, 0);
        return 1;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const struct sm_context *ctx = &srv.replicas.r[0].ctx;
    const struct serve_model *sm = srv.replicas.r[0].owned;
    char devices[512];
    log_info("ready in %.2f s: %s, %d classes, %dx%d inputs; %d replica%s on %s (%ld libtorch "
             "thread%s per forward pass); batches of up to %d images",
             (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
             sm ? sm->arch : "custom model", ctx->num_classes, ctx->image_size, ctx->image_size,
             srv.replicas.n, srv.replicas.n > 1 ? "s" : "",
             replica_set_devices(&srv.replicas, devices, sizeof devices), threads,
             threads > 1 ? "s" : "", srv.config.max_batch);
    if (sm && sm->response_shape >= 0) {
        serve_shape_set_model_default(sm->response_shape);
        if (serve_shape_from_env(&shape, err.message, sizeof err.message) == 0 &&
            shape == (enum serve_shape)sm->response_shape && shape == SERVE_SHAPE_BUILTIN)
            log_info("answers in the built-in image-classification algorithm's shape (a flat list "
                     "of probabilities) by default: the model was trained with its "
                     "hyperparameters (metadata.json response_format); SERVE_RESPONSE_FORMAT="
                     "default gives this image's own answers");
    }
    if (shape == SERVE_SHAPE_PYTORCH && !getenv("SERVE_RESPONSE_FORMAT"))
        log_info("answers in the PyTorch container's shape (the logits, [[...]]) by default: "
                 "SAGEMAKER_PROGRAM=%.64s says the endpoint was deployed as a PyTorch model; "
                 "SERVE_RESPONSE_FORMAT=default gives this image's own answers",
                 getenv("SAGEMAKER_PROGRAM"));
    __atomic_store_n(&srv.ready, true, __ATOMIC_RELEASE);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("signal %d: draining requests in flight, then stopping", sig);
    server_stop(&srv, 25.0);
    replica_set_free(&srv.replicas);
    log_info("stopped");
    return 0;
}
