/*
 * probe: UDP_PROBEs to the mediator's address, sent through the peer transport so that the
 * mediator observes the same public endpoint (NAT mapping) our peers will reach, and the
 * UDP_PROBE_REPLY in which it tells us that endpoint. After each WELCOME: a probe at once,
 * PROBE_BURST more PROBE_BURST_GAP apart (a lost datagram costs a second, not 15), then one
 * every PROBE_INTERVAL to keep the mapping alive and the endpoint current.
 *
 * Owns: the UDP token of this connection, the probe timer, our public endpoint.
 * Must not: accept an endpoint from anyone but the mediator's address.
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
	struct endpoint ep;
	char s[IP4_EP_STR_LEN];

	/* Only the mediator may tell us where we are. */
	if (!m->have_server || from->addr != m->server.addr || from->port != m->server.port ||
	    probe_reply_decode(pkt, len, &ep) < 0) {
		m->dropped_msgs++;
		return;
	}
	if (!m->have_public || ep.addr != m->public_ep.addr || ep.port != m->public_ep.port)
		log_info("event=medclient_public_endpoint endpoint=%s",
		    ip4_ep_str(ep.addr, ep.port, s));
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
