/*
 * ctrlchan: one mediator control connection: non-blocking TCP, Noise IK handshake, then
 * length-prefixed Noise transport frames each carrying one msg_encode()d message.
 *
 *   initiator (daemon)                         responder (server)
 *   [connect: wait writable, SO_ERROR]
 *   u16 len | Noise msg 1 (e, es, s, ss)  -->
 *                                         <--  u16 len | Noise msg 2 (e, ee, se)
 *   u16 len | AEAD(msg)                  <-->  u16 len | AEAD(msg)
 *
 * States (changed only in enter_state): CONNECTING -> HANDSHAKE -> READY -> CLOSED.
 * The handshake timer runs from ctrlchan_new until READY: CONNECT_TIMEOUT for the TCP connect,
 * then HANDSHAKE_WAIT for the Noise handshake (the responder: HANDSHAKE_WAIT from accept).
 *
 * Owns: the fd, two ev_io watchers, an ev_prepare (the write flush) and one ev_timer, the read
 * buffer (fixed, inside the struct) and the write queue (one growable buffer; messages are
 * encrypted straight into it, so there is no allocation per message). Must not: interpret
 * messages (callers do), log above debug level (the user logs on_close's reason).
 *
 * Freeing from inside a callback: every libev entry point holds the channel (depth++) while it
 * runs; ctrlchan_free() during a hold tears down the fd and watchers at once but releases the
 * memory only when the outermost hold ends, so the code unwinding the stack never touches
 * freed memory.
 */
#include "config.h"
#include "mproto/ctrlchan.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"

/*
 * Two clocks: the TCP connect must finish within CONNECT_TIMEOUT (a dead or unreachable
 * mediator is given up on quickly, so a daemon fails over), but once a server has the
 * connection, its answer is waited for up to HANDSHAKE_WAIT. In a reconnect storm the
 * answer is late because the server works through a queue of handshakes; a client that gave
 * up at 10 s only rejoined the queue at its end, and the server then spent its key agreement
 * on a connection already closed (measured: a third of 19,000 nodes timed out so, and the
 * storm took 1.4 dials per node). The responder's clock runs HANDSHAKE_WAIT from accept.
 */
#define CONNECT_TIMEOUT 10.0            /* s */
#define HANDSHAKE_WAIT 30.0             /* s */
#define PROLOGUE "shoal-ctrl"

enum {
	FRAME_HDR = 2,
	/* Room for several frames so one recv() can bring in a burst of deltas. */
	RBUF_SIZE = 4 * (FRAME_HDR + CTRL_FRAME_MAX),
	/* Until the handshake is done only Noise messages (under 200 bytes) are read: a
	 * connection that has not authenticated costs ~1 KiB, not 16 (a server may hold
	 * thousands of them). rbuf grows to RBUF_SIZE when the channel is ready. */
	HS_FRAME_MAX = 256,
	HS_RBUF_SIZE = 2 * (FRAME_HDR + HS_FRAME_MAX),
	WQ_MAX = 1 << 20,               /* bytes queued before ctrlchan_send refuses */
	WBUF_MIN = 4096,
	/* A queue that drained after growing beyond this is given back to the allocator. */
	WBUF_KEEP = 64 * 1024,
	PLAIN_MAX = CTRL_FRAME_MAX - AEAD_TAG_LEN,
};

enum cc_state { CC_CONNECTING, CC_HANDSHAKE, CC_READY, CC_CLOSED };

/* Owned by whoever called ctrlchan_new (the mediator client, or a server connection). */
struct ctrlchan {
	ev_io rio;                      /* first member: the read callback casts it back */
	ev_io wio;                      /* only while the socket is full (or connecting) */
	ev_prepare flush_w;             /* queued bytes go out before the loop next polls */
	ev_timer hs_timer;
	struct ev_loop *loop;
	int fd;
	int initiator;
	enum cc_state state;
	struct noise_hs hs;
	struct noise_cs tx, rx;
	struct ctrlchan_cbs cbs;
	void *arg;

