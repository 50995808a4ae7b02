/*
 * report.h - the training report's life cycle: made when training starts (rank 0 only; the
 * other ranks profile nothing and write nothing), fed by the hooks in trainer.c, written
 * after every epoch and at the end of the run, whatever its outcome:
 *   <output data>/report.html   the page (report_html.c)
 *   <output>/tensorboard/       TensorBoard scalars (report_tensorboard.c)
 *   <output data>/trace.json    the traced steps when profile_steps asks (report_trace.c)
 * Writing any of these can fail without failing the training: a warning says why.
 */
#ifndef TRAIN_REPORT_H
#define TRAIN_REPORT_H

#include "data/loader.h"
#include "train/job.h"
#include "train/report_tensorboard.h"
#include "train/report_thumbs.h"
#include "train/step_profile.h"

struct train_report {
    struct step_profile prof;
    struct thumbs misses;
    struct tb_writer tb;
    bool tb_failed, trace_written;
    double write_s; /* time spent writing the report's files */
};

/* Sets job->report on rank 0 (NULL elsewhere). Fails only when out of memory. */
int report_start(struct train_job *job);
void report_free(struct train_job *job);
/* The profile the loop's hooks take; NULL when there is no report. */
struct step_profile *report_profile(struct train_job *job);

/* Evaluation hooks: an evaluation pass over the validation set starts, and each batch's
 * predictions (pred: [b->n]) for the misclassified-image thumbnails. */
void report_eval_begin(struct train_job *job, const struct dataset *d);
void report_eval_batch(struct train_job *job, const struct dataset *d, const struct batch *b,
                       const int64_t *pred);

/* After an epoch's metrics are in job->progress.history: TensorBoard scalars, the trace once its
 * steps are done, and report.html with status "running". */
void report_epoch_done(struct train_job *job);
/* At the end of the run; status: "finished", "stopped" or "failed: <why>". */
void report_finish(struct train_job *job, const char *status);

#endif
