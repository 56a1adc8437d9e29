/*
 * test_mediator: server/mediator.c driven in-process. Fake connections capture every message
 * the mediator sends them, so each test checks exactly who receives what. The store is a real
 * SQLite database in a temporary directory, or the PostgreSQL database SHOAL_TEST_STORE names
 * (emptied for each test; tests/integ/test_store_pg.py); time is a variable the tests move.
 */
#include "config.h"

#include <sodium.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/joinlimit.h"
#include "mproto/relaymsg.h"
#include "server/mediator.h"
#include "server/punch.h"
#include "server/punchplan.h"
#include "tests/unit/unit.h"

/* A member switched on and connected. */
#define MEMF_ON (MEMF_ONLINE | MEMF_ACTIVE)

#define RANGE 0x05000000u
/* The fields of struct medsrv_config every test sets: the range and the cheapest Argon2id. */
#define TEST_CFG .range = RANGE, .prefix_len = 8, \
	.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN, .pw_memlimit = crypto_pwhash_MEMLIMIT_MIN
#define MAX_CAPTURE 64

struct fake {                            /* one fake connection */
	struct msess *s;
	uint8_t key[KEY_LEN];
	struct msg got[MAX_CAPTURE];
	int n;
	/* Relay messages (RELAYS, RELAY_GRANT, RELAY_WELCOME, RESULT to a relay) go here, so the
	 * membership tests count only theirs. */
	struct msg relay[MAX_CAPTURE];
	int n_relay;
	int kicked;
	uint32_t next_req;
	double timer_at;                /* the NAT timer: absolute time, < 0 stopped */
};

struct udp_sent {                        /* one datagram the mediator sent */
	int sock;
	struct endpoint to;
	struct nat_test t;              /* decoded */
};

struct env {                             /* one test's world */
	char dir[64];
	struct store *st;
	struct medsrv *m;
	double now;
	struct fake f[6];
	struct udp_sent udp[32];
	int n_udp;
	double punch_at;                /* the punch timer: absolute time, < 0 stopped */
	unsigned relay_pairs;           /* nat_medsrv's grant table bound; 0: the default */
};

static void
io_send(void *arg, void *conn, const struct msg *m)
{
	struct fake *f = conn;

	(void)arg;
	if (m->type == MSG_RELAYS || m->type == MSG_RELAY_GRANT || m->type == MSG_RELAY_WELCOME) {
		if (f->n_relay < MAX_CAPTURE)
			f->relay[f->n_relay++] = *m;
		return;
	}
	if (f->n < MAX_CAPTURE)
		f->got[f->n++] = *m;
}

static void
io_kick(void *arg, void *conn)
{
	struct fake *f = conn;

	(void)arg;
	/* A reconnect in these tests reuses the same fake, so s already points at the new
	 * session: only count. */
	f->kicked++;
}

static double
io_now(void *arg)
{
	return ((struct env *)arg)->now;
}

static void
io_udp_send(void *arg, int sock, const struct endpoint *to, const uint8_t *buf, size_t len)
{
	struct env *e = arg;

	if (e->n_udp >= 32)
		return;
	e->udp[e->n_udp].sock = sock;
	e->udp[e->n_udp].to = *to;
	/* The mediator only ever sends UDP_NAT_TESTs itself; anything else fails the decode. */
	CHECK_EQ(nat_test_decode(buf, len, &e->udp[e->n_udp].t), 0);
	e->n_udp++;
}

static void
io_timer(void *arg, void *conn, double after)
{
	struct env *e = arg;

	((struct fake *)conn)->timer_at = after < 0 ? -1.0 : e->now + after;
}

static void
io_punch_timer(void *arg, double after)
{
	struct env *e = arg;

	e->punch_at = after < 0 ? -1.0 : e->now + after;
}

/* Where the store lives: path, or the PostgreSQL database of SHOAL_TEST_STORE. */
static const char *
store_path(const char *path)
{
	const char *url = getenv("SHOAL_TEST_STORE");

	return url && *url ? url : path;
}

static void
env_init(struct env *e)
{
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	char err[256], path[128];
	int i;

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/test_mediator.XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/mediator.db", e->dir);
	if ((e->st = store_open(store_path(path), err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	if (store_path(path) != path && store_clear(e->st) != 0)
		abort();
	io.arg = e;
	e->m = medsrv_new(e->st, &cfg, &io);
	e->now = 1000.0;
	for (i = 0; i < 6; i++)
		memset(e->f[i].key, 0x10 + i, KEY_LEN);
}

static void
env_done(struct env *e)
{
	char cmd[128];

	medsrv_free(e->m);
	store_close(e->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
}

static void
clear(struct env *e)
{
	int i;

	for (i = 0; i < 6; i++)
		e->f[i].n = 0;
}

/* Node i connects from source address src (0: unknown) and sends its HELLO. */
static void
connect_node_from(struct env *e, int i, const char *nick, uint32_t src)
{
	struct fake *f = &e->f[i];
	struct endpoint remote = { .addr = src, .port = 40000 };
	struct msg m;

	f->s = medsrv_session_open(e->m, f->key, f);
	if (src)
		medsrv_session_remote(e->m, f->s, &remote);
	memset(&m, 0, sizeof(m));
	m.type = MSG_HELLO;
	m.u.hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.hello.nick, sizeof(m.u.hello.nick), "%s", nick);
	m.u.hello.udp_port = 40000 + i;
	m.u.hello.n_local = 1;
	m.u.hello.local[0].addr = 0xc0a80001u + (uint32_t)i;
	m.u.hello.local[0].port = 0;
	medsrv_session_msg(e->m, f->s, &m);
}

static void
connect_node(struct env *e, int i, const char *nick)
{
	connect_node_from(e, i, nick, 0);
}

static void
disconnect_node(struct env *e, int i)
{
	medsrv_session_close(e->m, e->f[i].s);
	e->f[i].s = NULL;
}

/* Sends a request from node i; returns the status of the RESULT it got (or -1). */
static int
req(struct env *e, int i, uint8_t op, const char *net, const char *pw, int target,
    uint8_t flags)
{
	struct fake *f = &e->f[i];
	struct msg m;
	int k, before = f->n;

	memset(&m, 0, sizeof(m));
	m.type = MSG_REQUEST;
	m.u.request.req_id = ++f->next_req;
	m.u.request.op = op;
	snprintf(m.u.request.network, sizeof(m.u.request.network), "%s", net ? net : "");
	snprintf(m.u.request.password, sizeof(m.u.request.password), "%s", pw ? pw : "");
	if (op == OP_SET_NICK)
		snprintf(m.u.request.arg, sizeof(m.u.request.arg), "%s", net);
	if (target >= 0)
		memcpy(m.u.request.target, e->f[target].key, KEY_LEN);
	m.u.request.flags = flags;
	medsrv_session_msg(e->m, f->s, &m);
	for (k = before; k < f->n; k++)
		if (f->got[k].type == MSG_RESULT) {
			CHECK_EQ(f->got[k].u.result.req_id, f->next_req);
			CHECK_EQ(k, f->n - 1);  /* the result is the last message */
			if (f->got[k].u.result.status != RES_OK)
				CHECK(f->got[k].u.result.text[0] != '\0');
			return f->got[k].u.result.status;
		}
	return -1;
}

static int
count_type(const struct fake *f, uint8_t type)
{
	int k, c = 0;

	for (k = 0; k < f->n; k++)
		c += f->got[k].type == type;
	return c;
}

/* The last MSG_MEMBER f got about node j, or NULL. */
static const struct msg_member *
member_about(const struct env *e, int i, int j)
{
	const struct fake *f = &e->f[i];
	int k;

	for (k = f->n - 1; k >= 0; k--)
		if (f->got[k].type == MSG_MEMBER &&
		    memcmp(f->got[k].u.member.key, e->f[j].key, KEY_LEN) == 0)
			return &f->got[k].u.member;
	return NULL;
}

static const struct msg *
last_of(const struct fake *f, uint8_t type)
{
	int k;

	for (k = f->n - 1; k >= 0; k--)
		if (f->got[k].type == type)
			return &f->got[k];
	return NULL;
}

static void
test_hello(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg *w;

	env_init(&e);
	connect_node(&e, 0, "");
	connect_node(&e, 1, "bob");
	w = last_of(&e.f[0], MSG_WELCOME);
	CHECK(w != NULL && w->u.welcome.address == RANGE + 1);
	CHECK(w != NULL && w->u.welcome.prefix_len == 8);
	CHECK(w != NULL && strcmp(w->u.welcome.nick, "node-101010") == 0);
	w = last_of(&e.f[1], MSG_WELCOME);
	CHECK(w != NULL && w->u.welcome.address == RANGE + 2);
	CHECK(w != NULL && strcmp(w->u.welcome.nick, "bob") == 0);
	CHECK_EQ(e.f[0].n, 1);

	/* Reconnect of node 0: the old session is kicked, same address, stored nick kept. */
	disconnect_node(&e, 1);
	clear(&e);
	{
		struct msess *olds = e.f[0].s;

		connect_node(&e, 0, "");
		CHECK(olds != e.f[0].s);
		CHECK_EQ(e.f[0].kicked, 1);
	}
	CHECK_EQ(medsrv_stats(e.m)->sessions, 1);
	w = last_of(&e.f[0], MSG_WELCOME);
	CHECK(w != NULL && w->u.welcome.address == RANGE + 1);
	connect_node(&e, 1, "");
	w = last_of(&e.f[1], MSG_WELCOME);
	CHECK(w != NULL && strcmp(w->u.welcome.nick, "bob") == 0);

	/* Requests before HELLO, unknown ops, ping. */
	e.f[2].s = medsrv_session_open(e.m, e.f[2].key, &e.f[2]);
	CHECK_EQ(req(&e, 2, OP_CREATE, "x", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 0, 99, "x", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	{
		struct msg p;

		memset(&p, 0, sizeof(p));
		p.type = MSG_PING;
		p.u.ping.nonce = 42;
		medsrv_session_msg(e.m, e.f[2].s, &p);
		CHECK(last_of(&e.f[2], MSG_PONG) != NULL);
		CHECK(last_of(&e.f[2], MSG_PONG)->u.ping.nonce == 42);
	}
	env_done(&e);
}

/* Who gets what on create and join, and password checks with the rate limit. */
static void
test_create_join(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg_member *mm;
	const struct msg *nw;
	int i;

	env_init(&e);
	connect_node(&e, 0, "alice");
	connect_node(&e, 1, "bob");
	connect_node(&e, 2, "carol");
	clear(&e);

	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "secret", -1, 0), RES_OK);
	CHECK_EQ(count_type(&e.f[0], MSG_NETWORK), 1);
	CHECK_EQ(count_type(&e.f[0], MSG_MEMBER), 1);
	nw = last_of(&e.f[0], MSG_NETWORK);
	CHECK(nw && nw->u.network.my_flags == (MEMF_ON | MEMF_OWNER));
	CHECK_EQ(e.f[1].n, 0);
	CHECK_EQ(req(&e, 1, OP_CREATE, "lan", NULL, -1, 0), RES_ERR_EXISTS);
	CHECK_EQ(req(&e, 1, OP_CREATE, "", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 1, OP_CREATE, "bad\tname", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 1, OP_CREATE, "x", NULL, -1, 0x80), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 1, OP_JOIN, "nope", "secret", -1, 0), RES_ERR_NO_SUCH_NETWORK);

	clear(&e);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "secret", -1, 0), RES_OK);
	/* bob: NETWORK, MEMBER alice, MEMBER bob, RESULT */
	CHECK_EQ(e.f[1].n, 4);
	CHECK_EQ(count_type(&e.f[1], MSG_MEMBER), 2);
	mm = member_about(&e, 1, 0);
	CHECK(mm && mm->flags == (MEMF_ON | MEMF_OWNER) && mm->address == RANGE + 1);
	CHECK(mm && strcmp(mm->nick, "alice") == 0);
	CHECK(mm && mm->n_endpoints == 1 && mm->endpoints[0].addr == 0xc0a80001u &&
	    mm->endpoints[0].port == 40000);
	/* alice: exactly one MEMBER about bob; carol nothing */
	CHECK_EQ(e.f[0].n, 1);
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->flags == MEMF_ON && mm->address == RANGE + 2);
	CHECK_EQ(e.f[2].n, 0);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "secret", -1, 0), RES_ERR_EXISTS);

	/* wrong passwords, then the rate limit even for the right one, then the window passes */
	for (i = 0; i < 5; i++)
		CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "wrong", -1, 0), RES_ERR_BAD_PASSWORD);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "", -1, 0), RES_ERR_RATE_LIMITED);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "secret", -1, 0), RES_ERR_RATE_LIMITED);
	e.now += 61;
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "secret", -1, 0), RES_OK);

	/* set-pass: the old password stops working, empty removes it */
	CHECK_EQ(req(&e, 1, OP_SET_PASS, "lan", "new", -1, 0), RES_ERR_NOT_OWNER);
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_SET_PASS, "lan", "new", -1, 0), RES_OK);
	CHECK_EQ(count_type(&e.f[1], MSG_NETWORK), 1);
	connect_node(&e, 3, "dave");
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", "secret", -1, 0), RES_ERR_BAD_PASSWORD);
	CHECK_EQ(req(&e, 0, OP_SET_PASS, "lan", "", -1, 0), RES_OK);
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", "anything", -1, 0), RES_OK);
	env_done(&e);
}

