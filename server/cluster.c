/*
 * cluster: presence and events between mediator instances over PostgreSQL (cluster.h).
 * Must not touch: membership policy (mediator.c), the store's tables other than presence and
 * instances.
 */
#include "config.h"
#include "server/cluster.h"

#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "base/keyid.h"
#include "base/log.h"
#include "mproto/msg.h"
#include "server/clusterev.h"
#include "server/mediator.h"
#include "server/pgasync.h"
#include "server/pgq.h"
#include "server/store_backend.h"

/* A node connected to another instance, as its presence row says. */
struct remote {
	uint8_t key[KEY_LEN];
	char instance[CLUSTER_ID_LEN + 1];      /* its row's: a `d` event of it takes it offline */
	uint8_t n;
	struct endpoint eps[MAX_ENDPOINTS];
	struct remote *next_gone;       /* instance_down's list */
	UT_hash_handle hh;
};

/* A node of ours whose presence changed in this loop turn: written at its end (presence_flush),
 * in the order of first change, with the state it has then. */
struct dirty {
	uint8_t key[KEY_LEN];
	uint8_t val;                    /* the changes' MEDPEER_NODE_* bits, or'ed */
	UT_hash_handle hh;
};

/* One text[] parameter being built: "{"a","b"}" (array_add) */
struct pgarr {
	size_t len;
	char buf[2 * CLUSTER_BATCH_MAX + 64];
};

struct cluster {
	struct ev_loop *loop;
	struct store *st;               /* borrowed: its copies of member lists */
	struct pgq_conn *db;            /* the store's: reads (borrowed) */
	struct pgasync *aw;             /* the store's: writes, off the loop (borrowed) */
	PGconn *listen;                 /* ours: LISTEN shoal */
	struct medsrv *med;             /* borrowed */
	char id[CLUSTER_ID_LEN + 1];    /* this instance, 16 hex digits, random per start */
	ev_io io_w;
	ev_timer beat_w;
	unsigned long beats;
	struct remote *remotes;
	/* S and F lines of this loop turn, sent together (flush_w) or when the next would not fit */
	char batch[CLUSTER_BATCH_MAX];
	size_t batch_len;
	ev_prepare flush_w;
	/* presence changes of this loop turn, and one statement's rows being built from them */
	struct dirty *dirty;
	struct pgarr rows_key, rows_eps, rows_line;
	size_t rows, rows_line_bytes;
	/* Membership events are kept in table events for CLUSTER_EVENTS_KEEP_S: after the LISTEN
	 * connection comes back, those past seen_seq are replayed. seen_seq trails by one beat
	 * (next_seq is taken at a beat and becomes seen_seq at the next): an event committed
	 * before a beat has had a beat's time to arrive, and a transaction that got its seq
	 * earlier but committed later than another's is still covered. Replays may repeat
	 * events that did arrive: each is a push of current state, harmless twice. */
	long long seen_seq, next_seq;
};

static const char schema[] =
	"BEGIN;"
	"SELECT pg_advisory_xact_lock(7303);"
	"CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, heartbeat BIGINT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS presence ("
	"  node BYTEA PRIMARY KEY,"
	"  instance TEXT NOT NULL,"
	"  endpoints BYTEA NOT NULL,"
	"  since BIGINT NOT NULL DEFAULT extract(epoch from now())::bigint"
	");"
	"CREATE TABLE IF NOT EXISTS events ("
	"  seq BIGSERIAL PRIMARY KEY,"
	"  instance TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  at BIGINT NOT NULL DEFAULT extract(epoch from now())::bigint"
	");"
	"COMMIT;";

