/*
 * report_trace.h - the traced steps (profile_steps) as a Chrome trace-event JSON file, which
 * Perfetto (ui.perfetto.dev) and chrome://tracing open: one complete event ("ph":"X") per
 * phase of each step, in microseconds from the start of training, plus one span per step.
 */
#ifndef TRAIN_REPORT_TRACE_H
#define TRAIN_REPORT_TRACE_H

#include "train/step_profile.h"

/* Writes path atomically (temporary name + rename). Nothing to write is not an error. */
int trace_write(const struct step_profile *p, int rank, const char *path);

#endif
