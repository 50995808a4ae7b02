/*
 * test_parity.c DIR ARCH NUM_CLASSES - our C network against torchvision itself.
 *
 * Loads DIR/ARCH.weights.pth (written by Python's torch.save(model.state_dict())) into our
 * model and compares, within a normalised error of 1e-6 (fp32, CPU), with what
 * tests/python/make_parity_refs.py recorded from torchvision: eval-mode logits, then
 * train-mode logits, loss, every recorded gradient and the running statistics after the
 * train-mode pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

#define TOL 1e-6
#define TRAIN_SEED 123 /* as in make_parity_refs.py */

int main(int argc, char **argv)
{
    REQUIRE(argc == 4, "usage: %s DIR ARCH NUM_CLASSES", argv[0]);
    const char *dir = argv[1], *arch = argv[2];
    char path[4096];

    struct model *m;
    REQUIRE(model_create(arch, atoi(argv[3]), &m) == 0, "%s", err_msg());
    snprintf(path, sizeof path, "%s/%s.weights.pth", dir, arch);
    struct model_load_report report;
    REQUIRE(model_load_file(m, path, NULL, &report) == 0, "%s", err_msg());
    CHECK_INT_EQ(report.loaded, m->params.count);

    snprintf(path, sizeof path, "%s/%s.ref.pth", dir, arch);
    tc_state_dict *ref = tc_state_dict_load(path);
    REQUIRE(ref, "%s", tc_last_error());

    tc_scope *s = tc_scope_begin();
    tc_tensor *x = tc_state_dict_get(ref, "input");

    bool grad_was = tc_set_grad_enabled(false);
    check_close("eval logits", model_forward(m, x, false), tc_state_dict_get(ref, "logits_eval"), TOL);
    /* Channels-last runs other kernels: equal up to float rounding, not bit for bit. */
    REQUIRE(model_to(m, tc_device_cpu(), true) == 0, "%s", err_msg());
    check_close("eval logits, channels-last", model_forward(m, tc_to_channels_last(x), false),
                tc_state_dict_get(ref, "logits_eval"), 1e-5);
    REQUIRE(model_to(m, tc_device_cpu(), false) == 0, "%s", err_msg());
    tc_set_grad_enabled(grad_was);

    tc_manual_seed(TRAIN_SEED);
    tc_tensor *logits = model_forward(m, x, true);
    tc_tensor *loss = tc_cross_entropy(logits, tc_state_dict_get(ref, "target"), 0.0);
    REQUIRE(tc_backward(loss) == 0, "%s", tc_last_error());
    check_close("train logits", logits, tc_state_dict_get(ref, "logits_train"), TOL);
    check_close("train loss", loss, tc_state_dict_get(ref, "loss"), TOL);

    int grads = 0, buffers = 0;
    for (size_t i = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        char key[256], what[300];
        snprintf(key, sizeof key, "%s.%s", e->is_buffer ? "after_train" : "grad", e->name);
        if (!tc_state_dict_has(ref, key))
            continue;
        snprintf(what, sizeof what, "%s %s", e->is_buffer ? "buffer" : "grad", e->name);
        if (e->is_buffer) {
            check_close(what, e->tensor, tc_state_dict_get(ref, key), TOL);
            buffers++;
        } else {
            check_close(what, tc_grad(e->tensor), tc_state_dict_get(ref, key), TOL);
            grads++;
        }
    }
    printf("%s: compared %d gradients and %d buffers\n", arch, grads, buffers);
    CHECK(grads > 0);
    tc_scope_end(s);

    tc_state_dict_free(ref);
    model_free(m);
    return test_finish(arch);
}
