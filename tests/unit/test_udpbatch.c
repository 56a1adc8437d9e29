/*
 * Unit tests for base/udpbatch on real sockets: datagrams to two UDP receivers on 127.0.0.1,
 * in runs of equal and different sizes (which is what GSO grouping must get right: the
 * receiver sees every datagram with its own boundaries), arrive intact and in order per
 * destination; nothing leaves before the flush (or the loop's prepare pass); an empty flush
 * is harmless; a full ring flushes itself; a datagram larger than a slot keeps its place; a
 * connected socket needs no address; a kernel that refuses GSO gets the same datagrams one
 * by one. Kernel pushback is tested on an AF_UNIX datagram pair,
 * the one socket type where a full receiver makes the sender wait (EAGAIN): what is queued is
 * kept, what does not fit in the ring is dropped and counted, and the write watcher finishes
 * the job once the receiver drains. A full UDP receiver, by contrast, drops silently in the
 * kernel: the batch counts the datagrams as sent and is never blocked.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/udpbatch.h"
#include "tests/unit/unit.h"

enum { SLOT = 1472, MAXD = 4096 };

struct rx {
	int fd;
	struct sockaddr_in addr;
};

static int
udp_socket(struct sockaddr_in *bound, int rcvbuf)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	if (rcvbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	if (bound)
		*bound = sin;
	return fd;
}

static void
rx_open(struct rx *r)
{
	r->fd = udp_socket(&r->addr, 4 << 20);
}

/* Datagram seq of stream id: id, seq (big endian), then a pattern; at least 5 bytes. */
static void
fill(uint8_t *p, size_t len, uint8_t id, uint32_t seq)
{
	size_t i;

	p[0] = id;
	p[1] = seq >> 24;
	p[2] = seq >> 16;
	p[3] = seq >> 8;
	p[4] = seq;
	for (i = 5; i < len; i++)
		p[i] = (uint8_t)(seq * 7 + i);
}

static int
check_dgram(const uint8_t *p, size_t len, size_t want_len, uint8_t id, uint32_t seq)
{
	uint8_t want[MAXD];

	if (len != want_len)
		return 0;
	fill(want, want_len, id, seq);
	return memcmp(p, want, len) == 0;
}

/* Receives the next datagram without waiting: its length, or -1 if none. */
static ssize_t
rx_next(int fd, uint8_t *buf)
{
	return recv(fd, buf, MAXD, MSG_DONTWAIT);
}

static struct udpbatch *
batch(struct ev_loop *loop, int fd, unsigned slots, size_t slot_size, int persistent)
{
	struct udpbatch_conf c = { slots, slot_size, persistent, "test", NULL };

	return udpbatch_new(loop, fd, &c, NULL);
}

/* One planned datagram: destination 0 (A) or 1 (B), and its length. */
struct plan {
	int dst;
	size_t len;
};

/*
 * Queues the plan (alternately through udpbatch_slot/commit and udpbatch_add; zero-length
 * datagrams only through add, since commit(0) abandons), checks that nothing arrived yet,
 * lets flush_fn send it, and checks every datagram at both receivers.
 */
