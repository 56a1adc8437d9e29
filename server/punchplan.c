/*
 * punchplan: the strategy table of docs/PROTOCOL.md 3.2 as code. Each side's NAT is reduced
 * to a class (easy, seq, random, blocked, unknown); the pair of classes picks the strategy,
 * the strategy picks each side's targets, and the two one-way delays pick the start times.
 * Must not: do I/O, read a clock, keep state, log.
 */
#include "config.h"
#include "server/punchplan.h"

#include <string.h>

enum punch_class
punchplan_class(const struct punch_side *s)
{
	const struct msg_nat_info *i = &s->info;

	if (!s->has_info || i->udp == NAT_UDP_UNKNOWN)
		return s->n_mapped > 0 ? PUNCH_CLASS_EASY : PUNCH_CLASS_UNKNOWN;
	if (i->udp == NAT_UDP_BLOCKED)
		return PUNCH_CLASS_BLOCKED;
	/* A gateway's port mapping is a fixed public endpoint that lets anyone in: whatever the
	 * NAT does to other flows, the peer aims there. */
	if (s->n_mapped > 0 || i->mapping == NAT_MAP_EIM)
		return PUNCH_CLASS_EASY;
	if (i->mapping != NAT_MAP_ADM && i->mapping != NAT_MAP_APDM)
		return PUNCH_CLASS_UNKNOWN;
	/* Without a step there is nothing to predict with. */
	if (i->ports == NAT_PORTS_SEQUENTIAL && i->step >= 1)
		return PUNCH_CLASS_SEQ;
	if (i->ports == NAT_PORTS_RANDOM)
		return PUNCH_CLASS_RANDOM;
	return PUNCH_CLASS_UNKNOWN;
}

/* The NAT fields of a PUNCH, clamped to the codec's ranges so the message always encodes
 * (a NAT_INFO from natclass.c is within them anyway). */
static void
nat_fields(const struct punch_side *me, const struct punch_side *peer, struct msg_punch *p)
{
	if (me->has_info) {
		p->my_mapping = me->info.mapping <= NAT_MAP_APDM ? me->info.mapping : 0;
		p->my_ports = me->info.ports <= NAT_PORTS_RANDOM ? me->info.ports : 0;
	}
	if (peer->has_info) {
		p->peer_mapping = peer->info.mapping <= NAT_MAP_APDM ? peer->info.mapping : 0;
		p->peer_ports = peer->info.ports <= NAT_PORTS_RANDOM ? peer->info.ports : 0;
		p->peer_filtering = peer->info.filtering <= NAT_FILT_APDF ?
		    peer->info.filtering : 0;
	}
}

static void
add_target_ep(struct msg_punch *p, const struct endpoint *ep)
{
	uint8_t i;

	if (p->n_targets >= PUNCH_MAX_TARGETS || !ep_is_set(ep))
		return;
	for (i = 0; i < p->n_targets; i++)      /* a predicted port may be the observed one */
		if (ep_same_addr(&p->targets[i], ep))
			return;
	p->targets[p->n_targets] = *ep;
	p->targets[p->n_targets].via = 0;
	p->n_targets++;
}

static void
add_target(struct msg_punch *p, uint32_t addr, uint16_t port)
{
	struct endpoint ep = { .addr = addr, .port = port };

	add_target_ep(p, &ep);
}

/* The side's global IPv6 candidates (its HELLO locals, PROTOCOL.md 3.2). */
static int
has_v6(const struct punch_side *s)
{
	uint8_t i;

	for (i = 0; i < s->n_cand && i < MAX_ENDPOINTS; i++)
		if (ep_is_v6(&s->cand[i]))
			return 1;
	return 0;
}

/* No NAT stands between two global IPv6 addresses, only stateful firewalls, and the two
 * sides' simultaneous sends open those. */
static void
targets_v6(const struct punch_side *peer, struct msg_punch *p)
{
	uint8_t i;

	for (i = 0; i < peer->n_cand && i < MAX_ENDPOINTS; i++)
		if (ep_is_v6(&peer->cand[i]))
			add_target_ep(p, &peer->cand[i]);
}

/* lan: the peer's local candidates first (the direct way inside one site), its observed
 * endpoint last (through the NAT, if it hairpins). */
static void
targets_lan(const struct punch_side *peer, struct msg_punch *p)
{
	uint8_t i;

	for (i = 0; i < peer->n_cand && i < MAX_ENDPOINTS; i++)
		if (!ep_same_addr(&peer->cand[i], &peer->observed))
			add_target_ep(p, &peer->cand[i]);
	add_target(p, peer->observed.addr, peer->observed.port);
}

