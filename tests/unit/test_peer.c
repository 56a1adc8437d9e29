/*
 * Unit tests for the peer layer (core/peer.c and friends): several nodes in one process and
 * one ev loop, each with its own transport on loopback, key, vnet and peer table, linked
 * against the real modules. In place of the netstack each node passes a fake struct peers_ops
 * that records what would have been delivered, which peers' connections reset and which
 * paths were reported lost; there is no daemon and no mediator. A node made `deaf` drops
 * everything its socket receives: a path that died on the way.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

#include "base/log.h"
#include "core/birthday.h"
#include "core/peer_impl.h"
#include "base/ip4.h"
#include "core/transport.h"
#include "tests/unit/unit.h"

enum { MAX_NODES = 4 };

/* What the fake peers_ops saw: deliveries (the netstack's input) and peer_gone calls. */
struct capture {
	unsigned n;
	uint32_t last_src;
	size_t last_len;
	uint32_t aborted_ip;             /* peer_gone */
	unsigned n_aborted;
	unsigned n_lost;                /* path_lost */
	uint8_t lost_key[KEY_LEN];
};

struct node {
	struct noise_keypair key;
	struct vnet vnet;               /* vnet.addr is the node's virtual address */
	struct transport *tp;
	struct peers *peers;
	struct capture cap;
	uint8_t last_data[UDP_MAX_PAYLOAD];
	size_t last_data_len;
	struct endpoint last_from;
	int deaf;                       /* drop everything the transport receives */
	unsigned rx_inits;              /* UDP_HANDSHAKE_INITs that reached the socket */
};

static void
fake_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct capture *c = arg;

	c->n++;
	c->last_len = len;
	c->last_src = (uint32_t)pkt[12] << 24 | (uint32_t)pkt[13] << 16 | (uint32_t)pkt[14] << 8 |
	    pkt[15];
}

static void
fake_peer_gone(void *arg, uint32_t vaddr)
{
	struct capture *c = arg;

	c->aborted_ip = vaddr;
	c->n_aborted++;
}

static void
fake_path_lost(void *arg, const uint8_t key[KEY_LEN])
{
	struct capture *c = arg;

	c->n_lost++;
	memcpy(c->lost_key, key, KEY_LEN);
}

static const struct peers_ops fake_ops = { fake_deliver, fake_peer_gone, fake_path_lost };

static void
dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct node *n = arg;

	if (len > 0 && pkt[0] == UDP_HANDSHAKE_INIT)
		n->rx_inits++;
	if (n->deaf)
		return;
	if (len > 0 && pkt[0] == UDP_DATA) {
		memcpy(n->last_data, pkt, len);
		n->last_data_len = len;
		n->last_from = *from;
	}
	peers_receive(n->peers, from, pkt, len);
}

static struct ev_loop *loop;
static struct node nodes[MAX_NODES];

static struct node *
node_up(int i)
{
	struct node *n = &nodes[i];

	memset(n, 0, sizeof(*n));
	noise_keypair_generate(&n->key);
	n->vnet.addr = 0x05000001u + (uint32_t)i;
	n->vnet.prefix_len = 8;
	n->tp = transport_new(loop, 0, dispatch, n);
	n->peers = peers_new(loop, &n->key, n->tp, &n->vnet, &fake_ops, &n->cap);
	if (!n->tp || !n->peers)
		fatalx("node setup failed");
	return n;
}

static void
node_down(struct node *n)
{
	peers_free(n->peers);
	transport_free(n->tp);
	memset(n, 0, sizeof(*n));
}

/* Set by the IPv6 tests: nodes reach each other at [::1] through the IPv6 socket. */
static int use_v6;

static struct endpoint
node_ep(const struct node *n)
{
	static const uint8_t lo6[16] = { [15] = 1 };
	struct endpoint ep = { .addr = 0x7f000001, .port = transport_port(n->tp) };

	if (use_v6)
		ep_set_v6(&ep, lo6, transport_port(n->tp));
	return ep;
}

static void
authorize(struct node *a, struct node *b)
{
	struct endpoint ep = node_ep(b);

	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &ep, 1);
}

static struct peer *
peer_of(struct node *a, struct node *b)
{
	return peers_lookup_key(a->peers, b->key.pub);
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
}

/* Runs the loop for up to `secs`, or until cond(arg) holds. */
static int
run_until(int (*cond)(void *), void *arg, double secs)
{
	ev_timer tick;
	double end;
	int ok = 0;

	ev_now_update(loop);
	end = ev_now(loop) + secs;
	ev_timer_init(&tick, tick_cb, 0.005, 0.005);
	ev_timer_start(loop, &tick);
	while (ev_now(loop) < end) {
		if (cond && cond(arg)) {
			ok = 1;
			break;
		}
		ev_run(loop, EVRUN_ONCE);
	}
	ev_timer_stop(loop, &tick);
	return ok;
}

static int
session_up(void *arg)
{
	struct node **ab = arg;
	struct peer *pa = peer_of(ab[0], ab[1]), *pb = peer_of(ab[1], ab[0]);

	return pa && pb && peer_usable_keypair(pa) && peer_usable_keypair(pb);
}

static int
connect_pair(struct node *a, struct node *b)
{
	struct node *ab[2] = { a, b };

	authorize(a, b);
	authorize(b, a);
	return run_until(session_up, ab, 3.0);
}

static size_t
make_ip(uint8_t *pkt, uint32_t src, uint32_t dst, size_t len)
{
	memset(pkt, 0, len);
	pkt[0] = 0x45;
	pkt[2] = len >> 8;
	pkt[3] = len & 255;
	pkt[8] = 64;
	pkt[9] = 17;
	pkt[12] = src >> 24; pkt[13] = src >> 16; pkt[14] = src >> 8; pkt[15] = src;
	pkt[16] = dst >> 24; pkt[17] = dst >> 16; pkt[18] = dst >> 8; pkt[19] = dst;
	return len;
}

static int
captured_at_least(void *arg)
{
	void **v = arg;
	struct capture *c = v[0];
	unsigned *want = v[1];

	return c->n >= *want;
}

