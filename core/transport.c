/*
 * transport: the daemon's one UDP socket. Receives in batches with recvmmsg() and hands each
 * datagram to one dispatch callback; queues sends in a preallocated ring and flushes it with
 * sendmmsg() from an ev_prepare watcher (just before the loop blocks) or when the ring fills.
 * Owns: the socket, its watchers, the receive buffers and the send ring (allocated once).
 * Must not: interpret packets (that is the dispatch callback's job) or keep any peer state.
 */
#include "config.h"
#include "core/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

enum {
	/* What we ask the kernel for, both ways. The receive side must absorb a whole TCP
	 * window burst (8 MiB of 1.4 KB datagrams is ~14 MB of kernel truesize) while the
	 * daemon is busy: with 4 MiB, UdpRcvbufErrors appeared on a 50 ms path, and every such
	 * loss costs lwIP's Reno many round trips to recover. Only used while we lag behind. */
	TP_SOCKBUF = 16 * 1024 * 1024,
	TP_TX_SLOTS = UDP_RECV_BATCH * 4,       /* send ring: a few lwIP bursts deep */
	TP_RX_ROUNDS = 8,                       /* recvmmsg calls per wakeup, for fairness */
};

struct tx_slot {
	uint8_t buf[UDP_MAX_PAYLOAD];
	struct sockaddr_in to;
	struct iovec iov;
};

/* Owned by whoever called transport_new (the daemon); freed with transport_free. */
struct transport {
	struct ev_loop *loop;
	ev_io rio;                              /* readable */
	ev_io wio;                              /* writable, only while the kernel said EAGAIN */
	ev_prepare prep;                        /* flushes the ring before the loop blocks */
	int fd;
	uint16_t port;
	transport_recv_cb cb;
	void *arg;

	/* Receive batch: UDP_RECV_BATCH buffers, headers pointing at them, set up once. */
	uint8_t (*rx_buf)[UDP_MAX_PAYLOAD];
	struct iovec rx_iov[UDP_RECV_BATCH];
	struct sockaddr_in rx_addr[UDP_RECV_BATCH];
	struct mmsghdr rx_msg[UDP_RECV_BATCH];

	/* Send ring: slot i always uses tx_msg[i], so a contiguous run goes to sendmmsg as is. */
	struct tx_slot *tx;
	struct mmsghdr tx_msg[TP_TX_SLOTS];
	size_t tx_head, tx_count;

	struct transport_stats st;
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

static void
tp_flush_ring(struct transport *t)
{
	while (t->tx_count > 0) {
		size_t span = TP_TX_SLOTS - t->tx_head;
		int r;

		if (span > t->tx_count)
			span = t->tx_count;
		r = sendmmsg(t->fd, &t->tx_msg[t->tx_head], (unsigned)span, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
				if (!ev_is_active(&t->wio))
					ev_io_start(t->loop, &t->wio);
				return;
			}
			/* The first datagram of the run is refused (unreachable, bad address):
			 * drop that one and go on with the rest. */
			log_debug("event=udp_send_failed errno=%d", errno);
			t->st.tx_dropped++;
			r = 1;
		} else {
			t->st.tx_packets += (uint64_t)r;
			t->st.tx_batches++;
		}
		t->tx_head = (t->tx_head + (size_t)r) % TP_TX_SLOTS;
		t->tx_count -= (size_t)r;
	}
	t->tx_head = 0;
}

void
transport_flush(struct transport *t)
{
	if (ev_is_active(&t->wio))
		return;         /* the kernel is full; the write watcher resumes */
	tp_flush_ring(t);
}

static void
tp_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct transport *t = w->data;

	if (t->tx_count > 0)
		transport_flush(t);
}

static void
tp_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct transport *t = w->data;

	ev_io_stop(loop, &t->wio);
	tp_flush_ring(t);
}

static void
tp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct transport *t = w->data;
	int round, i, n;

	for (round = 0; round < TP_RX_ROUNDS; round++) {
		for (i = 0; i < UDP_RECV_BATCH; i++) {
			t->rx_msg[i].msg_hdr.msg_namelen = sizeof(t->rx_addr[i]);
			t->rx_msg[i].msg_hdr.msg_flags = 0;
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
		t->st.rx_batches++;
		t->st.rx_packets += (uint64_t)n;
		for (i = 0; i < n; i++) {
			const struct sockaddr_in *sin = &t->rx_addr[i];
			struct endpoint from;

			/* Truncated (oversized) datagrams and odd address families: drop. */
			if ((t->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) ||
			    t->rx_msg[i].msg_hdr.msg_namelen < sizeof(*sin) ||
			    sin->sin_family != AF_INET || t->rx_msg[i].msg_len == 0)
				continue;
			from.addr = ntohl(sin->sin_addr.s_addr);
			from.port = ntohs(sin->sin_port);
			t->cb(t->arg, &from, t->rx_buf[i], t->rx_msg[i].msg_len);
		}
		if (n < UDP_RECV_BATCH)
			return;
	}
}

