/*
 * sock: a relay on one UDP socket: a transport (core/transport.h: batched receive and send,
 * GSO/GRO) feeding the engine, its TCP transport (relay/tcp.c: streams are links of that
 * transport, so the engine answers each source on the link it came from), plus the engine's housekeeping (expiring pairs every 10 s, a
 * stats line every stats_interval seconds). Used by shoal-relay and by the relay embedded in
 * shoal-server.
 * Owns: the transport, the engine, two timers.
 */
#ifndef SHOAL_RELAY_SOCK_H
#define SHOAL_RELAY_SOCK_H

#include <ev.h>
#include <stdint.h>

#include "relay/engine.h"

struct relay_sock;

/* addr: local IPv4 address in host order (0: any); port 0: ephemeral. tcp_port: the TCP
 * transport's port (0: ephemeral, -1: none; a port that cannot be had is logged and the relay
 * runs on UDP alone). stats_interval 0: no periodic stats line. NULL on
 * error (logged). */
struct relay_sock *relay_sock_new(struct ev_loop *loop, uint32_t addr, uint16_t port,
    int tcp_port, const uint8_t key[RELAY_KEY_LEN], const struct relay_limits *lim,
    double stats_interval);
/* The mediator gave a new relay key (RELAY_WELCOME): new BINDs need it. */
void relay_sock_set_key(struct relay_sock *r, const uint8_t key[RELAY_KEY_LEN]);
/* The TCP transport's port, 0 without one. */
uint16_t relay_sock_tcp_port(const struct relay_sock *r);
void relay_sock_free(struct relay_sock *r);
uint16_t relay_sock_port(const struct relay_sock *r);
/* Logs the counters as one line (also on the periodic timer). */
void relay_sock_log_stats(const struct relay_sock *r);
void relay_sock_get_stats(const struct relay_sock *r, struct relay_stats *st);

#endif
