/*
 * natprobe: the server half of one node's NAT classification (docs/PROTOCOL.md 3.1), as a
 * small state machine driven by natprobe_start / _probe / _report / _timer. Timeline from
 * the plan (t = 0): phase 1 probes to target 0 (the first one triggers the kind-1/2 tests,
 * twice 50 ms apart); phase 2 from t = 1 s; NAT_INFO when every target was observed or at
 * t = 2.5 s (t = 4 s and "blocked" if nothing was observed); kind-3 tests from the last
 * target after 3, 6, 12, 24, 48 s of quiet, each judged lost NATPROBE_LT_GRACE_S after it
 * went out unless a report has it; NAT_INFO again whenever the result changes.
 * Must not touch: sockets, the event loop, membership (mediator.c).
 */
#include "config.h"
#include "server/natprobe.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip4.h"
#include "base/keyid.h"
#include "base/log.h"
#include "server/natclass.h"

struct natprobe {                        /* owned by the node's mediator session */
	struct natprobe_io io;
	void *conn;
	char node[KEY_SHORT_LEN];
	const struct natsock *socks;    /* borrowed */
	int n_socks;
	struct endpoint tcp_local;
	uint16_t hello_port;

	int active;                     /* test_id / nonce are a plan the node got */
	uint16_t test_id;
	uint32_t nonce;
	double t_plan;
	uint8_t n_targets;
	struct endpoint targets[NAT_MAX_TARGETS];
	int sock_of[NAT_MAX_TARGETS];
	int kind1_from, kind2_from;     /* target index the kind-1 / kind-2 tests leave from */

	uint8_t observed;
	struct endpoint obs[NAT_MAX_TARGETS];
	uint8_t tests_sent;
	int test_rounds;                /* kind-1/2 rounds sent: 0..2 */
	int lt_seq;                     /* next kind-3 seq to send */
	uint8_t lt_due;
	int have_report;
	struct msg_nat_report report;
	int info_sent;
	struct msg_nat_info last;
	int info_ever;                  /* last holds a NAT_INFO sent on this connection */
	double delay;                   /* one-way delay estimate, s; 0 unknown */

	/* Deadlines (0: none); the transport's one timer is armed for the earliest. */
	double retest_at, settle_at, lt_next_at, restart_at;
	double lt_check_at[NAT_LIFETIME_STEPS];
};

/* ---- targets ---- */

static int
find_sock(const struct natsock *socks, int n, int listen, int offset)
{
	int i;

	for (i = 0; i < n; i++)
		if (socks[i].listen == listen && socks[i].offset == offset)
			return i;
	return -1;
}

int
natprobe_targets(const struct natsock *socks, int n_socks, const struct endpoint *tcp_local,
    struct endpoint targets[NAT_MAX_TARGETS], int sock_of[NAT_MAX_TARGETS])
{
	/* (role, offset) in plan order; role 0 = A (the listen the node connected to), 1 = B. */
	static const int order[NAT_MAX_TARGETS][2] = {
		{ 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 }, { 0, 2 }, { 1, 2 },
	};
	int listen[2] = { -1, -1 }, i, k, n = 0;

	/* A: the listen whose base socket shares the connection's port (and address, unless it is
	 * a wildcard); its UDP port is where the node's UDP_PROBEs go, so it must be target 0. */
	for (i = 0; i < n_socks; i++)
		if (socks[i].offset == 0 && socks[i].port == tcp_local->port &&
		    (socks[i].addr == 0 || socks[i].addr == tcp_local->addr)) {
			listen[0] = socks[i].listen;
			break;
		}
	if (listen[0] < 0)
		return 0;
	for (i = 0; i < n_socks; i++)
		if (socks[i].offset == 0 && socks[i].listen != listen[0]) {
			listen[1] = socks[i].listen;
			break;
		}
	for (k = 0; k < NAT_MAX_TARGETS; k++) {
		int role = order[k][0], s;
		uint32_t addr;

		if (listen[role] < 0 || (s = find_sock(socks, n_socks, listen[role], order[k][1])) < 0)
			continue;
		addr = socks[s].addr != 0 ? socks[s].addr : tcp_local->addr;
		if (addr == 0) {
			if (n == 0)
				return 0;
			continue;
		}
		targets[n].addr = addr;
		targets[n].port = socks[s].port;
		sock_of[n++] = s;
	}
	return n;
}

