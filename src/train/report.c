/*
 * report.c - glue between the training loop and the report's writers (see report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "train/report.h"
#include "train/report_html.h"
#include "train/report_trace.h"

int report_start(struct train_job *job)
{
    if (job->report || job->layout.rank != 0 || !job->config.hp.training_report) return 0;
    struct train_report *r = calloc(1, sizeof *r);
    if (!r) return err_set("out of memory for the training report");
    if (step_profile_init(&r->prof, job->device, job->model, job->config.hp.grad_norm_interval,
                          job->config.hp.profile_steps_from, job->config.hp.profile_steps_to) < 0) {
        step_profile_free(&r->prof);
        free(r);
        return -1;
    }
    char dir[OPT_ML_PATH_MAX];
    if (opt_ml_join(dir, sizeof dir, job->config.paths.output_dir, "tensorboard") < 0 ||
        tb_open(&r->tb, dir, job->host) < 0) {
        log_warn("TensorBoard scalars will not be written: %s", err_msg());
        r->tb_failed = true;
    }
    job->report = r;
    return 0;
}

void report_free(struct train_job *job)
{
    struct train_report *r = job->report;
    if (!r) return;
    tb_close(&r->tb);
    step_profile_free(&r->prof);
    free(r);
    job->report = NULL;
}

struct step_profile *report_profile(struct train_job *job)
{
    return job->report ? &job->report->prof : NULL;
}

void report_eval_begin(struct train_job *job, const struct dataset *d)
{
    if (job->report && d == &job->val) thumbs_reset(&job->report->misses);
}

void report_eval_batch(struct train_job *job, const struct dataset *d, const struct batch *b,
                       const int64_t *pred)
{
    if (job->report && d == &job->val && job->report->misses.count < THUMB_MAX)
        thumbs_note(&job->report->misses, b, pred, job->config.image_size, job->config.mean,
                    job->config.std);
}

static void write_page(struct train_job *job, const char *status)
{
    char path[OPT_ML_PATH_MAX];
    if (opt_ml_mkdirs(job->config.paths.output_data_dir) < 0 ||
        opt_ml_join(path, sizeof path, job->config.paths.output_data_dir, "report.html") < 0 ||
        report_html_write(job, &job->report->prof, &job->report->misses, status, path) < 0)
        log_warn("report.html not written: %s", err_msg());
}

static void write_trace(struct train_job *job)
{
    struct train_report *r = job->report;
    if (r->trace_written || r->prof.trace_count == 0) return;
    char path[OPT_ML_PATH_MAX];
    if (opt_ml_mkdirs(job->config.paths.output_data_dir) < 0 ||
        opt_ml_join(path, sizeof path, job->config.paths.output_data_dir, "trace.json") < 0 ||
        trace_write(&r->prof, job->layout.rank, path) < 0) {
        log_warn("trace.json not written: %s", err_msg());
        return;
    }
    /* Done once every traced step has run; until then it is rewritten each epoch. */
    r->trace_written = r->prof.step >= r->prof.trace_to;
    log_info("trace of steps %lld-%lld in %s (open it in https://ui.perfetto.dev)",
             (long long)r->prof.trace_from, (long long)r->prof.trace_to, path);
}

