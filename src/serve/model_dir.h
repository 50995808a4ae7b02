/*
 * model_dir.h - the default model_fn (model_dir.c): the model directory's weights and
 * preprocessing into a ready network.
 */
#ifndef SERVE_MODEL_DIR_H
#define SERVE_MODEL_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "image/transform.h"
#include "models/model.h"
#include "sm_handlers.h"
#include "torchc.h"

/* What the default model_fn loads (sm_context.model). */
struct serve_model {
    char arch[32];
    int num_classes;
    char **class_names;
    int image_size, resize_size;
    float mean[3], std[3];
    enum image_resize_mode resize_mode; /* crop, squash or auto (image/transform.h) */
    struct model *net;
    tc_device device;
    char device_name[16]; /* "cpu", "cuda:1": for logs */
    bool channels_last;
    bool bf16; /* SERVE_PRECISION=bfloat16: the forward pass under bf16 autocast */
    int response_shape; /* metadata.json's response_format (enum serve_shape), or -1 */
    struct model_head head; /* ResNet's fc as a Sequential of linear layers; 0 layers: one */
};

int serve_model_fn(const char *model_dir, struct sm_context *ctx, struct sm_error *err);
void serve_model_free(struct serve_model *sm);
/* The model the calling thread's last successful serve_model_fn made, then forgotten (NULL if
 * none): tells whether a custom model_fn's context is the default's, which the caller frees. */
struct serve_model *serve_model_fn_take_last(void);
/* The architecture of a state dict Python saved, its class count and (ResNet) the layers of
 * a Sequential fc, from the tensors' names and shapes. */
int model_dir_infer_arch(const tc_state_dict *sd, char *arch, size_t len, int *num_classes,
                         struct model_head *head);

/* x [n,3,S,S] float on the CPU -> float32 logits [n,k] on the model's device, under the
 * model's precision and memory format; in the caller's scope, without autograd. The copy to a
 * GPU is non-blocking: x's memory must stay as it is until the logits have been read back. */
tc_tensor *serve_model_forward(const struct serve_model *sm, const tc_tensor *x);

#endif
