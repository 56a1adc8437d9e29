/*
 * socks5_server: the daemon's SOCKS5 listener and the per-client handshake state machine
 * (RFC 1928, NO AUTH only; SOCKS4/4a CONNECT on the same port, told apart by the first byte). A client is ours from accept() until its CONNECT is answered;
 * then the netstack's splice owns the connection and we forget it. A UDP ASSOCIATE client
 * stays ours (socks5_udp.c holds the relay) until its control connection closes.
 * Owns: the listening socket and every client still in handshake, connecting, or holding a
 * UDP association. Must not touch lwIP (only netstack/netstack.h) nor the membership view
 * (names only through peerdir_resolve(), our subnet only through the vnet helpers).
 *
 * Client states:
 *   GREETING --NO AUTH offered--> REQUEST --CONNECT--> CONNECTING --cb--> (splice owns it)
 *                                          --UDP ASSOCIATE--> UDP --control closed--> freed
 *   GREETING --first byte 4--> REQUEST4 --CONNECT--> CONNECTING (SOCKS4 replies)
 *   anything else: error reply (when SOCKS allows one) and close.
 * Greeting and request must arrive within S5_HANDSHAKE_TIMEOUT seconds.
 *
 * We never read past the end of a message (the parser says exactly how many bytes it still
 * needs), so data a client pipelines after its CONNECT request stays in the kernel socket
 * buffer and the splice forwards it.
 *
 * The fd handed to ns_splice_connect() is a dup of the client's: the netstack closes its copy
 * on failure, and we keep ours to write the error reply (or the success reply, just before data
 * flows) and close it when the connect callback has run.
 */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "base/peerdir.h"
#include "netstack/netstack.h"
#include "socks/socks5.h"
#include "socks/socks5_internal.h"
#include "socks/socks4_parse.h"
#include "socks/socks5_parse.h"

enum s5_state {
	ST_GREETING,
	ST_REQUEST,
	ST_REQUEST4,                    /* the first byte was 4: a SOCKS4/4a CONNECT request */
	ST_CONNECTING,
	ST_UDP,
	ST_CLOSING,                     /* error reply written; close on the next loop turn */
};

/* One client connection. Owned by the server's client list. */
struct s5_client {
	ev_io io;                       /* first: callbacks cast the watcher back */
	ev_timer timer;                 /* handshake deadline */
	struct socks_server *srv;
	struct s5_client *prev, *next;
	int fd;
	enum s5_state state;
	uint8_t buf[S4_REQUEST_MAX];    /* the greeting, then the request (SOCKS4a's is longest) */
	int v4;                         /* the client speaks SOCKS4/4a: replies are SOCKS4's */
	size_t have;                    /* bytes in buf */
	size_t need;                    /* read exactly up to this many */
	struct ns_splice *sp;           /* CONNECTING: the pending splice */
	int in_connect;                 /* ns_splice_connect() is on the stack */
	int connect_done;               /* its callback already ran */
	int graceful;                   /* undo the splice's SO_LINGER 0 before closing */
	struct s5_udp *udp;             /* UDP: the association */
	uint32_t dst_ip;                /* for logs */
	uint16_t dst_port;
};

/* The server. Owned by whoever called socks_server_new (the daemon). */
struct socks_server {
	int fd;                         /* listening socket */
	struct acceptor *acc;
	int loopback;                   /* listening on 127/8 or ::1: owner only by default */
	struct socks_ctx cx;
	struct s5_client *clients;
};

/* Replies are a few bytes on a fresh socket: a short write means the client is gone. */
static void
client_send(struct s5_client *c, const uint8_t *p, size_t n)
{
	ssize_t w;

	if (n == 0)
		return;
	w = send(c->fd, p, n, MSG_NOSIGNAL);
	if (w != (ssize_t)n)
		log_debug("event=socks_reply_failed fd=%d", c->fd);
}

