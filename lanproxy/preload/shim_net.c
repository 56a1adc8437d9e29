/*
 * shim_net: the socket interposers. Every socket stays a real kernel socket; only addresses
 * change at the edges (docs/LANPROXY.md): our own 5.x is 127.0.0.1, a peer's 5.x is its alias
 * 127.66.x.y (same port; or its low-port twin 127.67.x.y on port + 64512 when an unprivileged
 * shoald may not bind a port below 1024: the daemon's replies say which), broadcasts and
 * multicasts also go to shoald as SHIM_DGRAM_OUT, and addresses (and ports) coming back are
 * rewritten from aliases to 5.x. Anything not about the virtual LAN
 * goes straight to libc after a few integer compares.
 * Must not touch: the daemon connection's internals, interfaces (shim_if.c), fd lifecycle
 * (shim.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/netlink.h>

#include "lanproxy/preload/shim_int.h"

ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *src, socklen_t *srclen);

/* Could this destination concern the shim? Cheap test before anything else. */
static int
maybe_virtual(uint32_t a)
{
	return (a & SHIM_VNET_MASK) == SHIM_VNET || a == 0xffffffffu ||
	    (a & 0xf0000000u) == 0xe0000000u;
}

static int
real_local(int fd, struct shim_ep *ep)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return shim_ep_read((struct sockaddr *)&ss, len, ep);
}

static int
v6only(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (REAL(getsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len) == -1)
		return 0;
	return on;
}

/*
 * shoald binds peers' aliases (127.66.x.y) on the same port numbers as programs use (a peer's
 * source port, a peer's service port): a wildcard binding here conflicts with those unless
 * both sides allow port sharing. Connections and datagrams to an alias still reach shoald's
 * socket, the more specific binding. Side effect: another process of this user that also sets
 * SO_REUSEPORT can share the port too.
 *
 * For port 0 the option is set only after bind(): set before, the kernel may hand out a port
 * that another of this user's sharing sockets already holds, and the two then split each
 * other's datagrams. The kernel checks the option of an existing socket when a later bind
 * asks, so setting it afterwards is enough for shoald's alias sockets.
 */
