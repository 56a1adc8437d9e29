/*
 * tcp: TCP for programs under `shoal run`.
 *
 * Client side (docs/LANPROXY.md "TCP"):
 *   TCP_CONNECT(lport, vaddr, port)  record lport -> vaddr:port (PENDING), hold the alias
 *                                    listener alias(vaddr):port, answer the alias
 *   program connects to alias:port   accepted here; the record is found by the source port
 *                                    and the virtual connect starts (CONNECTING):
 *                                    ns_splice_connect(fd, vaddr, port)
 *   splice callback                  outcome known (DONE): 0 or ECONNREFUSED/ETIMEDOUT/...
 *   TCP_RESULT(lport, wait)          the outcome; EINPROGRESS while unknown, or (wait=1) the
 *                                    reply is deferred until it is known
 * A record gives up with ETIMEDOUT after the netstack's connect timeout plus a margin, and a
 * DONE record lingers a while so that late SO_ERROR questions still get the answer. An address
 * in our network that is no peer of ours fails at once with EHOSTUNREACH (as a LAN host that
 * does not answer ARP), through the same path: the program's connect is accepted and reset,
 * so blocking, non-blocking and SO_ERROR all behave as for a refused connect.
 *
 * Server side: TCP_LISTEN(P) listens on our vaddr:P (refcounted per port); each virtual
 * connection from peer:q becomes a kernel connection from alias(peer):q (its low-port twin when
 * q is privileged and we are not; alias:0 if that is taken) to 127.0.0.1:P, so
 * accept()/getpeername in the program see the peer's alias.
 *
 * Owns: struct lp_tcp_conn and struct lp_listen (and their ns_listeners).
 * Must not: touch spliced connections (the netstack owns them) or alias sockets' lifetime
 * other than through lp_tlisten_hold/release.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "base/ip4.h"
#include "base/log.h"
#include "lanproxy/server/lanproxy.h"
#include "netstack/netstack.h"

/* The netstack gives up a SYN after 10 s; the margin covers a program slow to connect. */
static const ev_tstamp TCP_GIVEUP = 15.;
static const ev_tstamp TCP_LINGER = 60.;

static void
reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Answers everyone waiting in TCP_RESULT for rec. */
static void
conn_answer(struct lp_tcp_conn *rec, int err)
{
	struct lp_client *c;
	struct shim_msg rep;

	while ((c = rec->waiters) != NULL) {
		DL_DELETE2(rec->waiters, c, wprev, wnext);
		c->waiting = NULL;
		memset(&rep, 0, sizeof(rep));
		rep.type = SHIM_REPLY;
		rep.id = c->wait_id;
		rep.err = err;
		lp_client_reply(c, &rep);
	}
}

static void
conn_unhash(struct lp_tcp_conn *rec)
{
	if (rec->hashed) {
		HASH_DEL(rec->s->conns, rec);
		rec->hashed = 0;
	}
	if (rec->tl != NULL) {
		lp_tlisten_release(rec->tl);
		rec->tl = NULL;
	}
}

static void
conn_done(struct lp_tcp_conn *rec, int err)
{
	struct ev_loop *loop = rec->s->loop;
	char ep[IP4_EP_STR_LEN];

	if (rec->state == LP_TCP_DONE)
		return;
	rec->state = LP_TCP_DONE;
	rec->err = err;
	if (rec->tl != NULL) {
		lp_tlisten_release(rec->tl);
		rec->tl = NULL;
	}
	log_debug("event=lanproxy_tcp_result lport=%u peer=%s error=%d", rec->lport,
	    ip4_ep_str(rec->vaddr, rec->port, ep), err);
	conn_answer(rec, err);
	ev_timer_stop(loop, &rec->timer);
	ev_timer_set(&rec->timer, TCP_LINGER, 0.);
	ev_timer_start(loop, &rec->timer);
}

/*
 * Forgets a record. While its splice callback is still to come the memory must stay: the record
 * is unhashed, marked dead, and the callback (or shutdown) frees it.
 */
static void
conn_free(struct lp_tcp_conn *rec)
{
	struct shim_server *s = rec->s;

	conn_unhash(rec);
	conn_answer(rec, ECONNABORTED);
	rec->owner = NULL;
	ev_timer_stop(s->loop, &rec->timer);
	if (rec->in_splice) {
		rec->dead = 1;
		return;
	}
	DL_DELETE(s->all_conns, rec);
	free(rec);
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lp_tcp_conn *rec = w->data;

	(void)loop;
	(void)revents;
	/* Not known in time. While CONNECTING this only happens when the netstack dropped the
	 * splice without calling back (the peer was aborted); the record then stays listed until
	 * shutdown, as it may still be the callback's argument. */
	if (rec->state != LP_TCP_DONE)
		conn_done(rec, ETIMEDOUT);
	else
		conn_free(rec);
}

