/*
 * netstack_priv: what the netstack's files share with each other (never included outside
 * netstack/). Owns struct netstack; must not be exposed through netstack.h.
 */
#ifndef SHOAL_NETSTACK_PRIV_H
#define SHOAL_NETSTACK_PRIV_H

#include <ev.h>
#include <stdint.h>

#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "netstack/netstack.h"

enum {
	NS_IO_CHUNK = 65536,            /* largest single read from a spliced fd */
	NS_CONNECT_TIMEOUT_MS = 10000,  /* default cap on lwIP's SYN retries */
};

/* Owned by the caller of netstack_new (freed with netstack_free). One per process. */
struct netstack {
	struct ev_loop *loop;
	const struct netstack_ops *ops;
	void *arg;
	struct netif netif;
	unsigned mtu;
	double connect_timeout;         /* s */

	ev_timer tick;                  /* lwIP timeouts, re-armed by ns_tick_arm */
	/* netstack_unreachable: addresses to reset on the next pass (a 0 s timer). */
	ev_timer unreach_w;
	uint32_t unreach[16];
	unsigned n_unreach;

	/* Splices with received data not yet written to their fd (splice.c). Writing from
	 * lwIP's recv callback would cost one sendmsg per 1360-byte segment; instead the data
	 * of a whole receive batch is written with one sendmsg from this prepare watcher, which
	 * runs at a higher priority than the transport's flush so that the window updates it
	 * causes leave in the same loop iteration. */
	ev_prepare out_flush;
	struct ns_splice *out_dirty;    /* singly linked through ns_splice.out_next */
	uint32_t tick_due;              /* sys_now() value the armed timer targets */

	struct netstack_stats st;
	uint64_t lwip_ip_drops_base;    /* lwIP's counters at netstack_new */

	/* Scratch, valid only inside one call: netif output linearizes chains into obuf, splices
	 * read fds into rbuf before tcp_write copies, UDP delivery linearizes into ubuf. */
	uint8_t obuf[65536];
	uint8_t rbuf[NS_IO_CHUNK];
	uint8_t ubuf[65536];
};

/* tick.c: re-arm the lwIP timer after anything that may have changed lwIP's timeouts. */
void ns_tick_init(struct netstack *ns);
void ns_tick_arm(struct netstack *ns);
void ns_tick_stop(struct netstack *ns);

/* splice.c: splice an accepted pcb with fd, which may still be connecting (listen.c). */
struct tcp_pcb;
struct ns_splice *ns_splice_accepted(struct netstack *ns, struct tcp_pcb *pcb, int fd);
/* splice.c: the out_flush watcher's setup and teardown (netif.c calls them). */
void ns_splice_flush_init(struct netstack *ns);
void ns_splice_flush_stop(struct netstack *ns);

/* Host-order uint32_t <-> lwIP address. */
void ns_ip4_from_host(ip4_addr_t *a, uint32_t host);
uint32_t ns_ip4_to_host(const ip4_addr_t *a);
/* 1 once we have a virtual address: before that nothing may leave with source 0.0.0.0. */
int ns_has_addr(const struct netstack *ns);

#endif
