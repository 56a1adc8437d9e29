/*
 * view: the membership view as the server pushed it: networks we are in (or pending in) and
 * their members, ourselves included. Applies the NETWORK / MEMBER / MEMBER_GONE /
 * NETWORK_GONE deltas and, after a reconnect, sweeps what the refresh burst did not re-send
 * (the refresh boundary is described in medclient_int.h).
 *
 * Owns: the networks and members (struct nnode / mnode), the refresh generation and timer.
 * Must not: decide who is a peer; after every change it asks authz.c to re-evaluate the keys
 * that change can have affected.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "medclient/medclient_int.h"

static struct nnode *
net_find(const struct medclient *m, const char *name)
{
	struct med_network *n;

	HASH_FIND_STR(m->nets, name, n);
	return (struct nnode *)n;
}

static void
net_free_members(struct med_network *n)
{
	struct med_member *mem, *tmp;

	HASH_ITER(hh, n->members, mem, tmp) {
		HASH_DEL(n->members, mem);
		free((struct mnode *)mem);
	}
}

/* Removes a network and everything we knew about its members, then fixes authorizations. */
static void
net_remove(struct medclient *m, struct nnode *nn)
{
	HASH_DEL(m->nets, &nn->pub);
	net_free_members(&nn->pub);
	free(nn);
	med_authz_update_authorized(m);
	med_punch_prune(m);
}

void
med_view_network(struct medclient *m, const struct msg_network *mn)
{
	struct nnode *nn = net_find(m, mn->name);

	if (!nn) {
		if (!(nn = calloc(1, sizeof(*nn)))) {
			log_warn("event=mediator_alloc_failed");
			return;
		}
		snprintf(nn->pub.name, sizeof(nn->pub.name), "%s", mn->name);
		HASH_ADD_STR(m->nets, name, &nn->pub);
		log_info("event=mediator_network name=\"%s\" my_flags=%u", mn->name, mn->my_flags);
	} else if (nn->pub.my_flags != mn->my_flags || nn->pub.flags != mn->flags) {
		log_info("event=mediator_network_changed name=\"%s\" flags=%u my_flags=%u",
		    mn->name, mn->flags, mn->my_flags);
	}
	nn->pub.flags = mn->flags;
	memcpy(nn->pub.owner, mn->owner, KEY_LEN);
	nn->pub.my_flags = mn->my_flags;
	nn->gen = m->gen;
	med_authz_update_network(m, &nn->pub);
}

/* Our own record: our nick and our status in that network. */
static void
member_self(struct medclient *m, struct nnode *nn, const struct msg_member *mm)
{
	/* A SET_NICK shows up here, not in a new WELCOME. Once the server has taken it, it is
	 * what we want: a reconnect's HELLO must not put the start-up --nick back. */
	if (m->nick[0] && strcmp(m->nick, mm->nick) != 0 && m->wanted_nick[0])
		snprintf(m->wanted_nick, sizeof(m->wanted_nick), "%s", mm->nick);
	snprintf(m->nick, sizeof(m->nick), "%s", mm->nick);
	/* Our own record and NETWORK.my_flags describe the same thing; keep them equal. */
	if (nn->pub.my_flags != mm->flags) {
		nn->pub.my_flags = mm->flags;
		med_authz_update_network(m, &nn->pub);
	}
}

void
med_view_member(struct medclient *m, const struct msg_member *mm)
{
	struct nnode *nn = net_find(m, mm->network);
	struct med_member *mem;
	struct mnode *mn;
	char id[KEY_SHORT_LEN];

	if (!nn) {
		/* The server announces a network before its members. */
		m->dropped_msgs++;
		log_debug("event=mediator_member_unknown_network network=\"%s\"", mm->network);
		return;
	}
	HASH_FIND(hh, nn->pub.members, mm->key, KEY_LEN, mem);
	if (!(mn = (struct mnode *)mem)) {
		if (!(mn = calloc(1, sizeof(*mn)))) {
			log_warn("event=mediator_alloc_failed");
			return;
		}
		memcpy(mn->pub.key, mm->key, KEY_LEN);
		HASH_ADD(hh, nn->pub.members, key, KEY_LEN, &mn->pub);
	}
	mn->pub.address = mm->address;
	snprintf(mn->pub.nick, sizeof(mn->pub.nick), "%s", mm->nick);
	mn->pub.flags = mm->flags;
	mn->pub.n_endpoints = mm->n_endpoints;
	memcpy(mn->pub.endpoints, mm->endpoints, mm->n_endpoints * sizeof(struct endpoint));
	mn->gen = m->gen;
	key_short(mm->key, id);
	log_debug("event=mediator_member network=\"%s\" peer=%s nick=\"%s\" flags=%u",
	    mm->network, id, mm->nick, mm->flags);
	if (med_is_self(m, mm->key))
		member_self(m, nn, mm);
	else
		med_authz_update(m, mm->key);
}

