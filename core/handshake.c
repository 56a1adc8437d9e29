/*
 * handshake: the UDP framing of the peer handshake around core/noise (Noise IK).
 *
 *   initiator                                              responder
 *   UDP_HANDSHAKE_INIT [type][0 0 0][sender idx][-> e, es, s, ss, {TAI64N}]  --->
 *   <--- UDP_HANDSHAKE_RESP [type][0 0 0][sender idx][receiver idx][<- e, ee, se, {}]
 *
 * Message 1 ends with mac1 and mac2 (PROTOCOL.md 2.1, 2.5, after WireGuard): mac1, keyed by
 * the responder's public key, lets it drop what is not meant for it without X25519; under load
 * (hslimit.c) it answers a message 1 without a valid mac2 with a UDP_COOKIE_REPLY, a MAC of
 * the source address and port sealed for the initiator, and only initiations whose mac2 proves
 * their address are processed (and limited per address).
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

/* HASH(label || public key): the mac1 and cookie keys (8-byte labels, as WireGuard's). */
static void
derive(const char label[8], const uint8_t pub[KEY_LEN], uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)label, 8);
	crypto_generichash_update(&st, pub, KEY_LEN);
	crypto_generichash_final(&st, out, 32);
}

static void
mac16(uint8_t out[HS_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *d, size_t n)
{
	crypto_generichash(out, HS_MAC_LEN, d, n, key, keylen);
}

void
handshake_make_prologue(struct peers *ps)
{
	struct wire_w w;

	wire_w_init(&w, ps->prologue, sizeof(ps->prologue));
	wire_put_bytes(&w, prologue_label, sizeof(prologue_label) - 1);
	wire_put_u16(&w, SHOAL_PROTO_VERSION);
	ps->prologue_len = wire_w_len(&w);
	/* What checks and answers initiations to us: keys from our own public key. */
	derive("mac1----", ps->key->pub, ps->mac1_key);
	derive("cookie--", ps->key->pub, ps->cookie_key);
}

/* mac1 (keyed by the peer's public key) and mac2 (by its cookie, while fresh; else zeros). */
static void
init_macs(struct peer *p, uint8_t pkt[UDP_HANDSHAKE_INIT_LEN], double now)
{
	uint8_t k[32];

	derive("mac1----", p->key, k);
	mac16(pkt + HS_INIT_BODY_LEN, k, sizeof(k), pkt, HS_INIT_BODY_LEN);
	if (p->cookie_at > 0 && now - p->cookie_at < COOKIE_TTL)
		mac16(pkt + HS_INIT_BODY_LEN + HS_MAC_LEN, p->cookie, HS_MAC_LEN, pkt,
		    HS_INIT_BODY_LEN + HS_MAC_LEN);
	else
		memset(pkt + HS_INIT_BODY_LEN + HS_MAC_LEN, 0, HS_MAC_LEN);
}

/* The cookie of a source: MAC(secret, address, port); the secret lives COOKIE_TTL. */
static void
cookie_for(struct peers *ps, const struct endpoint *from, double now, uint8_t out[HS_MAC_LEN])
{
	uint8_t a[EP_WIRE_MAX];
	struct wire_w w;

	if (ps->cookie_secret_at == 0 || now - ps->cookie_secret_at >= COOKIE_TTL) {
		randombytes_buf(ps->cookie_secret, sizeof(ps->cookie_secret));
		ps->cookie_secret_at = now;
	}
	wire_w_init(&w, a, sizeof(a));
	/* Bound to the whole source address and port, IPv4 or IPv6 (family byte included). */
	ep_put(&w, from);
	mac16(out, ps->cookie_secret, sizeof(ps->cookie_secret), a, wire_w_len(&w));
}

/* UDP_COOKIE_REPLY: the cookie sealed with our cookie key, bound to the initiation's mac1. */
static void
send_cookie_reply(struct peers *ps, const struct endpoint *to, uint32_t receiver,
    const uint8_t mac1[HS_MAC_LEN], const uint8_t cookie[HS_MAC_LEN])
{
	uint8_t out[UDP_COOKIE_REPLY_LEN];
	unsigned long long clen;
	struct wire_w w;

	wire_w_init(&w, out, sizeof(out));
	wire_put_u8(&w, UDP_COOKIE_REPLY);
	wire_put_u8(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, receiver);
	randombytes_buf(out + 8, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 32, &clen, cookie, HS_MAC_LEN, mac1,
	    HS_MAC_LEN, NULL, out + 8, ps->cookie_key);
	ps->xst.cookies_sent++;
	transport_send(ps->tp, to, out, sizeof(out));
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
	    HS_INIT_BODY_LEN - wire_w_len(&w));
	if (w.err || r != (int)(HS_INIT_BODY_LEN - 8)) {
		log_warnx("event=handshake_build_failed peer=%s", p->id);
		handshake_clear(p);
		return;
	}
	init_macs(p, pkt, now);
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
	uint8_t ts[TAI64N_LEN], out[UDP_HANDSHAKE_RESP_LEN], m[HS_MAC_LEN], cookie[HS_MAC_LEN];
	const uint8_t *msg, *mac1, *mac2;
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
	msg = wire_get_ptr(&r, HS_INIT_BODY_LEN - 8);
	mac1 = wire_get_ptr(&r, HS_MAC_LEN);
	mac2 = wire_get_ptr(&r, HS_MAC_LEN);
	if (wire_r_done(&r) != 0 || type != UDP_HANDSHAKE_INIT || z1 != 0 || z2 != 0) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "init_header", from);
		return;
	}
	/* mac1 first: costs one hash, and what is not meant for us goes no further. */
	mac16(m, ps->mac1_key, sizeof(ps->mac1_key), pkt, HS_INIT_BODY_LEN);
	if (sodium_memcmp(m, mac1, HS_MAC_LEN) != 0) {
		ps->xst.rx_bad_mac++;
		peers_drop_debug(ps, "init_mac1", from);
		return;
	}
	/* Each message 1 costs four X25519 operations. Under load only sources that proved
	 * their address (mac2 with our cookie) get them, and within their own budget. */
	if (hslimit_loaded(ps->rl, now)) {
		cookie_for(ps, from, now, cookie);
		mac16(m, cookie, sizeof(cookie), pkt, HS_INIT_BODY_LEN + HS_MAC_LEN);
		if (sodium_memcmp(m, mac2, HS_MAC_LEN) != 0) {
			send_cookie_reply(ps, from, sender, mac1, cookie);
			peers_drop_debug(ps, "init_cookie_sent", from);
			return;
		}
		if (!hslimit_allow_ip(ps->rl, ep_source_key(from), now)) {
			ps->xst.rx_ratelimited++;
			peers_drop_debug(ps, "init_ratelimited", from);
			return;
		}
	}

	noise_hs_init(&hs, 0, ps->key, NULL, ps->prologue, ps->prologue_len);
	/* e, es, s, ss, {timestamp} */
	if (noise_hs_read(&hs, msg, HS_INIT_BODY_LEN - 8, ts, sizeof(ts)) != TAI64N_LEN) {
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
handshake_receive_cookie(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	uint8_t k[32], cookie[HS_MAC_LEN];
	const uint8_t *nonce, *box;
	struct peer_index *e;
	struct wire_r r;
	struct peer *p;
	uint32_t receiver;
	uint8_t type, z1;
	uint16_t z2;

	if (len != UDP_COOKIE_REPLY_LEN) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "cookie_length", from);
		return;
	}
	wire_r_init(&r, pkt, len);
	type = wire_get_u8(&r);
	z1 = wire_get_u8(&r);
	z2 = wire_get_u16(&r);
	receiver = wire_get_u32(&r);
	nonce = wire_get_ptr(&r, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	box = wire_get_ptr(&r, HS_MAC_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	if (wire_r_done(&r) != 0 || type != UDP_COOKIE_REPLY || z1 != 0 || z2 != 0) {
		ps->st.rx_dropped_malformed++;
		peers_drop_debug(ps, "cookie_header", from);
		return;
	}
	e = peerindex_lookup(ps, receiver);
	if (e == NULL || e->kp != NULL || !e->peer->hs_active) {
		ps->st.rx_dropped_unknown++;
		peers_drop_debug(ps, "cookie_unknown_index", from);
		return;
	}
	p = e->peer;
	/* Sealed by the peer's cookie key and bound to our initiation's mac1: only the peer we
	 * sent it to can make one, and only for this initiation. */
	derive("cookie--", p->key, k);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, box,
	    HS_MAC_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES, p->hs_pkt + HS_INIT_BODY_LEN,
	    HS_MAC_LEN, nonce, k) != 0) {
		ps->st.rx_dropped_auth++;
		peers_drop_debug(ps, "cookie_auth", from);
		return;
	}
	memcpy(p->cookie, cookie, sizeof(cookie));
	p->cookie_at = peers_now(ps);
	ps->xst.cookies_received++;
	sodium_memzero(cookie, sizeof(cookie));
	/* The same initiation, now with mac2, at once: the peer is busy, not gone. */
	init_macs(p, p->hs_pkt, p->cookie_at);
	transport_send(ps->tp, from, p->hs_pkt, sizeof(p->hs_pkt));
	log_debug("event=handshake_cookie peer=%s", p->id);
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
	char ep[EP_STR_LEN];

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
	if (!hslimit_allow(ps->rl, ep_source_key(from), now)) {
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
		    ep_str(from, ep));

	/* The responder may send only once it sees us use the keys: our boot id is that packet
	 * (and tells it whether we restarted). */
	send_boot(p);
	send_staged(p);
	send_pending_pings(p);
}
