/*
 * error.h - the error message of the project's C code, and the reason a caller can branch on.
 *
 * Functions return 0 on success and a negative status on failure, after recording a message
 * a user can act on with err_set(). The message is thread-local; callers up the stack may add
 * context with err_prefix() ("loading /opt/ml/model/model.pth: " + the reason). main()
 * decides what to do with it.
 *
 * Beside the message there is a reason: a value, never parsed out of the text. err_set()
 * resets it to ERR_REASON_NONE; err_set_reason() records one where the failing code knows
 * it (out of memory, a peer that failed); err_default_reason() lets a caller that knows what
 * its step was about (reading a channel: data) classify what is still unclassified. The
 * reason travels with the message: err_prefix() keeps it.
 */
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

#define ERR_MSG_MAX 4096

/* Why something failed, as far as anyone up the stack needs to choose what to do. The names
 * (err_reason_name) are what `train`'s failure file carries after "reason=" (README.md). */
enum err_reason {
    ERR_REASON_NONE = 0,      /* not classified (yet): reported as "internal" */
    ERR_REASON_CONFIG,        /* a hyperparameter, a config file, the environment */
    ERR_REASON_DATA,          /* a channel: missing, empty, malformed */
    ERR_REASON_MODEL,         /* weights that cannot be used: pretrained channel, checkpoint */
    ERR_REASON_OUT_OF_MEMORY, /* an allocation failed */
    ERR_REASON_IO,            /* writing results or checkpoints: disk full, permissions */
    ERR_REASON_DIVERGED,      /* the loss became NaN or infinite */
    ERR_REASON_PEER_FAILED,   /* another process of the same job failed or vanished */
    ERR_REASON_STOPPED,       /* a stop signal before there was anything to checkpoint */
    ERR_REASON_KILLED,        /* a process was killed by a signal (seen by its parent) */
    ERR_REASON_INTERNAL,      /* a libtorch error, a bug */
    ERR_REASON_COUNT
};

/* Records the message (the reason becomes ERR_REASON_NONE); returns -1 so that
 * `return err_set(...)` reads naturally. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records the message and its reason; returns -1. */
int err_set_reason(enum err_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Puts context in front of the recorded message (the reason stays); returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Classifies the recorded failure as `reason` unless it already has one; returns -1. */
int err_default_reason(enum err_reason reason);
const char *err_msg(void);
enum err_reason err_reason(void);
void err_clear(void);

/* "config", "out_of_memory"... ("internal" for ERR_REASON_NONE), and back: ERR_REASON_NONE for
 * a name that is none of them. */
const char *err_reason_name(enum err_reason reason);
enum err_reason err_reason_from_name(const char *name);

#endif
