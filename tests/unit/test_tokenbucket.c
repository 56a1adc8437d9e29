/*
 * Unit tests for base/tokenbucket: a full bucket at first, a burst, a refill at the rate and
 * never above the burst.
 */
#include "config.h"

#include "base/tokenbucket.h"
#include "tests/unit/unit.h"

static void
test_bucket(void)
{
	struct tokenbucket b = { 0 };
	int k, n;

	for (n = 0, k = 0; k < 40; k++)
		n += tokenbucket_take(&b, 100.0, 16.0, 1.0);
	CHECK_EQ(n, 16);
	/* 2.5 s later: 2 tokens (and half of one). */
	for (n = 0, k = 0; k < 5; k++)
		n += tokenbucket_take(&b, 102.5, 16.0, 1.0);
	CHECK_EQ(n, 2);
	CHECK_EQ(tokenbucket_take(&b, 103.0, 16.0, 1.0), 1);      /* the half plus half */
	/* An hour idle fills it to the burst, not more. */
	for (n = 0, k = 0; k < 40; k++)
		n += tokenbucket_take(&b, 3700.0, 16.0, 1.0);
	CHECK_EQ(n, 16);
	/* A clock that goes back refills nothing. */
	CHECK_EQ(tokenbucket_take(&b, 3000.0, 16.0, 1.0), 0);
}

/* A clock that starts at 0 (tests' fake clocks): the bucket fills once, not at every call. */
static void
test_clock_at_zero(void)
{
	struct tokenbucket b = { 0 };
	int k, n;

	for (n = 0, k = 0; k < 10; k++)
		n += tokenbucket_take(&b, 0.0, 3.0, 0.5);
	CHECK_EQ(n, 3);
	CHECK_EQ(tokenbucket_take(&b, 2.0, 3.0, 0.5), 1);
	CHECK_EQ(tokenbucket_take(&b, 2.0, 3.0, 0.5), 0);
}

int
main(void)
{
	RUN(test_bucket);
	RUN(test_clock_at_zero);
	return unit_finish();
}
