/*
 * transport: the daemon's peer UDP sockets: one IPv4, and beside it one IPv6 (IPV6_V6ONLY, on
 * the same port) where the host has IPv6. Each receives in batches with recvmmsg() and hands
 * each datagram, with its source as an endpoint of its family, to one dispatch callback; sends go through a udpbatch (base/udpbatch.h): a
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
 * A send picks the socket by the endpoint's family; each socket has its own udpbatch, so
 * IPv6 is batched (and GSO'd) exactly like IPv4. The IPv6 socket is optional: when it cannot
 * be made (no IPv6 in this namespace, the port taken) that is logged once and IPv6 endpoints
 * are dropped as the kernel would drop them (counted as tx_dropped).
 *
 * Owns: the sockets, their read watchers, receive buffers and send batches (allocated once),
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
#include <stdio.h>
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

struct transport;

union tp_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* One UDP socket of the transport (IPv4 or IPv6) with its receive batch and send ring. */
struct tp_sock {
	struct transport *t;
	ev_io rio;                              /* readable */
	int fd;                                 /* -1: not there (no IPv6) */

	/* Receive batch: UDP_RECV_BATCH buffers of rx_size bytes (TP_GRO_BUF with GRO, else
	 * UDP_MAX_PAYLOAD), headers pointing at them, set up once. */
	uint8_t *rx_buf;
	size_t rx_size;
	int gro;                                /* UDP_GRO is on: expect coalesced buffers */
	struct iovec rx_iov[UDP_RECV_BATCH];
	union tp_addr rx_addr[UDP_RECV_BATCH];
	union tp_cmsg rx_cmsg[UDP_RECV_BATCH];
	struct mmsghdr rx_msg[UDP_RECV_BATCH];

	struct udpbatch *tx;                    /* the send ring */
};

enum { TP_V4 = 0, TP_V6 = 1 };

/* Owned by whoever called transport_new (the daemon); freed with transport_free. */
struct transport {
	struct ev_loop *loop;
	struct tp_sock s[2];                    /* TP_V4, TP_V6 */
	uint16_t port;
	transport_recv_cb cb;
	void *arg;
	uint64_t rx_packets, rx_batches;
	uint64_t v6_dropped;                    /* IPv6 endpoints without an IPv6 socket */

	struct tp_link *links;                  /* by via */
	unsigned n_links;
	uint16_t last_via;                      /* handed out last; the next search starts after */
	/* transport_alloc to a link: the datagram is built here and sent by commit. */
	uint8_t link_buf[UDP_MAX_PAYLOAD];
	struct endpoint link_to;
	int link_reserved;
	uint64_t link_rx, link_tx, link_dropped;
	struct udpbatch *reserved;              /* the ring transport_alloc reserved a slot in */
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
	udpbatch_flush(t->s[TP_V4].tx);
	if (t->s[TP_V6].tx != NULL)
		udpbatch_flush(t->s[TP_V6].tx);
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
	struct tp_sock *ts = w->data;
	struct transport *t = ts->t;
	size_t done = 0;
	int round, i, n;

