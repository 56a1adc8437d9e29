/*
 * test_tcplink: core/tcpframe.c (the framing, any split of the stream, bad lengths),
 * core/tcplink.c over a real loopback TCP connection between two real transports (datagrams
 * arrive whole and in order with the link's via; a full output buffer drops whole datagrams and
 * never blocks; EOF, a bad frame and freeing end the link and its via), and core/tcppunch.c
 * connecting from a shared port to a real listener (the link comes up and carries datagrams,
 * a refused connect is retried on the next round, an unanswered plan gives up).
 * Every wait runs the loop until the awaited event happened; no sleeps, no timed assertions.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/tcpframe.h"
#include "core/tcplink.h"
#include "core/tcppunch.h"
#include "core/transport.h"
#include "tests/unit/unit.h"

#define LOOP_ADDR 0x7f000001u
/* Upper bound on loop iterations for one awaited event: a broken build fails, not hangs. */
enum { SPINS = 200000 };

/* ---- tcpframe ---- */

struct got {
	unsigned n;
	size_t len[64];
	uint8_t first[64];
};

static void
got_cb(void *arg, uint8_t *pkt, size_t len)
{
	struct got *g = arg;

	if (g->n < 64) {
		g->len[g->n] = len;
		g->first[g->n] = pkt[0];
	}
	g->n++;
}

static void
test_frame(void)
{
	uint8_t pkt[UDP_MAX_PAYLOAD + 1], stream[3 * TCPFRAME_MAX];
	struct tcpframe_rx rx;
	struct got g;
	size_t off = 0, i;
	int n;

	memset(pkt, 0xab, sizeof(pkt));
	CHECK_EQ(tcpframe_encode(pkt, 0, stream, sizeof(stream)), -1);
	CHECK_EQ(tcpframe_encode(pkt, UDP_MAX_PAYLOAD + 1, stream, sizeof(stream)), -1);
	CHECK_EQ(tcpframe_encode(pkt, 10, stream, 11), -1);
	pkt[0] = 1;
	n = tcpframe_encode(pkt, 1, stream, sizeof(stream));
	CHECK_EQ(n, 3);
	CHECK(stream[0] == 0 && stream[1] == 1 && stream[2] == 1);
	off = (size_t)n;
	pkt[0] = 2;
	n = tcpframe_encode(pkt, UDP_MAX_PAYLOAD, stream + off, sizeof(stream) - off);
	CHECK_EQ(n, TCPFRAME_MAX);
	CHECK(stream[off] == 0x05 && stream[off + 1] == 0xc0);     /* 1472 */
	off += (size_t)n;
	pkt[0] = 3;
	off += (size_t)tcpframe_encode(pkt, 100, stream + off, sizeof(stream) - off);

	/* All at once, then one byte at a time: the same three datagrams. */
	memset(&g, 0, sizeof(g));
	tcpframe_rx_init(&rx);
	CHECK_EQ(tcpframe_feed(&rx, stream, off, got_cb, &g), 0);
	CHECK_EQ(g.n, 3);
	CHECK(g.len[0] == 1 && g.len[1] == UDP_MAX_PAYLOAD && g.len[2] == 100);
	CHECK(g.first[0] == 1 && g.first[1] == 2 && g.first[2] == 3);
	memset(&g, 0, sizeof(g));
	tcpframe_rx_init(&rx);
	for (i = 0; i < off; i++)
		CHECK_EQ(tcpframe_feed(&rx, stream + i, 1, got_cb, &g), 0);
	CHECK_EQ(g.n, 3);
	CHECK(g.len[1] == UDP_MAX_PAYLOAD && g.first[2] == 3);

	/* Length 0 and 1473 break the stream for good; frames before them were delivered. */
	memset(&g, 0, sizeof(g));
	tcpframe_rx_init(&rx);
	stream[3] = 0;
	stream[4] = 0;
	CHECK_EQ(tcpframe_feed(&rx, stream, 5, got_cb, &g), -1);
	CHECK_EQ(g.n, 1);
	CHECK_EQ(tcpframe_feed(&rx, stream, 3, got_cb, &g), -1);
	CHECK_EQ(g.n, 1);
	tcpframe_rx_init(&rx);
	stream[0] = 0x05;
	stream[1] = 0xc1;
	CHECK_EQ(tcpframe_feed(&rx, stream, 1, got_cb, &g), 0);  /* half a header: undecided */
	CHECK_EQ(tcpframe_feed(&rx, stream + 1, 1, got_cb, &g), -1);
}

