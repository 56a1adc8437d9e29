/*
 * mediator: nodes, networks, membership and presence. Decides who may do what, writes the
 * store, and pushes deltas to the connected nodes a change concerns.
 * Must not touch: sockets, ctrlchan, the event loop (all I/O goes through struct medsrv_io).
 *
 * Visibility (who learns what):
 *   - a full member of N gets MSG_NETWORK(N) and MSG_MEMBER for every full member of N
 *     (itself included); the owner of N also gets pending members (MEMF_PENDING);
 *   - a pending member of N gets only MSG_NETWORK(N) with MEMF_PENDING in my_flags;
 *   - a change to member X of N goes to every connected full member of N (X included) when X
 *     is a full member, and only to N's owner while X is pending.
 * A member is MEMF_ONLINE in N when it is connected and its online switch in N is on; only
 * then does its MSG_MEMBER carry endpoints (observed UDP endpoint first, then HELLO's local
 * ones), so peers never learn where an offline or pending member is.
 *
 * Order of replies: state messages (MSG_NETWORK / MSG_MEMBER / ...) caused by a request go out
 * before its MSG_RESULT, so a client that sees RES_OK already has the new view.
 *
 * Passwords: Argon2id (~0.1 s per CREATE, JOIN and SET_PASS with the interactive limits) runs
 * off the event loop when the transport gives io.pw_submit (server/pwpool.c): the request is
 * parked under a ticket and handled again, from the start, when the result arrives
 * (medsrv_pw_done), so whatever changed meanwhile is checked anew. Every password operation
 * counts against its node key and source address (joinlimit.c), each node has at most
 * PW_INFLIGHT_PER_NODE running, and wrong join passwords count per key, source address and
 * network, all checked before any hashing, so no client can buy the server's CPU.
 */
#include "config.h"
#include "server/mediator.h"
#include "server/chat.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "base/ip4.h"
#include "base/keyid.h"
#include "base/log.h"
#include "base/logbudget.h"
#include "base/tokenbucket.h"
#include "server/joinlimit.h"
#include "server/natprobe.h"
#include "server/punch.h"
#include "server/punchplan.h"
#include "server/remoteside.h"
#include "server/pwjob.h"
#include "server/relaygrant.h"
#include "server/relaypool.h"

struct msess {                           /* owned by struct medsrv */
	void *conn;                     /* the transport's handle, opaque here */
	uint8_t key[KEY_LEN];           /* authenticated static key */
	int registered;                 /* HELLO done: in by_key and by_token */
	uint32_t address;
	char nick[NICK_MAX_LEN + 1];
	uint8_t token[UDP_TOKEN_LEN];
	int has_observed;
	struct endpoint observed;       /* from the latest UDP_PROBE */
	uint16_t udp_port;
	uint8_t n_local;
	struct endpoint local[MAX_ENDPOINTS];
	uint8_t n_mapped;               /* CANDIDATES: its gateway's port mappings (3.4) */
	struct endpoint mapped[CAND_MAX_MAPPED];
	int cand_replanned;             /* its first mapping skipped the pairs' 10 s limit */
	struct endpoint tcp_local;      /* our end of its TCP connection; addr 0: unknown */
	struct endpoint tcp_remote;     /* its end, as we see it; addr 0: unknown */
	struct natprobe *np;            /* NAT classification, from HELLO on; may be NULL */
	int has_punch_info;             /* punch_info: the NAT_INFO its pairs were last planned on */
	struct msg_nat_info punch_info;
	uint32_t max_port_addr;         /* max_port: the highest source port seen from this */
	uint16_t max_port;              /* address (sequential port prediction) */
	struct tokenbucket req_budget;  /* its MSG_PUNCH_REQUESTs (base/proto.h) */
	uint32_t remote_addr;           /* source address of its TCP connection; 0: unknown */
	uint64_t serial;                /* tells a session from a later one with the same key */
	unsigned pw_inflight;           /* password jobs running for it */
	int is_relay;                   /* a relay's control connection (RELAY_HELLO accepted) */
	int relay_refused;              /* its RELAY_HELLO was refused: everything is ignored */
	struct msess *prev, *next;      /* every session, registered or not */
	UT_hash_handle hh_key;
	UT_hash_handle hh_token;
};

struct medsrv {                          /* owned by the server context (or a test) */
	struct store *st;               /* borrowed */
	struct medsrv_config cfg;
	struct medsrv_io io;
	struct joinlimit *rl;
	struct msess *all;              /* list head */
	struct msess *by_key;           /* registered sessions by key */
	struct msess *by_token;         /* registered sessions by UDP token */
	struct punch *punch;            /* which pairs may be planned when */
	struct chat *chat;              /* messages, mailboxes (server/chat.h) */
	struct pw_parked *parked;       /* requests waiting for a password job, by ticket */
	unsigned n_parked;
	uint64_t next_ticket, next_serial;
	struct logbudget punch_log;     /* punch_planned lines at info level */
	struct logbudget request_log;   /* punch_request lines at info level */
	double full_logged_at;          /* last address_range_exhausted line */
	double punch_full_logged_at;    /* last punch_dropped line */
	struct relaypool *pool;         /* relays (PROTOCOL.md 8) */
	struct relaygrant *grants;      /* which relay each pair uses */
	double renewed_at;              /* last relaygrant_renew */
	struct medsrv_stats stats;
	struct medsrv_peers peers;      /* the other instances (cluster.c); zero: none */
	struct remoteside *rsides;      /* their nodes' punch sides (with peers.side only) */
};

enum {
	PW_INFLIGHT_PER_NODE = 2,       /* password jobs one node may have running */
	PW_PARKED_MAX = 256,            /* requests waiting for a password job, in all */
	PUNCH_LOG_PER_S = 20,           /* punch_planned, punch_request lines at info a second */
};

/* A request waiting for its password job (owned by struct medsrv). */
struct pw_parked {
	uint64_t ticket;
	uint8_t key[KEY_LEN];           /* whose: the session may be gone when the result comes */
	uint64_t serial;
	struct msg_request req;         /* a copy, password included (wiped when done) */
	UT_hash_handle hh;
};

/* ---- small helpers ---- */

/* Tells the other instances (medsrv_set_peers); nothing when there are none. */
static void
peer_event(struct medsrv *m, char kind, const char *network, const uint8_t *key, uint8_t val)
{
	if (m->peers.event)
		m->peers.event(m->peers.arg, kind, network, key, val);
}

/* Is key connected to another instance? eps/n may be NULL. */
static int
peer_remote(struct medsrv *m, const uint8_t key[KEY_LEN], struct endpoint *eps, uint8_t *n)
{
	struct endpoint tmp[MAX_ENDPOINTS];
	uint8_t tn;

	if (m->peers.remote == NULL)
		return 0;
	return m->peers.remote(m->peers.arg, key, eps ? eps : tmp, n ? n : &tn);
}

static struct msess *
find_session(struct medsrv *m, const uint8_t key[KEY_LEN])
{
	struct msess *s;

	HASH_FIND(hh_key, m->by_key, key, KEY_LEN, s);
	return s;
}

static void
send_msg(struct medsrv *m, struct msess *s, const struct msg *msg)
{
	m->io.send(m->io.arg, s->conn, msg);
}

/* Printable ASCII, no leading or trailing space, 1..max bytes: names and nicks end up in
 * terminals and in the daemon's JSON, so control bytes and invalid UTF-8 stay out. */
