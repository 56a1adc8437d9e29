/*
 * shoal: the command-line client of shoald. Parses argv (cli/args.c), sends one request over
 * the control socket (cli/client.c), prints the answer (cli/output.c, or the JSON itself with
 * --json). Exit status: 0 ok, 1 the daemon refused or failed, 2 usage error, 3 shoald not
 * reachable. Errors are one line on stderr: "shoal: <message>".
 * `shoal run` (cli/run.c) execs the program instead and exits with its status.
 * Must not touch: the daemon's libraries (it links libshoal_base.a and jansson only).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/output.h"
#include "cli/run.h"
#include "cli/completion.h"
#include "cli/daemonconf.h"
#include "cli/up.h"
#include "base/fsloc.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

/* Seconds to wait for an answer: mediator round trips time out in the daemon after 10 s;
 * a ping takes up to 3 s per probe plus 1 s between probes. */
enum { WAIT_DEFAULT_S = 20, PING_TIMEOUT_S = 3, PING_GAP_S = 1, PING_DEFAULT_COUNT = 3,
	FOLLOW_WAIT_S = 25 };    /* chat-follow's longest wait in the daemon */

static void
usage_all(FILE *f)
{
	const struct cli_verb_info *v;
	size_t i;

	fprintf(f, "usage: shoal [--control PATH] [--json] COMMAND [ARGS...]\n\ncommands:\n");
	for (i = 0; (v = cli_verb_at(i)); i++)
		fprintf(f, "  %-42s %s\n", v->synopsis, v->summary);
	fprintf(f, "\noptions:\n"
	    "  --control PATH   shoald's control socket (default: the one shoald.conf names,\n"
	    "                   else $SHOAL_CONTROL, else $XDG_RUNTIME_DIR/shoal/shoald.sock,\n"
	    "                   else /tmp/shoal-UID/shoald.sock)\n"
	    "  --json           print the daemon's JSON answer (stable, for scripts)\n"
	    "  -h, --help       this help; COMMAND --help for one command\n"
	    "  --version        print the version\n"
	    "\nPEER is a nick, a virtual address (5.x.y.z) or a node id prefix (8+ hex digits).\n"
	    "exit status: 0 ok, 1 refused or failed, 2 usage error, 3 shoald not reachable\n"
	    "(run: the program's own status; 126 cannot run it, 127 not found)\n");
}

static void
usage_verb(FILE *f, const char *name)
{
	const struct cli_verb_info *v = cli_verb_find(name);

	if (!v) {
		usage_all(f);
		return;
	}
	fprintf(f, "usage: shoal [--control PATH] [--json] %s\n  %s\n", v->synopsis, v->summary);
}

static int
wait_seconds(const struct cli_args *a)
{
	long count = a->count ? a->count : PING_DEFAULT_COUNT;

	if (strcmp(a->cmd, "ping") == 0)
		return (int)(count * (PING_TIMEOUT_S + PING_GAP_S) + WAIT_DEFAULT_S);
	return WAIT_DEFAULT_S;
}

/*
 * chat --follow: asks for what came after the last message shown, again and again (the
 * daemon answers when something arrives, or empty after a while). With --json, one compact
 * JSON object per message and line. Ends only when shoald goes away (exit 3) or refuses.
 */
static int
chat_follow(const char *path, int json)
{
	char err[512];
	json_int_t last = 0;
	json_t *req, *resp, *msgs, *m;
	long long id = 1;
	size_t i;
	int fd;

	if ((fd = client_connect(path, err, sizeof(err))) == -1) {
		client_say_unreachable(path, err, errno);
		return EXIT_UNREACHABLE;
	}
	for (;; id++) {
		req = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)id, "cmd", "chat-follow",
		    "after", last);
		resp = client_call(fd, req, id, (FOLLOW_WAIT_S + WAIT_DEFAULT_S) * 1000, err,
		    sizeof(err));
		json_decref(req);
		if (!resp) {
			fprintf(stderr, "shoal: %s\n", err);
			close(fd);
			return EXIT_UNREACHABLE;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			fprintf(stderr, "shoal: %s\n", json_string_value(json_object_get(resp, "error")) ?
			    json_string_value(json_object_get(resp, "error")) : "refused");
			json_decref(resp);
			close(fd);
			return EXIT_FAILED;
		}
		msgs = json_object_get(resp, "messages");
		if (json)
			json_array_foreach(msgs, i, m) {
				json_dumpf(m, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
				fputc('\n', stdout);
			}
		else
			output_chat(stdout, msgs);
		fflush(stdout);
		last = json_integer_value(json_object_get(resp, "last"));
		json_decref(resp);
	}
}

/*
 * shoal ui: the window's address with its token (from the file only we can read) after '#',
 * so the token never reaches a server log. Printed with --url or without a desktop; else
 * handed to xdg-open.
 */
