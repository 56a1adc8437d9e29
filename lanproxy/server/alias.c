/*
 * alias: the loopback aliases standing for peers, and the kernel sockets bound on them.
 *
 * Peer 5.a.b.c is represented to local programs by one address in 127.66.0.0/16, handed out on
 * first use and never reused while the daemon runs (shims cache the pair). The first index is
 * random, so two daemons on one host (tests, several users) rarely pick the same alias for
 * different peers and fight over alias:port.
 *
 *   alias UDP socket alias:p    programs send to it to reach peer:p; datagrams from peer:p are
 *                               delivered from it (udp.c does the moving)
 *   alias TCP listener alias:p  open while TCP_CONNECT records wait for a program's connect;
 *                               accepted connections go to tcp.c
 *
 * Low ports: an unprivileged daemon may not bind alias:p for p below the kernel's
 * ip_unprivileged_port_start (a peer's ssh on 22, http on 80, a NetBIOS broadcast from 137).
 * Those sockets go to the low-port alias of the same index, 127.67.x.y, on p + 64512
 * (lanproxy/shim_proto.h); replies tell the shim where, and the shim maps sources back with the
 * same fixed rule. Ports are only moved when the kernel refuses (EACCES): as root nothing moves.
 *
 * The questions about peers are answered here too, by asking rather than deciding: "may this
 * address be another node" from our vnet (base/ip4.h), "is it an authorized peer" and peer
 * names (RESOLVE) from the peer directory (base/peerdir.h), so that the subnet rules and the
 * authorization policy are each written once, outside lanproxy.
 * Owns: the alias table, struct lp_usock and struct lp_tlisten with their sockets.
 * Must not: move data (udp.c) nor decide about connections (tcp.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "base/peerdir.h"
#include "base/proto.h"
#include "lanproxy/server/lanproxy.h"

enum {
	ALIAS_MAX = 65534,              /* indexes 1..65534: not .0.0 nor .255.255 */
	TLISTEN_BACKLOG = 128,
};

static void
sin_set(struct sockaddr_in *sin, uint32_t addr, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(addr);
	sin->sin_port = htons(port);
}

void
lp_alias_init(struct shim_server *s)
{
	s->alias_next = 1 + randombytes_uniform(ALIAS_MAX);
}

int
lp_check_peer(const struct shim_server *s, uint32_t vaddr)
{
	/* No address yet, or another network: as the kernel without a route. */
	if (!vnet_contains(s->vn, vaddr))
		return ENETUNREACH;
	/* Ourselves is 127.0.0.1 (the shim's job); network and broadcast are not hosts. */
	if (!vnet_is_other_host(s->vn, vaddr))
		return EINVAL;
	return 0;
}

uint32_t
lp_alias_get(struct shim_server *s, uint32_t vaddr)
{
	struct lp_alias *a;
	char vs[IP4_STR_LEN], as[IP4_STR_LEN];
	uint32_t idx;

	HASH_FIND(hh_vaddr, s->by_vaddr, &vaddr, sizeof(vaddr), a);
	if (a != NULL)
		return a->alias;
	if (s->alias_count >= ALIAS_MAX || (a = calloc(1, sizeof(*a))) == NULL)
		return 0;
	idx = s->alias_next;
	s->alias_next = idx % ALIAS_MAX + 1;
	a->vaddr = vaddr;
	a->alias = SHIM_ALIAS_NET | idx;
	HASH_ADD(hh_vaddr, s->by_vaddr, vaddr, sizeof(a->vaddr), a);
	HASH_ADD(hh_alias, s->by_alias, alias, sizeof(a->alias), a);
	s->alias_count++;
	log_debug("event=lanproxy_alias vaddr=%s alias=%s", ip4_str(vaddr, vs),
	    ip4_str(a->alias, as));
	return a->alias;
}

uint32_t
lp_alias_lookup(const struct shim_server *s, uint32_t alias)
{
	struct lp_alias *a;

	if ((alias & SHIM_ALIAS_MASK) == SHIM_LOWALIAS_NET)
		alias = SHIM_ALIAS_NET | (alias & ~SHIM_ALIAS_MASK);
	HASH_FIND(hh_alias, s->by_alias, &alias, sizeof(alias), a);
	return a ? a->vaddr : 0;
}

int
lp_alias_unmap(const struct shim_server *s, uint32_t kaddr, uint16_t kport, uint32_t *vaddr,
    uint16_t *vport)
{
	uint32_t v;

	if ((kaddr & SHIM_ANYALIAS_MASK) != SHIM_ALIAS_NET || (v = lp_alias_lookup(s, kaddr)) == 0)
		return -1;
	if ((kaddr & SHIM_ALIAS_MASK) == SHIM_LOWALIAS_NET) {
		/* only p + 64512 for p in 1..1023 is ever bound there */
		if (kport <= SHIM_LOWPORT_BASE)
			return -1;
		kport = (uint16_t)(kport - SHIM_LOWPORT_BASE);
	}
	*vaddr = v;
	*vport = kport;
	return 0;
}

