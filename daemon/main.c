/*
 * main: shoald's command line, start-up order and orderly shutdown (reverse order, goto
 * unwinding), and daemon_set_address (the one place that creates the netstack).
 *
 *   shoald --server CONNSTR --state DIR [--socks HOST:PORT|off] [--control PATH]
 *          [--udp-port N] [--nick NICK] [-v|--verbose] [-h|--help]
 *
 * Start order: loop, identity, transport, peers, (saved address -> netstack), mediator,
 * control, shim socket (lanproxy), socks, expose/forward. Runs as an ordinary user: nothing
 * here needs privileges.
 * Owns: struct daemon and its lifetime. Must not: contain protocol logic of any module.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "base/log.h"
#include "medclient/medclient.h"
#include "base/fsloc.h"
#include "core/peer.h"
#include "core/transport.h"
#include "control/control.h"
#include "daemon/daemon.h"
#include "ports/expose.h"
#include "lanproxy/server/lanproxy.h"
#include "netstack/netstack.h"
#include "socks/socks5.h"

enum { EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: shoald --server CONNSTR --state DIR [--socks HOST:PORT|off] [--control PATH]\n"
    "              [--udp-port N] [--nick NICK] [-v|--verbose] [-h|--help]\n"
    "  --server CONNSTR    mediator connection string, shoal://HOST:PORT/SERVERKEY\n"
    "  --state DIR         where the node key and last address are kept\n"
    "  --socks HOST:PORT   SOCKS5 listener (default 127.0.0.1:1080; \"off\" disables)\n"
    "  --control PATH      control socket (default $XDG_RUNTIME_DIR/shoal/shoald.sock)\n"
    "  --udp-port N        peer UDP port (default: any free port)\n"
    "  --nick NICK         nickname shown to other members\n"
    "  -v, --verbose       debug logging\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shoald: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see shoald --help)\n");
	return EXIT_USAGE;
}

static int
parse_port(const char *s, uint16_t *port, int allow_zero)
{
	char *end;
	unsigned long v;

	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > 65535 || (v == 0 && !allow_zero))
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int
parse_hostport(const char *s, char *host, size_t host_cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || colon == s)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= host_cap)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	return parse_port(colon + 1, port, 0);
}

/* 0: run; -1: exit 0 (help); >0: exit code. */
static int
parse_args(int argc, char **argv, struct daemon_config *cfg, int *verbose)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 'd' },
		{ "socks", required_argument, NULL, 'S' },
		{ "control", required_argument, NULL, 'c' },
		{ "udp-port", required_argument, NULL, 'u' },
		{ "nick", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	const char *server = NULL;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socks_host, sizeof(cfg->socks_host), "127.0.0.1");
	cfg->socks_port = 1080;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 'd':
			if (*optarg == '\0' || strlen(optarg) >= sizeof(cfg->state_dir))
				return usage_error("bad --state directory: %s", optarg);
			snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", optarg);
			break;
		case 'S':
			if (strcmp(optarg, "off") == 0) {
				cfg->socks_port = 0;
				cfg->socks_host[0] = '\0';
			} else if (parse_hostport(optarg, cfg->socks_host, sizeof(cfg->socks_host),
			    &cfg->socks_port) != 0) {
				return usage_error("bad --socks value (want HOST:PORT or off): %s",
				    optarg);
			}
			break;
		case 'c':
			if (*optarg == '\0' || strlen(optarg) >= sizeof(cfg->control_path))
				return usage_error("bad --control path: %s", optarg);
			snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", optarg);
			break;
		case 'u':
			if (parse_port(optarg, &cfg->udp_port, 1) != 0)
				return usage_error("bad --udp-port (want 0..65535): %s", optarg);
			break;
		case 'n':
			if (strlen(optarg) > NICK_MAX_LEN)
				return usage_error("--nick is too long: %s", optarg);
			snprintf(cfg->nick, sizeof(cfg->nick), "%s", optarg);
			break;
		case 'v':
			*verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case ':':
			return usage_error("missing value for %s", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (server == NULL)
		return usage_error("%s", "missing --server CONNSTR");
	if (cfg->state_dir[0] == '\0')
		return usage_error("%s", "missing --state DIR");
	if (conn_string_parse(server, cfg->server_host, sizeof(cfg->server_host),
	    &cfg->server_port, cfg->server_pub, err, sizeof(err)) != 0) {
		fprintf(stderr, "shoald: bad --server connection string: %s\n", err);
		return EXIT_USAGE;
	}
	if (cfg->control_path[0] == '\0' &&
	    fsloc_default_control(cfg->control_path, sizeof(cfg->control_path)) != 0)
		return usage_error("%s", "default control path too long; use --control");
	return 0;
}

