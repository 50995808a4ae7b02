/*
 * model.c - the architecture registry and what every model shares: creation by name, the
 * checked forward pass, parameter sets, freezing, moving between devices and saving.
 * Loading weights is in model_load.c.
 */
#include "models/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fileio.h"
#include "models/arch.h"

const char *model_arch_name(size_t i)
{
    const struct arch_info *a = arch_at(i);
    return a ? a->name : NULL;
}

bool model_arch_known(const char *arch)
{
    return arch_find(arch) != NULL;
}

int model_create(const char *arch_name, int num_classes, struct model **out)
{
    return model_create_with_head(arch_name, num_classes, NULL, out);
}

static int check_head(const struct arch_info *arch, int num_classes, const struct model_head *h)
{
    if (h->layers < 0 || h->layers > MODEL_HEAD_MAX)
        return err_set("a classifier head of %d linear layers (1 to %d)", h->layers, MODEL_HEAD_MAX);
    if (arch->family != ARCH_RESNET)
        return err_set("%s has no fc to replace: a Sequential head is for ResNets", arch->name);
    for (int i = 0; i < h->layers; i++) {
        if (h->index[i] < 0 || (i > 0 && h->index[i] <= h->index[i - 1]))
            return err_set("the head's layer indices must increase (fc.%d after fc.%d)",
                           h->index[i], i > 0 ? h->index[i - 1] : -1);
        if (h->out[i] < 1 || h->out[i] > 1000000)
            return err_set("the head's layer fc.%d has %lld outputs", h->index[i], (long long)h->out[i]);
    }
    if (h->layers > 0 && h->out[h->layers - 1] != num_classes)
        return err_set("the head's last layer has %lld outputs for %d classes",
                       (long long)h->out[h->layers - 1], num_classes);
    return 0;
}

int model_create_with_head(const char *arch_name, int num_classes, const struct model_head *head,
                           struct model **out)
{
    *out = NULL;
    const struct arch_info *arch = arch_find(arch_name);
    char names[ARCH_NAMES_MAX];
    if (!arch)
        return err_set("unknown model \"%s\" (have %s)", arch_name ? arch_name : "(null)",
                       arch_names(names, sizeof names));
    if (num_classes < 1 || num_classes > 1000000)
        return err_set("num_classes must be between 1 and 1000000, got %d", num_classes);

    if (head && head->layers > 0 && check_head(arch, num_classes, head) < 0)
        return -1;

    struct model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set("out of memory creating %s", arch_name);
    if (head)
        m->head = *head;
    snprintf(m->arch, sizeof m->arch, "%s", arch->name);
    m->num_classes = num_classes;
    nn_registry_init(&m->params);