static void
test_lock_and_approval(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg_member *mm;
	const struct msg *nw;

	env_init(&e);
	connect_node(&e, 0, "owner");
	connect_node(&e, 1, "member");
	connect_node(&e, 2, "asker");
	connect_node(&e, 3, "other");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, NETF_MANUAL_APPROVAL), RES_OK);
	CHECK_EQ(req(&e, 0, OP_APPROVE, "lan", NULL, 1, 0), RES_ERR_NO_SUCH_MEMBER);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_ERR_PENDING);
	CHECK_EQ(req(&e, 0, OP_APPROVE, "lan", NULL, 1, 0), RES_OK);
	clear(&e);

	/* a pending join: the asker sees only the network, only the owner sees the asker */
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", NULL, -1, 0), RES_ERR_PENDING);
	CHECK_EQ(e.f[2].n, 2);
	nw = last_of(&e.f[2], MSG_NETWORK);
	CHECK(nw && (nw->u.network.my_flags & MEMF_PENDING));
	CHECK_EQ(e.f[0].n, 1);
	mm = member_about(&e, 0, 2);
	CHECK(mm && (mm->flags & MEMF_PENDING) && mm->n_endpoints == 0);
	CHECK_EQ(e.f[1].n, 0);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", NULL, -1, 0), RES_ERR_PENDING);
	CHECK_EQ(req(&e, 1, OP_APPROVE, "lan", NULL, 2, 0), RES_ERR_NOT_OWNER);

	/* a reconnecting owner sees pending members; a pending member sees no members */
	clear(&e);
	connect_node(&e, 0, "");
	CHECK(member_about(&e, 0, 2) != NULL);
	connect_node(&e, 2, "");
	CHECK_EQ(count_type(&e.f[2], MSG_MEMBER), 0);
	CHECK_EQ(count_type(&e.f[2], MSG_NETWORK), 1);

	/* approve: asker gets the full view, members get one MEMBER each */
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_APPROVE, "lan", NULL, 2, 0), RES_OK);
	CHECK_EQ(count_type(&e.f[2], MSG_NETWORK), 1);
	CHECK_EQ(count_type(&e.f[2], MSG_MEMBER), 3);
	CHECK_EQ(e.f[1].n, 1);
	mm = member_about(&e, 1, 2);
	CHECK(mm && mm->flags == MEMF_ON);
	CHECK_EQ(e.f[0].n, 2);
	CHECK_EQ(e.f[3].n, 0);

	/* reject */
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", NULL, -1, 0), RES_ERR_PENDING);
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_REJECT, "lan", NULL, 3, 0), RES_OK);
	nw = last_of(&e.f[3], MSG_NETWORK_GONE);
	CHECK(nw && nw->u.network_gone.reason == GONE_REJECTED);
	CHECK_EQ(count_type(&e.f[0], MSG_MEMBER_GONE), 1);
	CHECK_EQ(e.f[1].n, 0);
	CHECK_EQ(e.f[2].n, 0);

	/* lock: members get the new MSG_NETWORK, joins are refused */
	clear(&e);
	CHECK_EQ(req(&e, 1, OP_SET_ACCESS, "lan", NULL, -1, NETF_LOCKED), RES_ERR_NOT_OWNER);
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_SET_ACCESS, "lan", NULL, -1, NETF_LOCKED), RES_OK);
	nw = last_of(&e.f[1], MSG_NETWORK);
	CHECK(nw && nw->u.network.flags == NETF_LOCKED);
	CHECK_EQ(e.f[1].n, 1);
	CHECK_EQ(e.f[3].n, 0);
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", NULL, -1, 0), RES_ERR_LOCKED);
	env_done(&e);
}

static void
test_evict_leave_delete(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg *g;

	env_init(&e);
	connect_node(&e, 0, "owner");
	connect_node(&e, 1, "a");
	connect_node(&e, 2, "b");
	connect_node(&e, 3, "outsider");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "pw", -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "pw", -1, 0), RES_OK);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "pw", -1, 0), RES_OK);
	clear(&e);

	CHECK_EQ(req(&e, 1, OP_EVICT, "lan", NULL, 2, 0), RES_ERR_NOT_OWNER);
	CHECK_EQ(req(&e, 0, OP_EVICT, "lan", NULL, 0, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 0, OP_EVICT, "lan", NULL, 3, 0), RES_ERR_NO_SUCH_MEMBER);
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_EVICT, "lan", NULL, 2, 0), RES_OK);
	g = last_of(&e.f[2], MSG_NETWORK_GONE);
	CHECK(g && g->u.network_gone.reason == GONE_EVICTED && e.f[2].n == 1);
	CHECK_EQ(count_type(&e.f[1], MSG_MEMBER_GONE), 1);
	CHECK_EQ(e.f[1].n, 1);
	CHECK_EQ(count_type(&e.f[0], MSG_MEMBER_GONE), 1);
	CHECK_EQ(e.f[3].n, 0);
	CHECK_EQ(req(&e, 2, OP_GO_OFFLINE, "lan", NULL, -1, 0), RES_ERR_NOT_MEMBER);

	/* leave */
	CHECK_EQ(req(&e, 0, OP_LEAVE, "lan", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "pw", -1, 0), RES_OK);
	clear(&e);
	CHECK_EQ(req(&e, 2, OP_LEAVE, "lan", NULL, -1, 0), RES_OK);
	g = last_of(&e.f[2], MSG_NETWORK_GONE);
	CHECK(g && g->u.network_gone.reason == GONE_LEFT);
	CHECK_EQ(e.f[1].n, 1);
	CHECK_EQ(e.f[0].n, 1);

	/* delete */
	CHECK_EQ(req(&e, 1, OP_DELETE, "lan", NULL, -1, 0), RES_ERR_NOT_OWNER);
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_DELETE, "lan", NULL, -1, 0), RES_OK);
	g = last_of(&e.f[1], MSG_NETWORK_GONE);
	CHECK(g && g->u.network_gone.reason == GONE_DELETED && e.f[1].n == 1);
	CHECK(last_of(&e.f[0], MSG_NETWORK_GONE) != NULL);
	CHECK_EQ(e.f[2].n, 0);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "pw", -1, 0), RES_ERR_NO_SUCH_NETWORK);
	env_done(&e);
}

static void
test_presence(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg_member *mm;
	uint8_t token[UDP_TOKEN_LEN];
	struct endpoint ep = { .addr = 0x7f000001u, .port = 5555 };

	env_init(&e);
	connect_node(&e, 0, "owner");
	connect_node(&e, 1, "a");
	connect_node(&e, 2, "outsider");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan2", NULL, -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	clear(&e);

	/* go offline: owner and a itself get one MEMBER without ONLINE and no endpoints */
	CHECK_EQ(req(&e, 1, OP_GO_OFFLINE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(e.f[0].n, 1);
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->flags == 0 && mm->n_endpoints == 0);
	/* a itself: NETWORK (my_flags changed), MEMBER, RESULT */
	CHECK_EQ(e.f[1].n, 3);
	CHECK(last_of(&e.f[1], MSG_NETWORK) && last_of(&e.f[1], MSG_NETWORK)->u.network.my_flags == 0);
	CHECK_EQ(e.f[2].n, 0);
	clear(&e);
	CHECK_EQ(req(&e, 1, OP_GO_OFFLINE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(e.f[0].n, 0);
	CHECK_EQ(req(&e, 1, OP_GO_ONLINE, "lan", NULL, -1, 0), RES_OK);
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->flags == MEMF_ON);

	/* UDP probe: unknown token ignored; known one puts the observed endpoint first */
	memset(token, 0xee, sizeof(token));
	CHECK_EQ(medsrv_probe(e.m, token, &ep), -1);
	CHECK_EQ(medsrv_stats(e.m)->probes_unknown, 1);
	/* node 1's token is in its WELCOME, captured at connect time: reconnect to see it */
	connect_node(&e, 1, "");
	memcpy(token, last_of(&e.f[1], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	clear(&e);
	CHECK_EQ(medsrv_probe(e.m, token, &ep), 0);
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->n_endpoints == 2 && mm->endpoints[0].addr == ep.addr &&
	    mm->endpoints[0].port == ep.port && mm->endpoints[1].port == 40001);
	CHECK_EQ(e.f[0].n, 1);
	CHECK_EQ(e.f[2].n, 0);
	clear(&e);
	CHECK_EQ(medsrv_probe(e.m, token, &ep), 0);  /* unchanged: no delta */
	CHECK_EQ(e.f[0].n, 0);

	/* nick change reaches members */
	CHECK_EQ(req(&e, 1, OP_SET_NICK, "  ", NULL, -1, 0), RES_ERR_BAD_REQUEST);
	CHECK_EQ(req(&e, 1, OP_SET_NICK, "anne", NULL, -1, 0), RES_OK);
	mm = member_about(&e, 0, 1);
	CHECK(mm && strcmp(mm->nick, "anne") == 0);
	CHECK_EQ(e.f[2].n, 0);

	/* disconnect: owner sees a offline; the owner's other network is not involved */
	clear(&e);
	disconnect_node(&e, 1);
	CHECK_EQ(e.f[0].n, 1);
	mm = member_about(&e, 0, 1);
	/* switched on but not connected: still a peer for the others (MEMF_ACTIVE) */
	CHECK(mm && mm->flags == MEMF_ACTIVE && strcmp(mm->network, "lan") == 0);
	CHECK_EQ(medsrv_probe(e.m, token, &ep), -1);
	/* reconnect: the owner sees it online again, with its stored nick */
	clear(&e);
	connect_node(&e, 1, "");
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->flags == MEMF_ON && strcmp(mm->nick, "anne") == 0);
	CHECK_EQ(e.f[0].n, 1);
	env_done(&e);
}

static void
send_candidates(struct env *e, int i, const struct endpoint *eps, uint8_t n)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_CANDIDATES;
	m.u.candidates.n_mapped = n;
	memcpy(m.u.candidates.mapped, eps, n * sizeof(eps[0]));
	medsrv_session_msg(e->m, e->f[i].s, &m);
}

/* CANDIDATES (PROTOCOL.md 3.4): mapped endpoints go into MEMBER after the observed one and
 * before the local ones, as a delta to the members; unchanged sets send nothing; n = 0
 * withdraws them; a new connection starts without them. */
static void
test_candidates(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg_member *mm;
	uint8_t token[UDP_TOKEN_LEN];
	struct endpoint obs = { .addr = 0xcb007107u, .port = 40001 };
	struct endpoint map[2] = { { .addr = 0xcb007107u, .port = 41001 }, { .addr = 0xcb007107u, .port = 40001 } };

	env_init(&e);
	connect_node(&e, 0, "owner");
	connect_node(&e, 1, "a");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	memcpy(token, last_of(&e.f[1], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	CHECK_EQ(medsrv_probe(e.m, token, &obs), 0);
	clear(&e);

	/* the second mapped endpoint equals the observed one: listed once */
	send_candidates(&e, 1, map, 2);
	mm = member_about(&e, 0, 1);
	CHECK(mm != NULL);
	if (mm) {
		CHECK_EQ(mm->n_endpoints, 3);
		CHECK_EQ(mm->endpoints[0].port, 40001);         /* observed */
		CHECK_EQ(mm->endpoints[1].port, 41001);         /* mapped */
		CHECK_EQ(mm->endpoints[2].addr, 0xc0a80002u);   /* local */
	}
	CHECK(member_about(&e, 1, 1) != NULL);                /* a sees itself too */
	clear(&e);
	send_candidates(&e, 1, map, 2);
	CHECK_EQ(e.f[0].n, 0);
	send_candidates(&e, 1, map, 0);
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->n_endpoints == 2 && mm->endpoints[1].addr == 0xc0a80002u);

	/* before HELLO: ignored */
	e.f[2].s = medsrv_session_open(e.m, e.f[2].key, &e.f[2]);
	send_candidates(&e, 2, map, 1);
	CHECK_EQ(medsrv_stats(e.m)->msgs_ignored, 1);

	/* a reconnect forgets them */
	send_candidates(&e, 1, map, 1);
	disconnect_node(&e, 1);
	clear(&e);
	connect_node(&e, 1, "");
	mm = member_about(&e, 0, 1);
	CHECK(mm && mm->n_endpoints == 1 && mm->endpoints[0].addr == 0xc0a80002u);
	env_done(&e);
}

/* Everything the mediator decided survives a restart: same addresses, same memberships. */
static void
test_restart(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	const struct msg *w;
	char path[128], err[256];

	env_init(&e);
	connect_node(&e, 0, "owner");
	connect_node(&e, 1, "a");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "pw", -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "pw", -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_GO_OFFLINE, "lan", NULL, -1, 0), RES_OK);
	medsrv_free(e.m);
	store_close(e.st);

	snprintf(path, sizeof(path), "%s/mediator.db", e.dir);
	e.st = store_open(store_path(path), err, sizeof(err));
	CHECK(e.st != NULL);
	io.arg = &e;
	e.m = medsrv_new(e.st, &cfg, &io);
	clear(&e);
	connect_node(&e, 1, "");
	w = last_of(&e.f[1], MSG_WELCOME);
	CHECK(w && w->u.welcome.address == RANGE + 2 && strcmp(w->u.welcome.nick, "a") == 0);
	CHECK_EQ(count_type(&e.f[1], MSG_NETWORK), 1);
	w = last_of(&e.f[1], MSG_NETWORK);
	CHECK(w && w->u.network.my_flags == 0);  /* offline survived */
	CHECK(member_about(&e, 1, 0) != NULL && member_about(&e, 1, 0)->flags == (MEMF_OWNER | MEMF_ACTIVE));
	CHECK_EQ(req(&e, 1, OP_GO_ONLINE, "lan", NULL, -1, 0), RES_OK);
	env_done(&e);
}

