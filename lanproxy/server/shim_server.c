/*
 * shim_server: the Unix SOCK_SEQPACKET socket the LD_PRELOAD shims connect to, one connection
 * per process (lanproxy/shim_proto.h; one message per packet).
 *
 * Requests are answered in order. HELLO, UNALIAS and RESOLVE work at any time; everything
 * else needs an address on the virtual network and gets ENETUNREACH until we have one. A request that does
 * not decode is answered EPROTO when its id can be read (the shim must not hang on it), else
 * dropped; both are counted. A deferred reply (TCP_RESULT waiting for a connect) stops reading the
 * client until it is sent, which keeps the order without a queue. A client that does not read
 * its replies (send would block) is shut down; its EOF then frees it in the read callback.
 *
 * Only processes of our own user get in: the socket is 0600 and SO_PEERCRED is checked.
 * When a client goes, everything it registered is released: UDP binds, listens, multicast
 * joins, TCP_CONNECT records, a pending TCP_RESULT wait.
 * Owns: the listening socket and its path, struct lp_client, and (through alias.c, tcp.c and
 * udp.c) everything in struct shim_server. Must not: touch lwIP or peers directly.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utlist.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "base/proto.h"
#include "lanproxy/server/lanproxy.h"

static void client_cb(struct ev_loop *, ev_io *, int);

int
shim_socket_path(const char *control_path, char *out, size_t cap)
{
	const char *slash = strrchr(control_path, '/');
	int n;

	if (slash == NULL)
		n = snprintf(out, cap, "shim.sock");
	else
		n = snprintf(out, cap, "%.*s/shim.sock", (int)(slash - control_path),
		    control_path);
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* NAME.sock -> NAME.shim.sock (NAME -> NAME.shim.sock): unique per control socket. */
static int
fallback_path(const char *control_path, char *out, size_t cap)
{
	size_t len = strlen(control_path);
	int n;

	if (len > 5 && strcmp(control_path + len - 5, ".sock") == 0)
		n = snprintf(out, cap, "%.*s.shim.sock", (int)(len - 5), control_path);
	else
		n = snprintf(out, cap, "%s.shim.sock", control_path);
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

const char *
shim_server_path(const struct shim_server *s)
{
	return s->path;
}

/* 1 if a server answers at path (a live daemon's socket), 0 if not (stale or absent). */
static int
path_in_use(const struct sockaddr_un *sun)
{
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	return rc == 0;
}

static struct lp_reg *
reg_find(const struct lp_client *c, uint8_t kind, uint16_t port, uint32_t group)
{
	struct lp_reg *r;

	for (r = c->regs; r != NULL; r = r->next)
		if (r->kind == kind && r->port == port && r->group == group)
			return r;
	return NULL;
}

int
lp_reg_add(struct lp_client *c, uint8_t kind, uint16_t port, uint32_t group)
{
	struct lp_reg *r;

	if ((r = reg_find(c, kind, port, group)) != NULL) {
		/* A count this high is a program announcing in a loop; cap it like new entries. */
		if (r->count >= LP_CLIENT_REGS_MAX)
			return -1;
		r->count++;
		return 0;
	}
	if (c->n_regs >= LP_CLIENT_REGS_MAX || (r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->kind = kind;
	r->port = port;
	r->group = group;
	r->count = 1;
	LL_PREPEND(c->regs, r);
	c->n_regs++;
	return 1;
}

int
lp_reg_del(struct lp_client *c, uint8_t kind, uint16_t port, uint32_t group)
{
	struct lp_reg *r;

	if ((r = reg_find(c, kind, port, group)) == NULL)
		return -1;
	if (--r->count > 0)
		return 0;
	LL_DELETE(c->regs, r);
	c->n_regs--;
	free(r);
	return 1;
}

void
lp_reg_release(struct shim_server *s, const struct lp_reg *r)
{
	switch (r->kind) {
	case LP_REG_UDP:
		lp_uport_release(s, r->port);
		break;
	case LP_REG_LISTEN:
		lp_listen_release(s, r->port);
		break;
	case LP_REG_MCAST:
		lp_mcast_release(s, r->group, r->port);
		break;
	}
}

static void
client_free(struct lp_client *c)
{
	struct shim_server *s = c->s;
	struct lp_reg *r, *tmp;

	lp_tcp_client_gone(s, c);
	/* another process may hold the socket now (fork, exec): see keep.c */
	lp_keep_or_release(s, c->regs);
	LL_FOREACH_SAFE(c->regs, r, tmp) {
		LL_DELETE(c->regs, r);
		free(r);
	}
	ev_io_stop(s->loop, &c->io);
	close(c->io.fd);
	DL_DELETE(s->clients, c);
	s->n_clients--;
	log_debug("event=shim_client_gone pid=%ld", (long)c->pid);
	free(c);
}

static void
client_send(struct lp_client *c, const struct shim_msg *rep)
{
	uint8_t out[32];
	int n;

	n = shim_encode(rep, out, sizeof(out));
	if (n < 0 || send(c->io.fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		/* Not reading its replies (or gone): EOF on the next read frees it. */
		log_debug("event=shim_client_reply_failed pid=%ld", (long)c->pid);
		(void)shutdown(c->io.fd, SHUT_RDWR);
	}
}

void
lp_client_reply(struct lp_client *c, const struct shim_msg *rep)
{
	client_send(c, rep);
	ev_io_start(c->s->loop, &c->io);
}

/* The socket on a port was closed by the program: release one registration of it. */
static void
client_close(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq)
{
	struct lp_reg *r, *tmp;

	if (rq->flag == SHIM_TCP) {
		if (lp_reg_del(c, LP_REG_LISTEN, rq->port, 0) == 1)
			lp_listen_release(s, rq->port);
		lp_tcp_close(s, c, rq->port);
		return;
	}
	if (lp_reg_del(c, LP_REG_UDP, rq->port, 0) == 1)
		lp_uport_release(s, rq->port);
	/* Joins belong to sockets we cannot tell apart: they go with the last socket on P. */
	if (reg_find(c, LP_REG_UDP, rq->port, 0) != NULL)
		return;
	LL_FOREACH_SAFE(c->regs, r, tmp) {
		if (r->kind != LP_REG_MCAST || r->port != rq->port)
			continue;
		lp_reg_release(s, r);
		LL_DELETE(c->regs, r);
		c->n_regs--;
		free(r);
	}
}

static enum lp_verdict
dispatch(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	switch (rq->type) {
	case SHIM_HELLO:
		c->pid = (pid_t)rq->pid;
		if (rq->version != SHIM_PROTO_VERSION) {
			rep->err = EPROTONOSUPPORT;
			return LP_REPLY;
		}
		rep->r_addr = s->vn->addr;
		rep->r_prefix = s->vn->prefix_len;
		rep->r_mtu = OVERLAY_MTU;
		log_debug("event=shim_hello pid=%ld", (long)c->pid);
		return LP_REPLY;
	case SHIM_UNALIAS:
		if (lp_alias_unmap(s, rq->addr, rq->port, &rep->r_addr, &rep->r_port) != 0)
			rep->r_addr = rep->r_port = 0;
		return LP_REPLY;
	case SHIM_RESOLVE:
		return lp_resolve(s, rq, rep);
	case SHIM_NAME_OF:
		return lp_name_of(s, rq, rep);
	case SHIM_DGRAM_OUT:
		lp_dgram_out(s, c, rq);
		return LP_NOREPLY;
	case SHIM_CLOSE:
		client_close(s, c, rq);
		return LP_NOREPLY;
	default:
		break;
	}
	if (!vnet_ready(s->vn)) {
		rep->err = ENETUNREACH;
		return LP_REPLY;
	}
	switch (rq->type) {
	case SHIM_ALIAS:
		if ((rep->err = lp_check_peer(s, rq->addr)) == 0 &&
		    (rep->r_addr = lp_alias_get(s, rq->addr)) == 0)
			rep->err = EADDRNOTAVAIL;
		return LP_REPLY;
	case SHIM_UDP_BIND:
		return lp_udp_bind(s, c, rq, rep);
	case SHIM_UDP_ALIAS:
		return lp_udp_alias(s, c, rq, rep);
	case SHIM_TCP_CONNECT:
		return lp_tcp_connect(s, c, rq, rep);
	case SHIM_TCP_RESULT:
		return lp_tcp_result(s, c, rq, rep);
	case SHIM_TCP_LISTEN:
		return lp_tcp_listen(s, c, rq, rep);
	case SHIM_MCAST:
		return lp_mcast(s, c, rq, rep);
	default:
		/* SHIM_REPLY: we never asked anything. */
		rep->err = EPROTO;
		return LP_REPLY;
	}
}

/* A message that does not decode: answer it if it looks like a request, so no shim hangs. */
static void
client_malformed(struct shim_server *s, struct lp_client *c, const uint8_t *buf, size_t len)
{
	struct shim_msg rep;

	if (s->st.malformed++ < 8)
		log_debug("event=shim_malformed pid=%ld len=%zu", (long)c->pid, len);
	if (len < 5 || buf[0] == SHIM_DGRAM_OUT || buf[0] == SHIM_CLOSE || buf[0] == SHIM_REPLY)
		return;
	memset(&rep, 0, sizeof(rep));
	rep.type = SHIM_REPLY;
	rep.id = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	rep.err = EPROTO;
	client_send(c, &rep);
}

static void
client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lp_client *c = (struct lp_client *)w;
	struct shim_server *s = c->s;
	struct shim_msg rq, rep;
	ssize_t r;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < LP_BATCH; i++) {
		r = recv(c->io.fd, s->buf, sizeof(s->buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) {
			client_free(c);
			return;
		}
		s->st.requests++;
		if (shim_decode(&rq, s->buf, (size_t)r) != 0) {
			client_malformed(s, c, s->buf, (size_t)r);
			continue;
		}
		memset(&rep, 0, sizeof(rep));
		rep.type = SHIM_REPLY;
		rep.id = rq.id;
		switch (dispatch(s, c, &rq, &rep)) {
		case LP_REPLY:
			client_send(c, &rep);
			break;
		case LP_NOREPLY:
			break;
		case LP_DEFER:
			ev_io_stop(s->loop, &c->io);
			return;
		}
	}
}

static int
peer_is_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return 0;
	return cr.uid == getuid();
}

static int
accept_cb(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct shim_server *s = arg;
	struct lp_client *c;

	(void)sa;
	(void)len;
	if (s->n_clients >= LP_CLIENT_MAX || !peer_is_us(fd) ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("event=shim_client_refused clients=%u", s->n_clients);
		close(fd);
		return 0;
	}
	c->s = s;
	ev_io_init(&c->io, client_cb, fd, EV_READ);
	ev_io_start(s->loop, &c->io);
	DL_APPEND(s->clients, c);
	s->n_clients++;
	return 0;
}

struct shim_server *
shim_server_new(struct ev_loop *loop, struct netstack *ns, const struct vnet *vn,
    const struct peerdir *dir, const char *path, const char *control_path)
{
	struct shim_server *s;
	struct sockaddr_un sun;
	struct stat st;
	char alt[sizeof(sun.sun_path)];
	mode_t old_mask;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("event=shim_socket_failed path=%s reason=\"path too long\"", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	/* Daemons whose control sockets share a directory (scripts/demo.sh): the second one
	 * takes a name of its own; status tells `shoal run` which. */
	if (path_in_use(&sun) && fallback_path(control_path, alt, sizeof(alt)) == 0) {
		log_info("event=shim_socket_taken path=%s using=%s", path, alt);
		path = alt;
		memset(sun.sun_path, 0, sizeof(sun.sun_path));
		memcpy(sun.sun_path, path, strlen(path));
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->loop = loop;
	s->ns = ns;
	s->vn = vn;
	s->dir = dir;
	snprintf(s->path, sizeof(s->path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("event=shim_socket_failed path=%s", path);
		free(s);
		return NULL;
	}
	if (path_in_use(&sun)) {
		log_warnx("event=shim_socket_failed path=%s reason=\"another daemon is there\"", path);
		close(fd);
		free(s);
		return NULL;
	}
	/* Left by a daemon that died; anything but a socket is not ours to remove. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_warnx("event=shim_socket_failed path=%s reason=\"not a socket\"", path);
		close(fd);
		free(s);
		return NULL;
	}
	(void)unlink(path);
	old_mask = umask(077);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, 64) != 0) {
		log_warn("event=shim_socket_failed path=%s", path);
		close(fd);
		if (rc == 0)
			(void)unlink(path);
		free(s);
		return NULL;
	}
	lp_alias_init(s);
	s->tokens = LP_DGRAM_BURST;
	s->tokens_at = ev_now(loop);
	s->fd = fd;
	if ((s->acc = acceptor_new(loop, fd, "shim", ACCEPTOR_RESERVE, accept_cb, s)) == NULL) {
		close(fd);
		(void)unlink(path);
		free(s);
		return NULL;
	}
	log_info("event=shim_listening path=%s", path);
	return s;
}

void
shim_server_allow_others(struct shim_server *s, int allow)
{
	struct lp_tlisten *tl, *tmp;

	s->allow_others = allow;
	HASH_ITER(hh, s->tlistens, tl, tmp)
		acceptor_owner_only(tl->acc, !allow);
}

void
shim_server_free(struct shim_server *s)
{
	struct lp_client *c, *tmp;

	if (s == NULL)
		return;
	s->stopping = 1;
	DL_FOREACH_SAFE(s->clients, c, tmp)
		client_free(c);
	lp_keep_free_all(s);
	lp_tcp_free_all(s);
	lp_udp_free_all(s);
	lp_alias_free_all(s);
	acceptor_free(s->acc);
	close(s->fd);
	(void)unlink(s->path);
	log_info("event=shim_stopped requests=%llu malformed=%llu dgram_out=%llu "
	    "dgram_limited=%llu udp_out=%llu udp_in=%llu udp_dropped=%llu usock_recycled=%llu "
	    "tcp_accepted=%llu tcp_rejected=%llu", (unsigned long long)s->st.requests,
	    (unsigned long long)s->st.malformed, (unsigned long long)s->st.dgram_out,
	    (unsigned long long)s->st.dgram_out_limited, (unsigned long long)s->st.udp_to_overlay,
	    (unsigned long long)s->st.udp_from_overlay, (unsigned long long)s->st.udp_dropped,
	    (unsigned long long)s->st.usock_recycled, (unsigned long long)s->st.tcp_accepted, (unsigned long long)s->st.tcp_rejected);
	free(s);
}
