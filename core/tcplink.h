/*
 * tcplink: one connected TCP stream registered as a transport link (core/transport.h), so the
 * peer layer's sessions run over it unchanged: every datagram sent to the link's via goes out
 * as one tcpframe, every frame received comes in through transport_link_input as a datagram
 * from the remote endpoint with that via.
 *
 * Sending never blocks the loop and never splits a frame: what the kernel does not take at
 * once waits in a bounded buffer (TCPLINK_OUT_MAX); a datagram that does not fit whole is
 * dropped, as UDP would drop it. The link ends on EOF, an error, a bad frame, or
 * TCPLINK_IDLE_S without input (the peer layer pings every few seconds on the path it uses,
 * so an idle link is one it does not use: the losing side of a simultaneous open, or dead).
 * Its owner then hears ops->closed, from the loop, never from inside a send.
 *
 * Owns: the fd (closed by tcplink_free), its watchers, the buffers, its via in the transport.
 * Borrows: the loop and the transport (must outlive it).
 */
#ifndef SHOAL_TCPLINK_H
#define SHOAL_TCPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct transport;
struct tcplink;

#define TCPLINK_IDLE_S 30.0
enum { TCPLINK_OUT_MAX = 64 * 1024 };

struct tcplink_ops {
	/* The link is over (why: "eof", "read", "write", "frame", "idle"); its via is already
	 * gone from the transport. The owner must tcplink_free it (it may do so in the call). */
	void (*closed)(void *arg, struct tcplink *l, const char *why);
};

/*
 * Takes fd, a connected non-blocking TCP socket to `remote` (the endpoint its datagrams are
 * reported from; via is ignored), and registers the link. NULL on failure, fd then closed.
 */
struct tcplink *tcplink_new(struct ev_loop *loop, struct transport *tp, int fd,
    const struct endpoint *remote, const struct tcplink_ops *ops, void *arg);
void tcplink_free(struct tcplink *l);
/* The endpoint that reaches the peer through this link: remote with the link's via. */
struct endpoint tcplink_endpoint(const struct tcplink *l);

struct tcplink_stats {
	uint64_t rx_frames, tx_frames, tx_dropped;
	size_t out_queued;              /* bytes waiting for the kernel */
};
void tcplink_get_stats(const struct tcplink *l, struct tcplink_stats *st);

#endif
