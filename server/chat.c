/*
 * chat: who may send what to whom, fan-out into mailboxes, and delivery (chat.h).
 * Owns: the per-sender rate buckets and the per-connected-node delivery state.
 */
#include "config.h"
#include "server/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include <uthash.h>

#include "base/keyid.h"
#include "base/log.h"
#include "base/tokenbucket.h"
#include "mproto/msg.h"
#include "server/chatstore.h"
#include "server/store.h"

/* A sender's token bucket (CHAT_RATE_PER_MIN). Kept while the mediator runs: one per node
 * that ever chatted, 64 bytes each. */
struct sender {
	uint8_t key[KEY_LEN];
	struct tokenbucket budget;
	UT_hash_handle hh;
};

/* Delivery to one connected node: its mailbox numbers sent in this session, and acked. */
struct flow {
	uint8_t key[KEY_LEN];
	uint64_t sent, acked;
	UT_hash_handle hh;
};

struct chat {
	struct chat_env env;
	struct sender *senders;
	struct flow *flows;
};

struct chat *
chat_new(const struct chat_env *env)
{
	struct chat *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->env = *env;
	if (c->env.keep == 0)
		c->env.keep = CHAT_KEEP_DEFAULT;
	if (c->env.box_max == 0)
		c->env.box_max = CHAT_BOX_DEFAULT;
	return c;
}

void
chat_free(struct chat *c)
{
	struct sender *s, *st;
	struct flow *f, *ft;

	if (c == NULL)
		return;
	HASH_ITER(hh, c->senders, s, st) {
		HASH_DEL(c->senders, s);
		free(s);
	}
	HASH_ITER(hh, c->flows, f, ft) {
		HASH_DEL(c->flows, f);
		free(f);
	}
	free(c);
}

/* ---- delivery ---- */

struct deliver_ctx {
	struct chat *c;
	struct flow *f;
	uint8_t flags;
};

/* The conversation as the receiver sees it: the network, or the other one of the pair. */
static void
row_to_msg(const struct chat_row *r, const uint8_t receiver[KEY_LEN], uint8_t flags,
    struct msg *m)
{
	struct msg_chat *o = &m->u.chat;

	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT;
	o->seq = flags & CHATF_HISTORY ? 0 : r->seq;
	o->ts_ms = (uint64_t)r->ts_ms;
	o->flags = flags;
	o->conv.kind = r->kind;
	if (r->kind == CHAT_NETWORK)
		memcpy(o->conv.network, r->network, sizeof(o->conv.network));
	else
		memcpy(o->conv.peer, memcmp(r->sender, receiver, KEY_LEN) == 0 ? r->recipient :
		    r->sender, KEY_LEN);
	memcpy(o->sender, r->sender, KEY_LEN);
	memcpy(o->nick, r->nick, sizeof(o->nick));
	o->client_id = r->client_id;
	o->body_len = r->body_len;
	memcpy(o->body, r->body, r->body_len);
}

static int
deliver_cb(void *arg, const struct chat_row *r)
{
	struct deliver_ctx *d = arg;
	struct msg m;

	row_to_msg(r, d->f->key, 0, &m);
	if (d->c->env.send(d->c->env.arg, d->f->key, &m) < 0)
		return 1;
	d->f->sent = r->seq;
	return 0;
}

/* Sends what the node has not been sent yet, keeping at most CHAT_BATCH unacked. */
static void
deliver(struct chat *c, struct flow *f)
{
	struct deliver_ctx d = { c, f, 0 };
	unsigned room;

	if (f->sent >= f->acked + CHAT_BATCH)
		return;
	room = (unsigned)(f->acked + CHAT_BATCH - f->sent);
	(void)chatstore_pending(c->env.st, f->key, f->sent, room, deliver_cb, &d);
}

void
chat_online(struct chat *c, const uint8_t key[KEY_LEN], int mail_empty)
{
	struct flow *f;

	HASH_FIND(hh, c->flows, key, KEY_LEN, f);
	if (f == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL)
			return;
		memcpy(f->key, key, KEY_LEN);
		HASH_ADD(hh, c->flows, key, KEY_LEN, f);
	}
	/* a new session: everything still in the mailbox goes again (the node drops repeats) */
	f->sent = f->acked = 0;
	/* nearly every node of a reconnect storm: one read less each */
	if (!mail_empty)
		deliver(c, f);
}

void
chat_wake(struct chat *c, const uint8_t key[KEY_LEN])
{
	struct flow *f;

	HASH_FIND(hh, c->flows, key, KEY_LEN, f);
	if (f != NULL)
		deliver(c, f);
}