static void
conn_splice_cb(void *arg, int err, struct ns_splice *sp)
{
	struct lp_tcp_conn *rec = arg;

	(void)sp;
	rec->in_splice = 0;
	if (rec->dead) {
		DL_DELETE(rec->s->all_conns, rec);
		free(rec);
		return;
	}
	conn_done(rec, err);
}

enum lp_verdict
lp_tcp_connect(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_tcp_conn *rec, *old;
	struct lp_tlisten *tl;
	int err;

	if (rq->lport == 0 || rq->port == 0) {
		rep->err = EINVAL;
		return LP_REPLY;
	}
	if ((err = lp_check_peer(s, rq->addr)) != 0) {
		rep->err = err;
		return LP_REPLY;
	}
	/* The kernel handed lport out again: whatever was recorded for it is over. */
	HASH_FIND(hh, s->conns, &rq->lport, sizeof(rq->lport), old);
	if (old != NULL)
		conn_free(old);
	if ((tl = lp_tlisten_hold(s, rq->addr, rq->port)) == NULL) {
		rep->err = errno == EADDRINUSE ? EADDRNOTAVAIL : errno;
		return LP_REPLY;
	}
	if ((rec = calloc(1, sizeof(*rec))) == NULL) {
		lp_tlisten_release(tl);
		rep->err = ENOMEM;
		return LP_REPLY;
	}
	rec->s = s;
	rec->owner = c;
	rec->lport = rq->lport;
	rec->vaddr = rq->addr;
	rec->alias = tl->alias;
	rec->port = rq->port;
	rec->state = LP_TCP_PENDING;
	rec->tl = tl;
	if (!lp_peer_known(s, rq->addr))
		rec->fail = EHOSTUNREACH;
	rec->hashed = 1;
	ev_timer_init(&rec->timer, conn_timer_cb, TCP_GIVEUP, 0.);
	rec->timer.data = rec;
	ev_timer_start(s->loop, &rec->timer);
	HASH_ADD(hh, s->conns, lport, sizeof(rec->lport), rec);
	DL_APPEND(s->all_conns, rec);
	rep->r_addr = tl->kaddr;
	rep->r_port = tl->kport;
	return LP_REPLY;
}

void
lp_tcp_accepted(struct shim_server *s, struct lp_tlisten *tl, int fd, uint16_t src_port)
{
	struct lp_tcp_conn *rec;

	HASH_FIND(hh, s->conns, &src_port, sizeof(src_port), rec);
	if (rec == NULL || rec->state != LP_TCP_PENDING || rec->tl != tl) {
		/* Nobody announced this connect: a program not under the shim, or too late. */
		s->st.tcp_rejected++;
		reset_close(fd);
		return;
	}
	/* Known at TCP_CONNECT (no peer of ours): fail the program's connect the same way. */
	if (rec->fail != 0) {
		reset_close(fd);
		conn_done(rec, rec->fail);
		return;
	}
	lp_tlisten_release(rec->tl);
	rec->tl = NULL;
	rec->state = LP_TCP_CONNECTING;
	rec->in_splice = 1;
	s->st.tcp_accepted++;
	if (ns_splice_connect(s->ns, fd, rec->vaddr, rec->port, conn_splice_cb, rec) == NULL) {
		rec->in_splice = 0;
		conn_done(rec, errno ? errno : EHOSTUNREACH);
	}
}

enum lp_verdict
lp_tcp_result(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_tcp_conn *rec;

	HASH_FIND(hh, s->conns, &rq->lport, sizeof(rq->lport), rec);
	if (rec == NULL) {
		rep->err = ENOENT;
		return LP_REPLY;
	}
	if (rec->state == LP_TCP_DONE) {
		rep->err = rec->err;
		return LP_REPLY;
	}
	if (!rq->flag) {
		rep->err = EINPROGRESS;
		return LP_REPLY;
	}
	c->waiting = rec;
	c->wait_id = rq->id;
	DL_APPEND2(rec->waiters, c, wprev, wnext);
	return LP_DEFER;
}

void
lp_tcp_close(struct shim_server *s, struct lp_client *c, uint16_t port)
{
	struct lp_tcp_conn *rec;

	HASH_FIND(hh, s->conns, &port, sizeof(port), rec);
	if (rec != NULL && rec->owner == c)
		conn_free(rec);
}

void
lp_tcp_client_gone(struct shim_server *s, struct lp_client *c)
{
	struct lp_tcp_conn *rec, *tmp;

	if (c->waiting != NULL) {
		DL_DELETE2(c->waiting->waiters, c, wprev, wnext);
		c->waiting = NULL;
	}
	DL_FOREACH_SAFE(s->all_conns, rec, tmp) {
		if (rec->owner != c)
			continue;
		conn_free(rec);
	}
}

/* ---- listeners ---- */

