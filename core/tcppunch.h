/*
 * tcppunch: TCP hole punching (PROTOCOL.md 3.3) for the mediator's PUNCH with strategy `tcp`:
 * at the planned instant, connect from our TCP punch port (the local port of the mediator
 * connection, bound with SO_REUSEADDR and SO_REUSEPORT, so the NAT already has a mapping for
 * it and the mediator has seen its public side) to each target, the peer's public TCP
 * endpoint(s). The peer does the same towards us; the SYNs cross and the NATs take each for
 * the answer to their own (TCP simultaneous open), giving one connection. Each connection that
 * comes up becomes a tcplink, and the owner hears of it (ops->up) so the peer layer sends its
 * handshake through it; the sessions never know.
 *
 * Owns: the plans (one per peer), their connecting sockets and the links they made.
 * Borrows: the loop and the transport (must outlive it).
 */
#ifndef SHOAL_TCPPUNCH_H
#define SHOAL_TCPPUNCH_H

#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct transport;
struct tcppunch;

struct tcppunch_ops {
	/* A TCP connection to peer `key` is up: ep (with the link's via) reaches it. */
	void (*up)(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep);
};

struct tcppunch *tcppunch_new(struct ev_loop *loop, struct transport *tp,
    const struct tcppunch_ops *ops, void *arg);
/* Closes every socket and link (their vias leave the transport). */
void tcppunch_free(struct tcppunch *tp);

/*
 * Runs p (strategy PUNCH_TCP; anything else, or local_port 0, only cancels p->peer's running
 * plan): from start_ms, connect from local_port to every target; a connect that failed (a RST
 * from a host that had not sent its SYN yet) is tried again every interval_ms, for `rounds`
 * rounds; when the rounds are over, connects still pending are given up. The first
 * connection up closes the plan's other connects. Replaces a running plan for the same peer;
 * links already up stay. Bounds as in peers_punch: 16 targets, 10 rounds, 5 s, 20 ms..2 s.
 */
void tcppunch_start(struct tcppunch *tp, const struct msg_punch *p, uint16_t local_port);

struct tcppunch_stats {
	uint64_t connects, connected, failed;
	unsigned plans;                 /* peers with connects still planned or pending */
	unsigned links;                 /* up now */
};
void tcppunch_get_stats(const struct tcppunch *tp, struct tcppunch_stats *st);

/* A socket bound to local_port with SO_REUSEADDR and SO_REUSEPORT (so every punch connect can
 * share the port with the mediator connection), non-blocking; -1 (errno set) on error.
 * local_port 0 binds an ephemeral port no other socket has (the mediator connection's). */
int tcppunch_socket(uint16_t local_port);

#endif
