/*
 * args: shoald's command line (getopt_long) into a struct daemon_config, after the optional
 * configuration file (conffile.h: its settings are options placed before the command line's,
 * so flags win). Without flags the state lives in $XDG_STATE_HOME/shoal and the mediator is
 * the one last given (STATE_DIR/server, saved by main once the state directory exists).
 *
 *   shoald [--server CONNSTR] [--state DIR] [--config PATH] [--socks HOST:PORT|off]
 *          [--control PATH] [--udp-port N] [--nick NICK] [--no-portmap] [-v|--verbose]
 *   SHOAL_PORTMAP=off (or 0, no) in the environment also turns port mapping off.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsloc.h"
#include "crypto/identity.h"
#include "daemon/conffile.h"
#include "daemon/daemon.h"
#include "daemon/statefile.h"

enum { EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: shoald [--server CONNSTR] [--state DIR] [--config PATH] [--socks HOST:PORT|off]\n"
    "              [--control PATH] [--udp-port N] [--nick NICK] [--allow-other-users]\n"
    "              [--no-portmap] [--ui 127.0.0.1:PORT|off]\n"
    "              [-v|--verbose] [-h|--help] [--version]\n"
    "  --server CONNSTR    mediator connection string, shoal://HOST:PORT/SERVERKEY\n"
    "                      (default: the one last given, kept in the state directory)\n"
    "  --state DIR         where the node key and last address are kept\n"
    "                      (default $XDG_STATE_HOME/shoal, else ~/.local/state/shoal)\n"
    "  --config PATH       settings file, `key = value` per line, keys as these long\n"
    "                      options (default $XDG_CONFIG_HOME/shoal/shoald.conf, else\n"
    "                      ~/.config/shoal/shoald.conf; optional; flags win over it)\n"
    "  --socks HOST:PORT   SOCKS5 listener (default 127.0.0.1:1080; \"off\" disables)\n"
    "  --control PATH      control socket (default $XDG_RUNTIME_DIR/shoal/shoald.sock)\n"
    "  --udp-port N        peer UDP port (default: any free port)\n"
    "  --nick NICK         nickname shown to other members\n"
    "  --allow-other-users let other users of this machine use the SOCKS5 port, forwards and\n"
    "                      `shoal run` aliases (default: only connections of our own user)\n"
    "  --no-portmap        do not ask the LAN gateway (UPnP-IGD, NAT-PMP) for a mapping of\n"
    "                      our peer UDP port (default: ask; SHOAL_PORTMAP=off does the same)\n"
    "  --ui HOST:PORT      the window (`shoal ui`), loopback only (default 127.0.0.1 and\n"
    "                      any free port; \"off\" disables)\n"
    "  -v, --verbose       debug logging\n"
    "  --version           print the version\n";

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

/* --config PATH (or =PATH) on the command line (*named set), else the default; NULL when
 * --help or --version make the file irrelevant (a broken one must not hide the help). */
static const char *
config_path(int argc, char **argv, char *buf, size_t cap, int *named)
{
	const char *path = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--version") == 0)
			return NULL;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	if ((*named = path != NULL))
		return path;
	return fsloc_default_config(buf, cap) == 0 ? buf : NULL;
}

static int parse(int argc, char **argv, struct daemon_config *cfg, int *verbose);

int
daemon_parse_args(int argc, char **argv, struct daemon_config *cfg, int *verbose)
{
	static struct conf_args conf;
	char cpath[4096], err[1200];
	char *all[1 + CONF_MAX_ARGS + 256];
	int i, n = 0, named = 0;
	const char *path = config_path(argc, argv, cpath, sizeof(cpath), &named);

	if (argc > 256)
		return usage_error("%s", "too many arguments");
	memset(&conf, 0, sizeof(conf));
	if (path && conffile_load(path, named, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "shoald: %s\n", err);
		return EXIT_USAGE;
	}
	/* The file's options first: a flag given on the command line comes later and wins. */
	all[n++] = argv[0];
	for (i = 0; i < conf.n; i++)
		all[n++] = conf.v[i];
	for (i = 1; i < argc; i++)
		all[n++] = argv[i];
	optind = 1;
	return parse(n, all, cfg, verbose);
}

static int
parse(int argc, char **argv, struct daemon_config *cfg, int *verbose)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 'd' },
		{ "socks", required_argument, NULL, 'S' },
		{ "control", required_argument, NULL, 'c' },
		{ "udp-port", required_argument, NULL, 'u' },
		{ "nick", required_argument, NULL, 'n' },
		{ "allow-other-users", no_argument, NULL, 'A' },
		{ "no-portmap", no_argument, NULL, 'P' },
		{ "ui", required_argument, NULL, 'U' },
		{ "config", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	const char *server = NULL, *env;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->socks_host, sizeof(cfg->socks_host), "127.0.0.1");
	snprintf(cfg->ui_host, sizeof(cfg->ui_host), "127.0.0.1");
	cfg->socks_port = 1080;
	env = getenv("SHOAL_PORTMAP");
	cfg->portmap = !(env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0 ||
	    strcmp(env, "no") == 0));
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
		case 'U':
			if (strcmp(optarg, "off") == 0)
				cfg->ui_host[0] = '\0';
			else if (parse_hostport(optarg, cfg->ui_host, sizeof(cfg->ui_host),
			    &cfg->ui_port) != 0 || strncmp(cfg->ui_host, "127.", 4) != 0)
				return usage_error("bad --ui value (want 127.x.y.z:PORT or off): %s",
				    optarg);
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
		case 'A':
			cfg->allow_others = 1;
			break;
		case 'C':
			break;          /* read before the options (daemon_parse_args) */
		case 'P':
			cfg->portmap = 0;
			break;
		case 'v':
			*verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case 'V':
			printf("shoald %s\n", PACKAGE_VERSION);
			return -1;
		case ':':
			return usage_error("missing value for %s", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (cfg->state_dir[0] == '\0' &&
	    fsloc_default_state(cfg->state_dir, sizeof(cfg->state_dir)) != 0)
		return usage_error("%s", "no home directory for the default state; use --state DIR");
	if (server != NULL) {
		if (strlen(server) >= sizeof(cfg->server))
			return usage_error("%s", "--server connection string too long");
		snprintf(cfg->server, sizeof(cfg->server), "%s", server);
		cfg->server_given = 1;
	} else if (statefile_read(cfg->state_dir, "server", cfg->server,
	    sizeof(cfg->server)) == 0) {
		cfg->server[strcspn(cfg->server, "\r\n")] = '\0';
	} else {
		fprintf(stderr, "shoald: no mediator yet: give it once with --server "
		    "shoal://HOST:PORT/KEY (or `shoal up shoal://HOST:PORT/KEY`); it is remembered "
		    "in %s\n", cfg->state_dir);
		return EXIT_USAGE;
	}
	if (conn_string_parse_list(cfg->server, &cfg->server_cs, err, sizeof(err)) != 0) {
		fprintf(stderr, "shoald: bad %s connection string: %s\n",
		    cfg->server_given ? "--server" : "remembered (STATE_DIR/server)", err);
		return EXIT_USAGE;
	}
	if (cfg->control_path[0] == '\0' &&
	    fsloc_default_control(cfg->control_path, sizeof(cfg->control_path)) != 0)
		return usage_error("%s", "default control path too long; use --control");
	return 0;
}

