/*
 * store: the front of the store (store.h): picks the backend from the path and forwards each
 * call to it (store_backend.h), keeping copies of member lists and of each node's networks
 * on the way (membercache.h, nodecache.h): every write goes through here, so the copies follow
 * them; another instance's writes arrive as store_member_changed and friends. Must not touch:
 * any database API.
 */
#include "config.h"
#include "server/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "base/log.h"
#include "server/membercache.h"
#include "server/netcache.h"
#include "server/nodecache.h"
#include "server/store_backend.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* key's row in net's copy of the list into *out: 0; STORE_NOT_FOUND when the copy has no such
 * row; -1 when net's list has no copy. */
static int
copy_row(struct store *st, int64_t net, const uint8_t key[KEY_LEN], struct store_member *out)
{
	const struct mc_list *l = membercache_get(st->mc, net, now_s());
	const struct store_member *r;

	if (l == NULL)
		return -1;
	if ((r = membercache_find(l, key)) != NULL)
		*out = *r;
	membercache_unpin(st->mc, l);
	return r != NULL ? 0 : STORE_NOT_FOUND;
}

/* r is now its node's row in net: into net's list and, when that copy already has net, into
 * the copy of the node's networks (a presence change); otherwise the latter goes. Dropping it
 * on every change cost ~1.3 reads of a node's networks per presence change over the instances
 * (session 13, 100,000 nodes). */
static void
copies_set(struct store *st, int64_t net, const struct store_member *r)
{
	membercache_set(st->mc, net, r);
	if (nodecache_set_member(st->nc, r->key, net, r) != 0)
		nodecache_drop(st->nc, r->key);
}

/* key's row in net read again into the copies (one query; none when net has no copy, and
 * key's networks' copy goes then). */
static void
member_refresh(struct store *st, int64_t net, const uint8_t key[KEY_LEN])
{
	const struct mc_list *l;
	struct store_member r;
	int rc;

	if ((l = membercache_get(st->mc, net, now_s())) == NULL) {
		nodecache_drop(st->nc, key);
		return;
	}
	membercache_unpin(st->mc, l);
	if ((rc = st->ops->member_get(st, net, key, &r)) == 0) {
		copies_set(st, net, &r);
		return;
	}
	if (rc == STORE_NOT_FOUND)
		membercache_remove(st->mc, net, key);
	else
		membercache_drop(st->mc, net);
	nodecache_drop(st->nc, key);
}

/* key's online switch in net is now online: into the copies that hold its row, without a
 * read; 0, or -1 when net's list has no copy holding key (nothing changed then). */
static int
member_switch(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int online)
{
	struct store_member r;

	if (copy_row(st, net, key, &r) != 0)
		return -1;
	r.online = online;
	copies_set(st, net, &r);
	return 0;
}

int
store_is_pg_url(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

/* key's nick into the copies of its networks' lists (a node new here has none: one query
 * finds that); nick NULL: unknown, those copies go. */
struct nick_walk {
	struct membercache *mc;
	const uint8_t *key;
	const char *nick;
};

static int
nick_net_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct nick_walk *w = arg;

	(void)me;
	if (w->nick != NULL)
		membercache_set_nick(w->mc, n->id, w->key, w->nick);
	else
		membercache_drop(w->mc, n->id);
	return 0;
}