/* rep is SOCKS5's; a SOCKS4 client gets "granted" or its one refusal code. */
static void
client_reply(struct s5_client *c, int rep, const struct s5_addr *bnd)
{
	uint8_t out[S5_REPLY_MAX];

	if (rep == S5_NO_REPLY)
		return;
	if (c->v4) {
		client_send(c, out, s4_encode_reply(out, sizeof(out),
		    rep == S5_REP_OK ? S4_REP_GRANTED : S4_REP_FAILED,
		    bnd && bnd->atyp == S5_ATYP_IPV4 ? bnd->ip4 : 0, bnd ? bnd->port : 0));
		return;
	}
	client_send(c, out, s5_encode_reply(out, sizeof(out), (uint8_t)rep, bnd));
}

static void
client_free(struct s5_client *c)
{
	struct ev_loop *loop = c->srv->cx.loop;

	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	if (c->udp)
		s5_udp_free(c->udp);
	if (c->fd >= 0) {
		if (c->graceful) {
			struct linger lg = { .l_onoff = 0, .l_linger = 0 };

			(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c->fd);
	}
	DL_DELETE(c->srv->clients, c);
	free(c);
}

int
socks5_resolve(const struct socks_ctx *cx, const struct s5_addr *a, int for_udp, uint32_t *ip)
{
	uint8_t key[KEY_LEN];

	if (!vnet_ready(cx->vn))
		return S5_REP_NET_UNREACH;
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		*ip = a->ip4;
		break;
	case S5_ATYP_DOMAIN:
		/* Clients hand literal addresses over as names too; those need no directory. */
		if (ip4_parse(a->domain, ip) == 0)
			break;
		/* Every spelling (bob, bob., BOB.shoal., node-id prefix) is the resolver's. */
		if (peerdir_resolve(cx->dir, a->domain, key, ip) != 0 || *ip == 0)
			return S5_REP_HOST_UNREACH;
		break;
	default:
		/* The overlay is IPv4 only; an IPv6 destination would be a way out of it. */
		return S5_REP_NOT_ALLOWED;
	}
	/* Only our virtual network: the SOCKS port is not a general-purpose proxy. */
	if (*ip == cx->vn->addr || vnet_is_other_host(cx->vn, *ip))
		return S5_REP_OK;
	/* Broadcasts carry datagrams only (LAN games announce that way), never a connection. */
	if (for_udp && (*ip == 0xffffffffu || vnet_is_broadcast(cx->vn, *ip)))
		return S5_REP_OK;
	return S5_REP_NOT_ALLOWED;
}

void
socks5_addr_from_sockaddr(struct s5_addr *a, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	memset(a, 0, sizeof(*a));
	a->atyp = S5_ATYP_IPV4;
	if (ss->ss_family == AF_INET) {
		a->ip4 = ntohl(sin->sin_addr.s_addr);
		a->port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		a->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(&a->ip4, sin6->sin6_addr.s6_addr + 12, 4);
			a->ip4 = ntohl(a->ip4);
		} else {
			a->atyp = S5_ATYP_IPV6;
			memcpy(a->ip6, sin6->sin6_addr.s6_addr, 16);
		}
	}
}

static int
connect_err_rep(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return S5_REP_REFUSED;
	case EHOSTUNREACH:
		return S5_REP_HOST_UNREACH;
	/*
	 * No answer to our SYNs: the peer is offline or its path is down. "Host unreachable"
	 * says that; "TTL expired" (0x06) would blame a routing loop we cannot have.
	 */
	case ETIMEDOUT:
		return S5_REP_HOST_UNREACH;
	case ENETUNREACH:
		return S5_REP_NET_UNREACH;
	default:
		return S5_REP_FAILURE;
	}
}

