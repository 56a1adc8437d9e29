/*
 * Unit tests for core/birthday: a real transport and a set of real sockets on loopback, a plain
 * UDP socket as the far side. The set sends from K distinct ports; what one socket receives
 * reaches the transport's callback with that socket's via; a send to {addr, port, via} leaves
 * from that socket; bday_keep leaves one socket (and its link), which then carries batches
 * both ways; the set may be freed or trimmed from inside its own receive callback; the
 * descriptor budget gives fewer sockets (or none) when RLIMIT_NOFILE is short.
 * Waits are on events (the loop runs until the datagrams arrived); a guard timer only stops
 * a hang.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/birthday.h"
#include "core/transport.h"
#include "tests/unit/unit.h"

enum { LO = 0x7f000001, K = 8, RESERVE = 16 };

enum on_rx { RX_COUNT, RX_FREE, RX_KEEP };

struct fix {
	struct ev_loop *loop;
	struct transport *t;
	struct bday *b;
	int peer;                       /* the far side: a plain socket on 127.0.0.1 */
	uint16_t peer_port;
	unsigned got;                   /* datagrams the transport callback saw */
	struct endpoint from;           /* the last one's source */
	enum on_rx on_rx;
	ev_io peer_io;
	unsigned peer_got;              /* datagrams the far side read */
	uint16_t peer_from;             /* source port of the last one */
	unsigned peer_want, want;       /* run the loop until these counts */
	ev_timer guard;
	int timed_out;
};

static void
recv_cb(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct fix *f = arg;

	(void)pkt;
	(void)len;
	f->got++;
	f->from = *from;
	if (f->on_rx == RX_FREE) {
		bday_free(f->b);
		f->b = NULL;
	} else if (f->on_rx == RX_KEEP) {
		bday_keep(f->b, from->via);
	}
	if (f->got >= f->want && f->peer_got >= f->peer_want)
		ev_break(f->loop, EVBREAK_ONE);
}

static void
peer_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fix *f = w->data;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	uint8_t buf[2048];

	(void)revents;
	while (recvfrom(f->peer, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&sin,
	    &sl) >= 0) {
		f->peer_got++;
		f->peer_from = ntohs(sin.sin_port);
		sl = sizeof(sin);
	}
	if (f->got >= f->want && f->peer_got >= f->peer_want)
		ev_break(loop, EVBREAK_ONE);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fix *f = w->data;

	(void)revents;
	f->timed_out = 1;
	ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until the callback saw `got` and the far side `peer_got` datagrams. */
static void
run_until(struct fix *f, unsigned got, unsigned peer_got)
{
	f->want = got;
	f->peer_want = peer_got;
	if (f->got >= got && f->peer_got >= peer_got)
		return;
	ev_timer_set(&f->guard, 5.0, 0);
	ev_timer_start(f->loop, &f->guard);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
	CHECK(!f->timed_out);
}

