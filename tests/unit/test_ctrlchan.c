/*
 * Unit tests for core/ctrlchan: real sockets (socketpair and TCP on 127.0.0.1) in one libev
 * loop. Both ends as ctrlchans: handshake, 1000 messages each way, a full send queue, a wrong
 * pinned key, free inside callbacks. One end driven by hand with core/noise (a "raw" peer):
 * garbage frames, bad lengths, unknown and malformed messages, EOF.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "crypto/noise.h"
#include "tests/unit/unit.h"

/* One end of a channel under test. */
struct side {
	struct ctrlchan *c;
	int ready, closed, nmsg, bad_order, unexpected;
	uint64_t next_nonce;
	uint8_t rs[KEY_LEN];
	char why[128];
	int free_in_msg;                /* ctrlchan_free from inside on_msg at this count */
	int free_in_close;
	int send_in_ready;              /* send a PONG from on_ready */
	struct msg last;
};

static void
on_ready(void *arg, const uint8_t rs[KEY_LEN])
{
	struct side *s = arg;
	struct msg m;

	s->ready = 1;
	memcpy(s->rs, rs, KEY_LEN);
	if (s->send_in_ready) {
		memset(&m, 0, sizeof(m));
		m.type = MSG_PONG;
		m.u.ping.nonce = 42;
		CHECK_EQ(ctrlchan_send(s->c, &m), 0);
	}
}

static void
on_msg(void *arg, const struct msg *m)
{
	struct side *s = arg;

	s->last = *m;
	if (m->type == MSG_PING) {
		if (m->u.ping.nonce != s->next_nonce)
			s->bad_order++;
		s->next_nonce++;
	} else if (m->type != MSG_PONG) {
		s->unexpected++;
	}
	s->nmsg++;
	if (s->free_in_msg && s->nmsg == s->free_in_msg) {
		ctrlchan_free(s->c);
		s->c = NULL;
	}
}

static void
on_close(void *arg, const char *why)
{
	struct side *s = arg;

	s->closed++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	if (s->free_in_close) {
		ctrlchan_free(s->c);
		s->c = NULL;
	}
}

static const struct ctrlchan_cbs cbs = { on_ready, on_msg, on_close };

/* ---- loop helpers ---- */

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
}

/* Runs the loop until cond(a, b) holds or 5 s pass. Returns 1 if cond held. */
static int
run_until(struct ev_loop *loop, int (*cond)(struct side *, struct side *), struct side *a,
    struct side *b)
{
	ev_timer guard;
	int expired = 0;

	ev_timer_init(&guard, guard_cb, 5.0, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (!cond(a, b) && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return cond(a, b);
}

static int
both_ready(struct side *a, struct side *b)
{
	return a->ready && b->ready;
}

static int
a_closed(struct side *a, struct side *b)
{
	return a->closed > 0;
}

static int
both_closed(struct side *a, struct side *b)
{
	return a->closed > 0 && b->closed > 0;
}

static int
both_1000(struct side *a, struct side *b)
{
	return a->nmsg >= 1000 && b->nmsg >= 1000;
}

/* Spins the loop briefly so pending I/O happens (no condition). */
static void
spin(struct ev_loop *loop, int n)
{
	while (n--)
		ev_run(loop, EVRUN_NOWAIT);
}

static void
mkpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
}

static void
keys(struct noise_keypair *cli, struct noise_keypair *srv)
{
	noise_keypair_generate(cli);
	noise_keypair_generate(srv);
}

/* ---- both ends are ctrlchans ---- */

static void
test_handshake_and_1000_each_way(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	struct msg m;
	int sv[2], i;

	keys(&kc, &ks);
	mkpair(sv);
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, ks.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(a.c && b.c);
	/* Not ready yet: sending is refused. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	CHECK_EQ(ctrlchan_send(a.c, &m), -1);
	CHECK(run_until(loop, both_ready, &a, &b));
	CHECK_MEM(a.rs, ks.pub, KEY_LEN);
	CHECK_MEM(b.rs, kc.pub, KEY_LEN);

	for (i = 0; i < 1000; i++) {
		m.u.ping.nonce = (uint64_t)i;
		CHECK_EQ(ctrlchan_send(a.c, &m), 0);
		CHECK_EQ(ctrlchan_send(b.c, &m), 0);
		/* Interleave the loop so partial reads and writes happen mid-stream. */
		if (i % 97 == 0)
			spin(loop, 1);
	}
	CHECK(run_until(loop, both_1000, &a, &b));
	CHECK_EQ(a.nmsg, 1000);
	CHECK_EQ(b.nmsg, 1000);
	CHECK_EQ(a.bad_order + b.bad_order, 0);
	CHECK_EQ(a.closed + b.closed, 0);