static int
ui_open(const char *path, int url_only)
{
	char err[512], token[80], full[256];
	const char *url, *file;
	json_t *req, *resp, *ui;
	ssize_t n;
	int fd, tfd;

	if ((fd = client_connect(path, err, sizeof(err))) == -1) {
		client_say_unreachable(path, err, errno);
		return EXIT_UNREACHABLE;
	}
	req = json_pack("{s:i, s:s}", "id", 1, "cmd", "status");
	resp = client_call(fd, req, 1, WAIT_DEFAULT_S * 1000, err, sizeof(err));
	json_decref(req);
	close(fd);
	if (!resp) {
		fprintf(stderr, "shoal: %s\n", err);
		return EXIT_FAILED;
	}
	ui = json_object_get(resp, "ui");
	url = json_string_value(json_object_get(ui, "url"));
	file = json_string_value(json_object_get(ui, "token_file"));
	if (!url || !file) {
		fprintf(stderr, "shoal: the window is off (shoald --ui off)\n");
		json_decref(resp);
		return EXIT_FAILED;
	}
	if ((tfd = open(file, O_RDONLY | O_CLOEXEC)) < 0 || (n = read(tfd, token,
	    sizeof(token) - 1)) <= 0) {
		fprintf(stderr, "shoal: cannot read the window's token %s: %s\n", file,
		    strerror(errno));
		if (tfd >= 0)
			close(tfd);
		json_decref(resp);
		return EXIT_FAILED;
	}
	close(tfd);
	token[n] = '\0';
	token[strcspn(token, "\r\n")] = '\0';
	snprintf(full, sizeof(full), "%s#%s", url, token);
	json_decref(resp);
	if (url_only || (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))) {
		printf("%s\n", full);
		return fflush(stdout) == EOF ? EXIT_FAILED : 0;
	}
	execlp("xdg-open", "xdg-open", full, (char *)NULL);
	fprintf(stderr, "shoal: cannot start xdg-open (%s); open %s\n", strerror(errno), full);
	return EXIT_FAILED;
}

static int
print_json(json_t *resp)
{
	json_object_del(resp, "id");
	if (json_dumpf(resp, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == -1)
		return -1;
	fputc('\n', stdout);
	return 0;
}

int
main(int argc, char *argv[])
{
	char path[4096], err[512];
	struct cli_args a;
	json_t *req, *resp;
	const char *msg;
	int fd, ok, rc;

	if (cli_args_parse(argc, argv, &a, err, sizeof(err)) == -1) {
		fprintf(stderr, "shoal: %s\n", err);
		return EXIT_USAGE;
	}
	if (a.version) {
		printf("shoal %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (a.help) {
		if (a.help_verb)
			usage_verb(stdout, a.help_verb);
		else
			usage_all(stdout);
		return 0;
	}
	/* the daemon's own config file may name its socket: a flag wins, then the file */
	if (a.control)
		snprintf(path, sizeof(path), "%s", a.control);
	else if (daemonconf_get("control", path, sizeof(path)) != 0 &&
	    fsloc_default_control(path, sizeof(path)) == -1) {
		fprintf(stderr, "shoal: control socket path too long (set --control)\n");
		return EXIT_USAGE;
	}
	if (strcmp(a.cmd, "completion") == 0)
		return completion_bash(stdout) == 0 ? 0 : EXIT_FAILED;
	if (strcmp(a.cmd, "run") == 0)
		return run_exec(path, a.run_argv);
	if (strcmp(a.cmd, "chat-follow") == 0)
		return chat_follow(path, a.json);
	if (strcmp(a.cmd, "ui") == 0)
		return ui_open(path, a.url);
	if (strcmp(a.cmd, "up") == 0)
		return up_run(path, a.control != NULL, a.server, a.wait, a.json);
	if (strcmp(a.cmd, "down") == 0)
		return down_run(path, a.json);
	if (!(req = cli_args_request(&a, 1))) {
		fprintf(stderr, "shoal: arguments must be valid UTF-8\n");
		return EXIT_USAGE;
	}
	if ((fd = client_connect(path, err, sizeof(err))) == -1) {
		client_say_unreachable(path, err, errno);
		json_decref(req);
		return EXIT_UNREACHABLE;
	}
	resp = client_call(fd, req, 1, wait_seconds(&a) * 1000, err, sizeof(err));
	close(fd);
	json_decref(req);
	if (!resp) {
		fprintf(stderr, "shoal: %s\n", err);
		return EXIT_FAILED;
	}

	ok = json_is_true(json_object_get(resp, "ok"));
	msg = json_string_value(json_object_get(resp, "error"));
	rc = ok ? 0 : EXIT_FAILED;
	if (a.json) {
		if (print_json(resp) == -1)
			rc = EXIT_FAILED;
	} else if (ok && strcmp(a.cmd, "status") == 0) {
		output_status(stdout, resp);
	} else if (ok && strcmp(a.cmd, "list") == 0) {
		output_list(stdout, resp);
	} else if (ok && strcmp(a.cmd, "ping") == 0) {
		output_ping(stdout, resp);
	} else if (ok && strcmp(a.cmd, "chat-history") == 0) {
		output_chat(stdout, json_object_get(resp, "messages"));
	} else if (ok && strcmp(a.cmd, "chat") == 0) {
		;       /* sent: nothing to say (errors go to stderr) */
	} else if (ok) {
		output_message(stdout, resp);
	}
	if (!ok)
		fprintf(stderr, "shoal: %s\n", msg ? msg : "shoald refused the request");
	json_decref(resp);
	if (fflush(stdout) == EOF)
		rc = EXIT_FAILED;
	return rc;
}
