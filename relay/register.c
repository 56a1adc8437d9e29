/*
 * register: see register.h. States: idle (waiting to retry) -> connecting (Noise handshake in
 * ctrlchan) -> hello sent -> registered at RELAY_WELCOME. The mediator is pinged every
 * PING_EVERY s; nothing from it for IDLE_TIMEOUT s ends the connection.
 */
#include "config.h"
#include "relay/register.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "mproto/ctrlchan.h"
#include "mproto/ctrldial.h"

#define BACKOFF_MIN CTRLDIAL_BACKOFF_MIN
#define BACKOFF_MAX CTRLDIAL_BACKOFF_MAX
#define PING_EVERY 15.0
#define IDLE_TIMEOUT 45.0

enum reg_state { REG_IDLE, REG_CONNECTING, REG_HELLO, REG_REGISTERED };

struct relay_register {
	struct ev_loop *loop;
	struct relay_register_config cfg;
	const struct noise_keypair *key;
	struct relay_register_ops ops;
	struct ctrlchan *ch;
	enum reg_state state;
	double backoff;
	unsigned cur_addr;      /* index into cfg.server.addr */
	uint64_t ping_nonce;
	int started;
	ev_timer retry, stats, ping, idle;
};

static void reg_connect(struct relay_register *r);

static int
reg_send(struct relay_register *r, const struct msg *m)
{
	return r->ch != NULL ? ctrlchan_send(r->ch, m) : -1;
}

static void
reg_down(struct relay_register *r, const char *why, int refused)
{
	double delay;

	if (r->ch) {
		ctrlchan_free(r->ch);
		r->ch = NULL;
	}
	if (r->state == REG_REGISTERED)
		log_warnx("event=mediator_disconnected reason=\"%s\" forwarding=continues", why);
	else if (!refused)
		log_warnx("event=mediator_connect_failed reason=\"%s\"", why);
	r->state = REG_IDLE;
	ev_timer_stop(r->loop, &r->stats);
	ev_timer_stop(r->loop, &r->ping);
	ev_timer_stop(r->loop, &r->idle);
	if (!r->started)
		return;
	/* A refusal will not change by itself soon: wait the longest. */
	if (refused)
		r->backoff = BACKOFF_MAX;
	delay = ctrldial_backoff(&r->backoff, BACKOFF_MAX);
	r->cur_addr = (r->cur_addr + 1) % r->cfg.server.n_addr;
	ev_timer_stop(r->loop, &r->retry);
	ev_timer_set(&r->retry, delay, 0.);
	ev_timer_start(r->loop, &r->retry);
	log_info("event=mediator_retry in=%.1fs", delay);
}

static void
send_stats(struct relay_register *r)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAY_STATS;
	r->ops.stats(r->ops.arg, &m.u.relay_stats);
	if (reg_send(r, &m) < 0)
		reg_down(r, "cannot send RELAY_STATS", 0);
}

static void
on_ready(void *arg, const uint8_t remote_static[KEY_LEN])
{
	struct relay_register *r = arg;
	struct msg m;

	(void)remote_static;            /* ctrlchan checked it is the pinned server key */
	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAY_HELLO;
	m.u.relay_hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.relay_hello.name, sizeof(m.u.relay_hello.name), "%s", r->cfg.name);
	m.u.relay_hello.udp = r->cfg.udp;
	m.u.relay_hello.tcp_port = r->cfg.tcp_port;
	if (reg_send(r, &m) < 0) {
		reg_down(r, "cannot send RELAY_HELLO", 0);
		return;
	}
	r->state = REG_HELLO;
	ev_timer_again(r->loop, &r->idle);
	ev_timer_again(r->loop, &r->ping);
}

