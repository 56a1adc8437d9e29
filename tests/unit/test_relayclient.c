/*
 * test_relayclient: core/relayclient.c against a real relay (relay/sock.c, the one shoal-relay
 * and shoal-server run) on loopback, with two real transports as the two nodes. The pool is
 * measured and reported; a grant to each side binds the pair and gives each peer layer a link
 * endpoint; a datagram sent to it arrives whole (up to a full-size sealed overlay packet) at the
 * other side from its own link endpoint; garbage of the relay types is dropped; a revoke removes
 * the link; a relay that goes away is reported unreachable. Over TCP too (a grant whose reason
 * is udp-blocked). Every wait runs the loop until the awaited event happened (bounded).
 */
#include "config.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/relayclient.h"
#include "core/transport.h"
#include "mproto/relaymsg.h"
#include "relay/sock.h"
#include "tests/unit/unit.h"

#define LOOP_ADDR 0x7f000001u
enum { SPINS = 200000 };

struct node {
	struct transport *tp;
	struct relayclient *rc;
	uint8_t key[KEY_LEN];
	/* what the ops saw */
	unsigned reports, paths;
	struct msg_relay_rtt last_rtt;
	struct endpoint ep;
	int has_ep;
	/* peer datagrams that came out of the relay link */
	unsigned got;
	size_t got_len;
	uint8_t got_pkt[UDP_MAX_PAYLOAD];
	struct endpoint got_from;
};

static struct ev_loop *loop;

static void
on_recv(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct node *n = arg;

	if (pkt[0] >= UDP_RELAY_BIND && pkt[0] <= UDP_RELAY_PONG) {
		relayclient_receive(n->rc, from, pkt, len);
		return;
	}
	n->got++;
	n->got_len = len;
	memcpy(n->got_pkt, pkt, len);
	n->got_from = *from;
}

static void
on_report(void *arg, const struct msg_relay_rtt *r)
{
	struct node *n = arg;

	n->reports++;
	n->last_rtt = *r;
}

static void
on_path(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	struct node *n = arg;

	(void)key;
	n->paths++;
	n->has_ep = ep != NULL;
	if (ep)
		n->ep = *ep;
}

static const struct relayclient_ops ops = { on_report, on_path };

static void
node_init(struct node *n, uint8_t fill)
{
	memset(n, 0, sizeof(*n));
	memset(n->key, fill, KEY_LEN);
	n->tp = transport_new_at(loop, LOOP_ADDR, 0, on_recv, n);
	CHECK(n->tp != NULL);
	n->rc = relayclient_new(loop, n->tp, &ops, n);
	CHECK(n->rc != NULL);
}

static void
node_free(struct node *n)
{
	relayclient_free(n->rc);
	transport_free(n->tp);
}

#define WAIT(cond)                                                                     \
	do {                                                                           \
		int i_;                                                                \
		for (i_ = 0; i_ < SPINS && !(cond); i_++)                              \
			ev_run(loop, EVRUN_ONCE);                                      \
		CHECK(cond);                                                           \
	} while (0)

static void
make_grant(struct msg_relay_grant *g, const uint8_t relay_key[RELAY_KEY_LEN],
    const struct node *peer, uint16_t port, uint16_t tcp_port, uint64_t pair, uint8_t side,
    uint8_t reason)
{
	memset(g, 0, sizeof(*g));
	memcpy(g->peer, peer->key, KEY_LEN);
	g->relay_id = 1;
	g->udp.addr = LOOP_ADDR;
	g->udp.port = port;
	g->tcp_port = tcp_port;
	g->pair = pair;
	g->side = side;
	g->expiry = (uint32_t)time(NULL) + 3600;
	g->reason = reason;
	relaymsg_side_secret(relay_key, pair, side, g->expiry, g->secret);
}

/* A relay on loopback keyed with relay_key filled with fill; *pool is a pool of it alone
 * (id 1, "loop"). NULL when it cannot start. */
