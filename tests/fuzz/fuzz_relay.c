/*
 * fuzz_relay: arbitrary datagrams from a few endpoints into the relay engine (and its codecs).
 * Never crashes; whatever it sends goes to an endpoint that bound a pair with a valid BIND,
 * and with a random relay key no fuzz input can forge one, so it may only answer PINGs.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct endpoint last_from;

static void
check_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	(void)arg;
	/* Only PONGs, to whoever pinged. */
	if (len != RELAY_PING_LEN || pkt[0] != UDP_RELAY_PONG || to->addr != last_from.addr ||
	    to->port != last_from.port)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct relay_engine_ops ops = { .send = check_send };
	static int inited;
	uint8_t key[RELAY_KEY_LEN];
	struct relay_limits lim = { 1e6, 1e5 };
	struct relay_engine *e;
	struct relay_bind b;
	size_t i = 0, n;

	if (!inited) {
		if (sodium_init() < 0)
			return 0;
		inited = 1;
	}
	randombytes_buf(key, sizeof(key));
	if ((e = relay_engine_new(key, &lim, &ops, NULL)) == NULL)
		return 0;
	/* Each record: 1 byte sender, 2 bytes length, then the datagram. */
	while (i + 3 <= size) {
		last_from.addr = 0xc6120000u + data[i];
		last_from.port = 4000;
		n = (size_t)data[i + 1] << 8 | data[i + 2];
		i += 3;
		if (n > size - i)
			n = size - i;
		(void)relay_bind_decode(data + i, n, &b);
		relay_engine_input(e, &last_from, data + i, n, (double)i, 1800000000u);
		i += n;
	}
	relay_engine_expire(e, 1800000000u);
	relay_engine_free(e);
	return 0;
}
