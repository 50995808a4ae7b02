/*
 * trainer.c - the epoch loop: train, validate, log the metric line, keep the best model,
 * checkpoint, stop early; and the evaluation pass shared by validation and test.
 *
 * The metric lines (stdout) are the stable interface tuning jobs parse; README.md lists
 * regexes for them and tests/python/test_train.py (metric_definitions) applies exactly those:
 *   epoch=2/10 train_loss=0.6931 train_acc=0.5012 val_loss=0.6802 val_acc=0.5600 lr=0.01 images_per_sec=812.3 epoch_time_s=3.1
 *   test_loss=0.4102 test_acc=0.8750
 * and with top_k=K: epoch=2/10 val_top_K_acc=0.9900 (and test_top_K_acc=... at the end).
 */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "data/loader.h"
#include "train/batch_feed.h"
#include "train/artifacts.h"
#include "train/checkpoint.h"
#include "train/device_metrics.h"
#include "train/distributed.h"
#include "train/job.h"
#include "train/report.h"

double trainer_lr_at(const struct hyperparams *hp, double epoch)
{
    double warm = hp->warmup_epochs;
    if (epoch < warm)
        return hp->lr * (epoch + 1e-3) / warm;
    switch (hp->lr_scheduler) {
    case LR_SCHEDULE_STEP:
        return hp->lr * pow(hp->lr_gamma, floor(epoch / hp->lr_step_size));
    case LR_SCHEDULE_MULTISTEP: {
        /* "10,20": lr x factor after the 10th epoch and again after the 20th (0-based epochs
         * 10 and 20 start lower), as the built-in algorithm's lr_scheduler_step. */
        int passed = 0;
        for (int i = 0; i < hp->lr_step_count; i++)
            passed += epoch >= hp->lr_steps[i];
        return hp->lr * pow(hp->lr_gamma, passed);
    }
    case LR_SCHEDULE_COSINE: {
        double span = hp->epochs - warm;
        double t = span > 0 ? (epoch - warm) / span : 1.0;
        return 0.5 * hp->lr * (1.0 + cos(M_PI * (t > 1 ? 1 : t)));
    }
    default:
        return hp->lr;
    }
}

static tc_tensor *forward(struct train_job *job, const tc_tensor *x, bool training)
{
    if (!job->config.amp)
        return model_forward(job->model, x, training);
    enum tc_device_type dev = job->device.type;
    if (tc_autocast_begin(dev, TC_BFLOAT16) < 0)
        return NULL;
    tc_tensor *logits = model_forward(job->model, x, training);
    tc_autocast_end(dev);
    return tc_to_dtype(logits, TC_FLOAT32);
}

void eval_result_free(struct eval_result *r)
{
    free(r->per_class_total);
    free(r->per_class_correct);
    free(r->confusion);
    memset(r, 0, sizeof *r);
}

/* Each rank evaluated its own shard: sum the counts so that every rank has the totals. */
static int reduce_eval(struct train_job *job, struct eval_result *r, double *loss_sum)
{
    if (job->layout.world_size <= 1)
        return 0;
    size_t k = (size_t)r->num_classes, n = 3 + 2 * k + (r->confusion ? k * k : 0);
    double *v = malloc(n * sizeof *v);
    if (!v)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory for evaluation");
    v[0] = *loss_sum;
    v[1] = (double)r->count;
    for (size_t i = 0; i < k; i++) {
        v[2 + i] = (double)r->per_class_total[i];
        v[2 + k + i] = (double)r->per_class_correct[i];
    }
    for (size_t i = 0; r->confusion && i < k * k; i++)
        v[2 + 2 * k + i] = (double)r->confusion[i];
    v[n - 1] = r->top_k_accuracy; /* the count of top-k hits until the end of evaluate */
    int rc = distributed_sum(job, v, n);
    if (rc == 0) {
        *loss_sum = v[0];
        r->count = (size_t)v[1];
        for (size_t i = 0; i < k; i++) {
            r->per_class_total[i] = (int64_t)v[2 + i];
            r->per_class_correct[i] = (int64_t)v[2 + k + i];
        }
        for (size_t i = 0; r->confusion && i < k * k; i++)
            r->confusion[i] = (int64_t)v[2 + 2 * k + i];
        r->top_k_accuracy = v[n - 1];
    }
    free(v);
    return rc;
}