static struct relay_sock *
relay_up(uint8_t relay_key[RELAY_KEY_LEN], uint8_t fill, struct msg_relays *pool)
{
	static const struct relay_limits lim = { 0, 0 };
	struct relay_sock *rs;

	memset(relay_key, fill, RELAY_KEY_LEN);
	rs = relay_sock_new(loop, LOOP_ADDR, 0, 0, relay_key, &lim, 0);
	CHECK(rs != NULL);
	if (rs == NULL)
		return NULL;
	memset(pool, 0, sizeof(*pool));
	pool->n = 1;
	pool->relays[0].id = 1;
	snprintf(pool->relays[0].name, sizeof(pool->relays[0].name), "loop");
	pool->relays[0].udp.addr = LOOP_ADDR;
	pool->relays[0].udp.port = relay_sock_port(rs);
	pool->relays[0].tcp_port = relay_sock_tcp_port(rs);
	return rs;
}

/* a -> relay -> b: one datagram of len bytes arrives whole from b's link endpoint. */
static void
check_through(struct node *a, struct node *b, size_t len)
{
	uint8_t pkt[UDP_MAX_PAYLOAD];
	unsigned before = b->got;
	size_t i;

	for (i = 0; i < len; i++)
		pkt[i] = (uint8_t)(i * 7 + 4);
	pkt[0] = 4;             /* UDP_DATA: not a relay type */
	CHECK_EQ(transport_send(a->tp, &a->ep, pkt, len), 0);
	transport_flush(a->tp);
	WAIT(b->got > before);
	CHECK_EQ(b->got_len, len);
	CHECK_MEM(b->got_pkt, pkt, len);
	CHECK_EQ(b->got_from.via, b->ep.via);
	CHECK_EQ(b->got_from.addr, b->ep.addr);
	CHECK_EQ(b->got_from.port, b->ep.port);
}

static void
test_relay_path(int tcp)
{
	uint8_t relay_key[RELAY_KEY_LEN];
	struct relay_sock *rs;
	struct node a, b;
	struct msg_relays pool;
	struct msg_relay_grant g;
	struct relayclient_peer info;
	struct relayclient_relay rr[2];
	uint8_t junk[64];
	uint16_t port, via;
	size_t i, j;

	if ((rs = relay_up(relay_key, 0x5a, &pool)) == NULL)
		return;
	port = relay_sock_port(rs);
	node_init(&a, 0xaa);
	node_init(&b, 0xbb);

	/* The pool: measured and reported. */
	relayclient_pool(a.rc, &pool);
	relayclient_pool(b.rc, &pool);
	WAIT(a.reports > 0 && b.reports > 0);
	CHECK_EQ(a.last_rtt.n, 1);
	CHECK_EQ(a.last_rtt.rtt[0].id, 1);
	CHECK(a.last_rtt.rtt[0].rtt_ms < RELAY_RTT_UNREACHABLE);
	CHECK_EQ(relayclient_relays(a.rc, rr, 2), 1);
	CHECK(rr[0].reachable && rr[0].rtt_ms >= 0);

	/* Grants: both sides bound, each peer layer gets a link endpoint. */
	make_grant(&g, relay_key, &b, port, relay_sock_tcp_port(rs), 0x1122334455667788ull, 0,
	    tcp ? RELAY_WHY_UDP_BLOCKED : RELAY_WHY_NO_DIRECT);
	relayclient_grant(a.rc, &g);
	make_grant(&g, relay_key, &a, port, relay_sock_tcp_port(rs), 0x1122334455667788ull, 1,
	    tcp ? RELAY_WHY_UDP_BLOCKED : RELAY_WHY_NO_DIRECT);
	relayclient_grant(b.rc, &g);
	WAIT(a.has_ep && b.has_ep);
	CHECK(a.ep.via != 0 && b.ep.via != 0);
	CHECK_EQ(a.ep.addr, LOOP_ADDR);
	CHECK_EQ(a.ep.port, port);
	CHECK_EQ(relayclient_peer_info(a.rc, b.key, &info), 0);
	CHECK_EQ(info.relay_id, 1);
	CHECK(strcmp(info.name, "loop") == 0);
	CHECK_EQ(info.tcp, tcp);
	CHECK(strcmp(transport_link_kind(a.tp, a.ep.via), tcp ? "relay-tcp" : "relay-udp") == 0);

	/* Datagrams both ways, up to a full-size sealed overlay packet. */
	check_through(&a, &b, 33);
	check_through(&b, &a, 200);
	check_through(&a, &b, OVERLAY_MTU + UDP_DATA_OVERHEAD);

	/* Garbage of every relay type and length: dropped, nothing delivered. */
	for (i = UDP_RELAY_BIND; i <= UDP_RELAY_PONG; i++) {
		for (j = 0; j < sizeof(junk); j++) {
			struct endpoint from = { .addr = LOOP_ADDR, .port = port };

			memset(junk, 0xee, sizeof(junk));
			junk[0] = (uint8_t)i;
			relayclient_receive(a.rc, &from, junk, j == 0 ? 1 : j);
		}
	}
	CHECK_EQ(a.got, 1u);

	/* Revoke: the link goes, the peer layer hears it. */
	via = a.ep.via;
	memset(&g, 0, sizeof(g));
	memcpy(g.peer, b.key, KEY_LEN);
	relayclient_grant(a.rc, &g);
	CHECK(!a.has_ep);
	CHECK(transport_link_kind(a.tp, via) == NULL);
	CHECK_EQ(relayclient_peer_info(a.rc, b.key, &info), -1);

	/* The relay goes away: b (still granted) reports it unreachable. */
	relay_sock_free(rs);
	WAIT(b.last_rtt.n == 1 && b.last_rtt.rtt[0].rtt_ms == RELAY_RTT_UNREACHABLE);

	node_free(&a);
	node_free(&b);
}

