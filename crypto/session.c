/*
 * session: the transport half of a peer session: the RFC 6479 anti-replay window, and
 * sealing/opening UDP_DATA packets with the keys a Noise IK handshake produced.
 *
 * UDP_DATA (all integers big-endian; docs/PROTOCOL.md section 2 has the table):
 *   0   u8   type = UDP_DATA
 *   1   3    zero
 *   4   u32  receiver index (the receiving side's local_index)
 *   8   u64  counter (the AEAD nonce; never reused under one key)
 *   16  ...  ChaCha20-Poly1305(send_key, nonce = counter, ad = bytes 0..15,
 *                              plaintext = [u8 inner type][body], or empty for a keepalive)
 *
 * Owns: the keys inside struct session (session_wipe clears them). Must not: do I/O, read
 * clocks (callers pass `now`), allocate, or log: a bad packet is the caller's to count.
 */
#include "config.h"
#include "crypto/session.h"

#include <limits.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "base/wire.h"

_Static_assert(REPLAY_WINDOW_BITS % REPLAY_WORD_BITS == 0, "whole words");
_Static_assert((REPLAY_WORDS & (REPLAY_WORDS - 1)) == 0, "ring of 2^n words");

/* How far behind the newest counter a packet may be: one word is kept spare (RFC 6479 3.). */
#define REPLAY_WINDOW_SIZE ((uint64_t)REPLAY_WINDOW_BITS - REPLAY_WORD_BITS)

/* ---- RFC 6479 sliding window ---- */

/*
 * The bitmap is a ring of REPLAY_WORDS words; the word for counter c is (c / 64) mod WORDS.
 * Moving forward clears only the words skipped over, so a jump costs at most WORDS stores
 * instead of a shift of the whole bitmap (RFC 6479, section 2).
 */
void
replay_init(struct replay_window *rw)
{
	memset(rw, 0, sizeof(*rw));
}

/* 0 when counter would be accepted; does not mark it. */
static int
replay_peek(const struct replay_window *rw, uint64_t counter)
{
	uint64_t newest;

	/* top is newest + 1, so UINT64_MAX cannot be recorded; sessions die long before. */
	if (counter == UINT64_MAX)
		return -1;
	if (rw->top == 0 || counter >= rw->top)
		return 0;
	newest = rw->top - 1;
	if (newest - counter > REPLAY_WINDOW_SIZE)
		return -1;                          /* too old to tell: treat as replayed */
	if (rw->bitmap[(counter / REPLAY_WORD_BITS) % REPLAY_WORDS] &
	    ((uint64_t)1 << (counter % REPLAY_WORD_BITS)))
		return -1;
	return 0;
}

int
replay_check(struct replay_window *rw, uint64_t counter)
{
	uint64_t idx, cur, steps, i;

	if (replay_peek(rw, counter) != 0)
		return -1;
	idx = counter / REPLAY_WORD_BITS;
	if (counter >= rw->top) {
		if (rw->top != 0) {
			/* Clear the words between the old newest and this one. */
			cur = (rw->top - 1) / REPLAY_WORD_BITS;
			steps = idx - cur;
			if (steps > REPLAY_WORDS)
				steps = REPLAY_WORDS;
			for (i = 1; i <= steps; i++)
				rw->bitmap[(cur + i) % REPLAY_WORDS] = 0;
		}
		rw->top = counter + 1;
	}
	rw->bitmap[idx % REPLAY_WORDS] |= (uint64_t)1 << (counter % REPLAY_WORD_BITS);
	return 0;
}

/* ---- sessions ---- */

void
session_init(struct session *s, const uint8_t send_key[KEY_LEN],
    const uint8_t recv_key[KEY_LEN], uint32_t local_index, uint32_t remote_index,
    int initiator, double now)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->send_key, send_key, KEY_LEN);
	memcpy(s->recv_key, recv_key, KEY_LEN);
	s->send_counter = 0;
	replay_init(&s->replay);
	s->local_index = local_index;
	s->remote_index = remote_index;
	s->created = now;
	s->initiator = initiator ? 1 : 0;
	s->valid = 1;
}

void
session_wipe(struct session *s)
{
	sodium_memzero(s, sizeof(*s));
}

int
session_expired(const struct session *s, double now)
{
	if (!s->valid)
		return 1;
	if (now - s->created >= REJECT_AFTER_TIME)
		return 1;
	return s->send_counter >= REJECT_AFTER_MESSAGES ||
	    s->replay.top >= REJECT_AFTER_MESSAGES;
}

/*
 * Time-based rekeying is the initiator's job only: if both sides rekeyed on a timer they
 * would race each other with crossing handshakes (WireGuard's rule). A side that has sent
 * REKEY_AFTER_MESSAGES needs new keys whichever role it had.
 */
