/*
 * noise: Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise spec revision 34) on libsodium.
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se
 *
 * HASH is BLAKE2b-512 (HASHLEN 64, BLOCKLEN 128); HMAC and HKDF are built on it exactly as
 * the spec's section 4.3 says. DH is X25519; an all-zero result (the peer sent a low-order
 * point) fails the handshake. The cipher is ChaCha20-Poly1305 (IETF), whose 96-bit nonce is
 * four zero bytes then the 64-bit counter little-endian (spec section 12.3).
 *
 * Owns: only the caller's structs; every secret it derives lives in them and is wiped by
 * noise_hs_split()/noise_hs_wipe(). Must not: do I/O, read clocks, allocate or log (callers
 * decide what a failed handshake means and how loudly to say so).
 */
#include "config.h"
#include "crypto/noise.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define BLAKE2B_BLOCK_LEN 128
#define NONCE_LEN crypto_aead_chacha20poly1305_IETF_NPUBBYTES

/* Noise reserves nonce 2^64-1 (it marks an exhausted cipher state). */
#define NONCE_MAX UINT64_MAX

_Static_assert(HASH_LEN == crypto_generichash_blake2b_BYTES_MAX, "HASHLEN is BLAKE2b-512");
_Static_assert(KEY_LEN == crypto_aead_chacha20poly1305_IETF_KEYBYTES, "cipher key length");
_Static_assert(KEY_LEN == crypto_scalarmult_BYTES, "DHLEN");
_Static_assert(AEAD_TAG_LEN == crypto_aead_chacha20poly1305_IETF_ABYTES, "tag length");
_Static_assert(sizeof(PROTOCOL_NAME) - 1 <= HASH_LEN, "name fits h unhashed");

enum {
	MSG1_MIN_LEN = KEY_LEN + (KEY_LEN + AEAD_TAG_LEN) + AEAD_TAG_LEN,
	MSG2_MIN_LEN = KEY_LEN + AEAD_TAG_LEN,
};

/* ---- primitives: HASH, HMAC, HKDF, DH, AEAD ---- */

static void
nonce_encode(uint8_t nonce[NONCE_LEN], uint64_t n)
{
	int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* HMAC-HASH(key, data1 || data2) per RFC 2104 with BLOCKLEN 128; key is HASH_LEN bytes. */
static void
hmac_blake2b(uint8_t out[HASH_LEN], const uint8_t key[HASH_LEN], const uint8_t *d1,
    size_t d1_len, const uint8_t *d2, size_t d2_len)
{
	crypto_generichash_blake2b_state st;
	uint8_t pad[BLAKE2B_BLOCK_LEN];
	uint8_t inner[HASH_LEN];
	size_t i;

	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < HASH_LEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	if (d1_len)
		crypto_generichash_blake2b_update(&st, d1, d1_len);
	if (d2_len)
		crypto_generichash_blake2b_update(&st, d2, d2_len);
	crypto_generichash_blake2b_final(&st, inner, HASH_LEN);

	memset(pad, 0x5c, sizeof(pad));
	for (i = 0; i < HASH_LEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, HASH_LEN);

	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
	sodium_memzero(&st, sizeof(st));
}

/* HKDF(chaining_key, input_key_material, 2) of spec section 4.3 (Split and MixKey). */
static void
hkdf2(uint8_t out1[HASH_LEN], uint8_t out2[HASH_LEN], const uint8_t ck[HASH_LEN],
    const uint8_t *ikm, size_t ikm_len)
{
	uint8_t temp_key[HASH_LEN];
	uint8_t one = 0x01, two = 0x02;

	hmac_blake2b(temp_key, ck, ikm, ikm_len, NULL, 0);
	hmac_blake2b(out1, temp_key, &one, 1, NULL, 0);
	hmac_blake2b(out2, temp_key, out1, HASH_LEN, &two, 1);
	sodium_memzero(temp_key, sizeof(temp_key));
}

/* DH(priv, pub); -1 for a low-order public key (all-zero shared secret). */
static int
dh(uint8_t out[KEY_LEN], const uint8_t priv[KEY_LEN], const uint8_t pub[KEY_LEN])
{
	if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, KEY_LEN)) {
		sodium_memzero(out, KEY_LEN);
		return -1;
	}
	return 0;
}

/*
 * noise.h forbids overlapping in and out; exactly in place (out == in) is the exception that
 * libsodium documents as safe, and session_seal relies on it to avoid a copy per packet.
 */
int
noise_encrypt_n(const uint8_t key[KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
    const uint8_t *in, size_t in_len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];
	unsigned long long clen;

	if (n == NONCE_MAX || in_len > (size_t)INT_MAX - AEAD_TAG_LEN)
		return -1;
	nonce_encode(nonce, n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, in, in_len, ad, ad_len, NULL, nonce,
	    key);
	return (int)clen;
}