int trainer_evaluate(struct train_job *job, const struct dataset *d, struct eval_result *out)
{
    eval_result_free(out);
    report_eval_begin(job, d);
    int k = job->model->num_classes;
    out->num_classes = k;
    out->per_class_total = calloc((size_t)k, sizeof(int64_t));
    out->per_class_correct = calloc((size_t)k, sizeof(int64_t));
    if (k <= CONFUSION_MAX_CLASSES)
        out->confusion = calloc((size_t)k * (size_t)k, sizeof(int64_t));
    int top_k = job->config.hp.top_k;
    int64_t *pred = malloc((size_t)job->config.hp.batch_size * sizeof *pred);
    if (!out->per_class_total || !out->per_class_correct || !pred ||
        (k <= CONFUSION_MAX_CLASSES && !out->confusion)) {
        free(pred);
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY, "out of memory for evaluation");
    }
    struct batch_feed *feed;
    if (distributed_sync_buffers(job) < 0 || batch_feed_start(&feed, job, d, false, 0, 0) < 0) {
        free(pred);
        return -1;
    }
    bool grad_was = tc_set_grad_enabled(false);
    /* The loss sum (float64, added in the order and precision the host would use) and the
     * top-k hits stay on the device until the end: the one read-back a batch is the
     * predictions, which the per-class counts and the report need. */
    tc_tensor *loss_acc = tc_own(tc_scalar_tensor(0.0, TC_FLOAT64, job->device));
    tc_tensor *hits_acc = tc_own(tc_scalar_tensor(0.0, TC_INT64, job->device));
    double loss_sum = 0;
    int rc = loss_acc && hits_acc ? 0 : err_set("evaluating: %s", tc_last_error());
    struct fed_batch fb;
    int got = 0;
    while (rc == 0 && (got = batch_feed_next(feed, &fb)) > 0) {
        const struct batch *b = fb.host;
        if (b->n > 0) {
            tc_scope *s = tc_scope_begin();
            tc_tensor *x, *y;
            rc = batch_feed_tensors(feed, &fb, &x, &y);
            tc_tensor *logits = rc < 0 ? NULL : forward(job, x, false);
            tc_tensor *loss = tc_mul_scalar(tc_to_dtype(tc_cross_entropy(logits, y, 0.0), TC_FLOAT64), b->n);
            tc_tensor *top_values, *top_indices = NULL;
            int64_t column[2] = {b->n, 1};
            if (rc < 0) {
                /* the feed's message stands */
            } else if (!tc_add_(loss_acc, loss) ||
                (top_k > 1 && (tc_topk(logits, top_k, 1, &top_values, &top_indices) < 0 ||
                               !tc_add_(hits_acc, tc_sum(tc_eq(top_indices, tc_reshape(y, column, 2))))))) {
                rc = err_set("evaluating: %s", tc_last_error());
            }
            if (rc == 0 && tc_to_data(tc_argmax(logits, 1), pred, (size_t)b->n * sizeof *pred) < 0) {
                rc = err_set("evaluating: %s", tc_last_error());
            } else if (rc == 0) {
                report_eval_batch(job, d, b, pred);
                for (int i = 0; i < b->n; i++) {
                    int64_t t = b->labels[i], p = pred[i];
                    out->per_class_total[t]++;
                    out->per_class_correct[t] += t == p;
                    if (out->confusion)
                        out->confusion[t * k + p]++;
                }
                out->count += (size_t)b->n;
            }
            tc_scope_end(s);
        }
        if (batch_feed_done(feed, &fb) < 0 && rc == 0)
            rc = -1;
    }
    if (rc == 0 && got < 0)
        rc = -1;
    tc_set_grad_enabled(grad_was);
    int64_t hits = 0;
    if (rc == 0 && (tc_item_double(loss_acc, &loss_sum) < 0 || tc_item_int64(hits_acc, &hits) < 0))
        rc = err_set("evaluating: %s", tc_last_error());
    out->top_k_accuracy = (double)hits; /* a count until the end */
    tc_free(loss_acc);
    tc_free(hits_acc);
    struct loader_stats stats = {0};
    batch_feed_stop(feed, &stats);
    job->skipped_images += stats.skipped;
    free(pred);
    if (rc == 0)
        rc = reduce_eval(job, out, &loss_sum);
    if (rc == 0 && out->count == 0)
        rc = err_set_reason(ERR_REASON_DATA, "no image of %s could be read (first error: %s)",
                            d->dir, stats.first_bad[0]);
    if (rc < 0)
        return rc;
    int64_t correct = 0;
    for (int i = 0; i < k; i++)
        correct += out->per_class_correct[i];
    out->loss = loss_sum / (double)out->count;
    out->accuracy = (double)correct / (double)out->count;
    out->top_k_accuracy /= (double)out->count;
    return 0;
}

