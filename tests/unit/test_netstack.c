/*
 * test_netstack: end to end over two real netstacks. lwIP is a per-process singleton, so
 * node B runs in a forked child and node A in this process, each with its own ev loop; the
 * "wire" between them is a SOCK_DGRAM socketpair carrying raw IPv4 packets (ops->output
 * queues, an ev_io flushes; netstack_input on the other end).
 *
 * B (5.0.0.2) runs: a real TCP echo server on 127.0.0.1, ns_listen(7) spliced to it,
 * ns_listen(8) whose open_fd refuses, ns_listen(9) whose open_fd connects to a closed local
 * port, and a UDP echo on port 7 that prefixes the destination address it saw.
 * A (5.0.0.1) drives everything through ns_splice_connect and ns_udp from socketpair fds.
 * Both netstacks start without an address, as shoald's does before its first WELCOME: B opens
 * its listeners and UDP port first and gets its address afterwards (every test below then
 * reaches them), and A checks that nothing leaves before it has one.
 * Nothing here is timed; alarm() turns a hang into a failure.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "netstack/netstack.h"
#include "tests/unit/unit.h"

#define ADDR_A 0x05000001u
#define ADDR_B 0x05000002u
#define ADDR_NOBODY 0x05000003u
#define SUBNET_BCAST 0x05ffffffu

enum { BIG = 20 * 1024 * 1024, WIRE_QUEUE_MAX = 64 * 1024 * 1024 };

/* --- the wire: a queue of packets per direction, flushed when the socket is writable --- */

struct pkt {
	struct pkt *next;
	size_t len;
	uint8_t data[];
};

struct wire {
	struct ev_loop *loop;
	struct netstack *ns;
	int fd;
	ev_io rio, wio;
	struct pkt *head, *tail;
	size_t queued;
};

static void
wire_output(void *arg, uint32_t dst, const uint8_t *data, size_t len)
{
	struct wire *w = arg;
	struct pkt *p;

	(void)dst;
	if (w->queued + len > WIRE_QUEUE_MAX || (p = malloc(sizeof(*p) + len)) == NULL)
		return;         /* a full link drops, like a real one */
	p->next = NULL;
	p->len = len;
	memcpy(p->data, data, len);
	if (w->tail)
		w->tail->next = p;
	else
		w->head = p;
	w->tail = p;
	w->queued += len;
	ev_io_start(w->loop, &w->wio);
}

static void
wire_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wire *w = io->data;

	(void)revents;
	while (w->head) {
		struct pkt *p = w->head;

		if (send(w->fd, p->data, p->len, MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
				return;
		}
		w->head = p->next;
		if (!w->head)
			w->tail = NULL;
		w->queued -= p->len;
		free(p);
	}
	ev_io_stop(loop, io);
}

static void
wire_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct wire *w = io->data;
	uint8_t buf[65536];
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 64; i++) {
		ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0)
			break;
		netstack_input(w->ns, buf, (size_t)n);
	}
}

static const struct netstack_ops wire_ops = { .output = wire_output };

static struct netstack *
wire_setup(struct wire *w, struct ev_loop *loop, int fd, uint32_t addr)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->fd = fd;
	w->ns = netstack_new(loop, addr, 8, 1400, &wire_ops, w);
	ev_io_init(&w->rio, wire_read_cb, fd, EV_READ);
	ev_io_init(&w->wio, wire_write_cb, fd, EV_WRITE);
	w->rio.data = w->wio.data = w;
	ev_io_start(loop, &w->rio);
	return w->ns;
}

/* ====================================================================================== */
/* Node B (child process)                                                                 */
/* ====================================================================================== */

/* A plain TCP echo server on 127.0.0.1 with backpressure and half-close. */
struct echo_conn {
	ev_io rio, wio;
	int fd;
	uint8_t buf[65536];
	size_t len, off;
	bool eof;
};

static void
echo_close(struct ev_loop *loop, struct echo_conn *c)
{
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	close(c->fd);
	free(c);
}

