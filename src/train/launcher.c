/*
 * launcher.c - starting and supervising this host's training processes (see launcher.h).
 *
 * Signals are taken synchronously (blocked, then sigtimedwait), so the supervision loop is
 * plain sequential code: a stop request is forwarded, each exit is classified as it is
 * reaped, and a failed worker's siblings get SIGTERM, then SIGKILL after a grace period.
 */
#define _GNU_SOURCE
#include "train/launcher.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/failure.h"
#include "common/log.h"
#include "torchc.h"

#define STOP_GRACE_S 10.0 /* after a failure, siblings have this long to exit on SIGTERM */
#define MAX_LOCAL_WORKERS 256

extern char **environ;

struct worker {
    pid_t pid;
    int rank, local_rank;
    bool running;
    int status; /* from waitpid */
    char failure_file[4096];
    bool signalled; /* the launcher sent it SIGTERM or SIGKILL because another failed */
    /* Once reaped: what its failure file said (sentence NULL when it wrote none). */
    char *sentence;
    enum err_reason reason;
};

struct supervision {
    const struct launch_plan *plan;
    struct worker workers[MAX_LOCAL_WORKERS];
    int running;
    bool stop_forwarded;
    int failed; /* index of the worker whose failure ended the job, or -1 */
    double kill_at; /* when the survivors of a failure get SIGKILL; 0: not scheduled */
};

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void launcher_block_stop_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

void launcher_unblock_stop_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* A stop signal is waiting (they are blocked here). */
static bool stop_pending(void)
{
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT);
}

int launch_plan_make(const struct opt_ml *paths, const struct hyperparams *hp,
                     struct launch_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (cluster_read(paths->config_dir, &plan->cluster) < 0)
        return err_default_reason(ERR_REASON_CONFIG);
    int gpus = tc_cuda_devices_checked(NULL);
    if (gpus < 0)
        return err_set_reason(ERR_REASON_INTERNAL, "%s", tc_last_error());
    int local = hp->num_processes ? hp->num_processes : gpus > 0 ? gpus : 1;
    if (gpus > 0 && local > gpus)
        return err_set("hyperparameter num_processes=%d, but this host has %d GPUs (one process "
                       "per GPU at most)",
                       local, gpus);
    if (local > MAX_LOCAL_WORKERS)
        return err_set("%d processes per host is more than %d", local, MAX_LOCAL_WORKERS);
    plan->local_workers = local;
    plan->world_size = local * plan->cluster.host_count;
    plan->master_port = hp->master_port;
    plan->timeout_s = hp->dist_timeout_s;
    if (plan->world_size == 1)
        return 0;
    if (plan->cluster.host_count == 1) {
        snprintf(plan->master_addr, sizeof plan->master_addr, "127.0.0.1");
        return 0;
    }
    int rc = cluster_resolve(plan->cluster.hosts[0], plan->timeout_s, stop_pending,
                             plan->master_addr, sizeof plan->master_addr);
    if (rc < 0)
        return err_prefix("finding the first host: ");
    return rc == CLUSTER_RESOLVE_STOPPED ? LAUNCH_PLAN_STOPPED : 0;
}

/* A malloc'd formatted string, or NULL. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* The environment of one worker: ours, with its layout replacing any inherited one. */
static char **worker_environment(const struct launch_plan *plan, const struct worker *w)
{
    static const char *const replaced[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=",
                                           "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT=",
                                           WORKER_FAILURE_ENV "="};
    const size_t n_replaced = sizeof replaced / sizeof *replaced;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + n_replaced + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (size_t j = 0; j < n_replaced && !drop; j++)
            drop = strncmp(environ[i], replaced[j], strlen(replaced[j])) == 0;
        if (!drop)
            env[k++] = strdup(environ[i]);
    }
    env[k++] = format("RANK=%d", w->rank);
    env[k++] = format("WORLD_SIZE=%d", plan->world_size);
    env[k++] = format("LOCAL_RANK=%d", w->local_rank);
    env[k++] = format("LOCAL_WORLD_SIZE=%d", plan->local_workers);
    env[k++] = format("MASTER_ADDR=%s", plan->master_addr);
    env[k++] = format("MASTER_PORT=%d", plan->master_port);
    env[k++] = format("%s=%s", WORKER_FAILURE_ENV, w->failure_file);
    bool ok = true;
    for (size_t i = 0; i < k; i++)
        ok = ok && env[i];
    if (!ok) {
        for (size_t i = 0; i < k; i++)
            free(env[i]);
        free(env);
        return NULL;
    }
    return env;
}

