/*
 * fuzz_relay_tcp: arbitrary bytes on one relay TCP stream (PROTOCOL.md 8.5): reassembled by
 * core/tcpframe as relay/tcp.c's links do, each frame into the relay engine as a datagram
 * from the stream's endpoint (via 1), the stream closing at the first bad header. The relay
 * key is fixed so the seeds' valid BINDs bind both sides and DATA is forwarded. Never crashes,
 * and never sends to anyone but the stream itself (the only source that could bind): a relay
 * forwards only to endpoints that proved a grant.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tcpframe.h"
#include "relay/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_UNIX_NOW = 1800000000 };    /* the seeds' grants expire an hour after this */

static const struct endpoint stream = { 0xc6120001u, 40000, 1 };

static void
check_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	(void)arg;
	(void)pkt;
	if (to->addr != stream.addr || to->port != stream.port || to->via != stream.via ||
	    len == 0 || len > UDP_MAX_PAYLOAD)
		abort();
}

static void
on_frame(void *arg, uint8_t *pkt, size_t len)
{
	relay_engine_input(arg, &stream, pkt, len, 1.0, FUZZ_UNIX_NOW);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct relay_engine_ops ops = { .send = check_send };
	static int inited;
	static struct tcpframe_rx rx;
	uint8_t key[RELAY_KEY_LEN];
	struct relay_limits lim = { 0, 0 };
	struct relay_engine *e;

	if (!inited) {
		if (sodium_init() < 0)
			return 0;
		inited = 1;
	}
	memset(key, 0x42, sizeof(key));
	if ((e = relay_engine_new(key, &lim, &ops, NULL)) == NULL)
		return 0;
	tcpframe_rx_init(&rx);
	(void)tcpframe_feed(&rx, data, size, on_frame, e);
	relay_engine_expire(e, FUZZ_UNIX_NOW + 7200);
	relay_engine_free(e);
	return 0;
}