static void
echo_flush(struct ev_loop *loop, struct echo_conn *c)
{
	while (c->off < c->len) {
		ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);

		if (n < 0) {
			if (errno == EAGAIN) {
				ev_io_stop(loop, &c->rio);
				ev_io_start(loop, &c->wio);
				return;
			}
			echo_close(loop, c);
			return;
		}
		c->off += (size_t)n;
	}
	c->len = c->off = 0;
	ev_io_stop(loop, &c->wio);
	if (c->eof) {
		shutdown(c->fd, SHUT_WR);
		ev_io_start(loop, &c->rio);     /* wait for the peer to close */
	} else {
		ev_io_start(loop, &c->rio);
	}
}

static void
echo_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct echo_conn *c = io->data;
	ssize_t n;

	(void)revents;
	n = read(c->fd, c->buf, sizeof(c->buf));
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		if (c->eof || n < 0) {
			echo_close(loop, c);
			return;
		}
		c->eof = true;
		shutdown(c->fd, SHUT_WR);
		ev_io_stop(loop, &c->rio);
		/* Keep watching for the final close: read returns 0 again or an error. */
		ev_io_start(loop, &c->rio);
		return;
	}
	c->len = (size_t)n;
	c->off = 0;
	echo_flush(loop, c);
}

static void
echo_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	echo_flush(loop, io->data);
}

static void
echo_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	int fd;

	(void)revents;
	while ((fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct echo_conn *c = calloc(1, sizeof(*c));

		c->fd = fd;
		ev_io_init(&c->rio, echo_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, echo_write_cb, fd, EV_WRITE);
		c->rio.data = c->wio.data = c;
		ev_io_start(loop, &c->rio);
	}
}

static int
tcp_listen_local(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0)
		return -1;
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
connect_local(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t b_echo_port, b_closed_port;

static int
b_open_echo(void *arg, uint32_t peer_ip, uint16_t peer_port)
{
	(void)arg;
	(void)peer_port;
	return peer_ip == ADDR_A ? connect_local(b_echo_port) : -1;
}

static int
b_open_refuse(void *arg, uint32_t peer_ip, uint16_t peer_port)
{
	(void)arg;
	(void)peer_ip;
	(void)peer_port;
	return -1;
}

static int
b_open_closed(void *arg, uint32_t peer_ip, uint16_t peer_port)
{
	(void)arg;
	(void)peer_ip;
	(void)peer_port;
	return connect_local(b_closed_port);
}

static void
b_udp_echo(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, const uint8_t *data,
    size_t len)
{
	struct ns_udp *u = *(struct ns_udp **)arg;
	uint8_t buf[2048];

	if (len > sizeof(buf) - 4)
		return;
	buf[0] = (uint8_t)(dst_ip >> 24);
	buf[1] = (uint8_t)(dst_ip >> 16);
	buf[2] = (uint8_t)(dst_ip >> 8);
	buf[3] = (uint8_t)dst_ip;
	memcpy(buf + 4, data, len);
	ns_udp_sendto(u, src_ip, src_port, buf, len + 4);
}

static void
node_b(int wirefd)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wire w;
	struct netstack *ns;
	struct ns_udp *u = NULL;
	ev_io lio;
	int lfd, cfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(120);
	ns = wire_setup(&w, loop, wirefd, 0);
	lfd = tcp_listen_local(&b_echo_port);
	/* A port nobody listens on: bind, note it, close. */
	cfd = tcp_listen_local(&b_closed_port);
	close(cfd);
	if (ns == NULL || lfd < 0)
		_exit(2);
	ev_io_init(&lio, echo_accept_cb, lfd, EV_READ);
	ev_io_start(loop, &lio);
	if (!ns_listen(ns, 7, b_open_echo, NULL) || !ns_listen(ns, 8, b_open_refuse, NULL) ||
	    !ns_listen(ns, 9, b_open_closed, NULL))
		_exit(3);
	if ((u = ns_udp_bind(ns, 7, b_udp_echo, &u)) == NULL)
		_exit(4);
	/* The address arrives after the listeners were opened (an expose made while the
	 * mediator was unreachable). */
	netstack_set_addr(ns, ADDR_B, 8);
	ev_run(loop, 0);
	_exit(0);
}

/* ====================================================================================== */
/* Node A (this process): the tests                                                       */
/* ====================================================================================== */

