/*
 * medclient: the daemon's side of the mediator protocol (docs/PROTOCOL.md 3 and 4.4).
 *
 * Owns: the control channel (struct ctrlchan) and its socket, the membership view (networks
 * and members as the server pushed them), the set of keys this module has authorized in the
 * peer table, the pending requests, and the timers below. Must not: touch peer sessions or
 * sockets other than its own (it only calls peers_authorize / peers_revoke / transport_send),
 * or remove anything from the view while the server is unreachable.
 *
 * Timers (all policy is here):
 *   retry    one-shot: reconnect after a failure; 1 s doubling to 30 s, times [0.5, 1) jitter,
 *            reset by a WELCOME.
 *   ping     every 15 s while connected: PING the server.
 *   idle     45 s without any message from the server: drop the connection and reconnect.
 *   probe    after WELCOME: UDP_PROBE now, then 1 s, 2 s, 3 s later, then every 15 s.
 *   refresh  5 s after WELCOME at the latest: end of the refresh burst (sweep, see below).
 *   request  the earliest pending request deadline (10 s per request).
 *
 * Refresh boundary: the server re-sends NETWORK + MEMBER for everything right after WELCOME.
 * WELCOME bumps `gen`; NETWORK and MEMBER stamp their entries with it. The burst ends at the
 * first message that is neither NETWORK nor MEMBER (the PONG to the PING we send on WELCOME
 * is always such a message, as the server answers in order) or when the refresh timer fires;
 * then entries with an older stamp are swept. Nothing is removed before that, so a reconnect
 * never briefly revokes a peer that is still valid.
 */
#include "config.h"
#include "medclient/medclient.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "mproto/ctrlchan.h"
#include "base/log.h"
#include "core/peer.h"
#include "core/transport.h"
#include "daemon/daemon.h"

#define BACKOFF_MIN       1.0
#define BACKOFF_MAX       30.0
#define PING_INTERVAL     15.0
#define IDLE_TIMEOUT      45.0
#define PROBE_INTERVAL    15.0
#define PROBE_BURST_GAP   1.0
#define PROBE_BURST       3       /* re-sends 1 s apart after the first probe */
#define REFRESH_TIMEOUT   5.0
#define REQUEST_TIMEOUT   10.0

enum med_state {
	MED_IDLE,               /* not connected; retry timer may be running */
	MED_CONNECTING,         /* TCP connect + Noise handshake in progress */
	MED_HELLO,              /* HELLO sent, waiting for WELCOME */
	MED_ONLINE,             /* WELCOME received */
};

/* View entries: the public struct first (callers see only that), our bookkeeping after. */
struct mnode {
	struct med_member pub;
	uint32_t gen;                   /* refresh generation of the last MEMBER for it */
};

struct nnode {
	struct med_network pub;
	uint32_t gen;
};

/* A key we authorized in the peer table, with what we told it (to skip no-op updates). */
struct auth {
	uint8_t key[KEY_LEN];
	uint32_t address;
	uint8_t n_endpoints;
	struct endpoint endpoints[MAX_ENDPOINTS];
	UT_hash_handle hh;
};

/* A request waiting for its RESULT, or a failure waiting to be delivered. Sorted by deadline. */
struct pending {
	uint32_t req_id;
	double deadline;
	const char *fail;               /* text used when the deadline passes */
	medclient_result_cb cb;
	void *arg;
	struct pending *next;
};

/* Owned by the daemon (d->med); created by medclient_new, freed by medclient_free. */
struct medclient {
	struct daemon *d;
	struct ev_loop *loop;
	enum med_state state;
	int started;
	struct ctrlchan *ch;
	struct endpoint server;         /* resolved server address; UDP probes go here too */
	int have_server;

	ev_timer retry_timer, ping_timer, idle_timer, probe_timer, refresh_timer, req_timer;
	double backoff;
	int probes_left;

	uint8_t udp_token[UDP_TOKEN_LEN];
	int have_token;
	struct endpoint public_ep;
	int have_public;
	uint64_t ping_nonce;

	struct med_network *nets;       /* uthash by name; really struct nnode */
	uint32_t gen;
	int refreshing;
	struct auth *auth;              /* uthash by key */