/* ---- tcplink ---- */

struct side {
	struct transport *t;
	unsigned n;                     /* datagrams received */
	uint32_t next;                  /* sequence number expected next */
	int out_of_order;
	struct endpoint from;
	size_t last_len;
	struct tcplink *l;
	const char *closed;             /* why its link closed; NULL: open */
};

static void
side_recv(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct side *s = arg;
	uint32_t seq;

	s->from = *from;
	s->last_len = len;
	if (len >= 4) {
		memcpy(&seq, pkt, 4);
		if (seq != s->next)
			s->out_of_order = 1;
		s->next = seq + 1;
	}
	s->n++;
}

static void
side_closed(void *arg, struct tcplink *l, const char *why)
{
	struct side *s = arg;

	CHECK(l == s->l);
	s->closed = why;
	tcplink_free(l);
	s->l = NULL;
}

static const struct tcplink_ops side_ops = { side_closed };

static int
fcntl_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A connected loopback pair: *a connected to a listener, *b accepted; both non-blocking. */
static void
tcp_pair(int *a, int *b, uint16_t *a_port, uint16_t *b_port, int small_buffers)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, one = 1, small = 4096;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(LOOP_ADDR);
	CHECK_EQ(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	if (small_buffers)
		CHECK_EQ(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ(listen(lfd, 1), 0);
	CHECK_EQ(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	*b_port = ntohs(sin.sin_port);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (small_buffers)
		CHECK_EQ(setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	CHECK_EQ(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	CHECK(*b >= 0);
	CHECK_EQ(getsockname(*a, (struct sockaddr *)&sin, &len), 0);
	*a_port = ntohs(sin.sin_port);
	CHECK_EQ(fcntl_nonblock(*a), 0);
	close(lfd);
}

struct pair {
	struct ev_loop *loop;
	struct side a, b;
	uint16_t a_port, b_port;
};

static void
pair_open(struct pair *p, int small_buffers)
{
	int fa, fb;
	struct endpoint ra, rb;

	memset(p, 0, sizeof(*p));
	p->loop = ev_default_loop(0);
	p->a.t = transport_new(p->loop, 0, side_recv, &p->a);
	p->b.t = transport_new(p->loop, 0, side_recv, &p->b);
	CHECK(p->a.t != NULL && p->b.t != NULL);
	tcp_pair(&fa, &fb, &p->a_port, &p->b_port, small_buffers);
	ra = (struct endpoint){ .addr = LOOP_ADDR, .port = p->b_port };
	rb = (struct endpoint){ .addr = LOOP_ADDR, .port = p->a_port };
	p->a.l = tcplink_new(p->loop, p->a.t, fa, &ra, &side_ops, &p->a);
	p->b.l = tcplink_new(p->loop, p->b.t, fb, &rb, &side_ops, &p->b);
	CHECK(p->a.l != NULL && p->b.l != NULL);
}

static void
pair_close(struct pair *p)
{
	tcplink_free(p->a.l);
	tcplink_free(p->b.l);
	transport_free(p->a.t);
	transport_free(p->b.t);
}

static void
wait_received(struct pair *p, struct side *s, unsigned want)
{
	int i;

	for (i = 0; i < SPINS && s->n < want; i++)
		ev_run(p->loop, EVRUN_ONCE);
}

static void
send_seq(struct side *s, uint32_t seq, size_t len)
{
	uint8_t pkt[UDP_MAX_PAYLOAD];
	struct endpoint to = tcplink_endpoint(s->l);

	memset(pkt, 0x5a, sizeof(pkt));
	memcpy(pkt, &seq, 4);
	CHECK_EQ(transport_send(s->t, &to, pkt, len), 0);
}

/* Datagrams go both ways whole and in order, reported from the remote endpoint with the via;
 * the link says "tcp". */
static void
test_link_datagrams(void)
{
	struct pair p;
	struct endpoint ea;
	struct transport_stats ts;
	uint32_t i;

	pair_open(&p, 0);
	ea = tcplink_endpoint(p.a.l);
	CHECK(ea.via != 0);
	CHECK_EQ(ea.port, p.b_port);
	CHECK(strcmp(transport_link_kind(p.a.t, ea.via), "tcp") == 0);
	CHECK(strcmp(transport_link_kind(p.a.t, 0), "udp") == 0);
	for (i = 0; i < 100; i++)
		send_seq(&p.a, i, 4 + i * 14);
	send_seq(&p.b, 0, UDP_MAX_PAYLOAD);
	wait_received(&p, &p.a, 1);
	wait_received(&p, &p.b, 100);
	CHECK_EQ(p.b.n, 100);
	CHECK(!p.b.out_of_order);
	CHECK_EQ(p.b.last_len, 4 + 99 * 14);
	CHECK_EQ(p.b.from.addr, LOOP_ADDR);
	CHECK_EQ(p.b.from.port, p.a_port);
	CHECK_EQ(p.b.from.via, tcplink_endpoint(p.b.l).via);
	CHECK_EQ(p.a.n, 1);
	CHECK_EQ(p.a.last_len, UDP_MAX_PAYLOAD);
	transport_get_stats(p.b.t, &ts);
	CHECK_EQ(ts.link_rx, 100);
	pair_close(&p);
}

/* The receiver does not read: sends never block, the buffer stays bounded, whole datagrams
 * are dropped; once it reads, everything not dropped arrives, in order and whole. */
static void
test_link_full(void)
{
	struct pair p;
	struct tcplink_stats st;
	uint32_t i;

	pair_open(&p, 1);
	for (i = 0; i < 400; i++)
		send_seq(&p.a, i, 1400);
	tcplink_get_stats(p.a.l, &st);
	CHECK(st.tx_dropped > 0);
	CHECK(st.out_queued <= TCPLINK_OUT_MAX);
	CHECK_EQ(st.tx_frames + st.tx_dropped, 400);
	/* Sequence numbers of the kept ones are consecutive: drops only hit the tail. */
	wait_received(&p, &p.b, (unsigned)st.tx_frames);
	CHECK_EQ(p.b.n, st.tx_frames);
	CHECK(!p.b.out_of_order);
	CHECK_EQ(p.b.last_len, 1400);
	tcplink_get_stats(p.a.l, &st);
	CHECK_EQ(st.out_queued, 0);
	pair_close(&p);
}

/* EOF and a bad frame end the link; its via leaves the transport. */
static void
test_link_close(void)
{
	struct pair p;
	struct transport_stats ts;
	uint16_t via;
	int fa, fb;
	uint8_t bad[2] = { 0, 0 };
	struct endpoint r;
	int i;

	pair_open(&p, 0);
	via = tcplink_endpoint(p.a.l).via;
	tcplink_free(p.b.l);
	p.b.l = NULL;
	for (i = 0; i < SPINS && p.a.closed == NULL; i++)
		ev_run(p.loop, EVRUN_ONCE);
	CHECK(p.a.closed != NULL && strcmp(p.a.closed, "eof") == 0);
	CHECK(p.a.l == NULL);
	transport_get_stats(p.a.t, &ts);
	CHECK_EQ(ts.links, 0);
	CHECK(transport_link_kind(p.a.t, via) == NULL);

	/* A zero length on the wire: "frame". */
	p.a.closed = NULL;
	tcp_pair(&fa, &fb, &p.a_port, &p.b_port, 0);
	r = (struct endpoint){ .addr = LOOP_ADDR, .port = p.b_port };
	p.a.l = tcplink_new(p.loop, p.a.t, fa, &r, &side_ops, &p.a);
	CHECK_EQ(write(fb, bad, sizeof(bad)), 2);
	for (i = 0; i < SPINS && p.a.closed == NULL; i++)
		ev_run(p.loop, EVRUN_ONCE);
	CHECK(p.a.closed != NULL && strcmp(p.a.closed, "frame") == 0);
	close(fb);
	pair_close(&p);
}

/* ---- tcppunch ---- */

struct up {
	unsigned n;
	uint8_t key[KEY_LEN];
	struct endpoint ep;
};

static void
up_cb(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	struct up *u = arg;

	u->n++;
	memcpy(u->key, key, KEY_LEN);
	u->ep = *ep;
}

static const struct tcppunch_ops up_ops = { up_cb };

static int
listener(uint16_t port, uint16_t *bound)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(LOOP_ADDR);
	sin.sin_port = htons(port);
	CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ(listen(fd, 4), 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*bound = ntohs(sin.sin_port);
	return fd;
}

static void
plan_for(struct msg_punch *m, uint16_t port, uint8_t rounds)
{
	memset(m, 0, sizeof(*m));
	memset(m->peer, 0x42, KEY_LEN);
	m->strategy = PUNCH_TCP;
	m->start_ms = 0;
	m->interval_ms = 50;
	m->rounds = rounds;
	m->n_targets = 2;               /* the duplicate is connected once */
	m->targets[0] = m->targets[1] = (struct endpoint){ .addr = LOOP_ADDR, .port = port };
}

static uint16_t
port_of(int fd, int peer)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if ((peer ? getpeername(fd, (struct sockaddr *)&sin, &len) :
	    getsockname(fd, (struct sockaddr *)&sin, &len)) < 0)
		return 0;
	return ntohs(sin.sin_port);
}

/* From the shared port to a listener: one connect, the link comes up with the peer's key and
 * carries datagrams to whoever accepted; the punch left from the shared port. */
static void
test_punch_connects(void)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct side s;
	struct tcppunch *tp;
	struct tcppunch_stats st;
	struct up u;
	struct msg_punch m;
	uint16_t lport, shared;
	int lfd, held, cfd = -1, i;
	uint8_t buf[64];
	uint32_t seq = 7;

	memset(&s, 0, sizeof(s));
	memset(&u, 0, sizeof(u));
	s.t = transport_new(loop, 0, side_recv, &s);
	tp = tcppunch_new(loop, s.t, &up_ops, &u);
	CHECK(tp != NULL);
	/* The mediator connection's socket, holding the shared port. */
	held = tcppunch_socket(0);
	CHECK(held >= 0);
	shared = port_of(held, 0);
	lfd = listener(0, &lport);
	plan_for(&m, lport, 3);
	tcppunch_start(tp, &m, shared);
	for (i = 0; i < SPINS && u.n == 0; i++)
		ev_run(loop, EVRUN_ONCE);
	CHECK_EQ(u.n, 1);
	CHECK_MEM(u.key, m.peer, KEY_LEN);
	CHECK(u.ep.via != 0);
	CHECK_EQ(u.ep.port, lport);
	tcppunch_get_stats(tp, &st);
	CHECK_EQ(st.connects, 1);
	CHECK_EQ(st.links, 1);
	CHECK_EQ(st.plans, 0);
	cfd = accept(lfd, NULL, NULL);
	CHECK(cfd >= 0);
	CHECK_EQ(port_of(cfd, 1), shared);
	memcpy(buf + 2, &seq, 4);
	CHECK_EQ(transport_send(s.t, &u.ep, buf + 2, 4), 0);
	transport_flush(s.t);
	CHECK_EQ(read(cfd, buf, sizeof(buf)), 6);
	CHECK(buf[0] == 0 && buf[1] == 4);
	/* And back: a frame from the other end arrives as a datagram with the via. */
	CHECK_EQ(write(cfd, buf, 6), 6);
	for (i = 0; i < SPINS && s.n == 0; i++)
		ev_run(loop, EVRUN_ONCE);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(s.from.via, u.ep.via);
	/* The other end goes: the link goes with it. */
	close(cfd);
	for (i = 0; i < SPINS && st.links != 0; i++) {
		ev_run(loop, EVRUN_ONCE);
		tcppunch_get_stats(tp, &st);
	}
	CHECK_EQ(st.links, 0);
	tcppunch_free(tp);
	close(held);
	close(lfd);
	transport_free(s.t);
}

/* Nobody listens at first (RST): the next round tries again and gets the listener that came
 * meanwhile. Nobody ever: the plan gives up after its rounds. */
static void
test_punch_retry_and_give_up(void)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct side s;
	struct tcppunch *tp;
	struct tcppunch_stats st;
	struct up u;
	struct msg_punch m;
	uint16_t port, shared;
	int lfd, held, i;

	memset(&s, 0, sizeof(s));
	memset(&u, 0, sizeof(u));
	s.t = transport_new(loop, 0, side_recv, &s);
	tp = tcppunch_new(loop, s.t, &up_ops, &u);
	held = tcppunch_socket(0);
	shared = port_of(held, 0);
	lfd = listener(0, &port);
	close(lfd);                     /* a port with nobody on it now */
	plan_for(&m, port, 5);
	tcppunch_start(tp, &m, shared);
	memset(&st, 0, sizeof(st));
	for (i = 0; i < SPINS && st.failed == 0; i++) {
		ev_run(loop, EVRUN_ONCE);
		tcppunch_get_stats(tp, &st);
	}
	CHECK_EQ(st.failed, 1);
	CHECK_EQ(u.n, 0);
	lfd = listener(port, &port);
	for (i = 0; i < SPINS && u.n == 0; i++)
		ev_run(loop, EVRUN_ONCE);
	CHECK_EQ(u.n, 1);
	tcppunch_get_stats(tp, &st);
	CHECK_EQ(st.connects, 2);
	CHECK_EQ(st.links, 1);
	close(lfd);

	/* Never answered: every round is refused, then the plan is gone. */
	lfd = listener(0, &port);
	close(lfd);
	memset(m.peer, 0x43, KEY_LEN);
	plan_for(&m, port, 3);
	memset(m.peer, 0x43, KEY_LEN);
	tcppunch_start(tp, &m, shared);
	tcppunch_get_stats(tp, &st);
	CHECK_EQ(st.plans, 1);
	for (i = 0; i < SPINS && st.plans != 0; i++) {
		ev_run(loop, EVRUN_ONCE);
		tcppunch_get_stats(tp, &st);
	}
	CHECK_EQ(st.plans, 0);
	CHECK_EQ(st.connects, 2 + 3);
	CHECK_EQ(u.n, 1);

	/* Another strategy, or no shared port, only cancels. */
	tcppunch_start(tp, &m, 0);
	m.strategy = PUNCH_SIMULTANEOUS;
	tcppunch_start(tp, &m, shared);
	tcppunch_get_stats(tp, &st);
	CHECK_EQ(st.plans, 0);
	tcppunch_free(tp);
	close(held);
	transport_free(s.t);
}

int
main(void)
{
	RUN(test_frame);
	RUN(test_link_datagrams);
	RUN(test_link_full);
	RUN(test_link_close);
	RUN(test_punch_connects);
	RUN(test_punch_retry_and_give_up);
	return unit_finish();
}
