/*
 * chat: the daemon's half of the chat (medclient.h "Chat", PROTOCOL.md 4.6).
 *
 * Incoming: each MSG_CHAT from the mailbox has a number; numbers at or below the last one
 * processed (STATE_DIR/chat.seq, written before the ack) are repeats after a reconnect and are
 * dropped, so every message reaches the ring exactly once, in order. Private ones are opened
 * with crypto_box between our key and the peer's.
 * Outgoing: a send gets a client id above every earlier one (ids start from the clock, so a
 * restarted daemon never reuses one) and waits in the outbox until our own copy comes back;
 * after a reconnect the outbox is sent again and the mediator drops what it already has.
 * Owns: struct med_chat (ring, outbox, waiters, history queries).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <sodium.h>
#include <utlist.h>

#include "base/atomicfile.h"
#include "base/log.h"
#include "medclient/medclient_int.h"

/* A message sent and not yet confirmed. */
struct outgoing {
	struct outgoing *next, *prev;
	struct medclient *m;
	struct msg msg;                 /* MSG_CHAT_SEND, as sent (again after a reconnect) */
	char text[CHAT_TEXT_MAX + 1];   /* for our own entry: the body may be sealed */
	med_chat_sent_cb cb;
	void *arg;
	ev_timer timer;
};

struct waiter {
	struct waiter *next, *prev;
	med_chat_wait_cb cb;
	void *arg;
};

/* A history query: entries gather until the END flag. One per conversation at a time. */
struct query {
	struct query *next, *prev;
	struct medclient *m;
	struct chat_conv conv;
	med_chat_history_cb cb;
	void *arg;
	struct med_chat_entry *e;
	size_t n, cap;
	ev_timer timer;
};

struct med_chat {
	struct med_chat_entry ring[MED_CHAT_RING];
	uint64_t next_id;               /* local entry ids */
	uint64_t seq;                   /* the last mailbox number processed (chat.seq) */
	uint32_t next_client_id;
	struct outgoing *out;
	struct waiter *waiters;
	struct query *queries;
};

/* ---- chat.seq ---- */

static void
seq_path(const struct medclient *m, char *out, size_t cap)
{
	snprintf(out, cap, "%s/chat.seq", m->cfg.state_dir);
}

static void
seq_load(struct medclient *m)
{
	char path[4200], buf[32];
	ssize_t n;
	int fd;

	if (!m->cfg.state_dir[0])
		return;
	seq_path(m, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		m->chat->seq = strtoull(buf, NULL, 10);
	}
}

/* Written (atomically: temp file, rename) before the ack, so a crash between the two repeats
 * nothing: the mailbox resends, the number says it was seen. */
static int
seq_save(struct medclient *m)
{
	char path[4200], buf[32];
	int len;

	if (!m->cfg.state_dir[0])
		return 0;
	seq_path(m, path, sizeof(path));
	len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)m->chat->seq);
	if (atomicfile_write(path, buf, (size_t)len, 0600) != 0) {
		log_warn("event=chat_seq_save_failed path=%s", path);
		return -1;
	}
	return 0;
}

/* ---- lifecycle ---- */

void
med_chat_init(struct medclient *m)
{
	struct timeval tv;

	if ((m->chat = calloc(1, sizeof(*m->chat))) == NULL)
		return;
	gettimeofday(&tv, NULL);
	/* above anything an earlier run of this daemon sent (one a second would take 136 years
	 * to catch up with the clock) */
	m->chat->next_client_id = (uint32_t)tv.tv_sec;
	seq_load(m);
}

static void
out_done(struct outgoing *o, const char *err, const struct med_chat_entry *e)
{
	struct med_chat *c = o->m->chat;

	ev_timer_stop(o->m->loop, &o->timer);
	DL_DELETE(c->out, o);
	if (o->cb)
		o->cb(o->arg, err, e);
	sodium_memzero(o->text, sizeof(o->text));
	free(o);
}

static void
query_done(struct query *q, const char *err)
{
	struct med_chat *c = q->m->chat;

	ev_timer_stop(q->m->loop, &q->timer);
	DL_DELETE(c->queries, q);
	q->cb(q->arg, err, q->e, err ? 0 : q->n);
	free(q->e);
	free(q);
}

void
med_chat_free(struct medclient *m)
{
	struct med_chat *c = m->chat;
	struct waiter *w, *wt;

	if (c == NULL)
		return;
	while (c->out)
		out_done(c->out, "shutting down", NULL);
	while (c->queries)
		query_done(c->queries, "shutting down");
	DL_FOREACH_SAFE(c->waiters, w, wt) {
		DL_DELETE(c->waiters, w);
		w->cb(w->arg, 0);
		free(w);
	}
	sodium_memzero(c->ring, sizeof(c->ring));
	free(c);
	m->chat = NULL;
}

