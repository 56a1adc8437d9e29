/*
 * logbudget: see logbudget.h.
 */
#include "config.h"
#include "base/logbudget.h"

#include "base/log.h"

int
logbudget_take(struct logbudget *b, double now, unsigned per_s, const char *kind)
{
	if (now - b->second >= 1.0 || now < b->second) {
		if (b->skipped > 0)
			log_info("event=%s_unlogged count=%u level=debug", kind, b->skipped);
		b->second = now;
		b->logged = b->skipped = 0;
	}
	if (b->logged < per_s) {
		b->logged++;
		return 1;
	}
	b->skipped++;
	return 0;
}
