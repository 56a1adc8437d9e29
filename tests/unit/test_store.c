/*
 * test_store: the store against a real database: SQLite in a temporary directory, or the
 * PostgreSQL database named by SHOAL_TEST_STORE (tests/integ/test_store_pg.py starts one):
 * address allocation, networks and memberships, and that everything survives a reopen.
 */
#include "config.h"

#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/chatstore.h"
#include "server/store.h"
#include "tests/unit/unit.h"

#define RANGE 0x05000000u /* 5.0.0.0 */

static char dir[64];
static const char *pg_url;              /* SHOAL_TEST_STORE: every "file" is this database */
static char pg_current[32];             /* the "file" the database holds now */

/* The store named file: a file in dir, or the PostgreSQL database emptied whenever another
 * "file" is asked for (the SQLite tests use one file per scenario). */
static struct store *
open_named(const char *file)
{
	char path[160], err[256];
	struct store *st;

	if (pg_url == NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		st = store_open(path, err, sizeof(err));
	} else {
		st = store_open(pg_url, err, sizeof(err));
		if (st && strcmp(pg_current, file) != 0 && store_clear(st) != 0) {
			store_close(st);
			st = NULL;
			snprintf(err, sizeof(err), "store_clear failed");
		}
		snprintf(pg_current, sizeof(pg_current), "%s", file);
	}
	if (st == NULL)
		fprintf(stderr, "store_open %s: %s\n", file, err);
	return st;
}

static void
mkkey(uint8_t key[KEY_LEN], uint8_t seed)
{
	memset(key, seed, KEY_LEN);
}

static struct store *
reopen_path(struct store *st, const char *file)
{
	store_close(st);
	return open_named(file);
}

static struct store *
reopen(struct store *st)
{
	return reopen_path(st, "mediator.db");
}

static int
count_cb(void *arg, const struct store_member *m)
{
	(void)m;
	(*(int *)arg)++;
	return 0;
}

static int
count_net_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	(void)n;
	(void)me;
	(*(int *)arg)++;
	return 0;
}

struct online_in {                       /* online_cb: the node's online switch in net */
	int64_t net;
	int count, online;
};

static int
online_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct online_in *o = arg;

	o->count++;
	if (n->id == o->net)
		o->online = me->online;
	return 0;
}

/* The same query again from inside its own iteration (the mediator's punch walk reaches
 * pair_can_talk inside store_node_networks_each): a cached statement must not be reused
 * while it is stepping. */
struct nested {
	struct store *st;
	const uint8_t *key;
	int outer, inner;
};

static int
nested_net_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct nested *w = arg;

	(void)n;
	(void)me;
	w->outer++;
	return store_node_networks_each(w->st, w->key, count_net_cb, &w->inner);
}

static void
test_addresses(void)
{
	static const struct {
		uint8_t seed;
		uint32_t want;
	} tab[] = {
		{ 1, RANGE + 1 }, { 2, RANGE + 2 }, { 3, RANGE + 3 }, { 1, RANGE + 1 }, { 2, RANGE + 2 },
	};
	struct store_node n;
	struct store *st;
	uint8_t key[KEY_LEN];
	size_t i;
	int created;

	st = open_named("mediator.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		mkkey(key, tab[i].seed);
		CHECK_EQ(store_node_get_or_create(st, key, RANGE, 8, &n, &created), 0);
		CHECK_EQ(n.address, tab[i].want);
		CHECK_EQ(created, i < 3);
	}
	mkkey(key, 1);
	CHECK_EQ(store_node_get(st, key, &n), 0);
	CHECK(strcmp(n.nick, "node-010101") == 0);
	CHECK_EQ(store_node_set_nick(st, key, "alice"), 0);
	mkkey(key, 9);
	CHECK_EQ(store_node_get(st, key, &n), STORE_NOT_FOUND);

	st = reopen(st);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(key, 1);
	CHECK_EQ(store_node_get(st, key, &n), 0);
	CHECK_EQ(n.address, RANGE + 1);
	CHECK(strcmp(n.nick, "alice") == 0);
	mkkey(key, 4);
	CHECK_EQ(store_node_get_or_create(st, key, RANGE, 8, &n, &created), 0);
	CHECK_EQ(n.address, RANGE + 4);
	store_close(st);
}