	uint32_t next_req_id;
	struct pending *pending;

	uint64_t dropped_msgs;          /* messages that made no sense in our state */
};

static void med_connect(struct medclient *m);
static void med_disconnected(struct medclient *m, const char *why);

/* ---- small helpers ---- */

static void
key_short(const uint8_t key[KEY_LEN], char out[13])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 6; i++) {
		out[2 * i] = hx[key[i] >> 4];
		out[2 * i + 1] = hx[key[i] & 15];
	}
	out[12] = '\0';
}

static void
ip_str(uint32_t a, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int
is_self(const struct medclient *m, const uint8_t key[KEY_LEN])
{
	return sodium_memcmp(key, m->d->key.pub, KEY_LEN) == 0;
}

/* See MEMF_ACTIVE in proto.h: a member switched on in a network we are switched on in stays
 * our peer while its mediator connection comes and goes. */
static int
full_active(uint8_t flags)
{
	return (flags & MEMF_ACTIVE) && !(flags & MEMF_PENDING);
}

static int
eps_equal(const struct endpoint *a, size_t na, const struct endpoint *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (a[i].addr != b[i].addr || a[i].port != b[i].port)
			return 0;
	return 1;
}

/* ---- authorization: the rule from mediator_client.h, applied per key ---- */

/* The member record that authorizes key, or NULL when no network makes it our peer. */
static const struct med_member *
auth_source(const struct medclient *m, const uint8_t key[KEY_LEN])
{
	const struct med_network *n;
	const struct med_member *mem;

	for (n = m->nets; n; n = n->hh.next) {
		if (!full_active(n->my_flags))
			continue;
		HASH_FIND(hh, n->members, key, KEY_LEN, mem);
		if (mem && full_active(mem->flags))
			return mem;
	}
	return NULL;
}

/* Brings the peer table in line with the view for one key. */
static void
auth_update(struct medclient *m, const uint8_t key[KEY_LEN])
{
	const struct med_member *src;
	struct auth *a;
	char id[13], ip[16];

	if (is_self(m, key))
		return;
	src = auth_source(m, key);
	HASH_FIND(hh, m->auth, key, KEY_LEN, a);
	key_short(key, id);
	if (src) {
		/* A member that lost its mediator connection is reported without endpoints: its
		 * endpoints are unknown, not gone, so keep using the ones we had. */
		if (a && a->address == src->address && src->n_endpoints == 0)
			return;
		if (a && a->address == src->address &&
		    eps_equal(a->endpoints, a->n_endpoints, src->endpoints, src->n_endpoints))
			return;
		if (!a) {
			if (!(a = calloc(1, sizeof(*a)))) {
				log_warn("event=mediator_alloc_failed");
				return;
			}
			memcpy(a->key, key, KEY_LEN);
			HASH_ADD(hh, m->auth, key, KEY_LEN, a);
		}
		a->address = src->address;
		a->n_endpoints = src->n_endpoints;
		memcpy(a->endpoints, src->endpoints, src->n_endpoints * sizeof(struct endpoint));
		ip_str(src->address, ip);
		log_info("event=peer_authorized peer=%s addr=%s endpoints=%u", id, ip,
		    src->n_endpoints);
		if (m->d->peers)
			peers_authorize(m->d->peers, key, src->address, src->endpoints,
			    src->n_endpoints);
	} else if (a) {
		HASH_DEL(m->auth, a);
		free(a);
		log_info("event=peer_revoked peer=%s", id);
		if (m->d->peers)
			peers_revoke(m->d->peers, key);
	}
}

/* Re-evaluates every member of network n (our own status there changed). */
static void
auth_update_network(struct medclient *m, const struct med_network *n)
{
	const struct med_member *mem;

	for (mem = n->members; mem; mem = mem->hh.next)
		auth_update(m, mem->key);
}

/* Entries were removed: only keys we authorized can lose their authorization. */
static void
auth_update_all_authorized(struct medclient *m)
{
	struct auth *a, *tmp;
	uint8_t key[KEY_LEN];

	HASH_ITER(hh, m->auth, a, tmp) {
		memcpy(key, a->key, KEY_LEN);
		auth_update(m, key);    /* may free a; tmp stays valid */
	}
}

/* ---- the membership view ---- */

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
	auth_update_all_authorized(m);
}

