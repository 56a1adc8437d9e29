/*
 * Unit tests for core/mediator_client against a fake mediator: a real ctrlchan responder on a
 * TCP listener at 127.0.0.1, in the same libev loop. The peer table, the transport and
 * daemon_set_address are stubs defined here that record what the client asked of them.
 * Covered: HELLO contents, WELCOME handling, UDP probes, the membership view and the
 * authorization rule, requests (result, not connected, connection lost), server PING,
 * probe replies, reconnect with the view kept, and the refresh sweep after a reconnect.
 * Not covered here (timing): the 10 s request timeout and the 45 s idle timeout.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "mproto/ctrlchan.h"
#include "medclient/medclient.h"
#include "crypto/noise.h"
#include "core/peer.h"
#include "core/transport.h"
#include "daemon/daemon.h"
#include "tests/unit/unit.h"

/* A member switched on and connected, as the server reports it. */
#define MEMF_ON (MEMF_ONLINE | MEMF_ACTIVE)

/* ---- stubs: what the client did to the rest of the daemon ---- */

enum { MAXK = 16 };

static struct stubs {
	uint8_t authorized[MAXK][KEY_LEN];
	uint32_t auth_addr[MAXK];
	size_t auth_neps[MAXK];
	int n_auth;                     /* keys currently authorized */
	int authorize_calls, revoke_calls, revoke_unknown;
	int udp_sent;
	struct endpoint udp_to;
	uint8_t udp_pkt[64];
	size_t udp_len;
} st;

static int
stub_find(const uint8_t key[KEY_LEN])
{
	int i;

	for (i = 0; i < st.n_auth; i++)
		if (memcmp(st.authorized[i], key, KEY_LEN) == 0)
			return i;
	return -1;
}

void
peers_authorize(struct peers *ps, const uint8_t key[KEY_LEN], uint32_t vaddr,
    const struct endpoint *eps, size_t n_eps)
{
	int i = stub_find(key);

	st.authorize_calls++;
	if (i < 0 && st.n_auth < MAXK) {
		i = st.n_auth++;
		memcpy(st.authorized[i], key, KEY_LEN);
	}
	if (i >= 0) {
		st.auth_addr[i] = vaddr;
		st.auth_neps[i] = n_eps;
	}
}

void
peers_revoke(struct peers *ps, const uint8_t key[KEY_LEN])
{
	int i = stub_find(key);

	st.revoke_calls++;
	if (i < 0) {
		st.revoke_unknown++;
		return;
	}
	st.n_auth--;
	memmove(st.authorized[i], st.authorized[st.n_auth], KEY_LEN);
	st.auth_addr[i] = st.auth_addr[st.n_auth];
	st.auth_neps[i] = st.auth_neps[st.n_auth];
}

uint16_t
transport_port(const struct transport *t)
{
	return 40000;
}

size_t
transport_local_endpoints(const struct transport *t, struct endpoint *out, size_t max)
{
	if (max < 1)
		return 0;
	out[0].addr = 0xc0a8010a;       /* 192.168.1.10 */
	out[0].port = 0;                /* the client fills in the port */
	return 1;
}

int
transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	st.udp_sent++;
	st.udp_to = *to;
	st.udp_len = len < sizeof(st.udp_pkt) ? len : sizeof(st.udp_pkt);
	memcpy(st.udp_pkt, pkt, st.udp_len);
	return 0;
}

void
daemon_set_address(struct daemon *d, uint32_t vaddr, uint8_t prefix_len)
{
	d->vaddr = vaddr;
	d->prefix_len = prefix_len;
}

/* ---- the fake server ---- */

struct fsrv {
	struct ev_loop *loop;
	int lfd;
	uint16_t port;
	ev_io accept_io;
	struct noise_keypair key;
	struct ctrlchan *ch;
	int connections, ready, closed;
	uint8_t client_key[KEY_LEN];
	struct msg hello;
	int n_hello;
	struct msg req;
	int n_req;
	int n_ping, n_pong;
	uint64_t pong_nonce;
	int no_pong;                    /* do not answer PINGs */
	void (*burst)(struct fsrv *);   /* sent right after WELCOME */
};

