/*
 * requests: REQUESTs to the mediator waiting for their RESULT. Every request gets exactly one
 * callback: the server's RESULT, or a failure ("mediator not connected", "mediator connection
 * lost", "timed out" after 10 s). Failures are always delivered from the loop (the request
 * timer), never from inside medclient_request, so callers need not handle re-entry.
 *
 * Owns: the pending list (sorted by deadline) and its one timer, armed at the earliest
 * deadline. Must not: send anything but the REQUEST itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "medclient/medclient_int.h"
#include "mproto/ctrlchan.h"

static void
req_arm(struct medclient *m)
{
	double after;

	ev_timer_stop(m->loop, &m->req_timer);
	if (!m->pending)
		return;
	after = m->pending->deadline - ev_now(m->loop);
	ev_timer_set(&m->req_timer, after > 0 ? after : 0., 0.);
	ev_timer_start(m->loop, &m->req_timer);
}

static void
req_complete(struct pending *p, uint8_t status, const char *text, uint32_t req_id)
{
	struct msg_result res;

	memset(&res, 0, sizeof(res));
	res.req_id = req_id;
	res.status = status;
	snprintf(res.text, sizeof(res.text), "%s", text);
	p->cb(p->arg, &res);
}

/* Delivers the failures whose deadline passed. Callbacks may queue new requests. */
static void
req_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;
	struct pending *p;

	while ((p = m->pending) && p->deadline <= ev_now(loop) + 0.001) {
		m->pending = p->next;
		if (strcmp(p->fail, "timed out") == 0)
			log_info("event=mediator_request_timeout req=%u", p->req_id);
		req_complete(p, RES_ERR_INTERNAL, p->fail, p->req_id);
		free(p);
	}
	req_arm(m);
}

/* Inserts keeping the list sorted by deadline (ties: after existing ones, FIFO). */
static void
req_insert(struct medclient *m, struct pending *p)
{
	struct pending **pp = &m->pending;

	while (*pp && (*pp)->deadline <= p->deadline)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
	req_arm(m);
}

void
med_req_init(struct medclient *m)
{
	m->next_req_id = randombytes_random();
	ev_timer_init(&m->req_timer, req_timer_cb, 0., 0.);
	m->req_timer.data = m;
}

void
med_req_fail_all(struct medclient *m, const char *why)
{
	struct pending *list = m->pending, *p;

	/* Detached first: callbacks may queue new requests (they fail as "not connected"). */
	m->pending = NULL;
	ev_timer_stop(m->loop, &m->req_timer);
	while ((p = list)) {
		list = p->next;
		req_complete(p, RES_ERR_INTERNAL, why, p->req_id);
		free(p);
	}
	req_arm(m);
}

void
med_req_result(struct medclient *m, const struct msg_result *r)
{
	struct pending **pp, *p;

	for (pp = &m->pending; (p = *pp); pp = &p->next) {
		if (p->req_id == r->req_id && p->cb) {
			*pp = p->next;
			req_arm(m);
			p->cb(p->arg, r);
			free(p);
			return;
		}
	}
	/* Timed out already, or never ours. */
	m->dropped_msgs++;
	log_debug("event=mediator_result_unmatched req=%u", r->req_id);
}

void
med_req_free(struct medclient *m)
{
	struct pending *p;

	ev_timer_stop(m->loop, &m->req_timer);
	while ((p = m->pending)) {
		m->pending = p->next;
		free(p);
	}
}

int
medclient_request(struct medclient *m, struct msg_request *req, medclient_result_cb cb,
    void *arg)
{
	struct pending *p;
	struct msg msg;
	uint8_t probe[CTRL_FRAME_MAX];

	if (!cb)
		return -1;
	req->req_id = m->next_req_id++;
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_REQUEST;
	msg.u.request = *req;
	/* A request that cannot be encoded is the caller's error, reported synchronously. */
	if (msg_encode(&msg, probe, sizeof(probe)) < 0) {
		sodium_memzero(&msg, sizeof(msg));
		sodium_memzero(probe, sizeof(probe));
		return -1;
	}
	sodium_memzero(probe, sizeof(probe));
	if (!(p = calloc(1, sizeof(*p)))) {
		sodium_memzero(&msg, sizeof(msg));
		return -1;
	}
	p->req_id = req->req_id;
	p->cb = cb;
	p->arg = arg;
	if (m->state != MED_ONLINE) {
		/* Delivered from the loop, never from inside this call. */
		p->deadline = ev_now(m->loop);
		p->fail = "mediator not connected";
	} else {
		if (ctrlchan_send(m->ch, &msg) < 0) {
			sodium_memzero(&msg, sizeof(msg));
			free(p);
			return -1;
		}
		p->deadline = ev_now(m->loop) + REQUEST_TIMEOUT;
		p->fail = "timed out";
		log_debug("event=medclient_request req=%u op=%s network=\"%s\"", p->req_id,
		    req_op_name(req->op), req->network);
	}
	sodium_memzero(&msg, sizeof(msg));
	req_insert(m, p);
	return 0;
}
