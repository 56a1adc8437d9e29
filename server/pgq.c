/*
 * pgq: libpq helpers (pgq.h). Results come back in text format: bytea cells arrive as hex
 * ("\x...") and PQunescapeBytea decodes them; parameters that are keys or bodies go in binary
 * so no escaping is ever done by hand.
 */
#include "config.h"
#include "server/pgq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void
pgq_init(struct pgq *q)
{
	memset(q, 0, sizeof(*q));
}

static void
add(struct pgq *q, const char *v, int len, int fmt)
{
	if (q->n >= PGQ_MAX_PARAMS)
		abort();                /* a programming error: statements are fixed */
	q->val[q->n] = v;
	q->len[q->n] = len;
	q->fmt[q->n] = fmt;
	q->n++;
}

void
pgq_bin(struct pgq *q, const void *p, size_t len)
{
	/* a NULL value is SQL NULL: an empty blob needs a non-NULL pointer */
	add(q, p ? (const char *)p : "", (int)len, 1);
}

void
pgq_int(struct pgq *q, int64_t v)
{
	if (q->n >= PGQ_MAX_PARAMS)
		abort();
	snprintf(q->num[q->n], sizeof(q->num[q->n]), "%lld", (long long)v);
	add(q, q->num[q->n], 0, 0);
}

void
pgq_text(struct pgq *q, const char *s)
{
	add(q, s, 0, 0);
}

void
pgq_null(struct pgq *q)
{
	add(q, NULL, 0, 0);
}

PGresult *
pgq_exec(PGconn *c, const char *sql, const struct pgq *q, int *exists)
{
	PGresult *r;
	ExecStatusType st;
	const char *state;

	PGTransactionStatusType before = PQtransactionStatus(c);
	int retried = 0;

	if (exists)
		*exists = 0;
again:
	r = PQexecParams(c, sql, q ? q->n : 0, NULL, q ? q->val : NULL, q ? q->len : NULL,
	    q ? q->fmt : NULL, 0);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	/* The connection broke (PostgreSQL restarted, a proxy dropped it): reconnect, and run the
	 * statement again when it was on its own. One inside a transaction fails: the transaction
	 * is gone with the connection, and the caller reports a database error. */
	if (PQstatus(c) == CONNECTION_BAD && !retried) {
		retried = 1;
		PQclear(r);
		log_warnx("event=store_reconnect backend=postgresql");
		PQreset(c);
		if (PQstatus(c) == CONNECTION_OK && (before == PQTRANS_IDLE ||
		    before == PQTRANS_UNKNOWN) && strncmp(sql, "COMMIT", 6) != 0 &&
		    strncmp(sql, "ROLLBACK", 8) != 0)
			goto again;
		r = NULL;
	}
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state && strcmp(state, "23505") == 0 && exists) {
		*exists = 1;
	} else {
		char msg[200];

		snprintf(msg, sizeof(msg), "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		msg[strcspn(msg, "\"\n")] = '\0';
		log_warnx("event=store_error backend=postgresql sql=\"%.40s\" sqlstate=%s "
		    "error=\"%s\"", sql, state ? state : "-", msg);
	}
	PQclear(r);
	return NULL;
}

int
pgq_run(PGconn *c, const char *sql, const struct pgq *q, unsigned *changed)
{
	int exists;
	PGresult *r = pgq_exec(c, sql, q, &exists);

	if (r == NULL)
		return exists ? 2 : -1;
	if (changed)
		*changed = (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int64_t
pgq_get_int(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

size_t
pgq_get_blob(const PGresult *r, int row, int col, void *dst, size_t cap)
{
	unsigned char *b;
	size_t n = 0;

	if (PQgetisnull(r, row, col))
		return 0;
	if ((b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n)) == NULL)
		return 0;
	if (n > cap)
		n = 0;
	else if (n > 0)
		memcpy(dst, b, n);
	PQfreemem(b);
	return n;
}

int
pgq_get_bin(const PGresult *r, int row, int col, void *dst, size_t len)
{
	unsigned char tmp[256];
	size_t n;

	memset(dst, 0, len);
	if (len > sizeof(tmp))
		return -1;
	n = pgq_get_blob(r, row, col, tmp, sizeof(tmp));
	if (n != len)
		return -1;
	memcpy(dst, tmp, len);
	return (int)n;
}

void
pgq_get_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}