static int
valid_label(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > max || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static void
reply(struct medsrv *m, struct msess *s, uint32_t req_id, uint8_t status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
reply(struct medsrv *m, struct msess *s, uint32_t req_id, uint8_t status, const char *fmt, ...)
{
	struct msg r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.type = MSG_RESULT;
	r.u.result.req_id = req_id;
	r.u.result.status = status;
	va_start(ap, fmt);
	vsnprintf(r.u.result.text, sizeof(r.u.result.text), fmt, ap);
	va_end(ap);
	send_msg(m, s, &r);
}

/* connected: r's node has a session here or on another instance */
static uint8_t
flags_of(const struct store_network *n, const struct store_member *r, int connected)
{
	uint8_t f = 0;

	if (r->online)
		f |= MEMF_ACTIVE;
	if (r->online && connected)
		f |= MEMF_ONLINE;
	if (r->pending)
		f |= MEMF_PENDING;
	if (memcmp(r->key, n->owner, KEY_LEN) == 0)
		f |= MEMF_OWNER;
	return f;
}

static uint8_t
member_flags(struct medsrv *m, const struct store_network *n, const struct store_member *r)
{
	return flags_of(n, r, r->online &&
	    (find_session(m, r->key) != NULL || peer_remote(m, r->key, NULL, NULL)));
}

/* Where s can be reached, as MEMBER carries it: the observed endpoint first, then the port
 * mappings its gateway made (CANDIDATES), then its local endpoints (HELLO's, or the LOCALS
 * that replaced them; port 0 means
 * udp_port); an endpoint already listed is left out. IPv4 comes first, but up to
 * ENDPOINTS_V6_MAX slots are kept for the global IPv6 ones, which need no punching. */
static uint8_t
session_endpoints(const struct msess *s, struct endpoint eps[MAX_ENDPOINTS])
{
	struct endpoint all[1 + CAND_MAX_MAPPED + MAX_ENDPOINTS];
	uint8_t n = 0;
	unsigned i, j, k = 0, n_v6 = 0, pass, cap;

	if (s->has_observed)
		all[k++] = s->observed;
	for (i = 0; i < s->n_mapped && i < CAND_MAX_MAPPED; i++)
		all[k++] = s->mapped[i];
	for (i = 0; i < s->n_local && i < MAX_ENDPOINTS; i++) {
		all[k] = s->local[i];
		if (all[k].port == 0)
			all[k].port = s->udp_port;
		if (ep_is_v6(&all[k]) && ep_is_set(&all[k]) && n_v6 < ENDPOINTS_V6_MAX)
			n_v6++;
		k++;
	}
	for (pass = 0; pass < 2; pass++) {
		cap = pass == 0 ? MAX_ENDPOINTS - n_v6 : MAX_ENDPOINTS;
		for (i = 0; i < k && n < cap; i++) {
			if (!ep_is_set(&all[i]) || ep_is_v6(&all[i]) != (pass == 1))
				continue;
			for (j = 0; j < n && !ep_same_addr(&eps[j], &all[i]); j++)
				;
			if (j == n)
				eps[n++] = all[i];
		}
	}
	return n;
}

static void
build_member(struct medsrv *m, const struct store_network *n, const struct store_member *r,
    struct msg *out)
{
	struct msg_member *mm = &out->u.member;
	struct msess *s = NULL;
	int connected = 0;

	memset(out, 0, sizeof(*out));
	out->type = MSG_MEMBER;
	snprintf(mm->network, sizeof(mm->network), "%s", n->name);
	memcpy(mm->key, r->key, KEY_LEN);
	mm->address = r->address;
	snprintf(mm->nick, sizeof(mm->nick), "%s", r->nick);
	/* One lookup per member: a snapshot of a 1,000-member network makes 1,000 of them, for
	 * each member that comes back. A pending member's endpoints stay unsaid. */
	if (r->online && (s = find_session(m, r->key)) == NULL)
		connected = peer_remote(m, r->key, r->pending ? NULL : mm->endpoints,
		    r->pending ? NULL : &mm->n_endpoints);
	mm->flags = flags_of(n, r, s != NULL || connected);
	if (s != NULL && !r->pending)
		mm->n_endpoints = session_endpoints(s, mm->endpoints);
}

static void
send_network(struct medsrv *m, struct msess *s, const struct store_network *n,
    const struct store_member *me)
{
	struct msg out;

	memset(&out, 0, sizeof(out));
	out.type = MSG_NETWORK;
	snprintf(out.u.network.name, sizeof(out.u.network.name), "%s", n->name);
	out.u.network.flags = n->flags;
	memcpy(out.u.network.owner, n->owner, KEY_LEN);
	out.u.network.my_flags = member_flags(m, n, me);
	send_msg(m, s, &out);
}

static void
send_network_gone(struct medsrv *m, struct msess *s, const char *name, uint8_t reason)
{
	struct msg out;

	memset(&out, 0, sizeof(out));
	out.type = MSG_NETWORK_GONE;
	snprintf(out.u.network_gone.name, sizeof(out.u.network_gone.name), "%s", name);
	out.u.network_gone.reason = reason;
	send_msg(m, s, &out);
}

/* ---- pushing state ---- */

struct walk {                            /* on the stack of one push */
	struct medsrv *m;
	const struct store_network *n;
	struct msess *to;               /* snapshot: the receiver */
	const struct msg *msg;          /* fan-out: what to send */
	const struct msess *except;     /* fan-out: skip this one */
	int to_owner_only;
};

static int
snapshot_member_cb(void *arg, const struct store_member *r)
{
	struct walk *w = arg;
	struct msg out;

	if (r->pending && memcmp(w->to->key, w->n->owner, KEY_LEN) != 0)
		return 0;
	build_member(w->m, w->n, r, &out);
	send_msg(w->m, w->to, &out);
	return 0;
}

/* Everything s may see of n: MSG_NETWORK, then its members unless s is pending. */
static void
send_snapshot(struct medsrv *m, struct msess *s, const struct store_network *n,
    const struct store_member *me)
{
	struct walk w = { .m = m, .n = n, .to = s };

	send_network(m, s, n, me);
	if (!me->pending)
		store_members_each(m->st, n->id, snapshot_member_cb, &w);
}

static int
fanout_cb(void *arg, const struct store_member *r)
{
	struct walk *w = arg;
	struct msess *s;

	if (r->pending)
		return 0;
	if (w->to_owner_only && memcmp(r->key, w->n->owner, KEY_LEN) != 0)
		return 0;
	if ((s = find_session(w->m, r->key)) == NULL || s == w->except)
		return 0;
	send_msg(w->m, s, w->msg);
	return 0;
}

/* Sends msg to the audience of a change to a member: all connected full members of n, or only
 * the owner when the member concerned is pending. */
static void
fanout(struct medsrv *m, const struct store_network *n, const struct msg *msg, int pending,
    const struct msess *except)
{
	struct walk w = { .m = m, .n = n, .msg = msg, .except = except, .to_owner_only = pending };

	if (m->by_key == NULL)
		return;                 /* nobody here to tell */
	store_members_each(m->st, n->id, fanout_cb, &w);
}

/* Pushes member key's current state in n to its audience here (notify_member: everywhere). */
static void
member_push(struct medsrv *m, const struct store_network *n, const uint8_t key[KEY_LEN],
    const struct msess *except)
{
	struct store_member r;
	struct msg out;

	if (store_member_get(m->st, n->id, key, &r) != 0)
		return;
	build_member(m, n, &r, &out);
	fanout(m, n, &out, r.pending, except);
}

static void
gone_push(struct medsrv *m, const struct store_network *n, const uint8_t key[KEY_LEN],
    int was_pending)
{
	struct msg out;

	memset(&out, 0, sizeof(out));
	out.type = MSG_MEMBER_GONE;
	snprintf(out.u.member_gone.network, sizeof(out.u.member_gone.network), "%s", n->name);
	memcpy(out.u.member_gone.key, key, KEY_LEN);
	fanout(m, n, &out, was_pending, NULL);
}

static int
resend_network_cb(void *arg, const struct store_member *r)
{
	struct walk *w = arg;
	struct msess *s;

	if ((s = find_session(w->m, r->key)) != NULL)
		send_network(w->m, s, w->n, r);
	return 0;
}

/* Settings changed: every connected member (pending too) gets the new MSG_NETWORK. */
static void
network_push(struct medsrv *m, const struct store_network *n)
{
	struct walk w = { .m = m, .n = n };

	store_members_each(m->st, n->id, resend_network_cb, &w);
}

/* Pushes key's state in every network it belongs to (presence, nick, endpoints changed). */
struct node_walk {                       /* on the stack of one push */
	struct medsrv *m;
	const uint8_t *key;
	struct msess *snapshot_to;      /* also send each network's snapshot here first */
	const struct msess *except;
};

static int
node_networks_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct node_walk *w = arg;

	if (w->snapshot_to)
		send_snapshot(w->m, w->snapshot_to, n, me);
	member_push(w->m, n, w->key, w->except);
	return 0;
}

static void
node_push(struct medsrv *m, const uint8_t key[KEY_LEN], struct msess *snapshot_to,
    const struct msess *except)
{
	struct node_walk w = { .m = m, .key = key, .snapshot_to = snapshot_to, .except = except };

	/* An instance that just started hears the other instances' nodes go (cluster.c's `d`
	 * events) before it has sessions: 100,000 walks of their networks for nobody took it
	 * 10 s in a restart of a whole cluster, its listen queue full meanwhile. */
	if (m->by_key == NULL && snapshot_to == NULL)
		return;
	store_node_networks_each(m->st, key, node_networks_cb, &w);
}

/* The pushes above, here and on the other instances (cluster.c); val: MEDPEER_MEMBER_*. */
static void
notify_member(struct medsrv *m, const struct store_network *n, const uint8_t key[KEY_LEN],
    const struct msess *except, uint8_t val)
{
	member_push(m, n, key, except);
	peer_event(m, MEDPEER_MEMBER, n->name, key, val);
}

static void
notify_gone(struct medsrv *m, const struct store_network *n, const uint8_t key[KEY_LEN],
    int was_pending)
{
	gone_push(m, n, key, was_pending);
	peer_event(m, MEDPEER_GONE, n->name, key, was_pending ? 1 : 0);
}

static void
resend_network(struct medsrv *m, const struct store_network *n)
{
	network_push(m, n);
	peer_event(m, MEDPEER_NETWORK, n->name, NULL, 0);
}

/* flags: MEDPEER_NODE_* (NICK: it changed, the other instances read it again; NEW: just
 * registered) */
static void
notify_everywhere(struct medsrv *m, const uint8_t key[KEY_LEN], struct msess *snapshot_to,
    const struct msess *except, uint8_t flags)
{
	peer_event(m, MEDPEER_NODE, NULL, key, flags);
	node_push(m, key, snapshot_to, except);
}

/* ---- sessions ---- */

/* The chat engine's way out: a registered session's connection, by key. */
static int
chat_send(void *arg, const uint8_t key[KEY_LEN], const struct msg *msg)
{
	struct medsrv *m = arg;
	struct msess *s = find_session(m, key);

	if (s == NULL)
		return -1;
	send_msg(m, s, msg);
	return 0;
}

static void
chat_stored(void *arg, const uint8_t key[KEY_LEN])
{
	peer_event(arg, MEDPEER_CHAT, NULL, key, 0);
}

static double
chat_now(void *arg)
{
	struct medsrv *m = arg;

	return m->io.now(m->io.arg);
}
static void relay_send_grant(void *arg, const uint8_t to[KEY_LEN],
    const struct msg_relay_grant *g);

struct medsrv *
medsrv_new(struct store *st, const struct medsrv_config *cfg, const struct medsrv_io *io)
{
	struct medsrv *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	struct relaygrant_ops gops = { relay_send_grant, m };

	if ((m->rl = joinlimit_new()) == NULL || (m->punch = punch_new()) == NULL ||
	    (m->pool = relaypool_new()) == NULL ||
	    (m->grants = relaygrant_new(m->pool, &gops, cfg->relay_pairs)) == NULL) {
		joinlimit_free(m->rl);
		punch_free(m->punch);
		relaypool_free(m->pool);
		free(m);
		return NULL;
	}
	m->st = st;
	m->cfg = *cfg;
	m->io = *io;
	if (cfg->register_budget)
		joinlimit_set_budget(m->rl, JL_REGISTER_SOURCE, cfg->register_budget);
	m->chat = chat_new(&(struct chat_env){ .st = st, .send = chat_send, .now = chat_now,
	    .arg = m, .keep = cfg->chat_keep, .stored = chat_stored });
	if (m->chat == NULL) {
		relaygrant_free(m->grants);
		relaypool_free(m->pool);
		joinlimit_free(m->rl);
		punch_free(m->punch);
		free(m);
		return NULL;
	}
	return m;
}

static void
session_unlink(struct medsrv *m, struct msess *s)
{
	if (s->registered) {
		HASH_DELETE(hh_key, m->by_key, s);
		HASH_DELETE(hh_token, m->by_token, s);
		s->registered = 0;
		/* Its next connection is a new start: new endpoints, new classification. */
		punch_forget(m->punch, s->key);
		chat_offline(m->chat, s->key);
		/* Its peers stop using relays towards it (they hear it went offline too). */
		if (m->grants)
			relaygrant_node_gone(m->grants, s->key);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		m->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	m->stats.sessions--;
	natprobe_free(s->np);
	sodium_memzero(s->token, sizeof(s->token));
	free(s);
}

void
medsrv_free(struct medsrv *m)
{
	struct pw_parked *p, *tmp;

	if (m == NULL)
		return;
	/* Grants first: nothing is revoked towards sessions being freed. */
	relaygrant_free(m->grants);
	m->grants = NULL;
	while (m->all)
		session_unlink(m, m->all);
	relaypool_free(m->pool);
	HASH_ITER(hh, m->parked, p, tmp) {
		HASH_DEL(m->parked, p);
		sodium_memzero(&p->req, sizeof(p->req));
		free(p);
	}
	joinlimit_free(m->rl);
	punch_free(m->punch);
	remoteside_free(m->rsides);
	chat_free(m->chat);
	free(m);
}

struct msess *
medsrv_session_open(struct medsrv *m, const uint8_t key[KEY_LEN], void *conn)
{
	struct msess *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->conn = conn;
	memcpy(s->key, key, KEY_LEN);
	s->serial = ++m->next_serial;
	s->next = m->all;
	if (m->all)
		m->all->prev = s;
	m->all = s;
	m->stats.sessions++;
	return s;
}

static void relay_session_gone(struct medsrv *m, struct msess *s, const char *why);

void
medsrv_session_close(struct medsrv *m, struct msess *s)
{
	uint8_t key[KEY_LEN];
	int was_registered = s->registered;
	char id[KEY_SHORT_LEN];

	memcpy(key, s->key, KEY_LEN);
	if (s->is_relay)
		relay_session_gone(m, s, "disconnected");
	session_unlink(m, s);
	if (!was_registered)
		return;
	key_short(key, id);
	log_info("event=node_disconnected node=%s", id);
	/* Now that it is out of by_key, each network's MSG_MEMBER shows it offline. */
	notify_everywhere(m, key, NULL, NULL, 0);
}

/* Drops a session from inside the mediator and tells the transport to close it. */
static void
session_kick(struct medsrv *m, struct msess *s, const char *why)
{
	void *conn = s->conn;
	char id[KEY_SHORT_LEN];

	key_short(s->key, id);
	log_info("event=session_dropped node=%s reason=%s", id, why);
	if (s->is_relay)
		relay_session_gone(m, s, why);
	session_unlink(m, s);
	m->io.kick(m->io.arg, conn);
}

/* ---- NAT classification (natprobe.c does the work) ---- */

static void
nat_io_send(void *arg, void *conn, const struct msg *msg)
{
	struct medsrv *m = arg;

	m->io.send(m->io.arg, conn, msg);
}

static void
nat_io_udp_send(void *arg, int sock, const struct endpoint *to, const uint8_t *buf,
    size_t len)
{
	struct medsrv *m = arg;

	m->io.udp_send(m->io.arg, sock, to, buf, len);
}

static void
nat_io_timer(void *arg, void *conn, double after)
{
	struct medsrv *m = arg;

	m->io.timer(m->io.arg, conn, after);
}

static void
nat_start(struct medsrv *m, struct msess *s)
{
	struct natprobe_io nio = { nat_io_send, nat_io_udp_send, nat_io_timer, m };
	char id[KEY_SHORT_LEN];

	if (m->cfg.n_nat_socks == 0 || m->io.udp_send == NULL || m->io.timer == NULL)
		return;
	if (s->np == NULL) {
		key_short(s->key, id);
		s->np = natprobe_new(&nio, s->conn, id, m->cfg.nat_socks, m->cfg.n_nat_socks,
		    &s->tcp_local, s->udp_port);
		if (s->np == NULL)
			return;         /* out of memory: the node just goes unclassified */
	}
	natprobe_start(s->np, m->io.now(m->io.arg));
}

/* ---- hole punching (PROTOCOL.md 3.2: punchplan.c chooses, punch.c paces) ---- */

static int
nat_known(const struct msess *s, struct msg_nat_info *info)
{
	return s->np != NULL && natprobe_info(s->np, info);
}

static void
punch_side_of(const struct msess *s, struct punch_side *out)
{
	double d;

	memset(out, 0, sizeof(*out));
	memcpy(out->key, s->key, KEY_LEN);
	out->has_info = nat_known(s, &out->info);
	if (s->has_observed)
		out->observed = s->observed;
	else if (out->has_info)
		out->observed = out->info.public_ep;
	out->n_cand = session_endpoints(s, out->cand);
	out->n_mapped = s->n_mapped;
	memcpy(out->mapped, s->mapped, sizeof(out->mapped));
	if (s->max_port_addr == out->observed.addr)
		out->max_port = s->max_port;
	d = s->np ? natprobe_delay(s->np) * 1000.0 : 0;
	out->delay_ms = (uint16_t)(d <= 0 ? 0 : d >= PUNCH_START_MAX_MS ? PUNCH_START_MAX_MS : d);
	out->tcp = s->tcp_remote;
}

/* The public address a plan must be serialised on: a sequential side's, unless the pair is
 * behind one address (lan: no new mappings on the NAT). */
static uint32_t
seq_addr(const struct punch_side *me, const struct punch_side *peer)
{
	if (punchplan_class(me) != PUNCH_CLASS_SEQ || me->observed.addr == peer->observed.addr)
		return 0;
	return me->observed.addr;
}

static void punch_arm(struct medsrv *m);

/* key's punch side: its session's here, or the one its instance last sent (remoteside.c,
 * its delay grown by the hop between the instances). 0 when neither is known. */
static int
side_of_key(struct medsrv *m, const uint8_t key[KEY_LEN], struct punch_side *out)
{
	struct msess *s = find_session(m, key);

	if (s != NULL) {
		punch_side_of(s, out);
		return 1;
	}
	return m->rsides != NULL && remoteside_get(m->rsides, key, out);
}

/* One half of a plan to its node: over its session here, or through the instance holding it
 * (PROTOCOL.md 4.8). */
static void
punch_deliver(struct medsrv *m, const uint8_t key[KEY_LEN], struct msg *msg)
{
	struct msess *s = find_session(m, key);

	if (s != NULL)
		send_msg(m, s, msg);
	else if (m->peers.forward != NULL)
		m->peers.forward(m->peers.arg, key, msg);
}

static void
punch_send(struct medsrv *m, const struct punch_side *sa, const struct punch_side *sb)
{
	struct msg ma, mb;
	char ida[KEY_SHORT_LEN], idb[KEY_SHORT_LEN];

	memset(&ma, 0, sizeof(ma));
	memset(&mb, 0, sizeof(mb));
	ma.type = mb.type = MSG_PUNCH;
	punchplan(sa, sb, &ma.u.punch, &mb.u.punch);
	punch_deliver(m, sa->key, &ma);
	punch_deliver(m, sb->key, &mb);
	m->stats.punch_plans++;
	key_short(sa->key, ida);
	key_short(sb->key, idb);
	(logbudget_take(&m->punch_log, m->io.now(m->io.arg), PUNCH_LOG_PER_S,
	    "punch_planned") ? log_info : log_debug)("event=punch_planned a=%s b=%s strategy=%s "
	    "a_nat=%s/%s b_nat=%s/%s targets_a=%u targets_b=%u start_a_ms=%u start_b_ms=%u", ida, idb,
	    punch_strategy_name(ma.u.punch.strategy), nat_mapping_name(ma.u.punch.my_mapping),
	    nat_ports_name(ma.u.punch.my_ports), nat_mapping_name(mb.u.punch.my_mapping),
	    nat_ports_name(mb.u.punch.my_ports), ma.u.punch.n_targets, mb.u.punch.n_targets,
	    ma.u.punch.start_ms, mb.u.punch.start_ms);
	/* A birthday attempt may miss and nobody tells us: try again later, a bounded number
	 * of times (punch.c). Without a timer nothing would take the retry out again. */
	if (ma.u.punch.strategy == PUNCH_BIRTHDAY && m->io.punch_timer != NULL &&
	    punch_retry_later(m->punch, sa->key, sb->key, m->io.now(m->io.arg)))
		punch_arm(m);
}

static void
punch_arm(struct medsrv *m)
{
	double due, now;

	if (m->io.punch_timer == NULL)
		return;
	due = punch_due(m->punch);
	now = m->io.now(m->io.arg);
	m->io.punch_timer(m->io.arg, due < 0 ? -1.0 : due > now ? due - now : 0.0);
}

/* a and b may talk: plan them now, queue them, or defer the trigger to when the pair's window
 * opens (planned < 10 s ago). Returns what punch.c said, or -1 when a side has no NAT_INFO
 * (nothing to plan on yet: its NAT_INFO will plan the pair). */
static int
punch_sides(struct medsrv *m, const struct punch_side *sa, const struct punch_side *sb)
{
	uint32_t qa = 0, qb = 0;
	char ida[KEY_SHORT_LEN], idb[KEY_SHORT_LEN];
	enum punch_admit rc;

	if (!sa->has_info || !sb->has_info)
		return -1;
	/* Without a timer nothing would ever take a queued plan out again. */
	if (m->io.punch_timer != NULL) {
		qa = seq_addr(sa, sb);
		qb = seq_addr(sb, sa);
	}
	rc = punch_admit(m->punch, sa->key, sb->key, qa, qb, m->io.now(m->io.arg));
	switch (rc) {
	case PUNCH_GO:
		punch_send(m, sa, sb);
		break;
	case PUNCH_QUEUED:
		punch_arm(m);
		break;
	case PUNCH_DEFERRED:
		m->stats.punch_deferred++;
		punch_arm(m);
		break;
	case PUNCH_FULL:
		m->stats.punch_dropped++;
		/* One line per 10 s: a big network joining drops thousands of pairs at once. */
		if (m->punch_full_logged_at != 0 &&
		    m->io.now(m->io.arg) - m->punch_full_logged_at < 10)
			break;
		m->punch_full_logged_at = m->io.now(m->io.arg);
		key_short(sa->key, ida);
		key_short(sb->key, idb);
		log_warnx("event=punch_dropped a=%s b=%s reason=table_full dropped_total=%llu", ida,
		    idb, (unsigned long long)m->stats.punch_dropped);
		break;
	}
	return (int)rc;
}

static int
punch_pair(struct medsrv *m, struct msess *a, struct msess *b)
{
	struct punch_side sa, sb;

	punch_side_of(a, &sa);
	punch_side_of(b, &sb);
	return punch_sides(m, &sa, &sb);
}

static void relay_introduce(struct medsrv *m, struct msess *a, struct msess *b, int asked);
static void relay_introduce_sides(struct medsrv *m, const struct punch_side *sa,
    const struct punch_side *sb, int asked);

/* A side's `to` when nobody asked: all zeros, no node's key. */
static const uint8_t side_to_everyone[KEY_LEN];

/*
 * A pair split over two instances (PROTOCOL.md 4.8) is planned by the instance holding its
 * lower key, so it is admitted and paced once, from the side the other instance sent. A node's
 * side goes to every instance once per trigger, not once per pair: in a network of 1,000 that
 * is one NOTIFY instead of 1,000. `to`: a node whose side is wanted back (a PUNCH_REQUEST
 * with none kept here), or NULL. 0, or -1 when s has no NAT_INFO yet (its NAT_INFO will
 * start it) or there are no other instances.
 */
static int
punch_broadcast(struct medsrv *m, struct msess *s, const uint8_t *to)
{
	struct punch_side side;
	char id[KEY_SHORT_LEN];

	if (m->peers.side == NULL || m->rsides == NULL)
		return -1;
	punch_side_of(s, &side);
	if (!side.has_info)
		return -1;
	m->peers.side(m->peers.arg, to ? to : side_to_everyone, &side);
	key_short(s->key, id);
	log_debug("event=punch_side_sent node=%s asking=%d", id, to != NULL);
	return 0;
}

/*
 * s (here) and peer (on another instance) may talk. The relay grant is made by the instance
 * of the lower key only (a pair must have one grant, one pair id); the punch is planned by the
 * instance that receives the other's side (medsrv_peer_side), so a trigger on either node
 * plans the pair whatever the order the two joined in. theirs: peer's side, or NULL when
 * only its key is known (the grant's reason is then "starting"). flags: SPLIT_PLAN to plan
 * the punch, SPLIT_ASKED when a daemon of the pair asked (PUNCH_REQUEST: the relay is needed).
 */
enum { SPLIT_PLAN = 1, SPLIT_ASKED = 2 };

static void
punch_split(struct medsrv *m, struct msess *s, const uint8_t peer[KEY_LEN],
    const struct punch_side *theirs, int flags)
{
	struct punch_side mine, them;
	int grant = memcmp(s->key, peer, KEY_LEN) < 0, plan = flags & SPLIT_PLAN;

	/* every remote member of a big network passes here on each trigger: no sides unless used */
	if (!grant && !plan)
		return;
	punch_side_of(s, &mine);
	if (theirs == NULL) {
		memset(&them, 0, sizeof(them));
		memcpy(them.key, peer, KEY_LEN);
		if (m->rsides != NULL)
			(void)remoteside_get(m->rsides, peer, &them);
		theirs = &them;
	}
	/* The relay first, as for a pair on one instance (PROTOCOL.md 8.4). */
	if (grant)
		relay_introduce_sides(m, &mine, theirs, flags & SPLIT_ASKED);
	if (plan)
		(void)punch_sides(m, &mine, theirs);
}


struct punch_walk {                      /* on the stack of one punch_node */
	struct medsrv *m;
	struct msess *s;                /* the node walked, here ... */
	const uint8_t *remote;          /* ... or the key of one on another instance */
	const struct punch_side *remote_side;   /* its side, as its instance sent it */
	const uint8_t *peer;            /* pair_can_talk: the key looked for */
	const uint8_t *asked;           /* the node here a remote PUNCH_REQUEST named (or NULL) */
	int remote_peers;               /* s has peers on other instances */
	int local_peers;                /* remote has peers here */
};

static int
punch_member_cb(void *arg, const struct store_member *r)
{
	struct punch_walk *w = arg;
	struct msess *t;

	if (r->pending || !r->online ||
	    memcmp(r->key, w->remote ? w->remote : w->s->key, KEY_LEN) == 0)
		return 0;
	t = find_session(w->m, r->key);
	if (w->remote) {
		if (t != NULL && t->registered) {
			w->local_peers = 1;
			punch_split(w->m, t, w->remote, w->remote_side, SPLIT_PLAN |
			    (w->asked && memcmp(w->asked, t->key, KEY_LEN) == 0 ? SPLIT_ASKED : 0));
		}
		return 0;
	}
	if (t == NULL) {
		if (peer_remote(w->m, r->key, NULL, NULL)) {
			w->remote_peers = 1;
			punch_split(w->m, w->s, r->key, NULL, 0);
		}
		return 0;
	}
	/* The relay first: the pair's first packet never waits for punching (PROTOCOL.md 8.4). */
	relay_introduce(w->m, w->s, t, 0);
	(void)punch_pair(w->m, w->s, t);
	return 0;
}

/* The same rule as the MEMBER deltas with endpoints: both full, switched on, connected. */
static int
punch_network_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct punch_walk *w = arg;

	if (me->pending || !me->online)
		return 0;
	store_members_each(w->m->st, n->id, punch_member_cb, w);
	return 0;
}

/* s became able to talk to more peers, or what its plans depend on changed: plan it with
 * every peer it may talk to (a peer in two shared networks is planned once: punch.c). */
static void
punch_node(struct medsrv *m, struct msess *s)
{
	struct punch_walk w = { .m = m, .s = s };

	/* Unclassified nodes are walked too: their pairs get relay grants at once, and their
	 * punches wait for the NAT_INFO (punch_pair). */
	if (!s->registered)
		return;
	store_node_networks_each(m->st, s->key, punch_network_cb, &w);
	if (w.remote_peers)
		(void)punch_broadcast(m, s, NULL);
}

static int
can_talk_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct punch_walk *w = arg;
	struct store_member r;

	if (me->pending || !me->online)
		return 0;
	return store_member_get(w->m->st, n->id, w->peer, &r) == 0 && !r.pending && r.online;
}

