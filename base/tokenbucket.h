/*
 * tokenbucket: a burst, then a steady rate. The mediator's budget for a node's PUNCH_REQUESTs
 * (server/punch.h) and the daemon keeping to that budget itself (medclient/punch.c) are one
 * piece of arithmetic. Pure: the caller passes its clock and the bucket's size and rate.
 * Owns: nothing.
 */
#ifndef SHOAL_TOKENBUCKET_H
#define SHOAL_TOKENBUCKET_H

struct tokenbucket {                     /* zeroed = full (filled on first use) */
	double tokens;
	double at;                      /* last refill */
	int started;                    /* 0: never used (any clock, 0 included) */
};

/* 1 and one token spent, or 0 when the bucket is empty at now (seconds, a clock that does
 * not go back). burst: tokens at most; rate: tokens a second. */
int tokenbucket_take(struct tokenbucket *b, double now, double burst, double rate);

#endif
