/*
 * control_chat: the chat commands of the control socket (docs/PROTOCOL.md 5.3):
 *   chat          send to a network or a peer; answered when the mediator took it
 *   chat-follow   messages after an id: at once if there are any, else when the next one
 *                 arrives, else empty after CTL_CHAT_FOLLOW_S (the CLI asks again)
 *   chat-history  the newest messages of a conversation, from the mediator
 * Everything it knows of chat comes through medclient's chat API.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "control/control_int.h"
#include "medclient/medclient.h"

enum { CTL_CHAT_FOLLOW_S = 25, FOLLOW_BATCH = 64 };

/* The nick a key has in any of our networks, or NULL. */
static const char *
nick_of_key(const struct control_env *env, const uint8_t key[KEY_LEN])
{
	const struct med_network *n;
	const struct med_member *m;

	for (n = medclient_networks(env->med); n; n = n->hh.next) {
		HASH_FIND(hh, n->members, key, KEY_LEN, m);
		if (m && m->nick[0])
			return m->nick;
	}
	return NULL;
}

static json_t *
entry_json(const struct control_env *env, const struct med_chat_entry *e)
{
	json_t *o = json_object();
	const char *pn;

	if (e->id)
		json_object_set_new(o, "id", json_integer((json_int_t)e->id));
	json_object_set_new(o, "ts_ms", json_integer(e->ts_ms));
	json_object_set_new(o, "kind", json_string(e->kind == CHAT_NETWORK ? "network" : "private"));
	if (e->kind == CHAT_NETWORK) {
		json_object_set_new(o, "network", ctl_jtext(e->network));
	} else {
		json_object_set_new(o, "peer", ctl_jhex(e->peer));
		pn = nick_of_key(env, e->peer);
		json_object_set_new(o, "peer_nick", pn ? ctl_jtext(pn) : json_null());
	}
	json_object_set_new(o, "from", ctl_jtext(e->nick));
	json_object_set_new(o, "from_id", ctl_jhex(e->sender));
	json_object_set_new(o, "mine", json_boolean(e->mine));
	json_object_set_new(o, "sealed", json_boolean(e->sealed));
	json_object_set_new(o, "text", ctl_jtext(e->text));
	return o;
}

/* The conversation a request names: a network we are in, or a peer by any of its names. */
static int
request_conv(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq,
    struct chat_conv *conv)
{
	uint32_t addr;

	memset(conv, 0, sizeof(*conv));
	if (rq->network[0]) {
		conv->kind = CHAT_NETWORK;
		snprintf(conv->network, sizeof(conv->network), "%s", rq->network);
		return 0;
	}
	conv->kind = CHAT_PRIVATE;
	if (medclient_resolve(env->med, rq->peer, conv->peer, &addr) != 0) {
		ctl_reply_error(cl, 1, rq->id, "unknown peer %s (not a nick, address or node id of a "
		    "member)", rq->peer);
		return -1;
	}
	if (env->node_pub && memcmp(conv->peer, env->node_pub, KEY_LEN) == 0) {
		ctl_reply_error(cl, 1, rq->id, "%s is this node", rq->peer);
		return -1;
	}
	return 0;
}

/* ---- chat ---- */

static void
sent_cb(void *arg, const char *err, const struct med_chat_entry *e)
{
	struct ctl_pending *p = arg;
	json_t *o;

	p->outstanding = 0;
	if (p->client) {
		if (err) {
			ctl_reply_error(p->client, 1, p->id, "message not sent: %s", err);
		} else {
			o = json_object();
			json_object_set_new(o, "message", entry_json(p->env, e));
			ctl_reply_ok(p->client, p->id, o);
		}
	}
	ctl_pending_free(p);
}

static void
cmd_chat(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	struct ctl_pending *p;
	struct chat_conv to;

	if (request_conv(env, cl, rq, &to) < 0 || !(p = ctl_pending_new(cl, rq)))
		return;
	p->outstanding = 1;
	if (medclient_chat_send(env->med, &to, rq->text, sent_cb, p) < 0) {
		p->outstanding = 0;
		ctl_reply_error(cl, 1, rq->id, "message not sent: not valid");
		ctl_pending_free(p);
	}
}

/* ---- chat-follow ---- */