/* ---- NAT classification through the mediator (natprobe.c, natclass.c) ---- */

#define SA 0xc6336401u                   /* server address A: listen 0 */
#define SB 0xc6336402u                   /* server address B: listen 1 */
#define NPUB 0xcb007107u                 /* the node's NAT */

/* A mediator on e's store with the NAT sockets (a second one: another instance). */
static struct medsrv *
nat_medsrv(struct env *e)
{
	static const struct natsock socks[6] = {
		{ SA, 7000, 0, 0 }, { SA, 7001, 0, 1 }, { SA, 7002, 0, 2 },
		{ SB, 8000, 1, 0 }, { SB, 8001, 1, 1 }, { SB, 8002, 1, 2 },
	};
	struct medsrv_config cfg = {
		TEST_CFG,
		.n_nat_socks = 6,
		.relay_pairs = e->relay_pairs,
	};
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, io_udp_send, io_timer,
	    io_punch_timer, NULL, NULL };

	memcpy(cfg.nat_socks, socks, sizeof(socks));
	io.arg = e;
	return medsrv_new(e->st, &cfg, &io);
}

static void
nat_env_init(struct env *e)
{
	env_init(e);
	e->punch_at = -1;
	medsrv_free(e->m);
	e->m = nat_medsrv(e);
}

/* connect_node, with the TCP connection's local endpoint told first. */
static void
nat_connect(struct env *e, int i, const struct endpoint *local)
{
	struct fake *f = &e->f[i];
	struct msg m;

	f->timer_at = -1;
	f->s = medsrv_session_open(e->m, f->key, f);
	medsrv_session_local(e->m, f->s, local);
	memset(&m, 0, sizeof(m));
	m.type = MSG_HELLO;
	m.u.hello.version = SHOAL_PROTO_VERSION;
	m.u.hello.udp_port = 40000;
	medsrv_session_msg(e->m, f->s, &m);
}

/* Moves the clock to t, firing node i's NAT timer whenever it is due on the way. */
static void
advance(struct env *e, int i, double t)
{
	struct fake *f = &e->f[i];

	while (f->timer_at >= 0 && f->timer_at <= t) {
		e->now = f->timer_at;
		f->timer_at = -1;
		medsrv_session_timer(e->m, f->s);
	}
	e->now = t;
}

static int
nat_probe(struct env *e, const uint8_t *token, uint16_t test_id, uint8_t target, int sock,
    uint16_t port)
{
	struct nat_probe p;
	struct endpoint from = { .addr = NPUB, .port = port };

	memcpy(p.token, token, UDP_TOKEN_LEN);
	p.test_id = test_id;
	p.target = target;
	return medsrv_nat_probe(e->m, &p, sock, &from);
}

static void
nat_report(struct env *e, int i, uint16_t test_id, uint8_t tests, uint8_t lifetime,
    uint8_t hairpin)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_REPORT;
	m.u.nat_report.test_id = test_id;
	m.u.nat_report.local_port = 40000;
	m.u.nat_report.replies = 0x3f;
	m.u.nat_report.tests = tests;
	m.u.nat_report.lifetime_seen = lifetime;
	m.u.nat_report.hairpin = hairpin;
	medsrv_session_msg(e->m, e->f[i].s, &m);
}

static void
test_nat_sequence(void)
{
	static const int sock_of[6] = { 0, 1, 3, 4, 2, 5 };
	struct endpoint local = { .addr = SA, .port = 7000 };
	const struct msg *plan, *info;
	uint8_t token[UDP_TOKEN_LEN];
	static struct env e;      /* large (captured messages): not on the stack */
	uint16_t id;
	double t0;
	int k;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	memcpy(token, last_of(&e.f[0], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	/* The plan comes after WELCOME and its burst: it is the last message. */
	CHECK(e.f[0].n >= 2 && e.f[0].got[0].type == MSG_WELCOME);
	plan = &e.f[0].got[e.f[0].n - 1];
	CHECK_EQ(plan->type, MSG_NAT_PLAN);
	CHECK_EQ(plan->u.nat_plan.phase2_ms, 1000);
	CHECK_EQ(plan->u.nat_plan.n_targets, 6);
	CHECK(plan->u.nat_plan.targets[0].addr == SA && plan->u.nat_plan.targets[0].port == 7000);
	CHECK(plan->u.nat_plan.targets[1].addr == SA && plan->u.nat_plan.targets[1].port == 7001);
	CHECK(plan->u.nat_plan.targets[2].addr == SB && plan->u.nat_plan.targets[2].port == 8000);
	CHECK(plan->u.nat_plan.targets[5].addr == SB && plan->u.nat_plan.targets[5].port == 8002);
	CHECK(e.f[0].timer_at > e.now);
	id = plan->u.nat_plan.test_id;
	t0 = e.now;
	clear(&e);

	/* Rejected: unknown token, another test, another socket, a target past the plan. */
	CHECK_EQ(nat_probe(&e, (const uint8_t *)"0123456789abcdef", id, 0, 0, 50000), -1);
	CHECK_EQ(nat_probe(&e, token, (uint16_t)(id + 1), 0, 0, 50000), -1);
	CHECK_EQ(nat_probe(&e, token, id, 0, 1, 50000), -1);
	CHECK_EQ(medsrv_stats(e.m)->nat_probes_bad, 3);
	CHECK_EQ(e.n_udp, 0);

	/* Phase 1: the first probe triggers kind 1 from A:7001 and kind 2 from B:8000. */
	e.now = t0 + 0.02;
	CHECK_EQ(nat_probe(&e, token, id, 0, 0, 50000), 0);
	CHECK_EQ(e.n_udp, 2);
	CHECK(e.udp[0].sock == 1 && e.udp[0].t.kind == NAT_TEST_OTHER_PORT);
	CHECK(e.udp[1].sock == 3 && e.udp[1].t.kind == NAT_TEST_OTHER_ADDR);
	CHECK(e.udp[0].to.addr == NPUB && e.udp[0].to.port == 50000);
	CHECK(e.udp[0].t.test_id == id && e.udp[0].t.nonce == plan->u.nat_plan.nonce);
	CHECK_EQ(nat_probe(&e, token, id, 0, 0, 50000), 0);      /* repeats: no more tests */
	CHECK_EQ(e.n_udp, 2);
	advance(&e, 0, t0 + 0.2);
	CHECK_EQ(e.n_udp, 4);                                     /* the second round */
	CHECK(e.udp[2].sock == 1 && e.udp[3].sock == 3);
	nat_report(&e, 0, id, 1, 0, NAT_HP_UNTRIED);              /* kind 1 came through */
	nat_report(&e, 0, (uint16_t)(id + 7), 3, 0, NAT_HP_UNTRIED); /* stale: ignored */
	CHECK_EQ(medsrv_stats(e.m)->nat_reports_stale, 1);
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 0);

	/* Phase 2: sequential ports; NAT_INFO as soon as every target was observed. */
	advance(&e, 0, t0 + 1.0);
	for (k = 1; k < 6; k++)
		CHECK_EQ(nat_probe(&e, token, id, (uint8_t)k, sock_of[k], (uint16_t)(50000 + k)), 0);
	info = last_of(&e.f[0], MSG_NAT_INFO);
	CHECK(info != NULL);
	if (info) {
		CHECK_EQ(info->u.nat_info.udp, NAT_UDP_OK);
		CHECK_EQ(info->u.nat_info.mapping, NAT_MAP_APDM);
		CHECK_EQ(info->u.nat_info.ports, NAT_PORTS_SEQUENTIAL);
		CHECK_EQ(info->u.nat_info.step, 1);
		CHECK_EQ(info->u.nat_info.filtering, NAT_FILT_ADF);
		CHECK_EQ(info->u.nat_info.addrs, 2);
		CHECK(info->u.nat_info.public_ep.addr == NPUB &&
		    info->u.nat_info.public_ep.port == 50000);
	}
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 1);
	/* The second burst (300 ms later) changes nothing. */
	e.now = t0 + 1.3;
	for (k = 1; k < 6; k++)
		CHECK_EQ(nat_probe(&e, token, id, (uint8_t)k, sock_of[k], (uint16_t)(50000 + k)), 0);
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 1);
	/* The settle deadline passes without a second NAT_INFO either. */
	advance(&e, 0, t0 + 3.0);
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 1);

	/* Lifetime: kind 3 seq 0 from the last target (B:8002) 3 s after its last probe. */
	advance(&e, 0, t0 + 1.3 + 2.9);
	CHECK_EQ(e.n_udp, 4);
	advance(&e, 0, t0 + 1.3 + 3.0);
	CHECK_EQ(e.n_udp, 5);
	CHECK(e.udp[4].sock == 5 && e.udp[4].t.kind == NAT_TEST_LIFETIME && e.udp[4].t.seq == 0);
	CHECK(e.udp[4].to.port == 50005);
	nat_report(&e, 0, id, 1, 0x01, NAT_HP_BACK);    /* seq 0 and the hairpin came back */
	info = last_of(&e.f[0], MSG_NAT_INFO);
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 2);
	CHECK(info && info->u.nat_info.lifetime_s == 3 && info->u.nat_info.hairpin ==
	    NAT_HAIRPIN_YES && info->u.nat_info.lifetime_max_s == 0);
	/* seq 1 six seconds later, never reported: 2 s after it the upper bound is 6. */
	advance(&e, 0, t0 + 1.3 + 9.0);
	CHECK_EQ(e.n_udp, 6);
	CHECK_EQ(e.udp[5].t.seq, 1);
	advance(&e, 0, t0 + 1.3 + 11.0);
	info = last_of(&e.f[0], MSG_NAT_INFO);
	CHECK_EQ(count_type(&e.f[0], MSG_NAT_INFO), 3);
	CHECK(info && info->u.nat_info.lifetime_s == 3 && info->u.nat_info.lifetime_max_s == 6);
	/* The remaining gaps run out: 5 kind-3 tests in all, then the timer stops. */
	advance(&e, 0, t0 + 200.0);
	CHECK_EQ(e.n_udp, 9);
	CHECK(e.f[0].timer_at < 0);
	disconnect_node(&e, 0);
	env_done(&e);
}

