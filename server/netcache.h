/*
 * netcache: copies of network rows by name, the third copy in front of the store (beside
 * membercache.h and nodecache.h). Every request names its network and every membership event
 * from another instance does too; on PostgreSQL each was a query on the loop, so one join cost
 * every instance a read of a row that changes only when its owner changes a setting.
 * Only networks that exist are kept (one created elsewhere is found at once). The store's front
 * (store.c) drops them all when any network's settings change or one goes, here or on another
 * instance (store_networks_changed), and when changes may have been missed. A copy older than
 * NETCACHE_MAX_AGE_S to twice that (spread by name) is read again anyway. So a setting changed
 * on another instance holds here once its event arrived (milliseconds; the copies of member
 * lists have the same window), not at its commit.
 * Pure data structure: no database, no loop (the age comes from the caller's clock).
 * Owns: the copies.
 */
#ifndef SHOAL_SERVER_NETCACHE_H
#define SHOAL_SERVER_NETCACHE_H

#include <stddef.h>

#include "server/store.h"

/* NETCACHE_MAX: copies held at most (about 300 bytes each: 20 MB); past it all go first. */
enum { NETCACHE_MAX = 1 << 16, NETCACHE_MAX_AGE_S = 300 };

struct netcache;

struct netcache *netcache_new(size_t max);
void netcache_free(struct netcache *nc);

/* 0 with *out the copy of name's row, if one younger than its lifetime at now (seconds, any
 * monotonic clock) is held; -1 otherwise. */
int netcache_get(struct netcache *nc, const char *name, double now, struct store_network *out);
/* Keeps a copy of n under its name (replacing any); nothing when out of memory. */
void netcache_put(struct netcache *nc, const struct store_network *n, double now);
void netcache_clear(struct netcache *nc);
/* Copies held, for tests. */
size_t netcache_count(const struct netcache *nc);

#endif
