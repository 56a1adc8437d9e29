/*
 * run: the `shoal run` verb. Asks shoald (status) for its shim socket, finds
 * libshoal-preload.so ($SHOAL_PRELOAD, then the build tree next to this binary, then
 * $(pkglibdir)), refuses programs the shim cannot work in (static, Go, setuid/setgid) with a
 * pointer to SOCKS5 and `shoal forward`, sets LD_PRELOAD (ours first) and SHOAL_SHIM_SOCK, and
 * execs the program: its exit status is ours.
 * Must not touch: the daemon's libraries; the shim's behaviour (lanproxy/).
 */
#include "config.h"
#include "cli/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/client.h"

#ifndef SHOAL_PKGLIBDIR
#define SHOAL_PKGLIBDIR "/usr/local/lib/shoal"
#endif

#define PRELOAD_NAME "libshoal-preload.so"

enum {
	EXIT_FAILED = 1, EXIT_UNREACHABLE = 3, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127,
	STATUS_WAIT_MS = 10000,
};

static const char alternatives[] =
    "use shoald's SOCKS5 proxy or `shoal forward` for it instead";

static int
is_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where libshoal-preload.so is, as an absolute path in out. 0 or -1. */
static int
find_preload(char *out, size_t cap)
{
	static const char *const rel[] = {
		"lanproxy/" PRELOAD_NAME,       /* build tree: shoal is at the top */
		"../lanproxy/" PRELOAD_NAME,    /* build tree: shoal in a subdirectory */
		PRELOAD_NAME,
		"../lib/shoal/" PRELOAD_NAME,   /* installed with a relocated prefix */
	};
	char exe[PATH_MAX], cand[PATH_MAX + 64], *slash;
	const char *env = getenv("SHOAL_PRELOAD");
	ssize_t n;
	size_t i;

	if (env && env[0]) {
		if (!is_file(env) || !realpath(env, out))
			return -1;
		return strlen(out) < cap ? 0 : -1;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/'))) {
			*slash = '\0';
			for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				snprintf(cand, sizeof(cand), "%s/%s", exe, rel[i]);
				if (is_file(cand) && realpath(cand, out))
					return 0;
			}
		}
	}
	snprintf(cand, sizeof(cand), "%s/%s", SHOAL_PKGLIBDIR, PRELOAD_NAME);
	if (is_file(cand) && strlen(cand) < cap) {
		memcpy(out, cand, strlen(cand) + 1);
		return 0;
	}
	return -1;
}

/* The program exec will run, as execvp would find it. 0, or -1 with errno. */
static int
resolve(const char *cmd, char *out, size_t cap)
{
	const char *path = getenv("PATH"), *p, *end;
	struct stat st;
	size_t dl;
	int saw_eacces = 0;

	if (strchr(cmd, '/')) {
		if (strlen(cmd) >= cap) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(out, cmd, strlen(cmd) + 1);
		return stat(out, &st);
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = end + 1) {
		end = strchr(p, ':');
		dl = end ? (size_t)(end - p) : strlen(p);
		if (dl + 1 + strlen(cmd) < cap) {
			if (dl == 0)
				snprintf(out, cap, "%s", cmd);
			else
				snprintf(out, cap, "%.*s/%s", (int)dl, p, cmd);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return 0;
				saw_eacces = 1;
			}
		}
		if (!end)
			break;
	}
	errno = saw_eacces ? EACCES : ENOENT;
	return -1;
}

/* Refuses what the shim cannot work in. 0 to go ahead, else the exit status. */
static int
check_program(const char *shown, const char *path)
{
	enum run_verdict v;
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) && S_ISREG(st.st_mode)) {
		fprintf(stderr, "shoal: %s is setuid/setgid: the loader ignores LD_PRELOAD for it, "
		    "so the LAN shim cannot work; %s\n", shown, alternatives);
		return EXIT_CANNOT_RUN;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;       /* execve will say what is wrong */
	v = run_check_fd(fd);
	close(fd);
	if (v == RUN_OK)
		return 0;
	fprintf(stderr, "shoal: %s %s; %s\n", shown, run_verdict_text(v), alternatives);
	return EXIT_CANNOT_RUN;
}

