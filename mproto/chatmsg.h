/*
 * chatmsg: the chat messages of the control channel (docs/PROTOCOL.md 4.6), kept apart from
 * msg.c's membership and NAT messages; msg_encode/msg_decode call in here for their types and
 * struct msg carries them in its union. Same rules as msg.h: explicit, bounded, no trailing
 * bytes.
 *
 * Network messages are plaintext to the mediator (it fans them out to every member, online or
 * not). Private ones are end-to-end: body = 24-byte nonce || crypto_box_easy(text) between the
 * two nodes' X25519 keys, so the mediator stores and forwards ciphertext only.
 */
#ifndef SHOAL_CHATMSG_H
#define SHOAL_CHATMSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

struct wire_w;
struct wire_r;

enum chat_kind { CHAT_NETWORK = 0, CHAT_PRIVATE = 1 };

enum {
	CHAT_TEXT_MAX = 2000,                   /* bytes of UTF-8 a person may write at once */
	CHAT_BOX_OVERHEAD = 24 + 16,            /* crypto_box nonce + MAC */
	CHAT_BODY_MAX = CHAT_TEXT_MAX + CHAT_BOX_OVERHEAD,
	CHAT_HISTORY_MAX = 500,                 /* messages one MSG_CHAT_HISTORY may ask for */
};

/* MSG_CHAT flags */
enum {
	CHATF_HISTORY = 1 << 0,         /* an answer to MSG_CHAT_HISTORY: not new, not acked */
	CHATF_HISTORY_END = 1 << 1,     /* the last one of that answer (may carry no message) */
};

/* Which conversation: a network by name, or the private one with peer. */
struct chat_conv {
	uint8_t kind;                   /* enum chat_kind */
	char network[NAME_MAX_LEN + 1]; /* CHAT_NETWORK */
	uint8_t peer[KEY_LEN];          /* CHAT_PRIVATE: the other node (as seen by the receiver) */
};

struct msg_chat_send {                  /* MSG_CHAT_SEND (c->s) */
	uint32_t client_id;             /* per sender, increasing: a resend is not a new message */
	struct chat_conv to;
	uint16_t body_len;              /* 1..CHAT_BODY_MAX */
	uint8_t body[CHAT_BODY_MAX];
};

struct msg_chat {                       /* MSG_CHAT (s->c) */
	uint64_t seq;                   /* the receiver's mailbox number (0 with CHATF_HISTORY) */
	uint64_t ts_ms;                 /* when the mediator took it, Unix ms */
	uint8_t flags;                  /* CHATF_* */
	struct chat_conv conv;
	uint8_t sender[KEY_LEN];
	char nick[NICK_MAX_LEN + 1];    /* the sender's, when sent */
	uint32_t client_id;             /* the sender's (so it sees its own message confirmed) */
	uint16_t body_len;              /* 0 only for a bare CHATF_HISTORY_END */
	uint8_t body[CHAT_BODY_MAX];
};

/* MSG_CHAT_REFUSED reasons. Decoders take any non-zero value (a newer mediator may add one);
 * chat_refusal_text names the ones known here. */
enum chat_refusal {
	CHAT_REFUSED_NOT_MEMBER = 1,    /* not an approved member of that network */
	CHAT_REFUSED_NO_PEER = 2,       /* that node shares no network with us (or is us) */
	CHAT_REFUSED_RATE = 3,          /* over the per-sender rate */
	CHAT_REFUSED_INTERNAL = 4,      /* the mediator could not store it */
};
const char *chat_refusal_text(uint8_t reason);

struct msg_chat_refused {               /* MSG_CHAT_REFUSED (s->c) */
	uint32_t client_id;             /* the CHAT_SEND it answers */
	uint8_t reason;                 /* enum chat_refusal, never 0 */
};

struct msg_chat_ack {                   /* MSG_CHAT_ACK (c->s) */
	uint64_t seq;                   /* every mailbox message up to this one arrived */
};

struct msg_chat_history {               /* MSG_CHAT_HISTORY (c->s) */
	struct chat_conv conv;
	uint16_t limit;                 /* 1..CHAT_HISTORY_MAX: the newest ones, oldest first */
};

/* For msg.c: 0 when the type is a chat type and was handled (errors in the cursor), -1 when
 * it is not one of ours. */
struct msg;
int chatmsg_put(struct wire_w *w, const struct msg *m);
int chatmsg_get(struct wire_r *r, struct msg *m);

#endif
