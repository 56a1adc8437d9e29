/*
 * test_membercache: the copies of member lists (server/membercache.h) as a data structure:
 * hits and misses, changes applied in place, a pinned copy dropped and freed at its last
 * unpin (ASan and valgrind see a use after free), the age limit and the row budget; and the
 * copies of nodes' networks (server/nodecache.h): copies out, age, budget.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/membercache.h"
#include "server/netcache.h"
#include "server/nodecache.h"
#include "tests/unit/unit.h"

enum { BUDGET = 1000 };

static struct store_member *
rows_of(size_t n, uint8_t first)
{
	struct store_member *r = calloc(n ? n : 1, sizeof(*r));
	size_t i;

	for (i = 0; i < n; i++) {
		memset(r[i].key, first + (int)i, KEY_LEN);
		r[i].address = 0x05000001u + (uint32_t)i;
		snprintf(r[i].nick, sizeof(r[i].nick), "n%zu", i);
	}
	return r;
}

static void
test_hit_and_changes(void)
{
	struct membercache *mc = membercache_new(BUDGET);
	const struct mc_list *l;
	struct store_member r;
	uint8_t k[KEY_LEN];

	CHECK(membercache_get(mc, 7, 0.) == NULL);
	l = membercache_put(mc, 7, rows_of(3, 1), 3, 0.);
	CHECK(l != NULL && l->n == 3);
	membercache_unpin(mc, l);
	l = membercache_get(mc, 7, 1.);
	CHECK(l != NULL);
	memset(k, 2, KEY_LEN);
	CHECK(membercache_find(l, k) == &l->rows[1]);
	membercache_unpin(mc, l);
	CHECK_EQ(membercache_rows(mc), 3);

	/* a row changed in place; a new one at the end; one gone */
	r = l->rows[1];
	r.pending = 1;
	membercache_set(mc, 7, &r);
	memset(r.key, 9, KEY_LEN);
	membercache_set(mc, 7, &r);
	memset(k, 1, KEY_LEN);
	membercache_remove(mc, 7, k);
	membercache_set_nick(mc, 7, r.key, "nine");
	membercache_set_nick(mc, 8, r.key, "eight");    /* no copy of 8: nothing */
	membercache_set(mc, 8, &r);                     /* no copy of 8: nothing made */
	CHECK(membercache_get(mc, 8, 1.) == NULL);
	l = membercache_get(mc, 7, 2.);
	CHECK(l != NULL && l->n == 3);
	if (l != NULL && l->n == 3) {
		CHECK_EQ(l->rows[0].key[0], 2);
		CHECK_EQ(l->rows[0].pending, 1);
		CHECK_EQ(l->rows[2].key[0], 9);
		CHECK(strcmp(l->rows[2].nick, "nine") == 0);
		membercache_unpin(mc, l);
	}
	CHECK_EQ(membercache_rows(mc), 3);
	membercache_free(mc);
}

static void
test_pinned(void)
{
	struct membercache *mc = membercache_new(BUDGET);
	const struct mc_list *l, *l2;
	struct store_member r;

	l = membercache_put(mc, 1, rows_of(2, 1), 2, 0.);
	/* reshaping a copy being walked drops it; the walk keeps its rows */
	memset(&r, 0, sizeof(r));
	memset(r.key, 5, KEY_LEN);
	membercache_set(mc, 1, &r);
	CHECK(membercache_get(mc, 1, 0.) == NULL);
	CHECK_EQ(l->n, 2);
	CHECK_EQ(l->rows[1].key[0], 2);
	/* a new copy beside the detached one */
	l2 = membercache_put(mc, 1, rows_of(1, 7), 1, 0.);
	CHECK_EQ(membercache_rows(mc), 3);
	membercache_unpin(mc, l);                       /* the detached one is freed here */
	CHECK_EQ(membercache_rows(mc), 1);
	membercache_drop(mc, 1);
	CHECK_EQ(membercache_rows(mc), 1);              /* still pinned */
	CHECK_EQ(l2->rows[0].key[0], 7);
	membercache_unpin(mc, l2);
	CHECK_EQ(membercache_rows(mc), 0);
	/* removal under a walk, and a clear */
	l = membercache_put(mc, 2, rows_of(2, 1), 2, 0.);
	membercache_remove(mc, 2, l->rows[0].key);
	CHECK_EQ(l->n, 2);
	membercache_unpin(mc, l);
	membercache_unpin(mc, membercache_put(mc, 3, rows_of(2, 1), 2, 0.));
	membercache_clear(mc);
	CHECK_EQ(membercache_rows(mc), 0);
	membercache_free(mc);
}

