/*
 * main.c - `train`: what `docker run IMAGE train` runs. Reads the /opt/ml tree ($OPT_ML
 * overrides the root), trains, and leaves the model, its metadata and the metrics; on any
 * failure writes /opt/ml/output/failure (a sentence, then "reason=<name>": common/failure.h)
 * and exits 1. SIGTERM (SageMaker's stop, spot interruption) stops at the next step, saves a
 * checkpoint and exits 143; a restarted job resumes from that checkpoint. A SIGTERM during
 * set-up, with nothing to checkpoint yet, exits 143 with reason=stopped.
 *
 * With several GPUs, several hosts or num_processes > 1, this process is the launcher
 * (launcher.c) and the training runs in worker processes: the same program, started with
 * its rank in the environment.
 */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/failure.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/stop_flag.h"
#include "train/artifacts.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/job.h"
#include "train/launcher.h"
#include "train/report.h"

static void on_stop_signal(int sig)
{
    (void)sig;
    *stop_flag() = 1; /* read by set-up (common/stop_flag.h) and by the training loop */
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static const char *fatal_failure_path;

/* A libtorch thread is ending the process (NCCL's watchdog: a collective failed or stalled
 * past dist_timeout): the failure file says so, then the process aborts. */
static void on_fatal_error(const char *message)
{
    char reason[4096];
    snprintf(reason, sizeof reason,
             "a collective operation between the processes failed or stalled (NCCL, timeout: "
             "hyperparameter dist_timeout): %s",
             message);
    failure_write(fatal_failure_path, ERR_REASON_PEER_FAILED, reason);
}

/* The best weights, reloaded from the file that was written: what is reported is what ships. */
static int evaluate_best(struct train_job *job)
{
    char path[OPT_ML_PATH_MAX * 2];
    if (opt_ml_join(path, sizeof path, job->config.paths.model_dir, "model.pth") < 0)
        return -1;
    if (job->layout.rank == 0) { /* rank 0 wrote it; the others get it from rank 0 */
        if (model_load_file(job->model, path, NULL, NULL) < 0)
            return err_prefix("reloading the best model: ");
        if (model_to(job->model, job->device, job->config.channels_last) < 0)
            return -1;
    }
    if (distributed_sync_model(job) < 0)
        return -1;
    if (trainer_evaluate(job, &job->val, &job->final_val) < 0)
        return err_prefix("final validation: ");
    log_metric("best_epoch=%d best_validation_accuracy=%.4f", job->progress.best_epoch,
               job->final_val.accuracy);
    if (job->has_test) {
        if (trainer_evaluate(job, &job->test, &job->final_test) < 0)
            return err_prefix("test evaluation: ");
        log_metric("test_loss=%.4f test_acc=%.4f", job->final_test.loss, job->final_test.accuracy);
        if (job->config.hp.top_k > 1)
            log_metric("test_top_%d_acc=%.4f", job->config.hp.top_k,
                       job->final_test.top_k_accuracy);
        /* The line the Python seeds' metric definitions look for. */
        log_metric("Testing Loss: %.4f, Testing Accuracy: %.4f", job->final_test.loss,
                   job->final_test.accuracy);
        /* And the line of PyTorch's MNIST example, which many SageMaker scripts (and AWS's
         * "average test loss" definition, "Test set: Average loss: ([0-9\\.]+)") follow. */
        log_metric("Test set: Average loss: %.4f, Accuracy: %lld/%zu (%.0f%%)",
                   job->final_test.loss,
                   (long long)(job->final_test.accuracy * (double)job->final_test.count + 0.5),
                   job->final_test.count, 100.0 * job->final_test.accuracy);
    }
    return 0;
}

/* The training itself, in this process: the only one, or one rank of several. */
static int run_training(struct train_job *job, const char *failure_path)
{
    int rc = job_setup(job);
    if (*job->stop_requested) {
        /* Set-up (listing and checking data, loading weights) can be long; a stop during it
         * ends the job here, before training, with nothing to checkpoint yet (the walks and
         * listings of set-up give up at the signal). Every rank does so: the launcher forwards
         * the signal to each of its workers, and SageMaker sends it to every host; the ranks
         * meet only after set-up, so none has trained yet. */
        log_info("stopped by a signal during set-up, before training started");
        failure_write(failure_path, ERR_REASON_STOPPED, STOPPED_IN_SETUP);
        return 143;
    }
    if (rc == 0 && checkpoint_resume(job) < 0)
        rc = err_default_reason(ERR_REASON_MODEL);
    if (rc == 0 && distributed_start(job) < 0)
        rc = err_default_reason(ERR_REASON_INTERNAL);
    if (rc == 0)
        rc = trainer_run(job); /* a stop requested before it is agreed on inside */
    int status = 0;
    if (rc == TRAINER_STOPPED) {
        log_info("stopped by a signal: a checkpoint is in %s; a restarted job resumes from it",
                 job->config.paths.checkpoint_dir);
        status = 143;
    } else if (rc >= 0 && evaluate_best(job) < 0) {
        rc = err_default_reason(ERR_REASON_INTERNAL);
    } else if (rc >= 0 && job->layout.rank == 0 && artifacts_write_final(job) < 0) {
        rc = err_default_reason(ERR_REASON_IO);
    }
    char outcome[600];
    if (rc < 0) {
        failure_write(failure_path, err_reason(), err_msg());
        status = 1;
        snprintf(outcome, sizeof outcome, "failed: %s", err_msg());
    } else if (status == 0) {
        log_info("training finished: model in %s", job->config.paths.model_dir);
    }
    if (rc >= 0)
        snprintf(outcome, sizeof outcome, "%s", status == 143 ? "stopped by a signal" : "finished");
    report_finish(job, outcome); /* report.html whatever the outcome, on rank 0 */
    report_free(job);
    return status;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* SageMaker passes "train"; nothing else is read from the command line */
    /* Blocked first, so that no stop is lost: a launcher takes them synchronously; the
     * others unblock them below, and a signal that came meanwhile reaches the handler. */
    launcher_block_stop_signals();
    install_signal_handlers();
    struct train_job *job = calloc(1, sizeof *job);
    if (!job || opt_ml_init(&job->config.paths) < 0) {
        fprintf(stderr, "train: %s\n", job ? err_msg() : "out of memory");
        return 1;
    }
    job->stop_requested = stop_flag();
    int is_worker = worker_layout_from_env(&job->layout);
    const char *worker_failure = getenv(WORKER_FAILURE_ENV);
    const char *failure_path = is_worker && worker_failure && *worker_failure
                                   ? worker_failure
                                   : job->config.paths.failure_path;
    int status = 1;
    if (is_worker < 0) {
        failure_write(failure_path, ERR_REASON_CONFIG, err_msg());
    } else if (is_worker) {
        fatal_failure_path = failure_path;
        tc_set_fatal_handler(on_fatal_error);
        launcher_unblock_stop_signals();
        log_set_rank(job->layout.rank);
        if (job_read_hyperparameters(job) < 0)
            failure_write(failure_path, ERR_REASON_CONFIG, err_msg());
        else
            status = run_training(job, failure_path);
        if (status == 1) { /* no teardown: a process group may block on peers that are gone */
            fflush(NULL);
            _exit(1);
        }
    } else {
        unlink(failure_path); /* a previous local run's failure is not this one's */
        /* A run killed mid-write (SIGKILL while the best model was being saved) leaves its
         * temporaries beside the artifacts; SageMaker would upload them in model.tar.gz. */
        const char *artifact_dirs[] = {job->config.paths.model_dir, job->config.paths.output_dir,
                                       job->config.paths.output_data_dir};
        for (size_t i = 0; i < sizeof artifact_dirs / sizeof *artifact_dirs; i++) {
            int removed = fileio_remove_temporaries(artifact_dirs[i]);
            if (removed > 0)
                log_info("removed %d temporary file(s) a killed run left in %s", removed,
                         artifact_dirs[i]);
        }
        struct launch_plan plan;
        int rc = job_read_hyperparameters(job);
        if (rc == 0)
            rc = launch_plan_make(&job->config.paths, &job->config.hp, &plan);
        if (rc < 0) {
            failure_write(failure_path, err_reason() ? err_reason() : ERR_REASON_CONFIG, err_msg());
        } else if (rc == LAUNCH_PLAN_STOPPED) { /* while waiting for the first host's name */
            failure_write(failure_path, ERR_REASON_STOPPED, STOPPED_IN_SETUP);
            status = 143;
        } else if (plan.world_size > 1) {
            status = launcher_run(&plan, failure_path);
        } else {
            launcher_unblock_stop_signals();
            status = run_training(job, failure_path);
        }
    }
    job_free(job);
    free(job);
    return status;
}
