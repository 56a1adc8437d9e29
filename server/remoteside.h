/*
 * remoteside: the punch sides of nodes connected to other mediator instances, as their
 * instances last sent them (docs/PROTOCOL.md 4.8), so that a plan queued or deferred here
 * (punch.c) can still be built when its turn comes. Each side carries the delay of the hop
 * between the instances, which the plan adds to the node's own delay: the remote half of a
 * plan travels that hop once more before it reaches its node.
 * Owns: the table, at most REMOTESIDE_MAX sides; a full table drops sides older than
 * REMOTESIDE_STALE_S, then refuses (the pair is planned again at its next trigger).
 * Free of I/O and of the clock: time comes in as arguments.
 */
#ifndef SHOAL_SERVER_REMOTESIDE_H
#define SHOAL_SERVER_REMOTESIDE_H

#include <stdint.h>

#include "server/punchplan.h"

enum { REMOTESIDE_MAX = 65536 };
#define REMOTESIDE_STALE_S 600.0

struct remoteside;

struct remoteside *remoteside_new(void);
void remoteside_free(struct remoteside *r);
/* Keeps s (keyed by s->key), replacing an older one: 0, or -1 when full. */
int remoteside_put(struct remoteside *r, const struct punch_side *s, unsigned hop_ms,
    double now);
/* 1 with out filled and its delay_ms grown by the hop (bounded by PUNCH_START_MAX_MS), or 0. */
int remoteside_get(const struct remoteside *r, const uint8_t key[KEY_LEN],
    struct punch_side *out);
void remoteside_forget(struct remoteside *r, const uint8_t key[KEY_LEN]);

#endif
