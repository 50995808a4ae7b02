/*
 * report_html.c - builds report.html (see report_html.h) in a capped buffer and writes it
 * with a temporary name and a rename, so a reader never sees half a page. Numbers that the
 * tests compare with metrics.json carry data-key attributes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/dynbuf.h"
#include "train/report_findings.h"
#include "train/report_html.h"
#include "train/report_svg.h"

#define REPORT_MAX_BYTES ((size_t)32 << 20)
#define HEATMAP_MAX_CLASSES 50 /* beyond this the SVG gets too heavy for a phone */

static const char *const STYLE =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;"
    "max-width:980px;padding:12px;color:#222;background:#fafafa}"
    "h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid "
    "#ccc;padding-bottom:4px;margin-top:1.6em}"
    "section{background:#fff;padding:4px 12px 12px;margin:10px 0;border-radius:6px;box-shadow:0 "
    "1px 2px #0002}"
    "table{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto;max-width:100%}"
    "td,th{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}"
    "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px}"
    "svg{width:100%;height:auto;display:block}.heatmap{max-width:420px}"
    ".finding{border-left:5px solid #d33;background:#fff4f4;padding:6px 10px;margin:6px "
    "0;list-style:none}"
    ".ok{border-left:5px solid #2a7;background:#f2fbf5;padding:6px 10px}"
    ".thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs "
    "figure{margin:0;width:104px;font-size:.75em;text-align:center}"
    ".thumbs img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}"
    ".status{font-weight:bold}.muted{color:#666;font-size:.85em}ul{padding:0}";

static const char *const PHASE_COLORS[] = {"#e8a33d", "#4e79a7", "#76b7b2", "#b07aa1",
                                           "#59a14f", "#bab0ac", "#9c755f", "#f28e2b"};

static const char *class_name(const struct train_job *job, int i)
{
    return i >= 0 && i < job->train.num_classes ? job->train.class_names[i] : "?";
}

static void kv_row(struct dynbuf *b, const char *label, const char *key, const char *fmt, double v)
{
    dynbuf_puts(b, "<tr><td>");
    dynbuf_html(b, label);
    dynbuf_printf(b, "</td><td data-key=\"%s\">", key);
    dynbuf_printf(b, fmt, v);
    dynbuf_puts(b, "</td></tr>");
}

static void header(struct dynbuf *b, const struct train_job *job, const char *status)
{
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tm));
    dynbuf_puts(b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                 "<title>Training report</title><style>");
    dynbuf_puts(b, STYLE);
    dynbuf_puts(b, "</style></head><body><h1>Training report</h1><p>Status: <span class=\"status\" "
                 "id=\"status\">");
    dynbuf_html(b, status);
    dynbuf_printf(b, "</span> &middot; %d of %d epochs &middot; updated %s</p><p class=\"muted\">",
                job->progress.history_count, job->config.hp.epochs, when);
    dynbuf_html(b, job->model ? job->model->arch : job->config.hp.model);
    dynbuf_printf(b, ", %d classes, %zu training images, validation: ", job->train.num_classes,
                job->train.count);
    dynbuf_html(b, job->val_source);
    dynbuf_printf(b, ", %d px, batch %d per process x %d process(es), lr %g, %s, on %s</p>",
                job->config.image_size, job->config.hp.batch_size, job->layout.world_size,
                job->config.hp.lr, optimizer_name(job->config.hp.optimizer),
                job->device.type == TC_CUDA ? "GPU" : "CPU");
}

static void summary(struct dynbuf *b, const struct train_job *job)
{
    dynbuf_puts(b, "<section id=\"summary\"><h2>Summary</h2><table>");
    kv_row(b, "best epoch", "best_epoch", "%.0f", job->progress.best_epoch);
    kv_row(b, "best validation accuracy", "best_val_acc", "%.4f", job->progress.best_val_acc);
    if (job->final_val.count) {
        kv_row(b, "validation accuracy (best model)", "validation.accuracy", "%.4f",
               job->final_val.accuracy);
        kv_row(b, "validation loss (best model)", "validation.loss", "%.4f", job->final_val.loss);
    }
    if (job->has_test && job->final_test.count) {
        kv_row(b, "test accuracy", "test.accuracy", "%.4f", job->final_test.accuracy);
        kv_row(b, "test loss", "test.loss", "%.4f", job->final_test.loss);
    }
    kv_row(b, "unreadable images skipped", "skipped_images", "%.0f", (double)job->skipped_images);
    dynbuf_puts(b, "</table></section>");
}

