/*
 * main: shoal-server start-up and shutdown order, and nothing else: options, state directory
 * (key pair, database), sockets, the connection string, signals, the loop.
 * Must not touch: membership logic (mediator.c), connections (conn.c), probes (udp.c).
 *
 *   shoal-server --listen HOST:PORT [--listen HOST2:PORT2 ...] --state DIR [--range 5.0.0.0/8]
 *                [--public-host HOST] [--reclaim-days N] [-v]
 *
 * Each --listen binds TCP on PORT and UDP on PORT, PORT+1 and PORT+2 (the last two for NAT
 * classification, PROTOCOL.md 3.1: best effort, a failure there is logged, never fatal). The
 * first two listen addresses are what NAT plans use. PORT 0 picks a port that is free for
 * both TCP and UDP; the url printed on stdout (`url=shoal://HOST:PORT/KEY`) and written to
 * DIR/url carries the first --listen's real one.
 * --pwhash-fast (hidden, tests only) hashes new passwords with Argon2id's MIN limits instead
 * of the INTERACTIVE ones, so test suites do not spend 0.1 s and 64 MiB per CREATE.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "base/acceptor.h"
#include "base/atomicfile.h"
#include "base/ip4.h"
#include "base/log.h"
#include "relay/sock.h"
#include "server/chat.h"
#include "server/joinlimit.h"
#include "server/cluster.h"
#include "server/pwpool.h"
#include "server/relaygrant.h"
#include "server/server.h"

struct options {                         /* read-only after parse_options */
	int n_listen;
	char listen_host[SRV_MAX_LISTEN][256];
	uint16_t listen_port[SRV_MAX_LISTEN];
	const char *state_dir;
	const char *store;              /* --store URL; NULL: STATE/mediator.db */
	uint32_t range;
	uint8_t prefix_len;
	const char *public_host;
	int verbose;
	int pwhash_fast;
	long reclaim_days;              /* 0: never reclaim unused registrations */
	long chat_history;              /* messages kept per chat conversation */
	long register_budget;           /* new keys per source a minute; 0: default, -1: off */
	long relay_pairs;               /* pairs given a relay at most; 0: the default */
	long relay_port;                /* the embedded relay's UDP port; 0: PORT+3; -1: none */
	long relay_tcp_port;            /* its TCP transport; 0: the UDP port's number; -1: none */
	unsigned n_relay_allow;         /* --relay-allow keys (STATE/relays.allow adds more) */
	uint8_t relay_allow[MEDSRV_RELAY_ALLOW_MAX][KEY_LEN];
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: shoal-server --listen HOST:PORT [--listen HOST:PORT ...] --state DIR\n"
	    "                    [--range 5.0.0.0/8] [--public-host HOST] [--reclaim-days N]\n"
	    "                    [--chat-history N] [--register-budget N|off]\n"
	    "                    [--relay-port N|off] [--relay-tcp-port N|off]\n"
	    "                    [--relay-allow KEY ...] [--relay-pairs N]\n"
	    "                    [--store postgresql://...]\n"
	    "                    [-v|--verbose] [-h|--help] [--version]\n"
	    "  --listen may be given up to %d times: each binds TCP on PORT and UDP on PORT,\n"
	    "  PORT+1 and PORT+2 (NAT classification; the first two addresses are used).\n"
	    "  The first one is the address in the url / connection string.\n"
	    "  --relay-port N|off: the embedded relay's UDP port (default: the first PORT + 3).\n"
	    "  --relay-tcp-port N|off: its TCP transport (default: the same number as its UDP).\n"
	    "  --relay-allow KEY: a standalone shoal-relay's public key (64 hex digits) that may\n"
	    "  register; repeatable; STATE/relays.allow holds more, one per line.\n"
	    "  --relay-pairs N: pairs of peers given a relay at most (default %d, ~200 bytes\n"
	    "  each; past it a new pair has no relay until others end).\n"
	    "  --reclaim-days N: forget nodes unseen for N days that are in no network, so\n"
	    "  their addresses can be reused once the range is used up (default 30; 0: never).\n"
	    "  --chat-history N: chat messages kept per network and per pair (default %d).\n"
	    "  --register-budget N|off: new nodes one source address may register a minute\n"
	    "  (default %u; raise it for many first-time users behind one NAT).\n"
	    "  --state DIR: the server key, the database and the url file live there.\n"
	    "  --store URL: keep the database in PostgreSQL instead (a libpq URL,\n"
	    "  postgresql://... or postgres://...); instances sharing it serve the same networks.\n"
	    "  --range A.B.C.D/N: the virtual address range handed to nodes (default 5.0.0.0/8).\n"
	    "  --public-host HOST: the host named in the url (default: the first --listen HOST).\n"
	    "  -v, --verbose: debug logging.  --version: print the version.\n",
	    SRV_MAX_LISTEN, RELAYGRANT_MAX_PAIRS, CHAT_KEEP_DEFAULT, jl_budget[JL_REGISTER_SOURCE]);
}

