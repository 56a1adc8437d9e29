/*
 * nodecache: copies of the networks each node belongs to (with its own member row), the
 * other half of membercache.h: every presence change of a node, here or on another instance,
 * walks the node's networks, and on PostgreSQL that was a query on every instance for each.
 * The store's front (store.c) fills it on a miss and drops a node's copy whenever one of its
 * memberships or its nick changes (its own writes, and what other instances tell), and every
 * copy when any network's settings change or a network goes (rare). A copy older than
 * NODECACHE_MAX_AGE_S to twice that (spread by key) is read again anyway.
 * A lookup hands out a copy of the rows, so a walk's callback may change the store.
 * Pure data structure: no database, no loop (the age comes from the caller's clock).
 * Owns: the copies.
 */
#ifndef SHOAL_SERVER_NODECACHE_H
#define SHOAL_SERVER_NODECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

/* NODECACHE_MAX_PAIRS: the store's budget (a pair is about 320 bytes: 160 MB at most; the
 * warm-up at start fills up to half, so 100,000 nodes in one network each are held). */
enum { NODECACHE_MAX_PAIRS = 1 << 19, NODECACHE_MAX_AGE_S = 300 };

struct nodecache_pair {                  /* one network of the node, and the node's row in it */
	struct store_network net;
	struct store_member me;
};

struct nodecache;

/* max_pairs: held at most (each node's copy counts one more); past it every copy goes
 * before a new one comes. */
struct nodecache *nodecache_new(size_t max_pairs);
void nodecache_free(struct nodecache *nc);

/* key's pairs, if a copy younger than its lifetime (above) at now (seconds, any monotonic
 * clock) exists: 0 with *out a malloc'ed copy of *n pairs (the caller frees it; NULL when
 * n is 0). -1 when there is none, or no memory. */
int nodecache_get(struct nodecache *nc, const uint8_t key[KEY_LEN], double now,
    struct nodecache_pair **out, size_t *n);
/* Keeps a copy of n pairs as key's (replacing any); nothing when out of memory. */
void nodecache_put(struct nodecache *nc, const uint8_t key[KEY_LEN],
    const struct nodecache_pair *v, size_t n, double now);
/* The same, keeping v itself (malloc'ed, n pairs; NULL when n is 0): the cache owns it from
 * here, and frees it when out of memory. The warm-up's way: no copy of 100,000 nodes' pairs. */
void nodecache_adopt(struct nodecache *nc, const uint8_t key[KEY_LEN],
    struct nodecache_pair *v, size_t n, double now);
/* key's row in network net is now *me: its copy follows. 0, or -1 when key has no copy or the
 * copy has no pair for net (a membership new to it: the caller drops the copy). */
int nodecache_set_member(struct nodecache *nc, const uint8_t key[KEY_LEN], int64_t net,
    const struct store_member *me);
void nodecache_drop(struct nodecache *nc, const uint8_t key[KEY_LEN]);
void nodecache_clear(struct nodecache *nc);
/* Pairs held, for tests and logs. */
size_t nodecache_pairs(const struct nodecache *nc);

#endif