static void
share_port(int fd)
{
	int one = 1, e = errno;

	REAL(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	errno = e;
}

/* bind() of a wildcard address, shared as above; the option goes first only for a fixed port. */
static int
bind_shared(int fd, const struct sockaddr *addr, socklen_t len, uint16_t port)
{
	int rc;

	if (port != 0)
		share_port(fd);
	rc = REAL(bind)(fd, addr, len);
	if (rc == 0 && port == 0)
		share_port(fd);
	return rc;
}

static int
is_group(uint32_t addr)
{
	return (addr >> 28) == 0xe;
}

/* Tells shoald about a UDP socket bound to any, to our 5.x or to a group address (SSDP stacks
 * bind 239.255.255.250:1900), once. */
static void
announce_udp(int fd, uint32_t w, const struct shim_ep *local)
{
	struct shim_msg req, rep;

	if ((w & FD_ANNOUNCED) || !local->port || !shim_enabled())
		return;
	if (!local->any && !(w & FD_VBOUND) && !is_group(local->addr))
		return;
	if (local->v6 && local->any && v6only(fd))
		return;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_UDP_BIND;
	req.port = local->port;
	if (shim_call(&req, &rep) == 0 && rep.err == 0)
		shim_fd_or(fd, FD_ANNOUNCED);
}

/* A UDP socket about to talk to the overlay: bound (to any, port chosen by the kernel, if the
 * program did not bind it) and announced, so answers find their way back. Returns the port. */
static uint16_t
udp_ready(int fd, uint32_t w)
{
	struct sockaddr_storage ss;
	struct shim_ep local;
	socklen_t len;
	int e = errno;

	if (real_local(fd, &local) == -1)
		return 0;
	if (!local.port) {
		len = shim_ep_write(&ss, 0, 0, (w & FD_INET6) != 0);
		if (w & FD_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			memset(&s6->sin6_addr, 0, sizeof(s6->sin6_addr));     /* [::]:0 */
		}
		if (bind_shared(fd, (struct sockaddr *)&ss, len, 0) == -1 ||
		    real_local(fd, &local) == -1) {
			errno = e;
			return 0;
		}
	}
	announce_udp(fd, w, &local);
	errno = e;
	return local.port;
}

/* ---- socket, bind, listen ---- */

SHIM_EXPORT int
socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	uint32_t w = FD_KNOWN;

	if (fd < 0)
		return fd;
	if (domain == AF_NETLINK && protocol == NETLINK_ROUTE) {
		shim_nl_forget(fd);
		w |= FD_NLROUTE;
	}
	if (domain == AF_INET || domain == AF_INET6) {
		w |= FD_INET | (domain == AF_INET6 ? FD_INET6 : 0);
		if (base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
			w |= FD_TCP;
		else if (base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
			w |= FD_UDP;
	}
	shim_fd_set(fd, w);
	return fd;
}

SHIM_EXPORT int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage ss;
	struct shim_ep ep, local;
	struct shim_net n;
	uint32_t w;
	int rc;

	if (shim_ep_read(addr, len, &ep) == -1 || !shim_enabled())
		return REAL(bind)(fd, addr, len);
	w = shim_fd_probe(fd);
	if (!(w & FD_INET) || !(w & (FD_TCP | FD_UDP)))
		return REAL(bind)(fd, addr, len);
	if (!ep.any && (ep.addr & SHIM_VNET_MASK) == SHIM_VNET && shim_net_get(&n) == 0) {
		enum shim_dst d = shim_classify(&n, ep.addr);

		if (d == DST_SELF || (d == DST_VBCAST && (w & FD_UDP))) {
			socklen_t l = shim_ep_write(&ss, d == DST_SELF ? SHIM_LOOPBACK : SHIM_LO_BCAST,
			    ep.port, ep.v6);

			if ((rc = REAL(bind)(fd, (struct sockaddr *)&ss, l)) == 0) {
				shim_fd_or(fd, FD_VBOUND);
				w |= FD_VBOUND;
				if ((w & FD_UDP) && real_local(fd, &local) == 0) {
					local.any = 0;
					announce_udp(fd, w, &local);
				}
			}
			return rc;
		}
	}
	rc = ep.any ? bind_shared(fd, addr, len, ep.port) : REAL(bind)(fd, addr, len);
	if (rc == 0 && (w & FD_UDP) && (ep.any || is_group(ep.addr)) &&
	    real_local(fd, &local) == 0) {
		int e = errno;

		announce_udp(fd, w, &local);
		errno = e;
	}
	return rc;
}

SHIM_EXPORT int
listen(int fd, int backlog)
{
	struct shim_msg req, rep;
	struct shim_ep local;
	uint32_t w;
	int rc = REAL(listen)(fd, backlog), e = errno;

	if (rc == -1 || !shim_enabled())
		return rc;
	w = shim_fd_probe(fd);
	if (!(w & FD_TCP) || (w & FD_ANNOUNCED) || real_local(fd, &local) == -1)
		return rc;
	if (!local.any && !(w & FD_VBOUND))
		return rc;
	if (local.v6 && local.any && v6only(fd))
		return rc;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_TCP_LISTEN;
	req.port = local.port;
	/* a failure here leaves the program listening locally, as without the shim; say so */
	if (shim_call(&req, &rep) == 0) {
		if (rep.err == 0)
			shim_fd_or(fd, FD_ANNOUNCED);
		else
			shim_note_listen_failed(local.port, rep.err);
	}
	errno = e;
	return rc;
}

/*
 * Does another fd of ours still hold fd's socket (dup'ed, announced)? Scans the table, which
 * only happens when a dup'ed announced socket is closed: rare, and worth not leaking the
 * daemon's listener or port.
 */
static int
held_elsewhere(int fd)
{
	struct stat st, o;
	int i;

	if (fstat(fd, &st) == -1)
		return 0;
	for (i = 0; i < SHIM_FD_MAX; i++) {
		if (i == fd || !(shim_fd_get(i) & FD_ANNOUNCED))
			continue;
		if (fstat(i, &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino)
			return 1;
	}
	return 0;
}

void
shim_net_closing(int fd)
{
	uint32_t w = shim_fd_get(fd);
	struct shim_ep local;
	struct shim_msg m;
	int e = errno;

	if (!(w & FD_ANNOUNCED) || ((w & FD_SHARED) && held_elsewhere(fd)) ||
	    real_local(fd, &local) == -1) {
		errno = e;
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = SHIM_CLOSE;
	m.port = local.port;
	m.flag = (w & FD_TCP) ? SHIM_TCP : SHIM_UDP;
	shim_post(&m);
	errno = e;
}

/* ---- connect ---- */

/* The virtual outcome of fd's connect (waits for it). 0 with *err set, or -1. */
static int
tcp_result(int fd, int *err)
{
	struct shim_msg req, rep;
	uint16_t lport = shim_fd_lport(fd);

	*err = 0;
	shim_fd_clear_bits(fd, FD_PENDING);
	if (!lport)
		return -1;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_TCP_RESULT;
	req.lport = lport;
	req.flag = 1;
	if (shim_call(&req, &rep) == -1) {
		*err = ECONNRESET;
		return 0;
	}
	*err = rep.err;
	return 0;
}

static int
connect_tcp_peer(int fd, uint32_t w, const struct shim_ep *ep)
{
	struct sockaddr_storage ss;
	struct shim_msg req, rep;
	struct shim_ep local;
	socklen_t l;
	uint16_t vport;
	int rc, err, nonblock, e;

	if (real_local(fd, &local) == -1)
		return -1;
	if (!local.port) {
		/* the daemon finds the virtual connect by our source port on loopback */
		l = shim_ep_write(&ss, SHIM_LOOPBACK, 0, (w & FD_INET6) != 0);
		if (REAL(bind)(fd, (struct sockaddr *)&ss, l) == -1 || real_local(fd, &local) == -1)
			return -1;
	}
	memset(&req, 0, sizeof(req));
	req.type = SHIM_TCP_CONNECT;
	req.lport = local.port;
	req.addr = ep->addr;
	req.port = ep->port;
	if (shim_call(&req, &rep) == -1) {
		errno = ENETUNREACH;
		return -1;
	}
	if (rep.err) {
		errno = rep.err;
		return -1;
	}
	/* the low-port rule must hold, else getpeername could not map the port back */
	if (shim_alias_port(rep.r_addr, rep.r_port, &vport) == -1 || vport != ep->port) {
		errno = EHOSTUNREACH;
		return -1;
	}
	shim_alias_learn(ep->addr, rep.r_addr);
	shim_fd_set_lport(fd, local.port);
	shim_fd_set_kdst(fd, rep.r_addr, rep.r_port);
	nonblock = (REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK) != 0;
	l = shim_ep_write(&ss, rep.r_addr, rep.r_port, (w & FD_INET6) != 0);
	rc = REAL(connect)(fd, (struct sockaddr *)&ss, l);
	e = errno;
	if (rc == 0 && !nonblock) {
		shim_fd_or(fd, FD_VCONN);
		if (tcp_result(fd, &err) == 0 && err) {
			errno = err;
			return -1;
		}
		return 0;
	}
	if (rc == 0 || e == EINPROGRESS || e == EINTR) {
		/* the program learns the outcome through SO_ERROR, as with the kernel */
		shim_fd_or(fd, FD_VCONN | FD_PENDING);
		errno = rc == 0 ? EINPROGRESS : e;
		return -1;
	}
	errno = e;
	return rc;
}

SHIM_EXPORT int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage ss;
	struct shim_ep ep;
	struct shim_net n;
	uint32_t w, alias;
	uint16_t kport;
	socklen_t l;
	int rc, err;

	if (shim_ep_read(addr, len, &ep) == -1 || (ep.addr & SHIM_VNET_MASK) != SHIM_VNET ||
	    !shim_enabled()) {
		rc = REAL(connect)(fd, addr, len);
		if (rc == 0 && (shim_fd_get(fd) & (FD_VCONN | FD_SELF)))
			shim_fd_clear_bits(fd, FD_VCONN | FD_SELF | FD_PENDING);
		return rc;
	}
	w = shim_fd_probe(fd);
	if (!(w & FD_INET) || !(w & (FD_TCP | FD_UDP)) || shim_net_get(&n) == -1)
		return REAL(connect)(fd, addr, len);
	switch (shim_classify(&n, ep.addr)) {
	case DST_SELF:
		l = shim_ep_write(&ss, SHIM_LOOPBACK, ep.port, ep.v6);
		rc = REAL(connect)(fd, (struct sockaddr *)&ss, l);
		if (rc == 0 || errno == EINPROGRESS) {
			int e = errno;

			shim_fd_or(fd, FD_SELF);
			errno = e;
		}
		return rc;
	case DST_PEER:
		break;
	default:
		return REAL(connect)(fd, addr, len);
	}
	if (w & FD_UDP) {
		udp_ready(fd, w);
		if (!(alias = shim_udp_alias_of(ep.addr, ep.port, &kport, &err))) {
			errno = err;
			return -1;
		}
		l = shim_ep_write(&ss, alias, kport, ep.v6);
		if ((rc = REAL(connect)(fd, (struct sockaddr *)&ss, l)) == 0)
			shim_fd_or(fd, FD_VCONN);
		return rc;
	}
	if (w & FD_VCONN) {
		/* a second connect() on a connecting socket: EALREADY / EISCONN from the kernel,
		 * asked with the same kernel destination as the first */
		if (shim_fd_kdst(fd, &alias, &kport) == -1) {
			if (!(alias = shim_alias_of(ep.addr, &err))) {
				errno = err;
				return -1;
			}
			kport = ep.port;
		}
		l = shim_ep_write(&ss, alias, kport, ep.v6);
		rc = REAL(connect)(fd, (struct sockaddr *)&ss, l);
		if (rc == -1 && errno == EISCONN && (shim_fd_get(fd) & FD_PENDING)) {
			if (tcp_result(fd, &err) == 0 && err) {
				errno = err;
				return -1;
			}
			errno = EISCONN;
		}
		return rc;
	}
	return connect_tcp_peer(fd, w, &ep);
}

SHIM_EXPORT int
getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	int rc = REAL(getsockopt)(fd, level, opt, val, len), err, verr, e;

	if (rc == 0 && level == SOL_SOCKET && opt == SO_ERROR && val && len &&
	    *len >= (socklen_t)sizeof(int) && (shim_fd_get(fd) & FD_PENDING)) {
		/*
		 * The local leg says nothing about the peer, and shoald resets it when the virtual
		 * connect fails (the kernel then reports ECONNRESET): the daemon's answer wins.
		 */
		e = errno;
		memcpy(&err, val, sizeof(int));
		if (tcp_result(fd, &verr) == 0 && verr)
			err = verr;
		memcpy(val, &err, sizeof(int));
		errno = e;
	}
	return rc;
}

/* ---- setsockopt ---- */

static uint32_t
be32_at(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int
is_ours(uint32_t iface, int ifindex)
{
	struct shim_net n;

	if (ifindex > 0 && (unsigned)ifindex == shim_ifindex())
		return 1;
	return iface && (iface & SHIM_VNET_MASK) == SHIM_VNET && shim_net_get(&n) == 0 &&
	    iface == n.vaddr;
}

/*
 * shoald delivers a peer's datagram to a group as multicast on the loopback device (TTL 0), so
 * that it reaches a socket bound to the group address as well as one bound to 0.0.0.0, with
 * the group as its destination (IP_PKTINFO, IP_RECVORIGDSTADDR): the socket joins the group on
 * lo too. Best effort: the join on the real interface, if any, is the program's.
 */
static void
loopback_membership(int fd, int opt, uint32_t group)
{
	struct ip_mreqn mr;
	unsigned lo = REAL(if_nametoindex) ? REAL(if_nametoindex)("lo") : 0;
	int e = errno;

	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr.s_addr = htonl(group);
	mr.imr_ifindex = lo ? (int)lo : 1;
	(void)REAL(setsockopt)(fd, IPPROTO_IP, opt, &mr, sizeof(mr));
	errno = e;
}

static int
membership(int fd, int opt, const void *val, socklen_t len)
{
	uint8_t copy[sizeof(struct ip_mreqn)];
	struct shim_msg m, rep;
	struct shim_ep local;
	uint32_t group, iface;
	int ifindex = 0, ours, any, rc, e;

	if (!val || len < (socklen_t)sizeof(struct ip_mreq))
		return REAL(setsockopt)(fd, IPPROTO_IP, opt, val, len);
	group = be32_at(val);
	iface = be32_at((const uint8_t *)val + 4);
	if (len >= (socklen_t)sizeof(struct ip_mreqn))
		memcpy(&ifindex, (const uint8_t *)val + 8, sizeof(int));
	ours = is_ours(iface, ifindex);
	any = iface == 0 && ifindex == 0;
	if (ours) {
		/* the kernel part on whatever real interface it picks, if it can */
		len = len > (socklen_t)sizeof(copy) ? (socklen_t)sizeof(copy) : len;
		memcpy(copy, val, (size_t)len);
		memset(copy + 4, 0, (size_t)len - 4);
		e = errno;
		REAL(setsockopt)(fd, IPPROTO_IP, opt, copy, len);
		errno = e;
		rc = 0;
	} else {
		rc = REAL(setsockopt)(fd, IPPROTO_IP, opt, val, len);
		/* no multicast route (an isolated host): the overlay still carries the group */
		if (rc == -1 && !(any && (errno == ENODEV || errno == EADDRNOTAVAIL ||
		    errno == ENETUNREACH)))
			return rc;
		if (!any)
			return rc;
	}
	e = errno;
	if (shim_enabled() && real_local(fd, &local) == 0) {
		memset(&m, 0, sizeof(m));
		m.type = SHIM_MCAST;
		m.addr = group;
		m.port = local.port;
		m.flag = opt == IP_ADD_MEMBERSHIP;
		if (shim_call(&m, &rep) == 0 && rep.err == 0 && opt == IP_ADD_MEMBERSHIP)
			shim_fd_or(fd, FD_MCAST);
		loopback_membership(fd, opt, group);
	}
	errno = e;
	return 0;
}

/*
 * MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP (RFC 3678, the API GLib and libuv use) with an IPv4
 * group: the same as IP_ADD/DROP_MEMBERSHIP with an ip_mreqn of the group and the interface
 * index, and handled as that (the kernel gets the ip_mreqn form of the same join). Other
 * families and source-specific joins go to the kernel as they are.
 */
static int
group_membership(int fd, int opt, const void *val, socklen_t len)
{
	struct group_req gr;
	struct ip_mreqn mr;

	if (!val || len < (socklen_t)sizeof(gr))
		return REAL(setsockopt)(fd, IPPROTO_IP, opt, val, len);
	memcpy(&gr, val, sizeof(gr));
	if (gr.gr_group.ss_family != AF_INET)
		return REAL(setsockopt)(fd, IPPROTO_IP, opt, val, len);
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = ((const struct sockaddr_in *)&gr.gr_group)->sin_addr;
	mr.imr_ifindex = (int)gr.gr_interface;
	return membership(fd, opt == MCAST_JOIN_GROUP ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
	    &mr, sizeof(mr));
}

SHIM_EXPORT int
setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	uint32_t iface;
	int rc, on, ifindex = 0;

	if (level == SOL_SOCKET && opt == SO_BROADCAST) {
		rc = REAL(setsockopt)(fd, level, opt, val, len);
		if (rc == 0 && val && len >= (socklen_t)sizeof(int)) {
			memcpy(&on, val, sizeof(int));
			if (on)
				shim_fd_or(fd, FD_BCAST);
			else
				shim_fd_clear_bits(fd, FD_BCAST);
		}
		return rc;
	}
	if (level == SOL_SOCKET && opt == SO_BINDTODEVICE && val && len >= 6 &&
	    memcmp(val, SHIM_IFNAME, 6) == 0 && (len == 6 || ((const char *)val)[6] == '\0') &&
	    shim_enabled())
		return 0;       /* shoal0 is every interface's overlay twin: nothing to bind */
	if (level == IPPROTO_IP && (opt == IP_ADD_MEMBERSHIP || opt == IP_DROP_MEMBERSHIP) &&
	    shim_enabled())
		return membership(fd, opt, val, len);
	if (level == IPPROTO_IP && (opt == MCAST_JOIN_GROUP || opt == MCAST_LEAVE_GROUP) &&
	    shim_enabled())
		return group_membership(fd, opt, val, len);
	if (level == IPPROTO_IP && opt == IP_MULTICAST_IF && val && shim_enabled() &&
	    len >= (socklen_t)sizeof(struct in_addr)) {
		iface = be32_at(len >= (socklen_t)sizeof(struct ip_mreq) ?
		    (const uint8_t *)val + 4 : val);
		if (len >= (socklen_t)sizeof(struct ip_mreqn))
			memcpy(&ifindex, (const uint8_t *)val + 8, sizeof(int));
		if (is_ours(iface, ifindex))
			return 0;
	}
	return REAL(setsockopt)(fd, level, opt, val, len);
}

/* ---- sending ---- */

static size_t
iov_total(const struct iovec *iov, size_t n)
{
	size_t i, t = 0;

	for (i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static int
unroutable(int e)
{
	return e == ENETUNREACH || e == EHOSTUNREACH || e == EADDRNOTAVAIL || e == ENODEV;
}

/* A datagram with a destination that may be virtual. */
static ssize_t
send_dgram(int fd, const struct msghdr *msg, int flags, const struct shim_ep *ep)
{
	struct sockaddr_storage ss;
	struct msghdr m = *msg;
	struct shim_net n;
	uint32_t w = shim_fd_probe(fd), alias;
	uint16_t sport, kport;
	ssize_t rc;
	int err;

	if (!(w & FD_UDP) || shim_net_get(&n) == -1)
		return REAL(sendmsg)(fd, msg, flags);
	switch (shim_classify(&n, ep->addr)) {
	case DST_SELF:
		m.msg_name = &ss;
		m.msg_namelen = shim_ep_write(&ss, SHIM_LOOPBACK, ep->port, ep->v6);
		return REAL(sendmsg)(fd, &m, flags);
	case DST_PEER:
		udp_ready(fd, w);
		if (!(alias = shim_udp_alias_of(ep->addr, ep->port, &kport, &err))) {
			errno = err;
			return -1;
		}
		m.msg_name = &ss;
		m.msg_namelen = shim_ep_write(&ss, alias, kport, ep->v6);
		return REAL(sendmsg)(fd, &m, flags);
	case DST_VBCAST:
		if (!(w & FD_BCAST)) {
			errno = EACCES;
			return -1;
		}
		if ((sport = udp_ready(fd, w)))
			shim_post_dgram(ep->addr, ep->port, sport, msg->msg_iov, msg->msg_iovlen);
		return (ssize_t)iov_total(msg->msg_iov, msg->msg_iovlen);
	case DST_BCAST:
		if (!(w & FD_BCAST))
			return REAL(sendmsg)(fd, msg, flags);   /* EACCES from the kernel */
		/* fall through */
	case DST_MCAST:
		if ((sport = udp_ready(fd, w)))
			shim_post_dgram(ep->addr, ep->port, sport, msg->msg_iov, msg->msg_iovlen);
		rc = REAL(sendmsg)(fd, msg, flags);
		if (rc == -1 && sport && unroutable(errno))
			rc = (ssize_t)iov_total(msg->msg_iov, msg->msg_iovlen);
		return rc;
	default:
		return REAL(sendmsg)(fd, msg, flags);
	}
}

/* A request went out on a NETLINK_ROUTE socket: shim_nl.c decides whether shoal0 answers. */
static ssize_t
nl_sent(int fd, ssize_t rc, const void *data, size_t len)
{
	if (rc > 0)
		shim_nl_sent(fd, data, len);
	return rc;
}

SHIM_EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	if (shim_fd_get(fd) & FD_NLROUTE)
		return nl_sent(fd, REAL(send)(fd, buf, len, flags), buf, len);
	return REAL(send)(fd, buf, len, flags);
}

SHIM_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
    socklen_t dlen)
{
	struct iovec iov;
	struct msghdr m;
	struct shim_ep ep;

	if (shim_fd_get(fd) & FD_NLROUTE)
		return nl_sent(fd, REAL(sendto)(fd, buf, len, flags, dst, dlen), buf, len);
	if (!dst || shim_ep_read(dst, dlen, &ep) == -1 || !maybe_virtual(ep.addr) ||
	    !shim_enabled())
		return REAL(sendto)(fd, buf, len, flags, dst, dlen);
	iov.iov_base = (void *)buf;
	iov.iov_len = len;
	memset(&m, 0, sizeof(m));
	m.msg_name = (void *)dst;
	m.msg_namelen = dlen;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	return send_dgram(fd, &m, flags, &ep);
}

SHIM_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct shim_ep ep;

	if ((shim_fd_get(fd) & FD_NLROUTE) && msg && msg->msg_iovlen > 0)
		return nl_sent(fd, REAL(sendmsg)(fd, msg, flags), msg->msg_iov[0].iov_base,
		    msg->msg_iov[0].iov_len);
	if (!msg || !msg->msg_name || shim_ep_read(msg->msg_name, msg->msg_namelen, &ep) == -1 ||
	    !maybe_virtual(ep.addr) || !shim_enabled())
		return REAL(sendmsg)(fd, msg, flags);
	return send_dgram(fd, msg, flags, &ep);
}

