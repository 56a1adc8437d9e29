/*
 * punch: the pair table (last plan time per unordered pair of keys), the last plan time per
 * sequential public address, one FIFO of pairs waiting for their addresses, and a list of the
 * pairs whose last trigger came inside their window (deferred; linked through the pair
 * entries, so it needs no memory of its own and cannot overflow). The queue is a small array
 * (PUNCH_QUEUE_MAX): removal shifts, which is cheap at that size and keeps the order without
 * a second index.
 * Must not: send, log, read a clock, know about sessions or the store.
 */
#include "config.h"
#include "server/punch.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

struct pair {                            /* owned by struct punch */
	uint8_t keys[2 * KEY_LEN];      /* lower key first */
	double at;                      /* last plan */
	int deferred;                   /* a trigger waits for at + PUNCH_PAIR_MIN_S */
	struct pair *dprev, *dnext;     /* struct punch's deferred list, while deferred */
	unsigned retries;               /* queued since a trigger planned it (punch_retry_later) */
	UT_hash_handle hh;
	struct pair *sprev[2], *snext[2]; /* the list of side i's node (struct pnode) */
};

/* A node's pairs: punch_forget drops them without scanning the table (a mass disconnect
 * scanned all PUNCH_PAIRS_MAX entries per node: a third of the mediator's CPU). */
struct pnode {                           /* owned by struct punch */
	uint8_t key[KEY_LEN];
	struct pair *head;
	UT_hash_handle hh;
};

struct seqaddr {                         /* owned by struct punch */
	uint32_t addr;
	double at;                      /* last plan involving a sequential side here */
	UT_hash_handle hh;
};

struct queued {
	uint8_t keys[2 * KEY_LEN];
	uint32_t seq[2];
	double not_before;              /* a retry: not planned before this; 0 otherwise */
};

struct punch {
	struct pair *pairs;
	unsigned n_pairs;
	struct pair *deferred;          /* utlist DL through dprev/dnext */
	struct seqaddr *addrs;
	unsigned n_addrs;
	struct queued q[PUNCH_QUEUE_MAX];
	unsigned n_q;
	struct pnode *nodes;
	/* No entry can be swept before this (the oldest one's expiry, as of the last sweep): a
	 * full table of recent pairs (a 1,000-member network joining) is scanned once, not at
	 * every refused pair, which made each join cost a scan of PUNCH_PAIRS_MAX entries per
	 * member. */
	double sweep_after;
};

struct punch *
punch_new(void)
{
	return calloc(1, sizeof(struct punch));
}

static int
side_of(const struct pair *e, const uint8_t key[KEY_LEN])
{
	return memcmp(e->keys, key, KEY_LEN) == 0 ? 0 : 1;
}

/* Puts e on both sides' lists; -1 (nothing linked) when out of memory. */
static int
pair_link(struct punch *p, struct pair *e)
{
	struct pnode *n[2];
	int i;

	for (i = 0; i < 2; i++) {
		HASH_FIND(hh, p->nodes, e->keys + i * KEY_LEN, KEY_LEN, n[i]);
		if (n[i] == NULL) {
			if ((n[i] = calloc(1, sizeof(*n[i]))) == NULL) {
				if (i == 1 && n[0]->head == NULL) {
					HASH_DEL(p->nodes, n[0]);
					free(n[0]);
				}
				return -1;
			}
			memcpy(n[i]->key, e->keys + i * KEY_LEN, KEY_LEN);
			HASH_ADD(hh, p->nodes, key, KEY_LEN, n[i]);
		}
	}
	for (i = 0; i < 2; i++) {
		e->sprev[i] = NULL;
		e->snext[i] = n[i]->head;
		if (n[i]->head)
			n[i]->head->sprev[side_of(n[i]->head, n[i]->key)] = e;
		n[i]->head = e;
	}
	return 0;
}