static void
nick_spread(struct store *st, const uint8_t key[KEY_LEN], const char *nick)
{
	struct nick_walk w = { st->mc, key, nick };

	nodecache_drop(st->nc, key);            /* its own rows carry the nick */
	if (membercache_rows(st->mc) == 0)
		return;                         /* no copies: no query */
	if (st->ops->node_networks_each(st, key, nick_net_cb, &w) != 0)
		membercache_clear(st->mc);      /* rare: the database failed */
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *st = store_is_pg_url(path) ? store_pg_open(path, err, errlen) :
	    store_sqlite_open(path, err, errlen);

	if (st != NULL && ((st->mc = membercache_new(MEMBERCACHE_MAX_ROWS)) == NULL ||
	    (st->nc = nodecache_new(NODECACHE_MAX_PAIRS)) == NULL ||
	    (st->netc = netcache_new(NETCACHE_MAX)) == NULL)) {
		membercache_free(st->mc);
		nodecache_free(st->nc);
		st->ops->close(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return st;
}

const char *
store_kind(const struct store *st)
{
	return st->kind;
}

void
store_close(struct store *st)
{
	if (st != NULL) {
		membercache_free(st->mc);
		nodecache_free(st->nc);
		netcache_free(st->netc);
		st->ops->close(st);
	}
}

/* A network's settings changed or it went: the copies that hold network rows go (which nodes
 * were in it is not kept; rare). */
static void
network_rows_changed(struct store *st)
{
	nodecache_clear(st->nc);
	netcache_clear(st->netc);
}

int
store_clear(struct store *st)
{
	store_changes_missed(st);
	return st->ops->clear(st);
}

int
store_node_get_or_create(struct store *st, const uint8_t key[KEY_LEN], uint32_t range,
    uint8_t prefix_len, struct store_node *out, int *created)
{
	int rc = st->ops->node_get_or_create(st, key, range, prefix_len, out, created);

	/* a node registered just now is in no network: its copy says so without a read */
	if (rc == 0 && *created)
		nodecache_put(st->nc, key, NULL, 0, now_s());
	return rc;
}

int
store_node_get(struct store *st, const uint8_t key[KEY_LEN], struct store_node *out)
{
	return st->ops->node_get(st, key, out);
}

int
store_node_set_nick(struct store *st, const uint8_t key[KEY_LEN], const char *nick)
{
	int rc = st->ops->node_set_nick(st, key, nick);

	nick_spread(st, key, rc == 0 ? nick : NULL);
	return rc;
}

int
store_node_touch(struct store *st, const uint8_t key[KEY_LEN], int64_t when)
{
	return st->ops->node_touch(st, key, when);
}

int
store_node_seen(struct store *st, const struct store_node *n)
{
	int64_t now = (int64_t)time(NULL);

	/* either way from now: the database's clock may be ahead of ours */
	if (n->last_seen > 0 && n->last_seen > now - STORE_SEEN_EVERY_S &&
	    n->last_seen < now + STORE_SEEN_EVERY_S)
		return 0;
	return st->ops->node_touch(st, n->key, 0);
}

int
store_nodes_reclaim(struct store *st, int64_t before, unsigned *removed)
{
	return st->ops->nodes_reclaim(st, before, removed);
}

int
store_network_create(struct store *st, const char *name, const uint8_t owner[KEY_LEN],
    const char *pwhash, uint8_t flags, struct store_network *out)
{
	int rc = st->ops->network_create(st, name, owner, pwhash, flags, out);

	if (rc == 0)
		membercache_drop(st->mc, out->id);      /* an id SQLite reuses */
	nodecache_drop(st->nc, owner);
	return rc;
}

int
store_network_get(struct store *st, const char *name, struct store_network *out)
{
	double now = now_s();
	int rc;

	if (netcache_get(st->netc, name, now, out) == 0)
		return 0;
	if ((rc = st->ops->network_get(st, name, out)) == 0)
		netcache_put(st->netc, out, now);
	return rc;
}

int
store_network_delete(struct store *st, int64_t id)
{
	membercache_drop(st->mc, id);
	network_rows_changed(st);
	return st->ops->network_delete(st, id);
}

int
store_network_set_pwhash(struct store *st, int64_t id, const char *pwhash)
{
	network_rows_changed(st);
	return st->ops->network_set_pwhash(st, id, pwhash);
}

int
store_network_set_flags(struct store *st, int64_t id, uint8_t flags)
{
	network_rows_changed(st);
	return st->ops->network_set_flags(st, id, flags);
}

int
store_member_add(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending,
    int online)
{
	int rc = st->ops->member_add(st, net, key, pending, online);

	member_refresh(st, net, key);
	return rc;
}

int
store_member_get(struct store *st, int64_t net, const uint8_t key[KEY_LEN],
    struct store_member *out)
{
	int rc = copy_row(st, net, key, out);

	return rc == -1 ? st->ops->member_get(st, net, key, out) : rc;
}

int
store_member_remove(struct store *st, int64_t net, const uint8_t key[KEY_LEN])
{
	int rc = st->ops->member_change(st, net, key, MEMBER_REMOVE, 0);

	member_refresh(st, net, key);
	return rc;
}

int
store_member_set_pending(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int pending)
{
	int rc = st->ops->member_change(st, net, key, MEMBER_PENDING, pending ? 1 : 0);

	member_refresh(st, net, key);
	return rc;
}

int
store_member_set_online(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int online)
{
	int rc = st->ops->member_change(st, net, key, MEMBER_ONLINE, online ? 1 : 0);

	if (rc != 0 || member_switch(st, net, key, online ? 1 : 0) != 0)
		member_refresh(st, net, key);
	return rc;
}

struct rows {                             /* a member list being loaded */
	struct store_member *v;
	size_t n, cap;
};

/* v (n used of *cap elements of size) with room for one more: first elements at first,
 * doubled when full; NULL when out of memory (v still holds the rows). */
static void *
room_for_one(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	void *p;
	size_t want;

	if (n < *cap)
		return v;
	want = *cap ? *cap * 2 : first;
	if ((p = realloc(v, want * size)) != NULL)
		*cap = want;
	return p;
}

static int
collect_cb(void *arg, const struct store_member *m)
{
	struct rows *r = arg;
	struct store_member *v = room_for_one(r->v, r->n, &r->cap, sizeof(*v), 8);

	if (v == NULL)
		return -1;
	r->v = v;
	r->v[r->n++] = *m;
	return 0;
}

int
store_members_each(struct store *st, int64_t net, store_member_cb cb, void *arg)
{
	const struct mc_list *l = membercache_get(st->mc, net, now_s());
	struct store_member m;
	struct rows r = { NULL, 0, 0 };
	size_t i;
	int rc = 0;

	if (l == NULL) {
		if (st->ops->members_each(st, net, collect_cb, &r) != 0) {
			/* out of memory, or the database failed: the walk without a copy */
			free(r.v);
			return st->ops->members_each(st, net, cb, arg);
		}
		if ((l = membercache_put(st->mc, net, r.v, r.n, now_s())) == NULL)
			return st->ops->members_each(st, net, cb, arg);
	}
	for (i = 0; i < l->n && rc == 0; i++) {
		m = l->rows[i];         /* a copy: cb may change the store, and so this row */
		rc = cb(arg, &m);
	}
	membercache_unpin(st->mc, l);
	return rc;
}

void
store_member_changed(struct store *st, int64_t net, const uint8_t key[KEY_LEN])
{
	member_refresh(st, net, key);
}

void
store_member_switched(struct store *st, int64_t net, const uint8_t key[KEY_LEN], int online)
{
	if (member_switch(st, net, key, online ? 1 : 0) != 0)
		member_refresh(st, net, key);
}

void
store_node_changed(struct store *st, const uint8_t key[KEY_LEN])
{
	struct store_node n;
	int rc = st->ops->node_get(st, key, &n);

	if (rc != STORE_NOT_FOUND)              /* a node gone has no member rows */
		nick_spread(st, key, rc == 0 ? n.nick : NULL);
}

void
store_networks_changed(struct store *st)
{
	network_rows_changed(st);
}

void
store_changes_missed(struct store *st)
{
	membercache_clear(st->mc);
	network_rows_changed(st);
}

/* A pair is ~300 bytes and most nodes are in one or two networks: room grows from one. */
struct pairs {                            /* a node's networks being loaded */
	struct nodecache_pair *v;
	size_t n, cap;
};

static int
collect_pair_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct pairs *p = arg;
	struct nodecache_pair *v = room_for_one(p->v, p->n, &p->cap, sizeof(*v), 1);

	if (v == NULL)
		return -1;
	p->v = v;
	p->v[p->n].net = *n;
	p->v[p->n].me = *me;
	p->n++;
	return 0;
}

int
store_node_networks_each(struct store *st, const uint8_t key[KEY_LEN], store_network_cb cb,
    void *arg)
{
	struct pairs p = { NULL, 0, 0 };
	size_t i;
	int rc = 0;

	if (nodecache_get(st->nc, key, now_s(), &p.v, &p.n) != 0) {
		if (st->ops->node_networks_each(st, key, collect_pair_cb, &p) != 0) {
			/* out of memory, or the database failed: the walk without a copy */
			free(p.v);
			return st->ops->node_networks_each(st, key, cb, arg);
		}
		nodecache_put(st->nc, key, p.v, p.n, now_s());
	}
	/* on our own copy: cb may change the store, and so the cache */
	for (i = 0; i < p.n && rc == 0; i++)
		rc = cb(arg, &p.v[i].net, &p.v[i].me);
	free(p.v);
	return rc;
}

/* ---- warming the copies ---- */

struct warm_net {                        /* one network's rows, while warming */
	int64_t id;
	struct rows r;
	UT_hash_handle hh;
};

struct warm_node {                       /* one node's pairs, while warming */
	uint8_t key[KEY_LEN];
	struct pairs p;
	UT_hash_handle hh;
};

struct warm {
	struct warm_net *nets;
	struct warm_node *nodes;
	size_t rows, units;             /* what the two copies would hold */
};

static int
warm_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct warm *w = arg;
	struct warm_net *wn;
	struct warm_node *wk;

	HASH_FIND(hh, w->nets, &n->id, sizeof(n->id), wn);
	if (wn == NULL) {
		if ((wn = calloc(1, sizeof(*wn))) == NULL)
			return -1;
		wn->id = n->id;
		HASH_ADD(hh, w->nets, id, sizeof(wn->id), wn);
	}
	HASH_FIND(hh, w->nodes, me->key, KEY_LEN, wk);
	if (wk == NULL) {
		if ((wk = calloc(1, sizeof(*wk))) == NULL)
			return -1;
		memcpy(wk->key, me->key, KEY_LEN);
		HASH_ADD(hh, w->nodes, key, KEY_LEN, wk);
		w->units++;
	}
	w->rows++;
	w->units++;
	/* more than the copies keep: they would only push each other out (a partial warm-up
	 * would be wrong: a copy must hold all of a node's or network's rows) */
	if (w->rows > MEMBERCACHE_MAX_ROWS / 2 || w->units > NODECACHE_MAX_PAIRS / 2)
		return 1;
	return collect_cb(&wn->r, me) != 0 || collect_pair_cb(&wk->p, n, me) != 0 ? -1 : 0;
}

