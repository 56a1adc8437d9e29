/*
 * args: strict parsing of the shoal command line, with getopt_long in two passes: the global
 * options up to the verb, then the verb's own options (its table entry says which) and the
 * globals again, anywhere among its arguments. Every verb says which arguments and options it
 * takes; anything else is a usage error naming the problem, never a guess (getopt_long's
 * abbreviated long options are refused). Values are
 * checked against the same limits the daemon enforces (base/proto.h) so mistakes are reported
 * before anything is sent. Must not touch: I/O, the environment, the socket.
 */
#include "config.h"
#include "cli/args.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/errmsg.h"
#include "base/proto.h"

enum {
	OPT_PASSWORD = 1 << 0,  /* --password P, -p P, --password=P */
	OPT_REMOVE = 1 << 1,    /* --remove */
	OPT_COUNT = 1 << 2,     /* -c N, -cN, --count N, --count=N */
	OPT_CHAT = 1 << 3,      /* --to PEER, --follow, --history, --limit N */
	OPT_URL = 1 << 4,       /* --url */
	OPT_WAIT = 1 << 5,      /* --wait SECONDS */
	MAX_POS = 4,
	ARGS_MAX = 256,         /* a command line longer than this is surely a mistake */
	PEER_MAX = 128,         /* as CTL_PEER_MAX in control/control_proto.h */
	PING_MAX = 100,
	CHAT_TEXT_MAX = 2000,   /* as CTL_CHAT_TEXT_MAX */
	CHAT_LIMIT_MAX = 500,
	WAIT_MAX = 3600,        /* up --wait: an hour is surely enough for a mediator to answer */
};

struct verb_def {
	struct cli_verb_info info;
	int nmin, nmax;         /* positional arguments */
	unsigned opts;
};

static const struct verb_def verbs[] = {
	{ { "up", "up [CONNSTR] [--wait SECONDS]", "start this user's shoald if needed and wait "
	    "until it is connected (CONNSTR the first time; remembered)" }, 0, 1, OPT_WAIT },
	{ { "down", "down", "stop this user's shoald" }, 0, 0, 0 },
	{ { "status", "status", "this node: address, nick, server, exposes, forwards" },
	  0, 0, 0 },
	{ { "list", "list", "networks and their members, with path and latency" }, 0, 0, 0 },
	{ { "set-nick", "set-nick NICK", "change the nick others see" }, 1, 1, 0 },
	{ { "create", "create NAME [--password P]", "create a network (you own it)" },
	  1, 1, OPT_PASSWORD },
	{ { "join", "join NAME [--password P]", "join a network" }, 1, 1, OPT_PASSWORD },
	{ { "leave", "leave NAME", "leave a network" }, 1, 1, 0 },
	{ { "go-online", "go-online NAME", "be reachable in a network again" }, 1, 1, 0 },
	{ { "go-offline", "go-offline NAME", "stay a member but drop off the network" }, 1, 1, 0 },
	{ { "delete", "delete NAME", "delete a network you own" }, 1, 1, 0 },
	{ { "set-pass", "set-pass NAME PASS", "change a network's password (\"\" removes it)" },
	  2, 2, 0 },
	{ { "set-access", "set-access NAME lock|unlock|manual|auto",
	    "lock/unlock joins, or require/stop requiring approval" }, 2, 2, 0 },
	{ { "approve", "approve NAME PEER", "let a pending member in" }, 2, 2, 0 },
	{ { "reject", "reject NAME PEER", "turn a pending member away" }, 2, 2, 0 },
	{ { "evict", "evict NAME PEER", "remove a member from a network you own" }, 2, 2, 0 },
	{ { "expose", "expose PORT[/udp] [--remove]",
	    "make 127.0.0.1:PORT reachable on your virtual address" }, 1, 1, OPT_REMOVE },
	{ { "forward", "forward LOCALPORT PEER:PORT [--remove]",
	    "listen on 127.0.0.1:LOCALPORT, connect to PEER's PORT" }, 1, 2, OPT_REMOVE },
	{ { "ping", "ping PEER [-c N]", "ping a peer through its session" }, 1, 1, OPT_COUNT },
	{ { "chat", "chat NETWORK|--to PEER MESSAGE | --follow | --history NETWORK|--to PEER "
	    "[--limit N]", "send a chat message, follow incoming ones, or read the history" },
	  0, 2, OPT_CHAT },
	{ { "ui", "ui [--url]", "open the window in the browser (--url: print its address)" },
	  0, 0, OPT_URL },
	{ { "run", "run [--] CMD [ARGS...]",
	    "run an unmodified program on the virtual LAN (LD_PRELOAD shim)" }, 0, 0, 0 },
	{ { "completion", "completion bash", "print the bash completion script" }, 1, 1, 0 },
	{ { "help", "help [COMMAND]", "show this help, or one command's" }, 0, 1, 0 },
	{ { NULL, NULL, NULL }, 0, 0, 0 },
};

