/*
 * Unit tests for medclient/ against a fake mediator: a real ctrlchan responder on a TCP
 * listener at 127.0.0.1 and a UDP socket on the same port number (where the probes go), in the
 * same libev loop. The client runs with the real transport (core/transport.c); a fake struct
 * medclient_ops records what it was told (our address, authorize, revoke).
 * Covered: HELLO contents, WELCOME handling, UDP probes and probe replies (over real UDP too),
 * the membership view and the authorization rule, requests (result, not connected,
 * connection lost), server PING, reconnect with the view kept, the refresh sweep after a
 * reconnect, name normalisation and resolution, the nick across set-nick and reconnects, and
 * NAT classification (probe order and budget, what counts as a reply / test / hairpin, the
 * NAT_REPORT, NAT_INFO, a plan replaced, a plan cut short by a disconnect).
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "mproto/ctrlchan.h"
#include "medclient/medclient.h"
#include "crypto/noise.h"
#include "core/transport.h"
#include "tests/unit/unit.h"

/* A member switched on and connected, as the server reports it. */
#define MEMF_ON (MEMF_ONLINE | MEMF_ACTIVE)

/* ---- fake ops: what the client told its owner, and what reached the server by UDP ---- */

enum { MAXK = 16 };

static struct record {
	uint8_t authorized[MAXK][KEY_LEN];
	uint32_t auth_addr[MAXK];
	size_t auth_neps[MAXK];
	int n_auth;                     /* keys currently authorized */
	int authorize_calls, revoke_calls, revoke_unknown;
	int address_calls;
	uint32_t vaddr;
	uint8_t prefix_len;
	int udp_sent;                   /* datagrams that reached the server's UDP socket */
	struct endpoint udp_to, udp_from;
	uint8_t udp_pkt[64];
	size_t udp_len;
	int punch_calls;                /* ops->punch */
	struct msg_punch punch;         /* the last one */
	int nat_info_calls;             /* ops->nat_info */
	uint16_t nat_lifetime_s;        /* from the last one */
} st;

static int
auth_find(const uint8_t key[KEY_LEN])
{
	int i;

	for (i = 0; i < st.n_auth; i++)
		if (memcmp(st.authorized[i], key, KEY_LEN) == 0)
			return i;
	return -1;
}

static void
fake_address(void *arg, uint32_t vaddr, uint8_t prefix_len)
{
	st.address_calls++;
	st.vaddr = vaddr;
	st.prefix_len = prefix_len;
}