static void
test_age_and_budget(void)
{
	struct membercache *mc = membercache_new(BUDGET);
	const struct mc_list *l;

	membercache_unpin(mc, membercache_put(mc, 1, rows_of(1, 1), 1, 100.));
	CHECK((l = membercache_get(mc, 1, 100. + MEMBERCACHE_MAX_AGE_S - 1)) != NULL);
	if (l != NULL)
		membercache_unpin(mc, l);
	CHECK(membercache_get(mc, 1, 100. + 2 * MEMBERCACHE_MAX_AGE_S + 1) == NULL);
	CHECK(membercache_get(mc, 1, 100.) == NULL);    /* it went */
	/* past the budget, the older copies go first */
	membercache_unpin(mc, membercache_put(mc, 2, rows_of(BUDGET / 2, 1),
	    BUDGET / 2, 0.));
	membercache_unpin(mc, membercache_put(mc, 3, rows_of(BUDGET / 2, 1),
	    BUDGET / 2, 0.));
	CHECK_EQ(membercache_rows(mc), BUDGET);
	membercache_unpin(mc, membercache_put(mc, 4, rows_of(1, 1), 1, 0.));
	CHECK_EQ(membercache_rows(mc), 1);
	CHECK(membercache_get(mc, 2, 0.) == NULL);
	membercache_free(mc);
}