static void report_skipped(const struct loader_stats *s, const char *what)
{
    if (!s->skipped)
        return;
    log_warn("%s: skipped %zu unreadable image(s); first: %s%s%s%s%s", what, s->skipped,
             s->first_bad[0], s->skipped > 1 ? "; " : "", s->skipped > 1 ? s->first_bad[1] : "",
             s->skipped > 2 ? "; " : "", s->skipped > 2 ? s->first_bad[2] : "");
}

/* One training epoch from job->progress.next_batch. Returns TRAINER_STOPPED if stopped by a
 * signal. */
/* A job with the built-in algorithm's hyperparameters (num_training_samples is required
 * there and nowhere else) also logs each epoch as the built-in's MXNet does, 0-based: metric
 * definitions copied from a built-in job ("Validation-accuracy=(\S+)") keep working. */
static void log_builtin_epoch(const struct epoch_metrics *m, int top_k, double val_top_k)
{
    log_metric("Epoch[%d] Train-accuracy=%f", m->epoch - 1, m->train_acc);
    log_metric("Epoch[%d] Time cost=%.3f", m->epoch - 1, m->seconds);
    log_metric("Epoch[%d] Validation-accuracy=%f", m->epoch - 1, m->val_acc);
    if (top_k > 1)
        log_metric("Epoch[%d] Validation-top_k_accuracy_%d=%f", m->epoch - 1, top_k, val_top_k);
}