static void
test_nat_blocked_and_restart(void)
{
	struct endpoint local = { .addr = SB, .port = 8000 };
	const struct msg *plan, *info;
	uint8_t token[UDP_TOKEN_LEN];
	struct endpoint from = { .addr = NPUB, .port = 50000 };
	static struct env e;      /* large (captured messages): not on the stack */
	uint16_t id;
	double t0;

	nat_env_init(&e);
	nat_connect(&e, 1, &local);
	memcpy(token, last_of(&e.f[1], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	plan = last_of(&e.f[1], MSG_NAT_PLAN);
	CHECK(plan != NULL);
	if (plan == NULL)
		return;
	/* Connected to B: B is target 0. */
	CHECK(plan->u.nat_plan.targets[0].addr == SB && plan->u.nat_plan.targets[0].port == 8000);
	id = plan->u.nat_plan.test_id;
	t0 = e.now;
	/* Nothing observed at 2.5 s: wait; at 4 s: blocked. */
	advance(&e, 1, t0 + 2.6);
	CHECK_EQ(count_type(&e.f[1], MSG_NAT_INFO), 0);
	advance(&e, 1, t0 + 4.1);
	info = last_of(&e.f[1], MSG_NAT_INFO);
	CHECK(info && info->u.nat_info.udp == NAT_UDP_BLOCKED);

	/* The public address changes (UDP_PROBE from elsewhere): a new plan, but not before
	 * 10 s after the last one. */
	CHECK_EQ(medsrv_probe(e.m, token, &from), 0);
	CHECK_EQ(count_type(&e.f[1], MSG_NAT_PLAN), 1);
	from.addr = NPUB + 1;
	e.now = t0 + 5.0;
	CHECK_EQ(medsrv_probe(e.m, token, &from), 0);
	CHECK_EQ(count_type(&e.f[1], MSG_NAT_PLAN), 1);
	advance(&e, 1, t0 + 10.5);
	CHECK_EQ(count_type(&e.f[1], MSG_NAT_PLAN), 2);
	plan = last_of(&e.f[1], MSG_NAT_PLAN);
	CHECK(plan && plan->u.nat_plan.test_id == (uint16_t)(id + 1));
	/* The old test is gone. */
	CHECK_EQ(nat_probe(&e, token, id, 0, 3, 50000), -1);
	CHECK_EQ(nat_probe(&e, token, (uint16_t)(id + 1), 0, 3, 50000), 0);

	/* A node on an unknown listen gets no plan (and no timer). */
	local.port = 9999;
	nat_connect(&e, 2, &local);
	CHECK_EQ(count_type(&e.f[2], MSG_NAT_PLAN), 0);
	CHECK(e.f[2].timer_at < 0);
	disconnect_node(&e, 1);
	disconnect_node(&e, 2);
	env_done(&e);
}

/*
 * Runs node i's classification as its NAT would answer: phase 1 at 2 x delay after the plan
 * (one round trip), then phase 2 with target k seen from pub:port + step x k; the report says
 * which filtering tests came through. NAT_INFO goes out with the last phase-2 probe.
 */
static void
classify(struct env *e, int i, uint32_t pub, uint16_t port, uint16_t step, uint8_t tests,
    double delay)
{
	static const int sock_of[6] = { 0, 1, 3, 4, 2, 5 };
	const struct msg *plan = last_of(&e->f[i], MSG_NAT_PLAN);
	const struct msg *w = last_of(&e->f[i], MSG_WELCOME);
	struct nat_probe p;
	struct endpoint from;
	double t0 = e->now;
	int k;

	CHECK(plan != NULL && w != NULL);
	if (plan == NULL || w == NULL)
		return;
	memcpy(p.token, w->u.welcome.udp_token, UDP_TOKEN_LEN);
	p.test_id = plan->u.nat_plan.test_id;
	memset(&from, 0, sizeof(from));
	for (k = 0; k < 6; k++) {
		e->now = k == 0 ? t0 + 2 * delay : t0 + 1.0;
		p.target = (uint8_t)k;
		from.addr = pub;
		from.port = (uint16_t)(port + step * k);
		CHECK_EQ(medsrv_nat_probe(e->m, &p, sock_of[k], &from), 0);
		if (k == 0)
			nat_report(e, i, p.test_id, tests, 0, NAT_HP_UNTRIED);
	}
	CHECK(last_of(&e->f[i], MSG_NAT_INFO) != NULL);
}

/* The last PUNCH f got about peer j, or NULL. */
static const struct msg_punch *
punch_about(const struct env *e, int i, int j)
{
	const struct fake *f = &e->f[i];
	int k;

	for (k = f->n - 1; k >= 0; k--)
		if (f->got[k].type == MSG_PUNCH &&
		    memcmp(f->got[k].u.punch.peer, e->f[j].key, KEY_LEN) == 0)
			return &f->got[k].u.punch;
	return NULL;
}

#define P0 0xc6336401u                  /* 198.51.100.1: node 0's NAT (easy) */
#define P1 0xcb007101u                  /* 203.0.113.1: nodes 1 and 2 (sequential) */

static void
test_punch(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	struct endpoint from = { .addr = 0, .port = 0 };
	const struct msg_punch *p;
	uint8_t token1[UDP_TOKEN_LEN];
	static struct env e;      /* large (captured messages): not on the stack */
	double t_plan;
	int k;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);        /* eim, preserved, eif */
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 0);      /* alone in its network */

	nat_connect(&e, 1, &local);
	memcpy(token1, last_of(&e.f[1], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 0);      /* node 1 has no NAT_INFO yet */
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 0);
	classify(&e, 1, P1, 50000, 1, 0, 0.030);        /* apdm, sequential step 1, apdf */

	/* Its NAT_INFO plans the pair: node 0 aims at 8 predicted ports past the highest port
	 * seen (50005), node 1 at node 0's one endpoint; both fire at the same instant. */
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 1);
	p = punch_about(&e, 0, 1);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ(p->strategy, PUNCH_PREDICT);
		CHECK_EQ(p->n_targets, 15);     /* 8 past the highest, 7 below it */
		for (k = 0; k < 8; k++)
			CHECK(p->targets[k].addr == P1 && p->targets[k].port == 50006 + k);
		for (k = 8; k < p->n_targets; k++)
			CHECK(p->targets[k].addr == P1 && p->targets[k].port == 50005 - (k - 7));
		CHECK_EQ(p->my_mapping, NAT_MAP_EIM);
		CHECK_EQ(p->peer_mapping, NAT_MAP_APDM);
		CHECK_EQ(p->peer_ports, NAT_PORTS_SEQUENTIAL);
		CHECK_EQ(p->peer_filtering, NAT_FILT_APDF);
		CHECK_EQ(p->start_ms, 100 + 30 - 10);
		CHECK_EQ(p->rounds, 5);
		CHECK_EQ(p->interval_ms, 200);
	}
	p = punch_about(&e, 1, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ(p->strategy, PUNCH_PREDICT);
		CHECK_EQ(p->n_targets, 1);
		CHECK(p->targets[0].addr == P0 && p->targets[0].port == 40000);
		CHECK_EQ(p->start_ms, 100);
	}
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 1);

	/* A new observed port 3 s later plans again, but not within 10 s: the trigger is
	 * deferred to the moment the window opens (not dropped), and a second one inside the
	 * window joins it. */
	t_plan = e.now;
	e.now += 3.0;
	from.addr = P1;
	from.port = 50010;
	CHECK_EQ(medsrv_probe(e.m, token1, &from), 0);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 1);
	CHECK(e.punch_at == t_plan + 10.0);
	e.now += 4.0;
	from.port = 50011;
	CHECK_EQ(medsrv_probe(e.m, token1, &from), 0);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK(e.punch_at == t_plan + 10.0);
	CHECK_EQ(medsrv_stats(e.m)->punch_deferred, 2);
	/* When it opens, one plan goes out, predicted from the newest highest port. */
	e.now = e.punch_at - 0.001;
	medsrv_punch_timer(e.m);                /* early: nothing yet, the timer re-armed */
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK(e.punch_at == t_plan + 10.0);
	e.now = e.punch_at;
	medsrv_punch_timer(e.m);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 2);
	p = punch_about(&e, 0, 1);
	CHECK(p && p->n_targets == 15 && p->targets[0].port == 50012);
	CHECK(e.punch_at < 0);

	/* Node 2 behind the same sequential NAT as node 1: with node 1 it is lan, at once; with
	 * node 0 it waits until 2 s after the last plan on that address. */
	nat_connect(&e, 2, &local);
	CHECK_EQ(req(&e, 2, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 2, P1, 50100, 1, 0, 0.020);
	p = punch_about(&e, 2, 1);
	CHECK(p && p->strategy == PUNCH_LAN);
	CHECK(punch_about(&e, 2, 0) == NULL);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2);
	CHECK(e.punch_at > e.now);
	e.now = e.punch_at;
	medsrv_punch_timer(e.m);
	p = punch_about(&e, 0, 2);
	CHECK(p && p->strategy == PUNCH_PREDICT && p->n_targets == 15 &&
	    p->targets[0].addr == P1 && p->targets[0].port == 50106);
	p = punch_about(&e, 2, 0);
	CHECK(p && p->n_targets == 1 && p->targets[0].port == 40000);
	CHECK(e.punch_at < 0);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 4);

	/* A node that goes offline in the network is no longer planned with. */
	disconnect_node(&e, 2);
	CHECK_EQ(req(&e, 1, OP_GO_OFFLINE, "net", NULL, -1, 0), RES_OK);
	e.now += 20.0;
	from.port = 50020;
	CHECK_EQ(medsrv_probe(e.m, token1, &from), 0);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 4);
	/* Back online: planned at once (more than 10 s since the last plan). */
	CHECK_EQ(req(&e, 1, OP_GO_ONLINE, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 5);
	disconnect_node(&e, 0);
	disconnect_node(&e, 1);
	env_done(&e);
}

static void
punch_request(struct env *e, int i, const uint8_t peer[KEY_LEN])
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_PUNCH_REQUEST;
	memcpy(m.u.punch_request.peer, peer, KEY_LEN);
	medsrv_session_msg(e->m, e->f[i].s, &m);
}

/*
 * MSG_PUNCH_REQUEST (PROTOCOL.md 3.2): a daemon whose path to a peer died asks for a new plan.
 * Both sides get a PUNCH; inside the pair's 10 s window the request waits for it to open
 * (both sides' requests become one plan); requests for peers it may not talk to plan nothing;
 * a node has a budget of 16 and 1 a second.
 */
static void
test_punch_request(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	uint8_t stranger[KEY_LEN];
	static struct env e;      /* large (captured messages): not on the stack */
	double t_plan;
	int k;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);
	nat_connect(&e, 1, &local);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 1, P0 + 1, 40000, 0, 0, 0.010);   /* eim, apdf */
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);      /* the classification's plan */
	t_plan = e.now;

	/* 2 s later both lose the path and ask: one deferred plan at t_plan + 10 s. */
	e.now = t_plan + 2.0;
	punch_request(&e, 0, e.f[1].key);
	e.now = t_plan + 2.5;
	punch_request(&e, 1, e.f[0].key);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 1);
	CHECK(e.punch_at == t_plan + 10.0);
	e.now = e.punch_at;
	medsrv_punch_timer(e.m);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 2);
	CHECK(punch_about(&e, 0, 1) && punch_about(&e, 0, 1)->strategy == PUNCH_SIMULTANEOUS);
	CHECK(e.punch_at < 0);
	CHECK_EQ(medsrv_stats(e.m)->punch_requests, 2);

	/* Outside the window: planned at once, both sides. */
	e.now += 10.0;
	punch_request(&e, 1, e.f[0].key);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 3);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 3);

	/* Nothing for: ourselves, a key nobody uses, a node we share no network with, a peer
	 * that is not connected (its reconnection will plan the pair). */
	e.now += 10.0;
	punch_request(&e, 0, e.f[0].key);
	memset(stranger, 0x77, sizeof(stranger));
	punch_request(&e, 0, stranger);
	nat_connect(&e, 2, &local);
	CHECK_EQ(req(&e, 2, OP_CREATE, "other", NULL, -1, 0), RES_OK);
	classify(&e, 2, P1, 40000, 0, 0, 0.010);
	punch_request(&e, 0, e.f[2].key);
	punch_request(&e, 2, e.f[0].key);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 3);
	CHECK_EQ(count_type(&e.f[2], MSG_PUNCH), 0);
	disconnect_node(&e, 1);
	punch_request(&e, 0, e.f[1].key);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 3);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 3);

	/* The budget: node 2 (full bucket) asks 40 times at once: 16 are looked at, 24 are
	 * dropped; 2 s later 2 more pass. */
	e.now += 30.0;
	CHECK_EQ(medsrv_stats(e.m)->punch_requests_limited, 0);
	for (k = 0; k < 40; k++)
		punch_request(&e, 2, e.f[0].key);
	CHECK_EQ(medsrv_stats(e.m)->punch_requests_limited, 24);
	e.now += 2.0;
	for (k = 0; k < 3; k++)
		punch_request(&e, 2, e.f[0].key);
	CHECK_EQ(medsrv_stats(e.m)->punch_requests_limited, 25);
	disconnect_node(&e, 0);
	disconnect_node(&e, 2);
	env_done(&e);
}

