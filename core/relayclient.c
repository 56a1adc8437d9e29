/*
 * relayclient: the pool's RTTs and the grants' links (relayclient.h). One timer (RC_TICK)
 * drives everything: pool pings, liveness pings of relays in use, BIND retries and renewals,
 * the TCP fallback and the RTT reports. The relay forwards a pair's DATA only once both sides
 * are bound, so a grant is given to the peer layer (ops->path) only when a BIND_ACK says the
 * other side is bound too; until then the BIND is resent every RC_BIND_FAST_S (a handful of
 * datagrams), so both sides learn it within a round trip of the later one.
 * Owns: struct rc_relay (the pool), struct rc_grant (per peer), their links and TCP streams.
 */
#include "config.h"
#include "core/relayclient.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "base/endpoint.h"
#include "base/ip4.h"
#include "base/keyid.h"
#include "base/log.h"
#include "core/tcplink.h"
#include "core/transport.h"
#include "mproto/relaymsg.h"

/* A full-size overlay packet, sealed and behind the RELAY_DATA header, still fits one datagram
 * (OVERLAY_MTU is what lwIP uses, netstack/). */
_Static_assert(OVERLAY_MTU + UDP_DATA_OVERHEAD + RELAY_DATA_HDR <= UDP_MAX_PAYLOAD,
    "a full-size overlay packet does not fit through a relay");

#define RC_TICK                 0.1
#define RC_POOL_PONG_WAIT       2.0     /* s: a pool ping not answered by then is a miss */
#define RC_BIND_FAST_S          0.3     /* s: BIND again while the other side is not bound */
#define RC_TCP_RETRY_S          5.0
#define RC_POOL_PING_FAST_S     1.0     /* s: pool pings until RC_SAMPLES were tried */
#define RC_PROBE_WAIT           3.0     /* s: a TCP connect probe not done by then failed */

struct rc_relay {
	struct msg_relay_info info;
	double samples[RC_SAMPLES];             /* RTTs, ms, a ring */
	unsigned n_samples, next_sample;
	uint64_t nonce;                         /* of the ping out, 0: none */
	double ping_sent;
	double ping_sent_mono;
	unsigned misses;                        /* pool pings in a row without a PONG */
	int dead;                               /* a grant found it silent (RC_USE_DEAD_S) */
	int reported;                           /* last value reported, -1: never */
	/* When UDP to it gets no answer (our UDP is blocked): RTTs of TCP connects to its TCP
	 * port (SYN to SYN-ACK is one round trip), so a node without UDP still ranks the pool. */
	double tcp_samples[RC_SAMPLES];
	unsigned n_tcp, next_tcp;
	int tcp_ok;                             /* the last connect probe succeeded */
	double tcp_probe_at;                    /* ev_now of the last probe, 0: never */
};

/* A TCP connect probe in flight (struct rc_relay is copied when the pool changes, so the
 * watcher lives here and finds its relay by id when it completes). */
struct rc_probe {
	struct relayclient *rc;
	uint16_t relay_id;
	int fd;                                 /* -1: slot free */
	double started_mono;
	ev_io w;
	ev_timer timeout;
};

struct rc_grant {
	uint8_t key[KEY_LEN];                   /* hash key (hh) */
	uint64_t pair;                          /* hash key (hh_pair) */
	struct relayclient *rc;
	struct msg_relay_grant g;
	char id[KEY_SHORT_LEN];
	uint16_t via;                           /* our link for the peer layer */
	uint64_t counter;                       /* of the last BIND */
	double granted, bind_sent, heard, ping_sent;
	double asked;                           /* first ping since we last heard it, 0: none */
	double last_tx;                         /* last DATA sent: the peer layer uses it */
	uint64_t nonce;                         /* liveness ping out, 0: none */
	int acked, peer_bound, given, dead, ever_acked;
	struct tcplink *tcp;                    /* the relay over TCP, or NULL */
	int tcp_fd;                             /* a connect in progress, or -1 */
	ev_io tcp_w;
	double tcp_tried;
	UT_hash_handle hh, hh_pair;
};

struct relayclient {
	struct ev_loop *loop;
	struct transport *tp;
	const struct relayclient_ops *ops;
	void *arg;
	ev_timer tick;
	struct rc_relay pool[RELAY_POOL_MAX];
	size_t n_pool;
	struct rc_grant *grants;                /* by key */
	struct rc_grant *by_pair;
	double reported_at;                     /* 0: report at the next chance */
	uint64_t last_counter;
	struct rc_probe probes[RELAY_POOL_MAX];
};