static void
connect_cb(void *arg, int err, struct ns_splice *sp)
{
	struct s5_client *c = arg;
	struct s5_addr bnd;
	uint32_t lip = 0, rip = 0;
	uint16_t lport = 0, rport = 0;
	char dst[IP4_STR_LEN];
	int rep;

	c->connect_done = 1;
	c->sp = NULL;
	ip4_str(c->dst_ip, dst);
	if (err == 0 && sp != NULL) {
		ns_splice_endpoints(sp, &lip, &lport, &rip, &rport);
		memset(&bnd, 0, sizeof(bnd));
		bnd.atyp = S5_ATYP_IPV4;
		bnd.ip4 = lip;
		bnd.port = lport;
		client_reply(c, S5_REP_OK, &bnd);
		log_debug("event=socks_connect dst=%s:%u lport=%u", dst, c->dst_port, lport);
		/* From here on the splice's fd is the connection; ours only kept the reply path. */
		if (!c->in_connect)
			client_free(c);
		return;
	}
	rep = err ? connect_err_rep(err) : S5_REP_FAILURE;
	client_reply(c, rep, NULL);
	log_debug("event=socks_connect_failed dst=%s:%u err=%s rep=%d", dst, c->dst_port,
	    strerror(err), rep);
	/*
	 * The netstack closes its copy of the socket with SO_LINGER 0 (RST) once we return; an
	 * RST would throw away our reply if it were still unsent. So ours must be the last close,
	 * with lingering switched back off: close on the next loop turn.
	 */
	c->graceful = 1;
	c->state = ST_CLOSING;
	if (!c->in_connect) {
		ev_timer_set(&c->timer, 0., 0.);
		ev_timer_start(c->srv->cx.loop, &c->timer);
	}
}

static void
start_connect(struct s5_client *c, uint32_t ip, uint16_t port)
{
	struct socks_ctx *cx = &c->srv->cx;
	struct ns_splice *sp;
	int sfd, saved;

	ev_io_stop(cx->loop, &c->io);
	ev_timer_stop(cx->loop, &c->timer);
	c->state = ST_CONNECTING;
	c->dst_ip = ip;
	c->dst_port = port;
	sfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	if (sfd < 0) {
		log_warn("event=socks_dup_failed");
		client_reply(c, S5_REP_FAILURE, NULL);
		client_free(c);
		return;
	}
	c->in_connect = 1;
	sp = ns_splice_connect(cx->ns, sfd, ip, port, connect_cb, c);
	saved = errno;
	c->in_connect = 0;
	if (c->connect_done) {
		/* The callback ran inside the call (the netstack does not do that today). */
		client_free(c);
		return;
	}
	if (sp == NULL) {
		/* Immediate failure: errno says why, and the netstack's copy is already closed. */
		c->graceful = 1;
		client_reply(c, connect_err_rep(saved), NULL);
		log_debug("event=socks_connect_failed reason=immediate err=%s", strerror(saved));
		client_free(c);
		return;
	}
	c->sp = sp;
}

static void
start_udp(struct s5_client *c, const struct s5_addr *hint)
{
	struct socks_ctx *cx = &c->srv->cx;
	struct s5_addr bnd;
	int rep = S5_REP_FAILURE;

	if (!vnet_ready(cx->vn)) {
		client_reply(c, S5_REP_NET_UNREACH, NULL);
		client_free(c);
		return;
	}
	c->udp = s5_udp_new(cx, c->fd, hint, &bnd, &rep);
	if (c->udp == NULL) {
		client_reply(c, rep, NULL);
		client_free(c);
		return;
	}
	client_reply(c, S5_REP_OK, &bnd);
	ev_timer_stop(cx->loop, &c->timer);
	c->state = ST_UDP;
	log_debug("event=socks_udp_associate bnd_port=%u", bnd.port);
}

static void
handle_request(struct s5_client *c, const struct s5_request *req)
{
	uint32_t ip = 0;
	int rep;

	switch (req->cmd) {
	case S5_CMD_CONNECT:
		rep = socks5_resolve(&c->srv->cx, &req->dst, 0, &ip);
		if (rep != S5_REP_OK) {
			log_debug("event=socks_request_rejected cmd=connect rep=%d", rep);
			client_reply(c, rep, NULL);
			client_free(c);
			return;
		}
		start_connect(c, ip, req->dst.port);
		return;
	case S5_CMD_UDP_ASSOCIATE:
		start_udp(c, &req->dst);
		return;
	default:
		/* BIND needs inbound connections routed to us; not offered. */
		client_reply(c, S5_REP_CMD_UNSUPPORTED, NULL);
		client_free(c);
		return;
	}
}

