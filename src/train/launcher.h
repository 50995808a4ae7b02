/*
 * launcher.h - `train` on a host of a data-parallel job: starts one worker process per GPU
 * (or `num_processes` on CPU), each a fresh `train` told its place through RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT, and supervises them: SIGTERM
 * is forwarded (the workers checkpoint and exit 143), the first worker to fail stops the
 * others, and one failure file names its rank, host and reason. Which worker's failure is
 * the job's is chosen by the reason each worker's failure file carries (common/failure.h),
 * never by its wording: one that only saw a peer fail (peer_failed) gives way to the peer.
 * Workers die with the launcher (no orphans); every collective has a timeout (no hang).
 */
#ifndef TRAIN_LAUNCHER_H
#define TRAIN_LAUNCHER_H

#include "common/opt_ml.h"
#include "train/cluster.h"
#include "train/hyperparams.h"

/* The failure file's sentence (reason stopped) when a stop signal comes before training. */
#define STOPPED_IN_SETUP                                                                           \
    "stopped by a signal during set-up, before training started; no checkpoint was written"

/* A worker writes its failure message here (set by the launcher) instead of the job's. */
#define WORKER_FAILURE_ENV "TRAIN_WORKER_FAILURE_FILE"

struct launch_plan {
    struct cluster cluster;
    int local_workers, world_size;
    char master_addr[64]; /* numeric */
    int master_port;
    double timeout_s;
};

/* How many processes this host runs, and where they meet. world_size 1: run in-process.
 * Returns 0, LAUNCH_PLAN_STOPPED if a stop signal came while waiting for the first host's
 * name, or < 0 on error (reason config, peer_failed when the first host never resolved). */
enum { LAUNCH_PLAN_STOPPED = 1 };
int launch_plan_make(const struct opt_ml *paths, const struct hyperparams *hp,
                     struct launch_plan *plan);

/* SIGTERM and SIGINT stay blocked in the launcher (it takes them with sigtimedwait) and in
 * new workers until they have installed their handlers. */
void launcher_block_stop_signals(void);
void launcher_unblock_stop_signals(void);

/* Runs the workers to the end. Returns the exit status for `train`: 0, 143 (stopped by
 * SIGTERM: checkpoints written, or stopped in set-up with a failure file saying so,
 * reason=stopped) or 1 (a worker failed; the failure file says which, and its reason). */
int launcher_run(const struct launch_plan *plan, const char *failure_path);

#endif