/* ---- life cycle ---- */

struct natprobe *
natprobe_new(const struct natprobe_io *io, void *conn, const char *node,
    const struct natsock *socks, int n_socks, const struct endpoint *tcp_local,
    uint16_t hello_port)
{
	struct natprobe *np;

	if ((np = calloc(1, sizeof(*np))) == NULL)
		return NULL;
	np->io = *io;
	np->conn = conn;
	snprintf(np->node, sizeof(np->node), "%s", node);
	np->socks = socks;
	np->n_socks = n_socks;
	np->tcp_local = *tcp_local;
	np->hello_port = hello_port;
	/* Random start: a test_id from an earlier connection of the same node never matches. */
	randombytes_buf(&np->test_id, sizeof(np->test_id));
	return np;
}

void
natprobe_free(struct natprobe *np)
{
	free(np);
}

static void
arm(struct natprobe *np, double now)
{
	double next = 0;
	int s;

#define EARLIER(t) do { if ((t) > 0 && (next == 0 || (t) < next)) next = (t); } while (0)
	EARLIER(np->retest_at);
	EARLIER(np->settle_at);
	EARLIER(np->lt_next_at);
	EARLIER(np->restart_at);
	for (s = 0; s < NAT_LIFETIME_STEPS; s++)
		EARLIER(np->lt_check_at[s]);
#undef EARLIER
	np->io.timer(np->io.arg, np->conn, next == 0 ? -1.0 : next > now ? next - now : 0.0);
}

/* ---- sending ---- */

static void
send_test(struct natprobe *np, int from_target, uint8_t kind, uint8_t seq,
    const struct endpoint *to)
{
	struct nat_test t = { np->test_id, kind, seq, np->nonce };
	uint8_t buf[UDP_NAT_TEST_LEN];

	if (nat_test_encode(&t, buf, sizeof(buf)) == UDP_NAT_TEST_LEN)
		np->io.udp_send(np->io.arg, np->sock_of[from_target], to, buf, sizeof(buf));
}

/* Kind 1 from A:P+1 and kind 2 from B:Q to the endpoint target 0 observed. */
static void
send_filter_tests(struct natprobe *np)
{
	if (np->kind1_from >= 0) {
		send_test(np, np->kind1_from, NAT_TEST_OTHER_PORT, 0, &np->obs[0]);
		np->tests_sent |= 1u << (NAT_TEST_OTHER_PORT - 1);
	}
	if (np->kind2_from >= 0) {
		send_test(np, np->kind2_from, NAT_TEST_OTHER_ADDR, 0, &np->obs[0]);
		np->tests_sent |= 1u << (NAT_TEST_OTHER_ADDR - 1);
	}
	np->test_rounds++;
}

/* Field by field: the struct has padding, which assignment need not copy. */
static int
info_equal(const struct msg_nat_info *a, const struct msg_nat_info *b)
{
	return a->udp == b->udp && a->mapping == b->mapping && a->filtering == b->filtering &&
	    a->ports == b->ports && a->step == b->step && a->hairpin == b->hairpin &&
	    a->lifetime_s == b->lifetime_s && a->lifetime_max_s == b->lifetime_max_s &&
	    a->public_ep.addr == b->public_ep.addr && a->public_ep.port == b->public_ep.port &&
	    a->addrs == b->addrs;
}

