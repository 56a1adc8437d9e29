/*
 * shoal-loadgen: drives thousands of simulated nodes against a running shoal-server, each with
 * its own static key, the real control channel (mproto/ctrlchan.c: Noise IK, framing) and the
 * real message codecs (mproto/msg.c). One libev loop per process; --procs forks workers whose
 * samples the parent merges. Measures join->visible (JOIN sent until every earlier member got
 * the joiner's MEMBER) and presence (GO_OFFLINE/GO_ONLINE sent until every other member got the
 * MEMBER delta). Prints one JSON object. Joins within a network are sequential and each network
 * has at most one presence change in flight, so each sample has one unambiguous end.
 * --restart-cmd: the reconnect storm (see the "reconnect storm" section below).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "crypto/identity.h"
#include "crypto/noise.h"
#include "mproto/ctrlchan.h"
#include "mproto/ctrldial.h"
#include "mproto/msg.h"

#define GROUP_MAX 5000         /* members per network */
#define INFLIGHT_MAX 200       /* handshakes in progress per worker */
#define SIZES_MAX 16           /* --network-size options */
#define PLAN_MAX 1000000       /* networks in one run */
#define PER_SOURCE 24          /* nodes per source address: under the mediator's budget of new
                                * registrations per source (joinlimit.c, 30 a minute) */
#define BIG_NETWORK 256        /* presence in networks this large is also reported apart */

struct node;

struct group {
	int id;
	int size;                  /* nodes in this group */
	struct node **nodes;
	int n_joined;              /* nodes [0, n_joined) are members (0 = creator) */
	/* The one event in flight: subject's MEMBER must reach all other members. */
	int busy;
	int subject;
	int want_online;           /* -1: any MEMBER (join), else the ONLINE bit wanted */
	uint8_t *seen;             /* per member: saw the event */
	int remaining;
	double t0;
	int is_join;
	int offline;               /* presence: subject is currently offline */
	char name[NAME_MAX_LEN + 1];
};

struct node {
	struct group *g;
	int idx;                   /* within group */
	struct noise_keypair kp;
	struct ctrlchan *ch;
	int welcomed;
	int requested;             /* a join/create is in flight */
};

struct samples { double *v; size_t n, cap; };

static struct ev_loop *loop;
/* The mediator's instances (a connection string may list several): node g dials g mod n, so
 * every network spans them all and presence crosses instances. */
static struct sockaddr_in targets[CONN_MAX_ADDRS];
static unsigned n_targets;
static uint8_t server_pub[KEY_LEN];
static struct node *nodes;
static struct group *groups;
static int n_nodes, n_groups, next_connect, inflight, n_connected, n_closed;
static int joins_expected, joins_done, presence_done, presence_sent;
static struct samples s_join, s_presence, s_presence_big;
static int node_base;          /* this worker's first node in the run: picks source addresses */
static double churn = 10, seconds = 10;
static uint32_t req_id = 1;
static int worker_id;
static int phase_churn;
static double t_last_join;       /* the last join seen by all (the join phase's end) */
static ev_timer churn_timer, end_timer, kick_timer;

static void add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (s->v == NULL)
			abort();
	}
	s->v[s->n++] = v;
}

static void send_req(struct node *n, uint8_t op)
{
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_REQUEST;
	m.u.request.req_id = req_id++;
	m.u.request.op = op;
	snprintf(m.u.request.network, sizeof(m.u.request.network), "%s", n->g->name);
	ctrlchan_send(n->ch, &m);
}

/* Starts the next join of g if its previous event finished and the next node is connected. */
static void group_advance(struct group *g)
{
	if (g->busy || g->n_joined >= g->size)
		return;
	struct node *n = g->nodes[g->n_joined];
	if (!n->welcomed || n->requested || n->ch == NULL)
		return;
	n->requested = 1;
	if (g->n_joined == 0) {
		send_req(n, OP_CREATE);
		return;
	}
	g->busy = 1;
	g->is_join = 1;
	g->subject = g->n_joined;
	g->want_online = -1;
	memset(g->seen, 0, (size_t)g->size);
	g->remaining = g->n_joined;
	g->t0 = ev_time();
	send_req(n, OP_JOIN);
}

static void event_seen(struct group *g, int who)
{
	if (g->seen[who])
		return;
	g->seen[who] = 1;
	if (--g->remaining > 0)
		return;
	double ms = (ev_time() - g->t0) * 1000.0;
	g->busy = 0;
	if (g->is_join) {
		add(&s_join, ms);
		joins_done++;
		t_last_join = ev_time();
		g->n_joined++;
		group_advance(g);
	} else {
		add(&s_presence, ms);
		if (g->size >= BIG_NETWORK)
			add(&s_presence_big, ms);
		presence_done++;
	}
}

