/*
 * arch.h - the architectures this image has, and what code outside the networks needs to know
 * of each: its name, family and depth, the input side it requires, and the preprocessing it
 * gets by default. The one list of them (hyperparameter checks, model creation, serve's
 * defaults and messages all read it). No libtorch: the fuzzed parsers link it.
 */
#ifndef MODELS_ARCH_H
#define MODELS_ARCH_H

#include <stddef.h>

/* ARCH_VGG_CIFAR: the VGG of PyTorch CIFAR scripts (batch norm, one Linear(512) head). */
enum arch_family { ARCH_RESNET, ARCH_VGG, ARCH_VGG_BN, ARCH_VGG_CIFAR, ARCH_LENET };

struct arch_info {
    const char *name;        /* torchvision's name: "resnet50", "vgg16_bn"; "lenet", "vgg11_cifar" */
    enum arch_family family;
    int depth;               /* 18..152 for ResNet, 11..19 for VGG, 0 for LeNet */
    int fixed_input_size;    /* the only input side it takes (LeNet's 32), 0: any */
    int default_image_size;  /* the input side when none is given: 224, LeNet and CIFAR VGG 32 */
    const float *mean, *std; /* default normalisation: ImageNet's, LeNet and CIFAR VGG 0.5/0.5 */
};

/* ImageNet's channel statistics, what torchvision's pretrained weights expect. */
extern const float arch_imagenet_mean[3], arch_imagenet_std[3];

/* The architecture named `name` (exact, lower case), or NULL. */
const struct arch_info *arch_find(const char *name);

/* The i-th architecture, or NULL past the last. */
const struct arch_info *arch_at(size_t i);

/* "resnet18, resnet34, ..., lenet": every name, for messages, into buf (truncated to len). */
#define ARCH_NAMES_MAX 256
const char *arch_names(char *buf, size_t len);

#endif
