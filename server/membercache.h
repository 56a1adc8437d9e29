/*
 * membercache: copies of networks' member lists, so that a presence change pushed to a
 * 1,000-member network does not read 1,000 rows from the database each time (and, on
 * PostgreSQL, on every instance). The store's front (store.c) fills it on a miss and applies
 * to it every change to a member row: its own writes, and those another instance tells of
 * through the mediator (store_member_changed and friends, store.h). A copy
 * older than MEMBERCACHE_MAX_AGE_S to twice that (spread by network, so that copies filled
 * together do not expire together) is read again anyway, which bounds the harm of a change
 * nobody announced; missed announcements clear every copy (store_changes_missed).
 * A copy being walked is pinned: dropping it detaches it, and it is freed when the last walk
 * ends, so a walk's callback may change the store.
 * Pure data structure: no database, no loop (the age comes from the caller's clock).
 * Owns: the copies.
 */
#ifndef SHOAL_SERVER_MEMBERCACHE_H
#define SHOAL_SERVER_MEMBERCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

/* MEMBERCACHE_MAX_ROWS: the store's budget (rows of about 80 bytes: 80 MB). */
enum { MEMBERCACHE_MAX_ROWS = 1 << 20, MEMBERCACHE_MAX_AGE_S = 300 };

struct membercache;
struct mc_list {                          /* one network's rows, in the store's order */
	const struct store_member *rows;
	size_t n;
};

/* max_rows: rows held at most; past it, every unpinned copy goes before a new one comes. */
struct membercache *membercache_new(size_t max_rows);
void membercache_free(struct membercache *mc);

/* net's copy if it is younger than its lifetime (above) at now (seconds, any monotonic
 * clock), pinned until membercache_unpin; NULL when there is none (load it, then _put). */
const struct mc_list *membercache_get(struct membercache *mc, int64_t net, double now);
void membercache_unpin(struct membercache *mc, const struct mc_list *l);
/* Takes rows (malloc'ed, n of them; freed here, also on failure) as net's copy, replacing
 * any, and returns it pinned; NULL when out of memory. */
const struct mc_list *membercache_put(struct membercache *mc, int64_t net,
    struct store_member *rows, size_t n, double now);
/* One row of a copy by key, or NULL. */
const struct store_member *membercache_find(const struct mc_list *l,
    const uint8_t key[KEY_LEN]);

/* The changes the store made or heard of, applied to the copies that exist (none is made):
 * key's row in net is now r (added at the end when new: the newest joined last); key left
 * net; key's nick is now nick (in net's copy: the store knows the node's networks). A copy
 * being walked is dropped instead of reshaped (its walk keeps the rows it had). */
void membercache_set(struct membercache *mc, int64_t net, const struct store_member *r);
void membercache_remove(struct membercache *mc, int64_t net, const uint8_t key[KEY_LEN]);
void membercache_set_nick(struct membercache *mc, int64_t net, const uint8_t key[KEY_LEN],
    const char *nick);
/* Net's copy goes (its rows changed, how is not known). */
void membercache_drop(struct membercache *mc, int64_t net);
/* Every copy goes (changes may have been missed). */
void membercache_clear(struct membercache *mc);
/* Rows held (pinned and detached ones included), for tests and logs. */
size_t membercache_rows(const struct membercache *mc);

#endif
