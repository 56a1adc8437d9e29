/*
 * relayclient: the daemon's side of relays (PROTOCOL.md 8). Two jobs:
 *
 * The pool (MSG_RELAYS): every relay is pinged (RELAY_PING from the peer UDP socket) every
 * RC_POOL_PING_S (the first RC_SAMPLES pings a second apart); the median of its last RC_SAMPLES RTTs is reported to the mediator
 * (MSG_RELAY_RTT through ops->report) after the first measurement, when a value moves by more
 * than 20 % and 5 ms, when a relay becomes unreachable or reachable, and every RC_REPORT_S.
 * A relay that misses RC_POOL_MISSES pings in a row is reported RELAY_RTT_UNREACHABLE.
 *
 * Grants (MSG_RELAY_GRANT, one per peer): the grant's pair is bound at its relay (RELAY_BIND,
 * counter strictly increasing, resent every RC_BIND_RETRY_S until acknowledged, renewed every
 * RC_REBIND_S: it keeps our NAT binding and the relay's pair), and a transport link is
 * registered for it: a datagram sent to the link's endpoint {relay address, port, via} leaves
 * as RELAY_DATA (the 12-byte header then the datagram); a RELAY_DATA of the pair that arrives
 * from the relay enters transport_link_input as a datagram from that endpoint. So the relay is
 * one more endpoint of the peer; ops->path gives it to the peer layer (peers_set_relay). A
 * relay in use is pinged every RC_USE_PING_S; silent for RC_USE_DEAD_S (no PONG, BIND_ACK nor
 * DATA) it is reported unreachable at once, so the mediator grants another relay. A standby
 * grant (the pair is direct) costs a BIND every RC_REBIND_IDLE_S, and a ping every
 * RC_IDLE_PING_S only while the relay answered no other ping of ours (a pool or grant ping
 * to the same endpoint) in that time: the standby grants of one relay share one ping.
 *
 * TCP (8.5): when the relay's UDP does not answer (no BIND_ACK after RC_TCP_AFTER_S) and the
 * grant names a tcp_port, the pair moves to a TCP connection to the relay (core/tcplink.c,
 * tcpframe framing) carrying the same relay datagrams; the link's endpoint stays the same kind.
 *
 * Owns: the pool, the grants, their links and TCP connections, one timer.
 * Borrows: the loop and the transport (must outlive it).
 */
#ifndef SHOAL_RELAYCLIENT_H
#define SHOAL_RELAYCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct transport;
struct relayclient;

#define RC_POOL_PING_S          10.0
/* A grant the peer layer sent through within RC_IN_USE_S is in use: pinged every
 * RC_USE_PING_S, silent for RC_USE_DEAD_S it is dead; a standby grant (the pair is direct) is
 * pinged every RC_IDLE_PING_S, dead after RC_IDLE_DEAD_S, rebound every RC_REBIND_IDLE_S. */
#define RC_IN_USE_S             10.0
#define RC_USE_PING_S           0.5
#define RC_USE_DEAD_S           1.5
#define RC_IDLE_PING_S          5.0
#define RC_IDLE_DEAD_S          15.0
#define RC_REBIND_IDLE_S        20.0
#define RC_REPORT_S             60.0
/* Renewed this often: it keeps our NAT binding and the relay's pair, and a node whose public
 * address changed (renumbered, a NAT that remapped it) is found at its new one within this. */
#define RC_REBIND_S             2.0
#define RC_BIND_RETRY_S         1.0
#define RC_TCP_AFTER_S          2.5
enum { RC_SAMPLES = 5, RC_POOL_MISSES = 3 };

struct relayclient_ops {
	/* Send this MSG_RELAY_RTT to the mediator. */
	void (*report)(void *arg, const struct msg_relay_rtt *r);
	/* The peer key is reachable through ep (a link of ours); NULL: no relay any more. */
	void (*path)(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep);
};

struct relayclient *relayclient_new(struct ev_loop *loop, struct transport *tp,
    const struct relayclient_ops *ops, void *arg);
void relayclient_free(struct relayclient *rc);

/* MSG_RELAYS: the full pool (replaces the last one; relays no longer in it are forgotten,
 * grants through them stay until revoked). The mediator sends it after every WELCOME, so the
 * next report then goes at once with everything we know (it forgot our last one). */
void relayclient_pool(struct relayclient *rc, const struct msg_relays *m);
/* MSG_RELAY_GRANT (relay_id 0: revoke). */
void relayclient_grant(struct relayclient *rc, const struct msg_relay_grant *g);
/* The peer (re)entered the table: if its grant is ready, ops->path is told again (a grant may
 * arrive before the member record that authorizes the peer). */
void relayclient_announce(struct relayclient *rc, const uint8_t key[KEY_LEN]);
/* The peer left the table: its grant and link go. */
void relayclient_forget(struct relayclient *rc, const uint8_t key[KEY_LEN]);
/* A datagram of types 24..28 from the transport (the owner routes them here). */
void relayclient_receive(struct relayclient *rc, const struct endpoint *from, uint8_t *pkt,
    size_t len);

/* For `shoal list` / `shoal status`. */
struct relayclient_peer {
	uint16_t relay_id;
	char name[RELAY_NAME_MAX_LEN + 1];      /* "" when the pool does not name it */
	uint8_t reason;                         /* enum relay_reason */
	int bound;                              /* BIND acknowledged */
	int tcp;                                /* over TCP to the relay */
};
/* 0 and *out filled when the peer key has a grant, -1 otherwise. */
int relayclient_peer_info(const struct relayclient *rc, const uint8_t key[KEY_LEN],
    struct relayclient_peer *out);

struct relayclient_relay {
	uint16_t id;
	char name[RELAY_NAME_MAX_LEN + 1];
	struct endpoint udp;
	uint16_t tcp_port;
	int rtt_ms;                             /* median; -1 unknown or unreachable */
	int reachable;
};
/* The pool, up to max entries; returns how many were written. */
size_t relayclient_relays(const struct relayclient *rc, struct relayclient_relay *out, size_t max);

#endif