static int train_epoch(struct train_job *job, int epoch, double *images_per_sec)
{
    struct train_progress *p = &job->progress;
    size_t batches = batch_feed_batch_count(job, &job->train, true);
    struct batch_feed *feed;
    if (batch_feed_start(&feed, job, &job->train, true, epoch, p->next_batch) < 0)
        return -1;
    struct step_profile *prof = report_profile(job); /* NULL: no profiling on this rank */
    prof_epoch_begin(prof, epoch + 1);
    double start = clock_now_s(), last_report = start;
    int64_t waits_before = tc_device_waits();
    size_t images = 0, steps = 0;
    int rc = 0, got;
    bool stop, skip, peer_failed = false;
    struct fed_batch fb;
    struct device_metrics dm;
    if (device_metrics_start(&dm, &job->progress, job->device) < 0)
        rc = -1;
    double read_loss_sum = p->partial_loss_sum; /* what the report has seen of the sums */
    size_t unread_images = 0;
    while (rc == 0 && (got = batch_feed_next(feed, &fb)) > 0) {
        const struct batch *b = fb.host;
        prof_step_begin(prof, (int64_t)((size_t)epoch * batches + b->index));
        /* Batch norm cannot train on one image; with several ranks, none trains then. */
        if (distributed_agree(job, *job->stop_requested, b->n > 1, &stop, &skip) < 0 || stop) {
            rc = stop ? TRAINER_STOPPED : -1;
            peer_failed = rc < 0;
            batch_feed_done(feed, &fb);
            break;
        }
        prof_lap(prof, PROF_SYNC);
        double lr = trainer_lr_at(&job->config.hp, epoch + (double)b->index / (double)batches);
        tc_optimizer_set_lr(job->optimizer, -1, lr);
        if (!skip) {
            tc_scope *s = tc_scope_begin();
            tc_tensor *x = NULL, *y = NULL;
            tc_tensor *logits = tc_optimizer_zero_grad(job->optimizer) < 0 ||
                                        batch_feed_tensors(feed, &fb, &x, &y) < 0 ||
                                        distributed_sync_buffers(job) < 0
                                    ? NULL
                                    : forward(job, x, true);
            tc_tensor *loss = job->class_weights
                                  ? tc_cross_entropy_weighted(logits, y, job->class_weights,
                                                              job->config.hp.label_smoothing)
                                  : tc_cross_entropy(logits, y, job->config.hp.label_smoothing);
            prof_lap(prof, PROF_FORWARD);
            /* (prof_lap(), next) marks a phase boundary inside the chain of steps. */
            if (!loss || distributed_before_backward(job) < 0 || tc_backward(loss) < 0 ||
                (prof_lap(prof, PROF_BACKWARD), tc_optimizer_step(job->optimizer) < 0) ||
                (prof_lap(prof, PROF_OPTIMIZER), device_metrics_add(&dm, loss, logits, y, b->n) < 0) ||
                (dm.pending >= dm.every && device_metrics_flush(&dm, &job->progress) < 0))
                rc = err_set("training step %zu of epoch %d: %s", b->index, epoch + 1, tc_last_error());
            else if (dm.pending == 0 && !isfinite(p->partial_loss_sum))
                rc = err_set_reason(ERR_REASON_DIVERGED,
                                    "the loss became %g by step %zu of epoch %d: lower lr (now %g)",
                             p->partial_loss_sum, b->index, epoch + 1, lr);
            /* The report sees the mean loss of the steps just read back (each step on the CPU,
             * every dm.every steps on a GPU), never a read-back of its own. */
            unread_images += (size_t)b->n;
            if (dm.pending == 0 && unread_images > 0) {
                double mean = (p->partial_loss_sum - read_loss_sum) / (double)unread_images;
                read_loss_sum = p->partial_loss_sum;
                unread_images = 0;
                prof_step_end(prof, &mean);
            } else if (rc == 0) {
                prof_step_end(prof, NULL);
            }
            p->partial_seen += b->n;
            images += (size_t)b->n;
            steps++;
            tc_scope_end(s);
        }
        p->next_batch = b->index + 1;
        if (batch_feed_done(feed, &fb) < 0 && rc == 0)
            rc = -1;
        double t = clock_now_s();
        if (rc == 0 && t - last_report >= 15.0 && p->next_batch < batches) {
            double rate = (double)images / (t - start);
            log_info("epoch %d/%d: batch %zu/%zu, %.1f images/s, about %.0f s left in the epoch",
                     epoch + 1, job->config.hp.epochs, p->next_batch, batches, rate,
                     (double)(batches - p->next_batch) * job->config.hp.batch_size / rate);
            last_report = t;
        }
        prof_lap(prof, PROF_OTHER);
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc >= 0 && device_metrics_flush(&dm, &job->progress) < 0)
        rc = err_set("reading the epoch's metrics back: %s", tc_last_error());
    else if (rc >= 0 && !isfinite(p->partial_loss_sum))
        rc = err_set_reason(ERR_REASON_DIVERGED, "the loss became %g in epoch %d: lower lr",
                            p->partial_loss_sum, epoch + 1);
    device_metrics_free(&dm);
    /* Every rank ends the epoch with one more agreement: a rank that failed in its last step
     * meets the others there (or at their next step's) and tells them. */
    if (rc < 0 && !peer_failed)
        distributed_report_failure(job);
    else if (rc == 0 && distributed_agree(job, false, true, &stop, &skip) < 0)
        rc = -1;
    struct loader_stats stats = {0};
    batch_feed_stop(feed, &stats);
    job->skipped_images += stats.skipped;
    report_skipped(&stats, "train");
    double elapsed = clock_now_s() - start;
    /* The job's rate: every rank trains on equally many (padded) samples per epoch. */
    *images_per_sec = elapsed > 0 ? (double)images * job->layout.world_size / elapsed : 0;
    prof_epoch_end(prof, *images_per_sec);
    /* On a GPU: how often the host stopped to wait for it (read-backs, a copy not yet done). */
    int64_t waits = tc_device_waits() - waits_before;
    if (job->device.type == TC_CUDA && steps > 0)
        log_info("epoch %d: the host waited for the GPU %lld times in %zu steps (%.3f a step)",
                 epoch + 1, (long long)waits, steps, (double)waits / (double)steps);
    if (rc == 0 && p->partial_seen == 0 && job->layout.world_size == 1) /* ranks: after the sum */
        rc = err_set_reason(ERR_REASON_DATA, "no training image could be read (first error: %s)",
                            stats.first_bad[0]);
    return rc;
}

/* The epoch's running sums over every rank. For a checkpoint taken mid-epoch only rank 0
 * keeps them (the others restart from zero), so that the resumed epoch adds up once. */
static int gather_partial_sums(struct train_job *job, bool rank0_only)
{
    struct train_progress *p = &job->progress;
    if (job->layout.world_size <= 1)
        return 0;
    double v[3] = {p->partial_loss_sum, p->partial_correct, p->partial_seen};
    if (distributed_sum(job, v, 3) < 0)
        return -1;
    bool keep = !rank0_only || job->layout.rank == 0;
    p->partial_loss_sum = keep ? v[0] : 0;
    p->partial_correct = keep ? v[1] : 0;
    p->partial_seen = keep ? v[2] : 0;
    return 0;
}

