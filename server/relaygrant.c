/*
 * relaygrant: see relaygrant.h. Pairs are hashed by their two keys (lower first); a node's
 * own walks go over its list, the renewal and a pool change over the whole table (bounded).
 */
#include "config.h"
#include "server/relaygrant.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "base/keyid.h"
#include "base/log.h"
#include "base/logbudget.h"
#include "mproto/relaymsg.h"
#include "server/relaypick.h"

struct gpair {                           /* owned by struct relaygrant */
	uint8_t keys[2 * KEY_LEN];      /* side 0's key, then side 1's (memcmp order) */
	uint16_t relay_id;              /* 0: no relay alive (the sides were told to stop) */
	uint64_t pair;
	uint32_t expiry;
	uint8_t reason;
	UT_hash_handle hh;
	struct gpair *sprev[2], *snext[2];  /* the list of side i's node (struct gnode) */
	/* On the standby list (utlist DL, oldest first) while only ever introduced as
	 * "starting". */
	struct gpair *sb_prev, *sb_next;
	uint8_t standby;
};

/* A node's pairs: a node going away revokes its own pairs without scanning the table (a
 * mass disconnect scanned all of it per node: a third of the mediator's CPU). */
struct gnode {                           /* owned by struct relaygrant */
	uint8_t key[KEY_LEN];
	struct gpair *head;
	UT_hash_handle hh;
};

struct grtt {                            /* owned by struct relaygrant */
	uint8_t key[KEY_LEN];
	double at;                      /* when the last report was taken */
	struct msg_relay_rtt r;
	UT_hash_handle hh;
};

struct relaygrant {
	struct relaypool *pool;
	struct relaygrant_ops ops;
	struct gpair *pairs;
	struct grtt *rtts;
	struct relaygrant_stats st;
	size_t max_pairs;
	struct gpair *standby;          /* the standby pairs, oldest first (utlist DL) */
	uint32_t full_logged_at;        /* unix time of the last table_full line */
	uint32_t evict_logged_at;       /* ... and of the last eviction line */
	struct logbudget pick_log;      /* relay_pick lines at info level (a restart picks for
	                                 * every pair at once) */
	struct gnode *nodes;
};

struct relaygrant *
relaygrant_new(struct relaypool *pool, const struct relaygrant_ops *ops, size_t max_pairs)
{
	struct relaygrant *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->pool = pool;
	g->ops = *ops;
	g->max_pairs = max_pairs ? max_pairs : RELAYGRANT_MAX_PAIRS;
	return g;
}

/* Which side of p key is (0 or 1). */
static int
side_of(const struct gpair *p, const uint8_t key[KEY_LEN])
{
	return memcmp(p->keys, key, KEY_LEN) == 0 ? 0 : 1;
}

/* Puts p on both sides' lists; -1 (nothing linked) when out of memory. */
static int
pair_link(struct relaygrant *g, struct gpair *p)
{
	struct gnode *n[2];
	int i;

	for (i = 0; i < 2; i++) {
		HASH_FIND(hh, g->nodes, p->keys + i * KEY_LEN, KEY_LEN, n[i]);
		if (n[i] == NULL) {
			if ((n[i] = calloc(1, sizeof(*n[i]))) == NULL) {
				if (i == 1 && n[0]->head == NULL) {
					HASH_DEL(g->nodes, n[0]);
					free(n[0]);
				}
				return -1;
			}
			memcpy(n[i]->key, p->keys + i * KEY_LEN, KEY_LEN);
			HASH_ADD(hh, g->nodes, key, KEY_LEN, n[i]);
		}
	}
	for (i = 0; i < 2; i++) {
		p->sprev[i] = NULL;
		p->snext[i] = n[i]->head;
		if (n[i]->head)
			n[i]->head->sprev[side_of(n[i]->head, n[i]->key)] = p;
		n[i]->head = p;
	}
	return 0;
}

static void
pair_unlink(struct relaygrant *g, struct gpair *p)
{
	struct gnode *n;
	int i;

	for (i = 0; i < 2; i++) {
		HASH_FIND(hh, g->nodes, p->keys + i * KEY_LEN, KEY_LEN, n);
		if (n == NULL)
			continue;
		if (p->sprev[i])
			p->sprev[i]->snext[side_of(p->sprev[i], n->key)] = p->snext[i];
		else
			n->head = p->snext[i];
		if (p->snext[i])
			p->snext[i]->sprev[side_of(p->snext[i], n->key)] = p->sprev[i];
		if (n->head == NULL) {
			HASH_DEL(g->nodes, n);
			free(n);
		}
	}
}

