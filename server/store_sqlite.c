/*
 * store_sqlite: the SQLite backend of the store (store_backend.h), the default: one file under
 * the state directory, for a mediator on one box. Owns the sqlite3 handle and the schema.
 * Must not touch: policy (mediator.c decides who may do what), sockets, the event loop.
 *
 * Statements are prepared per call: the mediator's write rate is tiny, and it lets callbacks of
 * the *_each walks call back into the store freely.
 */
#include "config.h"
#include "server/store_backend.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* Prepared statements kept for the life of the connection, keyed by the address of their SQL
 * text (every caller passes a string literal): a reconnect storm runs the same few statements
 * per node, and parsing and planning them each time was a tenth of the mediator's CPU there
 * (issue 13). A statement still in use (a nested call with the same SQL) gets a fresh one. */
#define STMT_CACHE 32

struct cached_stmt {
	const char *sql;
	sqlite3_stmt *s;
	int busy;
};

struct store_sqlite {                    /* owned by the server context (or a test) */
	struct store base;
	sqlite3 *db;
	struct cached_stmt cache[STMT_CACHE];
};

#define DB(st) (((struct store_sqlite *)(st))->db)
static const struct store_ops sqlite_ops;
static int sq_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online);

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS nodes ("
	"  key BLOB PRIMARY KEY CHECK (length(key) = 32),"
	"  address INTEGER NOT NULL UNIQUE,"
	"  nick TEXT NOT NULL,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now')),"
	"  last_seen INTEGER NOT NULL DEFAULT (strftime('%s','now'))"
	");"
	"CREATE TABLE IF NOT EXISTS networks ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  owner BLOB NOT NULL REFERENCES nodes(key),"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  pwhash TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE TABLE IF NOT EXISTS members ("
	"  seq INTEGER PRIMARY KEY,"
	"  network INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,"
	"  node BLOB NOT NULL REFERENCES nodes(key),"
	"  pending INTEGER NOT NULL DEFAULT 0,"
	"  online INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE (network, node)"
	");"
	"CREATE INDEX IF NOT EXISTS members_by_node ON members(node);";

/* The chat's tables (server/chatstore.c reads and writes them). */
static const char chat_schema[] =
	"CREATE TABLE IF NOT EXISTS chat_log ("
	"  id INTEGER PRIMARY KEY,"
	"  conv TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  network TEXT NOT NULL DEFAULT '',"
	"  sender BLOB NOT NULL,"
	"  recipient BLOB,"
	"  nick TEXT NOT NULL,"
	"  client_id INTEGER NOT NULL,"
	"  body BLOB NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS chat_log_conv ON chat_log(conv, id);"
	"CREATE TABLE IF NOT EXISTS chat_box ("
	"  node BLOB NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  log INTEGER NOT NULL REFERENCES chat_log(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (node, seq)"
	");"
	"CREATE INDEX IF NOT EXISTS chat_box_log ON chat_box(log);"
	"CREATE TABLE IF NOT EXISTS chat_next (node BLOB PRIMARY KEY, seq INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS chat_sent (sender BLOB PRIMARY KEY, client_id INTEGER NOT NULL);";

static int
db_exec(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(DB(st), sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("event=store_error sql=\"%.40s\" error=\"%s\"", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
db_prepare(struct store *st, const char *sql)
{
	struct cached_stmt *c = ((struct store_sqlite *)st)->cache, *slot = NULL;
	sqlite3_stmt *s = NULL;

	for (int i = 0; i < STMT_CACHE; i++) {
		if (c[i].sql == sql && !c[i].busy) {
			c[i].busy = 1;
			return c[i].s;
		}
		if (c[i].sql == NULL && slot == NULL)
			slot = &c[i];
	}
	if (sqlite3_prepare_v3(DB(st), sql, -1, slot ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL) !=
	    SQLITE_OK) {
		log_warnx("event=store_error sql=\"%.40s\" error=\"%s\"", sql, sqlite3_errmsg(DB(st)));
		return NULL;
	}
	if (slot != NULL)
		*slot = (struct cached_stmt){ .sql = sql, .s = s, .busy = 1 };
	return s;
}

/* Where every statement from db_prepare ends: a cached one is reset for its next use (its
 * bindings cleared: they may point at the caller's memory), any other finalized. */
static void
db_release(struct store *st, sqlite3_stmt *s)
{
	struct cached_stmt *c = ((struct store_sqlite *)st)->cache;

	for (int i = 0; i < STMT_CACHE; i++)
		if (c[i].s == s && c[i].busy) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			c[i].busy = 0;
			return;
		}
	sqlite3_finalize(s);
}

/* Runs a statement that returns no rows. 0, STORE_EXISTS on a UNIQUE violation, or -1. */
static int
db_step_done(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int ext = sqlite3_extended_errcode(DB(st));

	db_release(st, s);
	if (rc == SQLITE_DONE)
		return 0;
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return STORE_EXISTS;
	log_warnx("event=store_error error=\"%s\"", sqlite3_errmsg(DB(st)));
	return -1;
}

/*
 * Steps a statement expected to return at most one row: 0 with the row ready to read,
 * STORE_NOT_FOUND when there is none, or -1. The caller reads the row, then finalizes.
 */
static int
db_step_row(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	log_warnx("event=store_error error=\"%s\"", sqlite3_errmsg(DB(st)));
	return -1;
}

static void
copy_text(char *dst, size_t cap, const unsigned char *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static void
copy_key(uint8_t key[KEY_LEN], sqlite3_stmt *s, int col)
{
	const void *p = sqlite3_column_blob(s, col);

	memset(key, 0, KEY_LEN);
	if (p && sqlite3_column_bytes(s, col) == KEY_LEN)
		memcpy(key, p, KEY_LEN);
}

/* Stores made before nodes.last_seen existed get it; their nodes count as seen now (their
 * real last visit is unknown, and reclaiming on a guess would take addresses in use). */
static int
migrate(struct store *st)
{
	sqlite3_stmt *s = db_prepare(st, "SELECT 1 FROM pragma_table_info('nodes') "
	    "WHERE name = 'last_seen'");
	int rc;

	if (s == NULL)
		return -1;
	rc = sqlite3_step(s);
	db_release(st, s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return -1;
	log_info("event=store_migrated change=nodes_last_seen");
	if (db_exec(st, "ALTER TABLE nodes ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0") < 0)
		return -1;
	return db_exec(st, "UPDATE nodes SET last_seen = strftime('%s','now')");
}

struct store *
store_sqlite_open(const char *path, char *err, size_t errlen)
{
	struct store *st;

	if ((st = calloc(1, sizeof(struct store_sqlite))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &DB(st), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    DB(st) ? sqlite3_errmsg(DB(st)) : "out of memory");
		goto fail;
	}
	st->ops = &sqlite_ops;
	st->chat = &chatstore_sqlite_ops;
	st->kind = "sqlite";
	sqlite3_busy_timeout(DB(st), 2000);
	/* WAL + NORMAL: a committed change is in the WAL before we answer the request, so it
	 * survives the server being killed at any point; only a crash of the whole machine may
	 * lose the last changes before the next checkpoint (the database stays consistent). FULL
	 * waited for the disk at every commit: on a shared VM disk that is a few ms, and with
	 * two or three commits per new node it held registrations to ~80 a second and every
	 * presence change behind them (issue 13, README "Scale"). */
	if (db_exec(st, "PRAGMA journal_mode=WAL;") < 0 ||
	    db_exec(st, "PRAGMA synchronous=NORMAL;") < 0 ||
	    db_exec(st, "PRAGMA foreign_keys=ON;") < 0 ||
	    db_exec(st, schema) < 0 || db_exec(st, chat_schema) < 0 || migrate(st) < 0) {
		snprintf(err, errlen, "cannot initialise %s: %s", path, sqlite3_errmsg(DB(st)));
		goto fail;
	}
	return st;
fail:
	sqlite3_close(DB(st));
	free(st);
	return NULL;
}

static int
sq_clear(struct store *st)
{
	return db_exec(st, "DELETE FROM chat_box; DELETE FROM chat_log; DELETE FROM chat_next; "
	    "DELETE FROM chat_sent; DELETE FROM members; DELETE FROM networks; DELETE FROM nodes;");
}

struct sqlite3 *
store_sqlite_db(struct store *st)
{
	return DB(st);
}

static void
sq_close(struct store *st)
{
	for (int i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(((struct store_sqlite *)st)->cache[i].s);
	sqlite3_close(DB(st));
	free(st);
}

/* ---- nodes ---- */

static int
sq_node_get(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out)
{
	sqlite3_stmt *s;
	int rc;

	/* the mailbox too: a returning node's chat_online then reads it only when it holds some */
	s = db_prepare(st, "SELECT address, nick, last_seen, "
	    "NOT EXISTS (SELECT 1 FROM chat_box WHERE node = ?1) FROM nodes WHERE key = ?1");
	if (s == NULL)
		return -1;
	sqlite3_bind_blob(s, 1, key, KEY_LEN, SQLITE_STATIC);
	if ((rc = db_step_row(st, s)) == 0) {
		memcpy(out->key, key, KEY_LEN);
		out->address = (uint32_t)sqlite3_column_int64(s, 0);
		copy_text(out->nick, sizeof(out->nick), sqlite3_column_text(s, 1));
		out->last_seen = sqlite3_column_int64(s, 2);
		out->mail_empty = sqlite3_column_int(s, 3) != 0;
	}
	db_release(st, s);
	return rc;
}

/*
 * Addresses are handed out in order, max+1 within the usable range, so an address is not
 * given to another node while the range lasts. Only once the top is reached are the gaps left
 * by reclaimed nodes (store_nodes_reclaim) filled, lowest first. Runs inside the caller's
 * transaction.
 */
static int
lowest_gap(struct store *st, uint32_t lo, uint32_t hi, uint32_t *addr)
{
	sqlite3_stmt *s;
	int rc;

	s = db_prepare(st, "SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE address = ?1) "
	    "UNION ALL SELECT a.address + 1 FROM nodes a WHERE a.address BETWEEN ?1 AND ?2 - 1 "
	    "AND NOT EXISTS (SELECT 1 FROM nodes b WHERE b.address = a.address + 1) "
	    "ORDER BY 1 LIMIT 1");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, lo);
	sqlite3_bind_int64(s, 2, hi);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*addr = (uint32_t)sqlite3_column_int64(s, 0);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? STORE_FULL : -1;
	}
	db_release(st, s);
	return rc;
}

static int
alloc_address(struct store *st, uint32_t lo, uint32_t hi, uint32_t *addr)
{
	sqlite3_stmt *s;
	int rc;

	s = db_prepare(st, "SELECT max(address) FROM nodes WHERE address BETWEEN ?1 AND ?2");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, lo);
	sqlite3_bind_int64(s, 2, hi);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		db_release(st, s);
		return -1;
	}
	if (sqlite3_column_type(s, 0) == SQLITE_NULL) {
		*addr = lo;
		rc = 0;
	} else {
		int64_t max = sqlite3_column_int64(s, 0);

		if (max >= (int64_t)hi) {
			db_release(st, s);
			return lowest_gap(st, lo, hi, addr);
		} else {
			*addr = (uint32_t)(max + 1);
			rc = 0;
		}
	}
	db_release(st, s);
	return rc;
}

static int
sq_node_get_or_create(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
    uint8_t prefix_len, struct store_node *out, int *created)
{
	uint32_t mask, lo, hi, addr = 0;
	sqlite3_stmt *s;
	int rc;

	*created = 0;
	if ((rc = sq_node_get(st, key, out)) != STORE_NOT_FOUND)
		return rc;
	if (prefix_len < 1 || prefix_len > 30)
		return STORE_FULL;
	mask = 0xffffffffu << (32 - prefix_len);
	lo = (range & mask) + 1;
	hi = (range & mask) + ~mask - 1;
	if (db_exec(st, "BEGIN IMMEDIATE") < 0)
		return -1;
	if ((rc = alloc_address(st, lo, hi, &addr)) != 0)
		goto rollback;
	memcpy(out->key, key, KEY_LEN);
	out->address = addr;
	out->last_seen = 0;
	snprintf(out->nick, sizeof(out->nick), "node-%02x%02x%02x", key[0], key[1], key[2]);
	if ((s = db_prepare(st, "INSERT INTO nodes (key, address, nick) VALUES (?1, ?2, ?3)")) ==
	    NULL) {
		rc = -1;
		goto rollback;
	}
	sqlite3_bind_blob(s, 1, key, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, addr);
	sqlite3_bind_text(s, 3, out->nick, -1, SQLITE_STATIC);
	if ((rc = db_step_done(st, s)) != 0)
		goto rollback;
	if (db_exec(st, "COMMIT") < 0) {
		rc = -1;
		goto rollback;
	}
	*created = 1;
	return 0;
rollback:
	db_exec(st, "ROLLBACK");
	return rc == STORE_EXISTS ? -1 : rc;
}

static int
sq_node_touch(struct store *st, const uint8_t key[KEY_LEN], int64_t when)
{
	sqlite3_stmt *s = db_prepare(st, when ? "UPDATE nodes SET last_seen = ?2 WHERE key = ?1" :
	    "UPDATE nodes SET last_seen = strftime('%s','now') WHERE key = ?1");

	if (s == NULL)
		return -1;
	sqlite3_bind_blob(s, 1, key, KEY_LEN, SQLITE_STATIC);
	if (when)
		sqlite3_bind_int64(s, 2, when);
	return db_step_done(st, s);
}

static int
sq_nodes_reclaim(struct store *st, int64_t before, unsigned *removed)
{
	sqlite3_stmt *s = db_prepare(st, "DELETE FROM nodes WHERE last_seen < ?1 "
	    "AND NOT EXISTS (SELECT 1 FROM members WHERE members.node = nodes.key) "
	    "AND NOT EXISTS (SELECT 1 FROM networks WHERE networks.owner = nodes.key)");
	int rc;

	*removed = 0;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, before);
	if ((rc = db_step_done(st, s)) == 0)
		*removed = (unsigned)sqlite3_changes(DB(st));
	return rc;
}

static int
sq_node_set_nick(struct store *st, const uint8_t key[KEY_LEN], const char *nick)
{
	sqlite3_stmt *s = db_prepare(st, "UPDATE nodes SET nick = ?2 WHERE key = ?1");

	if (s == NULL)
		return -1;
	sqlite3_bind_blob(s, 1, key, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, nick, -1, SQLITE_STATIC);
	return db_step_done(st, s);
}

/* ---- networks ---- */

static void
network_from_row(struct store_network *n, sqlite3_stmt *s)
{
	n->id = sqlite3_column_int64(s, 0);
	copy_text(n->name, sizeof(n->name), sqlite3_column_text(s, 1));
	copy_key(n->owner, s, 2);
	n->flags = (uint8_t)sqlite3_column_int(s, 3);
	copy_text(n->pwhash, sizeof(n->pwhash), sqlite3_column_text(s, 4));
}

static int
sq_network_create(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
    const char *pwhash, uint8_t flags, struct store_network *out)
{
	sqlite3_stmt *s;
	int rc;

	if (db_exec(st, "BEGIN IMMEDIATE") < 0)
		return -1;
	s = db_prepare(st, "INSERT INTO networks (name, owner, flags, pwhash) "
	    "VALUES (?1, ?2, ?3, ?4)");
	if (s == NULL) {
		rc = -1;
		goto rollback;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, owner, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, flags);
	sqlite3_bind_text(s, 4, pwhash ? pwhash : "", -1, SQLITE_STATIC);
	if ((rc = db_step_done(st, s)) != 0)
		goto rollback;
	out->id = sqlite3_last_insert_rowid(DB(st));
	snprintf(out->name, sizeof(out->name), "%s", name);
	memcpy(out->owner, owner, KEY_LEN);
	out->flags = flags;
	snprintf(out->pwhash, sizeof(out->pwhash), "%s", pwhash ? pwhash : "");
	if ((rc = sq_member_add(st, out->id, owner, 0, 1)) != 0)
		goto rollback;
	if (db_exec(st, "COMMIT") < 0) {
		rc = -1;
		goto rollback;
	}
	return 0;
rollback:
	db_exec(st, "ROLLBACK");
	return rc;
}

static int
sq_network_get(struct store *st, const char *name, struct store_network *out)
{
	sqlite3_stmt *s;
	int rc;

	s = db_prepare(st, "SELECT id, name, owner, flags, pwhash FROM networks WHERE name = ?1");
	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if ((rc = db_step_row(st, s)) == 0)
		network_from_row(out, s);
	db_release(st, s);
	return rc;
}

static int
exec_id(struct store *st, const char *sql, int64_t id)
{
	sqlite3_stmt *s = db_prepare(st, sql);

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	return db_step_done(st, s);
}

static int
sq_network_delete(struct store *st, int64_t id)
{
	/* Memberships go with it (ON DELETE CASCADE), in the same implicit transaction. */
	return exec_id(st, "DELETE FROM networks WHERE id = ?1", id);
}

static int
sq_network_set_pwhash(struct store *st, int64_t id, const char *pwhash)
{
	sqlite3_stmt *s = db_prepare(st, "UPDATE networks SET pwhash = ?2 WHERE id = ?1");

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, pwhash ? pwhash : "", -1, SQLITE_STATIC);
	return db_step_done(st, s);
}

static int
sq_network_set_flags(struct store *st, int64_t id, uint8_t flags)
{
	sqlite3_stmt *s = db_prepare(st, "UPDATE networks SET flags = ?2 WHERE id = ?1");

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, flags);
	return db_step_done(st, s);
}