static int
listen_connect(uint32_t src, uint16_t src_port, uint16_t port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(src);
	sin.sin_port = htons(src_port);
	if (src == INADDR_LOOPBACK ? bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 :
	    lp_alias_bind(fd, src, src_port, NULL, NULL) != 0)
		goto fail;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* A virtual connection from peer_ip:peer_port to a port a local program listens on. */
static int
listen_open_fd(void *arg, uint32_t peer_ip, uint16_t peer_port)
{
	struct lp_listen *lst = arg;
	struct shim_server *s = lst->s;
	uint32_t alias = 0;
	int fd = -1;

	if (lp_check_peer(s, peer_ip) == 0)
		alias = lp_alias_get(s, peer_ip);
	if (alias != 0) {
		fd = listen_connect(alias, peer_port, lst->port);
		/* alias:q taken (TIME_WAIT, another daemon): the port matters less than the alias */
		if (fd < 0)
			fd = listen_connect(alias, 0, lst->port);
	}
	if (fd < 0)
		fd = listen_connect(INADDR_LOOPBACK, 0, lst->port);
	if (fd < 0)
		log_debug("event=lanproxy_listen_connect_failed port=%u error=\"%s\"", lst->port,
		    strerror(errno));
	return fd;
}

/*
 * The program keeps listening locally (its listen() succeeded on the kernel socket), so the
 * failure would go unseen: log it and keep it for `shoal status` (the shim also says it once
 * on the program's stderr).
 */
static void
listen_failed(struct shim_server *s, uint16_t port, int err, pid_t pid)
{
	struct lp_listen_fail *f = &s->listen_fails[s->n_listen_fails++ % LP_LISTEN_FAIL_MAX];

	f->port = port;
	f->err = err;
	f->pid = pid;
	f->at = ev_now(s->loop);
	log_warnx("event=lanproxy_listen_failed port=%u pid=%ld error=\"%s\"", port, (long)pid,
	    strerror(err));
}

static void
listen_fail_clear(struct shim_server *s, uint16_t port)
{
	unsigned i;

	for (i = 0; i < LP_LISTEN_FAIL_MAX; i++)
		if (s->listen_fails[i].port == port)
			s->listen_fails[i].port = 0;
}

size_t
shim_server_listen_failures(const struct shim_server *s, struct lp_listen_fail *out, size_t cap)
{
	unsigned i, n = s->n_listen_fails < LP_LISTEN_FAIL_MAX ? s->n_listen_fails :
	    LP_LISTEN_FAIL_MAX;
	size_t k = 0;

	for (i = 1; i <= n && k < cap; i++) {
		const struct lp_listen_fail *f =
		    &s->listen_fails[(s->n_listen_fails - i) % LP_LISTEN_FAIL_MAX];

		if (f->port != 0)
			out[k++] = *f;
	}
	return k;
}

enum lp_verdict
lp_tcp_listen(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq,
    struct shim_msg *rep)
{
	struct lp_listen *lst;
	uint16_t port = rq->port;

	if (port == 0) {
		rep->err = EINVAL;
		return LP_REPLY;
	}
	switch (lp_reg_add(c, LP_REG_LISTEN, port, 0)) {
	case -1:
		rep->err = ENOBUFS;
		return LP_REPLY;
	case 0:
		return LP_REPLY;        /* this client already listens there */
	}
	HASH_FIND(hh, s->listens, &port, sizeof(port), lst);
	if (lst == NULL) {
		if ((lst = calloc(1, sizeof(*lst))) == NULL) {
			rep->err = ENOMEM;
			goto fail;
		}
		lst->s = s;
		lst->port = port;
		if ((lst->l = ns_listen(s->ns, port, listen_open_fd, lst)) == NULL) {
			rep->err = errno ? errno : EADDRINUSE;
			free(lst);
			listen_failed(s, port, rep->err, c->pid);
			goto fail;
		}
		HASH_ADD(hh, s->listens, port, sizeof(lst->port), lst);
		listen_fail_clear(s, port);
		log_info("event=lanproxy_listen port=%u", port);
	}
	lst->refs++;
	return LP_REPLY;
fail:
	(void)lp_reg_del(c, LP_REG_LISTEN, port, 0);
	return LP_REPLY;
}

void
lp_listen_release(struct shim_server *s, uint16_t port)
{
	struct lp_listen *lst;

	HASH_FIND(hh, s->listens, &port, sizeof(port), lst);
	if (lst == NULL || --lst->refs > 0)
		return;
	ns_listener_free(lst->l);
	HASH_DEL(s->listens, lst);
	free(lst);
	log_info("event=lanproxy_unlisten port=%u", port);
}

void
lp_tcp_free_all(struct shim_server *s)
{
	struct lp_tcp_conn *rec, *tmp;
	struct lp_listen *lst, *ltmp;

	/* Shutdown: the loop no longer runs, so no splice callback can come for these (dead
	 * ones included). */
	DL_FOREACH_SAFE(s->all_conns, rec, tmp) {
		conn_unhash(rec);
		ev_timer_stop(s->loop, &rec->timer);
		DL_DELETE(s->all_conns, rec);
		free(rec);
	}
	HASH_ITER(hh, s->listens, lst, ltmp) {
		ns_listener_free(lst->l);
		HASH_DEL(s->listens, lst);
		free(lst);
	}
}
