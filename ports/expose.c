/*
 * expose: makes a local service reachable on our virtual address. `expose PORT` listens on
 * our 5.x address PORT (ns_listen) and splices each connection to 127.0.0.1:PORT;
 * `expose PORT/udp` binds ns_udp PORT and relays each remote (ip, port) through its own
 * connected kernel UDP socket to 127.0.0.1:PORT (a flow), so the local service's replies find
 * their way back to the right remote.
 *
 * Who may connect: only co-members can reach our virtual address at all, because the peer
 * layer only has sessions with peers the mediator authorized (members of a network we share).
 * That is the access control; there is deliberately no second ACL here.
 *
 * Exposes added before the netstack exists are remembered and get their virtual listeners in
 * expose_table_netstack_ready().
 *
 * Batching (UDP): flow sockets are read with recvmmsg into one receive batch shared by every
 * flow (one loop), a bounded number of calls per wakeup. Datagrams toward the local service
 * are copied into one send queue shared by every flow, chained per flow, and each flow's
 * chain leaves with one sendmmsg from an ev_prepare watcher just before the loop blocks (or
 * when the queue fills). A datagram too big for a queue slot flushes its flow's chain and is
 * sent on its own, so each flow keeps its order.
 * Owns: the expose table, its ns_listeners / ns_udps, UDP flows and their sockets and timers.
 * Must not touch lwIP (netstack/netstack.h only) nor the connections once spliced.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "base/log.h"
#include "daemon/daemon.h"
#include "ports/expose.h"
#include "netstack/netstack.h"

enum {
	EXPOSE_UDP_IDLE = 60,           /* s without traffic either way: the flow is closed */
	EXPOSE_UDP_MAX_FLOWS = 256,     /* per exposed UDP port; more remotes are dropped */
	EXPOSE_UDP_BUF = 65536,         /* the largest datagram the kernel can hand us */
	EXPOSE_RX_BATCH = 32,           /* datagrams per recvmmsg */
	EXPOSE_RX_ROUNDS = 8,           /* recvmmsg calls per readiness event, then yield */
	EXPOSE_TX_SLOTS = 64,           /* datagrams toward local services per loop pass */
	EXPOSE_TX_SLOT = 2048,          /* bytes per queued datagram; bigger ones go at once */
	EXPOSE_GSO_SEGS = 64,           /* datagrams per UDP_SEGMENT message (kernel limit) */
	EXPOSE_GSO_BYTES = 65507,       /* bytes per UDP_SEGMENT message */
};

struct expose;

/* One remote (ip, port) talking to an exposed UDP port. Owned by its expose's flow table. */
struct udp_flow {
	ev_io io;                       /* connected socket to 127.0.0.1:port; first member */
	ev_timer idle;
	struct expose *e;
	uint64_t key;                   /* ip << 16 | port: uthash key */
	uint32_t ip;
	uint16_t port;
	ev_tstamp last;                 /* last datagram either way */
	int tx_head, tx_tail;           /* this flow's chain in the send queue, -1: empty */
	struct udp_flow *tx_prev, *tx_next; /* on the table's dirty list while tx_head >= 0 */
	UT_hash_handle hh;
};

/* One exposed port. Owned by the expose table's list. */
struct expose {
	struct expose_table *t;
	struct expose *next;
	uint16_t port;
	int udp;
	struct ns_listener *l;          /* TCP, once the netstack exists */
	struct ns_udp *u;               /* UDP, once the netstack exists */
	struct udp_flow *flows;
	unsigned n_flows;
	uint64_t dropped;
};

/*
 * The receive batch shared by every flow (one loop). Owned by the expose table, allocated
 * with the first flow. Every slot holds the largest datagram, so nothing is truncated; only
 * the pages the kernel writes become resident.
 */
struct expose_rx {
	struct mmsghdr msg[EXPOSE_RX_BATCH];
	struct iovec iov[EXPOSE_RX_BATCH];
	uint8_t buf[EXPOSE_RX_BATCH][EXPOSE_UDP_BUF];
};