/* A queued plan's turn came, or another instance sent a side: is the pair one that may
 * talk? */
static int
pair_can_talk(struct medsrv *m, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	struct punch_walk w = { .m = m, .peer = b };

	return store_node_networks_each(m->st, a, can_talk_cb, &w) == 1;
}

void
medsrv_punch_timer(struct medsrv *m)
{
	uint8_t ka[KEY_LEN], kb[KEY_LEN];
	struct punch_side sa, sb;

	/* Deferred triggers whose window opened: admitted again, so they plan now or queue
	 * behind a sequential address like any trigger. Each call takes one pair off the
	 * deferred list, and a pair just planned cannot be deferred again in this loop (its
	 * window restarts at now): the loop ends. */
	while (punch_next_deferred(m->punch, m->io.now(m->io.arg), ka, kb)) {
		if (!side_of_key(m, ka, &sa) || !side_of_key(m, kb, &sb) ||
		    !pair_can_talk(m, ka, kb))
			continue;
		(void)punch_sides(m, &sa, &sb);
	}
	/* Each punch_next takes one entry off a bounded queue: the loop ends. */
	while (punch_next(m->punch, m->io.now(m->io.arg), ka, kb)) {
		if (!side_of_key(m, ka, &sa) || !side_of_key(m, kb, &sb) ||
		    !pair_can_talk(m, ka, kb))
			continue;
		if (sa.has_info && sb.has_info)
			punch_send(m, &sa, &sb);
	}
	punch_arm(m);
}

