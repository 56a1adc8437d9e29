/*
 * relaypick: which relay a pair of nodes should use: the one minimising the end-to-end round
 * trip rtt(A, relay) + rtt(relay, B), as both nodes measured it (PING/PONG, PROTOCOL.md 8),
 * with the relays' load as the tie-breaker. A pair already on a relay stays there unless
 * another is better by a clear margin (never flap on noise) or its relay is gone.
 * Pure: no I/O, no clock, no state.
 */
#ifndef SHOAL_SERVER_RELAYPICK_H
#define SHOAL_SERVER_RELAYPICK_H

#include <stddef.h>
#include <stdint.h>

#define RELAYPICK_UNKNOWN_MS 500.0      /* an unmeasured leg counts as this */
#define RELAYPICK_MIN_GAIN_MS 10.0      /* a switch must save at least this much ... */
#define RELAYPICK_GAIN_FRAC 0.2         /* ... and this fraction of the current cost */
#define RELAYPICK_TIE_MS 1.0            /* costs this close are equal: the less loaded wins */

struct relaypick_in {
	double a_ms, b_ms;              /* each node's RTT to this relay; < 0: not measured */
	uint32_t load;                  /* pairs the relay carries now */
	int alive;                      /* registered and healthy */
};

/* The cost the pick minimises: a_ms + b_ms, unmeasured legs at RELAYPICK_UNKNOWN_MS. */
double relaypick_cost(const struct relaypick_in *r);
/* The relay to use (index into r), or -1 when none is alive. current: the one in use, or -1. */
int relaypick(const struct relaypick_in *r, size_t n, int current);

#endif