static int
wait_delivered(struct node *n, unsigned want, double secs)
{
	void *v[2] = { &n->cap, &want };

	return run_until(captured_at_least, v, secs);
}

struct ping_result {
	int done;
	double rtt;
};

static void
ping_cb(void *arg, double rtt)
{
	struct ping_result *r = arg;

	r->done = 1;
	r->rtt = rtt;
}

static int
ping_done(void *arg)
{
	return ((struct ping_result *)arg)->done;
}

static void
test_ping_and_status(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct ping_result pr = { 0, 0 };
	struct peer_status st;
	struct peers_stats ps;

	CHECK(connect_pair(a, b));
	CHECK_EQ(peers_ping(a->peers, b->vnet.addr, ping_cb, &pr), 0);
	CHECK(run_until(ping_done, &pr, 4.0));
	CHECK(pr.rtt >= 0 && pr.rtt < 1000);
	CHECK_EQ(peers_ping(a->peers, 0x05000063u, ping_cb, &pr), -1);

	CHECK_EQ(peers_status(a->peers, b->key.pub, &st), 0);
	CHECK_EQ(st.path, PATH_DIRECT);
	CHECK_EQ(st.endpoint.port, transport_port(b->tp));
	CHECK(st.rtt_ms >= 0);
	CHECK(st.tx_bytes > 0 && st.rx_bytes > 0);
	CHECK(st.last_rx > 0);
	CHECK(strcmp(path_kind_name(st.path), "direct") == 0);
	CHECK(strcmp(path_kind_name(PATH_NONE), "none") == 0);
	CHECK_EQ(peers_status(a->peers, a->key.pub, &st), -1);     /* ourselves: never */

	peers_get_stats(a->peers, &ps);
	CHECK(ps.handshakes_done >= 1);
	CHECK_EQ(ps.rx_dropped_auth, 0);
	node_down(a);
	node_down(b);
}

/* How often a's sends to b grew: each periodic ping is one step. */
struct refresh_watch {
	struct node *a, *b;
	uint64_t last_tx;
	unsigned steps;
};

static int
refresh_steps(void *arg)
{
	struct refresh_watch *w = arg;
	struct peer_status st;

	if (peers_status(w->a->peers, w->b->key.pub, &st) == 0 && st.tx_bytes != w->last_tx) {
		w->last_tx = st.tx_bytes;
		w->steps++;
	}
	return w->steps >= 4;
}

/* A NAT that drops idle bindings after 3 s gets idle refreshes at the new interval, at once:
 * 3 periodic pings within 4.5 s (the default interval, 5 s, sends none). */
static void
test_refresh_interval(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct refresh_watch w = { a, b, 0, 0 };
	struct peer_status st;

	CHECK(connect_pair(a, b));
	CHECK_EQ(peers_status(a->peers, b->key.pub, &st), 0);
	w.last_tx = st.tx_bytes;
	w.steps = 1;                    /* counts changes from here */
	peers_set_refresh(a->peers, 0.2);       /* clamped to PEERS_REFRESH_MIN (1 s) */
	CHECK(run_until(refresh_steps, &w, 4.5));
	peers_set_refresh(a->peers, 60);        /* clamped to PING_INTERVAL */
	node_down(a);
	node_down(b);
}