/* Takes e off the table and both lists, and frees it. */
static void
pair_drop(struct punch *p, struct pair *e)
{
	struct pnode *n;
	int i;

	for (i = 0; i < 2; i++) {
		HASH_FIND(hh, p->nodes, e->keys + i * KEY_LEN, KEY_LEN, n);
		if (n == NULL)
			continue;
		if (e->sprev[i])
			e->sprev[i]->snext[side_of(e->sprev[i], n->key)] = e->snext[i];
		else
			n->head = e->snext[i];
		if (e->snext[i])
			e->snext[i]->sprev[side_of(e->snext[i], n->key)] = e->sprev[i];
		if (n->head == NULL) {
			HASH_DEL(p->nodes, n);
			free(n);
		}
	}
	HASH_DEL(p->pairs, e);
	free(e);
	p->n_pairs--;
}

void
punch_free(struct punch *p)
{
	struct pair *e, *tmp;
	struct seqaddr *s, *stmp;

	if (p == NULL)
		return;
	HASH_ITER(hh, p->pairs, e, tmp)
		pair_drop(p, e);
	HASH_ITER(hh, p->addrs, s, stmp) {
		HASH_DEL(p->addrs, s);
		free(s);
	}
	free(p);
}

/* (a, b) and (b, a) are one pair. */
static void
pair_keys(const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN], uint8_t out[2 * KEY_LEN])
{
	int swap = memcmp(a, b, KEY_LEN) > 0;

	memcpy(out, swap ? b : a, KEY_LEN);
	memcpy(out + KEY_LEN, swap ? a : b, KEY_LEN);
}

static double
addr_at(const struct punch *p, uint32_t addr)
{
	struct seqaddr *s;

	if (addr == 0)
		return -1;
	HASH_FIND(hh, p->addrs, &addr, sizeof(addr), s);
	return s ? s->at : -1;
}

static int
addr_free(const struct punch *p, uint32_t addr, double now)
{
	double at = addr_at(p, addr);

	return at < 0 || now - at >= PUNCH_SEQ_GAP_S;
}

/* Both bounded tables drop what no longer constrains anything before refusing. */
static void
sweep(struct punch *p, double now)
{
	struct pair *e, *tmp;
	struct seqaddr *s, *stmp;
	double next = -1;

	if (now < p->sweep_after)
		return;
	HASH_ITER(hh, p->pairs, e, tmp) {
		if (e->deferred)
			continue;       /* undefer() lowers sweep_after if it frees one */
		if (now - e->at >= PUNCH_PAIR_MIN_S) {
			pair_drop(p, e);
		} else if (next < 0 || e->at + PUNCH_PAIR_MIN_S < next) {
			next = e->at + PUNCH_PAIR_MIN_S;
		}
	}
	HASH_ITER(hh, p->addrs, s, stmp) {
		if (now - s->at >= PUNCH_SEQ_GAP_S) {
			HASH_DEL(p->addrs, s);
			free(s);
			p->n_addrs--;
		} else if (next < 0 || s->at + PUNCH_SEQ_GAP_S < next) {
			next = s->at + PUNCH_SEQ_GAP_S;
		}
	}
	/* Entries added or planned later expire later still: next stays a lower bound. */
	p->sweep_after = next >= 0 ? next : now + PUNCH_SEQ_GAP_S;
}

/* Room for the pair's entry and its addresses' entries; 0 when a bound is reached. */
static int
room(struct punch *p, const uint8_t keys[2 * KEY_LEN], double now)
{
	struct pair *e;

	HASH_FIND(hh, p->pairs, keys, 2 * KEY_LEN, e);
	if ((e == NULL && p->n_pairs >= PUNCH_PAIRS_MAX) || p->n_addrs + 2 > PUNCH_ADDRS_MAX)
		sweep(p, now);
	return (e != NULL || p->n_pairs < PUNCH_PAIRS_MAX) && p->n_addrs + 2 <= PUNCH_ADDRS_MAX;
}

static void
undefer(struct punch *p, struct pair *e)
{
	if (!e->deferred)
		return;
	DL_DELETE2(p->deferred, e, dprev, dnext);
	e->deferred = 0;
	if (e->at + PUNCH_PAIR_MIN_S < p->sweep_after)
		p->sweep_after = e->at + PUNCH_PAIR_MIN_S;
}

