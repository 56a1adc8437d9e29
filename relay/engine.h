/*
 * engine: the relay's forwarding state, without sockets or clocks (relay/main.c and the
 * mediator's embedded relay feed it datagrams and the time). docs/PROTOCOL.md 8.
 *
 * A pair is created by the first valid BIND of either side and holds each side's endpoint
 * (a UDP source, or a TCP stream of relay/tcp.c: endpoint.via tells them apart).
 * DATA from a bound side's endpoint goes, byte for byte, to the other side's endpoint; nothing
 * else is ever forwarded, so the relay is not an open proxy: both ends were named by the
 * mediator (a BIND needs the side secret only the mediator and this relay can derive). Pairs
 * end at their grant's expiry (the mediator grants again before then).
 *
 * Owns: the pair table and the source table. Must not: read a clock, touch sockets.
 */
#ifndef SHOAL_RELAY_ENGINE_H
#define SHOAL_RELAY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "mproto/relaymsg.h"

enum {
	RELAY_MAX_PAIRS = 65536,
	RELAY_GRANT_MAX_S = 86400,      /* a BIND whose expiry is further away is refused */
};

struct relay_engine;

struct relay_engine_ops {
	/* One datagram out (pkt is only valid during the call). */
	void (*send)(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len);
};

struct relay_limits {
	/* Per node: per source endpoint (a node binds all its pairs at this relay from its one
	 * socket or TCP stream), shared by all its pairs; bytes/s of DATA; 0: unlimited. */
	double rate_bytes;
	double burst_bytes;
};

struct relay_stats {
	uint64_t pairs;                 /* now */
	uint64_t sources;               /* now: endpoints sides are bound from (nodes) */
	uint64_t binds, packets, bytes; /* forwarded DATA packets and their bytes */
	uint64_t drop_malformed, drop_auth, drop_expired, drop_replay, drop_unbound;
	uint64_t drop_rate, drop_full, pings;
};

struct relay_engine *relay_engine_new(const uint8_t key[RELAY_KEY_LEN],
    const struct relay_limits *lim, const struct relay_engine_ops *ops, void *arg);
void relay_engine_free(struct relay_engine *e);
/* A new relay key (the mediator rotates it); grants made with the old one keep working until
 * their pairs expire, new BINDs need the new one. */
void relay_engine_set_key(struct relay_engine *e, const uint8_t key[RELAY_KEY_LEN]);
/* One datagram from `from`; now: monotonic seconds (rates), unix_now: seconds (grants). */
void relay_engine_input(struct relay_engine *e, const struct endpoint *from, const uint8_t *pkt,
    size_t len, double now, uint32_t unix_now);
/* Drops pairs whose grant ended. */
void relay_engine_expire(struct relay_engine *e, uint32_t unix_now);
void relay_engine_get_stats(const struct relay_engine *e, struct relay_stats *st);
/* The counters as RELAY_STATS carries them to the mediator (drops: all reasons summed). */
void relay_stats_to_msg(const struct relay_stats *st, struct msg_relay_stats *out);

#endif
