/*
 * transform.h - the preprocessing that training and serving share: where to crop, one
 * antialiased resample, normalisation into a float CHW tensor buffer.
 *
 * It reproduces what the Python containers do with torchvision on PIL images, so that a model
 * trained there is served correctly here and the other way round:
 *   train: RandomResizedCrop(size) + RandomHorizontalFlip + ToTensor + Normalize
 *          = image_random_resized_crop_box, image_resample, image_normalize_chw(flip)
 *   eval:  Resize(resize_to) + CenterCrop(size) + ToTensor + Normalize
 *          = image_center_crop_box, image_resample, image_normalize_chw
 * Resize-then-crop is done as a single resample of the source box that maps to the crop,
 * which is what PIL computes for the cropped pixels anyway (its filter is evaluated at the same
 * source positions), without resizing pixels that are thrown away. For RandomResizedCrop,
 * torchvision crops first and then resizes, so there the filter at the crop's border sees only
 * the crop; ours also weighs the source pixels just outside it (within the filter's support),
 * which changes border pixels slightly and is immaterial for a random augmentation.
 *
 * Randomness comes from common/rng.h's generator seeded per (seed, epoch, sample), not from
 * torch's, so crops are reproducible run to run and independent of thread scheduling, but
 * are not the same draws as a Python run with the same seed.
 *
 * Not here: decoding (decode.h), batching and tensors (the data loader).
 *
 *     uint64_t rng = rng_seed(seed, epoch, index);
 *     struct image_box box = image_random_resized_crop_box(img.width, img.height, 0.08, &rng);
 *     uint8_t crop[224 * 224 * 3];
 *     if (image_resample(&img, box, 224, 224, crop) < 0) ...
 *     image_normalize_chw(crop, 224, mean, std, rng_uniform(&rng) < 0.5, x); // [3,224,224]
 */
#ifndef IMAGE_TRANSFORM_H
#define IMAGE_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "image/decode.h"

/* A source rectangle in pixels; fractional edges are meaningful to the resampler. */
struct image_box {
    double x, y, w, h;
};

/* Resamples `box` of src to out_w x out_h into out (out_w * out_h * 3 bytes, RGB HWC, caller's
 * buffer) with PIL's antialiased bilinear filter: Image.resize((out_w, out_h), BILINEAR,
 * box=(x, y, x + w, y + h)). Separable, horizontal pass then vertical, each output pixel a
 * normalised triangle-weighted sum whose support widens with the downscale factor; pixels
 * near the box edge use source pixels outside the box, up to the image's edge. Float weights
 * instead of PIL's fixed point: results agree with PIL within 1 (rounding).
 * The box must lie inside the image and not be empty; out_w, out_h in 1..IMAGE_MAX_SIDE. */
int image_resample(const struct image *src, struct image_box box, int out_w, int out_h,
                   uint8_t *out);

/* torchvision RandomResizedCrop.get_params with scale (min_scale, 1.0) and ratio (3/4, 4/3):
 * 10 tries of a random area and log-uniform aspect ratio, then the centre crop clamped to
 * the ratio range. The box has integer edges, as torchvision's (top, left, h, w). `rng` is the
 * caller's state (rng_seed in common/rng.h), advanced by each draw. min_scale in (0, 1]; out of range
 * values are clamped. width, height >= 1, else the box is empty (and image_resample refuses
 * it). */
struct image_box image_random_resized_crop_box(int width, int height, double min_scale,
                                               uint64_t *rng);

/* Resize(resize_to) (shorter side to resize_to) then CenterCrop(crop) as torchvision does
 * it, as the one source box that maps to the crop: resample it to crop x crop. Requires
 * crop <= resize_to (torchvision would pad instead); otherwise the box reaches outside the
 * image and image_resample refuses it. */
struct image_box image_center_crop_box(int width, int height, int resize_to, int crop);

/* rgb [size,size,3] uint8 -> out [3,size,size] float: (v / 255 - mean[c]) / std[c], in float
 * as ToTensor + Normalize compute it. flip mirrors horizontally (RandomHorizontalFlip) while
 * writing: out[c][y][x] comes from rgb[y][size - 1 - x][c]. */
