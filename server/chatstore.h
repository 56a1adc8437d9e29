/*
 * chatstore: the chat's persistent half, in the mediator's store (tables chat_log, chat_box,
 * chat_next, chat_sent; created with the store's schema, in SQLite or PostgreSQL). The log
 * holds each conversation's history, trimmed to its newest `keep` messages; the box is every
 * node's mailbox: one numbered entry per message it must still receive, removed when it acks, so a
 * member who is offline gets everything on return, in order, exactly once (the node drops
 * numbers it has seen). Private message bodies are ciphertext the mediator cannot read.
 * Pure persistence: who may send what is server/chat.c's business.
 */
#ifndef SHOAL_SERVER_CHATSTORE_H
#define SHOAL_SERVER_CHATSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/chatmsg.h"

struct store;

/* One message as stored. For CHAT_PRIVATE, sender and recipient; for CHAT_NETWORK, network. */
struct chat_row {
	uint64_t seq;                   /* the mailbox number (chatstore_pending only) */
	int64_t ts_ms;
	uint8_t kind;
	char network[NAME_MAX_LEN + 1];
	uint8_t sender[KEY_LEN];
	uint8_t recipient[KEY_LEN];
	char nick[NICK_MAX_LEN + 1];
	uint32_t client_id;
	uint16_t body_len;
	uint8_t body[CHAT_BODY_MAX];
};

typedef int (*chat_row_cb)(void *arg, const struct chat_row *r);

/* Was client_id from sender seen already (a resend)? Records it if not. 1, 0, or -1. */
int chatstore_resend(struct store *st, const uint8_t sender[KEY_LEN], uint32_t client_id);
/*
 * Appends r to conversation conv (a stable name: "n:<network id>" or "p:<key>:<key>"), puts it
 * in the mailbox of each of the n nodes in to, trims the conversation to its newest keep
 * messages and each mailbox to its newest box_max. One transaction. 0 or -1.
 */
int chatstore_add(struct store *st, const char *conv, const struct chat_row *r,
    const uint8_t (*to)[KEY_LEN], size_t n, unsigned keep, unsigned box_max);
/* node's mailbox entries numbered above after, oldest first, at most max. 0, or cb's non-zero
 * return, or -1. */
int chatstore_pending(struct store *st, const uint8_t node[KEY_LEN], uint64_t after,
    unsigned max, chat_row_cb cb, void *arg);
/* Everything up to seq arrived at node. 0 or -1. */
int chatstore_ack(struct store *st, const uint8_t node[KEY_LEN], uint64_t seq);
/* The newest limit messages of conv, oldest first. */
int chatstore_history(struct store *st, const char *conv, unsigned limit, chat_row_cb cb,
    void *arg);

#endif