static void free_environment(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static int start_worker(const struct launch_plan *plan, struct worker *w, const sigset_t *mask)
{
    char **env = worker_environment(plan, w);
    if (!env)
        return err_set_reason(ERR_REASON_OUT_OF_MEMORY,
                              "out of memory building a worker's environment");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Dies with the launcher, whatever kills it: no orphaned worker holds a GPU. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        sigprocmask(SIG_SETMASK, mask, NULL);
        char *argv[] = {"train", NULL};
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    free_environment(env);
    if (pid < 0)
        return err_set("starting worker %d: %s", w->rank, strerror(errno));
    w->pid = pid;
    w->running = true;
    return 0;
}

static void signal_running(struct supervision *s, int sig)
{
    for (int i = 0; i < s->plan->local_workers; i++)
        if (s->workers[i].running)
            kill(s->workers[i].pid, sig);
}

/* 0, or 143 (stopped: with a checkpoint, or in set-up before there was one); or killed by
 * the SIGTERM the launcher forwarded before the worker could act on it. */
static bool exited_cleanly(const struct supervision *s, int status)
{
    if (WIFSIGNALED(status))
        return s->stop_forwarded && WTERMSIG(status) == SIGTERM;
    return WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 143;
}

/* What a reaped worker says about its end: its failure file's sentence and reason, else what
 * its exit status shows. */
static void read_outcome(struct worker *w)
{
    if (failure_read(w->failure_file, 64 * 1024, &w->sentence, &w->reason) == 0 && w->sentence[0])
        return;
    free(w->sentence);
    w->sentence = NULL;
    if (WIFSIGNALED(w->status))
        w->reason = ERR_REASON_KILLED;
    else if (WEXITSTATUS(w->status) != 0 && WEXITSTATUS(w->status) != 143)
        w->reason = ERR_REASON_INTERNAL;
    else
        w->reason = ERR_REASON_NONE;
}

/* Reaps every worker that has exited. The first failure is the job's; when several are
 * reaped at once, one killed by a signal is preferred, since the others usually failed
 * because it vanished. */
static void reap(struct supervision *s)
{
    int status;
    pid_t pid;
    int newly_failed = -1;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s->plan->local_workers; i++) {
            struct worker *w = &s->workers[i];
            if (w->pid != pid || !w->running)
                continue;
            w->running = false;
            w->status = status;
            s->running--;
            read_outcome(w);
            if (!exited_cleanly(s, status) && s->failed < 0 &&
                (newly_failed < 0 || WIFSIGNALED(status)))
                newly_failed = i;
            /* A worker stopped in set-up: no rank has trained (they meet only after set-up),
             * so none has anything to checkpoint, and one still waiting for its peers (in the
             * rendezvous) would wait for a rank that has left. */
            if (w->reason == ERR_REASON_STOPPED && s->kill_at == 0)
                s->kill_at = clock_now_s() + STOP_GRACE_S;
        }
    }
    if (newly_failed >= 0) {
        s->failed = newly_failed;
        for (int i = 0; i < s->plan->local_workers; i++)
            s->workers[i].signalled = s->workers[i].running;
        signal_running(s, SIGTERM);
        s->kill_at = clock_now_s() + STOP_GRACE_S;
    }
}

/* The worker's own sentence, or what its exit shows; malloc'd (NULL: out of memory). */
static char *describe_failure(const struct worker *w)
{
    if (w->sentence)
        return strdup(w->sentence);
    if (WIFSIGNALED(w->status))
        return format("the process was killed by signal %d (%s)", WTERMSIG(w->status),
                      strsignal(WTERMSIG(w->status)));
    return format("the process exited with status %d without a message", WEXITSTATUS(w->status));
}

/* The worker whose failure is the job's story: the first to fail, unless it only stopped
 * because another rank failed (reason peer_failed) and one of ours failed for a reason of
 * its own (said in its failure file, or a signal the launcher did not send); then that one. */
static const struct worker *job_failure(const struct supervision *s)
{
    const struct worker *w = &s->workers[s->failed];
    if (w->reason != ERR_REASON_PEER_FAILED)
        return w;
    for (int i = 0; i < s->plan->local_workers; i++) {
        const struct worker *o = &s->workers[i];
        bool own = o->sentence ? o->reason != ERR_REASON_PEER_FAILED : !o->signalled;
        if (o != w && !exited_cleanly(s, o->status) && own)
            return o;
    }
    return w;
}

/* A worker that stopped in set-up, before there was anything to checkpoint, or NULL. */
static const struct worker *stopped_in_setup(const struct supervision *s)
{
    for (int i = 0; i < s->plan->local_workers; i++)
        if (s->workers[i].reason == ERR_REASON_STOPPED)
            return &s->workers[i];
    return NULL;
}