SHIM_EXPORT int
sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	struct shim_ep ep;
	unsigned i;
	ssize_t n;
	int any = 0;

	if (vec && shim_enabled())
		for (i = 0; i < vlen && !any; i++)
			any = vec[i].msg_hdr.msg_name && shim_ep_read(vec[i].msg_hdr.msg_name,
			    vec[i].msg_hdr.msg_namelen, &ep) == 0 && maybe_virtual(ep.addr);
	if (!any)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	/* rare (batched sends to the overlay): one at a time through the rewriting path */
	for (i = 0; i < vlen; i++) {
		if ((n = sendmsg(fd, &vec[i].msg_hdr, flags)) == -1)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned)n;
	}
	return (int)vlen;
}

/* ---- receiving: sources and peers back to 5.x ---- */

static void
fix_addr(int fd, struct sockaddr *sa, socklen_t buflen, socklen_t got)
{
	struct shim_ep ep;
	struct shim_net n;
	socklen_t len = got < buflen ? got : buflen;
	uint32_t v;
	uint16_t vp;

	if (!sa || shim_ep_read(sa, len, &ep) == -1 || (ep.addr >> 24) != 127)
		return;
	if (shim_is_alias(ep.addr)) {
		if (shim_unalias(ep.addr, ep.port, &v, &vp) == 0)
			shim_ep_rewrite_port(sa, len, v, vp);
		return;
	}
	if (ep.addr == SHIM_LOOPBACK && (shim_fd_get(fd) & (FD_VBOUND | FD_SELF)) &&
	    shim_net_get(&n) == 0)
		shim_ep_rewrite(sa, len, n.vaddr);
}