/* The event's line; NULL when it cannot be encoded (a bug: the mediator's names are valid). */
static const char *
payload_of(struct cluster *c, char kind, const char *network, const uint8_t *key, uint8_t val,
    const uint8_t *eps, size_t eps_len, char out[CLUSTEREV_MAX])
{
	struct cluster_event e;

	memset(&e, 0, sizeof(e));
	if (eps_len > sizeof(e.eps))
		return NULL;
	if (eps_len > 0)
		memcpy(e.eps, eps, eps_len);
	e.eps_len = eps_len;
	e.kind = kind;
	memcpy(e.instance, c->id, sizeof(e.instance));
	e.val = val;
	if ((e.has_key = key != NULL))
		memcpy(e.key, key, KEY_LEN);
	if ((e.has_network = network != NULL))
		snprintf(e.network, sizeof(e.network), "%s", network);
	if (cluster_event_encode(&e, out, CLUSTEREV_MAX) < 0) {
		log_warnx("event=cluster_event_unencodable kind=%c", kind);
		return NULL;
	}
	return out;
}

/* The writes of this module but the heartbeat: queued on the store's asynchronous connection
 * (pgasync.h), in order, so a slow database delays presence and events rather than every
 * session. The reads stay synchronous (remotes_reload, events_replay): what
 * follows them needs the rows, and they are rare (an event from another instance; a
 * reconnection). */
static void
write_q(struct cluster *c, const char *sql, const struct pgq *q)
{
	if (c->aw != NULL)
		(void)pgasync_run(c->aw, sql, q, NULL, NULL);
	else
		(void)pgq_run(c->db, sql, q, NULL);
}

/* ---- presence rows ---- */

static size_t
eps_encode(const uint8_t key[KEY_LEN], const struct endpoint *eps, uint8_t n, uint8_t *out,
    size_t cap)
{
	struct msg m;
	int len;

	memset(&m, 0, sizeof(m));
	m.type = MSG_MEMBER;
	snprintf(m.u.member.network, sizeof(m.u.member.network), "presence");
	snprintf(m.u.member.nick, sizeof(m.u.member.nick), "presence");
	memcpy(m.u.member.key, key, KEY_LEN);
	m.u.member.n_endpoints = n;
	memcpy(m.u.member.endpoints, eps, n * sizeof(*eps));
	len = msg_encode(&m, out, cap);
	return len > 0 ? (size_t)len : 0;
}

static int
eps_decode(const uint8_t *in, size_t len, struct endpoint *eps, uint8_t *n)
{
	struct msg m;

	if (msg_decode(&m, in, len) < 0 || m.type != MSG_MEMBER)
		return -1;
	*n = m.u.member.n_endpoints;
	memcpy(eps, m.u.member.endpoints, *n * sizeof(*eps));
	return 0;
}

static void
remote_forget(struct cluster *c, const uint8_t key[KEY_LEN])
{
	struct remote *r;

	HASH_FIND(hh, c->remotes, key, KEY_LEN, r);
	if (r != NULL) {
		HASH_DEL(c->remotes, r);
		free(r);
	}
}

static void
remote_set(struct cluster *c, const uint8_t key[KEY_LEN], const char *instance,
    const uint8_t *blob, size_t len)
{
	struct remote *r;

	HASH_FIND(hh, c->remotes, key, KEY_LEN, r);
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return;
		memcpy(r->key, key, KEY_LEN);
		HASH_ADD(hh, c->remotes, key, KEY_LEN, r);
	}
	snprintf(r->instance, sizeof(r->instance), "%s", instance);
	if (eps_decode(blob, len, r->eps, &r->n) < 0)
		r->n = 0;
}

/* Every node of instance is offline (it stopped, or was reaped): forgotten, and pushed to our
 * sessions. One event for all of them, not one per node: 100,000 NOTIFYs of a dead instance
 * reached every instance while its nodes were all reconnecting to them. */
static void
instance_down(struct cluster *c, const char *instance)
{
	struct remote *r, *t, *gone = NULL;
	unsigned n = 0;

	HASH_ITER(hh, c->remotes, r, t) {
		if (strcmp(r->instance, instance) != 0)
			continue;
		HASH_DEL(c->remotes, r);
		/* pushed once all are out: a push asks remote_cb about the node's peers */
		r->next_gone = gone;
		gone = r;
		n++;
	}
	while ((r = gone) != NULL) {
		gone = r->next_gone;
		medsrv_peer_event(c->med, MEDPEER_NODE, NULL, r->key, 0);
		free(r);
	}
	log_info("event=cluster_instance_down instance=%s nodes=%u", instance, n);
}

