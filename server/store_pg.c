/*
 * store_pg: the PostgreSQL backend of the store (store_backend.h), for several mediator
 * instances sharing one database (`shoal-server --store postgresql://...`). Same schema and
 * semantics as store_sqlite.c; keys and blobs are bytea, ids BIGSERIAL. Every change is one
 * transaction; address allocation holds a transaction-scoped advisory lock so two instances
 * registering nodes at once never hand out the same address.
 * Owns the libpq connection and the schema, and (once the server started it with its loop)
 * the connection of the writes nobody waits for (pgasync.h: last_seen, and the cluster's).
 * Must not touch: policy, sockets.
 */
#include "config.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/pgasync.h"
#include "server/pgq.h"
#include "server/store_backend.h"

struct store_pg {                        /* owned by the server context (or a test) */
	struct store base;
	struct pgq_conn *c;
	struct pgasync *async;          /* NULL: every write is synchronous (tests, tools) */
	char *url;
};

#define PG(st) (((struct store_pg *)(st))->c)
#define ASYNC(st) (((struct store_pg *)(st))->async)
static const struct store_ops pg_ops;

/* Advisory lock ids (any constants, the same in every instance). */
#define LOCK_SCHEMA "7301"
#define LOCK_ADDRESS "7302"

#define NOW_S "extract(epoch from now())::bigint"

static const char schema[] =
	"BEGIN;"
	/* two instances starting together must not race on CREATE TABLE IF NOT EXISTS */
	"SELECT pg_advisory_xact_lock(" LOCK_SCHEMA ");"
	"CREATE TABLE IF NOT EXISTS nodes ("
	"  key BYTEA PRIMARY KEY CHECK (length(key) = 32),"
	"  address BIGINT NOT NULL UNIQUE,"
	"  nick TEXT NOT NULL,"
	"  created BIGINT NOT NULL DEFAULT " NOW_S ","
	"  last_seen BIGINT NOT NULL DEFAULT " NOW_S
	");"
	"CREATE TABLE IF NOT EXISTS networks ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  owner BYTEA NOT NULL REFERENCES nodes(key),"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  pwhash TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE TABLE IF NOT EXISTS members ("
	"  seq BIGSERIAL PRIMARY KEY,"
	"  network BIGINT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,"
	"  node BYTEA NOT NULL REFERENCES nodes(key),"
	"  pending INTEGER NOT NULL DEFAULT 0,"
	"  online INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE (network, node)"
	");"
	"CREATE INDEX IF NOT EXISTS members_by_node ON members(node);"
	"CREATE TABLE IF NOT EXISTS chat_log ("
	"  id BIGSERIAL PRIMARY KEY,"
	"  conv TEXT NOT NULL,"
	"  ts BIGINT NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  network TEXT NOT NULL DEFAULT '',"
	"  sender BYTEA NOT NULL,"
	"  recipient BYTEA,"
	"  nick TEXT NOT NULL,"
	"  client_id BIGINT NOT NULL,"
	"  body BYTEA NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS chat_log_conv ON chat_log(conv, id);"
	"CREATE TABLE IF NOT EXISTS chat_box ("
	"  node BYTEA NOT NULL,"
	"  seq BIGINT NOT NULL,"
	"  log BIGINT NOT NULL REFERENCES chat_log(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (node, seq)"
	");"
	"CREATE INDEX IF NOT EXISTS chat_box_log ON chat_box(log);"
	"CREATE TABLE IF NOT EXISTS chat_next (node BYTEA PRIMARY KEY, seq BIGINT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS chat_sent (sender BYTEA PRIMARY KEY, client_id BIGINT NOT NULL);"
	/*
	 * A new node's registration in one round trip: the address lock is held for the
	 * function's few microseconds inside PostgreSQL, not for the five round trips the client
	 * side took (lock, look again, max, insert, commit), which capped registrations at about
	 * 350 a second across all instances. Same rule as store_sqlite.c: the key's row if it
	 * has one; else max+1 while the range lasts, then the lowest gap; r_address NULL when
	 * the range is full.
	 */
	"CREATE OR REPLACE FUNCTION shoal_node_register(k BYTEA, lo BIGINT, hi BIGINT, n TEXT,"
	"    OUT r_address BIGINT, OUT r_nick TEXT, OUT r_created INTEGER) AS $$"
	" DECLARE a BIGINT;"
	" BEGIN"
	"  PERFORM pg_advisory_xact_lock(" LOCK_ADDRESS ");"
	"  r_created := 0;"
	"  SELECT address, nick INTO r_address, r_nick FROM nodes WHERE key = k;"
	"  IF FOUND THEN RETURN; END IF;"
	"  SELECT max(address) INTO a FROM nodes WHERE address BETWEEN lo AND hi;"
	"  IF a IS NULL THEN a := lo;"
	"  ELSIF a < hi THEN a := a + 1;"
	"  ELSE"
	"   SELECT g INTO a FROM (SELECT lo AS g WHERE NOT EXISTS (SELECT 1 FROM nodes"
	"      WHERE address = lo)"
	"    UNION ALL SELECT x.address + 1 FROM nodes x WHERE x.address BETWEEN lo AND hi - 1"
	"      AND NOT EXISTS (SELECT 1 FROM nodes y WHERE y.address = x.address + 1)) s"
	"    ORDER BY 1 LIMIT 1;"
	"   IF NOT FOUND THEN RETURN; END IF;"
	"  END IF;"
	"  INSERT INTO nodes (key, address, nick) VALUES (k, a, n);"
	"  r_address := a; r_nick := n; r_created := 1;"
	" END $$ LANGUAGE plpgsql;"
	"COMMIT;";

static int
tx(struct store *st, const char *what)
{
	return pgq_run(PG(st), what, NULL, NULL) == 0 ? 0 : -1;
}

/* The rows of a one-row (or zero-row) query, or NULL on error. */
static PGresult *
query(struct store *st, const char *sql, const struct pgq *q)
{
	return pgq_exec(PG(st), sql, q, NULL);
}

struct store *
store_pg_open(const char *url, char *err, size_t errlen)
{
	struct store_pg *sp;
	PGresult *r;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->base.ops = &pg_ops;
	sp->base.chat = &chatstore_pg_ops;
	sp->base.kind = "postgresql";
	if ((sp->url = strdup(url)) == NULL || (sp->c = pgq_connect(url, err, errlen)) == NULL) {
		if (sp->url == NULL)
			snprintf(err, errlen, "out of memory");
		free(sp->url);
		free(sp);
		return NULL;
	}
	r = PQexec(pgq_raw(sp->c), schema);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "cannot initialise the schema: %s",
		    PQerrorMessage(pgq_raw(sp->c)));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return &sp->base;
fail:
	/* libpq's messages quote paths with '"': keep the logged reason one key=value field */
	for (char *p = err; *p; p++)
		if (*p == '"')
			*p = '\'';
	pgq_close(sp->c);
	free(sp->url);
	free(sp);
	return NULL;
}