/* A PUNCH_REQUEST for a peer on another instance: s's side goes out, and the peer's
 * instance plans the pair. -3 (sent), or -1 (s not classified yet). */
static int
punch_request_split(struct medsrv *m, struct msess *s, const uint8_t peer[KEY_LEN])
{
	return punch_broadcast(m, s, peer) == 0 ? -3 : -1;
}

/*
 * MSG_PUNCH_REQUEST: s's daemon lost its path to peer (PROTOCOL.md 3.2). The pair is planned
 * again like any other trigger (both sides get a PUNCH; inside the pair's 10 s window it is
 * deferred), provided the two may talk and both are classified. Spending a token first: a
 * request costs a store lookup, and each plan makes the peer send handshakes towards s.
 */
static void
handle_punch_request(struct medsrv *m, struct msess *s, const struct msg_punch_request *r)
{
	char id[KEY_SHORT_LEN], pid[KEY_SHORT_LEN];
	const char *result;
	struct msess *t;
	int rc;

	m->stats.punch_requests++;
	key_short(s->key, id);
	key_short(r->peer, pid);
	if (!s->registered || memcmp(r->peer, s->key, KEY_LEN) == 0) {
		m->stats.msgs_ignored++;
		return;
	}
	if (!tokenbucket_take(&s->req_budget, m->io.now(m->io.arg), PUNCH_REQ_BURST,
	    PUNCH_REQ_RATE)) {
		m->stats.punch_requests_limited++;
		log_debug("event=punch_request node=%s peer=%s result=rate_limited", id, pid);
		return;
	}
	if (!pair_can_talk(m, s->key, r->peer)) {
		rc = -2;
	} else if ((t = find_session(m, r->peer)) != NULL) {
		/* Its path failed, so the pair needs a relay: one refused while the grant table
		 * was full gets one now (room is made if need be); a granted pair keeps its relay
		 * (nothing is sent). */
		relay_introduce(m, s, t, 1);
		rc = punch_pair(m, s, t);
	} else if (peer_remote(m, r->peer, NULL, NULL)) {
		/* The grant is ours to make when s has the lower key (4.8); the plan is the
		 * peer's instance's. */
		punch_split(m, s, r->peer, NULL, SPLIT_ASKED);
		rc = punch_request_split(m, s, r->peer);
	} else {
		rc = -2;
	}
	switch (rc) {
	case PUNCH_GO:
		result = "planned";
		break;
	case PUNCH_QUEUED:
		result = "queued";
		break;
	case PUNCH_DEFERRED:
		result = "deferred";
		break;
	case PUNCH_FULL:
		result = "table_full";
		break;
	case -1:
		result = "not_classified";
		break;
	case -3:
		result = "sent_to_instance";    /* the peer's instance may plan it (4.8) */
		break;
	default:
		result = "peer_unreachable";    /* offline, or no shared network */
		break;
	}
	/* Budgeted too: without relays, every daemon asks for each peer it cannot reach. */
	(logbudget_take(&m->request_log, m->io.now(m->io.arg), PUNCH_LOG_PER_S,
	    "punch_request") ? log_info : log_debug)("event=punch_request node=%s peer=%s "
	    "result=%s", id, pid, result);
}

/* Only what the strategy depends on: a lifetime or hairpin update re-sends NAT_INFO but does
 * not change a plan. */
static int
nat_info_punch_equal(const struct msg_nat_info *a, const struct msg_nat_info *b)
{
	return a->udp == b->udp && a->mapping == b->mapping && a->filtering == b->filtering &&
	    a->ports == b->ports && a->step == b->step && a->public_ep.addr == b->public_ep.addr &&
	    a->public_ep.port == b->public_ep.port;
}

/* After natprobe ran: a NAT_INFO that changes what a plan would be plans s's pairs again. */
static void
nat_maybe_changed(struct medsrv *m, struct msess *s)
{
	struct msg_nat_info info;

	if (!nat_known(s, &info) ||
	    (s->has_punch_info && nat_info_punch_equal(&info, &s->punch_info)))
		return;
	s->has_punch_info = 1;
	s->punch_info = info;
	punch_node(m, s);
}

/* The highest source port seen from the node's public address: where a sequential NAT's
 * allocation has got to. A new address is a new NAT: start over. */
static void
track_port(struct msess *s, const struct endpoint *from)
{
	if (s->max_port_addr != from->addr) {
		s->max_port_addr = from->addr;
		s->max_port = from->port;
	} else if (from->port > s->max_port) {
		s->max_port = from->port;
	}
}

void
medsrv_session_local(struct medsrv *m, struct msess *s, const struct endpoint *local)
{
	(void)m;
	s->tcp_local = *local;
}

void
medsrv_session_timer(struct medsrv *m, struct msess *s)
{
	if (s->np) {
		natprobe_timer(s->np, m->io.now(m->io.arg));
		nat_maybe_changed(m, s);
	}
}

static void
handle_nat_report(struct medsrv *m, struct msess *s, const struct msg_nat_report *r)
{
	if (s->np == NULL || natprobe_report(s->np, r, m->io.now(m->io.arg)) < 0)
		m->stats.nat_reports_stale++;
	else
		nat_maybe_changed(m, s);
}

/* 1 (and s kicked) when s's source address registered too many new nodes lately. */
static int
registration_limited(struct medsrv *m, struct msess *s)
{
	double now = m->io.now(m->io.arg), wait = 0;
	char src[IP4_STR_LEN];

	if (joinlimit_blocked(m->rl, JL_REGISTER_SOURCE, &s->remote_addr, sizeof(s->remote_addr),
	    now, &wait)) {
		m->stats.registrations_limited++;
		session_kick(m, s, "registration_rate_limited");
		return 1;
	}
	if (joinlimit_hit(m->rl, JL_REGISTER_SOURCE, &s->remote_addr, sizeof(s->remote_addr), now))
		log_warnx("event=registrations_limited source=%s budget=%u window_s=%.0f",
		    ip4_str(s->remote_addr, src), joinlimit_budget(m->rl, JL_REGISTER_SOURCE),
		    JL_WINDOW);
	return 0;
}

/* The operator's line, at most once a minute: no address left for new nodes. */
static void
range_full(struct medsrv *m)
{
	double now = m->io.now(m->io.arg);
	char net[IP4_STR_LEN];

	if (m->full_logged_at != 0 && now - m->full_logged_at < 60)
		return;
	m->full_logged_at = now;
	log_warnx("event=address_range_exhausted range=%s/%u hint=\"new nodes are refused; "
	    "unused registrations are reclaimed after --reclaim-days, or give a larger --range\"",
	    ip4_str(m->cfg.range, net), m->cfg.prefix_len);
}

static void relay_send_pool(struct medsrv *m, struct msess *s);

static void
handle_hello(struct medsrv *m, struct msess *s, const struct msg_hello *h)
{
	struct store_node node;
	struct msess *old, *dup;
	struct msg out;
	char id[KEY_SHORT_LEN], addr[IP4_STR_LEN];
	int created, rc, i, nick_changed = 0;

	if (s->registered || s->is_relay || s->relay_refused) {
		m->stats.msgs_ignored++;
		return;
	}
	if (h->version != SHOAL_PROTO_VERSION) {
		session_kick(m, s, "protocol_version");
		return;
	}
	/* New registrations are limited per source address: each is a row and an address. */
	created = 0;
	memset(&node, 0, sizeof(node));
	rc = store_node_get(m->st, s->key, &node);
	if (rc == STORE_NOT_FOUND && s->remote_addr && registration_limited(m, s))
		return;
	/* known nodes (every reconnect of a storm) read their row once */
	if (rc == STORE_NOT_FOUND)
		rc = store_node_get_or_create(m->st, s->key, m->cfg.range, m->cfg.prefix_len,
		    &node, &created);
	if (rc == STORE_FULL) {
		range_full(m);
		session_kick(m, s, "address_range_full");
		return;
	}
	if (rc != 0) {
		session_kick(m, s, "store_error");
		return;
	}
	/* A new row's last_seen is already now: one write less per new node. */
	if (!created)
		(void)store_node_seen(m->st, &node);
	if (h->nick[0] != '\0' && valid_label(h->nick, NICK_MAX_LEN) &&
	    strcmp(h->nick, node.nick) != 0 && store_node_set_nick(m->st, s->key, h->nick) == 0) {
		snprintf(node.nick, sizeof(node.nick), "%s", h->nick);
		nick_changed = 1;
	}

	/* A newer connection with the same key wins: the old one may be a dead TCP session the
	 * node has already given up on. The node stays connected throughout, so no offline flap. */
	if ((old = find_session(m, s->key)) != NULL)
		session_kick(m, old, "replaced");

	s->address = node.address;
	snprintf(s->nick, sizeof(s->nick), "%s", node.nick);
	s->udp_port = h->udp_port;
	s->n_local = h->n_local > MAX_ENDPOINTS ? MAX_ENDPOINTS : h->n_local;
	for (i = 0; i < s->n_local; i++)
		s->local[i] = h->local[i];
	do {
		randombytes_buf(s->token, sizeof(s->token));
		HASH_FIND(hh_token, m->by_token, s->token, UDP_TOKEN_LEN, dup);
	} while (dup != NULL);
	HASH_ADD(hh_key, m->by_key, key, KEY_LEN, s);
	HASH_ADD(hh_token, m->by_token, token, UDP_TOKEN_LEN, s);
	s->registered = 1;

	key_short(s->key, id);
	log_info("event=node_connected node=%s address=%s nick=\"%s\" new=%d", id,
	    ip4_str(node.address, addr), node.nick, created);

	memset(&out, 0, sizeof(out));
	out.type = MSG_WELCOME;
	out.u.welcome.address = node.address;
	out.u.welcome.prefix_len = m->cfg.prefix_len;
	memcpy(out.u.welcome.udp_token, s->token, UDP_TOKEN_LEN);
	snprintf(out.u.welcome.nick, sizeof(out.u.welcome.nick), "%s", node.nick);
	send_msg(m, s, &out);
	notify_everywhere(m, s->key, s, s, (nick_changed ? MEDPEER_NODE_NICK : 0) |
	    (created ? MEDPEER_NODE_NEW : 0));
	/* After the NETWORK/MEMBER burst: the daemon ends its post-WELCOME refresh at the first
	 * other message (PROTOCOL.md 4.4), so the plan must not come before the burst. */
	nat_start(m, s);
	/* what arrived for it while it was away (its row's read told whether anything did) */
	chat_online(m->chat, s->key, node.mail_empty);
	relay_send_pool(m, s);
	/* Relay grants for every peer now (punches follow its NAT_INFO). */
	punch_node(m, s);
}

