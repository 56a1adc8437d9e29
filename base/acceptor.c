/*
 * acceptor: see acceptor.h. One round accepts at most ACCEPT_BATCH connections so one busy
 * listener cannot starve the rest of the loop.
 */
#include "config.h"
#include "base/acceptor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sockowner.h"

enum { ACCEPT_BATCH = 64 };

struct acceptor {
	ev_io io;                               /* first: the watcher callback casts back */
	ev_timer pause;
	struct ev_loop *loop;
	const char *name;
	unsigned reserve;
	acceptor_cb cb;
	void *arg;
	int owner_only;
	unsigned (*on_full)(void *arg);
	void *full_arg;
	double logged_at;                       /* last "paused" line; 0: never */
	double foreign_logged_at;               /* last "refused another user" line */
	uint64_t unlogged;                      /* pauses since that line */
	struct acceptor_stats st;
};

/* The soft descriptor limit, or 0 when unknown / unlimited (no reserve is kept then). */
static long
fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (rlim_t)0x7fffffff)
		return 0;
	return (long)rl.rlim_cur;
}

long
acceptor_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	return fd_limit();
}

static void
pause_listener(struct acceptor *a, const char *reason, int err)
{
	double now = ev_now(a->loop);

	a->st.pauses++;
	a->unlogged++;
	ev_io_stop(a->loop, &a->io);
	ev_timer_set(&a->pause, ACCEPTOR_PAUSE_S, 0.);
	ev_timer_start(a->loop, &a->pause);
	if (a->logged_at != 0 && now - a->logged_at < ACCEPTOR_LOG_S)
		return;
	log_warnx("event=accept_paused listener=%s reason=%s errno=%d pause_s=%.0f pauses=%llu "
	    "refused=%llu", a->name, reason, err, ACCEPTOR_PAUSE_S,
	    (unsigned long long)a->unlogged, (unsigned long long)a->st.refused);
	a->logged_at = now;
	a->unlogged = 0;
}

/* Whether the connection on fd comes from a socket of our own uid. */
static int
ours(struct acceptor *a, int fd)
{
	double now = ev_now(a->loop);
	uid_t uid = (uid_t)-1;
	int rc = sockowner_peer_uid(fd, &uid), e = errno;

	if (rc == 0 && uid == getuid())
		return 1;
	a->st.foreign++;
	if (a->foreign_logged_at == 0 || now - a->foreign_logged_at >= ACCEPTOR_LOG_S) {
		if (rc == 0)
			log_warnx("event=connection_refused listener=%s reason=other_user uid=%u "
			    "refused=%llu hint=\"--allow-other-users lets them in\"", a->name,
			    (unsigned)uid, (unsigned long long)a->st.foreign);
		else
			log_warnx("event=connection_refused listener=%s reason=owner_unknown "
			    "error=\"%s\" refused=%llu", a->name, strerror(e),
			    (unsigned long long)a->st.foreign);
		a->foreign_logged_at = now;
	}
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct acceptor *a = (struct acceptor *)w;
	struct sockaddr_storage ss;
	socklen_t len;
	long limit = a->reserve ? fd_limit() : 0;
	int fd, i;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		fd = accept4(a->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				if (a->on_full && a->on_full(a->full_arg) > 0)
					continue;
				pause_listener(a, "no_fds", errno);
			}
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("event=accept_failed listener=%s", a->name);
			return;
		}
		if (limit > 0 && (long)fd >= limit - (long)a->reserve &&
		    !(a->on_full && a->on_full(a->full_arg) > 0)) {
			close(fd);
			a->st.refused++;
			pause_listener(a, "fd_reserve", EMFILE);
			return;
		}
		if (a->owner_only && !ours(a, fd)) {
			close(fd);
			continue;
		}
		a->st.accepted++;
		if (a->cb(a->arg, fd, (const struct sockaddr *)&ss, len) != 0)
			return;
	}
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct acceptor *a = w->data;

	(void)revents;
	ev_io_start(loop, &a->io);
}

struct acceptor *
acceptor_new(struct ev_loop *loop, int fd, const char *name, unsigned reserve, acceptor_cb cb,
    void *arg)
{
	struct acceptor *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		log_warn("event=acceptor_alloc_failed listener=%s", name);
		return NULL;
	}
	a->loop = loop;
	a->name = name;
	a->reserve = reserve;
	a->cb = cb;
	a->arg = arg;
	ev_io_init(&a->io, accept_cb, fd, EV_READ);
	ev_timer_init(&a->pause, resume_cb, ACCEPTOR_PAUSE_S, 0.);
	a->pause.data = a;
	ev_io_start(loop, &a->io);
	return a;
}

void
acceptor_free(struct acceptor *a)
{
	if (a == NULL)
		return;
	ev_io_stop(a->loop, &a->io);
	ev_timer_stop(a->loop, &a->pause);
	free(a);
}

void
acceptor_hold(struct acceptor *a, double s)
{
	if (!ev_is_active(&a->io))
		return;
	a->st.holds++;
	ev_io_stop(a->loop, &a->io);
	ev_timer_stop(a->loop, &a->pause);
	ev_timer_set(&a->pause, s, 0.);
	ev_timer_start(a->loop, &a->pause);
}

void
acceptor_owner_only(struct acceptor *a, int on)
{
	a->owner_only = on;
}

void
acceptor_on_full(struct acceptor *a, unsigned (*fn)(void *arg), void *arg)
{
	a->on_full = fn;
	a->full_arg = arg;
}

void
acceptor_get_stats(const struct acceptor *a, struct acceptor_stats *st)
{
	*st = a->st;
}
