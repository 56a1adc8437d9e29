/*
 * engine: see engine.h. One hash of pairs by id. A BIND's secret is derived from its own
 * fields, so verifying costs one BLAKE2b derivation and one MAC; DATA costs a hash lookup, an
 * endpoint compare and a token-bucket update.
 */
#include "config.h"
#include "relay/engine.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct side {
	int bound;
	struct endpoint ep;
	uint64_t counter;               /* the last BIND accepted */
	double tokens, tokens_at;       /* rate limit of what this side sends */
};

struct pair {                            /* owned by struct relay_engine */
	uint64_t id;
	uint32_t expiry;
	struct side side[2];
	UT_hash_handle hh;
};

struct relay_engine {
	uint8_t key[RELAY_KEY_LEN];
	struct relay_limits lim;
	struct relay_engine_ops ops;
	void *arg;
	struct pair *pairs;
	struct relay_stats st;
};

struct relay_engine *
relay_engine_new(const uint8_t key[RELAY_KEY_LEN], const struct relay_limits *lim,
    const struct relay_engine_ops *ops, void *arg)
{
	struct relay_engine *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	memcpy(e->key, key, RELAY_KEY_LEN);
	if (lim)
		e->lim = *lim;
	e->ops = *ops;
	e->arg = arg;
	return e;
}

static void
pair_drop(struct relay_engine *e, struct pair *p)
{
	HASH_DEL(e->pairs, p);
	free(p);
	e->st.pairs--;
}

void
relay_engine_free(struct relay_engine *e)
{
	struct pair *p, *tmp;

	if (e == NULL)
		return;
	HASH_ITER(hh, e->pairs, p, tmp)
		pair_drop(e, p);
	sodium_memzero(e->key, sizeof(e->key));
	free(e);
}

void
relay_engine_set_key(struct relay_engine *e, const uint8_t key[RELAY_KEY_LEN])
{
	memcpy(e->key, key, RELAY_KEY_LEN);
}

/* via tells a UDP source from a TCP stream (relay/tcp.c) that may have the same address and
 * port: each is its own source, answered on the link it came from. */
static int
ep_eq(const struct endpoint *a, const struct endpoint *b)
{
	return a->addr == b->addr && a->port == b->port && a->via == b->via;
}

static void
on_bind(struct relay_engine *e, const struct endpoint *from, const uint8_t *pkt, size_t len,
    double now, uint32_t unix_now)
{
	uint8_t secret[RELAY_SECRET_LEN], out[RELAY_BIND_ACK_LEN];
	struct relay_bind b;
	struct relay_bind_ack ack;
	struct side *sd;
	struct pair *p;
	int n;

	if (relay_bind_decode(pkt, len, &b) != 0) {
		e->st.drop_malformed++;
		return;
	}
	if (b.expiry < unix_now || b.expiry > unix_now + RELAY_GRANT_MAX_S) {
		e->st.drop_expired++;
		return;
	}
	relaymsg_side_secret(e->key, b.pair, b.side, b.expiry, secret);
	if (relay_bind_verify(pkt, len, secret) != 0) {
		e->st.drop_auth++;
		goto out;
	}
	HASH_FIND(hh, e->pairs, &b.pair, sizeof(b.pair), p);
	if (p == NULL) {
		if (e->st.pairs >= RELAY_MAX_PAIRS || (p = calloc(1, sizeof(*p))) == NULL) {
			e->st.drop_full++;
			goto out;
		}
		p->id = b.pair;
		HASH_ADD(hh, e->pairs, id, sizeof(p->id), p);
		e->st.pairs++;
	}
	sd = &p->side[b.side];
	if (sd->bound && b.counter <= sd->counter) {
		e->st.drop_replay++;
		goto out;
	}
	/* A later grant of the same pair (the mediator re-granted) extends it. */
	if (b.expiry > p->expiry)
		p->expiry = b.expiry;
	if (!sd->bound || !ep_eq(&sd->ep, from)) {
		sd->tokens = e->lim.burst_bytes;
		sd->tokens_at = now;
	}
	sd->bound = 1;
	sd->ep = *from;
	sd->counter = b.counter;
	e->st.binds++;
	memset(&ack, 0, sizeof(ack));
	ack.pair = b.pair;
	ack.side = b.side;
	ack.peer_bound = p->side[!b.side].bound ? 1 : 0;
	ack.counter = b.counter;
	if ((n = relay_bind_ack_encode(&ack, secret, out, sizeof(out))) > 0)
		e->ops.send(e->arg, from, out, (size_t)n);
out:
	sodium_memzero(secret, sizeof(secret));
}

