/*
 * report_svg.c - line charts, heat maps and stacked bars as SVG text (see report_svg.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/report_svg.h"

#define W 480.0
#define H 240.0
#define L 52.0 /* left margin: y labels */
#define R 12.0
#define T 28.0 /* top: title */
#define B 34.0 /* bottom: x labels and legend */

static double tr(double v, bool log_y)
{
    return log_y ? log10(v > 1e-30 ? v : 1e-30) : v;
}

void svg_line_chart(struct dynbuf *b, const char *title, const struct svg_series *s, int ns,
                    int mark_x, const char *mark_label, bool log_y)
{
    int n = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < ns; i++) {
        n = s[i].n > n ? s[i].n : n;
        for (int j = 0; j < s[i].n; j++) {
            double v = s[i].y[j];
            if (!isfinite(v) || (log_y && v <= 0)) continue;
            v = tr(v, log_y);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    dynbuf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W,
                H);
    dynbuf_html(b, title);
    dynbuf_puts(b, "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>");
    dynbuf_printf(b, "<text x=\"%.0f\" y=\"18\" font-size=\"13\" font-weight=\"bold\">", L);
    dynbuf_html(b, title);
    dynbuf_puts(b, "</text>");
    if (n == 0 || !isfinite(lo)) {
        dynbuf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data yet</text></svg>", L,
                    H / 2);
        return;
    }
    if (hi - lo < 1e-12) {
        hi += log_y ? 0.5 : (fabs(hi) > 0 ? fabs(hi) * 0.05 : 0.5);
        lo -= log_y ? 0.5 : (fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5);
    }
    double pw = W - L - R, ph = H - T - B;
#define X(i) (L + (n > 1 ? ((i)-1) * pw / (n - 1) : pw / 2))
#define Y(v) (T + ph - (tr(v, log_y) - lo) / (hi - lo) * ph)
    /* axes and y ticks */
    dynbuf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1f\" stroke=\"#888\" fill=\"none\"/>", L, T, T + ph,
                L + pw);
    for (int t = 0; t <= 4; t++) {
        double v = lo + (hi - lo) * t / 4, y = T + ph - ph * t / 4;
        dynbuf_printf(b, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#eee\"/>", L, y, L + pw);
        dynbuf_printf(b,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g</text>",
                    L - 4, y + 3, log_y ? pow(10, v) : v);
    }
    int step = n > 10 ? (n + 9) / 10 : 1;
    for (int i = 1; i <= n; i += step)
        dynbuf_printf(b,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%d</text>",
                    X(i), T + ph + 12, i);
    if (mark_x >= 1 && mark_x <= n) {
        dynbuf_printf(b,
                    "<path class=\"best-marker\" d=\"M%.1f %.1fV%.1f\" stroke=\"#2a7\" "
                    "stroke-dasharray=\"3 3\"/>",
                    X(mark_x), T, T + ph);
        dynbuf_printf(
            b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#2a7\" text-anchor=\"middle\">",
            X(mark_x), T - 2);
        dynbuf_html(b, mark_label ? mark_label : "");
        dynbuf_puts(b, "</text>");
    }
    for (int i = 0; i < ns; i++) {
        dynbuf_puts(b, "<path fill=\"none\" stroke-width=\"2\" stroke=\"");
        dynbuf_html(b, s[i].color);
        dynbuf_printf(b, "\"%s d=\"", s[i].dashed ? " stroke-dasharray=\"6 3\"" : "");
        bool pen = false;
        for (int j = 0; j < s[i].n; j++) {
            double v = s[i].y[j];
            if (!isfinite(v) || (log_y && v <= 0)) {
                pen = false;
                continue;
            }
            dynbuf_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', X(j + 1), Y(v));
            pen = true;
        }
        dynbuf_puts(b, "\"/>");
        for (int j = 0; s[i].n == 1 && j < 1; j++) /* a single point needs a dot to be seen */
            if (isfinite(s[i].y[0]))
                dynbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", X(1),
                            Y(s[i].y[0]), s[i].color);
        /* legend */
        double lx = L + i * (pw / (ns > 0 ? ns : 1));
        dynbuf_printf(b, "<path d=\"M%.1f %.1fh14\" stroke=\"%s\" stroke-width=\"3\"%s/>", lx, H - 8,
                    s[i].color, s[i].dashed ? " stroke-dasharray=\"6 3\"" : "");
        dynbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", lx + 18, H - 4);
        dynbuf_html(b, s[i].name);
        dynbuf_puts(b, "</text>");
    }
#undef X
#undef Y
    dynbuf_puts(b, "</svg>");
}