int
lp_alias_bind(int fd, uint32_t alias, uint16_t port, uint32_t *kaddr, uint16_t *kport)
{
	struct sockaddr_in sin;
	uint32_t a = alias;
	uint16_t p = port;

	sin_set(&sin, a, p);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		if (errno != EACCES || port == 0 || port > SHIM_LOWPORT_MAX)
			return -1;
		a = SHIM_LOWALIAS_NET | (alias & ~SHIM_ALIAS_MASK);
		p = (uint16_t)(port + SHIM_LOWPORT_BASE);
		sin_set(&sin, a, p);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			return -1;
	}
	if (kaddr != NULL)
		*kaddr = a;
	if (kport != NULL)
		*kport = p;
	return 0;
}

int
lp_peer_known(const struct shim_server *s, uint32_t vaddr)
{
	/* The peer table holds exactly the nodes the mediator client authorized; asking it keeps
	 * lanproxy's answer the same as every other front end's. */
	return peerdir_is_peer(s->dir, vaddr);
}

enum lp_verdict
lp_resolve(struct shim_server *s, const struct shim_msg *rq, struct shim_msg *rep)
{
	char name[SHIM_NAME_MAX + 1];
	uint8_t key[KEY_LEN];
	uint32_t addr = 0;

	/* The codec guarantees 1..255 bytes without a NUL. The name goes to the resolver as the
	 * program wrote it: spellings ("bob.", "BOB.shoal", a node-id prefix) are its business,
	 * so that every front end accepts the same names. */
	memcpy(name, rq->name, rq->name_len);
	name[rq->name_len] = '\0';
	/* addr 0: a member the mediator has not given an address yet, nothing to connect to. */
	if (peerdir_resolve(s->dir, name, key, &addr) != 0 || addr == 0) {
		rep->err = ENOENT;
		return LP_REPLY;
	}
	rep->r_addr = addr;
	return LP_REPLY;
}

/* The reverse: a member's name for getnameinfo/gethostbyaddr. The reply's name points into
 * s->name_buf, encoded before the next request is read. */
enum lp_verdict
lp_name_of(struct shim_server *s, const struct shim_msg *rq, struct shim_msg *rep)
{
	if (peerdir_name_of(s->dir, rq->addr, s->name_buf, sizeof(s->name_buf)) != 0) {
		rep->err = ENOENT;
		return LP_REPLY;
	}
	rep->name = s->name_buf;
	rep->name_len = (uint8_t)strlen(s->name_buf);
	return LP_REPLY;
}

/*
 * The kernel socket behind an lp_usock (SOCK_DGRAM) or an lp_tlisten (SOCK_STREAM, listening)
 * on alias:port, or on its low-port stand-in: kaddr/kport say where it ended up.
 * Returns the fd, or -1 with errno set.
 */
static int
alias_socket(int type, uint32_t alias, uint16_t port, uint32_t *kaddr, uint16_t *kport)
{
	char as[IP4_STR_LEN];
	int fd, one = 1, saved;

	fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Broadcast and multicast copies are delivered to 127.255.255.255 from a UDP socket. */
	if (type == SOCK_DGRAM) {
		/* Group datagrams from peers are delivered as multicast on the loopback device,
		 * where the shim joins every group a program joins (udp.c): TTL 0, so nothing
		 * ever leaves this host. */
		struct ip_mreqn lo = { .imr_ifindex = (int)if_nametoindex("lo") };
		int ttl = 0;

		(void)setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
		(void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo));
		(void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
		(void)setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one));
	}
	/* Listeners come and go with each connect: TIME_WAIT leftovers must not block them.
	 * SO_REUSEPORT lets a program's socket on 0.0.0.0:port share the port when it has
	 * SO_REUSEADDR (UDP) or SO_REUSEPORT (TCP; the shim sets it): datagrams and connects to
	 * alias:port still reach us, the more specific binding. Without it the kernel refuses one
	 * of the two. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (lp_alias_bind(fd, alias, port, kaddr, kport) != 0 ||
	    (type == SOCK_STREAM && listen(fd, TLISTEN_BACKLOG) != 0)) {
		saved = errno;
		log_debug("event=%s alias=%s port=%u error=\"%s\"",
		    type == SOCK_DGRAM ? "lanproxy_usock_failed" : "lanproxy_tlisten_failed",
		    ip4_str(alias, as), port, strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* ---- alias UDP sockets ---- */

static void
usock_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	lp_usock_readable((struct lp_usock *)w);
}

static void
usock_free(struct shim_server *s, struct lp_usock *us)
{
	ev_io_stop(s->loop, &us->io);
	close(us->io.fd);
	HASH_DEL(s->usocks, us);
	DL_DELETE2(s->usock_lru, us, lru_prev, lru_next);
	s->n_usocks--;
	free(us);
}

