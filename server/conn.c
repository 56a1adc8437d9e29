/*
 * conn: shoal-server's TCP control connections. Accepts, wraps each socket in a ctrlchan
 * (responder), hands authenticated sessions and their messages to the mediator, and drops
 * connections that stay silent for CONN_IDLE_TIMEOUT.
 * Must not touch: membership policy or the store (mediator.c), UDP (udp.c).
 *
 * Re-entrancy: the mediator sends from inside other connections' callbacks, so a failed send
 * never closes on the spot; it marks the connection dead and a zero-delay timer closes it on
 * the next loop iteration. A kick (replaced session) frees at once: ctrlchan_free defers itself
 * when inside the channel's own callback, and nothing here touches the conn after a callback
 * into the mediator.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mproto/ctrlchan.h"
#include "base/ip4.h"
#include "base/log.h"
#include "server/server.h"

struct conn {                            /* owned by struct server (its conns list) */
	struct server *srv;
	struct ctrlchan *ch;
	struct msess *sess;             /* NULL until the handshake is done */
	ev_timer timer;                 /* idle timeout; re-armed to 0 s for a deferred close */
	ev_timer nat_timer;             /* the mediator's NAT classification timer (io_timer) */
	struct endpoint local;          /* our end of the TCP connection (getsockname) */
	struct endpoint remote;         /* the node's end, as accepted */
	int dead;                       /* a send failed: closing on the next iteration */
	char peer[IP4_EP_STR_LEN];      /* ip:port, for logs */
	struct conn *prev, *next;
};

static void
conn_destroy(struct conn *c)
{
	struct server *srv = c->srv;

	ev_timer_stop(srv->loop, &c->timer);
	ev_timer_stop(srv->loop, &c->nat_timer);
	ctrlchan_free(c->ch);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	free(c);
}

/* The connection ended on its own (EOF, error, timeout): tell the mediator, then free. */
static void
conn_close(struct conn *c, const char *why)
{
	log_debug("event=conn_closed peer=%s reason=\"%s\"", c->peer, why);
	if (c->sess)
		medsrv_session_close(c->srv->med, c->sess);
	c->sess = NULL;
	conn_destroy(c);
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, timer));

	(void)loop;
	(void)revents;
	conn_close(c, c->dead ? "send failed" : "idle timeout");
}

static void
conn_nat_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, nat_timer));

	(void)loop;
	(void)revents;
	if (!c->dead && c->sess)
		medsrv_session_timer(c->srv->med, c->sess);
}

static void
conn_on_ready(void *arg, const uint8_t remote_static[KEY_LEN])
{
	struct conn *c = arg;

	c->sess = medsrv_session_open(c->srv->med, remote_static, c);
	if (c->sess != NULL) {
		medsrv_session_local(c->srv->med, c->sess, &c->local);
		medsrv_session_remote(c->srv->med, c->sess, &c->remote);
	}
	if (c->sess == NULL) {
		c->dead = 1;
		ev_timer_stop(c->srv->loop, &c->timer);
		ev_timer_set(&c->timer, 0., 0.);
		ev_timer_start(c->srv->loop, &c->timer);
	}
}

static void
conn_on_msg(void *arg, const struct msg *m)
{
	struct conn *c = arg;

	if (c->dead || c->sess == NULL)
		return;
	ev_timer_again(c->srv->loop, &c->timer);
	/* May kick c itself (bad HELLO): c must not be touched afterwards. */
	medsrv_session_msg(c->srv->med, c->sess, m);
}

static void
conn_on_close(void *arg, const char *why)
{
	conn_close(arg, why);
}

static const struct ctrlchan_cbs conn_cbs = {
	.on_ready = conn_on_ready,
	.on_msg = conn_on_msg,
	.on_close = conn_on_close,
};

/* ---- the mediator's I/O hooks ---- */

static void
io_send(void *arg, void *conn, const struct msg *m)
{
	struct conn *c = conn;

	(void)arg;
	if (c->dead)
		return;
	if (ctrlchan_send(c->ch, m) < 0) {
		/* Closed under us, or a client that does not read (send queue over 1 MiB). */
		log_info("event=conn_send_failed peer=%s type=%s", c->peer, msg_type_name(m->type));
		c->dead = 1;
		ev_timer_stop(c->srv->loop, &c->timer);
		ev_timer_set(&c->timer, 0., 0.);
		ev_timer_start(c->srv->loop, &c->timer);
	}
}

static void
io_kick(void *arg, void *conn)
{
	struct conn *c = conn;

	(void)arg;
	log_debug("event=conn_kicked peer=%s", c->peer);
	c->sess = NULL;
	conn_destroy(c);
}

