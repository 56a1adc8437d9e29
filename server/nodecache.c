/*
 * nodecache: copies of the networks each node belongs to (nodecache.h).
 */
#include "config.h"
#include "server/nodecache.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct entry {
	uint8_t key[KEY_LEN];
	double loaded;
	size_t n;
	struct nodecache_pair *v;
	UT_hash_handle hh;
};

struct nodecache {
	struct entry *by_key;
	size_t pairs, entries, max_pairs;       /* an entry counts as one pair more */
};

struct nodecache *
nodecache_new(size_t max_pairs)
{
	struct nodecache *nc = calloc(1, sizeof(*nc));

	if (nc != NULL)
		nc->max_pairs = max_pairs;
	return nc;
}

static void
entry_free(struct nodecache *nc, struct entry *e)
{
	HASH_DEL(nc->by_key, e);
	nc->pairs -= e->n;
	nc->entries--;
	free(e->v);
	free(e);
}

void
nodecache_clear(struct nodecache *nc)
{
	struct entry *e, *t;

	HASH_ITER(hh, nc->by_key, e, t)
		entry_free(nc, e);
}

void
nodecache_free(struct nodecache *nc)
{
	if (nc == NULL)
		return;
	nodecache_clear(nc);
	free(nc);
}

/* How long key's copy is trusted: NODECACHE_MAX_AGE_S to twice that, by the key's first bytes
 * (random: keys are public keys), so that copies filled together, as at start, are not all
 * read again in the same second (in a reconnect storm that was a read per node per instance). */
static double
lifetime(const uint8_t key[KEY_LEN])
{
	return NODECACHE_MAX_AGE_S * (1. + (key[0] | key[1] << 8) / 65536.);
}

int
nodecache_get(struct nodecache *nc, const uint8_t key[KEY_LEN], double now,
    struct nodecache_pair **out, size_t *n)
{
	struct entry *e;

	HASH_FIND(hh, nc->by_key, key, KEY_LEN, e);
	if (e == NULL)
		return -1;
	if (now - e->loaded > lifetime(key) || now < e->loaded) {
		entry_free(nc, e);
		return -1;
	}
	*out = NULL;
	*n = e->n;
	if (e->n == 0)
		return 0;
	if ((*out = malloc(e->n * sizeof(**out))) == NULL)
		return -1;
	memcpy(*out, e->v, e->n * sizeof(**out));
	return 0;
}

void
nodecache_put(struct nodecache *nc, const uint8_t key[KEY_LEN],
    const struct nodecache_pair *v, size_t n, double now)
{
	struct nodecache_pair *copy = NULL;

	if (n > 0) {
		if ((copy = malloc(n * sizeof(*v))) == NULL) {
			nodecache_drop(nc, key);        /* no stale copy left behind */
			return;
		}
		memcpy(copy, v, n * sizeof(*v));
	}
	nodecache_adopt(nc, key, copy, n, now);
}

void
nodecache_adopt(struct nodecache *nc, const uint8_t key[KEY_LEN],
    struct nodecache_pair *v, size_t n, double now)
{
	struct entry *e;

	nodecache_drop(nc, key);
	if (nc->pairs + nc->entries + n + 1 > nc->max_pairs)
		nodecache_clear(nc);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		free(v);
		return;
	}
	e->v = v;
	memcpy(e->key, key, KEY_LEN);
	e->n = n;
	e->loaded = now;
	nc->pairs += n;
	nc->entries++;
	HASH_ADD(hh, nc->by_key, key, KEY_LEN, e);
}

int
nodecache_set_member(struct nodecache *nc, const uint8_t key[KEY_LEN], int64_t net,
    const struct store_member *me)
{
	struct entry *e;
	size_t i;

	HASH_FIND(hh, nc->by_key, key, KEY_LEN, e);
	if (e == NULL)
		return -1;
	for (i = 0; i < e->n; i++)
		if (e->v[i].net.id == net) {
			e->v[i].me = *me;
			return 0;
		}
	return -1;
}

void
nodecache_drop(struct nodecache *nc, const uint8_t key[KEY_LEN])
{
	struct entry *e;

	HASH_FIND(hh, nc->by_key, key, KEY_LEN, e);
	if (e != NULL)
		entry_free(nc, e);
}

size_t
nodecache_pairs(const struct nodecache *nc)
{
	return nc->pairs;
}
