/*
 * cluster: several shoal-server instances on one PostgreSQL store serve the same networks.
 * What must be shared is in PostgreSQL already (the store); what is per instance stays in
 * memory (control connections, NAT probes, punch pacing, relays). This module carries the rest
 * between instances through PostgreSQL itself, no protocol of our own:
 * - presence: table presence(node, instance, endpoints, since): a node connected to an instance
 *   has its row, with the endpoints MEMBER carries (an encoded MSG_MEMBER, mproto/msg.c);
 * - events: NOTIFY shoal, '<kind> <instance> <val> <hex key|-> <network>' (medsrv_peers
 *   kinds); presence changes are sent in the transaction that writes the row, so a listener
 *   never sees the event before the row;
 * - each instance LISTENs on a second connection whose socket an ev_io watches, re-reads the
 *   presence row of a node an event names, and replays the event to its own sessions
 *   (medsrv_peer_event);
 * - a pair split over two instances (4.8): its nodes' punch sides and the halves of its plan,
 *   NOTIFY 'S ...' and 'F ...' (clusterev.h), the lower key's instance planning and granting;
 * - liveness: table instances(id, heartbeat), beaten every CLUSTER_BEAT_S; rows of an instance
 *   silent for CLUSTER_DEAD_S (killed) are deleted by the others, with their events.
 * Owns: the LISTEN connection, its watcher and timer, the cache of remote presence.
 * Borrows: the store's connections (reads; writes queued off the loop, pgasync.h), the
 * mediator (events in and out).
 */
#ifndef SHOAL_SERVER_CLUSTER_H
#define SHOAL_SERVER_CLUSTER_H

#include <ev.h>
#include <stddef.h>

struct cluster;
struct medsrv;
struct store;

/* CLUSTER_BATCH_MAX: one NOTIFY of S and F lines (PostgreSQL takes up to 8000 bytes) */
/* CLUSTER_EVENTS_KEEP_S: how long a membership event stays in table events, for an instance
 * whose LISTEN connection was down (pruned every CLUSTER_EVENTS_PRUNE_BEATS beats) */
enum { CLUSTER_BEAT_S = 2, CLUSTER_DEAD_S = 10, CLUSTER_HOP_GUESS_MS = 50,
    CLUSTER_BATCH_MAX = 7900, CLUSTER_EVENTS_KEEP_S = 300, CLUSTER_EVENTS_PRUNE_BEATS = 30 };

/* url: the store's (a second connection to the same database for LISTEN). Hooks the mediator
 * (medsrv_set_peers). NULL with a reason in err. */
struct cluster *cluster_new(struct ev_loop *loop, const char *url, struct store *st,
    struct medsrv *med, char *err, size_t errlen);
/* Deletes this instance's presence rows (with their events): a clean stop. */
void cluster_free(struct cluster *c);

#endif