static void
apply_network(struct medclient *m, const struct msg_network *mn)
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
	auth_update_network(m, &nn->pub);
}

static void
apply_member(struct medclient *m, const struct msg_member *mm)
{
	struct nnode *nn = net_find(m, mm->network);
	struct med_member *mem;
	struct mnode *mn;
	char id[13];

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
	if (is_self(m, mm->key)) {
		/* A SET_NICK shows up here, not in a new WELCOME. */
		snprintf(m->d->nick, sizeof(m->d->nick), "%s", mm->nick);
		/* Our own record and NETWORK.my_flags describe the same thing; keep them equal. */
		if (nn->pub.my_flags != mm->flags) {
			nn->pub.my_flags = mm->flags;
			auth_update_network(m, &nn->pub);
		}
	} else {
		auth_update(m, mm->key);
	}
}

static void
apply_member_gone(struct medclient *m, const struct msg_member_gone *g)
{
	struct nnode *nn = net_find(m, g->network);
	struct med_member *mem = NULL;
	char id[13];

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
	if (is_self(m, g->key)) {
		/* We are not in it any more, whatever NETWORK_GONE will say. */
		nn->pub.my_flags = 0;
		auth_update_network(m, &nn->pub);
		auth_update_all_authorized(m);
	} else {
		auth_update(m, g->key);
	}
}

static void
apply_network_gone(struct medclient *m, const struct msg_network_gone *g)
{
	struct nnode *nn = net_find(m, g->name);

	if (!nn) {
		m->dropped_msgs++;
		return;
	}
	log_info("event=mediator_network_gone name=\"%s\" reason=%u", g->name, g->reason);
	net_remove(m, nn);
}

/* End of the refresh burst: drop whatever the server did not re-send. */
static void
refresh_sweep(struct medclient *m)
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
	auth_update_all_authorized(m);
}

static void
refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	refresh_sweep(w->data);
}

static void
view_free(struct medclient *m)
{
	struct med_network *n, *ntmp;
	struct auth *a, *atmp;

	HASH_ITER(hh, m->nets, n, ntmp) {
		HASH_DEL(m->nets, n);
		net_free_members(n);
		free((struct nnode *)n);
	}
	HASH_ITER(hh, m->auth, a, atmp) {
		HASH_DEL(m->auth, a);
		free(a);
	}
}

/* ---- requests ---- */

static void
req_arm(struct medclient *m)
{
	double after;

	ev_timer_stop(m->loop, &m->req_timer);
	if (!m->pending)
		return;
	after = m->pending->deadline - ev_now(m->loop);
	ev_timer_set(&m->req_timer, after > 0 ? after : 0., 0.);
	ev_timer_start(m->loop, &m->req_timer);
}

static void
req_complete(struct pending *p, uint8_t status, const char *text, uint32_t req_id)
{
	struct msg_result res;

	memset(&res, 0, sizeof(res));
	res.req_id = req_id;
	res.status = status;
	snprintf(res.text, sizeof(res.text), "%s", text);
	p->cb(p->arg, &res);
}

/* Delivers the failures whose deadline passed. Callbacks may queue new requests. */
static void
req_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;
	struct pending *p;

	while ((p = m->pending) && p->deadline <= ev_now(loop) + 0.001) {
		m->pending = p->next;
		if (strcmp(p->fail, "timed out") == 0)
			log_info("event=mediator_request_timeout req=%u", p->req_id);
		req_complete(p, RES_ERR_INTERNAL, p->fail, p->req_id);
		free(p);
	}
	req_arm(m);
}

/* Inserts keeping the list sorted by deadline (ties: after existing ones, FIFO). */
static void
req_insert(struct medclient *m, struct pending *p)
{
	struct pending **pp = &m->pending;

	while (*pp && (*pp)->deadline <= p->deadline)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
	req_arm(m);
}