/* One queued datagram toward a local service. Owned by the expose table's send queue. */
struct expose_tx {
	int next;                       /* the same flow's next slot, -1: last */
	size_t len;
	uint8_t buf[EXPOSE_TX_SLOT];
};

/* Owned by the daemon (d->expose). */
struct expose_table {
	struct daemon *d;
	struct expose *list;
	struct expose_rx *rx;
	ev_prepare flush;               /* sends the queue; active only while it is not empty */
	struct udp_flow *dirty;         /* flows with queued datagrams */
	unsigned tx_n;                  /* slots used since the last full flush */
	int gso;                        /* UDP_SEGMENT works (probed with the first flow) */
	struct mmsghdr tx_msg[EXPOSE_TX_SLOTS]; /* one flow's chain at a time */
	unsigned tx_segs[EXPOSE_TX_SLOTS];      /* datagrams in each of those messages */
	struct iovec tx_iov[EXPOSE_TX_SLOTS];
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(uint16_t))];
	} tx_cmsg[EXPOSE_TX_SLOTS];
	struct expose_tx tx[EXPOSE_TX_SLOTS];
};

static const char *
proto_str(int udp)
{
	return udp ? "udp" : "tcp";
}

static void
loopback_addr(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(port);
}

static void
drop(struct expose *e, const char *why)
{
	/* Counted always; logged for the first few only, remote input must not flood the log. */
	if (e->dropped++ < 8)
		log_debug("event=expose_udp_drop port=%u why=\"%s\"", e->port, why);
}

/* A virtual connection to our PORT: a kernel connection to the local service for it. */
static int
open_fd_cb(void *arg, uint32_t peer_ip, uint16_t peer_port)
{
	struct expose *e = arg;
	struct sockaddr_in sin;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("event=expose_socket_failed port=%u", e->port);
		return -1;
	}
	loopback_addr(&sin, e->port);
	/* Non-blocking: the splice waits for the connect; a refusal resets the virtual side. */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
		log_debug("event=expose_connect_failed port=%u peer=%u.%u.%u.%u:%u error=\"%s\"",
		    e->port, peer_ip >> 24, (peer_ip >> 16) & 0xff, (peer_ip >> 8) & 0xff,
		    peer_ip & 0xff, peer_port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The errors with which a kernel says "no GSO here" rather than "bad datagram". */
static int
gso_refused(int err)
{
	return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP ||
	    err == EMSGSIZE;
}

/*
 * Turns f's chain into messages in t->tx_msg: with GSO, each run of equal-size datagrams
 * (the last may be shorter, the kernel's rule) is one UDP_SEGMENT message, so the local
 * stack handles a burst as one packet until the receiving socket splits it again; the
 * service still sees every datagram on its own. Returns the number of messages.
 */
static unsigned
flow_build(struct udp_flow *f)
{
	struct expose_table *t = f->e->t;
	unsigned nm = 0, ni = 0, first = 0;
	size_t seg = 0, total = 0;
	struct msghdr *h = NULL;
	int s;

	for (s = f->tx_head; s >= 0; s = t->tx[s].next) {
		size_t l = t->tx[s].len;

		t->tx_iov[ni].iov_base = t->tx[s].buf;
		t->tx_iov[ni].iov_len = l;
		if (h != NULL && t->gso && l > 0 && l <= seg && ni - first < EXPOSE_GSO_SEGS &&
		    total + l <= EXPOSE_GSO_BYTES &&
		    t->tx_iov[ni - 1].iov_len == seg) {
			h->msg_iovlen++;
			total += l;
		} else {
			h = &t->tx_msg[nm].msg_hdr;
			h->msg_iov = &t->tx_iov[ni];
			h->msg_iovlen = 1;
			t->tx_segs[nm] = 0;
			nm++;
			first = ni;
			seg = total = l;
		}
		t->tx_segs[nm - 1]++;
		ni++;
	}
	for (s = 0; s < (int)nm; s++) {
		struct cmsghdr *cm;
		uint16_t gs;

		h = &t->tx_msg[s].msg_hdr;
		h->msg_flags = 0;
		if (h->msg_iovlen < 2) {
			h->msg_control = NULL;
			h->msg_controllen = 0;
			continue;
		}
		gs = (uint16_t)h->msg_iov[0].iov_len;
		h->msg_control = t->tx_cmsg[s].buf;
		h->msg_controllen = CMSG_SPACE(sizeof(gs));
		cm = CMSG_FIRSTHDR(h);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(gs));
		memcpy(CMSG_DATA(cm), &gs, sizeof(gs));
	}
	return nm;
}

