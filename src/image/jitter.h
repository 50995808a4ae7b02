/*
 * jitter.h - the colour and geometry jitter of the built-in algorithm's augmentation levels
 * (`crop_color`, `crop_color_transform`), on 8-bit RGB pixels; the loader draws the amounts.
 */
#ifndef IMAGE_JITTER_H
#define IMAGE_JITTER_H

#include <stddef.h>
#include <stdint.h>

/* `crop_color`: adds dh to hue (OpenCV's 8-bit scale, 0..180, wrapping), ds to saturation and
 * dl to lightness (0..255, clamped) of n RGB pixels in place, in HLS space as MXNet's
 * random_h/random_s/random_l do. */
void image_jitter_hls(uint8_t *rgb, size_t n, int dh, int ds, int dl);

/* `crop_color_transform`: an affine warp of rgb [size,size,3] about its centre into out (same
 * shape): rotation by angle_deg, horizontal shear, and the aspect ratio scaled by
 * (1 + aspect) horizontally and 1 / (1 + aspect) vertically; bilinear, edges clamped. */
void image_affine_jitter(const uint8_t *rgb, int size, double angle_deg, double shear,
                         double aspect, uint8_t *out);

#endif
