/*
 * natprobe: the daemon's part of NAT classification (docs/PROTOCOL.md 3.1). A NAT_PLAN names
 * the mediator's UDP sockets (targets); we probe them from the peer UDP socket, because the
 * mappings that socket gets are the ones peers will meet, and report what came back:
 *   phase 1  UDP_NAT_PROBE to target 0, NAT_P1_PROBES times NAT_P1_GAP apart (loss);
 *   phase 2  phase2_ms after the plan, targets 1..n-1 in order, one burst, NAT_P2_BURSTS times
 *            NAT_P2_GAP apart (distinct destinations in a known order: the server reads the
 *            mapping and port allocation from what it observes);
 *   hairpin  once target 0 has told us our observed endpoint, one UDP_HAIRPIN to it.
 * Replies, UDP_NAT_TESTs and the hairpin's return change `seen`; a change is reported in one
 * NAT_REPORT NAT_REPORT_DELAY later. The server classifies and answers with NAT_INFO, which is
 * kept for `shoal status`.
 *
 * Owns: the current plan, its four timers, what it showed, the last NAT_INFO.
 * Must not: send more than the 3.1 budget per plan (3 + 2 x 5 + 1 datagrams); count a test
 * that does not carry the current test_id and nonce from a target's address, or a reply from
 * a target we have not probed.
 */
#include "config.h"

#include <string.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/transport.h"
#include "medclient/medclient_int.h"

static void
nat_probe_to(struct medclient *m, uint8_t target)
{
	struct nat_probe p;
	uint8_t pkt[UDP_NAT_PROBE_LEN];
	int n;

	memset(&p, 0, sizeof(p));
	memcpy(p.token, m->udp_token, UDP_TOKEN_LEN);
	p.test_id = m->nat.plan.test_id;
	p.target = target;
	/* Marked even if the send fails: the budget is spent either way, and a late reply from
	 * that target is still a reply to this plan. */
	m->nat.probed |= (uint8_t)(1u << target);
	if ((n = nat_probe_encode(&p, pkt, sizeof(pkt))) > 0)
		transport_send(m->tp, &m->nat.plan.targets[target], pkt, (size_t)n);
}

static int
report_differs(const struct msg_nat_report *a, const struct msg_nat_report *b)
{
	return a->replies != b->replies || a->tests != b->tests ||
	    a->lifetime_seen != b->lifetime_seen || a->hairpin != b->hairpin;
}

/* Something in `seen` changed: report it once the burst of changes has settled. The timer is
 * not restarted by later changes, so a report is never more than NAT_REPORT_DELAY late. */
static void
nat_changed(struct medclient *m)
{
	if (!ev_is_active(&m->nat.rep_timer)) {
		ev_timer_set(&m->nat.rep_timer, NAT_REPORT_DELAY, 0.);
		ev_timer_start(m->loop, &m->nat.rep_timer);
	}
}

static void
rep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;
	struct msg msg;

	if (!m->nat.active || !report_differs(&m->nat.seen, &m->nat.sent))
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_NAT_REPORT;
	msg.u.nat_report = m->nat.seen;
	if (med_send(m, &msg) < 0)
		return;
	m->nat.sent = m->nat.seen;
	log_debug("event=nat_report test_id=%u replies=0x%02x tests=0x%02x lifetime=0x%02x "
	    "hairpin=%u", m->nat.seen.test_id, m->nat.seen.replies, m->nat.seen.tests,
	    m->nat.seen.lifetime_seen, m->nat.seen.hairpin);
}

static void
p1_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	if (!m->nat.active || m->nat.p1_left <= 0)
		return;
	nat_probe_to(m, 0);
	if (--m->nat.p1_left > 0) {
		ev_timer_set(w, NAT_P1_GAP, 0.);
		ev_timer_start(loop, w);
	}
}