/* A /30 has exactly two usable addresses (network and broadcast skipped). */
static void
test_small_range(void)
{
	struct store_node n;
	struct store *st;
	uint8_t key[KEY_LEN];
	int created;

	st = open_named("small.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(key, 1);
	CHECK_EQ(store_node_get_or_create(st, key, 0x0a000004u, 30, &n, &created), 0);
	CHECK_EQ(n.address, 0x0a000005u);
	mkkey(key, 2);
	CHECK_EQ(store_node_get_or_create(st, key, 0x0a000004u, 30, &n, &created), 0);
	CHECK_EQ(n.address, 0x0a000006u);
	mkkey(key, 3);
	CHECK_EQ(store_node_get_or_create(st, key, 0x0a000004u, 30, &n, &created), STORE_FULL);
	store_close(st);
}

/* Registrations nobody uses are reclaimed; their addresses go to new nodes only once the
 * range's top is reached (addresses stay stable while the range lasts). */
static void
test_reclaim(void)
{
	char path[160], err[256];
	struct store_network net;
	struct store_node n;
	struct store *st;
	uint8_t a[KEY_LEN], b[KEY_LEN], c[KEY_LEN], d[KEY_LEN];
	unsigned removed;
	int created;

	st = open_named("reclaim.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(a, 1);
	mkkey(b, 2);
	mkkey(c, 3);
	mkkey(d, 4);
	/* /29: .1 .. .6 usable. a, b, c take .1 .2 .3; b owns a network, c is a member. */
	CHECK_EQ(store_node_get_or_create(st, a, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, b, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, c, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(store_network_create(st, "lan", b, "", 0, &net), 0);
	CHECK_EQ(store_member_add(st, net.id, c, 0, 1), 0);
	CHECK_EQ(store_node_touch(st, a, 1000), 0);
	CHECK_EQ(store_node_touch(st, b, 1000), 0);
	CHECK_EQ(store_node_touch(st, c, 1000), 0);
	/* Not old enough: nothing. Old enough: only a (b owns, c is in a network). */
	CHECK_EQ(store_nodes_reclaim(st, 999, &removed), 0);
	CHECK_EQ(removed, 0);
	CHECK_EQ(store_nodes_reclaim(st, 2000, &removed), 0);
	CHECK_EQ(removed, 1);
	CHECK_EQ(store_node_get(st, a, &n), STORE_NOT_FOUND);
	CHECK_EQ(store_node_get(st, b, &n), 0);
	/* d gets .4 (the top is not reached), not a's old .1. */
	CHECK_EQ(store_node_get_or_create(st, d, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(n.address, 0x0a000004u);
	/* Fill to the top (.5 .6), then the gap .1 is used. */
	mkkey(d, 5);
	CHECK_EQ(store_node_get_or_create(st, d, 0x0a000000u, 29, &n, &created), 0);
	mkkey(d, 6);
	CHECK_EQ(store_node_get_or_create(st, d, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(n.address, 0x0a000006u);
	mkkey(d, 7);
	CHECK_EQ(store_node_get_or_create(st, d, 0x0a000000u, 29, &n, &created), 0);
	CHECK_EQ(n.address, 0x0a000001u);
	mkkey(d, 8);
	CHECK_EQ(store_node_get_or_create(st, d, 0x0a000000u, 29, &n, &created), STORE_FULL);
	st = reopen_path(st, "reclaim.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(d, 7);
	CHECK_EQ(store_node_get(st, d, &n), 0);
	CHECK_EQ(n.address, 0x0a000001u);
	store_close(st);

	/* A store from before last_seen (SQLite only: PostgreSQL stores started with it): opened,
	 * migrated, its nodes count as seen now. */
	if (pg_url == NULL) {
		sqlite3 *db;

		snprintf(path, sizeof(path), "%s/old.db", dir);
		CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
		CHECK_EQ(sqlite3_exec(db, "CREATE TABLE nodes (key BLOB PRIMARY KEY, address "
		    "INTEGER NOT NULL UNIQUE, nick TEXT NOT NULL, created INTEGER NOT NULL "
		    "DEFAULT 0); INSERT INTO nodes (key, address, nick) VALUES "
		    "(x'0101010101010101010101010101010101010101010101010101010101010101', 1, 'x')",
		    NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		st = store_open(path, err, sizeof(err));
		CHECK(st != NULL);
		if (st == NULL)
			return;
		CHECK_EQ(store_nodes_reclaim(st, 1000000, &removed), 0);
		CHECK_EQ(removed, 0);
		CHECK_EQ(store_node_get(st, a, &n), 0);
		store_close(st);
	}
}

static void
test_networks_persist(void)
{
	struct store_network net, got;
	struct store_member mem;
	struct store_node n;
	struct store *st;
	uint8_t a[KEY_LEN], b[KEY_LEN], c[KEY_LEN];
	int created, count;

	st = open_named("mediator.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(a, 1);
	mkkey(b, 2);
	mkkey(c, 3);
	CHECK_EQ(store_node_get_or_create(st, c, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_network_create(st, "lan", a, "$argon2id$fake", NETF_MANUAL_APPROVAL, &net),
	    0);
	CHECK_EQ(store_network_create(st, "lan", b, "", 0, &got), STORE_EXISTS);
	CHECK_EQ(store_network_create(st, "other", b, "", 0, &got), 0);
	CHECK_EQ(store_member_add(st, net.id, b, 1, 1), 0);
	CHECK_EQ(store_member_add(st, net.id, b, 0, 1), STORE_EXISTS);
	CHECK_EQ(store_member_add(st, net.id, c, 0, 1), 0);
	CHECK_EQ(store_member_set_pending(st, net.id, b, 0), 0);
	CHECK_EQ(store_member_set_online(st, net.id, b, 0), 0);
	/* evict c */
	CHECK_EQ(store_member_remove(st, net.id, c), 0);
	CHECK_EQ(store_member_remove(st, net.id, c), STORE_NOT_FOUND);
	CHECK_EQ(store_network_set_flags(st, net.id, NETF_LOCKED), 0);

	st = reopen(st);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_EQ(store_network_get(st, "lan", &got), 0);
	CHECK_EQ(got.id, net.id);
	CHECK_EQ(got.flags, NETF_LOCKED);
	CHECK_MEM(got.owner, a, KEY_LEN);
	CHECK(strcmp(got.pwhash, "$argon2id$fake") == 0);
	CHECK_EQ(store_member_get(st, net.id, a, &mem), 0);
	CHECK_EQ(mem.pending, 0);
	CHECK_EQ(mem.online, 1);
	CHECK_EQ(mem.address, RANGE + 1);
	CHECK_EQ(store_member_get(st, net.id, b, &mem), 0);
	CHECK_EQ(mem.pending, 0);
	CHECK_EQ(mem.online, 0);
	CHECK_EQ(mem.address, RANGE + 2);
	CHECK_EQ(store_member_get(st, net.id, c, &mem), STORE_NOT_FOUND);
	count = 0;
	CHECK_EQ(store_members_each(st, net.id, count_cb, &count), 0);
	CHECK_EQ(count, 2);
	count = 0;
	CHECK_EQ(store_node_networks_each(st, b, count_net_cb, &count), 0);
	CHECK_EQ(count, 2);
	{
		struct nested w = { st, b, 0, 0 };

		CHECK_EQ(store_node_networks_each(st, b, nested_net_cb, &w), 0);
		CHECK_EQ(w.outer, 2);
		CHECK_EQ(w.inner, 4);
		/* and once more: the statements went back to the cache in a usable state */
		w.outer = w.inner = 0;
		CHECK_EQ(store_node_networks_each(st, b, nested_net_cb, &w), 0);
		CHECK_EQ(w.outer, 2);
		CHECK_EQ(w.inner, 4);
	}

	/* delete cascades to memberships */
	CHECK_EQ(store_network_delete(st, net.id), 0);
	st = reopen(st);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_EQ(store_network_get(st, "lan", &got), STORE_NOT_FOUND);
	count = 0;
	CHECK_EQ(store_node_networks_each(st, b, count_net_cb, &count), 0);
	CHECK_EQ(count, 1);
	count = 0;
	CHECK_EQ(store_members_each(st, net.id, count_cb, &count), 0);
	CHECK_EQ(count, 0);
	store_close(st);
}

/* The copies of member lists (server/membercache.h): this handle's own writes show at once;
 * another handle's (another mediator instance) show once told, as the cluster tells them. */
struct seen {
	int n;
	uint8_t keys[8][KEY_LEN];
	char nick[8][NICK_MAX_LEN + 1];
	int pending[8], online[8];
	struct store *st;               /* set: the walk removes key[0] from net on its way */
	int64_t net;
	const uint8_t *drop;
};

static int
seen_cb(void *arg, const struct store_member *m)
{
	struct seen *w = arg;

	if (w->n < 8) {
		memcpy(w->keys[w->n], m->key, KEY_LEN);
		snprintf(w->nick[w->n], sizeof(w->nick[0]), "%s", m->nick);
		w->pending[w->n] = m->pending;
		w->online[w->n] = m->online;
	}
	w->n++;
	if (w->st != NULL && w->n == 1)
		CHECK_EQ(store_member_remove(w->st, w->net, w->drop), 0);
	return 0;
}

static struct seen
walk(struct store *st, int64_t net)
{
	struct seen w;

	memset(&w, 0, sizeof(w));
	CHECK_EQ(store_members_each(st, net, seen_cb, &w), 0);
	return w;
}

static void
test_member_copies(void)
{
	struct store *st, *other;
	struct store_network net;
	struct store_node n;
	struct store_member m;
	struct seen w;
	uint8_t a[KEY_LEN], b[KEY_LEN], c[KEY_LEN];
	int created;

	st = open_named("copies.db");
	other = open_named("copies.db");
	CHECK(st != NULL && other != NULL);
	if (st == NULL || other == NULL)
		goto out;
	mkkey(a, 0x31);
	mkkey(b, 0x32);
	mkkey(c, 0x33);
	CHECK_EQ(store_node_get_or_create(st, a, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, b, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, c, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_network_create(st, "copies", a, "", 0, &net), 0);
	CHECK_EQ(walk(st, net.id).n, 1);                /* the owner; now a copy exists */

	/* own writes: at once, in join order */
	CHECK_EQ(store_member_add(st, net.id, b, 1, 1), 0);
	w = walk(st, net.id);
	CHECK_EQ(w.n, 2);
	CHECK_MEM(w.keys[1], b, KEY_LEN);
	CHECK_EQ(w.pending[1], 1);
	CHECK_EQ(store_member_set_pending(st, net.id, b, 0), 0);
	CHECK_EQ(store_member_set_online(st, net.id, b, 0), 0);
	CHECK_EQ(store_member_get(st, net.id, b, &m), 0);
	CHECK_EQ(m.pending, 0);
	CHECK_EQ(m.online, 0);
	CHECK_EQ(store_node_set_nick(st, b, "bee"), 0);
	w = walk(st, net.id);
	CHECK(strcmp(w.nick[1], "bee") == 0);
	CHECK_EQ(w.online[1], 0);
	CHECK_EQ(store_member_remove(st, net.id, b), 0);
	CHECK_EQ(walk(st, net.id).n, 1);
	CHECK_EQ(store_member_get(st, net.id, b, &m), STORE_NOT_FOUND);

	/* another instance's writes: seen once told (the cluster's events) */
	CHECK_EQ(store_member_add(other, net.id, c, 0, 1), 0);
	CHECK_EQ(walk(st, net.id).n, 1);                /* the copy lags: nobody told */
	store_member_changed(st, net.id, c);
	w = walk(st, net.id);
	CHECK_EQ(w.n, 2);
	CHECK_MEM(w.keys[1], c, KEY_LEN);
	CHECK_EQ(store_node_set_nick(other, c, "sea"), 0);
	store_node_changed(st, c);
	CHECK_EQ(store_member_get(st, net.id, c, &m), 0);
	CHECK(strcmp(m.nick, "sea") == 0);
	CHECK_EQ(store_member_set_online(other, net.id, c, 0), 0);
	store_member_changed(st, net.id, c);
	CHECK_EQ(store_member_get(st, net.id, c, &m), 0);
	CHECK_EQ(m.online, 0);
	/* an online switch told with its value goes into the copies without a read: a pending
	 * change made behind st's back stays unseen (a read would see it) */
	{
		struct online_in o = { net.id, 0, -1 };

		CHECK_EQ(store_node_networks_each(st, c, online_cb, &o), 0);
		CHECK_EQ(o.online, 0);
		CHECK_EQ(store_member_set_online(other, net.id, c, 1), 0);
		CHECK_EQ(store_member_set_pending(other, net.id, c, 1), 0);     /* not told */
		store_member_switched(st, net.id, c, 1);
		CHECK_EQ(store_member_get(st, net.id, c, &m), 0);
		CHECK_EQ(m.online, 1);
		CHECK_EQ(m.pending, 0);
		CHECK_EQ(store_node_networks_each(st, c, online_cb, &o), 0);
		CHECK_EQ(o.online, 1);
		CHECK_EQ(store_member_set_pending(other, net.id, c, 0), 0);
		CHECK_EQ(store_member_set_online(other, net.id, c, 0), 0);
		store_member_switched(st, net.id, c, 0);
		CHECK_EQ(store_member_get(st, net.id, c, &m), 0);
		CHECK_EQ(m.online, 0);
	}
	CHECK_EQ(store_member_remove(other, net.id, c), 0);
	store_member_changed(st, net.id, c);
	CHECK_EQ(walk(st, net.id).n, 1);
	CHECK_EQ(store_member_add(other, net.id, c, 0, 1), 0);
	store_changes_missed(st);
	CHECK_EQ(walk(st, net.id).n, 2);

	/* a node's networks (server/nodecache.h): the same rules */
	{
		struct store_network other_net;
		int count = 0;

		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 1);                     /* now a copy of c's networks exists */
		CHECK_EQ(store_network_create(other, "copies2", b, "", 0, &other_net), 0);
		CHECK_EQ(store_member_add(other, other_net.id, c, 0, 1), 0);
		count = 0;
		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 1);                     /* lags: nobody told */
		store_member_changed(st, other_net.id, c);
		count = 0;
		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 2);
		CHECK_EQ(store_network_delete(other, other_net.id), 0);
		store_networks_changed(st);
		count = 0;
		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 1);
		/* own writes: at once */
		CHECK_EQ(store_member_remove(st, net.id, c), 0);
		count = 0;
		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 0);
		CHECK_EQ(store_member_add(st, net.id, c, 0, 1), 0);
		count = 0;
		CHECK_EQ(store_node_networks_each(st, c, count_net_cb, &count), 0);
		CHECK_EQ(count, 1);
	}

	/* a walk whose callback changes the list it walks: it ends on the rows it had */
	memset(&w, 0, sizeof(w));
	w.st = st;
	w.net = net.id;
	w.drop = c;
	CHECK_EQ(store_members_each(st, net.id, seen_cb, &w), 0);
	CHECK_EQ(w.n, 2);
	w = walk(st, net.id);
	CHECK_EQ(w.n, 1);
	CHECK_MEM(w.keys[0], a, KEY_LEN);

	/* deleted: the copy goes with it */
	CHECK_EQ(store_network_delete(st, net.id), 0);
	CHECK_EQ(walk(st, net.id).n, 0);
out:
	store_close(other);
	store_close(st);
}

/* Two processes (two mediator instances) register nodes into one database at once: every
 * registration succeeds and no address is handed out twice. */
enum { ALLOC_PER_PROC = 100 };

static void
test_concurrent_alloc(void)
{
	struct store_node n;
	struct store *st;
	uint8_t key[KEY_LEN];
	pid_t pid[2];
	int p, i, status, created, failed = 0;
	static uint8_t seen[ALLOC_PER_PROC * 2 + 2];

	st = open_named("alloc.db");
	CHECK(st != NULL);
	store_close(st);
	for (p = 0; p < 2; p++) {
		if ((pid[p] = fork()) == 0) {
			if ((st = open_named("alloc.db")) == NULL)
				_exit(100);
			for (i = 0; i < ALLOC_PER_PROC; i++) {
				memset(key, 0, KEY_LEN);
				key[0] = (uint8_t)(0xa0 + p);
				key[1] = (uint8_t)i;
				if (store_node_get_or_create(st, key, RANGE, 8, &n, &created) != 0)
					failed++;
			}
			store_close(st);
			_exit(failed);
		}
		CHECK(pid[p] > 0);
	}
	for (p = 0; p < 2; p++) {
		CHECK(waitpid(pid[p], &status, 0) == pid[p]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	st = open_named("alloc.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	for (p = 0; p < 2; p++)
		for (i = 0; i < ALLOC_PER_PROC; i++) {
			memset(key, 0, KEY_LEN);
			key[0] = (uint8_t)(0xa0 + p);
			key[1] = (uint8_t)i;
			CHECK_EQ(store_node_get(st, key, &n), 0);
			CHECK(n.address > RANGE && n.address <= RANGE + ALLOC_PER_PROC * 2);
			if (n.address > RANGE && n.address <= RANGE + ALLOC_PER_PROC * 2) {
				CHECK_EQ(seen[n.address - RANGE], 0);
				seen[n.address - RANGE] = 1;
			}
		}
	store_close(st);
}

/* store_warm: one read fills both copies, which then serve walks without reading (a change
 * nobody told this handle of stays unseen, as with copies read on demand). */
static void
test_warm(void)
{
	struct store *st, *fresh;
	struct store_network n1, n2;
	struct store_node n;
	struct seen w;
	uint8_t a[KEY_LEN], b[KEY_LEN], c[KEY_LEN], d[KEY_LEN];
	int created, count;

	st = open_named("warm.db");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	mkkey(a, 0x41);
	mkkey(b, 0x42);
	mkkey(c, 0x43);
	CHECK_EQ(store_node_get_or_create(st, a, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, b, RANGE, 8, &n, &created), 0);
	CHECK_EQ(store_node_get_or_create(st, c, RANGE, 8, &n, &created), 0);
	mkkey(d, 0x44);
	CHECK_EQ(store_node_get_or_create(st, d, RANGE, 8, &n, &created), 0);   /* in none */
	CHECK_EQ(store_network_create(st, "warm1", a, "", 0, &n1), 0);
	CHECK_EQ(store_member_add(st, n1.id, b, 0, 1), 0);
	CHECK_EQ(store_network_create(st, "warm2", b, "", 0, &n2), 0);
	CHECK_EQ(store_member_add(st, n2.id, c, 1, 0), 0);

	fresh = open_named("warm.db");
	CHECK(fresh != NULL);
	if (fresh == NULL)
		goto out;
	CHECK_EQ(store_warm(fresh), 0);
	CHECK_EQ(store_member_add(st, n1.id, c, 0, 1), 0);      /* not told to fresh */
	CHECK_EQ(store_member_add(st, n2.id, d, 0, 1), 0);      /* nor this */
	count = 0;
	CHECK_EQ(store_node_networks_each(fresh, d, count_net_cb, &count), 0);
	CHECK_EQ(count, 0);                     /* warmed too: its copy is empty */
	store_member_changed(fresh, n2.id, d);
	CHECK_EQ(store_node_networks_each(fresh, d, count_net_cb, &count), 0);
	CHECK_EQ(count, 1);
	w = walk(fresh, n1.id);
	CHECK_EQ(w.n, 2);                                       /* the warmed copy */
	CHECK_MEM(w.keys[0], a, KEY_LEN);
	CHECK_MEM(w.keys[1], b, KEY_LEN);
	w = walk(fresh, n2.id);
	CHECK_EQ(w.n, 3);                       /* d's change was told: read again */
	CHECK_MEM(w.keys[1], c, KEY_LEN);
	CHECK_EQ(w.pending[1], 1);
	CHECK_EQ(w.online[1], 0);
	count = 0;
	CHECK_EQ(store_node_networks_each(fresh, c, count_net_cb, &count), 0);
	CHECK_EQ(count, 1);                                     /* warm2 only: warmed */
	count = 0;
	CHECK_EQ(store_node_networks_each(fresh, b, count_net_cb, &count), 0);
	CHECK_EQ(count, 2);
	store_member_changed(fresh, n1.id, c);                  /* told: seen */
	CHECK_EQ(walk(fresh, n1.id).n, 3);
	count = 0;
	CHECK_EQ(store_node_networks_each(fresh, c, count_net_cb, &count), 0);
	CHECK_EQ(count, 2);
	/* A presence change told goes into the copy of c's networks, which stays: a network
	 * c joined behind fresh's back is not read with it. */
	{
		struct store_network n3;
		struct online_in o = { n1.id, 0, -1 };

		CHECK_EQ(store_network_create(st, "warm3", d, "", 0, &n3), 0);
		CHECK_EQ(store_member_add(st, n3.id, c, 0, 1), 0);      /* not told to fresh */
		CHECK_EQ(store_member_set_online(st, n1.id, c, 0), 0);
		store_member_changed(fresh, n1.id, c);
		CHECK_EQ(store_node_networks_each(fresh, c, online_cb, &o), 0);
		CHECK_EQ(o.count, 2);
		CHECK_EQ(o.online, 0);
		store_member_changed(fresh, n3.id, c);                  /* a join: read again */
		o.count = 0;
		CHECK_EQ(store_node_networks_each(fresh, c, online_cb, &o), 0);
		CHECK_EQ(o.count, 3);
	}
	/* a node registered through a handle is in no network, for it, without a read */
	mkkey(a, 0x45);
	CHECK_EQ(store_node_get_or_create(fresh, a, RANGE, 8, &n, &created), 0);
	CHECK_EQ(created, 1);
	CHECK_EQ(store_member_add(st, n1.id, a, 0, 1), 0);      /* not told to fresh */
	count = 0;
	CHECK_EQ(store_node_networks_each(fresh, a, count_net_cb, &count), 0);
	CHECK_EQ(count, 0);
	store_member_changed(fresh, n1.id, a);
	CHECK_EQ(store_node_networks_each(fresh, a, count_net_cb, &count), 0);
	CHECK_EQ(count, 1);
	store_close(fresh);
out:
	store_close(st);
}

/* A connect writes last_seen only when the row says it is more than an hour old. */
static void
test_seen(void)
{
	struct chat_row r;
	struct store_node n;
	struct store *st;
	uint8_t a[KEY_LEN];
	int64_t now = (int64_t)time(NULL);
	int created;

	if ((st = open_named("seen.db")) == NULL) {
		CHECK(st != NULL);
		return;
	}
	mkkey(a, 1);
	CHECK_EQ(store_node_get_or_create(st, a, 0x0a000000u, 24, &n, &created), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK(n.last_seen >= now - 5 && n.last_seen <= now + 5);      /* a new row: now */
	/* seen 100 s ago: not written again */
	CHECK_EQ(store_node_touch(st, a, now - 100), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK_EQ(n.last_seen, now - 100);
	CHECK_EQ(store_node_seen(st, &n), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK_EQ(n.last_seen, now - 100);
	/* two hours ago: written */
	CHECK_EQ(store_node_touch(st, a, now - 7200), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK_EQ(store_node_seen(st, &n), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK(n.last_seen >= now - 5);
	/* a row whose last_seen was not read: written */
	CHECK_EQ(store_node_touch(st, a, now - 100), 0);
	n.last_seen = 0;
	CHECK_EQ(store_node_seen(st, &n), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK(n.last_seen >= now - 5);
	/* the row's read tells whether the chat mailbox holds anything (chat_online's skip) */
	CHECK_EQ(n.mail_empty, 1);
	memset(&r, 0, sizeof(r));
	r.kind = CHAT_PRIVATE;
	r.ts_ms = now * 1000;
	memcpy(r.recipient, a, KEY_LEN);
	r.body_len = 2;
	memcpy(r.body, "hi", 2);
	CHECK_EQ(chatstore_add(st, "p:seen", &r, (const uint8_t (*)[KEY_LEN])a, 1, 10, 10), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK_EQ(n.mail_empty, 0);
	CHECK_EQ(chatstore_ack(st, a, UINT64_MAX >> 1), 0);
	CHECK_EQ(store_node_get(st, a, &n), 0);
	CHECK_EQ(n.mail_empty, 1);
	store_close(st);
}

int
main(void)
{
	char cmd[128];
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((pg_url = getenv("SHOAL_TEST_STORE")) != NULL && *pg_url == '\0')
		pg_url = NULL;
	printf("# backend: %s\n", pg_url ? "postgresql (SHOAL_TEST_STORE)" : "sqlite");
	/* test_networks_persist continues test_addresses' database: run them in a row */
	RUN(test_addresses);
	RUN(test_networks_persist);
	RUN(test_small_range);
	RUN(test_reclaim);
	RUN(test_concurrent_alloc);
	RUN(test_member_copies);
	RUN(test_warm);
	RUN(test_seen);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
