/*
 * conn: the mediator connection's state machine (medclient_int.h has the timers and states).
 * IDLE -> resolve + TCP connect -> CONNECTING (Noise handshake in ctrlchan) -> HELLO sent ->
 * ONLINE at WELCOME; any failure goes back to IDLE and schedules a retry with backoff.
 * Failover: the connection string may list several instances of one mediator (one key, one
 * shared store). The client starts at a random one, so a community's daemons spread over the
 * instances, and moves to the next one after every failed attempt or lost connection; an
 * ONLINE connection stays where it is. The view and the peers are kept across the switch
 * exactly as across a reconnect to the same instance, so P2P sessions never notice.
 * Messages from the server are dispatched from here to the view, the requests, natprobe and
 * punch.
 *
 * Owns: the ctrlchan and its socket, the retry / ping / idle timers, our confirmed and wanted
 * nick (view.c also updates them from our own MEMBER record, where a SET_NICK shows up).
 * Must not: remove anything from the view or revoke anyone while the server is away.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/tcppunch.h"
#include "core/transport.h"
#include "medclient/medclient_int.h"
#include "mproto/ctrlchan.h"
#include "mproto/ctrldial.h"

static void med_connect(struct medclient *m);
static void med_disconnected(struct medclient *m, const char *why);

int
med_send(struct medclient *m, const struct msg *msg)
{
	if (!m->ch || ctrlchan_send(m->ch, msg) < 0) {
		log_warnx("event=mediator_send_failed type=%s", msg_type_name(msg->type));
		return -1;
	}
	return 0;
}

int
medclient_relay_rtt(struct medclient *m, const struct msg_relay_rtt *r)
{
	struct msg msg;

	if (m == NULL || m->state != MED_ONLINE)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_RELAY_RTT;
	msg.u.relay_rtt = *r;
	return med_send(m, &msg);
}

static void
med_send_ping(struct medclient *m)
{
	struct msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_PING;
	msg.u.ping.nonce = ++m->ping_nonce;
	med_send(m, &msg);
}

static void
ping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	med_send_ping(w->data);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct medclient *m = w->data;

	log_warnx("event=mediator_idle_timeout seconds=%.0f", IDLE_TIMEOUT);
	med_disconnected(m, "no traffic from the server");
}

static void
on_ready(void *arg, const uint8_t remote_static[KEY_LEN])
{
	struct medclient *m = arg;
	struct msg msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = MSG_HELLO;
	msg.u.hello.version = SHOAL_PROTO_VERSION;
	/* Before the first WELCOME we may want nothing ("" keeps the server's): then ask for
	 * what the server confirmed last time, which is what it has anyway. */
	snprintf(msg.u.hello.nick, sizeof(msg.u.hello.nick), "%s",
	    m->wanted_nick[0] ? m->wanted_nick : m->nick);
	if (m->tp)
		msg.u.hello.udp_port = transport_port(m->tp);
	msg.u.hello.n_local = med_cand_locals(m, msg.u.hello.local);
	if (med_send(m, &msg) < 0) {
		med_disconnected(m, "cannot send HELLO");
		return;
	}
	m->state = MED_HELLO;
	ev_timer_again(m->loop, &m->idle_timer);
	ev_timer_again(m->loop, &m->ping_timer);
	log_debug("event=mediator_handshake_done local_endpoints=%u",
	    (unsigned)msg.u.hello.n_local);
}

static void
on_welcome(struct medclient *m, const struct msg_welcome *w)
{
	char ip[IP4_STR_LEN];

	if (m->state != MED_HELLO) {
		m->dropped_msgs++;
		return;
	}
	m->state = MED_ONLINE;
	m->backoff = BACKOFF_MIN;
	if (m->ops->address)
		m->ops->address(m->ops_arg, w->address, w->prefix_len);
	snprintf(m->nick, sizeof(m->nick), "%s", w->nick);
	log_info("event=mediator_connected server=%s:%u addr=%s/%u nick=\"%s\"",
	    m->cfg.server.addr[m->cur_addr].host, (unsigned)m->cfg.server.addr[m->cur_addr].port,
	    ip4_str(w->address, ip), w->prefix_len, w->nick);

	/* The refresh burst follows; the PONG to this PING marks its end. */
	med_view_refresh_begin(m);
	med_send_ping(m);
	med_probe_start(m, w->udp_token);
	med_cand_welcome(m);
	med_chat_welcome(m);
}