	int depth;                      /* libev callbacks currently on the stack */
	int freed;                      /* ctrlchan_free() ran during a hold */
	uint64_t unknown_msgs;          /* frames of a type we do not know: dropped */

	uint8_t *wbuf;                  /* pending bytes are wbuf[woff, wlen) */
	size_t wcap, woff, wlen;

	size_t rlen, rcap;
	uint8_t *rbuf;                  /* rcap bytes: HS_RBUF_SIZE, then RBUF_SIZE */
};

static void cc_read_cb(struct ev_loop *, ev_io *, int);
static void cc_write_cb(struct ev_loop *, ev_io *, int);
static void cc_timer_cb(struct ev_loop *, ev_timer *, int);
static void cc_flush_cb(struct ev_loop *, ev_prepare *, int);

static void
cc_hold(struct ctrlchan *c)
{
	c->depth++;
}

static void
cc_destroy(struct ctrlchan *c)
{
	free(c->wbuf);
	free(c->rbuf);
	free(c);
}

static void
cc_release(struct ctrlchan *c)
{
	if (--c->depth == 0 && c->freed)
		cc_destroy(c);
}

/* True when the caller must stop touching the channel's I/O (closed or freed). */
static int
cc_gone(const struct ctrlchan *c)
{
	return c->state == CC_CLOSED || c->freed;
}

/* Stops watchers, closes the fd, wipes keys. Idempotent; no callbacks. */
static void
cc_teardown(struct ctrlchan *c)
{
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_prepare_stop(c->loop, &c->flush_w);
	ev_timer_stop(c->loop, &c->hs_timer);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	noise_hs_wipe(&c->hs);
	sodium_memzero(&c->tx, sizeof(c->tx));
	sodium_memzero(&c->rx, sizeof(c->rx));
	c->woff = c->wlen = 0;
	c->rlen = 0;
}

static void
enter_state(struct ctrlchan *c, enum cc_state s)
{
	c->state = s;
	switch (s) {
	case CC_CONNECTING:
		ev_io_start(c->loop, &c->wio);
		break;
	case CC_HANDSHAKE:
		ev_io_start(c->loop, &c->rio);
		break;
	case CC_READY:
		ev_timer_stop(c->loop, &c->hs_timer);
		break;
	case CC_CLOSED:
		cc_teardown(c);
		break;
	}
}

/* Ends the connection and tells the user once. Only called under a hold. */
static void
cc_close(struct ctrlchan *c, const char *why)
{
	if (c->state == CC_CLOSED)
		return;
	enter_state(c, CC_CLOSED);
	if (!c->freed && c->cbs.on_close)
		c->cbs.on_close(c->arg, why);
}

/* ---- write queue ---- */

/* Makes room for n more bytes; -1 if that would queue more than WQ_MAX. */
static int
wq_reserve(struct ctrlchan *c, size_t n)
{
	size_t pending = c->wlen - c->woff, ncap;
	uint8_t *nb;

	if (pending + n > WQ_MAX)
		return -1;
	if (c->wlen + n <= c->wcap)
		return 0;
	if (c->woff) {
		memmove(c->wbuf, c->wbuf + c->woff, pending);
		c->woff = 0;
		c->wlen = pending;
		if (c->wlen + n <= c->wcap)
			return 0;
	}
	ncap = c->wcap ? c->wcap : WBUF_MIN;
	while (ncap < pending + n)
		ncap *= 2;
	if (!(nb = realloc(c->wbuf, ncap)))
		return -1;
	c->wbuf = nb;
	c->wcap = ncap;
	return 0;
}

static void
wq_kick(struct ctrlchan *c)
{
	/* Every message queued in this loop iteration goes out in one send(), just before the
	 * loop polls again; the write watcher runs only while the socket is full. Starting it
	 * for each burst cost two epoll_ctl calls per connection per burst (8% of a mediator's
	 * CPU in a reconnect storm, where each burst is a presence delta or two). While
	 * connecting, the watcher already runs for the connect. */
	if (c->state != CC_CONNECTING && !ev_is_active(&c->wio) && !ev_is_active(&c->flush_w))
		ev_prepare_start(c->loop, &c->flush_w);
}

