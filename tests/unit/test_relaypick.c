/*
 * Unit tests for server/relaypick: per pair the relay with the lowest rtt(A, r) + rtt(r, B);
 * two pairs with different geography get different relays; load breaks ties; a pair does not
 * flap between relays on small changes, moves on a clear gain or when its relay is gone;
 * measured relays beat unmeasured ones.
 */
#include "config.h"

#include "server/relaypick.h"
#include "tests/unit/unit.h"

static void
test_best_per_pair(void)
{
	/* Relays in Europe, America, Asia. Pair 1: two Europeans. Pair 2: America-Asia. */
	struct relaypick_in p1[3] = {
		{ 10, 12, 0, 1 }, { 90, 95, 0, 1 }, { 160, 170, 0, 1 },
	};
	struct relaypick_in p2[3] = {
		{ 100, 180, 0, 1 }, { 15, 140, 0, 1 }, { 150, 20, 0, 1 },
	};

	CHECK_EQ(relaypick(p1, 3, -1), 0);
	CHECK_EQ(relaypick(p2, 3, -1), 1);      /* 155 beats 170 and 280 */
	p2[1].alive = 0;
	CHECK_EQ(relaypick(p2, 3, -1), 2);
	p2[2].alive = 0;
	p2[0].alive = 0;
	CHECK_EQ(relaypick(p2, 3, -1), -1);
}

static void
test_ties_and_unknown(void)
{
	struct relaypick_in r[3] = {
		{ 20, 20, 50, 1 }, { 20, 20.5, 10, 1 }, { -1, 5, 0, 1 },
	};

	CHECK_EQ(relaypick(r, 3, -1), 1);       /* equal within 1 ms: the less loaded */
	CHECK(relaypick_cost(&r[2]) == RELAYPICK_UNKNOWN_MS + 5);
	r[0].alive = r[1].alive = 0;
	CHECK_EQ(relaypick(r, 3, -1), 2);       /* unmeasured, but the only one */
}

static void
test_no_flapping(void)
{
	struct relaypick_in r[2] = { { 50, 50, 0, 1 }, { 48, 47, 0, 1 } };

	/* 95 vs 100: 5 ms better is noise, stay on 0. */
	CHECK_EQ(relaypick(r, 2, 0), 0);
	/* 70 vs 100: 30 ms and 30%: move. */
	r[1].a_ms = 35;
	r[1].b_ms = 35;
	CHECK_EQ(relaypick(r, 2, 0), 1);
	/* Its relay gone: move whatever the gain. */
	r[1].a_ms = 49;
	r[1].b_ms = 50;
	r[0].alive = 0;
	CHECK_EQ(relaypick(r, 2, 0), 1);
	/* An out-of-range current index counts as none: 99 against 100 ms is within the 1 ms
	 * tie margin at equal load, so the first; at 89 ms the second. */
	r[0].alive = 1;
	CHECK_EQ(relaypick(r, 2, 7), 0);
	r[1].b_ms = 40;
	CHECK_EQ(relaypick(r, 2, 7), 1);
}

int
main(void)
{
	RUN(test_best_per_pair);
	RUN(test_ties_and_unknown);
	RUN(test_no_flapping);
	return unit_finish();
}