static void
fake_authorize(void *arg, const uint8_t key[KEY_LEN], uint32_t vaddr,
    const struct endpoint *eps, size_t n_eps)
{
	int i = auth_find(key);

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

static void
fake_revoke(void *arg, const uint8_t key[KEY_LEN])
{
	int i = auth_find(key);

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

static void
fake_punch(void *arg, const struct msg_punch *p)
{
	st.punch_calls++;
	st.punch = *p;
}

static void
fake_nat_info(void *arg, const struct msg_nat_info *info)
{
	st.nat_info_calls++;
	st.nat_lifetime_s = info->lifetime_s;
}

static const struct medclient_ops fake_ops = { fake_address, fake_authorize, fake_revoke,
	fake_punch, fake_nat_info, NULL, NULL };

/* ---- the fake server ---- */

struct fsrv {
	struct ev_loop *loop;
	int lfd, ufd;                   /* TCP listener; UDP socket on the same port number */
	uint16_t port;
	ev_io accept_io, udp_io;
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
	struct msg_nat_report nat_reports[32];
	int n_nat_reports;
	int n_punch_req;                /* MSG_PUNCH_REQUESTs */
	uint8_t punch_req_peer[KEY_LEN];        /* the last one's */
	struct msg_candidates cand;     /* the last MSG_CANDIDATES */
	int n_cand;
};

/* The UDP side of the NAT classification fake (below); the main UDP socket is its target 0. */
static void nat_srv_udp(int sock, const uint8_t *pkt, size_t len, const struct endpoint *from,
    int64_t ts_ns);

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
	case MSG_PUNCH_REQUEST:
		s->n_punch_req++;
		memcpy(s->punch_req_peer, m->u.punch_request.peer, KEY_LEN);
		break;
	case MSG_CANDIDATES:
		s->cand = m->u.candidates;
		s->n_cand++;
		break;
	case MSG_NAT_REPORT:
		if (s->n_nat_reports < (int)(sizeof(s->nat_reports) / sizeof(s->nat_reports[0])))
			s->nat_reports[s->n_nat_reports] = m->u.nat_report;
		s->n_nat_reports++;
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

/*
 * One datagram from fd, with the kernel's arrival time (SO_TIMESTAMPNS, ns; 0 if none):
 * datagrams to different sockets are read in whatever order the loop polls the sockets, but on
 * loopback the arrival time is the order they were sent in. Returns the length, or -1.
 */
static ssize_t
udp_recv(int fd, uint8_t *buf, size_t cap, struct endpoint *from, int64_t *ts_ns)
{
	struct sockaddr_in sin;
	struct iovec iov = { buf, cap };
	union { char b[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } ctl;
	struct msghdr mh;
	struct cmsghdr *c;
	struct timespec ts;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &sin;
	mh.msg_namelen = sizeof(sin);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof(ctl.b);
	if ((n = recvmsg(fd, &mh, 0)) < 0)
		return -1;
	*from = (struct endpoint){ .addr = ntohl(sin.sin_addr.s_addr), .port = ntohs(sin.sin_port) };
	*ts_ns = 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			*ts_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
	return n;
}

/* The probes: the client sends them to the server's host and TCP port number, over UDP. */
static void
srv_udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fsrv *s = w->data;
	struct sockaddr_in to;
	socklen_t tl = sizeof(to);
	uint8_t buf[1500];
	int64_t ts;
	ssize_t n;

	while ((n = udp_recv(s->ufd, buf, sizeof(buf), &st.udp_from, &ts)) >= 0) {
		st.udp_sent++;
		if (getsockname(s->ufd, (struct sockaddr *)&to, &tl) == 0)
			st.udp_to = (struct endpoint){ .addr = ntohl(to.sin_addr.s_addr), .port = ntohs(to.sin_port) };
		st.udp_len = (size_t)n < sizeof(st.udp_pkt) ? (size_t)n : sizeof(st.udp_pkt);
		memcpy(st.udp_pkt, buf, st.udp_len);
		nat_srv_udp(0, buf, (size_t)n, &st.udp_from, ts);
	}
}

/* Sends a datagram from the server's UDP socket to 127.0.0.1:port. */
static void
srv_udp_send(struct fsrv *s, uint16_t port, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	CHECK_EQ(sendto(s->ufd, pkt, len, 0, (struct sockaddr *)&sin, sizeof(sin)), (ssize_t)len);
}

static void
srv_start(struct fsrv *s, struct ev_loop *loop)
{
	struct sockaddr_in sin;
	socklen_t sl;
	int attempt;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	noise_keypair_generate(&s->key);
	/* An ephemeral TCP port whose number is also free for UDP: a few tries at most. */
	for (attempt = 0; attempt < 20; attempt++) {
		sl = sizeof(sin);
		s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		s->ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (s->lfd < 0 || s->ufd < 0 ||
		    bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    listen(s->lfd, 4) < 0 || getsockname(s->lfd, (struct sockaddr *)&sin, &sl) < 0) {
			perror("listen");
			exit(1);
		}
		if (bind(s->ufd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			CHECK_EQ(setsockopt(s->ufd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 },
			    sizeof(int)), 0);
			break;
		}
		close(s->lfd);
		close(s->ufd);
		s->lfd = s->ufd = -1;
	}
	if (s->lfd < 0) {
		fprintf(stderr, "no port free for both TCP and UDP\n");
		exit(1);
	}
	s->port = ntohs(sin.sin_port);
	ev_io_init(&s->accept_io, srv_accept_cb, s->lfd, EV_READ);
	s->accept_io.data = s;
	ev_io_start(loop, &s->accept_io);
	ev_io_init(&s->udp_io, srv_udp_cb, s->ufd, EV_READ);
	s->udp_io.data = s;
	ev_io_start(loop, &s->udp_io);
}

static void
srv_stop(struct fsrv *s)
{
	ev_io_stop(s->loop, &s->accept_io);
	ev_io_stop(s->loop, &s->udp_io);
	if (s->ch)
		ctrlchan_free(s->ch);
	s->ch = NULL;
	close(s->lfd);
	close(s->ufd);
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
		m.u.member.endpoints[0] = (struct endpoint){ .addr = 0xcb007107, .port = 51820 };
		m.u.member.endpoints[1] = (struct endpoint){ .addr = 0xc0a8010b, .port = 40001 };
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

/* ---- fixture: a mediator client with a real transport, and a fake server ---- */

struct fixture {
	struct ev_loop *loop;
	struct medclient_config cfg;
	struct noise_keypair key;
	struct transport *tp;
	struct fsrv srv;
	struct medclient *med;
};

static uint8_t k_bob[KEY_LEN], k_carol[KEY_LEN], k_dave[KEY_LEN], k_bob2[KEY_LEN];

/* As daemon/wiring.c dispatches: the mediator's datagrams to the mediator client, nothing
 * else here. */
static void
fx_udp_dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct fixture *fx = arg;

	if ((pkt[0] == UDP_PROBE_REPLY || pkt[0] == UDP_NAT_TEST || pkt[0] == UDP_HAIRPIN) &&
	    fx->med)
		medclient_udp_receive(fx->med, from, pkt, len);
}

/* (Re)creates the client from fx->cfg, which it copies. */
static void
fx_client(struct fixture *fx)
{
	medclient_free(fx->med);
	fx->med = medclient_new(fx->loop, &fx->cfg, &fx->key, fx->tp, &fake_ops, fx);
	CHECK(fx->med != NULL);
}

static void
fx_init(struct fixture *fx, void (*burst)(struct fsrv *))
{
	memset(&st, 0, sizeof(st));
	memset(fx, 0, sizeof(*fx));
	fx->loop = ev_loop_new(0);
	srv_start(&fx->srv, fx->loop);
	fx->srv.burst = burst;
	snprintf(fx->cfg.server.addr[0].host, sizeof(fx->cfg.server.addr[0].host), "127.0.0.1");
	fx->cfg.server.addr[0].port = fx->srv.port;
	fx->cfg.server.n_addr = 1;
	memcpy(fx->cfg.server.pub, fx->srv.key.pub, KEY_LEN);
	snprintf(fx->cfg.nick, sizeof(fx->cfg.nick), "alice-cfg");
	noise_keypair_generate(&fx->key);
	fx->tp = transport_new(fx->loop, 0, fx_udp_dispatch, fx);
	if (fx->tp == NULL) {
		fprintf(stderr, "transport_new failed\n");
		exit(1);
	}
	fx_client(fx);
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
	transport_free(fx->tp);
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
	struct endpoint local[MAX_ENDPOINTS];
	uint8_t token[UDP_TOKEN_LEN];
	uint16_t udp_port;
	size_t n_local;
	int i;

	fx_init(&fx, NULL);
	udp_port = transport_port(fx.tp);
	n_local = transport_local_endpoints(fx.tp, local, MAX_ENDPOINTS);
	CHECK(!medclient_connected(fx.med));
	CHECK(strcmp(medclient_nick(fx.med), "") == 0);
	CHECK_EQ(st.address_calls, 0);
	fx_connect(&fx);
	CHECK_MEM(fx.srv.client_key, fx.key.pub, KEY_LEN);
	CHECK_EQ(fx.srv.hello.u.hello.version, SHOAL_PROTO_VERSION);
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "alice-cfg") == 0);
	/* Our peer UDP port and interface addresses, as the transport reports them. */
	CHECK(udp_port != 0);
	CHECK_EQ(fx.srv.hello.u.hello.udp_port, udp_port);
	CHECK(n_local >= 1);            /* loopback at least */
	CHECK_EQ(fx.srv.hello.u.hello.n_local, n_local);
	for (i = 0; i < (int)n_local && i < fx.srv.hello.u.hello.n_local; i++) {
		CHECK_EQ(fx.srv.hello.u.hello.local[i].addr, local[i].addr);
		CHECK_EQ(fx.srv.hello.u.hello.local[i].port, udp_port);
	}
	CHECK_EQ(st.address_calls, 1);
	CHECK_EQ(st.vaddr, 0x05010203);
	CHECK_EQ(st.prefix_len, 8);
	CHECK(strcmp(medclient_nick(fx.med), "alice") == 0);

	/* The first probe went out with WELCOME, to the server's address and port, from our
	 * peer socket (so the mediator sees the NAT mapping peers will use). */
	CHECK(run_until_int(fx.loop, &st.udp_sent, 1, 1.0));
	CHECK_EQ(st.udp_to.addr, 0x7f000001);
	CHECK_EQ(st.udp_to.port, fx.srv.port);
	CHECK_EQ(st.udp_from.port, udp_port);
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
	int n, i;

	fx_init(&fx, NULL);
	fx_connect(&fx);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	ep = (struct endpoint){ .addr = 0xcb007107, .port = 51820 };
	n = probe_reply_encode(&ep, pkt, sizeof(pkt));
	/* From somewhere else: ignored. */
	from = (struct endpoint){ .addr = 0x7f000002, .port = fx.srv.port };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	from = (struct endpoint){ .addr = 0x7f000001, .port = (uint16_t)(fx.srv.port + 1) };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	/* Malformed from the server: ignored. */
	from = (struct endpoint){ .addr = 0x7f000001, .port = fx.srv.port };
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n - 1);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 0);
	medclient_udp_receive(fx.med, &from, pkt, (size_t)n);
	CHECK_EQ(medclient_public_endpoint(fx.med, &got), 1);
	CHECK_EQ(got.addr, ep.addr);
	CHECK_EQ(got.port, ep.port);

	/* The same over real UDP: server socket -> transport -> dispatch -> client. */
	ep = (struct endpoint){ .addr = 0xcb007108, .port = 51821 };
	n = probe_reply_encode(&ep, pkt, sizeof(pkt));
	srv_udp_send(&fx.srv, transport_port(fx.tp), pkt, (size_t)n);
	for (i = 0; i < 40 && (got.addr != ep.addr || got.port != ep.port); i++) {
		settle(fx.loop);
		CHECK_EQ(medclient_public_endpoint(fx.med, &got), 1);
	}
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
	CHECK(auth_find(k_bob) >= 0);
	CHECK(auth_find(fx.key.pub) < 0);
	if (auth_find(k_bob) >= 0) {
		CHECK_EQ(st.auth_addr[auth_find(k_bob)], 0x05000002);
		CHECK_EQ(st.auth_neps[auth_find(k_bob)], 2);
	}

	/* dave comes online. */
	srv_member(s, "lan", k_dave, 0x05000004, "dave", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	CHECK(auth_find(k_dave) >= 0);

	/* carol approved. */
	srv_member(s, "lan", k_carol, 0x05000003, "carol", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 3);

	/* bob goes offline: revoked. */
	srv_member(s, "lan", k_bob, 0x05000002, "Bob", 0);
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 2);
	CHECK(auth_find(k_bob) < 0);

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
	CHECK(auth_find(k_dave) < 0);
	CHECK(auth_find(k_bob) >= 0);

	/* games goes away: bob revoked, carol (lan) stays. */
	srv_network_gone(s, "games");
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 1);
	CHECK(auth_find(k_carol) >= 0);

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
srv_punch(struct fsrv *s, const uint8_t key[KEY_LEN], uint8_t strategy, uint8_t n_targets)
{
	struct msg m;
	uint8_t i;

	memset(&m, 0, sizeof(m));
	m.type = MSG_PUNCH;
	memcpy(m.u.punch.peer, key, KEY_LEN);
	m.u.punch.strategy = strategy;
	m.u.punch.my_mapping = NAT_MAP_APDM;
	m.u.punch.my_ports = NAT_PORTS_RANDOM;
	m.u.punch.peer_mapping = NAT_MAP_EIM;
	m.u.punch.peer_ports = NAT_PORTS_PRESERVED;
	m.u.punch.peer_filtering = NAT_FILT_APDF;
	if (strategy != PUNCH_NONE) {
		m.u.punch.start_ms = 120;
		m.u.punch.interval_ms = 200;
		m.u.punch.rounds = 5;
	}
	m.u.punch.n_targets = n_targets;
	for (i = 0; i < n_targets; i++)
		m.u.punch.targets[i] = (struct endpoint){ .addr = 0xcb007107, .port = (uint16_t)(51820 + i) };
	srv_send(s, &m);
}

