/*
 * punch: when the mediator may send a pair of nodes their MSG_PUNCH (docs/PROTOCOL.md 3.2):
 * at most one plan per pair per PUNCH_PAIR_MIN_S (a trigger inside that window is deferred to
 * the moment it opens, never dropped: the last trigger may be the one that carries the news,
 * e.g. a new public address), and the plans of pairs with a side behind a sequential NAT
 * serialised per public address, PUNCH_SEQ_GAP_S apart, so one plan's new mappings do not
 * spoil another's predicted ports (a node's budget of MSG_PUNCH_REQUESTs is base/proto.h's
 * PUNCH_REQ_*). Decides only; mediator.c builds and sends the plans (punchplan.c)
 * and arms the one timer punch_due asks for.
 * Free of I/O and of the clock: time comes in as arguments.
 *
 * Birthday plans (a random-port side facing an APDF one) may simply miss (PROTOCOL.md 3.2), and
 * no daemon says whether a plan worked: such a pair is planned again PUNCH_RETRY_1_S and then
 * PUNCH_RETRY_2_S after its plan (PUNCH_RETRIES in all, counted afresh when a trigger plans
 * it); a daemon with a direct path ignores the retry.
 *
 * Owns: the pair table (with each node's list of its pairs, so punch_forget costs the node's
 * own pairs, and a full table is swept again only once an entry can go), the deferred pairs
 * and the queue. Bounds: PUNCH_PAIRS_MAX pairs
 * (entries older than PUNCH_PAIR_MIN_S and not deferred are swept when full),
 * PUNCH_QUEUE_MAX queued pairs, PUNCH_ADDRS_MAX sequential addresses; beyond them a plan is
 * refused (PUNCH_FULL), never grown. A deferred pair is a flag on its pair entry: no extra
 * memory, at most one deferral per pair (later triggers coalesce into it).
 */
#ifndef SHOAL_SERVER_PUNCH_H
#define SHOAL_SERVER_PUNCH_H

#include <stdint.h>

#include "base/proto.h"

#define PUNCH_PAIR_MIN_S 10.0
#define PUNCH_SEQ_GAP_S 2.0
#define PUNCH_RETRY_1_S 30.0
#define PUNCH_RETRY_2_S 120.0
enum { PUNCH_RETRIES = 2 };

enum { PUNCH_PAIRS_MAX = 65536, PUNCH_QUEUE_MAX = 1024, PUNCH_ADDRS_MAX = 4096 };

enum punch_admit {
	PUNCH_GO = 0,                   /* plan it now (recorded as planned at now) */
	PUNCH_QUEUED,                   /* waits behind a sequential address: see punch_next */
	PUNCH_DEFERRED,                 /* planned less than PUNCH_PAIR_MIN_S ago: it will be
					 * due when the window opens (punch_next_deferred) */
	PUNCH_FULL,                     /* a bound is reached: drop */
};

struct punch;

struct punch *punch_new(void);
void punch_free(struct punch *p);

/*
 * The pair (a, b) became able to talk or changed (the order does not matter). seq_a / seq_b:
 * the public address of a side behind a sequential NAT, 0 for any other side.
 */
enum punch_admit punch_admit(struct punch *p, const uint8_t a[KEY_LEN],
    const uint8_t b[KEY_LEN], uint32_t seq_a, uint32_t seq_b, double now);
/* Takes the first queued pair whose sequential addresses are free at now: 1 with a and b
 * filled (recorded as planned), 0 when none is due. */
int punch_next(struct punch *p, double now, uint8_t a[KEY_LEN], uint8_t b[KEY_LEN]);
/* Takes a deferred pair whose window has opened at now: 1 with a and b filled (no longer
 * deferred; the caller admits it again, which plans or queues it), 0 when none is due. */
int punch_next_deferred(struct punch *p, double now, uint8_t a[KEY_LEN], uint8_t b[KEY_LEN]);
/* When punch_next or punch_next_deferred will have a pair: absolute time (may be <= now), or
 * -1 when nothing waits. */
double punch_due(const struct punch *p);
/*
 * The pair's plan just sent was one that may miss (birthday): queue a retry, planned by
 * punch_next once due, unless PUNCH_RETRIES were already queued since a trigger last planned
 * it. 1 if queued. A trigger (punch_admit) before then plans at once and drops the retry.
 */
int punch_retry_later(struct punch *p, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    double now);
/* key's connection is gone: its pairs and queued plans go too (a new connection starts
 * afresh). */
void punch_forget(struct punch *p, const uint8_t key[KEY_LEN]);

#endif
