/*
 * channels.c - naming the channels (see channels.h).
 */
#define _DEFAULT_SOURCE
#include "train/channels.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/dir_walk.h"
#include "common/error.h"
#include "common/json_file.h"
#include "common/log.h"

static const struct {
    const char *name;
    size_t offset;
    size_t lst_offset; /* 0: no .lst companion */
} known[] = {
#define C(f) offsetof(struct channel_set, f)
    {"train", C(train), C(train_lst)},          {"training", C(train), C(train_lst)},
    {"validation", C(validation), C(validation_lst)}, {"valid", C(validation), C(validation_lst)},
    {"val", C(validation), C(validation_lst)},   {"test", C(test), C(test_lst)},
    {"testing", C(test), C(test_lst)},          {"pretrained", C(pretrained), 0},
    {"model", C(pretrained), 0},                {"pretrained_model", C(pretrained), 0},
#undef C
};

static int assign(const struct opt_ml *p, struct channel_set *out, const char *name)
{
    char lower[128];
    size_t n = strlen(name);
    if (n >= sizeof lower) {
        log_warn("channel %s ignored: a channel name of %zu characters is none this image reads",
                 name, n);
        return 0;
    }
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    bool lst = n > 4 && strcmp(lower + n - 4, "_lst") == 0;
    if (lst)
        lower[n - 4] = '\0';
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (strcmp(known[i].name, lower) != 0 || (lst && !known[i].lst_offset))
            continue;
        char *slot = (char *)out + (lst ? known[i].lst_offset : known[i].offset);
        if (slot[0]) {
            log_warn("channel %s ignored: another channel already serves as %s", name, known[i].name);
            return 0;
        }
        return opt_ml_join(slot, OPT_ML_PATH_MAX, p->data_dir, name);
    }
    log_warn("channel %s is not one this image reads (train, validation, test, pretrained, "
             "<channel>_lst); ignored",
             name);
    return 0;
}

/* Which split a folder name is: 0 train, 1 validation, 2 test, -1 none. */
static int split_of(const char *name)
{
    static const char *const names[][3] = {
        {"train", "training", NULL}, {"valid", "validation", "val"}, {"test", "testing", NULL}};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 3 && names[s][i]; i++)
            if (strcasecmp(name, names[s][i]) == 0)
                return s;
    return -1;
}

/* The seeds' scripts read one channel holding train/, valid/ and test/ folders
 * (os.path.join(SM_CHANNEL_TRAINING, "train"), as the dog-breed and bin-image projects do).
 * When every folder of the train channel is such a split name and one of them is train's,
 * train on that folder and validate and test on the others, unless channels of their own are
 * given; class folders named "train" and "test" would otherwise become a 2-class job. A
 * channel with a manifest or RecordIO files at its top is left as it is. */