int
session_needs_rekey(const struct session *s, double now)
{
	if (!s->valid)
		return 0;
	if (s->send_counter >= REKEY_AFTER_MESSAGES)
		return 1;
	return s->initiator && now - s->created >= REKEY_AFTER_TIME;
}

int
session_seal(struct session *s, uint8_t inner_type, const uint8_t *body, size_t body_len,
    uint8_t *out, size_t out_cap)
{
	struct wire_w w;
	size_t pt_len;
	uint64_t counter;
	int n;

	if (!s->valid || s->send_counter >= REJECT_AFTER_MESSAGES)
		return -1;
	/* inner_type 0 is a keepalive: an empty plaintext, no inner type byte. */
	if (inner_type == 0 && body_len != 0)
		return -1;
	pt_len = inner_type == 0 ? 0 : 1 + body_len;
	if (body_len > (size_t)INT_MAX - UDP_DATA_OVERHEAD ||
	    out_cap < UDP_DATA_HEADER_LEN + pt_len + AEAD_TAG_LEN)
		return -1;
	if (body_len && body == NULL)
		return -1;

	counter = s->send_counter;
	wire_w_init(&w, out, out_cap);
	wire_put_u8(&w, UDP_DATA);
	wire_put_u8(&w, 0);
	wire_put_u8(&w, 0);
	wire_put_u8(&w, 0);
	wire_put_u32(&w, s->remote_index);
	wire_put_u64(&w, counter);
	if (wire_w_len(&w) != UDP_DATA_HEADER_LEN)
		return -1;

	/*
	 * Build the plaintext in place after the header and encrypt it there (libsodium allows
	 * exact in-place). memmove: a caller may have put the body at out + 17 already.
	 */
	if (pt_len) {
		if (body_len)
			memmove(out + UDP_DATA_HEADER_LEN + 1, body, body_len);
		out[UDP_DATA_HEADER_LEN] = inner_type;
	}
	n = noise_encrypt_n(s->send_key, counter, out, UDP_DATA_HEADER_LEN,
	    out + UDP_DATA_HEADER_LEN, pt_len, out + UDP_DATA_HEADER_LEN);
	if (n < 0)
		return -1;
	s->send_counter++;
	return UDP_DATA_HEADER_LEN + n;
}

int
session_peek_index(const uint8_t *pkt, size_t pkt_len, uint32_t *index)
{
	struct wire_r r;

	/* Shorter than header + tag cannot be a UDP_DATA packet at all. */
	if (pkt_len < UDP_DATA_HEADER_LEN + AEAD_TAG_LEN || pkt[0] != UDP_DATA)
		return -1;
	wire_r_init(&r, pkt + 4, 4);
	*index = wire_get_u32(&r);
	return wire_r_done(&r);
}

int
session_open(struct session *s, const uint8_t *pkt, size_t pkt_len, uint8_t *out,
    size_t out_cap)
{
	struct wire_r r;
	uint32_t index;
	uint64_t counter;
	uint8_t type, pad[3], dummy[1];
	size_t ct_len;
	int n;

	if (!s->valid || pkt_len < UDP_DATA_HEADER_LEN + AEAD_TAG_LEN ||
	    pkt_len > (size_t)INT_MAX)
		return -1;
	wire_r_init(&r, pkt, UDP_DATA_HEADER_LEN);
	type = wire_get_u8(&r);
	wire_get_bytes(&r, pad, sizeof(pad));
	index = wire_get_u32(&r);
	counter = wire_get_u64(&r);
	if (wire_r_done(&r) != 0)
		return -1;
	if (type != UDP_DATA || (pad[0] | pad[1] | pad[2]) != 0)
		return -1;                          /* malformed header */
	if (index != s->local_index)
		return -1;                          /* routed to the wrong session */
	if (counter >= REJECT_AFTER_MESSAGES)
		return -1;                          /* past the key's lifetime */
	/* Cheap rejection of obvious replays before paying for the AEAD. */
	if (replay_peek(&s->replay, counter) != 0)
		return -1;
	ct_len = pkt_len - UDP_DATA_HEADER_LEN;
	if (out_cap < ct_len - AEAD_TAG_LEN)
		return -1;
	if (out == NULL)
		out = dummy;                        /* a keepalive into no buffer */

	n = noise_decrypt_n(s->recv_key, counter, pkt, UDP_DATA_HEADER_LEN,
	    pkt + UDP_DATA_HEADER_LEN, ct_len, out);
	if (n < 0)
		return -1;                          /* forged or corrupted */
	/* Only an authentic packet may move the window, or forgeries could slide it away. */
	if (replay_check(&s->replay, counter) != 0)
		return -1;
	return n;
}