static double
rc_now(const struct relayclient *rc)
{
	return ev_now(rc->loop);
}

/* RTTs are measured with the clock itself: ev_now is the start of the loop iteration, which
 * may be far behind after a busy one. */
static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct rc_relay *
relay_by_id(struct relayclient *rc, uint16_t id)
{
	size_t i;

	for (i = 0; i < rc->n_pool; i++)
		if (rc->pool[i].info.id == id)
			return &rc->pool[i];
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
median(const double *samples, unsigned n)
{
	double s[RC_SAMPLES];

	if (n == 0)
		return -1;
	memcpy(s, samples, n * sizeof(s[0]));
	qsort(s, n, sizeof(s[0]), cmp_double);
	return (int)(s[n / 2] + 0.5);
}

static int
relay_udp_ok(const struct rc_relay *r)
{
	return r->misses < RC_POOL_MISSES;
}

/* Median RTT in ms over UDP, or over TCP connects when UDP gets no answer; -1 unknown. */
static int
relay_rtt(const struct rc_relay *r)
{
	if (relay_udp_ok(r))
		return median(r->samples, r->n_samples);
	return r->tcp_ok ? median(r->tcp_samples, r->n_tcp) : -1;
}

static int
relay_reachable(const struct rc_relay *r)
{
	return !r->dead && (relay_udp_ok(r) || r->tcp_ok);
}

/* The value to report: the median, RELAY_RTT_UNREACHABLE, or -1 (nothing known yet). */
static int
relay_value(const struct rc_relay *r)
{
	int rtt = relay_rtt(r);

	if (!relay_reachable(r))
		return RELAY_RTT_UNREACHABLE;
	if (rtt < 0)
		return -1;
	return rtt >= RELAY_RTT_UNREACHABLE ? RELAY_RTT_UNREACHABLE - 1 : rtt;
}

/* Worth telling the mediator: first value, reachability changed, or moved > 20 % and > 5 ms. */
static int
relay_changed(const struct rc_relay *r)
{
	int v = relay_value(r), old = r->reported, d;

	if (v < 0)
		return 0;
	if (old < 0 || (v == RELAY_RTT_UNREACHABLE) != (old == RELAY_RTT_UNREACHABLE))
		return 1;
	d = v > old ? v - old : old - v;
	return d > 5 && d * 5 > old;
}

static void
report(struct relayclient *rc, int force)
{
	struct msg_relay_rtt m;
	size_t i;
	int v, any = 0;

	for (i = 0; i < rc->n_pool && !any; i++)
		any = relay_changed(&rc->pool[i]);
	if (!any && !(force && rc->n_pool > 0))
		return;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < rc->n_pool; i++) {
		if ((v = relay_value(&rc->pool[i])) < 0)
			continue;
		m.rtt[m.n].id = rc->pool[i].info.id;
		m.rtt[m.n].rtt_ms = (uint16_t)v;
		m.n++;
		rc->pool[i].reported = v;
	}
	if (m.n == 0)
		return;
	rc->reported_at = rc_now(rc);
	log_debug("event=relay_rtt_report relays=%u", (unsigned)m.n);
	rc->ops->report(rc->arg, &m);
}

/* Where this grant's relay datagrams go: the TCP stream once there is one, else UDP. */
static struct endpoint
grant_relay_ep(const struct rc_grant *gr)
{
	struct endpoint ep;

	if (gr->tcp != NULL)
		return tcplink_endpoint(gr->tcp);
	memset(&ep, 0, sizeof(ep));
	ep.addr = gr->g.udp.addr;
	ep.port = gr->g.udp.port;
	return ep;
}

static uint64_t
random_nonce(void)
{
	uint64_t n;

	do
		randombytes_buf(&n, sizeof(n));
	while (n == 0);
	return n;
}

static void
send_ping(struct relayclient *rc, const struct endpoint *to, uint64_t nonce)
{
	uint8_t b[RELAY_PING_LEN];

	if (relay_ping_encode(UDP_RELAY_PING, nonce, b, sizeof(b)) > 0)
		(void)transport_send(rc->tp, to, b, sizeof(b));
}

/*
 * Counters only ever grow, also across restarts of the daemon (a relay keeps a side bound to
 * the highest counter it saw): microseconds of the wall clock, or one more than the last.
 */