static void
run_plan(const struct plan *p, size_t n, void (*flush_fn)(struct udpbatch *, struct ev_loop *),
    int persistent)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rx r[2];
	struct udpbatch *b;
	struct udpbatch_stats st;
	uint32_t seq[2] = { 0, 0 }, got[2] = { 0, 0 };
	uint8_t buf[MAXD];
	int tx = udp_socket(NULL, 0);
	size_t i;
	int d;

	rx_open(&r[0]);
	rx_open(&r[1]);
	b = batch(loop, tx, 256, SLOT, persistent);
	CHECK(b != NULL);
	for (i = 0; i < n; i++) {
		const struct sockaddr *to = (const struct sockaddr *)&r[p[i].dst].addr;

		if (i % 2 == 0 && p[i].len > 0) {
			uint8_t *slot = udpbatch_slot(b, to, sizeof(r[0].addr));

			CHECK(slot != NULL);
			fill(slot, p[i].len, (uint8_t)p[i].dst, seq[p[i].dst]++);
			udpbatch_commit(b, p[i].len);
		} else {
			fill(buf, p[i].len, (uint8_t)p[i].dst, seq[p[i].dst]++);
			CHECK_EQ(udpbatch_add(b, to, sizeof(r[0].addr), buf, p[i].len), 0);
		}
	}
	CHECK_EQ(udpbatch_pending(b), n);
	CHECK_EQ(rx_next(r[0].fd, buf), -1);    /* batched: nothing left yet */
	CHECK_EQ(rx_next(r[1].fd, buf), -1);

	flush_fn(b, loop);
	CHECK_EQ(udpbatch_pending(b), 0);

	/* Each receiver sees its own datagrams, in order, with their own lengths. */
	for (d = 0; d < 2; d++) {
		for (i = 0; i < n; i++) {
			ssize_t l;

			if (p[i].dst != d)
				continue;
			l = rx_next(r[d].fd, buf);
			CHECK(l >= 0);
			if (l < 0)
				break;
			if (!check_dgram(buf, (size_t)l, p[i].len, (uint8_t)d, got[d]))
				fprintf(stderr, "dst %d datagram %u: bad (len %zd, want %zu)\n", d,
				    got[d], l, p[i].len);
			CHECK(check_dgram(buf, (size_t)l, p[i].len, (uint8_t)d, got[d]));
			got[d]++;
		}
		CHECK_EQ(rx_next(r[d].fd, buf), -1);    /* nothing more */
		CHECK_EQ(got[d], seq[d]);
	}
	udpbatch_get_stats(b, &st);
	printf("# %zu datagrams in %llu sendmmsg, gso=%d\n", n, (unsigned long long)st.batches,
	    st.gso);
	CHECK_EQ(st.packets, n);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.blocked, 0);
	CHECK(st.batches >= 1);
	udpbatch_free(b);
	close(tx);
	close(r[0].fd);
	close(r[1].fd);
	ev_loop_destroy(loop);
}

static void
flush_now(struct udpbatch *b, struct ev_loop *loop)
{
	(void)loop;
	udpbatch_flush(b);
}

/* The batch's prepare watcher sends before the loop would block. */
static void
flush_by_loop(struct udpbatch *b, struct ev_loop *loop)
{
	(void)b;
	ev_run(loop, EVRUN_NOWAIT);
}

/*
 * Runs GSO must split correctly: equal sizes group, a shorter one ends a group, a longer one
 * or another destination starts a new one, and a zero-length datagram is its own.
 */
static const struct plan mixed[] = {
	{ 0, 200 }, { 0, 200 }, { 0, 200 }, { 0, 200 }, { 0, 100 },     /* short one ends it */
	{ 0, 200 }, { 0, 300 }, { 0, 300 },                             /* longer: new group */
	{ 1, 300 }, { 1, 300 }, { 0, 300 }, { 1, 300 }, { 0, 300 },     /* alternating */
	{ 1, 1000 }, { 1, 1000 }, { 1, 1000 }, { 1, 5 }, { 1, 1000 },
	{ 0, SLOT }, { 0, SLOT }, { 0, SLOT }, { 0, 1 }, { 0, 0 }, { 0, 64 }, { 0, 64 },
	{ 1, 64 }, { 1, 64 }, { 1, 64 }, { 1, 64 }, { 1, 64 }, { 1, 64 }, { 1, 64 },
};

static void
test_mixed_flush(void)
{
	run_plan(mixed, sizeof(mixed) / sizeof(mixed[0]), flush_now, 0);
}

static void
test_mixed_loop_on_demand(void)
{
	run_plan(mixed, sizeof(mixed) / sizeof(mixed[0]), flush_by_loop, 0);
}

