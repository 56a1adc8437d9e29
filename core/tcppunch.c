/*
 * tcppunch: the connects of TCP hole punching and the links they make (tcppunch.h).
 * A connect that is refused is retried on the next round: with no NAT in front of the peer
 * (or an early SYN reaching a host whose own SYN has not left) the kernel answers RST; every
 * other failure is the same to us. A pending connect is left alone: the kernel resends its
 * SYN (1 s, 3 s), and a second socket to the same target could not bind the same 4-tuple.
 */
#include "config.h"
#include "core/tcppunch.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>

#include "base/ip4.h"
#include "base/keyid.h"
#include "base/log.h"
#include "core/tcplink.h"
#include "core/transport.h"

enum { ROUNDS_MAX = 10 };
#define START_MAX_S 5.0
#define INTERVAL_MIN_S 0.02
#define INTERVAL_MAX_S 2.0

struct plan;

struct attempt {
	struct plan *pl;
	struct endpoint target;
	int fd;                         /* -1: not connecting now */
	ev_io w;
};

struct plan {                           /* one per peer, while its rounds last */
	struct tcppunch *tp;
	uint8_t key[KEY_LEN];
	char id[KEY_SHORT_LEN];
	uint16_t local_port;
	unsigned n;
	struct attempt a[PUNCH_MAX_TARGETS];
	unsigned rounds_left;
	double interval;
	ev_timer t;
	UT_hash_handle hh;
};

struct tlink {
	struct tcppunch *tp;
	uint8_t key[KEY_LEN];
	struct tcplink *l;
	struct tlink *prev, *next;
};

struct tcppunch {
	struct ev_loop *loop;
	struct transport *tr;
	struct tcppunch_ops ops;
	void *arg;
	struct plan *plans;             /* by key */
	struct tlink *links;
	struct tcppunch_stats st;
};

int
tcppunch_socket(uint16_t local_port)
{
	struct sockaddr_in sin;
	int fd, one = 1, e;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(local_port);
	/*
	 * A port-0 bind with SO_REUSEPORT already set may be handed a port another socket of
	 * our uid holds the same way; set after the bind, the flag still lets the punches share
	 * this port, and the port the kernel picks is one nobody else has.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (local_port != 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    (local_port == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
attempt_stop(struct attempt *a)
{
	if (a->fd < 0)
		return;
	ev_io_stop(a->pl->tp->loop, &a->w);
	close(a->fd);
	a->fd = -1;
}

static void
plan_free(struct plan *pl)
{
	unsigned i;

	for (i = 0; i < pl->n; i++)
		attempt_stop(&pl->a[i]);
	ev_timer_stop(pl->tp->loop, &pl->t);
	HASH_DEL(pl->tp->plans, pl);
	free(pl);
}

static void
link_closed(void *arg, struct tcplink *l, const char *why)
{
	struct tlink *tl = arg;
	struct tcppunch *tp = tl->tp;

	(void)why;
	(void)l;
	tcplink_free(tl->l);
	if (tl->prev)
		tl->prev->next = tl->next;
	else
		tp->links = tl->next;
	if (tl->next)
		tl->next->prev = tl->prev;
	tp->st.links--;
	free(tl);
}

static const struct tcplink_ops link_ops = { link_closed };

/* a's connect completed: the plan is done; the connection becomes a link for the peer. */
static void
attempt_up(struct attempt *a)
{
	struct plan *pl = a->pl;
	struct tcppunch *tp = pl->tp;
	struct endpoint target = a->target, ep;
	struct tlink *tl;
	uint8_t key[KEY_LEN];
	char eps[EP_STR_LEN];
	int fd = a->fd;

	ev_io_stop(tp->loop, &a->w);
	a->fd = -1;
	tp->st.connected++;
	memcpy(key, pl->key, KEY_LEN);
	log_info("event=tcp_punch_connected peer=%s remote=%s local_port=%u", pl->id,
	    ep_str(&target, eps), (unsigned)pl->local_port);
	/* One connection is enough: the others would only make links nobody uses. */
	plan_free(pl);
	if ((tl = calloc(1, sizeof(*tl))) == NULL) {
		log_warn("event=tcp_punch_alloc_failed");
		close(fd);
		return;
	}
	tl->tp = tp;
	memcpy(tl->key, key, KEY_LEN);
	if ((tl->l = tcplink_new(tp->loop, tp->tr, fd, &target, &link_ops, tl)) == NULL) {
		free(tl);
		return;
	}
	tl->next = tp->links;
	if (tp->links)
		tp->links->prev = tl;
	tp->links = tl;
	tp->st.links++;
	ep = tcplink_endpoint(tl->l);
	tp->ops.up(tp->arg, key, &ep);
}

static void
attempt_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct attempt *a = w->data;
	int err = 0;
	socklen_t len = sizeof(err);
	char eps[EP_STR_LEN];

	(void)loop;
	(void)revents;
	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		attempt_up(a);
		return;
	}
	a->pl->tp->st.failed++;
	log_debug("event=tcp_punch_failed peer=%s remote=%s error=\"%s\"", a->pl->id,
	    ep_str(&a->target, eps), strerror(err));
	attempt_stop(a);
}