static void
test_ip_and_spoofing(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	uint8_t pkt[100];
	struct peers_stats st;

	CHECK(connect_pair(a, b));
	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	CHECK(wait_delivered(b, 1, 2.0));
	CHECK_EQ(b->cap.last_src, a->vnet.addr);
	CHECK_EQ(b->cap.last_len, sizeof(pkt));

	/* a claims to be 5.0.0.9: authenticated, but not a's address -> dropped. */
	make_ip(pkt, 0x05000009u, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	run_until(NULL, NULL, 0.2);
	CHECK_EQ(b->cap.n, 1);
	peers_get_stats(b->peers, &st);
	CHECK_EQ(st.rx_dropped_auth, 1);
	CHECK_EQ(b->peers->xst.rx_spoofed, 1);
	CHECK_EQ(st.rx_data, 1);

	/* No route: unknown destination is dropped and counted. */
	CHECK_EQ(peers_send_ip(a->peers, 0x05000063u, pkt, sizeof(pkt)), -1);
	CHECK_EQ(a->peers->xst.tx_no_route, 1);
	node_down(a);
	node_down(b);
}

static void
test_replay_dropped(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	uint8_t pkt[60], copy[UDP_MAX_PAYLOAD];
	struct endpoint from = { 0 };
	struct peers_stats st;
	size_t len;

	CHECK(connect_pair(a, b));
	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	CHECK(wait_delivered(b, 1, 2.0));
	CHECK(b->last_data_len > 0);
	len = b->last_data_len;
	memcpy(copy, b->last_data, len);
	from = b->last_from;

	peers_receive(b->peers, &from, copy, len);
	peers_get_stats(b->peers, &st);
	CHECK_EQ(st.rx_dropped_replay, 1);
	CHECK_EQ(b->cap.n, 1);

	/* One flipped bit in the ciphertext: an authentication failure, not a replay. */
	memcpy(copy, b->last_data, len);
	copy[len - 1] ^= 1;
	copy[8 + 7] ^= 0x40;            /* a fresh counter, so the window does not reject it */
	peers_receive(b->peers, &from, copy, len);
	peers_get_stats(b->peers, &st);
	CHECK_EQ(st.rx_dropped_auth, 1);
	CHECK_EQ(st.rx_dropped_replay, 1);
	CHECK_EQ(b->cap.n, 1);
	node_down(a);
	node_down(b);
}

static void
test_unauthorized_handshake(void)
{
	struct node *a = node_up(0), *c = node_up(2);
	struct peers_stats st;
	struct peer_status ps;

	/* c knows a; a never authorized c. */
	authorize(c, a);
	run_until(NULL, NULL, 0.3);
	peers_get_stats(a->peers, &st);
	CHECK(st.rx_dropped_auth >= 1);
	CHECK(a->peers->xst.rx_unauthorized >= 1);
	CHECK_EQ(st.handshakes_done, 0);
	CHECK_EQ(peers_status(c->peers, a->key.pub, &ps), 0);
	CHECK_EQ(ps.path, PATH_NONE);
	CHECK(peer_usable_keypair(peer_of(c, a)) == NULL);
	node_down(a);
	node_down(c);
}

static void
test_revoke(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	uint8_t pkt[80];
	struct peers_stats st;
	struct peer_status ps;

	CHECK(connect_pair(a, b));
	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	CHECK(wait_delivered(b, 1, 2.0));
	CHECK(peers_is_peer(b->peers, a->vnet.addr));
	CHECK(!peers_is_peer(b->peers, 0x05000063u));
	CHECK(!peers_is_peer(b->peers, 0));

	peers_revoke(b->peers, a->key.pub);
	CHECK_EQ(b->cap.aborted_ip, a->vnet.addr);        /* open connections reset at once */
	CHECK_EQ(b->cap.n_aborted, 1);
	CHECK(!peers_is_peer(b->peers, a->vnet.addr));
	peers_revoke(b->peers, a->key.pub);                /* unknown now: nothing to reset */
	CHECK_EQ(b->cap.n_aborted, 1);
	CHECK_EQ(peers_status(b->peers, a->key.pub, &ps), -1);
	CHECK(b->peers->indices == NULL);     /* every index of a's sessions is gone */
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	run_until(NULL, NULL, 0.2);
	CHECK_EQ(b->cap.n, 1);
	peers_get_stats(b->peers, &st);
	CHECK(st.rx_dropped_unknown >= 1);
	/* and b can no longer send to a */
	make_ip(pkt, b->vnet.addr, a->vnet.addr, sizeof(pkt));
	peers_send_ip(b->peers, a->vnet.addr, pkt, sizeof(pkt));
	CHECK_EQ(b->peers->xst.tx_no_route, 1);
	node_down(a);
	node_down(b);
}

struct flow {
	struct node *a, *b;
	unsigned sent, target;
};

static int
flow_step(void *arg)
{
	struct flow *f = arg;
	uint8_t pkt[300];

	if (f->sent < f->target) {
		make_ip(pkt, f->a->vnet.addr, f->b->vnet.addr, sizeof(pkt));
		peers_send_ip(f->a->peers, f->b->vnet.addr, pkt, sizeof(pkt));
		f->sent++;
		return 0;
	}
	return f->b->cap.n >= f->target;
}

static void
test_forced_rekey(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct flow f = { a, b, 0, 300 };
	struct peer *pa, *pb;
	uint32_t old_index;
	struct peers_stats before, after;

	CHECK(connect_pair(a, b));
	pa = peer_of(a, b);
	pb = peer_of(b, a);
	peers_get_stats(a->peers, &before);
	/* Make whichever end initiated believe its session is old: next send rekeys. */
	if (pa->current->s.initiator) {
		pa->current->s.created -= REKEY_AFTER_TIME + 1;
	} else {
		pb->current->s.created -= REKEY_AFTER_TIME + 1;
		f.a = b;
		f.b = a;
	}
	old_index = peer_of(f.a, f.b)->current->s.local_index;
	CHECK(run_until(flow_step, &f, 5.0));
	CHECK_EQ(f.b->cap.n, f.target);         /* not one packet lost across the rekey */
	peers_get_stats(a->peers, &after);
	CHECK(after.handshakes_done > before.handshakes_done);
	CHECK(peer_of(f.a, f.b)->current->s.local_index != old_index);
	CHECK(peer_of(f.a, f.b)->previous != NULL);      /* old keys still accepted */
	node_down(a);
	node_down(b);
}

static void
test_simultaneous_initiation(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct node *ab[2] = { a, b };
	struct ping_result p1 = { 0, 0 }, p2 = { 0, 0 };
	uint8_t pkt[64];
	struct peers_stats sa, sb;

	/* Both authorize before either runs: both initiations cross on the wire. */
	authorize(a, b);
	authorize(b, a);
	CHECK(peer_of(a, b)->hs_active && peer_of(b, a)->hs_active);
	CHECK(run_until(session_up, ab, 3.0));
	run_until(NULL, NULL, 0.2);
	peers_get_stats(a->peers, &sa);
	peers_get_stats(b->peers, &sb);
	/* Each end answered one handshake and completed its own. */
	CHECK_EQ(sa.handshakes_done, 2);
	CHECK_EQ(sb.handshakes_done, 2);

	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	make_ip(pkt, b->vnet.addr, a->vnet.addr, sizeof(pkt));
	peers_send_ip(b->peers, a->vnet.addr, pkt, sizeof(pkt));
	CHECK(wait_delivered(b, 1, 2.0));
	CHECK(wait_delivered(a, 1, 2.0));
	CHECK_EQ(peers_ping(a->peers, b->vnet.addr, ping_cb, &p1), 0);
	CHECK_EQ(peers_ping(b->peers, a->vnet.addr, ping_cb, &p2), 0);
	CHECK(run_until(ping_done, &p1, 4.0));
	CHECK(run_until(ping_done, &p2, 4.0));
	CHECK(p1.rtt >= 0 && p2.rtt >= 0);
	peers_get_stats(a->peers, &sa);
	peers_get_stats(b->peers, &sb);
	CHECK_EQ(sa.rx_dropped_auth + sa.rx_dropped_unknown + sa.rx_dropped_replay, 0);
	CHECK_EQ(sb.rx_dropped_auth + sb.rx_dropped_unknown + sb.rx_dropped_replay, 0);
	node_down(a);
	node_down(b);
}

static void
test_queue_before_session(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	uint8_t pkt[64];
	int i;

	/* b is deaf at first: a's packets wait in its queue, then all go out. */
	b->deaf = 1;
	authorize(b, a);
	authorize(a, b);
	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	for (i = 0; i < 10; i++)
		peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	run_until(NULL, NULL, 0.1);
	CHECK_EQ(peer_of(a, b)->q_len, 10);
	b->deaf = 0;
	/* a's retransmit (REKEY_TIMEOUT) or b's own initiation brings the session up. */
	CHECK(wait_delivered(b, 10, 8.0));
	CHECK_EQ(peer_of(a, b)->q_len, 0);
	node_down(a);
	node_down(b);
}

static void
test_broadcast(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	uint8_t pkt[64];

	CHECK(connect_pair(a, b));
	CHECK(connect_pair(a, c));
	make_ip(pkt, a->vnet.addr, 0x05ffffffu, sizeof(pkt));
	peers_send_ip(a->peers, 0x05ffffffu, pkt, sizeof(pkt));       /* subnet broadcast */
	make_ip(pkt, a->vnet.addr, 0xe0000001u, sizeof(pkt));
	peers_send_ip(a->peers, 0xe0000001u, pkt, sizeof(pkt));        /* multicast */
	make_ip(pkt, a->vnet.addr, 0xffffffffu, sizeof(pkt));
	peers_send_ip(a->peers, 0xffffffffu, pkt, sizeof(pkt));
	CHECK(wait_delivered(b, 3, 2.0));
	CHECK(wait_delivered(c, 3, 2.0));
	/* The vnet is borrowed and read live: without an address (0) there is no directed
	 * broadcast, so 5.255.255.255 is just an unknown destination. */
	a->vnet.addr = 0;
	make_ip(pkt, 0, 0x05ffffffu, sizeof(pkt));
	peers_send_ip(a->peers, 0x05ffffffu, pkt, sizeof(pkt));
	CHECK_EQ(a->peers->xst.tx_no_route, 1);
	node_down(a);
	node_down(b);
	node_down(c);
}

static void
test_malformed(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct endpoint from = { .addr = 0x7f000001, .port = 9 };
	uint8_t junk[200];
	struct peers_stats st;
	size_t i;

	CHECK(connect_pair(a, b));
	memset(junk, 0, sizeof(junk));
	peers_receive(b->peers, &from, junk, 0);
	junk[0] = 99;
	peers_receive(b->peers, &from, junk, 10);
	junk[0] = UDP_HANDSHAKE_INIT;
	peers_receive(b->peers, &from, junk, 50);                       /* short */
	peers_receive(b->peers, &from, junk, UDP_HANDSHAKE_INIT_LEN);  /* garbage: bad mac1 */
	junk[0] = UDP_HANDSHAKE_RESP;
	peers_receive(b->peers, &from, junk, UDP_HANDSHAKE_RESP_LEN);  /* unknown index */
	junk[0] = UDP_DATA;
	peers_receive(b->peers, &from, junk, 10);                       /* short */
	for (i = 0; i < 50; i++) {
		randombytes_buf(junk + 1, sizeof(junk) - 1);
		junk[1] = junk[2] = junk[3] = 0;
		peers_receive(b->peers, &from, junk, 40 + i * 3);
	}
	peers_get_stats(b->peers, &st);
	CHECK_EQ(st.rx_dropped_malformed, 4);
	CHECK_EQ(st.rx_dropped_auth, 0);
	CHECK_EQ(b->peers->xst.rx_bad_mac, 1);          /* before any X25519 */
	CHECK(st.rx_dropped_unknown >= 49);
	CHECK_EQ(b->cap.n, 0);
	/* and the real session still works */
	{
		uint8_t pkt[64];

		make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
		peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
		CHECK(wait_delivered(b, 1, 2.0));
	}
	node_down(a);
	node_down(b);
}

/* Run until node n has seen `want` initiations (a punch round reached it). */
struct inits_wait {
	struct node *n;
	unsigned want;
};

static int
inits_at_least(void *arg)
{
	struct inits_wait *w = arg;

	return w->n->rx_inits >= w->want;
}

/*
 * a and b know each other only by a wrong candidate (c, deaf): their own handshakes never
 * arrive, as behind NATs whose mappings the mediator's candidates do not match. A punch on a
 * with b's real endpoint as target makes the session; the rounds stop once it is up.
 */
static void
test_punch_makes_session(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct node *ab[2] = { a, b };
	struct endpoint wrong = node_ep(c), tg[2];
	struct peers_stats sb;
	unsigned after_up;

	c->deaf = 1;
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &wrong, 1);
	peers_authorize(b->peers, a->key.pub, a->vnet.addr, &wrong, 1);
	run_until(session_up, ab, 0.3);
	CHECK(!session_up(ab));                 /* today: no session */
	CHECK_EQ(b->rx_inits, 0);
	CHECK(peer_of(a, b)->hs_active);

	/* Two targets reaching b (127.0.0.1 and 127.0.0.2, both on b's socket): the same
	 * initiation arrives twice in round 1; b answers the first and drops the second as a
	 * replay, which is what resending one message (not one per copy) guarantees. */
	tg[0] = node_ep(b);
	tg[1] = node_ep(b);
	tg[1].addr = 0x7f000002;
	peers_punch(a->peers, b->key.pub, tg, 2, 0.05, 0.1, 5);
	CHECK(run_until(session_up, ab, 3.0));
	after_up = b->rx_inits;
	CHECK_EQ(after_up, 2);
	peers_get_stats(b->peers, &sb);
	CHECK_EQ(sb.handshakes_done, 1);
	CHECK_EQ(b->peers->xst.rx_hs_replay, 1);
	/* Past the end of all 5 rounds: none was sent after the session came up. */
	run_until(NULL, NULL, 0.6);
	CHECK_EQ(b->rx_inits, after_up);
	CHECK(!ev_is_active(&peer_of(a, b)->t_punch));
	CHECK_EQ(path_current(peer_of(a, b), ev_now(loop)), PATH_DIRECT);
	node_down(a);
	node_down(b);
	node_down(c);
}

