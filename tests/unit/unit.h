/*
 * unit: the smallest test harness that does the job. A test file defines test functions,
 * lists them in main() with RUN(), and returns unit_finish(). Output ends with
 * "N passed, N failed" on its own line.
 */
#ifndef SHOAL_UNIT_H
#define SHOAL_UNIT_H

#include <stdio.h>
#include <string.h>

struct unit_state {
	int checks_failed;
	int tests_passed;
	int tests_failed;
};

static struct unit_state unit_st;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_st.checks_failed++;                                       \
		}                                                                      \
	} while (0)

#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		long long va_ = (long long)(a), vb_ = (long long)(b);                  \
		if (va_ != vb_) {                                                      \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
			    __FILE__, __LINE__, #a, #b, va_, vb_);                     \
			unit_st.checks_failed++;                                       \
		}                                                                      \
	} while (0)

#define CHECK_MEM(a, b, n)                                                             \
	do {                                                                           \
		if (memcmp((a), (b), (n)) != 0) {                                      \
			fprintf(stderr, "%s:%d: CHECK_MEM failed: %s vs %s\n", __FILE__, __LINE__, #a, #b); \
			unit_st.checks_failed++;                                       \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                                        \
	do {                                                                           \
		int before_ = unit_st.checks_failed;                                   \
		fn();                                                                  \
		if (unit_st.checks_failed == before_) {                                \
			unit_st.tests_passed++;                                        \
			printf("ok - %s\n", #fn);                                      \
		} else {                                                               \
			unit_st.tests_failed++;                                        \
			printf("not ok - %s\n", #fn);                                  \
		}                                                                      \
	} while (0)

static inline int
unit_finish(void)
{
	printf("%d passed, %d failed\n", unit_st.tests_passed, unit_st.tests_failed);
	return unit_st.tests_failed ? 1 : 0;
}

#endif