/* Whether side sd may send len more bytes now (token bucket). */
static int
rate_ok(const struct relay_engine *e, struct side *sd, size_t len, double now)
{
	if (e->lim.rate_bytes <= 0)
		return 1;
	sd->tokens += (now - sd->tokens_at) * e->lim.rate_bytes;
	sd->tokens_at = now;
	if (sd->tokens > e->lim.burst_bytes)
		sd->tokens = e->lim.burst_bytes;
	if (sd->tokens < (double)len)
		return 0;
	sd->tokens -= (double)len;
	return 1;
}

static void
on_data(struct relay_engine *e, const struct endpoint *from, const uint8_t *pkt, size_t len,
    double now, uint32_t unix_now)
{
	struct pair *p;
	uint64_t id;
	int s;

	if (relay_data_decode(pkt, len, &id) != 0) {
		e->st.drop_malformed++;
		return;
	}
	HASH_FIND(hh, e->pairs, &id, sizeof(id), p);
	if (p == NULL) {
		e->st.drop_unbound++;
		return;
	}
	if (p->expiry < unix_now) {
		e->st.drop_expired++;
		pair_drop(e, p);
		return;
	}
	/* Only a bound endpoint of this very pair may send on it. */
	if (p->side[0].bound && ep_eq(&p->side[0].ep, from))
		s = 0;
	else if (p->side[1].bound && ep_eq(&p->side[1].ep, from))
		s = 1;
	else {
		e->st.drop_unbound++;
		return;
	}
	if (!p->side[!s].bound) {
		e->st.drop_unbound++;
		return;
	}
	if (!rate_ok(e, &p->side[s], len, now)) {
		e->st.drop_rate++;
		return;
	}
	e->st.packets++;
	e->st.bytes += len;
	e->ops.send(e->arg, &p->side[!s].ep, pkt, len);
}

void
relay_engine_input(struct relay_engine *e, const struct endpoint *from, const uint8_t *pkt,
    size_t len, double now, uint32_t unix_now)
{
	uint8_t out[RELAY_PING_LEN];
	uint64_t nonce;

	if (len < 4) {
		e->st.drop_malformed++;
		return;
	}
	switch (pkt[0]) {
	case UDP_RELAY_DATA:
		on_data(e, from, pkt, len, now, unix_now);
		break;
	case UDP_RELAY_BIND:
		on_bind(e, from, pkt, len, now, unix_now);
		break;
	case UDP_RELAY_PING:
		/* Same size back: no amplification. Nodes measure their RTT to us with it. */
		if (relay_ping_decode(pkt, len, UDP_RELAY_PING, &nonce) != 0 ||
		    relay_ping_encode(UDP_RELAY_PONG, nonce, out, sizeof(out)) < 0) {
			e->st.drop_malformed++;
			break;
		}
		e->st.pings++;
		e->ops.send(e->arg, from, out, sizeof(out));
		break;
	default:
		e->st.drop_malformed++;
		break;
	}
}

void
relay_engine_expire(struct relay_engine *e, uint32_t unix_now)
{
	struct pair *p, *tmp;

	HASH_ITER(hh, e->pairs, p, tmp)
		if (p->expiry < unix_now)
			pair_drop(e, p);
}

void
relay_engine_get_stats(const struct relay_engine *e, struct relay_stats *st)
{
	*st = e->st;
}

void
relay_stats_to_msg(const struct relay_stats *st, struct msg_relay_stats *out)
{
	out->pairs = st->pairs > UINT32_MAX ? UINT32_MAX : (uint32_t)st->pairs;
	out->packets = st->packets;
	out->bytes = st->bytes;
	out->drops = st->drop_malformed + st->drop_auth + st->drop_expired + st->drop_replay +
	    st->drop_unbound + st->drop_rate + st->drop_full;
}
