/*
 * conn: shoal-server's TCP control connections. Accepts, wraps each socket in a ctrlchan
 * (responder), hands authenticated sessions and their messages to the mediator, and drops
 * connections that stay silent for CONN_IDLE_TIMEOUT.
 * Must not touch: membership policy or the store (mediator.c), UDP (udp.c).
 *
 * Before the handshake: a connection is on the pre-auth list (oldest first) and counted per
 * source address; past PREAUTH_PER_SOURCE or srv->preauth_max the oldest idle one (nothing
 * unread in its socket) is closed for the newcomer, and when descriptors run out the acceptor
 * asks us to close the oldest idle ones too. One whose first message waits unread is not idle:
 * we owe it work. When none of the oldest is idle the server, not its clients, is the slow
 * side (a reconnect storm): the listener holds for PREAUTH_HOLD_S and the kernel's listen queue
 * keeps the newcomers, instead of closing connections whose handshake we were about to do.
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
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "mproto/ctrlchan.h"
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
	int preauth;                    /* on srv's pre-auth list */
	int fd;                         /* the ctrlchan's socket (unread bytes: preauth_idle) */
	char peer[IP4_EP_STR_LEN];      /* ip:port, for logs */
	struct conn *prev, *next;
	struct conn *pa_prev, *pa_next; /* srv->preauth, while preauth */
};

struct srccount {                        /* owned by struct server (preauth_by_src) */
	uint32_t addr;
	unsigned n;
	UT_hash_handle hh;
};

static void
preauth_remove(struct conn *c)
{
	struct server *srv = c->srv;
	struct srccount *sc;

	if (!c->preauth)
		return;
	c->preauth = 0;
	if (c->pa_prev)
		c->pa_prev->pa_next = c->pa_next;
	else
		srv->preauth = c->pa_next;
	if (c->pa_next)
		c->pa_next->pa_prev = c->pa_prev;
	else
		srv->preauth_tail = c->pa_prev;
	srv->n_preauth--;
	HASH_FIND(hh, srv->preauth_by_src, &c->remote.addr, sizeof(uint32_t), sc);
	if (sc && --sc->n == 0) {
		HASH_DEL(srv->preauth_by_src, sc);
		free(sc);
	}
}

/* Appends c; returns how many pre-auth connections its source now has (0: out of memory,
 * not counted). */
static unsigned
preauth_add(struct conn *c)
{
	struct server *srv = c->srv;
	struct srccount *sc;

	HASH_FIND(hh, srv->preauth_by_src, &c->remote.addr, sizeof(uint32_t), sc);
	if (sc == NULL) {
		if ((sc = calloc(1, sizeof(*sc))) == NULL)
			return 0;
		sc->addr = c->remote.addr;
		HASH_ADD(hh, srv->preauth_by_src, addr, sizeof(sc->addr), sc);
	}
	sc->n++;
	c->preauth = 1;
	c->pa_next = NULL;
	c->pa_prev = srv->preauth_tail;
	if (srv->preauth_tail)
		srv->preauth_tail->pa_next = c;
	else
		srv->preauth = c;
	srv->preauth_tail = c;
	srv->n_preauth++;
	return sc->n;
}

