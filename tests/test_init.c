/*
 * test_init.c - fresh models start as torchvision's do: convs kaiming_normal(fan_out, relu),
 * batch norm weight 1 and bias 0, ResNet's fc and LeNet's layers PyTorch's Linear/Conv2d
 * default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), VGG's linear layers N(0, 0.01) with zero bias.
 * Checked statistically on tensors large enough for the estimate to be tight.
 */
#include <math.h>
#include <stdio.h>

#include "common/error.h"
#include "models/model.h"
#include "test_util.h"

struct stats {
    double mean, std, min, max;
};

static struct stats stats_of(const struct model *m, const char *name)
{
    const struct nn_entry *e = nn_registry_find(&m->params, name);
    REQUIRE(e, "no tensor %s in %s", name, m->arch);
    int64_t n = tc_numel(e->tensor);
    float *v = malloc((size_t)n * sizeof *v);
    tc_scope *s = tc_scope_begin();
    REQUIRE(tc_to_data(tc_to_dtype(e->tensor, TC_FLOAT32), v, (size_t)n * sizeof *v) == 0, "%s",
            tc_last_error());
    tc_scope_end(s);
    struct stats st = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        st.mean += v[i];
        st.min = fmin(st.min, v[i]);
        st.max = fmax(st.max, v[i]);
    }
    st.mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        st.std += (v[i] - st.mean) * (v[i] - st.mean);
    st.std = sqrt(st.std / (double)n);
    free(v);
    return st;
}

static void expect_std(const struct model *m, const char *name, double want)
{
    struct stats st = stats_of(m, name);
    printf("%s %s: std %.5f (want %.5f), mean %.5f\n", m->arch, name, st.std, want, st.mean);
    CHECK(fabs(st.std - want) < 0.03 * want);
    CHECK(fabs(st.mean) < 0.05 * want);
}

static void expect_constant(const struct model *m, const char *name, double value)
{
    struct stats st = stats_of(m, name);
    if (st.min != value || st.max != value) {
        fprintf(stderr, "%s %s: want all %g, got [%g, %g]\n", m->arch, name, value, st.min, st.max);
        test_failures++;
    }
}

static void expect_uniform(const struct model *m, const char *name, double bound)
{
    struct stats st = stats_of(m, name);
    printf("%s %s: range [%.5f, %.5f] (bound %.5f)\n", m->arch, name, st.min, st.max, bound);
    CHECK(st.min >= -bound && st.max <= bound);
    CHECK(st.max > 0.95 * bound && st.min < -0.95 * bound); /* fills the whole range */
    CHECK(fabs(st.std - bound / sqrt(3.0)) < 0.03 * bound);
}

int main(void)
{
    tc_manual_seed(11);
    struct model *m;
    REQUIRE(model_create("resnet50", 100, &m) == 0, "%s", err_msg());
    expect_std(m, "conv1.weight", sqrt(2.0 / (64 * 7 * 7)));
    expect_std(m, "layer4.0.conv2.weight", sqrt(2.0 / (512 * 3 * 3)));
    expect_constant(m, "layer2.1.bn3.weight", 1.0);
    expect_constant(m, "layer2.1.bn3.bias", 0.0);
    expect_constant(m, "layer2.1.bn3.running_var", 1.0);
    expect_uniform(m, "fc.weight", 1.0 / sqrt(2048.0));
    model_free(m);

    REQUIRE(model_create("vgg11", 10, &m) == 0, "%s", err_msg());
    expect_std(m, "features.3.weight", sqrt(2.0 / (128 * 3 * 3)));
    expect_constant(m, "features.3.bias", 0.0);
    expect_std(m, "classifier.0.weight", 0.01);
    expect_constant(m, "classifier.0.bias", 0.0);
    model_free(m);

    REQUIRE(model_create("lenet", 10, &m) == 0, "%s", err_msg());
    expect_uniform(m, "conv2.weight", 1.0 / sqrt(32.0 * 25));
    expect_uniform(m, "fc1.weight", 1.0 / sqrt(1600.0));
    model_free(m);
    return test_finish("init");
}
