/*
 * socks5_udp: the UDP ASSOCIATE relay. One association = one kernel UDP socket facing the
 * SOCKS client (bound to the address the client reached our SOCKS port at, port 0) and one
 * ns_udp on the overlay (ephemeral port). Client datagrams carry the SOCKS UDP header; we
 * strip it, resolve the destination like CONNECT does, and send the payload from our ns_udp.
 * Overlay datagrams come back wrapped in a header naming their sender.
 * Owns: the kernel socket, the ns_udp, the receive buffer and the send batch. Lifetime: the
 * control connection (socks5_server.c frees us when it closes). Must not touch the control
 * connection itself.
 *
 * Who counts as the client: datagrams are accepted only from the IP the control connection
 * came from, or from the DST.ADDR the request named when it is not all zeros; the first
 * accepted datagram then fixes the client's full address (also its port, if the request
 * named one it must match). With owner_only its socket must be our uid's (sock_diag).
 * FRAG != 0 (fragmentation) is not supported: such datagrams are dropped, as RFC 1928 allows.
 *
 * Batching: the client socket is read with recvmmsg into a receive batch allocated once per
 * association (a bounded number of calls per wakeup, so one busy client cannot starve the
 * loop). Datagrams for the client are copied into the association's udpbatch
 * (base/udpbatch.h) and leave with one sendmmsg per loop pass; a datagram too big for a slot
 * is sent on its own after what is queued, so order holds.
 */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sockowner.h"
#include "base/udpbatch.h"
#include "netstack/netstack.h"
#include "socks/socks5_internal.h"
#include "socks/socks5_parse.h"

enum {
	S5_UDP_BUF = 65536,             /* the largest datagram the kernel can hand us */
	S5_UDP_RX_BATCH = 32,           /* datagrams per recvmmsg */
	S5_UDP_RX_ROUNDS = 8,           /* recvmmsg calls per readiness event, then yield */
	S5_UDP_TX_SLOTS = 32,           /* datagrams to the client queued per loop pass */
	S5_UDP_TX_SLOT = 2048,          /* header + payload; bigger ones are sent at once */
	/*
	 * Receive buffer of the client socket. The default (~200 KiB, ~250 small datagrams)
	 * overflows whenever the daemon is off the CPU for a millisecond while a game or a
	 * benchmark sends flat out; with this the kernel holds ~25 ms of 64-byte datagrams at
	 * 200 kpkt/s. A ceiling, not an allocation.
	 */
	S5_UDP_SOCKBUF = 4 << 20,
};

/*
 * One receive batch. Owned by its association. Every slot holds the largest datagram, so
 * nothing is ever truncated; the block is calloc'd (mmap'd), and only pages the kernel
 * writes become resident, about one page per slot for small datagrams.
 */
struct s5_udp_rx {
	struct mmsghdr msg[S5_UDP_RX_BATCH];
	struct iovec iov[S5_UDP_RX_BATCH];
	struct sockaddr_storage from[S5_UDP_RX_BATCH];
	uint8_t buf[S5_UDP_RX_BATCH][S5_UDP_BUF];
};

/* One association. Owned by its socks5_server.c client. */
struct s5_udp {
	ev_io io;                       /* the client-facing UDP socket; first member */
	const struct socks_ctx *cx;
	struct ns_udp *nu;
	struct udpbatch *tx;            /* datagrams to the client */
	struct s5_addr want;            /* required source IP (ATYP 0: none) */
	uint16_t want_port;             /* required source port, 0: any */
	struct sockaddr_storage client; /* fixed by the first accepted datagram */
	struct sockaddr_storage bound;  /* our client-facing socket's address */
	socklen_t client_len;
	int have_client;
	uint64_t dropped;
	struct s5_udp_rx *rx;
};

static int
same_ip(const struct s5_addr *a, const struct s5_addr *b)
{
	if (a->atyp != b->atyp)
		return 0;
	if (a->atyp == S5_ATYP_IPV4)
		return a->ip4 == b->ip4;
	return memcmp(a->ip6, b->ip6, sizeof(a->ip6)) == 0;
}