static void on_ready(void *arg, const uint8_t rs[KEY_LEN])
{
	struct node *n = arg;
	(void)rs;
	struct msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_HELLO;
	m.u.hello.version = SHOAL_PROTO_VERSION;
	snprintf(m.u.hello.nick, sizeof(m.u.hello.nick), "lg%d", n->idx);
	m.u.hello.udp_port = 9;
	ctrlchan_send(n->ch, &m);
}

static void connect_more(void);
static double t_connected;
/* The join phase ends when every join is seen, when none has been for JOIN_STALL_S, or
 * JOIN_WINDOW_S after all nodes connected (after the start while they are not). A fixed 300 s
 * ended it at 100,000 nodes with the 1,000-member network a third full: its joins are one
 * chain, and it had waited behind the 100,000 first registrations. */
enum { JOIN_STALL_S = 60, JOIN_WINDOW_S = 900 };
static int storm_active;
static void storm_close(struct node *n, const char *why);
static void storm_welcome(struct node *n);

static void on_msg(void *arg, const struct msg *m)
{
	struct node *n = arg;
	struct group *g = n->g;
	if (storm_active && m->type == MSG_WELCOME)
		storm_welcome(n);
	switch (m->type) {
	case MSG_WELCOME:
		if (!n->welcomed) {
			n->welcomed = 1;
			if (++n_connected == n_nodes)
				t_connected = ev_now(loop);
			inflight--;
			connect_more();
			group_advance(g);
		}
		break;
	case MSG_RESULT:
		if (m->u.result.status != RES_OK) {
			fprintf(stderr, "event=request_failed group=%d node=%d status=%u text=\"%s\"\n",
			    g->id, n->idx, m->u.result.status, m->u.result.text);
			break;
		}
		if (n->idx == 0 && g->n_joined == 0) {  /* CREATE done */
			g->n_joined = 1;
			group_advance(g);
		}
		break;
	case MSG_MEMBER:
	case MSG_MEMBER_GONE: {
		const char *net = m->type == MSG_MEMBER ? m->u.member.network : m->u.member_gone.network;
		const uint8_t *key = m->type == MSG_MEMBER ? m->u.member.key : m->u.member_gone.key;
		if (!g->busy || strcmp(net, g->name) != 0 || n->idx == g->subject ||
		    memcmp(key, g->nodes[g->subject]->kp.pub, KEY_LEN) != 0)
			break;
		if (g->want_online >= 0) {
			int on = m->type == MSG_MEMBER && (m->u.member.flags & MEMF_ONLINE);
			if (on != g->want_online)
				break;
		}
		if (n->idx < g->n_joined)
			event_seen(g, n->idx);
		break;
	}
	case MSG_PING: {  /* unanswered pings would make the server drop the node */
		struct msg r = *m;
		r.type = MSG_PONG;
		ctrlchan_send(n->ch, &r);
		break;
	}
	default:
		break;
	}
}

static void on_close(void *arg, const char *why)
{
	struct node *n = arg;
	if (storm_active) {
		storm_close(n, why);
		return;
	}
	fprintf(stderr, "event=node_closed group=%d node=%d why=\"%s\"\n", n->g->id, n->idx, why);
	if (!n->welcomed)
		inflight--;
	else
		n_connected--;
	n_closed++;
	ctrlchan_free(n->ch);
	n->ch = NULL;
	connect_more();
}

static const struct ctrlchan_cbs cbs = { on_ready, on_msg, on_close };

static void connect_more(void)
{
	while (inflight < INFLIGHT_MAX && next_connect < n_nodes) {
		struct node *n = &nodes[next_connect++];
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fprintf(stderr, "event=socket_failed error=\"%s\"\n", strerror(errno));
			n_closed++;
			continue;
		}
		struct sockaddr_in to = targets[(unsigned)(node_base + next_connect - 1) % n_targets];
		/* Spread source addresses over 127.100.0.0/16 (all of 127/8 is local): PER_SOURCE
		 * nodes each, as many small sites would, so the mediator's per-source limit on new
		 * registrations is not what is measured, and no source runs out of ports. */
		if ((ntohl(to.sin_addr.s_addr) >> 24) == 127) {
			int one = 1;
			unsigned k = (unsigned)(node_base + next_connect - 1) / PER_SOURCE;
			struct sockaddr_in from = { .sin_family = AF_INET };
			from.sin_addr.s_addr = htonl(0x7f640000u + 1 + k % 65000);
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
			bind(fd, (struct sockaddr *)&from, sizeof(from));
		}
		if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) {
			fprintf(stderr, "event=connect_failed error=\"%s\"\n", strerror(errno));
			close(fd);
			n_closed++;
			continue;
		}
		n->ch = ctrlchan_new(loop, fd, 1, &n->kp, server_pub, &cbs, n);
		if (n->ch == NULL) {
			n_closed++;
			continue;
		}
		inflight++;
	}
}