/* PUNCH: kept per peer for display, handed to the owner, replaced by the next one, dropped
 * with the member; one for a key outside the view is not kept. */
static void
test_punch(void)
{
	struct fixture fx;
	struct msg_punch got;
	struct fsrv *s;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	s = &fx.srv;
	CHECK_EQ(medclient_punch_info(fx.med, k_bob, &got), -1);

	srv_punch(s, k_bob, PUNCH_SIMULTANEOUS, 3);
	CHECK(run_until_int(fx.loop, &st.punch_calls, 1, 3.0));
	CHECK_MEM(st.punch.peer, k_bob, KEY_LEN);
	CHECK_EQ(st.punch.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(st.punch.n_targets, 3);
	CHECK_EQ(st.punch.targets[2].port, 51822);
	CHECK_EQ(st.punch.start_ms, 120);
	CHECK_EQ(st.punch.interval_ms, 200);
	CHECK_EQ(st.punch.rounds, 5);
	CHECK_EQ(medclient_punch_info(fx.med, k_bob, &got), 0);
	CHECK_EQ(got.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(got.peer_filtering, NAT_FILT_APDF);
	CHECK_EQ(got.my_mapping, NAT_MAP_APDM);
	CHECK_EQ(got.my_ports, NAT_PORTS_RANDOM);
	CHECK_EQ(got.peer_ports, NAT_PORTS_PRESERVED);
	CHECK_EQ(got.n_targets, 3);

	/* A stranger's PUNCH is dropped; then bob's plan changes to "none". The stranger's
	 * comes first on the stream, so once bob's has arrived it has been handled too. */
	srv_punch(s, k_bob2, PUNCH_SIMULTANEOUS, 1);
	srv_punch(s, k_bob, PUNCH_NONE, 0);
	CHECK(run_until_int(fx.loop, &st.punch_calls, 2, 3.0));
	settle(fx.loop);
	CHECK_EQ(st.punch_calls, 2);
	CHECK_EQ(medclient_punch_info(fx.med, k_bob2, &got), -1);
	CHECK_EQ(medclient_punch_info(fx.med, k_bob, &got), 0);
	CHECK_EQ(got.strategy, PUNCH_NONE);
	CHECK_EQ(got.n_targets, 0);

	/* carol (pending, still in the view) may have one; bob leaves: his is dropped. */
	srv_punch(s, k_carol, PUNCH_LAN, 2);
	CHECK(run_until_int(fx.loop, &st.punch_calls, 3, 3.0));
	srv_member_gone(s, "lan", k_bob);
	settle(fx.loop);
	CHECK_EQ(medclient_punch_info(fx.med, k_bob, &got), -1);
	CHECK_EQ(medclient_punch_info(fx.med, k_carol, &got), 0);
	CHECK_EQ(got.strategy, PUNCH_LAN);
	CHECK(medclient_connected(fx.med));
	fx_free(&fx);       /* carol's entry is freed with the client (valgrind) */
}

/* PUNCH_REQUEST (the peer layer lost a path): sent for a member of the view while connected;
 * refused (nothing sent) for a stranger, ourselves, or while disconnected; past the server's
 * budget held (nothing sent). */
static void
test_punch_request(void)
{
	struct fixture fx;
	uint8_t self[KEY_LEN];
	int k, sent = 0;

	fx_init(&fx, burst_lan);
	CHECK_EQ(medclient_punch_request(fx.med, k_bob), -1);     /* not connected yet */
	fx_connect(&fx);
	settle(fx.loop);
	CHECK_EQ(medclient_punch_request(fx.med, k_bob2), -1);    /* not in the view */
	memcpy(self, fx.srv.client_key, KEY_LEN);
	CHECK_EQ(medclient_punch_request(fx.med, self), -1);
	CHECK_EQ(medclient_punch_request(fx.med, k_bob), 0);
	CHECK(run_until_int(fx.loop, &fx.srv.n_punch_req, 1, 3.0));
	CHECK_MEM(fx.srv.punch_req_peer, k_bob, KEY_LEN);
	settle(fx.loop);
	CHECK_EQ(fx.srv.n_punch_req, 1);
	/* The server's budget: 15 more go out at once (16 if a second passed since the first),
	 * the rest are held (not sent). */
	for (k = 0; k < 40; k++)
		sent += medclient_punch_request(fx.med, k_bob) == 0;
	CHECK(sent >= (int)PUNCH_REQ_BURST - 1 && sent <= (int)PUNCH_REQ_BURST);
	CHECK(run_until_int(fx.loop, &fx.srv.n_punch_req, 1 + sent, 3.0));
	settle(fx.loop);
	CHECK_EQ(fx.srv.n_punch_req, 1 + sent);
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

	/* Every spelling a front end may hand over: NICK.shoal (any case), a trailing dot. */
	memset(key, 0, KEY_LEN);
	addr = 0;
	CHECK_EQ(medclient_resolve(fx.med, "bob.shoal", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	CHECK_EQ(addr, 0x05000002);
	memset(key, 0, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "BOB.Shoal.", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	memset(key, 0, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "bob.", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "dave.shoal", key, &addr), 0);
	CHECK_MEM(key, k_dave, KEY_LEN);
	CHECK_EQ(addr, 0x05000004);
	/* A node id prefix and a dotted address, as such and with the same decorations. */
	CHECK_EQ(medclient_resolve(fx.med, "444444444444", key, &addr), 0);
	CHECK_MEM(key, k_dave, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "33333333.shoal.", key, &addr), 0);
	CHECK_MEM(key, k_carol, KEY_LEN);
	CHECK_EQ(addr, 0x05000003);
	CHECK_EQ(medclient_resolve(fx.med, "5.0.0.2", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "5.0.0.2.", key, &addr), 0);
	CHECK_MEM(key, k_bob, KEY_LEN);
	/* Ourselves too, by nick and by address. */
	CHECK_EQ(medclient_resolve(fx.med, "alice.shoal", key, &addr), 0);
	CHECK_MEM(key, fx.key.pub, KEY_LEN);
	CHECK_EQ(addr, 0x05010203);
	/* Only one of each decoration, and nothing that is only decoration. */
	CHECK_EQ(medclient_resolve(fx.med, "bob..", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "bob.shoal.shoal", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "bob.lan", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, ".", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, ".shoal", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "nobody.shoal", key, &addr), -1);

	/* A second "bob" with another key in another network: ambiguous. The same bob in two
	 * networks is not. */
	srv_network(&fx.srv, "games", MEMF_ON);
	srv_member(&fx.srv, "games", k_bob, 0x05000002, "bob", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(medclient_resolve(fx.med, "bob", key, &addr), 0);
	srv_member(&fx.srv, "games", k_bob2, 0x05000005, "BOB", MEMF_ON);
	settle(fx.loop);
	CHECK_EQ(medclient_resolve(fx.med, "bob", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "bob.shoal", key, &addr), -1);
	CHECK_EQ(medclient_resolve(fx.med, "Bob.", key, &addr), -1);
	/* The address and the id still tell them apart. */
	CHECK_EQ(medclient_resolve(fx.med, "5.0.0.5", key, &addr), 0);
	CHECK_MEM(key, k_bob2, KEY_LEN);
	CHECK_EQ(medclient_resolve(fx.med, "55555555.shoal", key, &addr), 0);
	CHECK_MEM(key, k_bob2, KEY_LEN);
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
	CHECK(auth_find(k_bob) >= 0);

	/* Any non-burst message ends the refresh: dave and "old" are swept. */
	{
		struct msg m;

		memset(&m, 0, sizeof(m));
		m.type = MSG_PONG;
		srv_send(&fx.srv, &m);
	}
	settle(fx.loop);
	CHECK_EQ(st.n_auth, 1);
	CHECK(auth_find(k_bob) >= 0);
	CHECK(auth_find(k_dave) < 0);
	CHECK(auth_find(k_bob2) < 0);
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

/* Our gateway's mappings (medclient_set_mapped) reach the server as MSG_CANDIDATES at once
 * when connected, only when they change, and again after a reconnect (PROTOCOL.md 3.3). */
static void
test_candidates(void)
{
	struct fixture fx;
	struct endpoint eps[2] = { { .addr = 0xcb007107u, .port = 41000 }, { .addr = 0, .port = 0 } };

	fx_init(&fx, NULL);
	medclient_set_mapped(fx.med, eps, 1);   /* before connecting: kept for the WELCOME */
	fx_connect(&fx);
	CHECK(run_until_int(fx.loop, &fx.srv.n_cand, 1, 2.0));
	CHECK_EQ(fx.srv.cand.n_mapped, 1);
	CHECK_EQ(fx.srv.cand.mapped[0].addr, 0xcb007107u);
	CHECK_EQ(fx.srv.cand.mapped[0].port, 41000);

	medclient_set_mapped(fx.med, eps, 2);   /* the zero one is left out: no change */
	eps[0].port = 41001;
	medclient_set_mapped(fx.med, eps, 1);
	CHECK(run_until_int(fx.loop, &fx.srv.n_cand, 2, 2.0));
	CHECK_EQ(fx.srv.cand.mapped[0].port, 41001);
	CHECK_EQ(fx.srv.n_cand, 2);             /* nothing for the unchanged set */
	medclient_set_mapped(fx.med, NULL, 0);
	CHECK(run_until_int(fx.loop, &fx.srv.n_cand, 3, 2.0));
	CHECK_EQ(fx.srv.cand.n_mapped, 0);

	/* A reconnect re-sends a non-empty set after its WELCOME. */
	medclient_set_mapped(fx.med, eps, 1);
	CHECK(run_until_int(fx.loop, &fx.srv.n_cand, 4, 2.0));
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	CHECK(run_until_int(fx.loop, &fx.srv.n_cand, 5, 2.0));
	CHECK_EQ(fx.srv.cand.mapped[0].port, 41001);
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
	CHECK(auth_find(k_dave) < 0);
	CHECK(auth_find(k_bob) >= 0);
	fx_free(&fx);
}

static void
test_wrong_server_key_retries(void)
{
	struct fixture fx;

	fx_init(&fx, NULL);
	fx.cfg.server.pub[0] ^= 1;
	fx_client(&fx);
	medclient_start(fx.med);
	/* Connects, fails the handshake, and connects again after the backoff. */
	CHECK(run_until_int(fx.loop, &fx.srv.connections, 2, 3.0));
	CHECK_EQ(fx.srv.ready, 0);
	CHECK(!medclient_connected(fx.med));
	fx_free(&fx);
}

static void
test_name_normalize(void)
{
	char out[32], small[4];
	char buf[32];

	CHECK_EQ(medclient_name_normalize("bob", out, sizeof(out)), 3);
	CHECK(strcmp(out, "bob") == 0);
	CHECK_EQ(medclient_name_normalize("bob.", out, sizeof(out)), 3);
	CHECK(strcmp(out, "bob") == 0);
	CHECK_EQ(medclient_name_normalize("bob.shoal", out, sizeof(out)), 3);
	CHECK(strcmp(out, "bob") == 0);
	CHECK_EQ(medclient_name_normalize("BOB.Shoal.", out, sizeof(out)), 3);
	CHECK(strcmp(out, "BOB") == 0);
	CHECK_EQ(medclient_name_normalize("5.0.0.2.", out, sizeof(out)), 7);
	CHECK(strcmp(out, "5.0.0.2") == 0);
	/* One of each, in that order. */
	CHECK_EQ(medclient_name_normalize("bob..", out, sizeof(out)), 4);
	CHECK(strcmp(out, "bob.") == 0);
	CHECK_EQ(medclient_name_normalize("bob.shoal.shoal", out, sizeof(out)), 9);
	CHECK(strcmp(out, "bob.shoal") == 0);
	CHECK_EQ(medclient_name_normalize("bob.shoal..", out, sizeof(out)), 10);
	CHECK(strcmp(out, "bob.shoal.") == 0);
	/* Nothing left, or only the suffix: nothing is removed that would leave it empty. */
	CHECK_EQ(medclient_name_normalize("", out, sizeof(out)), 0);
	CHECK_EQ(medclient_name_normalize(".", out, sizeof(out)), 0);
	CHECK(strcmp(out, "") == 0);
	CHECK_EQ(medclient_name_normalize(".shoal", out, sizeof(out)), 6);
	CHECK(strcmp(out, ".shoal") == 0);
	CHECK_EQ(medclient_name_normalize("x.shoal", out, sizeof(out)), 1);
	/* In place. */
	snprintf(buf, sizeof(buf), "carol.SHOAL.");
	CHECK_EQ(medclient_name_normalize(buf, buf, sizeof(buf)), 5);
	CHECK(strcmp(buf, "carol") == 0);
	/* Too long for out: -1 and an empty string; what fits after normalising is fine. */
	CHECK_EQ(medclient_name_normalize("carol", small, sizeof(small)), -1);
	CHECK(strcmp(small, "") == 0);
	CHECK_EQ(medclient_name_normalize("bob.shoal.", small, sizeof(small)), 3);
	CHECK(strcmp(small, "bob") == 0);
}

/*
 * The nick: WELCOME confirms one; a SET_NICK confirmed by the server (our own MEMBER record)
 * replaces it and is what a reconnect asks for, not the start-up --nick.
 */
static void
test_nick(void)
{
	struct fixture fx;

	fx_init(&fx, burst_lan);
	fx_connect(&fx);
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "alice-cfg") == 0);
	CHECK(strcmp(medclient_nick(fx.med), "alice") == 0);

	/* set-nick went through: the server pushes our record with the new nick. */
	srv_member(&fx.srv, "lan", fx.srv.client_key, 0x05010203, "alice2", MEMF_ON);
	settle(fx.loop);
	CHECK(strcmp(medclient_nick(fx.med), "alice2") == 0);
	CHECK_EQ(st.n_auth, 1);         /* our own record changes nobody's authorization */

	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "alice2") == 0);
	fx_free(&fx);

	/* Without --nick: HELLO asks for nothing, then for what the server confirmed. */
	fx_init(&fx, NULL);
	fx.cfg.nick[0] = '\0';
	fx_client(&fx);
	fx_connect(&fx);
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "") == 0);
	CHECK(strcmp(medclient_nick(fx.med), "alice") == 0);
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	CHECK(strcmp(fx.srv.hello.u.hello.nick, "alice") == 0);
	fx_free(&fx);
}

