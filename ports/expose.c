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
 * The netstack exists from start-up and lwIP listens on any address, so every expose gets its
 * virtual listener at once, even before we have an address; it answers once one arrives.
 *
 * Batching (UDP): flow sockets are read with recvmmsg into one receive batch shared by every
 * flow (one loop), a bounded number of calls per wakeup. Datagrams toward the local service
 * are copied into the flow's udpbatch (base/udpbatch.h): they leave with one sendmmsg per
 * loop pass, equal-size runs as one UDP_SEGMENT message. A datagram too big for a slot is
 * sent on its own after what is queued, so each flow keeps its order.
 * Owns: the expose table, its ns_listeners / ns_udps, UDP flows and their sockets, timers and
 * send batches.
 * Must not touch lwIP (netstack/netstack.h only) nor the connections once spliced.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "base/ip4.h"
#include "base/log.h"
#include "base/udpbatch.h"
#include "ports/expose.h"
#include "netstack/netstack.h"

enum {
	EXPOSE_UDP_IDLE = 60,           /* s without traffic either way: the flow is closed */
	EXPOSE_UDP_MAX_FLOWS = 256,     /* per exposed UDP port; more remotes are dropped */
	EXPOSE_UDP_BUF = 65536,         /* the largest datagram the kernel can hand us */
	EXPOSE_RX_BATCH = 32,           /* datagrams per recvmmsg */
	EXPOSE_RX_ROUNDS = 8,           /* recvmmsg calls per readiness event, then yield */
	/* Datagrams toward the local service queued per flow and loop pass: one full GSO
	 * message, and the per-pass capacity the benchmark's single flow had when the queue
	 * was shared. Costs 128 KiB of slots per flow, freed when the flow idles out. */
	EXPOSE_TX_SLOTS = 64,
	EXPOSE_TX_SLOT = 2048,          /* bytes per queued datagram; bigger ones go at once */
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
	struct udpbatch *tx;            /* datagrams toward the local service */
	UT_hash_handle hh;
};

/* One exposed port. Owned by the expose table's list. */
struct expose {
	struct expose_table *t;
	struct expose *next;
	uint16_t port;
	int udp;
	struct ns_listener *l;          /* TCP */
	struct ns_udp *u;               /* UDP */
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

/* Owned by its creator (daemon/main.c). */
struct expose_table {
	struct ev_loop *loop;
	struct netstack *ns;
	struct expose *list;
	struct expose_rx *rx;
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
	char peer[IP4_EP_STR_LEN];
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("event=expose_socket_failed port=%u", e->port);
		return -1;
	}
	loopback_addr(&sin, e->port);
	/* Non-blocking: the splice waits for the connect; a refusal resets the virtual side. */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
		log_debug("event=expose_connect_failed port=%u peer=%s error=\"%s\"", e->port,
		    ip4_ep_str(peer_ip, peer_port, peer), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The local service's socket refused queued datagrams (ECONNREFUSED: nothing listens yet). */
static void
flow_tx_drop_cb(void *arg, int err, unsigned n)
{
	struct udp_flow *f = arg;

	(void)err;
	while (n-- > 0)
		drop(f->e, "local send failed");
}

static const struct udpbatch_conf flow_tx_conf = {
	.slots = EXPOSE_TX_SLOTS,
	.slot_size = EXPOSE_TX_SLOT,
	.persistent = 0,                /* fed from lwIP input, never from a prepare watcher */
	.name = "expose_udp",
	.on_drop = flow_tx_drop_cb,
};

/* Queues one datagram for the local service behind f (connected socket: no address). */
static void
flow_send(struct udp_flow *f, const uint8_t *data, size_t len)
{
	if (udpbatch_add(f->tx, NULL, 0, data, len) != 0)
		drop(f->e, "local send failed");
}

static void
flow_free(struct udp_flow *f)
{
	struct expose *e = f->e;
	struct ev_loop *loop = e->t->loop;

	/* What the remote already sent still reaches the local service. */
	udpbatch_free(f->tx);
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
	struct ev_loop *loop = e->t->loop;
	struct udp_flow *f;
	struct sockaddr_in sin;
	int fd;

	if (e->n_flows >= EXPOSE_UDP_MAX_FLOWS) {
		drop(e, "too many flows");
		return NULL;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		drop(e, "socket failed");
		return NULL;
	}
	if (e->t->rx == NULL && table_rx_init(e->t) != 0) {
		close(fd);
		drop(e, "out of memory");
		return NULL;
	}
	loopback_addr(&sin, e->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		drop(e, "connect failed");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->tx = udpbatch_new(loop, fd, &flow_tx_conf, f)) == NULL) {
		free(f);
		close(fd);
		drop(e, "out of memory");
		return NULL;
	}
	f->e = e;
	f->ip = ip;
	f->port = port;
	f->key = (uint64_t)ip << 16 | port;
	f->last = ev_now(loop);
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
	f->last = ev_now(e->t->loop);
	flow_send(f, data, len);
}

/* Creates the virtual listener. 0, or -1 with errno when the netstack refused. */
static int
expose_activate(struct expose *e)
{
	struct netstack *ns = e->t->ns;

	if (e->udp) {
		e->u = ns_udp_bind(ns, e->port, udp_recv_cb, e);
		return e->u ? 0 : -1;
	}
	e->l = ns_listen(ns, e->port, open_fd_cb, e);
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
expose_table_new(struct ev_loop *loop, struct netstack *ns)
{
	struct expose_table *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->ns = ns;
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
	log_info("event=expose_added port=%u proto=%s", port, proto_str(udp));
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