static void churn_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	if (n_groups == 0)
		return;
	/* A random node's network: each node changes as often as any other, so a big network
	 * sees its share of the changes. */
	for (int tries = 0; tries < 16; tries++) {
		struct group *g = nodes[randombytes_uniform((uint32_t)n_nodes)].g;
		if (g->busy || g->n_joined < 2)
			continue;
		int s = g->offline ? g->subject : (int)randombytes_uniform((uint32_t)g->n_joined);
		struct node *n = g->nodes[s];
		if (n->ch == NULL)
			continue;
		g->busy = 1;
		g->is_join = 0;
		g->subject = s;
		g->want_online = g->offline;
		g->offline = !g->offline;
		memset(g->seen, 0, (size_t)g->size);
		g->remaining = g->n_joined - 1;
		g->t0 = ev_time();
		presence_sent++;
		send_req(n, g->offline ? OP_GO_OFFLINE : OP_GO_ONLINE);
		return;
	}
}

/*
 * Keepalive as shoald sends it: a PING every 15 s from every node (the mediator drops a
 * connection silent for 60 s, server/server.h), spread over the 15 s by one worker timer that
 * pings a fifteenth of the nodes each second, so runs longer than a minute keep their nodes.
 */
static ev_timer keepalive_timer;
static int keepalive_next;

static void keepalive_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	for (int i = 0; i < (n_nodes + 14) / 15; i++) {
		struct node *n = &nodes[keepalive_next++ % n_nodes];
		struct msg m;
		if (n->ch == NULL || !n->welcomed)
			continue;
		memset(&m, 0, sizeof(m));
		m.type = MSG_PING;
		m.u.ping.nonce = (uint64_t)keepalive_next;
		ctrlchan_send(n->ch, &m);
	}
}

/*
 * ---- reconnect storm (--restart-cmd CMD) ----
 * After the churn phase every worker keeps its nodes connected and waits for SIGUSR1 from the
 * parent, which then runs CMD (it kills the mediator and starts it again, e.g. loadtest.py's
 * FIFO hook). From then on a node that loses its connection reconnects exactly as shoald
 * does: CTRLDIAL_BACKOFF_MIN after a working connection, ctrldial_backoff() between failed
 * attempts, ctrlchan's handshake timeout. reconnect_all_s runs from the first connection
 * loss any worker saw to the moment the last node had its WELCOME again.
 */
struct storm_node {
	ev_timer retry;
	double backoff;
	int want;                  /* connected at the go: must come back */
	int lost;                  /* lost its connection, no WELCOME since */
	int back;                  /* had a WELCOME after losing it */
};

/* Why dials failed, as ctrlchan words it: which queue the storm waits in. */
enum { FAIL_CONNECT_TIMEOUT, FAIL_HS_TIMEOUT, FAIL_EOF, FAIL_OTHER, FAIL_KINDS };
static const char *const fail_names[FAIL_KINDS] = { "connect_timeout", "handshake_timeout",
	"eof", "other" };

struct storm_result {
	double first_close, last_back;
	int expect, back;
	unsigned dials;
	unsigned fails[FAIL_KINDS];
	size_t n_samples;
};

static const char *restart_cmd;
static struct storm_node *storm;
static struct storm_result storm_res;
static struct samples s_storm;
static int storm_down;
static ev_signal storm_sig;
static ev_timer storm_deadline;
static ev_timer storm_tick;     /* a progress line to stderr every 5 s */

static void storm_retry_cb(EV_P_ ev_timer *w, int revents);

static void storm_schedule(struct node *n)
{
	struct storm_node *sn = &storm[n - nodes];
	double delay = ctrldial_backoff(&sn->backoff, CTRLDIAL_BACKOFF_MAX);

	ev_timer_set(&sn->retry, delay, 0.);
	ev_timer_start(loop, &sn->retry);
}

