/*
 * Unit tests for core/transport: two transports on loopback exchange 10000 datagrams in
 * bursts; every one arrives intact and in order, and the stats show batching both ways.
 * Also: oversized sends are refused, oversized datagrams are dropped, local endpoints list
 * loopback last. Links: a datagram to an endpoint naming a link goes to that link's send (also
 * through alloc/commit), one handed in by a link reaches the callback with its via, a deleted
 * link's via drops and is not handed out again at once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/transport.h"
#include "tests/unit/unit.h"

enum { N_DGRAMS = 10000, BURST = 100, DGRAM_LEN = 200 };

struct side {
	struct transport *t;
	uint32_t next_expected;
	uint32_t received;
	uint32_t bad;
	size_t last_len;
	struct endpoint last_from;
};

struct bench {
	struct ev_loop *loop;
	struct side a, b;
	uint32_t sent;
	ev_idle pump;
	ev_timer guard;
};

static void
recv_cb(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct side *s = arg;
	uint32_t seq;
	size_t i;

	s->last_len = len;
	s->last_from = *from;
	if (len != DGRAM_LEN) {
		s->bad++;
		return;
	}
	seq = (uint32_t)pkt[0] << 24 | (uint32_t)pkt[1] << 16 | (uint32_t)pkt[2] << 8 | pkt[3];
	for (i = 4; i < len; i++)
		if (pkt[i] != (uint8_t)(seq + i))
			s->bad++;
	if (seq != s->next_expected)
		s->bad++;
	s->next_expected = seq + 1;
	s->received++;
}

static void
fill(uint8_t *pkt, uint32_t seq)
{
	size_t i;

	pkt[0] = seq >> 24;
	pkt[1] = seq >> 16;
	pkt[2] = seq >> 8;
	pkt[3] = seq;
	for (i = 4; i < DGRAM_LEN; i++)
		pkt[i] = (uint8_t)(seq + i);
}

static void
pump_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct bench *b = w->data;
	struct endpoint to = { .addr = 0x7f000001, .port = transport_port(b->b.t) };
	struct endpoint back = { .addr = 0x7f000001, .port = transport_port(b->a.t) };
	uint8_t pkt[DGRAM_LEN];
	int i;

	/* Send a burst only when the receiver has caught up, as a window would. */
	if (b->sent < N_DGRAMS && b->b.received + BURST >= b->sent) {
		for (i = 0; i < BURST && b->sent < N_DGRAMS; i++) {
			fill(pkt, b->sent);
			transport_send(b->a.t, &to, pkt, sizeof(pkt));
			/* and the other way, so both ends batch */
			transport_send(b->b.t, &back, pkt, sizeof(pkt));
			b->sent++;
		}
	}
	if (b->b.received == N_DGRAMS && b->a.received == N_DGRAMS)
		ev_break(loop, EVBREAK_ALL);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
test_exchange(void)
{
	struct bench b;
	struct transport_stats sa, sb;

	memset(&b, 0, sizeof(b));
	b.loop = ev_loop_new(EVFLAG_AUTO);
	b.a.t = transport_new(b.loop, 0, recv_cb, &b.a);
	b.b.t = transport_new(b.loop, 0, recv_cb, &b.b);
	CHECK(b.a.t != NULL && b.b.t != NULL);
	if (!b.a.t || !b.b.t)
		return;
	CHECK(transport_port(b.a.t) != 0);
	ev_idle_init(&b.pump, pump_cb);
	b.pump.data = &b;
	ev_idle_start(b.loop, &b.pump);
	ev_timer_init(&b.guard, guard_cb, 20.0, 0);
	ev_timer_start(b.loop, &b.guard);
	ev_run(b.loop, 0);

	CHECK_EQ(b.b.received, N_DGRAMS);
	CHECK_EQ(b.a.received, N_DGRAMS);
	CHECK_EQ(b.b.bad, 0);
	CHECK_EQ(b.a.bad, 0);
	CHECK_EQ(b.b.last_from.addr, 0x7f000001);
	CHECK_EQ(b.b.last_from.port, transport_port(b.a.t));

	transport_get_stats(b.a.t, &sa);
	transport_get_stats(b.b.t, &sb);
	CHECK_EQ(sa.tx_packets, N_DGRAMS);
	CHECK_EQ(sb.rx_packets, N_DGRAMS);
	CHECK_EQ(sa.tx_dropped, 0);
	CHECK(sb.rx_batches < sb.rx_packets);
	CHECK(sa.tx_batches < sa.tx_packets);
	CHECK(sa.rx_batches < sa.rx_packets);
	printf("# rx %llu packets in %llu batches, tx %llu in %llu\n",
	    (unsigned long long)sb.rx_packets, (unsigned long long)sb.rx_batches,
	    (unsigned long long)sa.tx_packets, (unsigned long long)sa.tx_batches);

	ev_idle_stop(b.loop, &b.pump);
	ev_timer_stop(b.loop, &b.guard);
	transport_free(b.a.t);
	transport_free(b.b.t);
	ev_loop_destroy(b.loop);
}

