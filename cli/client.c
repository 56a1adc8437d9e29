/*
 * client: blocking request/response over the control socket, with one overall deadline.
 * Must not touch: argument parsing, output formatting.
 */
#include "config.h"
#include "cli/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/fsloc.h"

enum { RESPONSE_MAX = 16 * 1024 * 1024 };

int
client_connect(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	int fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "path too long");
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	/* Before connecting: what we send first may be a password. */
	if (fsloc_check_parent(path, why, whylen) != 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		e = errno;
		snprintf(why, whylen, "%s", strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	if (fsloc_check_peer(fd, why, whylen) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The response to id among the complete lines of buf[0..*len); consumed lines are removed. */
static json_t *
take_response(char *buf, size_t *len, long long id)
{
	json_t *o, *jid;
	char *nl;
	size_t linelen;

	while ((nl = memchr(buf, '\n', *len))) {
		linelen = (size_t)(nl - buf);
		o = json_loadb(buf, linelen, 0, NULL);
		memmove(buf, nl + 1, *len - linelen - 1);
		*len -= linelen + 1;
		if (!o)
			continue;
		jid = json_object_get(o, "id");
		if (json_is_integer(jid) && json_integer_value(jid) == id)
			return o;
		/* an error about an unreadable request carries id null; ours was readable */
		json_decref(o);
	}
	return NULL;
}

json_t *
client_call(int fd, json_t *req, long long id, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = now_ms() + timeout_ms, left;
	size_t len = 0, cap = 65536;
	struct pollfd pfd;
	char *line, *buf, *nb;
	json_t *resp = NULL;
	ssize_t n;
	int rc;

	if (!(line = json_dumps(req, JSON_COMPACT))) {
		snprintf(err, errlen, "cannot encode the request");
		return NULL;
	}
	rc = send_all(fd, line, strlen(line)) == -1 || send_all(fd, "\n", 1) == -1;
	free(line);
	if (rc) {
		snprintf(err, errlen, "cannot send to shoald: %s", strerror(errno));
		return NULL;
	}
	if (!(buf = malloc(cap))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while (!resp) {
		if ((left = deadline - now_ms()) <= 0) {
			snprintf(err, errlen, "no answer from shoald within %d s", timeout_ms / 1000);
			break;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		if (len == cap) {
			if (cap >= RESPONSE_MAX || !(nb = realloc(buf, cap * 2))) {
				snprintf(err, errlen, "response from shoald too long");
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "shoald closed the connection without answering%s%s",
			    n == -1 ? ": " : "", n == -1 ? strerror(errno) : "");
			break;
		}
		len += (size_t)n;
		resp = take_response(buf, &len, id);
	}
	free(buf);
	return resp;
}

void
client_say_unreachable(const char *path, const char *why, int e)
{
	if (e == EPERM)
		fprintf(stderr, "shoal: not talking to %s: %s\n", path, why);
	else if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "shoal: shoald is not running (no answer at %s): start it with "
		    "`shoal up` (the first time: `shoal up shoal://HOST:PORT/KEY`)\n", path);
	else
		fprintf(stderr, "shoal: cannot reach shoald at %s: %s\n", path, why);
}
