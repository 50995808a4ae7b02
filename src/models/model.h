/*
 * model.h - image classifiers by name: resnet18/34/50/101/152, vgg11/13/16/19 (and _bn),
 * and the seeds' wide LeNet, written in C over torchc.
 *
 * Every torchvision architecture has exactly the parameter and buffer names and shapes of
 * torchvision.models.<arch>(num_classes=N).state_dict(), so weights move both ways between
 * this code and Python. The classifier head (fc / classifier.6 / fc3) is its own parameter
 * group so that the backbone can be frozen.
 *
 *     struct model *m;
 *     if (model_create("resnet50", 10, &m) < 0) die(err_msg());
 *     tc_scope *s = tc_scope_begin();
 *     tc_tensor *logits = model_forward(m, images, false);   // [N,3,H,W] -> [N,10]
 *     ...
 *     tc_scope_end(s);
 *     model_free(m);
 */
#ifndef MODELS_MODEL_H
#define MODELS_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "models/nn.h"
#include "torchc.h"

struct model;

/* A ResNet classifier head of several linear layers, as scripts replace torchvision's fc:
 * fc = nn.Sequential(nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, N)). Linear i is named
 * fc.<index[i]> (its place in the Sequential) and has out[i] outputs; the last one's are the
 * classes. Where the places leave a gap (something without weights: ReLU, Dropout) a ReLU
 * runs; adjacent linear layers follow each other directly. layers 0: torchvision's fc. */
#define MODEL_HEAD_MAX 8
struct model_head {
    int layers;
    int index[MODEL_HEAD_MAX];
    int64_t out[MODEL_HEAD_MAX];
};

/* The architecture-specific part: a network struct and its forward pass. */
struct model_impl {
    void *net;
    tc_tensor *(*forward)(struct model *m, const tc_tensor *x, bool training);
    void (*free_net)(void *net);
    /* Folds every batch norm into the convolution before it (nn_fold_batchnorm); NULL for a
     * network without batch norm. */
    int (*fold_batchnorm)(struct model *m);
};

struct model {
    char arch[32];
    int num_classes;
    int fixed_input_size; /* arch.h's: LeNet needs 32x32; 0: any size */
    struct nn_registry params;
    struct model_impl impl;
    bool folded; /* model_fold_batchnorm ran: evaluation only, not saved */
    struct model_head head; /* ResNet's fc as a Sequential; layers 0: torchvision's */
};

enum model_param_set {
    MODEL_PARAMS_ALL,       /* every trainable parameter, frozen or not */
    MODEL_PARAMS_BACKBONE,  /* everything but the classifier head */
    MODEL_PARAMS_HEAD,      /* the classifier head */
    MODEL_PARAMS_TRAINABLE, /* those that currently require grad */
    MODEL_TENSORS_ALL,      /* every parameter and buffer: the whole state dict */
    MODEL_BUFFERS,          /* the buffers alone (batch-norm running statistics) */
};

/* The i-th architecture model_create accepts, or NULL past the last. */
const char *model_arch_name(size_t i);
bool model_arch_known(const char *arch);

/* Builds `arch` with `num_classes` outputs, initialised as torchvision does (seed with
 * tc_manual_seed first for reproducibility). The model lives on the CPU. */
int model_create(const char *arch, int num_classes, struct model **out);
/* The same with a Sequential head (ResNet only; NULL or 0 layers: torchvision's fc). */
int model_create_with_head(const char *arch, int num_classes, const struct model_head *head,
                           struct model **out);
/* Whether a ReLU runs after the head's linear layer i (a gap before the next one's place). */
bool model_head_activated(const struct model_head *head, int i);
/* "fc.0 Linear(256), ReLU, fc.2 Linear(133)": the head's layers, for messages. */
const char *model_head_describe(const struct model *m, char *buf, size_t len);
void model_free(struct model *m);

/* x [N,3,H,W] float -> logits [N,num_classes]. training: batch-norm batch statistics (and
 * their running averages updated), dropout on. Returns NULL on error (tc_last_error()). */
tc_tensor *model_forward(struct model *m, const tc_tensor *x, bool training);

/* Borrowed pointers to the parameters of one set, in state-dict order, in a malloc'd array
 * (the caller frees the array, not the tensors). */
int model_parameters(const struct model *m, enum model_param_set which, tc_tensor ***out,
                     size_t *count);
/* As model_parameters, with each tensor's state-dict name in *names (malloc'd array of
 * borrowed strings) when names is not NULL. */
int model_tensors(const struct model *m, enum model_param_set which, tc_tensor ***out,
                  const char ***names, size_t *count);
int64_t model_parameter_count(const struct model *m, enum model_param_set which);
/* Frozen: the backbone's parameters stop requiring gradients; only the head trains. */
int model_freeze_backbone(struct model *m, bool frozen);
/* Moves every tensor to device d, in place (handles held elsewhere follow). */
int model_to(struct model *m, tc_device d, bool channels_last);

/* A state dict sharing the model's tensors (free it with tc_state_dict_free). */
tc_state_dict *model_state_dict(const struct model *m);

/* For serving: folds each evaluation-mode batch norm into the convolution before it, so that
 * a forward pass runs one operation where it ran two (ResNet, VGG with _bn; nothing to do
 * for the others). Results equal the unfolded network's within float rounding. Afterwards
 * the model evaluates only: a training forward pass, model_state_dict and model_save fail. */
int model_fold_batchnorm(struct model *m);
/* Saves model.pth that torch.load + torchvision load_state_dict accept; atomic. */
int model_save(const struct model *m, const char *path);

/* ---- loading weights (model_load.c) ---- */

struct model_load_options {
    bool skip_mismatched_head; /* class counts differ: keep our freshly initialised head */
};

#define MODEL_LOAD_DETAIL_MAX 2048
struct model_load_report {
    size_t loaded, missing, unexpected, mismatched;
    bool head_skipped;
    bool stripped_module_prefix; /* keys came as "module.xxx" (DataParallel) */
    char detail[MODEL_LOAD_DETAIL_MAX]; /* names the offending keys */
};

/* Copies a state dict into the model. Every key must match in name and shape, except the
 * head when options allow skipping it; otherwise nothing is changed and the error lists the
 * missing, unexpected and wrongly shaped keys. `report` may be NULL. */
int model_load_state_dict(struct model *m, const tc_state_dict *sd,
                          const struct model_load_options *options,
                          struct model_load_report *report);
/* The same from a torch.save file. */
int model_load_file(struct model *m, const char *path, const struct model_load_options *options,
                    struct model_load_report *report);

/* ---- the architectures (resnet.c, vgg.c, lenet.c) ---- */

int resnet_build(struct model *m, int depth); /* m->head: fc's layers */
/* cifar_head: the CIFAR VGG (always with batch norm), one Linear(512, classes) `classifier`. */
int vgg_build(struct model *m, int depth, bool batch_norm, bool cifar_head);
int lenet_build(struct model *m);

#endif
