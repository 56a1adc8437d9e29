/*
 * transport: the daemon's one UDP socket. Receives in batches with recvmmsg() and hands each
 * datagram to one dispatch callback; queues sends in a preallocated ring and flushes it with
 * sendmmsg() from an ev_prepare watcher (just before the loop blocks) or when the ring fills.
 *
 * Segmentation offload: the kernel's per-datagram cost (one trip through the IP stack each)
 * dominated the daemon's CPU even with batched syscalls. So on send, consecutive queued
 * datagrams of equal size to the same endpoint go out as one UDP_SEGMENT (GSO) message that
 * the kernel walks through the stack once and cuts into wire datagrams as late as possible;
 * on receive the socket asks for UDP_GRO, so the kernel may hand several datagrams of one
 * flow over as one buffer (the cmsg gives the segment size) and we split them here. The wire
 * format is unchanged and neither end needs the other to do either: GSO only changes how we
 * hand datagrams to our kernel, and without GRO the receiving kernel segments them itself.
 * If the kernel or the route refuses GSO at run time (EIO without checksum offload, e.g. on a
 * TUN device; EINVAL; ENOPROTOOPT on old kernels) it is switched off for this socket and the
 * same datagrams are resent one by one.
 *
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
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"

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
	/* One GSO message: the kernel's UDP_MAX_SEGMENTS (64 on older kernels, the floor) and
	 * the IPv4 UDP payload limit (65535 - 20 - 8). */
	TP_GSO_MAX_SEGS = 64,
	TP_GSO_MAX_BYTES = 65507,
	/* A GRO receive buffer holds a whole coalesced super-datagram. 32 of them are 2 MiB per
	 * transport, touched only as far as the kernel fills them. */
	TP_GRO_BUF = 65535,
};

struct tx_slot {
	uint8_t buf[UDP_MAX_PAYLOAD];
	struct sockaddr_in to;
};

/* Room for one int-sized cmsg (UDP_SEGMENT takes a u16, UDP_GRO delivers an int). */
union tp_cmsg {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
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

	/* Receive batch: UDP_RECV_BATCH buffers of rx_size bytes (TP_GRO_BUF with GRO, else
	 * UDP_MAX_PAYLOAD), headers pointing at them, set up once. */
	uint8_t *rx_buf;
	size_t rx_size;
	int gro;                                /* UDP_GRO is on: expect coalesced buffers */
	struct iovec rx_iov[UDP_RECV_BATCH];
	struct sockaddr_in rx_addr[UDP_RECV_BATCH];
	union tp_cmsg rx_cmsg[UDP_RECV_BATCH];
	struct mmsghdr rx_msg[UDP_RECV_BATCH];

	/* Send ring: slot i always uses tx_iov[i] and tx_msg[i], so a contiguous run goes to
	 * sendmmsg as is, and a run of slots can be one GSO message's iovec array. */
	struct tx_slot *tx;
	struct iovec tx_iov[TP_TX_SLOTS];
	struct mmsghdr tx_msg[TP_TX_SLOTS];
	size_t tx_head, tx_count;
	int tx_reserved;                        /* transport_alloc handed out the next slot */

	/* GSO messages built at flush time; gso_slots[k] is how many ring slots message k
	 * carries, to advance the ring by what sendmmsg reports. */
	int gso;                                /* 0 once the kernel refused UDP_SEGMENT */
	struct mmsghdr gso_msg[TP_TX_SLOTS];
	size_t gso_slots[TP_TX_SLOTS];
	union tp_cmsg gso_cmsg[TP_TX_SLOTS];

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

static int
same_dest(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/*
 * Turns the ring run [head, head + span) into GSO messages in gso_msg: each takes the longest
 * run of slots to one endpoint whose datagrams all have the first one's size, except that the
 * last may be shorter (the kernel's rule: every segment is gso_size but the final one).
 * Returns the number of messages.
 */
static size_t
gso_build(struct transport *t, size_t head, size_t span)
{
	size_t i = head, end = head + span, nm = 0;

	while (i < end) {
		size_t seg = t->tx_iov[i].iov_len, total = seg, j = i + 1;
		struct msghdr *h = &t->gso_msg[nm].msg_hdr;

		while (j < end && j - i < TP_GSO_MAX_SEGS && same_dest(&t->tx[j].to, &t->tx[i].to)) {
			size_t l = t->tx_iov[j].iov_len;

			if (l > seg || l == 0 || total + l > TP_GSO_MAX_BYTES)
				break;
			total += l;
			j++;
			if (l < seg)
				break;          /* a short one ends the message */
		}
		h->msg_name = &t->tx[i].to;
		h->msg_namelen = sizeof(t->tx[i].to);
		h->msg_iov = &t->tx_iov[i];
		h->msg_iovlen = j - i;
		h->msg_flags = 0;
		if (j - i > 1) {
			struct cmsghdr *cm;
			uint16_t gs = (uint16_t)seg;

			h->msg_control = t->gso_cmsg[nm].buf;
			h->msg_controllen = CMSG_SPACE(sizeof(gs));
			cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gs));
			memcpy(CMSG_DATA(cm), &gs, sizeof(gs));
		} else {
			h->msg_control = NULL;
			h->msg_controllen = 0;
		}
		t->gso_slots[nm] = j - i;
		nm++;
		i = j;
	}
	return nm;
}

/* The errors with which a kernel or route says "no GSO here" rather than "bad datagram". */
static int
gso_refused(int err)
{
	return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP ||
	    err == EMSGSIZE;
}

