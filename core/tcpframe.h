/*
 * tcpframe: datagrams on a byte stream (a punched TCP connection, PROTOCOL.md 3.3). Each frame
 * is a u16 big-endian length (1..UDP_MAX_PAYLOAD) then that many bytes: one datagram, exactly
 * as it would have gone over UDP. Pure: no I/O, no allocation.
 */
#ifndef SHOAL_TCPFRAME_H
#define SHOAL_TCPFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

enum { TCPFRAME_HDR = 2, TCPFRAME_MAX = TCPFRAME_HDR + UDP_MAX_PAYLOAD };

/* Writes one frame to out. Returns its length (len + 2), or -1 when len is 0 or larger than
 * UDP_MAX_PAYLOAD, or cap is too small. */
int tcpframe_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);

/* Reassembly state of one stream; zero it (or tcpframe_rx_init) before the first byte. */
struct tcpframe_rx {
	size_t have;                    /* bytes of the current frame in buf, header included */
	uint8_t buf[TCPFRAME_MAX];
};
void tcpframe_rx_init(struct tcpframe_rx *rx);

/* One whole datagram; pkt is valid only during the call (the callee may modify it). */
typedef void (*tcpframe_cb)(void *arg, uint8_t *pkt, size_t len);

/*
 * Takes the next n bytes of the stream, in any split, and calls cb once per completed frame,
 * in order. Returns 0, or -1 when a header says 0 or more than UDP_MAX_PAYLOAD: the stream
 * cannot be resynchronised and must be closed (frames before the bad one were delivered;
 * rx stays failed and every later call returns -1).
 */
int tcpframe_feed(struct tcpframe_rx *rx, const uint8_t *in, size_t n, tcpframe_cb cb,
    void *arg);

#endif