static const struct verb_def *
find_verb(const char *name)
{
	size_t i;

	for (i = 0; verbs[i].info.name; i++)
		if (strcmp(verbs[i].info.name, name) == 0)
			return &verbs[i];
	return NULL;
}

const struct cli_verb_info *
cli_verb_at(size_t i)
{
	if (i >= sizeof(verbs) / sizeof(verbs[0]) || !verbs[i].info.name)
		return NULL;
	return &verbs[i].info;
}

const struct cli_verb_info *
cli_verb_find(const char *name)
{
	const struct verb_def *v = find_verb(name);

	return v ? &v->info : NULL;
}

/* Decimal digits only (no sign, no spaces), lo..hi. */
static int
parse_num(const char *s, long lo, long hi, long *out)
{
	long v = 0;
	size_t i;

	if (!s[0] || strlen(s) > 6)
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int
check_str(const char *verb, const char *what, const char *s, size_t min, size_t max,
    char *err, size_t errlen)
{
	if (strlen(s) < min)
		return errmsg_fail(err, errlen, "%s: %s must not be empty", verb, what);
	if (strlen(s) > max)
		return errmsg_fail(err, errlen, "%s: %s is too long (at most %zu bytes)", verb,
		    what, max);
	if (has_control_chars(s))
		return errmsg_fail(err, errlen, "%s: %s contains control characters", verb, what);
	return 0;
}

/* Option codes for getopt_long: the globals, then one per verb option. */
enum {
	O_JSON = 256, O_CONTROL, O_VERSION, O_PASSWORD = 'p', O_COUNT = 'c', O_HELP = 'h',
	O_REMOVE = 300, O_URL, O_FOLLOW, O_HISTORY, O_TO, O_LIMIT, O_WAIT,
};

/* Every option shoal knows, with the verb bit that allows it (0: global). */
static const struct {
	struct option o;
	unsigned bit;
} all_opts[] = {
	{ { "json", no_argument, NULL, O_JSON }, 0 },
	{ { "control", required_argument, NULL, O_CONTROL }, 0 },
	{ { "help", no_argument, NULL, O_HELP }, 0 },
	{ { "password", required_argument, NULL, O_PASSWORD }, OPT_PASSWORD },
	{ { "remove", no_argument, NULL, O_REMOVE }, OPT_REMOVE },
	{ { "count", required_argument, NULL, O_COUNT }, OPT_COUNT },
	{ { "url", no_argument, NULL, O_URL }, OPT_URL },
	{ { "to", required_argument, NULL, O_TO }, OPT_CHAT },
	{ { "follow", no_argument, NULL, O_FOLLOW }, OPT_CHAT },
	{ { "history", no_argument, NULL, O_HISTORY }, OPT_CHAT },
	{ { "limit", required_argument, NULL, O_LIMIT }, OPT_CHAT },
	{ { "wait", required_argument, NULL, O_WAIT }, OPT_WAIT },
};
enum { N_ALL_OPTS = sizeof(all_opts) / sizeof(all_opts[0]) };

/* The verb's own options, from the same table the parser takes them from. */
const char *
cli_verb_options(const char *name)
{
	static char buf[128];
	const struct verb_def *v = find_verb(name);
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; v && i < N_ALL_OPTS; i++)
		if (all_opts[i].bit != 0 && (v->opts & all_opts[i].bit))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s--%s", n ? " " : "",
			    all_opts[i].o.name);
	return buf;
}

