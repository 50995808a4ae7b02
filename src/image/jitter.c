/*
 * jitter.c - HLS shifts and affine warps of 8-bit RGB pixels (jitter.h).
 */
#include "image/jitter.h"

#include <math.h>
#include <string.h>

static uint8_t clamp_byte(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
}

static double hue_to_channel(double p, double q, double t)
{
    if (t < 0)
        t += 1;
    if (t > 1)
        t -= 1;
    if (t < 1.0 / 6)
        return p + (q - p) * 6 * t;
    if (t < 0.5)
        return q;
    if (t < 2.0 / 3)
        return p + (q - p) * (2.0 / 3 - t) * 6;
    return p;
}

void image_jitter_hls(uint8_t *rgb, size_t n, int dh, int ds, int dl)
{
    for (size_t i = 0; i < n; i++, rgb += 3) {
        double r = rgb[0] / 255.0, g = rgb[1] / 255.0, b = rgb[2] / 255.0;
        double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b));
        double l = (mx + mn) / 2, h = 0, s = 0, d = mx - mn;
        if (d > 0) {
            s = l > 0.5 ? d / (2 - mx - mn) : d / (mx + mn);
            h = mx == r ? (g - b) / d + (g < b ? 6 : 0) : mx == g ? (b - r) / d + 2 : (r - g) / d + 4;
            h /= 6;
        }
        /* OpenCV's 8-bit HLS: H in [0, 180), L and S in [0, 255]. */
        double h8 = fmod(h * 180 + dh + 180, 180);
        double l8 = fmin(255, fmax(0, l * 255 + dl)), s8 = fmin(255, fmax(0, s * 255 + ds));
        h = h8 / 180;
        l = l8 / 255;
        s = s8 / 255;
        if (s == 0) {
            r = g = b = l;
        } else {
            double q = l < 0.5 ? l * (1 + s) : l + s - l * s, p = 2 * l - q;
            r = hue_to_channel(p, q, h + 1.0 / 3);
            g = hue_to_channel(p, q, h);
            b = hue_to_channel(p, q, h - 1.0 / 3);
        }
        rgb[0] = clamp_byte(r * 255);
        rgb[1] = clamp_byte(g * 255);
        rgb[2] = clamp_byte(b * 255);
    }
}

void image_affine_jitter(const uint8_t *rgb, int size, double angle_deg, double shear,
                         double aspect, uint8_t *out)
{
    /* Output pixel p maps back to source A^-1 (p - c) + c, A = rotation * shear * aspect. */
    double a = angle_deg * M_PI / 180, co = cos(a), si = sin(a);
    double sx = 1 + aspect, sy = 1 / (1 + aspect);
    double m00 = co * sx, m01 = (co * shear - si) * sy, m10 = si * sx, m11 = (si * shear + co) * sy;
    double det = m00 * m11 - m01 * m10;
    double i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det;
    double c = (size - 1) / 2.0;
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            double u = i00 * (x - c) + i01 * (y - c) + c, v = i10 * (x - c) + i11 * (y - c) + c;
            u = fmin(fmax(u, 0), size - 1);
            v = fmin(fmax(v, 0), size - 1);
            int x0 = (int)u, y0 = (int)v;
            int x1 = x0 + 1 < size ? x0 + 1 : x0, y1 = y0 + 1 < size ? y0 + 1 : y0;
            double fx = u - x0, fy = v - y0;
            for (int k = 0; k < 3; k++) {
                double top = rgb[((size_t)y0 * size + x0) * 3 + k] * (1 - fx) +
                             rgb[((size_t)y0 * size + x1) * 3 + k] * fx;
                double bot = rgb[((size_t)y1 * size + x0) * 3 + k] * (1 - fx) +
                             rgb[((size_t)y1 * size + x1) * 3 + k] * fx;
                out[((size_t)y * size + x) * 3 + k] = clamp_byte(top * (1 - fy) + bot * fy);
            }
        }
    }
}