static void
fix_init(struct fix *f)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->t = transport_new(f->loop, 0, recv_cb, f);
	CHECK(f->t != NULL);
	f->peer = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(LO);
	CHECK_EQ(bind(f->peer, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ(getsockname(f->peer, (struct sockaddr *)&sin, &sl), 0);
	f->peer_port = ntohs(sin.sin_port);
	ev_io_init(&f->peer_io, peer_cb, f->peer, EV_READ);
	f->peer_io.data = f;
	ev_io_start(f->loop, &f->peer_io);
	ev_timer_init(&f->guard, guard_cb, 5.0, 0);
	f->guard.data = f;
}

static void
fix_done(struct fix *f)
{
	bday_free(f->b);
	ev_io_stop(f->loop, &f->peer_io);
	close(f->peer);
	transport_free(f->t);
	ev_loop_destroy(f->loop);
}

/* The far side sends n datagrams to our 127.0.0.1:port. */
static void
peer_send(struct fix *f, uint16_t port, unsigned n)
{
	struct sockaddr_in sin;
	uint8_t pkt[100];
	unsigned i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(LO);
	sin.sin_port = htons(port);
	memset(pkt, 0xab, sizeof(pkt));
	for (i = 0; i < n; i++)
		CHECK_EQ(sendto(f->peer, pkt, sizeof(pkt), 0, (struct sockaddr *)&sin, sizeof(sin)),
		    (ssize_t)sizeof(pkt));
}

static unsigned
links(const struct fix *f)
{
	struct transport_stats st;

	transport_get_stats(f->t, &st);
	return st.links;
}

/* Every socket sends, each from its own port; replies come back with the socket's via. */
static void
test_set(void)
{
	struct fix f;
	struct endpoint to, via3;
	uint16_t ports[K], vias[K];
	unsigned i, j, n = 0;
	const uint8_t hello[5] = "hello";

	fix_init(&f);
	f.b = bday_new(f.loop, f.t, K, RESERVE);
	CHECK(f.b != NULL);
	CHECK_EQ(bday_count(f.b), K);
	CHECK_EQ(links(&f), K);
	CHECK_EQ(bday_winner(f.b), 0);

	to = (struct endpoint){ .addr = LO, .port = f.peer_port };
	CHECK_EQ(bday_send_all(f.b, &to, hello, sizeof(hello)), K);
	/* K distinct source ports, each the port of one of the set's vias (1..K: fresh
	 * transport). */
	for (i = 0; i < K; i++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		uint8_t buf[64];

		while (recvfrom(f.peer, buf, sizeof(buf), 0, (struct sockaddr *)&sin, &sl) < 0)
			;
		ports[n] = ntohs(sin.sin_port);
		for (j = 0; j < n; j++)
			CHECK(ports[j] != ports[n]);
		n++;
	}
	for (i = 0; i < K; i++) {
		vias[i] = (uint16_t)(i + 1);
		CHECK(bday_owns(f.b, vias[i]));
		CHECK(bday_port(f.b, vias[i]) != 0);
	}
	CHECK(!bday_owns(f.b, K + 1));
	CHECK(!bday_owns(f.b, 0));

	/* A reply to socket 3 reaches the callback as from {peer, via 3}. */
	peer_send(&f, bday_port(f.b, vias[3]), 1);
	run_until(&f, 1, 0);
	CHECK_EQ(f.from.via, vias[3]);
	CHECK_EQ(f.from.addr, LO);
	CHECK_EQ(f.from.port, f.peer_port);

	/* And a send to that endpoint leaves from socket 3. */
	via3 = f.from;
	CHECK_EQ(transport_send(f.t, &via3, hello, sizeof(hello)), 0);
	run_until(&f, 1, 1);
	CHECK_EQ(f.peer_from, bday_port(f.b, vias[3]));

	/* Socket 3 wins: the others and their links go. */
	bday_keep(f.b, vias[3]);
	CHECK_EQ(bday_winner(f.b), vias[3]);
	CHECK_EQ(bday_count(f.b), 1);
	CHECK_EQ(links(&f), 1);
	CHECK(!bday_owns(f.b, vias[2]));
	bday_keep(f.b, vias[2]);        /* not in the set (any more): nothing changes */
	CHECK_EQ(bday_winner(f.b), vias[3]);

	/* The winner carries data: a burst out (batched), a burst in (several recvmmsg). */
	for (i = 0; i < 100; i++)
		transport_send(f.t, &via3, hello, sizeof(hello));
	run_until(&f, 1, 101);
	CHECK_EQ(f.peer_from, bday_port(f.b, vias[3]));
	peer_send(&f, bday_port(f.b, vias[3]), 40);
	run_until(&f, 41, 101);
	CHECK_EQ(f.from.via, vias[3]);

	bday_free(f.b);
	f.b = NULL;
	CHECK_EQ(links(&f), 0);
	fix_done(&f);
}

/* The owner may free the set, or keep one socket, from inside a datagram's delivery. */
static void
test_inside_receive(void)
{
	struct fix f;
	uint16_t port;

	fix_init(&f);
	f.b = bday_new(f.loop, f.t, K, RESERVE);
	f.on_rx = RX_FREE;
	port = bday_port(f.b, 2);
	peer_send(&f, port, 3);         /* three in one batch: the first frees the set */
	run_until(&f, 1, 0);
	CHECK(f.b == NULL);
	CHECK_EQ(links(&f), 0);
	ev_run(f.loop, EVRUN_NOWAIT);
	CHECK_EQ(f.got, 1);
	fix_done(&f);

	fix_init(&f);
	f.b = bday_new(f.loop, f.t, K, RESERVE);
	f.on_rx = RX_KEEP;
	peer_send(&f, bday_port(f.b, 5), 2);
	run_until(&f, 2, 0);            /* both: the kept socket goes on reading */
	CHECK_EQ(bday_winner(f.b), 5);
	CHECK_EQ(bday_count(f.b), 1);
	CHECK_EQ(links(&f), 1);
	fix_done(&f);
}

static unsigned
fds_open(void)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");

	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n - 1;                   /* the directory's own */
}

/* Short of descriptors: fewer sockets, never into the reserve; none at all: NULL. */
static void
test_fd_budget(void)
{
	struct rlimit old, rl;
	struct fix f;
	unsigned used;

	fix_init(&f);
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
	used = fds_open();
	rl = old;
	rl.rlim_cur = used + RESERVE + 5;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	f.b = bday_new(f.loop, f.t, 256, RESERVE);
	CHECK(f.b != NULL);
	/* The budget counts the /proc/self/fd directory it reads, so one fewer may come. */
	CHECK(bday_count(f.b) >= 4 && bday_count(f.b) <= 5);
	CHECK(fds_open() + RESERVE <= rl.rlim_cur);
	bday_free(f.b);

	rl.rlim_cur = used + RESERVE;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	f.b = bday_new(f.loop, f.t, 256, RESERVE);
	CHECK(f.b == NULL);
	CHECK_EQ(links(&f), 0);
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
	fix_done(&f);
}

int
main(void)
{
	RUN(test_set);
	RUN(test_inside_receive);
	RUN(test_fd_budget);
	return unit_finish();
}