/* The getopt_long tables of one phase: before the verb (globals and --version), or the verb's
 * (globals but --version, and its own). */
static void
opt_tables(const struct verb_def *v, struct option *longs, char *shorts)
{
	size_t i, n = 0;

	for (i = 0; i < N_ALL_OPTS; i++)
		if (all_opts[i].bit == 0 || (v && (v->opts & all_opts[i].bit)))
			longs[n++] = all_opts[i].o;
	if (!v)
		longs[n++] = (struct option){ "version", no_argument, NULL, O_VERSION };
	longs[n] = (struct option){ NULL, 0, NULL, 0 };
	/* ':' first: a missing value is told apart from an unknown option. '+' before the verb
	 * and for run: stop at the first argument that is not an option. */
	snprintf(shorts, 16, "%s:h%s%s", !v || strcmp(v->info.name, "run") == 0 ? "+" : "",
	    v && (v->opts & OPT_PASSWORD) ? "p:" : "", v && (v->opts & OPT_COUNT) ? "c:" : "");
}

/* getopt_long accepts any unambiguous prefix of a long option; shoal takes only the whole
 * name (never a guess). tok: the argument the option came from. */
static int
exact_long(const char *tok, const struct option *o)
{
	size_t n = strlen(o->name);

	if (strncmp(tok, "--", 2) != 0)
		return 1;       /* a short option */
	return strncmp(tok + 2, o->name, n) == 0 && (tok[2 + n] == '\0' || tok[2 + n] == '=');
}

/* One option getopt_long returned (c, its value val). 0, or -1 with err. */
static int
take_option(const struct verb_def *v, int c, const char *tok, const char *val,
    struct cli_args *a, char *err, size_t errlen)
{
	const char *name = v ? v->info.name : "";

	switch (c) {
	case O_JSON:
		a->json = 1;
		return 0;
	case O_HELP:
		a->help = 1;
		return 0;
	case O_VERSION:
		a->version = 1;
		return 0;
	case O_CONTROL:
		if (!val[0])
			return errmsg_fail(err, errlen, "--control needs a PATH");
		a->control = val;
		return 0;
	case O_REMOVE:
		a->remove = 1;
		return 0;
	case O_URL:
		a->url = 1;
		return 0;
	case O_FOLLOW:
		a->follow = 1;
		return 0;
	case O_HISTORY:
		a->history = 1;
		return 0;
	case O_PASSWORD:
		if (a->password)
			return errmsg_fail(err, errlen, "%s: --password given twice", name);
		if (check_str(name, "password", val, 0, PASSWORD_MAX_LEN, err, errlen) == -1)
			return -1;
		a->password = val;
		return 0;
	case O_COUNT:
		if (parse_num(val, 1, PING_MAX, &a->count) == -1)
			return errmsg_fail(err, errlen,
			    "%s: count must be a number from 1 to %d, not \"%s\"",
			    name, PING_MAX, val);
		return 0;
	case O_LIMIT:
		if (parse_num(val, 1, CHAT_LIMIT_MAX, &a->limit) == -1)
			return errmsg_fail(err, errlen, "%s: --limit must be a number from 1 to %d",
			    name, CHAT_LIMIT_MAX);
		return 0;
	case O_WAIT:
		if (parse_num(val, 1, WAIT_MAX, &a->wait) == -1)
			return errmsg_fail(err, errlen,
			    "%s: --wait must be a number of seconds from 1 to %d, "
			    "not \"%s\"", name, WAIT_MAX, val);
		return 0;
	case O_TO:
		a->peer = val;
		return check_str(name, "PEER", a->peer, 1, PEER_MAX, err, errlen);
	}
	return errmsg_fail(err, errlen, "%s: unknown option %s", name, tok);
}

/*
 * One getopt_long pass over args[*from..n) (a private copy: getopt permutes it), options into
 * a. Stops at the end, or before the verb (v NULL), or before run's command. On return *from
 * is the first argument left. 0, or -1 with err.
 */