/* Records a plan of the pair at now; call only after room() said yes. */
static void
record(struct punch *p, const uint8_t keys[2 * KEY_LEN], const uint32_t seq[2], double now)
{
	struct pair *e;
	struct seqaddr *s;
	int i;

	HASH_FIND(hh, p->pairs, keys, 2 * KEY_LEN, e);
	/* A pair is two different nodes (a node is never planned with itself). */
	if (e == NULL && memcmp(keys, keys + KEY_LEN, KEY_LEN) != 0 &&
	    (e = calloc(1, sizeof(*e))) != NULL) {
		memcpy(e->keys, keys, sizeof(e->keys));
		if (pair_link(p, e) < 0) {
			free(e);
			e = NULL;
		} else {
			HASH_ADD(hh, p->pairs, keys, sizeof(e->keys), e);
			p->n_pairs++;
		}
	}
	if (e) {
		e->at = now;
		/* This plan answers whatever trigger was waiting. */
		undefer(p, e);
	}
	for (i = 0; i < 2; i++) {
		if (seq[i] == 0)
			continue;
		HASH_FIND(hh, p->addrs, &seq[i], sizeof(seq[i]), s);
		if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
			s->addr = seq[i];
			HASH_ADD(hh, p->addrs, addr, sizeof(s->addr), s);
			p->n_addrs++;
		}
		if (s)
			s->at = now;
	}
}

static int
queued_shares(const struct punch *p, unsigned upto, const uint32_t seq[2])
{
	unsigned i;
	int k, j;

	for (i = 0; i < upto; i++)
		for (k = 0; k < 2; k++)
			for (j = 0; j < 2; j++)
				if (seq[k] != 0 && p->q[i].seq[j] == seq[k])
					return 1;
	return 0;
}

static void
queue_remove(struct punch *p, unsigned i)
{
	memmove(&p->q[i], &p->q[i + 1], (p->n_q - i - 1) * sizeof(p->q[0]));
	p->n_q--;
}

enum punch_admit
punch_admit(struct punch *p, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    uint32_t seq_a, uint32_t seq_b, double now)
{
	uint8_t keys[2 * KEY_LEN];
	uint32_t seq[2];
	struct pair *e;
	unsigned i;

	pair_keys(a, b, keys);
	/* Same order as the keys, so a queued entry means the same thing whichever side asked. */
	seq[0] = memcmp(keys, a, KEY_LEN) == 0 ? seq_a : seq_b;
	seq[1] = memcmp(keys, a, KEY_LEN) == 0 ? seq_b : seq_a;
	HASH_FIND(hh, p->pairs, keys, 2 * KEY_LEN, e);
	if (e != NULL && now - e->at < PUNCH_PAIR_MIN_S) {
		/* Not dropped: what triggered it may be news the last plan did not have. */
		if (!e->deferred) {
			e->deferred = 1;
			DL_APPEND2(p->deferred, e, dprev, dnext);
		}
		return PUNCH_DEFERRED;
	}
	for (i = 0; i < p->n_q; i++) {
		if (memcmp(p->q[i].keys, keys, sizeof(keys)) != 0)
			continue;
		if (p->q[i].not_before == 0)
			return PUNCH_QUEUED;
		/* A retry waiting: the trigger plans now instead (and counts retries afresh). */
		queue_remove(p, i);
		break;
	}
	/* Behind a busy address, or behind earlier plans waiting for it: wait in line. */
	if (!addr_free(p, seq[0], now) || !addr_free(p, seq[1], now) ||
	    queued_shares(p, p->n_q, seq)) {
		if (p->n_q >= PUNCH_QUEUE_MAX)
			return PUNCH_FULL;
		memcpy(p->q[p->n_q].keys, keys, sizeof(keys));
		p->q[p->n_q].seq[0] = seq[0];
		p->q[p->n_q].seq[1] = seq[1];
		p->q[p->n_q].not_before = 0;
		p->n_q++;
		return PUNCH_QUEUED;
	}
	if (!room(p, keys, now))
		return PUNCH_FULL;
	record(p, keys, seq, now);
	HASH_FIND(hh, p->pairs, keys, 2 * KEY_LEN, e);
	if (e != NULL)
		e->retries = 0;
	return PUNCH_GO;
}