	/* Orderly EOF: free one end, the other sees on_close("eof"). */
	ctrlchan_free(a.c);
	CHECK(run_until(loop, a_closed, &b, &a));
	CHECK(strcmp(b.why, "eof") == 0);
	ctrlchan_free(b.c);
	ev_loop_destroy(loop);
}

static void
test_send_from_on_ready(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	int sv[2];

	keys(&kc, &ks);
	mkpair(sv);
	a.send_in_ready = b.send_in_ready = 1;
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, ks.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_ready, &a, &b));
	spin(loop, 20);
	CHECK_EQ(a.nmsg, 1);
	CHECK_EQ(b.nmsg, 1);
	CHECK_EQ(a.last.type, MSG_PONG);
	CHECK(a.last.u.ping.nonce == 42);
	ctrlchan_free(a.c);
	ctrlchan_free(b.c);
	ev_loop_destroy(loop);
}

static void
test_queue_limit(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	struct msg m;
	int sv[2], sent = 0;

	keys(&kc, &ks);
	mkpair(sv);
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, ks.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_ready, &a, &b));
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	/* Without the loop running nothing drains: the queue fills to 1 MiB. */
	for (;;) {
		m.u.ping.nonce = (uint64_t)sent;
		if (ctrlchan_send(a.c, &m) < 0)
			break;
		sent++;
	}
	/* A PING frame is 2 + 9 + 16 bytes. */
	CHECK_EQ(sent, (1 << 20) / 27);
	while (b.nmsg < sent && !b.closed)
		ev_run(loop, EVRUN_ONCE);
	CHECK_EQ(b.nmsg, sent);
	CHECK_EQ(b.bad_order, 0);
	/* Drained: sending works again. */
	CHECK_EQ(ctrlchan_send(a.c, &m), 0);
	ctrlchan_free(a.c);
	ctrlchan_free(b.c);
	ev_loop_destroy(loop);
}

static void
test_wrong_pinned_key(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks, other;
	struct side a = { 0 }, b = { 0 };
	int sv[2];

	keys(&kc, &ks);
	noise_keypair_generate(&other);
	mkpair(sv);
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, other.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_closed, &a, &b));
	CHECK(!a.ready && !b.ready);
	CHECK(strcmp(b.why, "handshake failed") == 0);
	CHECK(strstr(a.why, "eof during handshake") != NULL);
	ctrlchan_free(a.c);
	ctrlchan_free(b.c);
	ev_loop_destroy(loop);
}

static void
test_free_inside_on_msg(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	struct msg m;
	int sv[2], i;

	keys(&kc, &ks);
	mkpair(sv);
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, ks.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_ready, &a, &b));
	/* Many frames arrive in one recv; b frees itself at the 3rd and must not see more. */
	b.free_in_msg = 3;
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	for (i = 0; i < 50; i++) {
		m.u.ping.nonce = (uint64_t)i;
		CHECK_EQ(ctrlchan_send(a.c, &m), 0);
	}
	CHECK(run_until(loop, a_closed, &a, &b));
	CHECK_EQ(b.nmsg, 3);
	CHECK_EQ(b.closed, 0);          /* no on_close after the user's own free */
	CHECK(b.c == NULL);
	ctrlchan_free(a.c);
	ev_loop_destroy(loop);
}

static void
test_free_inside_on_close(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	int sv[2];

	keys(&kc, &ks);
	mkpair(sv);
	a.c = ctrlchan_new(loop, sv[0], 1, &kc, ks.pub, &cbs, &a);
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_ready, &a, &b));
	b.free_in_close = 1;
	ctrlchan_free(a.c);
	CHECK(run_until(loop, a_closed, &b, &a));
	CHECK_EQ(b.closed, 1);
	CHECK(b.c == NULL);
	spin(loop, 5);
	ev_loop_destroy(loop);
}

/* ---- TCP: non-blocking connect, success and refusal ---- */

static int
tcp_listener(uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
		perror("listener");
		exit(1);
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
tcp_connect_nb(uint16_t port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		/* Loopback may refuse synchronously; the test then hands over an fd whose
		 * SO_ERROR is already consumed, so report through a fresh failed socket. */
		perror("connect");
	}
	return fd;
}

