/*
 * report_svg.h - the report's charts as inline SVG: line charts (learning curves), a heat map
 * (confusion matrix) and stacked bars (step profile). Each scales to its container's width
 * (viewBox), so the page reads on a phone; text is in the page's own font.
 */
#ifndef TRAIN_REPORT_SVG_H
#define TRAIN_REPORT_SVG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/dynbuf.h"

struct svg_series {
    const char *name;
    const char *color; /* CSS colour */
    const double *y;   /* [n], x = 1..n; non-finite values are gaps */
    int n;
    bool dashed;
};

/* mark_x: the x (1-based) to mark with a vertical line labelled mark_label; 0: none. */
void svg_line_chart(struct dynbuf *b, const char *title, const struct svg_series *s, int ns,
                    int mark_x, const char *mark_label, bool log_y);
/* m: [k][k] counts, rows the true class; each row is shaded by its share of the row. */
void svg_heatmap(struct dynbuf *b, const int64_t *m, int k, const char *const *labels);
/* values: [bars][parts]; labels: one per bar. */
void svg_stacked_bars(struct dynbuf *b, const char *title, int bars, const int *labels, int parts,
                      const char *const *part_names, const char *const *colors,
                      const double *values, const char *unit);

#endif