static uint64_t
next_counter(struct relayclient *rc)
{
	struct timeval tv;
	uint64_t c;

	gettimeofday(&tv, NULL);
	c = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	rc->last_counter = c > rc->last_counter ? c : rc->last_counter + 1;
	return rc->last_counter;
}

static void
send_bind(struct rc_grant *gr)
{
	struct relayclient *rc = gr->rc;
	struct relay_bind b;
	struct endpoint to = grant_relay_ep(gr);
	uint8_t pkt[RELAY_BIND_LEN];

	b.pair = gr->g.pair;
	b.side = gr->g.side;
	b.expiry = gr->g.expiry;
	b.counter = gr->counter = next_counter(rc);
	gr->bind_sent = rc_now(rc);
	if (relay_bind_encode(&b, gr->g.secret, pkt, sizeof(pkt)) > 0)
		(void)transport_send(rc->tp, &to, pkt, sizeof(pkt));
}

/* transport link: one peer datagram to the relay as RELAY_DATA. */
static int
link_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct rc_grant *gr = arg;
	struct transport *tp = gr->rc->tp;
	struct endpoint ep = grant_relay_ep(gr);
	uint8_t buf[UDP_MAX_PAYLOAD], *out;

	(void)to;
	if (len == 0 || len > UDP_MAX_PAYLOAD - RELAY_DATA_HDR)
		return -1;
	gr->last_tx = rc_now(gr->rc);
	if (gr->tcp != NULL) {
		/* A TCP link frames from its caller's buffer, not a send slot. */
		(void)relay_data_header(gr->g.pair, buf, sizeof(buf));
		memcpy(buf + RELAY_DATA_HDR, pkt, len);
		return transport_send(tp, &ep, buf, RELAY_DATA_HDR + len);
	}
	if ((out = transport_alloc(tp, &ep)) == NULL)
		return -1;
	(void)relay_data_header(gr->g.pair, out, UDP_MAX_PAYLOAD);
	memcpy(out + RELAY_DATA_HDR, pkt, len);
	transport_commit(tp, RELAY_DATA_HDR + len);
	return 0;
}

static const struct transport_link_ops link_ops_udp = { link_send, "relay-udp" };
static const struct transport_link_ops link_ops_tcp = { link_send, "relay-tcp" };

/* The endpoint the peer layer uses for this grant. */
static struct endpoint
grant_path_ep(const struct rc_grant *gr)
{
	struct endpoint ep;

	memset(&ep, 0, sizeof(ep));
	ep.addr = gr->g.udp.addr;
	ep.port = gr->g.udp.port;
	ep.via = gr->via;
	return ep;
}

/* (Re)registers the link (its kind says udp or tcp) and, once both sides are bound, tells the
 * peer layer about it. */
static void
grant_link(struct rc_grant *gr)
{
	struct relayclient *rc = gr->rc;
	struct endpoint ep;

	if (gr->via != 0)
		transport_link_del(rc->tp, gr->via);
	gr->via = transport_link_add(rc->tp, gr->tcp ? &link_ops_tcp : &link_ops_udp, gr);
	if (gr->via == 0) {
		gr->given = 0;
		rc->ops->path(rc->arg, gr->key, NULL);
		return;
	}
	if (gr->given) {
		ep = grant_path_ep(gr);
		rc->ops->path(rc->arg, gr->key, &ep);
	}
}

static void
tcp_close(struct rc_grant *gr)
{
	if (gr->tcp_fd >= 0) {
		ev_io_stop(gr->rc->loop, &gr->tcp_w);
		close(gr->tcp_fd);
		gr->tcp_fd = -1;
	}
	if (gr->tcp != NULL) {
		tcplink_free(gr->tcp);
		gr->tcp = NULL;
	}
}

static void
grant_free(struct rc_grant *gr, int tell)
{
	struct relayclient *rc = gr->rc;

	HASH_DELETE(hh, rc->grants, gr);
	HASH_DELETE(hh_pair, rc->by_pair, gr);
	tcp_close(gr);
	if (gr->via != 0)
		transport_link_del(rc->tp, gr->via);
	if (tell && gr->given)
		rc->ops->path(rc->arg, gr->key, NULL);
	sodium_memzero(gr->g.secret, sizeof(gr->g.secret));
	free(gr);
}