static void
test_nodecache(void)
{
	struct nodecache *nc = nodecache_new(5);
	struct nodecache_pair v[2], *got;
	uint8_t a[KEY_LEN], b[KEY_LEN];
	size_t n;

	memset(v, 0, sizeof(v));
	v[0].net.id = 1;
	v[1].net.id = 2;
	memset(a, 1, KEY_LEN);
	memset(b, 2, KEY_LEN);
	CHECK_EQ(nodecache_get(nc, a, 0., &got, &n), -1);
	nodecache_put(nc, a, v, 2, 0.);
	nodecache_put(nc, b, NULL, 0, 0.);              /* in no network: known too */
	CHECK_EQ(nodecache_get(nc, a, 1., &got, &n), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_EQ(got[1].net.id, 2);
		got[1].net.id = 9;                      /* a copy: the cache keeps its own */
		free(got);
	}
	CHECK_EQ(nodecache_get(nc, a, 1., &got, &n), 0);
	CHECK_EQ(n == 2 ? got[1].net.id : 0, 2);
	free(got);
	CHECK_EQ(nodecache_get(nc, b, 1., &got, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(got == NULL);
	CHECK_EQ(nodecache_get(nc, a, 2 * NODECACHE_MAX_AGE_S + 1., &got, &n), -1);
	CHECK_EQ(nodecache_pairs(nc), 0);
	/* budget 5: a holds 2 pairs + 1; b with 2 + 1 more passes it: all go first */
	nodecache_put(nc, a, v, 2, 0.);
	nodecache_put(nc, a, v, 2, 0.);                 /* replaced, not added */
	CHECK_EQ(nodecache_pairs(nc), 2);
	nodecache_put(nc, b, v, 2, 0.);
	CHECK_EQ(nodecache_pairs(nc), 2);
	CHECK_EQ(nodecache_get(nc, a, 0., &got, &n), -1);
	nodecache_drop(nc, b);
	CHECK_EQ(nodecache_pairs(nc), 0);
	nodecache_free(nc);
}

/* Copies filled in the same second (the warm-up at start) expire over a span, not at once: a
 * reconnect storm after MAX_AGE would otherwise read every node and network again. */
static void
test_spread(void)
{
	struct membercache *mc = membercache_new(BUDGET);
	struct nodecache *nc = nodecache_new(1000);
	struct nodecache_pair *got;
	uint8_t key[KEY_LEN];
	const struct mc_list *l;
	int64_t id;
	size_t n;
	int i, mc_kept = 0, nc_kept = 0;

	for (id = 1; id <= 64; id++)
		membercache_unpin(mc, membercache_put(mc, id, rows_of(1, 1), 1, 0.));
	for (i = 0; i < 64; i++) {
		memset(key, 0, sizeof(key));
		key[0] = (uint8_t)(i * 37);             /* first bytes all differ, as random ones */
		key[1] = (uint8_t)(i * 101 + 7);
		nodecache_put(nc, key, NULL, 0, 0.);
		CHECK_EQ(nodecache_get(nc, key, NODECACHE_MAX_AGE_S - 1., &got, &n), 0);
		if (nodecache_get(nc, key, 1.5 * NODECACHE_MAX_AGE_S, &got, &n) == 0)
			nc_kept++;
	}
	for (id = 1; id <= 64; id++) {
		CHECK((l = membercache_get(mc, id, MEMBERCACHE_MAX_AGE_S - 1.)) != NULL);
		if (l != NULL)
			membercache_unpin(mc, l);
		if ((l = membercache_get(mc, id, 1.5 * MEMBERCACHE_MAX_AGE_S)) != NULL) {
			membercache_unpin(mc, l);
			mc_kept++;
		}
	}
	/* about half each */
	CHECK(mc_kept > 8 && mc_kept < 56);
	CHECK(nc_kept > 8 && nc_kept < 56);
	membercache_free(mc);
	nodecache_free(nc);
}

static void
test_netcache(void)
{
	struct netcache *nc = netcache_new(2);
	struct store_network n, got;

	memset(&n, 0, sizeof(n));
	n.id = 7;
	snprintf(n.name, sizeof(n.name), "lan");
	n.flags = 1;
	CHECK_EQ(netcache_get(nc, "lan", 0., &got), -1);
	netcache_put(nc, &n, 0.);
	CHECK_EQ(netcache_get(nc, "lan", NETCACHE_MAX_AGE_S - 1., &got), 0);
	CHECK_EQ(got.id, 7);
	CHECK_EQ(got.flags, 1);
	CHECK_EQ(netcache_get(nc, "LAN", 0., &got), -1);        /* names are exact */
	n.flags = 2;
	netcache_put(nc, &n, 0.);                               /* replaced, not added */
	CHECK_EQ(netcache_count(nc), 1);
	CHECK_EQ(netcache_get(nc, "lan", 0., &got), 0);
	CHECK_EQ(got.flags, 2);
	CHECK_EQ(netcache_get(nc, "lan", 2 * NETCACHE_MAX_AGE_S + 1., &got), -1);
	CHECK_EQ(netcache_count(nc), 0);                        /* too old: it went */
	/* budget 2: a third copy clears the others first */
	netcache_put(nc, &n, 0.);
	snprintf(n.name, sizeof(n.name), "b");
	netcache_put(nc, &n, 0.);
	snprintf(n.name, sizeof(n.name), "c");
	netcache_put(nc, &n, 0.);
	CHECK_EQ(netcache_count(nc), 1);
	CHECK_EQ(netcache_get(nc, "c", 0., &got), 0);
	netcache_clear(nc);
	CHECK_EQ(netcache_get(nc, "c", 0., &got), -1);
	netcache_free(nc);
}

int
main(void)
{
	RUN(test_hit_and_changes);
	RUN(test_pinned);
	RUN(test_age_and_budget);
	RUN(test_nodecache);
	RUN(test_spread);
	RUN(test_netcache);
	return unit_finish();
}