static void
srv_send(struct fsrv *s, const struct msg *m)
{
	CHECK_EQ(ctrlchan_send(s->ch, m), 0);
}

static void
srv_on_ready(void *arg, const uint8_t rs[KEY_LEN])
{
	struct fsrv *s = arg;

	s->ready++;
	memcpy(s->client_key, rs, KEY_LEN);
}

static void
srv_on_msg(void *arg, const struct msg *m)
{
	struct fsrv *s = arg;
	struct msg out;
	int i;

	memset(&out, 0, sizeof(out));
	switch (m->type) {
	case MSG_HELLO:
		s->hello = *m;
		s->n_hello++;
		out.type = MSG_WELCOME;
		out.u.welcome.address = 0x05010203;
		out.u.welcome.prefix_len = 8;
		for (i = 0; i < UDP_TOKEN_LEN; i++)
			out.u.welcome.udp_token[i] = (uint8_t)(0xa0 + i);
		strcpy(out.u.welcome.nick, "alice");
		srv_send(s, &out);
		if (s->burst)
			s->burst(s);
		break;
	case MSG_REQUEST:
		s->req = *m;
		s->n_req++;
		break;
	case MSG_PING:
		s->n_ping++;
		if (!s->no_pong) {
			out.type = MSG_PONG;
			out.u.ping.nonce = m->u.ping.nonce;
			srv_send(s, &out);
		}
		break;
	case MSG_PONG:
		s->n_pong++;
		s->pong_nonce = m->u.ping.nonce;
		break;
	}
}

static void
srv_on_close(void *arg, const char *why)
{
	struct fsrv *s = arg;

	s->closed++;
	ctrlchan_free(s->ch);
	s->ch = NULL;
}

static const struct ctrlchan_cbs srv_cbs = { srv_on_ready, srv_on_msg, srv_on_close };

static void
srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fsrv *s = w->data;
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0)
		return;
	if (s->ch)
		ctrlchan_free(s->ch);
	s->connections++;
	s->ch = ctrlchan_new(loop, fd, 0, &s->key, NULL, &srv_cbs, s);
}

static void
srv_start(struct fsrv *s, struct ev_loop *loop)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	noise_keypair_generate(&s->key);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s->lfd, 4) < 0 || getsockname(s->lfd, (struct sockaddr *)&sin, &sl) < 0) {
		perror("listen");
		exit(1);
	}
	s->port = ntohs(sin.sin_port);
	ev_io_init(&s->accept_io, srv_accept_cb, s->lfd, EV_READ);
	s->accept_io.data = s;
	ev_io_start(loop, &s->accept_io);
}

static void
srv_stop(struct fsrv *s)
{
	ev_io_stop(s->loop, &s->accept_io);
	if (s->ch)
		ctrlchan_free(s->ch);
	s->ch = NULL;
	close(s->lfd);
}

/* Drops the current connection from the server side. */
static void
srv_kick(struct fsrv *s)
{
	ctrlchan_free(s->ch);
	s->ch = NULL;
}

/* ---- view helpers ---- */

static void
key_of(uint8_t key[KEY_LEN], uint8_t b)
{
	memset(key, b, KEY_LEN);
}

static void
srv_network(struct fsrv *s, const char *name, uint8_t my_flags)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_NETWORK;
	snprintf(m.u.network.name, sizeof(m.u.network.name), "%s", name);
	m.u.network.my_flags = my_flags;
	srv_send(s, &m);
}

static void
srv_member(struct fsrv *s, const char *net, const uint8_t key[KEY_LEN], uint32_t addr,
    const char *nick, uint8_t flags)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_MEMBER;
	snprintf(m.u.member.network, sizeof(m.u.member.network), "%s", net);
	memcpy(m.u.member.key, key, KEY_LEN);
	m.u.member.address = addr;
	snprintf(m.u.member.nick, sizeof(m.u.member.nick), "%s", nick);
	m.u.member.flags = flags;
	if (flags & MEMF_ONLINE) {
		m.u.member.n_endpoints = 2;
		m.u.member.endpoints[0] = (struct endpoint){ 0xcb007107, 51820 };
		m.u.member.endpoints[1] = (struct endpoint){ 0xc0a8010b, 40001 };
	}
	srv_send(s, &m);
}

