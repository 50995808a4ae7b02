/*
 * replica_dispatch.c - which replica answers a request, and stopping them (replicas.h): the part
 * of the replicas that needs no libtorch, so that tests/tsan builds it with the batcher.
 *
 * A request goes to the replica with the least work (batcher_load: images queued or in the
 * forward pass, plus requests announced and still decoding, one each). The search starts one
 * replica further on each time, so ties - idle replicas above all - are taken in turn: even
 * one client's sequential requests use every replica.
 */
#define _GNU_SOURCE
#include "serve/replicas.h"

#include <stdio.h>

#include "common/log.h"

struct replica *replica_set_pick(struct replica_set *set)
{
    if (set->n == 1)
        return &set->r[0];
    unsigned start = __atomic_fetch_add(&set->next, 1, __ATOMIC_RELAXED);
    struct replica *best = NULL;
    int64_t best_load = 0;
    for (int k = 0; k < set->n; k++) {
        struct replica *r = &set->r[(start + (unsigned)k) % (unsigned)set->n];
        int64_t load = batcher_load(r->batcher);
        if (!best || load < best_load) {
            best = r;
            best_load = load;
        }
    }
    return best;
}

const char *replica_set_devices(const struct replica_set *set, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < set->n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", set->r[i].device);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

void replica_set_stop(struct replica_set *set)
{
    for (int i = 0; i < set->n; i++) {
        struct replica *r = &set->r[i];
        struct batcher_stats st;
        batcher_stop_stats(r->batcher, &st); /* answers what it holds first */
        r->batcher = NULL;
        log_info("replica %d on %s served %lld requests (%lld images in %lld batches)", i,
                 r->device, (long long)st.requests, (long long)st.images, (long long)st.batches);
    }
}
