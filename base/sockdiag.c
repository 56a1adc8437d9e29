/*
 * sockdiag: see sockdiag.h. A fresh socket per caller's question: both callers ask rarely
 * (per accepted connection, per snapshot), so keeping one open would buy nothing.
 */
#include "config.h"
#include "base/sockdiag.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

int
sockdiag_open(void)
{
	struct timeval tv = { .tv_sec = 1 };
	int nfd;

	if ((nfd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return -1;
	/* the kernel answers at once; the timeout only guards against the unexpected */
	(void)setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return nfd;
}

int
sockdiag_request(int nfd, uint16_t flags, uint32_t seq, uint8_t family, uint8_t protocol,
    uint32_t states, const struct inet_diag_sockid *id)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
	} rq;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };

	memset(&rq, 0, sizeof(rq));
	rq.nh.nlmsg_len = sizeof(rq);
	rq.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq.nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	rq.nh.nlmsg_seq = seq;
	rq.req.sdiag_family = family;
	rq.req.sdiag_protocol = protocol;
	rq.req.idiag_states = states;
	if (id != NULL) {
		rq.req.id = *id;
		rq.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
		rq.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	}
	if (sendto(nfd, &rq, sizeof(rq), 0, (struct sockaddr *)&nl, sizeof(nl)) !=
	    (ssize_t)sizeof(rq))
		return -1;
	return 0;
}

int
sockdiag_errno(const struct nlmsghdr *h)
{
	const struct nlmsgerr *err = NLMSG_DATA(h);

	return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*err)) && err->error < 0 ? -err->error : EPROTO;
}
