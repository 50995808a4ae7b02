/*
 * fuzz_config_files.c - libFuzzer target: the configuration files SageMaker writes into
 * /opt/ml/input/config, read as train reads them: resourceconfig.json (cluster_read) and
 * inputdataconfig.json (channels_find) and hyperparameters.json (hyperparams_load, then
 * hyperparams_finish as train runs them). Byte 0 picks the file (modulo 3); the rest is its
 * text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/opt_ml.h"
#include "fuzz_util.h"
#include "train/channels.h"
#include "train/cluster.h"
#include "train/hyperparams.h"
#include "train/hyperparams_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1)
        return 0;
    static struct opt_ml paths;
    if (!paths.root[0]) {
        snprintf(paths.root, sizeof paths.root, "%s", fuzz_scratch());
        snprintf(paths.config_dir, sizeof paths.config_dir, "%s/config", paths.root);
        snprintf(paths.data_dir, sizeof paths.data_dir, "%s/data", paths.root);
        mkdir(paths.config_dir, 0755);
        mkdir(paths.data_dir, 0755);
        char train[2048];
        snprintf(train, sizeof train, "%s/train", paths.data_dir);
        mkdir(train, 0755);
    }
    char path[2048];
    if (data[0] % 3 == 2) {
        snprintf(path, sizeof path, "%s/hyperparameters.json", paths.config_dir);
        fuzz_write(path, data + 1, len - 1);
        struct hyperparams hp;
        hyperparams_default(&hp);
        if (hyperparams_load(path, &hp) == 0)
            (void)hyperparams_finish(&hp);
    } else if (data[0] % 3 == 1) {
        snprintf(path, sizeof path, "%s/resourceconfig.json", paths.config_dir);
        fuzz_write(path, data + 1, len - 1);
        struct cluster c;
        (void)cluster_read(paths.config_dir, &c);
    } else {
        snprintf(path, sizeof path, "%s/inputdataconfig.json", paths.config_dir);
        fuzz_write(path, data + 1, len - 1);
        struct channel_set channels;
        (void)channels_find(&paths, &channels);
    }
    return 0;
}
