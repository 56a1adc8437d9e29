/*
 * chatmsg: encode/decode of the chat messages (chatmsg.h, docs/PROTOCOL.md 4.6).
 */
#include "config.h"

#include <string.h>

#include "base/wire.h"
#include "mproto/msg.h"

/* A conversation: kind u8, then the network name (str8, 1..NAME_MAX_LEN) or the peer key. */
static void
conv_put(struct wire_w *w, const struct chat_conv *c)
{
	wire_put_u8(w, c->kind);
	if (c->kind == CHAT_NETWORK) {
		size_t n = strnlen(c->network, sizeof(c->network));

		if (n == 0 || n > NAME_MAX_LEN) {
			w->err = 1;
			return;
		}
		wire_put_str8(w, c->network);
	} else if (c->kind == CHAT_PRIVATE) {
		wire_put_bytes(w, c->peer, KEY_LEN);
	} else {
		w->err = 1;
	}
}

static void
conv_get(struct wire_r *r, struct chat_conv *c)
{
	c->kind = wire_get_u8(r);
	if (c->kind == CHAT_NETWORK) {
		wire_get_str8(r, c->network, sizeof(c->network));
		if (c->network[0] == '\0')
			r->err = 1;
	} else if (c->kind == CHAT_PRIVATE) {
		wire_get_bytes(r, c->peer, KEY_LEN);
	} else {
		r->err = 1;
	}
}

static void
body_put(struct wire_w *w, const uint8_t *body, uint16_t len, int may_be_empty)
{
	if (len > CHAT_BODY_MAX || (len == 0 && !may_be_empty)) {
		w->err = 1;
		return;
	}
	wire_put_blob16(w, body, len);
}

static uint16_t
body_get(struct wire_r *r, uint8_t *body, int may_be_empty)
{
	size_t n = 0;
	const uint8_t *p = wire_get_blob16(r, &n);

	if (!p || n > CHAT_BODY_MAX || (n == 0 && !may_be_empty)) {
		r->err = 1;
		return 0;
	}
	memcpy(body, p, n);
	return (uint16_t)n;
}

int
chatmsg_put(struct wire_w *w, const struct msg *m)
{
	switch (m->type) {
	case MSG_CHAT_SEND:
		wire_put_u32(w, m->u.chat_send.client_id);
		conv_put(w, &m->u.chat_send.to);
		body_put(w, m->u.chat_send.body, m->u.chat_send.body_len, 0);
		return 0;
	case MSG_CHAT: {
		const struct msg_chat *c = &m->u.chat;

		/* only a bare end-of-history marker may come without a message */
		if (c->flags & ~(CHATF_HISTORY | CHATF_HISTORY_END) ||
		    (c->body_len == 0 && !(c->flags & CHATF_HISTORY_END)))
			w->err = 1;
		wire_put_u64(w, c->seq);
		wire_put_u64(w, c->ts_ms);
		wire_put_u8(w, c->flags);
		conv_put(w, &c->conv);
		wire_put_bytes(w, c->sender, KEY_LEN);
		wire_put_str8(w, c->nick);
		wire_put_u32(w, c->client_id);
		body_put(w, c->body, c->body_len, 1);
		return 0;
	}
	case MSG_CHAT_ACK:
		wire_put_u64(w, m->u.chat_ack.seq);
		return 0;
	case MSG_CHAT_HISTORY:
		if (m->u.chat_history.limit == 0 || m->u.chat_history.limit > CHAT_HISTORY_MAX)
			w->err = 1;
		conv_put(w, &m->u.chat_history.conv);
		wire_put_u16(w, m->u.chat_history.limit);
		return 0;
	case MSG_CHAT_REFUSED:
		if (m->u.chat_refused.reason == 0)
			w->err = 1;
		wire_put_u32(w, m->u.chat_refused.client_id);
		wire_put_u8(w, m->u.chat_refused.reason);
		return 0;
	}
	return -1;
}

int
chatmsg_get(struct wire_r *r, struct msg *m)
{
	switch (m->type) {
	case MSG_CHAT_SEND:
		m->u.chat_send.client_id = wire_get_u32(r);
		conv_get(r, &m->u.chat_send.to);
		m->u.chat_send.body_len = body_get(r, m->u.chat_send.body, 0);
		return 0;
	case MSG_CHAT: {
		struct msg_chat *c = &m->u.chat;

		c->seq = wire_get_u64(r);
		c->ts_ms = wire_get_u64(r);
		c->flags = wire_get_u8(r);
		conv_get(r, &c->conv);
		wire_get_bytes(r, c->sender, KEY_LEN);
		wire_get_str8(r, c->nick, sizeof(c->nick));
		c->client_id = wire_get_u32(r);
		c->body_len = body_get(r, c->body, 1);
		if (c->flags & ~(CHATF_HISTORY | CHATF_HISTORY_END) ||
		    (c->body_len == 0 && !(c->flags & CHATF_HISTORY_END)))
			r->err = 1;
		return 0;
	}
	case MSG_CHAT_ACK:
		m->u.chat_ack.seq = wire_get_u64(r);
		return 0;
	case MSG_CHAT_HISTORY:
		conv_get(r, &m->u.chat_history.conv);
		m->u.chat_history.limit = wire_get_u16(r);
		if (m->u.chat_history.limit == 0 || m->u.chat_history.limit > CHAT_HISTORY_MAX)
			r->err = 1;
		return 0;
	case MSG_CHAT_REFUSED:
		m->u.chat_refused.client_id = wire_get_u32(r);
		m->u.chat_refused.reason = wire_get_u8(r);
		if (m->u.chat_refused.reason == 0)
			r->err = 1;
		return 0;
	}
	return -1;
}

const char *
chat_refusal_text(uint8_t reason)
{
	switch (reason) {
	case CHAT_REFUSED_NOT_MEMBER: return "not a member of that network";
	case CHAT_REFUSED_NO_PEER: return "that node shares no network with us";
	case CHAT_REFUSED_RATE: return "too many messages: wait a minute";
	case CHAT_REFUSED_INTERNAL: return "the mediator could not store it";
	}
	return "refused by the mediator";
}
