/*
 * tcplink: a TCP stream as a transport link (tcplink.h). Writes go straight to the kernel when
 * nothing is queued; the remainder of a frame the kernel only took part of is queued whole,
 * so the stream never carries half a frame followed by another. Errors found while sending
 * are only noted: the close happens from a zero timer, so no send call ever frees the link
 * under its caller (the peer layer sends from inside our own receive callback).
 */
#include "config.h"
#include "core/tcplink.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/tcpframe.h"
#include "core/transport.h"

/* Reads per readable event, so one busy stream cannot starve the loop. */
enum { READS_PER_EVENT = 8, READ_CHUNK = 16384 };

struct tcplink {
	struct ev_loop *loop;
	struct transport *tp;
	int fd;
	uint16_t via;
	struct endpoint remote;
	const struct tcplink_ops *ops;
	void *arg;
	ev_io rio, wio;
	ev_timer idle;                  /* TCPLINK_IDLE_S after the last input */
	ev_timer dead_t;                /* 0 s: reports the close from the loop */
	const char *dead;               /* why it must close; NULL while alive */
	double last_rx;
	struct tcpframe_rx rx;
	size_t out_off, out_len;        /* queued bytes: out[out_off .. out_off + out_len) */
	uint8_t out[TCPLINK_OUT_MAX];
	struct tcplink_stats st;
};

static void
mark_dead(struct tcplink *l, const char *why)
{
	if (l->dead)
		return;
	l->dead = why;
	ev_io_stop(l->loop, &l->rio);
	ev_io_stop(l->loop, &l->wio);
	ev_timer_stop(l->loop, &l->idle);
	ev_timer_set(&l->dead_t, 0., 0.);
	ev_timer_start(l->loop, &l->dead_t);
}

static void
dead_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tcplink *l = w->data;
	char ep[EP_STR_LEN];

	(void)loop;
	(void)revents;
	log_info("event=tcp_link_closed via=%u remote=%s reason=%s rx_frames=%llu tx_frames=%llu",
	    (unsigned)l->via, ep_str(&l->remote, ep), l->dead,
	    (unsigned long long)l->st.rx_frames, (unsigned long long)l->st.tx_frames);
	transport_link_del(l->tp, l->via);
	l->via = 0;
	l->ops->closed(l->arg, l, l->dead);
}

/* Writes what is queued; 0 when the kernel took everything or would block, -1 on error. */
static int
flush_out(struct tcplink *l)
{
	ssize_t n;

	while (l->out_len > 0) {
		n = send(l->fd, l->out + l->out_off, l->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		l->out_off += (size_t)n;
		l->out_len -= (size_t)n;
	}
	if (l->out_len == 0) {
		l->out_off = 0;
		ev_io_stop(l->loop, &l->wio);
	} else {
		ev_io_start(l->loop, &l->wio);
	}
	return 0;
}

static int
link_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct tcplink *l = arg;
	int n;

	(void)to;
	if (l->dead || len == 0 || len > UDP_MAX_PAYLOAD)
		goto drop;
	if (l->out_len + TCPFRAME_HDR + len > TCPLINK_OUT_MAX)
		goto drop;
	/* Room at the end for the whole frame; the queue moves to the front when needed. */
	if (l->out_off + l->out_len + TCPFRAME_HDR + len > TCPLINK_OUT_MAX) {
		memmove(l->out, l->out + l->out_off, l->out_len);
		l->out_off = 0;
	}
	n = tcpframe_encode(pkt, len, l->out + l->out_off + l->out_len,
	    TCPLINK_OUT_MAX - l->out_off - l->out_len);
	if (n < 0)
		goto drop;
	l->out_len += (size_t)n;
	l->st.tx_frames++;
	if (flush_out(l) < 0)
		mark_dead(l, "write");
	return 0;
drop:
	l->st.tx_dropped++;
	return -1;
}

static const struct transport_link_ops tcplink_link_ops = { link_send, "tcp" };

static void
frame_cb(void *arg, uint8_t *pkt, size_t len)
{
	struct tcplink *l = arg;

	l->st.rx_frames++;
	transport_link_input(l->tp, l->via, l->remote.addr, l->remote.port, pkt, len);
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcplink *l = w->data;
	uint8_t buf[READ_CHUNK];
	ssize_t n;
	int i;

	(void)revents;
	for (i = 0; i < READS_PER_EVENT && !l->dead; i++) {
		n = recv(l->fd, buf, sizeof(buf), 0);
		if (n == 0) {
			mark_dead(l, "eof");
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			mark_dead(l, "read");
			return;
		}
		l->last_rx = ev_now(loop);
		/* frame_cb may send on this link (answers): a failure there only marks it. */
		if (tcpframe_feed(&l->rx, buf, (size_t)n, frame_cb, l) < 0)
			mark_dead(l, "frame");
	}
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcplink *l = w->data;

	(void)loop;
	(void)revents;
	if (flush_out(l) < 0)
		mark_dead(l, "write");
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tcplink *l = w->data;
	double left = l->last_rx + TCPLINK_IDLE_S - ev_now(loop);

	(void)revents;
	if (left > 0) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	mark_dead(l, "idle");
}

struct tcplink *
tcplink_new(struct ev_loop *loop, struct transport *tp, int fd, const struct endpoint *remote,
    const struct tcplink_ops *ops, void *arg)
{
	struct tcplink *l;
	int one = 1;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_warn("event=tcp_link_failed");
		close(fd);
		return NULL;
	}
	l->loop = loop;
	l->tp = tp;
	l->fd = fd;
	l->remote = *remote;
	l->remote.via = 0;
	l->ops = ops;
	l->arg = arg;
	/* Datagrams, not a byte stream: each one should leave now, not wait for the next. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((l->via = transport_link_add(tp, &tcplink_link_ops, l)) == 0) {
		close(fd);
		free(l);
		return NULL;
	}
	tcpframe_rx_init(&l->rx);
	l->last_rx = ev_now(loop);
	ev_io_init(&l->rio, read_cb, fd, EV_READ);
	ev_io_init(&l->wio, write_cb, fd, EV_WRITE);
	ev_timer_init(&l->idle, idle_cb, TCPLINK_IDLE_S, 0.);
	ev_timer_init(&l->dead_t, dead_cb, 0., 0.);
	l->rio.data = l->wio.data = l->idle.data = l->dead_t.data = l;
	ev_io_start(loop, &l->rio);
	ev_timer_start(loop, &l->idle);
	return l;
}

void
tcplink_free(struct tcplink *l)
{
	if (l == NULL)
		return;
	ev_io_stop(l->loop, &l->rio);
	ev_io_stop(l->loop, &l->wio);
	ev_timer_stop(l->loop, &l->idle);
	ev_timer_stop(l->loop, &l->dead_t);
	if (l->via != 0)
		transport_link_del(l->tp, l->via);
	close(l->fd);
	free(l);
}

struct endpoint
tcplink_endpoint(const struct tcplink *l)
{
	struct endpoint e = l->remote;

	e.via = l->via;
	return e;
}

void
tcplink_get_stats(const struct tcplink *l, struct tcplink_stats *st)
{
	*st = l->st;
	st->out_queued = l->out_len;
}
