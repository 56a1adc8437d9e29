/*
 * pgq: the few libpq helpers the PostgreSQL backend and the cluster share: a connection with
 * its prepared statements (each SQL text is prepared on first use and run by name after: the
 * mediator's statements are few and fixed, and parsing and planning them again for every
 * change cost more than running them), parameters built one by one (keys and blobs as binary
 * bytea, numbers and text as text), one call that runs a statement and logs a failure as one
 * key=value line, and readers for result cells.
 * Owns: the connection and its statement names.
 */
#ifndef SHOAL_SERVER_PGQ_H
#define SHOAL_SERVER_PGQ_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

enum { PGQ_MAX_PARAMS = 12 };

struct pgq_conn;

/* libpq's PQconnectdb with connect_timeout 5 s unless url sets its own: libpq waits forever
 * by default, and every call here runs on the mediator's loop. */
PGconn *pgq_dial(const char *url);
/* NULL with libpq's reason in err (one line). */
struct pgq_conn *pgq_connect(const char *url, char *err, size_t errlen);
void pgq_close(struct pgq_conn *c);
/* The libpq handle, for what pgq does not wrap (multi-statement scripts). */
PGconn *pgq_raw(struct pgq_conn *c);

struct pgq {                             /* on the caller's stack, one statement */
	int n;
	const char *val[PGQ_MAX_PARAMS];
	int len[PGQ_MAX_PARAMS];
	int fmt[PGQ_MAX_PARAMS];
	char num[PGQ_MAX_PARAMS][24];
};

void pgq_init(struct pgq *q);
void pgq_bin(struct pgq *q, const void *p, size_t len);   /* bytea */
void pgq_int(struct pgq *q, int64_t v);
void pgq_text(struct pgq *q, const char *s);
void pgq_null(struct pgq *q);

/* Runs sql with q's parameters (q may be NULL: run as is, not prepared). sql must be a string
 * that lives as long as c (a literal): its address names its prepared statement. Returns the
 * result when it is COMMAND_OK or TUPLES_OK (the caller PQclear()s it); otherwise logs, clears,
 * and returns NULL with *exists (when not NULL) set to 1 on a unique violation. A broken
 * connection is reopened, and the statement run again when it was not inside a transaction. */
PGresult *pgq_exec(struct pgq_conn *c, const char *sql, const struct pgq *q, int *exists);
/* Runs a statement whose result is not needed: 0, STORE_EXISTS-like 2 on a unique violation,
 * or -1. *changed (when not NULL): rows affected. */
int pgq_run(struct pgq_conn *c, const char *sql, const struct pgq *q, unsigned *changed);

int64_t pgq_get_int(const PGresult *r, int row, int col);
/* Copies bytea cell (row, col) into dst when it is exactly len bytes (else zeroes dst);
 * returns the cell's length, or -1. */
int pgq_get_bin(const PGresult *r, int row, int col, void *dst, size_t len);
/* Copies a bytea cell of at most cap bytes; returns its length (0 when larger or NULL). */
size_t pgq_get_blob(const PGresult *r, int row, int col, void *dst, size_t cap);
void pgq_get_text(const PGresult *r, int row, int col, char *dst, size_t cap);

#endif