static int
options(const struct verb_def *v, int n, char **args, int *from, struct cli_args *a,
    char *err, size_t errlen)
{
	struct option longs[N_ALL_OPTS + 2];
	char shorts[16];
	const char *tok, *val;
	char shortopt[3] = "-?";
	int c, li;

	opt_tables(v, longs, shorts);
	/* args[*from - 1] plays argv[0]: getopt starts at optind 1 of what it is given. */
	optind = 0;             /* GNU: a full reset (new tables, new array) */
	opterr = 0;
	for (;;) {
		li = -1;
		c = getopt_long(n - (*from - 1), args + (*from - 1), shorts, longs, &li);
		if (c == -1)
			break;
		tok = args[*from - 1 + optind - 1];
		val = optarg;
		/* a value given as the next argument: the option is the one before it */
		if (optarg && optind >= 2 && optarg == args[*from - 1 + optind - 1])
			tok = args[*from - 1 + optind - 2];
		/* A short option's trouble is named by its letter (it may sit in a cluster). */
		if ((c == ':' || c == '?') && optopt > 0 && optopt < 128 &&
		    strncmp(tok, "--", 2) != 0) {
			shortopt[1] = (char)optopt;
			tok = shortopt;
		}
		if (c == ':')
			return errmsg_fail(err, errlen, "%s%s%s needs a %s", v ? v->info.name : "",
			    v ? ": " : "", tok, optopt == O_CONTROL ? "PATH" : "value");
		if (c == '?' || (li >= 0 && !exact_long(tok, &longs[li]))) {
			if (!v)
				return errmsg_fail(err, errlen,
				    "unknown option %s (options of a command go "
				    "after it; see shoal help)", tok);
			return errmsg_fail(err, errlen, "%s: unknown option %s; usage: shoal %s",
			    v->info.name, tok, v->info.synopsis);
		}
		if (take_option(v, c, tok, val, a, err, errlen) == -1)
			return -1;
		if (c == O_VERSION)
			return 0;
	}
	*from += optind - 1;
	return 0;
}

/* chat's modes: send (NETWORK MESSAGE, or --to PEER MESSAGE), --follow, --history. */
static int
assign_chat(const struct verb_def *v, const char *pos[], int npos, struct cli_args *a,
    char *err, size_t errlen)
{
	int want = a->follow ? 0 : a->history ? (a->peer ? 0 : 1) : (a->peer ? 1 : 2);

	if (a->follow + a->history > 1 || (a->follow && a->peer) || (a->limit && !a->history) ||
	    npos != want)
		return errmsg_fail(err, errlen, "chat: usage: shoal %s", v->info.synopsis);
	if (a->follow) {
		a->cmd = "chat-follow";
		return 0;
	}
	if (!a->peer) {
		a->network = pos[0];
		if (check_str("chat", "NETWORK", a->network, 1, NAME_MAX_LEN, err, errlen) == -1)
			return -1;
	}
	if (a->history) {
		a->cmd = "chat-history";
		return 0;
	}
	a->text = pos[npos - 1];
	return check_str("chat", "MESSAGE", a->text, 1, CHAT_TEXT_MAX, err, errlen);
}