static void
tcp_closed(void *arg, struct tcplink *l, const char *why)
{
	struct rc_grant *gr = arg;

	(void)l;
	log_info("event=relay_tcp_closed peer=%s relay=%u why=%s", gr->id,
	    (unsigned)gr->g.relay_id, why);
	tcplink_free(gr->tcp);
	gr->tcp = NULL;
	gr->acked = gr->peer_bound = 0;
	grant_link(gr);
	send_bind(gr);
}

/* A connect to addr:port started on a new non-blocking socket: its fd, or -1 with errno. The
 * grants' TCP transport and the pool's timed probes both start this way. */
static int
connect_start(uint32_t addr, uint16_t port)
{
	struct sockaddr_in sin;
	int fd, e;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(addr);
	sin.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A started connect is done: 0 when it succeeded, else its error. */
static int
connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

static const struct tcplink_ops tcp_ops = { tcp_closed };

static void
tcp_connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rc_grant *gr = w->data;
	struct endpoint remote;
	int err, fd = gr->tcp_fd;

	(void)revents;
	ev_io_stop(loop, w);
	gr->tcp_fd = -1;
	if ((err = connect_result(fd)) != 0) {
		log_info("event=relay_tcp_failed peer=%s relay=%u err=%d", gr->id,
		    (unsigned)gr->g.relay_id, err);
		close(fd);
		return;
	}
	memset(&remote, 0, sizeof(remote));
	remote.addr = gr->g.udp.addr;
	remote.port = gr->g.tcp_port;
	if ((gr->tcp = tcplink_new(loop, gr->rc->tp, fd, &remote, &tcp_ops, gr)) == NULL)
		return;
	log_info("event=relay_tcp_connected peer=%s relay=%u", gr->id, (unsigned)gr->g.relay_id);
	gr->acked = gr->peer_bound = 0;
	grant_link(gr);
	send_bind(gr);
}

static void
tcp_connect(struct rc_grant *gr)
{
	int fd;

	gr->tcp_tried = rc_now(gr->rc);
	if ((fd = connect_start(gr->g.udp.addr, gr->g.tcp_port)) < 0) {
		log_info("event=relay_tcp_failed peer=%s relay=%u errno=%d", gr->id,
		    (unsigned)gr->g.relay_id, errno);
		return;
	}
	log_info("event=relay_tcp_connect peer=%s relay=%u port=%u", gr->id,
	    (unsigned)gr->g.relay_id, (unsigned)gr->g.tcp_port);
	gr->tcp_fd = fd;
	ev_io_init(&gr->tcp_w, tcp_connect_cb, fd, EV_WRITE);
	gr->tcp_w.data = gr;
	ev_io_start(gr->rc->loop, &gr->tcp_w);
}

/* The relay in use went silent, or answers again: the mediator hears it at once. */
static void
grant_set_dead(struct rc_grant *gr, int dead)
{
	struct relayclient *rc = gr->rc;
	struct rc_relay *r = relay_by_id(rc, gr->g.relay_id);

	if (gr->dead == dead)
		return;
	gr->dead = dead;
	log_info("event=%s peer=%s relay=%u silent_s=%.1f", dead ? "relay_silent" :
	    "relay_answers", gr->id, (unsigned)gr->g.relay_id, rc_now(rc) - gr->heard);
	if (r != NULL) {
		r->dead = dead;
		report(rc, 0);
	}
}

/* In use: the peer layer sent through it lately (its periodic pings do, every refresh
 * interval, as long as the relay is its path). */
static int
grant_in_use(const struct rc_grant *gr, double now)
{
	return gr->last_tx > 0 && now - gr->last_tx < RC_IN_USE_S;
}