static void
srv_member_gone(struct fsrv *s, const char *net, const uint8_t key[KEY_LEN])
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_MEMBER_GONE;
	snprintf(m.u.member_gone.network, sizeof(m.u.member_gone.network), "%s", net);
	memcpy(m.u.member_gone.key, key, KEY_LEN);
	srv_send(s, &m);
}

static void
srv_network_gone(struct fsrv *s, const char *net)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_NETWORK_GONE;
	snprintf(m.u.network_gone.name, sizeof(m.u.network_gone.name), "%s", net);
	m.u.network_gone.reason = GONE_LEFT;
	srv_send(s, &m);
}

/* ---- loop helpers ---- */

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
}

/* Runs the loop until *flag becomes true (or >= want), at most secs seconds. */
static int
run_until_int(struct ev_loop *loop, const int *v, int want, double secs)
{
	ev_timer guard;
	int expired = 0;

	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (*v < want && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return *v >= want;
}

/* Runs the loop for a short while so queued messages are delivered and handled. */
static void
settle(struct ev_loop *loop)
{
	int never = 0;

	run_until_int(loop, &never, 1, 0.05);
}

struct req_result {
	int calls;
	struct msg_result res;
};

static void
result_cb(void *arg, const struct msg_result *res)
{
	struct req_result *r = arg;

	r->calls++;
	r->res = *res;
}

/* ---- fixture: a daemon context and a started mediator connected to a fake server ---- */

struct fixture {
	struct ev_loop *loop;
	struct daemon d;
	struct fsrv srv;
	struct medclient *med;
	int dummy_tp, dummy_peers;
};

static uint8_t k_bob[KEY_LEN], k_carol[KEY_LEN], k_dave[KEY_LEN], k_bob2[KEY_LEN];

static void
fx_init(struct fixture *fx, void (*burst)(struct fsrv *))
{
	memset(&st, 0, sizeof(st));
	memset(fx, 0, sizeof(*fx));
	fx->loop = ev_loop_new(0);
	srv_start(&fx->srv, fx->loop);
	fx->srv.burst = burst;
	fx->d.loop = fx->loop;
	snprintf(fx->d.cfg.server_host, sizeof(fx->d.cfg.server_host), "127.0.0.1");
	fx->d.cfg.server_port = fx->srv.port;
	memcpy(fx->d.cfg.server_pub, fx->srv.key.pub, KEY_LEN);
	snprintf(fx->d.cfg.nick, sizeof(fx->d.cfg.nick), "alice-cfg");
	noise_keypair_generate(&fx->d.key);
	/* The stubs never dereference these. */
	fx->d.tp = (struct transport *)&fx->dummy_tp;
	fx->d.peers = (struct peers *)&fx->dummy_peers;
	fx->med = medclient_new(&fx->d);
	fx->d.med = fx->med;
}

static void
fx_connect(struct fixture *fx)
{
	medclient_start(fx->med);
	CHECK(run_until_int(fx->loop, &fx->srv.n_hello, 1, 3.0));
	/* WELCOME, the burst and the PING/PONG boundary. */
	CHECK(run_until_int(fx->loop, &fx->srv.n_ping, 1, 3.0));
	settle(fx->loop);
	CHECK(medclient_connected(fx->med));
}

static void
fx_free(struct fixture *fx)
{
	medclient_free(fx->med);
	srv_stop(&fx->srv);
	ev_loop_destroy(fx->loop);
}

/* The burst for a node in "lan" with bob online, carol pending, dave offline. */
static void
burst_lan(struct fsrv *s)
{
	srv_network(s, "lan", MEMF_ON);
	srv_member(s, "lan", s->client_key, 0x05010203, "alice", MEMF_ON);
	srv_member(s, "lan", k_bob, 0x05000002, "Bob", MEMF_ON);
	srv_member(s, "lan", k_carol, 0x05000003, "carol", MEMF_ON | MEMF_PENDING);
	srv_member(s, "lan", k_dave, 0x05000004, "dave", 0);
}

/* After a reconnect: dave is gone from "lan", "old" no longer exists. */
static void
burst_lan_without_dave(struct fsrv *s)
{
	srv_network(s, "lan", MEMF_ON);
	srv_member(s, "lan", s->client_key, 0x05010203, "alice", MEMF_ON);
	srv_member(s, "lan", k_bob, 0x05000002, "Bob", MEMF_ON);
}

/* ---- tests ---- */

static void
test_hello_welcome_probe(void)
{
	struct fixture fx;
	uint8_t token[UDP_TOKEN_LEN];
	int i;

	fx_init(&fx, NULL);
	CHECK(!medclient_connected(fx.med));
	fx_connect(&fx);
	CHECK_MEM(fx.srv.client_key, fx.d.key.pub, KEY_LEN);
	CHECK_EQ(fx.srv.hello.u.hello.version, SHOAL_PROTO_VERSION);
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "alice-cfg") == 0);
	CHECK_EQ(fx.srv.hello.u.hello.udp_port, 40000);
	CHECK_EQ(fx.srv.hello.u.hello.n_local, 1);
	CHECK_EQ(fx.srv.hello.u.hello.local[0].addr, 0xc0a8010a);
	CHECK_EQ(fx.srv.hello.u.hello.local[0].port, 40000);
	CHECK_EQ(fx.d.vaddr, 0x05010203);
	CHECK_EQ(fx.d.prefix_len, 8);
	CHECK(strcmp(fx.d.nick, "alice") == 0);

	/* The first probe went out with WELCOME, to the server's address and port. */
	CHECK(st.udp_sent >= 1);
	CHECK_EQ(st.udp_to.addr, 0x7f000001);
	CHECK_EQ(st.udp_to.port, fx.srv.port);
	CHECK_EQ(probe_decode(st.udp_pkt, st.udp_len, token), 0);
	for (i = 0; i < UDP_TOKEN_LEN; i++)
		CHECK_EQ(token[i], 0xa0 + i);
	/* Then three more, 1 s apart. */
	CHECK(run_until_int(fx.loop, &st.udp_sent, 2, 1.5));
	fx_free(&fx);
}