/* After each WELCOME: what was sent and not confirmed goes again (the mediator keeps the
 * last client id of each sender and drops repeats). */
void
med_chat_welcome(struct medclient *m)
{
	struct outgoing *o;

	if (m->chat == NULL)
		return;
	DL_FOREACH(m->chat->out, o)
		(void)med_send(m, &o->msg);
}

/* ---- entries ---- */

/* The text of a message for us: plain (network) or opened (private). 0, or -1 (sealed). */
static int
open_body(struct medclient *m, const struct msg_chat *c, char *text)
{
	const uint8_t *peer = c->conv.peer;
	unsigned long long n;

	if (c->conv.kind == CHAT_NETWORK) {
		if (memchr(c->body, 0, c->body_len) != NULL || c->body_len > CHAT_TEXT_MAX)
			return -1;
		memcpy(text, c->body, c->body_len);
		text[c->body_len] = '\0';
		return 0;
	}
	if (c->body_len < CHAT_BOX_OVERHEAD)
		return -1;
	n = c->body_len - CHAT_BOX_OVERHEAD;
	/* sealed between the pair: whoever sent it, the other key is the conversation's */
	if (crypto_box_open_easy((uint8_t *)text, c->body + crypto_box_NONCEBYTES,
	    c->body_len - crypto_box_NONCEBYTES, c->body, peer, m->key->priv) != 0 ||
	    memchr(text, 0, n) != NULL) {
		text[0] = '\0';
		return -1;
	}
	text[n] = '\0';
	return 0;
}

static void
fill_entry(struct medclient *m, const struct msg_chat *c, struct med_chat_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ts_ms = (int64_t)c->ts_ms;
	e->kind = c->conv.kind;
	memcpy(e->network, c->conv.network, sizeof(e->network));
	memcpy(e->peer, c->conv.peer, KEY_LEN);
	memcpy(e->sender, c->sender, KEY_LEN);
	memcpy(e->nick, c->nick, sizeof(e->nick));
	e->mine = memcmp(c->sender, m->key->pub, KEY_LEN) == 0;
	e->sealed = open_body(m, c, e->text) != 0;
}

static void
ring_add(struct medclient *m, struct med_chat_entry *e)
{
	struct med_chat *c = m->chat;
	struct waiter *w, *wt;

	e->id = ++c->next_id;
	c->ring[e->id % MED_CHAT_RING] = *e;
	DL_FOREACH_SAFE(c->waiters, w, wt) {
		DL_DELETE(c->waiters, w);
		w->cb(w->arg, 1);
		free(w);
	}
}

static void
history_entry(struct medclient *m, const struct msg_chat *mc)
{
	struct query *q;
	void *p;

	DL_FOREACH(m->chat->queries, q)
		if (q->conv.kind == mc->conv.kind && (q->conv.kind == CHAT_NETWORK ?
		    strcmp(q->conv.network, mc->conv.network) == 0 :
		    memcmp(q->conv.peer, mc->conv.peer, KEY_LEN) == 0))
			break;
	if (q == NULL)
		return;
	if (mc->body_len > 0) {
		if (q->n == q->cap) {
			if ((p = realloc(q->e, (q->cap ? 2 * q->cap : 32) * sizeof(*q->e))) == NULL) {
				query_done(q, "out of memory");
				return;
			}
			q->e = p;
			q->cap = q->cap ? 2 * q->cap : 32;
		}
		fill_entry(m, mc, &q->e[q->n]);
		q->e[q->n].id = 0;
		q->n++;
	}
	if (mc->flags & CHATF_HISTORY_END)
		query_done(q, NULL);
}

void
med_chat_msg(struct medclient *m, const struct msg_chat *mc)
{
	struct med_chat *c = m->chat;
	struct med_chat_entry e;
	struct outgoing *o;
	struct msg ack;

	if (c == NULL)
		return;
	if (mc->flags & CHATF_HISTORY) {
		history_entry(m, mc);
		return;
	}
	if (mc->seq <= c->seq) {
		log_debug("event=chat_repeat seq=%llu", (unsigned long long)mc->seq);
	} else {
		fill_entry(m, mc, &e);
		c->seq = mc->seq;
		(void)seq_save(m);
		ring_add(m, &e);
		if (e.mine)
			DL_FOREACH(c->out, o)
				if (o->msg.u.chat_send.client_id == mc->client_id) {
					out_done(o, NULL, &c->ring[e.id % MED_CHAT_RING]);
					break;
				}
	}
	memset(&ack, 0, sizeof(ack));
	ack.type = MSG_CHAT_ACK;
	ack.u.chat_ack.seq = mc->seq;
	(void)med_send(m, &ack);
}

