/*
 * trainer.h - the epoch loop (trainer.c): train, validate, keep the best model, checkpoint,
 * stop early; and the evaluation pass shared by validation and test.
 */
#ifndef TRAIN_TRAINER_H
#define TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

struct train_job;
struct dataset;
struct hyperparams;

#define CONFUSION_MAX_CLASSES 256 /* larger jobs get per-class accuracy only */

struct eval_result {
    double loss, accuracy;
    double top_k_accuracy; /* when hp.top_k > 0 */
    size_t count;
    int num_classes;
    int64_t *per_class_total, *per_class_correct; /* [num_classes] */
    int64_t *confusion; /* [true][predicted], when num_classes <= CONFUSION_MAX_CLASSES */
};

/* Runs the remaining epochs. Returns TRAINER_FINISHED, TRAINER_STOPPED (by a signal; a
 * checkpoint has been written) or < 0 on error (err_reason says why: diverged, data,
 * out_of_memory, peer_failed, io...). */
enum trainer_end { TRAINER_FINISHED = 0, TRAINER_STOPPED = 1 };
int trainer_run(struct train_job *job);
/* One pass over d with the current weights, summed across the ranks. */
int trainer_evaluate(struct train_job *job, const struct dataset *d, struct eval_result *out);
void eval_result_free(struct eval_result *r);
/* The learning rate at a fractional epoch: warmup, then the schedule. */
double trainer_lr_at(const struct hyperparams *hp, double epoch);

#endif
