/*
 * Unit tests for the RFC 6479 replay window in crypto/session.c: each case is a sequence of
 * counters fed to one fresh window with the expected verdict for each (0 accept, -1 reject).
 * W is how far behind the newest counter a packet may still be accepted.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "crypto/session.h"
#include "tests/unit/unit.h"

#define W ((uint64_t)REPLAY_WINDOW_BITS - REPLAY_WORD_BITS)   /* 1984 */
#define MAX_STEPS 16
#define END { 0, 99 }

struct step {
	uint64_t counter;
	int want;               /* 0, -1; 99 ends the list */
};

struct replay_case {
	const char *name;
	struct step steps[MAX_STEPS];
};

static const struct replay_case cases[] = {
	{ "first packet is 0", { { 0, 0 }, { 0, -1 }, END } },
	{ "first packet is not 0", { { 5, 0 }, { 0, 0 }, { 4, 0 }, { 5, -1 }, END } },
	{ "in order", { { 0, 0 }, { 1, 0 }, { 2, 0 }, { 3, 0 }, { 4, 0 }, END } },
	{ "duplicates", { { 0, 0 }, { 1, 0 }, { 1, -1 }, { 0, -1 }, { 2, 0 }, { 2, -1 }, END } },
	{ "reordered within window",
	  { { 10, 0 }, { 8, 0 }, { 9, 0 }, { 7, 0 }, { 8, -1 }, { 11, 0 }, { 1, 0 }, END } },
	{ "reordered across words",
	  { { 200, 0 }, { 63, 0 }, { 64, 0 }, { 127, 0 }, { 128, 0 }, { 64, -1 }, END } },
	{ "exactly at the window edge", { { 2000, 0 }, { 2000 - W, 0 }, { 2000 - W, -1 }, END } },
	{ "just beyond the window edge", { { 2000, 0 }, { 2000 - W - 1, -1 }, END } },
	{ "edge moves with newest",
	  { { W, 0 }, { 0, 0 }, { W + 1, 0 }, { 0, -1 }, { 1, 0 }, END } },
	{ "huge jump clears old bits",
	  { { 0, 0 }, { 1, 0 }, { 1000000, 0 }, { 1, -1 }, { 1000000 - W, 0 }, { 999999, 0 },
	    { 1000000, -1 }, END } },
	/*
	 * A jump of exactly a whole ring: the word that counter 64*32+5 lands in is the word of
	 * counter 5, so it must have been cleared or 64*32+5 would look replayed.
	 */
	{ "jump by the ring size",
	  { { 5, 0 }, { REPLAY_WINDOW_BITS + 5, 0 }, { REPLAY_WINDOW_BITS + 5, -1 }, { 5, -1 },
	    { REPLAY_WINDOW_BITS + 4, 0 }, END } },
	{ "jump by one word keeps the rest",
	  { { 100, 0 }, { 99, 0 }, { 164, 0 }, { 99, -1 }, { 100, -1 }, { 101, 0 }, END } },
	{ "counter near 2^64",
	  { { UINT64_MAX - 10, 0 }, { UINT64_MAX - 2, 0 }, { UINT64_MAX - 1, 0 },
	    { UINT64_MAX - 1, -1 }, { UINT64_MAX, -1 }, { UINT64_MAX - 10, -1 },
	    { UINT64_MAX - 3, 0 }, { UINT64_MAX - 1 - W, 0 }, { UINT64_MAX - 2 - W, -1 }, END } },
	{ "2^64-1 is never accepted", { { UINT64_MAX, -1 }, { 0, 0 }, END } },
};

static void
test_cases(void)
{
	size_t i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct replay_window rw;

		replay_init(&rw);
		for (j = 0; j < MAX_STEPS && cases[i].steps[j].want != 99; j++) {
			const struct step *st = &cases[i].steps[j];
			int got = replay_check(&rw, st->counter);

			if (got != st->want) {
				fprintf(stderr, "case \"%s\" step %zu counter %llu: got %d want %d\n",
				    cases[i].name, j, (unsigned long long)st->counter, got, st->want);
				CHECK(0);
			}
		}
	}
}

/* Every counter in a long shuffled-in-blocks run is accepted once and only once. */
static void
test_every_counter_once(void)
{
	struct replay_window rw;
	uint64_t base, c;
	int accepted = 0, rejected = 0;

	replay_init(&rw);
	/* Blocks of 1000 delivered backwards: all within the window, all new. */
	for (base = 0; base < 20000; base += 1000)
		for (c = base + 1000; c-- > base;)
			accepted += replay_check(&rw, c) == 0;
	CHECK_EQ(accepted, 20000);
	/* Everything still in the window is now a replay; older ones are too old. */
	for (c = 0; c < 20000; c++)
		rejected += replay_check(&rw, c) == -1;
	CHECK_EQ(rejected, 20000);
	CHECK(rw.top == 20000);
}

/* Walk the window forward one packet at a time, with the far edge checked at each step. */
static void
test_sliding_edges(void)
{
	struct replay_window rw;
	uint64_t c;

	replay_init(&rw);
	for (c = 0; c < 5000; c++) {
		CHECK_EQ(replay_check(&rw, c), 0);
		if (c > W) {
			/* c - W - 1 was accepted earlier; one past the edge is too old anyway. */
			CHECK_EQ(replay_check(&rw, c - W - 1), -1);
			CHECK_EQ(replay_check(&rw, c - W), -1);     /* in window, already seen */
		}
	}
}

int
main(void)
{
	RUN(test_cases);
	RUN(test_every_counter_once);
	RUN(test_sliding_edges);
	return unit_finish();
}