static void
timer_done(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)revents;
	*(int *)w->data = 1;
}

/* Runs the loop for secs of its clock. */
static void
run_for(double secs)
{
	ev_timer t;
	int done = 0;

	ev_timer_init(&t, timer_done, secs, 0);
	t.data = &done;
	ev_timer_start(loop, &t);
	while (!done)
		ev_run(loop, EVRUN_ONCE);
}

/*
 * Standby grants share their relay's liveness ping (PROTOCOL.md 8.4): a node with NPEERS
 * bound standby grants on one relay pings it about once per RC_IDLE_PING_S in all, not once
 * each (the relay counts every ping it answers). The peers never bind: only a's side is in
 * the relay, which is all its pings need.
 */
enum { NPEERS = 6 };

static void
test_standby_pings_shared(void)
{
	uint8_t relay_key[RELAY_KEY_LEN];
	struct relay_sock *rs;
	struct relay_stats before, after;
	struct node a, peers[NPEERS];
	struct msg_relays pool;
	struct msg_relay_grant g;
	struct relayclient_peer info;
	uint16_t port;
	int i, bound;

	if ((rs = relay_up(relay_key, 0x5b, &pool)) == NULL)
		return;
	port = relay_sock_port(rs);
	node_init(&a, 0xa1);
	relayclient_pool(a.rc, &pool);
	for (i = 0; i < NPEERS; i++) {
		memset(&peers[i], 0, sizeof(peers[i]));
		memset(peers[i].key, 0xc0 + i, KEY_LEN);
		make_grant(&g, relay_key, &peers[i], port, 0, 0x5000 + (uint64_t)i, 0,
		    RELAY_WHY_STARTING);
		relayclient_grant(a.rc, &g);
	}
	/* Bound (acknowledged) and past the first pings of a new grant. */
	run_for(1.5);
	for (bound = 0, i = 0; i < NPEERS; i++)
		bound += relayclient_peer_info(a.rc, peers[i].key, &info) == 0;
	CHECK_EQ(bound, NPEERS);
	relay_sock_get_stats(rs, &before);
	run_for(2 * RC_IDLE_PING_S + 0.5);
	relay_sock_get_stats(rs, &after);
	/* One ping each would be 2 x NPEERS; shared, about 2 (plus a pool ping or two). */
	CHECK(after.pings - before.pings <= 5);
	CHECK(after.pings - before.pings >= 1);
	node_free(&a);
	relay_sock_free(rs);
}

static void
test_udp(void)
{
	test_relay_path(0);
}

static void
test_tcp(void)
{
	test_relay_path(1);
}

int
main(void)
{
	loop = ev_default_loop(0);
	RUN(test_udp);
	RUN(test_tcp);
	RUN(test_standby_pings_shared);
	return unit_finish();
}