/* A deferred pair whose node goes away is forgotten with it: no plan when the window opens,
 * and freeing the server with deferred pairs leaks nothing (valgrind). */
static void
test_punch_deferred_forget(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	static struct env e;      /* large (captured messages): not on the stack */
	int k;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);
	nat_connect(&e, 1, &local);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 1, P0 + 1, 40000, 0, 0, 0.010);
	nat_connect(&e, 2, &local);
	CHECK_EQ(req(&e, 2, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 2, P0 + 2, 40000, 0, 0, 0.010);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 3);
	e.now += 1.0;
	punch_request(&e, 0, e.f[1].key);
	punch_request(&e, 0, e.f[2].key);
	CHECK_EQ(medsrv_stats(e.m)->punch_deferred, 2);
	disconnect_node(&e, 1);
	for (k = 0; k < 4 && e.punch_at >= 0; k++) {    /* the loop, firing the timer */
		e.now = e.punch_at;
		medsrv_punch_timer(e.m);
	}
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 4);      /* 0-2 only */
	CHECK(e.punch_at < 0);
	e.now += 1.0;
	punch_request(&e, 2, e.f[0].key);                 /* deferred, then freed with it */
	CHECK_EQ(medsrv_stats(e.m)->punch_deferred, 3);
	disconnect_node(&e, 0);
	disconnect_node(&e, 2);
	env_done(&e);
}

/* Node i reconnects as a new key (byte kb) from source address src. */
static void
renew(struct env *e, int i, uint8_t kb, uint32_t src, const char *nick)
{
	if (e->f[i].s)
		disconnect_node(e, i);
	memset(e->f[i].key, kb, KEY_LEN);
	connect_node_from(e, i, nick, src);
}

/* Wrong join passwords are limited per source address and per network, not only per key:
 * a new key every few guesses does not escape. Every password operation counts per key. */
static void
test_password_limits(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	const struct msg *r;
	int k, i, st;

	env_init(&e);
	connect_node(&e, 0, "alice");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "secret", -1, 0), RES_OK);

	/* One source, a new key every 5 guesses: 20 failures from it, then the source is out,
	 * even for a key it never used, with the right password. */
	for (k = 0; k < 4; k++) {
		renew(&e, 1, (uint8_t)(0x40 + k), 0x0a000001u, "mallory");
		for (i = 0; i < 5; i++)
			CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "guess", -1, 0), RES_ERR_BAD_PASSWORD);
	}
	renew(&e, 1, 0x50, 0x0a000001u, "mallory");
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "secret", -1, 0), RES_ERR_RATE_LIMITED);
	/* Another source is not affected. */
	renew(&e, 2, 0x51, 0x0a000002u, "bob");
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "secret", -1, 0), RES_OK);

	/* Many sources against one network: at 30 failures the network refuses joins for a
	 * while (the owner's log says it is under attack); the backoff then doubles. */
	e.now += 2 * JL_WINDOW;
	for (k = 0; k < 6; k++) {
		renew(&e, 3, (uint8_t)(0x60 + k), 0x0b000000u + (uint32_t)k, "botnet");
		for (i = 0; i < 5; i++) {
			st = req(&e, 3, OP_JOIN, "lan", "guess", -1, 0);
			CHECK(st == RES_ERR_BAD_PASSWORD);
		}
	}
	renew(&e, 3, 0x70, 0x0c000001u, "carol");
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", "secret", -1, 0), RES_ERR_RATE_LIMITED);
	r = last_of(&e.f[3], MSG_RESULT);
	CHECK(r && strstr(r->u.result.text, "this network") != NULL);
	e.now += JL_WINDOW + 1;
	CHECK_EQ(req(&e, 3, OP_JOIN, "lan", "secret", -1, 0), RES_OK);

	/* Password operations per key: CREATE with a password 10 times, then refused. */
	e.now += 2 * JL_WINDOW;
	renew(&e, 4, 0x71, 0x0d000001u, "creator");
	for (i = 0; i < 10; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		CHECK_EQ(req(&e, 4, OP_CREATE, name, "pw", -1, 0), RES_OK);
	}
	CHECK_EQ(req(&e, 4, OP_CREATE, "n10", "pw", -1, 0), RES_ERR_RATE_LIMITED);
	/* Without a password nothing is hashed and nothing counts. */
	CHECK_EQ(req(&e, 4, OP_CREATE, "n11", "", -1, 0), RES_OK);
	env_done(&e);
}

/* New keys from one source address: 30 a minute register, the next is dropped (kicked before
 * it costs a row); a known key from the same source still connects. Unused registrations are
 * reclaimed; connected and member nodes are not. */
static void
test_registrations(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	int k;

	env_init(&e);
	connect_node(&e, 0, "alice");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "", -1, 0), RES_OK);
	for (k = 0; k < 30; k++) {
		renew(&e, 1, (uint8_t)(0x80 + k), 0x0a000001u, "spam");
		CHECK_EQ(e.f[1].kicked, 0);
		CHECK(last_of(&e.f[1], MSG_WELCOME) != NULL);
	}
	clear(&e);
	renew(&e, 1, 0xb0, 0x0a000001u, "spam");
	CHECK_EQ(e.f[1].kicked, 1);
	CHECK(last_of(&e.f[1], MSG_WELCOME) == NULL);
	CHECK_EQ(medsrv_stats(e.m)->registrations_limited, 1);
	e.f[1].s = NULL;        /* kicked: the session is gone */
	renew(&e, 1, 0x80, 0x0a000001u, "spam");     /* already registered: fine */
	CHECK(last_of(&e.f[1], MSG_WELCOME) != NULL);
	disconnect_node(&e, 1);

	/* Reclaim: 29 unused keys (0x81..0x9d) go; 0x80 just disconnected goes too; alice, the
	 * network's owner, stays. A connected node with no network stays. */
	renew(&e, 2, 0xc0, 0x0a000002u, "idle");
	CHECK_EQ(medsrv_reclaim(e.m, 4102444800LL, 3600), 30);
	CHECK_EQ(req(&e, 0, OP_SET_NICK, "alice2", NULL, -1, 0), RES_OK);
	CHECK_EQ(medsrv_reclaim(e.m, 4102444800LL + 7200, 3600), 0);
	env_done(&e);
}

/* The operator's budget (--register-budget): 3 a minute refuses the fourth new key from one
 * source; no limit (UINT_MAX) takes 100 from one source. */
static void
test_register_budget(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	unsigned budgets[] = { 3, UINT_MAX };
	int b, k;

	for (b = 0; b < 2; b++) {
		int n = budgets[b] == 3 ? 3 : 100;

		env_init(&e);
		medsrv_free(e.m);
		cfg.register_budget = budgets[b];
		io.arg = &e;
		e.m = medsrv_new(e.st, &cfg, &io);
		for (k = 0; k < n; k++) {
			renew(&e, 1, (uint8_t)(0x20 + k), 0x0a000003u, "many");
			CHECK_EQ(e.f[1].kicked, 0);
			CHECK(last_of(&e.f[1], MSG_WELCOME) != NULL);
		}
		clear(&e);
		renew(&e, 1, 0xf0, 0x0a000003u, "many");
		CHECK_EQ(e.f[1].kicked, budgets[b] == 3);
		CHECK_EQ(medsrv_stats(e.m)->registrations_limited, budgets[b] == 3 ? 1u : 0u);
		if (e.f[1].kicked)
			e.f[1].s = NULL;
		env_done(&e);
	}
}

/* Password jobs off the loop: io.pw_submit parks the request; its answer comes with the
 * result; a node has at most 2 running; a session gone meanwhile gets nothing. */
static struct pw_job jobs[8];
static int n_jobs;

static int
io_pw_submit(void *arg, const struct pw_job *job)
{
	(void)arg;
	if (n_jobs >= 8)
		return -1;
	jobs[n_jobs++] = *job;
	return 0;
}

static void
test_password_async(void)
{
	static struct env e;      /* large (captured messages): not on the stack */
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, io_pw_submit, NULL };
	int k;

	env_init(&e);
	/* Same world, now with a pool: a new mediator over the same store. */
	medsrv_free(e.m);
	io.arg = &e;
	{
		struct medsrv_config cfg = { TEST_CFG };

		e.m = medsrv_new(e.st, &cfg, &io);
	}
	n_jobs = 0;
	connect_node(&e, 0, "alice");
	connect_node(&e, 1, "bob");
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", "secret", -1, 0), -1);    /* parked */
	CHECK_EQ(n_jobs, 1);
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan2", "secret", -1, 0), -1);
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan3", "secret", -1, 0), RES_ERR_RATE_LIMITED);
	CHECK_EQ(n_jobs, 2);
	for (k = 0; k < 2; k++) {
		pw_job_run(&jobs[k]);
		medsrv_pw_done(e.m, &jobs[k]);
	}
	CHECK(last_of(&e.f[0], MSG_RESULT) && last_of(&e.f[0], MSG_RESULT)->u.result.status ==
	    RES_OK);
	CHECK_EQ(count_type(&e.f[0], MSG_NETWORK), 2);

	/* A wrong and a right password from bob, answered in order of the results. */
	n_jobs = 0;
	clear(&e);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "wrong", -1, 0), -1);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", "secret", -1, 0), -1);
	pw_job_run(&jobs[0]);
	medsrv_pw_done(e.m, &jobs[0]);
	CHECK_EQ(last_of(&e.f[1], MSG_RESULT)->u.result.status, RES_ERR_BAD_PASSWORD);
	pw_job_run(&jobs[1]);
	medsrv_pw_done(e.m, &jobs[1]);
	CHECK_EQ(last_of(&e.f[1], MSG_RESULT)->u.result.status, RES_OK);

	/* The session goes before its result: nobody is answered, nothing breaks. */
	n_jobs = 0;
	connect_node(&e, 2, "carol");
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", "secret", -1, 0), -1);
	disconnect_node(&e, 2);
	connect_node(&e, 2, "carol");
	clear(&e);
	pw_job_run(&jobs[0]);
	medsrv_pw_done(e.m, &jobs[0]);
	CHECK_EQ(count_type(&e.f[2], MSG_RESULT), 0);
	env_done(&e);
}

#define P2 0xcb007102u                  /* 203.0.113.2: node 1's NAT (random ports; UDP
					 * blocked in test_punch_tcp) */

/* Random ports vs an APDF easy side: birthday, the random side gets the sockets, the other the
 * probes; the pair is planned again PUNCH_RETRY_1_S and PUNCH_RETRY_2_S later, then no more;
 * a trigger in between plans at once and counts afresh. */