static void
once_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
test_limits(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct side s;
	struct transport *t;
	struct endpoint to = { 0 };
	static uint8_t big[UDP_MAX_PAYLOAD + 100];
	struct sockaddr_in sin;
	struct transport_stats st;
	ev_timer w;
	int fd;

	memset(&s, 0, sizeof(s));
	t = transport_new(loop, 0, recv_cb, &s);
	CHECK(t != NULL);
	if (!t)
		return;
	to.addr = 0x7f000001;
	to.port = transport_port(t);
	CHECK_EQ(transport_send(t, &to, big, UDP_MAX_PAYLOAD + 1), -1);
	CHECK_EQ(transport_send(t, &to, big, UDP_MAX_PAYLOAD), 0);

	/* An oversized datagram from outside is truncated by the kernel: dropped, not passed. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	sin.sin_port = htons(to.port);
	CHECK(sendto(fd, big, sizeof(big), 0, (struct sockaddr *)&sin, sizeof(sin)) ==
	    (ssize_t)sizeof(big));
	close(fd);

	ev_timer_init(&w, once_cb, 0.2, 0);
	ev_timer_start(loop, &w);
	ev_run(loop, 0);
	/* Exactly the full-size one arrived (as "bad": it is not the bench size). */
	CHECK_EQ(s.bad, 1);
	CHECK_EQ(s.last_len, UDP_MAX_PAYLOAD);
	transport_get_stats(t, &st);
	CHECK_EQ(st.tx_packets, 1);
	transport_free(t);
	ev_loop_destroy(loop);
}

static void
test_local_endpoints(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct transport *t = transport_new(loop, 0, recv_cb, NULL);
	struct endpoint eps[MAX_ENDPOINTS];
	size_t n, i;

	CHECK(t != NULL);
	if (!t)
		return;
	n = transport_local_endpoints(t, eps, MAX_ENDPOINTS);
	CHECK(n >= 1);
	/* Loopback is last; every entry carries our port. */
	CHECK_EQ(eps[n - 1].addr >> 24, 127);
	for (i = 0; i < n; i++) {
		CHECK_EQ(eps[i].port, transport_port(t));
		if (i + 1 < n)
			CHECK(eps[i].addr >> 24 != 127);
	}
	CHECK_EQ(transport_local_endpoints(t, eps, 0), 0);
	transport_free(t);
	ev_loop_destroy(loop);
}

struct fake_link {
	unsigned sent;
	size_t last_len;
	struct endpoint last_to;
	int fail;
};

static int
fake_link_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct fake_link *l = arg;

	if (l->fail)
		return -1;
	l->sent++;
	l->last_len = len;
	l->last_to = *to;
	return pkt[0] == 0xab ? 0 : -1;
}

static const struct transport_link_ops fake_ops = { .send = fake_link_send };

static void
test_links(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct side s;
	struct transport *t;
	struct fake_link la, lb;
	struct transport_stats st;
	struct endpoint to = { .addr = 0xc6120001u, .port = 4000 };
	uint8_t pkt[64], *slot;
	uint16_t va, vb, vc;

	memset(&s, 0, sizeof(s));
	memset(&la, 0, sizeof(la));
	memset(&lb, 0, sizeof(lb));
	memset(pkt, 0xab, sizeof(pkt));
	t = transport_new(loop, 0, recv_cb, &s);
	CHECK(t != NULL);
	if (!t)
		return;
	va = transport_link_add(t, &fake_ops, &la);
	vb = transport_link_add(t, &fake_ops, &lb);
	CHECK(va != 0 && vb != 0 && va != vb);

	to.via = vb;
	CHECK_EQ(transport_send(t, &to, pkt, 10), 0);
	CHECK_EQ(lb.sent, 1);
	CHECK_EQ(la.sent, 0);
	CHECK_EQ(lb.last_len, 10);
	CHECK(lb.last_to.addr == to.addr && lb.last_to.port == 4000 && lb.last_to.via == vb);
	/* The zero-copy path: built in the slot, sent by commit; len 0 abandons. */
	to.via = va;
	slot = transport_alloc(t, &to);
	CHECK(slot != NULL);
	memset(slot, 0xab, 33);
	transport_commit(t, 33);
	CHECK_EQ(la.sent, 1);
	CHECK_EQ(la.last_len, 33);
	slot = transport_alloc(t, &to);
	transport_commit(t, 0);
	CHECK_EQ(la.sent, 1);

	/* In from a link: delivered with its via. */
	transport_link_input(t, va, 0xc6120002u, 5000, pkt, 20);
	CHECK_EQ(s.last_len, 20);
	CHECK(s.last_from.addr == 0xc6120002u && s.last_from.port == 5000 &&
	    s.last_from.via == va);

	/* A refusing link and a deleted one count as drops; the via is not reused at once. */
	la.fail = 1;
	CHECK_EQ(transport_send(t, &to, pkt, 10), 0);
	transport_link_del(t, vb);
	to.via = vb;
	CHECK_EQ(transport_send(t, &to, pkt, 10), 0);
	CHECK_EQ(lb.sent, 1);
	vc = transport_link_add(t, &fake_ops, &lb);
	CHECK(vc != 0 && vc != va && vc != vb);
	transport_get_stats(t, &st);
	CHECK_EQ(st.tx_dropped, 2);
	CHECK_EQ(st.link_tx, 2);
	CHECK_EQ(st.link_rx, 1);
	CHECK_EQ(st.links, 2);
	transport_free(t);
	ev_loop_destroy(loop);
}

int
main(void)
{
	RUN(test_exchange);
	RUN(test_limits);
	RUN(test_local_endpoints);
	RUN(test_links);
	return unit_finish();
}
