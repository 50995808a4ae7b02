/*
 * cluster.h - the hosts of a training job, from SageMaker's resourceconfig.json, and the
 * layout of worker processes over them: global rank = host index x workers per host + local
 * rank, hosts in sorted order, the first host's first worker (rank 0) serving the rendezvous.
 */
#ifndef TRAIN_CLUSTER_H
#define TRAIN_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#define CLUSTER_HOST_MAX 64   /* host name length */
#define CLUSTER_MAX_HOSTS 256

struct cluster {
    char current_host[CLUSTER_HOST_MAX];
    char hosts[CLUSTER_MAX_HOSTS][CLUSTER_HOST_MAX]; /* sorted */
    int host_count, host_index;
    char interface[32]; /* network_interface_name, "" if none */
};

/* Reads <config_dir>/resourceconfig.json. A missing file is a local run on "algo-1". */
int cluster_read(const char *config_dir, struct cluster *c);

/* The numeric address `host` resolves to, retrying until timeout_s while peers come up
 * (their names appear in DNS only once their containers start). 0: resolved;
 * CLUSTER_RESOLVE_STOPPED: given up because stop_requested() said so (may be NULL); < 0:
 * failed (reason peer_failed when the name never resolved). */
enum { CLUSTER_RESOLVE_STOPPED = 1 };
int cluster_resolve(const char *host, double timeout_s, bool (*stop_requested)(void), char *addr,
                    size_t cap);

/* Where this process sits among all the job's training processes. */
struct worker_layout {
    int rank, world_size;             /* global */
    int local_rank, local_world_size; /* on this host */
    char master_addr[64];             /* numeric address of rank 0's host */
    int master_port;
};

/* The layout the launcher handed this process through its environment (RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT): 1 if present, 0 if this process
 * was not started as a worker, < 0 if the values are malformed. */
int worker_layout_from_env(struct worker_layout *w);

#endif