/* The connection is gone: every request in flight fails now. */
static void
req_fail_all(struct medclient *m, const char *why)
{
	struct pending *list = m->pending, *p;

	/* Detached first: callbacks may queue new requests (they fail as "not connected"). */
	m->pending = NULL;
	ev_timer_stop(m->loop, &m->req_timer);
	while ((p = list)) {
		list = p->next;
		req_complete(p, RES_ERR_INTERNAL, why, p->req_id);
		free(p);
	}
	req_arm(m);
}

static void
req_result(struct medclient *m, const struct msg_result *r)
{
	struct pending **pp, *p;

	for (pp = &m->pending; (p = *pp); pp = &p->next) {
		if (p->req_id == r->req_id && p->cb) {
			*pp = p->next;
			req_arm(m);
			p->cb(p->arg, r);
			free(p);
			return;
		}
	}
	/* Timed out already, or never ours. */
	m->dropped_msgs++;
	log_debug("event=mediator_result_unmatched req=%u", r->req_id);
}

/* ---- UDP probes ---- */

static void
probe_send(struct medclient *m)
{
	uint8_t pkt[UDP_PROBE_LEN];
	int n;

	if (!m->have_token || !m->have_server || !m->d->tp)
		return;
	if ((n = probe_encode(m->udp_token, pkt, sizeof(pkt))) > 0)
		transport_send(m->d->tp, &m->server, pkt, (size_t)n);
}

static void
probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	probe_send(m);
	if (m->probes_left > 0)
		m->probes_left--;
	ev_timer_set(w, m->probes_left > 0 ? PROBE_BURST_GAP : PROBE_INTERVAL, 0.);
	ev_timer_start(loop, w);
}

/* ---- the channel ---- */

static int
med_send(struct medclient *m, const struct msg *msg)
{
	if (!m->ch || ctrlchan_send(m->ch, msg) < 0) {
		log_warnx("event=mediator_send_failed type=%s", msg_type_name(msg->type));
		return -1;
	}
	return 0;
}

static void
med_send_ping(struct medclient *m)
{
	struct msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_PING;
	msg.u.ping.nonce = ++m->ping_nonce;
	med_send(m, &msg);
}

static void
ping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	med_send_ping(w->data);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	log_warnx("event=mediator_idle_timeout seconds=%.0f", IDLE_TIMEOUT);
	med_disconnected(m, "no traffic from the server");
}

static void
on_ready(void *arg, const uint8_t remote_static[KEY_LEN])
{
	struct medclient *m = arg;
	struct daemon *d = m->d;
	struct msg msg;
	size_t i, n = 0;

	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_HELLO;
	msg.u.hello.version = SHOAL_PROTO_VERSION;
	snprintf(msg.u.hello.nick, sizeof(msg.u.hello.nick), "%s",
	    d->cfg.nick[0] ? d->cfg.nick : d->nick);
	if (d->tp) {
		msg.u.hello.udp_port = transport_port(d->tp);
		n = transport_local_endpoints(d->tp, msg.u.hello.local, MAX_ENDPOINTS);
		if (n > MAX_ENDPOINTS)
			n = MAX_ENDPOINTS;
		for (i = 0; i < n; i++)
			msg.u.hello.local[i].port = msg.u.hello.udp_port;
	}
	msg.u.hello.n_local = (uint8_t)n;
	if (med_send(m, &msg) < 0) {
		med_disconnected(m, "cannot send HELLO");
		return;
	}
	m->state = MED_HELLO;
	ev_timer_again(m->loop, &m->idle_timer);
	ev_timer_again(m->loop, &m->ping_timer);
	log_debug("event=mediator_handshake_done local_endpoints=%zu", n);
}

