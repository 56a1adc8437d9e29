/*
 * control_watch: the watch command (docs/PROTOCOL.md 5.3), what the window's live stream
 * (ui/stream.c) waits on. A watch is answered {"gen": G, "chat": C} as soon as the generation
 * G is past the request's `after`, else after CTL_WATCH_S with the same G (the caller's
 * heartbeat); C is the newest chat id, so the caller asks chat-follow only when it grew.
 *
 * The generation grows whenever what `status` and `list` answer, or the newest chat id,
 * differs from what it was when the generation was last taken. It is found by digest rather
 * than by hooks in every engine: the digest covers exactly what a front end shows (nick,
 * mediator connection, networks, members, paths, latencies, NAT, relays, chat arrivals), so
 * no engine can change any of it without the watchers hearing, and no engine knows of us.
 * The digest is taken when a watch arrives and every CTL_WATCH_SAMPLE_S while one waits
 * (never otherwise), which also bounds the answers to ten a second. A view so large that a
 * digest takes longer than a tenth of that is sampled less often: at most 10% of the loop.
 * Owns: the generation, the last digest, the list of waiting watches and the sampling timer.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "base/log.h"
#include "control/control_int.h"
#include "medclient/medclient.h"

#define CTL_WATCH_S 15.0                /* unchanged answers: the stream's heartbeat */
#define CTL_WATCH_SAMPLE_S 0.1          /* the digest while somebody waits */

struct ctl_watch {
	const struct control_env *env;
	uint64_t gen;
	uint8_t digest[crypto_generichash_BYTES];
	ev_timer sample;
	struct ctl_pending *waiting;    /* by wnext/wprev */
};

/* Adds one JSON document to the digest, compact with sorted keys (the same state always
 * gives the same bytes). */
static void
digest_json(crypto_generichash_state *h, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (s) {
		crypto_generichash_update(h, (const unsigned char *)s, strlen(s));
		free(s);
	}
	json_decref(o);
}

static uint64_t
chat_last(const struct ctl_watch *w)
{
	return w->env->med ? medclient_chat_last(w->env->med) : 0;
}

/* Takes the digest; a different one is a new generation. */
static void
watch_sample(struct ctl_watch *w)
{
	crypto_generichash_state h;
	uint8_t d[crypto_generichash_BYTES];
	uint64_t chat = chat_last(w);
	ev_tstamp t0 = ev_time(), cost;

	crypto_generichash_init(&h, NULL, 0, sizeof(d));
	digest_json(&h, ctl_status_json(w->env));
	digest_json(&h, ctl_list_json(w->env));
	crypto_generichash_update(&h, (const unsigned char *)&chat, sizeof(chat));
	crypto_generichash_final(&h, d, sizeof(d));
	if (w->gen == 0 || memcmp(d, w->digest, sizeof(d)) != 0) {
		memcpy(w->digest, d, sizeof(d));
		w->gen++;
	}
	cost = ev_time() - t0;
	w->sample.repeat = 10 * cost > CTL_WATCH_SAMPLE_S ? 10 * cost : CTL_WATCH_SAMPLE_S;
}

static json_t *
watch_json(const struct ctl_watch *w)
{
	return json_pack("{s:I, s:I}", "gen", (json_int_t)w->gen, "chat", (json_int_t)chat_last(w));
}

static void
watch_answer(struct ctl_pending *p)
{
	struct ctl_watch *w = p->watch;

	ev_timer_stop(w->env->loop, &p->gap);
	DL_DELETE2(w->waiting, p, wprev, wnext);
	if (!w->waiting)
		ev_timer_stop(w->env->loop, &w->sample);
	ctl_reply_ok(p->client, p->id, watch_json(w));
	ctl_pending_free(p);
}

static void
sample_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctl_watch *w = t->data;
	uint64_t before = w->gen;
	struct ctl_pending *p, *tmp;

	(void)revents;
	watch_sample(w);
	if (w->gen != before)
		DL_FOREACH_SAFE2(w->waiting, p, tmp, wnext)
			watch_answer(p);
	if (w->waiting)         /* the interval may have changed with the digest's cost */
		ev_timer_again(loop, &w->sample);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctl_pending *p = (struct ctl_pending *)((char *)t - offsetof(struct ctl_pending, gap));

	(void)loop;
	(void)revents;
	watch_answer(p);
}

void
ctl_watch_run(const struct control_env *env, struct ctl_client *cl, const struct ctl_request *rq)
{
	struct ctl_watch *w = ctl_client_watch(cl);
	struct ctl_pending *p;

	/* Waiting ones have the newest digest (sampled 0.1 s ago at most); otherwise take it. */
	if (!w->waiting)
		watch_sample(w);
	if (w->gen > rq->after) {
		ctl_reply_ok(cl, rq->id, watch_json(w));
		return;
	}
	if (!(p = ctl_pending_new(cl, rq)))
		return;
	p->watch = w;
	ev_timer_init(&p->gap, deadline_cb, CTL_WATCH_S, 0.);
	ev_timer_start(env->loop, &p->gap);
	if (!w->waiting)
		ev_timer_again(env->loop, &w->sample);
	DL_APPEND2(w->waiting, p, wprev, wnext);
}

void
ctl_watch_cancel(struct ctl_pending *p)
{
	struct ctl_watch *w = p->watch;

	if (!w)
		return;
	ev_timer_stop(w->env->loop, &p->gap);
	DL_DELETE2(w->waiting, p, wprev, wnext);
	if (!w->waiting)
		ev_timer_stop(w->env->loop, &w->sample);
	p->watch = NULL;
}

struct ctl_watch *
ctl_watch_new(const struct control_env *env)
{
	struct ctl_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->env = env;
	ev_init(&w->sample, sample_cb);
	w->sample.repeat = CTL_WATCH_SAMPLE_S;
	w->sample.data = w;
	return w;
}

void
ctl_watch_free(struct ctl_watch *w)
{
	if (!w)
		return;
	/* the clients went first (control_free): nobody waits any more */
	ev_timer_stop(w->env->loop, &w->sample);
	free(w);
}
