/*
 * send: the outgoing data path. IPv4 packets from the netstack are routed to one peer (by
 * virtual address) or fanned out (broadcast, multicast), sealed under the peer's current
 * session and queued on the transport. Without a usable session a packet waits in the peer's
 * small queue (buffers from a free list, no per-packet malloc once warm) while a handshake
 * runs. Also builds keepalives and RTT pings (peers_ping).
 * Owns: the staged queues and the free list of packet buffers, pending `shoal ping`s.
 * Must not: touch keys other than through session_seal, or decide timing (timers.c).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/peer_impl.h"
#include "core/transport.h"
#include "base/wire.h"

uint64_t
peer_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Seals one inner message under the current session and sends it. -1: no usable session.
 * The packet is sealed straight into the transport's send slot (transport_alloc/commit), so
 * nothing is copied after encryption; the slot is reserved before sealing so that a full
 * ring (the kernel not draining) costs no nonce. Such a drop returns 0: to the caller it is
 * a packet lost on the way, not a missing session to handshake for.
 */
int
peer_send_inner(struct peer *p, uint8_t type, const uint8_t *body, size_t len)
{
	struct transport *tp = p->ps->tp;
	struct keypair *kp = peer_usable_keypair(p);
	const struct endpoint *to;
	uint8_t *out;
	int n;

	if (kp == NULL || (to = path_send_ep(p)) == NULL)
		return -1;
	if ((out = transport_alloc(tp, to)) == NULL)
		return 0;
	n = session_seal(&kp->s, type, body, len, out, UDP_MAX_PAYLOAD);
	if (n < 0) {
		transport_commit(tp, 0);
		return -1;          /* counter exhausted: as good as expired */
	}
	transport_commit(tp, (size_t)n);
	p->tx_bytes += (uint64_t)n;
	timers_any_authenticated_packet_sent(p);
	if (type != 0)
		timers_data_sent(p);
	timers_check_rekey_on_send(p, kp);
	return 0;
}

void
send_keepalive(struct peer *p)
{
	/* Without a session there is nothing to keep alive. */
	(void)peer_send_inner(p, 0, NULL, 0);
}

static void
staged_push(struct peer *p, const uint8_t *pkt, size_t len)
{
	struct peers *ps = p->ps;
	struct staged_pkt *sp;

	if (p->q_len >= STAGED_MAX_PKTS) {
		/* Full: the oldest packet is the least useful one (TCP has resent it). */
		sp = p->q_head;
		p->q_head = sp->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		p->q_len--;
		ps->xst.tx_queue_dropped++;
	} else if ((sp = ps->free_pkts) != NULL) {
		ps->free_pkts = sp->next;
	} else if ((sp = malloc(sizeof(*sp))) == NULL) {
		ps->xst.tx_queue_dropped++;
		return;
	}
	memcpy(sp->data, pkt, len);
	sp->len = len;
	sp->next = NULL;
	if (p->q_tail)
		p->q_tail->next = sp;
	else
		p->q_head = sp;
	p->q_tail = sp;
	p->q_len++;
}

void
peer_staged_drop_all(struct peer *p)
{
	struct peers *ps = p->ps;
	struct staged_pkt *sp;

	while ((sp = p->q_head) != NULL) {
		p->q_head = sp->next;
		sp->next = ps->free_pkts;
		ps->free_pkts = sp;
	}
	p->q_tail = NULL;
	p->q_len = 0;
}

int
send_staged(struct peer *p)
{
	struct peers *ps = p->ps;
	struct staged_pkt *sp;
	int sent = 0;

	while ((sp = p->q_head) != NULL) {
		if (peer_send_inner(p, INNER_IP, sp->data, sp->len) != 0)
			break;
		ps->st.tx_data++;
		sent++;
		p->q_head = sp->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		p->q_len--;
		sp->next = ps->free_pkts;
		ps->free_pkts = sp;
	}
	return sent;
}

static void
peer_send_ip(struct peer *p, const uint8_t *pkt, size_t len)
{
	/* Keep order: while packets wait, new ones queue behind them. */
	if (p->q_len == 0 && peer_send_inner(p, INNER_IP, pkt, len) == 0) {
		p->ps->st.tx_data++;
		return;
	}
	staged_push(p, pkt, len);
	if (peer_usable_keypair(p) != NULL && (p->path.has_ep || p->path.has_relay))
		send_staged(p);
	else
		handshake_initiate(p, 0);
}

/* Fanned out to every peer: limited broadcast, multicast (224/4), and our network's directed
 * broadcast (subnet policy is base/ip4.c's; none while we have no address). */
static int
is_fanout(const struct vnet *vn, uint32_t dst)
{
	return dst == 0xffffffffu || (dst >> 28) == 0xe || vnet_is_broadcast(vn, dst);
}

int
peers_send_ip(struct peers *ps, uint32_t dst, const uint8_t *pkt, size_t len)
{
	struct peer *p, *tmp;

	if (len == 0 || len > STAGED_PKT_MAX) {
		ps->xst.tx_too_big++;
		return 0;
	}
	if (is_fanout(ps->vn, dst)) {
		HASH_ITER(hh_key, ps->by_key, p, tmp) {
			if (peer_send_inner(p, INNER_IP, pkt, len) == 0)
				ps->st.tx_data++;
			else
				handshake_initiate(p, 0);
		}
		return 0;
	}
	if ((p = peers_lookup_vaddr(ps, dst)) == NULL) {
		ps->xst.tx_no_route++;
		return -1;
	}
	peer_send_ip(p, pkt, len);
	return 0;
}

void
send_boot(struct peer *p)
{
	uint8_t b[8];
	struct wire_w w;

	wire_w_init(&w, b, sizeof(b));
	wire_put_u64(&w, p->ps->boot_id);
	(void)peer_send_inner(p, INNER_BOOT, b, sizeof(b));
}

void
send_ping(struct peer *p, uint64_t id)
{
	uint8_t body[16];
	struct wire_w w;

	wire_w_init(&w, body, sizeof(body));
	wire_put_u64(&w, id);
	wire_put_u64(&w, peer_mono_ns());
	(void)peer_send_inner(p, INNER_PING, body, sizeof(body));
}

int
send_pending_pings(struct peer *p)
{
	struct pending_ping *pp;
	int sent = 0;

	if (peer_usable_keypair(p) == NULL)
		return 0;
	for (pp = p->pings; pp; pp = pp->next) {
		if (!pp->sent) {
			send_ping(p, pp->id);
			pp->sent = 1;
			sent++;
		}
	}
	return sent;
}

int
peers_ping(struct peers *ps, uint32_t vaddr, peers_ping_cb cb, void *arg)
{
	struct peer *p = peers_lookup_vaddr(ps, vaddr);
	struct pending_ping *pp;

	if (p == NULL || p->n_pings >= PING_PENDING_MAX) {
		errno = p == NULL ? ENOENT : EBUSY;
		return -1;
	}
	if ((pp = calloc(1, sizeof(*pp))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	pp->peer = p;
	pp->id = ++p->ping_next_id;
	pp->cb = cb;
	pp->arg = arg;
	pp->next = p->pings;
	p->pings = pp;
	p->n_pings++;
	timers_ping_started(pp);
	if (peer_usable_keypair(p) != NULL && (p->path.has_ep || p->path.has_relay)) {
		send_ping(p, pp->id);
		pp->sent = 1;
	} else {
		handshake_initiate(p, 0);
	}
	return 0;
}