/*
 * The ports a sequential NAT gives, or gave, the side's mapping towards its peer: first the
 * next ones, from the highest it was seen to use, step x 1..PUNCH_PREDICT_PORTS (the mapping
 * its punch will make if it has not sent to the peer yet); then the ones just below the
 * highest, step x 1..PUNCH_PREDICT_BEHIND, for a mapping it already made: a daemon sends its
 * first handshake the moment a peer is authorized, which may be before its classification's
 * phase-2 probes moved the counter on (a pair authorized right after connecting). Ports past
 * 65535 or below 1024 are left out rather than wrapped: where a NAT goes past its range is
 * not predictable.
 */
static void
targets_predict(const struct punch_side *peer, struct msg_punch *p)
{
	uint32_t base = peer->max_port > peer->observed.port ? peer->max_port :
	    peer->observed.port;
	uint32_t k, port;

	for (k = 1; k <= PUNCH_PREDICT_PORTS; k++) {
		port = base + peer->info.step * k;
		if (port > 65535)
			break;
		add_target(p, peer->observed.addr, (uint16_t)port);
	}
	for (k = 1; k <= PUNCH_PREDICT_BEHIND; k++) {
		if (base < 1024 + peer->info.step * k)
			break;
		port = base - peer->info.step * k;
		add_target(p, peer->observed.addr, (uint16_t)port);
	}
}

/* Where an easy side is reached: its port mappings first (they let anyone in), then its
 * observed endpoint. */
static void
targets_easy(const struct punch_side *peer, struct msg_punch *p)
{
	uint8_t i;

	for (i = 0; i < peer->n_mapped && i < CAND_MAX_MAPPED; i++)
		if (peer->mapped[i].addr != peer->observed.addr ||
		    peer->mapped[i].port != peer->observed.port)
			add_target(p, peer->mapped[i].addr, peer->mapped[i].port);
	add_target(p, peer->observed.addr, peer->observed.port);
}

static int
easy_lets_random_in(const struct punch_side *easy)
{
	/* A port mapping and EIF let anything in; ADF anything from an address the easy side
	 * has sent to, and it sends to the random side's public address. Unknown filtering:
	 * worth a try. */
	return easy->n_mapped > 0 || easy->info.filtering != NAT_FILT_APDF;
}

static uint8_t
choose(const struct punch_side *a, const struct punch_side *b)
{
	enum punch_class ca = punchplan_class(a), cb = punchplan_class(b);

	if (a->observed.addr != 0 && a->observed.addr == b->observed.addr)
		return PUNCH_LAN;
	if (ca == PUNCH_CLASS_BLOCKED || cb == PUNCH_CLASS_BLOCKED) {
		/* TCP gets out where UDP does not. A random-port side gives no TCP port to aim at
		 * either (its TCP mapping is assumed to be as random as its UDP one). */
		if (ca == PUNCH_CLASS_RANDOM || cb == PUNCH_CLASS_RANDOM ||
		    a->tcp.addr == 0 || b->tcp.addr == 0)
			return PUNCH_NONE;
		return PUNCH_TCP;
	}
	if (a->observed.addr == 0 || b->observed.addr == 0)
		return PUNCH_NONE;
	if (ca == PUNCH_CLASS_UNKNOWN || cb == PUNCH_CLASS_UNKNOWN)
		return PUNCH_SIMULTANEOUS;
	if (ca == PUNCH_CLASS_EASY && cb == PUNCH_CLASS_EASY)
		return PUNCH_SIMULTANEOUS;
	if (ca == PUNCH_CLASS_SEQ || cb == PUNCH_CLASS_SEQ)
		return ca == PUNCH_CLASS_RANDOM || cb == PUNCH_CLASS_RANDOM ? PUNCH_NONE :
		    PUNCH_PREDICT;
	/* At least one random side; the other is easy or random. */
	if (ca == PUNCH_CLASS_EASY)
		return easy_lets_random_in(a) ? PUNCH_SIMULTANEOUS : PUNCH_BIRTHDAY;
	if (cb == PUNCH_CLASS_EASY)
		return easy_lets_random_in(b) ? PUNCH_SIMULTANEOUS : PUNCH_BIRTHDAY;
	return PUNCH_NONE;
}

/*
 * TCP targets: the peer's control connection source first. Its daemon punches from that
 * connection's local port, so an EIM NAT (and most NATs treat TCP like that even where their
 * UDP is sequential) maps the punch to the same public port. A peer whose UDP ports are
 * sequential gets the predicted ports too, on its TCP address: a NAT with one counter for
 * both protocols moves on from what its UDP showed.
 */
