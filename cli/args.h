/*
 * args: the shoal CLI's command line, parsed strictly by a pure function: argv in, a struct
 * cli_args (pointing into argv) or a one-line error out. Also the usage texts and the JSON
 * request a parsed command line becomes (docs/PROTOCOL.md section 5).
 * Owns: nothing; no I/O.
 */
#ifndef SHOAL_CLI_ARGS_H
#define SHOAL_CLI_ARGS_H

#include <jansson.h>
#include <stddef.h>

/* One parsed command line. Strings point into argv (or are string literals). */
struct cli_args {
	const char *control;    /* --control PATH; NULL: the default (fsloc_default_control) */
	int json;               /* --json */
	int help;               /* print usage and exit 0 */
	int version;            /* print the version and exit 0 */
	const char *help_verb;  /* with help: the verb asked about, or NULL for all */
	const char *cmd;        /* the verb, as the wire's "cmd" ("set-nick"); NULL with help */
	const char *network;
	const char *password;   /* NULL: not given */
	const char *nick;
	const char *peer;
	const char *access;     /* "lock", "unlock", "manual", "auto" */
	long port;              /* expose PORT; forward: the peer's PORT; 0 unset */
	long local_port;
	int udp;
	int remove;
	long count;             /* ping -c; 0: the daemon's default */
	const char *text;       /* chat MESSAGE */
	int follow;             /* chat --follow (cmd "chat-follow") */
	int history;            /* chat --history (cmd "chat-history") */
	long limit;             /* chat --history --limit N; 0: the daemon's default */
	int url;                /* ui --url */
	const char *server;     /* up CONNSTR; NULL: the remembered one */
	long wait;              /* up --wait SECONDS; 0: the default (30 s) */
	char *const *run_argv;  /* run: the command and its arguments (into argv, verbatim) */
	int run_argc;
};

/* Returns 0, or -1 with a one-line reason in err (a usage error: exit code 2). */
int cli_args_parse(int argc, char *const argv[], struct cli_args *a, char *err, size_t errlen);

/* The request object for a parsed command line, with the given id. New reference, or NULL
 * when an argument is not valid UTF-8. */
json_t *cli_args_request(const struct cli_args *a, long long id);

/* What `shoal help` prints: each verb's synopsis and a one-line summary. */
struct cli_verb_info {
	const char *name;       /* "join" */
	const char *synopsis;   /* "join NAME [--password P]" */
	const char *summary;    /* one line */
};
/* The i-th verb in display order, or NULL past the last. */
const struct cli_verb_info *cli_verb_at(size_t i);
/* The entry for one verb, or NULL. */
const struct cli_verb_info *cli_verb_find(const char *name);
/* The options verb `name` takes, long spellings, space-separated ("" for none). Valid until the
 * next call. */
const char *cli_verb_options(const char *name);

#endif