/* The mediator did not take one of ours: its sender hears why at once. */
void
med_chat_refused(struct medclient *m, const struct msg_chat_refused *r)
{
	struct outgoing *o;

	if (m->chat == NULL)
		return;
	DL_FOREACH(m->chat->out, o)
		if (o->msg.u.chat_send.client_id == r->client_id) {
			log_info("event=chat_refused client_id=%lu reason=\"%s\"",
			    (unsigned long)r->client_id, chat_refusal_text(r->reason));
			out_done(o, chat_refusal_text(r->reason), NULL);
			return;
		}
}

/* ---- the API ---- */

static void
out_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct outgoing *o = w->data;

	(void)loop;
	(void)revents;
	/* a mediator that refuses says so (MSG_CHAT_REFUSED): silence is an older one, or a
	 * connection that went away */
	out_done(o, o->m->state == MED_ONLINE ? "the mediator did not answer" :
	    "not connected to the mediator", NULL);
}

int
medclient_chat_send(struct medclient *m, const struct chat_conv *to, const char *text,
    med_chat_sent_cb cb, void *arg)
{
	struct med_chat *c = m->chat;
	struct msg_chat_send *s;
	struct outgoing *o;
	size_t len = strlen(text);

	if (c == NULL || len == 0 || len > CHAT_TEXT_MAX ||
	    (to->kind != CHAT_NETWORK && to->kind != CHAT_PRIVATE) ||
	    (o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->m = m;
	o->cb = cb;
	o->arg = arg;
	memcpy(o->text, text, len + 1);
	o->msg.type = MSG_CHAT_SEND;
	s = &o->msg.u.chat_send;
	s->client_id = ++c->next_client_id;
	s->to = *to;
	if (to->kind == CHAT_NETWORK) {
		memcpy(s->body, text, len);
		s->body_len = (uint16_t)len;
	} else {
		randombytes_buf(s->body, crypto_box_NONCEBYTES);
		if (crypto_box_easy(s->body + crypto_box_NONCEBYTES, (const uint8_t *)text, len,
		    s->body, to->peer, m->key->priv) != 0) {
			free(o);
			return -1;
		}
		s->body_len = (uint16_t)(len + CHAT_BOX_OVERHEAD);
	}
	DL_APPEND(c->out, o);
	ev_timer_init(&o->timer, out_timeout, MED_CHAT_SEND_TIMEOUT_S, 0.);
	o->timer.data = o;
	ev_timer_start(m->loop, &o->timer);
	if (m->state == MED_ONLINE)
		(void)med_send(m, &o->msg);
	return 0;
}

size_t
medclient_chat_since(const struct medclient *m, uint64_t after, struct med_chat_entry *out,
    size_t max)
{
	const struct med_chat *c = m->chat;
	uint64_t id;
	size_t n = 0;

	if (c == NULL)
		return 0;
	/* only the ring's newest MED_CHAT_RING are still there */
	id = c->next_id > MED_CHAT_RING && after < c->next_id - MED_CHAT_RING ?
	    c->next_id - MED_CHAT_RING : after;
	for (id++; id <= c->next_id && n < max; id++)
		out[n++] = c->ring[id % MED_CHAT_RING];
	return n;
}

uint64_t
medclient_chat_last(const struct medclient *m)
{
	return m->chat ? m->chat->next_id : 0;
}

void *
medclient_chat_wait(struct medclient *m, med_chat_wait_cb cb, void *arg)
{
	struct waiter *w;

	if (m->chat == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	DL_APPEND(m->chat->waiters, w);
	return w;
}

void
medclient_chat_unwait(struct medclient *m, void *handle)
{
	struct waiter *w = handle;

	if (m->chat == NULL || w == NULL)
		return;
	DL_DELETE(m->chat->waiters, w);
	free(w);
}

static void
query_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	query_done(w->data, "no answer from the mediator");
}

int
medclient_chat_history(struct medclient *m, const struct chat_conv *conv, unsigned limit,
    med_chat_history_cb cb, void *arg)
{
	struct query *q;
	struct msg msg;

	if (m->chat == NULL || limit == 0 || limit > CHAT_HISTORY_MAX)
		return -1;
	if (m->state != MED_ONLINE) {
		cb(arg, "not connected to the mediator", NULL, 0);
		return 0;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->m = m;
	q->conv = *conv;
	q->cb = cb;
	q->arg = arg;
	DL_APPEND(m->chat->queries, q);
	ev_timer_init(&q->timer, query_timeout, MED_CHAT_SEND_TIMEOUT_S, 0.);
	q->timer.data = q;
	ev_timer_start(m->loop, &q->timer);
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_CHAT_HISTORY;
	msg.u.chat_history.conv = *conv;
	msg.u.chat_history.limit = (uint16_t)limit;
	if (med_send(m, &msg) < 0)
		query_done(q, "not connected to the mediator");
	return 0;
}