static void
on_welcome(struct medclient *m, const struct msg_welcome *w)
{
	struct daemon *d = m->d;
	char ip[16];

	if (m->state != MED_HELLO) {
		m->dropped_msgs++;
		return;
	}
	m->state = MED_ONLINE;
	m->backoff = BACKOFF_MIN;
	daemon_set_address(d, w->address, w->prefix_len);
	snprintf(d->nick, sizeof(d->nick), "%s", w->nick);
	memcpy(m->udp_token, w->udp_token, UDP_TOKEN_LEN);
	m->have_token = 1;
	ip_str(w->address, ip);
	log_info("event=mediator_connected addr=%s/%u nick=\"%s\"", ip, w->prefix_len, w->nick);

	/* The refresh burst follows; the PONG to this PING marks its end. */
	m->gen++;
	m->refreshing = 1;
	ev_timer_set(&m->refresh_timer, REFRESH_TIMEOUT, 0.);
	ev_timer_start(m->loop, &m->refresh_timer);
	med_send_ping(m);

	m->probes_left = PROBE_BURST;
	probe_send(m);
	ev_timer_stop(m->loop, &m->probe_timer);
	ev_timer_set(&m->probe_timer, PROBE_BURST_GAP, 0.);
	ev_timer_start(m->loop, &m->probe_timer);
}

static void
on_msg(void *arg, const struct msg *msg)
{
	struct medclient *m = arg;
	struct msg pong;

	ev_timer_again(m->loop, &m->idle_timer);
	if (m->refreshing && msg->type != MSG_NETWORK && msg->type != MSG_MEMBER)
		refresh_sweep(m);
	if (m->state != MED_ONLINE && msg->type != MSG_WELCOME && msg->type != MSG_PING &&
	    msg->type != MSG_PONG) {
		m->dropped_msgs++;
		log_debug("event=mediator_msg_before_welcome type=%s", msg_type_name(msg->type));
		return;
	}
	switch (msg->type) {
	case MSG_WELCOME:
		on_welcome(m, &msg->u.welcome);
		break;
	case MSG_RESULT:
		req_result(m, &msg->u.result);
		break;
	case MSG_NETWORK:
		apply_network(m, &msg->u.network);
		break;
	case MSG_MEMBER:
		apply_member(m, &msg->u.member);
		break;
	case MSG_MEMBER_GONE:
		apply_member_gone(m, &msg->u.member_gone);
		break;
	case MSG_NETWORK_GONE:
		apply_network_gone(m, &msg->u.network_gone);
		break;
	case MSG_PING:
		memset(&pong, 0, sizeof(pong));
		pong.type = MSG_PONG;
		pong.u.ping.nonce = msg->u.ping.nonce;
		med_send(m, &pong);
		break;
	case MSG_PONG:
		break;
	default:
		/* HELLO / REQUEST are client-to-server messages. */
		m->dropped_msgs++;
		log_debug("event=mediator_unexpected_msg type=%s", msg_type_name(msg->type));
		break;
	}
}

static void
on_close(void *arg, const char *why)
{
	med_disconnected(arg, why);
}

static const struct ctrlchan_cbs med_cbs = { on_ready, on_msg, on_close };

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	med_connect(w->data);
}

static void
schedule_retry(struct medclient *m)
{
	/* Jitter in [0.5, 1): daemons that lost the same server do not return in lockstep. */
	double delay = m->backoff * (0.5 + randombytes_uniform(500) / 1000.0);

	m->backoff *= 2;
	if (m->backoff > BACKOFF_MAX)
		m->backoff = BACKOFF_MAX;
	ev_timer_stop(m->loop, &m->retry_timer);
	ev_timer_set(&m->retry_timer, delay, 0.);
	ev_timer_start(m->loop, &m->retry_timer);
	log_info("event=mediator_retry in=%.1fs", delay);
}

/*
 * The connection ended (or never came up). The view and the peers stay as they are: P2P keeps
 * working while the mediator is away. Safe from inside ctrlchan callbacks (the free is deferred).
 */
static void
med_disconnected(struct medclient *m, const char *why)
{
	int was_online = m->state == MED_ONLINE;

	if (m->ch) {
		ctrlchan_free(m->ch);
		m->ch = NULL;
	}
	m->state = MED_IDLE;
	m->have_token = 0;
	/* An unfinished refresh burst proves nothing: keep the old entries until a full one. */
	m->refreshing = 0;
	ev_timer_stop(m->loop, &m->refresh_timer);
	ev_timer_stop(m->loop, &m->ping_timer);
	ev_timer_stop(m->loop, &m->idle_timer);
	ev_timer_stop(m->loop, &m->probe_timer);
	if (was_online)
		log_warnx("event=mediator_disconnected reason=\"%s\"", why);
	else
		log_warnx("event=mediator_connect_failed reason=\"%s\"", why);
	req_fail_all(m, "mediator connection lost");
	if (m->started)
		schedule_retry(m);
}