static void
test_mixed_loop_persistent(void)
{
	run_plan(mixed, sizeof(mixed) / sizeof(mixed[0]), flush_by_loop, 1);
}

/* More equal datagrams to one destination than one GSO message may carry (64). */
static void
test_long_run(void)
{
	struct plan p[150];
	size_t i;

	for (i = 0; i < 150; i++) {
		p[i].dst = i < 140 ? 0 : 1;
		p[i].len = 120;
	}
	run_plan(p, 150, flush_now, 0);
}

static void
test_empty_flush(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	int tx = udp_socket(NULL, 0);
	struct udpbatch *b = batch(loop, tx, 8, SLOT, 0), *p = batch(loop, tx, 8, SLOT, 1);
	struct udpbatch_stats st;
	struct sockaddr_in to;
	uint8_t *slot;

	CHECK(b != NULL && p != NULL);
	udpbatch_flush(b);
	udpbatch_flush(b);
	CHECK_EQ(udpbatch_pending(b), 0);
	/* Neither an idle on-demand batch nor an (unreferenced) persistent one keeps the
	 * loop alive, and a pass over empty batches sends nothing. */
	CHECK_EQ(ev_run(loop, 0), 0);
	/* A reserved slot that is abandoned queues nothing. */
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons(9);
	slot = udpbatch_slot(b, (struct sockaddr *)&to, sizeof(to));
	CHECK(slot != NULL);
	udpbatch_commit(b, 0);
	CHECK_EQ(udpbatch_pending(b), 0);
	udpbatch_commit(b, 10);         /* nothing reserved: ignored */
	CHECK_EQ(udpbatch_pending(b), 0);
	udpbatch_flush(b);
	udpbatch_get_stats(b, &st);
	CHECK_EQ(st.packets, 0);
	CHECK_EQ(st.batches, 0);
	CHECK_EQ(st.dropped, 0);
	udpbatch_free(b);
	udpbatch_free(p);
	udpbatch_free(NULL);
	close(tx);
	ev_loop_destroy(loop);
}

/* A full ring sends itself at once; nothing waits for the loop. */
static void
test_full_ring_flushes(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rx r;
	int tx = udp_socket(NULL, 0);
	struct udpbatch *b;
	uint8_t buf[MAXD];
	uint32_t i;

	rx_open(&r);
	b = batch(loop, tx, 8, SLOT, 0);
	for (i = 0; i < 7; i++) {
		fill(buf, 100, 0, i);
		CHECK_EQ(udpbatch_add(b, (struct sockaddr *)&r.addr, sizeof(r.addr), buf, 100), 0);
	}
	CHECK_EQ(udpbatch_pending(b), 7);
	CHECK_EQ(rx_next(r.fd, buf), -1);
	fill(buf, 100, 0, 7);
	CHECK_EQ(udpbatch_add(b, (struct sockaddr *)&r.addr, sizeof(r.addr), buf, 100), 0);
	CHECK_EQ(udpbatch_pending(b), 0);
	for (i = 0; i < 8; i++) {
		ssize_t l = rx_next(r.fd, buf);

		CHECK(l == 100 && check_dgram(buf, 100, 100, 0, i));
	}
	udpbatch_free(b);
	close(tx);
	close(r.fd);
	ev_loop_destroy(loop);
}