/* image_resample to size x size followed by image_normalize_chw, in one pass without the
 * 8-bit intermediate image: the same values, for the data loader's hot path. */
int image_resample_normalized(const struct image *src, struct image_box box, int size,
                              const float mean[3], const float std[3], bool flip, float *out);

/* Training augmentation (the `augment` and `augmentation_type` hyperparameters):
 *   IMAGE_AUGMENT_NONE           the evaluation transform (the built-in algorithm's default)
 *   IMAGE_AUGMENT_RANDOM_RESIZED RandomResizedCrop(min_crop_scale) + flip (torchvision style)
 *   IMAGE_AUGMENT_CROP           random crop of the resized image + flip (built-in `crop`)
 *   IMAGE_AUGMENT_CROP_COLOR     and a random HLS shift (built-in `crop_color`)
 *   IMAGE_AUGMENT_CROP_COLOR_TRANSFORM  and rotation, shear, aspect (`crop_color_transform`) */
enum image_augment {
    IMAGE_AUGMENT_NONE = 0,
    IMAGE_AUGMENT_RANDOM_RESIZED = 1,
    IMAGE_AUGMENT_CROP,
    IMAGE_AUGMENT_CROP_COLOR,
    IMAGE_AUGMENT_CROP_COLOR_TRANSFORM,
};
const char *image_augment_name(enum image_augment a);

/* How an image becomes size x size for evaluation (the `resize_mode` hyperparameter):
 *   IMAGE_RESIZE_CROP    Resize(resize_size) on the shorter side + CenterCrop(size), as the
 *                        torchvision scripts evaluate;
 *   IMAGE_RESIZE_SQUASH  Resize((size, size)): the whole image squashed to the square, as the
 *                        binimages seed's script does (resize_size is not used);
 *   IMAGE_RESIZE_AUTO    as CROP, except that an image whose shorter side already is `size`
 *                        is only centre-cropped, not enlarged to resize_size first: datasets
 *                        stored at the model's size (CIFAR's 32x32) go in as their scripts
 *                        and the built-in algorithm (no `resize`) feed them. train's default. */
enum image_resize_mode { IMAGE_RESIZE_CROP = 0, IMAGE_RESIZE_SQUASH = 1, IMAGE_RESIZE_AUTO = 2 };
const char *image_resize_mode_name(enum image_resize_mode m);
/* "crop", "squash" or "auto" (case-insensitive) into *mode; -1 for anything else. */
int image_resize_mode_parse(const char *name, enum image_resize_mode *mode);

/* The source box the evaluation transform resamples to size x size. */
struct image_box image_eval_box(int width, int height, enum image_resize_mode mode,
                                int resize_size, int size);

/* The evaluation transform, one function for train's validation and serve's requests:
 * image_eval_box + ToTensor + Normalize into out [3,size,size]. */
int image_eval_transform(const struct image *img, enum image_resize_mode mode, int resize_size,
                         int size, const float mean[3], const float std[3], float *out);

/* The built-in algorithm's `crop` augmentation: the image resized as for evaluation (shorter
 * side to resize_to, or squashed to resize_to x resize_to, or left as it is under
 * IMAGE_RESIZE_AUTO when its shorter side is `crop`), then a crop x crop window at a
 * uniformly random integer position in it (MXNet's rand_crop), as a source box. */
struct image_box image_random_crop_box(int width, int height, enum image_resize_mode mode,
                                       int resize_to, int crop, uint64_t *rng);

void image_normalize_chw(const uint8_t *rgb, int size, const float mean[3], const float std[3],
                         bool flip, float *out);
/* The 3 x 256 values normalisation gives each byte of each channel: (v / 255 - mean[c]) /
 * std[c] in float, the one expression every normaliser here (and the training device's
 * lookup, tc_pixels_lookup) uses. */
void image_normalize_table(const float mean[3], const float std[3], float table[3][256]);
/* Mirrors rgb [height,width,3] horizontally in place (RandomHorizontalFlip on bytes). */
void image_mirror(uint8_t *rgb, int width, int height);

#endif
