/*
 * report_findings.h - rules over a run's metrics and profile, in the spirit of SageMaker
 * Debugger's built-in rules: each finding names what is wrong in plain words and the numbers
 * that triggered it. The thresholds are below, in one place, so the README can quote them.
 */
#ifndef TRAIN_REPORT_FINDINGS_H
#define TRAIN_REPORT_FINDINGS_H

#include "train/job.h"
#include "train/step_profile.h"

#define FIND_OVERFIT_GAP 0.20       /* train accuracy above validation accuracy by this */
#define FIND_OVERFIT_VAL_RISE 1.25  /* validation loss this far above its minimum... */
#define FIND_OVERFIT_EPOCHS 2       /* ...which is at least this many epochs old */
#define FIND_FLAT_LOSS 0.97         /* last epoch's train loss >= this x the first epoch's... */
#define FIND_FLAT_LOSS_FIRST 0.90   /* ...and >= this x the first step's */
#define FIND_EXPLODING_NORM 1e3     /* a layer's gradient norm above this */
#define FIND_EXPLODING_GROWTH 100.0 /* the total gradient norm grew this much from its first */
#define FIND_VANISHING_NORM 1e-7    /* every layer's gradient norm below this */
#define FIND_VANISHING_RATIO 1e-8   /* smallest / largest layer norm below this */
#define FIND_POOR_INIT_FACTOR 2.0   /* first loss above this x ln(classes) (+0.5) */
#define FIND_DATA_BOUND 0.30        /* share of the training loop spent waiting for data */
#define FIND_LOW_GPU 50.0           /* percent of the loop the GPU was busy */

enum finding_id {
    FIND_OVERFITTING,
    FIND_LOSS_NOT_DECREASING,
    FIND_VANISHING_GRADIENT,
    FIND_EXPLODING_GRADIENT,
    FIND_POOR_INITIALIZATION,
    FIND_DATA_BOUND_LOOP,
    FIND_LOW_GPU_UTILIZATION,
    FIND_CLASS_NEVER_PREDICTED,
    FIND_COUNT
};

struct finding {
    enum finding_id id;
    const char *key;   /* stable, for tests and anchors: "overfitting", "data-bound"... */
    const char *title; /* "Overfitting" */
    char detail[640];  /* the numbers behind it and what to try */
};

/* Fills out[] (at most FIND_COUNT) and returns how many rules fired. p may be NULL. */
int findings_evaluate(const struct train_job *job, const struct step_profile *p,
                      struct finding *out);

#endif