static void
test_punch_birthday(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	const struct msg_punch *p;
	static struct env e;      /* large (captured messages): not on the stack */
	int k;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 0, 0.010);        /* eim, preserved, apdf */
	nat_connect(&e, 1, &local);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 1, P2, 20000, 5000, 0, 0.010);     /* apdm, random, apdf */

	p = punch_about(&e, 1, 0);
	CHECK(p && p->strategy == PUNCH_BIRTHDAY && p->sockets == BIRTHDAY_SOCKETS &&
	    p->probes == 0 && p->n_targets == 1 && p->targets[0].addr == P0);
	p = punch_about(&e, 0, 1);
	CHECK(p && p->strategy == PUNCH_BIRTHDAY && p->sockets == 0 &&
	    p->probes == BIRTHDAY_PROBES && p->rate == BIRTHDAY_RATE &&
	    p->targets[0].addr == P2);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 1);

	/* Retries: at +30 s, then 120 s after that; then the timer stops. */
	for (k = 0; k < PUNCH_RETRIES; k++) {
		CHECK(e.punch_at > e.now);
		CHECK_EQ(e.punch_at - e.now, k == 0 ? PUNCH_RETRY_1_S : PUNCH_RETRY_2_S);
		e.now = e.punch_at;
		medsrv_punch_timer(e.m);
		CHECK_EQ(medsrv_stats(e.m)->punch_plans, 2 + k);
		CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2 + k);
		CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 2 + k);
	}
	CHECK(e.punch_at < 0);

	/* A trigger (node 1 moves to a new port) plans at once and starts a new series. */
	e.now += 20.0;
	classify(&e, 1, P2, 21000, 5000, 0, 0.010);
	CHECK_EQ(medsrv_stats(e.m)->punch_plans, 2 + PUNCH_RETRIES);
	CHECK(e.punch_at > e.now);
	disconnect_node(&e, 0);
	disconnect_node(&e, 1);
	env_done(&e);
}


/* A node whose UDP is blocked and an easy one: PUNCH tcp, each aimed at the source of the
 * other's control connection (medsrv_session_remote), TCP pacing (PROTOCOL.md 3.3). */
static void
test_punch_tcp(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	struct endpoint r0 = { .addr = P0, .port = 41000 }, r1 = { .addr = P2, .port = 42000 };
	const struct msg_punch *p;
	static struct env e;      /* large (captured messages): not on the stack */
	double t0;

	nat_env_init(&e);
	nat_connect(&e, 0, &local);
	medsrv_session_remote(e.m, e.f[0].s, &r0);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);
	nat_connect(&e, 1, &local);
	medsrv_session_remote(e.m, e.f[1].s, &r1);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	/* No probe of node 1 ever arrives: blocked once the wait is over. */
	t0 = e.now;
	advance(&e, 1, t0 + 4.1);
	CHECK(last_of(&e.f[1], MSG_NAT_INFO) != NULL &&
	    last_of(&e.f[1], MSG_NAT_INFO)->u.nat_info.udp == NAT_UDP_BLOCKED);
	p = punch_about(&e, 0, 1);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ(p->strategy, PUNCH_TCP);
		CHECK_EQ(p->n_targets, 1);
		CHECK(p->targets[0].addr == P2 && p->targets[0].port == 42000);
		CHECK_EQ(p->interval_ms, 500);
		CHECK_EQ(p->rounds, 10);
	}
	p = punch_about(&e, 1, 0);
	CHECK(p != NULL);
	if (p) {
		CHECK_EQ(p->strategy, PUNCH_TCP);
		CHECK_EQ(p->n_targets, 1);
		CHECK(p->targets[0].addr == P0 && p->targets[0].port == 41000);
	}
	disconnect_node(&e, 0);
	disconnect_node(&e, 1);
	env_done(&e);
}

/* ---- relays (PROTOCOL.md 8) ---- */

static int
count_relay(const struct fake *f, uint8_t type)
{
	int i, n = 0;

	for (i = 0; i < f->n_relay; i++)
		n += f->relay[i].type == type;
	return n;
}

static const struct msg *
last_relay(const struct fake *f, uint8_t type)
{
	int i;

	for (i = f->n_relay - 1; i >= 0; i--)
		if (f->relay[i].type == type)
			return &f->relay[i];
	return NULL;
}

static void
clear_relay(struct env *e)
{
	int i;

	for (i = 0; i < 6; i++)
		e->f[i].n = e->f[i].n_relay = 0;
}

/* Node i connects having reached the mediator on 10.0.0.1 (the embedded relay's address). */
static void
relay_connect_node(struct env *e, int i, const char *nick)
{
	struct endpoint local = { .addr = 0x0a000001u, .port = 7000 };
	struct fake *f = &e->f[i];
	struct msg m;

	f->s = medsrv_session_open(e->m, f->key, f);
	medsrv_session_local(e->m, f->s, &local);
	memset(&m, 0, sizeof(m));
	m.type = MSG_HELLO;
	m.u.hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.hello.nick, sizeof(m.u.hello.nick), "%s", nick);
	m.u.hello.udp_port = 40000 + i;
	medsrv_session_msg(e->m, f->s, &m);
}

/* A standalone relay on fake i registers from 198.51.100.(i) with no address of its own. */
static void
relay_hello(struct env *e, int i, const char *name)
{
	struct endpoint remote = { .addr = 0xc6336400u + (uint32_t)i, .port = 50000 };
	struct fake *f = &e->f[i];
	struct msg m;

	f->s = medsrv_session_open(e->m, f->key, f);
	medsrv_session_remote(e->m, f->s, &remote);
	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAY_HELLO;
	m.u.relay_hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.relay_hello.name, sizeof(m.u.relay_hello.name), "%s", name);
	m.u.relay_hello.udp.port = 7003;
	m.u.relay_hello.tcp_port = 443;
	medsrv_session_msg(e->m, f->s, &m);
}

static void
relay_stats(struct env *e, int i, uint32_t pairs)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAY_STATS;
	m.u.relay_stats.pairs = pairs;
	medsrv_session_msg(e->m, e->f[i].s, &m);
}

static void
rtt_report(struct env *e, int i, uint16_t ms1, uint16_t ms2)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAY_RTT;
	m.u.relay_rtt.n = 2;
	m.u.relay_rtt.rtt[0].id = 1;
	m.u.relay_rtt.rtt[0].rtt_ms = ms1;
	m.u.relay_rtt.rtt[1].id = 2;
	m.u.relay_rtt.rtt[1].rtt_ms = ms2;
	medsrv_session_msg(e->m, e->f[i].s, &m);
}

/* Node i's last grant is for peer j on relay id, with the secret relay key derives. */
static void
check_grant(struct env *e, int i, int j, uint16_t id, const uint8_t key[RELAY_KEY_LEN])
{
	const struct msg *g = last_relay(&e->f[i], MSG_RELAY_GRANT);
	uint8_t secret[RELAY_SECRET_LEN];

	CHECK(g != NULL);
	if (g == NULL)
		return;
	CHECK_MEM(g->u.relay_grant.peer, e->f[j].key, KEY_LEN);
	CHECK_EQ(g->u.relay_grant.relay_id, id);
	if (id == 0)
		return;
	/* Side 0 is the lower key: fake i has key 0x10 + i. */
	CHECK_EQ(g->u.relay_grant.side, i < j ? 0 : 1);
	CHECK(g->u.relay_grant.pair != 0);
	CHECK(g->u.relay_grant.expiry > (uint32_t)time(NULL) + 3000);
	relaymsg_side_secret(key, g->u.relay_grant.pair, g->u.relay_grant.side,
	    g->u.relay_grant.expiry, secret);
	CHECK_MEM(g->u.relay_grant.secret, secret, RELAY_SECRET_LEN);
	/* A grant carries an address a node can send to. */
	CHECK(g->u.relay_grant.udp.addr != 0 && g->u.relay_grant.udp.port != 0);
}

static void
test_relays(void)
{
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	struct endpoint emb = { .addr = 0, .port = 7100 };
	struct msg_relay_stats est = { 0, 0, 0, 0 };
	uint8_t k1[RELAY_KEY_LEN], k2[RELAY_KEY_LEN];
	const struct msg *r;
	static struct env e;      /* large (captured messages): not on the stack */
	uint64_t pair;

	env_init(&e);
	medsrv_free(e.m);
	cfg.n_relay_allow = 1;
	memset(cfg.relay_allow[0], 0x14, KEY_LEN);      /* fake 4; fake 5 is nobody's */
	io.arg = &e;
	e.m = medsrv_new(e.st, &cfg, &io);

	/* An unknown relay key: a RESULT saying why, no WELCOME, and it stays out of the pool. */
	relay_hello(&e, 5, "rogue");
	CHECK(last_of(&e.f[5], MSG_RESULT) != NULL);
	CHECK(strstr(last_of(&e.f[5], MSG_RESULT)->u.result.text, "not allowed") != NULL);
	CHECK_EQ(count_relay(&e.f[5], MSG_RELAY_WELCOME), 0);
	relay_stats(&e, 5, 1);                          /* ignored */

	/* The allowed relay gets id 1 and a key; the embedded one joins in-process as id 2. */
	relay_hello(&e, 4, "fra-1");
	r = last_relay(&e.f[4], MSG_RELAY_WELCOME);
	CHECK(r != NULL && r->u.relay_welcome.relay_id == 1);
	if (r == NULL) {
		env_done(&e);
		return;
	}
	memcpy(k1, r->u.relay_welcome.relay_key, RELAY_KEY_LEN);
	CHECK_EQ(medsrv_relay_embedded(e.m, "embedded", &emb, 7100, k2), 2);

	/* Nodes hear the pool when they connect: the standalone relay at its source address,
	 * the embedded one at the address each node reached the mediator on. */
	relay_connect_node(&e, 0, "alice");
	relay_connect_node(&e, 1, "bob");
	relay_connect_node(&e, 2, "stranger");
	r = last_relay(&e.f[0], MSG_RELAYS);
	CHECK(r != NULL && r->u.relays.n == 2);
	if (r != NULL && r->u.relays.n == 2) {
		CHECK_EQ(r->u.relays.relays[0].id, 1);
		CHECK_EQ(r->u.relays.relays[0].udp.addr, 0xc6336404u);
		CHECK_EQ(r->u.relays.relays[0].udp.port, 7003);
		CHECK_EQ(r->u.relays.relays[0].tcp_port, 443);
		CHECK_EQ(r->u.relays.relays[1].id, 2);
		CHECK_EQ(r->u.relays.relays[1].udp.addr, 0x0a000001u);
	}

	/* A pair that shares a network gets grants at once, before any NAT classification:
	 * unmeasured relays cost the same, equal load: the first. The stranger gets nothing. */
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(req(&e, 2, OP_CREATE, "other", NULL, -1, 0), RES_OK);
	clear_relay(&e);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	check_grant(&e, 0, 1, 1, k1);
	check_grant(&e, 1, 0, 1, k1);
	CHECK(last_relay(&e.f[0], MSG_RELAY_GRANT)->u.relay_grant.pair ==
	    last_relay(&e.f[1], MSG_RELAY_GRANT)->u.relay_grant.pair);
	CHECK_EQ(last_relay(&e.f[0], MSG_RELAY_GRANT)->u.relay_grant.reason, RELAY_WHY_STARTING);
	CHECK_EQ(count_relay(&e.f[2], MSG_RELAY_GRANT), 0);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[1].key), 1);

	/* RTTs: relay 2 is far better for alice: the pair moves, with a new pair id. */
	pair = last_relay(&e.f[0], MSG_RELAY_GRANT)->u.relay_grant.pair;
	clear_relay(&e);
	rtt_report(&e, 0, 200, 10);
	check_grant(&e, 0, 1, 2, k2);
	check_grant(&e, 1, 0, 2, k2);
	CHECK(last_relay(&e.f[0], MSG_RELAY_GRANT)->u.relay_grant.pair != pair);
	/* Within a second a second report is dropped; later small changes never flap. */
	clear_relay(&e);
	rtt_report(&e, 0, 9, 10);
	e.now += 2;
	rtt_report(&e, 1, 11, 12);      /* 211 vs 22: stay */
	e.now += 2;
	rtt_report(&e, 0, 9, 10);       /* 20 vs 22: 2 ms better is noise: stay */
	CHECK_EQ(count_relay(&e.f[0], MSG_RELAY_GRANT), 0);
	CHECK_EQ(count_relay(&e.f[1], MSG_RELAY_GRANT), 0);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[1].key), 2);

	/* The embedded relay stops reporting (the standalone one keeps on): dead after 10 s;
	 * the pool goes to every node and the pair moves to relay 1 at once. */
	clear_relay(&e);
	e.now += 6;
	relay_stats(&e, 4, 0);
	medsrv_relay_tick(e.m);
	CHECK_EQ(count_relay(&e.f[0], MSG_RELAYS), 0);
	e.now += 6;
	relay_stats(&e, 4, 0);
	medsrv_relay_tick(e.m);
	r = last_relay(&e.f[2], MSG_RELAYS);
	CHECK(r != NULL && r->u.relays.n == 1 && r->u.relays.relays[0].id == 1);
	check_grant(&e, 0, 1, 1, k1);
	check_grant(&e, 1, 0, 1, k1);

	/* The last relay's connection drops: nothing alive, both sides told to stop. */
	clear_relay(&e);
	disconnect_node(&e, 4);
	check_grant(&e, 0, 1, 0, NULL);
	check_grant(&e, 1, 0, 0, NULL);
	r = last_relay(&e.f[0], MSG_RELAYS);
	CHECK(r != NULL && r->u.relays.n == 0);

	/* The embedded relay reports again: alive, and the pair is granted on it. */
	clear_relay(&e);
	medsrv_relay_embedded_stats(e.m, 2, &est);
	check_grant(&e, 0, 1, 2, k2);
	check_grant(&e, 1, 0, 2, k2);

	/* The relay reconnects: same id and key, so its grants would still be good. */
	relay_hello(&e, 4, "fra-1");
	r = last_relay(&e.f[4], MSG_RELAY_WELCOME);
	CHECK(r != NULL && r->u.relay_welcome.relay_id == 1 &&
	    memcmp(r->u.relay_welcome.relay_key, k1, RELAY_KEY_LEN) == 0);

	/* bob goes offline in the only network they share: alice is told to stop. */
	clear_relay(&e);
	CHECK_EQ(req(&e, 1, OP_GO_OFFLINE, "lan", NULL, -1, 0), RES_OK);
	check_grant(&e, 0, 1, 0, NULL);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[1].key), 0);
	/* Online again: a new grant; bob disconnects: alice is told to stop. */
	clear_relay(&e);
	CHECK_EQ(req(&e, 1, OP_GO_ONLINE, "lan", NULL, -1, 0), RES_OK);
	CHECK(last_relay(&e.f[0], MSG_RELAY_GRANT) != NULL &&
	    last_relay(&e.f[0], MSG_RELAY_GRANT)->u.relay_grant.relay_id != 0);
	clear_relay(&e);
	disconnect_node(&e, 1);
	check_grant(&e, 0, 1, 0, NULL);
	CHECK_EQ(count_relay(&e.f[2], MSG_RELAY_GRANT), 0);

	/* A node cannot register as a relay on its session, nor report RTTs before HELLO. */
	relay_hello(&e, 3, "sneaky");
	CHECK_EQ(count_relay(&e.f[3], MSG_RELAY_WELCOME), 0);
	env_done(&e);
}