/* Sends f's chain with one sendmmsg (connected socket); refusals are dropped and counted. */
static void
flow_flush(struct udp_flow *f)
{
	struct expose_table *t = f->e->t;
	unsigned n, i = 0, k, sent;
	int r;

	if (f->tx_head < 0)
		return;
	n = flow_build(f);
	while (i < n) {
		r = sendmmsg(f->io.fd, &t->tx_msg[i], n - i, MSG_NOSIGNAL);
		if (r > 0) {
			i += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && t->gso && t->tx_segs[i] > 1 && gso_refused(errno)) {
			/* Nothing of this message left: from now on one datagram per message,
			 * resuming after the datagrams that did leave. */
			log_info("event=expose_udp_gso_disabled errno=%d", errno);
			for (k = 0, sent = 0; k < i; k++)
				sent += t->tx_segs[k];
			t->gso = 0;
			n = flow_build(f);
			i = sent;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* ECONNREFUSED: nothing listens locally (yet); it costs this message. */
			for (k = 0; k < t->tx_segs[i]; k++)
				drop(f->e, "local send failed");
			i++;
			continue;
		}
		/* The socket buffer is full: the rest would fail the same way. */
		for (; i < n; i++)
			for (k = 0; k < t->tx_segs[i]; k++)
				drop(f->e, "local send failed");
	}
	f->tx_head = f->tx_tail = -1;
	DL_DELETE2(t->dirty, f, tx_prev, tx_next);
}

/* Sends every flow's chain; the whole queue is free again. */
static void
table_flush(struct expose_table *t)
{
	while (t->dirty != NULL)
		flow_flush(t->dirty);
	t->tx_n = 0;
}

static void
table_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct expose_table *t = w->data;

	(void)revents;
	table_flush(t);
	ev_prepare_stop(loop, w);
}

/* Queues one datagram for the local service behind f. */
static void
flow_send(struct udp_flow *f, const uint8_t *data, size_t len)
{
	struct expose_table *t = f->e->t;
	struct expose_tx *x;
	int s;

	if (len > EXPOSE_TX_SLOT) {
		/* What is queued for this flow goes first, then this one on its own. */
		flow_flush(f);
		if (send(f->io.fd, data, len, MSG_NOSIGNAL) < 0)
			drop(f->e, "local send failed");
		return;
	}
	if (t->tx_n == EXPOSE_TX_SLOTS)
		table_flush(t);
	s = (int)t->tx_n++;
	x = &t->tx[s];
	memcpy(x->buf, data, len);
	x->len = len;
	x->next = -1;
	if (f->tx_head < 0) {
		f->tx_head = s;
		DL_APPEND2(t->dirty, f, tx_prev, tx_next);
	} else {
		t->tx[f->tx_tail].next = s;
	}
	f->tx_tail = s;
	if (!ev_is_active(&t->flush))
		ev_prepare_start(t->d->loop, &t->flush);
}

static void
flow_free(struct udp_flow *f)
{
	struct expose *e = f->e;
	struct ev_loop *loop = e->t->d->loop;

	/* What the remote already sent still reaches the local service. */
	flow_flush(f);
	ev_io_stop(loop, &f->io);
	ev_timer_stop(loop, &f->idle);
	close(f->io.fd);
	HASH_DEL(e->flows, f);
	e->n_flows--;
	free(f);
}

