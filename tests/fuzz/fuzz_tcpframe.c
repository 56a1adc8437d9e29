/*
 * fuzz_tcpframe: arbitrary bytes into the punched-TCP frame decoder (core/tcpframe.c), as one
 * stream cut into pieces whose sizes the input's first byte picks (1..256 bytes, or all at
 * once), so headers and bodies split at every place. Every datagram handed out must be
 * 1..UDP_MAX_PAYLOAD bytes long and lie inside the reassembly buffer; a stream once refused
 * stays refused; re-encoding each datagram gives back exactly the bytes it came from.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tcpframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	const uint8_t *stream;          /* the whole stream, to compare against */
	size_t pos;                     /* where the next frame starts in it */
};

static void
frame_cb(void *arg, uint8_t *pkt, size_t len)
{
	struct ctx *c = arg;
	uint8_t enc[TCPFRAME_MAX];
	int n;

	if (len == 0 || len > UDP_MAX_PAYLOAD)
		abort();
	n = tcpframe_encode(pkt, len, enc, sizeof(enc));
	if (n != (int)len + TCPFRAME_HDR || memcmp(enc, c->stream + c->pos, (size_t)n) != 0)
		abort();
	c->pos += (size_t)n;
	memset(pkt, 0xee, len);         /* the callee may scribble on it */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tcpframe_rx rx;
	struct ctx c;
	size_t chunk, off = 0, take;
	int failed = 0;

	if (size < 1)
		return 0;
	chunk = data[0] == 0 ? size : data[0];
	c.stream = data + 1;
	c.pos = 0;
	size--;
	tcpframe_rx_init(&rx);
	while (off < size) {
		take = size - off < chunk ? size - off : chunk;
		if (tcpframe_feed(&rx, c.stream + off, take, frame_cb, &c) < 0)
			failed = 1;
		else if (failed)
			abort();
		off += take;
	}
	return 0;
}
