/*
 * sock: see sock.h. The engine's send is the transport's (queued, flushed once per loop pass);
 * a forwarded datagram is copied once, from the receive buffer into the send ring.
 */
#include "config.h"
#include "relay/sock.h"

#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "core/transport.h"
#include "relay/tcp.h"

enum { EXPIRE_EVERY_S = 10 };

struct relay_sock {
	struct ev_loop *loop;
	struct transport *tp;
	struct relay_engine *eng;
	struct relay_tcp *tcp;          /* NULL: no TCP transport */
	ev_timer expire, stats;
};

static void
engine_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct relay_sock *r = arg;

	(void)transport_send(r->tp, to, pkt, len);
}

static const struct relay_engine_ops engine_ops = { .send = engine_send };

static void
recv_cb(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct relay_sock *r = arg;

	relay_engine_input(r->eng, from, pkt, len, ev_now(r->loop), (uint32_t)time(NULL));
}

static void
expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay_sock *r = w->data;

	(void)loop;
	(void)revents;
	relay_engine_expire(r->eng, (uint32_t)time(NULL));
}

static void
stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	relay_sock_log_stats(w->data);
}

struct relay_sock *
relay_sock_new(struct ev_loop *loop, uint32_t addr, uint16_t port, int tcp_port,
    const uint8_t key[RELAY_KEY_LEN], const struct relay_limits *lim, double stats_interval)
{
	struct relay_sock *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		log_warnx("event=relay_alloc_failed");
		return NULL;
	}
	r->loop = loop;
	if ((r->eng = relay_engine_new(key, lim, &engine_ops, r)) == NULL ||
	    (r->tp = transport_new_at(loop, addr, port, recv_cb, r)) == NULL) {
		relay_engine_free(r->eng);
		free(r);
		return NULL;
	}
	/* Best effort: UDP is the relay; without its TCP transport only UDP-blocked nodes lose
	 * (the port is logged by relay_tcp_new, and relay_sock_tcp_port says 0). */
	if (tcp_port >= 0)
		r->tcp = relay_tcp_new(loop, r->tp, addr, (uint16_t)tcp_port);
	ev_timer_init(&r->expire, expire_cb, EXPIRE_EVERY_S, EXPIRE_EVERY_S);
	r->expire.data = r;
	ev_timer_start(loop, &r->expire);
	ev_timer_init(&r->stats, stats_cb, stats_interval, stats_interval);
	r->stats.data = r;
	if (stats_interval > 0)
		ev_timer_start(loop, &r->stats);
	return r;
}

void
relay_sock_free(struct relay_sock *r)
{
	if (r == NULL)
		return;
	ev_timer_stop(r->loop, &r->expire);
	ev_timer_stop(r->loop, &r->stats);
	relay_tcp_free(r->tcp);
	transport_free(r->tp);
	relay_engine_free(r->eng);
	free(r);
}

uint16_t
relay_sock_port(const struct relay_sock *r)
{
	return transport_port(r->tp);
}

uint16_t
relay_sock_tcp_port(const struct relay_sock *r)
{
	return relay_tcp_port(r->tcp);
}

void
relay_sock_set_key(struct relay_sock *r, const uint8_t key[RELAY_KEY_LEN])
{
	relay_engine_set_key(r->eng, key);
}

void
relay_sock_get_stats(const struct relay_sock *r, struct relay_stats *st)
{
	relay_engine_get_stats(r->eng, st);
}

void
relay_sock_log_stats(const struct relay_sock *r)
{
	struct relay_stats st;
	struct transport_stats ts;
	struct relay_tcp_stats tcp = { 0, 0, 0, 0, 0 };

	relay_engine_get_stats(r->eng, &st);
	transport_get_stats(r->tp, &ts);
	if (r->tcp)
		relay_tcp_get_stats(r->tcp, &tcp);
	log_info("event=relay_stats port=%u pairs=%llu nodes=%llu binds=%llu packets=%llu "
	    "bytes=%llu "
	    "pings=%llu drop_malformed=%llu drop_auth=%llu drop_expired=%llu drop_replay=%llu "
	    "drop_unbound=%llu drop_rate=%llu drop_full=%llu tx_dropped=%llu tcp_streams=%u "
	    "tcp_accepted=%llu tcp_refused=%llu",
	    transport_port(r->tp), (unsigned long long)st.pairs, (unsigned long long)st.sources,
	    (unsigned long long)st.binds,
	    (unsigned long long)st.packets, (unsigned long long)st.bytes,
	    (unsigned long long)st.pings, (unsigned long long)st.drop_malformed,
	    (unsigned long long)st.drop_auth, (unsigned long long)st.drop_expired,
	    (unsigned long long)st.drop_replay, (unsigned long long)st.drop_unbound,
	    (unsigned long long)st.drop_rate, (unsigned long long)st.drop_full,
	    (unsigned long long)ts.tx_dropped, tcp.streams, (unsigned long long)tcp.accepted,
	    (unsigned long long)(tcp.refused_source + tcp.refused_full));
}