static double
io_now(void *arg)
{
	struct server *srv = arg;

	return ev_now(srv->loop);
}

static void
io_timer(void *arg, void *conn, double after)
{
	struct conn *c = conn;

	(void)arg;
	ev_timer_stop(c->srv->loop, &c->nat_timer);
	if (after >= 0) {
		ev_timer_set(&c->nat_timer, after, 0.);
		ev_timer_start(c->srv->loop, &c->nat_timer);
	}
}

static void
punch_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = w->data;

	(void)loop;
	(void)revents;
	medsrv_punch_timer(srv->med);
}

static void
io_punch_timer(void *arg, double after)
{
	struct server *srv = arg;

	ev_timer_stop(srv->loop, &srv->punch_timer);
	if (after >= 0) {
		ev_timer_set(&srv->punch_timer, after, 0.);
		ev_timer_start(srv->loop, &srv->punch_timer);
	}
}

void
conn_medsrv_io(struct server *srv, struct medsrv_io *io)
{
	ev_timer_init(&srv->punch_timer, punch_timer_cb, 0., 0.);
	srv->punch_timer.data = srv;
	io->send = io_send;
	io->kick = io_kick;
	io->now = io_now;
	io->timer = io_timer;
	io->punch_timer = io_punch_timer;
	io->arg = srv;
}

/* ---- accepting ---- */

static void
accept_one(struct server *srv, int fd, const struct sockaddr_in *sin)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	struct conn *c;

	if (srv->n_conns >= CONN_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("event=conn_refused reason=%s", srv->n_conns >= CONN_MAX ? "too_many" :
		    "out_of_memory");
		close(fd);
		return;
	}
	ip4_ep_str(ntohl(sin->sin_addr.s_addr), ntohs(sin->sin_port), c->peer);
	c->remote.addr = ntohl(sin->sin_addr.s_addr);
	c->remote.port = ntohs(sin->sin_port);
	/* A wildcard listener's NAT plan points at the address the node reached us on. */
	if (getsockname(fd, (struct sockaddr *)&me, &len) == 0 && me.sin_family == AF_INET) {
		c->local.addr = ntohl(me.sin_addr.s_addr);
		c->local.port = ntohs(me.sin_port);
	}
	c->srv = srv;
	c->ch = ctrlchan_new(srv->loop, fd, 0, &srv->kp, NULL, &conn_cbs, c);
	if (c->ch == NULL) {
		log_warnx("event=conn_refused peer=%s reason=ctrlchan_new", c->peer);
		close(fd);
		free(c);
		return;
	}
	ev_timer_init(&c->timer, conn_timer_cb, 0., CONN_IDLE_TIMEOUT);
	ev_timer_init(&c->nat_timer, conn_nat_timer_cb, 0., 0.);
	ev_timer_again(srv->loop, &c->timer);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	log_debug("event=conn_accepted peer=%s", c->peer);
}

static void
accept_pause_all(struct server *srv)
{
	int k;

	for (k = 0; k < srv->n_listen; k++)
		ev_io_stop(srv->loop, &srv->listen[k].accept_w);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = (struct listener *)w;
	struct server *srv = l->srv;
	struct sockaddr_in sin;
	socklen_t len;
	int fd, i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 64; i++) {
		len = sizeof(sin);
		fd = accept4(l->fd, (struct sockaddr *)&sin, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The listening socket stays readable: without a pause this would spin. */
				log_warn("event=accept_paused");
				accept_pause_all(srv);
				/* Re-set: a fired one-shot timer restarted as is expires at once. */
				ev_timer_set(&srv->accept_pause, 1.0, 0.);
				ev_timer_start(srv->loop, &srv->accept_pause);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED) {
				log_warn("event=accept_failed");
			}
			return;
		}
		accept_one(srv, fd, &sin);
	}
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = (struct server *)((char *)w - offsetof(struct server, accept_pause));
	int k;

	(void)revents;
	for (k = 0; k < srv->n_listen; k++)
		ev_io_start(loop, &srv->listen[k].accept_w);
}

void
conn_start(struct server *srv)
{
	int k;

	for (k = 0; k < srv->n_listen; k++) {
		srv->listen[k].srv = srv;
		ev_io_init(&srv->listen[k].accept_w, accept_cb, srv->listen[k].fd, EV_READ);
		ev_io_start(srv->loop, &srv->listen[k].accept_w);
	}
	ev_timer_init(&srv->accept_pause, accept_resume_cb, 1.0, 0.);
}

void
conn_shutdown(struct server *srv)
{
	accept_pause_all(srv);
	ev_timer_stop(srv->loop, &srv->accept_pause);
	ev_timer_stop(srv->loop, &srv->punch_timer);
	while (srv->conns)
		conn_destroy(srv->conns);
}