/* The same socket set-up as connect_more, for one node, with the daemon's retry policy. */
static void storm_dial(struct node *n)
{
	unsigned k = (unsigned)(n - nodes) + (unsigned)worker_id * 7919u;
	struct sockaddr_in to = targets[(unsigned)(node_base + (n - nodes)) % n_targets];
	int fd;

	storm_res.dials++;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		storm_schedule(n);
		return;
	}
	if ((ntohl(to.sin_addr.s_addr) >> 24) == 127) {
		int one = 1;
		struct sockaddr_in from = { .sin_family = AF_INET };
		from.sin_addr.s_addr = htonl(0x7f010001u + k % 60000u);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		bind(fd, (struct sockaddr *)&from, sizeof(from));
	}
	if ((connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) ||
	    (n->ch = ctrlchan_new(loop, fd, 1, &n->kp, server_pub, &cbs, n)) == NULL) {
		close(fd);
		storm_schedule(n);
	}
}

static void storm_retry_cb(EV_P_ ev_timer *w, int revents)
{
	struct storm_node *sn = (struct storm_node *)w;   /* retry is the first member */
	(void)revents;
	storm_dial(&nodes[sn - storm]);
}

static void storm_close(struct node *n, const char *why)
{
	struct storm_node *sn = &storm[n - nodes];

	ctrlchan_free(n->ch);
	n->ch = NULL;
	if (storm_res.first_close == 0)
		storm_res.first_close = ev_time();
	if (sn->want && !sn->lost) {
		sn->lost = 1;
		storm_down++;
	} else if (sn->lost) {          /* a dial that did not get back in */
		if (storm_res.fails[FAIL_OTHER] < 3 && strcmp(why, "connect timeout") != 0 &&
		    strcmp(why, "handshake timeout") != 0 && strncmp(why, "eof", 3) != 0)
			fprintf(stderr, "event=storm_dial_failed worker=%d why=\"%s\"\n", worker_id,
			    why);
		storm_res.fails[strcmp(why, "connect timeout") == 0 ? FAIL_CONNECT_TIMEOUT :
		    strcmp(why, "handshake timeout") == 0 ? FAIL_HS_TIMEOUT :
		    strncmp(why, "eof", 3) == 0 ? FAIL_EOF : FAIL_OTHER]++;
	}
	storm_schedule(n);
}

static void storm_welcome(struct node *n)
{
	struct storm_node *sn = &storm[n - nodes];

	sn->backoff = CTRLDIAL_BACKOFF_MIN;     /* as medclient does at WELCOME */
	if (!sn->lost)
		return;
	sn->lost = 0;
	storm_down--;
	if (!sn->back) {
		sn->back = 1;
		storm_res.back++;
		add(&s_storm, ev_time() - storm_res.first_close);
	}
	if (storm_res.back == storm_res.expect && storm_down == 0) {
		storm_res.last_back = ev_time();
		ev_break(loop, EVBREAK_ALL);
	}
}

static void storm_go_cb(EV_P_ ev_signal *w, int revents)
{
	(void)w; (void)revents;
	storm_active = 1;
	for (int i = 0; i < n_nodes; i++) {
		storm[i].backoff = CTRLDIAL_BACKOFF_MIN;
		storm[i].want = nodes[i].ch != NULL && nodes[i].welcomed;
		storm_res.expect += storm[i].want;
	}
	if (storm_res.expect == 0)
		ev_break(loop, EVBREAK_ALL);
	ev_timer_start(loop, &storm_deadline);
	ev_timer_start(loop, &storm_tick);
}

static void storm_tick_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	fprintf(stderr, "event=storm_tick worker=%d t=%.1f back=%d down=%d dials=%u "
	    "connect_timeout=%u handshake_timeout=%u eof=%u other=%u\n", worker_id,
	    storm_res.first_close ? ev_now(loop) - storm_res.first_close : 0.0, storm_res.back,
	    storm_down, storm_res.dials, storm_res.fails[FAIL_CONNECT_TIMEOUT],
	    storm_res.fails[FAIL_HS_TIMEOUT], storm_res.fails[FAIL_EOF], storm_res.fails[FAIL_OTHER]);
}

static void storm_deadline_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Worker, after the churn phase and before reporting it: wait for the parent's go. */
static void storm_arm(void)
{
	storm = calloc((size_t)n_nodes, sizeof(*storm));
	if (storm == NULL)
		exit(1);
	for (int i = 0; i < n_nodes; i++)
		ev_timer_init(&storm[i].retry, storm_retry_cb, 0., 0.);
	ev_timer_stop(loop, &kick_timer);
	ev_timer_stop(loop, &churn_timer);
	ev_timer_init(&storm_deadline, storm_deadline_cb, 300., 0.);
	ev_timer_init(&storm_tick, storm_tick_cb, 5., 5.);
	ev_signal_init(&storm_sig, storm_go_cb, SIGUSR1);
	ev_signal_start(loop, &storm_sig);
}