/* ---- NAT classification: more server UDP sockets, what reaches them, how they answer ---- */

enum { NL_SOCKS = 4, NL_HP = 3, NL_MAX_PROBES = 64, NL_MAX_REPORTS = 32 };

struct nl_probe {
	int sock;                       /* the socket it arrived on */
	struct nat_probe p;
	int64_t ts;                     /* kernel arrival time, ns (CLOCK_REALTIME) */
};

/*
 * Socket 0 is the fake server's main UDP socket (target 0, where UDP_PROBEs go); 1 and 2 are
 * more targets on 127.0.0.1; NL_HP is on 127.0.0.2, an address that is no target. NL_HP plays
 * our "observed endpoint": target 0's replies say we are there, so the client's UDP_HAIRPIN
 * goes to it, and it plays the NAT that does or does not send it back.
 */
static struct natlab {
	int on;
	int fd[NL_SOCKS];
	struct endpoint ep[NL_SOCKS];
	ev_io io[NL_SOCKS];
	uint16_t test_id;               /* the plan the sockets answer; others get nothing */
	uint32_t nonce;
	uint8_t reply_mask;             /* bit k: socket k answers UDP_NAT_PROBEs */
	int send_tests;                 /* at the first phase-1 probe: the UDP_NAT_TEST mix */
	int tests_sent;
	int hairpin_back;               /* 1: a hairpinning NAT; 0: only wrong copies return */
	struct nl_probe probes[NL_MAX_PROBES];
	int n_probes, bad_probes;
	int n_hairpin;
} nl;