static void
put_frame_len(uint8_t *p, size_t n)
{
	p[0] = (uint8_t)(n >> 8);
	p[1] = (uint8_t)n;
}

/* Queues a handshake message as one frame. */
static int
wq_frame(struct ctrlchan *c, const uint8_t *data, size_t n)
{
	if (wq_reserve(c, FRAME_HDR + n) < 0)
		return -1;
	put_frame_len(c->wbuf + c->wlen, n);
	memcpy(c->wbuf + c->wlen + FRAME_HDR, data, n);
	c->wlen += FRAME_HDR + n;
	wq_kick(c);
	return 0;
}

/* Writes until the queue is empty or the socket is full. -1 after closing the channel. */
static int
wq_flush(struct ctrlchan *c)
{
	char why[128];
	ssize_t n;

	while (c->woff < c->wlen) {
		n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			cc_close(c, why);
			return -1;
		}
		c->woff += (size_t)n;
	}
	c->woff = c->wlen = 0;
	ev_io_stop(c->loop, &c->wio);
	if (c->wcap > WBUF_KEEP) {
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
	}
	return 0;
}

/* ---- handshake ---- */

static void
cc_prologue(uint8_t out[sizeof(PROLOGUE) - 1 + 2])
{
	memcpy(out, PROLOGUE, sizeof(PROLOGUE) - 1);
	out[sizeof(PROLOGUE) - 1] = (uint8_t)(SHOAL_PROTO_VERSION >> 8);
	out[sizeof(PROLOGUE)] = (uint8_t)SHOAL_PROTO_VERSION;
}

static void
cc_become_ready(struct ctrlchan *c)
{
	uint8_t rs[KEY_LEN], *grown;

	if (noise_hs_split(&c->hs, &c->tx, &c->rx) < 0) {
		cc_close(c, "handshake split failed");
		return;
	}
	if ((grown = realloc(c->rbuf, RBUF_SIZE)) == NULL) {
		cc_close(c, "out of memory");
		return;
	}
	c->rbuf = grown;
	c->rcap = RBUF_SIZE;
	memcpy(rs, noise_hs_remote_static(&c->hs), KEY_LEN);
	enter_state(c, CC_READY);
	if (c->cbs.on_ready)
		c->cbs.on_ready(c->arg, rs);
}

/* Initiator, once the TCP connection is up: Noise message 1 with an empty payload. */
static void
cc_send_msg1(struct ctrlchan *c)
{
	uint8_t m1[CTRL_FRAME_MAX];
	int n;

	n = noise_hs_write(&c->hs, NULL, 0, m1, sizeof(m1));
	if (n < 0 || wq_frame(c, m1, (size_t)n) < 0)
		cc_close(c, "handshake write failed");
}

static void
cc_handshake_frame(struct ctrlchan *c, const uint8_t *f, size_t n)
{
	uint8_t payload[CTRL_FRAME_MAX], m2[CTRL_FRAME_MAX], b;
	ssize_t peek;
	int r;

	/* The initiator sends nothing after message 1 until it has message 2, so a message 1
	 * followed by EOF (or a reset) is from a client that gave up waiting: in a reconnect
	 * storm's queue, most of the late ones. Skip the key agreement it would cost. */
	if (!c->initiator) {
		peek = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)) {
			cc_close(c, "client gone before the handshake");
			return;
		}
	}
	/* Handshake payloads are empty in this version; anything inside is ignored. */
	if (noise_hs_read(&c->hs, f, n, payload, sizeof(payload)) < 0) {
		/* For the initiator this means the server does not hold the pinned key (or the
		 * frame is garbage); for the responder, a client that pinned another key. */
		cc_close(c, "handshake failed");
		return;
	}
	if (!c->initiator) {
		r = noise_hs_write(&c->hs, NULL, 0, m2, sizeof(m2));
		if (r < 0 || wq_frame(c, m2, (size_t)r) < 0) {
			cc_close(c, "handshake write failed");
			return;
		}
	}
	cc_become_ready(c);
}

