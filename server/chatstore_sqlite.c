/*
 * chatstore_sqlite: chat persistence over the SQLite store's handle (chatstore.h, through
 * store_backend.h). Statements are prepared per call, as in store_sqlite.c: chat writes are
 * people typing.
 */
#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "base/log.h"
#include "server/store_backend.h"

static int
fail(sqlite3 *db, const char *what)
{
	log_warnx("event=chatstore_failed op=%s error=\"%s\"", what, sqlite3_errmsg(db));
	return -1;
}

static int
exec1(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(db, sql);
}

static int
sq_resend(struct store *st, const uint8_t sender[KEY_LEN], uint32_t client_id)
{
	sqlite3 *db = store_sqlite_db(st);
	sqlite3_stmt *s;
	int rc, seen = 0;

	if (sqlite3_prepare_v2(db, "SELECT client_id FROM chat_sent WHERE sender = ?1", -1, &s,
	    NULL) != SQLITE_OK)
		return fail(db, "resend");
	sqlite3_bind_blob(s, 1, sender, KEY_LEN, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		seen = (uint32_t)sqlite3_column_int64(s, 0) >= client_id;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(db, "resend");
	if (seen)
		return 1;
	if (sqlite3_prepare_v2(db, "INSERT INTO chat_sent (sender, client_id) VALUES (?1, ?2) "
	    "ON CONFLICT(sender) DO UPDATE SET client_id = excluded.client_id", -1, &s, NULL) !=
	    SQLITE_OK)
		return fail(db, "resend");
	sqlite3_bind_blob(s, 1, sender, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, client_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(db, "resend");
}

/* Puts log entry id in node's mailbox under its next number, then trims the mailbox. */
static int
box_put(sqlite3 *db, const uint8_t node[KEY_LEN], int64_t id, unsigned box_max)
{
	static const char *const sql[] = {
		"INSERT INTO chat_next (node, seq) VALUES (?1, 1) "
		"ON CONFLICT(node) DO UPDATE SET seq = seq + 1",
		"INSERT INTO chat_box (node, seq, log) "
		"SELECT ?1, seq, ?2 FROM chat_next WHERE node = ?1",
		/* a mailbox nobody empties (a node gone for months) keeps only its newest */
		"DELETE FROM chat_box WHERE node = ?1 AND seq <= "
		"(SELECT seq FROM chat_next WHERE node = ?1) - ?3",
	};
	sqlite3_stmt *s;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(db, sql[i], -1, &s, NULL) != SQLITE_OK)
			return fail(db, "box_put");
		sqlite3_bind_blob(s, 1, node, KEY_LEN, SQLITE_STATIC);
		if (i == 1)
			sqlite3_bind_int64(s, 2, id);
		if (i == 2)
			sqlite3_bind_int64(s, 3, box_max);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return fail(db, "box_put");
	}
	return 0;
}

static int
log_put(sqlite3 *db, const char *conv, const struct chat_row *r, int64_t *id)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO chat_log (conv, ts, kind, network, sender, "
	    "recipient, nick, client_id, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", -1, &s,
	    NULL) != SQLITE_OK)
		return fail(db, "log_put");
	sqlite3_bind_text(s, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, r->ts_ms);
	sqlite3_bind_int(s, 3, r->kind);
	sqlite3_bind_text(s, 4, r->network, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, r->sender, KEY_LEN, SQLITE_STATIC);
	if (r->kind == CHAT_PRIVATE)
		sqlite3_bind_blob(s, 6, r->recipient, KEY_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 6);
	sqlite3_bind_text(s, 7, r->nick, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, r->client_id);
	sqlite3_bind_blob(s, 9, r->body, r->body_len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fail(db, "log_put");
	*id = sqlite3_last_insert_rowid(db);
	return 0;
}

/* The conversation's newest keep stay; mailbox entries of older ones go with them (CASCADE). */
static int
log_trim(sqlite3 *db, const char *conv, unsigned keep)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, "DELETE FROM chat_log WHERE conv = ?1 AND id <= "
	    "(SELECT id FROM chat_log WHERE conv = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)", -1, &s,
	    NULL) != SQLITE_OK)
		return fail(db, "log_trim");
	sqlite3_bind_text(s, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, keep);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(db, "log_trim");
}

