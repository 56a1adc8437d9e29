/*
 * pgasync: queued writes over a pipelined PostgreSQL connection (pgasync.h).
 * A job is sent as [Parse, once per connection and statement] Bind/Execute, Sync: its results
 * come back in the same order, ended by PGRES_PIPELINE_SYNC, so the head of the queue is always
 * the job the next result belongs to.
 */
#include "config.h"
#include "server/pgasync.h"

#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "base/log.h"

struct job {
	struct job *next;
	const char *sql;
	pgasync_cb cb;
	void *arg;
	int n;
	const char *val[PGQ_MAX_PARAMS];
	int len[PGQ_MAX_PARAMS];
	int fmt[PGQ_MAX_PARAMS];
	int prep_pending;               /* its Parse's result comes first */
	int failed;
	double queued_at;               /* ev_now: the backlog's age (backlog_log) */
	size_t size;                    /* of data */
	PGresult *res;                  /* its Execute's result, until its Sync */
	char data[];                    /* the parameters' bytes */
};

struct stmt {
	const char *sql;
	char name[16];
	UT_hash_handle hh;
};

enum { ST_DOWN, ST_CONNECTING, ST_READY };

struct pgasync {
	struct ev_loop *loop;
	char *url;
	PGconn *c;
	int state;
	struct job *head, *tail;        /* queue; head..unsent-1 are in flight */
	struct job *unsent;
	size_t queued, inflight;
	int flushing;                   /* PQflush left bytes to send */
	struct stmt *stmts;             /* prepared on the current connection */
	unsigned next_stmt;
	unsigned long dropped;
	double backlog_logged_at;
	ev_io io_w;
	ev_timer retry_w;
};

static void pump(struct pgasync *a);

static const char *const keys[] = { "connect_timeout", "dbname", NULL };

static void
forget_stmts(struct pgasync *a)
{
	struct stmt *s, *t;

	HASH_ITER(hh, a->stmts, s, t) {
		HASH_DEL(a->stmts, s);
		free(s);
	}
}

static void
watch(struct pgasync *a, int events)
{
	int fd = a->c ? PQsocket(a->c) : -1;

	if (ev_is_active(&a->io_w) && a->io_w.fd == fd && (a->io_w.events & (EV_READ | EV_WRITE))
	    == events)
		return;
	ev_io_stop(a->loop, &a->io_w);
	if (fd < 0 || events == 0)
		return;
	ev_io_set(&a->io_w, fd, events);
	ev_io_start(a->loop, &a->io_w);
}

static void
job_free(struct job *j)
{
	PQclear(j->res);
	/* the cluster's F lines carry relay grants' secrets */
	sodium_memzero(j, sizeof(*j) + j->size);
	free(j);
}

/* The connection is gone: every job goes back to unsent, tried again on the next one. */
static void
lost(struct pgasync *a, const char *why)
{
	struct job *j;

	log_warnx("event=store_async_lost backend=postgresql reason=\"%s\" pending=%zu", why,
	    a->queued);
	watch(a, 0);
	PQfinish(a->c);
	a->c = NULL;
	a->state = ST_DOWN;
	a->flushing = 0;
	forget_stmts(a);
	for (j = a->head; j != NULL && j != a->unsent; j = j->next) {
		j->prep_pending = j->failed = 0;
		PQclear(j->res);
		j->res = NULL;
	}
	a->unsent = a->head;
	a->inflight = 0;
	ev_timer_stop(a->loop, &a->retry_w);
	ev_timer_set(&a->retry_w, PGASYNC_RETRY_S, 0.);
	ev_timer_start(a->loop, &a->retry_w);
}

static void
log_error(const char *what, const char *sql, const PGresult *r, PGconn *c)
{
	char msg[200];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	snprintf(msg, sizeof(msg), "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	msg[strcspn(msg, "\"\n")] = '\0';
	log_warnx("event=store_error backend=postgresql async=%s sql=\"%.40s\" sqlstate=%s "
	    "error=\"%s\"", what, sql, state ? state : "-", msg);
}

static void
ready(struct pgasync *a)
{
	if (!PQenterPipelineMode(a->c) || PQsetnonblocking(a->c, 1) != 0) {
		lost(a, "cannot enter pipeline mode");
		return;
	}
	a->state = ST_READY;
	watch(a, EV_READ);
	pump(a);
}

