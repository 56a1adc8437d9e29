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
#include <sodium.h>
#include <uthash.h>

#include "base/log.h"

struct stmt {                            /* one prepared statement, by its SQL's address */
	const char *sql;
	char name[16];
	UT_hash_handle hh;
};

struct pgq_conn {
	PGconn *c;
	struct stmt *stmts;
	unsigned next;
};

static void
forget_stmts(struct pgq_conn *c)
{
	struct stmt *s, *t;

	HASH_ITER(hh, c->stmts, s, t) {
		HASH_DEL(c->stmts, s);
		free(s);
	}
}

/* NOTICEs ("relation already exists, skipping", "no transaction in progress" after a
 * reconnect) are expected: one debug line each instead of libpq's stderr default. */
static void
notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("event=store_notice backend=postgresql text=\"%.*s\"",
	    (int)strcspn(msg, "\"\n"), msg);
}

PGconn *
pgq_dial(const char *url)
{
	/* later keywords override earlier ones: the URL's own connect_timeout wins */
	static const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "5", url, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

struct pgq_conn *
pgq_connect(const char *url, char *err, size_t errlen)
{
	struct pgq_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->c = pgq_dial(url);
	if (c->c == NULL || PQstatus(c->c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    c->c ? PQerrorMessage(c->c) : "out of memory");
		for (char *p = err; *p; p++)
			if (*p == '\n' || *p == '"')
				*p = *p == '"' ? '\'' : ' ';
		PQfinish(c->c);
		free(c);
		return NULL;
	}
	PQsetNoticeProcessor(c->c, notice, NULL);
	return c;
}

void
pgq_close(struct pgq_conn *c)
{
	if (c == NULL)
		return;
	forget_stmts(c);
	PQfinish(c->c);
	free(c);
}

PGconn *
pgq_raw(struct pgq_conn *c)
{
	return c->c;
}

/* The name of sql's prepared statement, preparing it on first use; NULL on failure (the
 * result, for the error, in *fail). */
static const char *
prepared(struct pgq_conn *c, const char *sql, int n, PGresult **fail)
{
	struct stmt *s;
	PGresult *r;

	HASH_FIND_PTR(c->stmts, &sql, s);
	if (s != NULL)
		return s->name;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->sql = sql;
	snprintf(s->name, sizeof(s->name), "s%u", c->next++);
	r = PQprepare(c->c, s->name, sql, n, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*fail = r;
		free(s);
		return NULL;
	}
	PQclear(r);
	HASH_ADD_PTR(c->stmts, sql, s);
	return s->name;
}

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
pgq_exec(struct pgq_conn *pc, const char *sql, const struct pgq *q, int *exists)
{
	PGconn *c = pc->c;
	PGTransactionStatusType before = PQtransactionStatus(c);
	PGresult *r;
	ExecStatusType st;
	const char *state, *name;
	int retried = 0;

	if (exists)
		*exists = 0;
again:
	r = NULL;
	if (q == NULL)
		r = PQexec(c, sql);
	else if ((name = prepared(pc, sql, q->n, &r)) != NULL)
		r = PQexecPrepared(c, name, q->n, q->val, q->len, q->fmt, 0);
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
		forget_stmts(pc);       /* prepared statements live in the old session */
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
pgq_run(struct pgq_conn *c, const char *sql, const struct pgq *q, unsigned *changed)
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
	const char *v = PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	unsigned char *b;
	size_t n = 0;

	if (PQgetisnull(r, row, col))
		return 0;
	/* PostgreSQL's hex output (bytea_output's default since 9.0) is decoded where it lies:
	 * PQunescapeBytea allocates for each value, and a warm-up reads ~300,000 keys. libsodium
	 * refuses an odd length, a non-hex byte and more than cap bytes. */
	if (len >= 2 && v[0] == '\\' && v[1] == 'x')
		return sodium_hex2bin(dst, cap, v + 2, (size_t)len - 2, NULL, &n, NULL) == 0 ? n : 0;
	if ((b = PQunescapeBytea((const unsigned char *)v, &n)) == NULL)
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
