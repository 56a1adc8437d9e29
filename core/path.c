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
 * Today the only kind is PATH_DIRECT. Hole punching will add candidates (and a schedule to
 * try them) and relays a PATH_RELAY kind with its own send function; both slot in here
 * without touching sessions.
 * Owns: struct path of each peer. Must not: touch keys.
 */
#include "config.h"

#include <string.h>

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
	return a->addr == b->addr && a->port == b->port;
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

void
path_set_candidates(struct peer *p, const struct endpoint *eps, size_t n)
{
	struct path *pa = &p->path;
	size_t i;

	pa->n_cand = 0;
	for (i = 0; i < n && pa->n_cand < PATH_MAX_CANDIDATES; i++) {
		if (eps[i].addr == 0 || eps[i].port == 0 || ep_in(pa->cand, pa->n_cand, &eps[i]))
			continue;
		pa->cand[pa->n_cand++] = eps[i];
	}
}

void
path_authenticated_from(struct peer *p, const struct endpoint *from)
{
	struct path *pa = &p->path;

	if (pa->has_ep && ep_eq(&pa->ep, from))
		return;
	if (pa->has_ep)
		log_debug("event=peer_roamed peer=%s port=%u", p->id, (unsigned)from->port);
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
	/* Heard from recently: the current endpoint works, do not spray the others. */
	if (pa->has_ep && p->last_rx > 0 && now - p->last_rx < KEEPALIVE_TIMEOUT)
		return n;
	for (i = 0; i < pa->n_cand && n < max; i++)
		if (!ep_in(out, n, &pa->cand[i]))
			out[n++] = pa->cand[i];
	return n;
}

enum path_kind
path_current(const struct peer *p, double now)
{
	if (peer_usable_keypair(p) == NULL || !p->path.has_ep || p->last_rx == 0 ||
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