int
noise_decrypt_n(const uint8_t key[KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
    const uint8_t *in, size_t in_len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];
	unsigned long long mlen;

	if (n == NONCE_MAX || in_len < AEAD_TAG_LEN || in_len > (size_t)INT_MAX)
		return -1;
	nonce_encode(nonce, n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, in, in_len, ad, ad_len,
	    nonce, key) != 0)
		return -1;
	return (int)mlen;
}

/* CipherState EncryptWithAd/DecryptWithAd; a failed decryption leaves n unchanged. */
static int
cs_encrypt_ad(struct noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *in,
    size_t in_len, uint8_t *out)
{
	int r;

	if (!cs->has_key)
		return -1;
	r = noise_encrypt_n(cs->k, cs->n, ad, ad_len, in, in_len, out);
	if (r >= 0)
		cs->n++;
	return r;
}

static int
cs_decrypt_ad(struct noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *in,
    size_t in_len, uint8_t *out)
{
	int r;

	if (!cs->has_key)
		return -1;
	r = noise_decrypt_n(cs->k, cs->n, ad, ad_len, in, in_len, out);
	if (r >= 0)
		cs->n++;
	return r;
}

int
noise_cs_encrypt(struct noise_cs *cs, const uint8_t *in, size_t in_len, uint8_t *out)
{
	return cs_encrypt_ad(cs, NULL, 0, in, in_len, out);
}

int
noise_cs_decrypt(struct noise_cs *cs, const uint8_t *in, size_t in_len, uint8_t *out)
{
	return cs_decrypt_ad(cs, NULL, 0, in, in_len, out);
}

/* ---- SymmetricState ---- */

static void
mix_hash(struct noise_hs *hs, const uint8_t *data, size_t len)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_blake2b_update(&st, hs->h, HASH_LEN);
	if (len)
		crypto_generichash_blake2b_update(&st, data, len);
	crypto_generichash_blake2b_final(&st, hs->h, HASH_LEN);
}

/* MixKey(DH(priv, pub)); -1 for a low-order point. */
static int
mix_dh(struct noise_hs *hs, const uint8_t priv[KEY_LEN], const uint8_t pub[KEY_LEN])
{
	uint8_t shared[KEY_LEN];
	uint8_t temp_k[HASH_LEN];

	if (dh(shared, priv, pub) != 0)
		return -1;
	hkdf2(hs->ck, temp_k, hs->ck, shared, sizeof(shared));
	/* HASHLEN 64 > 32: the cipher key is temp_k truncated to 32 bytes. */
	memcpy(hs->cs.k, temp_k, KEY_LEN);
	hs->cs.n = 0;
	hs->cs.has_key = 1;
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(temp_k, sizeof(temp_k));
	return 0;
}

/* EncryptAndHash: out gets len + 16 bytes (or len bytes before any key, per the spec). */
static int
encrypt_and_hash(struct noise_hs *hs, const uint8_t *in, size_t len, uint8_t *out)
{
	int r;

	if (!hs->cs.has_key) {
		if (len)
			memmove(out, in, len);
		r = (int)len;
	} else if ((r = cs_encrypt_ad(&hs->cs, hs->h, HASH_LEN, in, len, out)) < 0) {
		return -1;
	}
	mix_hash(hs, out, (size_t)r);
	return r;
}

static int
decrypt_and_hash(struct noise_hs *hs, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t h_next[HASH_LEN];
	crypto_generichash_blake2b_state st;
	int r;

	/* h must absorb the ciphertext, which out may not keep: hash it before decrypting. */
	crypto_generichash_blake2b_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_blake2b_update(&st, hs->h, HASH_LEN);
	if (len)
		crypto_generichash_blake2b_update(&st, in, len);
	crypto_generichash_blake2b_final(&st, h_next, HASH_LEN);

	if (!hs->cs.has_key) {
		if (len)
			memmove(out, in, len);
		r = (int)len;
	} else if ((r = cs_decrypt_ad(&hs->cs, hs->h, HASH_LEN, in, len, out)) < 0) {
		return -1;
	}
	memcpy(hs->h, h_next, HASH_LEN);
	return r;
}

/* ---- HandshakeState ---- */

void
noise_keypair_from_private(struct noise_keypair *kp, const uint8_t priv[KEY_LEN])
{
	if (kp->priv != priv)
		memcpy(kp->priv, priv, KEY_LEN);
	crypto_scalarmult_base(kp->pub, kp->priv);
}

