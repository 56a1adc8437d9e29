/*
 * noise: the Noise IK handshake, Noise_IK_25519_ChaChaPoly_BLAKE2b, on libsodium.
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se
 *
 * Bytes in, bytes and keys out: no I/O, no clocks, no allocation. Used for peer sessions over
 * UDP (core/handshake.c frames it) and for the mediator control channel over TCP.
 * Owns: nothing beyond the caller-provided structs; noise_hs_wipe() clears their secrets.
 */
#ifndef SHOAL_NOISE_H
#define SHOAL_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

struct noise_keypair {
	uint8_t pub[KEY_LEN];
	uint8_t priv[KEY_LEN];
};

/* A Noise CipherState: key plus implicit nonce counter. Owned by its user. */
struct noise_cs {
	uint8_t k[KEY_LEN];
	uint64_t n;
	int has_key;
};

enum noise_hs_state {
	NOISE_HS_INIT,          /* initiator: write msg 1; responder: read msg 1 */
	NOISE_HS_WAIT_MSG2,     /* initiator wrote msg 1 */
	NOISE_HS_WRITE_MSG2,    /* responder read msg 1 */
	NOISE_HS_DONE,          /* split may be called */
	NOISE_HS_FAILED,
};

/* Handshake state, owned by whoever runs the handshake (a peer, a mediator connection). */
struct noise_hs {
	enum noise_hs_state state;
	int initiator;
	uint8_t ck[HASH_LEN];
	uint8_t h[HASH_LEN];
	struct noise_cs cs;
	struct noise_keypair s;      /* local static */
	struct noise_keypair e;      /* local ephemeral */
	int e_fixed;                 /* e was set by noise_hs_set_ephemeral (tests) */
	uint8_t rs[KEY_LEN];         /* remote static: known up front (initiator) or learned */
	uint8_t re[KEY_LEN];         /* remote ephemeral */
};

void noise_keypair_generate(struct noise_keypair *kp);
/* Derives pub from priv (X25519 base point multiplication). */
void noise_keypair_from_private(struct noise_keypair *kp, const uint8_t priv[KEY_LEN]);

/*
 * Starts a handshake. rs is the responder's static public key (initiator only; NULL for the
 * responder). The prologue is mixed into h: both sides must use the same.
 */
void noise_hs_init(struct noise_hs *hs, int initiator, const struct noise_keypair *s,
    const uint8_t *rs, const uint8_t *prologue, size_t prologue_len);
/* Tests only: use this ephemeral key instead of a random one. Call right after init. */
void noise_hs_set_ephemeral(struct noise_hs *hs, const struct noise_keypair *e);

/*
 * Writes the next handshake message with payload into out. Returns the message length, or -1
 * (wrong state, out too small). Message 1 is 32+48+payload+16 bytes, message 2 32+payload+16.
 */
int noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t payload_len,
    uint8_t *out, size_t out_cap);
/*
 * Reads the next handshake message; the decrypted payload goes to payload (payload_cap bytes).
 * Returns the payload length, or -1 when the message is malformed or fails authentication;
 * on failure the state becomes NOISE_HS_FAILED.
 */
int noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t msg_len,
    uint8_t *payload, size_t payload_cap);
/* The remote static key (after msg 1 was read by the responder; always for the initiator). */
const uint8_t *noise_hs_remote_static(const struct noise_hs *hs);
/* The handshake hash, for channel binding. Valid in NOISE_HS_DONE. */
const uint8_t *noise_hs_hash(const struct noise_hs *hs);
/*
 * Splits into transport cipher states: send is for messages we send, recv for the other way.
 * Returns -1 unless the handshake is done. Wipes the handshake secrets.
 */
int noise_hs_split(struct noise_hs *hs, struct noise_cs *send, struct noise_cs *recv);
void noise_hs_wipe(struct noise_hs *hs);

/*
 * AEAD with an explicit nonce (used by UDP sessions, which carry the counter in the packet)
 * and with the implicit one (cs->n, used by the TCP control channel). Return the output length
 * or -1. out may not overlap in.
 */
int noise_encrypt_n(const uint8_t key[KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
    const uint8_t *in, size_t in_len, uint8_t *out);
int noise_decrypt_n(const uint8_t key[KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
    const uint8_t *in, size_t in_len, uint8_t *out);
int noise_cs_encrypt(struct noise_cs *cs, const uint8_t *in, size_t in_len, uint8_t *out);
int noise_cs_decrypt(struct noise_cs *cs, const uint8_t *in, size_t in_len, uint8_t *out);

#endif
