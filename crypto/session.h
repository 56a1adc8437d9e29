/*
 * session: transport keys of one completed peer handshake, their counters and the RFC 6479
 * sliding anti-replay window; seals and opens UDP_DATA packets.
 * Owns: the key material inside struct session; session_wipe() clears it.
 * Must not: do I/O or look at the clock (callers pass `now`).
 */
#ifndef SHOAL_SESSION_H
#define SHOAL_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

#define REPLAY_WORD_BITS 64
#define REPLAY_WORDS (REPLAY_WINDOW_BITS / REPLAY_WORD_BITS)

/* RFC 6479 window: accepts a counter at most REPLAY_WINDOW_BITS - 64 behind the newest. */
struct replay_window {
	uint64_t top;                       /* highest counter accepted so far + 1 (0: none yet) */
	uint64_t bitmap[REPLAY_WORDS];
};

void replay_init(struct replay_window *rw);
/* 0 if counter is new (and marks it seen), -1 if replayed or too old. */
int replay_check(struct replay_window *rw, uint64_t counter);

/* One set of transport keys. Owned by its peer (core/peer.c keeps current, previous, next). */
struct session {
	uint8_t send_key[KEY_LEN];
	uint8_t recv_key[KEY_LEN];
	uint64_t send_counter;
	struct replay_window replay;
	uint32_t local_index;               /* receiver index peers put in packets to us */
	uint32_t remote_index;              /* receiver index we put in packets to them */
	double created;                     /* ev_now() when keys were derived */
	int initiator;                      /* we started the handshake */
	int valid;
};

void session_init(struct session *s, const uint8_t send_key[KEY_LEN],
    const uint8_t recv_key[KEY_LEN], uint32_t local_index, uint32_t remote_index,
    int initiator, double now);
void session_wipe(struct session *s);
/* True when the keys must not be used any more (age or message count). */
int session_expired(const struct session *s, double now);
/* True when the initiator should start a new handshake (age or message count). */
int session_needs_rekey(const struct session *s, double now);

/*
 * Builds a UDP_DATA packet: header (type, receiver index, counter) then the sealed
 * [inner type][body]. out needs UDP_DATA_OVERHEAD + body_len bytes. Returns the packet length
 * or -1 (counter exhausted, out too small).
 */
int session_seal(struct session *s, uint8_t inner_type, const uint8_t *body, size_t body_len,
    uint8_t *out, size_t out_cap);
/*
 * Opens a UDP_DATA packet addressed to this session (caller found it by receiver index).
 * On success returns the plaintext length (inner type byte first; 0 for keepalive) written to
 * out; -1 for a forged, malformed or replayed packet (the caller counts and drops it).
 */
int session_open(struct session *s, const uint8_t *pkt, size_t pkt_len, uint8_t *out,
    size_t out_cap);

/* Reads the receiver index of a UDP_DATA packet (for the index lookup); -1 if too short. */
int session_peek_index(const uint8_t *pkt, size_t pkt_len, uint32_t *index);

#endif
