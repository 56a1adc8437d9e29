/*
 * output: the CLI's human-readable rendering of daemon responses (--json bypasses it).
 * Tolerant: a missing or mistyped field prints as "-", never crashes.
 * Owns: nothing; writes to the FILE it is given.
 */
#ifndef SHOAL_CLI_OUTPUT_H
#define SHOAL_CLI_OUTPUT_H

#include <jansson.h>
#include <stdio.h>

/* Aligned "key: value" lines. */
void output_status(FILE *f, json_t *r);
/* A buddy list: one header line per network, one line per member. */
void output_list(FILE *f, json_t *r);
/* One line per ping, then a summary. */
void output_ping(FILE *f, json_t *r);
/* The "message" field of a plain success, if any. */
void output_message(FILE *f, json_t *r);

/* Chat messages (chat-follow, chat-history answers' "messages"), one line each:
 * "12:01:33 [lan] alice: hi" or "12:01:33 [bob] alice: hi" for a private one. */
void output_chat(FILE *f, json_t *messages);

#endif
