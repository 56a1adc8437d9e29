/*
 * joinlimit:
 * per-key failure windows, a ring of the last JL_MAX_FAILURES failure times.
 * Must not touch: the store, the network. Time comes from the caller.
 */
#include "config.h"
#include "server/joinlimit.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct rl_entry {                        /* owned by struct joinlimit */
	uint8_t key[KEY_LEN];           /* hash key */
	double t[JL_MAX_FAILURES];      /* failure times, ring */
	unsigned next;                  /* ring slot to overwrite */
	unsigned count;                 /* slots in use, <= JL_MAX_FAILURES */
	double last;                    /* newest failure */
	UT_hash_handle hh;
};

struct joinlimit {                       /* owned by the mediator */
	struct rl_entry *by_key;
	unsigned n;
};

struct joinlimit *
joinlimit_new(void)
{
	return calloc(1, sizeof(struct joinlimit));
}

void
joinlimit_free(struct joinlimit *rl)
{
	struct rl_entry *e, *tmp;

	if (rl == NULL)
		return;
	HASH_ITER(hh, rl->by_key, e, tmp) {
		HASH_DEL(rl->by_key, e);
		free(e);
	}
	free(rl);
}

static void
prune(struct joinlimit *rl, double now)
{
	struct rl_entry *e, *tmp;

	HASH_ITER(hh, rl->by_key, e, tmp) {
		if (now - e->last >= JL_WINDOW) {
			HASH_DEL(rl->by_key, e);
			free(e);
			rl->n--;
		}
	}
}

int
joinlimit_limited(struct joinlimit *rl, const uint8_t key[KEY_LEN], double now)
{
	struct rl_entry *e;
	unsigned i, recent = 0;

	HASH_FIND(hh, rl->by_key, key, KEY_LEN, e);
	if (e == NULL)
		return 0;
	for (i = 0; i < e->count; i++)
		if (now - e->t[i] < JL_WINDOW)
			recent++;
	return recent >= JL_MAX_FAILURES;
}

void
joinlimit_failure(struct joinlimit *rl, const uint8_t key[KEY_LEN], double now)
{
	struct rl_entry *e;

	HASH_FIND(hh, rl->by_key, key, KEY_LEN, e);
	if (e == NULL) {
		if (rl->n >= JL_MAX_ENTRIES)
			prune(rl, now);
		/* Still full: forget the table rather than grow without bound; an attacker with
		 * thousands of keys gains a few extra guesses at most. */
		if (rl->n >= JL_MAX_ENTRIES) {
			struct rl_entry *tmp;

			HASH_ITER(hh, rl->by_key, e, tmp) {
				HASH_DEL(rl->by_key, e);
				free(e);
			}
			rl->n = 0;
		}
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return;
		memcpy(e->key, key, KEY_LEN);
		HASH_ADD(hh, rl->by_key, key, KEY_LEN, e);
		rl->n++;
	}
	e->t[e->next] = now;
	e->next = (e->next + 1) % JL_MAX_FAILURES;
	if (e->count < JL_MAX_FAILURES)
		e->count++;
	e->last = now;
}