/* shoal0's answer on a NETLINK_ROUTE socket, for the flat receive calls. 1 with *rc, or 0. */
static int
nl_recv_flat(int fd, void *buf, size_t len, int flags, struct sockaddr *src, socklen_t *srclen,
    ssize_t *rc)
{
	struct iovec iov = { buf, len };
	struct msghdr m;

	if (!(shim_fd_get(fd) & FD_NLROUTE))
		return 0;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_name = src;
	m.msg_namelen = src && srclen ? *srclen : 0;
	if (!shim_nl_recv(fd, &m, flags, rc))
		return 0;
	if (src && srclen)
		*srclen = m.msg_namelen;
	return 1;
}

SHIM_EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t rc;

	if (nl_recv_flat(fd, buf, len, flags, NULL, NULL, &rc))
		return rc;
	return REAL(recv)(fd, buf, len, flags);
}

SHIM_EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src, socklen_t *srclen)
{
	socklen_t cap = srclen ? *srclen : 0;
	ssize_t rc;

	if (nl_recv_flat(fd, buf, len, flags, src, srclen, &rc))
		return rc;
	rc = REAL(recvfrom)(fd, buf, len, flags, src, srclen);

	if (rc >= 0 && src && srclen && shim_enabled()) {
		int e = errno;

		fix_addr(fd, src, cap, *srclen);
		errno = e;
	}
	return rc;
}

