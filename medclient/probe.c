/*
 * probe: UDP_PROBEs to the mediator's address, sent through the peer transport so that the
 * mediator observes the same public endpoint (NAT mapping) our peers will reach, and the
 * UDP_PROBE_REPLY in which it tells us that endpoint. After each WELCOME: a probe at once,
 * PROBE_BURST more PROBE_BURST_GAP apart (a lost datagram costs a second, not 15), then one
 * every PROBE_INTERVAL to keep the mapping alive and the endpoint current.
 *
 * Every mediator datagram the transport hands us arrives here: replies also go to natprobe.c
 * (a NAT_PLAN target's reply counts for the classification), UDP_NAT_TEST and UDP_HAIRPIN only
 * to natprobe.c.
 *
 * Owns: the UDP token of this connection, the probe timer, our public endpoint.
 * Must not: take our public endpoint from anyone but the mediator's address and port.
 */
#include "config.h"

#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/transport.h"
#include "medclient/medclient_int.h"

static void
probe_send(struct medclient *m)
{
	uint8_t pkt[UDP_PROBE_LEN];
	int n;

	if (!m->have_token || !m->have_server || !m->tp)
		return;
	if ((n = probe_encode(m->udp_token, pkt, sizeof(pkt))) > 0)
		transport_send(m->tp, &m->server, pkt, (size_t)n);
}

static void
probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	probe_send(m);
	if (m->probes_left > 0)
		m->probes_left--;
	ev_timer_set(w, m->probes_left > 0 ? PROBE_BURST_GAP : PROBE_INTERVAL, 0.);
	ev_timer_start(loop, w);
}

void
med_probe_init(struct medclient *m)
{
	ev_timer_init(&m->probe_timer, probe_cb, 0., 0.);
	m->probe_timer.data = m;
}

void
med_probe_start(struct medclient *m, const uint8_t token[UDP_TOKEN_LEN])
{
	memcpy(m->udp_token, token, UDP_TOKEN_LEN);
	m->have_token = 1;
	m->probes_left = PROBE_BURST;
	probe_send(m);
	ev_timer_stop(m->loop, &m->probe_timer);
	ev_timer_set(&m->probe_timer, PROBE_BURST_GAP, 0.);
	ev_timer_start(m->loop, &m->probe_timer);
}

void
med_probe_stop(struct medclient *m)
{
	ev_timer_stop(m->loop, &m->probe_timer);
	m->have_token = 0;
	sodium_memzero(m->udp_token, sizeof(m->udp_token));
}

void
medclient_udp_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	struct endpoint ep = { 0 };
	char s[EP_STR_LEN];
	int from_server, for_plan;

	if (len > 0 && (pkt[0] == UDP_NAT_TEST || pkt[0] == UDP_HAIRPIN)) {
		med_nat_udp(m, from, pkt, len);
		return;
	}
	if (probe_reply_decode(pkt, len, &ep) < 0) {
		m->dropped_msgs++;
		return;
	}
	/* A reply from any plan target counts for the NAT classification... */
	for_plan = med_nat_reply(m, from, &ep);
	/* ...but only the mediator's own address may tell us where we are. */
	from_server = m->have_server && ep_same_addr(from, &m->server);
	if (!from_server) {
		if (!for_plan)
			m->dropped_msgs++;
		return;
	}
	if (!m->have_public || !ep_same_addr(&ep, &m->public_ep))
		log_info("event=medclient_public_endpoint endpoint=%s",
		    ep_str(&ep, s));
	m->public_ep = ep;
	m->have_public = 1;
}

int
medclient_public_endpoint(const struct medclient *m, struct endpoint *ep)
{
	if (!m->have_public)
		return 0;
	*ep = m->public_ep;
	return 1;
}