/* ---- members ---- */

static int
sq_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online)
{
	sqlite3_stmt *s = db_prepare(st, "INSERT INTO members (network, node, pending, online) "
	    "VALUES (?1, ?2, ?3, ?4)");

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, net);
	sqlite3_bind_blob(s, 2, key, KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, pending ? 1 : 0);
	sqlite3_bind_int(s, 4, online ? 1 : 0);
	return db_step_done(st, s);
}

static void
member_from_row(struct store_member *m, sqlite3_stmt *s, int col)
{
	copy_key(m->key, s, col);
	m->address = (uint32_t)sqlite3_column_int64(s, col + 1);
	copy_text(m->nick, sizeof(m->nick), sqlite3_column_text(s, col + 2));
	m->pending = sqlite3_column_int(s, col + 3);
	m->online = sqlite3_column_int(s, col + 4);
}

static int
sq_member_get(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    struct store_member *out)
{
	sqlite3_stmt *s;
	int rc;

	s = db_prepare(st, "SELECT n.key, n.address, n.nick, m.pending, m.online "
	    "FROM members m JOIN nodes n ON n.key = m.node WHERE m.network = ?1 AND m.node = ?2");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, net);
	sqlite3_bind_blob(s, 2, key, KEY_LEN, SQLITE_STATIC);
	if ((rc = db_step_row(st, s)) == 0)
		member_from_row(out, s, 0);
	db_release(st, s);
	return rc;
}

