/*
 * sockbound: SOCK_DIAG_BY_FAMILY dumps, one per family and protocol, filtered here on address,
 * state and owner. A fresh netlink socket per snapshot: callers ask rarely (when a program's
 * connection to shoald goes, then every few seconds while something is kept for a socket that
 * may still live), and ask about all the ports they care about at once.
 */
#include "config.h"
#include "base/sockbound.h"
#include "base/sockdiag.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static int
snap_add(struct sockbound_snap *snap, size_t *cap, uint8_t proto, uint16_t port, uint64_t inode)
{
	struct sockbound_sock *v;

	if (snap->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		if ((v = realloc(snap->v, ncap * sizeof(*v))) == NULL)
			return -1;
		snap->v = v;
		*cap = ncap;
	}
	snap->v[snap->n].proto = proto;
	snap->v[snap->n].port = port;
	snap->v[snap->n].inode = inode;
	snap->n++;
	return 0;
}

/* One family's and protocol's dump into snap; 0 or -1. */
static int
dump(int nfd, uint8_t family, uint8_t proto, uid_t uid, struct sockbound_snap *snap, size_t *cap)
{
	union {
		struct nlmsghdr nh;
		char buf[16384];
	} rp;
	const struct nlmsghdr *h;
	const struct inet_diag_msg *m;
	ssize_t len;

	if (sockdiag_request(nfd, NLM_F_DUMP, family, family, proto,
	    proto == IPPROTO_TCP ? 1u << TCP_LISTEN : ~0u, NULL) != 0)
		return -1;
	for (;;) {
		if ((len = recv(nfd, &rp, sizeof(rp), 0)) < 0)
			return -1;
		for (h = &rp.nh; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = sockdiag_errno(h);
				return -1;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			if (m->idiag_uid != uid || m->id.idiag_sport == 0 ||
			    !addr_ok(family, m->id.idiag_src))
				continue;
			if (snap_add(snap, cap, proto, ntohs(m->id.idiag_sport),
			    m->idiag_inode) != 0)
				return -1;
		}
	}
}

static int
cmp_sock(const void *a, const void *b)
{
	const struct sockbound_sock *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

int
sockbound_snapshot(uid_t uid, struct sockbound_snap *snap)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	size_t cap = 0, i;
	int nfd, rc = 0, e;

	snap->v = NULL;
	snap->n = 0;
	if ((nfd = sockdiag_open()) < 0)
		return -1;
	for (i = 0; i < 4 && rc == 0; i++)
		rc = dump(nfd, families[i % 2], protos[i / 2], uid, snap, &cap);
	e = errno;
	close(nfd);
	if (rc != 0) {
		sockbound_snap_free(snap);
		errno = e;
		return -1;
	}
	if (snap->n > 1)
		qsort(snap->v, snap->n, sizeof(snap->v[0]), cmp_sock);
	return 0;
}

size_t
sockbound_find(const struct sockbound_snap *snap, uint8_t proto, uint16_t port,
    uint64_t *inodes, size_t cap)
{
	struct sockbound_sock key = { .proto = proto, .port = port };
	size_t lo = 0, hi = snap->n, mid, n = 0;

	/* the first entry not below key */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cmp_sock(&snap->v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < snap->n && cmp_sock(&snap->v[lo], &key) == 0; lo++, n++)
		if (n < cap)
			inodes[n] = snap->v[lo].inode;
	return n;
}

void
sockbound_snap_free(struct sockbound_snap *snap)
{
	free(snap->v);
	snap->v = NULL;
	snap->n = 0;
}