/*
 * The grant table's bound (PROTOCOL.md 8.4, here 1 pair). A pair introduced as a mere standby
 * (punching not ruled out) finds it full and is refused. A pair that needs its relay (its
 * daemon's PUNCH_REQUEST: the path failed) takes the place of the oldest standby pair, whose
 * sides are told to stop; with no standby pair left it is refused too. A request for a pair
 * that has its relay sends nothing again.
 */
static void
test_relay_table_full(void)
{
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	struct endpoint emb = { .addr = 0, .port = 7100 };
	uint8_t k[RELAY_KEY_LEN];
	static struct env e;      /* large (captured messages): not on the stack */

	env_init(&e);
	medsrv_free(e.m);
	cfg.relay_pairs = 1;
	io.arg = &e;
	e.m = medsrv_new(e.st, &cfg, &io);
	CHECK_EQ(medsrv_relay_embedded(e.m, "embedded", &emb, 7100, k), 1);
	relay_connect_node(&e, 0, "alice");
	relay_connect_node(&e, 1, "bob");
	relay_connect_node(&e, 2, "carol");
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[1].key), 1);

	/* carol's two pairs are standby pairs too: the table is full for them. */
	clear_relay(&e);
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	CHECK_EQ(count_relay(&e.f[2], MSG_RELAY_GRANT), 0);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[2].key), 0);

	/* carol's daemon asks for a punch with alice: the pair needs a relay; alice and bob's
	 * standby pair makes room (both told to stop) and carol's gets it, both sides. */
	punch_request(&e, 2, e.f[0].key);
	check_grant(&e, 1, 0, 0, NULL);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[1].key), 0);
	check_grant(&e, 2, 0, 1, k);
	check_grant(&e, 0, 2, 1, k);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[0].key, e.f[2].key), 1);

	/* bob asks for carol: no standby pair is left, so refused; asked again, alice and carol
	 * keep theirs and nothing is sent. */
	clear_relay(&e);
	punch_request(&e, 1, e.f[2].key);
	CHECK_EQ(count_relay(&e.f[1], MSG_RELAY_GRANT), 0);
	CHECK_EQ(medsrv_relay_of(e.m, e.f[1].key, e.f[2].key), 0);
	e.now += 2;
	punch_request(&e, 0, e.f[2].key);
	CHECK_EQ(count_relay(&e.f[0], MSG_RELAY_GRANT), 0);
	CHECK_EQ(count_relay(&e.f[2], MSG_RELAY_GRANT), 0);

	/* alice leaves: her pair ends, and bob's next request finds room. */
	disconnect_node(&e, 0);
	e.now += 2;
	punch_request(&e, 1, e.f[2].key);
	check_grant(&e, 1, 2, 1, k);
	check_grant(&e, 2, 1, 1, k);
	env_done(&e);
}

/* ---- several instances on one store (server/cluster.c's contract, wired in-process) ---- */

/* What cluster.c does between instances, without PostgreSQL: each instance's events are
 * replayed at once by the other, and a node is remote when the other holds its session. */
static struct medsrv *peer_of[2][2];    /* [i] = { this, other } */

static void
peers_event(void *arg, char kind, const char *network, const uint8_t *key, uint8_t val)
{
	struct medsrv **pair = arg;

	medsrv_peer_event(pair[1], kind, network, key, val);
}

static int
peers_remote(void *arg, const uint8_t key[KEY_LEN], struct endpoint *eps, uint8_t *n)
{
	struct medsrv **pair = arg;

	return medsrv_session_endpoints(pair[1], key, eps, n);
}

enum { TEST_HOP_MS = 20 };              /* the hop between the instances, as cluster.c tells */

static void
peers_side(void *arg, const uint8_t to[KEY_LEN], const struct punch_side *side)
{
	struct medsrv **pair = arg;

	medsrv_peer_side(pair[1], to, side, TEST_HOP_MS);
}

static void
peers_forward(void *arg, const uint8_t to[KEY_LEN], const struct msg *m)
{
	struct medsrv **pair = arg;

	medsrv_peer_forward(pair[1], to, m);
}

static void
peers_wire(struct medsrv *a, struct medsrv *b)
{
	peer_of[0][0] = a, peer_of[0][1] = b;
	peer_of[1][0] = b, peer_of[1][1] = a;
	medsrv_set_peers(a, &(struct medsrv_peers){ peers_event, peers_remote, peers_side,
	    peers_forward, peer_of[0] });
	medsrv_set_peers(b, &(struct medsrv_peers){ peers_event, peers_remote, peers_side,
	    peers_forward, peer_of[1] });
}

static void
test_instances(void)
{
	static struct env e;
	struct medsrv_config cfg = { TEST_CFG };
	struct medsrv_io io = { io_send, io_kick, io_now, NULL, NULL, NULL, NULL, NULL, NULL };
	struct medsrv *a, *b;
	const struct msg_member *mm;
	const struct msg *g;
	struct endpoint eps[MAX_ENDPOINTS];
	uint8_t n_eps;

	env_init(&e);
	io.arg = &e;
	a = e.m;
	b = medsrv_new(e.st, &cfg, &io);
	CHECK(b != NULL);
	if (b == NULL)
		return;
	peers_wire(a, b);

	/* owner (0) and carol (2) on a, bob (1) on b */
	connect_node(&e, 0, "owner");
	connect_node(&e, 2, "carol");
	e.m = b;
	connect_node(&e, 1, "bob");
	e.m = a;
	CHECK_EQ(req(&e, 0, OP_CREATE, "lan", NULL, -1, 0), RES_OK);
	clear(&e);
	e.m = b;
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	/* bob's snapshot (from b) shows the owner online with its endpoints (from a) */
	mm = member_about(&e, 1, 0);
	CHECK(mm != NULL && mm->flags == (MEMF_ON | MEMF_OWNER) && mm->n_endpoints > 0);
	/* the owner (on a) hears of bob's join, online, with endpoints */
	mm = member_about(&e, 0, 1);
	CHECK(mm != NULL && mm->flags == MEMF_ON && mm->n_endpoints > 0);
	CHECK_EQ(count_type(&e.f[0], MSG_MEMBER), 1);

	/* nick on b reaches a */
	clear(&e);
	CHECK_EQ(req(&e, 1, OP_SET_NICK, "bobby", NULL, -1, 0), RES_OK);
	mm = member_about(&e, 0, 1);
	CHECK(mm != NULL && strcmp(mm->nick, "bobby") == 0);

	/* bob disconnects from b: offline on a */
	clear(&e);
	disconnect_node(&e, 1);
	mm = member_about(&e, 0, 1);
	CHECK(mm != NULL && mm->flags == MEMF_ACTIVE && mm->n_endpoints == 0);

	/* bob connects to a while b still holds his old session (a failover before b noticed):
	 * b drops the stale one, and the owner sees bob online with a's view of him */
	connect_node(&e, 1, "");
	e.m = a;
	clear(&e);
	connect_node(&e, 1, "");
	CHECK_EQ(e.f[1].kicked, 1);
	CHECK(medsrv_session_endpoints(b, e.f[1].key, eps, &n_eps) == 0);
	CHECK(medsrv_session_endpoints(a, e.f[1].key, eps, &n_eps) == 1);
	mm = member_about(&e, 0, 1);
	CHECK(mm != NULL && mm->flags == MEMF_ON);
	disconnect_node(&e, 1);
	e.m = b;

	/* back on b; the owner on a evicts him: bob's own session (on b) is told */
	connect_node(&e, 1, "");
	e.m = a;
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_EVICT, "lan", NULL, 1, 0), RES_OK);
	g = last_of(&e.f[1], MSG_NETWORK_GONE);
	CHECK(g != NULL && g->u.network_gone.reason == GONE_EVICTED);
	CHECK(last_of(&e.f[0], MSG_MEMBER_GONE) != NULL);

	/* carol (a) and bob (b) both members; bob leaves on b: carol hears it on a */
	CHECK_EQ(req(&e, 2, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	e.m = b;
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	clear(&e);
	CHECK_EQ(req(&e, 1, OP_LEAVE, "lan", NULL, -1, 0), RES_OK);
	CHECK(last_of(&e.f[2], MSG_MEMBER_GONE) != NULL);
	CHECK(last_of(&e.f[0], MSG_MEMBER_GONE) != NULL);

	/* bob back in; the owner on a deletes the network: bob on b gets NETWORK_GONE */
	CHECK_EQ(req(&e, 1, OP_JOIN, "lan", NULL, -1, 0), RES_OK);
	e.m = a;
	clear(&e);
	CHECK_EQ(req(&e, 0, OP_DELETE, "lan", NULL, -1, 0), RES_OK);
	g = last_of(&e.f[1], MSG_NETWORK_GONE);
	CHECK(g != NULL && g->u.network_gone.reason == GONE_DELETED);

	medsrv_free(b);
	env_done(&e);
}

/*
 * A pair split over two instances (PROTOCOL.md 4.8): node 0 (easy NAT) on a, node 1
 * (sequential) on b. The lower key's instance (a: 0x10.. < 0x11..) plans from both sides,
 * once; each node gets its half for one common instant, the remote one later by the hop.
 */
static void
test_instances_punch(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 }, from;
	static struct env e;
	const struct msg_punch *p;
	struct punch_side stranger;
	uint8_t token1[UDP_TOKEN_LEN];
	struct medsrv *a, *b;
	double t_plan;

	nat_env_init(&e);
	a = e.m;
	b = nat_medsrv(&e);
	CHECK(b != NULL);
	if (b == NULL)
		return;
	peers_wire(a, b);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);        /* eim, preserved, eif */
	e.m = b;
	nat_connect(&e, 1, &local);
	memcpy(token1, last_of(&e.f[1], MSG_WELCOME)->u.welcome.udp_token, UDP_TOKEN_LEN);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 0);      /* node 1 has no NAT_INFO yet */
	classify(&e, 1, P1, 50000, 1, 0, 0.030);        /* apdm, sequential step 1, apdf */

	/* b sent node 1's side to a, which planned: one plan in all, on a */
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 1);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 1);
	CHECK_EQ(medsrv_stats(a)->punch_plans, 1);
	CHECK_EQ(medsrv_stats(b)->punch_plans, 0);
	p = punch_about(&e, 0, 1);
	CHECK(p != NULL && p->strategy == PUNCH_PREDICT && p->n_targets == 15 &&
	    p->targets[0].addr == P1 && p->targets[0].port == 50006);
	/* node 1's half goes one hop further: node 0 waits for it */
	CHECK(p != NULL && p->start_ms == 100 + 30 + TEST_HOP_MS - 10);
	p = punch_about(&e, 1, 0);
	CHECK(p != NULL && p->strategy == PUNCH_PREDICT && p->n_targets == 1 &&
	    p->targets[0].addr == P0 && p->targets[0].port == 40000 && p->start_ms == 100);

	/* A new port of node 1 inside the pair's 10 s: deferred on a; when the window opens a
	 * plans from the side b sent last (the new highest port), without asking again. */
	t_plan = e.now;
	e.now += 3.0;
	memset(&from, 0, sizeof(from));
	from.addr = P1;
	from.port = 50010;
	CHECK_EQ(medsrv_probe(b, token1, &from), 0);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 1);
	CHECK_EQ(medsrv_stats(a)->punch_deferred, 1);
	e.now = t_plan + 10.0;
	medsrv_punch_timer(a);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 2);
	p = punch_about(&e, 0, 1);
	CHECK(p != NULL && p->targets[0].port == 50011);

	/* A side from the database for a node that shares no network with ours plans nothing:
	 * a plan makes our node send to the endpoints in it. */
	memset(&stranger, 0, sizeof(stranger));
	memset(stranger.key, 0x15, KEY_LEN);
	stranger.has_info = 1;
	stranger.observed.addr = P0;
	stranger.observed.port = 1234;
	medsrv_peer_side(b, e.f[1].key, &stranger, 0);
	medsrv_peer_side(a, e.f[0].key, &stranger, 0);
	CHECK_EQ(count_type(&e.f[0], MSG_PUNCH), 2);
	CHECK_EQ(count_type(&e.f[1], MSG_PUNCH), 2);

	e.m = a;
	medsrv_free(b);
	env_done(&e);
}

