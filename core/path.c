/*
 * path: where a peer's packets go. A peer has candidate endpoints (what the mediator observed
 * plus the peer's own interface addresses, loopback and LAN included) and a current endpoint:
 * the source of the last authenticated packet from it (WireGuard-style roaming: a peer that
 * moves is followed as soon as one packet from its new address authenticates).
 *
 * Before a session exists, or when the peer has gone quiet, handshake initiations go to every
 * candidate; whichever copy gets answered decides the path. A healthy session rekeys over its
 * current endpoint only.
 *
 * Hole punching (PROTOCOL.md 3.2): the mediator's PUNCH adds targets (its guess at where the
 * peer's NAT will let us in) and a schedule: rounds of the in-flight initiation, resent byte
 * for byte to every target and candidate, until a session is up. Resending one message, not
 * making one per round, matters: the responder answers the first copy that gets through and
 * drops later copies as replays, so a round that arrives late cannot move the endpoint or
 * make a second session. The targets stay handshake targets for PUNCH_TARGETS_LINGER after
 * the last round, so a retry (REKEY_TIMEOUT) still goes through the punched hole.
 *
 * Dead paths (PROTOCOL.md 2.4): timers.c counts pings nothing came back after; at
 * PATH_LOST_MISSES the path is lost here: shown as none, handshakes go to every candidate
 * again (not just the current endpoint), and the owner is told (ops.path_lost) so the mediator
 * can plan a new punch. The first authenticated packet from the peer, from wherever it comes,
 * restores the path at once.
 *
 * Today the only kind is PATH_DIRECT; relays will add a PATH_RELAY kind with its own send
 * function here, without touching sessions.
 * Owns: struct path of each peer, the punch schedule. Must not: touch keys.
 */
#include "config.h"

#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/peer_impl.h"
#include "core/transport.h"

const char *
path_kind_name(enum path_kind k)
{
	switch (k) {
	case PATH_DIRECT:
		return "direct";
	case PATH_RELAY:
		return "relay";
	case PATH_NONE:
	default:
		return "none";
	}
}

static int
ep_eq(const struct endpoint *a, const struct endpoint *b)
{
	return a->addr == b->addr && a->port == b->port && a->via == b->via;
}

static int
ep_in(const struct endpoint *list, size_t n, const struct endpoint *ep)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ep_eq(&list[i], ep))
			return 1;
	return 0;
}

int
path_set_candidates(struct peer *p, const struct endpoint *eps, size_t n)
{
	struct path *pa = &p->path;
	struct endpoint old[PATH_MAX_CANDIDATES];
	size_t i, n_old = pa->n_cand;

	memcpy(old, pa->cand, sizeof(old));
	pa->n_cand = 0;
	for (i = 0; i < n && pa->n_cand < PATH_MAX_CANDIDATES; i++) {
		if (eps[i].addr == 0 || eps[i].port == 0 || ep_in(pa->cand, pa->n_cand, &eps[i]))
			continue;
		pa->cand[pa->n_cand++] = eps[i];
	}
	if (n_old != pa->n_cand)
		return 1;
	for (i = 0; i < n_old; i++)
		if (!ep_eq(&old[i], &pa->cand[i]))
			return 1;
	return 0;
}

void
path_authenticated_from(struct peer *p, const struct endpoint *from)
{
	struct path *pa = &p->path;

	if (pa->lost) {
		char ep[IP4_EP_STR_LEN];

		pa->lost = 0;
		log_info("event=path_restored peer=%s lost_s=%.1f endpoint=%s", p->id,
		    peers_now(p->ps) - pa->lost_since, ip4_ep_str(from->addr, from->port, ep));
	}
	if (pa->has_ep && ep_eq(&pa->ep, from))
		return;
	if (pa->has_ep) {
		char ep[IP4_EP_STR_LEN];

		log_debug("event=peer_roamed peer=%s endpoint=%s", p->id,
		    ip4_ep_str(from->addr, from->port, ep));
	}
	pa->ep = *from;
	pa->has_ep = 1;
}

size_t
path_handshake_targets(const struct peer *p, double now, struct endpoint *out, size_t max)
{
	const struct path *pa = &p->path;
	size_t n = 0, i;

	if (pa->has_ep && max > 0)
		out[n++] = pa->ep;
	/* Heard from recently: the current endpoint works, do not spray the others. Unless the
	 * path was lost since: then it does not. */
	if (pa->has_ep && !pa->lost && p->last_rx > 0 && now - p->last_rx < KEEPALIVE_TIMEOUT)
		return n;
	for (i = 0; i < pa->n_cand && n < max; i++)
		if (!ep_in(out, n, &pa->cand[i]))
			out[n++] = pa->cand[i];
	if (now < pa->punch_until)
		for (i = 0; i < pa->n_punch && n < max; i++)
			if (!ep_in(out, n, &pa->punch[i]))
				out[n++] = pa->punch[i];
	return n;
}

/* A punch round goes everywhere: unlike a retry it does not trust a recent current endpoint
 * (there is no usable session, or the round would not run). */
static size_t
punch_round_targets(const struct peer *p, struct endpoint *out, size_t max)
{
	const struct path *pa = &p->path;
	size_t n = 0, i;

	if (pa->has_ep && max > 0)
		out[n++] = pa->ep;
	for (i = 0; i < pa->n_cand && n < max; i++)
		if (!ep_in(out, n, &pa->cand[i]))
			out[n++] = pa->cand[i];
	for (i = 0; i < pa->n_punch && n < max; i++)
		if (!ep_in(out, n, &pa->punch[i]))
			out[n++] = pa->punch[i];
	return n;
}