struct transport *
transport_new(struct ev_loop *loop, uint16_t port, transport_recv_cb cb, void *arg)
{
	struct transport *t;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	size_t i;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->rx_buf = calloc(UDP_RECV_BATCH, sizeof(*t->rx_buf))) == NULL ||
	    (t->tx = calloc(TP_TX_SLOTS, sizeof(*t->tx))) == NULL) {
		log_warn("event=transport_alloc_failed");
		goto fail_alloc;
	}
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd == -1) {
		log_warn("event=udp_socket_failed");
		goto fail_alloc;
	}
	set_bufsize(t->fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_bufsize(t->fd, SO_SNDBUFFORCE, SO_SNDBUF);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	sin.sin_port = htons(port);
	if (bind(t->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		log_warn("event=udp_bind_failed port=%u", (unsigned)port);
		goto fail_sock;
	}
	if (getsockname(t->fd, (struct sockaddr *)&sin, &sl) == -1) {
		log_warn("event=udp_getsockname_failed");
		goto fail_sock;
	}
	t->port = ntohs(sin.sin_port);

	for (i = 0; i < UDP_RECV_BATCH; i++) {
		t->rx_iov[i].iov_base = t->rx_buf[i];
		t->rx_iov[i].iov_len = sizeof(t->rx_buf[i]);
		t->rx_msg[i].msg_hdr.msg_name = &t->rx_addr[i];
		t->rx_msg[i].msg_hdr.msg_iov = &t->rx_iov[i];
		t->rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < TP_TX_SLOTS; i++) {
		t->tx[i].iov.iov_base = t->tx[i].buf;
		t->tx_msg[i].msg_hdr.msg_name = &t->tx[i].to;
		t->tx_msg[i].msg_hdr.msg_namelen = sizeof(t->tx[i].to);
		t->tx_msg[i].msg_hdr.msg_iov = &t->tx[i].iov;
		t->tx_msg[i].msg_hdr.msg_iovlen = 1;
	}

	ev_io_init(&t->rio, tp_read_cb, t->fd, EV_READ);
	ev_io_init(&t->wio, tp_write_cb, t->fd, EV_WRITE);
	ev_prepare_init(&t->prep, tp_prepare_cb);
	t->rio.data = t->wio.data = t->prep.data = t;
	ev_io_start(loop, &t->rio);
	ev_prepare_start(loop, &t->prep);
	/* The prepare watcher alone must not keep ev_run() alive. */
	ev_unref(loop);
	return t;

fail_sock:
	close(t->fd);
fail_alloc:
	if (t) {
		free(t->tx);
		free(t->rx_buf);
		free(t);
	}
	return NULL;
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->tx_count > 0 && !ev_is_active(&t->wio))
		tp_flush_ring(t);
	ev_io_stop(t->loop, &t->rio);
	ev_io_stop(t->loop, &t->wio);
	ev_ref(t->loop);
	ev_prepare_stop(t->loop, &t->prep);
	close(t->fd);
	free(t->tx);
	free(t->rx_buf);
	free(t);
}

uint16_t
transport_port(const struct transport *t)
{
	return t->port;
}

int
transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct tx_slot *s;
	size_t i;

	if (len > UDP_MAX_PAYLOAD)
		return -1;
	if (t->tx_count == TP_TX_SLOTS) {
		transport_flush(t);
		if (t->tx_count == TP_TX_SLOTS) {
			/* Bounded queue: the kernel is not draining, newest datagram goes. */
			t->st.tx_dropped++;
			return 0;
		}
	}
	i = (t->tx_head + t->tx_count) % TP_TX_SLOTS;
	s = &t->tx[i];
	memcpy(s->buf, pkt, len);
	s->iov.iov_len = len;
	memset(&s->to, 0, sizeof(s->to));
	s->to.sin_family = AF_INET;
	s->to.sin_addr.s_addr = htonl(to->addr);
	s->to.sin_port = htons(to->port);
	t->tx_count++;
	if (t->tx_count == TP_TX_SLOTS)
		transport_flush(t);
	return 0;
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
	*st = t->st;
}