static void
nl_send(int sock, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(to->addr);
	sin.sin_port = htons(to->port);
	CHECK_EQ(sendto(nl.fd[sock], pkt, len, 0, (struct sockaddr *)&sin, sizeof(sin)),
	    (ssize_t)len);
}

static void
nl_test(int sock, const struct endpoint *to, uint16_t test_id, uint8_t kind, uint8_t seq,
    uint32_t nonce)
{
	struct nat_test t = { test_id, kind, seq, nonce };
	uint8_t pkt[UDP_NAT_TEST_LEN];
	int n = nat_test_encode(&t, pkt, sizeof(pkt));

	CHECK_EQ(n, UDP_NAT_TEST_LEN);
	if (n > 0)
		nl_send(sock, to, pkt, (size_t)n);
}

static void
nl_hairpin(const struct endpoint *from, const uint8_t *pkt, size_t len)
{
	uint8_t copy[UDP_HAIRPIN_LEN];
	uint64_t nonce;

	nl.n_hairpin++;
	CHECK_EQ(hairpin_decode(pkt, len, &nonce), 0);
	if (len != UDP_HAIRPIN_LEN)
		return;
	if (nl.hairpin_back) {
		nl_send(NL_HP, from, pkt, len);
		return;
	}
	/* No hairpin; what arrives instead must not count: another nonce from the observed
	 * endpoint, the right nonce from elsewhere. */
	memcpy(copy, pkt, len);
	copy[4] ^= 1;
	nl_send(NL_HP, from, copy, len);
	nl_send(1, from, pkt, len);
}