int
path_punch_round(struct peer *p)
{
	struct path *pa = &p->path;
	struct endpoint to[PATH_MAX_TARGETS];
	size_t n;

	if (pa->punch_rounds_left == 0)
		return 0;
	/* A usable session is not enough: the mediator may plan us because the peer lost its
	 * path to us (or moved). Only a path that answered since the PUNCH came (peers_punch
	 * probed it) makes the rounds pointless. */
	if (peer_usable_keypair(p) != NULL && !pa->lost && p->last_rx > pa->punch_received) {
		log_debug("event=punch_done peer=%s rounds_sent=%u session=1", p->id,
		    pa->punch_rounds_sent);
		pa->punch_rounds_left = 0;
		return 0;
	}
	pa->punch_rounds_left--;
	pa->punch_rounds_sent++;
	if (!p->hs_active) {
		/* Nothing in flight (given up, or never started): one new initiation, sent to
		 * path_handshake_targets, which include the punch targets now. */
		handshake_initiate(p, 0);
	} else {
		n = punch_round_targets(p, to, sizeof(to) / sizeof(to[0]));
		handshake_resend(p, to, n);
	}
	if (pa->punch_rounds_left == 0) {
		log_debug("event=punch_done peer=%s rounds_sent=%u session=0", p->id,
		    pa->punch_rounds_sent);
		return 0;
	}
	return 1;
}

void
peers_punch(struct peers *ps, const uint8_t key[KEY_LEN], const struct endpoint *targets,
    size_t n, double start_s, double interval_s, unsigned rounds)
{
	struct peer *p = peers_lookup_key(ps, key);
	struct path *pa;
	size_t i;

	if (p == NULL) {
		log_debug("event=punch_ignored reason=unknown_peer");
		return;
	}
	pa = &p->path;
	/* A new plan replaces the old one, whatever it says. */
	timers_punch_stop(p);
	pa->n_punch = 0;
	pa->punch_until = 0;
	pa->punch_rounds_sent = 0;
	if (n > PUNCH_MAX_TARGETS)
		n = PUNCH_MAX_TARGETS;
	if (rounds > PUNCH_ROUNDS_MAX)
		rounds = PUNCH_ROUNDS_MAX;
	if (!(start_s >= 0))
		start_s = 0;
	if (start_s > PUNCH_START_MAX)
		start_s = PUNCH_START_MAX;
	if (!(interval_s >= PUNCH_INTERVAL_MIN))
		interval_s = PUNCH_INTERVAL_MIN;
	if (interval_s > PUNCH_INTERVAL_MAX)
		interval_s = PUNCH_INTERVAL_MAX;
	for (i = 0; i < n; i++) {
		if (targets[i].addr == 0 || targets[i].port == 0 ||
		    ep_in(pa->punch, pa->n_punch, &targets[i]))
			continue;
		pa->punch[pa->n_punch++] = targets[i];
	}
	if (pa->n_punch == 0 || rounds == 0) {
		pa->n_punch = 0;
		log_debug("event=punch_cancelled peer=%s", p->id);
		return;
	}
	pa->punch_until = peers_now(ps) + start_s + interval_s * (rounds - 1) +
	    PUNCH_TARGETS_LINGER;
	pa->punch_rounds_left = rounds;
	pa->punch_received = peers_now(ps);
	/* A session we still hold may run over a dead path: one ping tells. An answer before the
	 * first round (start_s is at least 100 ms past a round trip) spares a healthy pair the
	 * rounds and the new handshake they would make. */
	if (peer_usable_keypair(p) != NULL && pa->has_ep)
		send_ping(p, ++p->ping_next_id);
	log_info("event=punch_start peer=%s targets=%zu rounds=%u start_ms=%.0f interval_ms=%.0f",
	    p->id, pa->n_punch, rounds, start_s * 1000, interval_s * 1000);
	timers_punch_start(p, start_s, interval_s);
}

void
path_mark_lost(struct peer *p)
{
	struct path *pa = &p->path;
	double now = peers_now(p->ps);

	pa->lost = 1;
	pa->lost_since = now;
	log_info("event=path_lost peer=%s silent_s=%.1f misses=%u candidates=%zu", p->id,
	    p->last_rx > 0 ? now - p->last_rx : -1.0, p->ping_misses, pa->n_cand);
	/* A fresh initiation to every candidate, the current endpoint and any punch targets
	 * still lingering: if the peer moved, or its NAT gave it a new mapping, one gets through. */
	handshake_initiate(p, 1);
}

void
path_ask_punch(struct peer *p)
{
	struct peers *ps = p->ps;

	p->path.lost_asked = peers_now(ps);
	if (ps->ops.path_lost != NULL)
		ps->ops.path_lost(ps->ops_arg, p->key);
}

enum path_kind
path_current(const struct peer *p, double now)
{
	if (peer_usable_keypair(p) == NULL || !p->path.has_ep || p->last_rx == 0 || p->path.lost ||
	    now - p->last_rx >= PEER_DEAD_TIMEOUT)
		return PATH_NONE;
	return PATH_DIRECT;
}

void
peer_path_send(struct peer *p, const uint8_t *pkt, size_t len)
{
	if (p->path.has_ep)
		transport_send(p->ps->tp, &p->path.ep, pkt, len);
}
