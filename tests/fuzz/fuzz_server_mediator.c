/*
 * fuzz_server_mediator: random sessions, decoded messages and UDP probes thrown at the
 * mediator (server/mediator.c) over an in-memory store. Looks for crashes, leaks and UB in the
 * membership logic; the message decoder itself has its own target.
 *
 * Input: a sequence of commands, each starting with a byte c:
 *   c%4 == 0: [k]          open a session for key k%4 (if that slot is free)
 *   c%4 == 1: [k]          close slot k%4
 *   c%4 == 2: [k][n][n bytes]  msg_decode the bytes; if valid, deliver on slot k%4
 *   c%4 == 3: [k][6 bytes]     UDP probe with slot k%4's token (or a bogus one if c&4),
 *                              from the endpoint given by the 6 bytes; with c&8 instead a
 *                              UDP_NAT_PROBE (test_id from the last plan + c>>5, target and
 *                              socket from the endpoint's last two bytes), and with c&16
 *                              the slot's NAT timer fires (the clock moves on every call).
 * The server has one listen address (three UDP sockets), so NAT plans, NAT_REPORTs (decoded
 * in case 2) and timers all run. Slot 3's key is an allowed relay key and an embedded relay is
 * in the pool, so RELAY_HELLO / RELAY_STATS / RELAY_RTT, the pool's health (the relay tick
 * runs with each NAT timer) and grants run too. Everything the mediator sends must encode:
 * a message that does not would cost the node its connection.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/mediator.h"

#define SLOTS 4

struct slot {                            /* one fake connection */
	struct msess *s;
	uint8_t token[UDP_TOKEN_LEN];
	uint16_t test_id;               /* from the last NAT_PLAN */
};

struct world {                           /* one input's state */
	struct slot slot[SLOTS];
	double now;
};

static void
io_send(void *arg, void *conn, const struct msg *m)
{
	struct slot *sl = conn;
	uint8_t buf[CTRL_FRAME_MAX];

	(void)arg;
	if (msg_encode(m, buf, sizeof(buf)) < 0)
		abort();
	if (m->type == MSG_WELCOME)
		memcpy(sl->token, m->u.welcome.udp_token, UDP_TOKEN_LEN);
	if (m->type == MSG_NAT_PLAN)
		sl->test_id = m->u.nat_plan.test_id;
}

static void
io_udp_send(void *arg, int sock, const struct endpoint *to, const uint8_t *buf, size_t len)
{
	struct nat_test t;

	(void)arg;
	(void)to;
	/* Only valid tests from one of our three sockets ever go out. */
	if (sock < 0 || sock > 2 || nat_test_decode(buf, len, &t) != 0)
		abort();
}

static void
io_timer(void *arg, void *conn, double after)
{
	(void)arg;
	(void)conn;
	(void)after;
}

static void
io_kick(void *arg, void *conn)
{
	(void)arg;
	((struct slot *)conn)->s = NULL;
}

static double
io_now(void *arg)
{
	struct world *w = arg;

	return w->now += 1.0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	static struct store *shared;
	struct medsrv_config cfg = {
		.range = 0x05000000u, .prefix_len = 24,
		.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN, .pw_memlimit = crypto_pwhash_MEMLIMIT_MIN,
	};
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, io_udp_send, io_timer, NULL,
	    NULL, NULL };
	static const struct endpoint local = { 0x7f000001u, 7000, 0 };
	struct world w;
	struct store *st;
	struct medsrv *m;
	char err[128];
	size_t i = 0;
	int ops = 0;

	if (!inited) {
		if (sodium_init() < 0)
			return 0;
		log_init("fuzz", LOG_LVL_WARN);
		inited = 1;
	}
	memset(&w, 0, sizeof(w));
	cfg.n_nat_socks = 3;
	cfg.nat_socks[0] = (struct natsock){ 0, 7000, 0, 0 };
	cfg.nat_socks[1] = (struct natsock){ 0, 7001, 0, 1 };
	cfg.nat_socks[2] = (struct natsock){ 0, 7002, 0, 2 };
	/* One store for the whole run, emptied for each input: opening one costs more than
	 * most inputs. */
	if (shared == NULL && (shared = store_open(":memory:", err, sizeof(err))) == NULL)
		return 0;
	if (store_clear(shared) != 0)
		return 0;
	st = shared;
	io.arg = &w;
	cfg.n_relay_allow = 1;
	memset(cfg.relay_allow[0], 0x40 + 3, KEY_LEN);
	if ((m = medsrv_new(st, &cfg, &io)) == NULL)
		return 0;
	{
		static const struct endpoint emb = { 0, 7003, 0 };
		uint8_t rk[32];

		(void)medsrv_relay_embedded(m, "embedded", &emb, 7003, rk);
	}
	/* Bounded so each input stays fast. */
	while (i + 2 <= size && ops++ < 64) {
		uint8_t c = data[i], k = data[i + 1] % SLOTS;
		struct slot *sl = &w.slot[k];

		i += 2;
		switch (c % 4) {
		case 0:
			if (sl->s == NULL) {
				uint8_t key[KEY_LEN];

				memset(key, 0x40 + k, KEY_LEN);
				sl->s = medsrv_session_open(m, key, sl);
				if (sl->s) {
					/* Its public TCP endpoint: one per slot, so blocked
					 * pairs can be planned as tcp (PROTOCOL.md 3.3). */
					struct endpoint remote = { 0xcb007100u + k, 41000, 0 };

					medsrv_session_local(m, sl->s, &local);
					medsrv_session_remote(m, sl->s, &remote);
				}
			}
			break;
		case 1:
			if (sl->s) {
				medsrv_session_close(m, sl->s);
				sl->s = NULL;
			}
			break;
		case 2: {
			struct msg msg;
			size_t n;

			if (i >= size)
				goto done;
			n = data[i++];
			if (n > size - i)
				n = size - i;
			if (msg_decode(&msg, data + i, n) == 0 && sl->s)
				medsrv_session_msg(m, sl->s, &msg);
			i += n;
			break;
		}
		case 3: {
			struct endpoint ep;
			uint8_t bogus[UDP_TOKEN_LEN];

			if (size - i < 6)
				goto done;
			ep.addr = (uint32_t)data[i] << 24 | (uint32_t)data[i + 1] << 16 |
			    (uint32_t)data[i + 2] << 8 | data[i + 3];
			ep.port = (uint16_t)(data[i + 4] << 8 | data[i + 5]);
			i += 6;
			memset(bogus, c, sizeof(bogus));
			if (c & 8) {
				struct nat_probe p;

				memcpy(p.token, (c & 4) ? bogus : sl->token, UDP_TOKEN_LEN);
				p.test_id = (uint16_t)(sl->test_id + (c >> 5));
				p.target = data[i - 2] % NAT_MAX_TARGETS;
				medsrv_nat_probe(m, &p, data[i - 1] % 4, &ep);
			} else {
				medsrv_probe(m, (c & 4) ? bogus : sl->token, &ep);
			}
			if ((c & 16) && sl->s)
				medsrv_session_timer(m, sl->s);
			if (c & 16)
				medsrv_relay_tick(m);
			break;
		}
		}
	}
done:
	medsrv_free(m);
	return 0;
}
