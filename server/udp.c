/*
 * udp: shoal-server's UDP sockets (per listen address PORT, the TCP port, and PORT+1, PORT+2).
 * Answers UDP_PROBE (on a PORT socket) with UDP_PROBE_REPLY carrying the endpoint we saw, and
 * tells the mediator, which pushes the node's new observed endpoint to its peers. Answers a
 * UDP_NAT_PROBE the mediator accepts the same way, from the socket it arrived on, and sends
 * the mediator's UDP_NAT_TESTs (udp_medsrv_io). Unknown tokens and malformed datagrams are
 * dropped without an answer (no reflection or amplification: a reply is never larger than the
 * probe) and counted.
 * Batched: recvmmsg/sendmmsg, UDP_RECV_BATCH datagrams per call, buffers allocated once.
 * Must not touch: membership state (mediator.c), TCP connections (conn.c).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "mproto/msg.h"
#include "server/server.h"

/* Probes are UDP_PROBE_LEN bytes; anything that does not fit is truncated and dropped. */
enum { UDP_BUF = 64 };

struct udp {                             /* owned by struct server, one per UDP socket */
	ev_io w;                        /* first member: the callback casts it back */
	struct server *srv;
	int idx;                        /* in srv->udp_fd / udp_sock / the mediator's table */
	uint8_t rbuf[UDP_RECV_BATCH][UDP_BUF];
	struct sockaddr_in rsrc[UDP_RECV_BATCH];
	struct iovec riov[UDP_RECV_BATCH];
	struct mmsghdr rmsg[UDP_RECV_BATCH];
	uint8_t sbuf[UDP_RECV_BATCH][UDP_PROBE_REPLY_LEN];
	struct sockaddr_in sdst[UDP_RECV_BATCH];
	struct iovec siov[UDP_RECV_BATCH];
	struct mmsghdr smsg[UDP_RECV_BATCH];
	uint64_t dropped;               /* malformed, truncated, unknown token */
};

/* 0: answer `from` with a UDP_PROBE_REPLY from this socket; -1: drop. */
static int
handle_one(struct udp *u, const uint8_t *buf, size_t len, const struct endpoint *from)
{
	uint8_t token[UDP_TOKEN_LEN];
	struct nat_probe np;

	/* UDP_PROBE only on a PORT socket: the +1/+2 ones exist for NAT tests, and an endpoint
	 * seen there may be another mapping than the one peers should use. */
	if (len > 0 && buf[0] == UDP_PROBE) {
		if (u->srv->udp_sock[u->idx].offset != 0 || probe_decode(buf, len, token) < 0)
			return -1;
		return medsrv_probe(u->srv->med, token, from);
	}
	if (len > 0 && buf[0] == UDP_NAT_PROBE) {
		if (nat_probe_decode(buf, len, &np) < 0)
			return -1;
		return medsrv_nat_probe(u->srv->med, &np, u->idx, from);
	}
	return -1;
}

static void
udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udp *u = (struct udp *)w;
	int fd = u->srv->udp_fd[u->idx];
	int i, n, nout, rounds;

	(void)loop;
	(void)revents;
	for (rounds = 0; rounds < 8; rounds++) {
		for (i = 0; i < UDP_RECV_BATCH; i++) {
			u->riov[i].iov_base = u->rbuf[i];
			u->riov[i].iov_len = UDP_BUF;
			memset(&u->rmsg[i].msg_hdr, 0, sizeof(u->rmsg[i].msg_hdr));
			u->rmsg[i].msg_hdr.msg_name = &u->rsrc[i];
			u->rmsg[i].msg_hdr.msg_namelen = sizeof(u->rsrc[i]);
			u->rmsg[i].msg_hdr.msg_iov = &u->riov[i];
			u->rmsg[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, u->rmsg, UDP_RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("event=udp_recv_failed");
			return;
		}
		nout = 0;
		for (i = 0; i < n; i++) {
			struct msghdr *h = &u->rmsg[i].msg_hdr;

			struct endpoint from;

			if ((h->msg_flags & MSG_TRUNC) || h->msg_namelen != sizeof(struct sockaddr_in) ||
			    u->rsrc[i].sin_family != AF_INET) {
				u->dropped++;
				continue;
			}
			memset(&from, 0, sizeof(from));
			from.addr = ntohl(u->rsrc[i].sin_addr.s_addr);
			from.port = ntohs(u->rsrc[i].sin_port);
			if (handle_one(u, u->rbuf[i], u->rmsg[i].msg_len, &from) < 0) {
				u->dropped++;
				continue;
			}
			if (probe_reply_encode(&from, u->sbuf[nout], UDP_PROBE_REPLY_LEN) < 0)
				continue;
			u->sdst[nout] = u->rsrc[i];
			u->siov[nout].iov_base = u->sbuf[nout];
			u->siov[nout].iov_len = UDP_PROBE_REPLY_LEN;
			memset(&u->smsg[nout].msg_hdr, 0, sizeof(u->smsg[nout].msg_hdr));
			u->smsg[nout].msg_hdr.msg_name = &u->sdst[nout];
			u->smsg[nout].msg_hdr.msg_namelen = sizeof(u->sdst[nout]);
			u->smsg[nout].msg_hdr.msg_iov = &u->siov[nout];
			u->smsg[nout].msg_hdr.msg_iovlen = 1;
			nout++;
		}
		/* Replies are best effort: a lost one is repeated by the node's next probe. */
		if (nout > 0 && sendmmsg(fd, u->smsg, (unsigned)nout, MSG_DONTWAIT) < 0)
			log_debug("event=udp_send_failed errno=%d", errno);
		if (n < UDP_RECV_BATCH)
			return;
	}
}

/* The mediator's NAT tests: rare (at most 9 per classification), so one sendto each. */
static void
io_udp_send(void *arg, int sock, const struct endpoint *to, const uint8_t *buf, size_t len)
{
	struct server *srv = arg;
	struct sockaddr_in sin;

	if (sock < 0 || sock >= srv->n_udp)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(to->addr);
	sin.sin_port = htons(to->port);
	/* Best effort like every probe reply: a lost test reads as filtered, which is what a
	 * NAT that drops it would look like anyway. */
	if (sendto(srv->udp_fd[sock], buf, len, MSG_DONTWAIT, (struct sockaddr *)&sin,
	    sizeof(sin)) < 0)
		log_debug("event=udp_send_failed errno=%d sock=%d", errno, sock);
}

void
udp_medsrv_io(struct server *srv, struct medsrv_io *io)
{
	(void)srv;
	io->udp_send = io_udp_send;
}

int
udp_start(struct server *srv)
{
	struct udp *u;
	int i;

	for (i = 0; i < srv->n_udp; i++) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return -1;
		u->srv = srv;
		u->idx = i;
		ev_io_init(&u->w, udp_read_cb, srv->udp_fd[i], EV_READ);
		ev_io_start(srv->loop, &u->w);
		srv->udp[i] = u;
	}
	return 0;
}

void
udp_stop(struct server *srv)
{
	int i;

	for (i = 0; i < NATPROBE_MAX_SOCKS; i++) {
		struct udp *u = srv->udp[i];

		if (u == NULL)
			continue;
		if (u->dropped)
			log_info("event=udp_stats sock=%d dropped=%llu", i,
			    (unsigned long long)u->dropped);
		ev_io_stop(srv->loop, &u->w);
		free(u);
		srv->udp[i] = NULL;
	}
}