/* Gives the positional arguments their meaning for the verb. */
static int
assign(const struct verb_def *v, const char *pos[], int npos, struct cli_args *a, char *err,
    size_t errlen)
{
	const char *name = v->info.name, *colon, *slash;
	char port[8];

	if (strcmp(name, "set-nick") == 0) {
		a->nick = pos[0];
		return check_str(name, "NICK", a->nick, 1, NICK_MAX_LEN, err, errlen);
	}
	if (strcmp(name, "completion") == 0) {
		if (strcmp(pos[0], "bash") != 0)
			return errmsg_fail(err, errlen,
			    "completion: only bash is known, not \"%s\"", pos[0]);
		return 0;
	}
	if (strcmp(name, "up") == 0) {
		if (strncmp(pos[0], "shoal://", 8) != 0 || has_control_chars(pos[0]))
			return errmsg_fail(err, errlen, "up: expected a connection string "
			    "shoal://HOST:PORT/KEY, not \"%s\"", pos[0]);
		a->server = pos[0];
		return 0;
	}
	if (strcmp(name, "expose") == 0) {
		slash = strchr(pos[0], '/');
		if (slash && strcmp(slash, "/udp") == 0)
			a->udp = 1;
		else if (slash && strcmp(slash, "/tcp") != 0)
			return errmsg_fail(err, errlen,
			    "expose: protocol must be /tcp or /udp, not \"%s\"",
			    slash);
		if (!slash)
			slash = pos[0] + strlen(pos[0]);
		if ((size_t)(slash - pos[0]) >= sizeof(port))
			return errmsg_fail(err, errlen, "expose: bad port \"%s\"", pos[0]);
		memcpy(port, pos[0], (size_t)(slash - pos[0]));
		port[slash - pos[0]] = '\0';
		if (parse_num(port, 1, 65535, &a->port) == -1)
			return errmsg_fail(err, errlen,
			    "expose: port must be a number from 1 to 65535, "
			    "not \"%s\"", port);
		return 0;
	}
	if (strcmp(name, "forward") == 0) {
		if (parse_num(pos[0], 1, 65535, &a->local_port) == -1)
			return errmsg_fail(err, errlen,
			    "forward: LOCALPORT must be a number from 1 to "
			    "65535, not \"%s\"", pos[0]);
		if (npos < 2) {
			if (!a->remove)
				return errmsg_fail(err, errlen,
				    "forward: missing PEER:PORT; usage: shoal %s",
				    v->info.synopsis);
			return 0;
		}
		colon = strrchr(pos[1], ':');
		if (!colon || colon == pos[1])
			return errmsg_fail(err, errlen, "forward: expected PEER:PORT, not \"%s\"",
			    pos[1]);
		if (parse_num(colon + 1, 1, 65535, &a->port) == -1)
			return errmsg_fail(err, errlen,
			    "forward: PORT must be a number from 1 to 65535, "
			    "not \"%s\"", colon + 1);
		/* argv is not ours to cut: peer keeps "PEER:PORT", the request builder splits */
		if ((size_t)(colon - pos[1]) > PEER_MAX)
			return errmsg_fail(err, errlen, "forward: PEER is too long");
		if (has_control_chars(pos[1]))
			return errmsg_fail(err, errlen,
			    "forward: PEER contains control characters");
		a->peer = pos[1];
		return 0;
	}
	if (strcmp(name, "ping") == 0) {
		a->peer = pos[0];
		return check_str(name, "PEER", a->peer, 1, PEER_MAX, err, errlen);
	}
	/* the rest take a network NAME first */
	a->network = pos[0];
	if (check_str(name, "NAME", a->network, 1, NAME_MAX_LEN, err, errlen) == -1)
		return -1;
	if (strcmp(name, "set-pass") == 0) {
		a->password = pos[1];
		return check_str(name, "PASS", a->password, 0, PASSWORD_MAX_LEN, err, errlen);
	}
	if (strcmp(name, "set-access") == 0) {
		if (strcmp(pos[1], "lock") && strcmp(pos[1], "unlock") && strcmp(pos[1], "manual") &&
		    strcmp(pos[1], "auto"))
			return errmsg_fail(err, errlen,
			    "set-access: expected lock, unlock, manual or auto, "
			    "not \"%s\"", pos[1]);
		a->access = pos[1];
		return 0;
	}
	if (npos == 2) {        /* approve, reject, evict */
		a->peer = pos[1];
		return check_str(name, "PEER", a->peer, 1, PEER_MAX, err, errlen);
	}
	return 0;
}