static void
connect_poll(struct pgasync *a)
{
	switch (PQconnectPoll(a->c)) {
	case PGRES_POLLING_READING:
		watch(a, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch(a, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		log_info("event=store_async_back backend=postgresql pending=%zu", a->queued);
		ready(a);
		break;
	default:
		lost(a, PQerrorMessage(a->c));
		break;
	}
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pgasync *a = w->data;
	const char *vals[] = { "5", a->url, NULL };

	(void)loop;
	(void)revents;
	if (a->state != ST_DOWN)
		return;
	/* PQconnectStartParams resolves no host name for a Unix socket or an address; a host name
	 * is looked up here, blocking, once per retry */
	if ((a->c = PQconnectStartParams(keys, vals, 1)) == NULL ||
	    PQstatus(a->c) == CONNECTION_BAD) {
		lost(a, a->c ? PQerrorMessage(a->c) : "out of memory");
		return;
	}
	a->state = ST_CONNECTING;
	connect_poll(a);
}

static const char *
prepared_name(struct pgasync *a, struct job *j, int *fresh)
{
	struct stmt *s;

	*fresh = 0;
	HASH_FIND_PTR(a->stmts, &j->sql, s);
	if (s != NULL)
		return s->name;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->sql = j->sql;
	snprintf(s->name, sizeof(s->name), "a%u", a->next_stmt++);
	if (!PQsendPrepare(a->c, s->name, j->sql, j->n, NULL)) {
		free(s);
		return NULL;
	}
	HASH_ADD_PTR(a->stmts, sql, s);
	*fresh = 1;
	return s->name;
}

static void
drop_stmt(struct pgasync *a, const char *sql)
{
	struct stmt *s;

	HASH_FIND_PTR(a->stmts, &sql, s);
	if (s != NULL) {
		HASH_DEL(a->stmts, s);
		free(s);
	}
}

/* Sends what the window allows, then flushes as far as the socket takes it. */
static void
pump(struct pgasync *a)
{
	struct job *j;
	const char *name;
	int fresh, f;

	if (a->state != ST_READY)
		return;
	while ((j = a->unsent) != NULL && a->inflight < PGASYNC_WINDOW) {
		if ((name = prepared_name(a, j, &fresh)) == NULL ||
		    !PQsendQueryPrepared(a->c, name, j->n, j->val, j->len, j->fmt, 0) ||
		    !PQpipelineSync(a->c)) {
			lost(a, PQerrorMessage(a->c));
			return;
		}
		j->prep_pending = fresh;
		a->unsent = j->next;
		a->inflight++;
	}
	if ((f = PQflush(a->c)) < 0) {
		lost(a, PQerrorMessage(a->c));
		return;
	}
	a->flushing = f == 1;
	watch(a, EV_READ | (a->flushing ? EV_WRITE : 0));
}

static void
finish_head(struct pgasync *a)
{
	struct job *j = a->head;

	a->head = j->next;
	if (a->head == NULL)
		a->tail = NULL;
	a->queued--;
	a->inflight--;
	if (j->cb != NULL)
		j->cb(j->arg, j->failed ? NULL : j->res);
	job_free(j);
}

static void
result(struct pgasync *a, PGresult *r)
{
	struct job *j = a->head;
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_PIPELINE_SYNC) {
		PQclear(r);
		finish_head(a);
		return;
	}
	if (j->prep_pending) {
		j->prep_pending = 0;
		if (st != PGRES_COMMAND_OK) {
			log_error("prepare", j->sql, r, a->c);
			drop_stmt(a, j->sql);
			j->failed = 1;
		}
		PQclear(r);
		return;
	}
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(j->res);
		j->res = r;
		return;
	}
	if (st != PGRES_PIPELINE_ABORTED)       /* aborted: its Parse failed, logged */
		log_error("run", j->sql, r, a->c);
	j->failed = 1;
	PQclear(r);
}

static void
readable(struct pgasync *a)
{
	PGresult *r;
	int nulls = 0;

	if (!PQconsumeInput(a->c)) {
		lost(a, PQerrorMessage(a->c));
		return;
	}
	/* a NULL ends each statement's results; two in a row: nothing more has arrived */
	while (a->inflight > 0 && !PQisBusy(a->c) && nulls < 2) {
		if ((r = PQgetResult(a->c)) == NULL) {
			nulls++;
			continue;
		}
		nulls = 0;
		result(a, r);
	}
	if (PQstatus(a->c) == CONNECTION_BAD)
		lost(a, PQerrorMessage(a->c));
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pgasync *a = w->data;

	(void)loop;
	if (a->state == ST_CONNECTING) {
		connect_poll(a);
		return;
	}
	if (a->state != ST_READY)
		return;
	if (revents & EV_READ) {
		readable(a);
		if (a->state != ST_READY)
			return;
	}
	pump(a);
}