static void
test_tcp_connect(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 }, b = { 0 };
	struct msg m;
	uint16_t port;
	int lfd, cfd, sfd;

	keys(&kc, &ks);
	lfd = tcp_listener(&port);
	cfd = tcp_connect_nb(port);
	a.c = ctrlchan_new(loop, cfd, 1, &kc, ks.pub, &cbs, &a);
	sfd = accept(lfd, NULL, NULL);
	CHECK(sfd >= 0);
	b.c = ctrlchan_new(loop, sfd, 0, &ks, NULL, &cbs, &b);
	CHECK(run_until(loop, both_ready, &a, &b));
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	CHECK_EQ(ctrlchan_send(a.c, &m), 0);
	while (b.nmsg < 1 && !b.closed)
		ev_run(loop, EVRUN_ONCE);
	CHECK_EQ(b.nmsg, 1);
	ctrlchan_free(a.c);
	ctrlchan_free(b.c);
	close(lfd);
	ev_loop_destroy(loop);
}

static void
test_tcp_refused(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct side a = { 0 };
	uint16_t port;
	int lfd, cfd;

	keys(&kc, &ks);
	/* A port that was just free: bind, learn it, close. */
	lfd = tcp_listener(&port);
	close(lfd);
	cfd = tcp_connect_nb(port);
	a.c = ctrlchan_new(loop, cfd, 1, &kc, ks.pub, &cbs, &a);
	CHECK(run_until(loop, a_closed, &a, &a));
	CHECK(strcmp(a.why, "connect: Connection refused") == 0);
	CHECK(!a.ready);
	ctrlchan_free(a.c);
	ev_loop_destroy(loop);
}

/* ---- a hand-driven initiator ("raw" peer) against a ctrlchan responder ---- */

struct raw {
	int fd;
	struct noise_cs tx, rx;
};

static void
raw_write(struct raw *r, const uint8_t *p, size_t n)
{
	if (write(r->fd, p, n) != (ssize_t)n) {
		perror("raw write");
		exit(1);
	}
}

static void
raw_frame(struct raw *r, const uint8_t *p, size_t n)
{
	uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	raw_write(r, hdr, 2);
	raw_write(r, p, n);
}

/* Encrypts plaintext pt as one transport frame. */
static void
raw_send_plain(struct raw *r, const uint8_t *pt, size_t n)
{
	uint8_t ct[CTRL_FRAME_MAX];
	int len = noise_cs_encrypt(&r->tx, pt, n, ct);

	CHECK(len > 0);
	raw_frame(r, ct, (size_t)len);
}

/* Handshakes from a blocking raw socket against responder b (running in loop). */
static int
raw_handshake(struct ev_loop *loop, struct raw *r, const struct noise_keypair *me,
    const uint8_t *srv_pub, struct side *b)
{
	static const uint8_t prologue[] = { 's', 'h', 'o', 'a', 'l', '-', 'c', 't', 'r', 'l', 0,
	    SHOAL_PROTO_VERSION };
	struct noise_hs hs;
	uint8_t m1[256], m2[256];
	int n;
	size_t got = 0, want;

	noise_hs_init(&hs, 1, me, srv_pub, prologue, sizeof(prologue));
	n = noise_hs_write(&hs, NULL, 0, m1, sizeof(m1));
	raw_frame(r, m1, (size_t)n);
	while (!b->ready && !b->closed)
		ev_run(loop, EVRUN_ONCE);
	spin(loop, 5);
	if (!b->ready)
		return -1;
	want = 2 + 48;
	while (got < want) {
		ssize_t k = read(r->fd, m2 + got, want - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	if (((size_t)m2[0] << 8 | m2[1]) != 48)
		return -1;
	if (noise_hs_read(&hs, m2 + 2, 48, NULL, 0) < 0)
		return -1;
	return noise_hs_split(&hs, &r->tx, &r->rx);
}

/* Sets up b (responder ctrlchan) and a raw initiator on a socketpair. */
static void
raw_setup(struct ev_loop *loop, struct raw *r, struct side *b, int do_handshake)
{
	struct noise_keypair kc, ks;
	int sv[2];

	keys(&kc, &ks);
	mkpair(sv);
	r->fd = sv[0];
	b->c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, b);
	if (do_handshake)
		CHECK_EQ(raw_handshake(loop, r, &kc, ks.pub, b), 0);
}

static void
raw_teardown(struct ev_loop *loop, struct raw *r, struct side *b)
{
	close(r->fd);
	ctrlchan_free(b->c);
	ev_loop_destroy(loop);
}

static int
closed_or_msgs(struct side *b, struct side *unused)
{
	return b->closed || b->nmsg > 0;
}

/* A client that sent message 1 and hung up (it gave up waiting in a reconnect storm's queue):
 * the responder closes without the key agreement and never becomes ready. */
static void
test_raw_gone_before_handshake(void)
{
	static const uint8_t prologue[] = { 's', 'h', 'o', 'a', 'l', '-', 'c', 't', 'r', 'l', 0,
	    SHOAL_PROTO_VERSION };
	struct ev_loop *loop = ev_loop_new(0);
	struct noise_keypair kc, ks;
	struct noise_hs hs;
	struct side b = { 0 };
	struct raw r;
	uint8_t m1[256];
	int sv[2], n;

	keys(&kc, &ks);
	mkpair(sv);
	r.fd = sv[0];
	b.c = ctrlchan_new(loop, sv[1], 0, &ks, NULL, &cbs, &b);
	noise_hs_init(&hs, 1, &kc, ks.pub, prologue, sizeof(prologue));
	n = noise_hs_write(&hs, NULL, 0, m1, sizeof(m1));
	raw_frame(&r, m1, (size_t)n);
	close(r.fd);
	CHECK(run_until(loop, a_closed, &b, &b));
	CHECK_EQ(b.ready, 0);
	CHECK(strcmp(b.why, "client gone before the handshake") == 0);
	ctrlchan_free(b.c);
	ev_loop_destroy(loop);
}

static void
test_raw_valid_and_unknown(void)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct side b = { 0 };
	struct raw r;
	uint8_t pt[64];
	struct msg m;
	int n;

	raw_setup(loop, &r, &b, 1);
	/* Unknown type 200: dropped, channel stays up. Then a valid PING. */
	pt[0] = 200;
	pt[1] = 1;
	raw_send_plain(&r, pt, 2);
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	m.u.ping.nonce = 0;
	n = msg_encode(&m, pt, sizeof(pt));
	raw_send_plain(&r, pt, (size_t)n);
	CHECK(run_until(loop, closed_or_msgs, &b, NULL));
	CHECK_EQ(b.nmsg, 1);
	CHECK_EQ(b.closed, 0);
	raw_teardown(loop, &r, &b);
}

