/*
 * transport: the daemon's one UDP socket. Receives in batches with recvmmsg() and hands each
 * datagram to one dispatch callback; sends go through a udpbatch (base/udpbatch.h): a
 * preallocated ring flushed with sendmmsg() once per loop pass or when it fills, with equal-size
 * datagrams to one endpoint leaving as one UDP_SEGMENT (GSO) message.
 *
 * Segmentation offload on receive: the socket asks for UDP_GRO, so the kernel may hand several
 * datagrams of one flow over as one buffer (the cmsg gives the segment size) and we split them
 * here. The wire format is unchanged and neither end needs the other to do GSO or GRO.
 *
 * Links (transport.h): a table by via of other modules' send functions; a send to an endpoint
 * with a via goes there instead of the socket, and what links receive comes back through here.
 *
 * Owns: the socket, its read watcher, the receive buffers and the send batch (allocated once),
 * the link table.
 * Must not: interpret packets (that is the dispatch callback's job) or keep any peer state.
 */
#include "config.h"
#include "core/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uthash.h>

#include "base/log.h"
#include "base/udpbatch.h"

enum {
	/* What we ask the kernel for, both ways. The receive side must absorb a whole TCP
	 * window burst (8 MiB of 1.4 KB datagrams is ~14 MB of kernel truesize) while the
	 * daemon is busy: with 4 MiB, UdpRcvbufErrors appeared on a 50 ms path, and every such
	 * loss costs lwIP's Reno many round trips to recover. Only used while we lag behind. */
	TP_SOCKBUF = 16 * 1024 * 1024,
	/* Send ring, a few lwIP bursts deep. 256 rather than 128 since GSO: a full ring then
	 * leaves as ~6 super-datagrams per sendmmsg, and in A/B runs the smaller ring more often
	 * fell into a slow mode (1.1 instead of 2+ Gbit/s through the overlay). ~380 KiB. */
	TP_TX_SLOTS = UDP_RECV_BATCH * 8,
	TP_RX_ROUNDS = 8,                       /* recvmmsg calls per wakeup, for fairness */
	/* Datagrams handled per wakeup: with GRO one round can carry many more than
	 * UDP_RECV_BATCH, so fairness is counted in datagrams, not calls. */
	TP_RX_BUDGET = TP_RX_ROUNDS * UDP_RECV_BATCH,
	/* A GRO receive buffer holds a whole coalesced super-datagram. 32 of them are 2 MiB per
	 * transport, touched only as far as the kernel fills them. */
	TP_GRO_BUF = 65535,
};

/* Room for one int-sized cmsg (UDP_GRO delivers an int). */
union tp_cmsg {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* One registered link (transport.h), keyed by via. */
struct tp_link {
	uint16_t via;
	const struct transport_link_ops *ops;
	void *arg;
	UT_hash_handle hh;
};

/* Owned by whoever called transport_new (the daemon); freed with transport_free. */
struct transport {
	struct ev_loop *loop;
	ev_io rio;                              /* readable */
	int fd;
	uint16_t port;
	transport_recv_cb cb;
	void *arg;

	/* Receive batch: UDP_RECV_BATCH buffers of rx_size bytes (TP_GRO_BUF with GRO, else
	 * UDP_MAX_PAYLOAD), headers pointing at them, set up once. */
	uint8_t *rx_buf;
	size_t rx_size;
	int gro;                                /* UDP_GRO is on: expect coalesced buffers */
	struct iovec rx_iov[UDP_RECV_BATCH];
	struct sockaddr_in rx_addr[UDP_RECV_BATCH];
	union tp_cmsg rx_cmsg[UDP_RECV_BATCH];
	struct mmsghdr rx_msg[UDP_RECV_BATCH];

	struct udpbatch *tx;                    /* the send ring */
	uint64_t rx_packets, rx_batches;

