/*
 * remoteside: a uthash table of the latest punch side per remote node (remoteside.h).
 */
#include "config.h"
#include "server/remoteside.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct entry {
	struct punch_side side;         /* side.key is the hash key */
	unsigned hop_ms;
	double at;
	UT_hash_handle hh;
};

struct remoteside {
	struct entry *by_key;
};

struct remoteside *
remoteside_new(void)
{
	return calloc(1, sizeof(struct remoteside));
}

void
remoteside_free(struct remoteside *r)
{
	struct entry *e, *tmp;

	if (r == NULL)
		return;
	HASH_ITER(hh, r->by_key, e, tmp) {
		HASH_DEL(r->by_key, e);
		free(e);
	}
	free(r);
}

static void
sweep(struct remoteside *r, double now)
{
	struct entry *e, *tmp;

	HASH_ITER(hh, r->by_key, e, tmp)
		if (now - e->at > REMOTESIDE_STALE_S) {
			HASH_DEL(r->by_key, e);
			free(e);
		}
}

int
remoteside_put(struct remoteside *r, const struct punch_side *s, unsigned hop_ms, double now)
{
	struct entry *e;

	HASH_FIND(hh, r->by_key, s->key, KEY_LEN, e);
	if (e == NULL) {
		if (HASH_COUNT(r->by_key) >= REMOTESIDE_MAX)
			sweep(r, now);
		if (HASH_COUNT(r->by_key) >= REMOTESIDE_MAX || (e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		e->side = *s;
		HASH_ADD(hh, r->by_key, side.key, KEY_LEN, e);
	} else {
		e->side = *s;
	}
	e->hop_ms = hop_ms;
	e->at = now;
	return 0;
}

int
remoteside_get(const struct remoteside *r, const uint8_t key[KEY_LEN], struct punch_side *out)
{
	struct entry *e;
	unsigned d;

	HASH_FIND(hh, r->by_key, key, KEY_LEN, e);
	if (e == NULL)
		return 0;
	*out = e->side;
	d = (unsigned)out->delay_ms + e->hop_ms;
	out->delay_ms = (uint16_t)(d > PUNCH_START_MAX_MS ? PUNCH_START_MAX_MS : d);
	return 1;
}

void
remoteside_forget(struct remoteside *r, const uint8_t key[KEY_LEN])
{
	struct entry *e;

	HASH_FIND(hh, r->by_key, key, KEY_LEN, e);
	if (e != NULL) {
		HASH_DEL(r->by_key, e);
		free(e);
	}
}