/* Resolves the configured host (IPv4). Blocking getaddrinfo: see the report/gaps. */
static int
med_resolve(struct medclient *m)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", m->d->cfg.server_port);
	if ((e = getaddrinfo(m->d->cfg.server_host, port, &hints, &res)) != 0 || !res) {
		log_warnx("event=mediator_resolve_failed host=%s error=\"%s\"",
		    m->d->cfg.server_host, gai_strerror(e));
		return -1;
	}
	m->server.addr = ntohl(((const struct sockaddr_in *)(const void *)res->ai_addr)
	    ->sin_addr.s_addr);
	m->server.port = m->d->cfg.server_port;
	m->have_server = 1;
	freeaddrinfo(res);
	return 0;
}

static void
med_connect(struct medclient *m)
{
	struct sockaddr_in sin;
	char ip[16], why[160];
	int fd;

	if (m->ch || !m->started)
		return;
	if (med_resolve(m) < 0) {
		schedule_retry(m);
		return;
	}
	ip_str(m->server.addr, ip);
	log_info("event=mediator_connecting server=%s:%u", ip, m->server.port);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		log_warn("event=mediator_socket_failed");
		schedule_retry(m);
		return;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(m->server.addr);
	sin.sin_port = htons(m->server.port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		close(fd);
		med_disconnected(m, why);
		return;
	}
	m->ch = ctrlchan_new(m->loop, fd, 1, &m->d->key, m->d->cfg.server_pub, &med_cbs, m);
	if (!m->ch) {
		close(fd);
		med_disconnected(m, "cannot create control channel");
		return;
	}
	m->state = MED_CONNECTING;
}

/* ---- public ---- */

struct medclient *
medclient_new(struct daemon *d)
{
	struct medclient *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->d = d;
	m->loop = d->loop;
	m->backoff = BACKOFF_MIN;
	m->next_req_id = randombytes_random();
	ev_timer_init(&m->retry_timer, retry_cb, 0., 0.);
	ev_timer_init(&m->ping_timer, ping_cb, 0., PING_INTERVAL);
	ev_timer_init(&m->idle_timer, idle_cb, 0., IDLE_TIMEOUT);
	ev_timer_init(&m->probe_timer, probe_cb, 0., 0.);
	ev_timer_init(&m->refresh_timer, refresh_cb, 0., 0.);
	ev_timer_init(&m->req_timer, req_timer_cb, 0., 0.);
	m->retry_timer.data = m->ping_timer.data = m->idle_timer.data = m;
	m->probe_timer.data = m->refresh_timer.data = m->req_timer.data = m;
	return m;
}

/*
 * Pending request callbacks are dropped without being called: at shutdown their owners
 * (control connections) may already be gone.
 */
void
medclient_free(struct medclient *m)
{
	struct pending *p;

	if (!m)
		return;
	m->started = 0;
	if (m->ch)
		ctrlchan_free(m->ch);
	ev_timer_stop(m->loop, &m->retry_timer);
	ev_timer_stop(m->loop, &m->ping_timer);
	ev_timer_stop(m->loop, &m->idle_timer);
	ev_timer_stop(m->loop, &m->probe_timer);
	ev_timer_stop(m->loop, &m->refresh_timer);
	ev_timer_stop(m->loop, &m->req_timer);
	while ((p = m->pending)) {
		m->pending = p->next;
		free(p);
	}
	view_free(m);
	sodium_memzero(m->udp_token, sizeof(m->udp_token));
	free(m);
}

void
medclient_start(struct medclient *m)
{
	if (m->started)
		return;
	m->started = 1;
	med_connect(m);
}

int
medclient_connected(const struct medclient *m)
{
	return m && m->state == MED_ONLINE;
}