SHIM_EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *src,
    socklen_t *srclen)
{
	socklen_t cap = srclen ? *srclen : 0;
	ssize_t rc;

	if (len <= buflen && nl_recv_flat(fd, buf, len, flags, src, srclen, &rc))
		return rc;
	rc = REAL(__recvfrom_chk)(fd, buf, len, buflen, flags, src, srclen);

	if (rc >= 0 && src && srclen && shim_enabled()) {
		int e = errno;

		fix_addr(fd, src, cap, *srclen);
		errno = e;
	}
	return rc;
}

SHIM_EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	socklen_t cap = msg ? msg->msg_namelen : 0;
	ssize_t rc;

	if (msg && (shim_fd_get(fd) & FD_NLROUTE) && shim_nl_recv(fd, msg, flags, &rc))
		return rc;
	rc = REAL(recvmsg)(fd, msg, flags);

	if (rc >= 0 && msg && msg->msg_name && shim_enabled()) {
		int e = errno;

		fix_addr(fd, msg->msg_name, cap, msg->msg_namelen);
		errno = e;
	}
	return rc;
}

SHIM_EXPORT int
recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	socklen_t caps[64];
	unsigned i, k = vlen < 64 ? vlen : 64;
	int rc, e;

	/* the kernel overwrites msg_namelen: remember the buffer sizes first */
	for (i = 0; vec && i < k; i++)
		caps[i] = vec[i].msg_hdr.msg_namelen;
	rc = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
	if (rc <= 0 || !shim_enabled())
		return rc;
	e = errno;
	for (i = 0; i < (unsigned)rc; i++)
		if (vec[i].msg_hdr.msg_name)
			fix_addr(fd, vec[i].msg_hdr.msg_name, i < k ? caps[i] :
			    vec[i].msg_hdr.msg_namelen, vec[i].msg_hdr.msg_namelen);
	errno = e;
	return rc;
}