/* ---- transport frames ---- */

static void
cc_transport_frame(struct ctrlchan *c, const uint8_t *f, size_t n)
{
	uint8_t pt[CTRL_FRAME_MAX];
	struct msg m;
	int len;

	if ((len = noise_cs_decrypt(&c->rx, f, n, pt)) < 0) {
		cc_close(c, "decrypt failed");
		return;
	}
	/* An unknown type is from a newer peer: drop and count (proto.h version rule). */
	if (len > 0 && strcmp(msg_type_name(pt[0]), "UNKNOWN") == 0) {
		c->unknown_msgs++;
		log_debug("event=ctrl_unknown_msg type=%u count=%llu", pt[0],
		    (unsigned long long)c->unknown_msgs);
		sodium_memzero(pt, (size_t)len);
		return;
	}
	if (msg_decode(&m, pt, (size_t)len) < 0) {
		sodium_memzero(pt, (size_t)len);
		cc_close(c, "malformed message");
		return;
	}
	sodium_memzero(pt, (size_t)len);
	if (c->cbs.on_msg)
		c->cbs.on_msg(c->arg, &m);
	/* Requests carry passwords. */
	sodium_memzero(&m, sizeof(m));
}

/* Splits rbuf into frames and handles each; stops as soon as the channel goes away. */
static void
cc_parse(struct ctrlchan *c)
{
	size_t off = 0, flen;

	while (c->rlen - off >= FRAME_HDR) {
		flen = ((size_t)c->rbuf[off] << 8) | c->rbuf[off + 1];
		if (flen == 0 || flen > CTRL_FRAME_MAX) {
			cc_close(c, "bad frame length");
			return;
		}
		if (c->state == CC_HANDSHAKE && flen > HS_FRAME_MAX) {
			cc_close(c, "handshake frame too large");
			return;
		}
		if (c->rlen - off - FRAME_HDR < flen)
			break;
		if (c->state == CC_HANDSHAKE)
			cc_handshake_frame(c, c->rbuf + off + FRAME_HDR, flen);
		else
			cc_transport_frame(c, c->rbuf + off + FRAME_HDR, flen);
		if (cc_gone(c))
			return;
		off += FRAME_HDR + flen;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

/* ---- libev callbacks ---- */

static void
cc_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctrlchan *c = (struct ctrlchan *)w;
	char why[128];
	ssize_t n;

	cc_hold(c);
	/* One recv per wakeup: level-triggered libev calls again, and a flood from one
	 * connection cannot starve the others on a server. */
	n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	if (n > 0) {
		c->rlen += (size_t)n;
		cc_parse(c);
	} else if (n == 0) {
		/* An initiator whose msg 1 the server could not authenticate sees only EOF. */
		if (c->state != CC_HANDSHAKE)
			cc_close(c, "eof");
		else if (c->initiator)
			cc_close(c, "eof during handshake (wrong server key?)");
		else
			cc_close(c, "eof during handshake");
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		snprintf(why, sizeof(why), "read: %s", strerror(errno));
		cc_close(c, why);
	}
	cc_release(c);
}

static void
cc_connected(struct ctrlchan *c)
{
	char why[128];
	socklen_t sl = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		err = errno;
	if (err) {
		snprintf(why, sizeof(why), "connect: %s", strerror(err));
		cc_close(c, why);
		return;
	}
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->hs_timer);
	ev_timer_set(&c->hs_timer, HANDSHAKE_WAIT, 0.);
	ev_timer_start(c->loop, &c->hs_timer);
	enter_state(c, CC_HANDSHAKE);
	cc_send_msg1(c);
}

