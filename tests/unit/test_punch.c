/*
 * test_punch: server/punch.c's bounded pair table when it is full: a full table of recent
 * pairs refuses (PUNCH_FULL) until its oldest entry may be swept, and a deferred pair whose
 * window opened (punch_next_deferred) is swept as soon as it is old enough, even though the
 * table was last swept before it was released.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "server/punch.h"
#include "tests/unit/unit.h"

/* The i-th distinct key. */
static void
key(uint8_t k[KEY_LEN], uint32_t i)
{
	memset(k, 0xee, KEY_LEN);
	memcpy(k, &i, sizeof(i));
}

static void
test_full_table(void)
{
	struct punch *p = punch_new();
	uint8_t b[KEY_LEN], x[KEY_LEN], k[KEY_LEN], oa[KEY_LEN], ob[KEY_LEN];
	uint32_t i;

	CHECK(p != NULL);
	memset(b, 0x11, KEY_LEN);
	key(x, 0);
	/* x-b planned at 0, triggered again at 1: deferred until 10. */
	CHECK_EQ(punch_admit(p, x, b, 0, 0, 0.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, x, b, 0, 0, 1.0), PUNCH_DEFERRED);
	/* The rest of the table fills at 5. */
	for (i = 1; i < PUNCH_PAIRS_MAX; i++) {
		key(k, i);
		CHECK_EQ(punch_admit(p, k, b, 0, 0, 5.0), PUNCH_GO);
	}
	key(k, PUNCH_PAIRS_MAX);
	CHECK_EQ(punch_admit(p, k, b, 0, 0, 5.0), PUNCH_FULL);
	CHECK_EQ(punch_admit(p, k, b, 0, 0, 9.0), PUNCH_FULL);
	/* At 11 x-b is released: old enough to go at once, so a newcomer gets its entry. */
	CHECK_EQ(punch_next_deferred(p, 11.0, oa, ob), 1);
	CHECK_MEM(oa, memcmp(x, b, KEY_LEN) < 0 ? x : b, KEY_LEN);
	CHECK_EQ(punch_admit(p, k, b, 0, 0, 11.0), PUNCH_GO);
	/* Full again, and nothing expires before 15. */
	key(k, PUNCH_PAIRS_MAX + 1);
	CHECK_EQ(punch_admit(p, k, b, 0, 0, 12.0), PUNCH_FULL);
	CHECK_EQ(punch_admit(p, k, b, 0, 0, 15.0), PUNCH_GO);
	punch_free(p);
}

/* punch_forget drops exactly the node's pairs (deferred ones too), from any side. */
static void
test_forget(void)
{
	struct punch *p = punch_new();
	uint8_t b[KEY_LEN], c[KEY_LEN], x[KEY_LEN], oa[KEY_LEN], ob[KEY_LEN];

	CHECK(p != NULL);
	memset(b, 0x11, KEY_LEN);
	memset(c, 0x99, KEY_LEN);
	memset(x, 0x50, KEY_LEN);       /* between: side 1 of b-x, side 0 of x-c */
	CHECK_EQ(punch_admit(p, x, b, 0, 0, 0.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, c, x, 0, 0, 0.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, b, c, 0, 0, 0.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, b, x, 0, 0, 1.0), PUNCH_DEFERRED);
	punch_forget(p, x);
	CHECK_EQ(punch_next_deferred(p, 20.0, oa, ob), 0);
	CHECK_EQ(punch_admit(p, x, b, 0, 0, 2.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, x, c, 0, 0, 2.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, c, b, 0, 0, 2.0), PUNCH_DEFERRED);
	/* Again with x's pairs newest first in the lists, then the others' lists still work. */
	punch_forget(p, x);
	punch_forget(p, b);
	CHECK_EQ(punch_admit(p, b, c, 0, 0, 3.0), PUNCH_GO);
	CHECK_EQ(punch_admit(p, x, c, 0, 0, 3.0), PUNCH_GO);
	punch_free(p);
}

int
main(void)
{
	RUN(test_full_table);
	RUN(test_forget);
	return unit_finish();
}
