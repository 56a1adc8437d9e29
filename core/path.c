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
 * Birthday punching (PROTOCOL.md 3.2) adds to a punch, on the random-port side, a socket set
 * (core/birthday.c) that sends the same initiation from each of its sockets every round, and
 * on the other side a spray: the initiation to the peer's public address at random distinct
 * ports, paced (t_spray). The first authenticated packet that arrives over one of the set's
 * sockets makes it the winner (the path's endpoint names its via) and closes the others; the
 * winner stays while the path uses it.
 *
 * Relays (PROTOCOL.md 8): the relay client gives a peer a relay endpoint (peers_set_relay; its
 * via names the client's link, which adds the RELAY_DATA header). It is the fallback: packets
 * go there whenever there is no direct path that answers (so the first packet never waits for
 * punching: the handshake goes to the relay too), and direct again as soon as a direct
 * endpoint authenticates. While packets flow on the direct path and nothing came back on it for
 * DIRECT_PROBE_WAIT, it is pinged (path_relay_tick); after DIRECT_SILENT_MAX of silence the
 * relay takes over (within 2 s, not the ~8 s of PATH_LOST_MISSES), and the direct endpoint
 * keeps being pinged so the pair moves back when it answers again. It is the same session
 * throughout, so the connections over it see at most a few lost segments.
 * Owns: struct path of each peer, the punch schedule. Must not: touch keys.
 */
#include "config.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/birthday.h"
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

/* The path's one notion of "the same endpoint" (via included). */
static int
ep_eq(const struct endpoint *a, const struct endpoint *b)
{
	return ep_equal(a, b);
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

/* When the direct path last answered: with a relay, packets over it do not count. */
static double
path_direct_heard(const struct peer *p)
{
	return p->path.has_relay ? p->path.direct_rx : p->last_rx;
}

int
path_is_relay_ep(const struct peer *p, const struct endpoint *ep)
{
	const char *kind;

	if (ep->via == 0)
		return 0;
	if (p->path.has_relay && ep_eq(&p->path.relay, ep))
		return 1;
	kind = transport_link_kind(p->ps->tp, ep->via);
	return kind != NULL && strncmp(kind, "relay", 5) == 0;
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
		if (!ep_is_set(&eps[i]) || ep_in(pa->cand, pa->n_cand, &eps[i]))
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
		char ep[EP_STR_LEN];

		pa->lost = 0;
		pa->conns_reset = 0;
		log_info("event=path_restored peer=%s lost_s=%.1f endpoint=%s", p->id,
		    peers_now(p->ps) - pa->lost_since, ep_str(from, ep));
	}
	/* A session over one of the attempt's sockets: that one wins, the rest close. */
	if (from->via != 0 && pa->bday != NULL && bday_winner(pa->bday) != from->via &&
	    bday_owns(pa->bday, from->via)) {
		bday_keep(pa->bday, from->via);
		pa->bday_away_since = 0;
		log_info("event=bday_path peer=%s via=%u rounds_sent=%u", p->id,
		    (unsigned)from->via, pa->punch_rounds_sent);
		timers_bday_arm(p, BDAY_CHECK);
	}
	if (path_is_relay_ep(p, from)) {
		/* The relay answers; a stale relay link's packet is just authenticated. */
		if (pa->has_relay && ep_eq(&pa->relay, from))
			pa->relay_rx = peers_now(p->ps);
		return;
	}
	pa->direct_rx = peers_now(p->ps);
	if (pa->direct_unanswered != 0 && pa->has_relay && peers_now(p->ps) -
	    pa->direct_unanswered >= DIRECT_SILENT_MAX)
		log_info("event=path_direct peer=%s silent_s=%.1f", p->id,
		    peers_now(p->ps) - pa->direct_unanswered);
	pa->direct_unanswered = 0;
	if (pa->has_ep && ep_eq(&pa->ep, from))
		return;
	if (pa->has_ep) {
		char ep[EP_STR_LEN];

		log_debug("event=peer_roamed peer=%s endpoint=%s", p->id,
		    ep_str(from, ep));
	}
	pa->ep = *from;
	pa->has_ep = 1;
}

size_t
path_handshake_targets(const struct peer *p, double now, struct endpoint *out, size_t max)
{
	const struct path *pa = &p->path;
	size_t n = 0, i;

	/* The relay first: a handshake never waits for punching. But not while a punch runs over
	 * a usable session (one the relay already carries): the peer answers the first copy and
	 * drops the rest as replays, so a copy through the relay would win over the direct ones
	 * the punch is for. */
	if (pa->has_relay && max > 0 && !(peer_usable_keypair(p) != NULL && now < pa->punch_until))
		out[n++] = pa->relay;
	if (pa->has_ep && n < max)
		out[n++] = pa->ep;
	/* Heard from recently: the current endpoint works, do not spray the others. Unless the
	 * path was lost since: then it does not. */
	if (pa->has_ep && !pa->lost && path_direct_heard(p) > 0 &&
	    now - path_direct_heard(p) < KEEPALIVE_TIMEOUT)
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
	if (peer_usable_keypair(p) != NULL && !pa->lost &&
	    path_direct_heard(p) > pa->punch_received) {
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
	/* The same bytes from every socket of an attempt: a new mapping each, towards the
	 * peer's endpoint, kept open by each round while the other side probes. */
	if (pa->bday != NULL && bday_winner(pa->bday) == 0 && p->hs_active) {
		for (n = 0; n < pa->n_punch; n++)
			bday_send_all(pa->bday, &pa->punch[n], p->hs_pkt, sizeof(p->hs_pkt));
	}
	if (pa->punch_rounds_left == 0) {
		log_debug("event=punch_done peer=%s rounds_sent=%u session=0", p->id,
		    pa->punch_rounds_sent);
		return 0;
	}
	return 1;
}

static void
spray_clear(struct peer *p)
{
	struct path *pa = &p->path;

	timers_spray_stop(p);
	free(pa->spray);
	pa->spray = NULL;
	pa->spray_n = pa->spray_next = 0;
}

/*
 * An attempt ends (a new plan, or the peer goes): probes stop, sockets that did not win
 * close. keep_winner: a socket a session already uses stays (the new plan may not be about
 * it, and the path must not break under a working session).
 */
static void
bday_end(struct peer *p, int keep_winner)
{
	struct path *pa = &p->path;

	spray_clear(p);
	if (pa->bday == NULL || (keep_winner && bday_winner(pa->bday) != 0))
		return;
	log_debug("event=bday_closed peer=%s winner=%u", p->id, (unsigned)bday_winner(pa->bday));
	bday_free(pa->bday);
	pa->bday = NULL;
	pa->bday_away_since = 0;
	ev_timer_stop(p->ps->loop, &p->t_bday);
}

void
path_free(struct peer *p)
{
	bday_end(p, 0);
}

int
path_bday_check(struct peer *p)
{
	struct path *pa = &p->path;
	uint16_t w = bday_winner(pa->bday);
	double now = peers_now(p->ps);

	if (pa->bday == NULL)
		return 0;
	if (w == 0) {
		log_info("event=bday_failed peer=%s sockets=%u rounds_sent=%u", p->id,
		    bday_count(pa->bday), pa->punch_rounds_sent);
		bday_end(p, 0);
		return 0;
	}
	if (pa->has_ep && pa->ep.via == w) {
		pa->bday_away_since = 0;
		return 1;
	}
	if (pa->bday_away_since == 0)
		pa->bday_away_since = now;
	if (now - pa->bday_away_since < BDAY_AWAY_MAX)
		return 1;
	log_info("event=bday_released peer=%s via=%u", p->id, (unsigned)w);
	bday_end(p, 0);
	return 0;
}

/* n distinct ports of lo..hi in random order (all of them, shuffled, when n covers it). */
static uint16_t *
spray_ports(unsigned n, uint16_t lo, uint16_t hi, unsigned *out_n)
{
	uint32_t span = (uint32_t)hi - lo + 1, i, j;
	uint8_t *seen;
	uint16_t *v, t;
	unsigned k = 0;

	if (n > span)
		n = span;
	if ((v = calloc(n, sizeof(*v))) == NULL || (seen = calloc(8192, 1)) == NULL) {
		free(v);
		return NULL;
	}
	if (n == span) {
		for (i = 0; i < span; i++)
			v[i] = (uint16_t)(lo + i);
		for (i = span - 1; i > 0; i--) {
			j = randombytes_uniform(i + 1);
			t = v[i];
			v[i] = v[j];
			v[j] = t;
		}
		k = n;
	}
	/* Sparse: draw and drop repeats (n <= 2048 of >= 2049 ports: few repeats). */
	while (k < n) {
		uint16_t port = (uint16_t)(lo + randombytes_uniform(span));

		if (seen[port >> 3] & (1u << (port & 7)))
			continue;
		seen[port >> 3] |= (uint8_t)(1u << (port & 7));
		v[k++] = port;
	}
	free(seen);
	*out_n = n;
	return v;
}

int
path_spray_tick(struct peer *p)
{
	struct path *pa = &p->path;
	struct endpoint to = { .addr = pa->spray_addr };
	unsigned i;

	if (pa->spray == NULL)
		return 0;
	if (path_direct_usable(p)) {
		log_debug("event=bday_spray_done peer=%s probes_sent=%u session=1", p->id,
		    pa->spray_next);
		spray_clear(p);
		return 0;
	}
	if (!p->hs_active)
		handshake_initiate(p, 0);
	if (!p->hs_active) {
		spray_clear(p);
		return 0;
	}
	for (i = 0; i < pa->spray_per_tick && pa->spray_next < pa->spray_n; i++) {
		to.port = pa->spray[pa->spray_next++];
		transport_send(p->ps->tp, &to, p->hs_pkt, sizeof(p->hs_pkt));
	}
	if (pa->spray_next < pa->spray_n)
		return 1;
	log_debug("event=bday_spray_done peer=%s probes_sent=%u session=0", p->id, pa->spray_next);
	spray_clear(p);
	return 0;
}

/* What every peer's attempts hold now: sockets, and peers being probed. */
static void
bday_load(struct peers *ps, unsigned *sockets, unsigned *sprays)
{
	struct peer *q, *tmp;

	*sockets = *sprays = 0;
	HASH_ITER(hh_key, ps->by_key, q, tmp) {
		*sockets += bday_count(q->path.bday);
		*sprays += q->path.spray != NULL;
	}
}

void
peers_birthday(struct peers *ps, const uint8_t key[KEY_LEN], const struct peers_birthday *bd)
{
	struct peer *p = peers_lookup_key(ps, key);
	struct path *pa;
	double now = peers_now(ps), tick, start;
	unsigned rate, want, sockets, sprays;

	if (p == NULL)
		return;
	pa = &p->path;
	/* No punch running (strategy none, nothing to aim at): nothing to add to. */
	if (pa->punch_rounds_left == 0 || pa->n_punch == 0)
		return;
	if (path_current(p, now) == PATH_DIRECT) {
		/* A retry of a plan that worked, or a path found another way: nothing to do. */
		log_info("event=bday_skipped peer=%s reason=direct", p->id);
		return;
	}
	bday_end(p, 0);
	bday_load(ps, &sockets, &sprays);
	start = pa->punch_start - now;
	if (start < 0)
		start = 0;
	want = bd->sockets;
	if (want > BDAY_SOCKETS_TOTAL - sockets)
		want = BDAY_SOCKETS_TOTAL - sockets;
	if (bd->sockets > 0 && want == 0)
		log_info("event=bday_skipped peer=%s reason=sockets_busy open=%u", p->id, sockets);
	if (want > 0) {
		pa->bday = bday_new(ps->loop, ps->tp, want, BDAY_FD_RESERVE);
		log_info("event=bday_start peer=%s role=sockets sockets=%u wanted=%u", p->id,
		    bday_count(pa->bday), bd->sockets);
		/* The attempt ends BDAY_LINGER after its last round, however the rounds stop (a
		 * session over the main socket stops them early): path_bday_check then closes
		 * the set unless a socket won meanwhile. */
		if (pa->bday != NULL)
			timers_bday_arm(p, pa->punch_until - PUNCH_TARGETS_LINGER - now +
			    BDAY_LINGER);
	}
	if (bd->probes > 0 && sprays >= SPRAYS_MAX) {
		log_info("event=bday_skipped peer=%s reason=probes_busy running=%u", p->id, sprays);
		return;
	}
	if (bd->probes > 0 && bd->rate > 0 && bd->port_lo >= BIRTHDAY_PORT_MIN &&
	    bd->port_lo <= bd->port_hi) {
		rate = bd->rate > BIRTHDAY_RATE_MAX ? BIRTHDAY_RATE_MAX : bd->rate;
		pa->spray = spray_ports(bd->probes > BIRTHDAY_PROBES_MAX ? BIRTHDAY_PROBES_MAX :
		    bd->probes, bd->port_lo, bd->port_hi, &pa->spray_n);
		if (pa->spray == NULL) {
			log_warn("event=bday_alloc_failed peer=%s", p->id);
			return;
		}
		/* Bursts of spray_per_tick every tick: exactly `rate` a second, at most
		 * SPRAY_BURSTS_MAX bursts a second (1000: 10 every 10 ms; 50: 1 every 20 ms). */
		pa->spray_per_tick = (rate + SPRAY_BURSTS_MAX - 1) / SPRAY_BURSTS_MAX;
		tick = pa->spray_per_tick / (double)rate;
		pa->spray_addr = pa->punch[0].addr;
		pa->spray_next = 0;
		log_info("event=bday_start peer=%s role=probes probes=%u rate=%u ports=%u-%u",
		    p->id, pa->spray_n, rate, (unsigned)bd->port_lo, (unsigned)bd->port_hi);
		timers_spray_start(p, start, tick);
	}
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
	/* A new plan replaces the old one, whatever it says (a socket in use stays). */
	timers_punch_stop(p);
	bday_end(p, 1);
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
		if (!ep_is_set(&targets[i]) ||
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
	if (peer_usable_keypair(p) != NULL && path_send_ep(p) != NULL)
		send_ping(p, ++p->ping_next_id);
	pa->punch_start = peers_now(ps) + start_s;
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
path_reset_conns(struct peer *p)
{
	p->path.conns_reset = 1;
	log_info("event=path_dead peer=%s lost_s=%.1f reset_connections=1", p->id,
	    peers_now(p->ps) - p->path.lost_since);
	if (p->vaddr != 0)
		p->ps->ops.peer_gone(p->ps->ops_arg, p->vaddr);
}

void
path_ask_punch(struct peer *p)
{
	struct peers *ps = p->ps;

	p->path.lost_asked = peers_now(ps);
	if (ps->ops.path_lost != NULL)
		ps->ops.path_lost(ps->ops_arg, p->key);
}

/* Direct answers, or has not had the chance to fail yet. */
static int
direct_alive(const struct path *pa, double now)
{
	return pa->has_ep && !pa->lost && (pa->direct_unanswered == 0 ||
	    now - pa->direct_unanswered < DIRECT_SILENT_MAX);
}

int
path_direct_usable(const struct peer *p)
{
	const struct path *pa = &p->path;

	if (peer_usable_keypair(p) == NULL)
		return 0;
	return !pa->has_relay || (pa->direct_rx > 0 && direct_alive(pa, peers_now(p->ps)));
}

int
path_direct_lost(const struct peer *p, double now)
{
	const struct path *pa = &p->path;

	return pa->has_relay && pa->has_ep && pa->direct_rx > 0 && !direct_alive(pa, now);
}

int
path_punch_failed(const struct peer *p, double now)
{
	const struct path *pa = &p->path;

	/* BDAY_LINGER after the last round: late answers and a birthday set have had their say. */
	return pa->has_relay && pa->punch_received > 0 && pa->punch_rounds_left == 0 &&
	    pa->n_punch > 0 && now >= pa->punch_until - PUNCH_TARGETS_LINGER + BDAY_LINGER &&
	    !(pa->direct_rx > 0 && direct_alive(pa, now));
}

enum path_kind
path_current(const struct peer *p, double now)
{
	const struct path *pa = &p->path;

	if (peer_usable_keypair(p) == NULL || p->last_rx == 0 || now - p->last_rx >= PEER_DEAD_TIMEOUT)
		return PATH_NONE;
	if (pa->has_relay && !direct_alive(pa, now))
		return pa->relay_rx > 0 && now - pa->relay_rx < PEER_DEAD_TIMEOUT ? PATH_RELAY :
		    PATH_NONE;
	if (!pa->has_ep || pa->lost)
		return PATH_NONE;
	return PATH_DIRECT;
}

const struct endpoint *
path_send_ep(struct peer *p)
{
	struct path *pa = &p->path;
	double now;

	if (pa->force_ep != NULL)
		return pa->force_ep;
	if (!pa->has_relay)
		return pa->has_ep ? &pa->ep : NULL;
	now = peers_now(p->ps);
	if (!direct_alive(pa, now)) {
		if (!pa->on_relay) {
			pa->on_relay = 1;
			log_info("event=path_switch peer=%s to=relay direct_silent_s=%.2f", p->id,
			    pa->direct_unanswered > 0 ? now - pa->direct_unanswered : -1.0);
		}
		return &pa->relay;
	}
	if (pa->on_relay) {
		pa->on_relay = 0;
		log_info("event=path_switch peer=%s to=direct", p->id);
	}
	if (pa->direct_unanswered == 0)
		pa->direct_unanswered = now;
	return &pa->ep;
}

void
peer_path_send(struct peer *p, const uint8_t *pkt, size_t len)
{
	const struct endpoint *to = path_send_ep(p);

	if (to != NULL)
		transport_send(p->ps->tp, to, pkt, len);
}

/* One ping to the direct endpoint, whatever the path in use. */
static void
probe_direct(struct peer *p, double now)
{
	struct path *pa = &p->path;

	pa->direct_probed = now;
	pa->force_ep = &pa->ep;
	send_ping(p, ++p->ping_next_id);
	pa->force_ep = NULL;
}

void
path_relay_tick(struct peer *p)
{
	struct path *pa = &p->path;
	double now = peers_now(p->ps), since;

	if (!pa->has_relay || !pa->has_ep || peer_usable_keypair(p) == NULL)
		return;
	if (direct_alive(pa, now)) {
		/* Packets flow on direct and nothing came back yet: ask it, so a one-way flow
		 * (the other side only acknowledging now and then) does not look like loss. */
		if (pa->direct_unanswered != 0 && now - pa->direct_unanswered >= DIRECT_PROBE_WAIT &&
		    now - pa->direct_probed >= DIRECT_PROBE_WAIT)
			probe_direct(p, now);
		return;
	}
	/* On the relay: try the direct endpoint again, often at first, then rarely. */
	since = pa->direct_rx > 0 ? now - pa->direct_rx : DIRECT_RETRY_FAST;
	if (now - pa->direct_probed >= (since < DIRECT_RETRY_FAST ? DIRECT_RETRY :
	    DIRECT_RETRY_SLOW))
		probe_direct(p, now);
	/* A direct path that died may need a new punch (the peer's NAT may have a new mapping):
	 * the mediator is asked as for a lost path, once per loss and every PATH_LOST_REASK. */
	if (path_direct_lost(p, now) && pa->lost_asked < pa->direct_unanswered) {
		log_info("event=path_direct_lost peer=%s silent_s=%.1f relay=1", p->id,
		    now - pa->direct_unanswered);
		path_ask_punch(p);      /* last: the owner's code runs */
	} else if (path_direct_lost(p, now) && now - pa->lost_asked >= PATH_LOST_REASK) {
		path_ask_punch(p);
	}
}

void
peers_set_relay(struct peers *ps, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	struct peer *p = peers_lookup_key(ps, key);
	struct path *pa;
	char s[IP4_EP_STR_LEN];

	if (p == NULL)
		return;
	pa = &p->path;
	if (ep == NULL) {
		if (!pa->has_relay)
			return;
		pa->has_relay = 0;
		log_info("event=path_relay_removed peer=%s", p->id);
	} else {
		if (pa->has_relay && ep_eq(&pa->relay, ep))
			return;
		pa->relay = *ep;
		pa->has_relay = 1;
		pa->relay_rx = 0;
		log_info("event=path_relay peer=%s relay=%s via=%u", p->id,
		    ip4_ep_str(ep->addr, ep->port, s), (unsigned)ep->via);
	}
	timers_relay_changed(p);
	/* No session yet, or none that answers: go through the relay now. A session on the
	 * relay keeps running over the new one (its next packet goes there). */
	if (pa->has_relay && !direct_alive(pa, peers_now(ps))) {
		if (peer_usable_keypair(p) == NULL && p->hs_active)
			handshake_resend(p, &pa->relay, 1);     /* the bytes in flight, as a punch */
		else if (peer_usable_keypair(p) == NULL)
			handshake_initiate(p, 0);
		else
			send_ping(p, ++p->ping_next_id);
	}
}
