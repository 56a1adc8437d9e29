/*
 * hslimit: handshake packets cost a few X25519 operations each; data packets are not limited
 * (they are cheap to reject by index). One token bucket for all sources measures the load:
 * while it has tokens nothing is limited, so a LAN party of 80 nodes behind one address all
 * connect at once. Under load a token bucket per source IPv4 address applies (WireGuard's
 * model: under load, handshake.c answers message 1 without a valid cookie MAC (mac2) with a
 * cookie instead, so what reaches the per-source buckets comes from addresses that answer).
 * A source is ep_source_key(): an IPv4 address, or for IPv6 a hash of its /64.
 * Idle buckets are collected once a second; the table is capped so spoofed sources cannot
 * grow it without bound (over the cap, new sources are refused until the next collection).
 * Owns: the bucket table and its collection timer. Must not: know anything about peers.
 */
#include "config.h"

#include <stdlib.h>
#include <uthash.h>

#include "core/peer_impl.h"

enum { RL_MAX_ENTRIES = 8192 };
#define RL_GC_INTERVAL 1.0

struct rl_bucket {
	uint32_t addr;                  /* hash key */
	double tokens;
	double last;
	UT_hash_handle hh;
};

/* Owned by struct peers. */
struct hslimit {
	struct ev_loop *loop;
	ev_timer gc;
	double rate, burst;
	double load_rate, load_burst, load_tokens, load_last;
	struct rl_bucket *table;
	size_t n;
};

static void
rl_gc_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hslimit *rl = w->data;
	struct rl_bucket *b, *tmp;
	double now = ev_now(loop);

	/* A bucket that would be full again carries no information: forget it. */
	HASH_ITER(hh, rl->table, b, tmp) {
		if (b->tokens + (now - b->last) * rl->rate >= rl->burst) {
			HASH_DEL(rl->table, b);
			free(b);
			rl->n--;
		}
	}
	if (rl->n == 0)
		ev_timer_stop(loop, &rl->gc);
}

struct hslimit *
hslimit_new(struct ev_loop *loop, double rate, double burst, double load_rate,
    double load_burst)
{
	struct hslimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->loop = loop;
	rl->rate = rate;
	rl->burst = burst;
	rl->load_rate = load_rate;
	rl->load_burst = load_burst;
	rl->load_tokens = load_burst;
	ev_timer_init(&rl->gc, rl_gc_cb, RL_GC_INTERVAL, RL_GC_INTERVAL);
	rl->gc.data = rl;
	return rl;
}

void
hslimit_free(struct hslimit *rl)
{
	struct rl_bucket *b, *tmp;

	if (rl == NULL)
		return;
	ev_timer_stop(rl->loop, &rl->gc);
	HASH_ITER(hh, rl->table, b, tmp) {
		HASH_DEL(rl->table, b);
		free(b);
	}
	free(rl);
}

int
hslimit_loaded(struct hslimit *rl, double now)
{
	if (now > rl->load_last) {
		rl->load_tokens += (now - rl->load_last) * rl->load_rate;
		if (rl->load_tokens > rl->load_burst)
			rl->load_tokens = rl->load_burst;
		rl->load_last = now;
	}
	if (rl->load_tokens >= 1.0) {
		rl->load_tokens -= 1.0;
		return 0;
	}
	return 1;
}

void
hslimit_set_load(struct hslimit *rl, double load_rate, double load_burst)
{
	rl->load_rate = load_rate;
	rl->load_burst = load_burst;
	if (rl->load_tokens > load_burst)
		rl->load_tokens = load_burst;
}

int
hslimit_allow(struct hslimit *rl, uint32_t addr, double now)
{
	return !hslimit_loaded(rl, now) || hslimit_allow_ip(rl, addr, now);
}

int
hslimit_allow_ip(struct hslimit *rl, uint32_t addr, double now)
{
	struct rl_bucket *b;

	HASH_FIND(hh, rl->table, &addr, sizeof(addr), b);
	if (b == NULL) {
		if (rl->n >= RL_MAX_ENTRIES || (b = calloc(1, sizeof(*b))) == NULL)
			return 0;
		b->addr = addr;
		b->tokens = rl->burst;
		b->last = now;
		HASH_ADD(hh, rl->table, addr, sizeof(b->addr), b);
		rl->n++;
		if (!ev_is_active(&rl->gc))
			ev_timer_start(rl->loop, &rl->gc);
	}
	b->tokens += (now - b->last) * rl->rate;
	if (b->tokens > rl->burst)
		b->tokens = rl->burst;
	b->last = now;
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}
