/*
 * tokenbucket: see tokenbucket.h.
 */
#include "config.h"
#include "base/tokenbucket.h"

int
tokenbucket_take(struct tokenbucket *b, double now, double burst, double rate)
{
	if (!b->started) {
		b->tokens = burst;
		b->at = now;
		b->started = 1;
	}
	if (now > b->at) {
		b->tokens += (now - b->at) * rate;
		if (b->tokens > burst)
			b->tokens = burst;
		b->at = now;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}