	struct tp_link *links;                  /* by via */
	unsigned n_links;
	uint16_t last_via;                      /* handed out last; the next search starts after */
	/* transport_alloc to a link: the datagram is built here and sent by commit. */
	uint8_t link_buf[UDP_MAX_PAYLOAD];
	struct endpoint link_to;
	int link_reserved;
	uint64_t link_rx, link_tx, link_dropped;
};

static void
set_bufsize(int fd, int force_opt, int opt)
{
	int sz = TP_SOCKBUF;

	/* The FORCE variants need CAP_NET_ADMIN; an ordinary user gets what rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, force_opt, &sz, sizeof(sz)) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, opt, &sz, sizeof(sz)) == -1)
		log_debug("event=udp_bufsize_failed opt=%d", opt);
}

/* Refused datagrams are counted by the batch; the reason is only worth a debug line. */
static void
tp_drop_cb(void *arg, int err, unsigned n)
{
	(void)arg;
	log_debug("event=udp_send_failed errno=%d dropped=%u", err, n);
}

static const struct udpbatch_conf tp_batch_conf = {
	.slots = TP_TX_SLOTS,
	.slot_size = UDP_MAX_PAYLOAD,
	/* Fed from the netstack's prepare watcher (window updates, splice output). */
	.persistent = 1,
	.name = "udp",
	.on_drop = tp_drop_cb,
};

void
transport_flush(struct transport *t)
{
	udpbatch_flush(t->tx);
}

/* The GRO segment size of a received buffer, 0 if the kernel did not coalesce it. */
static size_t
gro_segment(struct msghdr *h)
{
	struct cmsghdr *cm;
	int gs;

	for (cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(gs))) {
			memcpy(&gs, CMSG_DATA(cm), sizeof(gs));
			return gs > 0 ? (size_t)gs : 0;
		}
	}
	return 0;
}

static void
tp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct transport *t = w->data;
	size_t done = 0;
	int round, i, n;

	for (round = 0; round < TP_RX_ROUNDS && done < TP_RX_BUDGET; round++) {
		for (i = 0; i < UDP_RECV_BATCH; i++) {
			t->rx_msg[i].msg_hdr.msg_namelen = sizeof(t->rx_addr[i]);
			t->rx_msg[i].msg_hdr.msg_flags = 0;
			if (t->gro) {
				t->rx_msg[i].msg_hdr.msg_control = t->rx_cmsg[i].buf;
				t->rx_msg[i].msg_hdr.msg_controllen = sizeof(t->rx_cmsg[i].buf);
			}
			t->rx_msg[i].msg_len = 0;
		}
		n = recvmmsg(t->fd, t->rx_msg, UDP_RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_debug("event=udp_recv_failed errno=%d", errno);
			return;
		}
		if (n == 0)
			return;
		t->rx_batches++;
		for (i = 0; i < n; i++) {
			const struct sockaddr_in *sin = &t->rx_addr[i];
			uint8_t *buf = t->rx_buf + (size_t)i * t->rx_size;
			size_t len = t->rx_msg[i].msg_len, seg, off;
			struct endpoint from;

			/* Truncated datagrams and odd address families: drop. */
			if ((t->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) ||
			    t->rx_msg[i].msg_hdr.msg_namelen < sizeof(*sin) ||
			    sin->sin_family != AF_INET || len == 0)
				continue;
			seg = t->gro ? gro_segment(&t->rx_msg[i].msg_hdr) : 0;
			if (seg == 0)
				seg = len;
			/* A GRO buffer is larger than any datagram of ours, so "oversized" is
			 * checked here, per datagram, as MSG_TRUNC did without GRO. */
			if (seg > UDP_MAX_PAYLOAD)
				continue;
			from.addr = ntohl(sin->sin_addr.s_addr);
			from.port = ntohs(sin->sin_port);
			from.via = 0;
			for (off = 0; off < len; off += seg) {
				size_t l = len - off < seg ? len - off : seg;

				t->rx_packets++;
				done++;
				t->cb(t->arg, &from, buf + off, l);
			}
		}
		if (n < UDP_RECV_BATCH)
			return;
	}
}

struct transport *
transport_new(struct ev_loop *loop, uint16_t port, transport_recv_cb cb, void *arg)
{
	return transport_new_at(loop, 0, port, cb, arg);
}

