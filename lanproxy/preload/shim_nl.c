/*
 * shim_nl: shoal0 in rtnetlink. Programs that list interfaces, addresses and routes over a
 * NETLINK_ROUTE socket (`ip addr`, `ip route get`, GLib, many daemons) never call getifaddrs,
 * so the shim answers there too: after a dump request for links (RTM_GETLINK), IPv4 addresses
 * (RTM_GETADDR) or IPv4 routes (RTM_GETROUTE) went to the kernel, the next receive on that
 * socket returns shoal0's message first, with the request's sequence number and the socket's
 * port id, flagged NLM_F_MULTI; the kernel's own dump follows unchanged. A single get of
 * shoal0 (by index or name) or of a route to a 5.x address of our network is answered with
 * ours and the kernel's answer (an error, or a route via a real interface) is dropped; so is a
 * dump filtered on shoal0's index (`ip addr show shoal0`), answered with ours and NLMSG_DONE.
 * A dump filtered on another interface is the kernel's alone.
 *
 * Nothing is buffered: the kernel's answer stays in the socket, so poll/epoll readiness is the
 * kernel's. MSG_PEEK returns our message without using it up, MSG_TRUNC reports its length
 * (iproute2 sizes its buffer that way).
 * Must not touch: sockets other than NETLINK_ROUTE ones, the daemon connection (only
 * shim_net_get, which may open it).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "lanproxy/preload/shim_int.h"

enum { PEND_MAX = 16, MSG_MAX = 512 };

enum {
	REPLACE_NONE = 0,               /* ours, then the kernel's dump */
	REPLACE_GET = 1,                /* ours instead of the kernel's answer to a single get */
	REPLACE_DUMP = 2,               /* ours and NLMSG_DONE instead of a dump filtered on us */
};

