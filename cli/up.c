/*
 * up: see up.h. Both wait on what the daemon itself says over its control socket (status
 * answered and "connected"; the socket refusing once it is gone), checked every 100 ms within
 * a bound, since a process that is not our child offers nothing else to wait on.
 */
#include "config.h"
#include "cli/up.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fsloc.h"
#include "cli/client.h"
#include "cli/daemonconf.h"

enum { EXIT_FAILED = 1, DOWN_WAIT_S = 15, CALL_MS = 5000, LOG_TAIL = 12 };

static void
nap_100ms(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The daemon's status, or NULL when nothing answers (errno from the connect). */
static json_t *
status_of(const char *path, pid_t *pid)
{
	char err[512];
	struct ucred cr;
	socklen_t len = sizeof(cr);
	json_t *req, *resp;
	int fd, e;

	if ((fd = client_connect(path, err, sizeof(err))) == -1)
		return NULL;
	if (pid && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		*pid = cr.pid;
	req = json_pack("{s:i, s:s}", "id", 1, "cmd", "status");
	resp = client_call(fd, req, 1, CALL_MS, err, sizeof(err));
	e = errno;
	json_decref(req);
	close(fd);
	errno = e;
	return resp;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int
connected(json_t *st)
{
	return strcmp(jstr(st, "server"), "connected") == 0 && jstr(st, "address")[0] != '\0';
}

/* Gone: no such process, or a zombie its parent has not reaped yet (it serves nothing). */
static int
gone(pid_t pid)
{
	char path[64], buf[256], *rp;
	ssize_t n;
	int fd;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')' */
	return (rp = strrchr(buf, ')')) != NULL && rp[1] == ' ' && rp[2] == 'Z';
}

/* The last lines of the log, for a start that failed. */
static void
log_tail(const char *log)
{
	char buf[8192], *p;
	ssize_t n;
	off_t size;
	int fd, lines = 0;

	if ((fd = open(log, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf + n; p > buf; p--)
		if (p[-1] == '\n' && p != buf + n && ++lines > LOG_TAIL)
			break;
	fprintf(stderr, "shoal: the end of %s:\n%s", log, p);
}

/* shoald beside this program (a build tree, or the same bin directory), else PATH's. */
static void
shoald_path(char *out, size_t cap)
{
	char exe[4096], *slash;
	ssize_t n;

	snprintf(out, cap, "shoald");
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return;
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s/shoald", exe) < cap && access(out, X_OK) == 0)
		return;
	snprintf(out, cap, "shoald");
}

/* Starts shoald detached (its own session, output to log). Its pid, or -1. */
static pid_t
spawn(const char *control, int control_given, const char *server, const char *log)
{
	char prog[4096];
	const char *argv[8];
	pid_t pid;
	int n = 0, fd;

	shoald_path(prog, sizeof(prog));
	argv[n++] = prog;
	if (server) {
		argv[n++] = "--server";
		argv[n++] = server;
	}
	if (control_given) {
		argv[n++] = "--control";
		argv[n++] = control;
	}
	argv[n] = NULL;
	if ((pid = fork()) != 0)
		return pid;
	setsid();
	if ((fd = open("/dev/null", O_RDONLY)) >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (strchr(prog, '/'))
		execv(prog, (char *const *)argv);
	else
		execvp(prog, (char *const *)argv);
	fprintf(stderr, "shoal up: cannot start %s: %s\n", prog, strerror(errno));
	_exit(127);
}

static int
report(json_t *st, int json, const char *how)
{
	if (json) {
		json_object_del(st, "id");
		json_dumpf(st, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		printf("shoald %s: %s (%s), connected to %s\n", how, jstr(st, "address"),
		    jstr(st, "nick")[0] ? jstr(st, "nick") : "no nick", jstr(st, "server_url"));
	}
	json_decref(st);
	return fflush(stdout) == EOF ? EXIT_FAILED : 0;
}

int
up_run(const char *control, int control_given, const char *server, long wait_s, int json)
{
	char state[4096], log[4200], why[512];
	double deadline;
	json_t *st = status_of(control, NULL);
	pid_t pid = -1, done;
	int ws;

	if (wait_s <= 0)
		wait_s = UP_WAIT_DEFAULT_S;
	deadline = mono() + (double)wait_s;
	if (st != NULL) {
		if (server && strcmp(jstr(st, "server_url"), server) != 0)
			fprintf(stderr, "shoal: shoald already runs with %s; to change the mediator: "
			    "shoal down, then shoal up %s\n", jstr(st, "server_url"), server);
	} else {
		if (errno == EPERM) {
			fprintf(stderr, "shoal: not starting a daemon at %s: the socket or its "
			    "directory is not safe\n", control);
			return EXIT_FAILED;
		}
		/* the log goes where shoald keeps its state: its config file may say where */
		if ((daemonconf_get("state", state, sizeof(state)) != 0 &&
		    fsloc_default_state(state, sizeof(state)) != 0) ||
		    (size_t)snprintf(log, sizeof(log), "%s/shoald.log", state) >= sizeof(log)) {
			fprintf(stderr, "shoal: no home directory for shoald's state\n");
			return EXIT_FAILED;
		}
		/* its parents may not exist on a first run (~/.local/state) */
		if (fsloc_mkdirs(state, why, sizeof(why)) != 0 ||
		    fsloc_check_parent(log, why, sizeof(why)) != 0) {
			fprintf(stderr, "shoal: cannot use the state directory %s: %s\n", state, why);
			return EXIT_FAILED;
		}
		if ((pid = spawn(control, control_given, server, log)) < 0) {
			fprintf(stderr, "shoal: cannot start shoald: %s\n", strerror(errno));
			return EXIT_FAILED;
		}
	}
	for (;;) {
		if (st && connected(st))
			return report(st, json, pid > 0 ? "started" : "is running");
		json_decref(st);
		if (pid > 0 && (done = waitpid(pid, &ws, WNOHANG)) == pid) {
			fprintf(stderr, "shoal: shoald exited (%s %d)\n", WIFEXITED(ws) ? "status" :
			    "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
			log_tail(log);
			return EXIT_FAILED;
		}
		if (mono() > deadline) {
			fprintf(stderr, "shoal: shoald is not connected to its mediator after %ld s%s\n",
			    wait_s, pid > 0 ? "" : " (shoal status says more)");
			if (pid > 0) {
				log_tail(log);
				/* it is not stopped: a mediator that is down for a while is
				 * reached when it is back, so say what runs and how to stop it */
				fprintf(stderr, "shoal: shoald (pid %d) keeps trying in the "
				    "background; `shoal down` stops it\n", (int)pid);
			}
			return EXIT_FAILED;
		}
		nap_100ms();
		st = status_of(control, NULL);
	}
}

int
down_run(const char *control, int json)
{
	double deadline = mono() + DOWN_WAIT_S;
	json_t *st;
	pid_t pid = 0;

	if ((st = status_of(control, &pid)) == NULL || pid <= 0) {
		json_decref(st);
		if (json)
			printf("{\n  \"ok\": true,\n  \"running\": false\n}\n");
		else
			printf("shoald is not running\n");
		return 0;
	}
	json_decref(st);
	/* client_connect checked that the socket's server is our user's process */
	if (kill(pid, SIGTERM) != 0) {
		fprintf(stderr, "shoal: cannot stop shoald (pid %d): %s\n", (int)pid,
		    strerror(errno));
		return EXIT_FAILED;
	}
	while (!gone(pid)) {
		if (mono() > deadline) {
			fprintf(stderr, "shoal: shoald (pid %d) is still running after %d s\n",
			    (int)pid, DOWN_WAIT_S);
			return EXIT_FAILED;
		}
		nap_100ms();
	}
	if (json)
		printf("{\n  \"ok\": true,\n  \"running\": false,\n  \"stopped_pid\": %d\n}\n",
		    (int)pid);
	else
		printf("shoald stopped (pid %d)\n", (int)pid);
	return 0;
}