static int
remote_cb(void *arg, const uint8_t key[KEY_LEN], struct endpoint *eps, uint8_t *n)
{
	struct cluster *c = arg;
	struct remote *r;

	HASH_FIND(hh, c->remotes, key, KEY_LEN, r);
	if (r == NULL)
		return 0;
	*n = r->n;
	memcpy(eps, r->eps, r->n * sizeof(*eps));
	return 1;
}

/* ---- events out ---- */

/* key's session here changed: its row is written (or deleted) at the end of the loop turn,
 * with the state it has then (presence_flush). */
static void
publish_node(struct cluster *c, const uint8_t key[KEY_LEN], uint8_t val)
{
	struct endpoint eps[MAX_ENDPOINTS];
	struct dirty *d;
	uint8_t n;

	/* ours now, whatever its row said */
	if (medsrv_session_endpoints(c->med, key, eps, &n))
		remote_forget(c, key);
	HASH_FIND(hh, c->dirty, key, KEY_LEN, d);
	if (d == NULL) {
		if ((d = calloc(1, sizeof(*d))) == NULL) {
			log_warnx("event=cluster_presence_dropped reason=out_of_memory");
			return;
		}
		memcpy(d->key, key, KEY_LEN);
		HASH_ADD(hh, c->dirty, key, KEY_LEN, d);
	}
	d->val |= val;
}

static void
array_reset(struct pgarr *a)
{
	a->buf[0] = '{';
	a->len = 1;
}

/* Appends s as one quoted element; a caller checks the room first (array_room). */
static void
array_add(struct pgarr *a, const char *s)
{
	if (a->len > 1)
		a->buf[a->len++] = ',';
	a->buf[a->len++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			a->buf[a->len++] = '\\';
		a->buf[a->len++] = *s;
	}
	a->buf[a->len++] = '"';
	a->buf[a->len] = '}';
	a->buf[a->len + 1] = '\0';
}

/* Room for s at its worst (every byte escaped), the separator, quotes and the closing brace. */
static int
array_room(const struct pgarr *a, const char *s)
{
	return a->len + 2 * strlen(s) + 5 <= sizeof(a->buf);
}

/*
 * The rows gathered so far as one statement: each node's row written (online: its endpoints)
 * or deleted (offline: only if it is still our row, the node may be on another instance
 * already), and one NOTIFY with the events of the rows it did write, one line each, in order.
 * One statement for a loop turn's presence, not one per node: in a reconnect storm every
 * statement's commit, and every NOTIFY woken in each listening instance, was most of
 * PostgreSQL's time. NOTIFYs arrive in commit order, so each event still says what its row
 * became and nobody reads it.
 */
static void
presence_send(struct cluster *c)
{
	struct pgq q;

	if (c->rows == 0)
		return;
	pgq_init(&q);
	pgq_text(&q, c->id);
	pgq_text(&q, c->rows_key.buf);
	pgq_text(&q, c->rows_eps.buf);
	pgq_text(&q, c->rows_line.buf);
	write_q(c, "WITH v AS (SELECT decode(k, 'hex') AS node, nullif(e, '') AS e, l, o "
	    "FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(k, e, l, o)), "
	    "up AS (INSERT INTO presence (node, instance, endpoints) "
	    "SELECT node, $1, decode(e, 'hex') FROM v WHERE e IS NOT NULL "
	    "ON CONFLICT (node) DO UPDATE SET instance = excluded.instance, "
	    "endpoints = excluded.endpoints RETURNING node), "
	    "gone AS (DELETE FROM presence p USING v WHERE v.e IS NULL AND p.node = v.node AND "
	    "p.instance = $1 RETURNING p.node) "
	    "SELECT pg_notify('shoal', string_agg(l, E'\\n' ORDER BY o)) FROM v "
	    "WHERE node IN (SELECT node FROM up UNION ALL SELECT node FROM gone) "
	    "HAVING count(*) > 0", &q);
	array_reset(&c->rows_key);
	array_reset(&c->rows_eps);
	array_reset(&c->rows_line);
	c->rows = c->rows_line_bytes = 0;
}