/* The bounds and the cases that send nothing. */
static void
test_punch_bounds(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct endpoint wrong = node_ep(c), tg[PUNCH_MAX_TARGETS + 4];
	struct inits_wait w = { c, 0 };
	uint8_t stranger[KEY_LEN];
	unsigned before;
	size_t i;

	c->deaf = 1;
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &wrong, 1);
	CHECK_EQ(c->rx_inits, 0);
	w.want = 1;
	CHECK(run_until(inits_at_least, &w, 1.0));  /* the first initiation (authorize) */
	before = c->rx_inits;
	CHECK_EQ(before, 1);

	/* An unknown key, no targets, zero rounds: nothing is sent. */
	randombytes_buf(stranger, sizeof(stranger));
	peers_punch(a->peers, stranger, &wrong, 1, 0, 0.02, 5);
	peers_punch(a->peers, b->key.pub, &wrong, 0, 0, 0.02, 5);
	peers_punch(a->peers, b->key.pub, &wrong, 1, 0, 0.02, 0);
	run_until(NULL, NULL, 0.2);
	CHECK_EQ(c->rx_inits, before);
	CHECK(!ev_is_active(&peer_of(a, b)->t_punch));

	/* 20 targets and 50 rounds asked: 16 targets (all c here, so one packet a round) and
	 * 10 rounds used. */
	for (i = 0; i < sizeof(tg) / sizeof(tg[0]); i++)
		tg[i] = wrong;
	peers_punch(a->peers, b->key.pub, tg, sizeof(tg) / sizeof(tg[0]), 0, 0.02, 50);
	w.want = before + 10;
	CHECK(run_until(inits_at_least, &w, 2.0));
	run_until(NULL, NULL, 0.3);
	CHECK_EQ(c->rx_inits, before + 10);
	CHECK(!ev_is_active(&peer_of(a, b)->t_punch));
	CHECK_EQ(peer_of(a, b)->path.n_punch, 1);   /* duplicates kept once */

	/* A new punch replaces the running one; revoking the peer stops its timer (valgrind
	 * and ASan see a timer left on freed memory). */
	peers_punch(a->peers, b->key.pub, &wrong, 1, 0.5, 0.02, 10);
	peers_punch(a->peers, b->key.pub, &wrong, 1, 0.05, 0.02, 2);
	w.want = before + 12;
	CHECK(run_until(inits_at_least, &w, 2.0));
	run_until(NULL, NULL, 0.7);
	CHECK_EQ(c->rx_inits, before + 12);
	peers_punch(a->peers, b->key.pub, &wrong, 1, 0.05, 0.02, 10);
	peers_revoke(a->peers, b->key.pub);
	run_until(NULL, NULL, 0.3);
	CHECK_EQ(c->rx_inits, before + 12);
	node_down(a);
	node_down(b);
	node_down(c);
}