/* A SOCKS4/4a request: CONNECT only (BIND is not offered, as for SOCKS5). Same return as
 * client_step. */
static int
client_step4(struct s5_client *c)
{
	struct s4_request req;
	struct s5_err err = { NULL, S5_NO_REPLY };
	struct s5_request r5;
	enum s5_result res;
	size_t n = 0;

	res = s4_parse_request(c->buf, c->have, &req, &n, &err);
	if (res == S5_NEED_MORE) {
		c->need = n;
		return 1;
	}
	if (res == S5_INVALID) {
		log_debug("event=socks_bad_request version=4 why=\"%s\"", err.why);
		client_reply(c, err.rep == S5_NO_REPLY ? S5_NO_REPLY : S5_REP_FAILURE, NULL);
		client_free(c);
		return 0;
	}
	memset(&r5, 0, sizeof(r5));
	r5.cmd = req.cmd == S4_CMD_CONNECT ? S5_CMD_CONNECT : S5_CMD_BIND;
	r5.dst = req.dst;
	handle_request(c, &r5);
	return 0;
}

/* Acts on the bytes in c->buf. Returns 1 to keep reading, 0 when c is gone or handed off. */
static int
client_step(struct s5_client *c)
{
	struct s5_greeting g;
	struct s5_request req;
	struct s5_err err = { NULL, S5_NO_REPLY };
	uint8_t out[2];
	enum s5_result res;
	size_t n = 0;

	/* SOCKS4 has no greeting: its request starts with version 4 where SOCKS5's greeting
	 * has 5, so the first byte tells them apart on the same port. */
	if (c->state == ST_GREETING && c->have >= 1 && c->buf[0] == S4_VERSION) {
		c->state = ST_REQUEST4;
		c->v4 = 1;
	}
	if (c->state == ST_REQUEST4)
		return client_step4(c);
	if (c->state == ST_GREETING) {
		res = s5_parse_greeting(c->buf, c->have, &g, &n, &err);
		if (res == S5_NEED_MORE) {
			c->need = n;
			return 1;
		}
		if (res == S5_INVALID) {
			log_debug("event=socks_bad_greeting why=\"%s\"", err.why);
			client_free(c);
			return 0;
		}
		if (!s5_greeting_has_method(&g, S5_METHOD_NOAUTH)) {
			client_send(c, out, s5_encode_method_choice(out, sizeof(out), S5_METHOD_NONE));
			log_debug("event=socks_no_acceptable_method");
			client_free(c);
			return 0;
		}
		client_send(c, out, s5_encode_method_choice(out, sizeof(out), S5_METHOD_NOAUTH));
		c->state = ST_REQUEST;
		c->have = 0;
		c->need = 4;
		return 1;
	}
	res = s5_parse_request(c->buf, c->have, &req, &n, &err);
	if (res == S5_NEED_MORE) {
		c->need = n;
		return 1;
	}
	if (res == S5_INVALID) {
		log_debug("event=socks_bad_request why=\"%s\"", err.why);
		client_reply(c, err.rep, NULL);
		client_free(c);
		return 0;
	}
	handle_request(c, &req);
	/* A UDP client stays with us, but only to watch its control connection close. */
	return 0;
}