/* Off the standby list (if on it). */
static void
standby_off(struct relaygrant *g, struct gpair *p)
{
	if (!p->standby)
		return;
	DL_DELETE2(g->standby, p, sb_prev, sb_next);
	p->sb_prev = p->sb_next = NULL;
	p->standby = 0;
}

/* To the standby list's young end (an introduction renews a standby pair). */
static void
standby_on(struct relaygrant *g, struct gpair *p)
{
	standby_off(g, p);
	DL_APPEND2(g->standby, p, sb_prev, sb_next);
	p->standby = 1;
}

static void
pair_free(struct relaygrant *g, struct gpair *p)
{
	standby_off(g, p);
	pair_unlink(g, p);
	HASH_DEL(g->pairs, p);
	free(p);
	g->st.pairs--;
}

void
relaygrant_free(struct relaygrant *g)
{
	struct gpair *p, *pt;
	struct grtt *r, *rt;

	if (g == NULL)
		return;
	HASH_ITER(hh, g->pairs, p, pt)
		pair_free(g, p);
	HASH_ITER(hh, g->rtts, r, rt) {
		HASH_DEL(g->rtts, r);
		free(r);
	}
	free(g);
}

static void
pair_keys(const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN], uint8_t out[2 * KEY_LEN])
{
	int lo = memcmp(a, b, KEY_LEN) < 0;

	memcpy(out, lo ? a : b, KEY_LEN);
	memcpy(out + KEY_LEN, lo ? b : a, KEY_LEN);
}

static struct gpair *
pair_find(struct relaygrant *g, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	uint8_t k[2 * KEY_LEN];
	struct gpair *p;

	pair_keys(a, b, k);
	HASH_FIND(hh, g->pairs, k, sizeof(k), p);
	return p;
}

/* Node key's measured RTT to relay id, or < 0 when it has not reported one. */
static double
rtt_of(struct relaygrant *g, const uint8_t key[KEY_LEN], uint16_t id)
{
	struct grtt *r;
	uint8_t i;

	HASH_FIND(hh, g->rtts, key, KEY_LEN, r);
	if (r == NULL)
		return -1;
	for (i = 0; i < r->r.n; i++)
		if (r->r.rtt[i].id == id)
			return r->r.rtt[i].rtt_ms == RELAY_RTT_UNREACHABLE ?
			    RELAYGRANT_UNREACHABLE_MS : r->r.rtt[i].rtt_ms;
	return -1;
}

/* Both sides' grants for p as it stands (relay_id 0: revokes). */
static void
send_grants(struct relaygrant *g, const struct gpair *p)
{
	struct relaypool_entry *e = relaypool_find(g->pool, p->relay_id);
	struct msg_relay_grant m;
	int side;

	for (side = 0; side < 2; side++) {
		memset(&m, 0, sizeof(m));
		memcpy(m.peer, p->keys + (side ? 0 : KEY_LEN), KEY_LEN);
		if (p->relay_id != 0 && e != NULL) {
			m.relay_id = p->relay_id;
			m.udp = e->udp;
			m.tcp_port = e->tcp_port;
			m.pair = p->pair;
			m.side = (uint8_t)side;
			m.expiry = p->expiry;
			m.reason = p->reason;
			relaymsg_side_secret(e->relay_key, p->pair, (uint8_t)side, p->expiry,
			    m.secret);
			g->st.grants++;
		} else {
			g->st.revokes++;
		}
		g->ops.send(g->ops.arg, p->keys + (side ? KEY_LEN : 0), &m);
		sodium_memzero(&m, sizeof(m));
	}
}

static void
log_pick(struct relaygrant *g, const struct gpair *p, uint16_t from, const char *why,
    uint32_t unix_now)
{
	char a[KEY_SHORT_LEN], b[KEY_SHORT_LEN];

	key_short(p->keys, a);
	key_short(p->keys + KEY_LEN, b);
	(logbudget_take(&g->pick_log, unix_now, RELAYGRANT_LOG_PER_S, "relay_pick") ? log_info :
	    log_debug)("event=relay_pick a=%s b=%s relay=%u previous=%u reason=%s why=%s", a, b,
	    p->relay_id, from, relay_reason_name(p->reason), why);
}