/* DIR/address: "A.B.C.D/P\n", so a restart without the mediator keeps our address. */
static int
address_path(const struct daemon *d, char *out, size_t cap, const char *suffix)
{
	int n = snprintf(out, cap, "%s/address%s", d->cfg.state_dir, suffix);

	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static void
address_save(const struct daemon *d)
{
	char path[4200], tmp[4200], line[32];
	int fd, n;

	if (address_path(d, path, sizeof(path), "") != 0 ||
	    address_path(d, tmp, sizeof(tmp), ".tmp") != 0)
		return;
	n = snprintf(line, sizeof(line), "%u.%u.%u.%u/%u\n", (d->vaddr >> 24) & 255,
	    (d->vaddr >> 16) & 255, (d->vaddr >> 8) & 255, d->vaddr & 255,
	    (unsigned)d->prefix_len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, line, (size_t)n) != n || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		log_warn("event=address_save_failed path=%s", path);
		if (fd != -1)
			close(fd);
		unlink(tmp);
	}
}

static int
address_load(const struct daemon *d, uint32_t *vaddr, uint8_t *prefix_len)
{
	char path[4200], line[32];
	unsigned a, b, c, e, p;
	ssize_t n;
	int fd;

	if (address_path(d, path, sizeof(path), "") != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	line[n] = '\0';
	if (sscanf(line, "%u.%u.%u.%u/%u", &a, &b, &c, &e, &p) != 5 || a > 255 || b > 255 ||
	    c > 255 || e > 255 || p == 0 || p > 30) {
		log_warnx("event=address_file_ignored path=%s", path);
		return -1;
	}
	*vaddr = a << 24 | b << 16 | c << 8 | e;
	*prefix_len = (uint8_t)p;
	return 0;
}

static void
ns_output(void *arg, uint32_t dst, const uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	if (d->peers)
		peers_send_ip(d->peers, dst, pkt, len);
}

static const struct netstack_ops ns_ops = { ns_output };

void
daemon_set_address(struct daemon *d, uint32_t vaddr, uint8_t prefix_len)
{
	if (vaddr == d->vaddr && prefix_len == d->prefix_len && d->ns)
		return;
	d->vaddr = vaddr;
	d->prefix_len = prefix_len;
	if (d->ns == NULL) {
		d->ns = netstack_new(d->loop, vaddr, prefix_len, OVERLAY_MTU, &ns_ops, d);
		if (d->ns == NULL)
			log_warnx("event=netstack_failed");
	} else {
		netstack_set_addr(d->ns, vaddr, prefix_len);
	}
	log_info("event=address addr=%u.%u.%u.%u/%u", (vaddr >> 24) & 255, (vaddr >> 16) & 255,
	    (vaddr >> 8) & 255, vaddr & 255, (unsigned)prefix_len);
	address_save(d);
}

/* Byte 0 of a datagram decides who gets it. */
static void
udp_dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	if (pkt[0] == UDP_PROBE_REPLY) {
		if (d->med)
			medclient_udp_receive(d->med, from, pkt, len);
		return;
	}
	if (d->peers)
		peers_receive(d->peers, from, pkt, len);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("event=shutdown signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	ev_signal sigint, sigterm;
	char err[256], node_id[2 * KEY_LEN + 1], socks_desc[300], shim_path[4200];
	uint32_t saved_addr;
	uint8_t saved_prefix;
	int verbose = 0, rc;

	memset(&d, 0, sizeof(d));
	if ((rc = parse_args(argc, argv, &d.cfg, &verbose)) != 0)
		return rc < 0 ? 0 : rc;
	log_init("shoald", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (sodium_init() < 0) {
		log_warnx("event=sodium_init_failed");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = 1;

	if ((d.loop = ev_default_loop(EVFLAG_AUTO)) == NULL) {
		log_warnx("event=loop_failed");
		return 1;
	}
	if (identity_load_or_create(d.cfg.state_dir, "node.key", &d.key, err, sizeof(err)) != 0) {
		log_warnx("event=identity_failed state=%s reason=\"%s\"", d.cfg.state_dir, err);
		goto out_loop;
	}
	if ((d.tp = transport_new(d.loop, d.cfg.udp_port, udp_dispatch, &d)) == NULL)
		goto out_key;
	if ((d.peers = peers_new(&d)) == NULL) {
		log_warnx("event=peers_failed");
		goto out_transport;
	}
	/* A known address lets the overlay work even if the mediator is down right now. */
	if (address_load(&d, &saved_addr, &saved_prefix) == 0)
		daemon_set_address(&d, saved_addr, saved_prefix);
	if ((d.med = medclient_new(&d)) == NULL) {
		log_warnx("event=mediator_failed");
		goto out_netstack;
	}
	medclient_start(d.med);
	if (fsloc_make_parent(d.cfg.control_path) != 0) {
		log_warn("event=control_dir_failed path=%s", d.cfg.control_path);
		goto out_mediator;
	}
	if ((d.ctl = control_new(&d, d.cfg.control_path)) == NULL)
		goto out_mediator;
	/* Without it only `shoal run` is unavailable (status says so): not worth failing for. */
	if (shim_socket_path(d.cfg.control_path, shim_path, sizeof(shim_path)) == 0)
		d.shim = shim_server_new(&d, shim_path);
	if (d.cfg.socks_port != 0) {
		if ((d.socks = socks_server_new(&d, d.cfg.socks_host, d.cfg.socks_port)) == NULL)
			goto out_control;
		snprintf(socks_desc, sizeof(socks_desc), "%s:%u", d.cfg.socks_host,
		    (unsigned)d.cfg.socks_port);
	} else {
		snprintf(socks_desc, sizeof(socks_desc), "off");
	}
	if ((d.expose = expose_table_new(&d)) == NULL || (d.fwd = forward_table_new(&d)) == NULL) {
		log_warnx("event=expose_tables_failed");
		goto out_expose;
	}

	ev_signal_init(&sigint, signal_cb, SIGINT);
	ev_signal_init(&sigterm, signal_cb, SIGTERM);
	ev_signal_start(d.loop, &sigint);
	ev_signal_start(d.loop, &sigterm);

	hex_encode(d.key.pub, KEY_LEN, node_id);
	log_info("event=started node_id=%s udp_port=%u control=%s socks=%s", node_id,
	    (unsigned)transport_port(d.tp), d.cfg.control_path, socks_desc);
	ev_run(d.loop, 0);
	rc = 0;

	ev_signal_stop(d.loop, &sigterm);
	ev_signal_stop(d.loop, &sigint);
out_expose:
	if (d.fwd)
		forward_table_free(d.fwd);
	if (d.expose)
		expose_table_free(d.expose);
	if (d.socks)
		socks_server_free(d.socks);
out_control:
	shim_server_free(d.shim);
	if (d.ctl)
		control_free(d.ctl);
out_mediator:
	if (d.med)
		medclient_free(d.med);
out_netstack:
	if (d.ns)
		netstack_free(d.ns);
	peers_free(d.peers);
out_transport:
	transport_free(d.tp);
out_key:
	sodium_memzero(&d.key, sizeof(d.key));
out_loop:
	ev_loop_destroy(d.loop);
	log_info("event=stopped rc=%d", rc);
	return rc;
}