/* The control connection of a UDP association: anything but EOF is ignored. */
static void
udp_control_read(struct s5_client *c)
{
	uint8_t sink[512];
	ssize_t r;

	for (;;) {
		r = recv(c->fd, sink, sizeof(sink), 0);
		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		log_debug("event=socks_udp_associate_end");
		client_free(c);
		return;
	}
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct s5_client *c = (struct s5_client *)w;
	ssize_t r;

	(void)loop;
	(void)revents;
	if (c->state == ST_UDP) {
		udp_control_read(c);
		return;
	}
	for (;;) {
		if (c->have < c->need) {
			r = recv(c->fd, c->buf + c->have, c->need - c->have, 0);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				return;
			if (r <= 0) {
				log_debug("event=socks_client_gone state=%d", (int)c->state);
				client_free(c);
				return;
			}
			c->have += (size_t)r;
			if (c->have < c->need)
				continue;
		}
		if (!client_step(c))
			return;
	}
}

static void
client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct s5_client *c = (struct s5_client *)((char *)w - offsetof(struct s5_client, timer));

	(void)loop;
	(void)revents;
	if (c->state != ST_CLOSING)
		log_debug("event=socks_handshake_timeout state=%d", (int)c->state);
	client_free(c);
}

static void
client_new(struct socks_server *s, int fd)
{
	struct s5_client *c;
	int one = 1;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_warnx("event=socks_client_alloc_failed");
		close(fd);
		return;
	}
	/* Interactive protocols (ssh over SOCKS) suffer from Nagle on the client leg. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->fd = fd;
	c->state = ST_GREETING;
	c->need = 2;
	ev_io_init(&c->io, client_read_cb, fd, EV_READ);
	ev_timer_init(&c->timer, client_timeout_cb, S5_HANDSHAKE_TIMEOUT, 0.);
	ev_io_start(s->cx.loop, &c->io);
	ev_timer_start(s->cx.loop, &c->timer);
	DL_APPEND(s->clients, c);
}

static int
accept_cb(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	(void)sa;
	(void)len;
	client_new(arg, fd);
	return 0;
}

static int
is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 1;
	if (ss.ss_family == AF_INET)
		return ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24 == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	return 1;
}

static int
listen_on(const char *host, uint16_t port)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
	if (rc != 0) {
		log_warnx("event=socks_listen_failed host=%s port=%u error=\"%s\"", host, port,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		log_warn("event=socks_listen_failed host=%s port=%u", host, port);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct socks_server *
socks_server_new(struct ev_loop *loop, struct netstack *ns, const struct vnet *vn,
    const struct peerdir *dir, const char *host, uint16_t port)
{
	struct socks_server *s;
	int fd;

	fd = listen_on(host, port);
	if (fd < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		log_warnx("event=socks_alloc_failed");
		return NULL;
	}
	s->cx.loop = loop;
	s->cx.ns = ns;
	s->cx.vn = vn;
	s->cx.dir = dir;
	s->fd = fd;
	if ((s->acc = acceptor_new(loop, fd, "socks", ACCEPTOR_RESERVE, accept_cb, s)) == NULL) {
		close(fd);
		free(s);
		return NULL;
	}
	s->loopback = is_loopback(fd);
	acceptor_owner_only(s->acc, s->loopback);
	s->cx.owner_only = s->loopback;
	log_info("event=socks_listening host=%s port=%u owner_only=%d", host, port, s->loopback);
	return s;
}

void
socks_server_allow_others(struct socks_server *s, int allow)
{
	acceptor_owner_only(s->acc, s->loopback && !allow);
	s->cx.owner_only = s->loopback && !allow;
}

/*
 * Call before netstack_free(): pending connects are aborted here, and ns_splice_abort() must
 * not call their callbacks later (a callback during the abort itself is handled).
 */
void
socks_server_free(struct socks_server *s)
{
	struct s5_client *c, *tmp;

	if (s == NULL)
		return;
	DL_FOREACH_SAFE(s->clients, c, tmp) {
		if (c->state == ST_CONNECTING && c->sp != NULL && !c->connect_done) {
			c->in_connect = 1;      /* a callback from inside the abort must not free c */
			ns_splice_abort(c->sp);
		}
		client_free(c);
	}
	acceptor_free(s->acc);
	close(s->fd);
	free(s);
}
