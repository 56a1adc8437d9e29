/*
 * peer: the table of authorized peers (by public key and by virtual address) and the rotation
 * of each peer's sessions, WireGuard style:
 *
 *   responder finishes a handshake  -> new keypair goes to `next` (unconfirmed: the initiator
 *                                      has not proven it holds the keys yet)
 *   data arrives on `next`          -> next becomes current, current becomes previous
 *   initiator finishes a handshake  -> new keypair becomes current at once; an unconfirmed
 *                                      next is demoted to previous, else current is
 *
 * We send only on `current`; we accept on all three (each has its own receiver index), so a
 * rekey or a simultaneous initiation from both ends never drops traffic in flight.
 * Owns: every struct peer, its keypairs and queue (keys wiped on removal), the peers' stats.
 * Must not: parse packets (handshake.c, receive.c) or decide when things happen (timers.c).
 */
#include "config.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/keyid.h"
#include "base/log.h"
#include "core/peer_impl.h"
#include "core/transport.h"

double
peers_now(const struct peers *ps)
{
	return ev_now(ps->loop);
}

struct peers *
peers_new(struct ev_loop *loop, const struct noise_keypair *key, struct transport *tp,
    const struct vnet *vn, const struct peers_ops *ops, void *arg)
{
	struct peers *ps;

	if (ops == NULL || ops->deliver == NULL || ops->peer_gone == NULL)
		return NULL;
	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return NULL;
	ps->loop = loop;
	ps->key = key;
	ps->tp = tp;
	ps->vn = vn;
	ps->ops = *ops;
	ps->ops_arg = arg;
	ps->refresh = PING_INTERVAL;
	if ((ps->rl = hslimit_new(loop, HANDSHAKE_RATE, HANDSHAKE_BURST, HANDSHAKE_LOAD_RATE,
	    HANDSHAKE_LOAD_BURST)) == NULL) {
		free(ps);
		return NULL;
	}
	handshake_make_prologue(ps);
	randombytes_buf(&ps->boot_id, sizeof(ps->boot_id));
	return ps;
}

struct peer *
peers_lookup_key(struct peers *ps, const uint8_t key[KEY_LEN])
{
	struct peer *p;

	HASH_FIND(hh_key, ps->by_key, key, KEY_LEN, p);
	return p;
}

struct peer *
peers_lookup_vaddr(struct peers *ps, uint32_t vaddr)
{
	struct peer *p;

	if (vaddr == 0)
		return NULL;
	HASH_FIND(hh_vaddr, ps->by_vaddr, &vaddr, sizeof(vaddr), p);
	return p;
}

int
peers_is_peer(const struct peers *ps, uint32_t vaddr)
{
	const struct peer *p;

	if (vaddr == 0)
		return 0;
	HASH_FIND(hh_vaddr, ps->by_vaddr, &vaddr, sizeof(vaddr), p);
	return p != NULL;
}

void
peers_drop_debug(struct peers *ps, const char *why, const struct endpoint *from)
{
	char ep[EP_STR_LEN];
	double now;

	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	/* At most 10 lines a second: a flood must not become a log flood. */
	now = peers_now(ps);
	if (now - ps->dbg_window >= 1.0) {
		ps->dbg_window = now;
		ps->dbg_count = 0;
	}
	if (ps->dbg_count++ >= 10)
		return;
	log_debug("event=peer_packet_dropped reason=%s from=%s", why,
	    from ? ep_str(from, ep) : "-");
}

struct keypair *
peer_keypair_alloc(struct peer *p)
{
	size_t i;

	for (i = 0; i < PEER_KEYPAIR_SLOTS; i++) {
		struct keypair *kp = &p->kps[i];

		if (kp != p->current && kp != p->previous && kp != p->next) {
			peer_keypair_free(p, kp);
			return kp;
		}
	}
	fatalx("event=keypair_slots_exhausted");        /* three pointers, four slots */
}

void
peer_keypair_free(struct peer *p, struct keypair *kp)
{
	if (kp == NULL)
		return;
	peerindex_remove(p->ps, &kp->idx);
	session_wipe(&kp->s);
	sodium_memzero(kp, sizeof(*kp));
}

void
peer_install_initiator(struct peer *p, struct keypair *kp)
{
	if (p->next) {
		/* An unconfirmed next (the other end initiated too) stays receivable as previous. */
		peer_keypair_free(p, p->previous);
		p->previous = p->next;
		p->next = NULL;
		peer_keypair_free(p, p->current);
	} else {
		peer_keypair_free(p, p->previous);
		p->previous = p->current;
	}
	p->current = kp;
}

void
peer_install_responder(struct peer *p, struct keypair *kp)
{
	peer_keypair_free(p, p->next);
	p->next = kp;
}

void
peer_confirm_next(struct peer *p)
{
	peer_keypair_free(p, p->previous);
	p->previous = p->current;
	p->current = p->next;
	p->next = NULL;
}

void
peer_zero_keys(struct peer *p)
{
	peer_keypair_free(p, p->current);
	peer_keypair_free(p, p->previous);
	peer_keypair_free(p, p->next);
	p->current = p->previous = p->next = NULL;
	handshake_clear(p);
}

struct keypair *
peer_usable_keypair(const struct peer *p)
{
	struct keypair *kp = p->current;

	if (kp == NULL || !kp->s.valid || session_expired(&kp->s, peers_now(p->ps)))
		return NULL;
	return kp;
}

static void
peer_fail_pings(struct peer *p)
{
	while (p->pings) {
		struct pending_ping *pp = p->pings;

		p->pings = pp->next;
		p->n_pings--;
		ev_timer_stop(p->ps->loop, &pp->timeout);
		pp->cb(pp->arg, -1);
		free(pp);
	}
}