/* Larger than a slot: sent right after what is queued (order holds), through addv's iovec. */
static void
test_oversized_keeps_order(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rx r;
	int tx = udp_socket(NULL, 0);
	struct udpbatch *b;
	struct udpbatch_stats st;
	uint8_t buf[MAXD], big[3000];
	struct iovec iov[2];
	uint32_t i;

	rx_open(&r);
	b = batch(loop, tx, 16, 2048, 0);
	for (i = 0; i < 3; i++) {
		fill(buf, 500, 0, i);
		CHECK_EQ(udpbatch_add(b, (struct sockaddr *)&r.addr, sizeof(r.addr), buf, 500), 0);
	}
	fill(big, sizeof(big), 0, 3);
	iov[0].iov_base = big;
	iov[0].iov_len = 10;
	iov[1].iov_base = big + 10;
	iov[1].iov_len = sizeof(big) - 10;
	CHECK_EQ(udpbatch_addv(b, (struct sockaddr *)&r.addr, sizeof(r.addr), iov, 2), 0);
	CHECK_EQ(udpbatch_pending(b), 0);
	/* A two-part datagram that fits is joined in its slot. */
	fill(buf, 700, 0, 4);
	iov[0].iov_base = buf;
	iov[0].iov_len = 5;
	iov[1].iov_base = buf + 5;
	iov[1].iov_len = 695;
	CHECK_EQ(udpbatch_addv(b, (struct sockaddr *)&r.addr, sizeof(r.addr), iov, 2), 0);
	CHECK_EQ(udpbatch_pending(b), 1);
	udpbatch_flush(b);
	for (i = 0; i < 5; i++) {
		size_t want = i < 3 ? 500 : i == 3 ? sizeof(big) : 700;
		ssize_t l = rx_next(r.fd, buf);

		CHECK(l >= 0 && check_dgram(buf, (size_t)l, want, 0, i));
	}
	udpbatch_get_stats(b, &st);
	CHECK_EQ(st.packets, 5);
	udpbatch_free(b);
	close(tx);
	close(r.fd);
	ev_loop_destroy(loop);
}

/* A connected socket (as ports/expose.c uses): no destination per datagram. */
static void
test_connected(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rx r;
	int tx = udp_socket(NULL, 0);
	struct udpbatch *b;
	uint8_t buf[MAXD];
	uint32_t i;

	rx_open(&r);
	CHECK(connect(tx, (struct sockaddr *)&r.addr, sizeof(r.addr)) == 0);
	b = batch(loop, tx, 64, 2048, 0);
	for (i = 0; i < 40; i++) {
		size_t len = i < 30 ? 64 : 90;

		fill(buf, len, 0, i);
		CHECK_EQ(udpbatch_add(b, NULL, 0, buf, len), 0);
	}
	ev_run(loop, EVRUN_NOWAIT);
	for (i = 0; i < 40; i++) {
		ssize_t l = rx_next(r.fd, buf);

		CHECK(l >= 0 && check_dgram(buf, (size_t)l, i < 30 ? 64 : 90, 0, i));
	}
	CHECK_EQ(rx_next(r.fd, buf), -1);
	udpbatch_free(b);
	close(tx);
	close(r.fd);
	ev_loop_destroy(loop);
}

struct drops {
	unsigned n;
	int err;
};

static void
count_drops(void *arg, int err, unsigned n)
{
	struct drops *d = arg;

	d->n += n;
	d->err = err;
}

/*
 * The receiver is full and the kernel says EAGAIN: the batch keeps what it queued, waits for
 * writability, drops (and counts) only what no longer fits in the ring, and finishes when the
 * receiver drains, in order and without gaps.
 */