static void
cc_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctrlchan *c = (struct ctrlchan *)((char *)w - offsetof(struct ctrlchan, wio));

	cc_hold(c);
	if (c->state == CC_CONNECTING)
		cc_connected(c);
	if (!cc_gone(c))
		wq_flush(c);
	cc_release(c);
}

static void
cc_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct ctrlchan *c = (struct ctrlchan *)((char *)w - offsetof(struct ctrlchan, flush_w));

	(void)revents;
	cc_hold(c);
	ev_prepare_stop(loop, w);
	if (!cc_gone(c) && wq_flush(c) == 0 && c->woff < c->wlen)
		ev_io_start(loop, &c->wio);     /* the socket is full: on writability */
	cc_release(c);
}

static void
cc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctrlchan *c = (struct ctrlchan *)((char *)w - offsetof(struct ctrlchan, hs_timer));

	cc_hold(c);
	cc_close(c, c->state == CC_CONNECTING ? "connect timeout" : "handshake timeout");
	cc_release(c);
}

/* ---- public ---- */

struct ctrlchan *
ctrlchan_new(struct ev_loop *loop, int fd, int initiator, const struct noise_keypair *local,
    const uint8_t *remote_pub, const struct ctrlchan_cbs *cbs, void *arg)
{
	uint8_t prologue[sizeof(PROLOGUE) - 1 + 2];
	struct ctrlchan *c;
	int fl, one = 1;

	if (fd < 0 || (initiator && !remote_pub))
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    (c->rbuf = malloc(HS_RBUF_SIZE)) == NULL) {
		free(c);
		return NULL;
	}
	c->rcap = HS_RBUF_SIZE;
	/* Small control messages should not wait for Nagle; fails harmlessly on non-TCP. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->loop = loop;
	c->fd = fd;
	c->initiator = initiator ? 1 : 0;
	c->cbs = *cbs;
	c->arg = arg;
	cc_prologue(prologue);
	noise_hs_init(&c->hs, c->initiator, local, initiator ? remote_pub : NULL, prologue,
	    sizeof(prologue));

	ev_io_init(&c->rio, cc_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, cc_write_cb, fd, EV_WRITE);
	ev_prepare_init(&c->flush_w, cc_flush_cb);
	ev_timer_init(&c->hs_timer, cc_timer_cb, c->initiator ? CONNECT_TIMEOUT : HANDSHAKE_WAIT, 0.);
	ev_timer_start(loop, &c->hs_timer);
	/* The initiator may hold a connecting socket: writability means the connect finished
	 * (successfully or not, SO_ERROR tells). An already connected socket is writable at once. */
	enter_state(c, c->initiator ? CC_CONNECTING : CC_HANDSHAKE);
	return c;
}

int
ctrlchan_send(struct ctrlchan *c, const struct msg *m)
{
	uint8_t pt[PLAIN_MAX];
	uint8_t *p;
	int n, e;

	if (!c || c->state != CC_READY || c->freed)
		return -1;
	if ((n = msg_encode(m, pt, sizeof(pt))) < 0)
		return -1;
	if (wq_reserve(c, FRAME_HDR + (size_t)n + AEAD_TAG_LEN) < 0) {
		sodium_memzero(pt, (size_t)n);
		return -1;
	}
	p = c->wbuf + c->wlen;
	e = noise_cs_encrypt(&c->tx, pt, (size_t)n, p + FRAME_HDR);
	sodium_memzero(pt, (size_t)n);
	if (e < 0)
		return -1;
	put_frame_len(p, (size_t)e);
	c->wlen += FRAME_HDR + (size_t)e;
	wq_kick(c);
	return 0;
}

void
ctrlchan_free(struct ctrlchan *c)
{
	if (!c)
		return;
	/* No on_close for a channel its user is throwing away. */
	c->freed = 1;
	if (c->state != CC_CLOSED)
		enter_state(c, CC_CLOSED);
	if (c->depth == 0)
		cc_destroy(c);
}