void
noise_keypair_generate(struct noise_keypair *kp)
{
	uint8_t priv[KEY_LEN];

	/* Idempotent; libsodium needs it before randombytes picks its source. */
	if (sodium_init() < 0)
		abort();
	randombytes_buf(priv, sizeof(priv));
	noise_keypair_from_private(kp, priv);
	sodium_memzero(priv, sizeof(priv));
}

void
noise_hs_init(struct noise_hs *hs, int initiator, const struct noise_keypair *s,
    const uint8_t *rs, const uint8_t *prologue, size_t prologue_len)
{
	if (sodium_init() < 0)
		abort();
	sodium_memzero(hs, sizeof(*hs));
	hs->state = NOISE_HS_INIT;
	hs->initiator = initiator ? 1 : 0;
	hs->s = *s;

	/* InitializeSymmetric: the name is shorter than HASHLEN, so h is it zero-padded. */
	memcpy(hs->h, PROTOCOL_NAME, sizeof(PROTOCOL_NAME) - 1);
	memcpy(hs->ck, hs->h, HASH_LEN);
	mix_hash(hs, prologue, prologue_len);

	/* Pre-message "<- s": both sides hash the responder's static key. */
	if (hs->initiator) {
		if (rs)
			memcpy(hs->rs, rs, KEY_LEN);
		else
			hs->state = NOISE_HS_FAILED;   /* IK cannot start without it */
		mix_hash(hs, hs->rs, KEY_LEN);
	} else {
		mix_hash(hs, hs->s.pub, KEY_LEN);
	}
}

void
noise_hs_set_ephemeral(struct noise_hs *hs, const struct noise_keypair *e)
{
	hs->e = *e;
	hs->e_fixed = 1;
}

static void
hs_fail(struct noise_hs *hs)
{
	int initiator = hs->initiator;

	sodium_memzero(hs, sizeof(*hs));
	hs->initiator = initiator;
	hs->state = NOISE_HS_FAILED;
}

static void
hs_new_ephemeral(struct noise_hs *hs)
{
	if (!hs->e_fixed)
		noise_keypair_generate(&hs->e);
}

/* Initiator: -> e, es, s, ss, payload */
static int
write_msg1(struct noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out)
{
	size_t off = 0;
	int r;

	/* e */
	hs_new_ephemeral(hs);
	memcpy(out, hs->e.pub, KEY_LEN);
	mix_hash(hs, hs->e.pub, KEY_LEN);
	off += KEY_LEN;

	/* es */
	if (mix_dh(hs, hs->e.priv, hs->rs) != 0)
		return -1;

	/* s */
	if ((r = encrypt_and_hash(hs, hs->s.pub, KEY_LEN, out + off)) < 0)
		return -1;
	off += (size_t)r;

	/* ss */
	if (mix_dh(hs, hs->s.priv, hs->rs) != 0)
		return -1;

	/* payload */
	if ((r = encrypt_and_hash(hs, payload, payload_len, out + off)) < 0)
		return -1;
	off += (size_t)r;

	hs->state = NOISE_HS_WAIT_MSG2;
	return (int)off;
}

/* Responder: <- e, ee, se, payload */
static int
write_msg2(struct noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out)
{
	size_t off = 0;
	int r;

	/* e */
	hs_new_ephemeral(hs);
	memcpy(out, hs->e.pub, KEY_LEN);
	mix_hash(hs, hs->e.pub, KEY_LEN);
	off += KEY_LEN;

	/* ee */
	if (mix_dh(hs, hs->e.priv, hs->re) != 0)
		return -1;

	/* se: the responder's side of DH(initiator static, responder ephemeral) */
	if (mix_dh(hs, hs->e.priv, hs->rs) != 0)
		return -1;

	/* payload */
	if ((r = encrypt_and_hash(hs, payload, payload_len, out + off)) < 0)
		return -1;
	off += (size_t)r;

	hs->state = NOISE_HS_DONE;
	return (int)off;
}

int
noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out,
    size_t out_cap)
{
	size_t need;
	int r;

	if (payload_len > (size_t)INT_MAX - MSG1_MIN_LEN || (payload_len && payload == NULL))
		return -1;
	if (hs->initiator && hs->state == NOISE_HS_INIT) {
		need = MSG1_MIN_LEN + payload_len;
		if (out == NULL || out_cap < need)
			return -1;
		r = write_msg1(hs, payload, payload_len, out);
	} else if (!hs->initiator && hs->state == NOISE_HS_WRITE_MSG2) {
		need = MSG2_MIN_LEN + payload_len;
		if (out == NULL || out_cap < need)
			return -1;
		r = write_msg2(hs, payload, payload_len, out);
	} else {
		/* Misuse (wrong role or order): refuse, but leave a running handshake intact. */
		return -1;
	}
	if (r < 0)
		hs_fail(hs);
	return r;
}