static void
targets_tcp(const struct punch_side *peer, struct msg_punch *p)
{
	add_target(p, peer->tcp.addr, peer->tcp.port);
	if (punchplan_class(peer) == PUNCH_CLASS_SEQ && peer->observed.addr == peer->tcp.addr)
		targets_predict(peer, p);
}

/* Where `me` sends under strategy st: at the peer. */
static void
targets_for(uint8_t st, const struct punch_side *peer, struct msg_punch *p)
{
	switch (st) {
	case PUNCH_LAN:
		targets_lan(peer, p);
		break;
	case PUNCH_SIMULTANEOUS:
		targets_easy(peer, p);
		break;
	case PUNCH_BIRTHDAY:
		/* Birthday: the socket side aims at the easy side's one mapping; the probing side
		 * takes the random side's address from it (its port is only one more guess). */
		add_target(p, peer->observed.addr, peer->observed.port);
		break;
	case PUNCH_PREDICT:
		/* A sequential peer's next mapping is predicted; an easy peer keeps its one. */
		if (punchplan_class(peer) == PUNCH_CLASS_SEQ)
			targets_predict(peer, p);
		else
			targets_easy(peer, p);
		break;
	case PUNCH_TCP:
		targets_tcp(peer, p);
		break;
	default:
		break;
	}
}

static uint16_t
start_ms(uint32_t t, uint16_t delay)
{
	uint32_t v = t > delay ? t - delay : 0;

	return (uint16_t)(v > PUNCH_START_MAX_MS ? PUNCH_START_MAX_MS : v);
}

/* Birthday: the random side opens sockets at T; the other probes from T + the lag. */
static void
birthday_role(const struct punch_side *me, struct msg_punch *p, uint32_t t)
{
	p->interval_ms = BIRTHDAY_INTERVAL_MS;
	p->rounds = BIRTHDAY_ROUNDS;
	if (punchplan_class(me) == PUNCH_CLASS_RANDOM) {
		p->sockets = BIRTHDAY_SOCKETS;
		return;
	}
	p->start_ms = start_ms(t + BIRTHDAY_PROBE_LAG_MS, me->delay_ms);
	p->probes = BIRTHDAY_PROBES;
	p->rate = BIRTHDAY_RATE;
	p->port_lo = BIRTHDAY_PORT_MIN;
	p->port_hi = 65535;
}

void
punchplan(const struct punch_side *a, const struct punch_side *b, struct msg_punch *to_a,
    struct msg_punch *to_b)
{
	uint8_t st = choose(a, b);
	int v6 = has_v6(a) && has_v6(b), v6_only = 0;
	uint32_t t;

	/* Two IPv4 NATs that cannot be punched are no obstacle when both sides have IPv6. */
	if (st == PUNCH_NONE && v6) {
		st = PUNCH_SIMULTANEOUS;
		v6_only = 1;
	}

	memset(to_a, 0, sizeof(*to_a));
	memset(to_b, 0, sizeof(*to_b));
	memcpy(to_a->peer, b->key, KEY_LEN);
	memcpy(to_b->peer, a->key, KEY_LEN);
	nat_fields(a, b, to_a);
	nat_fields(b, a, to_b);
	to_a->strategy = to_b->strategy = st;
	if (st == PUNCH_NONE)
		return;
	if (!v6_only) {
		targets_for(st, b, to_a);
		targets_for(st, a, to_b);
	}
	if (v6 && (st == PUNCH_SIMULTANEOUS || st == PUNCH_PREDICT)) {
		targets_v6(b, to_a);
		targets_v6(a, to_b);
	}
	/* A plan where one side has nothing to aim at would have the other punch alone. */
	if (to_a->n_targets == 0 || to_b->n_targets == 0) {
		to_a->strategy = to_b->strategy = PUNCH_NONE;
		to_a->n_targets = to_b->n_targets = 0;
		memset(to_a->targets, 0, sizeof(to_a->targets));
		memset(to_b->targets, 0, sizeof(to_b->targets));
		return;
	}
	/* Each side's PUNCH arrives after its one-way delay; both must fire at T. */
	t = PUNCH_LEAD_MS + (uint32_t)(a->delay_ms > b->delay_ms ? a->delay_ms : b->delay_ms);
	to_a->start_ms = start_ms(t, a->delay_ms);
	to_b->start_ms = start_ms(t, b->delay_ms);
	to_a->interval_ms = to_b->interval_ms =
	    st == PUNCH_TCP ? PUNCH_TCP_INTERVAL_MS : PUNCH_INTERVAL_MS;
	to_a->rounds = to_b->rounds = st == PUNCH_TCP ? PUNCH_TCP_ROUNDS : PUNCH_ROUNDS;
	if (st == PUNCH_BIRTHDAY) {
		birthday_role(a, to_a, t);
		birthday_role(b, to_b, t);
	}
}