/* Node i's last grant about peer j: its relay id, or -1 when none. */
static int
grant_about(const struct env *e, int i, int j)
{
	const struct fake *f = &e->f[i];
	int k;

	for (k = f->n_relay - 1; k >= 0; k--)
		if (f->relay[k].type == MSG_RELAY_GRANT &&
		    memcmp(f->relay[k].u.relay_grant.peer, e->f[j].key, KEY_LEN) == 0)
			return f->relay[k].u.relay_grant.relay_id;
	return -1;
}

/* Forgets the relay messages only (classify needs the NAT_PLAN). */
static void
clear_grants(struct env *e)
{
	int i;

	for (i = 0; i < 6; i++)
		e->f[i].n_relay = 0;
}

/*
 * Relay grants for a pair split over two instances (PROTOCOL.md 4.8): node 0 on a, node 1 on
 * b, each instance with its own embedded relay. a (the lower key's) grants both sides its
 * relay; node 1's grant reaches it through b, with the address node 0 reached a on for a's
 * wildcard relay and the id marked as another instance's (0x8000). Either side going offline
 * revokes the other's grant, across the instances; a node switched off in the network revokes
 * its pairs (all of them, and only them).
 */
static void
test_instances_relay(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	struct endpoint emb_a = { .addr = 0, .port = 7100 }, emb_b = { .addr = SB, .port = 7200 };
	uint8_t ka[RELAY_KEY_LEN], kb[RELAY_KEY_LEN];
	const struct msg *g0, *g1;
	struct msg stranger;
	static struct env e;
	struct medsrv *a, *b;

	nat_env_init(&e);
	a = e.m;
	b = nat_medsrv(&e);
	CHECK(b != NULL);
	if (b == NULL)
		return;
	peers_wire(a, b);
	CHECK_EQ(medsrv_relay_embedded(a, "rel-a", &emb_a, 7100, ka), 1);
	CHECK_EQ(medsrv_relay_embedded(b, "rel-b", &emb_b, 7200, kb), 1);
	CHECK(memcmp(ka, kb, RELAY_KEY_LEN) != 0);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	classify(&e, 0, P0, 40000, 0, 3, 0.010);
	e.m = b;
	nat_connect(&e, 1, &local);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	clear_grants(&e);
	classify(&e, 1, P1, 50000, 1, 0, 0.030);

	/* One pair, on a's relay: both grants name it, same pair id and expiry, one side each,
	 * secrets from a's relay key; b made none of its own. */
	check_grant(&e, 0, 1, 1, ka);
	check_grant(&e, 1, 0, 0x8001, ka);
	g0 = last_relay(&e.f[0], MSG_RELAY_GRANT);
	g1 = last_relay(&e.f[1], MSG_RELAY_GRANT);
	CHECK(g0 != NULL && g1 != NULL);
	if (g0 != NULL && g1 != NULL) {
		CHECK(g0->u.relay_grant.pair == g1->u.relay_grant.pair);
		CHECK(g0->u.relay_grant.expiry == g1->u.relay_grant.expiry);
		CHECK(g1->u.relay_grant.udp.addr == SA && g1->u.relay_grant.udp.port == 7100);
	}
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[1].key), 1);
	CHECK_EQ(medsrv_relay_of(b, e.f[0].key, e.f[1].key), 0);

	/* Another instance may forward plan halves and grants only (the sender checked the
	 * pair: PROTOCOL.md 4.8), never a message of any other type. */
	clear_relay(&e);
	memset(&stranger, 0, sizeof(stranger));
	stranger.type = MSG_RELAYS;
	medsrv_peer_forward(b, e.f[1].key, &stranger);
	CHECK_EQ(count_relay(&e.f[1], MSG_RELAYS), 0);

	/* Node 1 disconnects from b: a hears it is offline and tells node 0 to stop. */
	disconnect_node(&e, 1);
	check_grant(&e, 0, 1, 0, NULL);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[1].key), 0);

	/* Back on b: granted again; now node 0 disconnects from a: node 1 (on b) is told. */
	clear_grants(&e);
	nat_connect(&e, 1, &local);
	classify(&e, 1, P1, 50100, 1, 0, 0.030);
	check_grant(&e, 1, 0, 0x8001, ka);
	clear_relay(&e);
	e.m = a;
	disconnect_node(&e, 0);
	check_grant(&e, 1, 0, 0, NULL);

	/* Node 0 back on a, node 2 joins on b too (its pair with node 1 is b's own): two pairs
	 * planned on a, both on node 0's list. Node 0 switched off: both remote sides told. */
	nat_connect(&e, 0, &local);
	classify(&e, 0, P0, 40200, 0, 3, 0.010);
	e.m = b;
	nat_connect(&e, 2, &local);
	CHECK_EQ(req(&e, 2, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 2, P2, 51000, 1, 0, 0.030);
	CHECK_EQ(grant_about(&e, 1, 0), 0x8001);
	CHECK_EQ(grant_about(&e, 2, 0), 0x8001);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[2].key), 1);
	CHECK_EQ(medsrv_relay_of(b, e.f[1].key, e.f[2].key), 1);       /* b's relay */
	clear_grants(&e);
	e.m = a;
	CHECK_EQ(req(&e, 0, OP_GO_OFFLINE, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(grant_about(&e, 1, 0), 0);
	CHECK_EQ(grant_about(&e, 2, 0), 0);
	CHECK_EQ(grant_about(&e, 1, 2), -1);                            /* b's pair untouched */
	/* On again: both granted; node 2 switched off on b: a revokes its pair only. */
	clear_grants(&e);
	CHECK_EQ(req(&e, 0, OP_GO_ONLINE, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(grant_about(&e, 1, 0), 0x8001);
	CHECK_EQ(grant_about(&e, 2, 0), 0x8001);
	clear_grants(&e);
	e.m = b;
	CHECK_EQ(req(&e, 2, OP_GO_OFFLINE, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(grant_about(&e, 0, 2), 0);
	CHECK_EQ(grant_about(&e, 0, 1), -1);
	CHECK_EQ(grant_about(&e, 1, 0), -1);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[1].key), 1);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[2].key), 0);

	disconnect_node(&e, 1);
	disconnect_node(&e, 2);
	e.m = a;
	disconnect_node(&e, 0);
	medsrv_free(b);
	env_done(&e);
}

/*
 * The same for a split pair (PROTOCOL.md 3.2, 4.8), grant tables of 1 pair: node 0 and node 2
 * on a, node 1 on b. a's table holds the standby pair (0, 2), so (0, 1), a's to grant, is
 * refused. Node 1's PUNCH_REQUEST for node 0 reaches a with its side: a grants (0, 1) in the
 * place of (0, 2), both sides; node 2 is told to stop.
 */
static void
test_instances_relay_full(void)
{
	struct endpoint local = { .addr = SA, .port = 7000 };
	struct endpoint emb_a = { .addr = 0, .port = 7100 }, emb_b = { .addr = SB, .port = 7200 };
	uint8_t ka[RELAY_KEY_LEN], kb[RELAY_KEY_LEN];
	static struct env e;
	struct medsrv *a, *b;

	env_init(&e);
	e.punch_at = -1;
	e.relay_pairs = 1;
	medsrv_free(e.m);
	e.m = a = nat_medsrv(&e);
	b = nat_medsrv(&e);
	CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL)
		return;
	peers_wire(a, b);
	CHECK_EQ(medsrv_relay_embedded(a, "rel-a", &emb_a, 7100, ka), 1);
	CHECK_EQ(medsrv_relay_embedded(b, "rel-b", &emb_b, 7200, kb), 1);
	nat_connect(&e, 0, &local);
	CHECK_EQ(req(&e, 0, OP_CREATE, "net", NULL, -1, 0), RES_OK);
	nat_connect(&e, 2, &local);
	CHECK_EQ(req(&e, 2, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[2].key), 1);
	e.m = b;
	nat_connect(&e, 1, &local);
	clear_grants(&e);
	CHECK_EQ(req(&e, 1, OP_JOIN, "net", NULL, -1, 0), RES_OK);
	classify(&e, 1, P1, 50000, 1, 0, 0.030);        /* its side goes to a: still standby */
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[1].key), 0);
	CHECK_EQ(grant_about(&e, 0, 1), -1);
	CHECK_EQ(grant_about(&e, 1, 0), -1);

	punch_request(&e, 1, e.f[0].key);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[1].key), 1);
	check_grant(&e, 0, 1, 1, ka);
	check_grant(&e, 1, 0, 0x8001, ka);
	CHECK_EQ(grant_about(&e, 2, 0), 0);
	CHECK_EQ(medsrv_relay_of(a, e.f[0].key, e.f[2].key), 0);

	disconnect_node(&e, 1);
	e.m = a;
	disconnect_node(&e, 0);
	disconnect_node(&e, 2);
	medsrv_free(b);
	env_done(&e);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_hello);
	RUN(test_create_join);
	RUN(test_lock_and_approval);
	RUN(test_evict_leave_delete);
	RUN(test_presence);
	RUN(test_candidates);
	RUN(test_restart);
	RUN(test_nat_sequence);
	RUN(test_nat_blocked_and_restart);
	RUN(test_punch);
	RUN(test_punch_request);
	RUN(test_punch_deferred_forget);
	RUN(test_punch_tcp);
	RUN(test_password_limits);
	RUN(test_password_async);
	RUN(test_registrations);
	RUN(test_register_budget);
	RUN(test_punch_birthday);
	RUN(test_relays);
	RUN(test_relay_table_full);
	RUN(test_instances);
	RUN(test_instances_punch);
	RUN(test_instances_relay);
	RUN(test_instances_relay_full);
	return unit_finish();
}
