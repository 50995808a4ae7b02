/*
 * python_transforms.h - the torchvision preprocessing a Python handler (the SDK's
 * code/inference.py) writes, read from its source text, so that a model deployed with
 * PyTorchModel(entry_point=...) is fed as that script fed it, with no setting of ours.
 *
 * Only literal pipelines are understood: transforms.Compose([...]) of Resize, CenterCrop,
 * ToTensor (or PILToTensor + ConvertImageDtype) and Normalize with number arguments. A Compose
 * with a Random* step is a training pipeline and is passed over; anything else in an inference
 * pipeline (Grayscale, Lambda, a variable argument) makes the whole file "not understood", and
 * serve keeps its defaults and says why. Nothing is executed.
 */
#ifndef SERVE_PYTHON_TRANSFORMS_H
#define SERVE_PYTHON_TRANSFORMS_H

#include <stdbool.h>
#include <stddef.h>

#define PY_SOURCE_MAX (1u << 20) /* a handler longer than 1 MiB is not read */

struct py_transforms {
    int resize;              /* Resize(n): the shorter side to n; 0: none */
    int resize_h, resize_w;  /* Resize((h, w)): both sides; 0: none */
    int crop;                /* CenterCrop(n) (or (n, n)); 0: none */
    bool normalize;          /* Normalize(mean, std) seen */
    float mean[3], std[3];   /* per channel, on 0-1 pixels (0 and 1 without Normalize) */
    bool pixels_0_255;       /* PILToTensor without ConvertImageDtype: mean/std apply to 0-255 */
};

/* Finds the inference pipeline in `src` (len bytes of Python). Returns 1 with *out filled when
 * there is exactly one (or several alike), 0 when there is none or it is not understood, with
 * a sentence in `why` either way. */
int py_transforms_find(const char *src, size_t len, struct py_transforms *out, char *why,
                       size_t why_len);

#endif