static void
flow_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct udp_flow *f = (struct udp_flow *)((char *)w - offsetof(struct udp_flow, idle));
	ev_tstamp left = f->last + EXPOSE_UDP_IDLE - ev_now(loop);

	(void)revents;
	/* Traffic does not touch the timer (cheaper); it only moves f->last. */
	if (left > 0.) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_debug("event=expose_udp_flow_idle port=%u remote_port=%u", f->e->port, f->port);
	flow_free(f);
}

/* The local service answered: back to the remote over the overlay. */
static void
flow_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udp_flow *f = (struct udp_flow *)w;
	struct expose *e = f->e;
	struct expose_rx *rx = e->t->rx;
	int round, i, n;

	(void)revents;
	for (round = 0; round < EXPOSE_RX_ROUNDS; round++) {
		for (i = 0; i < EXPOSE_RX_BATCH; i++)
			rx->msg[i].msg_hdr.msg_flags = 0;
		n = recvmmsg(f->io.fd, rx->msg, EXPOSE_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ECONNREFUSED: nothing listens locally (yet); the remote will retry. */
			continue;
		}
		if (n > 0)
			f->last = ev_now(loop);
		for (i = 0; i < n; i++) {
			if (e->u == NULL ||
			    ns_udp_sendto(e->u, f->ip, f->port, rx->buf[i], rx->msg[i].msg_len) != 0)
				drop(e, "overlay send failed");
		}
		/* A short batch drained the socket: skip the call that would say EAGAIN. */
		if (n < EXPOSE_RX_BATCH)
			return;
	}
}

/* The shared receive batch, made with the first flow: most daemons never expose UDP. */
static int
table_rx_init(struct expose_table *t)
{
	struct expose_rx *rx;
	int i;

	if ((rx = calloc(1, sizeof(*rx))) == NULL)
		return -1;
	for (i = 0; i < EXPOSE_RX_BATCH; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = sizeof(rx->buf[i]);
		rx->msg[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msg[i].msg_hdr.msg_iovlen = 1;
	}
	t->rx = rx;
	return 0;
}

static struct udp_flow *
flow_new(struct expose *e, uint32_t ip, uint16_t port)
{
	struct ev_loop *loop = e->t->d->loop;
	struct udp_flow *f;
	struct sockaddr_in sin;
	socklen_t gl = sizeof(int);
	int fd, gs;

	if (e->n_flows >= EXPOSE_UDP_MAX_FLOWS) {
		drop(e, "too many flows");
		return NULL;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		drop(e, "socket failed");
		return NULL;
	}
	if (e->t->rx == NULL) {
		if (table_rx_init(e->t) != 0) {
			close(fd);
			drop(e, "out of memory");
			return NULL;
		}
		e->t->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &gs, &gl) == 0;
	}
	loopback_addr(&sin, e->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		drop(e, "connect failed");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		close(fd);
		drop(e, "out of memory");
		return NULL;
	}
	f->e = e;
	f->ip = ip;
	f->port = port;
	f->key = (uint64_t)ip << 16 | port;
	f->last = ev_now(loop);
	f->tx_head = f->tx_tail = -1;
	ev_io_init(&f->io, flow_read_cb, fd, EV_READ);
	ev_timer_init(&f->idle, flow_idle_cb, EXPOSE_UDP_IDLE, 0.);
	ev_io_start(loop, &f->io);
	ev_timer_start(loop, &f->idle);
	HASH_ADD(hh, e->flows, key, sizeof(f->key), f);
	e->n_flows++;
	return f;
}

