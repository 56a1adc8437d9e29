/*
 * main: shoal-relay's start-up and shutdown: options, keys, the sockets, registration,
 * signals.
 *
 *   shoal-relay --listen HOST:PORT --state DIR --server CONNECTION-STRING [--name NAME]
 *               [--tcp-port N|off] [--rate-mbit N] [--stats-interval S] [-v]
 *   shoal-relay --listen HOST:PORT --key-file FILE ...        (standalone, no mediator)
 *
 * With --server the relay registers with that mediator (relay/register.c) as the static key
 * in DIR/relay.key (made on first start, like the daemon's; its public half is logged for the
 * operator's --relay-allow) and takes its relay key from the mediator. With --key-file FILE
 * holds the relay key (64 hex digits) shared with a mediator by hand (docs/PROTOCOL.md 8).
 * Counters go to the log as one line every --stats-interval seconds (default 60) and on
 * SIGUSR1. shoal-server embeds the same relay (--relay-port).
 * Must not touch: forwarding rules (engine.c), socket I/O (sock.c, tcp.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "crypto/identity.h"
#include "mproto/msg.h"
#include "relay/register.h"
#include "relay/sock.h"

struct options {
	uint32_t addr;
	uint16_t port;
	const char *key_file;
	const char *state_dir;
	const char *server;
	const char *name;
	long tcp_port;                  /* 0: the UDP port's number; -1: none */
	double rate_mbit;
	double stats_interval;
	int verbose;
};

static void
usage(FILE *f)
{
	fputs("usage: shoal-relay --listen HOST:PORT (--state DIR --server CONNECTION-STRING |\n"
	    "                   --key-file FILE) [--name NAME] [--tcp-port N|off]\n"
	    "                   [--rate-mbit N] [--stats-interval S] [-v|--verbose]\n"
	    "                   [-h|--help] [--version]\n"
	    "  --listen HOST:PORT   UDP address to relay on (HOST: an IPv4 address or 0.0.0.0;\n"
	    "                       0.0.0.0: the mediator tells nodes our connection's source)\n"
	    "  --state DIR          where the relay's own key lives (DIR/relay.key, made once)\n"
	    "  --server STRING      the mediator to register with (shoal://HOST:PORT/KEY)\n"
	    "  --name NAME          the relay's name in the pool (default: relay)\n"
	    "  --tcp-port N|off     TCP transport for nodes without UDP (default: PORT; 443 works)\n"
	    "  --key-file FILE      standalone: the relay key shared with a mediator (64 hex)\n"
	    "  --rate-mbit N        per-node limit of relayed traffic (default: none)\n"
	    "  --stats-interval S   counters in the log every S seconds (default 60; 0: never;\n"
	    "                       SIGUSR1 logs them at once)\n"
	    "  -v, --verbose        debug logging\n"
	    "  -h, --help           this help\n"
	    "  --version            print the version\n", f);
}

static int
parse_listen(const char *s, struct options *o)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	struct in_addr a;
	char *end;
	unsigned long p;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end != '\0' || end == colon + 1 || p == 0 || p > 65535 ||
	    inet_pton(AF_INET, host, &a) != 1)
		return -1;
	o->addr = ntohl(a.s_addr);
	o->port = (uint16_t)p;
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_KEY = 256, OPT_RATE, OPT_STATS, OPT_STATE, OPT_SERVER, OPT_NAME, OPT_TCP,
	    OPT_VERSION };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "key-file", required_argument, NULL, OPT_KEY },
		{ "state", required_argument, NULL, OPT_STATE },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "tcp-port", required_argument, NULL, OPT_TCP },
		{ "rate-mbit", required_argument, NULL, OPT_RATE },
		{ "stats-interval", required_argument, NULL, OPT_STATS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch, have_listen = 0;

	memset(o, 0, sizeof(*o));
	o->stats_interval = 60;
	while ((ch = getopt_long(argc, argv, "l:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (parse_listen(optarg, o) != 0) {
				fprintf(stderr, "shoal-relay: --listen wants IPv4:PORT, got \"%s\"\n",
				    optarg);
				return -1;
			}
			have_listen = 1;
			break;
		case OPT_KEY:
			o->key_file = optarg;
			break;
		case OPT_STATE:
			o->state_dir = optarg;
			break;
		case OPT_SERVER:
			o->server = optarg;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_TCP:
			if (strcmp(optarg, "off") == 0) {
				o->tcp_port = -1;
				break;
			}
			o->tcp_port = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg || o->tcp_port < 1 || o->tcp_port > 65535) {
				fprintf(stderr, "shoal-relay: --tcp-port wants 1..65535 or off, got "
				    "\"%s\"\n", optarg);
				return -1;
			}
			break;
		case OPT_RATE:
		case OPT_STATS: {
			double v = strtod(optarg, &end);

			if (*end != '\0' || end == optarg || v < 0 || v > 1e6) {
				fprintf(stderr, "shoal-relay: bad number \"%s\"\n", optarg);
				return -1;
			}
			if (ch == OPT_RATE)
				o->rate_mbit = v;
			else
				o->stats_interval = v;
			break;
		}
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("shoal-relay %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!have_listen || optind != argc ||
	    (o->key_file == NULL) == (o->server == NULL || o->state_dir == NULL)) {
		usage(stderr);
		return -1;
	}
	if (o->key_file != NULL && (o->server != NULL || o->state_dir != NULL)) {
		fprintf(stderr, "shoal-relay: --key-file is the standalone mode: no --server/--state\n");
		return -1;
	}
	if (o->name == NULL)
		o->name = "relay";
	/* what RELAY_HELLO accepts (PROTOCOL.md 4.2): a bad name is a clear error here */
	if (!relay_name_valid(o->name)) {
		fprintf(stderr, "shoal-relay: --name wants 1..%d printable characters without "
		    "spaces, got \"%s\"\n", RELAY_NAME_MAX_LEN, o->name);
		return -1;
	}
	return 0;
}

/* The key file: 64 hex digits, an optional newline. 0 or -1 (message printed). */
static int
read_key(const char *path, uint8_t key[RELAY_KEY_LEN])
{
	char buf[2 * RELAY_KEY_LEN + 4];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "shoal-relay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n != 2 * RELAY_KEY_LEN || hex_decode(buf, key, RELAY_KEY_LEN) != 0) {
		sodium_memzero(buf, sizeof(buf));
		fprintf(stderr, "shoal-relay: %s: want the relay key as %d hex digits\n", path,
		    2 * RELAY_KEY_LEN);
		return -1;
	}
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void
usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	relay_sock_log_stats(w->data);
}