static int
accepted(int lfd, int fd, struct sockaddr *addr, socklen_t cap, socklen_t *addrlen)
{
	struct sockaddr_storage ss;
	struct shim_ep ep;
	socklen_t l = sizeof(ss);
	uint32_t lw, v;
	uint16_t vp;
	int e = errno;

	lw = shim_fd_probe(lfd);
	shim_fd_set(fd, lw & (FD_KNOWN | FD_INET | FD_INET6 | FD_TCP | FD_UDP));
	if (!(lw & FD_INET) || !shim_enabled())
		return fd;
	if (REAL(getpeername)(fd, (struct sockaddr *)&ss, &l) == -1 ||
	    shim_ep_read((struct sockaddr *)&ss, l, &ep) == -1 || !shim_is_alias(ep.addr)) {
		errno = e;
		return fd;
	}
	shim_fd_or(fd, FD_VCONN);
	if (addr && addrlen && shim_unalias(ep.addr, ep.port, &v, &vp) == 0)
		shim_ep_rewrite_port(addr, cap < *addrlen ? cap : *addrlen, v, vp);
	errno = e;
	return fd;
}

SHIM_EXPORT int
accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
	socklen_t cap = addrlen ? *addrlen : 0;
	int fd = REAL(accept)(lfd, addr, addrlen);

	return fd < 0 ? fd : accepted(lfd, fd, addr, cap, addrlen);
}