static void
nat_srv_udp(int sock, const uint8_t *pkt, size_t len, const struct endpoint *from,
    int64_t ts_ns)
{
	struct nat_probe p;
	struct endpoint seen;
	uint8_t reply[UDP_PROBE_REPLY_LEN];
	int n, i;

	if (!nl.on)
		return;
	if (sock == NL_HP) {
		if (len > 0 && pkt[0] == UDP_HAIRPIN)
			nl_hairpin(from, pkt, len);
		return;
	}
	if (len == 0 || pkt[0] != UDP_NAT_PROBE)
		return;                 /* UDP_PROBEs: test_hello_welcome_probe's business */
	if (nat_probe_decode(pkt, len, &p) < 0) {
		nl.bad_probes++;
		return;
	}
	for (i = 0; i < UDP_TOKEN_LEN; i++)
		if (p.token[i] != 0xa0 + i)
			nl.bad_probes++;
	if (nl.n_probes < NL_MAX_PROBES)
		nl.probes[nl.n_probes] = (struct nl_probe){ sock, p, ts_ns };
	nl.n_probes++;
	if (p.test_id != nl.test_id)
		return;
	if (nl.reply_mask & (1u << sock)) {
		seen = sock == 0 ? nl.ep[NL_HP] : *from;
		n = probe_reply_encode(&seen, reply, sizeof(reply));
		CHECK_EQ(n, UDP_PROBE_REPLY_LEN);
		if (n > 0)
			nl_send(sock, from, reply, (size_t)n);
	}
	if (sock == 0 && nl.send_tests && !nl.tests_sent) {
		nl.tests_sent = 1;
		/* These count: kind 1 from another port, lifetime seq 1 from another target. */
		nl_test(1, from, nl.test_id, NAT_TEST_OTHER_PORT, 0, nl.nonce);
		nl_test(2, from, nl.test_id, NAT_TEST_LIFETIME, 1, nl.nonce);
		/* These must not (each would set the kind-2 bit): a wrong nonce, another plan's
		 * id, an address that is no target. */
		nl_test(2, from, nl.test_id, NAT_TEST_OTHER_ADDR, 0, nl.nonce ^ 0x100);
		nl_test(1, from, (uint16_t)(nl.test_id + 1), NAT_TEST_OTHER_ADDR, 0, nl.nonce);
		nl_test(NL_HP, from, nl.test_id, NAT_TEST_OTHER_ADDR, 0, nl.nonce);
		/* Nor does a reply from target 2 before anything went there (a silent one). */
		n = probe_reply_encode(from, reply, sizeof(reply));
		if (n > 0)
			nl_send(2, from, reply, (size_t)n);
	}
}

static void
nl_udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	int sock = (int)(w - nl.io);
	struct endpoint from;
	uint8_t buf[1500];
	int64_t ts;
	ssize_t n;

	while ((n = udp_recv(nl.fd[sock], buf, sizeof(buf), &from, &ts)) >= 0)
		nat_srv_udp(sock, buf, (size_t)n, &from, ts);
}