struct lp_usock *
lp_usock_get(struct shim_server *s, uint32_t vaddr, uint16_t port)
{
	struct lp_usock *us;
	uint32_t alias, kaddr;
	uint16_t kport;
	uint64_t key;
	int fd;

	if ((alias = lp_alias_get(s, vaddr)) == 0) {
		errno = EADDRNOTAVAIL;
		return NULL;
	}
	key = (uint64_t)alias << 16 | port;
	HASH_FIND(hh, s->usocks, &key, sizeof(key), us);
	if (us != NULL) {
		lp_usock_touch(us);
		return us;
	}
	if (s->n_usocks >= LP_USOCK_MAX) {
		/* Recycle rather than refuse: a server that has heard from many peer ports over
		 * its life must still hear from the next one. */
		s->st.usock_recycled++;
		usock_free(s, s->usock_lru);
	}
	if ((fd = alias_socket(SOCK_DGRAM, alias, port, &kaddr, &kport)) < 0)
		return NULL;
	if ((us = calloc(1, sizeof(*us))) == NULL) {
		close(fd);
		return NULL;
	}
	us->s = s;
	us->key = key;
	us->vaddr = vaddr;
	us->alias = alias;
	us->port = port;
	us->kaddr = kaddr;
	us->kport = kport;
	ev_io_init(&us->io, usock_cb, fd, EV_READ);
	ev_io_start(s->loop, &us->io);
	HASH_ADD(hh, s->usocks, key, sizeof(us->key), us);
	DL_APPEND2(s->usock_lru, us, lru_prev, lru_next);
	s->n_usocks++;
	return us;
}

void
lp_usock_touch(struct lp_usock *us)
{
	struct shim_server *s = us->s;

	if (us->lru_next == NULL)
		return;         /* already the most recent */
	DL_DELETE2(s->usock_lru, us, lru_prev, lru_next);
	DL_APPEND2(s->usock_lru, us, lru_prev, lru_next);
}

/* ---- alias TCP listeners ---- */

static void
tlisten_free(struct lp_tlisten *tl)
{
	struct shim_server *s = tl->s;

	acceptor_free(tl->acc);
	close(tl->fd);
	HASH_DEL(s->tlistens, tl);
	free(tl);
}

static int
tlisten_accept(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct lp_tlisten *tl = arg;
	const struct sockaddr_in *from = (const struct sockaddr_in *)(const void *)sa;
	int gone;

	if (len < sizeof(*from) || from->sin_family != AF_INET) {
		close(fd);
		return 0;
	}
	/* Accepting may resolve the last record holding tl: keep it alive across the call. */
	tl->refs++;
	lp_tcp_accepted(tl->s, tl, fd, ntohs(from->sin_port));
	gone = tl->refs == 1;
	lp_tlisten_release(tl);
	return gone;    /* freed with its acceptor: stop this round */
}

struct lp_tlisten *
lp_tlisten_hold(struct shim_server *s, uint32_t vaddr, uint16_t port)
{
	struct lp_tlisten *tl;
	uint32_t alias, kaddr;
	uint16_t kport;
	uint64_t key;
	int fd;

	if ((alias = lp_alias_get(s, vaddr)) == 0) {
		errno = EADDRNOTAVAIL;
		return NULL;
	}
	key = (uint64_t)alias << 16 | port;
	HASH_FIND(hh, s->tlistens, &key, sizeof(key), tl);
	if (tl != NULL) {
		tl->refs++;
		return tl;
	}
	if ((fd = alias_socket(SOCK_STREAM, alias, port, &kaddr, &kport)) < 0)
		return NULL;
	if ((tl = calloc(1, sizeof(*tl))) == NULL) {
		close(fd);
		return NULL;
	}
	tl->s = s;
	tl->key = key;
	tl->vaddr = vaddr;
	tl->alias = alias;
	tl->port = port;
	tl->kaddr = kaddr;
	tl->kport = kport;
	tl->refs = 1;
	tl->fd = fd;
	if ((tl->acc = acceptor_new(s->loop, fd, "lanproxy", ACCEPTOR_RESERVE, tlisten_accept,
	    tl)) == NULL) {
		close(fd);
		free(tl);
		errno = ENOMEM;
		return NULL;
	}
	acceptor_owner_only(tl->acc, !s->allow_others);
	HASH_ADD(hh, s->tlistens, key, sizeof(tl->key), tl);
	return tl;
}

void
lp_tlisten_release(struct lp_tlisten *tl)
{
	if (tl != NULL && --tl->refs == 0)
		tlisten_free(tl);
}

void
lp_alias_free_all(struct shim_server *s)
{
	struct lp_usock *us, *utmp;
	struct lp_tlisten *tl, *ttmp;
	struct lp_alias *a, *atmp;

	HASH_ITER(hh, s->usocks, us, utmp)
		usock_free(s, us);
	HASH_ITER(hh, s->tlistens, tl, ttmp)
		tlisten_free(tl);
	HASH_CLEAR(hh_alias, s->by_alias);
	HASH_ITER(hh_vaddr, s->by_vaddr, a, atmp) {
		HASH_DELETE(hh_vaddr, s->by_vaddr, a);
		free(a);
	}
	s->alias_count = 0;
}