/*
 * A PUNCH for a peer we hold a usable session with: a healthy path answers the probe ping
 * before round 1 and no round goes out; a dead one (b deaf, not yet noticed by a) gets the
 * rounds anyway: the session is fine, the path is not.
 */
static void
test_punch_over_session(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct endpoint tg = node_ep(b);
	struct inits_wait w = { b, 0 };
	unsigned before;

	CHECK(connect_pair(a, b));
	before = b->rx_inits;
	peers_punch(a->peers, b->key.pub, &tg, 1, 0.1, 0.05, 3);
	run_until(NULL, NULL, 0.5);
	CHECK_EQ(b->rx_inits, before);
	CHECK(!ev_is_active(&peer_of(a, b)->t_punch));

	b->deaf = 1;
	peers_punch(a->peers, b->key.pub, &tg, 1, 0.1, 0.05, 3);
	w.want = before + 1;
	CHECK(run_until(inits_at_least, &w, 2.0));
	CHECK(!peer_of(a, b)->path.lost);               /* not noticed yet: the punch did it */
	node_down(a);
	node_down(b);
}

static int
path_is(struct node *a, struct node *b, enum path_kind k)
{
	struct peer_status st;

	return peers_status(a->peers, b->key.pub, &st) == 0 && st.path == k;
}

struct lost_wait {
	struct node *a, *b;
	enum path_kind want_ab, want_ba;
};

static int
paths_are(void *arg)
{
	struct lost_wait *w = arg;

	return path_is(w->a, w->b, w->want_ab) && path_is(w->b, w->a, w->want_ba);
}

static int
lost_at_least(void *arg)
{
	void **v = arg;

	return *(unsigned *)v[0] >= *(unsigned *)v[1];
}

/*
 * A path that stops answering (a and b deaf: whatever reaches their sockets is dropped) is
 * lost after PATH_LOST_MISSES unanswered pings: status none, the owner told once (to ask the
 * mediator) and again PATH_LOST_REASK later, a fresh initiation to every candidate (also c,
 * which a recent path would skip) and to new candidates at once. The first packet through
 * after the network heals restores it at once, both ways.
 */
static void
test_path_lost_and_restored(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct endpoint eps[2];
	struct lost_wait w = { a, b, PATH_NONE, PATH_NONE };
	struct peer *pa;
	unsigned c_inits;

	c->deaf = 1;
	eps[0] = node_ep(b);
	eps[1] = node_ep(c);
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, eps, 2);
	authorize(b, a);
	{
		struct node *ab[2] = { a, b };

		CHECK(run_until(session_up, ab, 3.0));
	}
	peers_set_refresh(a->peers, 1.0);
	peers_set_refresh(b->peers, 1.0);
	pa = peer_of(a, b);
	CHECK(path_is(a, b, PATH_DIRECT) && path_is(b, a, PATH_DIRECT));
	c_inits = c->rx_inits;
	CHECK_EQ(a->cap.n_lost, 0);

	a->deaf = b->deaf = 1;
	CHECK(run_until(paths_are, &w, 10.0));
	CHECK(pa->path.lost);
	CHECK(pa->ping_misses >= PATH_LOST_MISSES);
	CHECK_EQ(a->cap.n_lost, 1);
	CHECK_MEM(a->cap.lost_key, b->key.pub, KEY_LEN);
	CHECK_EQ(b->cap.n_lost, 1);                     /* b heard nothing either */
	{
		struct inits_wait iw = { c, c_inits + 1 };

		CHECK(run_until(inits_at_least, &iw, 2.0));  /* every candidate tried again */
	}
	CHECK(peer_usable_keypair(pa) != NULL);         /* the session itself is fine */

	/* The mediator says b moved (a new candidate, 127.0.0.2 on c's port): an initiation goes
	 * there at once, not at the next retry REKEY_TIMEOUT (5 s) later. */
	{
		struct endpoint moved[3] = { eps[0], eps[1], eps[1] };
		struct inits_wait iw = { c, 0 };

		moved[2].addr = 0x7f000002;
		run_until(NULL, NULL, 0.1);
		iw.want = c->rx_inits + 1;
		peers_authorize(a->peers, b->key.pub, b->vnet.addr, moved, 3);
		CHECK(run_until(inits_at_least, &iw, 1.0));
	}

	/* Still lost PATH_LOST_REASK (20 s) later (moved back in time here): the owner is asked
	 * again, once, at the next ping. */
	{
		unsigned want = 2;
		void *v[2] = { &a->cap.n_lost, &want };

		pa->path.lost_asked -= PATH_LOST_REASK;
		CHECK(run_until(lost_at_least, v, 3.0));
		run_until(NULL, NULL, 1.5);
		CHECK_EQ(a->cap.n_lost, 2);
	}

	/* Lost PATH_LOST_FAST (moved back in time here): the peer's connections are reset
	 * (ops.peer_gone with its address), once for this loss; it stays a peer. */
	{
		unsigned want = 1;
		void *v[2] = { &a->cap.n_aborted, &want };

		CHECK_EQ(a->cap.n_aborted, 0);
		pa->path.lost_since -= PATH_LOST_FAST;
		CHECK(run_until(lost_at_least, v, 3.0));
		run_until(NULL, NULL, 1.5);
		CHECK_EQ(a->cap.n_aborted, 1);
		CHECK_EQ(a->cap.aborted_ip, b->vnet.addr);
		CHECK(peer_of(a, b) == pa);
	}

	/* The network heals: the next probe (1 s apart while lost) brings both back. */
	a->deaf = b->deaf = 0;
	w.want_ab = w.want_ba = PATH_DIRECT;
	CHECK(run_until(paths_are, &w, 4.0));
	CHECK(!pa->path.lost && !peer_of(b, a)->path.lost);
	CHECK(!pa->path.conns_reset);
	CHECK(a->cap.n_lost >= 2);
	node_down(a);
	node_down(b);
	node_down(c);
}