struct transport *
transport_new_at(struct ev_loop *loop, uint32_t addr, uint16_t port, transport_recv_cb cb,
    void *arg)
{
	struct transport *t;
	struct udpbatch_stats bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	size_t i;
	int on = 1;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_warn("event=transport_alloc_failed");
		return NULL;
	}
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd == -1) {
		log_warn("event=udp_socket_failed");
		free(t);
		return NULL;
	}
	set_bufsize(t->fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_bufsize(t->fd, SO_SNDBUFFORCE, SO_SNDBUF);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(addr);
	sin.sin_port = htons(port);
	if (bind(t->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		log_warn("event=udp_bind_failed port=%u", (unsigned)port);
		goto fail;
	}
	if (getsockname(t->fd, (struct sockaddr *)&sin, &sl) == -1) {
		log_warn("event=udp_getsockname_failed");
		goto fail;
	}
	t->port = ntohs(sin.sin_port);
	/* `shoal run` binds peers' aliases (127.66.x.y:P, lanproxy/server/alias.c) on whatever
	 * port a peer's program used, ours included: that bind conflicts with this wildcard
	 * socket unless it allows sharing. The kernel reads the option when a later bind asks,
	 * so it is set after our bind (which then still gets a port nobody holds); the alias,
	 * the more specific binding, gets its own datagrams. Only our own uid may share. */
	(void)setsockopt(t->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));

	/* GRO is only worth its big buffers where the kernel supports it. */
	t->gro = setsockopt(t->fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
	t->rx_size = t->gro ? TP_GRO_BUF : UDP_MAX_PAYLOAD;
	if ((t->rx_buf = calloc(UDP_RECV_BATCH, t->rx_size)) == NULL) {
		log_warn("event=transport_alloc_failed");
		goto fail;
	}
	if ((t->tx = udpbatch_new(loop, t->fd, &tp_batch_conf, t)) == NULL)
		goto fail;
	udpbatch_get_stats(t->tx, &bs);
	log_debug("event=udp_offload gso=%d gro=%d", bs.gso, t->gro);

	for (i = 0; i < UDP_RECV_BATCH; i++) {
		t->rx_iov[i].iov_base = t->rx_buf + i * t->rx_size;
		t->rx_iov[i].iov_len = t->rx_size;
		t->rx_msg[i].msg_hdr.msg_name = &t->rx_addr[i];
		t->rx_msg[i].msg_hdr.msg_iov = &t->rx_iov[i];
		t->rx_msg[i].msg_hdr.msg_iovlen = 1;
	}

	ev_io_init(&t->rio, tp_read_cb, t->fd, EV_READ);
	t->rio.data = t;
	ev_io_start(loop, &t->rio);
	return t;

fail:
	close(t->fd);
	free(t->rx_buf);
	free(t);
	return NULL;
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	struct tp_link *l, *tmp;

	ev_io_stop(t->loop, &t->rio);
	HASH_ITER(hh, t->links, l, tmp) {
		HASH_DEL(t->links, l);
		free(l);
	}
	udpbatch_free(t->tx);   /* sends what is still queued */
	close(t->fd);
	free(t->rx_buf);
	free(t);
}

uint16_t
transport_port(const struct transport *t)
{
	return t->port;
}

static void
ep_sockaddr(struct sockaddr_in *sin, const struct endpoint *ep)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ep->addr);
	sin->sin_port = htons(ep->port);
}

static void
link_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct tp_link *l;
	uint16_t via = to->via;

	HASH_FIND(hh, t->links, &via, sizeof(via), l);
	if (l == NULL || l->ops->send(l->arg, to, pkt, len) != 0) {
		t->link_dropped++;
		return;
	}
	t->link_tx++;
}

uint8_t *
transport_alloc(struct transport *t, const struct endpoint *to)
{
	struct sockaddr_in sin;

	if (to->via != 0) {
		t->link_to = *to;
		t->link_reserved = 1;
		return t->link_buf;
	}
	ep_sockaddr(&sin, to);
	return udpbatch_slot(t->tx, (const struct sockaddr *)&sin, sizeof(sin));
}

void
transport_commit(struct transport *t, size_t len)
{
	if (t->link_reserved) {
		t->link_reserved = 0;
		if (len > 0)
			link_send(t, &t->link_to, t->link_buf, len);
		return;
	}
	udpbatch_commit(t->tx, len);
}

