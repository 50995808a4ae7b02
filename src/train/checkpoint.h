/*
 * checkpoint.h - saving and resuming a training job (checkpoint.c): the weights, the
 * optimizer and random generator states and the progress (train/progress.h), per host, so
 * that SIGTERM and managed spot training lose at most the current step.
 */
#ifndef TRAIN_CHECKPOINT_H
#define TRAIN_CHECKPOINT_H

struct train_job;

/* On each host's first process; the others return 0 at once. */
int checkpoint_save(const struct train_job *job);
enum checkpoint_found { CHECKPOINT_NONE = 0, CHECKPOINT_RESUMED = 1 };
/* CHECKPOINT_RESUMED, CHECKPOINT_NONE (none, or one for another model), or < 0: error */
int checkpoint_resume(struct train_job *job);

#endif