void
med_view_member_gone(struct medclient *m, const struct msg_member_gone *g)
{
	struct nnode *nn = net_find(m, g->network);
	struct med_member *mem = NULL;
	char id[KEY_SHORT_LEN];

	if (nn)
		HASH_FIND(hh, nn->pub.members, g->key, KEY_LEN, mem);
	if (!mem) {
		m->dropped_msgs++;
		return;
	}
	key_short(g->key, id);
	log_info("event=mediator_member_gone network=\"%s\" peer=%s", g->network, id);
	HASH_DEL(nn->pub.members, mem);
	free((struct mnode *)mem);
	if (med_is_self(m, g->key)) {
		/* We are not in it any more, whatever NETWORK_GONE will say. */
		nn->pub.my_flags = 0;
		med_authz_update_network(m, &nn->pub);
		med_authz_update_authorized(m);
	} else {
		med_authz_update(m, g->key);
	}
	med_punch_prune(m);
}

void
med_view_network_gone(struct medclient *m, const struct msg_network_gone *g)
{
	struct nnode *nn = net_find(m, g->name);

	if (!nn) {
		m->dropped_msgs++;
		return;
	}
	log_info("event=mediator_network_gone name=\"%s\" reason=%u", g->name, g->reason);
	net_remove(m, nn);
}

/* ---- the refresh burst ---- */

static void
refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	med_view_refresh_end(w->data);
}

void
med_view_init(struct medclient *m)
{
	ev_timer_init(&m->refresh_timer, refresh_cb, 0., 0.);
	m->refresh_timer.data = m;
}

void
med_view_refresh_begin(struct medclient *m)
{
	m->gen++;
	m->refreshing = 1;
	ev_timer_stop(m->loop, &m->refresh_timer);
	ev_timer_set(&m->refresh_timer, REFRESH_TIMEOUT, 0.);
	ev_timer_start(m->loop, &m->refresh_timer);
}

void
med_view_refresh_abort(struct medclient *m)
{
	m->refreshing = 0;
	ev_timer_stop(m->loop, &m->refresh_timer);
}

/* End of the refresh burst: drop whatever the server did not re-send. */
void
med_view_refresh_end(struct medclient *m)
{
	struct med_network *n, *ntmp;
	struct med_member *mem, *mtmp;
	unsigned nets = 0, members = 0;

	if (!m->refreshing)
		return;
	m->refreshing = 0;
	ev_timer_stop(m->loop, &m->refresh_timer);
	HASH_ITER(hh, m->nets, n, ntmp) {
		if (((struct nnode *)n)->gen != m->gen) {
			HASH_DEL(m->nets, n);
			net_free_members(n);
			free((struct nnode *)n);
			nets++;
			continue;
		}
		HASH_ITER(hh, n->members, mem, mtmp) {
			if (((struct mnode *)mem)->gen != m->gen) {
				HASH_DEL(n->members, mem);
				free((struct mnode *)mem);
				members++;
			}
		}
	}
	if (nets || members)
		log_info("event=mediator_refresh_sweep networks_removed=%u members_removed=%u",
		    nets, members);
	med_authz_update_authorized(m);
	med_punch_prune(m);
}

void
med_view_free(struct medclient *m)
{
	struct med_network *n, *ntmp;

	ev_timer_stop(m->loop, &m->refresh_timer);
	HASH_ITER(hh, m->nets, n, ntmp) {
		HASH_DEL(m->nets, n);
		net_free_members(n);
		free((struct nnode *)n);
	}
}

const struct med_network *
medclient_networks(const struct medclient *m)
{
	return m->nets;
}