/* ---- requests ---- */

struct req_ctx {                         /* one request being handled */
	struct medsrv *m;
	struct msess *s;
	const struct msg_request *r;
	struct store_network n;         /* the named network, when the op needs one */
	struct pw_job *pw;              /* the password job's result: second pass only */
	struct pw_job pw_inline;        /* where it is when jobs run inline (no io.pw_submit) */
};

static void
reply_store_error(struct req_ctx *c)
{
	reply(c->m, c->s, c->r->req_id, RES_ERR_INTERNAL, "server database error");
}

static void
reply_limited(struct req_ctx *c, const char *what, double retry_after)
{
	reply(c->m, c->s, c->r->req_id, RES_ERR_RATE_LIMITED, "%s; try again in %.0f s", what,
	    retry_after < 1 ? 1 : retry_after);
}

/*
 * The password job of this request (kind, and for PW_VERIFY the stored hash). Returns 1 when
 * its result is in c->pw (jobs run inline), 0 when the request is parked until the pool's
 * answer (medsrv_pw_done runs it again) or was refused (the reply is sent).
 */
static int
pw_start(struct req_ctx *c, uint8_t kind, const char *stored)
{
	struct medsrv *m = c->m;
	struct msess *s = c->s;
	double now = m->io.now(m->io.arg), wait = 0;
	struct pw_parked *p;
	struct pw_job *j = &c->pw_inline;

	if (joinlimit_blocked(m->rl, JL_PWOP_KEY, s->key, KEY_LEN, now, &wait) ||
	    (s->remote_addr && joinlimit_blocked(m->rl, JL_PWOP_SOURCE, &s->remote_addr,
	    sizeof(s->remote_addr), now, &wait))) {
		reply_limited(c, "too many password operations", wait);
		return 0;
	}
	if (m->io.pw_submit && (s->pw_inflight >= PW_INFLIGHT_PER_NODE ||
	    m->n_parked >= PW_PARKED_MAX)) {
		reply(m, s, c->r->req_id, RES_ERR_RATE_LIMITED, "server busy with passwords; try "
		    "again in a moment");
		return 0;
	}
	(void)joinlimit_hit(m->rl, JL_PWOP_KEY, s->key, KEY_LEN, now);
	if (s->remote_addr)
		(void)joinlimit_hit(m->rl, JL_PWOP_SOURCE, &s->remote_addr,
		    sizeof(s->remote_addr), now);
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	snprintf(j->password, sizeof(j->password), "%s", c->r->password);
	if (stored)
		snprintf(j->hash, sizeof(j->hash), "%s", stored);
	j->opslimit = m->cfg.pw_opslimit;
	j->memlimit = m->cfg.pw_memlimit;
	if (m->io.pw_submit == NULL) {
		pw_job_run(j);
		c->pw = j;
		return 1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		pw_job_wipe(j);
		reply(m, s, c->r->req_id, RES_ERR_INTERNAL, "out of memory");
		return 0;
	}
	p->ticket = j->ticket = ++m->next_ticket;
	memcpy(p->key, s->key, KEY_LEN);
	p->serial = s->serial;
	p->req = *c->r;
	if (m->io.pw_submit(m->io.arg, j) != 0) {
		pw_job_wipe(j);
		sodium_memzero(&p->req, sizeof(p->req));
		free(p);
		reply(m, s, c->r->req_id, RES_ERR_RATE_LIMITED, "server busy with passwords; try "
		    "again in a moment");
		return 0;
	}
	pw_job_wipe(j);
	HASH_ADD(hh, m->parked, ticket, sizeof(p->ticket), p);
	m->n_parked++;
	s->pw_inflight++;
	return 0;
}

static int
valid_flags(uint8_t f)
{
	return (f & ~(NETF_LOCKED | NETF_MANUAL_APPROVAL)) == 0;
}

static void
op_create(struct req_ctx *c)
{
	struct store_member me;
	char hash[STORE_PWHASH_MAX];
	int rc;

	if (!valid_label(c->r->network, NAME_MAX_LEN)) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "invalid network name: use 1 to "
		    "64 printable ASCII characters, no leading or trailing space");
		return;
	}
	if (!valid_flags(c->r->flags)) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "unknown network flags");
		return;
	}
	if (c->r->password[0] != '\0' && c->pw == NULL) {
		/* Only a name that is free is worth hashing for. */
		rc = store_network_get(c->m->st, c->r->network, &c->n);
		if (rc == 0) {
			reply(c->m, c->s, c->r->req_id, RES_ERR_EXISTS, "a network named \"%s\" "
			    "already exists", c->r->network);
			return;
		}
		if (rc != STORE_NOT_FOUND) {
			reply_store_error(c);
			return;
		}
		if (!pw_start(c, PW_HASH, NULL))
			return;
	}
	if (c->pw != NULL && c->pw->rc != 0) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_INTERNAL, "could not hash the password");
		return;
	}
	snprintf(hash, sizeof(hash), "%s", c->pw ? c->pw->hash : "");
	rc = store_network_create(c->m->st, c->r->network, c->s->key, hash, c->r->flags, &c->n);
	sodium_memzero(hash, sizeof(hash));
	if (rc == STORE_EXISTS) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_EXISTS, "a network named \"%s\" already exists",
		    c->r->network);
		return;
	}
	if (rc != 0 || store_member_get(c->m->st, c->n.id, c->s->key, &me) != 0) {
		reply_store_error(c);
		return;
	}
	log_info("event=network_created network=\"%s\" flags=%u", c->n.name, c->n.flags);
	send_snapshot(c->m, c->s, &c->n, &me);
	/* the owner's membership: the other instances' copies of its networks go */
	peer_event(c->m, MEDPEER_MEMBER, c->n.name, c->s->key, 0);
	reply(c->m, c->s, c->r->req_id, RES_OK, "created network \"%s\"", c->n.name);
}

/* Wrong passwords so far from this key, its source address or against this network. */
static int
join_blocked(struct req_ctx *c, double now)
{
	struct medsrv *m = c->m;
	double wait = 0;

	if (joinlimit_blocked(m->rl, JL_FAIL_KEY, c->s->key, KEY_LEN, now, &wait) ||
	    (c->s->remote_addr && joinlimit_blocked(m->rl, JL_FAIL_SOURCE, &c->s->remote_addr,
	    sizeof(c->s->remote_addr), now, &wait))) {
		reply_limited(c, "too many failed joins", wait);
		return 1;
	}
	if (joinlimit_blocked(m->rl, JL_FAIL_NETWORK, &c->n.id, sizeof(c->n.id), now, &wait)) {
		reply_limited(c, "too many failed joins to this network", wait);
		return 1;
	}
	return 0;
}

static void
join_failed(struct req_ctx *c, double now)
{
	struct medsrv *m = c->m;
	char id[KEY_SHORT_LEN], src[IP4_STR_LEN];

	(void)joinlimit_hit(m->rl, JL_FAIL_KEY, c->s->key, KEY_LEN, now);
	if (c->s->remote_addr)
		(void)joinlimit_hit(m->rl, JL_FAIL_SOURCE, &c->s->remote_addr,
		    sizeof(c->s->remote_addr), now);
	if (joinlimit_hit(m->rl, JL_FAIL_NETWORK, &c->n.id, sizeof(c->n.id), now)) {
		/* The owner's line: someone is guessing this network's password. */
		key_short(c->s->key, id);
		log_warnx("event=network_under_attack network=\"%s\" failures=%u window_s=%.0f "
		    "last_node=%s last_source=%s", c->n.name, joinlimit_budget(m->rl, JL_FAIL_NETWORK), JL_WINDOW,
		    id, c->s->remote_addr ? ip4_str(c->s->remote_addr, src) : "unknown");
	}
}

static void
op_join(struct req_ctx *c)
{
	struct medsrv *m = c->m;
	struct store_member me;
	double now = m->io.now(m->io.arg);
	int pending, rc;

	rc = store_member_get(m->st, c->n.id, c->s->key, &me);
	if (rc == 0) {
		if (me.pending)
			reply(m, c->s, c->r->req_id, RES_ERR_PENDING,
			    "already waiting for the owner's approval to join \"%s\"", c->n.name);
		else
			reply(m, c->s, c->r->req_id, RES_ERR_EXISTS, "already a member of \"%s\"",
			    c->n.name);
		return;
	}
	if (rc != STORE_NOT_FOUND) {
		reply_store_error(c);
		return;
	}
	if (c->n.flags & NETF_LOCKED) {
		reply(m, c->s, c->r->req_id, RES_ERR_LOCKED, "network \"%s\" is locked: no new "
		    "members", c->n.name);
		return;
	}
	if (c->n.pwhash[0] != '\0' && c->pw == NULL) {
		/* Before Argon2id, so failures cannot buy CPU time. */
		if (join_blocked(c, now))
			return;
		if (!pw_start(c, PW_VERIFY, c->n.pwhash))
			return;
	}
	if (c->n.pwhash[0] != '\0' && c->pw->rc != 0) {
		join_failed(c, now);
		reply(m, c->s, c->r->req_id, RES_ERR_BAD_PASSWORD, "wrong password for \"%s\"",
		    c->n.name);
		return;
	}
	pending = (c->n.flags & NETF_MANUAL_APPROVAL) != 0;
	if (store_member_add(m->st, c->n.id, c->s->key, pending, 1) != 0 ||
	    store_member_get(m->st, c->n.id, c->s->key, &me) != 0) {
		reply_store_error(c);
		return;
	}
	log_info("event=member_joined network=\"%s\" nick=\"%s\" pending=%d", c->n.name, me.nick,
	    pending);
	send_snapshot(m, c->s, &c->n, &me);
	notify_member(m, &c->n, c->s->key, c->s, 0);
	if (!pending)
		punch_node(m, c->s);
	if (pending)
		reply(m, c->s, c->r->req_id, RES_ERR_PENDING, "waiting for the owner's approval to "
		    "join \"%s\"", c->n.name);
	else
		reply(m, c->s, c->r->req_id, RES_OK, "joined \"%s\"", c->n.name);
}

/* Loads the requester's membership; replies NOT_MEMBER when there is none. */
static int
load_me(struct req_ctx *c, struct store_member *me)
{
	int rc = store_member_get(c->m->st, c->n.id, c->s->key, me);

	if (rc == STORE_NOT_FOUND)
		reply(c->m, c->s, c->r->req_id, RES_ERR_NOT_MEMBER, "not a member of \"%s\"",
		    c->n.name);
	else if (rc != 0)
		reply_store_error(c);
	return rc;
}

static void relay_recheck(struct medsrv *m, const uint8_t key[KEY_LEN]);

static void
op_leave(struct req_ctx *c)
{
	struct store_member me;

	if (load_me(c, &me) != 0)
		return;
	if (memcmp(c->s->key, c->n.owner, KEY_LEN) == 0) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "the owner cannot leave \"%s\"; "
		    "delete the network instead", c->n.name);
		return;
	}
	if (store_member_remove(c->m->st, c->n.id, c->s->key) != 0) {
		reply_store_error(c);
		return;
	}
	send_network_gone(c->m, c->s, c->n.name, GONE_LEFT);
	notify_gone(c->m, &c->n, c->s->key, me.pending);
	relay_recheck(c->m, c->s->key);
	reply(c->m, c->s, c->r->req_id, RES_OK, "left \"%s\"", c->n.name);
}

