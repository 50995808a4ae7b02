/*
 * model_load.c - copying a state dict (ours, or one a Python user saved from torchvision)
 * into a model, all or nothing.
 *
 * Every key is checked before anything is copied, so a file that does not fit leaves the
 * model as it was and the error names the keys at fault. DataParallel's "module." prefix is
 * removed. When class counts differ and the caller allows it, the head keeps its fresh
 * initialisation (transfer learning from ImageNet weights, say).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/model.h"

#define PREFIX "module."
#define LIST_MAX 6 /* keys named per category in the message */

struct key_list {
    size_t count;
    char text[600];
};

static void key_list_add(struct key_list *l, const char *fmt, ...)
{
    l->count++;
    if (l->count > LIST_MAX) {
        if (l->count == LIST_MAX + 1)
            strncat(l->text, ", ...", sizeof l->text - strlen(l->text) - 1);
        return;
    }
    size_t used = strlen(l->text);
    if (used && used < sizeof l->text)
        used += (size_t)snprintf(l->text + used, sizeof l->text - used, ", ");
    if (used >= sizeof l->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text + used, sizeof l->text - used, fmt, ap);
    va_end(ap);
}

static bool all_keys_prefixed(const tc_state_dict *sd)
{
    size_t n = tc_state_dict_size(sd);
    for (size_t i = 0; i < n; i++)
        if (strncmp(tc_state_dict_name(sd, i), PREFIX, strlen(PREFIX)) != 0)
            return false;
    return n > 0;
}

/* The file's tensor for our key `name`, or NULL (borrowed from the caller's scope). */
static tc_tensor *lookup(const tc_state_dict *sd, const char *name, bool prefixed)
{
    char key[NN_NAME_MAX + sizeof PREFIX];
    snprintf(key, sizeof key, "%s%s", prefixed ? PREFIX : "", name);
    return tc_state_dict_has(sd, key) ? tc_state_dict_get(sd, key) : NULL;
}

static bool model_has_key(const struct model *m, const char *file_key, bool prefixed)
{
    const char *name = prefixed ? file_key + strlen(PREFIX) : file_key;
    return nn_registry_find(&m->params, name) != NULL;
}

int model_load_state_dict(struct model *m, const tc_state_dict *sd,
                          const struct model_load_options *options,
                          struct model_load_report *report)
{
    struct model_load_report local;
    struct model_load_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    bool skip_head = options && options->skip_mismatched_head;
    bool prefixed = all_keys_prefixed(sd);
    r->stripped_module_prefix = prefixed;

    struct key_list missing = {0}, unexpected = {0}, mismatched = {0};
    bool head_mismatch = false;
    tc_scope *s = tc_scope_begin();

    /* Pass 1: check every key. */
    for (size_t i = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        tc_tensor *src = lookup(sd, e->name, prefixed);
        if (!src) {
            key_list_add(&missing, "%s", e->name);
            continue;
        }
        if (!tc_same_shape(src, e->tensor)) {
            char have[64], want[64];
            if (e->group == NN_HEAD)
                head_mismatch = true;
            if (e->group != NN_HEAD || !skip_head)
                key_list_add(&mismatched, "%s: file %s, model %s", e->name,
                             tc_shape_str(src, have, sizeof have),
                             tc_shape_str(e->tensor, want, sizeof want));
        }
    }
    size_t n = tc_state_dict_size(sd);
    for (size_t i = 0; i < n; i++)
        if (!model_has_key(m, tc_state_dict_name(sd, i), prefixed))
            key_list_add(&unexpected, "%s", tc_state_dict_name(sd, i) + (prefixed ? strlen(PREFIX) : 0));

    r->missing = missing.count;
    r->unexpected = unexpected.count;
    r->mismatched = mismatched.count;
    snprintf(r->detail, sizeof r->detail, "missing %zu [%s]; unexpected %zu [%s]; wrong shape %zu [%s]",
             missing.count, missing.text, unexpected.count, unexpected.text, mismatched.count,
             mismatched.text);
    if (missing.count || unexpected.count || mismatched.count) {
        tc_scope_end(s);
        return err_set("the state dict does not fit %s with %d classes: %s%s", m->arch,
                       m->num_classes, r->detail,
                       head_mismatch && !skip_head
                           ? " (the classifier head differs: is num_classes right?)"
                           : "");
    }

    /* Pass 2: copy. The head is skipped whole when any part of it did not fit. */
    r->head_skipped = head_mismatch;
    for (size_t i = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        if (e->group == NN_HEAD && head_mismatch)
            continue;
        if (tc_copy_(e->tensor, lookup(sd, e->name, prefixed)) < 0) {
            err_set("copying %s: %s", e->name, tc_last_error());
            tc_scope_end(s);
            return -1;
        }
        r->loaded++;
    }
    tc_scope_end(s);
    return 0;
}

int model_load_file(struct model *m, const char *path, const struct model_load_options *options,
                    struct model_load_report *report)
{
    tc_state_dict *sd = tc_state_dict_load(path);
    if (!sd)
        return err_set("loading %s: %s", path, tc_last_error());
    int rc = model_load_state_dict(m, sd, options, report);
    tc_state_dict_free(sd);
    if (rc < 0)
        return err_prefix("loading %s: ", path);
    return 0;
}