/* A node, before its memberships are read: one in none keeps an empty copy, so that its
 * connecting (and each instance hearing of it) reads nothing either. Up to a quarter of the
 * budget: the rest is for the memberships. */
static int
warm_node_cb(void *arg, const uint8_t key[KEY_LEN])
{
	struct warm *w = arg;
	struct warm_node *wk;

	if (w->units >= NODECACHE_MAX_PAIRS / 4)
		return 1;
	if ((wk = calloc(1, sizeof(*wk))) == NULL)
		return -1;
	memcpy(wk->key, key, KEY_LEN);
	HASH_ADD(hh, w->nodes, key, KEY_LEN, wk);
	w->units++;
	return 0;
}

int
store_warm(struct store *st)
{
	struct warm w = { NULL, NULL, 0, 0 };
	struct warm_net *wn, *tn;
	struct warm_node *wk, *tk;
	const struct mc_list *l;
	double now = now_s();
	unsigned nodes;
	int rc;

	/* The nodes first: one that joins a network between the two reads is in the second. */
	(void)st->ops->nodes_each(st, warm_node_cb, &w);
	rc = st->ops->node_networks_each(st, NULL, warm_cb, &w);

	HASH_ITER(hh, w.nets, wn, tn) {
		HASH_DEL(w.nets, wn);
		if (rc == 0 && (l = membercache_put(st->mc, wn->id, wn->r.v, wn->r.n, now)) != NULL)
			membercache_unpin(st->mc, l);
		else if (rc != 0)
			free(wn->r.v);
		free(wn);
	}
	nodes = HASH_COUNT(w.nodes);
	HASH_ITER(hh, w.nodes, wk, tk) {
		HASH_DEL(w.nodes, wk);
		if (rc == 0)
			nodecache_adopt(st->nc, wk->key, wk->p.v, wk->p.n, now);
		else
			free(wk->p.v);
		free(wk);
	}
	if (rc != 0)
		log_info("event=store_warm_skipped reason=%s", rc > 0 ? "too_many_rows" : "error");
	else
		log_info("event=store_warmed members=%zu nodes=%u", w.rows, nodes);
	return rc < 0 ? -1 : 0;
}