/*
 * A peer that never answers (b deaf), with no relay and no punch running: at the first
 * retransmission (REKEY_TIMEOUT) a asks the mediator for a punch (ops.path_lost), once per
 * PATH_LOST_REASK; with a relay granted it would not (the initiation goes there too).
 */
static void
test_unanswered_asks_punch(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct endpoint ep = node_ep(b);
	uint8_t pkt[60];
	unsigned want = 1;
	void *v[2] = { &a->cap.n_lost, &want };

	b->deaf = 1;
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &ep, 1);
	make_ip(pkt, a->vnet.addr, b->vnet.addr, sizeof(pkt));
	peers_send_ip(a->peers, b->vnet.addr, pkt, sizeof(pkt));
	run_until(NULL, NULL, REKEY_TIMEOUT - 0.5);
	CHECK_EQ(a->cap.n_lost, 0);
	CHECK(run_until(lost_at_least, v, 2.0));
	CHECK_MEM(a->cap.lost_key, b->key.pub, KEY_LEN);
	/* The next retransmission, within PATH_LOST_REASK: not again. */
	run_until(NULL, NULL, REKEY_TIMEOUT + 0.5);
	CHECK_EQ(a->cap.n_lost, 1);
	node_down(a);
	node_down(b);
}

static unsigned
tp_links(const struct node *n)
{
	struct transport_stats st;

	transport_get_stats(n->tp, &st);
	return st.links;
}

/*
 * Birthday, the socket side: a and b know each other only by a deaf candidate; a's punch
 * carries 4 extra sockets. Each round sends the initiation from every socket, b answers the
 * first copy, and the session is up over one socket: a's path names its via, the other 3
 * close, and data (a ping) goes through it. A second plan while the path uses it leaves the
 * socket alone; revoking the peer closes it.
 */
static void
test_birthday_sockets(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct node *ab[2] = { a, b };
	struct endpoint wrong = node_ep(c), tg = node_ep(b);
	struct peers_birthday bd = { .sockets = 4 };
	struct ping_result pr = { 0, 0 };
	struct peer *pa;
	uint16_t via;

	c->deaf = 1;
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &wrong, 1);
	peers_authorize(b->peers, a->key.pub, a->vnet.addr, &wrong, 1);
	pa = peer_of(a, b);
	/* Without a punch running there is nothing to add the sockets to. */
	peers_birthday(a->peers, b->key.pub, &bd);
	CHECK(pa->path.bday == NULL);

	peers_punch(a->peers, b->key.pub, &tg, 1, 0.05, 0.2, 3);
	peers_birthday(a->peers, b->key.pub, &bd);
	CHECK_EQ(bday_count(pa->path.bday), 4);
	CHECK_EQ(tp_links(a), 4);
	CHECK(run_until(session_up, ab, 3.0));
	/* The socket copies leave at once, the main socket's with the next batch: one of the
	 * sockets gets the answer. */
	via = pa->path.ep.via;
	CHECK(via != 0);
	CHECK_EQ(bday_winner(pa->path.bday), via);
	CHECK_EQ(bday_count(pa->path.bday), 1);
	CHECK_EQ(tp_links(a), 1);
	CHECK_EQ(path_current(pa, ev_now(loop)), PATH_DIRECT);

	CHECK_EQ(peers_ping(a->peers, b->vnet.addr, ping_cb, &pr), 0);
	CHECK(run_until(ping_done, &pr, 4.0));
	CHECK(pr.rtt >= 0);
	CHECK_EQ(b->last_from.port, bday_port(pa->path.bday, via));

	/* A retry of the plan: the path is direct, the kept socket stays, nothing opens. */
	peers_punch(a->peers, b->key.pub, &tg, 1, 0.05, 0.2, 3);
	peers_birthday(a->peers, b->key.pub, &bd);
	CHECK_EQ(bday_winner(pa->path.bday), via);
	CHECK_EQ(tp_links(a), 1);

	peers_revoke(a->peers, b->key.pub);
	CHECK_EQ(tp_links(a), 0);
	node_down(a);
	node_down(b);
	node_down(c);
}

/* An attempt that wins nothing closes every socket BDAY_LINGER after its last round. */
static int
no_links(void *arg)
{
	return tp_links(arg) == 0;
}