static int
sq_add(struct store *st, const char *conv, const struct chat_row *r,
    const uint8_t (*to)[KEY_LEN], size_t n, unsigned keep, unsigned box_max)
{
	sqlite3 *db = store_sqlite_db(st);
	int64_t id;
	size_t i;

	if (exec1(db, "BEGIN") < 0)
		return -1;
	if (log_put(db, conv, r, &id) < 0)
		goto rollback;
	for (i = 0; i < n; i++)
		if (box_put(db, to[i], id, box_max) < 0)
			goto rollback;
	if (log_trim(db, conv, keep) < 0 || exec1(db, "COMMIT") < 0)
		goto rollback;
	return 0;
rollback:
	(void)exec1(db, "ROLLBACK");
	return -1;
}

/* Columns: ts, kind, network, sender, recipient, nick, client_id, body[, seq]. */
#define ROW_COLS "l.ts, l.kind, l.network, l.sender, l.recipient, l.nick, l.client_id, l.body"

static void
row_from(struct chat_row *r, sqlite3_stmt *s)
{
	const void *p;
	int n;

	memset(r, 0, sizeof(*r));
	r->ts_ms = sqlite3_column_int64(s, 0);
	r->kind = (uint8_t)sqlite3_column_int(s, 1);
	if ((p = sqlite3_column_text(s, 2)) != NULL)
		strncpy(r->network, p, sizeof(r->network) - 1);
	if ((p = sqlite3_column_blob(s, 3)) != NULL && sqlite3_column_bytes(s, 3) == KEY_LEN)
		memcpy(r->sender, p, KEY_LEN);
	if ((p = sqlite3_column_blob(s, 4)) != NULL && sqlite3_column_bytes(s, 4) == KEY_LEN)
		memcpy(r->recipient, p, KEY_LEN);
	if ((p = sqlite3_column_text(s, 5)) != NULL)
		strncpy(r->nick, p, sizeof(r->nick) - 1);
	r->client_id = (uint32_t)sqlite3_column_int64(s, 6);
	n = sqlite3_column_bytes(s, 7);
	if ((p = sqlite3_column_blob(s, 7)) != NULL && n > 0 && n <= CHAT_BODY_MAX) {
		memcpy(r->body, p, (size_t)n);
		r->body_len = (uint16_t)n;
	}
}

static int
walk(sqlite3 *db, sqlite3_stmt *s, int seq_col, chat_row_cb cb, void *arg)
{
	struct chat_row r;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_from(&r, s);
		if (seq_col >= 0)
			r.seq = (uint64_t)sqlite3_column_int64(s, seq_col);
		if ((rc = cb(arg, &r)) != 0) {
			sqlite3_finalize(s);
			return rc;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(db, "walk");
}

static int
sq_pending(struct store *st, const uint8_t node[KEY_LEN], uint64_t after, unsigned max,
    chat_row_cb cb, void *arg)
{
	sqlite3 *db = store_sqlite_db(st);
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, "SELECT " ROW_COLS ", b.seq FROM chat_box b "
	    "JOIN chat_log l ON l.id = b.log WHERE b.node = ?1 AND b.seq > ?2 "
	    "ORDER BY b.seq LIMIT ?3", -1, &s, NULL) != SQLITE_OK)
		return fail(db, "pending");
	sqlite3_bind_blob(s, 1, node, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)after);
	sqlite3_bind_int64(s, 3, max);
	return walk(db, s, 8, cb, arg);
}

static int
sq_ack(struct store *st, const uint8_t node[KEY_LEN], uint64_t seq)
{
	sqlite3 *db = store_sqlite_db(st);
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, "DELETE FROM chat_box WHERE node = ?1 AND seq <= ?2", -1, &s,
	    NULL) != SQLITE_OK)
		return fail(db, "ack");
	sqlite3_bind_blob(s, 1, node, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)seq);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(db, "ack");
}

static int
sq_history(struct store *st, const char *conv, unsigned limit, chat_row_cb cb, void *arg)
{
	sqlite3 *db = store_sqlite_db(st);
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, "SELECT * FROM (SELECT " ROW_COLS ", l.id FROM chat_log l "
	    "WHERE l.conv = ?1 ORDER BY l.id DESC LIMIT ?2) ORDER BY 9", -1, &s, NULL) != SQLITE_OK)
		return fail(db, "history");
	sqlite3_bind_text(s, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, limit);
	return walk(db, s, -1, cb, arg);
}

const struct chatstore_ops chatstore_sqlite_ops = {
	.resend = sq_resend,
	.add = sq_add,
	.pending = sq_pending,
	.ack = sq_ack,
	.history = sq_history,
};