/* Worker: the storm itself (until all are back, or 300 s), then its results to out. */
static void storm_run(int out)
{
	ev_run(loop, 0);
	storm_res.n_samples = s_storm.n;
	if (write(out, &storm_res, sizeof(storm_res)) < 0 ||
	    (s_storm.n && write(out, s_storm.v, s_storm.n * sizeof(double)) < 0))
		exit(1);
}

static int readall(int fd, void *buf, size_t len);
static int cmp(const void *a, const void *b);
static double pct(struct samples *s, double p);

/* Parent: the go, CMD, and the merged results as JSON members (", ..." into json). */
static void storm_parent(const pid_t *pids, const int *fds, int procs, char *json, size_t cap)
{
	struct storm_result all = { 0 };
	int rc;

	for (int p = 0; p < procs; p++)
		kill(pids[p], SIGUSR1);
	fflush(NULL);
	rc = system(restart_cmd);
	if (rc != 0)
		fprintf(stderr, "shoal-loadgen: --restart-cmd exited with %d\n", rc);
	for (int p = 0; p < procs; p++) {
		struct storm_result r;
		if (readall(fds[p], &r, sizeof(r)) < 0) {
			fprintf(stderr, "shoal-loadgen: worker %d failed in the storm\n", p);
			continue;
		}
		for (size_t i = 0; i < r.n_samples; i++) {
			double v;
			if (readall(fds[p], &v, sizeof(v)) == 0)
				add(&s_storm, v);
		}
		if (r.first_close > 0 && (all.first_close == 0 || r.first_close < all.first_close))
			all.first_close = r.first_close;
		if (r.last_back > all.last_back)
			all.last_back = r.last_back;
		all.expect += r.expect;
		all.back += r.back;
		all.dials += r.dials;
		for (int k = 0; k < FAIL_KINDS; k++)
			all.fails[k] += r.fails[k];
	}
	if (s_storm.n)
		qsort(s_storm.v, s_storm.n, sizeof(double), cmp);
	snprintf(json, cap, ", \"reconnect_expected\": %d, \"reconnected\": %d, "
	    "\"reconnect_all_s\": %.2f, \"reconnect_p50_s\": %.2f, \"reconnect_attempts\": %u",
	    all.expect, all.back,
	    all.back == all.expect && all.expect > 0 ? all.last_back - all.first_close : -1.0,
	    pct(&s_storm, 0.5), all.dials);
	for (int k = 0; k < FAIL_KINDS; k++) {
		size_t used = strlen(json);
		snprintf(json + used, cap - used, ", \"reconnect_fail_%s\": %u", fail_names[k],
		    all.fails[k]);
	}
}

static double t_start, t_end;
/* --server-pid, once per instance: RSS and CPU are their sums */
static int spids[CONN_MAX_ADDRS], n_spids;


static void end_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	ev_timer_stop(loop, &churn_timer);
	t_end = ev_now(loop);
}

/* The churn phase, in every worker at once: the parent sends SIGUSR2 once all have their joins
 * over (kick_cb). One that started alone measured presence while the others' joins still
 * loaded the box. */
static int joins_over_told, result_fd = -1;
static ev_signal churn_go_sig;

static void churn_go_cb(EV_P_ ev_signal *w, int revents)
{
	(void)w; (void)revents;
	if (phase_churn)
		return;
	phase_churn = 1;
	if (churn > 0) {
		ev_timer_init(&churn_timer, churn_cb, 0, 1.0 / churn);
		ev_timer_again(loop, &churn_timer);
	}
	ev_timer_init(&end_timer, end_cb, seconds, 0);
	ev_timer_start(loop, &end_timer);
}

static void kick_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w; (void)revents;
	double from = t_connected > 0 ? t_connected : t_start, now = ev_now(loop);

	if (!joins_over_told && (joins_done >= joins_expected || now > from + JOIN_WINDOW_S ||
	    now > (t_last_join > from ? t_last_join : from) + JOIN_STALL_S)) {
		char b = 'J';

		joins_over_told = 1;
		if (write(result_fd, &b, 1) != 1)
			exit(1);
	}
	if (t_end > 0) {  /* churn stopped: let the changes in flight finish (at most 10 s) */
		int busy = 0;
		for (int i = 0; i < n_groups && !busy; i++)
			busy = groups[i].busy;
		if (!busy || ev_now(loop) > t_end + 10)
			ev_break(loop, EVBREAK_ALL);
	}
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The instances' RSS summed, or -1 when one is unknown. */
static long rss_all(void)
{
	long sum = 0, kb;
	if (n_spids == 0)
		return -1;
	for (int i = 0; i < n_spids; i++) {
		if ((kb = rss_kb(spids[i])) < 0)
			return -1;
		sum += kb;
	}
	return sum;
}