static int
any_network_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	(void)arg;
	(void)n;
	(void)me;
	return 1;
}

/* d's row and event into the statement being built (sent first when they would not fit). */
static void
presence_row(struct cluster *c, struct dirty *d)
{
	struct endpoint eps[MAX_ENDPOINTS];
	uint8_t blob[CLUSTEREV_EPS_MAX], n;
	char line[CLUSTEREV_MAX], khex[2 * KEY_LEN + 1], ehex[2 * CLUSTEREV_EPS_MAX + 1];
	size_t len = 0;
	int online = medsrv_session_endpoints(c->med, d->key, eps, &n);

	/* A new node that joined a network in this loop turn: its `m` event went out already, so
	 * the others must push this one as any (the copy of its networks answers without a read). */
	if ((d->val & MEDPEER_NODE_NEW) &&
	    store_node_networks_each(c->st, d->key, any_network_cb, NULL) != 0)
		d->val &= (uint8_t)~MEDPEER_NODE_NEW;

	/* the event carries the row (online: its endpoints), so the others need not read it */
	if (online && (len = eps_encode(d->key, eps, n, blob, sizeof(blob))) == 0)
		return;
	if (payload_of(c, MEDPEER_NODE, NULL, d->key, d->val, blob, len, line) == NULL)
		return;
	sodium_bin2hex(khex, sizeof(khex), d->key, KEY_LEN);
	sodium_bin2hex(ehex, sizeof(ehex), blob, len);
	/* the events of one statement make one NOTIFY payload */
	if (c->rows > 0 && (c->rows_line_bytes + strlen(line) + 1 > CLUSTER_BATCH_MAX ||
	    !array_room(&c->rows_key, khex) || !array_room(&c->rows_eps, ehex) ||
	    !array_room(&c->rows_line, line)))
		presence_send(c);
	array_add(&c->rows_key, khex);
	array_add(&c->rows_eps, ehex);
	array_add(&c->rows_line, line);
	c->rows++;
	c->rows_line_bytes += strlen(line) + 1;
}

static void
presence_flush(struct cluster *c)
{
	struct dirty *d, *t;

	HASH_ITER(hh, c->dirty, d, t) {
		presence_row(c, d);
		HASH_DEL(c->dirty, d);
		free(d);
	}
	presence_send(c);
}

static void
event_cb(void *arg, char kind, const char *network, const uint8_t *key, uint8_t val)
{
	struct cluster *c = arg;
	char payload[CLUSTEREV_MAX];
	struct pgq q;

	if (kind == MEDPEER_NODE) {
		publish_node(c, key, val);
		return;
	}
	/* the store committed the change already: the listener reads it after this; the row is
	 * for an instance whose LISTEN connection is down meanwhile */
	if (payload_of(c, kind, network, key, val, NULL, 0, payload) == NULL)
		return;
	pgq_init(&q);
	pgq_text(&q, payload);
	pgq_text(&q, c->id);
	write_q(c, "WITH e AS (INSERT INTO events (instance, payload) VALUES ($2, $1) "
	    "RETURNING 1) SELECT pg_notify('shoal', $1) FROM e", &q);
}

/* ---- a pair split over two instances (PROTOCOL.md 4.8) ---- */

/* Not through the events: a plan is worth something for seconds only, and goes to whichever
 * instance holds `to` (every instance hears it; the others drop it). One NOTIFY per loop turn
 * rather than per line: a round trip each would be most of the mediator's time when a big
 * network comes online. */
static void
batch_flush(struct cluster *c)
{
	struct pgq q;

	if (c->batch_len == 0)
		return;
	c->batch[c->batch_len] = '\0';
	pgq_init(&q);
	pgq_text(&q, c->batch);
	write_q(c, "SELECT pg_notify('shoal', $1)", &q);
	/* grants carry secrets (the queued copy is freed once sent: libpq's buffers hold it too) */
	sodium_memzero(c->batch, c->batch_len);
	c->batch_len = 0;
}

/* The end of a loop turn: presence first, so a node's S lines never overtake its row. */
static void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	presence_flush(w->data);
	batch_flush(w->data);
}

