/*
 * server_conns.h - the HTTP server's connection bookkeeping (server_conns.c), used by server.c
 * only: libmicrohttpd's connection notification, the deadline of a connection's current
 * wait, the reaper thread that enforces deadlines, and how many connections fit.
 */
#ifndef SERVE_SERVER_CONNS_H
#define SERVE_SERVER_CONNS_H

#include <microhttpd.h>

#include "serve/server.h"

/* MHD_OPTION_NOTIFY_CONNECTION's callback (cls: the server): tracks the connection from its
 * start, with header_timeout_s to send its request headers, and forgets it at its end. */
void server_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);

/* The connection must finish what it is sending within `seconds` (< 0: no deadline, while a
 * worker runs its request). */
void server_set_deadline(struct MHD_Connection *c, int seconds);

/* The reaper thread (arg: the server): shuts down connections past their deadline, every
 * 250 ms, until server_stop_reaper. */
void *server_reaper_main(void *arg);
void server_stop_reaper(struct server *srv);

/* Raises the open-file limit to its hard maximum; returns how many connections fit in it. */
unsigned server_connection_limit(void);

#endif