struct relay_ctx {                       /* main()'s, for the callbacks */
	struct relay_sock *sock;
};

static void
reg_welcome(void *arg, uint16_t id, const uint8_t key[RELAY_KEY_LEN])
{
	struct relay_ctx *c = arg;

	relay_sock_set_key(c->sock, key);
	log_info("event=relay_key_set id=%u", id);
}

static void
reg_stats(void *arg, struct msg_relay_stats *out)
{
	struct relay_ctx *c = arg;
	struct relay_stats st;

	relay_sock_get_stats(c->sock, &st);
	relay_stats_to_msg(&st, out);
}

/* --server / --state: our static key (made once) and the registration config. 0 or -1. */
static int
registration_setup(const struct options *o, struct noise_keypair *kp,
    struct relay_register_config *cfg, uint16_t udp_port, uint16_t tcp_port)
{
	char err[256], hex[2 * KEY_LEN + 1];

	if (identity_load_or_create(o->state_dir, "relay.key", kp, err, sizeof(err)) < 0) {
		fprintf(stderr, "shoal-relay: %s\n", err);
		return -1;
	}
	memset(cfg, 0, sizeof(*cfg));
	if (conn_string_parse_list(o->server, &cfg->server, err, sizeof(err)) < 0) {
		fprintf(stderr, "shoal-relay: --server: %s\n", err);
		return -1;
	}
	snprintf(cfg->name, sizeof(cfg->name), "%s", o->name);
	cfg->udp.addr = o->addr;
	cfg->udp.port = udp_port;
	cfg->tcp_port = tcp_port;
	hex_encode(kp->pub, KEY_LEN, hex);
	/* The operator allows this key on the mediator (--relay-allow). */
	log_info("event=relay_identity key=%s", hex);
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct relay_limits lim;
	struct relay_ctx ctx;
	struct relay_register *reg = NULL;
	struct relay_register_config rcfg;
	struct relay_register_ops rops = { reg_welcome, reg_stats, &ctx };
	struct noise_keypair kp;
	struct ev_loop *loop;
	ev_signal sigint, sigterm, sigusr1;
	uint8_t key[RELAY_KEY_LEN];
	int tport;

	if (parse_options(argc, argv, &o) != 0)
		return 2;
	log_init("shoal-relay", o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (sodium_init() < 0)
		return 1;
	/* Registered relays start with a key nobody knows: no BIND passes before WELCOME. */
	if (o.key_file != NULL ? read_key(o.key_file, key) != 0 :
	    (randombytes_buf(key, sizeof(key)), 0))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	loop = EV_DEFAULT;
	lim.rate_bytes = o.rate_mbit * 1e6 / 8;
	lim.burst_bytes = lim.rate_bytes / 10 > 256 * 1024 ? lim.rate_bytes / 10 : 256 * 1024;
	tport = o.tcp_port < 0 ? -1 : o.tcp_port > 0 ? (int)o.tcp_port : o.port;
	ctx.sock = relay_sock_new(loop, o.addr, o.port, tport, key, &lim, o.stats_interval);
	sodium_memzero(key, sizeof(key));
	if (ctx.sock == NULL)
		return 1;
	if (o.server != NULL) {
		if (registration_setup(&o, &kp, &rcfg, relay_sock_port(ctx.sock),
		    relay_sock_tcp_port(ctx.sock)) != 0 ||
		    (reg = relay_register_new(loop, &rcfg, &kp, &rops)) == NULL) {
			relay_sock_free(ctx.sock);
			return 1;
		}
	}
	log_info("event=relay_listening port=%u tcp_port=%u rate_mbit=%.0f",
	    relay_sock_port(ctx.sock), relay_sock_tcp_port(ctx.sock), o.rate_mbit);
	if (reg)
		relay_register_start(reg);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigusr1, usr1_cb, SIGUSR1);
	sigusr1.data = ctx.sock;
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigusr1);
	ev_run(loop, 0);
	relay_sock_log_stats(ctx.sock);
	relay_register_free(reg);
	relay_sock_free(ctx.sock);
	sodium_memzero(&kp, sizeof(kp));
	log_info("event=stopped");
	return 0;
}
