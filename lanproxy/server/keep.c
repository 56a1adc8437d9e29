/*
 * keep: a program's registrations outlive its process while the socket behind them lives.
 * A daemon that binds, forks and lets the parent exit (double-fork daemonisation), or a socket
 * inherited across exec, is held by another process whose shim never announced it: when the
 * announcing process's connection goes, each of its UDP ports, listeners and group joins is
 * kept if a socket of ours is still bound to that port on the wildcard or loopback address
 * (base/sockbound.h), and released once none of the sockets seen then is left (checked every
 * LP_KEEP_CHECK_S seconds). The kept entry holds the reference the client held. One snapshot
 * of our bound sockets (base/sockbound.h) answers for every registration of a client that goes,
 * and one for every kept entry at each check, however many ports a program had.
 * Owns: struct lp_kept and the check timer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utlist.h>

#include "base/log.h"
#include "base/sockbound.h"
#include "lanproxy/server/lanproxy.h"

enum { KEEP_INODES = 8 };

struct lp_kept {
	struct lp_kept *next;
	struct lp_reg reg;              /* kind, port, group (next and count unused) */
	size_t n;                       /* inodes seen when the process went */
	uint64_t inodes[KEEP_INODES];
};

/* The sockets of ours a registration stands for: UDP ports and their joins are UDP sockets,
 * listeners are TCP sockets in LISTEN. */
static size_t
bound(const struct sockbound_snap *snap, const struct lp_reg *r, uint64_t *inodes, size_t cap)
{
	return sockbound_find(snap, r->kind == LP_REG_LISTEN ? IPPROTO_TCP : IPPROTO_UDP, r->port,
	    inodes, cap);
}

static void
check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct shim_server *s = w->data;
	struct sockbound_snap snap;
	struct lp_kept *k, *tmp;
	uint64_t now[64];
	size_t i, j, n;

	(void)loop;
	(void)revents;
	/* errors keep every entry: the next check decides */
	if (sockbound_snapshot(getuid(), &snap) != 0)
		return;
	LL_FOREACH_SAFE(s->kept, k, tmp) {
		n = bound(&snap, &k->reg, now, sizeof(now) / sizeof(now[0]));
		for (i = 0; i < k->n; i++)
			for (j = 0; j < n && j < sizeof(now) / sizeof(now[0]); j++)
				if (now[j] == k->inodes[i])
					goto alive;
		log_debug("event=lanproxy_kept_released kind=%u port=%u", k->reg.kind,
		    k->reg.port);
		lp_reg_release(s, &k->reg);
		LL_DELETE(s->kept, k);
		s->n_kept--;
		free(k);
alive:;
	}
	sockbound_snap_free(&snap);
	if (s->kept == NULL)
		ev_timer_stop(s->loop, &s->keep_timer);
}

/* Takes over r's reference when a socket of ours is still bound to its port: 1, or 0. */
static int
keep_one(struct shim_server *s, const struct sockbound_snap *snap, const struct lp_reg *r)
{
	struct lp_kept *k;
	size_t n;

	if (s->n_kept >= LP_KEEP_MAX || (k = calloc(1, sizeof(*k))) == NULL)
		return 0;
	if ((n = bound(snap, r, k->inodes, KEEP_INODES)) == 0) {
		free(k);
		return 0;
	}
	k->n = n < KEEP_INODES ? n : KEEP_INODES;
	k->reg.kind = r->kind;
	k->reg.port = r->port;
	k->reg.group = r->group;
	LL_PREPEND(s->kept, k);
	s->n_kept++;
	log_debug("event=lanproxy_kept kind=%u port=%u sockets=%zu", r->kind, r->port, n);
	if (!ev_is_active(&s->keep_timer)) {
		ev_timer_init(&s->keep_timer, check_cb, LP_KEEP_CHECK_S, LP_KEEP_CHECK_S);
		s->keep_timer.data = s;
		ev_timer_start(s->loop, &s->keep_timer);
	}
	return 1;
}

void
lp_keep_or_release(struct shim_server *s, const struct lp_reg *regs)
{
	struct sockbound_snap snap;
	const struct lp_reg *r;
	int have;

	if (regs == NULL)
		return;
	have = !s->stopping && sockbound_snapshot(getuid(), &snap) == 0;
	LL_FOREACH(regs, r)
		if (!have || !keep_one(s, &snap, r))
			lp_reg_release(s, r);
	if (have)
		sockbound_snap_free(&snap);
}

void
lp_keep_free_all(struct shim_server *s)
{
	struct lp_kept *k, *tmp;

	ev_timer_stop(s->loop, &s->keep_timer);
	LL_FOREACH_SAFE(s->kept, k, tmp) {
		lp_reg_release(s, &k->reg);
		LL_DELETE(s->kept, k);
		free(k);
	}
	s->n_kept = 0;
}