/*
 * Picks p's relay again; on a change (or force) new grants go to both sides. A pair whose relay
 * is alive and still the pick keeps its pair id and grants.
 */
static void
pick(struct relaygrant *g, struct gpair *p, uint32_t unix_now, int force, const char *why)
{
	struct relaypool_entry *live[RELAY_POOL_MAX];
	struct relaypick_in in[RELAY_POOL_MAX];
	size_t i, n = relaypool_alive(g->pool, live, RELAY_POOL_MAX);
	int cur = -1, best;
	uint16_t from = p->relay_id;

	for (i = 0; i < n; i++) {
		in[i].a_ms = rtt_of(g, p->keys, live[i]->id);
		in[i].b_ms = rtt_of(g, p->keys + KEY_LEN, live[i]->id);
		in[i].load = live[i]->stats.pairs;
		in[i].alive = 1;
		if (live[i]->id == p->relay_id)
			cur = (int)i;
	}
	best = relaypick(in, n, cur);
	if (best < 0) {
		if (p->relay_id == 0 && !force)
			return;
		p->relay_id = 0;
		p->pair = 0;
		p->expiry = 0;
	} else if (best == cur && !force) {
		return;
	} else if (best != cur) {
		p->relay_id = live[best]->id;
		do
			randombytes_buf(&p->pair, sizeof(p->pair));
		while (p->pair == 0);
		p->expiry = unix_now + RELAYGRANT_LIFETIME;
		if (from != 0)
			g->st.moves++;
	}
	if (from != p->relay_id)
		log_pick(g, p, from, why, unix_now);
	send_grants(g, p);
}

/* At most one line per 10 s (*at: the last one's time): a big network joining refuses or
 * evicts thousands of pairs at once, and a line each cost more than the rest of the join. */
static int
pair_log_due(uint32_t *at, uint32_t unix_now)
{
	if (*at != 0 && unix_now - *at < 10)
		return 0;
	*at = unix_now;
	return 1;
}

static void revoke(struct relaygrant *g, struct gpair *p);

/* The oldest standby pair makes room: its sides are told to stop. */
static void
evict_standby(struct relaygrant *g, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    uint32_t unix_now)
{
	struct gpair *old = g->standby;
	char ida[KEY_SHORT_LEN], idb[KEY_SHORT_LEN], oa[KEY_SHORT_LEN], ob[KEY_SHORT_LEN];

	g->st.evicted++;
	if (pair_log_due(&g->evict_logged_at, unix_now)) {
		key_short(a, ida);
		key_short(b, idb);
		key_short(old->keys, oa);
		key_short(old->keys + KEY_LEN, ob);
		log_info("event=relay_pair_evicted a=%s b=%s for_a=%s for_b=%s evicted_total=%llu",
		    oa, ob, ida, idb, (unsigned long long)g->st.evicted);
	}
	revoke(g, old);
}

void
relaygrant_pair(struct relaygrant *g, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    uint8_t reason, int asked, uint32_t unix_now)
{
	struct gpair *p;
	char ida[KEY_SHORT_LEN], idb[KEY_SHORT_LEN];
	int need = asked || reason != RELAY_WHY_STARTING;

	if (memcmp(a, b, KEY_LEN) == 0)
		return;
	if ((p = pair_find(g, a, b)) != NULL) {
		if (need)
			standby_off(g, p);
		else if (p->standby)
			standby_on(g, p);
		if (p->reason != reason) {
			p->reason = reason;
			pick(g, p, unix_now, 1, "reason");
		} else {
			pick(g, p, unix_now, 0, "introduced");
		}
		return;
	}
	if (g->st.pairs >= g->max_pairs && need && g->standby != NULL)
		evict_standby(g, a, b, unix_now);
	if (g->st.pairs >= g->max_pairs || (p = calloc(1, sizeof(*p))) == NULL) {
		g->st.full++;
		if (!pair_log_due(&g->full_logged_at, unix_now))
			return;
		key_short(a, ida);
		key_short(b, idb);
		log_warnx("event=relay_pair_refused a=%s b=%s reason=table_full pairs=%llu "
		    "refused_total=%llu", ida, idb, (unsigned long long)g->st.pairs,
		    (unsigned long long)g->st.full);
		return;
	}
	pair_keys(a, b, p->keys);
	p->reason = reason;
	if (pair_link(g, p) < 0) {
		free(p);
		g->st.full++;
		return;
	}
	HASH_ADD(hh, g->pairs, keys, sizeof(p->keys), p);
	g->st.pairs++;
	if (!need)
		standby_on(g, p);
	pick(g, p, unix_now, 1, "introduced");
}