/* Worker: runs the networks of sizes[0..ng) (node_base: its first node in the run), writes
 * its results to fd. */
static void run_worker(const int *sizes, int ng, const char *tag, int out)
{
	int count = 0;
	for (int gi = 0; gi < ng; gi++)
		count += sizes[gi];
	loop = ev_default_loop(0);
	n_nodes = count;
	nodes = calloc((size_t)count, sizeof(*nodes));
	n_groups = ng;
	groups = calloc((size_t)n_groups, sizeof(*groups));
	if (nodes == NULL || groups == NULL)
		exit(1);
	for (int gi = 0, first = 0; gi < n_groups; first += sizes[gi++]) {
		struct group *g = &groups[gi];
		g->id = gi;
		g->size = sizes[gi];
		g->nodes = calloc((size_t)g->size, sizeof(*g->nodes));
		g->seen = calloc((size_t)g->size, 1);
		if (g->nodes == NULL || g->seen == NULL)
			exit(1);
		snprintf(g->name, sizeof(g->name), "lg%s-%d-%d", tag, worker_id, gi);
		joins_expected += g->size - 1;
		for (int i = 0; i < g->size; i++) {
			struct node *n = &nodes[first + i];
			n->g = g;
			n->idx = i;
			noise_keypair_generate(&n->kp);
			g->nodes[i] = n;
		}
	}
	t_start = ev_time();
	result_fd = out;
	ev_signal_init(&churn_go_sig, churn_go_cb, SIGUSR2);
	ev_signal_start(loop, &churn_go_sig);
	connect_more();
	ev_timer_init(&kick_timer, kick_cb, 0.1, 0.1);
	ev_timer_again(loop, &kick_timer);
	ev_timer_init(&keepalive_timer, keepalive_cb, 1., 1.);
	ev_timer_start(loop, &keepalive_timer);
	ev_run(loop, 0);
	/* Read while this worker still holds its connections. */
	int rss = (int)rss_all();
	if (restart_cmd)
		storm_arm();
	int connect_ms = t_connected > 0 ? (int)((t_connected - t_start) * 1000) : -1;
	int hdr[7] = { n_connected, joins_expected, joins_done, presence_sent, presence_done, rss,
		connect_ms };
	size_t nj = s_join.n, np = s_presence.n, nb = s_presence_big.n;
	if (write(out, hdr, sizeof(hdr)) < 0 || write(out, &nj, sizeof(nj)) < 0 ||
	    write(out, &np, sizeof(np)) < 0 || write(out, &nb, sizeof(nb)) < 0 ||
	    (nj && write(out, s_join.v, nj * sizeof(double)) < 0) ||
	    (np && write(out, s_presence.v, np * sizeof(double)) < 0) ||
	    (nb && write(out, s_presence_big.v, nb * sizeof(double)) < 0))
		exit(1);
	if (restart_cmd)
		storm_run(out);
}

