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
 * Owns: the expose table, its ns_listeners / ns_udps, UDP flows and their sockets and timers.
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

#include "core/log.h"
#include "daemon/daemon.h"
#include "daemon/expose.h"
#include "netstack/netstack.h"

enum {
	EXPOSE_UDP_IDLE = 60,           /* s without traffic either way: the flow is closed */
	EXPOSE_UDP_MAX_FLOWS = 256,     /* per exposed UDP port; more remotes are dropped */
	EXPOSE_UDP_BUF = 65536,
	EXPOSE_UDP_BATCH = 64,          /* datagrams per readiness event, then yield */
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

/* Owned by the daemon (d->expose). */
struct expose_table {
	struct daemon *d;
	struct expose *list;
	uint8_t buf[EXPOSE_UDP_BUF];    /* receive buffer shared by every flow (one loop) */
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

static void
flow_free(struct udp_flow *f)
{
	struct expose *e = f->e;
	struct ev_loop *loop = e->t->d->loop;

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
	uint8_t *buf = e->t->buf;
	ssize_t r;
	int i;

	(void)revents;
	for (i = 0; i < EXPOSE_UDP_BATCH; i++) {
		r = recv(f->io.fd, buf, EXPOSE_UDP_BUF, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ECONNREFUSED: nothing listens locally (yet); the remote will retry. */
			continue;
		}
		f->last = ev_now(loop);
		if (e->u == NULL || ns_udp_sendto(e->u, f->ip, f->port, buf, (size_t)r) != 0)
			drop(e, "overlay send failed");
	}
}

static struct udp_flow *
flow_new(struct expose *e, uint32_t ip, uint16_t port)
{
	struct ev_loop *loop = e->t->d->loop;
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
	if (send(f->io.fd, data, len, MSG_NOSIGNAL) < 0)
		drop(e, "local send failed");
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