struct pgasync *
pgasync_new(struct ev_loop *loop, const char *url, char *err, size_t errlen)
{
	struct pgasync *a;

	if ((a = calloc(1, sizeof(*a))) == NULL || (a->url = strdup(url)) == NULL) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->loop = loop;
	ev_init(&a->io_w, io_cb);
	a->io_w.data = a;
	ev_init(&a->retry_w, retry_cb);
	a->retry_w.data = a;
	a->c = pgq_dial(url);
	if (a->c == NULL || PQstatus(a->c) != CONNECTION_OK) {
		snprintf(err, errlen, "async connection: %s",
		    a->c ? PQerrorMessage(a->c) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfinish(a->c);
		free(a->url);
		free(a);
		return NULL;
	}
	ready(a);
	return a;
}

/* A queue well past the window means the database is behind: how far, at most every
 * PGASYNC_LOG_S (the age of the oldest write is how late presence and events arrive). */
static void
backlog_log(struct pgasync *a)
{
	double now = ev_now(a->loop);

	if (a->queued < PGASYNC_BACKLOG || a->head == NULL ||
	    (a->backlog_logged_at != 0 && now - a->backlog_logged_at < PGASYNC_LOG_S))
		return;
	log_info("event=store_async_backlog backend=postgresql pending=%zu oldest_s=%.1f",
	    a->queued, now - a->head->queued_at);
	a->backlog_logged_at = now;
}

int
pgasync_run(struct pgasync *a, const char *sql, const struct pgq *q, pgasync_cb cb, void *arg)
{
	struct job *j;
	size_t size = 0, off = 0;
	int i, n = q ? q->n : 0;

	if (a->queued >= PGASYNC_QUEUE_MAX) {
		if (a->dropped++ % 10000 == 0)
			log_warnx("event=store_async_full backend=postgresql sql=\"%.40s\" "
			    "dropped=%lu", sql, a->dropped);
		if (cb != NULL)
			cb(arg, NULL);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (q->val[i] != NULL)
			size += q->fmt[i] ? (size_t)q->len[i] : strlen(q->val[i]) + 1;
	if ((j = calloc(1, sizeof(*j) + size)) == NULL) {
		log_warnx("event=store_async_nomem backend=postgresql sql=\"%.40s\"", sql);
		if (cb != NULL)
			cb(arg, NULL);
		return -1;
	}
	j->size = size;
	j->sql = sql;
	j->cb = cb;
	j->arg = arg;
	j->n = n;
	for (i = 0; i < n; i++) {
		size_t len = q->fmt[i] ? (size_t)q->len[i] :
		    q->val[i] ? strlen(q->val[i]) + 1 : 0;

		j->len[i] = q->len[i];
		j->fmt[i] = q->fmt[i];
		if (q->val[i] == NULL)
			continue;               /* SQL NULL */
		memcpy(j->data + off, q->val[i], len);
		j->val[i] = j->data + off;
		off += len;
	}
	if (a->tail != NULL)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	if (a->unsent == NULL)
		a->unsent = j;
	a->queued++;
	j->queued_at = ev_now(a->loop);
	pump(a);
	backlog_log(a);
	return 0;
}

size_t
pgasync_pending(const struct pgasync *a)
{
	return a ? a->queued : 0;
}

void
pgasync_free(struct pgasync *a)
{
	struct job *j;
	ev_tstamp end;

	if (a == NULL)
		return;
	for (j = a->head; j != NULL; j = j->next)
		j->cb = NULL;
	/* a clean stop: wait for the queue without the loop (it is not running any more) */
	end = ev_time() + PGASYNC_DRAIN_S;
	while (a->head != NULL && a->state == ST_READY && ev_time() < end) {
		struct pollfd p = { .fd = PQsocket(a->c), .events = POLLIN, .revents = 0 };

		if (a->flushing)
			p.events |= POLLOUT;
		if (poll(&p, 1, 100) > 0) {
			if (p.revents & (POLLIN | POLLERR | POLLHUP))
				readable(a);
			if (a->state == ST_READY)
				pump(a);
		}
	}
	if (a->head != NULL)
		log_warnx("event=store_async_unsent backend=postgresql count=%zu", a->queued);
	watch(a, 0);
	ev_timer_stop(a->loop, &a->retry_w);
	while ((j = a->head) != NULL) {
		a->head = j->next;
		job_free(j);
	}
	forget_stmts(a);
	PQfinish(a->c);
	free(a->url);
	free(a);
}
