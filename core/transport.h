/*
 * transport: the daemon's UDP sockets for peers and mediator probes (IPv4, and IPv6 beside it). Receives in batches
 * (recvmmsg) and hands each datagram to the dispatch callback; sends are queued and flushed in
 * batches (sendmmsg) at the end of each loop iteration, so one lwIP burst is one syscall
 * (base/udpbatch.h). Where the kernel allows, equal-size datagrams to one endpoint leave as
 * one UDP GSO message and arrive through UDP GRO; the wire format does not change. Other
 * modules add links (below) so one endpoint type and one send call reach peers whichever way.
 * Owns: the socket, its watchers, the batch buffers (allocated once, no per-packet malloc) and
 * the link table (not the links).
 */
#ifndef SHOAL_TRANSPORT_H
#define SHOAL_TRANSPORT_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

struct transport;

/* One received datagram; pkt is valid only during the call (the callee may modify it). */
typedef void (*transport_recv_cb)(void *arg, const struct endpoint *from, uint8_t *pkt,
    size_t len);

/* Binds 0.0.0.0:port (0 = ephemeral), and [::]:that port (IPV6_V6ONLY) when the host has
 * IPv6 (without it: logged once, not an error). NULL on error (logged). */
struct transport *transport_new(struct ev_loop *loop, uint16_t port, transport_recv_cb cb,
    void *arg);
/* The same on one local IPv4 address (host order; 0 = any), IPv4 only: relays listen where
 * told. */
struct transport *transport_new_at(struct ev_loop *loop, uint32_t addr, uint16_t port,
    transport_recv_cb cb, void *arg);
void transport_free(struct transport *t);
/* 1 if the IPv6 socket exists (IPv6 endpoints are sent through it; else dropped). */
int transport_has_v6(const struct transport *t);
uint16_t transport_port(const struct transport *t);
/* Queues one datagram (copied). Returns 0, or -1 if len > UDP_MAX_PAYLOAD. */
int transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt,
    size_t len);
/*
 * Zero-copy variant of transport_send, for callers that build the datagram themselves (the
 * data path seals straight into the slot, so nothing is copied after encryption).
 * transport_alloc reserves the next send slot for `to` and returns its UDP_MAX_PAYLOAD-byte
 * buffer, or NULL when the ring is full and the kernel is not draining (counted as
 * tx_dropped). transport_commit(t, len) queues it with len bytes; len 0 abandons it. At most
 * one slot is reserved at a time, and nothing else may be called on t in between.
 */
uint8_t *transport_alloc(struct transport *t, const struct endpoint *to);
void transport_commit(struct transport *t, size_t len);
/* Sends everything queued now (also done automatically before the loop blocks). */
void transport_flush(struct transport *t);
/*
 * Links: other ways to reach a peer than the UDP socket (a birthday-punch socket, a punched TCP
 * stream), each owned by the module that made it. An endpoint whose via is non-zero names a
 * link: transport_send / transport_alloc+commit to it call the link's send, and the link hands
 * what it receives to transport_link_input, which delivers it to the recv callback as a
 * datagram from {addr, port, via}. Sessions and paths need not know which they use. A via is
 * not reused until the 65535 others have been handed out, so a stale endpoint naming a deleted
 * link drops its packets (counted as tx_dropped) rather than reaching another link.
 */
struct transport_link_ops {
	/* One datagram to `to` (whose via is this link). 0, or -1 when dropped. */
	int (*send)(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len);
	/* What carries it, for `shoal list`: "tcp"; NULL means datagrams ("udp"). */
	const char *kind;
};
/* The new link's via (1..65535), or 0 when out of memory. */
uint16_t transport_link_add(struct transport *t, const struct transport_link_ops *ops,
    void *arg);
void transport_link_del(struct transport *t, uint16_t via);
/* "udp" for via 0 or a link without a kind, the link's ops->kind for another, NULL for a via
 * that names no link (it was deleted: nothing reaches that endpoint any more). */
const char *transport_link_kind(const struct transport *t, uint16_t via);
/* Delivers one datagram that arrived over link `via` from addr:port (pkt may be modified). */
void transport_link_input(struct transport *t, uint16_t via, uint32_t addr, uint16_t port,
    uint8_t *pkt, size_t len);

/* Our candidates: the IPv4 addresses of our interfaces (non-loopback first), then our global
 * IPv6 addresses (at most ENDPOINTS_V6_MAX, room kept for them) when the IPv6 socket exists. */
size_t transport_local_endpoints(const struct transport *t, struct endpoint *out, size_t max);

/* Packets count datagrams even when the kernel carried several in one GSO/GRO buffer. */
struct transport_stats {
	uint64_t rx_packets, tx_packets, rx_batches, tx_batches, tx_dropped;
	uint64_t link_rx, link_tx;      /* datagrams over links (also in rx/tx_packets) */
	unsigned links;                 /* links registered now */
};
void transport_get_stats(const struct transport *t, struct transport_stats *st);

#endif
