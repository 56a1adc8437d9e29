/*
 * udp: UDP for programs under `shoal run` (docs/LANPROXY.md "UDP").
 *
 *   UDP_BIND(P)                      netstack UDP port P (refcounted over local sockets on P)
 *   local socket :P -> alias:p       over the overlay from our vaddr:P to peer:p
 *   peer:p -> our vaddr:P            from alias(peer):p to 127.0.0.1:P (one socket gets it)
 *   peer:p -> broadcast:P            from alias(peer):p to 127.255.255.255:P, so every socket
 *                                    bound to 0.0.0.0:P gets its own copy
 *   peer:p -> group:P                from alias(peer):p to group:P on the loopback device (TTL
 *                                    0), where the shim joined the group for each program
 *                                    socket that joined it, whichever address the socket is
 *                                    bound to (0.0.0.0:P or group:P); only if one on P did
 *   DGRAM_OUT(dst, P, lport, data)   a local broadcast/multicast copied to the LAN from our
 *                                    vaddr:lport, at most LP_DGRAM_RATE/s for the whole node
 *
 * Datagrams from 127.66.0.0/15 (aliases and low-port aliases) reaching an alias socket are
 * dropped: they come from another daemon's alias socket on this host, and forwarding them would
 * only make loops.
 * Owns: struct lp_uport (and their ns_udps), struct lp_mcast, the DGRAM_OUT token bucket.
 * Must not: create or close alias sockets other than through lp_usock_get.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "lanproxy/server/lanproxy.h"
#include "netstack/netstack.h"

static const uint32_t LOOPBACK_BCAST = 0x7fffffffu;   /* 127.255.255.255 */

static int
is_multicast(uint32_t a)
{
	return (a >> 28) == 0xe;
}

/* 255.255.255.255 or our virtual network's broadcast address. */
static int
is_broadcast(const struct vnet *vn, uint32_t a)
{
	return a == 0xffffffffu || vnet_is_broadcast(vn, a);
}

static void
udp_drop(struct shim_server *s, const char *why)
{
	/* Counted always; logged for the first few only, a peer must not flood the log. */
	if (s->st.udp_dropped++ < 8)
		log_debug("event=lanproxy_udp_drop why=\"%s\"", why);
}

static struct lp_mcast *
mcast_find(const struct shim_server *s, uint32_t group, uint16_t port)
{
	struct lp_mcast *m;
	uint64_t key = (uint64_t)group << 16 | port;

	HASH_FIND(hh, s->mcasts, &key, sizeof(key), m);
	return m;
}

/* A datagram from the overlay to our port P. */
static void
uport_recv(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, const uint8_t *data,
    size_t len)
{
	struct lp_uport *up = arg;
	struct shim_server *s = up->s;
	struct lp_usock *us;
	struct sockaddr_in to;
	uint32_t dst;

	if (src_port == 0 || lp_check_peer(s, src_ip) != 0) {
		udp_drop(s, "source is not a peer");
		return;
	}
	if (dst_ip == s->vn->addr) {
		dst = INADDR_LOOPBACK;
	} else if (is_broadcast(s->vn, dst_ip)) {
		dst = LOOPBACK_BCAST;
	} else if (is_multicast(dst_ip)) {
		if (mcast_find(s, dst_ip, up->port) == NULL) {
			udp_drop(s, "group not joined");
			return;
		}
		dst = dst_ip;
	} else {
		udp_drop(s, "not for us");
		return;
	}
	if ((us = lp_usock_get(s, src_ip, src_port)) == NULL) {
		udp_drop(s, "no alias socket");
		return;
	}
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(dst);
	to.sin_port = htons(up->port);
	if (sendto(us->io.fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&to, sizeof(to)) < 0) {
		udp_drop(s, "local send failed");
		return;
	}
	s->st.udp_from_overlay++;
}

void
lp_usock_readable(struct lp_usock *us)
{
	struct shim_server *s = us->s;
	struct sockaddr_in from;
	struct lp_uport *up;
	socklen_t fl;
	uint16_t port;
	ssize_t r;
	int i;

	lp_usock_touch(us);
	for (i = 0; i < LP_BATCH; i++) {
		fl = sizeof(from);
		r = recvfrom(us->io.fd, s->buf, sizeof(s->buf), 0, (struct sockaddr *)&from, &fl);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;       /* ICMP errors from earlier deliveries: nothing to do */
		}
		if (fl < sizeof(from) || from.sin_family != AF_INET ||
		    (ntohl(from.sin_addr.s_addr) & SHIM_ANYALIAS_MASK) == SHIM_ALIAS_NET) {
			udp_drop(s, "source is an alias");
			continue;
		}
		port = ntohs(from.sin_port);
		HASH_FIND(hh, s->uports, &port, sizeof(port), up);
		if (up == NULL) {
			udp_drop(s, "source port not announced");
			continue;
		}
		if (ns_udp_sendto(up->u, us->vaddr, us->port, s->buf, (size_t)r) != 0) {
			udp_drop(s, "overlay send failed");
			continue;
		}
		s->st.udp_to_overlay++;
	}
}

