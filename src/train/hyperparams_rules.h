/*
 * hyperparams_rules.h - what the hyperparameters mean together (hyperparams_rules.c), checked
 * once every key is read: the effective early stopping and learning-rate schedule, precision
 * against amp, contradictions refused, and a log line for each value that does not apply to
 * the job as configured (beta_1 with sgd...).
 */
#ifndef TRAIN_HYPERPARAMS_RULES_H
#define TRAIN_HYPERPARAMS_RULES_H

#include "train/hyperparams.h"

int hyperparams_finish(struct hyperparams *hp);

#endif
