/*
 * report_findings.c - the rules behind the report's findings (thresholds in the header).
 * Each rule reads only what the run recorded: the epoch metrics, the validation confusion
 * matrix, the step profile and the sampled gradient norms.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/report_findings.h"

static struct finding *add(struct finding *out, int *n, enum finding_id id, const char *key,
                           const char *title)
{
    struct finding *f = &out[(*n)++];
    f->id = id;
    f->key = key;
    f->title = title;
    f->detail[0] = '\0';
    return f;
}

static void overfitting(const struct train_job *job, struct finding *out, int *n)
{
    const struct train_progress *p = &job->progress;
    int h = p->history_count;
    if (h < 2) return;
    const struct epoch_metrics *last = &p->history[h - 1];
    int best = 0;
    for (int i = 1; i < h; i++)
        if (p->history[i].val_loss < p->history[best].val_loss) best = i;
    double gap = last->train_acc - last->val_acc;
    /* A rise that lasted (no better validation loss for FIND_OVERFIT_EPOCHS epochs), while the
     * model kept fitting the train set better than the validation set: not one noisy epoch. */
    bool rising = best <= h - 1 - FIND_OVERFIT_EPOCHS &&
                  last->val_loss >= FIND_OVERFIT_VAL_RISE * p->history[best].val_loss &&
                  last->train_loss < p->history[best].train_loss && gap > 0;
    if (gap < FIND_OVERFIT_GAP && !rising) return;
    struct finding *f = add(out, n, FIND_OVERFITTING, "overfitting", "Overfitting");
    snprintf(f->detail, sizeof f->detail,
             "In the last epoch (%d) the train accuracy was %.4f and the validation accuracy %.4f "
             "(a gap of %.4f; the rule fires at %.2f). The validation loss was lowest at epoch %d "
             "(%.4f) and is %.4f now while the train loss went from %.4f to %.4f. Try more data or "
             "augmentation, weight decay, fewer epochs or early_stopping_patience.",
             last->epoch, last->train_acc, last->val_acc, gap, FIND_OVERFIT_GAP,
             p->history[best].epoch, p->history[best].val_loss, last->val_loss,
             p->history[best].train_loss, last->train_loss);
}

static void loss_not_decreasing(const struct train_job *job, const struct step_profile *p,
                                struct finding *out, int *n)
{
    int h = job->progress.history_count;
    if (h < 2) return;
    double first = job->progress.history[0].train_loss;
    double last = job->progress.history[h - 1].train_loss;
    double step0 = p && p->have_first_loss ? p->first_loss : first;
    if (!(last >= FIND_FLAT_LOSS * first && last >= FIND_FLAT_LOSS_FIRST * step0)) return;
    struct finding *f =
        add(out, n, FIND_LOSS_NOT_DECREASING, "loss-not-decreasing", "Loss not decreasing");
    snprintf(
        f->detail, sizeof f->detail,
        "The train loss was %.4f in epoch 1 and %.4f in epoch %d (the first step's was %.4f): "
        "no real decrease over %d epochs. Check that layers are trainable (freeze_backbone), "
        "that the learning rate (%g) is not far too small or large, and that labels match images.",
        first, last, job->progress.history[h - 1].epoch, step0, h, job->config.hp.lr);
}

static void gradients(const struct train_job *job, const struct step_profile *p,
                      struct finding *out, int *n)
{
    if (!p) return;
    double max_layer = 0, min_layer = INFINITY, last_max = -1, last_min = 0;
    bool nonfinite = p->loss_nonfinite, sampled = false;
    const char *worst = "";
    for (int e = 0; e < p->epoch_count; e++) {
        const struct prof_epoch *ep = &p->epochs[e];
        if (!ep->grad_samples) continue;
        sampled = true;
        nonfinite |= ep->grad_nonfinite;
        max_layer = ep->grad_norm_max_layer > max_layer ? ep->grad_norm_max_layer : max_layer;
        last_max = ep->grad_norm_max_layer;
        last_min = ep->grad_norm_min_layer;
    }
    /* The latest sample, also when the run failed inside an epoch. */
    double first_total = 0, total = 0;
    for (size_t i = 0; p->have_first_norms && i < p->layers; i++) {
        double v = p->norms[i];
        first_total += (double)p->first_norms[i] * p->first_norms[i];
        total += v * v;
        if (!isfinite(v)) nonfinite = true;
        if (v > max_layer || !isfinite(v)) {
            max_layer = v;
            worst = p->names[i];
        }
        if (v > 0 && v < min_layer) min_layer = v;
    }
    first_total = sqrt(first_total);
    total = sqrt(total);
    sampled |= p->have_first_norms;
    bool grew = first_total > 0 && total > FIND_EXPLODING_GROWTH * first_total;
    if (nonfinite || max_layer > FIND_EXPLODING_NORM || grew) {
        struct finding *f =
            add(out, n, FIND_EXPLODING_GRADIENT, "exploding-gradient", "Exploding gradients");
        snprintf(
            f->detail, sizeof f->detail,
            "%s The largest layer gradient norm sampled was %.4g%s%s%s (the rule fires above %g); "
            "the total gradient norm went from %.4g at the first sample to %.4g at the last. "
            "Lower the learning rate (%g), add warmup_epochs, or check the inputs' scale.",
            p->loss_nonfinite ? "The loss became NaN or infinite."
            : nonfinite       ? "A gradient became NaN or infinite."
                              : "",
            max_layer, *worst ? " (" : "", worst, *worst ? ")" : "", FIND_EXPLODING_NORM,
            first_total, total, job->config.hp.lr);
    }
    if (!sampled || nonfinite || last_max < 0) return;
    if (last_max < FIND_VANISHING_NORM ||
        (last_max > 0 && last_min / last_max < FIND_VANISHING_RATIO)) {
        struct finding *f =
            add(out, n, FIND_VANISHING_GRADIENT, "vanishing-gradient", "Vanishing gradients");
        snprintf(
            f->detail, sizeof f->detail,
            "In the last epoch the layer gradient norms ranged from %.3g to %.3g (the rule fires "
            "when all are below %g or the smallest is below %g of the largest): early layers "
            "barely learn. Check the initialisation, normalisation layers and the learning rate.",
            last_min, last_max, FIND_VANISHING_NORM, FIND_VANISHING_RATIO);
    }
}