static void
on_msg(void *arg, const struct msg *msg)
{
	struct medclient *m = arg;
	struct msg pong;

	ev_timer_again(m->loop, &m->idle_timer);
	if (msg->type != MSG_NETWORK && msg->type != MSG_MEMBER)
		med_view_refresh_end(m);
	if (m->state != MED_ONLINE && msg->type != MSG_WELCOME && msg->type != MSG_PING &&
	    msg->type != MSG_PONG) {
		m->dropped_msgs++;
		log_debug("event=mediator_msg_before_welcome type=%s", msg_type_name(msg->type));
		return;
	}
	switch (msg->type) {
	case MSG_WELCOME:
		on_welcome(m, &msg->u.welcome);
		break;
	case MSG_RESULT:
		med_req_result(m, &msg->u.result);
		break;
	case MSG_NETWORK:
		med_view_network(m, &msg->u.network);
		break;
	case MSG_MEMBER:
		med_view_member(m, &msg->u.member);
		break;
	case MSG_MEMBER_GONE:
		med_view_member_gone(m, &msg->u.member_gone);
		break;
	case MSG_NETWORK_GONE:
		med_view_network_gone(m, &msg->u.network_gone);
		break;
	case MSG_PING:
		memset(&pong, 0, sizeof(pong));
		pong.type = MSG_PONG;
		pong.u.ping.nonce = msg->u.ping.nonce;
		med_send(m, &pong);
		break;
	case MSG_PONG:
		break;
	case MSG_NAT_PLAN:
		med_nat_plan(m, &msg->u.nat_plan);
		break;
	case MSG_NAT_INFO:
		med_nat_info(m, &msg->u.nat_info);
		break;
	case MSG_PUNCH:
		med_punch(m, &msg->u.punch);
		break;
	case MSG_CHAT:
		med_chat_msg(m, &msg->u.chat);
		break;
	case MSG_CHAT_REFUSED:
		med_chat_refused(m, &msg->u.chat_refused);
		break;
	case MSG_RELAYS:
		if (m->ops->relays)
			m->ops->relays(m->ops_arg, &msg->u.relays);
		break;
	case MSG_RELAY_GRANT:
		if (m->ops->relay_grant)
			m->ops->relay_grant(m->ops_arg, &msg->u.relay_grant);
		break;
	default:
		/* HELLO / REQUEST / NAT_REPORT are client-to-server messages. */
		m->dropped_msgs++;
		log_debug("event=mediator_unexpected_msg type=%s", msg_type_name(msg->type));
		break;
	}
}

static void
on_close(void *arg, const char *why)
{
	med_disconnected(arg, why);
}

static const struct ctrlchan_cbs med_cbs = { on_ready, on_msg, on_close };

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	med_connect(w->data);
}

static void
schedule_retry(struct medclient *m)
{
	double delay = ctrldial_backoff(&m->backoff, BACKOFF_MAX);

	/* Whatever failed, the next attempt goes to the next instance. */
	m->cur_addr = (m->cur_addr + 1) % m->cfg.server.n_addr;

	ev_timer_stop(m->loop, &m->retry_timer);
	ev_timer_set(&m->retry_timer, delay, 0.);
	ev_timer_start(m->loop, &m->retry_timer);
	log_info("event=mediator_retry in=%.1fs server=%s:%u", delay,
	    m->cfg.server.addr[m->cur_addr].host, (unsigned)m->cfg.server.addr[m->cur_addr].port);
}

/*
 * The connection ended (or never came up). The view and the peers stay as they are: P2P keeps
 * working while the mediator is away. Safe from inside ctrlchan callbacks (the free is deferred).
 */
static void
med_disconnected(struct medclient *m, const char *why)
{
	int was_online = m->state == MED_ONLINE;

	if (m->ch) {
		ctrlchan_free(m->ch);
		m->ch = NULL;
	}
	m->state = MED_IDLE;
	med_probe_stop(m);
	med_nat_stop(m);
	med_view_refresh_abort(m);
	ev_timer_stop(m->loop, &m->ping_timer);
	ev_timer_stop(m->loop, &m->idle_timer);
	if (was_online)
		log_warnx("event=mediator_disconnected reason=\"%s\"", why);
	else
		log_warnx("event=mediator_connect_failed reason=\"%s\"", why);
	med_req_fail_all(m, "mediator connection lost");
	if (m->started)
		schedule_retry(m);
}

/* Resolves the configured host (IPv4) on every attempt, so a changed DNS record is followed.
 * getaddrinfo blocks the loop; acceptable for a host that is usually a literal or cached. */
