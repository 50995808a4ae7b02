/*
 * test_serve_staging.c - the torchc calls serve's batcher stages batches with
 * (async_copy.cpp): a host buffer holds what is written into it; a tensor over host data
 * sees later writes to that memory (so it was not copied); a non-blocking copy gives the same
 * values; several tensors come back with one read in the right places, and a wrong size is an
 * error naming it. On a host with CUDA the buffer is page-locked and the copy goes to cuda:0
 * and back; elsewhere it is ordinary memory (a CPU-only libtorch has no page-locking).
 */
#include <stdio.h>
#include <string.h>

#include "test_util.h"

int main(void)
{
    int gpus = tc_cuda_device_count();
    float *data = tc_host_alloc(6 * sizeof(float), true);
    REQUIRE(data, "%s", tc_last_error());
    CHECK_INT_EQ(tc_host_is_pinned(data), gpus > 0);
    for (int i = 0; i < 6; i++)
        data[i] = (float)i;

    tc_scope *s = tc_scope_begin();
    int64_t shape[2] = {2, 3};
    tc_tensor *x = tc_from_blob(data, shape, 2, TC_FLOAT32); /* [2,3] */
    REQUIRE(x, "%s", tc_last_error());
    data[4] = 40.0f; /* written after the tensor was made: seen through it if not copied */
    float back[6] = {0};
    CHECK(tc_to_data(x, back, sizeof back) == 0);
    CHECK(back[4] == 40.0f);
    CHECK(back[5] == 5.0f);

    tc_device d = gpus > 0 ? tc_device_cuda(0) : tc_device_cpu();
    tc_tensor *on = tc_to_device_nonblocking(x, d);
    REQUIRE(on, "%s", tc_last_error());
    CHECK_INT_EQ(tc_device_of(on).type, d.type);
    tc_tensor *twice = tc_mul_scalar(on, 2.0); /* queued after the copy on the device */
    float a[6], c[6];
    const tc_tensor *ts[2] = {on, twice};
    void *dsts[2] = {a, c};
    size_t sizes[2] = {sizeof a, sizeof c};
    CHECK(tc_to_data_many(ts, 2, dsts, sizes) == 0);
    for (int i = 0; i < 6; i++) {
        float want = i == 4 ? 40.0f : (float)i;
        if (a[i] != want || c[i] != 2 * want) {
            fprintf(stderr, "element %d: %g and %g, expected %g and %g\n", i, a[i], c[i], want,
                    2 * want);
            test_failures++;
        }
    }
    size_t wrong[2] = {sizeof a, sizeof c - 4};
    CHECK(tc_to_data_many(ts, 2, dsts, wrong) < 0);
    CHECK_CONTAINS(tc_last_error(), "destination 1 holds 20 bytes");
    tc_scope_end(s);
    tc_host_free(data);
    tc_host_free(NULL);

    /* Plain memory asked for: never page-locked. */
    void *plain = tc_host_alloc(16, false);
    REQUIRE(plain, "%s", tc_last_error());
    CHECK(!tc_host_is_pinned(plain));
    tc_host_free(plain);
    printf("staging checked on %s\n", gpus > 0 ? "cuda:0 (page-locked)" : "the CPU");
    return test_finish("serve_staging");
}