static int readall(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t r = read(fd, p, len);
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_int_desc(const void *a, const void *b)
{
	return *(const int *)b - *(const int *)a;
}

static double pct(struct samples *s, double p)
{
	if (s->n == 0)
		return -1;
	size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->v[i];
}

static void usage(void)
{
	fprintf(stderr, "usage: shoal-loadgen --server CONNECTION-STRING --nodes N "
	    "[--network-size K[xC]]... [--churn PER-SECOND] [--seconds S] [--procs P] "
	    "[--server-pid PID]... [--restart-cmd CMD] --json\n"
	    "  --server: several instances (shoal://H1:P1,H2:P2/KEY): node i dials instance i mod n.\n"
	    "  --server-pid: once per instance; RSS and CPU are summed.\n"
	    "  --network-size KxC: C networks of K members first; K alone: networks of K (each\n"
	    "  such size in turn) fill the other nodes (default 8). A network has 2..%d members.\n",
	    GROUP_MAX);
	exit(2);
}

/* The server's CPU seconds so far (utime + stime), or -1. */
static double cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut, st;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
	    &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_all(void)
{
	double sum = 0, c;
	if (n_spids == 0)
		return -1;
	for (int i = 0; i < n_spids; i++) {
		if ((c = cpu_s(spids[i])) < 0)
			return -1;
		sum += c;
	}
	return sum;
}

/* The run's networks: the KxC ones first, then the plain sizes in turn until the nodes are
 * used up (a lone node left over joins the last network). Returns the count. */
static int plan_networks(int total, const int *ks, const int *cs, int nk, int *plan)
{
	int ng = 0, left = total, any_fill = 0;
	for (int i = 0; i < nk && left >= 2; i++)
		for (int c = 0; c < cs[i] && left >= 2 && ng < PLAN_MAX; c++) {
			plan[ng] = ks[i] < left ? ks[i] : left;
			left -= plan[ng++];
		}
	for (int i = 0; i < nk; i++)
		any_fill |= cs[i] == 0;
	for (int i = 0; left >= 2 && ng < PLAN_MAX; i++) {
		int k = 8;
		if (any_fill) {
			while (cs[i % nk] != 0)
				i++;
			k = ks[i % nk];
		}
		plan[ng] = k < left ? k : left;
		left -= plan[ng++];
	}
	if (left == 1 && ng > 0 && plan[ng - 1] < GROUP_MAX)
		plan[ng - 1]++;
	return ng;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' }, { "nodes", required_argument, NULL, 'n' },
		{ "network-size", required_argument, NULL, 'k' }, { "churn", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' }, { "procs", required_argument, NULL, 'p' },
		{ "server-pid", required_argument, NULL, 'P' }, { "json", no_argument, NULL, 'j' },
		{ "restart-cmd", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL;
	int total = 0, procs = 1, o, nk = 0, ks[SIZES_MAX], cs[SIZES_MAX];
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': server = optarg; break;
		case 'n': total = atoi(optarg); break;
		case 'k': {
			char *end;
			if (nk == SIZES_MAX)
				usage();
			ks[nk] = (int)strtol(optarg, &end, 10);
			cs[nk] = *end == 'x' ? (int)strtol(end + 1, &end, 10) : 0;
			if (*end != '\0' || ks[nk] < 2 || ks[nk] > GROUP_MAX || cs[nk] < 0)
				usage();
			nk++;
			break;
		}
		case 'c': churn = atof(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'p': procs = atoi(optarg); break;
		case 'P':
			if (n_spids == CONN_MAX_ADDRS)
				usage();
			spids[n_spids++] = atoi(optarg);
			break;
		case 'j': break;
		case 'R': restart_cmd = optarg; break;
		default: usage();
		}
	}
	char err[128];
	if (server == NULL || total < 2 || procs < 1 || procs > 64 ||
	    churn < 0 || seconds < 0)
		usage();
	struct conn_string cstr;
	if (conn_string_parse_list(server, &cstr, err, sizeof(err)) < 0) {
		fprintf(stderr, "shoal-loadgen: bad --server: %s\n", err);
		return 2;
	}
	memcpy(server_pub, cstr.pub, KEY_LEN);
	for (n_targets = 0; n_targets < cstr.n_addr; n_targets++) {
		struct sockaddr_in *t = &targets[n_targets];
		t->sin_family = AF_INET;
		t->sin_port = htons(cstr.addr[n_targets].port);
		if (inet_pton(AF_INET, cstr.addr[n_targets].host, &t->sin_addr) != 1) {
			fprintf(stderr, "shoal-loadgen: --server hosts must be IPv4 literals\n");
			return 2;
		}
	}
	if (sodium_init() < 0)
		return 1;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	char tag[16];
	snprintf(tag, sizeof(tag), "%x", (unsigned)getpid());

	/* Networks to workers, largest first, each to the worker with the fewest nodes so far: a
	 * network's members all live in one worker, which sees every delivery to them. */
	int *plan = calloc(PLAN_MAX, sizeof(int)), *owner = calloc(PLAN_MAX, sizeof(int));
	if (plan == NULL || owner == NULL)
		return 1;
	int ng = plan_networks(total, ks, cs, nk, plan), load[64] = { 0 }, big = 0;
	qsort(plan, (size_t)ng, sizeof(int), cmp_int_desc);
	for (int gi = 0; gi < ng; gi++) {
		int w = 0;
		for (int p = 1; p < procs; p++)
			if (load[p] < load[w])
				w = p;
		owner[gi] = w;
		load[w] += plan[gi];
		big = plan[gi] > big ? plan[gi] : big;
	}
	for (int p = 0; p < procs; p++)
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)load[p] + 64 > rl.rlim_cur) {
			fprintf(stderr, "shoal-loadgen: %d nodes in one process need more than the fd "
			    "limit of %lu: use more --procs\n", load[p], (unsigned long)rl.rlim_cur);
			return 2;
		}
	double cpu0 = cpu_all();
	long rss0 = rss_all();

	int fds[64];
	pid_t pids[64];
	/* --churn is across the server: each worker makes its share. Until session 13 every
	 * worker made all of it, so runs with P workers churned P times the rate asked for. */
	churn /= procs;
	for (int p = 0, base = 0; p < procs; base += load[p++]) {
		int pfd[2];
		if (pipe(pfd) < 0)
			return 1;
		/* A worker done first must not block on a full pipe while the parent reads another,
		 * its nodes unserved until the mediator drops them as silent: room for the results
		 * of ~100,000 samples (the storm's exchange follows over the same pipe). */
		(void)fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
		pids[p] = fork();
		if (pids[p] < 0)
			return 1;
		if (pids[p] == 0) {
			close(pfd[0]);
			worker_id = p;
			node_base = base;
			int mine = 0;
			for (int gi = 0; gi < ng; gi++)
				if (owner[gi] == p)
					plan[mine++] = plan[gi];
			run_worker(plan, mine, tag, pfd[1]);
			_exit(0);
		}
		close(pfd[1]);
		fds[p] = pfd[0];
	}
	/* Every worker's joins over (or it died): the churn phase everywhere at once. */
	for (int p = 0; p < procs; p++) {
		char b;
		(void)readall(fds[p], &b, 1);
	}
	for (int p = 0; p < procs; p++)
		kill(pids[p], SIGUSR2);
	int conn = 0, jexp = 0, jdone = 0, psent = 0, pdone = 0, connect_ms = 0;
	long rss = -1;
	for (int p = 0; p < procs; p++) {
		int hdr[7];
		size_t nn[3];
		if (readall(fds[p], hdr, sizeof(hdr)) < 0 || readall(fds[p], nn, sizeof(nn)) < 0) {
			fprintf(stderr, "shoal-loadgen: worker %d failed\n", p);
			continue;
		}
		if (hdr[5] > rss)
			rss = hdr[5];
		conn += hdr[0]; jexp += hdr[1]; jdone += hdr[2]; psent += hdr[3]; pdone += hdr[4];
		connect_ms = hdr[6] < 0 || connect_ms < 0 ? -1 : hdr[6] > connect_ms ? hdr[6] : connect_ms;
		struct samples *into[3] = { &s_join, &s_presence, &s_presence_big };
		for (int a = 0; a < 3; a++)
			for (size_t i = 0; i < nn[a]; i++) {
				double v;
				if (readall(fds[p], &v, sizeof(v)) == 0)
					add(into[a], v);
			}
		if (!restart_cmd)
			close(fds[p]);
	}
	double cpu = cpu0 >= 0 ? cpu_all() - cpu0 : -1;
	char storm_json[512] = "";
	if (restart_cmd)
		storm_parent(pids, fds, procs, storm_json, sizeof(storm_json));
	for (int p = 0; p < procs; p++)
		waitpid(pids[p], NULL, 0);
	/* qsort(NULL, 0) is undefined (UBSan with --churn 0) */
	struct samples *sorted[3] = { &s_join, &s_presence, &s_presence_big };
	for (int a = 0; a < 3; a++)
		if (sorted[a]->n)
			qsort(sorted[a]->v, sorted[a]->n, sizeof(double), cmp);
	/* kB per node: the growth over the idle server's RSS, shared by the connected nodes. */
	printf("{\"nodes\": %d, \"nodes_connected\": %d, \"network_size\": %d, \"networks\": %d, "
	    "\"network_max\": %d, \"procs\": %d, \"connect_all_s\": %.2f, "
	    "\"joins_expected\": %d, \"joins_visible\": %d, "
	    "\"join_visible_p50_ms\": %.2f, \"join_visible_p99_ms\": %.2f, "
	    "\"presence_sent\": %d, \"presence_visible\": %d, "
	    "\"presence_p50_ms\": %.2f, \"presence_p99_ms\": %.2f, "
	    "\"presence_big_samples\": %zu, \"presence_big_p50_ms\": %.2f, "
	    "\"presence_big_p99_ms\": %.2f, \"mediator_rss_start_kb\": %ld, \"mediator_rss_kb\": %ld, "
	    "\"kb_per_node\": %.2f, \"mediator_cpu_s\": %.2f%s}\n",
	    total, conn, nk ? ks[0] : 8, ng, big, procs, connect_ms / 1000.0, jexp, jdone,
	    pct(&s_join, 0.5), pct(&s_join, 0.99), psent, pdone,
	    pct(&s_presence, 0.5), pct(&s_presence, 0.99), s_presence_big.n,
	    pct(&s_presence_big, 0.5), pct(&s_presence_big, 0.99), rss0, rss,
	    rss > 0 && rss0 > 0 && conn > 0 ? (double)(rss - rss0) / conn : -1, cpu, storm_json);
	free(plan);
	free(owner);
	return 0;
}