static void
test_pushback(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct udpbatch_conf c = { 16, 256, 0, "test", count_drops };
	struct drops dr = { 0, 0 };
	struct udpbatch *b;
	struct udpbatch_stats st;
	uint8_t buf[MAXD];
	uint32_t sent = 0, got = 0, refused = 0, i;
	int sv[2], round;
	ssize_t l;

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	b = udpbatch_new(loop, sv[0], &c, &dr);
	CHECK(b != NULL);
	/* Far more than the socket takes (a connected AF_UNIX pair is bounded by its send
	 * buffer) plus the ring. */
	for (i = 0; i < 2000; i++) {
		fill(buf, 200, 0, sent);
		if (udpbatch_add(b, NULL, 0, buf, 200) == 0)
			sent++;
		else
			refused++;
	}
	udpbatch_get_stats(b, &st);
	CHECK(st.blocked >= 1);
	CHECK(refused > 0);
	CHECK_EQ(st.dropped, refused);
	CHECK_EQ(udpbatch_pending(b), 16);      /* the ring is full and kept */
	CHECK_EQ(dr.n, 0);                      /* pushback is not a refusal */
	/* An explicit flush while the kernel is full does not spin on EAGAIN. */
	udpbatch_flush(b);
	udpbatch_get_stats(b, &st);
	CHECK_EQ(udpbatch_pending(b), 16);

	/* Drain the receiver and let the write watcher resume, until everything arrived. */
	for (round = 0; round < 1000 && got < sent; round++) {
		while ((l = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
			if (!check_dgram(buf, (size_t)l, 200, 0, got))
				fprintf(stderr, "pushback: datagram %u bad\n", got);
			CHECK(check_dgram(buf, (size_t)l, 200, 0, got));
			got++;
		}
		ev_run(loop, EVRUN_NOWAIT);
	}
	CHECK_EQ(got, sent);
	CHECK_EQ(udpbatch_pending(b), 0);
	udpbatch_get_stats(b, &st);
	CHECK_EQ(st.packets, sent);
	CHECK_EQ(st.packets + st.dropped, 2000);
	/* The loop has nothing left to wait for. */
	CHECK_EQ(ev_run(loop, 0), 0);
	udpbatch_free(b);
	close(sv[0]);
	close(sv[1]);
	ev_loop_destroy(loop);
}

/*
 * The kernel refuses GSO on a socket without UDP checksums (SO_NO_CHECK: EINVAL), the way a
 * route without checksum offload does (EIO): the batch switches GSO off and resends the same
 * datagrams one by one, none lost, none doubled.
 */
static void
test_gso_refused_fallback(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct rx r;
	int tx = udp_socket(NULL, 0), one = 1;
	struct udpbatch *b;
	struct udpbatch_stats st;
	uint8_t buf[MAXD];
	uint32_t i;

	rx_open(&r);
	b = batch(loop, tx, 64, SLOT, 0);
	udpbatch_get_stats(b, &st);
	if (!st.gso || setsockopt(tx, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) != 0) {
		printf("# skipped: no GSO or no SO_NO_CHECK here\n");
		udpbatch_free(b);
		close(tx);
		close(r.fd);
		ev_loop_destroy(loop);
		return;
	}
	for (i = 0; i < 20; i++) {
		fill(buf, 300, 0, i);
		CHECK_EQ(udpbatch_add(b, (struct sockaddr *)&r.addr, sizeof(r.addr), buf, 300), 0);
	}
	udpbatch_flush(b);
	for (i = 0; i < 20; i++) {
		ssize_t l = rx_next(r.fd, buf);

		CHECK(l >= 0 && check_dgram(buf, (size_t)l, 300, 0, i));
	}
	CHECK_EQ(rx_next(r.fd, buf), -1);
	udpbatch_get_stats(b, &st);
	CHECK_EQ(st.gso, 0);
	CHECK_EQ(st.packets, 20);
	CHECK_EQ(st.dropped, 0);
	udpbatch_free(b);
	close(tx);
	close(r.fd);
	ev_loop_destroy(loop);
}

/* What the kernel never took when the batch is freed is reported, not lost silently. */
static void
test_free_reports_unsent(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct udpbatch_conf c = { 64, 256, 1, "test", count_drops };
	struct drops dr = { 0, 0 };
	struct udpbatch *b;
	uint8_t buf[256];
	int sv[2], i, ok = 0;

	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	b = udpbatch_new(loop, sv[0], &c, &dr);
	memset(buf, 1, sizeof(buf));
	/* Fill the socket first, so the kernel takes nothing from the batch. */
	while (send(sv[0], buf, 100, MSG_DONTWAIT) == 100)
		;
	for (i = 0; i < 60; i++)
		ok += udpbatch_add(b, NULL, 0, buf, 100) == 0;
	CHECK_EQ(ok, 60);
	udpbatch_flush(b);
	CHECK_EQ(udpbatch_pending(b), 60);
	udpbatch_free(b);
	CHECK_EQ(dr.n, 60);
	CHECK_EQ(dr.err, EAGAIN);
	close(sv[0]);
	close(sv[1]);
	ev_loop_destroy(loop);
}

/* A datagram the kernel refuses (ECONNREFUSED after an ICMP error) costs only itself. */
static void
test_refused_reported(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct udpbatch_conf c = { 64, 2048, 0, "test", count_drops };
	struct drops dr = { 0, 0 };
	struct sockaddr_in dead;
	struct udpbatch *b;
	struct udpbatch_stats st;
	uint8_t buf[64];
	int tx = udp_socket(NULL, 0), gone = udp_socket(&dead, 0), i;

	close(gone);                    /* nobody listens there any more */
	CHECK(connect(tx, (struct sockaddr *)&dead, sizeof(dead)) == 0);
	b = udpbatch_new(loop, tx, &c, &dr);
	memset(buf, 2, sizeof(buf));
	/* The first one draws the ICMP port unreachable, reported on the next send. */
	CHECK_EQ(udpbatch_add(b, NULL, 0, buf, sizeof(buf)), 0);
	udpbatch_flush(b);
	for (i = 0; i < 5; i++)
		CHECK_EQ(udpbatch_add(b, NULL, 0, buf, sizeof(buf)), 0);
	udpbatch_flush(b);
	CHECK_EQ(udpbatch_pending(b), 0);
	udpbatch_get_stats(b, &st);
	CHECK(dr.n >= 1);
	CHECK_EQ(dr.err, ECONNREFUSED);
	CHECK_EQ(st.dropped, dr.n);
	CHECK_EQ(st.packets + st.dropped, 6);
	udpbatch_free(b);
	close(tx);
	ev_loop_destroy(loop);
}

/*
 * A full UDP receiver drops in its kernel, invisibly to the sender: the batch counts the
 * datagrams as sent, is never blocked, and what does arrive is intact and in order.
 */
static void
test_udp_receiver_full(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sockaddr_in addr;
	int rx = udp_socket(&addr, 1), tx = udp_socket(NULL, 0);
	struct udpbatch *b = batch(loop, tx, 64, SLOT, 0);
	struct udpbatch_stats st;
	uint8_t buf[MAXD];
	uint32_t i, got = 0, last = 0;
	ssize_t l;

	for (i = 0; i < 500; i++) {
		fill(buf, 1000, 0, i);
		CHECK_EQ(udpbatch_add(b, (struct sockaddr *)&addr, sizeof(addr), buf, 1000), 0);
	}
	udpbatch_flush(b);
	udpbatch_get_stats(b, &st);
	CHECK_EQ(st.packets, 500);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.blocked, 0);
	while ((l = rx_next(rx, buf)) >= 0) {
		uint32_t seq = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 |
		    (uint32_t)buf[3] << 8 | buf[4];

		CHECK(check_dgram(buf, (size_t)l, 1000, 0, seq));
		CHECK(got == 0 || seq > last);
		last = seq;
		got++;
	}
	CHECK(got > 0 && got < 500);
	udpbatch_free(b);
	close(tx);
	close(rx);
	ev_loop_destroy(loop);
}

int
main(void)
{
	RUN(test_mixed_flush);
	RUN(test_mixed_loop_on_demand);
	RUN(test_mixed_loop_persistent);
	RUN(test_long_run);
	RUN(test_empty_flush);
	RUN(test_full_ring_flushes);
	RUN(test_oversized_keeps_order);
	RUN(test_connected);
	RUN(test_pushback);
	RUN(test_gso_refused_fallback);
	RUN(test_free_reports_unsent);
	RUN(test_refused_reported);
	RUN(test_udp_receiver_full);
	return unit_finish();
}