static void
p2_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;
	uint8_t i;

	if (!m->nat.active || m->nat.p2_left <= 0)
		return;
	for (i = 1; i < m->nat.plan.n_targets; i++)
		nat_probe_to(m, i);
	if (--m->nat.p2_left > 0) {
		ev_timer_set(w, NAT_P2_GAP, 0.);
		ev_timer_start(loop, w);
	}
}

static void
hp_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	if (!m->nat.active || m->nat.seen.hairpin != NAT_HP_UNTRIED)
		return;
	m->nat.seen.hairpin = NAT_HP_LOST;
	log_debug("event=nat_hairpin result=lost test_id=%u", m->nat.plan.test_id);
	nat_changed(m);
}

/* Target 0 told us where we are: see whether the NAT sends a packet to that address back in. */
static void
hairpin_send(struct medclient *m, const struct endpoint *seen)
{
	uint8_t pkt[UDP_HAIRPIN_LEN];
	int n;

	m->nat.hp_sent = 1;
	m->nat.hp_to = *seen;
	randombytes_buf(&m->nat.hp_nonce, sizeof(m->nat.hp_nonce));
	if ((n = hairpin_encode(m->nat.hp_nonce, pkt, sizeof(pkt))) > 0)
		transport_send(m->tp, seen, pkt, (size_t)n);
	ev_timer_set(&m->nat.hp_timer, NAT_HAIRPIN_WAIT, 0.);
	ev_timer_start(m->loop, &m->nat.hp_timer);
}

void
med_nat_init(struct medclient *m)
{
	ev_timer_init(&m->nat.p1_timer, p1_cb, 0., 0.);
	ev_timer_init(&m->nat.p2_timer, p2_cb, 0., 0.);
	ev_timer_init(&m->nat.hp_timer, hp_cb, 0., 0.);
	ev_timer_init(&m->nat.rep_timer, rep_cb, 0., 0.);
	m->nat.p1_timer.data = m->nat.p2_timer.data = m->nat.hp_timer.data =
	    m->nat.rep_timer.data = m;
}

void
med_nat_stop(struct medclient *m)
{
	ev_timer_stop(m->loop, &m->nat.p1_timer);
	ev_timer_stop(m->loop, &m->nat.p2_timer);
	ev_timer_stop(m->loop, &m->nat.hp_timer);
	ev_timer_stop(m->loop, &m->nat.rep_timer);
	m->nat.active = 0;
}

void
med_nat_plan(struct medclient *m, const struct msg_nat_plan *p)
{
	/* Without the peer socket or the token there is nothing meaningful to probe with. */
	if (!m->tp || !m->have_token || p->n_targets < 1 || p->n_targets > NAT_MAX_TARGETS) {
		m->dropped_msgs++;
		log_debug("event=nat_plan_ignored test_id=%u", p->test_id);
		return;
	}
	/* A new plan replaces the old one: its budget, timers and observations go with it. */
	med_nat_stop(m);
	m->nat.active = 1;
	m->nat.plan = *p;
	m->nat.probed = 0;
	m->nat.hp_sent = 0;
	memset(&m->nat.seen, 0, sizeof(m->nat.seen));
	m->nat.seen.test_id = p->test_id;
	m->nat.seen.local_port = transport_port(m->tp);
	m->nat.sent = m->nat.seen;
	m->nat.p1_left = NAT_P1_PROBES;
	m->nat.p2_left = p->n_targets > 1 ? NAT_P2_BURSTS : 0;
	log_info("event=nat_plan test_id=%u targets=%u phase2_ms=%u", p->test_id,
	    (unsigned)p->n_targets, p->phase2_ms);
	p1_cb(m->loop, &m->nat.p1_timer, 0);
	if (m->nat.p2_left > 0) {
		ev_timer_set(&m->nat.p2_timer, p->phase2_ms / 1000.0, 0.);
		ev_timer_start(m->loop, &m->nat.p2_timer);
	}
}

