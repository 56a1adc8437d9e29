/*
 * receive: the incoming side of the peer protocol. Dispatches handshake packets to
 * handshake.c and opens UDP_DATA packets: the receiver index names the session (one hash
 * lookup), session_open authenticates and checks replay, then the inner message is handled:
 * IP packets go out through ops.deliver (to the netstack) once their source address is
 * proven to be the sender's own virtual address; pings are answered; pongs give the RTT.
 * Every rejected packet is counted in peers_stats and at most debug-logged (rate-limited).
 * Owns: nothing beyond the packet being handled. Must not: allocate per packet.
 */
#include "config.h"

#include <stdlib.h>

#include "base/log.h"
#include "core/peer_impl.h"
#include "base/wire.h"

enum { IPV4_MIN_HEADER = 20 };

static void
handle_pong(struct peer *p, const uint8_t *body, size_t len)
{
	struct pending_ping **pp, *hit;
	struct wire_r r;
	uint64_t id, ts, now_ns = peer_mono_ns();
	double rtt;

	wire_r_init(&r, body, len);
	id = wire_get_u64(&r);
	ts = wire_get_u64(&r);
	if (wire_r_done(&r) != 0 || ts > now_ns) {
		p->ps->st.rx_dropped_malformed++;
		return;
	}
	rtt = (double)(now_ns - ts) / 1e6;
	if (id != 0 && id == p->ping_periodic_id) {
		p->ping_periodic_id = 0;
		hit = NULL;
	} else {
		for (pp = &p->pings; *pp && (*pp)->id != id; pp = &(*pp)->next)
			;
		if ((hit = *pp) == NULL || !hit->sent)
			return;         /* late answer to a ping that timed out */
		*pp = hit->next;
		p->n_pings--;
		ev_timer_stop(p->ps->loop, &hit->timeout);
	}
	p->srtt_ms = p->srtt_ms < 0 ? rtt : (1 - RTT_EWMA_ALPHA) * p->srtt_ms + RTT_EWMA_ALPHA * rtt;
	/* Last: the callback may do anything, even revoke this peer. */
	if (hit) {
		hit->cb(hit->arg, rtt);
		free(hit);
	}
}

static void
handle_ip(struct peers *ps, struct peer *p, const uint8_t *ip, size_t len)
{
	struct wire_r r;
	uint32_t src;

	if (len < IPV4_MIN_HEADER || (ip[0] >> 4) != 4) {
		ps->st.rx_dropped_malformed++;
		return;
	}
	wire_r_init(&r, ip + 12, 4);
	src = wire_get_u32(&r);
	/* Anti-spoofing: a peer speaks only for its own virtual address. */
	if (p->vaddr == 0 || src != p->vaddr) {
		ps->xst.rx_spoofed++;
		ps->st.rx_dropped_auth++;
		peers_drop_debug(ps, "inner_source_spoofed", &p->path.ep);
		return;
	}
	ps->st.rx_data++;
	ps->ops.deliver(ps->ops_arg, ip, len);
}

/*
 * The peer's boot id. A new one after a known one: the peer restarted, and whatever it had of
 * our connections is gone: reset ours now (ops.peer_gone) rather than let programs wait for
 * a timeout (an idle reader would never hear of it). Last: the owner's code runs.
 */
static void
handle_boot(struct peers *ps, struct peer *p, const uint8_t *body)
{
	struct wire_r r;
	uint64_t boot;
	int restarted;

	wire_r_init(&r, body, 8);
	boot = wire_get_u64(&r);
	restarted = p->peer_boot_known && boot != p->peer_boot;
	p->peer_boot = boot;
	p->peer_boot_known = 1;
	if (!restarted)
		return;
	log_info("event=peer_restarted peer=%s reset_connections=1", p->id);
	if (p->vaddr != 0)
		ps->ops.peer_gone(ps->ops_arg, p->vaddr);
}

void
receive_data(struct peers *ps, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct peer_index *e;
	struct keypair *kp;
	struct peer *p;
	uint32_t index;
	uint8_t *pt;
	int n;

	if (session_peek_index(pkt, len, &index) != 0) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "data_short", from);
		return;
	}
	if ((e = peerindex_lookup(ps, index)) == NULL || (kp = e->kp) == NULL) {
		ps->st.rx_dropped_unknown++;
		peers_drop_debug(ps, "data_unknown_index", from);
		return;
	}
	p = e->peer;
	if (session_expired(&kp->s, peers_now(ps))) {
		ps->xst.rx_expired++;
		ps->st.rx_dropped_unknown++;
		peers_drop_debug(ps, "data_expired_session", from);
		return;
	}
	/*
	 * Decrypt in place (libsodium allows plaintext == ciphertext): the plaintext lands in
	 * the receive buffer right after the header, saving a pass through a scratch buffer.
	 * The header stays intact, and a failed open leaves the buffer as it was (the tag is
	 * checked before anything is decrypted), so the replay probe below still reads it.
	 */
	pt = pkt + UDP_DATA_HEADER_LEN;
	n = session_open(&kp->s, pkt, len, pt, len - UDP_DATA_HEADER_LEN);
	if (n < 0) {
		/* Tell replays from forgeries on a copy of the window (failure path only). */
		struct replay_window probe = kp->s.replay;
		struct wire_r r;
		uint64_t counter;

		wire_r_init(&r, pkt + 8, 8);
		counter = wire_get_u64(&r);
		if (replay_check(&probe, counter) != 0) {
			ps->st.rx_dropped_replay++;
			peers_drop_debug(ps, "data_replay", from);
		} else {
			ps->st.rx_dropped_auth++;
			peers_drop_debug(ps, "data_auth", from);
		}
		return;
	}

	/* Authenticated: from here on the packet speaks for p. */
	p->rx_bytes += len;
	path_authenticated_from(p, from);
	timers_any_authenticated_packet_received(p);
	if (kp == p->next) {
		/* The initiator used the keys: our responder session is confirmed. */
		peer_confirm_next(p);
		timers_handshake_complete(p);
		send_boot(p);
		send_staged(p);
		send_pending_pings(p);
	}
	timers_check_rekey_on_receive(p, kp);
	if (n == 0)
		return;             /* keepalive */
	timers_data_received(p);

	switch (pt[0]) {
	case INNER_IP:
		handle_ip(ps, p, pt + 1, (size_t)n - 1);
		break;
	case INNER_PING:
		if (n - 1 != 16) {
			ps->st.rx_dropped_malformed++;
			break;
		}
		(void)peer_send_inner(p, INNER_PONG, pt + 1, 16);
		break;
	case INNER_PONG:
		handle_pong(p, pt + 1, (size_t)n - 1);
		break;
	case INNER_BOOT:
		if (n - 1 != 8) {
			ps->st.rx_dropped_malformed++;
			break;
		}
		handle_boot(ps, p, pt + 1);
		break;
	default:
		/* A newer peer's inner type: authenticated, so just ignore it. */
		ps->st.rx_dropped_malformed++;
		break;
	}
}

void
peers_receive(struct peers *ps, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	if (len == 0) {
		ps->st.rx_dropped_malformed++;
		return;
	}
	switch (pkt[0]) {
	case UDP_HANDSHAKE_INIT:
		handshake_receive_init(ps, from, pkt, len);
		break;
	case UDP_HANDSHAKE_RESP:
		handshake_receive_resp(ps, from, pkt, len);
		break;
	case UDP_COOKIE_REPLY:
		handshake_receive_cookie(ps, from, pkt, len);
		break;
	case UDP_DATA:
		receive_data(ps, from, pkt, len);
		break;
	default:
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "unknown_type", from);
		break;
	}
}