/* An answer owed on one socket: at most one per socket (a new request replaces it). */
struct pend {
	int fd;                         /* -1: free */
	uint16_t type;                  /* RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE */
	int replace;                    /* REPLACE_*: whether the kernel's answer is dropped */
	uint32_t seq, pid;
	uint32_t dst;                   /* RTM_NEWROUTE to one address (replace); 0: the /prefix */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pend pends[PEND_MAX] = { [0 ... PEND_MAX - 1] = { .fd = -1 } };

/* ---- building shoal0's messages ---- */

struct buf {
	uint8_t b[MSG_MAX];
	size_t len;
};

static void *
put(struct buf *m, size_t n)
{
	void *p = m->b + m->len;

	n = NLMSG_ALIGN(n);
	memset(p, 0, n);
	m->len += n;
	return p;
}

static void
attr(struct buf *m, uint16_t type, const void *data, size_t n)
{
	struct rtattr *a = put(m, RTA_LENGTH(n));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(n);
	memcpy(RTA_DATA(a), data, n);
}

static void
attr32(struct buf *m, uint16_t type, uint32_t v)
{
	attr(m, type, &v, sizeof(v));
}

static void
attr_ip(struct buf *m, uint16_t type, uint32_t host_order)
{
	uint32_t be = htonl(host_order);

	attr(m, type, &be, sizeof(be));
}

/* Writes the message owed by p into m; 0, or -1 when there is nothing to say (no address). */
static int
build(const struct pend *p, struct buf *m)
{
	struct shim_net n;
	struct nlmsghdr *h;
	unsigned prefix = 0;
	uint32_t mask, ifindex = shim_ifindex();

	if (shim_net_get(&n) != 0 || n.vaddr == 0)
		return -1;
	for (mask = n.mask; mask; mask <<= 1)
		prefix++;
	m->len = 0;
	h = put(m, NLMSG_HDRLEN);
	h->nlmsg_type = p->type;
	h->nlmsg_flags = p->replace == REPLACE_GET ? 0 : NLM_F_MULTI;
	h->nlmsg_seq = p->seq;
	h->nlmsg_pid = p->pid;
	if (p->type == RTM_NEWLINK) {
		struct ifinfomsg *i = put(m, sizeof(*i));
		uint8_t oper = 6;               /* IF_OPER_UP */

		i->ifi_family = AF_UNSPEC;
		i->ifi_type = ARPHRD_NONE;
		i->ifi_index = (int)ifindex;
		i->ifi_flags = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING | IFF_LOWER_UP;
		attr(m, IFLA_IFNAME, SHIM_IFNAME, sizeof(SHIM_IFNAME));
		attr32(m, IFLA_MTU, n.mtu);
		attr32(m, IFLA_TXQLEN, 1000);
		attr(m, IFLA_OPERSTATE, &oper, 1);
	} else if (p->type == RTM_NEWADDR) {
		struct ifaddrmsg *a = put(m, sizeof(*a));
		uint32_t flags = IFA_F_PERMANENT;

		a->ifa_family = AF_INET;
		a->ifa_prefixlen = (uint8_t)prefix;
		a->ifa_flags = IFA_F_PERMANENT;
		a->ifa_scope = RT_SCOPE_UNIVERSE;
		a->ifa_index = ifindex;
		attr_ip(m, IFA_ADDRESS, n.vaddr);
		attr_ip(m, IFA_LOCAL, n.vaddr);
		attr_ip(m, IFA_BROADCAST, n.vaddr | ~n.mask);
		attr(m, IFA_LABEL, SHIM_IFNAME, sizeof(SHIM_IFNAME));
		attr32(m, IFA_FLAGS, flags);
	} else {
		struct rtmsg *r = put(m, sizeof(*r));
		int self = p->dst == n.vaddr;

		r->rtm_family = AF_INET;
		r->rtm_dst_len = p->dst ? 32 : (uint8_t)prefix;
		r->rtm_table = self ? RT_TABLE_LOCAL : RT_TABLE_MAIN;
		r->rtm_protocol = RTPROT_KERNEL;
		r->rtm_scope = self ? RT_SCOPE_HOST : RT_SCOPE_LINK;
		r->rtm_type = self ? RTN_LOCAL : RTN_UNICAST;
		if (p->replace == REPLACE_GET)
			r->rtm_flags = RTM_F_CLONED;
		attr32(m, RTA_TABLE, r->rtm_table);
		attr_ip(m, RTA_DST, p->dst ? p->dst : n.vaddr & n.mask);
		attr_ip(m, RTA_PREFSRC, n.vaddr);
		attr32(m, RTA_OIF, ifindex);
	}
	h->nlmsg_len = (uint32_t)m->len;
	if (p->replace == REPLACE_DUMP) {
		size_t at = m->len;
		struct nlmsghdr *d = put(m, NLMSG_LENGTH(sizeof(int)));

		d->nlmsg_len = (uint32_t)(m->len - at);
		d->nlmsg_type = NLMSG_DONE;
		d->nlmsg_flags = NLM_F_MULTI;
		d->nlmsg_seq = p->seq;
		d->nlmsg_pid = p->pid;
	}
	return 0;
}

/* ---- requests ---- */

/* A single get names shoal0 (by index or IFLA_IFNAME)? */
static int
link_is_ours(const struct nlmsghdr *h)
{
	const struct ifinfomsg *i = NLMSG_DATA(h);
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*i)))
		return 0;
	if (i->ifi_index > 0)
		return (unsigned)i->ifi_index == shim_ifindex();
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*i)));
	for (a = IFLA_RTA(i); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME &&
		    strncmp(RTA_DATA(a), SHIM_IFNAME, RTA_PAYLOAD(a)) == 0 &&
		    RTA_PAYLOAD(a) >= sizeof(SHIM_IFNAME) - 1)
			return 1;
	return 0;
}

/* A single route get to a 5.x address of our network: that address (host order), else 0. */
static uint32_t
route_dst(const struct nlmsghdr *h)
{
	const struct rtmsg *r = NLMSG_DATA(h);
	const struct rtattr *a;
	struct shim_net n;
	uint32_t dst = 0;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*r)) || r->rtm_family != AF_INET)
		return 0;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*r)));
	for (a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) == 4) {
			memcpy(&dst, RTA_DATA(a), 4);
			dst = ntohl(dst);
		}
	if (dst == 0 || (dst & SHIM_VNET_MASK) != SHIM_VNET || shim_net_get(&n) != 0)
		return 0;
	switch (shim_classify(&n, dst)) {
	case DST_SELF:
	case DST_PEER:
	case DST_VBCAST:
		return dst;
	default:
		return 0;
	}
}

static void
pend_set(int fd, const struct pend *p)
{
	int i, free_slot = -1;

	pthread_mutex_lock(&lock);
	for (i = 0; i < PEND_MAX; i++) {
		if (pends[i].fd == fd)
			break;
		if (pends[i].fd == -1 && free_slot == -1)
			free_slot = i;
	}
	if (i == PEND_MAX)
		i = free_slot;
	if (i >= 0) {
		if (p)
			pends[i] = *p;
		else if (pends[i].fd == fd)
			pends[i].fd = -1;
	}
	pthread_mutex_unlock(&lock);
}