int
med_nat_reply(struct medclient *m, const struct endpoint *from, const struct endpoint *seen)
{
	uint8_t i, was;
	int match = 0;

	if (!m->nat.active)
		return 0;
	was = m->nat.seen.replies;
	for (i = 0; i < m->nat.plan.n_targets; i++) {
		if (!ep_same_addr(from, &m->nat.plan.targets[i]) || !(m->nat.probed & (1u << i)))
			continue;
		match = 1;
		m->nat.seen.replies |= (uint8_t)(1u << i);
		if (i == 0 && !m->nat.hp_sent && seen->addr && seen->port)
			hairpin_send(m, seen);
	}
	if (m->nat.seen.replies != was)
		nat_changed(m);
	return match;
}

static int
from_target_addr(const struct medclient *m, const struct endpoint *from)
{
	uint8_t i;

	for (i = 0; i < m->nat.plan.n_targets; i++)
		if (m->nat.plan.targets[i].addr == from->addr && !ep_is_v6(from))
			return 1;
	return 0;
}

static void
nat_test_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	struct nat_test t;
	struct msg_nat_report before = m->nat.seen;

	if (nat_test_decode(pkt, len, &t) < 0 || !m->nat.active ||
	    t.test_id != m->nat.plan.test_id || t.nonce != m->nat.plan.nonce ||
	    !from_target_addr(m, from)) {
		m->dropped_msgs++;
		return;
	}
	if (t.kind == NAT_TEST_OTHER_PORT || t.kind == NAT_TEST_OTHER_ADDR)
		m->nat.seen.tests |= (uint8_t)(1u << (t.kind - 1));
	else if (t.kind == NAT_TEST_LIFETIME && t.seq < NAT_LIFETIME_STEPS)
		m->nat.seen.lifetime_seen |= (uint8_t)(1u << t.seq);
	if (report_differs(&before, &m->nat.seen))
		nat_changed(m);
}

static void
hairpin_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len)
{
	uint64_t nonce;

	/* After the deadline the answer stays "lost": 2 means "not back within 2 s". */
	if (hairpin_decode(pkt, len, &nonce) < 0 || !m->nat.active || !m->nat.hp_sent ||
	    m->nat.seen.hairpin != NAT_HP_UNTRIED || !ep_same_addr(from, &m->nat.hp_to) ||
	    nonce != m->nat.hp_nonce) {
		m->dropped_msgs++;
		return;
	}
	ev_timer_stop(m->loop, &m->nat.hp_timer);
	m->nat.seen.hairpin = NAT_HP_BACK;
	log_debug("event=nat_hairpin result=back test_id=%u", m->nat.plan.test_id);
	nat_changed(m);
}

void
med_nat_udp(struct medclient *m, const struct endpoint *from, const uint8_t *pkt, size_t len)
{
	if (len > 0 && pkt[0] == UDP_NAT_TEST)
		nat_test_receive(m, from, pkt, len);
	else if (len > 0 && pkt[0] == UDP_HAIRPIN)
		hairpin_receive(m, from, pkt, len);
	else
		m->dropped_msgs++;
}

void
med_nat_info(struct medclient *m, const struct msg_nat_info *info)
{
	char ep[EP_STR_LEN];

	m->nat.info = *info;
	m->nat.have_info = 1;
	log_info("event=nat_info udp=%s mapping=%s filtering=%s ports=%s step=%u hairpin=%s "
	    "lifetime_s=%u lifetime_max_s=%u public=%s addrs=%u", nat_udp_name(info->udp),
	    nat_mapping_name(info->mapping), nat_filtering_name(info->filtering),
	    nat_ports_name(info->ports), info->step, nat_hairpin_name(info->hairpin),
	    info->lifetime_s, info->lifetime_max_s,
	    ep_str(&info->public_ep, ep), info->addrs);
	if (m->ops->nat_info)
		m->ops->nat_info(m->ops_arg, info);
}

int
medclient_nat_info(const struct medclient *m, struct msg_nat_info *out)
{
	if (!m || !m->nat.have_info)
		return -1;
	*out = m->nat.info;
	return 0;
}