static void write_scalars(struct train_job *job)
{
    struct train_report *r = job->report;
    const struct epoch_metrics *m =
        job->progress.history_count ? &job->progress.history[job->progress.history_count - 1]
                                    : NULL;
    const struct prof_epoch *e = prof_last_epoch(&r->prof);
    if (!m || r->tb_failed) return;
    int64_t s = m->epoch;
    struct tb_writer *tb = &r->tb;
    tb_scalar(tb, "loss/train", s, m->train_loss);
    tb_scalar(tb, "loss/validation", s, m->val_loss);
    tb_scalar(tb, "accuracy/train", s, m->train_acc);
    tb_scalar(tb, "accuracy/validation", s, m->val_acc);
    tb_scalar(tb, "learning_rate", s, m->lr);
    tb_scalar(tb, "throughput/images_per_sec", s, m->images_per_sec);
    tb_scalar(tb, "time/epoch_seconds", s, m->seconds);
    if (e && e->epoch == m->epoch) {
        double steps = e->steps > 0 ? (double)e->steps : 1;
        for (int ph = 0; ph < PROF_PHASES; ph++) {
            char tag[64];
            bool per_step = ph < PROF_CHECKPOINT;
            double v =
                r->prof.timer && (ph == PROF_FORWARD || ph == PROF_BACKWARD || ph == PROF_OPTIMIZER)
                    ? e->device_s[ph]
                    : e->phase_s[ph];
            snprintf(tag, sizeof tag, "%s/%s", per_step ? "step_ms" : "epoch_seconds",
                     prof_phase_name((enum prof_phase)ph));
            for (char *c = tag; *c; c++)
                *c = *c == ' ' ? '_' : *c;
            tb_scalar(tb, tag, s, per_step ? 1000 * v / steps : v);
        }
        tb_scalar(tb, "system/cpu_percent", s, e->cpu_percent);
        tb_scalar(tb, "system/rss_mb", s, e->rss_mb);
        if (e->gpu_busy_percent >= 0) {
            tb_scalar(tb, "system/gpu_busy_percent", s, e->gpu_busy_percent);
            tb_scalar(tb, "system/gpu_memory_mb", s, e->gpu_mem_mb);
        }
        if (e->grad_samples) {
            tb_scalar(tb, "gradient_norm/total", s, e->grad_norm_total);
            tb_scalar(tb, "gradient_norm/smallest_layer", s, e->grad_norm_min_layer);
            tb_scalar(tb, "gradient_norm/largest_layer", s, e->grad_norm_max_layer);
            for (size_t i = 0; i < r->prof.layers && i < 64; i++) {
                char tag[128];
                snprintf(tag, sizeof tag, "gradient_norm_layer/%s", r->prof.names[i]);
                tb_scalar(tb, tag, s, r->prof.norms[i]);
            }
        }
    }
    tb_flush(tb);
    r->tb_failed = tb->f == NULL;
}

/* On a GPU, one log line per epoch of where a step's time went (device time for the work
 * the host only queues), for whoever reads the log rather than the report. */
static void log_step_times(const struct train_report *r)
{
    const struct prof_epoch *e = prof_last_epoch(&r->prof);
    if (!r->prof.timer || !e || e->steps < 1)
        return;
    double ms = 1000.0 / (double)e->steps;
    log_info("epoch %d, per step: data wait %.2f ms, forward %.2f ms, backward %.2f ms, "
             "optimizer %.2f ms (GPU time), sync %.2f ms; GPU busy %.0f%%",
             e->epoch, ms * e->phase_s[PROF_DATA], ms * e->device_s[PROF_FORWARD],
             ms * e->device_s[PROF_BACKWARD], ms * e->device_s[PROF_OPTIMIZER],
             ms * e->phase_s[PROF_SYNC], e->gpu_busy_percent);
}

void report_epoch_done(struct train_job *job)
{
    if (!job->report) return;
    double t0 = clock_now_s();
    log_step_times(job->report);
    write_scalars(job);
    write_trace(job);
    char status[64];
    snprintf(status, sizeof status, "running (epoch %d of %d done)", job->progress.history_count,
             job->config.hp.epochs);
    write_page(job, status);
    job->report->write_s += clock_now_s() - t0;
}

void report_finish(struct train_job *job, const char *status)
{
    struct train_report *r = job->report;
    if (!r)
        return;
    double t0 = clock_now_s();
    write_trace(job);
    write_page(job, status);
    r->write_s += clock_now_s() - t0;
    double overhead = 0, loop = 0;
    for (int i = 0; i < r->prof.epoch_count; i++) {
        overhead += r->prof.epochs[i].overhead_s;
        loop += r->prof.epochs[i].train_wall_s;
    }
    char path[OPT_ML_PATH_MAX];
    if (opt_ml_join(path, sizeof path, job->config.paths.output_data_dir, "report.html") == 0)
        log_info("training report: %s (profiler: %.3f%% of the training loop; writing the report "
                 "and scalars: %.0f ms in all)",
                 path, loop > 0 ? 100 * overhead / loop : 0, 1000 * r->write_s);
    tb_close(&job->report->tb);
    job->report->tb_failed = true;
}