static void
nl_start(struct fixture *fx)
{
	struct sockaddr_in sin;
	socklen_t sl;
	int i;

	memset(&nl, 0, sizeof(nl));
	nl.fd[0] = fx->srv.ufd;
	nl.ep[0] = (struct endpoint){ .addr = 0x7f000001, .port = fx->srv.port };
	for (i = 1; i < NL_SOCKS; i++) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(i == NL_HP ? 0x7f000002 : 0x7f000001);
		sl = sizeof(sin);
		nl.fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (nl.fd[i] < 0 || bind(nl.fd[i], (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(nl.fd[i], (struct sockaddr *)&sin, &sl) < 0) {
			perror("nat lab socket");
			exit(1);
		}
		CHECK_EQ(setsockopt(nl.fd[i], SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 }, sizeof(int)),
		    0);
		nl.ep[i] = (struct endpoint){ .addr = ntohl(sin.sin_addr.s_addr), .port = ntohs(sin.sin_port) };
		ev_io_init(&nl.io[i], nl_udp_cb, nl.fd[i], EV_READ);
		ev_io_start(fx->loop, &nl.io[i]);
	}
	nl.on = 1;
}

static void
nl_stop(struct fixture *fx)
{
	int i;

	for (i = 1; i < NL_SOCKS; i++) {
		ev_io_stop(fx->loop, &nl.io[i]);
		close(nl.fd[i]);
	}
	nl.on = 0;
}

/* The probes received so far, in the order they were sent (kernel arrival time). */
static void
nl_sort_probes(void)
{
	struct nl_probe t;
	int i, j, n = nl.n_probes < NL_MAX_PROBES ? nl.n_probes : NL_MAX_PROBES;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && nl.probes[j - 1].ts > nl.probes[j].ts; j--) {
			t = nl.probes[j];
			nl.probes[j] = nl.probes[j - 1];
			nl.probes[j - 1] = t;
		}
}