static void
notify_line(struct cluster *c, const char *line)
{
	size_t n = strlen(line);

	if (n + 2 > sizeof(c->batch))
		return;                 /* cannot be: lines are at most CLUSTERPAIR_MAX */
	if (c->batch_len + n + 2 > sizeof(c->batch))
		batch_flush(c);
	if (c->batch_len)
		c->batch[c->batch_len++] = '\n';
	memcpy(c->batch + c->batch_len, line, n);
	c->batch_len += n;
}

static uint64_t
wall_ms(void)
{
	return (uint64_t)(ev_time() * 1000.0);
}

static void
side_cb(void *arg, const uint8_t to[KEY_LEN], const struct punch_side *side)
{
	struct cluster *c = arg;
	struct cluster_side cs;
	char line[CLUSTERPAIR_MAX];

	memset(&cs, 0, sizeof(cs));
	memcpy(cs.instance, c->id, sizeof(cs.instance));
	cs.sent_ms = wall_ms();
	memcpy(cs.to, to, KEY_LEN);
	cs.side = *side;
	if (cluster_side_encode(&cs, line, sizeof(line)) > 0)
		notify_line(c, line);
}

/* A relay grant carries the pair's side secret: it crosses PostgreSQL, which holds every
 * network's secrets already, and is seen only by sessions that LISTEN on the database. */
static void
forward_cb(void *arg, const uint8_t to[KEY_LEN], const struct msg *m)
{
	struct cluster *c = arg;
	struct cluster_fwd f;
	char line[CLUSTERPAIR_MAX];

	memset(&f, 0, sizeof(f));
	memcpy(f.instance, c->id, sizeof(f.instance));
	memcpy(f.to, to, KEY_LEN);
	f.msg = *m;
	if (cluster_fwd_encode(&f, line, sizeof(line)) > 0)
		notify_line(c, line);
	sodium_memzero(&f, sizeof(f));
	sodium_memzero(line, sizeof(line));
}

/* The hop between two instances as the side's timestamp tells it, for the plan's start times:
 * the instances' clocks are assumed NTP-close; a time outside 0..1 s (clocks apart) counts
 * as CLUSTER_HOP_GUESS_MS. */
static unsigned
hop_ms(uint64_t sent_ms)
{
	uint64_t now = wall_ms();

	return now >= sent_ms && now - sent_ms <= 1000 ? (unsigned)(now - sent_ms) :
	    CLUSTER_HOP_GUESS_MS;
}

static void
apply_pair_line(struct cluster *c, const char *payload)
{
	struct cluster_side cs;
	struct cluster_fwd f;

	if (payload[0] == CLUSTER_SIDE && cluster_side_decode(payload, &cs) == 0) {
		if (strcmp(cs.instance, c->id) != 0)
			medsrv_peer_side(c->med, cs.to, &cs.side, hop_ms(cs.sent_ms));
	} else if (payload[0] == CLUSTER_FWD && cluster_fwd_decode(payload, &f) == 0) {
		if (strcmp(f.instance, c->id) != 0)
			medsrv_peer_forward(c->med, f.to, &f.msg);
		sodium_memzero(&f, sizeof(f));
	} else {
		log_warnx("event=cluster_event_bad kind=%c length=%zu", payload[0],
		    strlen(payload));
	}
}

/* ---- events in ---- */

static void
apply_line(struct cluster *c, const char *payload)
{
	struct cluster_event e;

	if (payload[0] == CLUSTER_SIDE || payload[0] == CLUSTER_FWD) {
		apply_pair_line(c, payload);
		return;
	}
	if (cluster_event_decode(payload, &e) != 0) {
		log_warnx("event=cluster_event_bad length=%zu", strlen(payload));
		return;
	}
	if (strcmp(e.instance, c->id) == 0)
		return;                 /* our own (a `d` of us: beat_cb writes our rows again) */
	if (e.kind == CLUSTER_DOWN) {
		instance_down(c, e.instance);
		return;
	}
	log_debug("event=cluster_event kind=%c from=%s network=\"%s\"", e.kind, e.instance,
	    e.network);
	if (e.kind == MEDPEER_NODE && e.has_key) {
		if (e.eps_len > 0)
			remote_set(c, e.key, e.instance, e.eps, e.eps_len);
		else
			remote_forget(c, e.key);
	}
	if ((e.kind == MEDPEER_NODE || e.kind == MEDPEER_CHAT || e.kind == MEDPEER_KICKED ||
	    e.kind == MEDPEER_MEMBER || e.kind == MEDPEER_GONE) && !e.has_key)
		return;                 /* these name a node */
	medsrv_peer_event(c->med, e.kind, e.has_network ? e.network : NULL,
	    e.has_key ? e.key : NULL, e.val);
}

