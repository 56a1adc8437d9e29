/*
 * chat: the mediator's chat (docs/PROTOCOL.md 4.6). Network messages go to every member of
 * the network (approved ones, online or not: the offline ones find them in their mailbox on
 * return); private ones to the two nodes, only when they share a network. Each node's mailbox
 * is delivered in order when it connects, CHAT_BATCH at a time, the next batch when it acks.
 * Bounded: per-sender rate, history per conversation, mailbox per node.
 *
 * The engine sees nodes by key only: whoever embeds it (mediator.c) says how to reach a
 * connected node and what time it is.
 */
#ifndef SHOAL_SERVER_CHAT_H
#define SHOAL_SERVER_CHAT_H

#include <stdint.h>

#include "base/proto.h"

struct store;
struct msg;
struct chat;

struct chat_env {
	struct store *st;
	/* Sends msg to the node's session; -1 when it is not connected. */
	int (*send)(void *arg, const uint8_t key[KEY_LEN], const struct msg *msg);
	double (*now)(void *arg);               /* monotonic seconds, for rate limits */
	void *arg;
	unsigned keep;                          /* history per conversation (--chat-history) */
	unsigned box_max;                       /* undelivered messages kept per node */
	/* Optional: a message went into the mailbox of key, which is not connected here (another
	 * mediator instance may serve it: server/cluster.c wakes it there with chat_wake). */
	void (*stored)(void *arg, const uint8_t key[KEY_LEN]);
};

enum {
	CHAT_KEEP_DEFAULT = 1000,
	CHAT_BOX_DEFAULT = 5000,
	CHAT_BATCH = 64,                        /* mailbox messages sent before an ack */
	CHAT_RATE_PER_MIN = 120,                /* per sender */
};

struct chat *chat_new(const struct chat_env *env);
void chat_free(struct chat *c);
/* A node's session is ready (after WELCOME): its mailbox starts flowing. mail_empty: the
 * caller read the mailbox as empty earlier in this same loop turn (store_node's mail_empty),
 * so reading it again is skipped; mail stored since then wakes the flow (chat_wake). */
void chat_online(struct chat *c, const uint8_t key[KEY_LEN], int mail_empty);
/* A node's session closed: forget its delivery state (its mailbox stays). */
void chat_offline(struct chat *c, const uint8_t key[KEY_LEN]);
/* key's mailbox grew (another instance stored a message for it): what is new flows now, when
 * key is connected here. */
void chat_wake(struct chat *c, const uint8_t key[KEY_LEN]);
/* MSG_CHAT_SEND, MSG_CHAT_ACK, MSG_CHAT_HISTORY from node key (nick: its current one).
 * Anything refused is logged and answered with MSG_CHAT_REFUSED (its client_id, the reason). */
void chat_msg(struct chat *c, const uint8_t key[KEY_LEN], const char *nick, const struct msg *m);

#endif