int
transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in sin;

	if (len > UDP_MAX_PAYLOAD)
		return -1;
	if (to->via != 0) {
		link_send(t, to, pkt, len);
		return 0;
	}
	ep_sockaddr(&sin, to);
	/* A failure is a drop the batch counted, as the kernel would have dropped it. */
	(void)udpbatch_add(t->tx, (const struct sockaddr *)&sin, sizeof(sin), pkt, len);
	return 0;
}

uint16_t
transport_link_add(struct transport *t, const struct transport_link_ops *ops, void *arg)
{
	struct tp_link *l, *found;
	uint16_t via = t->last_via;
	unsigned tries;

	/* Round robin over 1..65535, skipping vias in use (at most 65535 of them can be). */
	for (tries = 0; tries < 65535; tries++) {
		via = via == 65535 ? 1 : (uint16_t)(via + 1);
		HASH_FIND(hh, t->links, &via, sizeof(via), found);
		if (found == NULL)
			break;
	}
	if (tries == 65535 || (l = calloc(1, sizeof(*l))) == NULL) {
		log_warn("event=transport_link_failed links=%u", t->n_links);
		return 0;
	}
	l->via = via;
	l->ops = ops;
	l->arg = arg;
	HASH_ADD(hh, t->links, via, sizeof(l->via), l);
	t->n_links++;
	t->last_via = via;
	return via;
}

void
transport_link_del(struct transport *t, uint16_t via)
{
	struct tp_link *l;

	HASH_FIND(hh, t->links, &via, sizeof(via), l);
	if (l == NULL)
		return;
	HASH_DEL(t->links, l);
	free(l);
	t->n_links--;
}

const char *
transport_link_kind(const struct transport *t, uint16_t via)
{
	struct tp_link *l;

	if (via == 0)
		return "udp";
	HASH_FIND(hh, t->links, &via, sizeof(via), l);
	if (l == NULL)
		return NULL;
	return l->ops->kind != NULL ? l->ops->kind : "udp";
}

void
transport_link_input(struct transport *t, uint16_t via, uint32_t addr, uint16_t port,
    uint8_t *pkt, size_t len)
{
	struct endpoint from = { .addr = addr, .port = port, .via = via };

	if (len == 0 || len > UDP_MAX_PAYLOAD)
		return;
	t->rx_packets++;
	t->link_rx++;
	t->cb(t->arg, &from, pkt, len);
}

static int
ep_seen(const struct endpoint *out, size_t n, uint32_t addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (out[i].addr == addr)
			return 1;
	return 0;
}

size_t
transport_local_endpoints(const struct transport *t, struct endpoint *out, size_t max)
{
	struct ifaddrs *ifa0, *ifa;
	size_t n = 0;
	int pass;

	if (getifaddrs(&ifa0) == -1) {
		log_warn("event=getifaddrs_failed");
		return 0;
	}
	/* Pass 0: real interfaces; pass 1: loopback, last (only useful on the same host). */
	for (pass = 0; pass < 2; pass++) {
		for (ifa = ifa0; ifa && n < max; ifa = ifa->ifa_next) {
			const struct sockaddr_in *sin;
			uint32_t a;
			int lo;

			if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET ||
			    !(ifa->ifa_flags & IFF_UP))
				continue;
			lo = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
			if (lo != pass)
				continue;
			sin = (const struct sockaddr_in *)(const void *)ifa->ifa_addr;
			a = ntohl(sin->sin_addr.s_addr);
			if (a == 0 || ep_seen(out, n, a))
				continue;
			out[n].addr = a;
			out[n].port = t->port;
			n++;
		}
	}
	freeifaddrs(ifa0);
	return n;
}

void
transport_get_stats(const struct transport *t, struct transport_stats *st)
{
	struct udpbatch_stats bs;

	udpbatch_get_stats(t->tx, &bs);
	st->rx_packets = t->rx_packets;
	st->rx_batches = t->rx_batches;
	st->tx_packets = bs.packets + t->link_tx;
	st->tx_batches = bs.batches;
	st->tx_dropped = bs.dropped + t->link_dropped;
	st->link_rx = t->link_rx;
	st->link_tx = t->link_tx;
	st->links = t->n_links;
}