static int
med_resolve(struct medclient *m)
{
	const struct conn_addr *a = &m->cfg.server.addr[m->cur_addr];
	char err[128];

	if (ctrldial_resolve(a->host, a->port, &m->server, err, sizeof(err)) < 0) {
		log_warnx("event=mediator_resolve_failed host=%s error=\"%s\"", a->host, err);
		return -1;
	}
	m->have_server = 1;
	return 0;
}

static uint16_t
local_port(int fd)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0 || me.sin_family != AF_INET)
		return 0;
	return ntohs(me.sin_port);
}

static void
med_connect(struct medclient *m)
{
	char ep[EP_STR_LEN], why[160];
	int fd;

	if (m->ch || !m->started)
		return;
	if (med_resolve(m) < 0) {
		schedule_retry(m);
		return;
	}
	log_info("event=mediator_connecting server=%s",
	    ep_str(&m->server, ep));
	/* Shareable port: TCP hole punching connects from it too, so the NAT mapping the
	 * mediator sees for this connection is the one the punches use (PROTOCOL.md 3.3). */
	if ((fd = tcppunch_socket(0)) < 0) {
		log_warn("event=mediator_socket_failed");
		schedule_retry(m);
		return;
	}
	m->tcp_port = local_port(fd);
	if (ctrldial_connect(fd, &m->server, why, sizeof(why)) < 0) {
		close(fd);
		med_disconnected(m, why);
		return;
	}
	m->ch = ctrlchan_new(m->loop, fd, 1, m->key, m->cfg.server.pub, &med_cbs, m);
	if (!m->ch) {
		close(fd);
		med_disconnected(m, "cannot create control channel");
		return;
	}
	m->state = MED_CONNECTING;
}

/* ---- public ---- */

struct medclient *
medclient_new(struct ev_loop *loop, const struct medclient_config *cfg,
    const struct noise_keypair *key, struct transport *tp, const struct medclient_ops *ops,
    void *arg)
{
	struct medclient *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->loop = loop;
	m->cfg = *cfg;
	m->key = key;
	m->tp = tp;
	m->ops = ops;
	m->ops_arg = arg;
	snprintf(m->wanted_nick, sizeof(m->wanted_nick), "%s", cfg->nick);
	m->backoff = BACKOFF_MIN;
	if (cfg->server.n_addr == 0 || cfg->server.n_addr > CONN_MAX_ADDRS) {
		free(m);
		return NULL;
	}
	m->cur_addr = randombytes_uniform(cfg->server.n_addr);
	ev_timer_init(&m->retry_timer, retry_cb, 0., 0.);
	ev_timer_init(&m->ping_timer, ping_cb, 0., PING_INTERVAL);
	ev_timer_init(&m->idle_timer, idle_cb, 0., IDLE_TIMEOUT);
	m->retry_timer.data = m->ping_timer.data = m->idle_timer.data = m;
	med_view_init(m);
	med_probe_init(m);
	med_nat_init(m);
	med_req_init(m);
	med_chat_init(m);
	return m;
}

/*
 * Pending request callbacks are dropped without being called: at shutdown their owners
 * (control connections) may already be gone. Nobody is revoked: the peer table goes too.
 */
void
medclient_free(struct medclient *m)
{
	if (!m)
		return;
	m->started = 0;
	if (m->ch)
		ctrlchan_free(m->ch);
	ev_timer_stop(m->loop, &m->retry_timer);
	ev_timer_stop(m->loop, &m->ping_timer);
	ev_timer_stop(m->loop, &m->idle_timer);
	med_probe_stop(m);
	med_nat_stop(m);
	med_req_free(m);
	med_chat_free(m);
	med_view_free(m);
	med_authz_free(m);
	med_punch_free(m);
	free(m);
}

void
medclient_start(struct medclient *m)
{
	if (m->started)
		return;
	m->started = 1;
	med_connect(m);
}

uint16_t
medclient_tcp_port(const struct medclient *m)
{
	return m != NULL && m->ch != NULL ? m->tcp_port : 0;
}

int
medclient_server(const struct medclient *m, char *out, size_t cap)
{
	const struct conn_addr *a;

	if (m == NULL || m->state != MED_ONLINE)
		return -1;
	a = &m->cfg.server.addr[m->cur_addr];
	snprintf(out, cap, "%s:%u", a->host, (unsigned)a->port);
	return 0;
}

int
medclient_connected(const struct medclient *m)
{
	return m && m->state == MED_ONLINE;
}

const char *
medclient_nick(const struct medclient *m)
{
	return m ? m->nick : "";
}
