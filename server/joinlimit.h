/*
 * joinlimit: counts failed joins per node key in a sliding window, so a node
 * cannot try passwords (and make us run Argon2id) faster than JL_MAX_FAILURES per JL_WINDOW
 * seconds. Named joinlimit so it never clashes with core/hslimit.c (peer handshakes).
 * Pure: time comes from the caller. Owns: its table of recent failures.
 */
#ifndef SHOAL_SERVER_JOINLIMIT_H
#define SHOAL_SERVER_JOINLIMIT_H

#include <stdint.h>

#include "base/proto.h"

#define JL_MAX_FAILURES 5
#define JL_WINDOW 60.0          /* s */
#define JL_MAX_ENTRIES 4096     /* keys tracked at once; expired ones are pruned first */

struct joinlimit;

struct joinlimit *joinlimit_new(void);
void joinlimit_free(struct joinlimit *rl);
/* 1 when key has JL_MAX_FAILURES failures within the last JL_WINDOW seconds. */
int joinlimit_limited(struct joinlimit *rl, const uint8_t key[KEY_LEN], double now);
void joinlimit_failure(struct joinlimit *rl, const uint8_t key[KEY_LEN], double now);

#endif
