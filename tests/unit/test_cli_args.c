/*
 * Unit tests for cli/args: argv -> request JSON (golden, compact) or a usage error,
 * table-driven.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "tests/unit/unit.h"

#define A(...) { "shoal", __VA_ARGS__, NULL }

/* Command lines that become a request: the request JSON with id 1. */
static const struct {
	const char *argv[10];
	const char *json;
} good[] = {
	{ A("status"), "{\"id\":1,\"cmd\":\"status\"}" },
	{ A("--json", "list"), "{\"id\":1,\"cmd\":\"list\"}" },
	{ A("list", "--json"), "{\"id\":1,\"cmd\":\"list\"}" },
	{ A("set-nick", "alice"), "{\"id\":1,\"cmd\":\"set-nick\",\"nick\":\"alice\"}" },
	{ A("create", "home-lan"), "{\"id\":1,\"cmd\":\"create\",\"network\":\"home-lan\"}" },
	{ A("create", "n", "--password", "pw"),
	  "{\"id\":1,\"cmd\":\"create\",\"network\":\"n\",\"password\":\"pw\"}" },
	{ A("join", "-p", "pw", "n"),
	  "{\"id\":1,\"cmd\":\"join\",\"network\":\"n\",\"password\":\"pw\"}" },
	{ A("join", "n", "--password="),
	  "{\"id\":1,\"cmd\":\"join\",\"network\":\"n\",\"password\":\"\"}" },
	{ A("join", "--", "-weird-"), "{\"id\":1,\"cmd\":\"join\",\"network\":\"-weird-\"}" },
	{ A("leave", "n"), "{\"id\":1,\"cmd\":\"leave\",\"network\":\"n\"}" },
	{ A("go-online", "n"), "{\"id\":1,\"cmd\":\"go-online\",\"network\":\"n\"}" },
	{ A("go-offline", "n"), "{\"id\":1,\"cmd\":\"go-offline\",\"network\":\"n\"}" },
	{ A("delete", "n"), "{\"id\":1,\"cmd\":\"delete\",\"network\":\"n\"}" },
	{ A("set-pass", "n", ""),
	  "{\"id\":1,\"cmd\":\"set-pass\",\"network\":\"n\",\"password\":\"\"}" },
	{ A("set-pass", "n", "--", "-x"),
	  "{\"id\":1,\"cmd\":\"set-pass\",\"network\":\"n\",\"password\":\"-x\"}" },
	{ A("set-access", "n", "lock"),
	  "{\"id\":1,\"cmd\":\"set-access\",\"network\":\"n\",\"access\":\"lock\"}" },
	{ A("set-access", "n", "auto"),
	  "{\"id\":1,\"cmd\":\"set-access\",\"network\":\"n\",\"access\":\"auto\"}" },
	{ A("approve", "n", "bob"),
	  "{\"id\":1,\"cmd\":\"approve\",\"network\":\"n\",\"peer\":\"bob\"}" },
	{ A("reject", "n", "5.0.0.3"),
	  "{\"id\":1,\"cmd\":\"reject\",\"network\":\"n\",\"peer\":\"5.0.0.3\"}" },
	{ A("evict", "n", "0123abcd"),
	  "{\"id\":1,\"cmd\":\"evict\",\"network\":\"n\",\"peer\":\"0123abcd\"}" },
	{ A("expose", "8080"),
	  "{\"id\":1,\"cmd\":\"expose\",\"port\":8080,\"udp\":false,\"remove\":false}" },
	{ A("expose", "53/udp", "--remove"),
	  "{\"id\":1,\"cmd\":\"expose\",\"port\":53,\"udp\":true,\"remove\":true}" },
	{ A("expose", "22/tcp"),
	  "{\"id\":1,\"cmd\":\"expose\",\"port\":22,\"udp\":false,\"remove\":false}" },
	{ A("forward", "8080", "bob:80"),
	  "{\"id\":1,\"cmd\":\"forward\",\"local_port\":8080,\"peer\":\"bob\",\"port\":80,"
	  "\"remove\":false}" },
	{ A("forward", "8080", "5.0.0.3:65535"),
	  "{\"id\":1,\"cmd\":\"forward\",\"local_port\":8080,\"peer\":\"5.0.0.3\",\"port\":65535,"
	  "\"remove\":false}" },
	{ A("forward", "8080", "--remove"),
	  "{\"id\":1,\"cmd\":\"forward\",\"local_port\":8080,\"remove\":true}" },
	{ A("ping", "bob"), "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"bob\"}" },
	{ A("ping", "bob", "-c", "5"), "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"bob\",\"count\":5}" },
	{ A("ping", "-c2", "bob"), "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"bob\",\"count\":2}" },
	{ A("ping", "bob", "--count=100"),
	  "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"bob\",\"count\":100}" },
	{ A("--control", "/x/s.sock", "status"), "{\"id\":1,\"cmd\":\"status\"}" },
	{ A("chat", "lan", "hello all"),
	  "{\"id\":1,\"cmd\":\"chat\",\"network\":\"lan\",\"text\":\"hello all\"}" },
	{ A("chat", "--to", "bob", "hi"),
	  "{\"id\":1,\"cmd\":\"chat\",\"peer\":\"bob\",\"text\":\"hi\"}" },
	{ A("chat", "--follow"), "{\"id\":1,\"cmd\":\"chat-follow\"}" },
	{ A("chat", "--history", "lan", "--limit", "10"),
	  "{\"id\":1,\"cmd\":\"chat-history\",\"network\":\"lan\",\"limit\":10}" },
	{ A("chat", "--history", "--to", "bob"),
	  "{\"id\":1,\"cmd\":\"chat-history\",\"peer\":\"bob\"}" },
};

