/*
 * chatstore_pg: chat persistence over the PostgreSQL store's connection (chatstore.h, through
 * store_backend.h). Same tables and semantics as chatstore_sqlite.c; the mailbox counter and
 * the resend check are single upserts, so instances sharing the database never hand out one
 * mailbox number twice or accept one resend twice.
 */
#include "config.h"

#include <libpq-fe.h>
#include <string.h>

#include "base/log.h"
#include "server/pgq.h"
#include "server/store_backend.h"

#define PG(st) store_pg_conn(st)

static int
pg_resend(struct store *st, const uint8_t sender[KEY_LEN], uint32_t client_id)
{
	struct pgq q;
	PGresult *r;
	int seen;

	/* a row comes back only when the id is new (inserted, or above the one stored) */
	pgq_init(&q);
	pgq_bin(&q, sender, KEY_LEN);
	pgq_int(&q, client_id);
	if ((r = pgq_exec(PG(st), "INSERT INTO chat_sent (sender, client_id) VALUES ($1, $2) "
	    "ON CONFLICT (sender) DO UPDATE SET client_id = excluded.client_id "
	    "WHERE chat_sent.client_id < excluded.client_id RETURNING 1", &q, NULL)) == NULL)
		return -1;
	seen = PQntuples(r) == 0;
	PQclear(r);
	return seen;
}

/* Puts log entry id in node's mailbox under its next number, then trims the mailbox. */
static int
box_put(struct pgq_conn *c, const uint8_t node[KEY_LEN], int64_t id, unsigned box_max)
{
	struct pgq q;
	PGresult *r;
	int64_t seq;

	pgq_init(&q);
	pgq_bin(&q, node, KEY_LEN);
	if ((r = pgq_exec(c, "INSERT INTO chat_next (node, seq) VALUES ($1, 1) "
	    "ON CONFLICT (node) DO UPDATE SET seq = chat_next.seq + 1 RETURNING seq", &q,
	    NULL)) == NULL)
		return -1;
	seq = pgq_get_int(r, 0, 0);
	PQclear(r);
	pgq_int(&q, seq);
	pgq_int(&q, id);
	if (pgq_run(c, "INSERT INTO chat_box (node, seq, log) VALUES ($1, $2, $3)", &q, NULL))
		return -1;
	/* a mailbox nobody empties (a node gone for months) keeps only its newest */
	pgq_init(&q);
	pgq_bin(&q, node, KEY_LEN);
	pgq_int(&q, seq - (int64_t)box_max);
	return pgq_run(c, "DELETE FROM chat_box WHERE node = $1 AND seq <= $2", &q, NULL) ? -1 : 0;
}