static int
accept_from(struct s5_udp *u, const struct sockaddr_storage *from, socklen_t fromlen)
{
	struct s5_addr f;

	if (u->have_client)
		return fromlen == u->client_len && memcmp(from, &u->client, fromlen) == 0;
	socks5_addr_from_sockaddr(&f, from);
	if (u->want.atyp != 0 && !same_ip(&f, &u->want))
		return 0;
	if (u->want_port != 0 && f.port != u->want_port)
		return 0;
	/* On a shared machine another user could send from the client's IP first and take the
	 * association over: the sending socket must be our user's, as the control connection's. */
	if (u->cx->owner_only) {
		uid_t uid;

		if (sockowner_udp_uid(from, &u->bound, &uid) != 0 || uid != getuid())
			return 0;
	}
	memcpy(&u->client, from, fromlen);
	u->client_len = fromlen;
	u->have_client = 1;
	return 1;
}

static void
drop(struct s5_udp *u, const char *why)
{
	/* Counted always, logged only for the first few: a noisy client must not flood the log. */
	if (u->dropped++ < 8)
		log_debug("event=socks_udp_drop why=\"%s\"", why);
}

static void
client_datagram(struct s5_udp *u, const uint8_t *buf, size_t len)
{
	struct s5_udp_header h;
	struct s5_err err;
	uint32_t ip = 0;

	if (s5_parse_udp(buf, len, &h, &err) != S5_COMPLETE) {
		drop(u, err.why);
		return;
	}
	if (h.frag != 0) {
		drop(u, "fragmented datagram");
		return;
	}
	if (socks5_resolve(u->cx, &h.dst, 1, &ip) != S5_REP_OK) {
		drop(u, "destination not reachable");
		return;
	}
	if (ns_udp_sendto(u->nu, ip, h.dst.port, h.data, h.data_len) != 0)
		drop(u, "overlay send failed");
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct s5_udp *u = (struct s5_udp *)w;
	struct s5_udp_rx *rx = u->rx;
	int round, i, n;

	(void)loop;
	(void)revents;
	for (round = 0; round < S5_UDP_RX_ROUNDS; round++) {
		for (i = 0; i < S5_UDP_RX_BATCH; i++) {
			rx->msg[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
			rx->msg[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(u->io.fd, rx->msg, S5_UDP_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ECONNREFUSED etc. from an earlier send: nothing to do about it here. */
			continue;
		}
		for (i = 0; i < n; i++) {
			if (!accept_from(u, &rx->from[i], rx->msg[i].msg_hdr.msg_namelen)) {
				drop(u, "datagram from a stranger");
				continue;
			}
			client_datagram(u, rx->buf[i], rx->msg[i].msg_len);
		}
		/* A short batch drained the socket: skip the call that would say EAGAIN. */
		if (n < S5_UDP_RX_BATCH)
			return;
	}
}

/* The kernel refused queued datagrams to the client (e.g. a reported ICMP error). */
static void
tx_drop_cb(void *arg, int err, unsigned n)
{
	struct s5_udp *u = arg;

	(void)err;
	while (n-- > 0)
		drop(u, "send to client failed");
}

static const struct udpbatch_conf tx_conf = {
	.slots = S5_UDP_TX_SLOTS,
	.slot_size = S5_UDP_TX_SLOT,
	.persistent = 0,                /* fed from lwIP input, never from a prepare watcher */
	.name = "socks_udp",
	.on_drop = tx_drop_cb,
};

static void
overlay_recv_cb(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip,
    const uint8_t *data, size_t len)
{
	struct s5_udp *u = arg;
	struct s5_addr src;
	uint8_t hdr[S5_UDP_HEADER_MAX];
	struct iovec iov[2];

	(void)dst_ip;
	if (!u->have_client) {
		drop(u, "overlay datagram before the client spoke");
		return;
	}
	memset(&src, 0, sizeof(src));
	src.atyp = S5_ATYP_IPV4;
	src.ip4 = src_ip;
	src.port = src_port;
	iov[0].iov_base = hdr;
	iov[0].iov_len = s5_encode_udp_header(hdr, sizeof(hdr), &src);
	iov[1].iov_base = (void *)(uintptr_t)data;
	iov[1].iov_len = len;
	if (udpbatch_addv(u->tx, (const struct sockaddr *)&u->client, u->client_len, iov, 2) != 0)
		drop(u, "send to client failed");
}

static void
set_rcvbuf(int fd)
{
	int sz = S5_UDP_SOCKBUF;

	/* The FORCE variant needs CAP_NET_ADMIN; otherwise rmem_max caps what we get. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) != 0)
		log_debug("event=socks_udp_rcvbuf_failed");
}

/* Points every receive slot at its buffer and address once; only lengths change later. */
static void
batch_init(struct s5_udp *u)
{
	struct s5_udp_rx *rx = u->rx;
	int i;

	for (i = 0; i < S5_UDP_RX_BATCH; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = sizeof(rx->buf[i]);
		rx->msg[i].msg_hdr.msg_name = &rx->from[i];
		rx->msg[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msg[i].msg_hdr.msg_iovlen = 1;
	}
}

struct s5_udp *
s5_udp_new(const struct socks_ctx *cx, int ctl_fd, const struct s5_addr *hint,
    struct s5_addr *bnd, int *rep)
{
	struct s5_udp *u;
	struct sockaddr_storage local, peer, bound;
	socklen_t llen = sizeof(local), plen = sizeof(peer), blen = sizeof(bound);
	struct s5_addr zero;
	int fd;

	*rep = S5_REP_FAILURE;
	if (getsockname(ctl_fd, (struct sockaddr *)&local, &llen) != 0 ||
	    getpeername(ctl_fd, (struct sockaddr *)&peer, &plen) != 0) {
		log_warn("event=socks_udp_failed step=getsockname");
		return NULL;
	}
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else if (local.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	else
		return NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL || (u->rx = calloc(1, sizeof(*u->rx))) == NULL) {
		log_warnx("event=socks_udp_failed step=alloc");
		free(u);
		return NULL;
	}
	u->cx = cx;
	batch_init(u);

	memset(&zero, 0, sizeof(zero));
	zero.atyp = hint->atyp;
	if ((hint->atyp == S5_ATYP_IPV4 && hint->ip4 != 0) ||
	    (hint->atyp == S5_ATYP_IPV6 && !same_ip(hint, &zero))) {
		u->want = *hint;
		u->want.port = 0;
	} else {
		socks5_addr_from_sockaddr(&u->want, &peer);
		u->want.port = 0;
	}
	/* A domain name as the client's own address is meaningless: only its port counts. */
	u->want_port = hint->port;

	fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, llen) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
		log_warn("event=socks_udp_failed step=bind");
		if (fd >= 0)
			close(fd);
		free(u->rx);
		free(u);
		return NULL;
	}
	u->bound = bound;
	set_rcvbuf(fd);
	if ((u->tx = udpbatch_new(cx->loop, fd, &tx_conf, u)) == NULL) {
		close(fd);
		free(u->rx);
		free(u);
		return NULL;
	}
	u->nu = ns_udp_bind(cx->ns, 0, overlay_recv_cb, u);
	if (u->nu == NULL) {
		log_warnx("event=socks_udp_failed step=ns_udp_bind");
		udpbatch_free(u->tx);
		close(fd);
		free(u->rx);
		free(u);
		return NULL;
	}
	ev_io_init(&u->io, client_read_cb, fd, EV_READ);
	ev_io_start(cx->loop, &u->io);
	socks5_addr_from_sockaddr(bnd, &bound);
	*rep = S5_REP_OK;
	return u;
}

void
s5_udp_free(struct s5_udp *u)
{
	if (u == NULL)
		return;
	/* What the overlay already handed us still goes to the client. */
	udpbatch_free(u->tx);
	ev_io_stop(u->cx->loop, &u->io);
	close(u->io.fd);
	ns_udp_free(u->nu);
	free(u->rx);
	if (u->dropped)
		log_debug("event=socks_udp_closed dropped=%llu", (unsigned long long)u->dropped);
	free(u);
}