SHIM_EXPORT int
accept4(int lfd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	socklen_t cap = addrlen ? *addrlen : 0;
	int fd = REAL(accept4)(lfd, addr, addrlen, flags);

	return fd < 0 ? fd : accepted(lfd, fd, addr, cap, addrlen);
}

/* A TCP socket we did not see connect or accept (inherited across exec, as sshd's re-exec
 * passes it): is its kernel peer an alias? Looked at once per fd. */
static uint32_t
late_peer_check(int fd, uint32_t w)
{
	struct sockaddr_storage ss;
	struct shim_ep ep;
	socklen_t l = sizeof(ss);

	w = shim_fd_probe(fd);
	if ((w & FD_PEERCHK) || !(w & FD_TCP))
		return w;
	w |= FD_PEERCHK;
	if (REAL(getpeername)(fd, (struct sockaddr *)&ss, &l) == 0 &&
	    shim_ep_read((struct sockaddr *)&ss, l, &ep) == 0 && shim_is_alias(ep.addr))
		w |= FD_VCONN;
	shim_fd_or(fd, w & (FD_PEERCHK | FD_VCONN));
	return w;
}

SHIM_EXPORT int
getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	socklen_t cap = addrlen ? *addrlen : 0;
	int rc = REAL(getsockname)(fd, addr, addrlen), e;
	struct shim_ep ep;
	struct shim_net n;
	uint32_t w;

	if (rc == -1 || !addr || !addrlen || !shim_enabled())
		return rc;
	e = errno;
	cap = cap < *addrlen ? cap : *addrlen;
	if (shim_ep_read(addr, cap, &ep) == -1 || (ep.addr >> 24) != 127)
		goto out;
	w = shim_fd_get(fd);
	if (!(w & (FD_VBOUND | FD_VCONN | FD_SELF)) && ep.addr == SHIM_LOOPBACK)
		w = late_peer_check(fd, w);
	if (!(w & (FD_VBOUND | FD_VCONN | FD_SELF)) || shim_net_get(&n) == -1)
		goto out;
	if (ep.addr == SHIM_LOOPBACK)
		shim_ep_rewrite(addr, cap, n.vaddr);
	else if (ep.addr == SHIM_LO_BCAST && (w & FD_VBOUND))
		shim_ep_rewrite(addr, cap, n.vaddr | ~n.mask);
out:
	errno = e;
	return rc;
}

SHIM_EXPORT int
getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	socklen_t cap = addrlen ? *addrlen : 0;
	int rc = REAL(getpeername)(fd, addr, addrlen), e;

	if (rc == -1 || !addr || !addrlen || !shim_enabled())
		return rc;
	e = errno;
	fix_addr(fd, addr, cap, *addrlen);
	errno = e;
	return rc;
}
