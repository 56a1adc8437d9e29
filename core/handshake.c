/*
 * handshake: the UDP framing of the peer handshake around core/noise (Noise IK).
 *
 *   initiator                                              responder
 *   UDP_HANDSHAKE_INIT [type][0 0 0][sender idx][-> e, es, s, ss, {TAI64N}]  --->
 *   <--- UDP_HANDSHAKE_RESP [type][0 0 0][sender idx][receiver idx][<- e, ee, se, {}]
 *
 * Prologue "shoal-peer" || u16 SHOAL_PROTO_VERSION, so versions never mix. The responder
 * accepts message 1 only from an authorized key and only with a timestamp newer than the last
 * one it accepted from that key (a replayed message 1 would otherwise make it derive keys and
 * answer). Message 2 is checked on a copy of our handshake state, so a forged response cannot
 * break the real one. Layouts byte by byte: docs/PROTOCOL.md section 2.
 * Owns: the framing, TAI64N timestamps and each peer's in-flight initiation (its state and
 * the bytes sent, which hole punching resends unchanged: handshake_resend).
 * Must not: decide when to (re)initiate (timers.c) or choose endpoints (path.c).
 */
#include "config.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/peer_impl.h"
#include "core/transport.h"
#include "base/wire.h"

static const char prologue_label[] = "shoal-peer";

void
handshake_make_prologue(struct peers *ps)
{
	struct wire_w w;

	wire_w_init(&w, ps->prologue, sizeof(ps->prologue));
	wire_put_bytes(&w, prologue_label, sizeof(prologue_label) - 1);
	wire_put_u16(&w, SHOAL_PROTO_VERSION);
	ps->prologue_len = wire_w_len(&w);
}

/* TAI64N: u64 2^62 + 10 + seconds, u32 nanoseconds; strictly increasing per peer. */
static void
tai64n_next(struct peer *p, uint8_t out[TAI64N_LEN])
{
	struct timespec ts;
	struct wire_w w;
	struct wire_r r;
	uint64_t sec, psec;
	uint32_t nsec, pnsec;

	clock_gettime(CLOCK_REALTIME, &ts);
	sec = 0x400000000000000aULL + (uint64_t)ts.tv_sec;
	nsec = (uint32_t)ts.tv_nsec;
	wire_r_init(&r, p->ts_tx, TAI64N_LEN);
	psec = wire_get_u64(&r);
	pnsec = wire_get_u32(&r);
	/* Two initiations within the clock's resolution (forced rekeys, tests) must still
	 * be ordered, or the responder would take the second for a replay. */
	if (sec < psec || (sec == psec && nsec <= pnsec)) {
		sec = psec;
		nsec = pnsec + 1;
		if (nsec >= 1000000000u) {
			sec++;
			nsec = 0;
		}
	}
	wire_w_init(&w, out, TAI64N_LEN);
	wire_put_u64(&w, sec);
	wire_put_u32(&w, nsec);
	memcpy(p->ts_tx, out, TAI64N_LEN);
}

void
handshake_clear(struct peer *p)
{
	peerindex_remove(p->ps, &p->hs_idx);
	noise_hs_wipe(&p->hs);
	p->hs_active = 0;
	sodium_memzero(p->hs_pkt, sizeof(p->hs_pkt));
	ev_timer_stop(p->ps->loop, &p->t_retransmit);
}

