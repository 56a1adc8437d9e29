/*
 * Unit tests for base/logbudget: per_s lines a second at info level, the rest counted, and the
 * count in one line when the next second starts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/logbudget.h"
#include "tests/unit/unit.h"

/* What the log (stderr) received while fn ran, into out. */
static void
captured(void (*fn)(struct logbudget *), struct logbudget *b, char *out, size_t cap)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	CHECK(f != NULL && saved >= 0);
	if (f == NULL || saved < 0)
		return;
	fflush(stderr);
	dup2(fileno(f), 2);
	fn(b);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void
next_second(struct logbudget *b)
{
	CHECK_EQ(logbudget_take(b, 101.5, 3, "pick"), 1);
}

static void
test_budget(void)
{
	struct logbudget b = { 0 };
	char out[512];
	int k;

	for (k = 0; k < 3; k++)
		CHECK_EQ(logbudget_take(&b, 100.0 + k * 0.1, 3, "pick"), 1);
	for (k = 0; k < 5; k++)
		CHECK_EQ(logbudget_take(&b, 100.5, 3, "pick"), 0);
	CHECK_EQ(b.skipped, 5);
	/* the next second: the count goes out, and the budget is whole again */
	captured(next_second, &b, out, sizeof(out));
	CHECK(strstr(out, "event=pick_unlogged count=5 level=debug") != NULL);
	CHECK_EQ(b.skipped, 0);
	CHECK_EQ(logbudget_take(&b, 101.6, 3, "pick"), 1);
	CHECK_EQ(logbudget_take(&b, 101.7, 3, "pick"), 1);
	CHECK_EQ(logbudget_take(&b, 101.8, 3, "pick"), 0);
	/* a second with nothing skipped: no count line after it */
	{
		struct logbudget quiet = { 0 };

		CHECK_EQ(logbudget_take(&quiet, 100.0, 3, "pick"), 1);
		captured(next_second, &quiet, out, sizeof(out));
		CHECK(strstr(out, "unlogged") == NULL);
		CHECK_EQ(quiet.logged, 1);              /* the new second's line */
	}
	/* spent in this second; a clock that went back starts a new one */
	CHECK_EQ(logbudget_take(&b, 101.9, 3, "pick"), 0);
	CHECK_EQ(logbudget_take(&b, 50.0, 3, "pick"), 1);
}

int
main(void)
{
	log_init("test_logbudget", LOG_LVL_INFO);
	RUN(test_budget);
	return unit_finish();
}
