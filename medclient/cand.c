/*
 * cand: the endpoints our gateway mapped to our peer UDP socket (portmap/, through the
 * owner), told to the mediator with MSG_CANDIDATES (PROTOCOL.md 3.4) whenever they change and
 * after every WELCOME (a new connection starts without them).
 * Owns: the last set given to medclient_set_mapped.
 */
#include "config.h"

#include <string.h>

#include "base/log.h"
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