void
chat_offline(struct chat *c, const uint8_t key[KEY_LEN])
{
	struct flow *f;

	HASH_FIND(hh, c->flows, key, KEY_LEN, f);
	if (f != NULL) {
		HASH_DEL(c->flows, f);
		free(f);
	}
}

/* ---- sending ---- */

static int
rate_ok(struct chat *c, const uint8_t key[KEY_LEN])
{
	double now = c->env.now(c->env.arg);
	struct sender *s;

	HASH_FIND(hh, c->senders, key, KEY_LEN, s);
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return 0;
		memcpy(s->key, key, KEY_LEN);
		HASH_ADD(hh, c->senders, key, KEY_LEN, s);
	}
	return tokenbucket_take(&s->budget, now, CHAT_RATE_PER_MIN, CHAT_RATE_PER_MIN / 60.0);
}

/* Recipients, growing. */
struct rcpts {
	uint8_t (*keys)[KEY_LEN];
	size_t n, cap;
};

static int
rcpt_add(struct rcpts *r, const uint8_t key[KEY_LEN])
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		void *p = realloc(r->keys, cap * KEY_LEN);

		if (p == NULL)
			return -1;
		r->keys = p;
		r->cap = cap;
	}
	memcpy(r->keys[r->n++], key, KEY_LEN);
	return 0;
}

static int
member_cb(void *arg, const struct store_member *mem)
{
	return mem->pending ? 0 : rcpt_add(arg, mem->key) < 0 ? -1 : 0;
}

/* Is key an approved member of network name? Fills n. */
static int
approved_in(struct chat *c, const char *name, const uint8_t key[KEY_LEN],
    struct store_network *n)
{
	struct store_member me;

	return store_network_get(c->env.st, name, n) == 0 &&
	    store_member_get(c->env.st, n->id, key, &me) == 0 && !me.pending;
}

struct share_ctx {
	struct chat *c;
	const uint8_t *peer;
	int found;
};

static int
share_cb(void *arg, const struct store_network *n, const struct store_member *me)
{
	struct share_ctx *s = arg;
	struct store_member other;

	if (!me->pending && store_member_get(s->c->env.st, n->id, s->peer, &other) == 0 &&
	    !other.pending) {
		s->found = 1;
		return 1;
	}
	return 0;
}

static int
share_network(struct chat *c, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN])
{
	struct share_ctx s = { c, b, 0 };

	(void)store_node_networks_each(c->env.st, a, share_cb, &s);
	return s.found;
}

/* The stable name of a conversation, and whether key may read it. */
static int
conv_name(struct chat *c, const uint8_t key[KEY_LEN], const struct chat_conv *to, char *out,
    size_t cap, struct store_network *n)
{
	char x[17], y[17];
	int lo;

	if (to->kind == CHAT_NETWORK) {
		if (!approved_in(c, to->network, key, n))
			return -1;
		snprintf(out, cap, "n:%lld", (long long)n->id);
		return 0;
	}
	lo = memcmp(key, to->peer, KEY_LEN) < 0;
	sodium_bin2hex(x, sizeof(x), lo ? key : to->peer, 8);
	sodium_bin2hex(y, sizeof(y), lo ? to->peer : key, 8);
	/* 16 hex digits of each key: 64 bits, ample to tell two nodes' pairs apart */
	snprintf(out, cap, "p:%s:%s", x, y);
	return 0;
}

/* The sender learns at once why its message was not taken (PROTOCOL.md 4.6), instead of
 * waiting for its own copy until it gives up. */
static void
refuse(struct chat *c, const uint8_t key[KEY_LEN], const struct msg_chat_send *s, uint8_t reason)
{
	struct msg m;
	char who[KEY_SHORT_LEN];

	key_short(key, who);
	log_info("event=chat_refused node=%s client_id=%lu reason=\"%s\"", who,
	    (unsigned long)s->client_id, chat_refusal_text(reason));
	memset(&m, 0, sizeof(m));
	m.type = MSG_CHAT_REFUSED;
	m.u.chat_refused.client_id = s->client_id;
	m.u.chat_refused.reason = reason;
	(void)c->env.send(c->env.arg, key, &m);
}