static void
attempt_start(struct attempt *a)
{
	struct plan *pl = a->pl;
	struct sockaddr_in sin;
	char eps[EP_STR_LEN];
	int fd;

	if ((fd = tcppunch_socket(pl->local_port)) < 0)
		goto fail;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(a->target.addr);
	sin.sin_port = htons(a->target.port);
	pl->tp->st.connects++;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		close(fd);
		goto fail;
	}
	a->fd = fd;
	ev_io_init(&a->w, attempt_cb, fd, EV_WRITE);
	a->w.data = a;
	ev_io_start(pl->tp->loop, &a->w);
	return;
fail:
	/* EADDRNOTAVAIL: a link to this very target is up already (same 4-tuple). */
	pl->tp->st.failed++;
	log_debug("event=tcp_punch_failed peer=%s remote=%s error=\"%s\"", pl->id,
	    ep_str(&a->target, eps), strerror(errno));
}

static void
plan_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct plan *pl = w->data;
	unsigned i, pending = 0;

	(void)loop;
	(void)revents;
	if (pl->rounds_left == 0) {
		for (i = 0; i < pl->n; i++)
			pending += pl->a[i].fd >= 0;
		log_info("event=tcp_punch_done peer=%s connected=0 given_up=%u", pl->id, pending);
		plan_free(pl);
		return;
	}
	pl->rounds_left--;
	for (i = 0; i < pl->n; i++)
		if (pl->a[i].fd < 0)
			attempt_start(&pl->a[i]);
	/* attempt_start never completes a connect inline, so pl is still ours here. The timer
	 * fires once more after the last round to give up what is still pending. */
	ev_timer_set(w, pl->interval, 0.);
	ev_timer_start(pl->tp->loop, w);
}

void
tcppunch_start(struct tcppunch *tp, const struct msg_punch *p, uint16_t local_port)
{
	struct plan *pl;
	double start, interval;
	unsigned i, j, rounds;

	HASH_FIND(hh, tp->plans, p->peer, KEY_LEN, pl);
	if (pl)
		plan_free(pl);
	rounds = p->rounds < ROUNDS_MAX ? p->rounds : ROUNDS_MAX;
	if (p->strategy != PUNCH_TCP || local_port == 0 || p->n_targets == 0 || rounds == 0)
		return;
	if ((pl = calloc(1, sizeof(*pl))) == NULL) {
		log_warn("event=tcp_punch_alloc_failed");
		return;
	}
	pl->tp = tp;
	memcpy(pl->key, p->peer, KEY_LEN);
	key_short(p->peer, pl->id);
	pl->local_port = local_port;
	for (i = 0; i < p->n_targets && i < PUNCH_MAX_TARGETS; i++) {
		/* TCP punching is for IPv4 NATs; its sockets are IPv4. */
		if (!ep_is_set(&p->targets[i]) || ep_is_v6(&p->targets[i]))
			continue;
		for (j = 0; j < pl->n; j++)
			if (ep_same_addr(&pl->a[j].target, &p->targets[i]))
				break;
		if (j < pl->n)
			continue;
		pl->a[pl->n].pl = pl;
		pl->a[pl->n].fd = -1;
		pl->a[pl->n].target = p->targets[i];
		pl->a[pl->n].target.via = 0;
		pl->n++;
	}
	start = p->start_ms / 1000.0;
	if (start > START_MAX_S)
		start = START_MAX_S;
	interval = p->interval_ms / 1000.0;
	interval = interval < INTERVAL_MIN_S ? INTERVAL_MIN_S :
	    interval > INTERVAL_MAX_S ? INTERVAL_MAX_S : interval;
	pl->interval = interval;
	pl->rounds_left = rounds;
	HASH_ADD(hh, tp->plans, key, KEY_LEN, pl);
	ev_timer_init(&pl->t, plan_timer_cb, start, 0.);
	pl->t.data = pl;
	ev_timer_start(tp->loop, &pl->t);
	log_info("event=tcp_punch_start peer=%s targets=%u local_port=%u start_ms=%.0f "
	    "interval_ms=%.0f rounds=%u", pl->id, pl->n, (unsigned)local_port, start * 1000,
	    interval * 1000, rounds);
}

struct tcppunch *
tcppunch_new(struct ev_loop *loop, struct transport *tr, const struct tcppunch_ops *ops,
    void *arg)
{
	struct tcppunch *tp;

	if (ops == NULL || ops->up == NULL || (tp = calloc(1, sizeof(*tp))) == NULL)
		return NULL;
	tp->loop = loop;
	tp->tr = tr;
	tp->ops = *ops;
	tp->arg = arg;
	return tp;
}

void
tcppunch_free(struct tcppunch *tp)
{
	struct plan *pl, *ptmp;
	struct tlink *tl, *next;

	if (tp == NULL)
		return;
	HASH_ITER(hh, tp->plans, pl, ptmp)
		plan_free(pl);
	for (tl = tp->links; tl; tl = next) {
		next = tl->next;
		tcplink_free(tl->l);
		free(tl);
	}
	free(tp);
}

void
tcppunch_get_stats(const struct tcppunch *tp, struct tcppunch_stats *st)
{
	*st = tp->st;
	st->plans = HASH_COUNT(tp->plans);
}