static void
set_online(struct req_ctx *c, int online)
{
	struct store_member me;

	if (load_me(c, &me) != 0)
		return;
	if (me.online != online) {
		if (store_member_set_online(c->m->st, c->n.id, c->s->key, online) != 0) {
			reply_store_error(c);
			return;
		}
		/* my_flags changed: the node gets its NETWORK again, then everyone the MEMBER. */
		me.online = online;
		send_network(c->m, c->s, &c->n, &me);
		notify_member(c->m, &c->n, c->s->key, NULL,
		    MEDPEER_MEMBER_SWITCH | (online ? MEDPEER_MEMBER_ON : 0));
		if (online)
			punch_node(c->m, c->s);
		else
			relay_recheck(c->m, c->s->key);
	}
	reply(c->m, c->s, c->r->req_id, RES_OK, "%s in \"%s\"", online ? "online" : "offline",
	    c->n.name);
}

static void
op_go_online(struct req_ctx *c)
{
	set_online(c, 1);
}

static void
op_go_offline(struct req_ctx *c)
{
	set_online(c, 0);
}

struct key_list {                        /* on the stack of op_delete; keys is malloc'd */
	uint8_t (*keys)[KEY_LEN];
	size_t n, cap;
};

static int
collect_cb(void *arg, const struct store_member *r)
{
	struct key_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->keys, cap * KEY_LEN);

		if (p == NULL)
			return -1;
		l->keys = p;
		l->cap = cap;
	}
	memcpy(l->keys[l->n++], r->key, KEY_LEN);
	return 0;
}

static void
op_delete(struct req_ctx *c)
{
	struct key_list l = { NULL, 0, 0 };
	struct msess *s;
	size_t i;

	if (store_members_each(c->m->st, c->n.id, collect_cb, &l) != 0 ||
	    store_network_delete(c->m->st, c->n.id) != 0) {
		free(l.keys);
		reply_store_error(c);
		return;
	}
	log_info("event=network_deleted network=\"%s\"", c->n.name);
	/* the other instances' copies of its members' networks go (w of a network gone) */
	peer_event(c->m, MEDPEER_NETWORK, c->n.name, NULL, 0);
	for (i = 0; i < l.n; i++)
		if ((s = find_session(c->m, l.keys[i])) != NULL)
			send_network_gone(c->m, s, c->n.name, GONE_DELETED);
		else
			peer_event(c->m, MEDPEER_KICKED, c->n.name, l.keys[i], GONE_DELETED);
	for (i = 0; i < l.n; i++)
		relay_recheck(c->m, l.keys[i]);
	free(l.keys);
	reply(c->m, c->s, c->r->req_id, RES_OK, "deleted \"%s\"", c->n.name);
}

static void
op_set_pass(struct req_ctx *c)
{
	char hash[STORE_PWHASH_MAX];
	int rc;

	if (c->r->password[0] != '\0' && c->pw == NULL && !pw_start(c, PW_HASH, NULL))
		return;
	if (c->pw != NULL && c->pw->rc != 0) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_INTERNAL, "could not hash the password");
		return;
	}
	snprintf(hash, sizeof(hash), "%s", c->pw ? c->pw->hash : "");
	rc = store_network_set_pwhash(c->m->st, c->n.id, hash);
	sodium_memzero(hash, sizeof(hash));
	if (rc != 0) {
		reply_store_error(c);
		return;
	}
	resend_network(c->m, &c->n);
	reply(c->m, c->s, c->r->req_id, RES_OK, c->r->password[0] ? "password of \"%s\" changed" :
	    "password of \"%s\" removed", c->n.name);
}

static void
op_set_access(struct req_ctx *c)
{
	if (!valid_flags(c->r->flags)) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "unknown network flags");
		return;
	}
	if (store_network_set_flags(c->m->st, c->n.id, c->r->flags) != 0) {
		reply_store_error(c);
		return;
	}
	c->n.flags = c->r->flags;
	resend_network(c->m, &c->n);
	reply(c->m, c->s, c->r->req_id, RES_OK, "access of \"%s\": %s, %s", c->n.name,
	    (c->n.flags & NETF_LOCKED) ? "locked" : "open",
	    (c->n.flags & NETF_MANUAL_APPROVAL) ? "manual approval" : "automatic approval");
}

/* Loads the target member of APPROVE / REJECT / EVICT; replies NO_SUCH_MEMBER if absent. */
static int
load_target(struct req_ctx *c, struct store_member *t, int must_be_pending)
{
	int rc = store_member_get(c->m->st, c->n.id, c->r->target, t);

	if (rc == 0 && must_be_pending && !t->pending)
		rc = STORE_NOT_FOUND;
	if (rc == STORE_NOT_FOUND)
		reply(c->m, c->s, c->r->req_id, RES_ERR_NO_SUCH_MEMBER, must_be_pending ?
		    "no pending join request from that node in \"%s\"" :
		    "that node is not a member of \"%s\"", c->n.name);
	else if (rc != 0)
		reply_store_error(c);
	return rc;
}

static void
op_approve(struct req_ctx *c)
{
	struct store_member t;
	struct msess *ts;

	if (load_target(c, &t, 1) != 0)
		return;
	if (store_member_set_pending(c->m->st, c->n.id, t.key, 0) != 0) {
		reply_store_error(c);
		return;
	}
	t.pending = 0;
	log_info("event=member_approved network=\"%s\" nick=\"%s\"", c->n.name, t.nick);
	ts = find_session(c->m, t.key);
	if (ts)
		send_snapshot(c->m, ts, &c->n, &t);
	notify_member(c->m, &c->n, t.key, ts, 0);
	if (ts)
		punch_node(c->m, ts);
	reply(c->m, c->s, c->r->req_id, RES_OK, "approved %s in \"%s\"", t.nick, c->n.name);
}

/* REJECT and EVICT: remove the target and tell everyone concerned. */
static void
remove_target(struct req_ctx *c, struct store_member *t, uint8_t reason)
{
	struct msess *ts;

	if (store_member_remove(c->m->st, c->n.id, t->key) != 0) {
		reply_store_error(c);
		return;
	}
	log_info("event=member_removed network=\"%s\" nick=\"%s\" reason=%u", c->n.name, t->nick,
	    reason);
	if ((ts = find_session(c->m, t->key)) != NULL)
		send_network_gone(c->m, ts, c->n.name, reason);
	else
		peer_event(c->m, MEDPEER_KICKED, c->n.name, t->key, reason);
	notify_gone(c->m, &c->n, t->key, t->pending);
	relay_recheck(c->m, t->key);
	reply(c->m, c->s, c->r->req_id, RES_OK, "%s %s from \"%s\"",
	    reason == GONE_REJECTED ? "rejected" : "evicted", t->nick, c->n.name);
}

static void
op_reject(struct req_ctx *c)
{
	struct store_member t;

	if (load_target(c, &t, 1) == 0)
		remove_target(c, &t, GONE_REJECTED);
}

static void
op_evict(struct req_ctx *c)
{
	struct store_member t;

	if (memcmp(c->r->target, c->n.owner, KEY_LEN) == 0) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "the owner cannot be evicted; "
		    "delete the network instead");
		return;
	}
	if (load_target(c, &t, 0) == 0)
		remove_target(c, &t, GONE_EVICTED);
}

static void
op_set_nick(struct req_ctx *c)
{
	if (!valid_label(c->r->arg, NICK_MAX_LEN)) {
		reply(c->m, c->s, c->r->req_id, RES_ERR_BAD_REQUEST, "invalid nick: use 1 to 64 "
		    "printable ASCII characters, no leading or trailing space");
		return;
	}
	if (strcmp(c->r->arg, c->s->nick) != 0) {
		if (store_node_set_nick(c->m->st, c->s->key, c->r->arg) != 0) {
			reply_store_error(c);
			return;
		}
		snprintf(c->s->nick, sizeof(c->s->nick), "%s", c->r->arg);
		notify_everywhere(c->m, c->s->key, NULL, NULL, MEDPEER_NODE_NICK);
	}
	reply(c->m, c->s, c->r->req_id, RES_OK, "nick is now %s", c->s->nick);
}

enum { NEEDS_NETWORK = 1 << 0, OWNER_ONLY = 1 << 1 };

static const struct {
	uint8_t op;
	uint8_t needs;
	void (*fn)(struct req_ctx *);
} ops[] = {
	{ OP_CREATE, 0, op_create },
	{ OP_JOIN, NEEDS_NETWORK, op_join },
	{ OP_LEAVE, NEEDS_NETWORK, op_leave },
	{ OP_GO_ONLINE, NEEDS_NETWORK, op_go_online },
	{ OP_GO_OFFLINE, NEEDS_NETWORK, op_go_offline },
	{ OP_DELETE, NEEDS_NETWORK | OWNER_ONLY, op_delete },
	{ OP_SET_PASS, NEEDS_NETWORK | OWNER_ONLY, op_set_pass },
	{ OP_SET_ACCESS, NEEDS_NETWORK | OWNER_ONLY, op_set_access },
	{ OP_APPROVE, NEEDS_NETWORK | OWNER_ONLY, op_approve },
	{ OP_REJECT, NEEDS_NETWORK | OWNER_ONLY, op_reject },
	{ OP_EVICT, NEEDS_NETWORK | OWNER_ONLY, op_evict },
	{ OP_SET_NICK, 0, op_set_nick },
};

static void
dispatch(struct medsrv *m, struct msess *s, const struct msg_request *r, struct pw_job *pw)
{
	struct req_ctx c;
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	c.m = m;
	c.s = s;
	c.r = r;
	c.pw = pw;
	if (!s->registered) {
		reply(m, s, r->req_id, RES_ERR_BAD_REQUEST, "send HELLO first");
		return;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].op == r->op)
			break;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		reply(m, s, r->req_id, RES_ERR_BAD_REQUEST, "unknown request op %u", r->op);
		return;
	}
	if (ops[i].needs & NEEDS_NETWORK) {
		rc = store_network_get(m->st, r->network, &c.n);
		if (rc == STORE_NOT_FOUND) {
			reply(m, s, r->req_id, RES_ERR_NO_SUCH_NETWORK, "no network named \"%s\"",
			    r->network);
			return;
		}
		if (rc != 0) {
			reply_store_error(&c);
			return;
		}
		if ((ops[i].needs & OWNER_ONLY) && memcmp(s->key, c.n.owner, KEY_LEN) != 0) {
			reply(m, s, r->req_id, RES_ERR_NOT_OWNER, "only the owner of \"%s\" can do that",
			    c.n.name);
			return;
		}
	}
	ops[i].fn(&c);
	pw_job_wipe(&c.pw_inline);
}

static void
handle_request(struct medsrv *m, struct msess *s, const struct msg_request *r)
{
	m->stats.requests++;
	dispatch(m, s, r, NULL);
}

void
medsrv_pw_done(struct medsrv *m, struct pw_job *job)
{
	struct pw_parked *p;
	struct msess *s;

	HASH_FIND(hh, m->parked, &job->ticket, sizeof(job->ticket), p);
	if (p == NULL)
		return;
	HASH_DEL(m->parked, p);
	m->n_parked--;
	/* The same connection still: answer it. A session that is gone (or a newer one with
	 * the same key, which never sent this request) gets nothing. */
	s = find_session(m, p->key);
	if (s != NULL && s->serial == p->serial) {
		s->pw_inflight--;
		dispatch(m, s, &p->req, job);
	}
	sodium_memzero(&p->req, sizeof(p->req));
	free(p);
}

int
medsrv_reclaim(struct medsrv *m, int64_t now, int64_t max_age)
{
	struct msess *s, *tmp;
	unsigned removed = 0;

	/* Connected nodes are in use whatever their networks: seen now. */
	HASH_ITER(hh_key, m->by_key, s, tmp)
		(void)store_node_touch(m->st, s->key, now);
	if (store_nodes_reclaim(m->st, now - max_age, &removed) != 0)
		return -1;
	if (removed)
		log_info("event=nodes_reclaimed count=%u unused_for_s=%lld", removed,
		    (long long)max_age);
	return (int)removed;
}

void
medsrv_session_remote(struct medsrv *m, struct msess *s, const struct endpoint *remote)
{
	(void)m;
	s->remote_addr = remote->addr;
	s->tcp_remote = *remote;
}

/*
 * CANDIDATES (PROTOCOL.md 3.4): the node's gateway mapped these endpoints to its peer socket.
 * They go into its MEMBER endpoints after the observed one, and its pairs are planned again
 * (a mapped side takes packets from anyone). Before HELLO there is no member to update.
 */