/* Responder: -> e, es, s, ss, payload */
static int
read_msg1(struct noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap)
{
	size_t off = 0;
	int r;

	if (len < MSG1_MIN_LEN || cap < len - MSG1_MIN_LEN)
		return -1;

	/* e */
	memcpy(hs->re, msg, KEY_LEN);
	mix_hash(hs, hs->re, KEY_LEN);
	off += KEY_LEN;

	/* es: the responder's side, DH(s, re) */
	if (mix_dh(hs, hs->s.priv, hs->re) != 0)
		return -1;

	/* s */
	if (decrypt_and_hash(hs, msg + off, KEY_LEN + AEAD_TAG_LEN, hs->rs) != KEY_LEN)
		return -1;
	off += KEY_LEN + AEAD_TAG_LEN;

	/* ss */
	if (mix_dh(hs, hs->s.priv, hs->rs) != 0)
		return -1;

	/* payload */
	if ((r = decrypt_and_hash(hs, msg + off, len - off, payload)) < 0)
		return -1;

	hs->state = NOISE_HS_WRITE_MSG2;
	return r;
}

/* Initiator: <- e, ee, se, payload */
static int
read_msg2(struct noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap)
{
	size_t off = 0;
	int r;

	if (len < MSG2_MIN_LEN || cap < len - MSG2_MIN_LEN)
		return -1;

	/* e */
	memcpy(hs->re, msg, KEY_LEN);
	mix_hash(hs, hs->re, KEY_LEN);
	off += KEY_LEN;

	/* ee */
	if (mix_dh(hs, hs->e.priv, hs->re) != 0)
		return -1;

	/* se: the initiator's side, DH(s, re) */
	if (mix_dh(hs, hs->s.priv, hs->re) != 0)
		return -1;

	/* payload */
	if ((r = decrypt_and_hash(hs, msg + off, len - off, payload)) < 0)
		return -1;

	hs->state = NOISE_HS_DONE;
	return r;
}

int
noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t msg_len, uint8_t *payload,
    size_t payload_cap)
{
	uint8_t dummy[1];
	int r;

	int want_msg1 = !hs->initiator && hs->state == NOISE_HS_INIT;
	int want_msg2 = hs->initiator && hs->state == NOISE_HS_WAIT_MSG2;

	/*
	 * Not expecting a message (e.g. a retransmitted message 2 after DONE): refuse it, but
	 * leave the handshake as it is; a stray packet must not destroy finished keys.
	 */
	if (!want_msg1 && !want_msg2)
		return -1;
	/* libsodium wants somewhere to write even an empty plaintext. */
	if (payload == NULL) {
		payload = dummy;
		payload_cap = 0;
	}
	if (msg == NULL || msg_len > (size_t)INT_MAX)
		r = -1;
	else if (want_msg1)
		r = read_msg1(hs, msg, msg_len, payload, payload_cap);
	else
		r = read_msg2(hs, msg, msg_len, payload, payload_cap);
	if (r < 0)
		hs_fail(hs);
	return r;
}

const uint8_t *
noise_hs_remote_static(const struct noise_hs *hs)
{
	return hs->rs;
}

const uint8_t *
noise_hs_hash(const struct noise_hs *hs)
{
	return hs->h;
}

int
noise_hs_split(struct noise_hs *hs, struct noise_cs *send, struct noise_cs *recv)
{
	uint8_t k1[HASH_LEN], k2[HASH_LEN];
	struct noise_cs *c1, *c2;

	/* cs.has_key is cleared by the first split, so a second one fails. */
	if (hs->state != NOISE_HS_DONE || !hs->cs.has_key)
		return -1;
	hkdf2(k1, k2, hs->ck, NULL, 0);
	/* c1 carries initiator -> responder, c2 the other way. */
	c1 = hs->initiator ? send : recv;
	c2 = hs->initiator ? recv : send;
	memcpy(c1->k, k1, KEY_LEN);
	c1->n = 0;
	c1->has_key = 1;
	memcpy(c2->k, k2, KEY_LEN);
	c2->n = 0;
	c2->has_key = 1;
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));

	/* Keep h (channel binding) and rs (identity); drop every secret. */
	sodium_memzero(hs->ck, sizeof(hs->ck));
	sodium_memzero(&hs->cs, sizeof(hs->cs));
	sodium_memzero(&hs->s, sizeof(hs->s));
	sodium_memzero(&hs->e, sizeof(hs->e));
	return 0;
}

void
noise_hs_wipe(struct noise_hs *hs)
{
	sodium_memzero(hs, sizeof(*hs));
	hs->state = NOISE_HS_FAILED;
}