/* A bad input after a successful handshake, and the reason it must close with. */
static const struct raw_case {
	const char *name;
	int handshake;
	int kind;                       /* 0: raw bytes, 1: encrypted plaintext, 2: EOF */
	uint8_t bytes[16];
	size_t len;
	const char *why;
} raw_cases[] = {
	{ "garbage handshake frame", 0, 0, { 0, 4, 1, 2, 3, 4 }, 6, "handshake failed" },
	{ "zero-length frame", 1, 0, { 0, 0 }, 2, "bad frame length" },
	{ "over-long frame", 1, 0, { 0x10, 0x01 }, 2, "bad frame length" },
	{ "garbage transport frame", 1, 0, { 0, 17, 1, 2, 3 }, 19, "decrypt failed" },
	{ "short transport frame", 1, 0, { 0, 3, 1, 2, 3 }, 5, "decrypt failed" },
	{ "truncated PING", 1, 1, { MSG_PING, 0, 0, 0 }, 4, "malformed message" },
	{ "empty plaintext", 1, 1, { 0 }, 0, "malformed message" },
	{ "request op 0", 1, 1, { MSG_REQUEST, 0, 0, 0, 1, 0, 0, 0, 0 }, 9, "malformed message" },
	{ "eof after handshake", 1, 2, { 0 }, 0, "eof" },
	{ "eof during handshake", 0, 2, { 0 }, 0, "eof during handshake" },
};

static void
test_raw_bad_inputs(void)
{
	size_t i;

	for (i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *rc = &raw_cases[i];
		struct ev_loop *loop = ev_loop_new(0);
		struct side b = { 0 };
		struct raw r;
		uint8_t buf[64];

		raw_setup(loop, &r, &b, rc->handshake);
		if (rc->kind == 0) {
			memset(buf, 0xa5, sizeof(buf));
			memcpy(buf, rc->bytes, rc->len < 16 ? rc->len : 16);
			raw_write(&r, buf, rc->len);
		} else if (rc->kind == 1) {
			raw_send_plain(&r, rc->bytes, rc->len);
		} else {
			shutdown(r.fd, SHUT_WR);
		}
		if (!run_until(loop, a_closed, &b, NULL) || strcmp(b.why, rc->why) != 0) {
			fprintf(stderr, "case %s: closed=%d why=%s\n", rc->name, b.closed, b.why);
			CHECK(0);
		}
		CHECK_EQ(b.nmsg, 0);
		raw_teardown(loop, &r, &b);
	}
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_handshake_and_1000_each_way);
	RUN(test_send_from_on_ready);
	RUN(test_queue_limit);
	RUN(test_wrong_pinned_key);
	RUN(test_free_inside_on_msg);
	RUN(test_free_inside_on_close);
	RUN(test_tcp_connect);
	RUN(test_tcp_refused);
	RUN(test_raw_gone_before_handshake);
	RUN(test_raw_valid_and_unknown);
	RUN(test_raw_bad_inputs);
	return unit_finish();
}
