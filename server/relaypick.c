/*
 * relaypick: see relaypick.h.
 */
#include "config.h"
#include "server/relaypick.h"

double
relaypick_cost(const struct relaypick_in *r)
{
	return (r->a_ms < 0 ? RELAYPICK_UNKNOWN_MS : r->a_ms) +
	    (r->b_ms < 0 ? RELAYPICK_UNKNOWN_MS : r->b_ms);
}

int
relaypick(const struct relaypick_in *r, size_t n, int current)
{
	double best_cost = 0, c, cur, margin;
	int best = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!r[i].alive)
			continue;
		c = relaypick_cost(&r[i]);
		if (best < 0 || c < best_cost - RELAYPICK_TIE_MS ||
		    (c <= best_cost + RELAYPICK_TIE_MS && r[i].load < r[best].load)) {
			best = (int)i;
			best_cost = c;
		}
	}
	if (current < 0 || (size_t)current >= n || !r[current].alive || best == current)
		return best;
	/* Stay unless the gain is clear: measurements wobble, a switch costs a rebind. */
	cur = relaypick_cost(&r[current]);
	margin = cur * RELAYPICK_GAIN_FRAC;
	if (margin < RELAYPICK_MIN_GAIN_MS)
		margin = RELAYPICK_MIN_GAIN_MS;
	return cur - best_cost > margin ? best : current;
}
