/*
 * server_conns.c - every open connection of the HTTP server and its deadline (server_conns.h):
 * tracked from libmicrohttpd's connection notifications, shut down by a reaper thread once
 * its request headers or body are late, however slowly its bytes trickle in; and the
 * connection limit, from the open-file limit.
 */
#define _GNU_SOURCE
#include "serve/server_conns.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

/* One open connection (libmicrohttpd's socket context), on srv->conns under conns_mu. */
struct conn_track {
    int fd;
    int64_t deadline_ms; /* atomic; INT64_MAX while a worker runs its request */
    struct conn_track *prev, *next;
};

static int64_t now_ms(void)
{
    return (int64_t)(clock_now_s() * 1e3);
}

void server_set_deadline(struct MHD_Connection *c, int seconds)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_track *t = info ? info->socket_context : NULL;
    if (t)
        __atomic_store_n(&t->deadline_ms, seconds < 0 ? INT64_MAX : now_ms() + seconds * 1000LL,
                         __ATOMIC_RELEASE);
}

void server_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_track *t = calloc(1, sizeof *t);
        if (!t || !info) {
            free(t); /* untracked: libmicrohttpd's idle timeout still ends it */
            *socket_context = NULL;
            return;
        }
        t->fd = info->connect_fd;
        t->deadline_ms = now_ms() + srv->config.header_timeout_s * 1000LL;
        pthread_mutex_lock(&srv->conns_mu);
        t->next = srv->conns;
        if (t->next)
            t->next->prev = t;
        srv->conns = t;
        pthread_mutex_unlock(&srv->conns_mu);
        *socket_context = t;
        return;
    }
    struct conn_track *t = *socket_context;
    if (!t)
        return;
    /* Unlinked before libmicrohttpd closes the socket, so the reaper never touches a reused fd. */
    pthread_mutex_lock(&srv->conns_mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        srv->conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&srv->conns_mu);
    free(t);
    *socket_context = NULL;
}

/* Shuts down connections past their deadline; libmicrohttpd then sees them end and closes them. */
void *server_reaper_main(void *arg)
{
    struct server *srv = arg;
    pthread_mutex_lock(&srv->conns_mu);
    while (!srv->reaper_stopping) {
        int64_t now = now_ms();
        int reaped = 0;
        for (struct conn_track *t = srv->conns; t; t = t->next) {
            if (__atomic_load_n(&t->deadline_ms, __ATOMIC_ACQUIRE) <= now) {
                shutdown(t->fd, SHUT_RDWR);
                __atomic_store_n(&t->deadline_ms, INT64_MAX, __ATOMIC_RELEASE);
                reaped++;
            }
        }
        if (reaped)
            log_info("closed %d connection(s) that missed their header or body deadline "
                     "(SERVE_HEADER_TIMEOUT_S=%d, SERVE_BODY_TIMEOUT_S=%d)",
                     reaped, srv->config.header_timeout_s, srv->config.body_timeout_s);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&srv->reaper_cv, &srv->conns_mu, &until);
    }
    pthread_mutex_unlock(&srv->conns_mu);
    return NULL;
}

/* Raises the open-file limit to its hard maximum; returns how many connections fit in it. */
unsigned server_connection_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return 512;
    if (r.rlim_cur < r.rlim_max) {
        rlim_t want = r.rlim_max == RLIM_INFINITY || r.rlim_max > (1u << 20) ? (1u << 20) : r.rlim_max;
        struct rlimit raised = {want, r.rlim_max};
        if (want > r.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
            r.rlim_cur = want;
    }
    /* Room for the model's files, the log and libtorch's own descriptors. */
    rlim_t n = r.rlim_cur > 256 ? r.rlim_cur - 128 : r.rlim_cur / 2;
    return n > 65536 ? 65536u : (unsigned)n;
}

void server_stop_reaper(struct server *srv)
{
    if (!srv->reaper_started)
        return;
    pthread_mutex_lock(&srv->conns_mu);
    srv->reaper_stopping = true;
    pthread_cond_signal(&srv->reaper_cv);
    pthread_mutex_unlock(&srv->conns_mu);
    pthread_join(srv->reaper, NULL);
    srv->reaper_started = false;
}

