/*
 * main: shoal-relay's start-up and shutdown: options, the relay key, the socket, signals.
 *
 *   shoal-relay --listen HOST:PORT --key-file FILE [--rate-mbit N] [--stats-interval S] [-v]
 *
 * FILE holds the relay key (64 hex digits) this relay shares with the mediator that grants
 * its pairs (docs/PROTOCOL.md 8). Counters go to the log as one line every --stats-interval
 * seconds (default 60) and on SIGUSR1. shoal-server embeds the same relay (--relay-port).
 * Must not touch: forwarding rules (engine.c), socket I/O (sock.c).
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
#include "relay/sock.h"

struct options {
	uint32_t addr;
	uint16_t port;
	const char *key_file;
	double rate_mbit;
	double stats_interval;
	int verbose;
};

static void
usage(FILE *f)
{
	fputs("usage: shoal-relay --listen HOST:PORT --key-file FILE [--rate-mbit N]\n"
	    "                   [--stats-interval S] [-v]\n"
	    "  --listen HOST:PORT   UDP address to relay on (HOST: an IPv4 address or 0.0.0.0)\n"
	    "  --key-file FILE      the relay key shared with the mediator (64 hex digits)\n"
	    "  --rate-mbit N        per-node limit of relayed traffic (default: none)\n"
	    "  --stats-interval S   counters in the log every S seconds (default 60; 0: never;\n"
	    "                       SIGUSR1 logs them at once)\n", f);
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
	enum { OPT_KEY = 256, OPT_RATE, OPT_STATS };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "key-file", required_argument, NULL, OPT_KEY },
		{ "rate-mbit", required_argument, NULL, OPT_RATE },
		{ "stats-interval", required_argument, NULL, OPT_STATS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
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
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!have_listen || o->key_file == NULL || optind != argc) {
		usage(stderr);
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

int
main(int argc, char **argv)
{
	struct options o;
	struct relay_limits lim;
	struct relay_sock *r;
	struct ev_loop *loop;
	ev_signal sigint, sigterm, sigusr1;
	uint8_t key[RELAY_KEY_LEN];

	if (parse_options(argc, argv, &o) != 0)
		return 2;
	log_init("shoal-relay", o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (sodium_init() < 0 || read_key(o.key_file, key) != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	loop = EV_DEFAULT;
	lim.rate_bytes = o.rate_mbit * 1e6 / 8;
	lim.burst_bytes = lim.rate_bytes / 10 > 256 * 1024 ? lim.rate_bytes / 10 : 256 * 1024;
	r = relay_sock_new(loop, o.addr, o.port, key, &lim, o.stats_interval);
	sodium_memzero(key, sizeof(key));
	if (r == NULL)
		return 1;
	log_info("event=relay_listening port=%u rate_mbit=%.0f", relay_sock_port(r), o.rate_mbit);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigusr1, usr1_cb, SIGUSR1);
	sigusr1.data = r;
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigusr1);
	ev_run(loop, 0);
	relay_sock_log_stats(r);
	relay_sock_free(r);
	log_info("event=stopped");
	return 0;
}