static void
handle_candidates(struct medsrv *m, struct msess *s, const struct msg_candidates *c)
{
	char id[KEY_SHORT_LEN], ep[EP_STR_LEN];

	if (!s->registered) {
		m->stats.msgs_ignored++;
		return;
	}
	if (c->n_mapped == s->n_mapped &&
	    memcmp(c->mapped, s->mapped, c->n_mapped * sizeof(c->mapped[0])) == 0)
		return;
	memset(s->mapped, 0, sizeof(s->mapped));
	s->n_mapped = c->n_mapped > CAND_MAX_MAPPED ? CAND_MAX_MAPPED : c->n_mapped;
	memcpy(s->mapped, c->mapped, s->n_mapped * sizeof(s->mapped[0]));
	key_short(s->key, id);
	if (s->n_mapped)
		ep_str(&s->mapped[0], ep);
	log_info("event=candidates node=%s mapped=%u first=%s", id, s->n_mapped,
	    s->n_mapped ? ep : "-");
	notify_everywhere(m, s->key, NULL, NULL, 0);
	/* A UPnP mapping takes seconds and usually lands just after the pairs' first plans,
	 * which it can turn from `none` into direct: the first mapping of a connection plans
	 * again at once. Later changes wait out the 10 s, so a node cannot make the server
	 * flood its peers with plans. */
	if (s->n_mapped > 0 && !s->cand_replanned) {
		s->cand_replanned = 1;
		punch_forget(m->punch, s->key);
	}
	punch_node(m, s);
}

/*
 * LOCALS (PROTOCOL.md 3.5): the node's interface addresses changed since HELLO (a global IPv6
 * address arrived, it joined another LAN). They replace HELLO's in its MEMBER endpoints, and
 * its pairs are planned again: a new IPv6 address can make a relayed pair direct. The punch
 * table's window per pair keeps a node that flaps addresses from flooding its peers.
 */
static void
handle_locals(struct medsrv *m, struct msess *s, const struct msg_locals *l)
{
	char id[KEY_SHORT_LEN];
	uint8_t i, n;

	if (!s->registered) {
		m->stats.msgs_ignored++;
		return;
	}
	n = l->n_local > MAX_ENDPOINTS ? MAX_ENDPOINTS : l->n_local;
	if (n == s->n_local) {
		for (i = 0; i < n && ep_equal(&l->local[i], &s->local[i]); i++)
			;
		if (i == n)
			return;
	}
	memset(s->local, 0, sizeof(s->local));
	s->n_local = n;
	memcpy(s->local, l->local, n * sizeof(s->local[0]));
	key_short(s->key, id);
	log_info("event=locals node=%s local=%u", id, n);
	notify_everywhere(m, s->key, NULL, NULL, 0);
	punch_node(m, s);
}

/* ---- relays (PROTOCOL.md 8): the pool, RTT reports, grants ---- */

static uint32_t
relay_unix_now(struct medsrv *m)
{
	return m->io.wall ? (uint32_t)m->io.wall(m->io.arg) : (uint32_t)time(NULL);
}

/* A relay id of our pool as another instance's node gets it (PROTOCOL.md 4.8): outside the
 * ids of its own instance's pool (MSG_RELAYS), where the same small numbers name other
 * relays (its name in `shoal list`, the pool entry a silent grant marks unreachable in
 * RELAY_RTT). Pools count ids from 1 and never reach this bit in practice (32,767
 * registrations). */
#define RELAY_ID_OTHER_INSTANCE 0x8000u

/* relaygrant's send: to a connected node only, the embedded relay's wildcard address made the
 * one the node reached us on. */
static void
relay_send_grant(void *arg, const uint8_t to[KEY_LEN], const struct msg_relay_grant *g)
{
	struct medsrv *m = arg;
	struct msess *s = find_session(m, to), *via = s;
	struct msg out;

	/* `to` on another instance (PROTOCOL.md 4.8): an embedded relay on a wildcard address is
	 * reached at the address its peer, ours, reached us on. A revoke needs no address: it
	 * goes out too when our node is the one leaving (its session is unlinked already). */
	if (s == NULL) {
		if (m->peers.forward == NULL || !peer_remote(m, to, NULL, NULL))
			return;
		via = find_session(m, g->peer);
	}
	memset(&out, 0, sizeof(out));
	out.type = MSG_RELAY_GRANT;
	out.u.relay_grant = *g;
	if (g->relay_id != 0 && out.u.relay_grant.udp.addr == 0)
		out.u.relay_grant.udp.addr = via != NULL ? via->tcp_local.addr : 0;
	/* A grant nobody could use (no address known for the relay) is not sent at all. */
	if (g->relay_id == 0 || out.u.relay_grant.udp.addr != 0) {
		if (s != NULL) {
			send_msg(m, s, &out);
		} else {
			if (out.u.relay_grant.relay_id != 0)
				out.u.relay_grant.relay_id = (uint16_t)(out.u.relay_grant.relay_id |
				    RELAY_ID_OTHER_INSTANCE);
			m->peers.forward(m->peers.arg, to, &out);
		}
	}
	sodium_memzero(&out, sizeof(out));
}

static void
relay_send_pool(struct medsrv *m, struct msess *s)
{
	struct msg out;

	memset(&out, 0, sizeof(out));
	out.type = MSG_RELAYS;
	relaypool_msg(m->pool, s->tcp_local.addr, &out.u.relays);
	send_msg(m, s, &out);
}

/* The pool changed: every node gets the full set at once, and every pair is picked again (a
 * pair on a dead relay moves now, not at its next RTT report). */
static void
relay_pool_changed(struct medsrv *m)
{
	struct msess *s, *tmp;

	HASH_ITER(hh_key, m->by_key, s, tmp)
		relay_send_pool(m, s);
	relaygrant_repick_all(m->grants, relay_unix_now(m));
}

/*
 * a and b may talk: grants for their relay, with why they are relayed: `starting` while
 * punching is tried, or what the plan says when it cannot work.
 */
static void
relay_introduce_sides(struct medsrv *m, const struct punch_side *sa,
    const struct punch_side *sb, int asked)
{
	struct msg_punch pa, pb;
	uint8_t reason = RELAY_WHY_STARTING;

	if (sa->has_info && sb->has_info) {
		punchplan(sa, sb, &pa, &pb);
		if (pa.strategy == PUNCH_NONE)
			reason = sa->info.udp == NAT_UDP_BLOCKED || sb->info.udp == NAT_UDP_BLOCKED ?
			    RELAY_WHY_UDP_BLOCKED : RELAY_WHY_NO_DIRECT;
	}
	relaygrant_pair(m->grants, sa->key, sb->key, reason, asked, relay_unix_now(m));
}

static void
relay_introduce(struct medsrv *m, struct msess *a, struct msess *b, int asked)
{
	struct punch_side sa, sb;

	punch_side_of(a, &sa);
	punch_side_of(b, &sb);
	relay_introduce_sides(m, &sa, &sb, asked);
}

/* Connected here or to another instance (a split pair's grants are made by the instance of
 * its lower key, PROTOCOL.md 4.8), and allowed to talk. */
static int
relay_ok_cb(void *arg, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	struct medsrv *m = arg;

	return (find_session(m, a) != NULL || peer_remote(m, a, NULL, NULL)) &&
	    (find_session(m, b) != NULL || peer_remote(m, b, NULL, NULL)) && pair_can_talk(m, a, b);
}

/* key's membership changed: its pairs that may no longer talk are revoked. */
static void
relay_recheck(struct medsrv *m, const uint8_t key[KEY_LEN])
{
	relaygrant_recheck(m->grants, key, relay_ok_cb, m);
}

static int
relay_allowed(const struct medsrv *m, const uint8_t key[KEY_LEN])
{
	unsigned i;

	for (i = 0; i < m->cfg.n_relay_allow && i < MEDSRV_RELAY_ALLOW_MAX; i++)
		if (sodium_memcmp(m->cfg.relay_allow[i], key, KEY_LEN) == 0)
			return 1;
	return 0;
}

/* The refusal is a RESULT (req_id 0) the relay logs, then nothing more from it is read. */
static void
relay_refuse(struct medsrv *m, struct msess *s, const char *why, const char *text)
{
	char hex[2 * KEY_LEN + 1], src[IP4_STR_LEN];

	sodium_bin2hex(hex, sizeof(hex), s->key, KEY_LEN);
	log_warnx("event=relay_refused key=%s source=%s reason=%s", hex,
	    ip4_str(s->remote_addr, src), why);
	s->relay_refused = 1;
	reply(m, s, 0, RES_ERR_NOT_OWNER, "%s", text);
}

static void
handle_relay_hello(struct medsrv *m, struct msess *s, const struct msg_relay_hello *h)
{
	struct relaypool_entry *e;
	struct endpoint udp = h->udp;
	struct msg out;
	char ep[IP4_EP_STR_LEN];

	if (s->registered || s->is_relay) {
		m->stats.msgs_ignored++;
		return;
	}
	if (h->version != SHOAL_PROTO_VERSION) {
		relay_refuse(m, s, "protocol_version", "protocol version mismatch");
		return;
	}
	if (!relay_allowed(m, s->key)) {
		relay_refuse(m, s, "not_allowed", "this relay key is not allowed: add it to the "
		    "server's --relay-allow or STATE/relays.allow");
		return;
	}
	/* No address given: the relay is where its control connection comes from. */
	if (udp.addr == 0)
		udp.addr = s->remote_addr;
	e = relaypool_register(m->pool, s->key, h->name, &udp, h->tcp_port, s,
	    m->io.now(m->io.arg));
	if (e == NULL) {
		relay_refuse(m, s, "pool_full", "the relay pool is full");
		return;
	}
	s->is_relay = 1;
	memset(&out, 0, sizeof(out));
	out.type = MSG_RELAY_WELCOME;
	out.u.relay_welcome.relay_id = e->id;
	memcpy(out.u.relay_welcome.relay_key, e->relay_key, RELAY_KEY_LEN);
	send_msg(m, s, &out);
	sodium_memzero(&out, sizeof(out));
	log_info("event=relay_registered id=%u name=%s udp=%s tcp_port=%u", e->id, e->name,
	    ip4_ep_str(e->udp.addr, e->udp.port, ep), e->tcp_port);
	relay_pool_changed(m);
}

static void
relay_log_counters(const struct relaypool_entry *e)
{
	log_info("event=relay_counters id=%u name=%s pairs=%u packets=%llu bytes=%llu drops=%llu",
	    e->id, e->name, e->stats.pairs, (unsigned long long)e->stats.packets,
	    (unsigned long long)e->stats.bytes, (unsigned long long)e->stats.drops);
}

static void
relay_stats_in(struct medsrv *m, struct relaypool_entry *e, const struct msg_relay_stats *st)
{
	int revived = !e->alive;

	if (revived)
		e->alive = 1;
	if (relaypool_stats(m->pool, e, st, m->io.now(m->io.arg)))
		relay_log_counters(e);
	if (revived) {
		log_info("event=relay_alive id=%u name=%s", e->id, e->name);
		relay_pool_changed(m);
	}
}

static void
handle_relay_stats(struct medsrv *m, struct msess *s, const struct msg_relay_stats *st)
{
	struct relaypool_entry *e = relaypool_find_conn(m->pool, s);

	if (e == NULL) {
		m->stats.msgs_ignored++;
		return;
	}
	relay_stats_in(m, e, st);
}

/* A relay's control connection ended: dead at once, its pairs move (PROTOCOL.md 8.2). */
static void
relay_session_gone(struct medsrv *m, struct msess *s, const char *why)
{
	struct relaypool_entry *e = relaypool_find_conn(m->pool, s);

	s->is_relay = 0;
	if (e == NULL || !relaypool_down(m->pool, e))
		return;
	log_warnx("event=relay_down id=%u name=%s reason=%s", e->id, e->name, why);
	relay_pool_changed(m);
}

static void
handle_relay_rtt(struct medsrv *m, struct msess *s, const struct msg_relay_rtt *r)
{
	if (!s->registered) {
		m->stats.msgs_ignored++;
		return;
	}
	(void)relaygrant_rtt(m->grants, s->key, r, m->io.now(m->io.arg), relay_unix_now(m));
}