static struct ev_loop *loop_a;
static struct wire wire_a;
static struct netstack *ns_a;

static void
timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	*(bool *)t->data = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs A's loop until *done or `secs` pass (a safety net; nothing asserts on time). */
static void
run_until(bool *done, double secs)
{
	bool expired = false;
	ev_timer t;

	ev_timer_init(&t, timeout_cb, secs, 0.);
	t.data = &expired;
	ev_timer_start(loop_a, &t);
	while (!*done && !expired)
		ev_run(loop_a, EVRUN_ONCE);
	ev_timer_stop(loop_a, &t);
}

struct conn_result {
	bool done;
	int err;
	struct ns_splice *sp;
};

static void
connect_cb(void *arg, int err, struct ns_splice *sp)
{
	struct conn_result *r = arg;

	r->err = err;
	r->sp = sp;
	if (err != 0)
		r->done = true;
}

/* Connects A -> ip:port through a socketpair; returns our end (the splice owns the other). */
static int
splice_pair(uint32_t ip, uint16_t port, struct conn_result *r)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->err = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return -1;
	if (ns_splice_connect(ns_a, sv[1], ip, port, connect_cb, r) == NULL) {
		r->err = errno;
		r->done = true;
	}
	return sv[0];
}

/* --- 20 MB both ways through B's echo server --- */

struct bulk {
	int fd;
	ev_io rio, wio;
	uint8_t out[65536];
	size_t out_len, out_off;
	uint64_t sent, rcvd, rng;
	crypto_hash_sha256_state hs_sent, hs_rcvd;
	bool eof, error, done;
};

static void
bulk_fill(struct bulk *b)
{
	size_t n = sizeof(b->out), i;

	if (BIG - b->sent < n)
		n = (size_t)(BIG - b->sent);
	for (i = 0; i < n; i++) {
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		b->out[i] = (uint8_t)b->rng;
	}
	crypto_hash_sha256_update(&b->hs_sent, b->out, n);
	b->out_len = n;
	b->out_off = 0;
	b->sent += n;
}

static void
bulk_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct bulk *b = io->data;

	(void)revents;
	for (;;) {
		ssize_t n;

		if (b->out_off == b->out_len) {
			if (b->sent == BIG) {
				shutdown(b->fd, SHUT_WR);       /* half-close: we still read */
				ev_io_stop(loop, io);
				return;
			}
			bulk_fill(b);
		}
		n = write(b->fd, b->out + b->out_off, b->out_len - b->out_off);
		if (n < 0) {
			if (errno != EAGAIN) {
				b->error = b->done = true;
				ev_io_stop(loop, io);
			}
			return;
		}
		b->out_off += (size_t)n;
	}
}

static void
bulk_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct bulk *b = io->data;
	uint8_t buf[65536];
	ssize_t n;

	(void)revents;
	while ((n = read(b->fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&b->hs_rcvd, buf, (size_t)n);
		b->rcvd += (uint64_t)n;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		b->eof = n == 0;
		b->error = n < 0;
		b->done = true;
		ev_io_stop(loop, io);
		ev_io_stop(loop, &b->wio);
	}
}

static void
test_bulk_echo_20mb(void)
{
	struct conn_result r;
	struct bulk *b = calloc(1, sizeof(*b));
	uint8_t h1[crypto_hash_sha256_BYTES], h2[crypto_hash_sha256_BYTES];
	struct netstack_stats st;

	b->rng = 0x9e3779b97f4a7c15ull;
	crypto_hash_sha256_init(&b->hs_sent);
	crypto_hash_sha256_init(&b->hs_rcvd);
	b->fd = splice_pair(ADDR_B, 7, &r);
	CHECK(b->fd >= 0);
	/* Data may be written before the virtual connect completes: it waits in the pair. */
	ev_io_init(&b->rio, bulk_read_cb, b->fd, EV_READ);
	ev_io_init(&b->wio, bulk_write_cb, b->fd, EV_WRITE);
	b->rio.data = b->wio.data = b;
	ev_io_start(loop_a, &b->rio);
	ev_io_start(loop_a, &b->wio);
	run_until(&b->done, 90);
	CHECK_EQ(r.err, 0);
	CHECK(b->done);
	CHECK(b->eof);
	CHECK(!b->error);
	CHECK_EQ(b->sent, BIG);
	CHECK_EQ(b->rcvd, BIG);
	crypto_hash_sha256_final(&b->hs_sent, h1);
	crypto_hash_sha256_final(&b->hs_rcvd, h2);
	CHECK_MEM(h1, h2, sizeof(h1));
	close(b->fd);
	free(b);
	/* Both directions finished: the splice is gone. */
	netstack_get_stats(ns_a, &st);
	CHECK_EQ(st.tcp_active, 0);
	CHECK(st.out_packets > BIG / 1400);
}