int
cli_args_parse(int argc, char *const argv[], struct cli_args *a, char *err, size_t errlen)
{
	const struct verb_def *v = NULL;
	const char *pos[MAX_POS];
	char *args[ARGS_MAX + 1];
	int i, npos = 0;

	memset(a, 0, sizeof(*a));
	if (argc > ARGS_MAX)
		return errmsg_fail(err, errlen, "too many arguments (at most %d)", ARGS_MAX - 1);
	for (i = 0; i < argc; i++)
		args[i] = argv[i];
	args[argc] = NULL;
	/* Before the verb: the globals (getopt_long, stopping at the verb). */
	i = 1;
	if (options(NULL, argc, args, &i, a, err, errlen) == -1)
		return -1;
	if (a->version)
		return 0;
	if (i < argc) {
		if (!(v = find_verb(args[i])))
			return errmsg_fail(err, errlen, "unknown command \"%s\" (see shoal help)",
			    args[i]);
		i++;
		/* The verb's options and the globals again, anywhere among its arguments (run:
		 * up to its command, which keeps the rest, options included). */
		if (options(v, argc, args, &i, a, err, errlen) == -1)
			return -1;
		if (strcmp(v->info.name, "run") == 0) {
			if (i < argc) {
				/* run's part of the caller's argv: "+" mode permuted nothing */
				a->run_argv = &argv[i];
				a->run_argc = argc - i;
			}
		} else {
			for (; i < argc; i++) {
				if (npos >= v->nmax || npos >= MAX_POS)
					return errmsg_fail(err, errlen,
					    "%s: too many arguments; usage: shoal %s",
					    v->info.name, v->info.synopsis);
				pos[npos++] = args[i];
			}
		}
	}

	if (v && strcmp(v->info.name, "help") == 0) {
		a->help = 1;
		if (npos == 1 && !find_verb(pos[0]))
			return errmsg_fail(err, errlen, "unknown command \"%s\" (see shoal help)",
			    pos[0]);
		a->help_verb = npos == 1 ? pos[0] : NULL;
		return 0;
	}
	if (a->help) {
		a->help_verb = v ? v->info.name : NULL;
		return 0;
	}
	if (!v)
		return errmsg_fail(err, errlen, "no command given (see shoal help)");
	if (strcmp(v->info.name, "run") == 0 && !a->run_argv)
		return errmsg_fail(err, errlen, "run: missing the command to run; usage: shoal %s",
		    v->info.synopsis);
	if (npos < v->nmin)
		return errmsg_fail(err, errlen, "%s: missing arguments; usage: shoal %s",
		    v->info.name, v->info.synopsis);
	a->cmd = v->info.name;
	if (strcmp(v->info.name, "chat") == 0)
		return assign_chat(v, pos, npos, a, err, errlen);
	return npos ? assign(v, pos, npos, a, err, errlen) : 0;
}

/* A string field; argv that is not UTF-8 cannot go into JSON: counted in *bad. */
static void
set_str(json_t *o, const char *key, json_t *v, int *bad)
{
	if (!v)
		(*bad)++;
	else
		json_object_set_new(o, key, v);
}

json_t *
cli_args_request(const struct cli_args *a, long long id)
{
	json_t *o = json_pack("{s:I, s:s}", "id", (json_int_t)id, "cmd", a->cmd);
	const char *colon;
	int bad = 0;

	if (a->network)
		set_str(o, "network", json_string(a->network), &bad);
	if (a->nick)
		set_str(o, "nick", json_string(a->nick), &bad);
	if (a->access)
		set_str(o, "access", json_string(a->access), &bad);
	if (strcmp(a->cmd, "expose") == 0) {
		json_object_set_new(o, "port", json_integer(a->port));
		json_object_set_new(o, "udp", json_boolean(a->udp));
		json_object_set_new(o, "remove", json_boolean(a->remove));
	} else if (strcmp(a->cmd, "forward") == 0) {
		json_object_set_new(o, "local_port", json_integer(a->local_port));
		if (a->peer && (colon = strrchr(a->peer, ':'))) {
			set_str(o, "peer", json_stringn(a->peer, (size_t)(colon - a->peer)), &bad);
			json_object_set_new(o, "port", json_integer(a->port));
		}
		json_object_set_new(o, "remove", json_boolean(a->remove));
	} else if (a->peer) {
		set_str(o, "peer", json_string(a->peer), &bad);
	}
	if (a->password)
		set_str(o, "password", json_string(a->password), &bad);
	if (a->count)
		json_object_set_new(o, "count", json_integer(a->count));
	if (a->text)
		set_str(o, "text", json_string(a->text), &bad);
	if (a->limit)
		json_object_set_new(o, "limit", json_integer(a->limit));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