static void
grant_tick(struct rc_grant *gr, double now)
{
	struct relayclient *rc = gr->rc;
	struct endpoint to;
	int use = grant_in_use(gr, now);

	if (!gr->acked || !gr->peer_bound) {
		if (now - gr->bind_sent >= (gr->acked ? RC_BIND_FAST_S : RC_BIND_RETRY_S))
			send_bind(gr);
	} else if (now - gr->bind_sent >= (use ? RC_REBIND_S : RC_REBIND_IDLE_S)) {
		send_bind(gr);
	}
	/* UDP to the relay does not work (nothing acknowledged): its TCP transport. */
	if (!gr->acked && gr->tcp == NULL && gr->tcp_fd < 0 && gr->g.tcp_port != 0 &&
	    now - gr->granted >= RC_TCP_AFTER_S && now - gr->tcp_tried >= RC_TCP_RETRY_S)
		tcp_connect(gr);
	/* A relay in use (or not bound yet) is watched closely; a standby one now and then, and
	 * not at all while the relay answered another ping of ours lately (relay_answered): the
	 * standby grants of a big network share one ping a relay instead of one each. */
	if (now - gr->ping_sent >= (use || !gr->acked ? RC_USE_PING_S : RC_IDLE_PING_S) &&
	    (use || !gr->acked || gr->dead || now - gr->heard >= RC_IDLE_PING_S)) {
		to = grant_relay_ep(gr);
		gr->nonce = random_nonce();
		gr->ping_sent = now;
		if (gr->asked == 0)
			gr->asked = now;
		send_ping(rc, &to, gr->nonce);
	}
	/* Silent: the relay died, or (never acknowledged) our UDP to it does not work: that is
	 * only the relay's fault once its TCP transport had its chance too. */
	if (gr->asked != 0 && now - gr->asked >= (use || !gr->acked ? RC_USE_DEAD_S :
	    RC_IDLE_DEAD_S) && (gr->ever_acked || gr->g.tcp_port == 0 ||
	    now - gr->granted >= RC_TCP_AFTER_S + 2 * RC_BIND_RETRY_S))
		grant_set_dead(gr, 1);
}

/* A probe of relay id started at started (mono_now) came out ok or not. */
static void
probe_record(struct relayclient *rc, uint16_t id, double started, int ok)
{
	struct rc_relay *r = relay_by_id(rc, id);

	if (r == NULL)          /* left the pool meanwhile */
		return;
	if (ok) {
		r->tcp_samples[r->next_tcp] = (mono_now() - started) * 1000.0;
		r->next_tcp = (r->next_tcp + 1) % RC_SAMPLES;
		if (r->n_tcp < RC_SAMPLES)
			r->n_tcp++;
	}
	if (r->tcp_ok != ok)
		log_info("event=relay_tcp_probe relay=%u name=%s reachable=%d", r->info.id,
		    r->info.name, ok);
	r->tcp_ok = ok;
}

static void
probe_end(struct rc_probe *pb, int ok)
{
	struct relayclient *rc = pb->rc;

	ev_io_stop(rc->loop, &pb->w);
	ev_timer_stop(rc->loop, &pb->timeout);
	close(pb->fd);
	pb->fd = -1;
	probe_record(rc, pb->relay_id, pb->started_mono, ok);
}

static void
probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rc_probe *pb = w->data;

	(void)loop;
	(void)revents;
	probe_end(pb, connect_result(pb->fd) == 0);
}

static void
probe_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	probe_end(w->data, 0);
}

/* A connect to r's TCP port, timed: the pool's RTT when UDP is blocked. */
static void
probe_start(struct relayclient *rc, struct rc_relay *r, double now)
{
	struct rc_probe *pb = NULL;
	size_t i;
	int fd;

	r->tcp_probe_at = now;
	for (i = 0; i < RELAY_POOL_MAX; i++) {
		if (rc->probes[i].fd >= 0 && rc->probes[i].relay_id == r->info.id)
			return;         /* still running */
		if (rc->probes[i].fd < 0 && pb == NULL)
			pb = &rc->probes[i];
	}
	if (pb == NULL)
		return;
	pb->started_mono = mono_now();
	if ((fd = connect_start(r->info.udp.addr, r->info.tcp_port)) < 0) {
		probe_record(rc, r->info.id, pb->started_mono, 0);
		return;
	}
	pb->rc = rc;
	pb->relay_id = r->info.id;
	pb->fd = fd;
	ev_io_init(&pb->w, probe_io_cb, fd, EV_WRITE);
	pb->w.data = pb;
	ev_io_start(rc->loop, &pb->w);
	ev_timer_init(&pb->timeout, probe_timeout_cb, RC_PROBE_WAIT, 0);
	pb->timeout.data = pb;
	ev_timer_start(rc->loop, &pb->timeout);
}

