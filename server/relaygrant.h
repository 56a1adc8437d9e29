/*
 * relaygrant: which relay each pair of nodes uses, and the grants that say so (PROTOCOL.md
 * 8.3, 8.4). The mediator reports events (a pair may talk, a pair may no longer talk, a node
 * is gone, an RTT report, the pool changed, time passed); this file keeps the per-node RTTs and
 * the per-pair state, picks with relaypick.c and sends MSG_RELAY_GRANT to both sides through
 * its ops. Pure: no sockets, no clock of its own.
 *
 * Per pair: the relay in use (0: none alive), a random pair id (new whenever the relay
 * changes), the expiry of the grants out (renewed RELAYGRANT_RENEW_BEFORE ahead) and why the
 * pair is relayed. Side 0 is the node with the lower key. A pair moves only when relaypick says
 * so (its hysteresis: no flapping) or its relay died.
 *
 * A full table: a pair that needs its relay (the plan says no punch can work, or a daemon asked
 * because its path failed) takes the place of the pair held longest as a mere standby (granted
 * while punching is tried, never needed since); that pair's sides are told to stop. A standby
 * pair, or a needy one with no standby pair left, finds a full table refused.
 *
 * Owns: the pair table (at most max_pairs), the standby pairs' list (oldest first), each
 * node's list of its pairs (so a node going away or reporting RTTs costs its own pairs, not a
 * scan of the table) and the RTT table (one entry per node that reported, dropped when the
 * node goes). Borrows: the pool.
 */
#ifndef SHOAL_SERVER_RELAYGRANT_H
#define SHOAL_SERVER_RELAYGRANT_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "server/relaypool.h"

#define RELAYGRANT_LIFETIME 3600        /* s: a grant's expiry is this far ahead */
#define RELAYGRANT_RENEW_BEFORE 600     /* s: a new grant goes out this long before expiry */
#define RELAYGRANT_RTT_EVERY 1.0        /* s: at most one RTT report per node this often */
#define RELAYGRANT_UNREACHABLE_MS 10000.0       /* a leg reported RELAY_RTT_UNREACHABLE */

enum {
	/* The default bound of the pair table: as many pairs as one relay holds (relay/engine.h's
	 * RELAY_MAX_PAIRS), so the embedded relay alone can serve every grant. A pair is ~200
	 * bytes here: 13 MB at most. */
	RELAYGRANT_MAX_PAIRS = 65536,
	RELAYGRANT_LOG_PER_S = 20,      /* relay_pick lines at info level a second */
};

struct relaygrant_ops {
	/* Send g to node `to` (it may be offline: then nothing). g->udp.addr may be 0 (the
	 * embedded relay on a wildcard address): the callee fills in the address `to` reached
	 * the mediator on. */
	void (*send)(void *arg, const uint8_t to[KEY_LEN], const struct msg_relay_grant *g);
	void *arg;
};

/* May a and b still talk (both full members of a shared network, switched on, connected)? */
typedef int (*relaygrant_ok_fn)(void *arg, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN]);

struct relaygrant_stats {
	uint64_t pairs;                 /* now */
	uint64_t grants, revokes;       /* MSG_RELAY_GRANTs sent (one per side) */
	uint64_t moves;                 /* pairs moved to another relay */
	uint64_t rtt_reports, rtt_limited;
	uint64_t full;                  /* pairs refused: table full */
	uint64_t evicted;               /* standby pairs that made room for a needed one */
};

struct relaygrant;

/* max_pairs: the pair table's bound (past it a new pair gets no relay: counted in `full`,
 * logged); 0: RELAYGRANT_MAX_PAIRS. */
struct relaygrant *relaygrant_new(struct relaypool *pool, const struct relaygrant_ops *ops,
    size_t max_pairs);
void relaygrant_free(struct relaygrant *g);

/* a and b may talk (the mediator introduced them): a new pair gets a relay and grants; an
 * existing one keeps its relay (a changed reason is sent again). A pair refused while the
 * table was full is a new pair at its next introduction. asked: a daemon of the pair asked
 * (its path failed): the pair needs its relay whatever the reason (above). */
void relaygrant_pair(struct relaygrant *g, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    uint8_t reason, int asked, uint32_t unix_now);
/* Every pair of key for which ok() says no is revoked (both sides told) and forgotten. */
void relaygrant_recheck(struct relaygrant *g, const uint8_t key[KEY_LEN], relaygrant_ok_fn ok,
    void *arg);
/* key disconnected: its RTTs are forgotten, its pairs revoked (the peers are told). */
void relaygrant_node_gone(struct relaygrant *g, const uint8_t key[KEY_LEN]);
/* An RTT report from key: kept, and key's pairs picked again. Returns 0, or -1 when over the
 * node's rate (dropped, counted). */
int relaygrant_rtt(struct relaygrant *g, const uint8_t key[KEY_LEN],
    const struct msg_relay_rtt *r, double now, uint32_t unix_now);
/* The pool changed (a relay came or died): every pair is picked again. */
void relaygrant_repick_all(struct relaygrant *g, uint32_t unix_now);
/* Grants that end within RELAYGRANT_RENEW_BEFORE are sent again with a new expiry. */
void relaygrant_renew(struct relaygrant *g, uint32_t unix_now);
/* The relay of pair (a, b), 0 when none or no such pair (tests, logs). */
uint16_t relaygrant_relay_of(struct relaygrant *g, const uint8_t a[KEY_LEN],
    const uint8_t b[KEY_LEN]);
void relaygrant_get_stats(const struct relaygrant *g, struct relaygrant_stats *st);

#endif
