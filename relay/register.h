/*
 * register: shoal-relay's registration with a mediator (PROTOCOL.md 8.1). Connects to the
 * mediator's control port with the ctrlchan Noise IK as the relay's own static key, sends
 * RELAY_HELLO, takes the relay id and relay key from RELAY_WELCOME (ops->welcome: the engine
 * checks BINDs with that key from then on), and sends RELAY_STATS every RELAY_STATS_EVERY s.
 * Whenever the connection ends it reconnects with backoff; the engine keeps forwarding the
 * pairs it has meanwhile. A refusal (a RESULT) is logged and retried like a lost connection,
 * at the longest backoff. With several mediator addresses (instances of one mediator) it
 * starts at a random one and moves to the next after every failure, as shoald does.
 * Owns: the control channel, its timers. Borrows: the loop and the key pair.
 */
#ifndef SHOAL_RELAY_REGISTER_H
#define SHOAL_RELAY_REGISTER_H

#include <ev.h>
#include <stdint.h>

#include "crypto/identity.h"
#include "crypto/noise.h"
#include "mproto/msg.h"
#include "mproto/relaymsg.h"

#define RELAY_STATS_EVERY 5.0   /* s; the mediator calls a relay dead after 10 s without */

struct relay_register_ops {
	/* Registered: our id in the pool and the key grants are made with (again after each
	 * reconnection; the mediator keeps both for a relay it knows). */
	void (*welcome)(void *arg, uint16_t id, const uint8_t key[RELAY_KEY_LEN]);
	/* The counters RELAY_STATS sends now. */
	void (*stats)(void *arg, struct msg_relay_stats *out);
	void *arg;
};

struct relay_register_config {
	struct conn_string server;      /* several addresses: tried in turn, like shoald */
	char name[RELAY_NAME_MAX_LEN + 1];
	struct endpoint udp;            /* advertised; addr 0: the mediator uses our source */
	uint16_t tcp_port;              /* 0: none */
};

struct relay_register;

struct relay_register *relay_register_new(struct ev_loop *loop,
    const struct relay_register_config *cfg, const struct noise_keypair *key,
    const struct relay_register_ops *ops);
void relay_register_free(struct relay_register *r);
/* Connects now (and again whenever the connection ends). */
void relay_register_start(struct relay_register *r);

#endif