static void
classify_and_send(struct natprobe *np)
{
	struct natclass_in in;
	struct msg_nat_info info;
	struct msg m;
	char pub[EP_STR_LEN];

	memset(&in, 0, sizeof(in));
	in.n_targets = np->n_targets;
	memcpy(in.targets, np->targets, sizeof(in.targets));
	in.observed = np->observed;
	memcpy(in.obs, np->obs, sizeof(in.obs));
	in.local_port = np->have_report && np->report.local_port != 0 ? np->report.local_port :
	    np->hello_port;
	in.tests_sent = np->tests_sent;
	in.lifetime_due = np->lt_due;
	in.have_report = np->have_report;
	in.report = np->report;
	natclass_classify(&in, &info);
	if (np->info_sent && info_equal(&info, &np->last))
		return;
	np->info_sent = 1;
	np->info_ever = 1;
	np->last = info;
	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_INFO;
	m.u.nat_info = info;
	np->io.send(np->io.arg, np->conn, &m);
	ep_str(&info.public_ep, pub);
	log_info("event=nat_classified node=%s udp=%s mapping=%s filtering=%s ports=%s step=%u "
	    "hairpin=%s lifetime_s=%u public=%s lifetime_max_s=%u addrs=%u test_id=%u", np->node,
	    nat_udp_name(info.udp), nat_mapping_name(info.mapping),
	    nat_filtering_name(info.filtering), nat_ports_name(info.ports), info.step,
	    nat_hairpin_name(info.hairpin), info.lifetime_s, pub, info.lifetime_max_s,
	    info.addrs, np->test_id);
}

/* ---- events ---- */

void
natprobe_start(struct natprobe *np, double now)
{
	struct msg m;
	int i;

	if (np->active && now - np->t_plan < NATPROBE_RESTART_MIN_S) {
		np->restart_at = np->t_plan + NATPROBE_RESTART_MIN_S;
		arm(np, now);
		return;
	}
	np->active = 0;
	np->observed = np->tests_sent = np->lt_due = 0;
	np->test_rounds = np->lt_seq = np->have_report = np->info_sent = 0;
	np->retest_at = np->settle_at = np->lt_next_at = np->restart_at = 0;
	memset(np->lt_check_at, 0, sizeof(np->lt_check_at));
	np->n_targets = (uint8_t)natprobe_targets(np->socks, np->n_socks, &np->tcp_local,
	    np->targets, np->sock_of);
	if (np->n_targets == 0) {
		log_debug("event=nat_skipped node=%s reason=no_targets", np->node);
		arm(np, now);
		return;
	}
	/* Kind 1 needs A:P+1; kind 2 a B:Q on another address (else it proves nothing more). */
	np->kind1_from = np->kind2_from = -1;
	for (i = 1; i < np->n_targets; i++) {
		const struct natsock *s = &np->socks[np->sock_of[i]];
		const struct natsock *a = &np->socks[np->sock_of[0]];

		if (s->listen == a->listen && s->offset == 1 && np->kind1_from < 0)
			np->kind1_from = i;
		if (s->listen != a->listen && s->offset == 0 && np->kind2_from < 0 &&
		    np->targets[i].addr != np->targets[0].addr)
			np->kind2_from = i;
	}
	np->test_id++;
	randombytes_buf(&np->nonce, sizeof(np->nonce));
	np->t_plan = now;
	np->active = 1;
	np->settle_at = now + NATPROBE_PHASE2_MS / 1000.0 + NATPROBE_SETTLE_S;

	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_PLAN;
	m.u.nat_plan.test_id = np->test_id;
	m.u.nat_plan.nonce = np->nonce;
	m.u.nat_plan.phase2_ms = NATPROBE_PHASE2_MS;
	m.u.nat_plan.n_targets = np->n_targets;
	memcpy(m.u.nat_plan.targets, np->targets, sizeof(np->targets));
	np->io.send(np->io.arg, np->conn, &m);
	log_debug("event=nat_plan node=%s test_id=%u targets=%u", np->node, np->test_id,
	    np->n_targets);
	arm(np, now);
}