static int
parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long p;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= cap)
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end != '\0' || end == colon + 1 || p > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int
parse_range(const char *s, uint32_t *range, uint8_t *prefix_len)
{
	char buf[32], *slash, *end;
	struct in_addr a;
	unsigned long n;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) == NULL)
		return -1;
	*slash = '\0';
	n = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || end == slash + 1 || n < 1 || n > 30 || inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*prefix_len = (uint8_t)n;
	*range = ntohl(a.s_addr) & (0xffffffffu << (32 - n));
	return 0;
}

/* A whole decimal number within lo..hi. 0 or -1. */
static int
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || end == s || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
bad_value(const char *what, const char *got)
{
	fprintf(stderr, "shoal-server: %s, got \"%s\"\n", what, got);
	return -1;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_PUBLIC_HOST = 256, OPT_RANGE, OPT_PWHASH_FAST, OPT_RECLAIM, OPT_RELAY_PORT,
	    OPT_CHAT_HISTORY, OPT_RELAY_TCP_PORT, OPT_RELAY_ALLOW, OPT_VERSION, OPT_STORE,
	    OPT_REGISTER_BUDGET, OPT_RELAY_PAIRS };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 's' },
		{ "store", required_argument, NULL, OPT_STORE },
		{ "range", required_argument, NULL, OPT_RANGE },
		{ "public-host", required_argument, NULL, OPT_PUBLIC_HOST },
		{ "pwhash-fast", no_argument, NULL, OPT_PWHASH_FAST },
		{ "reclaim-days", required_argument, NULL, OPT_RECLAIM },
		{ "chat-history", required_argument, NULL, OPT_CHAT_HISTORY },
		{ "register-budget", required_argument, NULL, OPT_REGISTER_BUDGET },
		{ "relay-pairs", required_argument, NULL, OPT_RELAY_PAIRS },
		{ "relay-port", required_argument, NULL, OPT_RELAY_PORT },
		{ "relay-tcp-port", required_argument, NULL, OPT_RELAY_TCP_PORT },
		{ "relay-allow", required_argument, NULL, OPT_RELAY_ALLOW },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->range = 0x05000000u;
	o->prefix_len = 8;
	o->reclaim_days = 30;
	o->chat_history = CHAT_KEEP_DEFAULT;
	while ((ch = getopt_long(argc, argv, "l:s:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (o->n_listen >= SRV_MAX_LISTEN) {
				fprintf(stderr, "shoal-server: at most %d --listen\n", SRV_MAX_LISTEN);
				return -1;
			}
			if (parse_hostport(optarg, o->listen_host[o->n_listen],
			    sizeof(o->listen_host[0]), &o->listen_port[o->n_listen]) < 0) {
				fprintf(stderr, "shoal-server: --listen wants HOST:PORT, got \"%s\"\n",
				    optarg);
				return -1;
			}
			o->n_listen++;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case OPT_STORE:
			if (!store_is_pg_url(optarg)) {
				fprintf(stderr, "shoal-server: --store wants postgresql://... or "
				    "postgres://..., got \"%s\"\n", optarg);
				return -1;
			}
			o->store = optarg;
			break;
		case OPT_RANGE:
			if (parse_range(optarg, &o->range, &o->prefix_len) < 0) {
				fprintf(stderr, "shoal-server: --range wants A.B.C.D/N with N in 1..30, "
				    "got \"%s\"\n", optarg);
				return -1;
			}
			break;
		case OPT_PUBLIC_HOST:
			o->public_host = optarg;
			break;
		case OPT_PWHASH_FAST:
			o->pwhash_fast = 1;
			break;
		case OPT_RELAY_PORT:
			if (strcmp(optarg, "off") == 0)
				o->relay_port = -1;
			else if (parse_long(optarg, 1, 65535, &o->relay_port) != 0)
				return bad_value("--relay-port wants 1..65535 or off", optarg);
			break;
		case OPT_RELAY_TCP_PORT:
			if (strcmp(optarg, "off") == 0)
				o->relay_tcp_port = -1;
			else if (parse_long(optarg, 1, 65535, &o->relay_tcp_port) != 0)
				return bad_value("--relay-tcp-port wants 1..65535 or off", optarg);
			break;
		case OPT_RELAY_ALLOW:
			if (o->n_relay_allow >= MEDSRV_RELAY_ALLOW_MAX)
				return bad_value("too many --relay-allow", optarg);
			if (strlen(optarg) != 2 * KEY_LEN ||
			    hex_decode(optarg, o->relay_allow[o->n_relay_allow], KEY_LEN) != 0)
				return bad_value("--relay-allow wants a public key, 64 hex digits",
				    optarg);
			o->n_relay_allow++;
			break;
		case OPT_RECLAIM:
			if (parse_long(optarg, 0, 36500, &o->reclaim_days) != 0)
				return bad_value("--reclaim-days wants 0..36500", optarg);
			break;
		case OPT_CHAT_HISTORY:
			if (parse_long(optarg, 1, 1000000, &o->chat_history) != 0)
				return bad_value("--chat-history wants 1..1000000", optarg);
			break;
		case OPT_REGISTER_BUDGET:
			if (strcmp(optarg, "off") == 0)
				o->register_budget = -1;
			else if (parse_long(optarg, 1, 1000000, &o->register_budget) != 0)
				return bad_value("--register-budget wants 1..1000000 or off", optarg);
			break;
		case OPT_RELAY_PAIRS:
			if (parse_long(optarg, 1, 16777216, &o->relay_pairs) != 0)
				return bad_value("--relay-pairs wants 1..16777216", optarg);
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("shoal-server %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o->n_listen == 0 || o->state_dir == NULL || optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int
resolve_ipv4(const char *host, struct in_addr *out)
{
	struct addrinfo hints, *res;

	if (inet_pton(AF_INET, host, out) == 1)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return -1;
	*out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

static int
bind_one(int type, const struct in_addr *addr, uint16_t port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = *addr;
	sin.sin_port = htons(port);
	/* The kernel's largest backlog: after a restart every daemon reconnects within about a
	 * second (mproto/ctrldial.c), and a SYN the full queue drops costs its daemon a 1, 3, 7 s
	 * retransmission (measured: 2,000 nodes took 12 s to return with 128, see make loadtest). */
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void
add_udp(struct server *srv, int fd, const struct in_addr *addr, uint16_t port, int listen,
    int offset)
{
	struct natsock *ns = &srv->udp_sock[srv->n_udp];

	ns->addr = ntohl(addr->s_addr);
	ns->port = port;
	ns->listen = (uint8_t)listen;
	ns->offset = (uint8_t)offset;
	srv->udp_fd[srv->n_udp++] = fd;
}

/*
 * Listen number `listen`: TCP and UDP on the same port (with port 0, retry until a port is
 * free for both), then UDP on port+1 and port+2 if they can be had: without them the NAT
 * classification just has fewer targets.
 */
static int
open_sockets(struct server *srv, int listen, const struct in_addr *addr, uint16_t want,
    uint16_t *port)
{
	struct listener *l = &srv->listen[listen];
	struct sockaddr_in sin;
	socklen_t len;
	int tries, fd, k;

	for (tries = 0; tries < 32; tries++) {
		if ((l->fd = bind_one(SOCK_STREAM, addr, want)) < 0)
			return -1;
		srv->n_listen = listen + 1;
		len = sizeof(sin);
		if (getsockname(l->fd, (struct sockaddr *)&sin, &len) < 0)
			return -1;
		*port = ntohs(sin.sin_port);
		if ((fd = bind_one(SOCK_DGRAM, addr, *port)) >= 0)
			break;
		close(l->fd);
		l->fd = -1;
		srv->n_listen = listen;
		if (want != 0 || errno != EADDRINUSE)
			return -1;
	}
	if (tries == 32)
		return -1;
	add_udp(srv, fd, addr, *port, listen, 0);
	for (k = 1; k <= 2; k++) {
		if (*port > 65535 - k || (fd = bind_one(SOCK_DGRAM, addr, (uint16_t)(*port + k))) < 0) {
			log_warn("event=nat_port_unavailable listen=%s:%u port=%u", inet_ntoa(*addr),
			    *port, *port + k);
			continue;
		}
		add_udp(srv, fd, addr, (uint16_t)(*port + k), listen, k);
	}
	return 0;
}

/* Readers see the old url or the whole new one. */
static int
write_atomic(const char *dir, const char *name, const char *text)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -1;
	return atomicfile_write(path, text, strlen(text), 0644);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("event=shutdown signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * STATE/relays.allow: more relay keys that may register, one per line (64 hex digits); blank
 * lines and lines starting with # are skipped. A missing file is no error; a bad line is.
 */
static int
load_relay_allow(const char *dir, struct medsrv_config *cfg)
{
	char path[4096], line[256];
	FILE *f;
	size_t n;
	int lineno = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/relays.allow", dir) >= sizeof(path))
		return -1;
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (cfg->n_relay_allow >= MEDSRV_RELAY_ALLOW_MAX || n != 2 * KEY_LEN ||
		    hex_decode(line, cfg->relay_allow[cfg->n_relay_allow], KEY_LEN) != 0) {
			log_warnx("event=startup_failed reason=\"%s line %d: want a relay public key "
			    "(64 hex digits)\"", path, lineno);
			fclose(f);
			return -1;
		}
		cfg->n_relay_allow++;
	}
	fclose(f);
	return 0;
}

/* The embedded relay's health and counters go to the mediator like a standalone relay's
 * RELAY_STATS; then the mediator's relay housekeeping (PROTOCOL.md 8.2). */
static void
relay_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = w->data;
	struct relay_stats rs;
	struct msg_relay_stats st;

	(void)loop;
	(void)revents;
	if (srv->relay != NULL && srv->relay_id != 0) {
		relay_sock_get_stats(srv->relay, &rs);
		relay_stats_to_msg(&rs, &st);
		medsrv_relay_embedded_stats(srv->med, srv->relay_id, &st);
	}
	medsrv_relay_tick(srv->med);
}

/*
 * The embedded relay (docs/PROTOCOL.md 8), on the first listen address, so a one-machine
 * setup relays without a separate shoal-relay: it joins the mediator's pool in-process, and
 * its relay key is the one the pool made for it. Best effort: a port that cannot be bound is
 * logged.
 */
static void
start_relay(struct server *srv, const struct options *o, uint32_t addr, uint16_t port)
{
	struct relay_limits lim = { 0, 0 };
	struct endpoint udp = { .addr = addr, .port = 0 };
	uint16_t rport;
	int tport;

	if (o->relay_port < 0)
		return;
	rport = o->relay_port > 0 ? (uint16_t)o->relay_port : (uint16_t)(port + 3);
	tport = o->relay_tcp_port < 0 ? -1 : o->relay_tcp_port > 0 ? (int)o->relay_tcp_port :
	    (int)rport;
	randombytes_buf(srv->relay_key, sizeof(srv->relay_key));
	if ((srv->relay = relay_sock_new(srv->loop, addr, rport, tport, srv->relay_key, &lim,
	    60)) == NULL) {
		log_warnx("event=relay_unavailable port=%u", rport);
		return;
	}
	udp.port = relay_sock_port(srv->relay);
	srv->relay_id = medsrv_relay_embedded(srv->med, "embedded", &udp,
	    relay_sock_tcp_port(srv->relay), srv->relay_key);
	relay_sock_set_key(srv->relay, srv->relay_key);
	log_info("event=relay_listening port=%u tcp_port=%u id=%u", relay_sock_port(srv->relay),
	    relay_sock_tcp_port(srv->relay), srv->relay_id);
}

enum { RECLAIM_EVERY_S = 3600 };

static void
reclaim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = w->data;

	(void)loop;
	(void)revents;
	if (srv->med && srv->reclaim_age > 0)
		(void)medsrv_reclaim(srv->med, (int64_t)time(NULL), srv->reclaim_age);
}

enum { PW_THREADS = 2, PW_QUEUE = 64 };

static void
pw_done(void *arg, struct pw_job *job)
{
	struct server *srv = arg;

	if (srv->med)
		medsrv_pw_done(srv->med, job);
}

static int
pw_submit(void *arg, const struct pw_job *job)
{
	struct server *srv = arg;

	return pwpool_submit(srv->pw, job);
}

int
pw_medsrv_io(struct server *srv, struct medsrv_io *io)
{
	if ((srv->pw = pwpool_new(srv->loop, PW_THREADS, PW_QUEUE, pw_done, srv)) == NULL)
		return -1;
	io->pw_submit = pw_submit;
	return 0;
}

int
main(int argc, char **argv)
{
	struct medsrv_config cfg;
	struct medsrv_io io;
	struct server srv;
	struct options o;
	struct in_addr addr, first_addr = { 0 };
	char err[512], dbpath[4096], url[512], line[520];
	const char *host;
	uint16_t port = 0, first_port = 0;
	int rc = 1, i;
	long fdl;

	memset(&srv, 0, sizeof(srv));
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	log_init("shoal-server", o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (sodium_init() < 0)
		fatalx("event=startup_failed reason=sodium_init");
	/* One fd per control connection: the soft limit raised to the hard one, and the cap
	 * follows it (0: unlimited or unknown), less what the store, sockets and logs need. */
	fdl = acceptor_raise_fd_limit();
	srv.conn_max = fdl == 0 ? CONN_MAX_UNLIMITED : fdl > 2 * CONN_FD_RESERVE ?
	    (unsigned)(fdl > CONN_MAX_UNLIMITED ? CONN_MAX_UNLIMITED : fdl) - CONN_FD_RESERVE :
	    CONN_FD_RESERVE;
	log_info("event=fd_limit soft=%ld conn_max=%u", fdl, srv.conn_max);
	signal(SIGPIPE, SIG_IGN);

	if (identity_load_or_create(o.state_dir, "server.key", &srv.kp, err, sizeof(err)) < 0) {
		log_warnx("event=startup_failed reason=\"%s\"", err);
		return 1;
	}
	if ((size_t)snprintf(dbpath, sizeof(dbpath), "%s/mediator.db", o.state_dir) >=
	    sizeof(dbpath)) {
		log_warnx("event=startup_failed reason=\"state path too long\"");
		goto out;
	}
	if ((srv.st = store_open(o.store ? o.store : dbpath, err, sizeof(err))) == NULL) {
		log_warnx("event=startup_failed reason=\"%s\"", err);
		goto out;
	}
	/* the URL is not logged: it may hold a password */
	log_info("event=store_opened backend=%s", store_kind(srv.st));
	/* before listening: a restart meets every node at once (a failure only costs reads) */
	(void)store_warm(srv.st);
	for (i = 0; i < o.n_listen; i++) {
		if (resolve_ipv4(o.listen_host[i], &addr) < 0) {
			log_warnx("event=startup_failed reason=\"cannot resolve %s\"",
			    o.listen_host[i]);
			goto out;
		}
		if (open_sockets(&srv, i, &addr, o.listen_port[i], &port) < 0) {
			log_warn("event=startup_failed reason=bind listen=%s:%u", o.listen_host[i],
			    o.listen_port[i]);
			goto out;
		}
		if (i == 0) {
			first_port = port;
			first_addr = addr;
		}
		else
			log_info("event=listening listen=%s:%u index=%d", o.listen_host[i], port, i);
	}
	port = first_port;

	if ((srv.loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		log_warnx("event=startup_failed reason=ev_loop");
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.range = o.range;
	cfg.prefix_len = o.prefix_len;
	cfg.chat_keep = (unsigned)o.chat_history;
	cfg.register_budget = o.register_budget < 0 ? UINT_MAX : (unsigned)o.register_budget;
	cfg.relay_pairs = (unsigned)o.relay_pairs;
	cfg.pw_opslimit = o.pwhash_fast ? crypto_pwhash_OPSLIMIT_MIN :
	    crypto_pwhash_OPSLIMIT_INTERACTIVE;
	cfg.pw_memlimit = o.pwhash_fast ? crypto_pwhash_MEMLIMIT_MIN :
	    crypto_pwhash_MEMLIMIT_INTERACTIVE;
	cfg.n_nat_socks = (uint8_t)srv.n_udp;
	cfg.n_relay_allow = o.n_relay_allow;
	memcpy(cfg.relay_allow, o.relay_allow, sizeof(cfg.relay_allow));
	if (load_relay_allow(o.state_dir, &cfg) != 0) {
		log_warn("event=startup_failed reason=\"cannot read %s/relays.allow\"", o.state_dir);
		goto out;
	}
	memcpy(cfg.nat_socks, srv.udp_sock, sizeof(cfg.nat_socks));
	memset(&io, 0, sizeof(io));
	conn_medsrv_io(&srv, &io);
	udp_medsrv_io(&srv, &io);
	if (pw_medsrv_io(&srv, &io) != 0) {
		log_warnx("event=startup_failed reason=\"cannot start the password workers\"");
		goto out;
	}
	if ((srv.med = medsrv_new(srv.st, &cfg, &io)) == NULL || udp_start(&srv) < 0) {
		log_warnx("event=startup_failed reason=out_of_memory");
		goto out;
	}
	/* On PostgreSQL, other instances may share the database: presence and events between
	 * them (a single instance pays one idle connection for it). */
	if (o.store && (srv.cluster = cluster_new(srv.loop, o.store, srv.st, srv.med, err,
	    sizeof(err))) == NULL) {
		log_warnx("event=startup_failed reason=\"%s\"", err);
		goto out;
	}
	conn_start(&srv);
	start_relay(&srv, &o, ntohl(first_addr.s_addr), first_port);
	ev_timer_init(&srv.relay_tick_w, relay_tick_cb, 1., 1.);
	srv.relay_tick_w.data = &srv;
	ev_timer_start(srv.loop, &srv.relay_tick_w);
	srv.reclaim_age = (int64_t)o.reclaim_days * 86400;
	ev_timer_init(&srv.reclaim_w, reclaim_cb, 60., RECLAIM_EVERY_S);
	srv.reclaim_w.data = &srv;
	if (srv.reclaim_age > 0)
		ev_timer_start(srv.loop, &srv.reclaim_w);
	ev_signal_init(&srv.sigterm_w, signal_cb, SIGTERM);
	ev_signal_start(srv.loop, &srv.sigterm_w);
	ev_signal_init(&srv.sigint_w, signal_cb, SIGINT);
	ev_signal_start(srv.loop, &srv.sigint_w);

	host = o.public_host ? o.public_host : o.listen_host[0];
	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	if (conn_string_format(host, port, srv.kp.pub, url, sizeof(url)) < 0) {
		log_warnx("event=startup_failed reason=\"cannot format the connection string\"");
		goto out;
	}
	snprintf(line, sizeof(line), "%s\n", url);
	if (write_atomic(o.state_dir, "url", line) < 0) {
		log_warn("event=startup_failed reason=\"cannot write %s/url\"", o.state_dir);
		goto out;
	}
	printf("url=%s\n", url);
	fflush(stdout);
	log_info("event=listening listen=%s:%u range=%s/%u url=%s udp_sockets=%d%s",
	    o.listen_host[0], port, ip4_str(o.range, err), o.prefix_len, url, srv.n_udp,
	    o.pwhash_fast ? " pwhash=fast_test_only" : "");

	ev_run(srv.loop, 0);
	rc = 0;
out:
	/* The cluster first (our nodes go offline for the other instances), then the mediator
	 * (it forgets sessions without calling back), then the connections. */
	cluster_free(srv.cluster);
	medsrv_free(srv.med);
	pwpool_free(srv.pw);
	relay_sock_free(srv.relay);
	sodium_memzero(srv.relay_key, sizeof(srv.relay_key));
	if (srv.loop) {
		conn_shutdown(&srv);
		udp_stop(&srv);
		ev_timer_stop(srv.loop, &srv.reclaim_w);
		ev_timer_stop(srv.loop, &srv.relay_tick_w);
		ev_signal_stop(srv.loop, &srv.sigterm_w);
		ev_signal_stop(srv.loop, &srv.sigint_w);
	}
	for (i = 0; i < srv.n_listen; i++)
		if (srv.listen[i].fd >= 0)
			close(srv.listen[i].fd);
	for (i = 0; i < srv.n_udp; i++)
		close(srv.udp_fd[i]);
	store_close(srv.st);
	sodium_memzero(&srv.kp, sizeof(srv.kp));
	return rc;
}
