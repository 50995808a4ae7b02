/*
 * progress.c - a training job's progress and its JSON form (see progress.h).
 */
#include "train/progress.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/error.h"
#include "common/json_file.h"

int progress_history_add(struct train_progress *p, const struct epoch_metrics *m)
{
    if (p->history_count == p->history_cap) {
        int cap = p->history_cap ? p->history_cap * 2 : 64;
        struct epoch_metrics *grown = realloc(p->history, (size_t)cap * sizeof *grown);
        if (!grown)
            return err_set_reason(ERR_REASON_OUT_OF_MEMORY,
                                  "out of memory for the results of %d epochs", cap);
        p->history = grown;
        p->history_cap = cap;
    }
    p->history[p->history_count++] = *m;
    return 0;
}

void progress_free(struct train_progress *p)
{
    free(p->history);
    memset(p, 0, sizeof *p);
}

cJSON *epoch_metrics_to_json(const struct epoch_metrics *m)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "epoch", m->epoch);
    cJSON_AddNumberToObject(e, "train_loss", m->train_loss);
    cJSON_AddNumberToObject(e, "train_acc", m->train_acc);
    cJSON_AddNumberToObject(e, "val_loss", m->val_loss);
    cJSON_AddNumberToObject(e, "val_acc", m->val_acc);
    cJSON_AddNumberToObject(e, "lr", m->lr);
    cJSON_AddNumberToObject(e, "images_per_sec", m->images_per_sec);
    cJSON_AddNumberToObject(e, "seconds", m->seconds);
    return e;
}

struct epoch_metrics epoch_metrics_from_json(const cJSON *j)
{
    return (struct epoch_metrics){
        (int)json_number(j, "epoch"), json_number(j, "train_loss"), json_number(j, "train_acc"),
        json_number(j, "val_loss"),   json_number(j, "val_acc"),    json_number(j, "lr"),
        json_number(j, "images_per_sec"), json_number(j, "seconds"),
    };
}

void progress_to_json(const struct train_progress *p, cJSON *j)
{
    cJSON_AddNumberToObject(j, "next_epoch", p->next_epoch);
    cJSON_AddNumberToObject(j, "next_batch", (double)p->next_batch);
    cJSON_AddNumberToObject(j, "partial_loss_sum", p->partial_loss_sum);
    cJSON_AddNumberToObject(j, "partial_correct", p->partial_correct);
    cJSON_AddNumberToObject(j, "partial_seen", p->partial_seen);
    cJSON_AddNumberToObject(j, "best_epoch", p->best_epoch);
    cJSON_AddNumberToObject(j, "best_val_acc", p->best_val_acc);
    cJSON_AddNumberToObject(j, "epochs_without_improvement", p->epochs_without_improvement);
    cJSON *hist = cJSON_AddArrayToObject(j, "history");
    for (int i = 0; i < p->history_count; i++)
        cJSON_AddItemToArray(hist, epoch_metrics_to_json(&p->history[i]));
}

int progress_from_json(const cJSON *state, struct train_progress *p)
{
    p->next_epoch = (int)json_number(state, "next_epoch");
    p->next_batch = (size_t)json_number(state, "next_batch");
    p->partial_loss_sum = json_number(state, "partial_loss_sum");
    p->partial_correct = json_number(state, "partial_correct");
    p->partial_seen = json_number(state, "partial_seen");
    p->best_epoch = (int)json_number(state, "best_epoch");
    p->best_val_acc = json_number(state, "best_val_acc");
    p->epochs_without_improvement = (int)json_number(state, "epochs_without_improvement");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(state, "history");
    const cJSON *e;
    p->history_count = 0;
    cJSON_ArrayForEach(e, hist)
    {
        struct epoch_metrics m = epoch_metrics_from_json(e);
        if (progress_history_add(p, &m) < 0)
            return -1;
    }
    return 0;
}