static void
test_probe_reply(void)
{
	struct fixture fx;
	struct endpoint from, ep, got;
	uint8_t pkt[UDP_PROBE_REPLY_LEN];
	int n;

	fx_init(&fx, NULL);
	fx_connect(&fx);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	ep = (struct endpoint){ 0xcb007107, 51820 };
	n = probe_reply_encode(&ep, pkt, sizeof(pkt));
	/* From somewhere else: ignored. */
	from = (struct endpoint){ 0x7f000002, fx.srv.port };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	from = (struct endpoint){ 0x7f000001, (uint16_t)(fx.srv.port + 1) };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	/* Malformed from the server: ignored. */
	from = (struct endpoint){ 0x7f000001, fx.srv.port };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n - 1);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 1);
	CHECK_EQ(got.addr, ep.addr);
	CHECK_EQ(got.port, ep.port);
	fx_free(&fx);
}

static void
test_view_and_authorization(void)
{
	struct fixture fx;
	const struct med_network *n;
	const struct med_member *mem;
	struct fsrv *s;
	int count = 0;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	s = &fx.srv;

	/* View: one network, four members (ourselves included). */
	n = medclient_networks(fx.med);
	CHECK(n != NULL && strcmp(n->name, "lan") == 0);
	if (n) {
		CHECK_EQ(n->my_flags, MEMF_ON);
		for (mem = n->members; mem; mem = mem->hh.next)
			count++;
		CHECK_EQ(count, 4);
		CHECK(n->hh.next == NULL);
	}
	/* Only bob: carol is pending, dave offline, and never ourselves. */
	CHECK_EQ(st.n_auth, 1);
	CHECK(stub_find(k_bob) >= 0);
	CHECK(stub_find(fx.d.key.pub) < 0);
	if (stub_find(k_bob) >= 0) {
		CHECK_EQ(st.auth_addr[stub_find(k_bob)], 0x05000002);
		CHECK_EQ(st.auth_neps[stub_find(k_bob)], 2);
	}

	/* dave comes online. */
	srv_member(s, "lan", k_dave, 0x05000004, "dave", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	CHECK(stub_find(k_dave) >= 0);

	/* carol approved. */
	srv_member(s, "lan", k_carol, 0x05000003, "carol", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 3);

	/* bob goes offline: revoked. */
	srv_member(s, "lan", k_bob, 0x05000002, "Bob", 0);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	CHECK(stub_find(k_bob) < 0);

	/* We go offline in lan: everyone revoked. Then back online: re-authorized. */
	srv_network(s, "lan", 0);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 0);
	srv_network(s, "lan", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);

	/* Our own MEMBER record going offline has the same effect. */
	srv_member(s, "lan", s->client_key, 0x05010203, "alice", 0);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 0);
	srv_member(s, "lan", s->client_key, 0x05010203, "alice", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);

	/* A second network where bob is online too: bob authorized through it. */
	srv_network(s, "games", MEMF_ON | MEMF_OWNER);
	srv_member(s, "games", s->client_key, 0x05010203, "alice", MEMF_ON | MEMF_OWNER);
	srv_member(s, "games", k_bob, 0x05000002, "Bob", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 3);

	/* dave leaves lan: revoked. bob is still offline in lan but online in games. */
	srv_member_gone(s, "lan", k_dave);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	CHECK(stub_find(k_dave) < 0);
	CHECK(stub_find(k_bob) >= 0);

	/* games goes away: bob revoked, carol (lan) stays. */
	srv_network_gone(s, "games");
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 1);
	CHECK(stub_find(k_carol) >= 0);

	/* Unknown network / member deltas are ignored. */
	srv_member(s, "nope", k_bob2, 0x05000009, "x", MEMF_ON);
	srv_member_gone(s, "nope", k_bob2);
	srv_network_gone(s, "nope");
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 1);
	CHECK_EQ(st.revoke_unknown, 0);
	CHECK(medclient_connected(fx.med));
	fx_free(&fx);
}