/* --- half-close: our FIN goes first, the reply still comes back, then theirs --- */

static void
test_half_close(void)
{
	struct conn_result r;
	int fd = splice_pair(ADDR_B, 7, &r);
	char buf[64];
	size_t got = 0;
	bool eof = false, expired = false;
	ev_timer t;

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "hello", 5), 5);
	CHECK_EQ(shutdown(fd, SHUT_WR), 0);
	ev_timer_init(&t, timeout_cb, 20., 0.);
	t.data = &expired;
	ev_timer_start(loop_a, &t);
	while (!eof && !expired) {
		ssize_t n;

		ev_run(loop_a, EVRUN_ONCE);
		while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
			got += (size_t)n;
		if (n == 0)
			eof = true;
	}
	ev_timer_stop(loop_a, &t);
	CHECK_EQ(r.err, 0);
	CHECK(eof);
	CHECK_EQ(got, 5);
	CHECK_MEM(buf, "hello", 5);
	close(fd);
}

/* Reads fd until EOF or error; returns true if the connection ended within the safety net. */
static bool
wait_closed(int fd)
{
	bool expired = false, closed = false;
	ev_timer t;
	char buf[256];

	ev_timer_init(&t, timeout_cb, 20., 0.);
	t.data = &expired;
	ev_timer_start(loop_a, &t);
	while (!closed && !expired) {
		ssize_t n;

		ev_run(loop_a, EVRUN_ONCE);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN))
			closed = true;
	}
	ev_timer_stop(loop_a, &t);
	return closed;
}

static void
test_refused(void)
{
	struct conn_result r;
	int fd = splice_pair(ADDR_B, 1234, &r);

	run_until(&r.done, 20);
	CHECK(r.done);
	CHECK_EQ(r.err, ECONNREFUSED);
	/* The netstack closed its end after the callback. */
	CHECK(wait_closed(fd));
	close(fd);
}

static void
test_listener_refuses(void)
{
	struct conn_result r;
	int fd8 = splice_pair(ADDR_B, 8, &r);

	/* The handshake completes before B asks open_fd; its refusal resets us. */
	CHECK(wait_closed(fd8));
	close(fd8);
	/* B's open_fd connects to a closed local port: the virtual connection is reset too. */
	int fd9 = splice_pair(ADDR_B, 9, &r);

	CHECK(wait_closed(fd9));
	close(fd9);
}

static void
test_timeout(void)
{
	struct conn_result r;
	int fd;

	/* Nobody has 5.0.0.3: B drops every SYN (not its address). */
	netstack_set_connect_timeout(ns_a, 0.5);
	fd = splice_pair(ADDR_NOBODY, 80, &r);
	run_until(&r.done, 20);
	CHECK(r.done);
	CHECK_EQ(r.err, ETIMEDOUT);
	CHECK(wait_closed(fd));
	close(fd);
	netstack_set_connect_timeout(ns_a, 10.);

	/* Not a host at all: immediate failure, fd closed. */
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CHECK(ns_splice_connect(ns_a, sv[1], 0xe0000001u, 80, connect_cb, &r) == NULL);
	CHECK_EQ(errno, EHOSTUNREACH);
	CHECK_EQ(read(sv[0], &r, 1), 0);
	close(sv[0]);
}

/* --- UDP --- */

struct udp_result {
	bool done;
	uint32_t src, dst_seen;
	uint16_t sport;
	char text[64];
};