static void
pool_tick(struct relayclient *rc, double now)
{
	struct rc_relay *r;
	struct endpoint to;
	size_t i;

	for (i = 0; i < rc->n_pool; i++) {
		r = &rc->pool[i];
		if (r->nonce != 0 && now - r->ping_sent >= RC_POOL_PONG_WAIT) {
			r->nonce = 0;
			if (++r->misses == RC_POOL_MISSES)
				log_info("event=relay_unreachable relay=%u name=%s", r->info.id,
				    r->info.name);
		}
		/* The first few at once a second, so a new pool has its medians soon. One ping at
		 * a time: a new one before the last was answered or missed would never count a
		 * miss (the fast interval is shorter than the wait), so a relay that never answers
		 * would never be unreachable. */
		if (r->nonce == 0 && (r->ping_sent == 0 || now - r->ping_sent >= (r->n_samples + r->misses <
		    RC_SAMPLES ? RC_POOL_PING_FAST_S : RC_POOL_PING_S))) {
			memset(&to, 0, sizeof(to));
			to.addr = r->info.udp.addr;
			to.port = r->info.udp.port;
			r->nonce = random_nonce();
			r->ping_sent = now;
			r->ping_sent_mono = mono_now();
			send_ping(rc, &to, r->nonce);
		}
		/* UDP gets no answer: time TCP connects instead (IPv4 relays have a TCP port). */
		if (!relay_udp_ok(r) && r->info.tcp_port != 0 && !ep_is_v6(&r->info.udp) &&
		    (r->tcp_probe_at == 0 || now - r->tcp_probe_at >= (r->n_tcp < RC_SAMPLES ?
		    RC_POOL_PING_FAST_S : RC_POOL_PING_S)))
			probe_start(rc, r, now);
	}
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relayclient *rc = w->data;
	struct rc_grant *gr, *tmp;
	double now = ev_now(loop);

	(void)revents;
	pool_tick(rc, now);
	HASH_ITER(hh, rc->grants, gr, tmp)
		grant_tick(gr, now);
	report(rc, rc->reported_at == 0 || now - rc->reported_at >= RC_REPORT_S);
}

struct relayclient *
relayclient_new(struct ev_loop *loop, struct transport *tp, const struct relayclient_ops *ops,
    void *arg)
{
	struct relayclient *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return NULL;
	rc->loop = loop;
	rc->tp = tp;
	rc->ops = ops;
	rc->arg = arg;
	for (size_t i = 0; i < RELAY_POOL_MAX; i++)
		rc->probes[i].fd = -1;
	ev_timer_init(&rc->tick, tick_cb, RC_TICK, RC_TICK);
	rc->tick.data = rc;
	return rc;
}

void
relayclient_free(struct relayclient *rc)
{
	struct rc_grant *gr, *tmp;

	if (rc == NULL)
		return;
	HASH_ITER(hh, rc->grants, gr, tmp)
		grant_free(gr, 0);
	for (size_t i = 0; i < RELAY_POOL_MAX; i++)
		if (rc->probes[i].fd >= 0)
			probe_end(&rc->probes[i], 0);
	ev_timer_stop(rc->loop, &rc->tick);
	free(rc);
}

static void
tick_update(struct relayclient *rc)
{
	if (rc->n_pool > 0 || rc->grants != NULL) {
		if (!ev_is_active(&rc->tick))
			ev_timer_start(rc->loop, &rc->tick);
	} else {
		ev_timer_stop(rc->loop, &rc->tick);
	}
}

void
relayclient_pool(struct relayclient *rc, const struct msg_relays *m)
{
	struct rc_relay old[RELAY_POOL_MAX], *o;
	size_t i, j, n_old = rc->n_pool;

	memcpy(old, rc->pool, sizeof(old));
	rc->n_pool = 0;
	for (i = 0; i < m->n && i < RELAY_POOL_MAX; i++) {
		struct rc_relay *r = &rc->pool[rc->n_pool++];

		o = NULL;
		for (j = 0; j < n_old; j++)
			if (old[j].info.id == m->relays[i].id)
				o = &old[j];
		/* Same relay at the same place: keep its measurements. */
		if (o != NULL && o->info.udp.addr == m->relays[i].udp.addr &&
		    o->info.udp.port == m->relays[i].udp.port) {
			*r = *o;
		} else {
			memset(r, 0, sizeof(*r));
			r->reported = -1;
		}
		r->info = m->relays[i];
		r->reported = -1;
	}
	rc->reported_at = 0;
	log_info("event=relay_pool relays=%zu", rc->n_pool);
	tick_update(rc);
}

void
relayclient_announce(struct relayclient *rc, const uint8_t key[KEY_LEN])
{
	struct rc_grant *gr;
	struct endpoint ep;

	HASH_FIND(hh, rc->grants, key, KEY_LEN, gr);
	if (gr != NULL && gr->given && gr->via != 0) {
		ep = grant_path_ep(gr);
		rc->ops->path(rc->arg, gr->key, &ep);
	}
}