int
natprobe_probe(struct natprobe *np, const struct nat_probe *p, int sock,
    const struct endpoint *from, double now)
{
	uint8_t bit, all;

	if (!np->active || p->test_id != np->test_id || p->target >= np->n_targets ||
	    np->sock_of[p->target] != sock)
		return -1;
	bit = (uint8_t)(1u << p->target);
	all = (uint8_t)((1u << np->n_targets) - 1);
	/* The first observation per target counts: the second burst repeats the same flows. */
	if (!(np->observed & bit)) {
		np->observed |= bit;
		np->obs[p->target] = *from;
		if (p->target == 0 && np->test_rounds == 0) {
			/* The node sends its first phase-1 probe as soon as the plan arrives: plan
			 * out, probe back is one round trip (hole punching times its start by it). */
			np->delay = (now - np->t_plan) / 2;
			send_filter_tests(np);
			if (np->tests_sent)
				np->retest_at = now + NATPROBE_RETEST_S;
		}
		if (np->info_sent || np->observed == all) {
			np->settle_at = 0;
			classify_and_send(np);
		}
	}
	/* Lifetime: the quiet gaps count from the node's last probe to the last target T. While
	 * no kind-3 test has gone yet, every probe to T restarts the first gap. */
	if (np->n_targets >= 2 && p->target == np->n_targets - 1 && np->lt_seq == 0)
		np->lt_next_at = now + natclass_gap_s(0);
	arm(np, now);
	return 0;
}

int
natprobe_report(struct natprobe *np, const struct msg_nat_report *r, double now)
{
	if (!np->active || r->test_id != np->test_id)
		return -1;
	np->have_report = 1;
	np->report = *r;
	if (np->info_sent)
		classify_and_send(np);
	(void)now;
	return 0;
}

void
natprobe_timer(struct natprobe *np, double now)
{
	int s, changed = 0;

	if (np->restart_at > 0 && now >= np->restart_at) {
		np->active = 0;         /* not too recent any more: start anew */
		natprobe_start(np, now);
		return;
	}
	if (np->retest_at > 0 && now >= np->retest_at) {
		np->retest_at = 0;
		send_filter_tests(np);
	}
	if (np->settle_at > 0 && now >= np->settle_at) {
		double blocked_at = np->t_plan + NATPROBE_PHASE2_MS / 1000.0 + NATPROBE_BLOCKED_S;

		if (np->observed || now >= blocked_at) {
			np->settle_at = 0;
			changed = 1;
		} else {
			np->settle_at = blocked_at;
		}
	}
	if (np->lt_next_at > 0 && now >= np->lt_next_at && np->lt_seq < NAT_LIFETIME_STEPS) {
		int t = np->n_targets - 1;

		send_test(np, t, NAT_TEST_LIFETIME, (uint8_t)np->lt_seq, &np->obs[t]);
		np->lt_check_at[np->lt_seq] = now + NATPROBE_LT_GRACE_S;
		np->lt_seq++;
		np->lt_next_at = np->lt_seq < NAT_LIFETIME_STEPS ? now + natclass_gap_s(
		    (unsigned)np->lt_seq) : 0;
	}
	for (s = 0; s < NAT_LIFETIME_STEPS; s++)
		if (np->lt_check_at[s] > 0 && now >= np->lt_check_at[s]) {
			np->lt_check_at[s] = 0;
			np->lt_due |= (uint8_t)(1u << s);
			changed |= np->info_sent;
		}
	if (changed)
		classify_and_send(np);
	arm(np, now);
}

int
natprobe_info(const struct natprobe *np, struct msg_nat_info *info)
{
	/* A new plan clears info_sent but the node still has the previous NAT_INFO. */
	if (!np->info_ever)
		return 0;
	*info = np->last;
	return 1;
}

double
natprobe_delay(const struct natprobe *np)
{
	return np->delay;
}