static void findings(struct dynbuf *b, const struct train_job *job, const struct step_profile *p)
{
    struct finding f[FIND_COUNT];
    int n = findings_evaluate(job, p, f);
    dynbuf_puts(b, "<section id=\"findings\"><h2>Findings</h2>");
    if (n == 0)
        dynbuf_puts(
            b,
            "<p class=\"ok\" id=\"no-findings\">No findings: none of the rules (overfitting, loss "
            "not decreasing, vanishing or exploding gradients, poor initialisation, data-bound "
            "loop, low GPU utilisation, a class never predicted) fired.</p>");
    dynbuf_puts(b, "<ul>");
    for (int i = 0; i < n; i++) {
        dynbuf_printf(b, "<li class=\"finding\" data-finding=\"%s\"><b>", f[i].key);
        dynbuf_html(b, f[i].title);
        dynbuf_puts(b, "</b>: ");
        dynbuf_html(b, f[i].detail);
        dynbuf_puts(b, "</li>");
    }
    dynbuf_puts(b, "</ul></section>");
}

static void curves(struct dynbuf *b, const struct train_job *job)
{
    const struct train_progress *p = &job->progress;
    int n = p->history_count;
    double *v = calloc((size_t)(n ? n : 1) * 5, sizeof *v);
    if (!v) {
        b->failed = true;
        return;
    }
    double *tl = v, *vl = v + n, *ta = v + 2 * n, *va = v + 3 * n, *lr = v + 4 * n;
    for (int i = 0; i < n; i++) {
        tl[i] = p->history[i].train_loss;
        vl[i] = p->history[i].val_loss;
        ta[i] = p->history[i].train_acc;
        va[i] = p->history[i].val_acc;
        lr[i] = p->history[i].lr;
    }
    int best = 0;
    for (int i = 0; i < n; i++)
        if (p->history[i].epoch == p->best_epoch) best = i + 1;
    char mark[32];
    snprintf(mark, sizeof mark, "best: epoch %d", p->best_epoch);
    dynbuf_puts(b, "<section id=\"curves\"><h2>Learning curves</h2><div class=\"charts\">");
    struct svg_series loss[] = {{"train loss", "#4e79a7", tl, n, false},
                                {"validation loss", "#e15759", vl, n, true}};
    struct svg_series acc[] = {{"train accuracy", "#4e79a7", ta, n, false},
                               {"validation accuracy", "#e15759", va, n, true}};
    struct svg_series rate[] = {{"learning rate (end of epoch)", "#59a14f", lr, n, false}};
    svg_line_chart(b, "Loss per epoch", loss, 2, best, mark, false);
    svg_line_chart(b, "Accuracy per epoch", acc, 2, best, mark, false);
    svg_line_chart(b, "Learning rate", rate, 1, best, mark, false);
    dynbuf_puts(b,
              "</div><table id=\"epochs\"><tr><th>epoch</th><th>train loss</th><th>train acc</th>"
              "<th>val loss</th><th>val acc</th><th>lr</th><th>images/s</th><th>seconds</th></tr>");
    for (int i = 0; i < n; i++) {
        const struct epoch_metrics *m = &p->history[i];
        dynbuf_printf(
            b,
            "<tr data-epoch=\"%d\"%s><td>%d%s</td><td data-key=\"train_loss\">%.6g</td>"
            "<td data-key=\"train_acc\">%.6g</td><td data-key=\"val_loss\">%.6g</td>"
            "<td data-key=\"val_acc\">%.6g</td><td data-key=\"lr\">%.6g</td>"
            "<td data-key=\"images_per_sec\">%.1f</td><td data-key=\"seconds\">%.2f</td></tr>",
            m->epoch, m->epoch == p->best_epoch ? " class=\"best\"" : "", m->epoch,
            m->epoch == p->best_epoch ? " (best)" : "", m->train_loss, m->train_acc, m->val_loss,
            m->val_acc, m->lr, m->images_per_sec, m->seconds);
    }
    dynbuf_puts(b, "</table></section>");
    free(v);
}