int
store_pg_async_start(struct store *st, struct ev_loop *loop, char *err, size_t errlen)
{
	struct store_pg *sp = (struct store_pg *)st;

	if (sp->async != NULL)
		return 0;
	return (sp->async = pgasync_new(loop, sp->url, err, errlen)) != NULL ? 0 : -1;
}

struct pgasync *
store_pg_async(struct store *st)
{
	return ASYNC(st);
}

struct pgq_conn *
store_pg_conn(struct store *st)
{
	return PG(st);
}

static void
pg_close(struct store *st)
{
	pgasync_free(ASYNC(st));        /* first: what it still holds is written */
	pgq_close(PG(st));
	free(((struct store_pg *)st)->url);
	free(st);
}

static int
pg_clear(struct store *st)
{
	return tx(st, "TRUNCATE chat_box, chat_log, chat_next, chat_sent, members, networks, "
	    "nodes RESTART IDENTITY CASCADE");
}

/* ---- nodes ---- */

static int
pg_node_get(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out)
{
	struct pgq q;
	PGresult *r;
	int rc;

	pgq_init(&q);
	pgq_bin(&q, key, KEY_LEN);
	/* the mailbox too: a returning node's chat_online then reads it only when it holds some */
	if ((r = query(st, "SELECT address, nick, last_seen, "
	    "NOT EXISTS (SELECT 1 FROM chat_box WHERE node = $1) FROM nodes WHERE key = $1", &q)) ==
	    NULL)
		return -1;
	rc = STORE_NOT_FOUND;
	if (PQntuples(r) == 1) {
		memcpy(out->key, key, KEY_LEN);
		out->address = (uint32_t)pgq_get_int(r, 0, 0);
		pgq_get_text(r, 0, 1, out->nick, sizeof(out->nick));
		out->last_seen = pgq_get_int(r, 0, 2);
		out->mail_empty = PQgetvalue(r, 0, 3)[0] == 't';
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_node_get_or_create(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
    uint8_t prefix_len, struct store_node *out, int *created)
{
	uint32_t mask;
	char nick[NICK_MAX_LEN + 1];
	struct pgq q;
	PGresult *r;
	int rc = 0;

	*created = 0;
	if (prefix_len < 1 || prefix_len > 30)
		return STORE_FULL;
	mask = 0xffffffffu << (32 - prefix_len);
	snprintf(nick, sizeof(nick), "node-%02x%02x%02x", key[0], key[1], key[2]);
	pgq_init(&q);
	pgq_bin(&q, key, KEY_LEN);
	pgq_int(&q, (range & mask) + 1);
	pgq_int(&q, (range & mask) + ~mask - 1);
	pgq_text(&q, nick);
	if ((r = query(st, "SELECT r_address, r_nick, r_created FROM "
	    "shoal_node_register($1, $2::bigint, $3::bigint, $4)", &q)) == NULL)
		return -1;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		rc = STORE_FULL;
	} else {
		memcpy(out->key, key, KEY_LEN);
		out->address = (uint32_t)pgq_get_int(r, 0, 0);
		pgq_get_text(r, 0, 1, out->nick, sizeof(out->nick));
		out->last_seen = 0;     /* new: seen now; found after a race: written again */
		*created = pgq_get_int(r, 0, 2) != 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_node_touch(struct store *st, const uint8_t key[KEY_LEN], int64_t when)
{
	struct pgq q;

	static const char *const sql[] = { "UPDATE nodes SET last_seen = " NOW_S " WHERE key = $1",
	    "UPDATE nodes SET last_seen = $2 WHERE key = $1" };

	pgq_init(&q);
	pgq_bin(&q, key, KEY_LEN);
	if (when)
		pgq_int(&q, when);
	/* on every connect and for every session at each reclaim: nobody waits for it */
	if (ASYNC(st) != NULL)
		return pgasync_run(ASYNC(st), sql[when != 0], &q, NULL, NULL);
	return pgq_run(PG(st), sql[when != 0], &q, NULL);
}

static void
reclaimed_cb(void *arg, const PGresult *r)
{
	(void)arg;
	if (r != NULL && strtoul(PQcmdTuples((PGresult *)r), NULL, 10) > 0)
		log_info("event=nodes_reclaimed count=%s", PQcmdTuples((PGresult *)r));
}

static int
pg_nodes_reclaim(struct store *st, int64_t before, unsigned *removed)
{
	struct pgq q;

	static const char sql[] = "DELETE FROM nodes WHERE last_seen < $1 "
	    "AND NOT EXISTS (SELECT 1 FROM members WHERE members.node = nodes.key) "
	    "AND NOT EXISTS (SELECT 1 FROM networks WHERE networks.owner = nodes.key)";

	*removed = 0;
	pgq_init(&q);
	pgq_int(&q, before);
	/* after the last_seen updates queued just before it (medsrv_reclaim touches every
	 * connected node first): on the synchronous connection it could run ahead of them and
	 * take a connected node for unused. The count is logged when it is known. */
	if (ASYNC(st) != NULL)
		return pgasync_run(ASYNC(st), sql, &q, reclaimed_cb, NULL);
	return pgq_run(PG(st), sql, &q, removed);
}

static int
pg_node_set_nick(struct store *st, const uint8_t key[KEY_LEN], const char *nick)
{
	struct pgq q;

	pgq_init(&q);
	pgq_bin(&q, key, KEY_LEN);
	pgq_text(&q, nick);
	return pgq_run(PG(st), "UPDATE nodes SET nick = $2 WHERE key = $1", &q, NULL);
}

/* ---- networks ---- */

static void
network_from_row(struct store_network *n, const PGresult *r, int row)
{
	n->id = pgq_get_int(r, row, 0);
	pgq_get_text(r, row, 1, n->name, sizeof(n->name));
	pgq_get_bin(r, row, 2, n->owner, KEY_LEN);
	n->flags = (uint8_t)pgq_get_int(r, row, 3);
	pgq_get_text(r, row, 4, n->pwhash, sizeof(n->pwhash));
}

static int pg_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    int pending, int online);

static int
pg_network_create(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
    const char *pwhash, uint8_t flags, struct store_network *out)
{
	struct pgq q;
	PGresult *r;
	int rc, exists;

	if (tx(st, "BEGIN") < 0)
		return -1;
	pgq_init(&q);
	pgq_text(&q, name);
	pgq_bin(&q, owner, KEY_LEN);
	pgq_int(&q, flags);
	pgq_text(&q, pwhash ? pwhash : "");
	r = pgq_exec(PG(st), "INSERT INTO networks (name, owner, flags, pwhash) "
	    "VALUES ($1, $2, $3, $4) RETURNING id", &q, &exists);
	if (r == NULL) {
		rc = exists ? STORE_EXISTS : -1;
		goto rollback;
	}
	out->id = pgq_get_int(r, 0, 0);
	PQclear(r);
	snprintf(out->name, sizeof(out->name), "%s", name);
	memcpy(out->owner, owner, KEY_LEN);
	out->flags = flags;
	snprintf(out->pwhash, sizeof(out->pwhash), "%s", pwhash ? pwhash : "");
	if ((rc = pg_member_add(st, out->id, owner, 0, 1)) != 0)
		goto rollback;
	if (tx(st, "COMMIT") < 0)
		return -1;
	return 0;
rollback:
	tx(st, "ROLLBACK");
	return rc;
}

static int
pg_network_get(struct store *st, const char *name, struct store_network *out)
{
	struct pgq q;
	PGresult *r;
	int rc = STORE_NOT_FOUND;

	pgq_init(&q);
	pgq_text(&q, name);
	if ((r = query(st, "SELECT id, name, owner, flags, pwhash FROM networks WHERE name = $1",
	    &q)) == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		network_from_row(out, r, 0);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_network_delete(struct store *st, int64_t id)
{
	struct pgq q;

	/* Memberships go with it (ON DELETE CASCADE), in the same implicit transaction. */
	pgq_init(&q);
	pgq_int(&q, id);
	return pgq_run(PG(st), "DELETE FROM networks WHERE id = $1", &q, NULL);
}

static int
pg_network_set_pwhash(struct store *st, int64_t id, const char *pwhash)
{
	struct pgq q;

	pgq_init(&q);
	pgq_int(&q, id);
	pgq_text(&q, pwhash ? pwhash : "");
	return pgq_run(PG(st), "UPDATE networks SET pwhash = $2 WHERE id = $1", &q, NULL);
}

static int
pg_network_set_flags(struct store *st, int64_t id, uint8_t flags)
{
	struct pgq q;

	pgq_init(&q);
	pgq_int(&q, id);
	pgq_int(&q, flags);
	return pgq_run(PG(st), "UPDATE networks SET flags = $2 WHERE id = $1", &q, NULL);
}

/* ---- members ---- */

static int
pg_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online)
{
	struct pgq q;

	pgq_init(&q);
	pgq_int(&q, net);
	pgq_bin(&q, key, KEY_LEN);
	pgq_int(&q, pending ? 1 : 0);
	pgq_int(&q, online ? 1 : 0);
	return pgq_run(PG(st), "INSERT INTO members (network, node, pending, online) "
	    "VALUES ($1, $2, $3, $4)", &q, NULL);
}

static void
member_from_row(struct store_member *m, const PGresult *r, int row, int col)
{
	pgq_get_bin(r, row, col, m->key, KEY_LEN);
	m->address = (uint32_t)pgq_get_int(r, row, col + 1);
	pgq_get_text(r, row, col + 2, m->nick, sizeof(m->nick));
	m->pending = (int)pgq_get_int(r, row, col + 3);
	m->online = (int)pgq_get_int(r, row, col + 4);
}

static int
pg_member_get(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    struct store_member *out)
{
	struct pgq q;
	PGresult *r;
	int rc = STORE_NOT_FOUND;

	pgq_init(&q);
	pgq_int(&q, net);
	pgq_bin(&q, key, KEY_LEN);
	if ((r = query(st, "SELECT n.key, n.address, n.nick, m.pending, m.online "
	    "FROM members m JOIN nodes n ON n.key = m.node WHERE m.network = $1 AND m.node = $2",
	    &q)) == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		member_from_row(out, r, 0, 0);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int
pg_member_change(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int field, int val)
{
	static const char *const sql[] = {
		[MEMBER_REMOVE] = "DELETE FROM members WHERE network = $1 AND node = $2",
		[MEMBER_PENDING] = "UPDATE members SET pending = $3 WHERE network = $1 AND node = $2",
		[MEMBER_ONLINE] = "UPDATE members SET online = $3 WHERE network = $1 AND node = $2",
	};
	struct pgq q;
	unsigned changed = 0;
	int rc;

	pgq_init(&q);
	pgq_int(&q, net);
	pgq_bin(&q, key, KEY_LEN);
	if (field != MEMBER_REMOVE)
		pgq_int(&q, val);
	if ((rc = pgq_run(PG(st), sql[field], &q, &changed)) != 0)
		return rc;
	return changed > 0 ? 0 : STORE_NOT_FOUND;
}

/* The whole result is in memory before the first callback, so callbacks may query freely. */
static int
pg_members_each(struct store *st, int64_t net, store_member_cb cb, void *arg)
{
	struct store_member m;
	struct pgq q;
	PGresult *r;
	int i, rc = 0;

	pgq_init(&q);
	pgq_int(&q, net);
	if ((r = query(st, "SELECT n.key, n.address, n.nick, m.pending, m.online "
	    "FROM members m JOIN nodes n ON n.key = m.node WHERE m.network = $1 ORDER BY m.seq",
	    &q)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rc == 0; i++) {
		member_from_row(&m, r, i, 0);
		rc = cb(arg, &m);
	}
	PQclear(r);
	return rc;
}

static int
pg_node_networks_each(struct store *st, const uint8_t key[KEY_LEN], store_network_cb cb,
    void *arg)
{
	struct store_network n;
	struct store_member me;
	struct pgq q;
	PGresult *r;
	int i, rc = 0;

#define MEMBERSHIPS "SELECT w.id, w.name, w.owner, w.flags, w.pwhash, " \
	    "n.key, n.address, n.nick, m.pending, m.online " \
	    "FROM members m JOIN networks w ON w.id = m.network JOIN nodes n ON n.key = m.node "
	static const char *const sql[] = { MEMBERSHIPS "WHERE m.node = $1 ORDER BY m.seq",
	    MEMBERSHIPS "ORDER BY m.seq" };
#undef MEMBERSHIPS

	pgq_init(&q);
	if (key != NULL)
		pgq_bin(&q, key, KEY_LEN);
	if ((r = query(st, sql[key == NULL], &q)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rc == 0; i++) {
		network_from_row(&n, r, i);
		member_from_row(&me, r, i, 5);
		rc = cb(arg, &n, &me);
	}
	PQclear(r);
	return rc;
}

static int
pg_nodes_each(struct store *st, store_key_cb cb, void *arg)
{
	uint8_t key[KEY_LEN];
	struct pgq q;
	PGresult *r;
	int i, rc = 0;

	pgq_init(&q);
	if ((r = query(st, "SELECT key FROM nodes", &q)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rc == 0; i++)
		if (pgq_get_bin(r, i, 0, key, KEY_LEN) == KEY_LEN)
			rc = cb(arg, key);
	PQclear(r);
	return rc;
}

static const struct store_ops pg_ops = {
	.close = pg_close,
	.clear = pg_clear,
	.node_get_or_create = pg_node_get_or_create,
	.node_get = pg_node_get,
	.node_set_nick = pg_node_set_nick,
	.node_touch = pg_node_touch,
	.nodes_reclaim = pg_nodes_reclaim,
	.network_create = pg_network_create,
	.network_get = pg_network_get,
	.network_delete = pg_network_delete,
	.network_set_pwhash = pg_network_set_pwhash,
	.network_set_flags = pg_network_set_flags,
	.member_add = pg_member_add,
	.member_get = pg_member_get,
	.member_change = pg_member_change,
	.members_each = pg_members_each,
	.node_networks_each = pg_node_networks_each,
	.nodes_each = pg_nodes_each,
};