enum lp_verdict
lp_udp_bind(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_uport *up;
	uint16_t port = rq->port;

	if (port == 0) {
		rep->err = EINVAL;
		return LP_REPLY;
	}
	switch (lp_reg_add(c, LP_REG_UDP, port, 0)) {
	case -1:
		rep->err = ENOBUFS;
		return LP_REPLY;
	case 0:
		return LP_REPLY;        /* this client already holds the port */
	}
	HASH_FIND(hh, s->uports, &port, sizeof(port), up);
	if (up == NULL) {
		if ((up = calloc(1, sizeof(*up))) == NULL) {
			rep->err = ENOMEM;
			goto fail;
		}
		up->s = s;
		up->port = port;
		if ((up->u = ns_udp_bind(s->ns, port, uport_recv, up)) == NULL) {
			rep->err = errno ? errno : EADDRINUSE;
			free(up);
			goto fail;
		}
		HASH_ADD(hh, s->uports, port, sizeof(up->port), up);
		log_debug("event=lanproxy_udp_bind port=%u", port);
	}
	up->refs++;
	return LP_REPLY;
fail:
	(void)lp_reg_del(c, LP_REG_UDP, port, 0);
	return LP_REPLY;
}

void
lp_uport_release(struct shim_server *s, uint16_t port)
{
	struct lp_uport *up;

	HASH_FIND(hh, s->uports, &port, sizeof(port), up);
	if (up == NULL || --up->refs > 0)
		return;
	ns_udp_free(up->u);
	HASH_DEL(s->uports, up);
	free(up);
	log_debug("event=lanproxy_udp_unbind port=%u", port);
}

enum lp_verdict
lp_udp_alias(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_usock *us;
	int err;

	(void)c;
	if (rq->port == 0) {
		rep->err = EINVAL;
		return LP_REPLY;
	}
	if ((err = lp_check_peer(s, rq->addr)) != 0) {
		rep->err = err;
		return LP_REPLY;
	}
	/* The kernel's answer for a LAN host that does not answer ARP; sendto fails at once
	 * rather than later, which a program cannot tell apart. */
	if (!lp_peer_known(s, rq->addr)) {
		rep->err = EHOSTUNREACH;
		return LP_REPLY;
	}
	if ((us = lp_usock_get(s, rq->addr, rq->port)) == NULL) {
		rep->err = errno == EADDRINUSE ? EADDRNOTAVAIL : errno;
		return LP_REPLY;
	}
	rep->r_addr = us->kaddr;
	rep->r_port = us->kport;
	return LP_REPLY;
}

enum lp_verdict
lp_mcast(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_mcast *m;

	if (!is_multicast(rq->addr) || rq->port == 0) {
		rep->err = EINVAL;
		return LP_REPLY;
	}
	if (!rq->flag) {
		/* As the kernel's IP_DROP_MEMBERSHIP for a group never joined. */
		switch (lp_reg_del(c, LP_REG_MCAST, rq->port, rq->addr)) {
		case -1:
			rep->err = EADDRNOTAVAIL;
			break;
		case 1:
			lp_mcast_release(s, rq->addr, rq->port);
			break;
		}
		return LP_REPLY;
	}
	switch (lp_reg_add(c, LP_REG_MCAST, rq->port, rq->addr)) {
	case -1:
		rep->err = ENOBUFS;
		return LP_REPLY;
	case 0:
		return LP_REPLY;
	}
	if ((m = mcast_find(s, rq->addr, rq->port)) == NULL) {
		if ((m = calloc(1, sizeof(*m))) == NULL) {
			(void)lp_reg_del(c, LP_REG_MCAST, rq->port, rq->addr);
			rep->err = ENOMEM;
			return LP_REPLY;
		}
		m->key = (uint64_t)rq->addr << 16 | rq->port;
		HASH_ADD(hh, s->mcasts, key, sizeof(m->key), m);
	}
	m->refs++;
	return LP_REPLY;
}

void
lp_mcast_release(struct shim_server *s, uint32_t group, uint16_t port)
{
	struct lp_mcast *m = mcast_find(s, group, port);

	if (m == NULL || --m->refs > 0)
		return;
	HASH_DEL(s->mcasts, m);
	free(m);
}

/* Token bucket for the whole node: broadcast storms from one program must not flood peers. */
static int
dgram_rate_ok(struct shim_server *s)
{
	ev_tstamp now = ev_now(s->loop);

	s->tokens += (now - s->tokens_at) * LP_DGRAM_RATE;
	s->tokens_at = now;
	if (s->tokens > LP_DGRAM_BURST)
		s->tokens = LP_DGRAM_BURST;
	if (s->tokens < 1.)
		return 0;
	s->tokens -= 1.;
	return 1;
}

void
lp_dgram_out(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq)
{
	struct lp_uport *up;
	uint16_t lport = rq->lport;

	(void)c;
	s->st.dgram_out++;
	/* Without an address there is no network to copy it to (and no source for it). */
	if (!vnet_ready(s->vn) || rq->port == 0 ||
	    !(is_broadcast(s->vn, rq->addr) || is_multicast(rq->addr))) {
		udp_drop(s, "dgram_out: not a broadcast or multicast");
		return;
	}
	HASH_FIND(hh, s->uports, &lport, sizeof(lport), up);
	if (up == NULL) {
		udp_drop(s, "dgram_out: source port not announced");
		return;
	}
	if (!dgram_rate_ok(s)) {
		s->st.dgram_out_limited++;
		return;
	}
	if (ns_udp_sendto(up->u, rq->addr, rq->port, rq->data, rq->data_len) != 0)
		udp_drop(s, "dgram_out: overlay send failed");
}

void
lp_udp_free_all(struct shim_server *s)
{
	struct lp_uport *up, *utmp;
	struct lp_mcast *m, *mtmp;

	HASH_ITER(hh, s->uports, up, utmp) {
		ns_udp_free(up->u);
		HASH_DEL(s->uports, up);
		free(up);
	}
	HASH_ITER(hh, s->mcasts, m, mtmp) {
		HASH_DEL(s->mcasts, m);
		free(m);
	}
}
