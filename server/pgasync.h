/*
 * pgasync: the writes whose answer nothing waits for (last_seen, presence rows, heartbeats,
 * cluster events and NOTIFYs) leave the mediator's loop: they go, in the order queued, over a
 * dedicated PostgreSQL connection in libpq's pipeline mode, its socket watched by the loop.
 * A slow or distant database then delays those rows, not every session's request: a
 * synchronous call holds the whole loop for its round trip (and for any lock it waits on).
 * Each statement runs in its own implicit transaction (a sync point after each), so one that
 * fails does not take the next ones with it; a failure is logged as one line and the
 * statement dropped. When the connection breaks, what was queued or unanswered is sent again
 * on the next connection (reconnecting without blocking, every PGASYNC_RETRY_S): statements
 * queued here must therefore be safe to run twice (upserts, updates, deletes, events whose
 * replay is harmless). Reads that a reply depends on stay synchronous (pgq.h).
 * Owns: its connection, its queue and their watchers.
 */
#ifndef SHOAL_SERVER_PGASYNC_H
#define SHOAL_SERVER_PGASYNC_H

#include <ev.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "server/pgq.h"

/* PGASYNC_WINDOW: statements in flight at once; PGASYNC_QUEUE_MAX: queued at most (past it
 * a statement is dropped and logged: the database is gone or far too slow); PGASYNC_DRAIN_S:
 * how long pgasync_free waits for the queue to empty at a clean stop; PGASYNC_BACKLOG: past
 * this many queued, the queue's length and age are logged (at most every PGASYNC_LOG_S). */
enum { PGASYNC_WINDOW = 512, PGASYNC_QUEUE_MAX = 1 << 18, PGASYNC_RETRY_S = 1,
    PGASYNC_DRAIN_S = 5, PGASYNC_BACKLOG = 4 * PGASYNC_WINDOW, PGASYNC_LOG_S = 10 };

struct pgasync;

/* The statement's result (COMMAND_OK or TUPLES_OK), or NULL when it failed (logged); the
 * callee must not PQclear it. */
typedef void (*pgasync_cb)(void *arg, const PGresult *r);

/* Connects (blocking, once, at start: a wrong URL is a startup error). NULL with the reason
 * in err. */
struct pgasync *pgasync_new(struct ev_loop *loop, const char *url, char *err, size_t errlen);
/* Runs at a clean stop what is still queued (up to PGASYNC_DRAIN_S, no callbacks), then
 * closes. */
void pgasync_free(struct pgasync *a);
/* Queues sql (a literal: its address names its prepared statement, as in pgq_exec) with a
 * copy of q's parameters (q may be NULL). cb (may be NULL) runs from the loop once it is
 * answered, with NULL when it failed; also at once when it cannot be queued (queue full or no
 * memory: logged, -1). */
int pgasync_run(struct pgasync *a, const char *sql, const struct pgq *q, pgasync_cb cb,
    void *arg);
/* Statements queued and not yet answered. */
size_t pgasync_pending(const struct pgasync *a);

#endif