uint16_t
medsrv_relay_embedded(struct medsrv *m, const char *name, const struct endpoint *udp,
    uint16_t tcp_port, uint8_t relay_key[RELAY_KEY_LEN])
{
	struct relaypool_entry *e;

	e = relaypool_register(m->pool, NULL, name, udp, tcp_port, NULL, m->io.now(m->io.arg));
	if (e == NULL)
		return 0;
	memcpy(relay_key, e->relay_key, RELAY_KEY_LEN);
	log_info("event=relay_registered id=%u name=%s udp_port=%u tcp_port=%u embedded=1", e->id,
	    e->name, e->udp.port, e->tcp_port);
	relay_pool_changed(m);
	return e->id;
}

void
medsrv_relay_embedded_stats(struct medsrv *m, uint16_t id, const struct msg_relay_stats *st)
{
	struct relaypool_entry *e = relaypool_find(m->pool, id);

	if (e != NULL && e->embedded)
		relay_stats_in(m, e, st);
}

enum { RELAY_RENEW_EVERY_S = 10 };

void
medsrv_relay_tick(struct medsrv *m)
{
	struct relaypool_entry *live[RELAY_POOL_MAX];
	double now = m->io.now(m->io.arg);
	size_t i, n = relaypool_alive(m->pool, live, RELAY_POOL_MAX);

	if (relaypool_expire(m->pool, now) > 0) {
		for (i = 0; i < n; i++)
			if (!live[i]->alive)
				log_warnx("event=relay_down id=%u name=%s reason=stats_timeout",
				    live[i]->id, live[i]->name);
		relay_pool_changed(m);
	}
	if (now - m->renewed_at >= RELAY_RENEW_EVERY_S) {
		m->renewed_at = now;
		relaygrant_renew(m->grants, relay_unix_now(m));
	}
}

uint16_t
medsrv_relay_of(struct medsrv *m, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	return relaygrant_relay_of(m->grants, a, b);
}

void
medsrv_session_msg(struct medsrv *m, struct msess *s, const struct msg *msg)
{
	struct msg out;

	/* A relay's connection speaks only the relay messages and PING (PROTOCOL.md 8.1). */
	if (s->relay_refused || (s->is_relay && msg->type != MSG_RELAY_STATS &&
	    msg->type != MSG_PING && msg->type != MSG_PONG)) {
		m->stats.msgs_ignored++;
		return;
	}
	switch (msg->type) {
	case MSG_HELLO:
		handle_hello(m, s, &msg->u.hello);
		break;
	case MSG_RELAY_HELLO:
		handle_relay_hello(m, s, &msg->u.relay_hello);
		break;
	case MSG_RELAY_STATS:
		handle_relay_stats(m, s, &msg->u.relay_stats);
		break;
	case MSG_RELAY_RTT:
		handle_relay_rtt(m, s, &msg->u.relay_rtt);
		break;
	case MSG_REQUEST:
		handle_request(m, s, &msg->u.request);
		break;
	case MSG_PING:
		memset(&out, 0, sizeof(out));
		out.type = MSG_PONG;
		out.u.ping.nonce = msg->u.ping.nonce;
		send_msg(m, s, &out);
		break;
	case MSG_PONG:
		break;
	case MSG_NAT_REPORT:
		handle_nat_report(m, s, &msg->u.nat_report);
		break;
	case MSG_PUNCH_REQUEST:
		handle_punch_request(m, s, &msg->u.punch_request);
		break;
	case MSG_CANDIDATES:
		handle_candidates(m, s, &msg->u.candidates);
		break;
	case MSG_LOCALS:
		handle_locals(m, s, &msg->u.locals);
		break;
	case MSG_CHAT_SEND:
	case MSG_CHAT_ACK:
	case MSG_CHAT_HISTORY:
		if (s->registered)
			chat_msg(m->chat, s->key, s->nick, msg);
		else
			m->stats.msgs_ignored++;
		break;
	default:
		m->stats.msgs_ignored++;
		break;
	}
}

/* ---- UDP probes ---- */

/* The node's observed endpoint is now `from`: push it if it changed, and classify its NAT
 * again when its public address (not just the port) changed. */
static void
observe(struct medsrv *m, struct msess *s, const struct endpoint *from)
{
	int addr_changed = s->has_observed && s->observed.addr != from->addr;

	if (s->has_observed && ep_same_addr(&s->observed, from))
		return;
	s->has_observed = 1;
	s->observed = *from;
	notify_everywhere(m, s->key, NULL, NULL, 0);
	/* A new address may be a new NAT: its pairs wait for the new classification's NAT_INFO
	 * rather than be planned on the old one. A new port alone is planned at once. */
	if (addr_changed)
		nat_start(m, s);
	else
		punch_node(m, s);
}

int
medsrv_probe(struct medsrv *m, const uint8_t token[UDP_TOKEN_LEN], const struct endpoint *from)
{
	struct msess *s;

	HASH_FIND(hh_token, m->by_token, token, UDP_TOKEN_LEN, s);
	if (s == NULL) {
		m->stats.probes_unknown++;
		return -1;
	}
	m->stats.probes_ok++;
	track_port(s, from);
	observe(m, s, from);
	return 0;
}

int
medsrv_nat_probe(struct medsrv *m, const struct nat_probe *p, int sock,
    const struct endpoint *from)
{
	struct msess *s;

	HASH_FIND(hh_token, m->by_token, p->token, UDP_TOKEN_LEN, s);
	if (s == NULL || s->np == NULL ||
	    natprobe_probe(s->np, p, sock, from, m->io.now(m->io.arg)) < 0) {
		m->stats.nat_probes_bad++;
		return -1;
	}
	m->stats.nat_probes_ok++;
	track_port(s, from);
	if (p->target == 0)
		observe(m, s, from);
	nat_maybe_changed(m, s);
	return 0;
}

const struct medsrv_stats *
medsrv_stats(const struct medsrv *m)
{
	return &m->stats;
}

/* ---- other instances (cluster.c) ---- */

void
medsrv_set_peers(struct medsrv *m, const struct medsrv_peers *p)
{
	m->peers = *p;
	if (p->side != NULL && m->rsides == NULL)
		m->rsides = remoteside_new();   /* NULL: split pairs are just not planned */
}

void
medsrv_sessions_each(struct medsrv *m, void (*cb)(void *arg, const uint8_t key[KEY_LEN]),
    void *arg)
{
	struct msess *s, *t;

	HASH_ITER(hh_key, m->by_key, s, t)
		cb(arg, s->key);
}

int
medsrv_session_endpoints(struct medsrv *m, const uint8_t key[KEY_LEN],
    struct endpoint eps[MAX_ENDPOINTS], uint8_t *n)
{
	struct msess *s = find_session(m, key);

	*n = 0;
	if (s == NULL)
		return 0;
	*n = session_endpoints(s, eps);
	return 1;
}

/*
 * Another instance sent the side of its node for our node `to` (PROTOCOL.md 4.8): kept for
 * plans that wait (remoteside.c); the lower key's instance plans the pair now, the higher's
 * answers with its own node's side. Only for a pair that may talk: the payload comes from
 * any session of the database, and a plan makes our node send to the endpoints in it.
 */
void
medsrv_peer_side(struct medsrv *m, const uint8_t to[KEY_LEN], const struct punch_side *side,
    unsigned hop_ms)
{
	struct punch_walk w = { .m = m, .remote = side->key };
	struct punch_side theirs;
	char pid[KEY_SHORT_LEN];

	/* Any instance with peers of the node plans them; the one `to` names (its daemon asked)
	 * needs its relay. */
	if (memcmp(to, side_to_everyone, KEY_LEN) != 0)
		w.asked = to;
	if (m->rsides == NULL || find_session(m, side->key) != NULL ||
	    remoteside_put(m->rsides, side, hop_ms, m->io.now(m->io.arg)) != 0 ||
	    !remoteside_get(m->rsides, side->key, &theirs))
		return;
	w.remote_side = &theirs;        /* with the hop in its delay */
	/* Its pairs with our nodes that hold the lower key are planned here (punch_split); its
	 * side is kept only while it has peers here (a plan queued for later needs it). */
	store_node_networks_each(m->st, side->key, punch_network_cb, &w);
	key_short(side->key, pid);
	log_debug("event=punch_side_received peer=%s hop_ms=%u peers_here=%d", pid, hop_ms,
	    w.local_peers);
	if (!w.local_peers)
		remoteside_forget(m->rsides, side->key);
}

/*
 * Our node's half of a plan, or its relay grant, made by another instance (PROTOCOL.md 4.8).
 * The instance that made it checked that the pair may talk. Checking again here would cost two
 * queries per message (in a network of 1,000 split over two instances, half a million) and
 * protect against nobody: a session of the database that can NOTIFY can as well write the
 * membership tables themselves.
 */
void
medsrv_peer_forward(struct medsrv *m, const uint8_t to[KEY_LEN], const struct msg *msg)
{
	struct msess *t = find_session(m, to);

	if (t != NULL && t->registered && (msg->type == MSG_PUNCH || msg->type == MSG_RELAY_GRANT))
		send_msg(m, t, msg);
}

void
medsrv_peer_event(struct medsrv *m, char kind, const char *network, const uint8_t *key,
    uint8_t val)
{
	struct store_network n;
	struct store_member r;
	struct msess *s;

	switch (kind) {
	case MEDPEER_NODE:
		/* new: in no network, so no copy holds it and there is no audience to push to */
		if ((val & (MEDPEER_NODE_NICK | MEDPEER_NODE_NEW)) == MEDPEER_NODE_NICK)
			store_node_changed(m->st, key);         /* before the pushes read it */
		/* It connected to another instance since: the session here is stale, as an older
		 * connection with the same key is on one instance (handle_hello). */
		if ((s = find_session(m, key)) != NULL && peer_remote(m, key, NULL, NULL))
			session_kick(m, s, "replaced_elsewhere");
		if (m->rsides != NULL && !peer_remote(m, key, NULL, NULL)) {
			remoteside_forget(m->rsides, key);      /* offline, or here now */
			/* offline: the relays of its split pairs granted here stop */
			if (find_session(m, key) == NULL && m->grants != NULL)
				relaygrant_node_gone(m->grants, key);
		}
		if (!(val & MEDPEER_NODE_NEW))
			node_push(m, key, NULL, NULL);
		return;
	case MEDPEER_CHAT:
		chat_wake(m->chat, key);
		return;
	case MEDPEER_KICKED:
		if ((s = find_session(m, key)) != NULL)
			send_network_gone(m, s, network, val);
		return;
	default:
		break;
	}
	if (kind == MEDPEER_NETWORK)
		store_networks_changed(m->st);  /* settings, or deleted: before it is read */
	if (network == NULL || store_network_get(m->st, network, &n) != 0) {
		n.id = -1;      /* deleted since: no copy of its members is read again */
		network = NULL;
	}
	/* the copy of the member list first: the checks and pushes below read it */
	if (network != NULL && key != NULL && kind == MEDPEER_MEMBER &&
	    (val & MEDPEER_MEMBER_SWITCH))
		store_member_switched(m->st, n.id, key, val & MEDPEER_MEMBER_ON);
	else if (network != NULL && key != NULL && (kind == MEDPEER_MEMBER || kind == MEDPEER_GONE))
		store_member_changed(m->st, n.id, key);
	/* a split pair granted here that may no longer talk stops using its relay */
	if (key != NULL && (kind == MEDPEER_MEMBER || kind == MEDPEER_GONE) && m->grants != NULL)
		relay_recheck(m, key);
	if (network == NULL)
		return;
	if (kind == MEDPEER_MEMBER) {
		/* approved by an owner on another instance: the member here gets the network */
		if ((s = find_session(m, key)) != NULL && store_member_get(m->st, n.id, key, &r) == 0)
			send_snapshot(m, s, &n, &r);
		member_push(m, &n, key, s);
	} else if (kind == MEDPEER_GONE) {
		gone_push(m, &n, key, val);
	} else if (kind == MEDPEER_NETWORK) {
		network_push(m, &n);
	}
}