void
relayclient_forget(struct relayclient *rc, const uint8_t key[KEY_LEN])
{
	struct rc_grant *gr;

	HASH_FIND(hh, rc->grants, key, KEY_LEN, gr);
	if (gr != NULL)
		grant_free(gr, 0);
	tick_update(rc);
}

void
relayclient_grant(struct relayclient *rc, const struct msg_relay_grant *g)
{
	struct rc_grant *gr;
	char ep[IP4_EP_STR_LEN];
	double now = rc_now(rc);

	HASH_FIND(hh, rc->grants, g->peer, KEY_LEN, gr);
	if (g->relay_id == 0) {
		if (gr != NULL) {
			log_info("event=relay_revoked peer=%s relay=%u", gr->id,
			    (unsigned)gr->g.relay_id);
			grant_free(gr, 1);
		}
		tick_update(rc);
		return;
	}
	if (gr != NULL && gr->g.relay_id == g->relay_id && gr->g.pair == g->pair &&
	    gr->g.udp.addr == g->udp.addr && gr->g.udp.port == g->udp.port &&
	    gr->g.side == g->side) {
		/* A renewal (new expiry and secret) or a new reason: bind with it now. */
		gr->g = *g;
		send_bind(gr);
		return;
	}
	if (gr != NULL)
		grant_free(gr, 1);      /* another relay: the new one is bound from scratch */
	if ((gr = calloc(1, sizeof(*gr))) == NULL) {
		log_warn("event=relay_grant_failed");
		return;
	}
	memcpy(gr->key, g->peer, KEY_LEN);
	gr->rc = rc;
	gr->g = *g;
	gr->pair = g->pair;
	gr->tcp_fd = -1;
	gr->granted = gr->heard = now;
	key_short(g->peer, gr->id);
	HASH_ADD(hh, rc->grants, key, KEY_LEN, gr);
	HASH_ADD(hh_pair, rc->by_pair, pair, sizeof(gr->pair), gr);
	log_info("event=relay_grant peer=%s relay=%u relay_ep=%s side=%u reason=%s", gr->id,
	    (unsigned)g->relay_id, ip4_ep_str(g->udp.addr, g->udp.port, ep), (unsigned)g->side,
	    relay_reason_name(g->reason));
	grant_link(gr);
	/* The mediator knows our UDP is blocked: straight to the relay's TCP transport. */
	if (g->reason == RELAY_WHY_UDP_BLOCKED && g->tcp_port != 0)
		tcp_connect(gr);
	else
		send_bind(gr);
	tick_update(rc);
}

/* The relay at from answered a ping of ours: it is alive for every bound grant reached there
 * (the same endpoint, so the same socket and NAT mapping too). */
static void
relay_answered(struct relayclient *rc, const struct endpoint *from, double now)
{
	struct rc_grant *gr, *tmp;
	struct endpoint ep;

	HASH_ITER(hh, rc->grants, gr, tmp) {
		if (!gr->acked || gr->dead)
			continue;
		ep = grant_relay_ep(gr);
		if (!ep_equal(&ep, from))
			continue;
		gr->heard = now;
		gr->asked = 0;
	}
}

static void
on_pong(struct relayclient *rc, const struct endpoint *from, uint64_t nonce)
{
	struct rc_grant *gr, *tmp;
	double now = rc_now(rc);
	size_t i;

	for (i = 0; i < rc->n_pool; i++) {
		struct rc_relay *r = &rc->pool[i];

		if (r->nonce != nonce || from->via != 0 || from->addr != r->info.udp.addr ||
		    from->port != r->info.udp.port)
			continue;
		r->nonce = 0;
		r->misses = 0;
		r->samples[r->next_sample] = (mono_now() - r->ping_sent_mono) * 1000.0;
		r->next_sample = (r->next_sample + 1) % RC_SAMPLES;
		if (r->n_samples < RC_SAMPLES)
			r->n_samples++;
		relay_answered(rc, from, now);
		return;
	}
	HASH_ITER(hh, rc->grants, gr, tmp) {
		if (gr->nonce == nonce) {
			gr->nonce = 0;
			gr->heard = now;
			gr->asked = 0;
			grant_set_dead(gr, 0);
			relay_answered(rc, from, now);
			return;
		}
	}
}

