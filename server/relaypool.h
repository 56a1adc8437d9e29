/*
 * relaypool: the mediator's pool of relays (PROTOCOL.md 8.1, 8.2): who registered, where nodes
 * reach them, their load, and whether they are alive. Pure: no I/O; the caller passes the
 * clock (monotonic seconds).
 *
 * A relay is known by its static key (the Noise key of its control connection; the embedded
 * relay has none). Its id and relay key are made on its first registration and kept for the
 * mediator's lifetime: a relay that reconnects gets the same id and key, so the grants already
 * out for it stay valid while it was away. Ids are never reused. A relay is alive while its
 * control connection is up and its RELAY_STATS keep coming (RELAYPOOL_DEAD_AFTER).
 *
 * Owns: the entries (at most RELAYPOOL_MAX, alive or not; the oldest dead one makes room).
 */
#ifndef SHOAL_SERVER_RELAYPOOL_H
#define SHOAL_SERVER_RELAYPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "mproto/relaymsg.h"

#define RELAYPOOL_DEAD_AFTER 10.0       /* s without RELAY_STATS: dead */
#define RELAYPOOL_LOG_EVERY 60.0        /* s: one counters line per relay at most this often */

enum {
	RELAYPOOL_MAX = 2 * RELAY_POOL_MAX,     /* entries kept, dead ones included */
};

struct relaypool_entry {
	uint16_t id;                    /* 1..65535 */
	char name[RELAY_NAME_MAX_LEN + 1];
	int embedded;                   /* in-process: no static key, no connection */
	uint8_t static_key[KEY_LEN];    /* who it is (not embedded) */
	uint8_t relay_key[RELAY_KEY_LEN];       /* its grants' secrets are derived from it */
	struct endpoint udp;            /* addr 0: the address each node reached the mediator on */
	uint16_t tcp_port;              /* 0: none */
	int alive;
	double last_seen;               /* registration or last RELAY_STATS */
	double logged_at;               /* last counters line */
	void *conn;                     /* its control session (mediator's), NULL when dead */
	struct msg_relay_stats stats;   /* the latest RELAY_STATS */
};

struct relaypool;

struct relaypool *relaypool_new(void);
void relaypool_free(struct relaypool *p);

/*
 * A relay registers (static_key NULL: the embedded one). Returns its entry (alive, with its id
 * and relay key; name, endpoints and conn updated), or NULL when the pool is full of live
 * relays or the ids ran out.
 */
struct relaypool_entry *relaypool_register(struct relaypool *p, const uint8_t *static_key,
    const char *name, const struct endpoint *udp, uint16_t tcp_port, void *conn, double now);
/* New RELAY_STATS from a live relay. Returns 1 when the counters line is due (once every
 * RELAYPOOL_LOG_EVERY per relay), else 0. */
int relaypool_stats(struct relaypool *p, struct relaypool_entry *e,
    const struct msg_relay_stats *st, double now);
/* The relay's control connection is gone: dead now. Returns 1 if it was alive. */
int relaypool_down(struct relaypool *p, struct relaypool_entry *e);
/* Marks dead every relay silent for RELAYPOOL_DEAD_AFTER. Returns how many died. */
int relaypool_expire(struct relaypool *p, double now);

struct relaypool_entry *relaypool_find(struct relaypool *p, uint16_t id);
struct relaypool_entry *relaypool_find_conn(struct relaypool *p, const void *conn);
/* The live relays, ids ascending: up to max entries in out; returns how many. */
size_t relaypool_alive(struct relaypool *p, struct relaypool_entry **out, size_t max);
/* MSG_RELAYS for a node that reached the mediator on local_addr (fills in addr-0 relays).
 * Relays that would still have address 0 are left out. */
void relaypool_msg(struct relaypool *p, uint32_t local_addr, struct msg_relays *out);

#endif
