/*
 * cand: where peers may reach us besides what the mediator observes. The endpoints our gateway
 * mapped to our peer UDP socket (portmap/, through the owner), told to the mediator with
 * MSG_CANDIDATES (PROTOCOL.md 3.4) whenever they change and after every WELCOME (a new
 * connection starts without them); our interface addresses, in HELLO and, when they change
 * while connected, in MSG_LOCALS (3.5).
 * Owns: the last set given to medclient_set_mapped, the last local set the mediator heard.
 */
#include "config.h"

#include <string.h>

#include "base/log.h"
#include "core/transport.h"
#include "medclient/medclient_int.h"

static void
cand_send(struct medclient *m)
{
	struct msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_CANDIDATES;
	msg.u.candidates.n_mapped = m->cand.n;
	memcpy(msg.u.candidates.mapped, m->cand.eps, sizeof(m->cand.eps));
	if (med_send(m, &msg) == 0)
		log_debug("event=candidates_sent mapped=%u", (unsigned)m->cand.n);
}

uint8_t
med_cand_locals(struct medclient *m, struct endpoint out[MAX_ENDPOINTS])
{
	size_t i, n = 0;

	memset(out, 0, MAX_ENDPOINTS * sizeof(out[0]));
	if (m->tp != NULL) {
		n = transport_local_endpoints(m->tp, out, MAX_ENDPOINTS);
		if (n > MAX_ENDPOINTS)
			n = MAX_ENDPOINTS;
		for (i = 0; i < n; i++)
			out[i].port = transport_port(m->tp);
	}
	m->cand.n_local = (uint8_t)n;
	memcpy(m->cand.local, out, sizeof(m->cand.local));
	return (uint8_t)n;
}

void
medclient_locals_changed(struct medclient *m)
{
	struct endpoint now[MAX_ENDPOINTS];
	struct endpoint before[MAX_ENDPOINTS];
	uint8_t n_before = m->cand.n_local, n, i;
	struct msg msg;

	/* Not connected: the next HELLO carries them. */
	if (m->state != MED_ONLINE)
		return;
	memcpy(before, m->cand.local, sizeof(before));
	n = med_cand_locals(m, now);
	for (i = 0; n == n_before && i < n && ep_equal(&now[i], &before[i]); i++)
		;
	if (n == n_before && i == n)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_LOCALS;
	msg.u.locals.n_local = n;
	memcpy(msg.u.locals.local, now, sizeof(now));
	if (med_send(m, &msg) == 0)
		log_info("event=locals_sent local=%u before=%u", (unsigned)n, (unsigned)n_before);
}

void
med_cand_welcome(struct medclient *m)
{
	if (m->cand.n > 0)
		cand_send(m);
}

void
medclient_set_mapped(struct medclient *m, const struct endpoint *eps, size_t n)
{
	size_t i, k = 0;
	struct endpoint v[CAND_MAX_MAPPED];

	memset(v, 0, sizeof(v));
	/* Zero endpoints reach nobody and the codec refuses them: left out. */
	for (i = 0; i < n && k < CAND_MAX_MAPPED; i++)
		if (ep_is_set(&eps[i])) {
			v[k] = eps[i];
			v[k].via = 0;
			k++;
		}
	if (k == m->cand.n && memcmp(v, m->cand.eps, sizeof(v)) == 0)
		return;
	memcpy(m->cand.eps, v, sizeof(v));
	m->cand.n = (uint8_t)k;
	if (m->state == MED_ONLINE)
		cand_send(m);
}