static void
on_msg(void *arg, const struct msg *m)
{
	struct relay_register *r = arg;
	struct msg pong;

	ev_timer_again(r->loop, &r->idle);
	switch (m->type) {
	case MSG_RELAY_WELCOME:
		if (r->state != REG_HELLO)
			break;
		r->state = REG_REGISTERED;
		r->backoff = BACKOFF_MIN;
		log_info("event=relay_registered id=%u name=%s server=%s:%u",
		    m->u.relay_welcome.relay_id, r->cfg.name, r->cfg.server.addr[r->cur_addr].host,
		    (unsigned)r->cfg.server.addr[r->cur_addr].port);
		r->ops.welcome(r->ops.arg, m->u.relay_welcome.relay_id,
		    m->u.relay_welcome.relay_key);
		send_stats(r);
		if (r->ch)
			ev_timer_again(r->loop, &r->stats);
		break;
	case MSG_RESULT:
		/* The mediator refused us (the text says why, e.g. the key is not allowed). */
		log_warnx("event=relay_refused reason=\"%s\"", m->u.result.text);
		reg_down(r, "refused", 1);
		break;
	case MSG_PING:
		memset(&pong, 0, sizeof(pong));
		pong.type = MSG_PONG;
		pong.u.ping.nonce = m->u.ping.nonce;
		(void)reg_send(r, &pong);
		break;
	default:
		break;
	}
}

static void
on_close(void *arg, const char *why)
{
	reg_down(arg, why, 0);
}

static const struct ctrlchan_cbs reg_cbs = { on_ready, on_msg, on_close };

static void
reg_connect(struct relay_register *r)
{
	const struct conn_addr *a = &r->cfg.server.addr[r->cur_addr];
	struct endpoint to;
	char err[160], ep[IP4_EP_STR_LEN];
	int fd;

	if (r->ch || !r->started)
		return;
	if (ctrldial_resolve(a->host, a->port, &to, err, sizeof(err)) < 0) {
		log_warnx("event=mediator_resolve_failed host=%s error=\"%s\"", a->host, err);
		reg_down(r, "resolve", 0);
		return;
	}
	log_info("event=mediator_connecting server=%s", ip4_ep_str(to.addr, to.port, ep));
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		reg_down(r, "socket", 0);
		return;
	}
	if (ctrldial_connect(fd, &to, err, sizeof(err)) < 0) {
		close(fd);
		reg_down(r, err, 0);
		return;
	}
	if ((r->ch = ctrlchan_new(r->loop, fd, 1, r->key, r->cfg.server.pub, &reg_cbs, r)) ==
	    NULL) {
		close(fd);
		reg_down(r, "cannot create control channel", 0);
		return;
	}
	r->state = REG_CONNECTING;
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reg_connect(w->data);
}

static void
stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	send_stats(w->data);
}

static void
ping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay_register *r = w->data;
	struct msg m;

	(void)loop;
	(void)revents;
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	m.u.ping.nonce = ++r->ping_nonce;
	if (reg_send(r, &m) < 0)
		reg_down(r, "cannot send PING", 0);
}

static void
idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reg_down(w->data, "no traffic from the server", 0);
}

struct relay_register *
relay_register_new(struct ev_loop *loop, const struct relay_register_config *cfg,
    const struct noise_keypair *key, const struct relay_register_ops *ops)
{
	struct relay_register *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->cfg = *cfg;
	r->key = key;
	r->ops = *ops;
	r->backoff = BACKOFF_MIN;
	if (cfg->server.n_addr == 0 || cfg->server.n_addr > CONN_MAX_ADDRS) {
		free(r);
		return NULL;
	}
	r->cur_addr = randombytes_uniform(cfg->server.n_addr);
	ev_timer_init(&r->retry, retry_cb, 0., 0.);
	ev_timer_init(&r->stats, stats_cb, 0., RELAY_STATS_EVERY);
	ev_timer_init(&r->ping, ping_cb, 0., PING_EVERY);
	ev_timer_init(&r->idle, idle_cb, 0., IDLE_TIMEOUT);
	r->retry.data = r->stats.data = r->ping.data = r->idle.data = r;
	return r;
}

void
relay_register_start(struct relay_register *r)
{
	r->started = 1;
	reg_connect(r);
}

void
relay_register_free(struct relay_register *r)
{
	if (r == NULL)
		return;
	r->started = 0;
	if (r->ch)
		ctrlchan_free(r->ch);
	ev_timer_stop(r->loop, &r->retry);
	ev_timer_stop(r->loop, &r->stats);
	ev_timer_stop(r->loop, &r->ping);
	ev_timer_stop(r->loop, &r->idle);
	free(r);
}