static int
nl_count(uint16_t test_id, int sock)
{
	int i, c = 0;

	for (i = 0; i < nl.n_probes && i < NL_MAX_PROBES; i++)
		if (nl.probes[i].p.test_id == test_id && (sock < 0 || nl.probes[i].sock == sock))
			c++;
	return c;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A NAT_PLAN naming the first n_targets lab sockets; the lab answers that plan from now on. */
static void
srv_nat_plan(struct fsrv *s, uint16_t test_id, uint32_t nonce, uint16_t phase2_ms,
    int n_targets)
{
	struct msg m;
	int i;

	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_PLAN;
	m.u.nat_plan.test_id = test_id;
	m.u.nat_plan.nonce = nonce;
	m.u.nat_plan.phase2_ms = phase2_ms;
	m.u.nat_plan.n_targets = (uint8_t)n_targets;
	for (i = 0; i < n_targets; i++)
		m.u.nat_plan.targets[i] = nl.ep[i];
	nl.test_id = test_id;
	nl.nonce = nonce;
	nl.tests_sent = 0;
	srv_send(s, &m);
}

static int
report_eq(const struct msg_nat_report *a, const struct msg_nat_report *b)
{
	return a->test_id == b->test_id && a->local_port == b->local_port &&
	    a->replies == b->replies && a->tests == b->tests &&
	    a->lifetime_seen == b->lifetime_seen && a->hairpin == b->hairpin;
}

static const struct msg_nat_report *
last_report(const struct fsrv *s)
{
	if (s->n_nat_reports == 0 || s->n_nat_reports > NL_MAX_REPORTS)
		return NULL;
	return &s->nat_reports[s->n_nat_reports - 1];
}

/* Runs the loop until the server's latest NAT_REPORT is want, at most secs seconds. */
static int
run_until_report(struct fixture *fx, const struct msg_nat_report *want, double secs)
{
	ev_timer guard;
	int expired = 0;

	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(fx->loop, &guard);
	while (!(last_report(&fx->srv) && report_eq(last_report(&fx->srv), want)) && !expired)
		ev_run(fx->loop, EVRUN_ONCE);
	ev_timer_stop(fx->loop, &guard);
	return !expired;
}

static void
run_for(struct ev_loop *loop, double secs)
{
	int never = 0;

	run_until_int(loop, &never, 1, secs);
}

/*
 * One plan with three targets: target 0 and 1 answer, 2 stays silent; the tests that count
 * and those that must not; a hairpinning NAT. Then NAT_INFO, kept across a reconnect.
 */
static void
test_nat_classification(void)
{
	struct fixture fx;
	struct msg_nat_report want;
	struct msg_nat_info got;
	struct msg m;
	/* Phase 1: three to target 0; phase 2: targets 1 and 2 in order, twice. */
	static const int order[] = { 0, 0, 0, 1, 2, 1, 2 };
	int64_t plan_at;
	int i;

	fx_init(&fx, NULL);
	nl_start(&fx);
	fx_connect(&fx);
	CHECK_EQ(medclient_nat_info(fx.med, &got), -1);

	nl.reply_mask = 0x3;
	nl.send_tests = 1;
	nl.hairpin_back = 1;
	plan_at = now_ns();
	srv_nat_plan(&fx.srv, 7, 0x11223344, 400, 3);

	memset(&want, 0, sizeof(want));
	want.test_id = 7;
	want.local_port = transport_port(fx.tp);
	want.replies = 0x03;
	want.tests = 0x01;              /* kind 1 only: no kind-2 impostor counted */
	want.lifetime_seen = 0x02;
	want.hairpin = NAT_HP_BACK;
	CHECK(run_until_report(&fx, &want, 3.0));
	CHECK(run_until_int(fx.loop, &nl.n_probes, 7, 2.0));
	/* Nothing after the second burst: the budget is spent (longer than the burst gap). */
	run_for(fx.loop, 0.5);
	CHECK_EQ(nl.n_probes, 7);
	CHECK_EQ(nl.bad_probes, 0);
	CHECK_EQ(nl.n_hairpin, 1);
	nl_sort_probes();
	for (i = 0; i < nl.n_probes && i < 7; i++) {
		CHECK_EQ(nl.probes[i].sock, order[i]);
		/* The target index names the socket it went to. */
		CHECK_EQ(nl.probes[i].p.target, order[i]);
		CHECK_EQ(nl.probes[i].p.test_id, 7);
	}
	/* 100 ms apart, phase 2 not before phase2_ms, bursts 300 ms apart. Lower bounds with
	 * slack only: late is allowed (valgrind), early is not. */
	if (nl.n_probes == 7) {
		CHECK(nl.probes[1].ts - nl.probes[0].ts >= 80000000);
		CHECK(nl.probes[2].ts - nl.probes[1].ts >= 80000000);
		CHECK(nl.probes[3].ts - plan_at >= 380000000);
		CHECK(nl.probes[5].ts - nl.probes[3].ts >= 280000000);
	}
	/* Reports only when something changed, never twice the same. */
	CHECK(fx.srv.n_nat_reports >= 1 && fx.srv.n_nat_reports <= NL_MAX_REPORTS);
	for (i = 1; i < fx.srv.n_nat_reports && i < NL_MAX_REPORTS; i++)
		CHECK(!report_eq(&fx.srv.nat_reports[i], &fx.srv.nat_reports[i - 1]));
	/* Target 0 is the server's own socket: its reply is also our public endpoint. */
	{
		struct endpoint pub;

		CHECK_EQ(medclient_public_endpoint(fx.med, &pub), 1);
		CHECK_EQ(pub.addr, nl.ep[NL_HP].addr);
		CHECK_EQ(pub.port, nl.ep[NL_HP].port);
	}

	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_INFO;
	m.u.nat_info = (struct msg_nat_info){ NAT_UDP_OK, NAT_MAP_ADM, NAT_FILT_APDF,
	    NAT_PORTS_SEQUENTIAL, 2, NAT_HAIRPIN_YES, 24, 48, { .addr = 0x01020304, .port = 5678 }, 2 };
	st.nat_info_calls = 0;
	srv_send(&fx.srv, &m);
	for (i = 0; i < 40 && medclient_nat_info(fx.med, &got) < 0; i++)
		settle(fx.loop);
	CHECK_EQ(medclient_nat_info(fx.med, &got), 0);
	/* The owner hears of it too (the daemon sets its idle refresh from the lifetime). */
	CHECK_EQ(st.nat_info_calls, 1);
	CHECK_EQ(st.nat_lifetime_s, 24);
	CHECK_EQ(got.udp, NAT_UDP_OK);
	CHECK_EQ(got.mapping, NAT_MAP_ADM);
	CHECK_EQ(got.filtering, NAT_FILT_APDF);
	CHECK_EQ(got.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(got.step, 2);
	CHECK_EQ(got.hairpin, NAT_HAIRPIN_YES);
	CHECK_EQ(got.lifetime_s, 24);
	CHECK_EQ(got.lifetime_max_s, 48);
	CHECK_EQ(got.public_ep.addr, 0x01020304);
	CHECK_EQ(got.public_ep.port, 5678);
	CHECK_EQ(got.addrs, 2);

	/* The NAT does not change because the mediator went away. */
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	memset(&got, 0, sizeof(got));
	CHECK_EQ(medclient_nat_info(fx.med, &got), 0);
	CHECK_EQ(got.mapping, NAT_MAP_ADM);
	nl_stop(&fx);
	fx_free(&fx);
}

/*
 * A new plan replaces the old one (its phase 2 never comes, its tests no longer count); a NAT
 * that does not hairpin (only wrong copies come back): hairpin "lost" after 2 s; a plan cut
 * short by a disconnect sends nothing more.
 */
static void
test_nat_plan_replaced_and_stopped(void)
{
	struct fixture fx;
	struct msg_nat_report want;
	int64_t t;
	int n;

	fx_init(&fx, NULL);
	nl_start(&fx);
	fx_connect(&fx);

	/* Plan 1 gets no answers; plan 2 arrives during its phase 1. Plan 2's phase 2 is far
	 * off, so a phase-2 probe of either plan in this test is plan 1's timer still running. */
	srv_nat_plan(&fx.srv, 1, 0xaaaa0001, 1000, 2);
	nl.test_id = 0;
	CHECK(run_until_int(fx.loop, &nl.n_probes, 1, 2.0));
	nl.reply_mask = 0x1;
	nl.hairpin_back = 0;
	srv_nat_plan(&fx.srv, 2, 0xbbbb0002, 10000, 2);
	/* Plan 1's test, right nonce, from a target: too late, it is not the current plan. */
	settle(fx.loop);
	nl_test(0, &(struct endpoint){ .addr = 0x7f000001, .port = transport_port(fx.tp) }, 1,
	    NAT_TEST_OTHER_PORT, 0, 0xaaaa0001);

	memset(&want, 0, sizeof(want));
	want.test_id = 2;
	want.local_port = transport_port(fx.tp);
	want.replies = 0x01;
	want.hairpin = NAT_HP_LOST;
	t = now_ns();
	CHECK(run_until_report(&fx, &want, 4.0));
	/* Not before the 2 s deadline (the wrong copies did not count as back). */
	CHECK(now_ns() - t >= 1900000000);
	/* More than plan 1's phase2_ms has passed: its phase 2 never went out. */
	CHECK_EQ(nl_count(1, 1), 0);
	CHECK(nl_count(1, 0) >= 1 && nl_count(1, 0) <= 3);
	CHECK_EQ(nl_count(2, 0), 3);
	CHECK_EQ(nl_count(2, 1), 0);
	CHECK_EQ(nl.n_hairpin, 1);
	CHECK_EQ(nl.bad_probes, 0);

	/* Plan 3 is cut short by a disconnect right after its first probe. */
	n = nl.n_probes;
	nl.reply_mask = 0;
	srv_nat_plan(&fx.srv, 3, 0xcccc0003, 200, 2);
	CHECK(run_until_int(fx.loop, &nl.n_probes, n + 1, 2.0));
	srv_kick(&fx.srv);
	CHECK(run_until_int(fx.loop, &fx.srv.n_hello, 2, 3.0));
	run_for(fx.loop, 0.6);          /* past phase 2 (200 ms) and its second burst (+300) */
	CHECK_EQ(nl_count(3, 1), 0);
	CHECK(nl_count(3, 0) <= 2);
	nl_stop(&fx);
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
	RUN(test_name_normalize);
	RUN(test_nick);
	RUN(test_requests);
	RUN(test_server_ping);
	RUN(test_reconnect_keeps_then_refreshes);
	RUN(test_candidates);
	RUN(test_refresh_timer);
	RUN(test_wrong_server_key_retries);
	RUN(test_nat_classification);
	RUN(test_nat_plan_replaced_and_stopped);
	RUN(test_punch);
	RUN(test_punch_request);
	return unit_finish();
}