static int
from_relay(const struct rc_grant *gr, const struct endpoint *from)
{
	struct endpoint ep = grant_relay_ep(gr);

	return from->addr == ep.addr && from->port == ep.port && from->via == ep.via;
}

static void
on_bind_ack(struct relayclient *rc, const struct endpoint *from, const uint8_t *pkt, size_t len)
{
	struct relay_bind_ack a;
	struct rc_grant *gr;
	struct endpoint ep;

	if (relay_bind_ack_decode(pkt, len, &a) != 0)
		return;
	HASH_FIND(hh_pair, rc->by_pair, &a.pair, sizeof(a.pair), gr);
	if (gr == NULL || a.side != gr->g.side || a.counter != gr->counter ||
	    !from_relay(gr, from) || relay_bind_ack_verify(pkt, len, gr->g.secret) != 0)
		return;
	gr->heard = rc_now(rc);
	gr->asked = 0;
	grant_set_dead(gr, 0);
	if (!gr->acked)
		log_info("event=relay_bound peer=%s relay=%u peer_bound=%u tcp=%d", gr->id,
		    (unsigned)gr->g.relay_id, (unsigned)a.peer_bound, gr->tcp != NULL);
	gr->acked = gr->ever_acked = 1;
	gr->peer_bound = a.peer_bound;
	if (a.peer_bound && !gr->given && gr->via != 0) {
		gr->given = 1;
		ep = grant_path_ep(gr);
		rc->ops->path(rc->arg, gr->key, &ep);
	}
}

static void
on_data(struct relayclient *rc, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct rc_grant *gr;
	uint64_t pair;

	if (relay_data_decode(pkt, len, &pair) != 0)
		return;
	HASH_FIND(hh_pair, rc->by_pair, &pair, sizeof(pair), gr);
	if (gr == NULL || !from_relay(gr, from) || gr->via == 0)
		return;
	gr->heard = rc_now(rc);
	gr->asked = 0;
	/* The other side sends through it: it is bound, whatever our last ACK said. */
	if (!gr->given) {
		struct endpoint ep = grant_path_ep(gr);

		gr->given = gr->peer_bound = 1;
		rc->ops->path(rc->arg, gr->key, &ep);
	}
	transport_link_input(rc->tp, gr->via, gr->g.udp.addr, gr->g.udp.port,
	    pkt + RELAY_DATA_HDR, len - RELAY_DATA_HDR);
}

void
relayclient_receive(struct relayclient *rc, const struct endpoint *from, uint8_t *pkt,
    size_t len)
{
	uint64_t nonce;

	switch (pkt[0]) {
	case UDP_RELAY_DATA:
		on_data(rc, from, pkt, len);
		break;
	case UDP_RELAY_PONG:
		if (relay_ping_decode(pkt, len, UDP_RELAY_PONG, &nonce) == 0)
			on_pong(rc, from, nonce);
		break;
	case UDP_RELAY_BIND_ACK:
		on_bind_ack(rc, from, pkt, len);
		break;
	default:
		/* BIND and PING go to relays, not to us. */
		break;
	}
}

int
relayclient_peer_info(const struct relayclient *rc, const uint8_t key[KEY_LEN],
    struct relayclient_peer *out)
{
	struct rc_grant *gr;
	size_t i;

	memset(out, 0, sizeof(*out));
	HASH_FIND(hh, rc->grants, key, KEY_LEN, gr);
	if (gr == NULL)
		return -1;
	out->relay_id = gr->g.relay_id;
	out->reason = gr->g.reason;
	out->bound = gr->acked && gr->peer_bound;
	out->tcp = gr->tcp != NULL;
	for (i = 0; i < rc->n_pool; i++)
		if (rc->pool[i].info.id == gr->g.relay_id)
			memcpy(out->name, rc->pool[i].info.name, sizeof(out->name));
	return 0;
}

size_t
relayclient_relays(const struct relayclient *rc, struct relayclient_relay *out, size_t max)
{
	size_t i;

	for (i = 0; i < rc->n_pool && i < max; i++) {
		const struct rc_relay *r = &rc->pool[i];

		memset(&out[i], 0, sizeof(out[i]));
		out[i].id = r->info.id;
		memcpy(out[i].name, r->info.name, sizeof(out[i].name));
		out[i].udp = r->info.udp;
		out[i].tcp_port = r->info.tcp_port;
		out[i].reachable = relay_reachable(r);
		out[i].rtt_ms = out[i].reachable ? relay_rtt(r) : -1;
	}
	return i;
}