static int split_folders(struct channel_set *out)
{
    char *slots[3] = {out->train, out->validation, out->test};
    char found[3][OPT_ML_PATH_MAX] = {{0}};
    char **names = NULL;
    size_t count = 0;
    if (out->train_lst[0] || dir_list_names(out->train, &names, &count) < 0) {
        err_clear(); /* a train channel that cannot be read fails when the dataset opens */
        return 0;
    }
    /* The split folders first (a stat each), so that a flat channel of a million files costs
     * no stat at all; then, only when there is a train folder, whether anything else (a class
     * folder, a manifest) sits beside it. Sorted names: the same answer on every filesystem. */
    bool other = false;
    int folders = 0;
    char path[OPT_ML_PATH_MAX];
    struct stat st;
    for (size_t i = 0; i < count; i++) {
        int s = split_of(names[i]);
        if (s < 0 || opt_ml_join(path, sizeof path, out->train, names[i]) < 0 ||
            stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (found[s][0])
            other = true; /* two folders for one split */
        else
            snprintf(found[s], sizeof found[s], "%s", path), folders++;
    }
    for (size_t i = 0; found[0][0] && !other && i < count; i++) {
        if (split_of(names[i]) >= 0 || opt_ml_join(path, sizeof path, out->train, names[i]) < 0 ||
            stat(path, &st) != 0)
            continue;
        const char *dot = strrchr(names[i], '.');
        if (S_ISDIR(st.st_mode) ||
            (dot && (strcasecmp(dot, ".lst") == 0 || strcasecmp(dot, ".rec") == 0)))
            other = true; /* a class folder, a manifest, RecordIO files */
    }
    dir_names_free(names, count);
    if (other && found[0][0] && (found[1][0] || found[2][0]))
        log_warn("the train channel %s has folders named train and %s beside others: they are "
                 "read as classes; if they are the splits of a dataset, leave only train/, "
                 "valid/ and test/ in the channel",
                 out->train, found[1][0] ? "valid" : "test");
    if (other || !found[0][0])
        return 0;
    char said[3 * OPT_ML_PATH_MAX + 128] = "";
    for (int s = 0; s < 3; s++) {
        if (!found[s][0])
            continue;
        static const char *const role[] = {"training", "validation", "test"};
        if (s > 0 && slots[s][0]) {
            log_warn("%s is not used for %s: the job has a %s channel of its own (%s)", found[s],
                     role[s], role[s], slots[s]);
            continue;
        }
        memcpy(slots[s], found[s], OPT_ML_PATH_MAX);
        size_t n = strlen(said);
        snprintf(said + n, sizeof said - n, "%s%s for %s", n ? ", " : "", found[s], role[s]);
    }
    log_info("the train channel holds split folders (%d of train/valid/test) instead of class "
             "folders: using %s",
             folders, said);
    return 0;
}

int channels_find(const struct opt_ml *p, struct channel_set *out)
{
    memset(out, 0, sizeof *out);
    char path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_join(path, sizeof path, p->config_dir, "inputdataconfig.json") < 0)
        return err_default_reason(ERR_REASON_CONFIG);
    FILE *probe = fopen(path, "r");
    int rc = 0;
    if (probe) {
        fclose(probe);
        cJSON *cfg;
        if (json_read_file(path, 1 << 20, &cfg) < 0)
            return -1;
        if (!cJSON_IsObject(cfg)) {
            cJSON_Delete(cfg);
            return err_set("%s must hold one JSON object of channels", path);
        }
        for (cJSON *ch = cfg->child; ch && rc == 0; ch = ch->next) {
            const cJSON *mode = cJSON_GetObjectItemCaseSensitive(ch, "TrainingInputMode");
            if (cJSON_IsString(mode) && strcasecmp(mode->valuestring, "Pipe") == 0) {
                rc = err_set_reason(ERR_REASON_CONFIG,
                                    "channel %s uses Pipe input mode, which this image does not "
                                    "read: use File or FastFile mode",
                                    ch->string);
                break;
            }
            const cJSON *dist = cJSON_GetObjectItemCaseSensitive(ch, "S3DistributionType");
            if (cJSON_IsString(dist) && strcmp(dist->valuestring, "ShardedByS3Key") == 0 &&
                !out->sharded[0])
                snprintf(out->sharded, sizeof out->sharded, "%s", ch->string);
            rc = assign(p, out, ch->string);
        }
        cJSON_Delete(cfg);
    } else {
        /* No inputdataconfig.json (a local run): the folders, sorted, so that "train" beats
         * "training" wherever both exist, whatever order the filesystem lists them in. */
        char **names = NULL;
        size_t count = 0;
        if (dir_list_names(p->data_dir, &names, &count) < 0)
            err_clear(); /* no data folder at all: "no train channel" below says more */
        for (size_t i = 0; rc == 0 && i < count; i++)
            rc = assign(p, out, names[i]);
        dir_names_free(names, count);
    }
    if (rc == 0 && !out->train[0])
        rc = err_set("no train channel: give the job a channel named \"train\" (or \"training\") "
                     "holding the training images; looked in %s",
                     p->data_dir);
    if (rc == 0)
        rc = split_folders(out);
    return rc;
}

struct pretrained_search {
    char *out;
    size_t len;
};

static int visit_pretrained(void *arg, const char *path, const char *name, const struct stat *st,
                            int depth)
{
    (void)depth;
    struct pretrained_search *search = arg;
    const char *dot = strrchr(name, '.');
    if (!S_ISREG(st->st_mode) || !dot || (strcmp(dot, ".pth") != 0 && strcmp(dot, ".pt") != 0))
        return 0;
    return opt_ml_copy(search->out, search->len, path) < 0 ? -1 : 1;
}

int channels_pretrained_file(const char *dir, char *out, size_t len)
{
    out[0] = '\0';
    struct pretrained_search search = {out, len};
    int rc = dir_walk(dir, visit_pretrained, &search);
    if (rc < 0) {
        out[0] = '\0';
        return err_prefix("the pretrained channel: ");
    }
    return 0;
}
