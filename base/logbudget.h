/*
 * logbudget: lines that come in crowds (a node joining a 1,000-member network plans up to 999
 * pairs; a mediator restarting grants every pair a relay again) go at info level up to a
 * number a second and at debug level past it, counted; the count goes out in one info line
 * when the next second starts: "event=KIND_unlogged count=N level=debug". The first lines of a
 * second tell an operator what goes on; the rest would be most of the log.
 * Pure: the caller passes its clock. Owns: nothing.
 */
#ifndef SHOAL_LOGBUDGET_H
#define SHOAL_LOGBUDGET_H

struct logbudget {                       /* zeroed to start; one per kind of line */
	double second;                  /* when the current second started */
	unsigned logged, skipped;       /* lines in it at info level, and past the budget */
};

/* 1 when this line goes at info level, 0 when at debug (counted); now: seconds, any clock
 * that does not go back (one that does starts a new second). */
int logbudget_take(struct logbudget *b, double now, unsigned per_s, const char *kind);

#endif