void
handshake_initiate(struct peer *p, int retry)
{
	struct peers *ps = p->ps;
	double now = peers_now(ps);
	uint8_t pkt[UDP_HANDSHAKE_INIT_LEN], ts[TAI64N_LEN];
	struct endpoint targets[PATH_MAX_TARGETS];
	struct wire_w w;
	size_t n, i;
	int r;

	/* One initiation per REKEY_TIMEOUT; the retransmit timer does the rest. */
	if (!retry && p->hs_active && now - p->hs_last_sent < REKEY_TIMEOUT)
		return;
	if (!p->hs_active)
		p->hs_started = now;

	peerindex_remove(ps, &p->hs_idx);
	noise_hs_wipe(&p->hs);
	noise_hs_init(&p->hs, 1, ps->key, p->key, ps->prologue, ps->prologue_len);
	peerindex_insert(ps, &p->hs_idx, p, NULL);
	tai64n_next(p, ts);

	wire_w_init(&w, pkt, sizeof(pkt));
	wire_put_u8(&w, UDP_HANDSHAKE_INIT);
	wire_put_u8(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, p->hs_idx.index);
	r = noise_hs_write(&p->hs, ts, sizeof(ts), pkt + wire_w_len(&w),
	    sizeof(pkt) - wire_w_len(&w));
	if (w.err || r != (int)(sizeof(pkt) - 8)) {
		log_warnx("event=handshake_build_failed peer=%s", p->id);
		handshake_clear(p);
		return;
	}
	p->hs_active = 1;
	p->hs_last_sent = now;
	memcpy(p->hs_pkt, pkt, sizeof(pkt));

	n = path_handshake_targets(p, now, targets, sizeof(targets) / sizeof(targets[0]));
	for (i = 0; i < n; i++)
		transport_send(ps->tp, &targets[i], pkt, sizeof(pkt));
	log_debug("event=handshake_initiation peer=%s targets=%zu retry=%d", p->id, n, retry);
	if (n > 0)
		timers_any_authenticated_packet_sent(p);
	timers_handshake_initiated(p);
}

int
handshake_resend(struct peer *p, const struct endpoint *to, size_t n)
{
	size_t i;

	if (!p->hs_active)
		return -1;
	for (i = 0; i < n; i++)
		transport_send(p->ps->tp, &to[i], p->hs_pkt, sizeof(p->hs_pkt));
	return (int)n;
}

void
handshake_receive_init(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	double now = peers_now(ps);
	struct noise_hs hs;
	struct noise_cs cs_send, cs_recv;
	uint8_t ts[TAI64N_LEN], out[UDP_HANDSHAKE_RESP_LEN];
	const uint8_t *msg;
	struct wire_r r;
	struct wire_w w;
	struct keypair *kp;
	struct peer *p;
	uint32_t sender;
	uint8_t type, z1;
	uint16_t z2;
	int n;

	if (len != UDP_HANDSHAKE_INIT_LEN) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "init_length", from);
		return;
	}
	wire_r_init(&r, pkt, len);
	type = wire_get_u8(&r);
	z1 = wire_get_u8(&r);
	z2 = wire_get_u16(&r);
	sender = wire_get_u32(&r);
	msg = wire_get_ptr(&r, len - 8);
	if (wire_r_done(&r) != 0 || type != UDP_HANDSHAKE_INIT || z1 != 0 || z2 != 0) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "init_header", from);
		return;
	}
	/* Each message 1 costs four X25519 operations: bound them per source. */
	if (!hslimit_allow(ps->rl, from->addr, now)) {
		ps->xst.rx_ratelimited++;
		peers_drop_debug(ps, "init_ratelimited", from);
		return;
	}

	noise_hs_init(&hs, 0, ps->key, NULL, ps->prologue, ps->prologue_len);
	/* e, es, s, ss, {timestamp} */
	if (noise_hs_read(&hs, msg, len - 8, ts, sizeof(ts)) != TAI64N_LEN) {
		ps->st.rx_dropped_auth++;
		peers_drop_debug(ps, "init_auth", from);
		goto out;
	}
	if ((p = peers_lookup_key(ps, noise_hs_remote_static(&hs))) == NULL) {
		/* A valid key, but not one the mediator vouches for. */
		ps->st.rx_dropped_auth++;
		ps->xst.rx_unauthorized++;
		peers_drop_debug(ps, "init_unauthorized", from);
		goto out;
	}
	if (memcmp(ts, p->ts_rx, TAI64N_LEN) <= 0) {
		ps->st.rx_dropped_replay++;
		ps->xst.rx_hs_replay++;
		peers_drop_debug(ps, "init_replay", from);
		goto out;
	}

	kp = peer_keypair_alloc(p);
	peerindex_insert(ps, &kp->idx, p, kp);
	wire_w_init(&w, out, sizeof(out));
	wire_put_u8(&w, UDP_HANDSHAKE_RESP);
	wire_put_u8(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, kp->idx.index);
	wire_put_u32(&w, sender);
	/* e, ee, se, {} */
	n = noise_hs_write(&hs, NULL, 0, out + 12, sizeof(out) - 12);
	if (w.err || n != (int)(sizeof(out) - 12) || noise_hs_split(&hs, &cs_send, &cs_recv) != 0) {
		log_warnx("event=handshake_response_failed peer=%s", p->id);
		peer_keypair_free(p, kp);
		goto out;
	}
	memcpy(p->ts_rx, ts, TAI64N_LEN);
	session_init(&kp->s, cs_send.k, cs_recv.k, kp->idx.index, sender, 0, now);
	sodium_memzero(&cs_send, sizeof(cs_send));
	sodium_memzero(&cs_recv, sizeof(cs_recv));
	peer_install_responder(p, kp);
	ps->st.handshakes_done++;

	path_authenticated_from(p, from);
	timers_any_authenticated_packet_received(p);
	transport_send(ps->tp, from, out, sizeof(out));
	timers_any_authenticated_packet_sent(p);
	timers_session_derived(p);
	log_debug("event=handshake_answered peer=%s", p->id);