int
punch_retry_later(struct punch *p, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN],
    double now)
{
	uint8_t keys[2 * KEY_LEN];
	struct pair *e;
	unsigned i;

	pair_keys(a, b, keys);
	HASH_FIND(hh, p->pairs, keys, 2 * KEY_LEN, e);
	if (e == NULL || e->retries >= PUNCH_RETRIES || p->n_q >= PUNCH_QUEUE_MAX)
		return 0;
	for (i = 0; i < p->n_q; i++)
		if (memcmp(p->q[i].keys, keys, sizeof(keys)) == 0)
			return 0;
	memcpy(p->q[p->n_q].keys, keys, sizeof(keys));
	/* Birthday pairs have no sequential side: nothing to serialise on. */
	p->q[p->n_q].seq[0] = p->q[p->n_q].seq[1] = 0;
	p->q[p->n_q].not_before = now + (e->retries == 0 ? PUNCH_RETRY_1_S : PUNCH_RETRY_2_S);
	p->n_q++;
	e->retries++;
	return 1;
}

int
punch_next(struct punch *p, double now, uint8_t a[KEY_LEN], uint8_t b[KEY_LEN])
{
	unsigned i;

	for (i = 0; i < p->n_q; i++) {
		struct queued *q = &p->q[i];

		/* One address, one line: a later plan never overtakes an earlier one sharing an
		 * address with it. */
		if (q->not_before > now || !addr_free(p, q->seq[0], now) ||
		    !addr_free(p, q->seq[1], now) || queued_shares(p, i, q->seq))
			continue;
		if (!room(p, q->keys, now))
			return 0;
		record(p, q->keys, q->seq, now);
		memcpy(a, q->keys, KEY_LEN);
		memcpy(b, q->keys + KEY_LEN, KEY_LEN);
		queue_remove(p, i);
		return 1;
	}
	return 0;
}

int
punch_next_deferred(struct punch *p, double now, uint8_t a[KEY_LEN], uint8_t b[KEY_LEN])
{
	struct pair *e;

	DL_FOREACH2(p->deferred, e, dnext)
		if (now - e->at >= PUNCH_PAIR_MIN_S) {
			undefer(p, e);
			memcpy(a, e->keys, KEY_LEN);
			memcpy(b, e->keys + KEY_LEN, KEY_LEN);
			return 1;
		}
	return 0;
}

double
punch_due(const struct punch *p)
{
	double due = -1, t, at;
	const struct pair *e;
	unsigned i;
	int k;

	DL_FOREACH2(p->deferred, e, dnext)
		if (due < 0 || e->at + PUNCH_PAIR_MIN_S < due)
			due = e->at + PUNCH_PAIR_MIN_S;
	for (i = 0; i < p->n_q; i++) {
		t = p->q[i].not_before;
		for (k = 0; k < 2; k++)
			if ((at = addr_at(p, p->q[i].seq[k])) >= 0 && at + PUNCH_SEQ_GAP_S > t)
				t = at + PUNCH_SEQ_GAP_S;
		if (due < 0 || t < due)
			due = t;
	}
	return due;
}

void
punch_forget(struct punch *p, const uint8_t key[KEY_LEN])
{
	struct pnode *n;
	unsigned i = 0;

	/* pair_drop frees the node's entry with its last pair. */
	for (;;) {
		HASH_FIND(hh, p->nodes, key, KEY_LEN, n);
		if (n == NULL)
			break;
		undefer(p, n->head);
		pair_drop(p, n->head);
	}
	while (i < p->n_q)
		if (memcmp(p->q[i].keys, key, KEY_LEN) == 0 ||
		    memcmp(p->q[i].keys + KEY_LEN, key, KEY_LEN) == 0)
			queue_remove(p, i);
		else
			i++;
}
