/*
 * relaymsg: the relay's UDP datagrams (docs/PROTOCOL.md 8.7), shared by the relay
 * (relay/) and the nodes' relay client. Explicit encode/decode functions; decoders check
 * lengths and zero padding and never read past the input.
 *
 * Authority: the mediator and each relay share a relay key (32 bytes, given to the relay when it
 * registers). For every relayed pair the mediator picks a random pair id and an expiry and
 * gives each side, over its encrypted control channel, a side secret derived from the relay key
 * (relaymsg_side_secret). A node proves a BIND with its side secret; the relay derives the same
 * secret from its relay key, so it needs no table of grants and forwards only between the two
 * endpoints that bound one pair. Relays see only the peers' Noise datagrams (ciphertext).
 */
#ifndef SHOAL_RELAYMSG_H
#define SHOAL_RELAYMSG_H

#include <stddef.h>
#include <stdint.h>

enum {
	RELAY_KEY_LEN = 32,
	RELAY_SECRET_LEN = 32,
	RELAY_MAC_LEN = 16,
	RELAY_BIND_LEN = 4 + 8 + 1 + 3 + 4 + 8 + RELAY_MAC_LEN,         /* 44 */
	RELAY_BIND_ACK_LEN = 4 + 8 + 1 + 1 + 2 + 8 + RELAY_MAC_LEN,     /* 40 */
	RELAY_DATA_HDR = 4 + 8,                                         /* then the payload */
	RELAY_PING_LEN = 4 + 8,                                         /* PING and PONG */
};

/* UDP types (byte 0), beside base/proto.h's. */
enum relay_udp_type {
	UDP_RELAY_BIND = 24,
	UDP_RELAY_BIND_ACK = 25,
	UDP_RELAY_DATA = 26,
	UDP_RELAY_PING = 27,
	UDP_RELAY_PONG = 28,
};

struct relay_bind {
	uint64_t pair;                  /* the mediator's random pair id */
	uint8_t side;                   /* 0 or 1 */
	uint32_t expiry;                /* Unix seconds: the grant ends */
	uint64_t counter;               /* strictly increasing per side (replays are dropped) */
};

struct relay_bind_ack {
	uint64_t pair;
	uint8_t side;
	uint8_t peer_bound;             /* 1 when the other side has bound too */
	uint64_t counter;               /* the BIND's */
};

/* The side secret of a grant: keyed BLAKE2b over the pair id, side and expiry. */
void relaymsg_side_secret(const uint8_t relay_key[RELAY_KEY_LEN], uint64_t pair, uint8_t side,
    uint32_t expiry, uint8_t out[RELAY_SECRET_LEN]);

/* Encoders return the length written or -1 (no room, or a field out of range). */
int relay_bind_encode(const struct relay_bind *b, const uint8_t secret[RELAY_SECRET_LEN],
    uint8_t *out, size_t cap);
int relay_bind_ack_encode(const struct relay_bind_ack *a, const uint8_t secret[RELAY_SECRET_LEN],
    uint8_t *out, size_t cap);
/* The header of a RELAY_DATA whose payload the caller writes at out + RELAY_DATA_HDR. */
int relay_data_header(uint64_t pair, uint8_t *out, size_t cap);
int relay_ping_encode(uint8_t type, uint64_t nonce, uint8_t *out, size_t cap);

/*
 * Decoders return 0 or -1 (wrong type or length, non-zero padding, side > 1). They parse only:
 * the MAC is checked with relay_bind_verify / relay_bind_ack_verify once the secret is known
 * (a BIND's secret depends on its own fields).
 */
int relay_bind_decode(const uint8_t *in, size_t len, struct relay_bind *b);
int relay_bind_verify(const uint8_t *in, size_t len, const uint8_t secret[RELAY_SECRET_LEN]);
int relay_bind_ack_decode(const uint8_t *in, size_t len, struct relay_bind_ack *a);
int relay_bind_ack_verify(const uint8_t *in, size_t len, const uint8_t secret[RELAY_SECRET_LEN]);
/* A RELAY_DATA: its pair id, and where its payload starts (len - RELAY_DATA_HDR bytes, at
 * least 1). */
int relay_data_decode(const uint8_t *in, size_t len, uint64_t *pair);
int relay_ping_decode(const uint8_t *in, size_t len, uint8_t type, uint64_t *nonce);

#endif