static void
test_birthday_miss(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct endpoint wrong = node_ep(c);
	struct peers_birthday bd = { .sockets = 8 };
	struct inits_wait w = { c, 0 };

	c->deaf = 1;
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &wrong, 1);
	peers_punch(a->peers, b->key.pub, &wrong, 1, 0, 0.05, 2);
	peers_birthday(a->peers, b->key.pub, &bd);
	CHECK_EQ(tp_links(a), 8);
	/* 2 rounds: main socket (the target equals the candidate: once) and 8 sockets each. */
	w.want = 1 + 2 * (1 + 8);
	CHECK(run_until(inits_at_least, &w, 2.0));
	CHECK(run_until(no_links, a, BDAY_LINGER + 2.0));
	CHECK(peer_of(a, b)->path.bday == NULL);
	node_down(a);
	node_down(b);
	node_down(c);
}

/*
 * Birthday, the probing side: b knows a only by a deaf candidate and sprays the initiation at
 * the ports of its punch target's address; with the range just a's port, the one probe is
 * what makes the session.
 */
static void
test_birthday_probes(void)
{
	struct node *a = node_up(0), *b = node_up(1), *c = node_up(2);
	struct node *ab[2] = { a, b };
	struct endpoint wrong = node_ep(c);
	struct peers_birthday bd = { 0, 50, 100, 0, 0 };

	c->deaf = 1;
	bd.port_lo = bd.port_hi = transport_port(a->tp);
	peers_authorize(a->peers, b->key.pub, b->vnet.addr, &wrong, 1);
	peers_authorize(b->peers, a->key.pub, a->vnet.addr, &wrong, 1);
	peers_punch(b->peers, a->key.pub, &wrong, 1, 0.05, 0.5, 2);
	peers_birthday(b->peers, a->key.pub, &bd);
	CHECK_EQ(peer_of(b, a)->path.spray_n, 1);     /* 50 asked, the range has one port */
	CHECK(run_until(session_up, ab, 3.0));
	CHECK_EQ(peer_of(a, b)->path.ep.port, transport_port(b->tp));
	CHECK(peer_of(b, a)->path.spray == NULL);
	node_down(a);
	node_down(b);
	node_down(c);
}

struct quiet_watch {
	struct node *a, *b;
	unsigned pings;                 /* periodic pings a sent */
	uint64_t last_id;
	int missed;                     /* a ping of a's went unanswered at some point */
};

static int
count_pings(void *arg)
{
	struct quiet_watch *q = arg;
	struct peer *pa = peer_of(q->a, q->b);

	if (pa->ping_next_id != q->last_id) {
		q->last_id = pa->ping_next_id;
		q->pings++;
	}
	if (pa->ping_misses > 0)
		q->missed = 1;
	return pa->path.lost || q->pings >= 5;
}

/*
 * Quiet is not dead: b sends nothing of its own (its periodic pings stopped) but answers a's.
 * Over 5 of a's pings its path stays direct, nobody is told anything, and not one ping was
 * missed (so none was a probe: a healthy pair sends what it always sent).
 */
static void
test_quiet_peer_not_lost(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct quiet_watch q = { a, b, 0, 0, 0 };

	CHECK(connect_pair(a, b));
	peers_set_refresh(a->peers, 1.0);
	ev_timer_stop(loop, &peer_of(b, a)->t_ping);
	q.last_id = peer_of(a, b)->ping_next_id;
	CHECK(run_until(count_pings, &q, 8.0));
	CHECK_EQ(q.pings, 5);
	CHECK(path_is(a, b, PATH_DIRECT));
	CHECK_EQ(a->cap.n_lost + b->cap.n_lost, 0);
	CHECK(!q.missed);
	node_down(a);
	node_down(b);
}

/*
 * Per daemon caps: at most SPRAYS_MAX peers probed at once and BDAY_SOCKETS_TOTAL sockets in
 * all sets; an attempt beyond them sends no probes, or gets what is left of the sockets.
 */
static void
test_birthday_caps(void)
{
	struct node *a = node_up(0), *c = node_up(1);
	struct endpoint wrong = node_ep(c);
	struct peers_birthday probe = { 0, 10, 10, 0, 0 }, sock = { .sockets = BIRTHDAY_SOCKETS_MAX };
	uint8_t keys[SPRAYS_MAX + 1][KEY_LEN];
	struct rlimit rl;
	unsigned i, total = 0;

	c->deaf = 1;
	probe.port_lo = probe.port_hi = wrong.port;
	for (i = 0; i <= SPRAYS_MAX; i++) {
		randombytes_buf(keys[i], KEY_LEN);
		peers_authorize(a->peers, keys[i], 0x05000100u + i, &wrong, 1);
		peers_punch(a->peers, keys[i], &wrong, 1, 1.0, 0.5, 2);
		peers_birthday(a->peers, keys[i], &probe);
		CHECK((peers_lookup_key(a->peers, keys[i])->path.spray != NULL) == (i < SPRAYS_MAX));
	}
	/* Sockets: only where descriptors allow more than the cap (the daemon raises its soft
	 * limit to the hard one, so do we). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur >= BDAY_SOCKETS_TOTAL + BIRTHDAY_SOCKETS_MAX + 2 * BDAY_FD_RESERVE) {
		for (i = 0; i <= SPRAYS_MAX; i++) {
			peers_punch(a->peers, keys[i], &wrong, 1, 1.0, 0.5, 2);
			sock.sockets = i == 0 ? 100 : BIRTHDAY_SOCKETS_MAX;
			peers_birthday(a->peers, keys[i], &sock);
			total += bday_count(peers_lookup_key(a->peers, keys[i])->path.bday);
		}
		CHECK_EQ(total, BDAY_SOCKETS_TOTAL);
		CHECK_EQ(tp_links(a), BDAY_SOCKETS_TOTAL);
		/* The last one got what was left: 1024 - 100 - 3 x 256 = 156. */
		CHECK_EQ(bday_count(peers_lookup_key(a->peers, keys[SPRAYS_MAX])->path.bday),
		    BDAY_SOCKETS_TOTAL - 100 - (SPRAYS_MAX - 1) * BIRTHDAY_SOCKETS_MAX);
	} else {
		printf("# test_birthday_caps: RLIMIT_NOFILE too low, sockets cap not checked\n");
	}
	node_down(a);
	CHECK_EQ(tp_links(c), 0);
	node_down(c);
}

