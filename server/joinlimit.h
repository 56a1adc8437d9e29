/*
 * joinlimit: counts events per scope and id (a node key, a source address, a network) in a
 * window and blocks an id that reaches its scope's budget, with exponential backoff: blocked
 * for JL_WINDOW seconds the first time, twice as long each time again, at most JL_BACKOFF_MAX;
 * an id quiet for JL_FORGET seconds starts afresh. The mediator counts failed joins (per key,
 * source address and network: a new key every few guesses or many sources against one
 * network do not escape) and every password operation (per key and source address: Argon2id
 * is the costly part of the server). Named joinlimit so it never clashes with core/hslimit.c.
 * Pure: time comes from the caller. Owns: its table.
 */
#ifndef SHOAL_SERVER_JOINLIMIT_H
#define SHOAL_SERVER_JOINLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

#define JL_WINDOW 60.0          /* s: the budget's window and the first block */
#define JL_BACKOFF_MAX 3600.0   /* s: the longest block */
#define JL_FORGET 3600.0        /* s: an id this quiet loses its strikes */
#define JL_MAX_ENTRIES 8192     /* ids tracked at once; forgotten ones are pruned first */
#define JL_ID_MAX 32            /* bytes of an id */

enum jl_scope {
	JL_FAIL_KEY = 0,        /* wrong join passwords from one node key */
	JL_FAIL_SOURCE,         /* ... from one source IPv4 address */
	JL_FAIL_NETWORK,        /* ... against one network */
	JL_PWOP_KEY,            /* password operations (create, join, set-pass) by one key */
	JL_PWOP_SOURCE,         /* ... from one source address */
	JL_REGISTER_SOURCE,     /* new node keys registered from one source address */
	JL_SCOPES
};

/* The default budget per JL_WINDOW of each scope. */
extern const unsigned jl_budget[JL_SCOPES];

struct joinlimit;

/* A table with the default budgets. */
struct joinlimit *joinlimit_new(void);
void joinlimit_free(struct joinlimit *rl);
/* Another budget for scope (at least 1; a budget of UINT_MAX never blocks). */
void joinlimit_set_budget(struct joinlimit *rl, enum jl_scope scope, unsigned budget);
unsigned joinlimit_budget(const struct joinlimit *rl, enum jl_scope scope);
/* 1 while id is blocked in scope (retry_after, if not NULL, gets the seconds left). */
int joinlimit_blocked(struct joinlimit *rl, enum jl_scope scope, const void *id, size_t len,
    double now, double *retry_after);
/* Counts one event; returns 1 when it used up the budget and a block begins (the caller may
 * log it: for JL_FAIL_NETWORK it means the network is under attack). */
int joinlimit_hit(struct joinlimit *rl, enum jl_scope scope, const void *id, size_t len,
    double now);

#endif