struct pair {
    int truth, pred;
    int64_t count;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void confusion(struct dynbuf *b, const struct train_job *job)
{
    const struct eval_result *r = &job->final_val;
    int k = r->num_classes;
    dynbuf_puts(
        b,
        "<section id=\"confusion\"><h2>Validation: confusion matrix and per-class accuracy</h2>");
    if (!r->count) {
        dynbuf_puts(b, "<p>No validation pass yet.</p></section>");
        return;
    }
    if (r->confusion && k <= HEATMAP_MAX_CLASSES) {
        const char **labels = calloc((size_t)k, sizeof *labels);
        if (!labels) {
            b->failed = true;
            return;
        }
        for (int i = 0; i < k; i++)
            labels[i] = class_name(job, i);
        svg_heatmap(b, r->confusion, k, labels);
        free(labels);
    } else {
        dynbuf_printf(b,
                    "<p>%d classes: the heat map is drawn up to %d classes (metrics.json holds the "
                    "matrix up to %d); the most confused pairs are below.</p>",
                    k, HEATMAP_MAX_CLASSES, CONFUSION_MAX_CLASSES);
    }
    dynbuf_puts(b,
              "<h3>Per-class accuracy</h3><table id=\"per-class\"><tr><th>class</th><th>images</th>"
              "<th>accuracy</th></tr>");
    for (int i = 0; i < k; i++) {
        double acc = r->per_class_total[i]
                         ? (double)r->per_class_correct[i] / (double)r->per_class_total[i]
                         : 0;
        dynbuf_puts(b, "<tr><td>");
        dynbuf_html(b, class_name(job, i));
        dynbuf_printf(b, "</td><td>%lld</td><td data-key=\"class-accuracy\">%.4f</td></tr>",
                    (long long)r->per_class_total[i], acc);
    }
    dynbuf_puts(
        b,
        "</table><h3>Most confused pairs</h3><table id=\"confused-pairs\"><tr><th>true class</th>"
        "<th>predicted as</th><th>images</th><th>share of the true class</th></tr>");
    int shown = 0;
    if (r->confusion) {
        size_t np = 0;
        struct pair *pairs = malloc((size_t)k * (size_t)k * sizeof *pairs);
        for (int i = 0; pairs && i < k; i++)
            for (int j = 0; j < k; j++)
                if (i != j && r->confusion[i * k + j] > 0)
                    pairs[np++] = (struct pair){i, j, r->confusion[i * k + j]};
        if (pairs) qsort(pairs, np, sizeof *pairs, pair_cmp);
        for (size_t i = 0; pairs && i < np && i < 10; i++, shown++) {
            dynbuf_puts(b, "<tr><td>");
            dynbuf_html(b, class_name(job, pairs[i].truth));
            dynbuf_puts(b, "</td><td>");
            dynbuf_html(b, class_name(job, pairs[i].pred));
            int64_t row = r->per_class_total[pairs[i].truth];
            dynbuf_printf(b, "</td><td>%lld</td><td>%.1f%%</td></tr>", (long long)pairs[i].count,
                        row ? 100.0 * (double)pairs[i].count / (double)row : 0);
        }
        free(pairs);
    }
    dynbuf_puts(b, "</table>");
    if (!shown) dynbuf_puts(b, "<p class=\"muted\">No confusions.</p>");
    dynbuf_puts(b, "</section>");
}

static void misclassified(struct dynbuf *b, const struct train_job *job, const struct thumbs *t)
{
    dynbuf_puts(b, "<section id=\"misclassified\"><h2>Misclassified validation images</h2>");
    if (!t || t->count == 0) {
        dynbuf_puts(
            b,
            "<p class=\"muted\">None kept (every validation image this process saw was right, or "
            "no validation pass yet).</p></section>");
        return;
    }
    dynbuf_printf(
        b,
        "<p class=\"muted\">The first %d this process got wrong in the last validation pass.</p>"
        "<div class=\"thumbs\">",
        t->count);
    for (int i = 0; i < t->count; i++) {
        unsigned char *png;
        size_t len;
        if (thumb_png(&t->items[i], &png, &len) < 0) continue;
        dynbuf_puts(b,
                  "<figure class=\"miss\"><img alt=\"misclassified\" src=\"data:image/png;base64,");
        dynbuf_base64(b, png, len);
        free(png);
        dynbuf_puts(b, "\"><figcaption>true: <b>");
        dynbuf_html(b, class_name(job, t->items[i].truth));
        dynbuf_puts(b, "</b><br>predicted: ");
        dynbuf_html(b, class_name(job, t->items[i].pred));
        dynbuf_puts(b, "</figcaption></figure>");
    }
    dynbuf_puts(b, "</div></section>");
}

/* Per-step milliseconds per phase as shown: device time where measured, "other" the rest. */
static void shown_phases(const struct step_profile *p, const struct prof_epoch *e, double *ms)
{
    double steps = e->steps > 0 ? (double)e->steps : 1, sum = 0;
    for (int ph = 0; ph < PROF_OTHER; ph++) {
        double s = e->phase_s[ph];
        if (p->timer && (ph == PROF_FORWARD || ph == PROF_BACKWARD || ph == PROF_OPTIMIZER))
            s = e->device_s[ph];
        ms[ph] = 1000 * s / steps;
        sum += s;
    }
    double other = e->train_wall_s - sum;
    ms[PROF_OTHER] = 1000 * (other > 0 ? other : 0) / steps;
}

static void profile(struct dynbuf *b, const struct train_job *job, const struct step_profile *p)
{
    dynbuf_puts(b, "<section id=\"profile\"><h2>Throughput and step profile</h2>");
    if (!p || p->epoch_count == 0) {
        dynbuf_puts(b, "<p>No epoch finished yet.</p></section>");
        return;
    }
    int n = p->epoch_count;
    double *vals = calloc((size_t)n * (PROF_OTHER + 1), sizeof *vals);
    double *ips = calloc((size_t)n + 1, sizeof *ips);
    int *labels = calloc((size_t)n + 1, sizeof *labels);
    if (!vals || !ips || !labels) {
        free(vals);
        free(ips);
        free(labels);
        b->failed = true;
        return;
    }
    const char *names[PROF_OTHER + 1];
    for (int ph = 0; ph <= PROF_OTHER; ph++)
        names[ph] = prof_phase_name((enum prof_phase)ph);
    for (int i = 0; i < n; i++) {
        shown_phases(p, &p->epochs[i], vals + (size_t)i * (PROF_OTHER + 1));
        ips[i] = p->epochs[i].images_per_sec;
        labels[i] = p->epochs[i].epoch;
    }
    dynbuf_puts(b, "<div class=\"charts\">");
    svg_stacked_bars(b, "Time per training step (ms)", n, labels, PROF_OTHER + 1, names,
                     PHASE_COLORS, vals, "ms");
    struct svg_series s = {"images per second", "#4e79a7", ips, n, false};
    svg_line_chart(b, "Throughput per epoch", &s, 1, 0, NULL, false);
    dynbuf_printf(
        b,
        "</div><p class=\"muted\">%s The gradient all-reduce of several processes overlaps the "
        "backward pass and is counted in it; \"sync\" is the per-step agreement between "
        "processes.</p>",
        p->timer ? "Forward, backward and optimizer are GPU times from CUDA events; the rest is "
                   "host time."
                 : "Host times from a monotonic clock (CPU operations run synchronously).");
    dynbuf_puts(b, "<table id=\"step-profile\"><tr><th>epoch</th><th>steps</th><th>images/s</th>");
    for (int ph = 0; ph <= PROF_OTHER; ph++)
        dynbuf_printf(b, "<th>%s ms/step</th>", names[ph]);
    dynbuf_puts(b, "<th>evaluation s</th><th>checkpoint s</th><th>profiler overhead</th></tr>");
    for (int i = 0; i < n; i++) {
        const struct prof_epoch *e = &p->epochs[i];
        dynbuf_printf(b,
                    "<tr data-epoch=\"%d\"><td>%d</td><td>%lld</td><td "
                    "data-key=\"images_per_sec\">%.1f</td>",
                    e->epoch, e->epoch, (long long)e->steps, e->images_per_sec);
        for (int ph = 0; ph <= PROF_OTHER; ph++)
            dynbuf_printf(b, "<td data-key=\"%s\">%.2f</td>", names[ph],
                        vals[(size_t)i * (PROF_OTHER + 1) + ph]);
        dynbuf_printf(b, "<td>%.2f</td><td>%.2f</td><td data-key=\"overhead\">%.2f%%</td></tr>",
                    e->phase_s[PROF_EVAL], e->phase_s[PROF_CHECKPOINT],
                    e->train_wall_s > 0 ? 100 * e->overhead_s / e->train_wall_s : 0);
    }
    double overhead = 0, loop = 0;
    for (int i = 0; i < n; i++) {
        overhead += p->epochs[i].overhead_s;
        loop += p->epochs[i].train_wall_s;
    }
    dynbuf_printf(b,
                "</table><p class=\"muted\" id=\"profiler-cost\">The profiler's own time: a timer "
                "read costs %.0f ns (about 8 per step)%s; ",
                1e9 * p->lap_cost_s, p->timer ? " plus a CUDA event each" : "");
    if (p->grad_sample_count)
        dynbuf_printf(
            b, "a gradient-norm sample took %.2f ms on average (%lld samples, every %d steps); ",
            1000 * p->grad_sample_s / (double)p->grad_sample_count, (long long)p->grad_sample_count,
            p->grad_every);
    dynbuf_printf(b,
                "in all <span data-key=\"overhead-total\">%.3f%%</span> of the training loop.</p>",
                loop > 0 ? 100 * overhead / loop : 0);
    dynbuf_puts(b, "<h3 id=\"system\">CPU and memory</h3><table id=\"system-use\"><tr><th>epoch</th>"
                 "<th>CPU % (of one core)</th><th>cores</th><th>RSS MiB</th><th>peak RSS MiB</th>"
                 "<th>machine memory available MiB</th><th>GPU busy %</th><th>GPU memory MiB</th>"
                 "<th>GPU peak MiB</th></tr>");
    for (int i = 0; i < n; i++) {
        const struct prof_epoch *e = &p->epochs[i];
        dynbuf_printf(b,
                    "<tr><td>%d</td><td>%.0f</td><td>%d</td><td>%.0f</td><td>%.0f</td><td>%.0f of "
                    "%.0f</td>",
                    e->epoch, e->cpu_percent, proc_cpu_count(), e->rss_mb, e->peak_rss_mb,
                    e->mem_available_mb, e->mem_total_mb);
        if (e->gpu_busy_percent >= 0)
            dynbuf_printf(b, "<td>%.0f</td><td>%.0f</td><td>%.0f</td></tr>", e->gpu_busy_percent,
                        e->gpu_mem_mb, e->gpu_peak_mem_mb);
        else
            dynbuf_puts(b, "<td>-</td><td>-</td><td>-</td></tr>");
    }
    dynbuf_printf(b, "</table><p class=\"muted\">%d data loader thread(s).</p></section>",
                job->config.threads);
    free(vals);
    free(ips);
    free(labels);
}

static void gradients(struct dynbuf *b, const struct step_profile *p)
{
    dynbuf_puts(b, "<section id=\"gradients\"><h2>Gradient norms</h2>");
    if (!p || !p->have_first_norms) {
        dynbuf_puts(b, "<p class=\"muted\">Not sampled yet.</p></section>");
        return;
    }
    dynbuf_printf(
        b,
        "<p class=\"muted\">L2 norms of each parameter's gradient, sampled every %d steps.</p>"
        "<table id=\"grad-epochs\"><tr><th>epoch</th><th>samples</th><th>total (last sample)</th>"
        "<th>smallest layer</th><th>largest layer</th></tr>",
        p->grad_every);
    for (int i = 0; i < p->epoch_count; i++) {
        const struct prof_epoch *e = &p->epochs[i];
        dynbuf_printf(b, "<tr><td>%d</td><td>%d</td><td>%.4g</td><td>%.4g</td><td>%.4g</td></tr>",
                    e->epoch, e->grad_samples, e->grad_norm_total, e->grad_norm_min_layer,
                    e->grad_norm_max_layer);
    }
    dynbuf_printf(
        b,
        "</table><details><summary>Per layer: first and latest sample (%zu layers)</summary>"
        "<table id=\"grad-layers\"><tr><th>parameter</th><th>first</th><th>latest</th></tr>",
        p->layers);
    for (size_t i = 0; i < p->layers; i++) {
        dynbuf_puts(b, "<tr><td>");
        dynbuf_html(b, p->names[i]);
        dynbuf_printf(b, "</td><td>%.4g</td><td>%.4g</td></tr>", p->first_norms[i], p->norms[i]);
    }
    dynbuf_puts(b, "</table></details></section>");
}

int report_html_write(const struct train_job *job, const struct step_profile *p,
                      const struct thumbs *misses, const char *status, const char *path)
{
    struct dynbuf b;
    dynbuf_init(&b, REPORT_MAX_BYTES);
    header(&b, job, status);
    summary(&b, job);
    findings(&b, job, p);
    curves(&b, job);
    confusion(&b, job);
    misclassified(&b, job, misses);
    profile(&b, job, p);
    gradients(&b, p);
    dynbuf_puts(&b,
              "<p class=\"muted\">Also in this job's output: metrics.json (every number above), "
              "TensorBoard scalars (output/tensorboard), and trace.json when profile_steps is set. "
              "Written by the train program of this image.</p></body></html>\n");
    int rc = b.failed ? err_set("the report would be over %zu bytes", REPORT_MAX_BYTES)
                      : fileio_write_atomic(path, b.data, b.len);
    dynbuf_free(&b);
    return rc;
}
