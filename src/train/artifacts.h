/*
 * artifacts.h - what a training job leaves behind (artifacts.c): model.pth + metadata.json
 * in the model dir, metrics.json in output/data, and for local runs a deployable
 * model.tar.gz in output/. Rank 0 only; everything written to a temporary name and renamed.
 */
#ifndef TRAIN_ARTIFACTS_H
#define TRAIN_ARTIFACTS_H

struct train_job;

/* The best weights so far and their metadata (after an epoch that improved). */
int artifacts_save_best_model(const struct train_job *job);
/* The final metadata and metrics, and model.tar.gz for local runs. */
int artifacts_write_final(const struct train_job *job);

#endif
