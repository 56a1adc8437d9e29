/*
 * engine: see engine.h. One hash of pairs by id, one of sources by endpoint. A BIND's secret is
 * derived from its own fields, so verifying costs one BLAKE2b derivation and one MAC; DATA
 * costs a hash lookup, an endpoint compare and a token-bucket update.
 */
#include "config.h"
#include "relay/engine.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* Where bound sides send from: a node's socket (or its TCP stream). Every pair a node has at
 * this relay is bound from it, so its token bucket is the node's rate limit, however many
 * peers it relays to. Lives while a side is bound from it. */
struct source {
	struct endpoint ep;             /* the key: ep_key() */
	uint8_t key[1 + 16 + 2 + 2];
	double tokens, tokens_at;
	unsigned refs;                  /* sides bound from here */
	UT_hash_handle hh;
};

struct side {
	int bound;
	struct endpoint ep;
	struct source *src;             /* bound: where ep's bucket is */
	uint64_t counter;               /* the last BIND accepted */
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
	struct source *sources;
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

/* Family, address, port and via: a TCP stream and a UDP source of the same address are two
 * sources (ep_equal compares via too: each is its own source, answered on the link it came
 * from). */
static void
ep_key(const struct endpoint *ep, uint8_t key[1 + 16 + 2 + 2])
{
	memset(key, 0, 1 + 16 + 2 + 2);
	if (ep_is_v6(ep)) {
		key[0] = 6;
		memcpy(key + 1, ep->addr6, 16);
	} else {
		key[0] = 4;
		memcpy(key + 1, &ep->addr, 4);
	}
	memcpy(key + 17, &ep->port, 2);
	memcpy(key + 19, &ep->via, 2);
}

/* The source ep, made with a full bucket if new; NULL when out of memory. */
static struct source *
source_get(struct relay_engine *e, const struct endpoint *ep, double now)
{
	uint8_t key[sizeof(((struct source *)0)->key)];
	struct source *src;

	ep_key(ep, key);
	HASH_FIND(hh, e->sources, key, sizeof(key), src);
	if (src != NULL)
		return src;
	if ((src = calloc(1, sizeof(*src))) == NULL)
		return NULL;
	src->ep = *ep;
	memcpy(src->key, key, sizeof(key));
	src->tokens = e->lim.burst_bytes;
	src->tokens_at = now;
	HASH_ADD(hh, e->sources, key, sizeof(src->key), src);
	e->st.sources++;
	return src;
}

static void
side_unbind(struct relay_engine *e, struct side *sd)
{
	if (sd->src != NULL && --sd->src->refs == 0) {
		HASH_DEL(e->sources, sd->src);
		free(sd->src);
		e->st.sources--;
	}
	sd->src = NULL;
	sd->bound = 0;
}

static void
pair_drop(struct relay_engine *e, struct pair *p)
{
	side_unbind(e, &p->side[0]);
	side_unbind(e, &p->side[1]);
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

static void
on_bind(struct relay_engine *e, const struct endpoint *from, const uint8_t *pkt, size_t len,
    double now, uint32_t unix_now)
{
	uint8_t secret[RELAY_SECRET_LEN], out[RELAY_BIND_ACK_LEN];
	struct relay_bind b;
	struct relay_bind_ack ack;
	struct side *sd;
	struct source *src = NULL;
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
	sd = p != NULL ? &p->side[b.side] : NULL;
	if (sd != NULL && sd->bound && b.counter <= sd->counter) {
		e->st.drop_replay++;
		goto out;
	}
	if ((sd == NULL || !sd->bound || !ep_equal(&sd->ep, from)) &&
	    (src = source_get(e, from, now)) == NULL) {
		e->st.drop_full++;
		goto out;
	}
	if (p == NULL) {
		if (e->st.pairs >= RELAY_MAX_PAIRS || (p = calloc(1, sizeof(*p))) == NULL) {
			if (src->refs == 0) {   /* made for this BIND alone */
				HASH_DEL(e->sources, src);
				free(src);
				e->st.sources--;
			}
			e->st.drop_full++;
			goto out;
		}
		p->id = b.pair;
		HASH_ADD(hh, e->pairs, id, sizeof(p->id), p);
		e->st.pairs++;
	}
	sd = &p->side[b.side];
	/* A later grant of the same pair (the mediator re-granted) extends it. */
	if (b.expiry > p->expiry)
		p->expiry = b.expiry;
	if (src != NULL) {              /* bound from a new source (a node that moved) */
		src->refs++;
		side_unbind(e, sd);
		sd->src = src;
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

/* Whether source src may send len more bytes now (token bucket). */
static int
rate_ok(const struct relay_engine *e, struct source *src, size_t len, double now)
{
	if (e->lim.rate_bytes <= 0)
		return 1;
	src->tokens += (now - src->tokens_at) * e->lim.rate_bytes;
	src->tokens_at = now;
	if (src->tokens > e->lim.burst_bytes)
		src->tokens = e->lim.burst_bytes;
	if (src->tokens < (double)len)
		return 0;
	src->tokens -= (double)len;
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
	if (p->side[0].bound && ep_equal(&p->side[0].ep, from))
		s = 0;
	else if (p->side[1].bound && ep_equal(&p->side[1].ep, from))
		s = 1;
	else {
		e->st.drop_unbound++;
		return;
	}
	if (!p->side[!s].bound) {
		e->st.drop_unbound++;
		return;
	}
	if (!rate_ok(e, p->side[s].src, len, now)) {
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
