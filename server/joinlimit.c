/*
 * joinlimit: one hash of entries keyed by scope and id; each entry a fixed window counter and
 * its backoff state. Must not touch: the store, the network. Time comes from the caller.
 */
#include "config.h"
#include "server/joinlimit.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

const unsigned jl_budget[JL_SCOPES] = {
	[JL_FAIL_KEY] = 5,
	[JL_FAIL_SOURCE] = 20,
	[JL_FAIL_NETWORK] = 30,
	[JL_PWOP_KEY] = 10,
	[JL_PWOP_SOURCE] = 40,
	[JL_REGISTER_SOURCE] = 30,
};

struct rl_entry {                        /* owned by struct joinlimit */
	uint8_t id[1 + JL_ID_MAX];      /* scope, then the id zero-padded: the hash key */
	double window_start;
	unsigned count;                 /* events since window_start */
	unsigned strikes;               /* blocks so far */
	double blocked_until;
	double last;                    /* newest event */
	UT_hash_handle hh;
};

struct joinlimit {                       /* owned by the mediator */
	struct rl_entry *by_id;
	unsigned n;
	unsigned budget[JL_SCOPES];
};

struct joinlimit *
joinlimit_new(void)
{
	struct joinlimit *rl = calloc(1, sizeof(struct joinlimit));

	if (rl != NULL)
		memcpy(rl->budget, jl_budget, sizeof(rl->budget));
	return rl;
}

void
joinlimit_set_budget(struct joinlimit *rl, enum jl_scope scope, unsigned budget)
{
	rl->budget[scope] = budget > 0 ? budget : 1;
}

unsigned
joinlimit_budget(const struct joinlimit *rl, enum jl_scope scope)
{
	return rl->budget[scope];
}

static void
drop(struct joinlimit *rl, struct rl_entry *e)
{
	HASH_DEL(rl->by_id, e);
	free(e);
	rl->n--;
}

void
joinlimit_free(struct joinlimit *rl)
{
	struct rl_entry *e, *tmp;

	if (rl == NULL)
		return;
	HASH_ITER(hh, rl->by_id, e, tmp)
		drop(rl, e);
	free(rl);
}

static void
make_id(uint8_t out[1 + JL_ID_MAX], enum jl_scope scope, const void *id, size_t len)
{
	memset(out, 0, 1 + JL_ID_MAX);
	out[0] = (uint8_t)scope;
	memcpy(out + 1, id, len < JL_ID_MAX ? len : JL_ID_MAX);
}

static struct rl_entry *
find(struct joinlimit *rl, enum jl_scope scope, const void *id, size_t len)
{
	uint8_t k[1 + JL_ID_MAX];
	struct rl_entry *e;

	make_id(k, scope, id, len);
	HASH_FIND(hh, rl->by_id, k, sizeof(k), e);
	return e;
}

int
joinlimit_blocked(struct joinlimit *rl, enum jl_scope scope, const void *id, size_t len,
    double now, double *retry_after)
{
	struct rl_entry *e = find(rl, scope, id, len);

	if (e == NULL || now >= e->blocked_until)
		return 0;
	if (retry_after)
		*retry_after = e->blocked_until - now;
	return 1;
}

/* Makes room: forgotten entries go first; if none, the table is cleared (bounded memory
 * beats perfect memory: an attacker with that many ids gains a few guesses at most). */
static void
make_room(struct joinlimit *rl, double now)
{
	struct rl_entry *e, *tmp;

	HASH_ITER(hh, rl->by_id, e, tmp)
		if (now - e->last >= JL_FORGET && now >= e->blocked_until)
			drop(rl, e);
	if (rl->n >= JL_MAX_ENTRIES)
		HASH_ITER(hh, rl->by_id, e, tmp)
			drop(rl, e);
}

int
joinlimit_hit(struct joinlimit *rl, enum jl_scope scope, const void *id, size_t len,
    double now)
{
	struct rl_entry *e;
	double block;

	if (scope >= JL_SCOPES)
		return 0;
	if ((e = find(rl, scope, id, len)) == NULL) {
		if (rl->n >= JL_MAX_ENTRIES)
			make_room(rl, now);
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return 0;
		make_id(e->id, scope, id, len);
		e->window_start = now;
		HASH_ADD(hh, rl->by_id, id, sizeof(e->id), e);
		rl->n++;
	}
	if (now - e->last >= JL_FORGET)
		e->strikes = 0;
	if (now - e->window_start >= JL_WINDOW) {
		e->window_start = now;
		e->count = 0;
	}
	e->last = now;
	if (++e->count < rl->budget[scope] || rl->budget[scope] == UINT_MAX)
		return 0;
	block = JL_WINDOW * (double)(1u << (e->strikes < 6 ? e->strikes : 6));
	e->blocked_until = now + (block < JL_BACKOFF_MAX ? block : JL_BACKOFF_MAX);
	e->strikes++;
	e->count = 0;
	e->window_start = now;
	return 1;
}
