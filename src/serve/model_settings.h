/*
 * model_settings.h - the default model_fn's settings (model_settings.c): preprocessing and how
 * the network runs, from the defaults, metadata.json and the environment.
 */
#ifndef SERVE_MODEL_SETTINGS_H
#define SERVE_MODEL_SETTINGS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "serve/model_dir.h"

/* A bare model.pth's preprocessing, from its architecture (sm->arch): ImageNet's Resize(256) +
 * CenterCrop(224) and statistics; LeNet 32x32. */
void model_settings_defaults(struct serve_model *sm);

/* The preprocessing fields of a metadata.json (all optional): image_size, resize_size, mean,
 * std, resize_mode (or eval_resize). path names the file in messages. */
int model_settings_from_metadata(const cJSON *j, const char *path, struct serve_model *sm);

/* A bare model.pth deployed with its Python handler (code/<SAGEMAKER_PROGRAM>, or
 * code/inference.py): the torchvision pipeline written there (python_transforms.h), over the
 * defaults. A pipeline serve cannot follow is logged and the defaults kept. Returns 0. */
int model_settings_from_handler(const char *model_dir, struct serve_model *sm);

/* SM_MODEL_MEAN, SM_MODEL_STD, SM_MODEL_IMAGE_SIZE, SM_MODEL_RESIZE_SIZE,
 * SM_MODEL_RESIZE_MODE: a Python user's statement of their preprocessing, over metadata.json
 * and the defaults. */
int model_settings_from_env(struct serve_model *sm);

/* SERVE_FOLD_BATCHNORM (true/false), SERVE_CHANNELS_LAST (auto/true/false: -1/1/0),
 * SERVE_PRECISION (float32/bfloat16) and SERVE_JPEG_DCT_SCALING (true/false) over the values
 * passed in. */
int model_settings_inference(bool *fold, int *channels_last, bool *bf16, bool *dct_scaling);

#endif