static void poor_init(const struct train_job *job, const struct step_profile *p,
                      struct finding *out, int *n)
{
    int k = job->model ? job->model->num_classes : 0;
    if (!p || !p->have_first_loss || k < 2 || !isfinite(p->first_loss)) return;
    double expected = log((double)k), limit = FIND_POOR_INIT_FACTOR * expected + 0.5;
    if (p->first_loss <= limit) return;
    struct finding *f =
        add(out, n, FIND_POOR_INITIALIZATION, "poor-initialization", "Poor weight initialisation");
    snprintf(
        f->detail, sizeof f->detail,
        "The first step's loss was %.4f; a freshly initialised classifier over %d classes starts "
        "near ln(%d) = %.4f (the rule fires above %.4f). The initial weights or the input "
        "normalisation make over-confident predictions.",
        p->first_loss, k, k, expected, limit);
}

static void data_bound(const struct train_job *job, const struct step_profile *p,
                       struct finding *out, int *n)
{
    if (!p) return;
    double data = 0, loop = 0;
    for (int e = 0; e < p->epoch_count; e++) {
        data += p->epochs[e].phase_s[PROF_DATA];
        loop += p->epochs[e].train_wall_s;
    }
    if (loop < 0.2 || data < FIND_DATA_BOUND * loop) return;
    struct finding *f = add(out, n, FIND_DATA_BOUND_LOOP, "data-bound", "Data-bound training loop");
    snprintf(
        f->detail, sizeof f->detail,
        "The loop waited %.2f s of %.2f s (%.0f%%) for the next batch (the rule fires at %.0f%%), "
        "with %d loader thread(s): the model waits for image decoding. Raise num_workers, store "
        "images closer to image_size (%d px), or use a larger batch per step.",
        data, loop, 100 * data / loop, 100 * FIND_DATA_BOUND, job->config.threads,
        job->config.image_size);
}

static void low_gpu(const struct step_profile *p, struct finding *out, int *n)
{
    if (!p) return;
    double busy = 0, loop = 0;
    for (int e = 0; e < p->epoch_count; e++) {
        if (p->epochs[e].gpu_busy_percent < 0) return;
        busy += p->epochs[e].gpu_busy_percent * p->epochs[e].train_wall_s / 100.0;
        loop += p->epochs[e].train_wall_s;
    }
    if (loop <= 0 || 100 * busy / loop >= FIND_LOW_GPU) return;
    struct finding *f =
        add(out, n, FIND_LOW_GPU_UTILIZATION, "low-gpu-utilization", "Low GPU utilisation");
    snprintf(
        f->detail, sizeof f->detail,
        "The GPU computed for %.2f s of the loop's %.2f s (%.0f%%; the rule fires below %.0f%%). "
        "See the step profile for where the rest went: data wait, synchronisation or host work. "
        "A larger batch_size, more num_workers or amp help.",
        busy, loop, 100 * busy / loop, FIND_LOW_GPU);
}

static void never_predicted(const struct train_job *job, struct finding *out, int *n)
{
    const struct eval_result *r = &job->final_val;
    if (!r->confusion || r->num_classes < 2) return;
    int k = r->num_classes, missing = 0;
    char names[400] = "";
    size_t used = 0;
    for (int j = 0; j < k; j++) {
        int64_t col = 0, row = 0;
        for (int i = 0; i < k; i++) {
            col += r->confusion[i * k + j];
            row += r->confusion[j * k + i];
        }
        if (col > 0 || row == 0) continue;
        missing++;
        const char *name = j < job->train.num_classes ? job->train.class_names[j] : "?";
        int w = snprintf(names + used, sizeof names - used, "%s%s (%lld images)",
                         missing > 1 ? ", " : "", name, (long long)row);
        used = w > 0 && used + (size_t)w < sizeof names ? used + (size_t)w : used;
    }
    if (!missing) return;
    struct finding *f = add(out, n, FIND_CLASS_NEVER_PREDICTED, "class-never-predicted",
                            "A class is never predicted");
    snprintf(f->detail, sizeof f->detail,
             "On the %zu validation images, %d of %d classes were never predicted: %s. The model "
             "may be collapsing to frequent classes; check the class balance and train longer.",
             r->count, missing, k, names);
}

int findings_evaluate(const struct train_job *job, const struct step_profile *p,
                      struct finding *out)
{
    int n = 0;
    overfitting(job, out, &n);
    loss_not_decreasing(job, p, out, &n);
    gradients(job, p, out, &n);
    poor_init(job, p, out, &n);
    data_bound(job, p, out, &n);
    low_gpu(p, out, &n);
    never_predicted(job, out, &n);
    return n;
}