/* A payload holds one line or several, '\n' apart (presence_send, batch_flush). */
static void
apply(struct cluster *c, const char *payload)
{
	char line[(size_t)CLUSTEREV_MAX > (size_t)CLUSTERPAIR_MAX ? CLUSTEREV_MAX : CLUSTERPAIR_MAX];
	const char *p = payload, *nl;
	size_t n;

	for (;;) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			apply_line(c, line);
		} else {
			log_warnx("event=cluster_event_bad kind=%c length=%zu", p[0], n);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	/* F lines carry relay grants' secrets */
	sodium_memzero(line, sizeof(line));
}

static void
listen_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cluster *c = w->data;
	PGnotify *n;

	(void)loop;
	(void)revents;
	if (!PQconsumeInput(c->listen)) {
		/* the database went away: stop watching; the heartbeat reconnects */
		log_warnx("event=cluster_listen_lost");
		ev_io_stop(c->loop, &c->io_w);
		return;
	}
	while ((n = PQnotifies(c->listen)) != NULL) {
		apply(c, n->extra);
		PQfreemem(n);
	}
}

static int
listen_start(struct cluster *c, const char *url)
{
	PGresult *r;

	if (c->listen == NULL)
		c->listen = pgq_dial(url);
	else
		PQreset(c->listen);
	if (c->listen == NULL || PQstatus(c->listen) != CONNECTION_OK)
		return -1;
	r = PQexec(c->listen, "LISTEN shoal");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		return -1;
	}
	PQclear(r);
	ev_io_init(&c->io_w, listen_cb, PQsocket(c->listen), EV_READ);
	c->io_w.data = c;
	ev_io_start(c->loop, &c->io_w);
	return 0;
}

/* Every presence row of the other instances (at start, and after the LISTEN connection came
 * back: events may have been missed meanwhile). repush: the nodes that were or are remote get
 * their state pushed to this instance's sessions again (after an outage; none at start). */
static void
remotes_reload(struct cluster *c, int repush)
{
	uint8_t key[KEY_LEN], blob[1024];
	uint8_t (*old)[KEY_LEN] = NULL;
	struct remote *r, *t;
	size_t n_old = 0, k = 0;
	struct pgq q;
	PGresult *res;
	int i;

	if (repush && (n_old = HASH_COUNT(c->remotes)) > 0 &&
	    (old = calloc(n_old, KEY_LEN)) == NULL)
		n_old = 0;
	HASH_ITER(hh, c->remotes, r, t) {
		if (old != NULL && k < n_old)
			memcpy(old[k++], r->key, KEY_LEN);
		HASH_DEL(c->remotes, r);
		free(r);
	}
	pgq_init(&q);
	pgq_text(&q, c->id);
	res = pgq_exec(c->db, "SELECT node, instance, endpoints FROM presence WHERE instance <> $1",
	    &q, NULL);
	for (i = 0; res != NULL && i < PQntuples(res); i++) {
		if (pgq_get_bin(res, i, 0, key, KEY_LEN) != KEY_LEN)
			continue;
		remote_set(c, key, PQgetvalue(res, i, 1), blob,
		    pgq_get_blob(res, i, 2, blob, sizeof(blob)));
	}
	PQclear(res);
	if (!repush)
		return;
	/* gone while we were deaf, then the ones there now (a few pushes twice: harmless) */
	for (k = 0; k < n_old; k++)
		medsrv_peer_event(c->med, MEDPEER_NODE, NULL, old[k], 0);
	free(old);
	HASH_ITER(hh, c->remotes, r, t)
		medsrv_peer_event(c->med, MEDPEER_NODE, NULL, r->key, 0);
}