/*
 * Where shoald keeps its shim socket when it cannot tell us: next to the control socket
 * (lanproxy/server/lanproxy.h, shim_socket_path). 0 or -1.
 */
static int
default_shim_socket(const char *control, char *out, size_t cap)
{
	const char *slash = strrchr(control, '/');
	int n;

	if (!slash)
		n = snprintf(out, cap, "shim.sock");
	else
		n = snprintf(out, cap, "%.*s/shim.sock", (int)(slash - control), control);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/*
 * shoald's shim socket path into out. 0, or the exit status after an error line. shoald not
 * running is not an error: the program runs normally, and its shim says so once and keeps
 * trying, so it joins the LAN when shoald comes up.
 */
static int
ask_daemon(const char *control, char *out, size_t cap)
{
	json_t *req, *resp;
	const char *sock, *msg;
	char err[512];
	int fd, e;

	if ((fd = client_connect(control, err, sizeof(err))) == -1) {
		e = errno;
		if (e != EPERM && default_shim_socket(control, out, cap) == 0)
			return 0;
		client_say_unreachable(control, err, e);
		return EXIT_UNREACHABLE;
	}
	req = json_pack("{s:i, s:s}", "id", 1, "cmd", "status");
	resp = req ? client_call(fd, req, 1, STATUS_WAIT_MS, err, sizeof(err)) : NULL;
	if (!req)
		snprintf(err, sizeof(err), "out of memory");
	json_decref(req);
	close(fd);
	if (!resp) {
		fprintf(stderr, "shoal: %s\n", err);
		return EXIT_FAILED;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		msg = json_string_value(json_object_get(resp, "error"));
		fprintf(stderr, "shoal: %s\n", msg ? msg : "shoald refused the status request");
		json_decref(resp);
		return EXIT_FAILED;
	}
	sock = json_string_value(json_object_get(resp, "shim_socket"));
	if (!sock || !sock[0] || strlen(sock) >= cap) {
		fprintf(stderr, "shoal: shoald at %s offers no LAN shim socket (an older shoald?); "
		    "%s\n", control, alternatives);
		json_decref(resp);
		return EXIT_FAILED;
	}
	memcpy(out, sock, strlen(sock) + 1);
	json_decref(resp);
	return 0;
}

/* LD_PRELOAD with ours first, keeping what was there (without a second copy of ours). */
static int
set_preload(const char *so)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;
	size_t n;
	int rc;

	if (!old || !old[0])
		return setenv("LD_PRELOAD", so, 1);
	n = strlen(so) + 1 + strlen(old) + 1;
	if (!(v = malloc(n)))
		return -1;
	if (strstr(old, so))
		snprintf(v, n, "%s", old);
	else
		snprintf(v, n, "%s:%s", so, old);
	rc = setenv("LD_PRELOAD", v, 1);
	free(v);
	return rc;
}

int
run_exec(const char *control, char *const argv[])
{
	char so[PATH_MAX], prog[PATH_MAX], sock[PATH_MAX];
	int rc;

	if ((rc = ask_daemon(control, sock, sizeof(sock))))
		return rc;
	if (find_preload(so, sizeof(so)) == -1) {
		fprintf(stderr, "shoal: cannot find %s (set SHOAL_PRELOAD, or install shoal)\n",
		    PRELOAD_NAME);
		return EXIT_FAILED;
	}
	if (resolve(argv[0], prog, sizeof(prog)) == -1) {
		fprintf(stderr, "shoal: %s: %s\n", argv[0], errno == ENOENT && !strchr(argv[0], '/') ?
		    "command not found" : strerror(errno));
		return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
	}
	if ((rc = check_program(argv[0], prog)))
		return rc;
	if (set_preload(so) == -1 || setenv("SHOAL_SHIM_SOCK", sock, 1) == -1) {
		fprintf(stderr, "shoal: cannot set the environment: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	fflush(NULL);
	execv(prog, argv);
	rc = errno;
	fprintf(stderr, "shoal: cannot run %s: %s\n", argv[0], strerror(rc));
	return rc == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}