static void
follow_answer(struct ctl_pending *p)
{
	struct med_chat_entry e[FOLLOW_BATCH];
	json_t *o = json_object(), *arr = json_array();
	size_t i, n = medclient_chat_since(p->env->med, p->rq.after, e, FOLLOW_BATCH);

	for (i = 0; i < n; i++)
		json_array_append_new(arr, entry_json(p->env, &e[i]));
	json_object_set_new(o, "messages", arr);
	json_object_set_new(o, "last", json_integer((json_int_t)(n ? e[n - 1].id : p->rq.after)));
	ctl_reply_ok(p->client, p->id, o);
}

static void
follow_end(struct ctl_pending *p)
{
	ev_timer_stop(p->env->loop, &p->gap);
	if (p->chat_wait)
		medclient_chat_unwait(p->env->med, p->chat_wait);
	p->chat_wait = NULL;
	follow_answer(p);
	ctl_pending_free(p);
}

static void
follow_new_cb(void *arg, int alive)
{
	struct ctl_pending *p = arg;

	p->chat_wait = NULL;    /* it fired: medclient freed it */
	if (!alive) {
		/* the mediator client is going away (shutdown): answer what there is */
		ev_timer_stop(p->env->loop, &p->gap);
		ctl_reply_error(p->client, 1, p->id, "shutting down");
		ctl_pending_free(p);
		return;
	}
	follow_end(p);
}

static void
follow_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_pending *p = (struct ctl_pending *)((char *)w - offsetof(struct ctl_pending, gap));

	(void)loop;
	(void)revents;
	follow_end(p);
}

static void
cmd_chat_follow(const struct control_env *env, struct ctl_client *cl,
    const struct ctl_request *rq)
{
	struct ctl_pending *p;

	if (!(p = ctl_pending_new(cl, rq)))
		return;
	if (medclient_chat_last(env->med) > rq->after) {
		follow_answer(p);
		ctl_pending_free(p);
		return;
	}
	/* nothing yet: wait for the next message (the client's going cancels, ctl_chat_cancel) */
	p->chat_wait = medclient_chat_wait(env->med, follow_new_cb, p);
	ev_timer_init(&p->gap, follow_timeout_cb, CTL_CHAT_FOLLOW_S, 0.);
	ev_timer_start(env->loop, &p->gap);
}

void
ctl_chat_cancel(struct ctl_pending *p)
{
	ev_timer_stop(p->env->loop, &p->gap);
	if (p->chat_wait)
		medclient_chat_unwait(p->env->med, p->chat_wait);
	p->chat_wait = NULL;
}

/* ---- chat-history ---- */

static void
history_cb(void *arg, const char *err, const struct med_chat_entry *e, size_t n)
{
	struct ctl_pending *p = arg;
	json_t *o, *arr;
	size_t i;

	p->outstanding = 0;
	if (p->client) {
		if (err) {
			ctl_reply_error(p->client, 1, p->id, "no history: %s", err);
		} else {
			o = json_object();
			arr = json_array();
			for (i = 0; i < n; i++)
				json_array_append_new(arr, entry_json(p->env, &e[i]));
			json_object_set_new(o, "messages", arr);
			ctl_reply_ok(p->client, p->id, o);
		}
	}
	ctl_pending_free(p);
}

static void
cmd_chat_history(const struct control_env *env, struct ctl_client *cl,
    const struct ctl_request *rq)
{
	struct ctl_pending *p;
	struct chat_conv conv;

	if (request_conv(env, cl, rq, &conv) < 0 || !(p = ctl_pending_new(cl, rq)))
		return;
	p->outstanding = 1;
	if (medclient_chat_history(env->med, &conv, (unsigned)rq->limit, history_cb, p) < 0) {
		p->outstanding = 0;
		ctl_reply_error(cl, 1, rq->id, "no history: not valid");
		ctl_pending_free(p);
	}
}

void
ctl_chat_run(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	if (!env->med) {
		ctl_reply_error(cl, 1, rq->id, "chat is not available in this daemon");
		return;
	}
	switch (rq->cmd) {
	case CTL_CHAT:
		cmd_chat(env, cl, rq);
		break;
	case CTL_CHAT_FOLLOW:
		cmd_chat_follow(env, cl, rq);
		break;
	case CTL_CHAT_HISTORY:
		cmd_chat_history(env, cl, rq);
		break;
	default:
		break;
	}
}