static void
conn_destroy(struct conn *c)
{
	struct server *srv = c->srv;

	preauth_remove(c);
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

	preauth_remove(c);
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

/* Nothing of c's waits unread in its socket: it sent nothing since the loop last read it. */
static int
preauth_idle(const struct conn *c)
{
	int n = 0;

	return ioctl(c->fd, FIONREAD, &n) != 0 || n == 0;
}

/* Closes the oldest idle pre-auth connection (of source addr, or of any with addr 0) among
 * the oldest PREAUTH_EVICT_SCAN; 0 when none is idle. */
static int
preauth_evict(struct server *srv, uint32_t addr, const char *why)
{
	struct conn *c;
	double now = ev_now(srv->loop);
	unsigned seen = 0;

	for (c = srv->preauth; c != NULL; c = c->pa_next) {
		if (addr != 0 && c->remote.addr != addr)
			continue;
		if (preauth_idle(c))
			break;
		if (++seen == PREAUTH_EVICT_SCAN)
			return 0;
	}
	if (c == NULL)
		return 0;
	srv->preauth_evicted++;
	if (srv->preauth_logged_at == 0 || now - srv->preauth_logged_at >= 10.0) {
		log_warnx("event=preauth_evicted reason=%s peer=%s preauth=%u evicted=%llu", why,
		    c->peer, srv->n_preauth, (unsigned long long)srv->preauth_evicted);
		srv->preauth_logged_at = now;
	}
	conn_destroy(c);
	return 1;
}

/* The acceptor ran out of descriptors: free some held by connections that have not proven
 * who they are. */
static unsigned
on_full(void *arg)
{
	struct server *srv = arg;
	unsigned n = 0;

	while (n < 8 && preauth_evict(srv, 0, "out_of_fds"))
		n++;
	return n;
}

static int
accept_one(void *arg, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	struct conn *c;

	if (salen < sizeof(*sin) || sin->sin_family != AF_INET) {
		close(fd);
		return 0;
	}
	if (srv->n_conns >= srv->conn_max || (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("event=conn_refused reason=%s", srv->n_conns >= srv->conn_max ? "too_many" :
		    "out_of_memory");
		close(fd);
		return 0;
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
	c->fd = fd;
	c->ch = ctrlchan_new(srv->loop, fd, 0, &srv->kp, NULL, &conn_cbs, c);
	if (c->ch == NULL) {
		log_warnx("event=conn_refused peer=%s reason=ctrlchan_new", c->peer);
		close(fd);
		free(c);
		return 0;
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
	/* Newcomers push out the oldest silent connections, never the other way round. */
	if (preauth_add(c) > PREAUTH_PER_SOURCE &&
	    !preauth_evict(srv, c->remote.addr, "per_source")) {
		/* its source's others all wait for us: the newcomer waits its turn elsewhere */
		conn_destroy(c);
		return 0;
	}
	if (srv->n_preauth > srv->preauth_max && !preauth_evict(srv, 0, "too_many")) {
		/* one over the limit at most per hold */
		acceptor_hold(l->acc, PREAUTH_HOLD_S);
		if (srv->hold_logged_at == 0 || ev_now(srv->loop) - srv->hold_logged_at >= 10.0) {
			struct acceptor_stats st;

			acceptor_get_stats(l->acc, &st);
			log_info("event=accept_held reason=handshakes_waiting preauth=%u holds=%llu",
			    srv->n_preauth, (unsigned long long)st.holds);
			srv->hold_logged_at = ev_now(srv->loop);
		}
		return 1;
	}
	return 0;
}

void
conn_start(struct server *srv)
{
	struct rlimit rl;
	int k;

	/* A quarter of the descriptors for connections still proving who they are. */
	srv->preauth_max = 4096;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < srv->preauth_max)
		srv->preauth_max = rl.rlim_cur / 4 > 16 ? (unsigned)(rl.rlim_cur / 4) : 16;
	for (k = 0; k < srv->n_listen; k++) {
		srv->listen[k].srv = srv;
		srv->listen[k].acc = acceptor_new(srv->loop, srv->listen[k].fd, "control", 0,
		    accept_one, &srv->listen[k]);
		if (srv->listen[k].acc)
			acceptor_on_full(srv->listen[k].acc, on_full, srv);
	}
}

void
conn_shutdown(struct server *srv)
{
	struct srccount *sc, *tmp;
	int k;

	for (k = 0; k < srv->n_listen; k++) {
		acceptor_free(srv->listen[k].acc);
		srv->listen[k].acc = NULL;
	}
	ev_timer_stop(srv->loop, &srv->punch_timer);
	while (srv->conns)
		conn_destroy(srv->conns);
	HASH_ITER(hh, srv->preauth_by_src, sc, tmp) {
		HASH_DEL(srv->preauth_by_src, sc);
		free(sc);
	}
}
