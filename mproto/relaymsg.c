/*
 * relaymsg: see relaymsg.h. Layouts (big-endian), each after the 4-byte UDP header (type, three
 * zero bytes):
 *   BIND      pair u64, side u8, zero[3], expiry u32, counter u64, mac[16]
 *   BIND_ACK  pair u64, side u8, peer_bound u8, zero[2], counter u64, mac[16]
 *   DATA      pair u64, payload
 *   PING/PONG nonce u64
 * MACs are keyed BLAKE2b-128 over every byte before them, keyed with the side secret.
 */
#include "config.h"
#include "mproto/relaymsg.h"

#include <sodium.h>
#include <string.h>

#include "base/wire.h"

static const char SIDE_CONTEXT[] = "shoal-relay-side-v1";

void
relaymsg_side_secret(const uint8_t relay_key[RELAY_KEY_LEN], uint64_t pair, uint8_t side,
    uint32_t expiry, uint8_t out[RELAY_SECRET_LEN])
{
	crypto_generichash_state st;
	uint8_t buf[8 + 1 + 4];
	struct wire_w w;

	wire_w_init(&w, buf, sizeof(buf));
	wire_put_u64(&w, pair);
	wire_put_u8(&w, side);
	wire_put_u32(&w, expiry);
	crypto_generichash_init(&st, relay_key, RELAY_KEY_LEN, RELAY_SECRET_LEN);
	crypto_generichash_update(&st, (const uint8_t *)SIDE_CONTEXT, sizeof(SIDE_CONTEXT) - 1);
	crypto_generichash_update(&st, buf, sizeof(buf));
	crypto_generichash_final(&st, out, RELAY_SECRET_LEN);
}

static void
mac(const uint8_t secret[RELAY_SECRET_LEN], const uint8_t *msg, size_t len,
    uint8_t out[RELAY_MAC_LEN])
{
	crypto_generichash(out, RELAY_MAC_LEN, msg, len, secret, RELAY_SECRET_LEN);
}

static int
verify(const uint8_t *in, size_t len, size_t want, const uint8_t secret[RELAY_SECRET_LEN])
{
	uint8_t m[RELAY_MAC_LEN];

	if (len != want)
		return -1;
	mac(secret, in, len - RELAY_MAC_LEN, m);
	return sodium_memcmp(m, in + len - RELAY_MAC_LEN, RELAY_MAC_LEN) == 0 ? 0 : -1;
}

static void
header_put(struct wire_w *w, uint8_t type)
{
	wire_put_u8(w, type);
	wire_put_u8(w, 0);
	wire_put_u16(w, 0);
}

static void
header_get(struct wire_r *r, uint8_t type)
{
	if (wire_get_u8(r) != type || wire_get_u8(r) != 0 || wire_get_u16(r) != 0)
		r->err = 1;
}

int
relay_bind_encode(const struct relay_bind *b, const uint8_t secret[RELAY_SECRET_LEN],
    uint8_t *out, size_t cap)
{
	struct wire_w w;

	if (b->side > 1 || cap < RELAY_BIND_LEN)
		return -1;
	wire_w_init(&w, out, cap);
	header_put(&w, UDP_RELAY_BIND);
	wire_put_u64(&w, b->pair);
	wire_put_u8(&w, b->side);
	wire_put_u8(&w, 0);
	wire_put_u16(&w, 0);
	wire_put_u32(&w, b->expiry);
	wire_put_u64(&w, b->counter);
	if (w.err)
		return -1;
	mac(secret, out, w.off, out + w.off);
	return RELAY_BIND_LEN;
}

int
relay_bind_decode(const uint8_t *in, size_t len, struct relay_bind *b)
{
	struct wire_r r;

	if (len != RELAY_BIND_LEN)
		return -1;
	wire_r_init(&r, in, len - RELAY_MAC_LEN);
	header_get(&r, UDP_RELAY_BIND);
	b->pair = wire_get_u64(&r);
	b->side = wire_get_u8(&r);
	if (wire_get_u8(&r) != 0 || wire_get_u16(&r) != 0 || b->side > 1)
		r.err = 1;
	b->expiry = wire_get_u32(&r);
	b->counter = wire_get_u64(&r);
	return wire_r_done(&r);
}

int
relay_bind_verify(const uint8_t *in, size_t len, const uint8_t secret[RELAY_SECRET_LEN])
{
	return verify(in, len, RELAY_BIND_LEN, secret);
}

int
relay_bind_ack_encode(const struct relay_bind_ack *a, const uint8_t secret[RELAY_SECRET_LEN],
    uint8_t *out, size_t cap)
{
	struct wire_w w;

	if (a->side > 1 || a->peer_bound > 1 || cap < RELAY_BIND_ACK_LEN)
		return -1;
	wire_w_init(&w, out, cap);
	header_put(&w, UDP_RELAY_BIND_ACK);
	wire_put_u64(&w, a->pair);
	wire_put_u8(&w, a->side);
	wire_put_u8(&w, a->peer_bound);
	wire_put_u16(&w, 0);
	wire_put_u64(&w, a->counter);
	if (w.err)
		return -1;
	mac(secret, out, w.off, out + w.off);
	return RELAY_BIND_ACK_LEN;
}

int
relay_bind_ack_decode(const uint8_t *in, size_t len, struct relay_bind_ack *a)
{
	struct wire_r r;

	if (len != RELAY_BIND_ACK_LEN)
		return -1;
	wire_r_init(&r, in, len - RELAY_MAC_LEN);
	header_get(&r, UDP_RELAY_BIND_ACK);
	a->pair = wire_get_u64(&r);
	a->side = wire_get_u8(&r);
	a->peer_bound = wire_get_u8(&r);
	if (wire_get_u16(&r) != 0 || a->side > 1 || a->peer_bound > 1)
		r.err = 1;
	a->counter = wire_get_u64(&r);
	return wire_r_done(&r);
}

int
relay_bind_ack_verify(const uint8_t *in, size_t len, const uint8_t secret[RELAY_SECRET_LEN])
{
	return verify(in, len, RELAY_BIND_ACK_LEN, secret);
}

int
relay_data_header(uint64_t pair, uint8_t *out, size_t cap)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	header_put(&w, UDP_RELAY_DATA);
	wire_put_u64(&w, pair);
	return w.err ? -1 : RELAY_DATA_HDR;
}

int
relay_data_decode(const uint8_t *in, size_t len, uint64_t *pair)
{
	struct wire_r r;

	if (len <= RELAY_DATA_HDR)
		return -1;
	wire_r_init(&r, in, RELAY_DATA_HDR);
	header_get(&r, UDP_RELAY_DATA);
	*pair = wire_get_u64(&r);
	return wire_r_done(&r);
}

int
relay_ping_encode(uint8_t type, uint64_t nonce, uint8_t *out, size_t cap)
{
	struct wire_w w;

	if (type != UDP_RELAY_PING && type != UDP_RELAY_PONG)
		return -1;
	wire_w_init(&w, out, cap);
	header_put(&w, type);
	wire_put_u64(&w, nonce);
	return w.err ? -1 : RELAY_PING_LEN;
}

int
relay_ping_decode(const uint8_t *in, size_t len, uint8_t type, uint64_t *nonce)
{
	struct wire_r r;

	if (len != RELAY_PING_LEN)
		return -1;
	wire_r_init(&r, in, len);
	header_get(&r, type);
	*nonce = wire_get_u64(&r);
	return wire_r_done(&r);
}
