/*
 * tcpframe: the length-prefixed datagram framing of tcpframe.h. A frame larger than a UDP
 * datagram is refused rather than skipped: a peer that sends one is not speaking this
 * protocol, and a length we cannot trust leaves no way to find the next frame.
 * Must not: do I/O, allocate.
 */
#include "config.h"
#include "core/tcpframe.h"

#include <string.h>

/* have == this after a bad header: the stream is failed for good. */
#define RX_FAILED ((size_t)-1)

int
tcpframe_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap)
{
	if (len == 0 || len > UDP_MAX_PAYLOAD || cap < len + TCPFRAME_HDR)
		return -1;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + TCPFRAME_HDR, pkt, len);
	return (int)(len + TCPFRAME_HDR);
}

void
tcpframe_rx_init(struct tcpframe_rx *rx)
{
	rx->have = 0;
}

int
tcpframe_feed(struct tcpframe_rx *rx, const uint8_t *in, size_t n, tcpframe_cb cb, void *arg)
{
	size_t want, take, flen;

	if (rx->have == RX_FAILED)
		return -1;
	while (n > 0) {
		/* First the header, then as much of the body as it announced. */
		if (rx->have < TCPFRAME_HDR) {
			want = TCPFRAME_HDR;
		} else {
			flen = ((size_t)rx->buf[0] << 8) | rx->buf[1];
			want = TCPFRAME_HDR + flen;
		}
		take = want - rx->have < n ? want - rx->have : n;
		memcpy(rx->buf + rx->have, in, take);
		rx->have += take;
		in += take;
		n -= take;
		if (rx->have == TCPFRAME_HDR) {
			flen = ((size_t)rx->buf[0] << 8) | rx->buf[1];
			if (flen == 0 || flen > UDP_MAX_PAYLOAD) {
				rx->have = RX_FAILED;
				return -1;
			}
			continue;
		}
		if (rx->have > TCPFRAME_HDR && rx->have == want) {
			rx->have = 0;
			cb(arg, rx->buf + TCPFRAME_HDR, want - TCPFRAME_HDR);
		}
	}
	return 0;
}
