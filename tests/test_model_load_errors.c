/*
 * test_model_load_errors.c DIR - loading weights that do not fit: every failure names the
 * keys at fault, leaves the model untouched, and the allowed exceptions (a different head
 * for transfer learning, DataParallel's "module." prefix) work.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

static const char *dir;

/* A copy of m's state dict, without `drop` and with an optional prefix and extra key. */
static tc_state_dict *edited_state_dict(const struct model *m, const char *drop,
                                        const char *prefix, const char *extra)
{
    tc_state_dict *sd = tc_state_dict_new();
    for (size_t i = 0; i < m->params.count; i++) {
        const struct nn_entry *e = &m->params.entries[i];
        if (drop && strcmp(e->name, drop) == 0)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix ? prefix : "", e->name);
        tc_state_dict_set(sd, key, e->tensor);
    }
    if (extra)
        tc_state_dict_set(sd, extra, m->params.entries[0].tensor);
    return sd;
}

static double fingerprint(const struct model *m, const char *name)
{
    double v = 0;
    tc_scope *s = tc_scope_begin();
    tc_item_double(tc_sum(nn_registry_find(&m->params, name)->tensor), &v);
    tc_scope_end(s);
    return v;
}

static void test_head_mismatch(void)
{
    char path[4096];
    struct model *ten, *five;
    REQUIRE(model_create("resnet18", 10, &ten) == 0, "%s", err_msg());
    REQUIRE(model_create("resnet18", 5, &five) == 0, "%s", err_msg());
    snprintf(path, sizeof path, "%s/resnet18_10.pth", dir);
    REQUIRE(model_save(ten, path) == 0, "%s", err_msg());

    double conv_before = fingerprint(five, "conv1.weight");
    struct model_load_report r;
    CHECK(model_load_file(five, path, NULL, &r) < 0);
    CHECK_CONTAINS(err_msg(), "loading ");
    CHECK_CONTAINS(err_msg(), "does not fit resnet18 with 5 classes");
    CHECK_CONTAINS(err_msg(), "fc.weight: file [10, 512], model [5, 512]");
    CHECK_CONTAINS(err_msg(), "fc.bias: file [10], model [5]");
    CHECK_CONTAINS(err_msg(), "is num_classes right?");
    CHECK_INT_EQ(r.mismatched, 2);
    CHECK(fingerprint(five, "conv1.weight") == conv_before); /* all or nothing */

    struct model_load_options skip = {.skip_mismatched_head = true};
    double head_before = fingerprint(five, "fc.weight");
    CHECK_INT_EQ(model_load_file(five, path, &skip, &r), 0);
    CHECK(r.head_skipped);
    CHECK_INT_EQ(r.loaded, five->params.count - 2);
    CHECK(fingerprint(five, "conv1.weight") == fingerprint(ten, "conv1.weight"));
    CHECK(fingerprint(five, "fc.weight") == head_before);
    model_free(ten);
    model_free(five);
}

static void test_missing_unexpected_prefixed(void)
{
    struct model *m, *other;
    REQUIRE(model_create("resnet18", 4, &m) == 0, "%s", err_msg());
    REQUIRE(model_create("resnet18", 4, &other) == 0, "%s", err_msg());
    struct model_load_report r;

    tc_state_dict *sd = edited_state_dict(other, "layer1.0.bn1.running_mean", NULL, "extra.weight");
    CHECK(model_load_state_dict(m, sd, NULL, &r) < 0);
    CHECK_CONTAINS(err_msg(), "missing 1 [layer1.0.bn1.running_mean]");
    CHECK_CONTAINS(err_msg(), "unexpected 1 [extra.weight]");
    CHECK_INT_EQ(r.missing, 1);
    CHECK_INT_EQ(r.unexpected, 1);
    tc_state_dict_free(sd);

    sd = edited_state_dict(other, NULL, "module.", NULL);
    CHECK_INT_EQ(model_load_state_dict(m, sd, NULL, &r), 0);
    CHECK(r.stripped_module_prefix);
    CHECK(fingerprint(m, "layer4.1.conv2.weight") == fingerprint(other, "layer4.1.conv2.weight"));
    tc_state_dict_free(sd);

    struct model *lenet;
    REQUIRE(model_create("lenet", 4, &lenet) == 0, "%s", err_msg());
    sd = model_state_dict(m);
    CHECK(model_load_state_dict(lenet, sd, NULL, &r) < 0);
    CHECK_CONTAINS(err_msg(), "missing 9 [conv1.bias, conv2.weight, conv2.bias, fc1.weight, fc1.bias, fc2.weight, ...]");
    tc_state_dict_free(sd);
    model_free(lenet);
    model_free(m);
    model_free(other);
}

static void test_bad_files(void)
{
    char path[4096];
    struct model *m;
    REQUIRE(model_create("lenet", 10, &m) == 0, "%s", err_msg());
    snprintf(path, sizeof path, "%s/corrupt.pth", dir);
    FILE *f = fopen(path, "wb");
    fputs("PK\003\004 definitely not a zip archive", f);
    fclose(f);
    CHECK(model_load_file(m, path, NULL, NULL) < 0);
    CHECK_CONTAINS(err_msg(), "loading ");
    CHECK_CONTAINS(err_msg(), "corrupt.pth");
    printf("corrupt zip: %s\n", err_msg());
    model_free(m);

    CHECK(model_create("resnet19", 10, &m) < 0);
    CHECK_CONTAINS(err_msg(), "unknown model \"resnet19\"");
    CHECK(model_create("vgg11", 0, &m) < 0);
    CHECK_CONTAINS(err_msg(), "num_classes must be between 1 and 1000000, got 0");
}

static void test_bad_inputs(void)
{
    struct model *m;
    REQUIRE(model_create("lenet", 10, &m) == 0, "%s", err_msg());
    tc_scope *s = tc_scope_begin();
    int64_t wrong_size[4] = {1, 3, 28, 28}, wrong_channels[4] = {1, 1, 32, 32};
    CHECK(model_forward(m, tc_zeros(wrong_size, 4, TC_FLOAT32, tc_device_cpu()), false) == NULL);
    CHECK_CONTAINS(tc_last_error(), "lenet takes 32x32 images, got 28x28");
    CHECK(model_forward(m, tc_zeros(wrong_channels, 4, TC_FLOAT32, tc_device_cpu()), false) == NULL);
    CHECK_CONTAINS(tc_last_error(), "lenet expects images shaped [N,3,H,W], got [1, 1, 32, 32]");
    tc_scope_end(s);
    model_free(m);
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s DIR", argv[0]);
    dir = argv[1];
    mkdir(dir, 0755);
    test_head_mismatch();
    test_missing_unexpected_prefixed();
    test_bad_files();
    test_bad_inputs();
    return test_finish("model_load_errors");
}