int trainer_run(struct train_job *job)
{
    struct train_progress *p = &job->progress;
    const struct hyperparams *hp = &job->config.hp;
    if (report_start(job) < 0)
        return -1;
    while (p->next_epoch < hp->epochs) {
        int epoch = p->next_epoch;
        double t0 = clock_now_s(), rate = 0;
        int rc = train_epoch(job, epoch, &rate);
        if (rc == TRAINER_STOPPED &&
            (gather_partial_sums(job, true) < 0 || checkpoint_save(job) < 0))
            return -1;
        if (rc != 0)
            return rc;
        if (gather_partial_sums(job, false) < 0)
            return -1;
        if (p->partial_seen == 0)
            return err_set_reason(ERR_REASON_DATA,
                                  "no training image could be read by any process");
        struct epoch_metrics m = {
            .epoch = epoch + 1,
            .train_loss = p->partial_loss_sum / p->partial_seen,
            .train_acc = p->partial_correct / p->partial_seen,
            .lr = tc_optimizer_get_lr(job->optimizer, 0),
            .images_per_sec = rate,
        };
        double t_eval = clock_now_s();
        if (trainer_evaluate(job, &job->val, &job->final_val) < 0)
            return err_prefix("validation after epoch %d: ", epoch + 1);
        prof_add(report_profile(job), PROF_EVAL, clock_now_s() - t_eval);
        m.val_loss = job->final_val.loss;
        m.val_acc = job->final_val.accuracy;
        m.seconds = clock_now_s() - t0;
        log_metric("epoch=%d/%d train_loss=%.4f train_acc=%.4f val_loss=%.4f val_acc=%.4f lr=%.6g "
                   "images_per_sec=%.1f epoch_time_s=%.1f",
                   m.epoch, hp->epochs, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.lr,
                   m.images_per_sec, m.seconds);
        if (hp->top_k > 1)
            log_metric("epoch=%d/%d val_top_%d_acc=%.4f", m.epoch, hp->epochs, hp->top_k,
                       job->final_val.top_k_accuracy);
        if (hyperparams_given(hp, "num_training_samples"))
            log_builtin_epoch(&m, hp->top_k, job->final_val.top_k_accuracy);
        if (progress_history_add(&job->progress, &m) < 0)
            return -1;

        /* Early stopping counts an epoch as better when its gain over the best so far is more
         * than early_stopping_tolerance relative to that best (the built-in algorithm's rule). */
        double best = p->best_val_acc;
        bool improved = p->best_epoch == 0 ||
                        (m.val_acc - best) > hp->early_stopping_tolerance * fmax(best, 1e-12);
        if (hp->early_stopping_tolerance == 0)
            improved = p->best_epoch == 0 || m.val_acc > best;
        p->epochs_without_improvement = improved ? 0 : p->epochs_without_improvement + 1;
        if (p->best_epoch == 0 || m.val_acc > p->best_val_acc) {
            p->best_epoch = m.epoch;
            p->best_val_acc = m.val_acc;
            double t_save = clock_now_s();
            if (job->layout.rank == 0 && artifacts_save_best_model(job) < 0) {
                /* The peers are on their way to this epoch's last agreement: they learn of
                 * it there (peer_failed) instead of at a broken connection. */
                err_default_reason(ERR_REASON_IO);
                distributed_report_failure(job);
                return -1;
            }
            prof_add(report_profile(job), PROF_CHECKPOINT, clock_now_s() - t_save);
        }
        p->next_epoch = epoch + 1;
        p->next_batch = 0;
        p->partial_loss_sum = p->partial_correct = p->partial_seen = 0;
        bool stop_early = hp->early_stopping_patience > 0 &&
                          p->epochs_without_improvement >= hp->early_stopping_patience &&
                          m.epoch >= hp->early_stopping_min_epochs;
        if (stop_early) {
            log_info("early stopping at epoch %d: no better validation accuracy for %d epochs "
                     "(best %.4f at epoch %d)",
                     m.epoch, p->epochs_without_improvement, p->best_val_acc, p->best_epoch);
            p->next_epoch = hp->epochs;
        }
        bool stop, unused;
        bool checkpoint_now = stop_early || p->next_epoch >= hp->epochs ||
                              m.epoch % hp->checkpoint_frequency == 0;
        double t_checkpoint = clock_now_s();
        if (checkpoint_now && checkpoint_save(job) < 0) {
            distributed_report_failure(job); /* as above */
            return -1;
        }
        prof_add(report_profile(job), PROF_CHECKPOINT, clock_now_s() - t_checkpoint);
        report_epoch_done(job);
        if (distributed_agree(job, *job->stop_requested, true, &stop, &unused) < 0)
            return -1;
        if (stop) {
            if (!checkpoint_now && checkpoint_save(job) < 0)
                return -1;
            return TRAINER_STOPPED;
        }
    }
    return TRAINER_FINISHED;
}
