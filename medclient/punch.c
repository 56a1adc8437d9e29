/*
 * punch: the mediator's hole-punching plans on our side (PROTOCOL.md 3.2). Each MSG_PUNCH
 * names one peer; the last one per peer is kept so `shoal list` and `shoal ping` can say which
 * strategy applies and why there is no direct path, and it is handed to the owner (ops->punch),
 * whose peer table does the sending. What to send and when is the peer layer's business, not
 * ours: we neither schedule nor check success (the mediator is told nothing back).
 *
 * The other way: medclient_punch_request asks the mediator for a new plan when the peer layer
 * says a path died (MSG_PUNCH_REQUEST); the answer is an ordinary PUNCH.
 *
 * Owns: the last PUNCH per key (struct med_punch). A PUNCH for a key that is not in the view
 * (or for ourselves) is dropped and counted: the server only plans pairs that share a
 * network, and keeping it would let an entry outlive every member record that could drop it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "medclient/medclient_int.h"

static int
in_view(const struct medclient *m, const uint8_t key[KEY_LEN])
{
	const struct med_network *n;
	const struct med_member *mem;

	for (n = m->nets; n; n = n->hh.next) {
		HASH_FIND(hh, n->members, key, KEY_LEN, mem);
		if (mem)
			return 1;
	}
	return 0;
}

void
med_punch(struct medclient *m, const struct msg_punch *p)
{
	struct med_punch *e;
	char id[KEY_SHORT_LEN];

	key_short(p->peer, id);
	if (med_is_self(m, p->peer) || !in_view(m, p->peer)) {
		m->dropped_msgs++;
		log_debug("event=punch_dropped peer=%s reason=not_in_view", id);
		return;
	}
	HASH_FIND(hh, m->punches, p->peer, KEY_LEN, e);
	if (!e) {
		if (!(e = calloc(1, sizeof(*e)))) {
			log_warn("event=mediator_alloc_failed");
			return;
		}
		memcpy(e->p.peer, p->peer, KEY_LEN);
		HASH_ADD(hh, m->punches, p.peer, KEY_LEN, e);
	}
	e->p = *p;
	log_info("event=punch peer=%s strategy=%s my_nat=%s/%s peer_nat=%s/%s peer_filtering=%s "
	    "targets=%u start_ms=%u interval_ms=%u rounds=%u", id,
	    punch_strategy_name(p->strategy), nat_mapping_name(p->my_mapping),
	    nat_ports_name(p->my_ports), nat_mapping_name(p->peer_mapping),
	    nat_ports_name(p->peer_ports), nat_filtering_name(p->peer_filtering),
	    p->n_targets, p->start_ms, p->interval_ms, p->rounds);
	if (m->ops->punch)
		m->ops->punch(m->ops_arg, &e->p);
}

int
medclient_punch_request(struct medclient *m, const uint8_t key[KEY_LEN])
{
	struct msg msg;
	char id[KEY_SHORT_LEN];

	key_short(key, id);
	if (!m || m->state != MED_ONLINE || med_is_self(m, key) || !in_view(m, key)) {
		log_debug("event=punch_request_skipped peer=%s online=%d", id,
		    m && m->state == MED_ONLINE);
		return -1;
	}
	/* What the server would drop anyway stays here: a node with many unreachable peers asks
	 * for each of them every 20 s, and its paths lost at once all ask together. */
	if (!tokenbucket_take(&m->req_budget, ev_now(m->loop), PUNCH_REQ_BURST, PUNCH_REQ_RATE)) {
		m->punch_requests_held++;
		log_debug("event=punch_request_held peer=%s held_total=%llu", id,
		    (unsigned long long)m->punch_requests_held);
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_PUNCH_REQUEST;
	memcpy(msg.u.punch_request.peer, key, KEY_LEN);
	log_info("event=punch_request peer=%s", id);
	return med_send(m, &msg);
}

void
med_punch_prune(struct medclient *m)
{
	struct med_punch *e, *tmp;

	HASH_ITER(hh, m->punches, e, tmp) {
		if (in_view(m, e->p.peer))
			continue;
		HASH_DEL(m->punches, e);
		free(e);
	}
}

void
med_punch_free(struct medclient *m)
{
	struct med_punch *e, *tmp;

	HASH_ITER(hh, m->punches, e, tmp) {
		HASH_DEL(m->punches, e);
		free(e);
	}
}

int
medclient_punch_info(const struct medclient *m, const uint8_t key[KEY_LEN],
    struct msg_punch *out)
{
	struct med_punch *e;

	if (!m)
		return -1;
	HASH_FIND(hh, m->punches, key, KEY_LEN, e);
	if (!e)
		return -1;
	*out = e->p;
	return 0;
}