void
medclient_udp_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	struct endpoint ep;
	char ip[16];

	/* Only the mediator may tell us where we are. */
	if (!m->have_server || from->addr != m->server.addr || from->port != m->server.port ||
	    probe_reply_decode(pkt, len, &ep) < 0) {
		m->dropped_msgs++;
		return;
	}
	if (!m->have_public || ep.addr != m->public_ep.addr || ep.port != m->public_ep.port) {
		ip_str(ep.addr, ip);
		log_info("event=medclient_public_endpoint endpoint=%s:%u", ip, ep.port);
	}
	m->public_ep = ep;
	m->have_public = 1;
}

int
medclient_public_endpoint(const struct medclient *m, struct endpoint *ep)
{
	if (!m->have_public)
		return 0;
	*ep = m->public_ep;
	return 1;
}

int
medclient_request(struct medclient *m, struct msg_request *req, medclient_result_cb cb,
    void *arg)
{
	struct pending *p;
	struct msg msg;
	uint8_t probe[CTRL_FRAME_MAX];

	if (!cb)
		return -1;
	req->req_id = m->next_req_id++;
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_REQUEST;
	msg.u.request = *req;
	/* A request that cannot be encoded is the caller's error, reported synchronously. */
	if (msg_encode(&msg, probe, sizeof(probe)) < 0) {
		sodium_memzero(&msg, sizeof(msg));
		sodium_memzero(probe, sizeof(probe));
		return -1;
	}
	sodium_memzero(probe, sizeof(probe));
	if (!(p = calloc(1, sizeof(*p)))) {
		sodium_memzero(&msg, sizeof(msg));
		return -1;
	}
	p->req_id = req->req_id;
	p->cb = cb;
	p->arg = arg;
	if (m->state != MED_ONLINE) {
		/* Delivered from the loop, never from inside this call. */
		p->deadline = ev_now(m->loop);
		p->fail = "mediator not connected";
	} else {
		if (ctrlchan_send(m->ch, &msg) < 0) {
			sodium_memzero(&msg, sizeof(msg));
			free(p);
			return -1;
		}
		p->deadline = ev_now(m->loop) + REQUEST_TIMEOUT;
		p->fail = "timed out";
		log_debug("event=medclient_request req=%u op=%s network=\"%s\"", p->req_id,
		    req_op_name(req->op), req->network);
	}
	sodium_memzero(&msg, sizeof(msg));
	req_insert(m, p);
	return 0;
}

const struct med_network *
medclient_networks(const struct medclient *m)
{
	return m->nets;
}

static int
hex_prefix_match(const char *hex, size_t n, const uint8_t key[KEY_LEN])
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t nib = (i & 1) ? key[i / 2] & 15 : key[i / 2] >> 4;

		if (tolower((unsigned char)hex[i]) != hx[nib])
			return 0;
	}
	return 1;
}

/*
 * Every member of every network is a candidate if the name matches it as a nick, as its
 * dotted address, or as a prefix of its node id; the answer must be one distinct key.
 */
int
medclient_resolve(const struct medclient *m, const char *name, uint8_t key[KEY_LEN],
    uint32_t *addr)
{
	const struct med_network *n;
	const struct med_member *mem, *found = NULL;
	struct in_addr ia;
	size_t len = strlen(name), i;
	int is_addr, is_hex = len >= 8 && len <= 2 * KEY_LEN;
	uint32_t a = 0;

	if (len == 0)
		return -1;
	for (i = 0; i < len && is_hex; i++)
		if (!isxdigit((unsigned char)name[i]))
			is_hex = 0;
	is_addr = inet_pton(AF_INET, name, &ia) == 1;
	if (is_addr)
		a = ntohl(ia.s_addr);
	for (n = m->nets; n; n = n->hh.next) {
		for (mem = n->members; mem; mem = mem->hh.next) {
			if (strcasecmp(mem->nick, name) != 0 &&
			    !(is_addr && mem->address == a) &&
			    !(is_hex && hex_prefix_match(name, len, mem->key)))
				continue;
			if (found && memcmp(found->key, mem->key, KEY_LEN) != 0)
				return -1;      /* ambiguous */
			found = mem;
		}
	}
	if (!found)
		return -1;
	memcpy(key, found->key, KEY_LEN);
	*addr = found->address;
	return 0;
}
