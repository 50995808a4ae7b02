/*
 * arch.c - the architecture table (arch.h).
 */
#include "models/arch.h"

#include <stdio.h>
#include <string.h>

const float arch_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float arch_imagenet_std[3] = {0.229f, 0.224f, 0.225f};
/* The CIFAR-10 seed's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), for its LeNet and VGG. */
static const float half[3] = {0.5f, 0.5f, 0.5f};

#define IMAGENET 224, arch_imagenet_mean, arch_imagenet_std
#define CIFAR 32, half, half
static const struct arch_info archs[] = {
    {"resnet18", ARCH_RESNET, 18, 0, IMAGENET},   {"resnet34", ARCH_RESNET, 34, 0, IMAGENET},
    {"resnet50", ARCH_RESNET, 50, 0, IMAGENET},   {"resnet101", ARCH_RESNET, 101, 0, IMAGENET},
    {"resnet152", ARCH_RESNET, 152, 0, IMAGENET}, {"vgg11", ARCH_VGG, 11, 0, IMAGENET},
    {"vgg13", ARCH_VGG, 13, 0, IMAGENET},         {"vgg16", ARCH_VGG, 16, 0, IMAGENET},
    {"vgg19", ARCH_VGG, 19, 0, IMAGENET},         {"vgg11_bn", ARCH_VGG_BN, 11, 0, IMAGENET},
    {"vgg13_bn", ARCH_VGG_BN, 13, 0, IMAGENET},   {"vgg16_bn", ARCH_VGG_BN, 16, 0, IMAGENET},
    {"vgg19_bn", ARCH_VGG_BN, 19, 0, IMAGENET},   {"lenet", ARCH_LENET, 0, 32, 32, half, half},
    {"vgg11_cifar", ARCH_VGG_CIFAR, 11, 0, CIFAR}, {"vgg13_cifar", ARCH_VGG_CIFAR, 13, 0, CIFAR},
    {"vgg16_cifar", ARCH_VGG_CIFAR, 16, 0, CIFAR}, {"vgg19_cifar", ARCH_VGG_CIFAR, 19, 0, CIFAR},
};
#define ARCH_COUNT (sizeof archs / sizeof *archs)

const struct arch_info *arch_find(const char *name)
{
    for (size_t i = 0; name && i < ARCH_COUNT; i++)
        if (strcmp(archs[i].name, name) == 0)
            return &archs[i];
    return NULL;
}

const struct arch_info *arch_at(size_t i)
{
    return i < ARCH_COUNT ? &archs[i] : NULL;
}

const char *arch_names(char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < ARCH_COUNT && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", archs[i].name);
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}