static void
handle_send(struct chat *c, const uint8_t key[KEY_LEN], const char *nick,
    const struct msg_chat_send *s)
{
	struct store_network n;
	struct rcpts r = { NULL, 0, 0 };
	struct chat_row row;
	struct timespec ts;
	struct flow *f;
	char conv[64], who[KEY_SHORT_LEN];
	size_t i;

	key_short(key, who);
	if (conv_name(c, key, &s->to, conv, sizeof(conv), &n) < 0 ||
	    (s->to.kind == CHAT_PRIVATE && (memcmp(key, s->to.peer, KEY_LEN) == 0 ||
	    !share_network(c, key, s->to.peer)))) {
		refuse(c, key, s, s->to.kind == CHAT_PRIVATE ? CHAT_REFUSED_NO_PEER :
		    CHAT_REFUSED_NOT_MEMBER);
		return;
	}
	if (!rate_ok(c, key)) {
		refuse(c, key, s, CHAT_REFUSED_RATE);
		return;
	}
	if (chatstore_resend(c->env.st, key, s->client_id) != 0)
		return;         /* stored already (a resend after a reconnect), or a DB error */
	memset(&row, 0, sizeof(row));
	clock_gettime(CLOCK_REALTIME, &ts);
	row.ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	row.kind = s->to.kind;
	memcpy(row.sender, key, KEY_LEN);
	snprintf(row.nick, sizeof(row.nick), "%s", nick);
	row.client_id = s->client_id;
	row.body_len = s->body_len;
	memcpy(row.body, s->body, s->body_len);
	if (s->to.kind == CHAT_NETWORK) {
		memcpy(row.network, s->to.network, sizeof(row.network));
		if (store_members_each(c->env.st, n.id, member_cb, &r) != 0)
			goto fail;
	} else {
		memcpy(row.recipient, s->to.peer, KEY_LEN);
		if (rcpt_add(&r, key) < 0 || rcpt_add(&r, s->to.peer) < 0)
			goto fail;
	}
	if (chatstore_add(c->env.st, conv, &row, (const uint8_t (*)[KEY_LEN])r.keys, r.n,
	    c->env.keep, c->env.box_max) < 0)
		goto fail;
	log_debug("event=chat_stored node=%s conv=%s recipients=%zu bytes=%u", who, conv, r.n,
	    s->body_len);
	for (i = 0; i < r.n; i++) {
		HASH_FIND(hh, c->flows, r.keys[i], KEY_LEN, f);
		if (f != NULL)
			deliver(c, f);
		else if (c->env.stored)
			c->env.stored(c->env.arg, r.keys[i]);
	}
	free(r.keys);
	return;
fail:
	refuse(c, key, s, CHAT_REFUSED_INTERNAL);
	free(r.keys);
}

/* ---- history ---- */

struct hist_ctx {
	struct chat *c;
	const uint8_t *key;
	struct msg pending;             /* held back so that the last one carries the END flag */
	int have;
};

static int
hist_cb(void *arg, const struct chat_row *r)
{
	struct hist_ctx *h = arg;

	if (h->have)
		(void)h->c->env.send(h->c->env.arg, h->key, &h->pending);
	row_to_msg(r, h->key, CHATF_HISTORY, &h->pending);
	h->have = 1;
	return 0;
}

static void
handle_history(struct chat *c, const uint8_t key[KEY_LEN], const struct msg_chat_history *q)
{
	struct hist_ctx h = { c, key, { 0 }, 0 };
	struct store_network n;
	char conv[64];

	if (conv_name(c, key, &q->conv, conv, sizeof(conv), &n) < 0)
		return;
	(void)chatstore_history(c->env.st, conv, q->limit, hist_cb, &h);
	if (!h.have) {
		/* nothing: a bare end marker naming the conversation */
		h.pending.type = MSG_CHAT;
		h.pending.u.chat.conv = q->conv;
		memcpy(h.pending.u.chat.sender, key, KEY_LEN);
	}
	h.pending.u.chat.flags = CHATF_HISTORY | CHATF_HISTORY_END;
	(void)c->env.send(c->env.arg, key, &h.pending);
}

void
chat_msg(struct chat *c, const uint8_t key[KEY_LEN], const char *nick, const struct msg *m)
{
	struct flow *f;

	switch (m->type) {
	case MSG_CHAT_SEND:
		handle_send(c, key, nick, &m->u.chat_send);
		break;
	case MSG_CHAT_ACK:
		HASH_FIND(hh, c->flows, key, KEY_LEN, f);
		if (f == NULL || m->u.chat_ack.seq > f->sent)
			return;         /* acks what it was never sent: ignored */
		if (chatstore_ack(c->env.st, key, m->u.chat_ack.seq) == 0 && m->u.chat_ack.seq > f->acked)
			f->acked = m->u.chat_ack.seq;
		deliver(c, f);
		break;
	case MSG_CHAT_HISTORY:
		handle_history(c, key, &m->u.chat_history);
		break;
	}
}