static void
tp_flush_ring(struct transport *t)
{
	while (t->tx_count > 0) {
		size_t span = TP_TX_SLOTS - t->tx_head, slots = 0, nm = 0, k;
		int r;

		if (span > t->tx_count)
			span = t->tx_count;
		if (t->gso) {
			nm = gso_build(t, t->tx_head, span);
			r = sendmmsg(t->fd, t->gso_msg, (unsigned)nm, MSG_DONTWAIT);
		} else {
			r = sendmmsg(t->fd, &t->tx_msg[t->tx_head], (unsigned)span, MSG_DONTWAIT);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
				if (!ev_is_active(&t->wio))
					ev_io_start(t->loop, &t->wio);
				return;
			}
			if (t->gso && t->gso_slots[0] > 1 && gso_refused(errno)) {
				/* Nothing of this message was sent: go on without GSO and
				 * resend the same datagrams one by one. */
				log_info("event=udp_gso_disabled errno=%d", errno);
				t->gso = 0;
				continue;
			}
			/* The first datagram (or GSO message) of the run is refused
			 * (unreachable, bad address): drop it and go on with the rest. */
			log_debug("event=udp_send_failed errno=%d", errno);
			slots = t->gso ? t->gso_slots[0] : 1;
			t->st.tx_dropped += slots;
		} else {
			if (t->gso) {
				for (k = 0; k < (size_t)r; k++)
					slots += t->gso_slots[k];
			} else {
				slots = (size_t)r;
			}
			t->st.tx_packets += slots;
			t->st.tx_batches++;
		}
		t->tx_head = (t->tx_head + slots) % TP_TX_SLOTS;
		t->tx_count -= slots;
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
		t->st.rx_batches++;
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
			for (off = 0; off < len; off += seg) {
				size_t l = len - off < seg ? len - off : seg;

				t->st.rx_packets++;
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
	struct transport *t;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	size_t i;
	int on = 1, gs = 0;
	socklen_t gl = sizeof(gs);

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->tx = calloc(TP_TX_SLOTS, sizeof(*t->tx))) == NULL) {
		log_warn("event=transport_alloc_failed");
		goto fail_alloc;
	}
	t->fd = -1;
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

	/* GSO needs nothing up front (it is per message), but a kernel without it says so
	 * here, which saves one refused send later. */
	t->gso = getsockopt(t->fd, SOL_UDP, UDP_SEGMENT, &gs, &gl) == 0;
	/* GRO is only worth its big buffers where the kernel supports it. */
	t->gro = setsockopt(t->fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
	t->rx_size = t->gro ? TP_GRO_BUF : UDP_MAX_PAYLOAD;
	if ((t->rx_buf = calloc(UDP_RECV_BATCH, t->rx_size)) == NULL) {
		log_warn("event=transport_alloc_failed");
		goto fail_sock;
	}
	log_debug("event=udp_offload gso=%d gro=%d", t->gso, t->gro);

	for (i = 0; i < UDP_RECV_BATCH; i++) {
		t->rx_iov[i].iov_base = t->rx_buf + i * t->rx_size;
		t->rx_iov[i].iov_len = t->rx_size;
		t->rx_msg[i].msg_hdr.msg_name = &t->rx_addr[i];
		t->rx_msg[i].msg_hdr.msg_iov = &t->rx_iov[i];
		t->rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < TP_TX_SLOTS; i++) {
		t->tx_iov[i].iov_base = t->tx[i].buf;
		t->tx_msg[i].msg_hdr.msg_name = &t->tx[i].to;
		t->tx_msg[i].msg_hdr.msg_namelen = sizeof(t->tx[i].to);
		t->tx_msg[i].msg_hdr.msg_iov = &t->tx_iov[i];
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

uint8_t *
transport_alloc(struct transport *t, const struct endpoint *to)
{
	struct tx_slot *s;

	if (t->tx_count == TP_TX_SLOTS) {
		transport_flush(t);
		if (t->tx_count == TP_TX_SLOTS) {
			/* Bounded queue: the kernel is not draining, newest datagram goes. */
			t->st.tx_dropped++;
			return NULL;
		}
	}
	s = &t->tx[(t->tx_head + t->tx_count) % TP_TX_SLOTS];
	memset(&s->to, 0, sizeof(s->to));
	s->to.sin_family = AF_INET;
	s->to.sin_addr.s_addr = htonl(to->addr);
	s->to.sin_port = htons(to->port);
	t->tx_reserved = 1;
	return s->buf;
}

/* Queues the reserved slot with len bytes (the slot after the queued ones). */
static void
tp_queue(struct transport *t, size_t len)
{
	t->tx_iov[(t->tx_head + t->tx_count) % TP_TX_SLOTS].iov_len = len;
	t->tx_reserved = 0;
	t->tx_count++;
	if (t->tx_count == TP_TX_SLOTS)
		transport_flush(t);
}

void
transport_commit(struct transport *t, size_t len)
{
	if (!t->tx_reserved)
		return;
	if (len == 0 || len > UDP_MAX_PAYLOAD) {
		t->tx_reserved = 0;     /* abandoned (or a caller bug): the slot stays free */
		return;
	}
	tp_queue(t, len);
}

int
transport_send(struct transport *t, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	uint8_t *buf;

	if (len > UDP_MAX_PAYLOAD)
		return -1;
	if ((buf = transport_alloc(t, to)) == NULL)
		return 0;       /* dropped and counted, as the kernel would have */
	memcpy(buf, pkt, len);
	tp_queue(t, len);       /* not commit: a zero-length datagram is legal UDP here */
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