    /* Parameters are created without autograd history, outside any caller's scope. */
    bool grad_was = tc_set_grad_enabled(false);
    int rc;
    switch (arch->family) {
    case ARCH_RESNET: rc = resnet_build(m, arch->depth); break;
    case ARCH_VGG: rc = vgg_build(m, arch->depth, false, false); break;
    case ARCH_VGG_BN: rc = vgg_build(m, arch->depth, true, false); break;
    case ARCH_VGG_CIFAR: rc = vgg_build(m, arch->depth, true, true); break;
    default: rc = lenet_build(m); break;
    }
    m->fixed_input_size = arch->fixed_input_size;
    tc_set_grad_enabled(grad_was);
    if (rc == 0 && m->params.failed)
        rc = err_set("creating %s: %s", arch_name, tc_last_error());
    if (rc < 0) {
        model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

bool model_head_activated(const struct model_head *head, int i)
{
    return i + 1 < head->layers && head->index[i + 1] > head->index[i] + 1;
}

const char *model_head_describe(const struct model *m, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (int i = 0; i < m->head.layers && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%sfc.%d Linear(%lld)", i ? ", " : "",
                         i && model_head_activated(&m->head, i - 1) ? "ReLU, " : "",
                         m->head.index[i], (long long)m->head.out[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    nn_registry_free(&m->params);
    if (m->impl.free_net)
        m->impl.free_net(m->impl.net);
    free(m);
}

tc_tensor *model_forward(struct model *m, const tc_tensor *x, bool training)
{
    if (!x) { /* sticky: keep the error that made x NULL */
        if (!tc_last_error()[0])
            tc_set_error("model_forward: the input is NULL");
        return NULL;
    }
    int64_t shape[4];
    if (tc_shape(x, shape, 4) != 4 || shape[1] != 3) {
        char buf[64];
        tc_set_error("%s expects images shaped [N,3,H,W], got %s", m->arch,
                     tc_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    if (m->fixed_input_size &&
        (shape[2] != m->fixed_input_size || shape[3] != m->fixed_input_size)) {
        tc_set_error("%s takes %dx%d images, got %lldx%lld", m->arch, m->fixed_input_size,
                     m->fixed_input_size, (long long)shape[2], (long long)shape[3]);
        return NULL;
    }
    if (training && m->folded) {
        tc_set_error("%s: its batch norms are folded for serving; it cannot train", m->arch);
        return NULL;
    }
    return m->impl.forward(m, x, training);
}

int model_fold_batchnorm(struct model *m)
{
    if (m->folded || !m->impl.fold_batchnorm)
        return 0;
    /* Marked even when a layer fails: the ones before it are rewritten already, so the
     * weights are not torchvision's any more either way. */
    m->folded = true;
    if (m->impl.fold_batchnorm(m) < 0)
        return err_set("folding %s's batch norms: %s", m->arch, tc_last_error());
    return 0;
}

static bool in_set(const struct nn_entry *e, enum model_param_set which)
{
    if (which == MODEL_TENSORS_ALL)
        return true;
    if (which == MODEL_BUFFERS || e->is_buffer)
        return which == MODEL_BUFFERS && e->is_buffer;
    switch (which) {
    case MODEL_PARAMS_ALL: return true;
    case MODEL_PARAMS_BACKBONE: return e->group == NN_BACKBONE;
    case MODEL_PARAMS_HEAD: return e->group == NN_HEAD;
    case MODEL_PARAMS_TRAINABLE: return tc_requires_grad(e->tensor);
    default: return false;
    }
    return false;
}

int model_parameters(const struct model *m, enum model_param_set which, tc_tensor ***out,
                     size_t *count)
{
    return model_tensors(m, which, out, NULL, count);
}

int model_tensors(const struct model *m, enum model_param_set which, tc_tensor ***out,
                  const char ***names, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (names)
        *names = NULL;
    tc_tensor **list = malloc((m->params.count + 1) * sizeof *list);
    const char **name_list = names ? malloc((m->params.count + 1) * sizeof *name_list) : NULL;
    if (!list || (names && !name_list)) {
        free(list);
        free(name_list);
        return err_set("out of memory listing parameters");
    }
    size_t n = 0;
    for (size_t i = 0; i < m->params.count; i++)
        if (in_set(&m->params.entries[i], which)) {
            if (name_list)
                name_list[n] = m->params.entries[i].name;
            list[n++] = m->params.entries[i].tensor;
        }
    *out = list;
    if (names)
        *names = name_list;
    *count = n;
    return 0;
}

int64_t model_parameter_count(const struct model *m, enum model_param_set which)
{
    int64_t total = 0;
    for (size_t i = 0; i < m->params.count; i++)
        if (in_set(&m->params.entries[i], which))
            total += tc_numel(m->params.entries[i].tensor);
    return total;
}

int model_freeze_backbone(struct model *m, bool frozen)
{
    for (size_t i = 0; i < m->params.count; i++) {
        struct nn_entry *e = &m->params.entries[i];
        if (e->is_buffer)
            continue;
        bool trainable = e->group == NN_HEAD || !frozen;
        if (tc_set_requires_grad(e->tensor, trainable) < 0)
            return err_set("freezing %s: %s", e->name, tc_last_error());
        if (!trainable)
            tc_zero_grad(e->tensor);
    }
    return 0;
}

int model_to(struct model *m, tc_device d, bool channels_last)
{
    for (size_t i = 0; i < m->params.count; i++) {
        struct nn_entry *e = &m->params.entries[i];
        if (tc_move_(e->tensor, d, channels_last) < 0)
            return err_set("moving %s to %s: %s", e->name, d.type == TC_CUDA ? "cuda" : "cpu",
                           tc_last_error());
    }
    return 0;
}

tc_state_dict *model_state_dict(const struct model *m)
{
    if (m->folded) {
        tc_set_error("%s: its batch norms are folded for serving; its weights are not "
                     "torchvision's any more",
                     m->arch);
        return NULL;
    }
    tc_state_dict *sd = tc_state_dict_new();
    for (size_t i = 0; sd && i < m->params.count; i++) {
        if (tc_state_dict_set(sd, m->params.entries[i].name, m->params.entries[i].tensor) < 0) {
            tc_state_dict_free(sd);
            return NULL;
        }
    }
    return sd;
}

int model_save(const struct model *m, const char *path)
{
    char tmp[4096];
    if (fileio_temp_path(path, tmp, sizeof tmp) < 0)
        return -1;
    tc_state_dict *sd = model_state_dict(m);
    if (!sd)
        return err_set("saving %s: %s", path, tc_last_error());
    int rc = tc_state_dict_save(sd, tmp);
    tc_state_dict_free(sd);
    if (rc < 0) {
        remove(tmp);
        return err_set("saving %s: %s", path, tc_last_error());
    }
    return fileio_commit(tmp, path);
}
