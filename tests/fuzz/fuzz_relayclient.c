/*
 * fuzz_relayclient: arbitrary datagrams of the relay types into relayclient_receive() of a
 * node with a pool of two relays and one grant (peer B through relay 1). The input is a list of
 * datagrams, each [source byte][length, 2 bytes big-endian][bytes]; the source byte picks who
 * sent it: relay 1's endpoint, relay 2's, or a stranger. If the datagram's first byte is
 * RELAY_DATA its pair field is set to the grant's pair when the source byte's high bit is set,
 * so the fuzzer also reaches the delivery path.
 *
 * Checked: nothing crashes or leaks; ops.path is only ever told about B; the peer layer only
 * ever gets a datagram out of the relay link when relay 1 sent it (a stranger or another relay
 * cannot inject into the pair), and it comes from the grant's link endpoint.
 */
#include "config.h"

#include <ev.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/relayclient.h"
#include "core/transport.h"
#include "mproto/relaymsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOOP_ADDR 0x7f000001u
#define RELAY1_PORT 9           /* discard: nothing answers the client's BINDs and PINGs */
#define RELAY2_PORT 13
#define PAIR 0x1122334455667788ull

static struct ev_loop *loop;
static struct transport *tp;
static uint8_t peer_b[KEY_LEN];
static int relay1_sent;                 /* the datagram being fed came from relay 1 */
static struct endpoint path_ep;
static int has_path;

static void
on_recv(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	(void)arg;
	(void)pkt;
	(void)len;
	/* Only the relay link delivers here (nothing else is sent to our socket). */
	if (!relay1_sent || !has_path || from->via != path_ep.via)
		abort();
}

static void
on_report(void *arg, const struct msg_relay_rtt *r)
{
	(void)arg;
	(void)r;
}

static void
on_path(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	(void)arg;
	if (memcmp(key, peer_b, KEY_LEN) != 0)
		abort();
	has_path = ep != NULL;
	if (ep)
		path_ep = *ep;
}

static const struct relayclient_ops ops = { on_report, on_path };

static void
setup(void)
{
	loop = ev_default_loop(0);
	if (sodium_init() < 0 || (tp = transport_new_at(loop, LOOP_ADDR, 0, on_recv, NULL)) == NULL)
		abort();
	memset(peer_b, 0xbb, sizeof(peer_b));
}

static struct relayclient *
client_new(void)
{
	struct relayclient *rc = relayclient_new(loop, tp, &ops, NULL);
	struct msg_relays pool;
	struct msg_relay_grant g;
	uint8_t relay_key[RELAY_KEY_LEN];

	if (rc == NULL)
		abort();
	memset(&pool, 0, sizeof(pool));
	pool.n = 2;
	pool.relays[0].id = 1;
	pool.relays[0].udp.addr = LOOP_ADDR;
	pool.relays[0].udp.port = RELAY1_PORT;
	pool.relays[1].id = 2;
	pool.relays[1].udp.addr = LOOP_ADDR;
	pool.relays[1].udp.port = RELAY2_PORT;
	relayclient_pool(rc, &pool);
	memset(&g, 0, sizeof(g));
	memcpy(g.peer, peer_b, KEY_LEN);
	g.relay_id = 1;
	g.udp.addr = LOOP_ADDR;
	g.udp.port = RELAY1_PORT;
	g.pair = PAIR;
	g.side = 0;
	g.expiry = (uint32_t)time(NULL) + 3600;
	g.reason = RELAY_WHY_NO_DIRECT;
	memset(relay_key, 0x5a, sizeof(relay_key));
	relaymsg_side_secret(relay_key, g.pair, g.side, g.expiry, g.secret);
	relayclient_grant(rc, &g);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[UDP_MAX_PAYLOAD];
	struct relayclient *rc;
	struct endpoint from;
	size_t len;
	uint8_t src;

	if (loop == NULL)
		setup();
	has_path = 0;
	rc = client_new();
	while (size >= 3) {
		src = data[0];
		len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > sizeof(pkt))
			len = sizeof(pkt);
		if (len == 0)
			continue;
		memcpy(pkt, data, len);
		data += len;
		size -= len;
		memset(&from, 0, sizeof(from));
		from.addr = LOOP_ADDR;
		switch (src & 3) {
		case 0:
			from.port = RELAY1_PORT;
			break;
		case 1:
			from.port = RELAY2_PORT;
			break;
		default:
			from.port = (uint16_t)(1024 + src);
			break;
		}
		/* The transport's own datagrams come with via 0; a link's with its own. */
		if (src & 4)
			from.via = (uint16_t)(src >> 3 & 7);
		if (pkt[0] == UDP_RELAY_DATA && (src & 0x80) && len >= RELAY_DATA_HDR)
			for (int i = 0; i < 8; i++)
				pkt[4 + i] = (uint8_t)(PAIR >> (56 - 8 * i));
		relay1_sent = from.port == RELAY1_PORT && from.via == 0;
		/* The owner (daemon/wiring.c) routes only these types here. */
		if (pkt[0] >= UDP_RELAY_BIND && pkt[0] <= UDP_RELAY_PONG)
			relayclient_receive(rc, &from, pkt, len);
		relay1_sent = 0;
	}
	relayclient_free(rc);
	return 0;
}