static int
log_put(struct pgq_conn *c, const char *conv, const struct chat_row *r, int64_t *id)
{
	struct pgq q;
	PGresult *res;

	pgq_init(&q);
	pgq_text(&q, conv);
	pgq_int(&q, r->ts_ms);
	pgq_int(&q, r->kind);
	pgq_text(&q, r->network);
	pgq_bin(&q, r->sender, KEY_LEN);
	if (r->kind == CHAT_PRIVATE)
		pgq_bin(&q, r->recipient, KEY_LEN);
	else
		pgq_null(&q);
	pgq_text(&q, r->nick);
	pgq_int(&q, r->client_id);
	pgq_bin(&q, r->body, r->body_len);
	if ((res = pgq_exec(c, "INSERT INTO chat_log (conv, ts, kind, network, sender, recipient, "
	    "nick, client_id, body) VALUES ($1, $2, $3, $4, $5, $6::bytea, $7, $8, $9) RETURNING id",
	    &q, NULL)) == NULL)
		return -1;
	*id = pgq_get_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int
pg_add(struct store *st, const char *conv, const struct chat_row *r,
    const uint8_t (*to)[KEY_LEN], size_t n, unsigned keep, unsigned box_max)
{
	struct pgq_conn *c = PG(st);
	struct pgq q;
	int64_t id;
	size_t i;

	if (pgq_run(c, "BEGIN", NULL, NULL) != 0)
		return -1;
	if (log_put(c, conv, r, &id) < 0)
		goto rollback;
	for (i = 0; i < n; i++)
		if (box_put(c, to[i], id, box_max) < 0)
			goto rollback;
	/* The conversation's newest keep stay; mailbox entries of older ones go (CASCADE). */
	pgq_init(&q);
	pgq_text(&q, conv);
	pgq_int(&q, keep);
	if (pgq_run(c, "DELETE FROM chat_log WHERE conv = $1 AND id <= (SELECT id FROM chat_log "
	    "WHERE conv = $1 ORDER BY id DESC LIMIT 1 OFFSET $2::bigint)", &q, NULL) != 0 ||
	    pgq_run(c, "COMMIT", NULL, NULL) != 0)
		goto rollback;
	return 0;
rollback:
	(void)pgq_run(c, "ROLLBACK", NULL, NULL);
	return -1;
}

/* Columns: ts, kind, network, sender, recipient, nick, client_id, body[, seq]. */
#define ROW_COLS "l.ts, l.kind, l.network, l.sender, l.recipient, l.nick, l.client_id, l.body"

static int
walk(PGresult *res, int seq_col, chat_row_cb cb, void *arg)
{
	struct chat_row r;
	int i, rc = 0;

	for (i = 0; i < PQntuples(res) && rc == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.ts_ms = pgq_get_int(res, i, 0);
		r.kind = (uint8_t)pgq_get_int(res, i, 1);
		pgq_get_text(res, i, 2, r.network, sizeof(r.network));
		pgq_get_bin(res, i, 3, r.sender, KEY_LEN);
		pgq_get_bin(res, i, 4, r.recipient, KEY_LEN);
		pgq_get_text(res, i, 5, r.nick, sizeof(r.nick));
		r.client_id = (uint32_t)pgq_get_int(res, i, 6);
		r.body_len = (uint16_t)pgq_get_blob(res, i, 7, r.body, sizeof(r.body));
		if (seq_col >= 0)
			r.seq = (uint64_t)pgq_get_int(res, i, seq_col);
		rc = cb(arg, &r);
	}
	PQclear(res);
	return rc;
}

static int
pg_pending(struct store *st, const uint8_t node[KEY_LEN], uint64_t after, unsigned max,
    chat_row_cb cb, void *arg)
{
	struct pgq q;
	PGresult *r;

	pgq_init(&q);
	pgq_bin(&q, node, KEY_LEN);
	pgq_int(&q, (int64_t)after);
	pgq_int(&q, max);
	if ((r = pgq_exec(PG(st), "SELECT " ROW_COLS ", b.seq FROM chat_box b "
	    "JOIN chat_log l ON l.id = b.log WHERE b.node = $1 AND b.seq > $2 "
	    "ORDER BY b.seq LIMIT $3::bigint", &q, NULL)) == NULL)
		return -1;
	return walk(r, 8, cb, arg);
}

static int
pg_ack(struct store *st, const uint8_t node[KEY_LEN], uint64_t seq)
{
	struct pgq q;

	pgq_init(&q);
	pgq_bin(&q, node, KEY_LEN);
	pgq_int(&q, (int64_t)seq);
	return pgq_run(PG(st), "DELETE FROM chat_box WHERE node = $1 AND seq <= $2", &q, NULL) ?
	    -1 : 0;
}

static int
pg_history(struct store *st, const char *conv, unsigned limit, chat_row_cb cb, void *arg)
{
	struct pgq q;
	PGresult *r;

	pgq_init(&q);
	pgq_text(&q, conv);
	pgq_int(&q, limit);
	if ((r = pgq_exec(PG(st), "SELECT * FROM (SELECT " ROW_COLS ", l.id FROM chat_log l "
	    "WHERE l.conv = $1 ORDER BY l.id DESC LIMIT $2::bigint) t ORDER BY 9", &q,
	    NULL)) == NULL)
		return -1;
	return walk(r, -1, cb, arg);
}

const struct chatstore_ops chatstore_pg_ops = {
	.resend = pg_resend,
	.add = pg_add,
	.pending = pg_pending,
	.ack = pg_ack,
	.history = pg_history,
};
