/*
 * channels.h - which input channel is which. SageMaker names channels as the user chose;
 * these are recognised: train/training, validation/valid/val, test/testing,
 * pretrained/model/pretrained_model (a torchvision .pth to start from), and "<channel>_lst"
 * beside any of the first three for SageMaker's .lst manifests. A train channel whose folders
 * are all split names (train/training, valid/validation/val, test/testing) is the seeds'
 * one-channel layout: its folders become the train, validation and test channels.
 */
#ifndef TRAIN_CHANNELS_H
#define TRAIN_CHANNELS_H

#include "common/opt_ml.h"

struct channel_set {
    char train[OPT_ML_PATH_MAX], validation[OPT_ML_PATH_MAX], test[OPT_ML_PATH_MAX];
    char train_lst[OPT_ML_PATH_MAX], validation_lst[OPT_ML_PATH_MAX], test_lst[OPT_ML_PATH_MAX];
    char pretrained[OPT_ML_PATH_MAX];
    char sharded[128]; /* a channel with S3DistributionType ShardedByS3Key, or "" */
};

/* Fills the directories of the channels present ("" for absent ones). Channel names come
 * from inputdataconfig.json, or from the data directory when that file is absent. Fails
 * without a train channel, and for Pipe mode, which this image does not read. */
int channels_find(const struct opt_ml *p, struct channel_set *out);

/* The first *.pth / *.pt file in a pretrained channel (searched recursively in sorted order,
 * without following links to folders: see common/dir_walk.h), or "". */
int channels_pretrained_file(const char *dir, char *out, size_t len);

#endif