static void
peer_set_vaddr(struct peers *ps, struct peer *p, uint32_t vaddr)
{
	struct peer *other;

	if (p->vaddr == vaddr)
		return;
	if (p->vaddr != 0)
		HASH_DELETE(hh_vaddr, ps->by_vaddr, p);
	p->vaddr = vaddr;
	if (vaddr == 0)
		return;
	/* The mediator moved an address to another node: the newest claim wins. */
	if ((other = peers_lookup_vaddr(ps, vaddr)) != NULL) {
		HASH_DELETE(hh_vaddr, ps->by_vaddr, other);
		other->vaddr = 0;
	}
	HASH_ADD(hh_vaddr, ps->by_vaddr, vaddr, sizeof(p->vaddr), p);
}

static void
peer_destroy(struct peers *ps, struct peer *p)
{
	timers_stop(p);
	path_free(p);
	peer_zero_keys(p);
	peer_staged_drop_all(p);
	peer_fail_pings(p);
	if (p->vaddr != 0)
		HASH_DELETE(hh_vaddr, ps->by_vaddr, p);
	HASH_DELETE(hh_key, ps->by_key, p);
	sodium_memzero(p, sizeof(*p));
	free(p);
}

void
peers_authorize(struct peers *ps, const uint8_t key[KEY_LEN], uint32_t vaddr,
    const struct endpoint *eps, size_t n_eps)
{
	struct peer *p;
	int is_new = 0, changed;
	char va[IP4_STR_LEN];

	if (sodium_memcmp(key, ps->key->pub, KEY_LEN) == 0)
		return;         /* ourselves: the mediator lists us among the members */
	if ((p = peers_lookup_key(ps, key)) == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL) {
			log_warn("event=peer_alloc_failed");
			return;
		}
		p->ps = ps;
		memcpy(p->key, key, KEY_LEN);
		key_short(key, p->id);
		p->srtt_ms = -1;
		timers_init(p);
		HASH_ADD(hh_key, ps->by_key, key, KEY_LEN, p);
		is_new = 1;
	}
	peer_set_vaddr(ps, p, vaddr);
	changed = path_set_candidates(p, eps, n_eps);
	if (is_new)
		log_info("event=peer_authorized peer=%s vaddr=%s candidates=%zu", p->id,
		    ip4_str(vaddr, va), p->path.n_cand);
	/* New peers get a session right away so the first packet does not wait for it. A lost
	 * path tries new candidates at once, even if an initiation went out < 5 s ago: the peer
	 * moved, and they are its new address. */
	if (changed && p->path.lost)
		handshake_initiate(p, 1);
	else if (is_new || (p->q_len > 0 && peer_usable_keypair(p) == NULL))
		handshake_initiate(p, 0);
}

void
peers_revoke(struct peers *ps, const uint8_t key[KEY_LEN])
{
	struct peer *p = peers_lookup_key(ps, key);
	uint8_t k[KEY_LEN];

	if (p == NULL)
		return;
	log_info("event=peer_revoked peer=%s", p->id);
	/* Its open connections die now, not after lwIP's retransmissions give up. Before the
	 * teardown, as it always was: the resets may still go out over its session. */
	if (p->vaddr != 0) {
		memcpy(k, p->key, KEY_LEN);
		ps->ops.peer_gone(ps->ops_arg, p->vaddr);
		/* The callback may re-enter the table (peer_gone is the owner's code). */
		if ((p = peers_lookup_key(ps, k)) == NULL)
			return;
	}
	peer_destroy(ps, p);
}

void
peers_free(struct peers *ps)
{
	struct peer *p, *tmp;
	struct staged_pkt *sp;

	if (ps == NULL)
		return;
	HASH_ITER(hh_key, ps->by_key, p, tmp)
		peer_destroy(ps, p);
	while ((sp = ps->free_pkts) != NULL) {
		ps->free_pkts = sp->next;
		free(sp);
	}
	hslimit_free(ps->rl);
	free(ps);
}

void
peers_set_refresh(struct peers *ps, double seconds)
{
	struct peer *p, *tmp;

	if (seconds > PING_INTERVAL)
		seconds = PING_INTERVAL;
	if (seconds < PEERS_REFRESH_MIN)
		seconds = PEERS_REFRESH_MIN;
	if (seconds == ps->refresh)
		return;
	log_info("event=peers_refresh interval_s=%.1f", seconds);
	ps->refresh = seconds;
	HASH_ITER(hh_key, ps->by_key, p, tmp)
		timers_refresh_changed(p);
}

int
peers_status(struct peers *ps, const uint8_t key[KEY_LEN], struct peer_status *st)
{
	struct peer *p = peers_lookup_key(ps, key);

	memset(st, 0, sizeof(*st));
	if (p == NULL)
		return -1;
	st->path = path_current(p, peers_now(ps));
	if (st->path == PATH_RELAY)
		st->endpoint = p->path.relay;
	else if (p->path.has_ep)
		st->endpoint = p->path.ep;
	st->transport = transport_link_kind(ps->tp, st->endpoint.via);
	/* The session may still be fresh, but its link is gone: nothing gets through. */
	if (st->transport == NULL)
		st->path = PATH_NONE;
	st->rtt_ms = p->srtt_ms;
	st->rx_bytes = p->rx_bytes;
	st->tx_bytes = p->tx_bytes;
	st->last_rx = p->last_rx;
	st->lost = p->path.lost;
	st->direct_lost = path_direct_lost(p, peers_now(ps));
	st->punch_failed = path_punch_failed(p, peers_now(ps));
	return 0;
}

void
peers_get_stats(const struct peers *ps, struct peers_stats *st)
{
	*st = ps->st;
}