/* Runs an UPDATE/DELETE on one membership; STORE_NOT_FOUND when no row matched. */
static int
exec_member(struct store *st, const char *sql, int64_t net, const uint8_t key[KEY_LEN],
    int has_val, int val)
{
	sqlite3_stmt *s = db_prepare(st, sql);
	int rc;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, net);
	sqlite3_bind_blob(s, 2, key, KEY_LEN, SQLITE_STATIC);
	if (has_val)
		sqlite3_bind_int(s, 3, val);
	if ((rc = db_step_done(st, s)) != 0)
		return rc;
	return sqlite3_changes(DB(st)) > 0 ? 0 : STORE_NOT_FOUND;
}

static int
sq_member_change(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int field, int val)
{
	static const char *const sql[] = {
		[MEMBER_REMOVE] = "DELETE FROM members WHERE network = ?1 AND node = ?2",
		[MEMBER_PENDING] = "UPDATE members SET pending = ?3 WHERE network = ?1 AND node = ?2",
		[MEMBER_ONLINE] = "UPDATE members SET online = ?3 WHERE network = ?1 AND node = ?2",
	};

	return exec_member(st, sql[field], net, key, field != MEMBER_REMOVE, val);
}

static int
sq_members_each(struct store *st, int64_t net, store_member_cb cb, void *arg)
{
	struct store_member m;
	sqlite3_stmt *s;
	int rc;

	s = db_prepare(st, "SELECT n.key, n.address, n.nick, m.pending, m.online "
	    "FROM members m JOIN nodes n ON n.key = m.node WHERE m.network = ?1 ORDER BY m.seq");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, net);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		member_from_row(&m, s, 0);
		if ((rc = cb(arg, &m)) != 0) {
			db_release(st, s);
			return rc;
		}
	}
	db_release(st, s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
sq_node_networks_each(struct store *st, const uint8_t key[KEY_LEN], store_network_cb cb,
    void *arg)
{
	struct store_network n;
	struct store_member me;
	sqlite3_stmt *s;
	int rc;

#define MEMBERSHIPS "SELECT w.id, w.name, w.owner, w.flags, w.pwhash, " \
	    "n.key, n.address, n.nick, m.pending, m.online " \
	    "FROM members m JOIN networks w ON w.id = m.network JOIN nodes n ON n.key = m.node "
	static const char *const sql[] = { MEMBERSHIPS "WHERE m.node = ?1 ORDER BY m.seq",
	    MEMBERSHIPS "ORDER BY m.seq" };
#undef MEMBERSHIPS

	if ((s = db_prepare(st, sql[key == NULL])) == NULL)
		return -1;
	if (key != NULL)
		sqlite3_bind_blob(s, 1, key, KEY_LEN, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		network_from_row(&n, s);
		member_from_row(&me, s, 5);
		if ((rc = cb(arg, &n, &me)) != 0) {
			db_release(st, s);
			return rc;
		}
	}
	db_release(st, s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
sq_nodes_each(struct store *st, store_key_cb cb, void *arg)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = db_prepare(st, "SELECT key FROM nodes")) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(s, 0) != KEY_LEN)
			continue;
		if ((rc = cb(arg, sqlite3_column_blob(s, 0))) != 0) {
			db_release(st, s);
			return rc;
		}
	}
	db_release(st, s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static const struct store_ops sqlite_ops = {
	.close = sq_close,
	.clear = sq_clear,
	.node_get_or_create = sq_node_get_or_create,
	.node_get = sq_node_get,
	.node_set_nick = sq_node_set_nick,
	.node_touch = sq_node_touch,
	.nodes_reclaim = sq_nodes_reclaim,
	.network_create = sq_network_create,
	.network_get = sq_network_get,
	.network_delete = sq_network_delete,
	.network_set_pwhash = sq_network_set_pwhash,
	.network_set_flags = sq_network_set_flags,
	.member_add = sq_member_add,
	.member_get = sq_member_get,
	.member_change = sq_member_change,
	.members_each = sq_members_each,
	.node_networks_each = sq_node_networks_each,
	.nodes_each = sq_nodes_each,
};