static void
a_udp_recv(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, const uint8_t *data,
    size_t len)
{
	struct udp_result *r = arg;

	(void)dst_ip;
	if (len < 4 || len - 4 >= sizeof(r->text))
		return;
	r->src = src_ip;
	r->sport = src_port;
	r->dst_seen = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
	    (uint32_t)data[2] << 8 | data[3];
	memcpy(r->text, data + 4, len - 4);
	r->text[len - 4] = 0;
	r->done = true;
}

static void
test_udp_echo(void)
{
	static const struct {
		uint32_t dst;
		const char *msg;
	} cases[] = {
		{ ADDR_B, "unicast" },
		{ SUBNET_BCAST, "subnet broadcast" },
		{ 0xffffffffu, "limited broadcast" },
	};
	struct udp_result r;
	struct ns_udp *u = ns_udp_bind(ns_a, 0, a_udp_recv, &r);
	size_t i;

	CHECK(u != NULL);
	CHECK(ns_udp_port(u) != 0);
	for (i = 0; u && i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&r, 0, sizeof(r));
		CHECK_EQ(ns_udp_sendto(u, cases[i].dst, 7, cases[i].msg, strlen(cases[i].msg)), 0);
		run_until(&r.done, 20);
		CHECK(r.done);
		CHECK_EQ(r.src, ADDR_B);
		CHECK_EQ(r.sport, 7);
		CHECK_EQ(r.dst_seen, cases[i].dst);
		CHECK(strcmp(r.text, cases[i].msg) == 0);
	}
	CHECK_EQ(ns_udp_sendto(u, ADDR_B, 7, "x", 70000), -1);
	CHECK_EQ(errno, EMSGSIZE);
	ns_udp_free(u);
}

/* Before our first address: no connect and no datagram may leave (source 0.0.0.0). */
static void
test_before_address(void)
{
	struct conn_result r;
	struct udp_result ur;
	struct ns_udp *u = ns_udp_bind(ns_a, 0, a_udp_recv, &ur);
	int sv[2];

	CHECK(u != NULL);
	CHECK_EQ(ns_udp_sendto(u, ADDR_B, 7, "x", 1), -1);
	CHECK_EQ(errno, ENETUNREACH);
	ns_udp_free(u);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CHECK(ns_splice_connect(ns_a, sv[1], ADDR_B, 7, connect_cb, &r) == NULL);
	CHECK_EQ(errno, ENETUNREACH);
	CHECK_EQ(read(sv[0], &r, 1), 0);        /* the netstack closed its end */
	close(sv[0]);
	netstack_set_addr(ns_a, ADDR_A, 8);
}

static void
test_input_garbage(void)
{
	static const uint8_t junk[][24] = {
		{ 0 },
		{ 0x60, 0, 0, 24 },                     /* IPv6 version */
		{ 0x4f, 0, 0, 24 },                     /* header longer than packet */
		{ 0x45, 0, 0xff, 0xff },                /* total length beyond packet */
	};
	struct netstack_stats before, after;
	size_t i;

	netstack_get_stats(ns_a, &before);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		netstack_input(ns_a, junk[i], sizeof(junk[i]));
	netstack_input(ns_a, junk[0], 3);
	netstack_get_stats(ns_a, &after);
	CHECK_EQ(after.in_packets - before.in_packets, 5);
	CHECK(after.in_dropped - before.in_dropped >= 5);
}

int
main(void)
{
	int sv[2];
	int bufsz = 4 * 1024 * 1024;
	pid_t pid;
	int status = 0, rc;

	signal(SIGPIPE, SIG_IGN);
	alarm(240);
	if (sodium_init() < 0)
		return 1;
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
		return 1;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if ((pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		close(sv[0]);
		node_b(sv[1]);
	}
	close(sv[1]);
	loop_a = ev_loop_new(EVFLAG_AUTO);
	ns_a = wire_setup(&wire_a, loop_a, sv[0], 0);
	CHECK(ns_a != NULL);

	RUN(test_before_address);
	RUN(test_input_garbage);
	RUN(test_udp_echo);
	RUN(test_half_close);
	RUN(test_refused);
	RUN(test_listener_refuses);
	RUN(test_timeout);
	RUN(test_bulk_echo_20mb);

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	rc = unit_finish();
	return rc;
}