out:
	noise_hs_wipe(&hs);
}

void
handshake_receive_resp(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	double now = peers_now(ps);
	struct noise_hs hs;
	struct noise_cs cs_send, cs_recv;
	struct peer_index *e;
	struct keypair *kp;
	const uint8_t *msg;
	struct wire_r r;
	struct peer *p;
	uint32_t sender, receiver, index;
	uint8_t type, z1;
	uint16_t z2;
	int was_up;
	char ep[IP4_EP_STR_LEN];

	if (len != UDP_HANDSHAKE_RESP_LEN) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "resp_length", from);
		return;
	}
	wire_r_init(&r, pkt, len);
	type = wire_get_u8(&r);
	z1 = wire_get_u8(&r);
	z2 = wire_get_u16(&r);
	sender = wire_get_u32(&r);
	receiver = wire_get_u32(&r);
	msg = wire_get_ptr(&r, len - 12);
	if (wire_r_done(&r) != 0 || type != UDP_HANDSHAKE_RESP || z1 != 0 || z2 != 0) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "resp_header", from);
		return;
	}
	e = peerindex_lookup(ps, receiver);
	if (e == NULL || e->kp != NULL || !e->peer->hs_active) {
		/* Not an initiation of ours in flight (late duplicate, or made up). */
		ps->st.rx_dropped_unknown++;
		peers_drop_debug(ps, "resp_unknown_index", from);
		return;
	}
	if (!hslimit_allow(ps->rl, from->addr, now)) {
		ps->xst.rx_ratelimited++;
		peers_drop_debug(ps, "resp_ratelimited", from);
		return;
	}
	p = e->peer;
	index = p->hs_idx.index;

	/* e, ee, se, {} -- on a copy: a forgery must leave our initiation usable. */
	hs = p->hs;
	if (noise_hs_read(&hs, msg, len - 12, NULL, 0) != 0 ||
	    noise_hs_split(&hs, &cs_send, &cs_recv) != 0) {
		ps->st.rx_dropped_auth++;
		peers_drop_debug(ps, "resp_auth", from);
		noise_hs_wipe(&hs);
		return;
	}
	noise_hs_wipe(&hs);
	was_up = path_current(p, now) != PATH_NONE;

	/* The initiation's index now names the session. */
	handshake_clear(p);
	kp = peer_keypair_alloc(p);
	session_init(&kp->s, cs_send.k, cs_recv.k, index, sender, 1, now);
	sodium_memzero(&cs_send, sizeof(cs_send));
	sodium_memzero(&cs_recv, sizeof(cs_recv));
	peerindex_insert_as(ps, &kp->idx, index, p, kp);
	peer_install_initiator(p, kp);
	ps->st.handshakes_done++;

	path_authenticated_from(p, from);
	timers_any_authenticated_packet_received(p);
	timers_handshake_complete(p);
	timers_session_derived(p);
	if (!was_up)
		log_info("event=peer_up peer=%s endpoint=%s", p->id,
		    ip4_ep_str(from->addr, from->port, ep));

	/* The responder may send only once it sees us use the keys: give it a packet. */
	if (send_staged(p) + send_pending_pings(p) == 0)
		send_keepalive(p);
}
