/*
 * portmap: asks the LAN gateway to map a public UDP port to our peer UDP socket, so peers
 * behind any NAT can reach us (docs/PROTOCOL.md 3.4). NAT-PMP (libnatpmp) first, UPnP-IGD
 * (miniupnpc) second; a lease of PORTMAP_LEASE_S renewed at half its life; removed again by
 * portmap_free. A gateway that answers neither is retried every PORTMAP_RETRY_S.
 *
 * Both libraries block (UPnP discovery alone waits up to 2 s), so every exchange with the
 * gateway runs on a worker thread, one at a time; its result comes back to the loop through
 * an ev_async, and only after the thread is joined does the loop read it. Nothing else is
 * shared with the thread. What the engine learns leaves through struct portmap_ops.
 *
 * Owns: the worker thread, the gateway's UPnP description (between exchanges), the lease
 * timer. Everything but the worker runs on the loop given to portmap_new.
 */
#ifndef SHOAL_PORTMAP_H
#define SHOAL_PORTMAP_H

#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct portmap;

enum {
	PORTMAP_LEASE_S = 3600,         /* asked for; the gateway may give less */
	PORTMAP_RETRY_S = 300,          /* after a failure: no gateway now, maybe later */
	PORTMAP_ERR_LEN = 96,
};

enum portmap_state {
	PORTMAP_OFF = 0,                /* never started (or disabled) */
	PORTMAP_TRYING,                 /* the first exchange is running */
	PORTMAP_MAPPED,                 /* ext is ours until the lease ends */
	PORTMAP_FAILED,                 /* error says why; retried later */
};

enum portmap_proto { PORTMAP_PROTO_NONE = 0, PORTMAP_PROTO_NATPMP, PORTMAP_PROTO_UPNP };

struct portmap_info {
	enum portmap_state state;
	enum portmap_proto proto;       /* PORTMAP_MAPPED: the protocol that made it */
	struct endpoint ext;            /* PORTMAP_MAPPED: the public endpoint */
	double lease_left;              /* PORTMAP_MAPPED: seconds until it ends unless renewed */
	char error[PORTMAP_ERR_LEN];    /* PORTMAP_FAILED: "no gateway", ... */
};

struct portmap_ops {
	/* The public endpoint changed: a new mapping (ext), or none any more (ext NULL). */
	void (*changed)(void *arg, const struct endpoint *ext);
};

/* port: our peer UDP socket's local port. ops is borrowed (usually a static const). NULL on
 * allocation failure. */
struct portmap *portmap_new(struct ev_loop *loop, uint16_t port, const struct portmap_ops *ops,
    void *arg);
/* NAT-PMP at this gateway (host byte order) instead of the default route's, and no UPnP
 * discovery: for a user who names the gateway, and for tests. Before portmap_start. */
void portmap_set_gateway(struct portmap *pm, uint32_t gw);
/* Starts the first exchange. */
void portmap_start(struct portmap *pm);
/* Waits for a running exchange, removes the mapping and frees: blocks the caller for up to a
 * few seconds (UPnP discovery 2 s, then the gateway's HTTP; NAT-PMP 1.5 s), so only at
 * shutdown. ops->changed is not called. NULL is fine. */
void portmap_free(struct portmap *pm);
void portmap_info(const struct portmap *pm, struct portmap_info *out);
/* "nat-pmp", "upnp" or "none"; "off", "trying", "mapped", "failed". */
const char *portmap_proto_name(enum portmap_proto p);
const char *portmap_state_name(enum portmap_state s);

#endif
