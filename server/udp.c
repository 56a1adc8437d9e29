/*
 * udp: shoal-server's UDP socket (same port as TCP). Answers UDP_PROBE with UDP_PROBE_REPLY
 * carrying the endpoint we saw, and tells the mediator, which pushes the node's new observed
 * endpoint to its peers. Unknown tokens and malformed datagrams are dropped without an answer
 * (no reflection or amplification: a reply is never larger than the probe) and counted.
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

struct udp {                             /* owned by struct server */
	ev_io w;                        /* first member: the callback casts it back */
	struct server *srv;
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

static void
udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udp *u = (struct udp *)w;
	uint8_t token[UDP_TOKEN_LEN];
	struct endpoint from;
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
		n = recvmmsg(u->srv->udp_fd, u->rmsg, UDP_RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("event=udp_recv_failed");
			return;
		}
		nout = 0;
		for (i = 0; i < n; i++) {
			struct msghdr *h = &u->rmsg[i].msg_hdr;

			if ((h->msg_flags & MSG_TRUNC) || h->msg_namelen != sizeof(struct sockaddr_in) ||
			    u->rsrc[i].sin_family != AF_INET ||
			    probe_decode(u->rbuf[i], u->rmsg[i].msg_len, token) < 0) {
				u->dropped++;
				continue;
			}
			from.addr = ntohl(u->rsrc[i].sin_addr.s_addr);
			from.port = ntohs(u->rsrc[i].sin_port);
			if (medsrv_probe(u->srv->med, token, &from) < 0) {
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
		if (nout > 0 && sendmmsg(u->srv->udp_fd, u->smsg, (unsigned)nout, MSG_DONTWAIT) < 0)
			log_debug("event=udp_send_failed errno=%d", errno);
		if (n < UDP_RECV_BATCH)
			return;
	}
}

int
udp_start(struct server *srv)
{
	struct udp *u;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -1;
	u->srv = srv;
	ev_io_init(&u->w, udp_read_cb, srv->udp_fd, EV_READ);
	ev_io_start(srv->loop, &u->w);
	srv->udp = u;
	return 0;
}

void
udp_stop(struct server *srv)
{
	if (srv->udp == NULL)
		return;
	if (srv->udp->dropped)
		log_info("event=udp_stats dropped=%llu", (unsigned long long)srv->udp->dropped);
	ev_io_stop(srv->loop, &srv->udp->w);
	free(srv->udp);
	srv->udp = NULL;
}