void
shim_nl_forget(int fd)
{
	pend_set(fd, NULL);
}

void
shim_nl_sent(int fd, const void *data, size_t len)
{
	const struct nlmsghdr *h = data;
	struct sockaddr_nl me;
	socklen_t ml = sizeof(me);
	struct pend p;
	uint16_t kind;
	int dump, index = 0, e = errno;

	shim_nl_forget(fd);
	if (!data || len < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len ||
	    !(h->nlmsg_flags & NLM_F_REQUEST) || !shim_enabled())
		goto out;
	memset(&p, 0, sizeof(p));
	dump = (h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	kind = h->nlmsg_type;
	/* a dump filtered on one interface (strict checking, `ip addr show DEV`) */
	if (dump && kind == RTM_GETLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		index = ((const struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
	if (dump && kind == RTM_GETADDR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
		index = (int)((const struct ifaddrmsg *)NLMSG_DATA(h))->ifa_index;
	if (index > 0 && (unsigned)index != shim_ifindex())
		goto out;
	if (kind == RTM_GETLINK && (dump || link_is_ours(h))) {
		p.type = RTM_NEWLINK;
	} else if (kind == RTM_GETADDR && dump && h->nlmsg_len >= NLMSG_LENGTH(1) &&
	    (((const struct ifaddrmsg *)NLMSG_DATA(h))->ifa_family == AF_INET ||
	    ((const struct ifaddrmsg *)NLMSG_DATA(h))->ifa_family == AF_UNSPEC)) {
		p.type = RTM_NEWADDR;
	} else if (kind == RTM_GETROUTE && h->nlmsg_len >= NLMSG_LENGTH(1) &&
	    (((const struct rtmsg *)NLMSG_DATA(h))->rtm_family == AF_INET ||
	    (dump && ((const struct rtmsg *)NLMSG_DATA(h))->rtm_family == AF_UNSPEC))) {
		if (!dump && (p.dst = route_dst(h)) == 0)
			goto out;
		p.type = RTM_NEWROUTE;
	} else {
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&me, &ml) != 0 || me.nl_family != AF_NETLINK)
		goto out;
	p.fd = fd;
	p.replace = !dump ? REPLACE_GET : index > 0 ? REPLACE_DUMP : REPLACE_NONE;
	p.seq = h->nlmsg_seq;
	p.pid = me.nl_pid;
	pend_set(fd, &p);
out:
	errno = e;
}

/* Copies m into the scatter list; returns what the receive call returns. */
static ssize_t
deliver(const struct buf *m, struct msghdr *msg, int flags)
{
	size_t i, off = 0, n;

	for (i = 0; i < (size_t)msg->msg_iovlen && off < m->len; i++) {
		n = msg->msg_iov[i].iov_len < m->len - off ? msg->msg_iov[i].iov_len : m->len - off;
		memcpy(msg->msg_iov[i].iov_base, m->b + off, n);
		off += n;
	}
	msg->msg_flags = off < m->len ? MSG_TRUNC : 0;
	msg->msg_controllen = 0;
	if (msg->msg_name && msg->msg_namelen >= sizeof(struct sockaddr_nl)) {
		struct sockaddr_nl from = { .nl_family = AF_NETLINK };

		memcpy(msg->msg_name, &from, sizeof(from));
		msg->msg_namelen = sizeof(from);
	}
	return (flags & MSG_TRUNC) ? (ssize_t)m->len : (ssize_t)off;
}

int
shim_nl_recv(int fd, struct msghdr *msg, int flags, ssize_t *rc)
{
	struct pend p;
	struct buf m;
	uint8_t sink[8192];
	int i, e = errno;

	pthread_mutex_lock(&lock);
	for (i = 0; i < PEND_MAX && pends[i].fd != fd; i++)
		;
	if (i == PEND_MAX) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	p = pends[i];
	if (!(flags & MSG_PEEK))
		pends[i].fd = -1;
	pthread_mutex_unlock(&lock);
	if (build(&p, &m) != 0) {
		errno = e;
		return 0;
	}
	*rc = deliver(&m, msg, flags);
	/* the kernel's own answer (an error, a route elsewhere, an empty dump) is not seen */
	if (p.replace != REPLACE_NONE && !(flags & MSG_PEEK))
		(void)REAL(recvfrom)(fd, sink, sizeof(sink), MSG_DONTWAIT, NULL, NULL);
	errno = e;
	return 1;
}
