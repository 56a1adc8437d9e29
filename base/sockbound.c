/*
 * sockbound: one SOCK_DIAG_BY_FAMILY dump per family, filtered by the kernel on the source
 * port (the dump honours idiag_sport) and here on address, state and owner. A fresh netlink
 * socket per call: callers ask rarely (when a program's connection to shoald goes, then every
 * few seconds while something is kept for a socket that may still live).
 */
#include "config.h"
#include "base/sockbound.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* 0.0.0.0, 127.0.0.1 (IPv4: the first word); ::, ::1, ::ffff:0.0.0.0, ::ffff:127.0.0.1. */
static int
addr_ok(uint8_t family, const uint32_t a[4])
{
	static const uint8_t lo4[4] = { 127, 0, 0, 1 };
	static const uint8_t any6[16], lo6[16] = { [15] = 1 };
	static const uint8_t map[12] = { [10] = 0xff, [11] = 0xff };
	const uint8_t *b = (const uint8_t *)a;

	if (family == AF_INET)
		return memcmp(b, any6, 4) == 0 || memcmp(b, lo4, 4) == 0;
	if (memcmp(b, any6, 16) == 0 || memcmp(b, lo6, 16) == 0)
		return 1;
	return memcmp(b, map, 12) == 0 && (memcmp(b + 12, any6, 4) == 0 ||
	    memcmp(b + 12, lo4, 4) == 0);
}

/* One family's dump into inodes[*n..]; 0 or -1. */
static int
dump(int nfd, uint8_t family, uint8_t proto, uint16_t port, uid_t uid, uint64_t *inodes,
    size_t cap, size_t *n)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
	} rq;
	union {
		struct nlmsghdr nh;
		char buf[16384];
	} rp;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	const struct nlmsghdr *h;
	const struct inet_diag_msg *m;
	ssize_t len;

	memset(&rq, 0, sizeof(rq));
	rq.nh.nlmsg_len = sizeof(rq);
	rq.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rq.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rq.nh.nlmsg_seq = family;
	rq.req.sdiag_family = family;
	rq.req.sdiag_protocol = proto;
	rq.req.idiag_states = proto == IPPROTO_TCP ? 1u << TCP_LISTEN : ~0u;
	rq.req.id.idiag_sport = htons(port);
	if (sendto(nfd, &rq, sizeof(rq), 0, (struct sockaddr *)&nl, sizeof(nl)) !=
	    (ssize_t)sizeof(rq))
		return -1;
	for (;;) {
		if ((len = recv(nfd, &rp, sizeof(rp), 0)) < 0)
			return -1;
		for (h = &rp.nh; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = NLMSG_DATA(h);

				errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*err)) &&
				    err->error < 0 ? -err->error : EPROTO;
				return -1;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			if (ntohs(m->id.idiag_sport) != port || m->idiag_uid != uid ||
			    !addr_ok(family, m->id.idiag_src))
				continue;
			if (*n < cap)
				inodes[*n] = m->idiag_inode;
			(*n)++;
		}
	}
}

int
sockbound_list(uint8_t proto, uint16_t port, uid_t uid, uint64_t *inodes, size_t cap)
{
	struct timeval tv = { .tv_sec = 1 };
	size_t n = 0;
	int nfd, rc, e;

	if ((nfd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return -1;
	/* the kernel answers at once; the timeout only guards against the unexpected */
	(void)setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = dump(nfd, AF_INET, proto, port, uid, inodes, cap, &n);
	if (rc == 0)
		rc = dump(nfd, AF_INET6, proto, port, uid, inodes, cap, &n);
	e = errno;
	close(nfd);
	errno = e;
	return rc == 0 ? (int)n : -1;
}