static long long
events_max(struct cluster *c)
{
	PGresult *r = pgq_exec(c->db, "SELECT coalesce(max(seq), 0) FROM events", NULL, NULL);
	long long v = r != NULL && PQntuples(r) == 1 ? (long long)pgq_get_int(r, 0, 0) : -1;

	PQclear(r);
	return v;
}

/* The LISTEN connection is back: the membership events since seen_seq, in order. */
static void
events_replay(struct cluster *c)
{
	struct pgq q;
	PGresult *r;
	int i, n;

	pgq_init(&q);
	pgq_int(&q, c->seen_seq);
	pgq_text(&q, c->id);
	r = pgq_exec(c->db, "SELECT seq, payload FROM events WHERE seq > $1 AND instance <> $2 "
	    "ORDER BY seq", &q, NULL);
	n = r != NULL ? PQntuples(r) : 0;
	for (i = 0; i < n; i++) {
		apply(c, PQgetvalue(r, i, 1));
		if (pgq_get_int(r, i, 0) > c->next_seq)
			c->next_seq = pgq_get_int(r, i, 0);
	}
	PQclear(r);
	c->seen_seq = c->next_seq;
	log_info("event=cluster_events_replayed count=%d", n);
}

static void
republish_cb(void *arg, const uint8_t key[KEY_LEN])
{
	publish_node(arg, key, 0);
}

/* The rows of instances that stopped beating go, each with its event; sync: before the
 * caller reads the presence rows (a restart: otherwise it read every row of the instances
 * killed with it, 100,000 of them, only to forget them when their `d` events came). */
static void
reap(struct cluster *c, int sync)
{
	static const char sql[] = "WITH dead AS (DELETE FROM instances WHERE heartbeat < "
	    "extract(epoch from now())::bigint - $2 AND id <> $1 RETURNING id), "
	    "gone AS (DELETE FROM presence p USING dead WHERE p.instance = dead.id) "
	    "SELECT pg_notify('shoal', 'd ' || id || ' 0 - -') FROM dead";
	struct pgq q;

	pgq_init(&q);
	pgq_text(&q, c->id);
	pgq_int(&q, CLUSTER_DEAD_S);
	/* the presence rows go in the same statement (a data-modifying WITH always runs) */
	if (sync)
		(void)pgq_run(c->db, sql, &q, NULL);
	else
		write_q(c, sql, &q);
}

/* Our heartbeat; the rows of instances that stopped beating go, each with its event. */
static void
beat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cluster *c = w->data;
	struct pgq q;
	PGresult *r;
	int inserted = 0;

	(void)loop;
	(void)revents;
	pgq_init(&q);
	pgq_text(&q, c->id);
	/* Synchronous, unlike the other writes: the beat says our loop runs, so it must not wait
	 * behind a backed-up write queue (the others would reap a live instance's nodes).
	 * xmax = 0: the row is new. After the first beat that means the others took us for dead
	 * (our loop stood still past CLUSTER_DEAD_S) and deleted our nodes: write them again. */
	if ((r = pgq_exec(c->db, "INSERT INTO instances (id, heartbeat) VALUES ($1, "
	    "extract(epoch from now())::bigint) ON CONFLICT (id) DO UPDATE SET heartbeat = "
	    "excluded.heartbeat RETURNING (xmax = 0)", &q, NULL)) != NULL) {
		inserted = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
		PQclear(r);
	}
	if (inserted && c->beats > 0) {
		log_warnx("event=cluster_revived instance=%s", c->id);
		medsrv_sessions_each(c->med, republish_cb, c);
	}
	c->beats++;
	reap(c, 0);
	if (!ev_is_active(&c->io_w) && c->listen != NULL) {
		ev_io_stop(c->loop, &c->io_w);
		if (listen_start(c, NULL) == 0) {
			log_info("event=cluster_listen_back");
			/* the replay covers CLUSTER_EVENTS_KEEP_S; a longer outage missed some */
			store_changes_missed(c->st);
			remotes_reload(c, 1);
			events_replay(c);
		}
	} else {
		/* synchronous too: read a whole beat after the previous one (cluster's comment) */
		long long v = events_max(c);

		if (v >= 0) {
			c->seen_seq = c->next_seq;
			c->next_seq = v;
		}
	}
	if (c->beats % CLUSTER_EVENTS_PRUNE_BEATS == 0) {
		pgq_init(&q);
		pgq_int(&q, CLUSTER_EVENTS_KEEP_S);
		write_q(c, "DELETE FROM events WHERE at < "
		    "extract(epoch from now())::bigint - $1", &q);
	}
}

