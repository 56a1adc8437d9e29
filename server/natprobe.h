/*
 * natprobe: one node's NAT classification run by the mediator (docs/PROTOCOL.md 3.1): sends
 * NAT_PLAN, records the endpoint each target observed, sends the filtering and lifetime
 * UDP_NAT_TESTs, takes NAT_REPORTs, and sends NAT_INFO (natclass.c decides its content).
 * Free of sockets and of the event loop like mediator.c: everything goes through struct
 * natprobe_io, time comes in as arguments, and the one timer it needs per connection is the
 * transport's (natprobe_io.timer arms it; the transport calls back through the mediator).
 *
 * Owns: its struct natprobe. Borrows: the socket table (owned by the mediator's config).
 * Bounds: at most one classification per connection at a time; a new one (the node's public
 * address changed) starts no sooner than NATPROBE_RESTART_MIN_S after the previous plan.
 */
#ifndef SHOAL_SERVER_NATPROBE_H
#define SHOAL_SERVER_NATPROBE_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

#define NATPROBE_PHASE2_MS 1000         /* in the plan: when the node starts phase 2 */
#define NATPROBE_SETTLE_S 1.5           /* NAT_INFO this long into phase 2 ... */
#define NATPROBE_BLOCKED_S 3.0          /* ... or, with nothing observed, "blocked" at this */
#define NATPROBE_RETEST_S 0.05          /* the kind-1/2 tests go out twice, this far apart */
#define NATPROBE_LT_GRACE_S 2.0         /* a kind-3 test not reported by then was lost */
#define NATPROBE_RESTART_MIN_S 10.0

enum { NATPROBE_MAX_SOCKS = 12 };       /* 4 listen addresses x (PORT, PORT+1, PORT+2) */

/* One UDP socket of the server. */
struct natsock {
	uint32_t addr;                  /* host order; 0: wildcard (the node's TCP local address) */
	uint16_t port;
	uint8_t listen;                 /* index of its --listen */
	uint8_t offset;                 /* it is bound to that listen's PORT + offset (0..2) */
};

struct natprobe_io {
	void (*send)(void *arg, void *conn, const struct msg *m);
	/* Best effort: len bytes from socket sock (index into the table) to `to`. */
	void (*udp_send)(void *arg, int sock, const struct endpoint *to, const uint8_t *buf,
	    size_t len);
	/* (Re)arms conn's timer to fire `after` s from now; after < 0 stops it. */
	void (*timer)(void *arg, void *conn, double after);
	void *arg;
};

struct natprobe;

/*
 * The plan's targets for a node whose TCP connection has local endpoint tcp_local: the
 * listen it connected to is A, the first other listen B; order A:P, A:P+1, B:Q, B:Q+1, A:P+2,
 * B:Q+2, leaving out sockets that do not exist. Fills targets and sock_of (table index per
 * target); returns their number, 0 when target 0 cannot be built.
 */
int natprobe_targets(const struct natsock *socks, int n_socks, const struct endpoint *tcp_local,
    struct endpoint targets[NAT_MAX_TARGETS], int sock_of[NAT_MAX_TARGETS]);

/* node: 12 hex digits for logs; hello_port: HELLO's udp_port (until a report says better). */
struct natprobe *natprobe_new(const struct natprobe_io *io, void *conn, const char *node,
    const struct natsock *socks, int n_socks, const struct endpoint *tcp_local,
    uint16_t hello_port);
/* Does not touch the transport's timer: the transport stops it with the connection. */
void natprobe_free(struct natprobe *np);

/* Starts a classification (sends NAT_PLAN), or schedules one if the last plan is too recent. */
void natprobe_start(struct natprobe *np, double now);
/* A UDP_NAT_PROBE from `from` arrived on socket sock. 0: valid for the current test, answer
 * it with UDP_PROBE_REPLY from that socket; -1: drop it. */
int natprobe_probe(struct natprobe *np, const struct nat_probe *p, int sock,
    const struct endpoint *from, double now);
/* A NAT_REPORT: -1 when it is not for the current test (ignored). */
int natprobe_report(struct natprobe *np, const struct msg_nat_report *r, double now);
/* The transport's timer fired. */
void natprobe_timer(struct natprobe *np, double now);

/* The last NAT_INFO sent on this connection: 1 with *info filled, 0 none yet. */
int natprobe_info(const struct natprobe *np, struct msg_nat_info *info);
/* The node's one-way delay to the server, s: half the time from the latest NAT_PLAN to its
 * first phase-1 probe (kept across later plans until one measures again); 0 unknown. */
double natprobe_delay(const struct natprobe *np);

#endif
