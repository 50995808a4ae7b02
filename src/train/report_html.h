/*
 * report_html.h - the training report as one self-contained HTML page: summary, findings,
 * learning curves, confusion matrix, per-class accuracy, most confused pairs, misclassified
 * images, throughput and step profile, system use and gradient norms. Charts are inline
 * SVG, images inline PNG data URIs; no script, no font, nothing fetched.
 */
#ifndef TRAIN_REPORT_HTML_H
#define TRAIN_REPORT_HTML_H

#include "train/job.h"
#include "train/report_thumbs.h"
#include "train/step_profile.h"

/* status: "running", "finished", "failed: <why>" or "stopped". Writes path atomically. */
int report_html_write(const struct train_job *job, const struct step_profile *p,
                      const struct thumbs *misses, const char *status, const char *path);

#endif
