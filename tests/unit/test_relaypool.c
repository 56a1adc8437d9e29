/*
 * Unit tests for server/relaypool: ids and relay keys per static key (kept across a
 * reconnection, never reused), the 32 live relays MSG_RELAYS can carry, dead slots made room
 * in oldest first, health by RELAY_STATS, the counters line at most once a minute, and
 * MSG_RELAYS with each node's own address for a relay advertised without one.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/relaypool.h"
#include "tests/unit/unit.h"

static struct relaypool_entry *
reg(struct relaypool *p, int k, double now)
{
	uint8_t key[KEY_LEN];
	struct endpoint udp = { 0x0a000000u + (uint32_t)k, 7003, 0 };
	char name[16];

	memset(key, k, sizeof(key));
	snprintf(name, sizeof(name), "r%d", k);
	return relaypool_register(p, key, name, &udp, 443, (void *)(intptr_t)(k + 1), now);
}

static void
test_ids_and_keys(void)
{
	struct relaypool *p = relaypool_new();
	struct relaypool_entry *a, *b, *e;
	uint8_t ka[RELAY_KEY_LEN];
	int i;

	a = reg(p, 1, 0);
	b = reg(p, 2, 0);
	CHECK(a && b && a->id == 1 && b->id == 2 && a->alive && b->alive);
	memcpy(ka, a->relay_key, sizeof(ka));
	CHECK(memcmp(a->relay_key, b->relay_key, RELAY_KEY_LEN) != 0);
	/* Down, then back: the same id and relay key (its grants stay valid). */
	CHECK_EQ(relaypool_down(p, a), 1);
	CHECK_EQ(relaypool_down(p, a), 0);
	CHECK(relaypool_find_conn(p, (void *)(intptr_t)2) == NULL);
	e = reg(p, 1, 5);
	CHECK(e == a && e->id == 1 && e->alive && memcmp(e->relay_key, ka, sizeof(ka)) == 0);
	CHECK(relaypool_find_conn(p, (void *)(intptr_t)2) == a);
	/* 32 alive at most: the 33rd is refused and uses no id. */
	for (i = 3; i <= RELAY_POOL_MAX; i++)
		CHECK(reg(p, i, 0) != NULL);
	CHECK(reg(p, 100, 0) == NULL);
	relaypool_down(p, relaypool_find(p, 3));
	e = reg(p, 100, 0);
	CHECK(e != NULL && e->id == RELAY_POOL_MAX + 1);
	relaypool_free(p);
}

static void
test_health_and_msg(void)
{
	struct relaypool *p = relaypool_new();
	struct relaypool_entry *a, *emb, *live[RELAY_POOL_MAX];
	struct msg_relay_stats st = { 3, 10, 1000, 1 };
	struct endpoint any = { 0, 7100, 0 };
	struct msg_relays m;

	a = reg(p, 1, 0);
	emb = relaypool_register(p, NULL, "embedded", &any, 7100, NULL, 0);
	CHECK(emb != NULL && emb->id == 2 && emb->embedded);
	CHECK(relaypool_register(p, NULL, "embedded", &any, 7100, NULL, 1) == emb);
	/* The first STATS logs, the next within a minute does not, one a minute later does. */
	CHECK_EQ(relaypool_stats(p, a, &st, 1), 1);
	CHECK_EQ(relaypool_stats(p, a, &st, 30), 0);
	CHECK_EQ(relaypool_stats(p, a, &st, 62), 1);
	CHECK_EQ(a->stats.pairs, 3);
	/* Silent for 10 s: dead (only the embedded one here, a spoke at 62). */
	CHECK_EQ(relaypool_expire(p, 65), 1);
	CHECK(!emb->alive && a->alive);
	CHECK_EQ(relaypool_alive(p, live, RELAY_POOL_MAX), 1);
	/* MSG_RELAYS: ids ascending, the wildcard relay at the node's address, or left out. */
	relaypool_register(p, NULL, "embedded", &any, 7100, NULL, 66);
	relaypool_msg(p, 0xc0000201u, &m);
	CHECK_EQ(m.n, 2);
	CHECK(m.relays[0].id == 1 && m.relays[0].udp.addr == 0x0a000001u);
	CHECK(m.relays[1].id == 2 && m.relays[1].udp.addr == 0xc0000201u &&
	    strcmp(m.relays[1].name, "embedded") == 0);
	relaypool_msg(p, 0, &m);
	CHECK(m.n == 1 && m.relays[0].id == 1);
	relaypool_free(p);
}

/* Dead relays keep their slots (and ids) until RELAYPOOL_MAX: then the oldest dead one goes. */
static void
test_slots(void)
{
	struct relaypool *p = relaypool_new();
	struct relaypool_entry *e;
	int i;

	for (i = 1; i <= RELAYPOOL_MAX; i++) {
		e = reg(p, i, (double)i);
		CHECK(e != NULL);
		if (e)
			relaypool_down(p, e);
	}
	e = reg(p, 200, 100);
	CHECK(e != NULL && e->id == RELAYPOOL_MAX + 1);
	/* Relay 1 (the oldest) was forgotten: it comes back as a new relay. */
	e = reg(p, 1, 101);
	CHECK(e != NULL && e->id == RELAYPOOL_MAX + 2);
	/* Relay 3 is still known. */
	e = reg(p, 3, 102);
	CHECK(e != NULL && e->id == 3);
	relaypool_free(p);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_ids_and_keys);
	RUN(test_health_and_msg);
	RUN(test_slots);
	return unit_finish();
}