/* Tells both sides to stop (when a relay was in use) and forgets p. */
static void
revoke(struct relaygrant *g, struct gpair *p)
{
	if (p->relay_id != 0) {
		p->relay_id = 0;
		send_grants(g, p);
	}
	pair_free(g, p);
}

/* key's own list, not the table: membership events from other instances recheck their nodes
 * too (PROTOCOL.md 4.8), most of which have no pair here. */
void
relaygrant_recheck(struct relaygrant *g, const uint8_t key[KEY_LEN], relaygrant_ok_fn ok,
    void *arg)
{
	struct gpair *p, *next;
	struct gnode *n;

	HASH_FIND(hh, g->nodes, key, KEY_LEN, n);
	/* revoke frees p (and n with its last pair): the next one is taken first. */
	for (p = n ? n->head : NULL; p != NULL; p = next) {
		next = p->snext[side_of(p, key)];
		if (!ok(arg, p->keys, p->keys + KEY_LEN))
			revoke(g, p);
	}
}

void
relaygrant_node_gone(struct relaygrant *g, const uint8_t key[KEY_LEN])
{
	struct gnode *n;
	struct grtt *r;

	HASH_FIND(hh, g->rtts, key, KEY_LEN, r);
	if (r != NULL) {
		HASH_DEL(g->rtts, r);
		free(r);
	}
	/* revoke frees the pair, and the node's entry with its last pair. */
	for (;;) {
		HASH_FIND(hh, g->nodes, key, KEY_LEN, n);
		if (n == NULL)
			break;
		revoke(g, n->head);
	}
}

int
relaygrant_rtt(struct relaygrant *g, const uint8_t key[KEY_LEN],
    const struct msg_relay_rtt *rep, double now, uint32_t unix_now)
{
	struct gpair *p;
	struct gnode *n;
	struct grtt *r;

	HASH_FIND(hh, g->rtts, key, KEY_LEN, r);
	if (r != NULL && now - r->at < RELAYGRANT_RTT_EVERY) {
		g->st.rtt_limited++;
		return -1;
	}
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return -1;
		memcpy(r->key, key, KEY_LEN);
		HASH_ADD(hh, g->rtts, key, KEY_LEN, r);
	}
	r->at = now;
	r->r = *rep;
	g->st.rtt_reports++;
	/* key's own list: a scan of the table per report cost every node's report the whole
	 * table (pick never frees a pair, so the list holds while we walk it). */
	HASH_FIND(hh, g->nodes, key, KEY_LEN, n);
	for (p = n ? n->head : NULL; p != NULL; p = p->snext[side_of(p, key)])
		pick(g, p, unix_now, 0, "rtt");
	return 0;
}

void
relaygrant_repick_all(struct relaygrant *g, uint32_t unix_now)
{
	struct gpair *p, *tmp;

	HASH_ITER(hh, g->pairs, p, tmp)
		pick(g, p, unix_now, 0, "pool");
}

void
relaygrant_renew(struct relaygrant *g, uint32_t unix_now)
{
	struct gpair *p, *tmp;

	HASH_ITER(hh, g->pairs, p, tmp) {
		if (p->relay_id == 0 || p->expiry > unix_now + RELAYGRANT_RENEW_BEFORE)
			continue;
		/* Same relay and pair id: the relay extends the pair when the sides rebind. */
		p->expiry = unix_now + RELAYGRANT_LIFETIME;
		send_grants(g, p);
	}
}

uint16_t
relaygrant_relay_of(struct relaygrant *g, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	struct gpair *p = pair_find(g, a, b);

	return p ? p->relay_id : 0;
}

void
relaygrant_get_stats(const struct relaygrant *g, struct relaygrant_stats *st)
{
	*st = g->st;
}