/* A datagram from a co-member to our exposed UDP port (unicast or broadcast). */
static void
udp_recv_cb(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip,
    const uint8_t *data, size_t len)
{
	struct expose *e = arg;
	struct udp_flow *f;
	uint64_t key = (uint64_t)src_ip << 16 | src_port;

	(void)dst_ip;
	HASH_FIND(hh, e->flows, &key, sizeof(key), f);
	if (f == NULL && (f = flow_new(e, src_ip, src_port)) == NULL)
		return;
	f->last = ev_now(e->t->d->loop);
	flow_send(f, data, len);
}

/* Creates the virtual listener if the netstack exists. 0, or -1 when the netstack refused. */
static int
expose_activate(struct expose *e)
{
	struct daemon *d = e->t->d;

	if (d->ns == NULL)
		return 0;
	if (e->udp) {
		if (e->u == NULL)
			e->u = ns_udp_bind(d->ns, e->port, udp_recv_cb, e);
		return e->u ? 0 : -1;
	}
	if (e->l == NULL)
		e->l = ns_listen(d->ns, e->port, open_fd_cb, e);
	return e->l ? 0 : -1;
}

static void
expose_free(struct expose *e)
{
	struct udp_flow *f, *tmp;

	HASH_ITER(hh, e->flows, f, tmp)
		flow_free(f);
	if (e->l)
		ns_listener_free(e->l);
	if (e->u)
		ns_udp_free(e->u);
	free(e);
}

static struct expose *
expose_find(const struct expose_table *t, uint16_t port, int udp)
{
	struct expose *e;

	LL_FOREACH(t->list, e)
		if (e->port == port && e->udp == udp)
			return e;
	return NULL;
}

struct expose_table *
expose_table_new(struct daemon *d)
{
	struct expose_table *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->d = d;
	ev_prepare_init(&t->flush, table_prepare_cb);
	t->flush.data = t;
	return t;
}

void
expose_table_free(struct expose_table *t)
{
	struct expose *e, *tmp;

	if (t == NULL)
		return;
	LL_FOREACH_SAFE(t->list, e, tmp) {
		LL_DELETE(t->list, e);
		expose_free(e);
	}
	ev_prepare_stop(t->d->loop, &t->flush);
	free(t->rx);
	free(t);
}

int
expose_add(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen)
{
	struct expose *e;

	udp = udp ? 1 : 0;
	if (port == 0) {
		snprintf(err, errlen, "bad port 0");
		return -1;
	}
	if (expose_find(t, port, udp) != NULL) {
		snprintf(err, errlen, "port %u/%s is already exposed", port, proto_str(udp));
		return -1;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	e->t = t;
	e->port = port;
	e->udp = udp;
	if (expose_activate(e) != 0) {
		snprintf(err, errlen, "cannot listen on virtual port %u/%s: %s", port,
		    proto_str(udp), strerror(errno));
		expose_free(e);
		return -1;
	}
	LL_APPEND(t->list, e);
	log_info("event=expose_added port=%u proto=%s active=%d", port, proto_str(udp),
	    t->d->ns != NULL);
	return 0;
}

int
expose_remove(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen)
{
	struct expose *e;

	udp = udp ? 1 : 0;
	e = expose_find(t, port, udp);
	if (e == NULL) {
		snprintf(err, errlen, "port %u/%s is not exposed", port, proto_str(udp));
		return -1;
	}
	LL_DELETE(t->list, e);
	expose_free(e);
	log_info("event=expose_removed port=%u proto=%s", port, proto_str(udp));
	return 0;
}

size_t
expose_list(const struct expose_table *t, struct expose_info *out, size_t max)
{
	const struct expose *e;
	size_t n = 0;

	for (e = t->list; e != NULL && n < max; e = e->next) {
		out[n].port = e->port;
		out[n].udp = e->udp;
		n++;
	}
	return n;
}

void
expose_table_netstack_ready(struct expose_table *t)
{
	struct expose *e;

	LL_FOREACH(t->list, e)
		if (expose_activate(e) != 0)
			log_warn("event=expose_listen_failed port=%u proto=%s", e->port,
			    proto_str(e->udp));
}