static void
test_resolve(void)
{
	struct fixture fx;
	uint8_t key[KEY_LEN];
	uint32_t addr = 0;
	char hex[65];
	int i;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	CHECK_EQ(medclient_resolve(fx.med, "bob", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	CHECK_EQ(addr, 0x05000002);
	CHECK_EQ(medclient_resolve(fx.med, "BOB", key, &addr), 0);
	CHECK_EQ(medclient_resolve(fx.med, "5.0.0.4", key, &addr), 0);
	CHECK_MEM(key, k_dave, KEY_LEN);
	/* Node id prefixes: 8 digits or more, either case. k_carol is 0x33... */
	CHECK_EQ(medclient_resolve(fx.med, "33333333", key, &addr), 0);
	CHECK_MEM(key, k_carol, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "3333333", key, &addr), -1);
	for (i = 0; i < 64; i++)
		hex[i] = "0123456789abcdef"[(k_dave[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
	hex[64] = '\0';
	CHECK_EQ(medclient_resolve(fx.med, hex, key, &addr), 0);
	CHECK_MEM(key, k_dave, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "nobody", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "5.9.9.9", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "", key, &addr), -1);

	/* A second "bob" with another key in another network: ambiguous. The same bob in two
	 * networks is not. */
	srv_network(&fx.srv, "games", MEMF_ON);
	srv_member(&fx.srv, "games", k_bob, 0x05000002, "bob", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(medclient_resolve(fx.med, "bob", key, &addr), 0);
	srv_member(&fx.srv, "games", k_bob2, 0x05000005, "BOB", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(medclient_resolve(fx.med, "bob", key, &addr), -1);
	fx_free(&fx);
}

static void
test_requests(void)
{
	struct fixture fx;
	struct msg_request req;
	struct req_result r1 = { 0 }, r2 = { 0 }, r0 = { 0 };
	struct msg res;

	fx_init(&fx, NULL);
	/* Not connected yet: accepted, fails from the loop, not from inside the call. */
	memset(&req, 0, sizeof(req));
	req.op = OP_JOIN;
	strcpy(req.network, "lan");
	strcpy(req.password, "pw");
	CHECK_EQ(medclient_request(fx.med, &req, result_cb, &r0), 0);
	CHECK_EQ(r0.calls, 0);
	settle(fx.loop);
	CHECK_EQ(r0.calls, 1);
	CHECK_EQ(r0.res.status, RES_ERR_INTERNAL);
	CHECK(strcmp(r0.res.text, "mediator not connected") == 0);

	fx_connect(&fx);
	/* Invalid request: -1 and no callback. */
	req.op = 0;
	CHECK_EQ(medclient_request(fx.med, &req, result_cb, &r1), -1);
	req.op = OP_JOIN;
	CHECK_EQ(medclient_request(fx.med, &req, result_cb, &r1), 0);
	CHECK(run_until_int(fx.loop, &fx.srv.n_req, 1, 2.0));
	CHECK_EQ(fx.srv.req.u.request.req_id, req.req_id);
	CHECK_EQ(fx.srv.req.u.request.op, OP_JOIN);
	CHECK(strcmp(fx.srv.req.u.request.password, "pw") == 0);
	memset(&res, 0, sizeof(res));
	res.type = MSG_RESULT;
	res.u.result.req_id = req.req_id;
	res.u.result.status = RES_ERR_BAD_PASSWORD;
	strcpy(res.u.result.text, "nope");
	srv_send(&fx.srv, &res);
	/* A duplicate RESULT is ignored: the callback runs exactly once. */
	srv_send(&fx.srv, &res);
	CHECK(run_until_int(fx.loop, &r1.calls, 1, 2.0));
	settle(fx.loop);
	CHECK_EQ(r1.calls, 1);
	CHECK_EQ(r1.res.status, RES_ERR_BAD_PASSWORD);
	CHECK(strcmp(r1.res.text, "nope") == 0);

	/* A request in flight when the connection drops: "mediator connection lost". */
	CHECK_EQ(medclient_request(fx.med, &req, result_cb, &r2), 0);
	CHECK(run_until_int(fx.loop, &fx.srv.n_req, 2, 2.0));
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &r2.calls, 1, 2.0));
	CHECK_EQ(r2.res.status, RES_ERR_INTERNAL);
	CHECK(strcmp(r2.res.text, "mediator connection lost") == 0);
	CHECK(!medclient_connected(fx.med));
	settle(fx.loop);
	CHECK_EQ(r2.calls, 1);
	fx_free(&fx);
}

static void
test_server_ping(void)
{
	struct fixture fx;
	struct msg m;

	fx_init(&fx, NULL);
	fx_connect(&fx);
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	m.u.ping.nonce = 0xfeedULL;
	srv_send(&fx.srv, &m);
	CHECK(run_until_int(fx.loop, &fx.srv.n_pong, 1, 2.0));
	CHECK(fx.srv.pong_nonce == 0xfeedULL);
	fx_free(&fx);
}

/* Connection lost: view and peers stay. Reconnect: the refresh removes what was not re-sent. */
static void
test_reconnect_keeps_then_refreshes(void)
{
	struct fixture fx;
	const struct med_network *n;
	int revokes_before, count = 0;
	const struct med_member *mem;
	uint8_t key[KEY_LEN];
	uint32_t addr;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	/* dave online and a second network "old", so both kinds of sweep are exercised. */
	srv_member(&fx.srv, "lan", k_dave, 0x05000004, "dave", MEMF_ON);
	srv_network(&fx.srv, "old", MEMF_ON);
	srv_member(&fx.srv, "old", k_bob2, 0x05000005, "bob2", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 3);         /* bob, dave, bob2 */

	/* The server goes away; the client keeps everything. */
	fx.srv.burst = burst_lan_without_dave;
	fx.srv.no_pong = 1;             /* so the sweep must wait for a non-burst message */
	revokes_before = st.revoke_calls;
	srv_kick(&fx.srv);
	settle(fx.loop);
	CHECK(!medclient_connected(fx.med));
	CHECK_EQ(st.revoke_calls, revokes_before);
	CHECK_EQ(st.n_auth, 3);
	CHECK_EQ(medclient_resolve(fx.med, "dave", key, &addr), 0);

	/* Reconnect within the first backoff (1 s, jittered); the burst arrives. */
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	CHECK(run_until_int(fx.loop, &fx.srv.n_ping, 2, 2.0));
	settle(fx.loop);
	CHECK(medclient_connected(fx.med));
	/* No PONG yet: the burst is not known to be complete, nothing removed. */
	CHECK_EQ(st.n_auth, 3);
	CHECK_EQ(st.revoke_calls, revokes_before);
	/* bob was never revoked along the way. */
	CHECK(stub_find(k_bob) >= 0);

	/* Any non-burst message ends the refresh: dave and "old" are swept. */
	{
		struct msg m;

		memset(&m, 0, sizeof(m));
		m.type = MSG_PONG;
		srv_send(&fx.srv, &m);
	}
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 1);
	CHECK(stub_find(k_bob) >= 0);
	CHECK(stub_find(k_dave) < 0);
	CHECK(stub_find(k_bob2) < 0);
	CHECK_EQ(st.revoke_unknown, 0);
	n = medclient_networks(fx.med);
	CHECK(n != NULL && n->hh.next == NULL && strcmp(n->name, "lan") == 0);
	if (n)
		for (mem = n->members; mem; mem = mem->hh.next)
			count++;
	CHECK_EQ(count, 2);             /* alice and bob: carol was not re-sent either */
	CHECK_EQ(medclient_resolve(fx.med, "dave", key, &addr), -1);
	fx_free(&fx);
}

/* The refresh also ends by timer when the server sends nothing else. */
static void
test_refresh_timer(void)
{
	struct fixture fx;
	int revokes;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	srv_member(&fx.srv, "lan", k_dave, 0x05000004, "dave", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	fx.srv.burst = burst_lan_without_dave;
	fx.srv.no_pong = 1;
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_ping, 2, 3.0));
	revokes = st.revoke_calls;
	settle(fx.loop);
	CHECK_EQ(st.revoke_calls, revokes);
	/* 5 s after WELCOME at the latest. */
	CHECK(run_until_int(fx.loop, &st.revoke_calls, revokes + 1, 6.0));
	CHECK(stub_find(k_dave) < 0);
	CHECK(stub_find(k_bob) >= 0);
	fx_free(&fx);
}

static void
test_wrong_server_key_retries(void)
{
	struct fixture fx;

	fx_init(&fx, NULL);
	fx.d.cfg.server_pub[0] ^= 1;
	medclient_start(fx.med);
	/* Connects, fails the handshake, and connects again after the backoff. */
	CHECK(run_until_int(fx.loop, &fx.srv.connections, 2, 3.0));
	CHECK_EQ(fx.srv.ready, 0);
	CHECK(!medclient_connected(fx.med));
	fx_free(&fx);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	key_of(k_bob, 0x22);
	key_of(k_carol, 0x33);
	key_of(k_dave, 0x44);
	key_of(k_bob2, 0x55);
	RUN(test_hello_welcome_probe);
	RUN(test_probe_reply);
	RUN(test_view_and_authorization);
	RUN(test_resolve);
	RUN(test_requests);
	RUN(test_server_ping);
	RUN(test_reconnect_keeps_then_refreshes);
	RUN(test_refresh_timer);
	RUN(test_wrong_server_key_retries);
	return unit_finish();
}
