/*
 * ctrlchan: the mediator control channel over one TCP connection: Noise IK handshake (the
 * daemon initiates and pins the server's static key), then length-prefixed encrypted frames,
 * each carrying one struct msg. Used by both ends: server/ (responder) and the daemon's
 * mediator client (initiator).
 *
 * Frame: u16 big-endian length, then that many bytes. The first frame from the initiator is
 * Noise message 1, the responder answers with message 2, then every frame is a Noise transport
 * message whose plaintext is one msg_encode()d message. Prologue: "shoal-ctrl" + u16 version.
 *
 * Owns: its fd (closes it), its libev watchers, its read/write buffers.
 * Callbacks may call ctrlchan_free() on the channel that invoked them; the channel defers the
 * free until the callback returns.
 */
#ifndef SHOAL_CTRLCHAN_H
#define SHOAL_CTRLCHAN_H

#include <ev.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "crypto/noise.h"

struct ctrlchan;

struct ctrlchan_cbs {
	/* Handshake complete; remote_static is the peer's authenticated static key. */
	void (*on_ready)(void *arg, const uint8_t remote_static[KEY_LEN]);
	/* One decoded message. Malformed frames close the channel (on_close) instead. */
	void (*on_msg)(void *arg, const struct msg *m);
	/* The connection ended (EOF, error, bad frame, handshake failure, timeout); why is for logs.
	 * No callback follows; the user must still ctrlchan_free() it. */
	void (*on_close)(void *arg, const char *why);
};

/*
 * fd: a connected (or connecting, non-blocking) TCP socket. initiator: 1 for the daemon, which
 * passes the server's public key in remote_pub; 0 for the server (remote_pub NULL).
 * The TCP connect must complete within 10 s, the handshake 30 s after it (the responder: 30 s
 * after accept), or the channel closes.
 */
struct ctrlchan *ctrlchan_new(struct ev_loop *loop, int fd, int initiator,
    const struct noise_keypair *local, const uint8_t *remote_pub,
    const struct ctrlchan_cbs *cbs, void *arg);
/* Queues one message. Returns -1 if the channel is closed or its send queue is over 1 MiB. */
int ctrlchan_send(struct ctrlchan *c, const struct msg *m);
/* Closes the fd, stops watchers, wipes keys. Safe inside the channel's own callbacks. */
void ctrlchan_free(struct ctrlchan *c);

#endif