void svg_heatmap(struct dynbuf *b, const int64_t *m, int k, const char *const *labels)
{
    bool text = k <= 20;
    double lab = text ? 70 : 10, size = 360, cell = (size - lab) / (k > 0 ? k : 1);
    dynbuf_printf(
        b,
        "<svg class=\"heatmap\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
        "aria-label=\"confusion matrix\"><rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>",
        size, size + 14);
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++)
            row += m[i * k + j];
        for (int j = 0; j < k; j++) {
            double f = row ? (double)m[i * k + j] / (double)row : 0;
            /* white to deep blue on the diagonal, white to red off it */
            int r = i == j ? (int)(255 - 200 * f) : 255, g = (int)(255 - 200 * f),
                bl = i == j ? 255 : (int)(255 - 200 * f);
            dynbuf_printf(b,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        "fill=\"rgb(%d,%d,%d)\" stroke=\"#ddd\"><title>true %d, predicted %d: "
                        "%lld</title></rect>",
                        lab + j * cell, lab + i * cell, cell, cell, r, g, bl, i, j,
                        (long long)m[i * k + j]);
            if (text && cell >= 14)
                dynbuf_printf(b,
                            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" "
                            "text-anchor=\"middle\">%lld</text>",
                            lab + (j + 0.5) * cell, lab + (i + 0.5) * cell + 4,
                            cell > 30 ? 11.0 : 8.0, (long long)m[i * k + j]);
        }
        if (text) {
            dynbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"end\">",
                        lab - 3, lab + (i + 0.5) * cell + 3);
            dynbuf_html(b, labels[i]);
            dynbuf_puts(b, "</text>");
            dynbuf_printf(b,
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"start\" "
                        "transform=\"rotate(-45 %.1f %.1f)\">",
                        lab + (i + 0.5) * cell, lab - 3, lab + (i + 0.5) * cell, lab - 3);
            dynbuf_html(b, labels[i]);
            dynbuf_puts(b, "</text>");
        }
    }
    dynbuf_printf(b,
                "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\">rows: true class, columns: "
                "predicted</text></svg>",
                lab, size + 10);
}

void svg_stacked_bars(struct dynbuf *b, const char *title, int bars, const int *labels, int parts,
                      const char *const *part_names, const char *const *colors,
                      const double *values, const char *unit)
{
    double hi = 0;
    for (int i = 0; i < bars; i++) {
        double sum = 0;
        for (int p = 0; p < parts; p++)
            sum += values[i * parts + p] > 0 ? values[i * parts + p] : 0;
        hi = sum > hi ? sum : hi;
    }
    double h = H + 14 * ((parts + 3) / 4);
    dynbuf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W,
                h);
    dynbuf_html(b, title);
    dynbuf_puts(b, "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>");
    dynbuf_printf(b, "<text x=\"%.0f\" y=\"18\" font-size=\"13\" font-weight=\"bold\">", L);
    dynbuf_html(b, title);
    dynbuf_puts(b, "</text>");
    double pw = W - L - R, ph = H - T - B;
    if (bars == 0 || hi <= 0) {
        dynbuf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data yet</text></svg>", L,
                    H / 2);
        return;
    }
    for (int t = 0; t <= 4; t++) {
        double y = T + ph - ph * t / 4;
        dynbuf_printf(b, "<path d=\"M%.1f %.1fH%.1f\" stroke=\"#eee\"/>", L, y, L + pw);
        dynbuf_printf(
            b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g %s</text>",
            L - 4, y + 3, hi * t / 4, unit);
    }
    double slot = pw / bars, bw = slot * 0.7;
    for (int i = 0; i < bars; i++) {
        double y = T + ph, x = L + i * slot + (slot - bw) / 2;
        for (int p = 0; p < parts; p++) {
            double v = values[i * parts + p] > 0 ? values[i * parts + p] : 0, hh = v / hi * ph;
            y -= hh;
            dynbuf_printf(b,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                        "<title>%s: %.3g %s</title></rect>",
                        x, y, bw, hh, colors[p], part_names[p], v, unit);
        }
        if (bars <= 20 || i % ((bars + 19) / 20) == 0)
            dynbuf_printf(
                b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%d</text>",
                x + bw / 2, T + ph + 12, labels[i]);
    }
    for (int p = 0; p < parts; p++) {
        double lx = L + (p % 4) * pw / 4, ly = H - 4 + 14 * (p / 4);
        dynbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>", lx,
                    ly - 9, colors[p]);
        dynbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s</text>", lx + 14, ly,
                    part_names[p]);
    }
    dynbuf_puts(b, "</svg>");
}