	for (round = 0; round < TP_RX_ROUNDS && done < TP_RX_BUDGET; round++) {
		for (i = 0; i < UDP_RECV_BATCH; i++) {
			ts->rx_msg[i].msg_hdr.msg_namelen = sizeof(ts->rx_addr[i]);
			ts->rx_msg[i].msg_hdr.msg_flags = 0;
			if (ts->gro) {
				ts->rx_msg[i].msg_hdr.msg_control = ts->rx_cmsg[i].buf;
				ts->rx_msg[i].msg_hdr.msg_controllen = sizeof(ts->rx_cmsg[i].buf);
			}
			ts->rx_msg[i].msg_len = 0;
		}
		n = recvmmsg(ts->fd, ts->rx_msg, UDP_RECV_BATCH, MSG_DONTWAIT, NULL);
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
			uint8_t *buf = ts->rx_buf + (size_t)i * ts->rx_size;
			size_t len = ts->rx_msg[i].msg_len, seg, off;
			struct endpoint from;

			/* Truncated datagrams and odd address families: drop. */
			if ((ts->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) || len == 0 ||
			    ep_from_sockaddr(&from, &ts->rx_addr[i].sa,
			    ts->rx_msg[i].msg_hdr.msg_namelen) != 0)
				continue;
			seg = ts->gro ? gro_segment(&ts->rx_msg[i].msg_hdr) : 0;
			if (seg == 0)
				seg = len;
			/* A GRO buffer is larger than any datagram of ours, so "oversized" is
			 * checked here, per datagram, as MSG_TRUNC did without GRO. */
			if (seg > UDP_MAX_PAYLOAD)
				continue;
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

static struct transport *tp_new(struct ev_loop *loop, uint32_t addr, uint16_t port, int v6,
    transport_recv_cb cb, void *arg);

struct transport *
transport_new(struct ev_loop *loop, uint16_t port, transport_recv_cb cb, void *arg)
{
	return tp_new(loop, 0, port, 1, cb, arg);
}

/* Closes the socket and frees its buffers (its watcher is stopped by the caller). */
static void
sock_close(struct tp_sock *ts)
{
	udpbatch_free(ts->tx);  /* sends what is still queued */
	ts->tx = NULL;
	if (ts->fd >= 0)
		close(ts->fd);
	ts->fd = -1;
	free(ts->rx_buf);
	ts->rx_buf = NULL;
}

/*
 * Opens one socket of family fam (AF_INET or AF_INET6) on sa, with its buffers, send ring and
 * read watcher. 0, or -1 with the socket left closed; `quiet` makes failures debug lines (the
 * optional IPv6 socket logs its one line itself).
 */
static int
sock_open(struct transport *t, struct tp_sock *ts, const struct sockaddr *sa, socklen_t sl,
    int quiet)
{
	struct udpbatch_stats bs;
	size_t i;
	int on = 1;

	ts->t = t;
	ts->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ts->fd == -1) {
		if (!quiet)
			log_warn("event=udp_socket_failed");
		return -1;
	}
	/* The IPv6 socket takes IPv6 only: IPv4 stays on its own socket, with its own port
	 * binding, whatever net.ipv6.bindv6only says. */
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(ts->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	set_bufsize(ts->fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_bufsize(ts->fd, SO_SNDBUFFORCE, SO_SNDBUF);
	if (bind(ts->fd, sa, sl) == -1) {
		if (!quiet)
			log_warn("event=udp_bind_failed port=%u", (unsigned)t->port);
		goto fail;
	}
	/* `shoal run` binds peers' aliases (127.66.x.y:P, lanproxy/server/alias.c) on whatever
	 * port a peer's program used, ours included: that bind conflicts with this wildcard
	 * socket unless it allows sharing. The kernel reads the option when a later bind asks,
	 * so it is set after our bind (which then still gets a port nobody holds); the alias,
	 * the more specific binding, gets its own datagrams. Only our own uid may share. */
	(void)setsockopt(ts->fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));

	/* GRO is only worth its big buffers where the kernel supports it. */
	ts->gro = setsockopt(ts->fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
	ts->rx_size = ts->gro ? TP_GRO_BUF : UDP_MAX_PAYLOAD;
	if ((ts->rx_buf = calloc(UDP_RECV_BATCH, ts->rx_size)) == NULL) {
		log_warn("event=transport_alloc_failed");
		goto fail;
	}
	if ((ts->tx = udpbatch_new(t->loop, ts->fd, &tp_batch_conf, t)) == NULL)
		goto fail;
	udpbatch_get_stats(ts->tx, &bs);
	log_debug("event=udp_offload family=%s gso=%d gro=%d",
	    sa->sa_family == AF_INET6 ? "ipv6" : "ipv4", bs.gso, ts->gro);

	for (i = 0; i < UDP_RECV_BATCH; i++) {
		ts->rx_iov[i].iov_base = ts->rx_buf + i * ts->rx_size;
		ts->rx_iov[i].iov_len = ts->rx_size;
		ts->rx_msg[i].msg_hdr.msg_name = &ts->rx_addr[i];
		ts->rx_msg[i].msg_hdr.msg_iov = &ts->rx_iov[i];
		ts->rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
	ev_io_init(&ts->rio, tp_read_cb, ts->fd, EV_READ);
	ts->rio.data = ts;
	ev_io_start(t->loop, &ts->rio);
	return 0;

fail:
	sock_close(ts);
	return -1;
}

struct transport *
transport_new_at(struct ev_loop *loop, uint32_t addr, uint16_t port, transport_recv_cb cb,
    void *arg)
{
	return tp_new(loop, addr, port, 0, cb, arg);
}

static struct transport *
tp_new(struct ev_loop *loop, uint32_t addr, uint16_t port, int v6, transport_recv_cb cb,
    void *arg)
{
	struct transport *t;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	socklen_t sl = sizeof(sin);

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_warn("event=transport_alloc_failed");
		return NULL;
	}
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->port = port;
	t->s[TP_V4].fd = t->s[TP_V6].fd = -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(addr);
	sin.sin_port = htons(port);
	if (sock_open(t, &t->s[TP_V4], (const struct sockaddr *)&sin, sizeof(sin), 0) == -1)
		goto fail;
	if (getsockname(t->s[TP_V4].fd, (struct sockaddr *)&sin, &sl) == -1) {
		log_warn("event=udp_getsockname_failed");
		goto fail;
	}
	t->port = ntohs(sin.sin_port);
	/* IPv6 for the daemon's peer transport only (relays register IPv4 endpoints and listen
	 * where told), on the same port so peers see one port per host. */
	if (v6) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_any;
		sin6.sin6_port = htons(t->port);
		if (sock_open(t, &t->s[TP_V6], (const struct sockaddr *)&sin6, sizeof(sin6),
		    1) == -1)
			log_info("event=udp6_unavailable port=%u errno=%d", (unsigned)t->port,
			    errno);
	}
	return t;

fail:
	if (t->s[TP_V4].fd >= 0)
		ev_io_stop(loop, &t->s[TP_V4].rio);
	sock_close(&t->s[TP_V4]);
	free(t);
	return NULL;
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	struct tp_link *l, *tmp;
	int i;

	HASH_ITER(hh, t->links, l, tmp) {
		HASH_DEL(t->links, l);
		free(l);
	}
	for (i = 0; i < 2; i++) {
		if (t->s[i].fd >= 0)
			ev_io_stop(t->loop, &t->s[i].rio);
		sock_close(&t->s[i]);
	}
	free(t);
}

int
transport_has_v6(const struct transport *t)
{
	return t->s[TP_V6].fd >= 0;
}

uint16_t
transport_port(const struct transport *t)
{
	return t->port;
}

/* The send ring for ep's family, or NULL for IPv6 without an IPv6 socket (counted). */
static struct udpbatch *
tx_for(struct transport *t, const struct endpoint *ep)
{
	struct udpbatch *b = t->s[ep_is_v6(ep) ? TP_V6 : TP_V4].tx;

	if (b == NULL)
		t->v6_dropped++;
	return b;
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
	struct sockaddr_storage ss;
	struct udpbatch *b;
	socklen_t sl;

	if (to->via != 0) {
		t->link_to = *to;
		t->link_reserved = 1;
		return t->link_buf;
	}
	if ((b = tx_for(t, to)) == NULL)
		return NULL;
	sl = ep_to_sockaddr(to, &ss);
	t->reserved = b;
	return udpbatch_slot(b, (const struct sockaddr *)&ss, sl);
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
	if (t->reserved != NULL)
		udpbatch_commit(t->reserved, len);
	t->reserved = NULL;
}

int
transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct sockaddr_storage ss;
	struct udpbatch *b;
	socklen_t sl;

	if (len > UDP_MAX_PAYLOAD)
		return -1;
	if (to->via != 0) {
		link_send(t, to, pkt, len);
		return 0;
	}
	if ((b = tx_for(t, to)) == NULL)
		return 0;
	sl = ep_to_sockaddr(to, &ss);
	/* A failure is a drop the batch counted, as the kernel would have dropped it. */
	(void)udpbatch_add(b, (const struct sockaddr *)&ss, sl, pkt, len);
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

/* Flags of /proc/net/if_inet6 (linux/if_addr.h IFA_F_*). */
enum {
	TP_IFA_TEMPORARY = 0x01, TP_IFA_DADFAILED = 0x08, TP_IFA_DEPRECATED = 0x20,
	TP_IFA_TENTATIVE = 0x40,
};

/*
 * A global IPv6 address a peer can reach us at: global unicast (2000::/3) and neither
 * Teredo (2001::/32, a tunnel that needs its own relay), nor deprecated (preferred lifetime
 * 0: about to go away), nor a temporary privacy address, nor still in (or failed) DAD.
 * Link-local (fe80::/10) and ULA (fc00::/7) are outside 2000::/3.
 */
static int
v6_candidate(const uint8_t a[16], unsigned flags)
{
	if ((a[0] & 0xe0) != 0x20)
		return 0;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
		return 0;
	return !(flags & (TP_IFA_TEMPORARY | TP_IFA_DADFAILED | TP_IFA_DEPRECATED |
	    TP_IFA_TENTATIVE));
}

static int
hexbyte(const char *p, uint8_t *out)
{
	unsigned v;

	if (sscanf(p, "%2x", &v) != 1)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/*
 * Our global IPv6 addresses with the IPv6 socket's port, at most max. Read from
 * /proc/net/if_inet6 rather than getifaddrs(), which does not say whether an address is
 * deprecated, temporary or tentative. Fixed format: 32 hex digits, index, prefix length,
 * scope, flags (all hex), name.
 */
static size_t
local_v6(const struct transport *t, struct endpoint *out, size_t max)
{
	char line[256], hex[33], name[IFNAMSIZ + 1];
	unsigned idx, plen, scope, flags;
	uint8_t a[16];
	size_t n = 0, i, j;
	FILE *f;

	if (max == 0 || t->s[TP_V6].fd < 0 || (f = fopen("/proc/net/if_inet6", "re")) == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags,
		    name) != 6 || strlen(hex) != 32)
			continue;
		for (i = 0; i < 16 && hexbyte(hex + 2 * i, &a[i]) == 0; i++)
			;
		if (i < 16 || !v6_candidate(a, flags))
			continue;
		for (j = 0; j < n && memcmp(out[j].addr6, a, 16) != 0; j++)
			;
		if (j < n)
			continue;
		ep_set_v6(&out[n++], a, t->port);
	}
	fclose(f);
	return n;
}

size_t
transport_local_endpoints(const struct transport *t, struct endpoint *out, size_t max)
{
	struct endpoint v6[ENDPOINTS_V6_MAX];
	struct ifaddrs *ifa0, *ifa;
	size_t n = 0, n6, max4, i;
	int pass;

	/* IPv4 first, but room is kept for up to ENDPOINTS_V6_MAX global IPv6 addresses. */
	n6 = local_v6(t, v6, max < ENDPOINTS_V6_MAX ? max : ENDPOINTS_V6_MAX);
	max4 = max - n6;
	if (getifaddrs(&ifa0) == -1) {
		log_warn("event=getifaddrs_failed");
		ifa0 = NULL;
	}
	/* Pass 0: real interfaces; pass 1: loopback, last (only useful on the same host). */
	for (pass = 0; pass < 2 && ifa0 != NULL; pass++) {
		for (ifa = ifa0; ifa && n < max4; ifa = ifa->ifa_next) {
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
			memset(&out[n], 0, sizeof(out[n]));
			out[n].addr = a;
			out[n].port = t->port;
			n++;
		}
	}
	if (ifa0 != NULL)
		freeifaddrs(ifa0);
	for (i = 0; i < n6; i++)
		out[n++] = v6[i];
	return n;
}

void
transport_get_stats(const struct transport *t, struct transport_stats *st)
{
	struct udpbatch_stats bs, bs6;

	memset(&bs6, 0, sizeof(bs6));
	udpbatch_get_stats(t->s[TP_V4].tx, &bs);
	if (t->s[TP_V6].tx != NULL)
		udpbatch_get_stats(t->s[TP_V6].tx, &bs6);
	st->rx_packets = t->rx_packets;
	st->rx_batches = t->rx_batches;
	st->tx_packets = bs.packets + bs6.packets + t->link_tx;
	st->tx_batches = bs.batches + bs6.batches;
	st->tx_dropped = bs.dropped + bs6.dropped + t->link_dropped + t->v6_dropped;
	st->link_rx = t->link_rx;
	st->link_tx = t->link_tx;
	st->links = t->n_links;
}