/* Command lines that are usage errors: the error must contain the text. */
static const struct {
	const char *argv[10];
	const char *err;
} bad[] = {
	{ { "shoal", NULL }, "no command given" },
	{ A("frobnicate"), "unknown command \"frobnicate\"" },
	{ A("frob\nx"), "unknown command \"frob?x\"" },    /* errors stay one line */
	{ A("chat", "lan"), "chat: usage" },
	{ A("chat", "--follow", "lan"), "chat: usage" },
	{ A("chat", "--to", "bob", "--follow"), "chat: usage" },
	{ A("chat", "lan", "hi", "--limit", "3"), "chat: usage" },
	{ A("chat", "lan", "bad\ntext"), "control characters" },
	{ A("--password", "x", "join", "n"), "unknown option --password" },
	{ A("status", "extra"), "too many arguments" },
	{ A("up", "http://x"), "up: expected a connection string" },
	{ A("up", "shoal://a:1/k", "more"), "too many arguments" },
	{ A("down", "now"), "too many arguments" },
	{ A("up", "--wait", "0"), "--wait must be a number of seconds" },
	{ A("up", "--wait", "3601"), "--wait must be a number of seconds" },
	{ A("up", "--wait", "5s"), "--wait must be a number of seconds" },
	{ A("up", "--wait"), "--wait" },
	{ A("down", "--wait", "5"), "unknown option --wait" },
	{ A("up", "--wai", "5"), "unknown option --wai" },
	{ A("completion", "zsh"), "only bash" },
	{ A("completion"), "missing arguments" },
	{ A("status", "--remove"), "unknown option --remove" },
	/* whole option names only: getopt_long's prefixes are not taken */
	{ A("join", "n", "--pass", "x"), "unknown option --pass" },
	{ A("--cont", "/x", "status"), "unknown option --cont" },
	{ A("ping", "bob", "--cou=3"), "unknown option --cou=3" },
	{ A("ping", "bob", "-zc3"), "unknown option -z" },
	{ A("--jso", "status"), "unknown option --jso" },
	{ A("join"), "missing arguments" },
	{ A("join", "n", "m"), "too many arguments" },
	{ A("join", "n", "--password"), "--password needs a value" },
	{ A("join", "n", "-p", "a", "-p", "b"), "given twice" },
	{ A("join", ""), "NAME must not be empty" },
	{ A("join", "0123456789012345678901234567890123456789012345678901234567890123X"),
	  "too long" },
	{ A("join", "a\tb"), "control characters" },
	{ A("set-nick", ""), "NICK must not be empty" },
	{ A("set-pass", "n"), "missing arguments" },
	{ A("set-access", "n", "open"), "expected lock, unlock, manual or auto" },
	{ A("approve", "n"), "missing arguments" },
	{ A("expose", "0"), "port must be a number from 1 to 65535" },
	{ A("expose", "65536"), "port must be a number" },
	{ A("expose", "+22"), "port must be a number" },
	{ A("expose", "22/sctp"), "/tcp or /udp" },
	{ A("expose", "/udp"), "port must be a number" },
	{ A("expose", "1234567890/udp"), "bad port" },
	{ A("forward", "8080"), "missing PEER:PORT" },
	{ A("forward", "x", "bob:80"), "LOCALPORT must be a number" },
	{ A("forward", "8080", "bob"), "expected PEER:PORT" },
	{ A("forward", "8080", ":80"), "expected PEER:PORT" },
	{ A("forward", "8080", "bob:"), "PORT must be a number" },
	{ A("forward", "8080", "bob:99999"), "PORT must be a number" },
	{ A("ping"), "missing arguments" },
	{ A("ping", "bob", "-c", "0"), "count must be a number from 1 to 100" },
	{ A("ping", "bob", "-c", "101"), "count must be" },
	{ A("ping", "bob", "-c"), "-c needs a value" },
	{ A("ping", "bob", "-cx"), "count must be" },
	{ A("--control"), "--control needs a PATH" },
	{ A("--control=", "status"), "--control needs a PATH" },
	{ A("help", "nope"), "unknown command \"nope\"" },
	{ A("help", "a", "b"), "too many arguments" },
	{ A("run"), "run: missing the command to run" },
	{ A("run", "--"), "run: missing the command to run" },
	{ A("run", "-x", "ls"), "run: unknown option -x" },
	{ A("--password", "x", "run", "ls"), "unknown option --password" },
};