static void supervise(struct supervision *s, const sigset_t *signals)
{
    while (s->running > 0) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(signals, NULL, &tick);
        if ((sig == SIGTERM || sig == SIGINT) && s->failed < 0) {
            if (!s->stop_forwarded)
                log_info("stop requested: asking the workers to checkpoint and exit");
            s->stop_forwarded = true;
            signal_running(s, SIGTERM);
        }
        reap(s);
        if (s->kill_at > 0 && clock_now_s() >= s->kill_at && s->running > 0) {
            log_warn("%d worker(s) still running %.0f s after %s: killing them", s->running,
                     STOP_GRACE_S, s->failed >= 0 ? "a failure" : "a stop during set-up");
            signal_running(s, SIGKILL);
            s->kill_at = 0;
        }
    }
}

int launcher_run(const struct launch_plan *plan, const char *failure_path)
{
    struct supervision *s = calloc(1, sizeof *s);
    char dir[] = "/tmp/train-workers-XXXXXX";
    if (!s || !mkdtemp(dir)) {
        failure_write(failure_path, s ? ERR_REASON_IO : ERR_REASON_OUT_OF_MEMORY,
                      s ? "cannot start the training processes: no temporary directory"
                        : "cannot start the training processes: out of memory");
        free(s);
        return 1;
    }
    s->plan = plan;
    s->failed = -1;
    const struct cluster *c = &plan->cluster;
    int first_rank = c->host_index * plan->local_workers;

    /* Workers start with the stop signals blocked (they unblock them once their handlers
     * are in place) and SIGCHLD as it was. */
    sigset_t signals, previous, for_workers;
    stop_signals(&signals);
    sigaddset(&signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, &signals, &previous);
    for_workers = previous;
    sigaddset(&for_workers, SIGTERM);
    sigaddset(&for_workers, SIGINT);
    if (stop_pending()) { /* stopped before anything started: nothing to checkpoint */
        sigprocmask(SIG_SETMASK, &previous, NULL);
        rmdir(dir);
        free(s);
        failure_write(failure_path, ERR_REASON_STOPPED, STOPPED_IN_SETUP);
        return 143;
    }

    int rc = 0;
    for (int i = 0; i < plan->local_workers && rc == 0; i++) {
        struct worker *w = &s->workers[i];
        w->local_rank = i;
        w->rank = first_rank + i;
        rc = opt_ml_joinf(w->failure_file, sizeof w->failure_file, "%s/rank-%d", dir, w->rank);
        if (rc == 0)
            rc = start_worker(plan, w, &for_workers);
        if (rc == 0)
            s->running++;
    }
    if (rc == 0)
        log_info("%s: started %d training process(es), ranks %d to %d of %d; rendezvous at "
                 "%s:%d (%s)",
                 c->current_host, plan->local_workers, first_rank,
                 first_rank + plan->local_workers - 1, plan->world_size, plan->master_addr,
                 plan->master_port, c->hosts[0]);
    char start_error[ERR_MSG_MAX] = "";
    enum err_reason start_reason = ERR_REASON_NONE;
    if (rc < 0) {
        snprintf(start_error, sizeof start_error, "%s", err_msg());
        start_reason = err_reason();
        signal_running(s, SIGKILL);
    }
    supervise(s, &signals);
    sigprocmask(SIG_SETMASK, &previous, NULL);

    int status = 0;
    if (start_error[0]) {
        failure_write(failure_path, start_reason, start_error);
        status = 1;
    } else if (s->failed >= 0) {
        const struct worker *w = job_failure(s);
        char *reason = describe_failure(w);
        char *message = format("rank %d (local rank %d on host %s) failed: %s (the other "
                               "processes were stopped)",
                               w->rank, w->local_rank, c->current_host,
                               reason ? reason : "out of memory describing it");
        failure_write(failure_path, w->reason,
                      message ? message
                              : "a training process failed (out of memory describing it)");
        free(message);
        free(reason);
        status = 1;
    } else if (stopped_in_setup(s)) {
        const struct worker *w = stopped_in_setup(s);
        failure_write(failure_path, ERR_REASON_STOPPED,
                      w->sentence ? w->sentence : STOPPED_IN_SETUP);
        status = 143;
    } else {
        for (int i = 0; i < plan->local_workers; i++)
            if (WIFSIGNALED(s->workers[i].status) || WEXITSTATUS(s->workers[i].status) == 143)
                status = 143;
        log_info("%s: all %d training process(es) %s", c->current_host, plan->local_workers,
                 status == 143 ? "stopped after writing their checkpoints" : "finished");
    }
    for (int i = 0; i < plan->local_workers; i++) {
        unlink(s->workers[i].failure_file);
        free(s->workers[i].sentence);
    }
    rmdir(dir);
    free(s);
    return status;
}