struct cluster *
cluster_new(struct ev_loop *loop, const char *url, struct store *st, struct medsrv *med,
    char *err, size_t errlen)
{
	struct cluster *c;
	uint8_t rnd[8];
	PGresult *r;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->st = st;
	c->db = store_pg_conn(st);
	if (store_pg_async_start(st, loop, err, errlen) < 0) {
		free(c);
		return NULL;
	}
	c->aw = store_pg_async(st);
	c->med = med;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->id, sizeof(c->id), rnd, sizeof(rnd));
	r = PQexec(pgq_raw(c->db), schema);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "cluster schema: %s", PQerrorMessage(pgq_raw(c->db)));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (listen_start(c, url) < 0) {
		snprintf(err, errlen, "cluster LISTEN: %s",
		    c->listen ? PQerrorMessage(c->listen) : "out of memory");
		goto fail;
	}
	c->seen_seq = c->next_seq = events_max(c);
	if (c->seen_seq < 0)
		c->seen_seq = c->next_seq = 0;
	array_reset(&c->rows_key);
	array_reset(&c->rows_eps);
	array_reset(&c->rows_line);
	ev_prepare_init(&c->flush_w, flush_cb);
	c->flush_w.data = c;
	ev_prepare_start(loop, &c->flush_w);
	ev_timer_init(&c->beat_w, beat_cb, 0.0, CLUSTER_BEAT_S);
	c->beat_w.data = c;
	ev_timer_start(loop, &c->beat_w);
	reap(c, 1);
	remotes_reload(c, 0);
	medsrv_set_peers(med, &(struct medsrv_peers){ .event = event_cb, .remote = remote_cb,
	    .side = side_cb, .forward = forward_cb, .arg = c });
	log_info("event=cluster_joined instance=%s remote_nodes=%u", c->id,
	    HASH_COUNT(c->remotes));
	return c;
fail:
	for (char *p = err; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = *p == '"' ? '\'' : ' ';
	if (c->listen)
		PQfinish(c->listen);
	free(c);
	return NULL;
}

void
cluster_free(struct cluster *c)
{
	struct remote *r, *t;
	struct dirty *d, *dt;
	struct pgq q;

	if (c == NULL)
		return;
	medsrv_set_peers(c->med, &(struct medsrv_peers){ .event = NULL });
	/* unwritten presence changes: the delete of all our rows below covers them */
	HASH_ITER(hh, c->dirty, d, dt) {
		HASH_DEL(c->dirty, d);
		free(d);
	}
	batch_flush(c);
	ev_prepare_stop(c->loop, &c->flush_w);
	ev_io_stop(c->loop, &c->io_w);
	ev_timer_stop(c->loop, &c->beat_w);
	/* a clean stop: our nodes are offline now, not after CLUSTER_DEAD_S */
	pgq_init(&q);
	pgq_text(&q, c->id);
	/* queued after our last presence writes (the store's close sends them all) */
	write_q(c, "WITH gone AS (DELETE FROM presence WHERE instance = $1) "
	    "SELECT pg_notify('shoal', 'd ' || $1 || ' 0 - -')", &q);
	write_q(c, "DELETE FROM instances WHERE id = $1", &q);
	HASH_ITER(hh, c->remotes, r, t) {
		HASH_DEL(c->remotes, r);
		free(r);
	}
	PQfinish(c->listen);
	free(c);
}