static int
argc_of(const char *const argv[])
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

static void
test_good(void)
{
	struct cli_args a;
	char err[256], *s;
	json_t *req;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (cli_args_parse(argc_of(good[i].argv), (char *const *)good[i].argv, &a, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "good[%zu] refused: %s\n", i, err);
			CHECK(0);
			continue;
		}
		CHECK(!a.help);
		req = cli_args_request(&a, 1);
		CHECK(req != NULL);
		if (!req)
			continue;
		s = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (strcmp(s, good[i].json) != 0) {
			fprintf(stderr, "good[%zu]: got %s\n            want %s\n", i, s,
			    good[i].json);
			CHECK(0);
		}
		free(s);
		json_decref(req);
	}
}

static void
test_bad(void)
{
	struct cli_args a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (cli_args_parse(argc_of(bad[i].argv), (char *const *)bad[i].argv, &a, err,
		    sizeof(err)) != -1) {
			fprintf(stderr, "bad[%zu] accepted\n", i);
			CHECK(0);
			continue;
		}
		if (!strstr(err, bad[i].err)) {
			fprintf(stderr, "bad[%zu]: error \"%s\", want \"%s\"\n", i, err, bad[i].err);
			CHECK(0);
		}
		CHECK(strchr(err, '\n') == NULL);
	}
}

