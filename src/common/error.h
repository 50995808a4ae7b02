/*
 * error.h - the error message of the project's C code.
 *
 * Functions return 0 on success and a negative status on failure, after recording a message
 * a user can act on with err_set(). The message is thread-local; callers up the stack may add
 * context with err_prefix() ("loading /opt/ml/model/model.pth: " + the reason). main()
 * decides what to do with it.
 */
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

#define ERR_MSG_MAX 4096

/* Records the message; returns -1 so that `return err_set(...)` reads naturally. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Puts context in front of the recorded message; returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
void err_clear(void);

#endif
