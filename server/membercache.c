/*
 * membercache: copies of networks' member lists (membercache.h).
 */
#include "config.h"
#include "server/membercache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct entry {
	struct mc_list l;               /* first: a pinned list is its entry */
	struct store_member *rows;
	int64_t net;
	double loaded;
	unsigned pins;
	int detached;                   /* out of the table; freed at its last unpin */
	UT_hash_handle hh;
};

struct membercache {
	struct entry *by_net;
	size_t rows, max_rows;
};

struct membercache *
membercache_new(size_t max_rows)
{
	struct membercache *mc = calloc(1, sizeof(*mc));

	if (mc != NULL)
		mc->max_rows = max_rows;
	return mc;
}

static void
entry_free(struct membercache *mc, struct entry *e)
{
	mc->rows -= e->l.n;
	free(e->rows);
	free(e);
}

/* Out of the table: freed now, or by the last walk still on it. */
static void
detach(struct membercache *mc, struct entry *e)
{
	HASH_DEL(mc->by_net, e);
	if (e->pins > 0)
		e->detached = 1;
	else
		entry_free(mc, e);
}

static struct entry *
entry_of(struct membercache *mc, int64_t net)
{
	struct entry *e;

	HASH_FIND(hh, mc->by_net, &net, sizeof(net), e);
	return e;
}

void
membercache_free(struct membercache *mc)
{
	struct entry *e, *t;

	if (mc == NULL)
		return;
	/* no walk runs at this point: pinned entries are freed too */
	HASH_ITER(hh, mc->by_net, e, t) {
		HASH_DEL(mc->by_net, e);
		entry_free(mc, e);
	}
	free(mc);
}

/* How long net's copy is trusted: MEMBERCACHE_MAX_AGE_S to twice that, spread by the id (a
 * multiplicative hash), so that the copies filled at start do not all expire together. */
static double
lifetime(int64_t net)
{
	return MEMBERCACHE_MAX_AGE_S * (1. + (double)(((uint64_t)net * 0x9E3779B97F4A7C15u) >> 48) /
	    65536.);
}

const struct mc_list *
membercache_get(struct membercache *mc, int64_t net, double now)
{
	struct entry *e = entry_of(mc, net);

	if (e == NULL)
		return NULL;
	if (now - e->loaded > lifetime(net) || now < e->loaded) {
		detach(mc, e);
		return NULL;
	}
	e->pins++;
	return &e->l;
}

void
membercache_unpin(struct membercache *mc, const struct mc_list *l)
{
	struct entry *e = (struct entry *)l;

	if (--e->pins == 0 && e->detached)
		entry_free(mc, e);
}

const struct mc_list *
membercache_put(struct membercache *mc, int64_t net, struct store_member *rows, size_t n,
    double now)
{
	struct entry *e, *t;

	membercache_drop(mc, net);
	if (mc->rows + n > mc->max_rows)
		HASH_ITER(hh, mc->by_net, e, t)
			detach(mc, e);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		free(rows);
		return NULL;
	}
	e->rows = rows;
	e->l.rows = rows;
	e->l.n = n;
	e->net = net;
	e->loaded = now;
	e->pins = 1;
	mc->rows += n;
	HASH_ADD(hh, mc->by_net, net, sizeof(e->net), e);
	return &e->l;
}

const struct store_member *
membercache_find(const struct mc_list *l, const uint8_t key[KEY_LEN])
{
	size_t i;

	/* linear: a lookup costs what one row's copy over the database's socket would */
	for (i = 0; i < l->n; i++)
		if (memcmp(l->rows[i].key, key, KEY_LEN) == 0)
			return &l->rows[i];
	return NULL;
}

void
membercache_set(struct membercache *mc, int64_t net, const struct store_member *r)
{
	struct entry *e = entry_of(mc, net);
	struct store_member *row, *rows;

	if (e == NULL)
		return;
	if ((row = (struct store_member *)membercache_find(&e->l, r->key)) != NULL) {
		*row = *r;              /* a walk copies each row before its callback */
		return;
	}
	if (e->pins > 0 || mc->rows >= mc->max_rows ||
	    (rows = realloc(e->rows, (e->l.n + 1) * sizeof(*rows))) == NULL) {
		detach(mc, e);
		return;
	}
	rows[e->l.n] = *r;
	e->rows = rows;
	e->l.rows = rows;
	e->l.n++;
	mc->rows++;
}

void
membercache_remove(struct membercache *mc, int64_t net, const uint8_t key[KEY_LEN])
{
	struct entry *e = entry_of(mc, net);
	const struct store_member *row;
	size_t i;

	if (e == NULL || (row = membercache_find(&e->l, key)) == NULL)
		return;
	if (e->pins > 0) {
		detach(mc, e);
		return;
	}
	i = (size_t)(row - e->rows);
	memmove(&e->rows[i], &e->rows[i + 1], (e->l.n - i - 1) * sizeof(*e->rows));
	e->l.n--;
	mc->rows--;
}

void
membercache_set_nick(struct membercache *mc, int64_t net, const uint8_t key[KEY_LEN],
    const char *nick)
{
	struct entry *e = entry_of(mc, net);
	struct store_member *row;

	if (e != NULL && (row = (struct store_member *)membercache_find(&e->l, key)) != NULL)
		snprintf(row->nick, sizeof(row->nick), "%s", nick);
}

void
membercache_drop(struct membercache *mc, int64_t net)
{
	struct entry *e = entry_of(mc, net);

	if (e != NULL)
		detach(mc, e);
}

void
membercache_clear(struct membercache *mc)
{
	struct entry *e, *t;

	HASH_ITER(hh, mc->by_net, e, t)
		detach(mc, e);
}

size_t
membercache_rows(const struct membercache *mc)
{
	return mc->rows;
}