static void
test_globals_and_help(void)
{
	static const char *const a1[] = A("--control=/run/s.sock", "--json", "status");
	static const char *const a2[] = A("--help");
	static const char *const a3[] = A("join", "--help");
	static const char *const a4[] = A("help", "forward");
	static const char *const a5[] = A("help");
	static const char *const a6[] = A("ping", "bob", "-h");
	struct cli_args a;
	char err[256];

	CHECK_EQ(cli_args_parse(argc_of(a1), (char *const *)a1, &a, err, sizeof(err)), 0);
	CHECK(a.json && a.control && strcmp(a.control, "/run/s.sock") == 0);
	CHECK(strcmp(a.cmd, "status") == 0);

	CHECK_EQ(cli_args_parse(argc_of(a2), (char *const *)a2, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb == NULL);
	CHECK_EQ(cli_args_parse(argc_of(a3), (char *const *)a3, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb && strcmp(a.help_verb, "join") == 0);
	CHECK_EQ(cli_args_parse(argc_of(a4), (char *const *)a4, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb && strcmp(a.help_verb, "forward") == 0);
	CHECK_EQ(cli_args_parse(argc_of(a5), (char *const *)a5, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb == NULL);
	/* help wins over missing or extra arguments */
	CHECK_EQ(cli_args_parse(argc_of(a6), (char *const *)a6, &a, err, sizeof(err)), 0);
	CHECK(a.help && strcmp(a.help_verb, "ping") == 0);
}

static void
test_verb_table(void)
{
	const struct cli_verb_info *v;
	size_t i;

	for (i = 0; (v = cli_verb_at(i)); i++) {
		CHECK(v->synopsis && strncmp(v->synopsis, v->name, strlen(v->name)) == 0);
		CHECK(v->summary && v->summary[0]);
		CHECK(cli_verb_find(v->name) == v);
	}
	CHECK_EQ(i, 24);
	CHECK(cli_verb_find("nope") == NULL);
	/* what completion offers per verb is what the parser takes */
	CHECK(strcmp(cli_verb_options("join"), "--password") == 0);
	CHECK(strcmp(cli_verb_options("chat"), "--to --follow --history --limit") == 0);
	CHECK(strcmp(cli_verb_options("status"), "") == 0);
	CHECK(strcmp(cli_verb_options("up"), "--wait") == 0);
}

/* up and down are the CLI's own (no request): up keeps its connection string. */
static void
test_up(void)
{
	const char *a1[] = { "shoal", "up", "shoal://example.org:7777/abcd", NULL };
	const char *a2[] = { "shoal", "--json", "up", NULL };
	const char *a3[] = { "shoal", "up", "--wait=7", "shoal://example.org:7777/abcd", NULL };
	const char *a4[] = { "shoal", "up", "--wait", "3600", NULL };
	struct cli_args a;
	char err[256];

	CHECK_EQ(cli_args_parse(argc_of(a1), (char *const *)a1, &a, err, sizeof(err)), 0);
	CHECK(strcmp(a.cmd, "up") == 0 && a.server &&
	    strcmp(a.server, "shoal://example.org:7777/abcd") == 0);
	CHECK_EQ(cli_args_parse(argc_of(a2), (char *const *)a2, &a, err, sizeof(err)), 0);
	CHECK(strcmp(a.cmd, "up") == 0 && a.server == NULL && a.json && a.wait == 0);
	CHECK_EQ(cli_args_parse(argc_of(a3), (char *const *)a3, &a, err, sizeof(err)), 0);
	CHECK(a.wait == 7 && a.server && strcmp(a.server, "shoal://example.org:7777/abcd") == 0);
	CHECK_EQ(cli_args_parse(argc_of(a4), (char *const *)a4, &a, err, sizeof(err)), 0);
	CHECK(a.wait == 3600 && a.server == NULL);
	{
		/* several mediator instances: one argument, passed to shoald whole */
		const char *a5[] = { "shoal", "up", "shoal://m1.example.org:7777,10.0.0.2:7777/abcd",
		    NULL };

		CHECK_EQ(cli_args_parse(argc_of(a5), (char *const *)a5, &a, err, sizeof(err)), 0);
		CHECK(a.server && strcmp(a.server, "shoal://m1.example.org:7777,10.0.0.2:7777/abcd")
		    == 0);
	}
}

static void
test_not_utf8(void)
{
	static const char *const a1[] = A("join", "caf\xe9");
	struct cli_args a;
	char err[256];

	CHECK_EQ(cli_args_parse(argc_of(a1), (char *const *)a1, &a, err, sizeof(err)), 0);
	CHECK(cli_args_request(&a, 1) == NULL);
}

static void
test_run(void)
{
	static const struct {
		const char *argv[10];
		const char *control;
		int argc;               /* of the command */
		const char *first, *last;
	} t[] = {
		{ A("run", "ls"), NULL, 1, "ls", "ls" },
		{ A("run", "curl", "-s", "--json", "http://5.0.0.3/"), NULL, 4, "curl",
		  "http://5.0.0.3/" },
		{ A("run", "--", "nc", "-l", "--help"), NULL, 3, "nc", "--help" },
		{ A("run", "--", "-weird-"), NULL, 1, "-weird-", "-weird-" },
		{ A("run", "--control", "/c.sock", "ls", "--control", "x"), "/c.sock", 3, "ls", "x" },
		{ A("--control=/d.sock", "run", "sh", "-c", "run"), "/d.sock", 3, "sh", "run" },
		{ A("run", "--", "--", "x"), NULL, 2, "--", "x" },
	};
	static const char *const h1[] = A("run", "--help");
	static const char *const h2[] = A("help", "run");
	struct cli_args a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		if (cli_args_parse(argc_of(t[i].argv), (char *const *)t[i].argv, &a, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "run[%zu] refused: %s\n", i, err);
			CHECK(0);
			continue;
		}
		CHECK(!a.help && a.cmd && strcmp(a.cmd, "run") == 0);
		CHECK_EQ(a.run_argc, t[i].argc);
		CHECK(a.run_argv && strcmp(a.run_argv[0], t[i].first) == 0);
		CHECK(a.run_argv && strcmp(a.run_argv[a.run_argc - 1], t[i].last) == 0);
		CHECK(a.run_argv && a.run_argv[a.run_argc] == NULL);
		CHECK((!a.control && !t[i].control) ||
		    (a.control && t[i].control && strcmp(a.control, t[i].control) == 0));
	}
	CHECK_EQ(cli_args_parse(argc_of(h1), (char *const *)h1, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb && strcmp(a.help_verb, "run") == 0);
	CHECK_EQ(cli_args_parse(argc_of(h2), (char *const *)h2, &a, err, sizeof(err)), 0);
	CHECK(a.help && a.help_verb && strcmp(a.help_verb, "run") == 0);
	CHECK(cli_verb_find("run") != NULL);
}

int
main(void)
{
	RUN(test_good);
	RUN(test_bad);
	RUN(test_globals_and_help);
	RUN(test_verb_table);
	RUN(test_up);
	RUN(test_not_utf8);
	RUN(test_run);
	return unit_finish();
}
