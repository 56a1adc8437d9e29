/*
 * tcp: the relay's TCP transport (PROTOCOL.md 8.5), for nodes whose UDP is blocked: a
 * listening socket (base/acceptor.c) whose every connection becomes a core/tcplink, a link of
 * the relay's UDP transport. Each stream carries relay datagrams framed with core/tcpframe and
 * is one source of its own for the engine (its endpoint's via), so a pair may have one side on
 * UDP and the other on TCP. At most RELAY_TCP_PER_SOURCE streams per source address and
 * RELAY_TCP_MAX in all; a stream silent for TCPLINK_IDLE_S is closed (nodes PING the relay).
 * Owns: the listening socket, its acceptor, the links. Borrows: the loop and the transport.
 */
#ifndef SHOAL_RELAY_TCP_H
#define SHOAL_RELAY_TCP_H

#include <stdint.h>

struct ev_loop;
struct transport;
struct relay_tcp;

enum { RELAY_TCP_PER_SOURCE = 8, RELAY_TCP_MAX = 4096 };

struct relay_tcp_stats {
	uint64_t accepted, refused_source, refused_full, closed;
	unsigned streams;               /* open now */
};

/* Listens on addr:port (host order; port 0: ephemeral). NULL on error (logged). */
struct relay_tcp *relay_tcp_new(struct ev_loop *loop, struct transport *tp, uint32_t addr,
    uint16_t port);
void relay_tcp_free(struct relay_tcp *t);
uint16_t relay_tcp_port(const struct relay_tcp *t);
void relay_tcp_get_stats(const struct relay_tcp *t, struct relay_tcp_stats *st);

#endif
