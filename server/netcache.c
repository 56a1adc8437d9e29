/*
 * netcache: copies of network rows by name (netcache.h).
 */
#include "config.h"
#include "server/netcache.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct entry {
	struct store_network n;         /* n.name is the key */
	double loaded;
	UT_hash_handle hh;
};

struct netcache {
	struct entry *by_name;
	size_t max;
};

struct netcache *
netcache_new(size_t max)
{
	struct netcache *nc = calloc(1, sizeof(*nc));

	if (nc != NULL)
		nc->max = max;
	return nc;
}

void
netcache_clear(struct netcache *nc)
{
	struct entry *e, *t;

	HASH_ITER(hh, nc->by_name, e, t) {
		HASH_DEL(nc->by_name, e);
		free(e);
	}
}

void
netcache_free(struct netcache *nc)
{
	if (nc == NULL)
		return;
	netcache_clear(nc);
	free(nc);
}

/* NETCACHE_MAX_AGE_S to twice that, by the table's own hash of the name, so that copies read
 * together are not all read again together. */
static double
lifetime(const char *name)
{
	unsigned h;

	HASH_VALUE(name, strlen(name), h);
	return NETCACHE_MAX_AGE_S * (1. + (h & 0xffff) / 65536.);
}

int
netcache_get(struct netcache *nc, const char *name, double now, struct store_network *out)
{
	struct entry *e;

	HASH_FIND_STR(nc->by_name, name, e);
	if (e == NULL)
		return -1;
	if (now - e->loaded > lifetime(name) || now < e->loaded) {
		HASH_DEL(nc->by_name, e);
		free(e);
		return -1;
	}
	*out = e->n;
	return 0;
}

void
netcache_put(struct netcache *nc, const struct store_network *n, double now)
{
	struct entry *e;

	HASH_FIND_STR(nc->by_name, n->name, e);
	if (e != NULL) {
		HASH_DEL(nc->by_name, e);
		free(e);
	}
	if (HASH_COUNT(nc->by_name) >= nc->max)
		netcache_clear(nc);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;
	e->n = *n;
	e->loaded = now;
	HASH_ADD_STR(nc->by_name, n.name, e);
}

size_t
netcache_count(const struct netcache *nc)
{
	return HASH_COUNT(nc->by_name);
}