static void
test_new_needs_ops(void)
{
	struct noise_keypair key;
	struct vnet vn = { 0x05000001u, 8 };
	struct peers_ops half = { fake_deliver, NULL, NULL };
	struct capture cap;

	noise_keypair_generate(&key);
	CHECK(peers_new(loop, &key, NULL, &vn, NULL, &cap) == NULL);
	CHECK(peers_new(loop, &key, NULL, &vn, &half, &cap) == NULL);
	sodium_memzero(&key, sizeof(key));
}

/*
 * Under load (the load budget set to nothing) a message 1 without a valid mac2 gets a
 * COOKIE_REPLY, not a handshake; the initiator resends at once with mac2 and the session comes
 * up. A copy of that initiation from another address (a spoofer) only gets a cookie for its
 * own address.
 */
static void
test_cookies_under_load(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct node *ab[2] = { a, b };
	struct peers_stats st;
	struct endpoint spoof = { .addr = 0x7f000001, .port = 9 };
	struct peer *pa;

	if (use_v6) {
		static const uint8_t lo6[16] = { [15] = 1 };

		ep_set_v6(&spoof, lo6, 9);
	}

	hslimit_set_load(b->peers->rl, 0, 0);
	authorize(a, b);
	authorize(b, a);
	CHECK(run_until(session_up, ab, 3.0));
	CHECK(b->peers->xst.cookies_sent >= 1);
	CHECK(a->peers->xst.cookies_received >= 1);
	pa = peer_of(a, b);
	CHECK(pa->cookie_at > 0);

	/* A spoofed copy of a's initiation (valid mac1, mac2 made for a's address): a cookie
	 * for the spoofed address goes out, no handshake is made. */
	handshake_initiate(pa, 1);
	peers_get_stats(b->peers, &st);
	{
		uint64_t done = st.handshakes_done, cookies = b->peers->xst.cookies_sent;

		peers_receive(b->peers, &spoof, pa->hs_pkt, sizeof(pa->hs_pkt));
		peers_get_stats(b->peers, &st);
		CHECK_EQ(st.handshakes_done, done);
		CHECK_EQ(b->peers->xst.cookies_sent, cookies + 1);
	}
	node_down(a);
	node_down(b);
}

/*
 * The same over IPv6 ([::1], the transport's second socket): a session comes up, data and
 * pings pass, and cookies under load are bound to the IPv6 source (a spoofed [::1]:9 copy
 * gets only a cookie). Skipped where the host has no IPv6 socket.
 */
static void
test_ipv6(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct node *ab[2] = { a, b };
	struct peer_status ps;
	int ok = transport_has_v6(a->tp) && transport_has_v6(b->tp);

	node_down(a);
	node_down(b);
	if (!ok) {
		fprintf(stderr, "skip: no IPv6 socket\n");
		return;
	}
	use_v6 = 1;
	a = node_up(0);
	b = node_up(1);
	ab[0] = a;
	ab[1] = b;
	authorize(a, b);
	authorize(b, a);
	CHECK(run_until(session_up, ab, 3.0));
	CHECK_EQ(peers_status(a->peers, b->key.pub, &ps), 0);
	CHECK(ps.path == PATH_DIRECT && ep_is_v6(&ps.endpoint));
	node_down(a);
	node_down(b);
	test_cookies_under_load();
	use_v6 = 0;
}

static int
aborted_once(void *arg)
{
	return ((struct node *)arg)->cap.n_aborted >= 1;
}

/*
 * INNER_BOOT: new sessions with the same peer (a rekey) change nothing; the peer restarting
 * (same key, a new peer table, so a new boot id) resets our connections with it once.
 */
static void
test_peer_restart_resets(void)
{
	struct node *a = node_up(0), *b = node_up(1);
	struct noise_keypair saved;
	struct peer *pa;

	CHECK(connect_pair(a, b));
	run_until(NULL, NULL, 0.3);
	pa = peer_of(a, b);
	CHECK(pa->peer_boot_known);
	/* A new session (as a rekey makes): same boot id, nothing reset. */
	handshake_initiate(pa, 1);
	run_until(NULL, NULL, 0.5);
	CHECK_EQ(a->cap.n_aborted, 0);

	/* b restarts with its key: a new boot id arrives with the first new session. */
	saved = b->key;
	node_down(b);
	b = node_up(1);
	peers_free(b->peers);
	b->key = saved;
	b->peers = peers_new(loop, &b->key, b->tp, &b->vnet, &fake_ops, &b->cap);
	authorize(a, b);
	authorize(b, a);
	handshake_initiate(peer_of(a, b), 1);
	CHECK(run_until(aborted_once, a, 3.0));
	CHECK_EQ(a->cap.n_aborted, 1);
	CHECK_EQ(a->cap.aborted_ip, b->vnet.addr);
	CHECK(peer_of(a, b) != NULL);           /* still a peer */
	node_down(a);
	node_down(b);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_init("test_peer", LOG_LVL_WARN);
	loop = ev_loop_new(EVFLAG_AUTO);
	RUN(test_ping_and_status);
	RUN(test_refresh_interval);
	RUN(test_ip_and_spoofing);
	RUN(test_replay_dropped);
	RUN(test_unauthorized_handshake);
	RUN(test_revoke);
	RUN(test_forced_rekey);
	RUN(test_simultaneous_initiation);
	RUN(test_queue_before_session);
	RUN(test_broadcast);
	RUN(test_malformed);
	RUN(test_punch_makes_session);
	RUN(test_punch_bounds);
	RUN(test_punch_over_session);
	RUN(test_path_lost_and_restored);
	RUN(test_unanswered_asks_punch);
	RUN(test_quiet_peer_not_lost);
	RUN(test_birthday_sockets);
	RUN(test_birthday_miss);
	RUN(test_birthday_probes);
	RUN(test_birthday_caps);
	RUN(test_cookies_under_load);
	RUN(test_ipv6);
	RUN(test_peer_restart_resets);
	RUN(test_new_needs_ops);
	ev_loop_destroy(loop);
	return unit_finish();
}
