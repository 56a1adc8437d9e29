/*
 * control: the listening Unix socket and the client connections of the control protocol:
 * accepting, reading request lines (newline-delimited, at most CTL_LINE_MAX bytes), writing
 * responses, and the lifetime of clients and of their pending answers.
 * What each command does lives in control_cmd.c; request validation in control_proto.c.
 * Must not touch: the mediator, peers or exposes directly.
 *
 * A client is only ever freed from its own write watcher's callback: anything else that finds
 * it dead (a failed write inside a mediator callback, say) feeds that watcher an event, so no
 * caller is left holding a freed client.
 */
#include "config.h"
#include "control/control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/acceptor.h"
#include "base/fsloc.h"
#include "base/log.h"
#include "control/control_int.h"

enum {
	CTL_MAX_CLIENTS = 64,
	CTL_MAX_PENDING = 32,           /* per client */
	CTL_OUT_MAX = 4 * 1024 * 1024,  /* a client that does not read is dropped beyond this */
};

/* The listener. Owned by its creator (daemon/main.c). */
struct control {
	struct acceptor *acc;           /* reserve 0: the others leave us descriptors */
	struct control_env env;         /* a copy: pending records point here */
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_client *clients;
	int n_clients;
	struct ctl_watch *watch;        /* control_watch.c */
};

/* One connection. Owned by its struct control. */
struct ctl_client {
	ev_io rio;                      /* first member */
	ev_io wio;
	struct control *ctl;
	struct ctl_client *next, *prev;
	struct ctl_pending *pending;
	int n_pending;
	int fd;
	int dead;                       /* close as soon as the write watcher runs */
	int eof;                        /* no more requests; close once answered */
	char *in;                       /* CTL_LINE_MAX + 1 bytes: a full line and its newline */
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
};

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents);

static void
client_kick(struct ctl_client *cl)
{
	ev_feed_event(cl->ctl->env.loop, &cl->wio, EV_WRITE);
}

static void
client_kill(struct ctl_client *cl)
{
	if (cl->dead)
		return;
	cl->dead = 1;
	ev_io_stop(cl->ctl->env.loop, &cl->rio);
	client_kick(cl);
}

static void
client_free(struct ctl_client *cl)
{
	struct control *c = cl->ctl;
	struct ctl_pending *p, *next;

	for (p = cl->pending; p; p = next) {
		next = p->next;
		p->client = NULL;
		p->next = p->prev = NULL;
		if (!p->outstanding) {
			ctl_cmd_cancel(p);
			free(p);
		}
	}
	ev_io_stop(c->env.loop, &cl->rio);
	ev_io_stop(c->env.loop, &cl->wio);
	close(cl->fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;
	free(cl->in);
	free(cl->out);
	free(cl);
}

/* Writes what it can now; the write watcher does the rest. */
static void
client_flush(struct ctl_client *cl)
{
	struct ev_loop *loop = cl->ctl->env.loop;
	ssize_t n;

	while (!cl->dead && cl->out_off < cl->out_len) {
		n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			cl->out_off += (size_t)n;
		} else if (n == -1 && errno == EINTR) {
			continue;
		} else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &cl->wio);
			return;
		} else {
			log_debug("event=control_write_failed fd=%d err=%s", cl->fd,
			    strerror(errno));
			client_kill(cl);
			return;
		}
	}
	cl->out_off = cl->out_len = 0;
	ev_io_stop(loop, &cl->wio);
	if (cl->eof && !cl->pending)
		client_kill(cl);
}

static void
client_send_line(struct ctl_client *cl, const char *s, size_t len)
{
	size_t need, cap;
	char *nb;

	if (cl->dead)
		return;
	if (cl->out_off > 0 && cl->out_off == cl->out_len)
		cl->out_off = cl->out_len = 0;
	need = cl->out_len + len + 1;
	if (need > CTL_OUT_MAX) {
		log_warnx("event=control_client_dropped fd=%d reason=not_reading", cl->fd);
		client_kill(cl);
		return;
	}
	if (need > cl->out_cap) {
		cap = cl->out_cap ? cl->out_cap : 4096;
		while (cap < need)
			cap *= 2;
		if (!(nb = realloc(cl->out, cap))) {
			client_kill(cl);
			return;
		}
		cl->out = nb;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, len);
	cl->out[cl->out_len + len] = '\n';
	cl->out_len += len + 1;
	client_flush(cl);
}

static void
client_send_json(struct ctl_client *cl, json_t *obj)
{
	char *s;

	/* Compact, one line: the newline is the frame delimiter. */
	s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s) {
		client_send_line(cl, s, strlen(s));
		free(s);
	} else {
		log_warnx("event=control_encode_failed");
	}
	json_decref(obj);
}

void
ctl_reply_ok(struct ctl_client *cl, int64_t id, json_t *obj)
{
	json_t *r;

	if (!cl) {
		json_decref(obj);
		return;
	}
	r = json_object();
	json_object_set_new(r, "id", json_integer((json_int_t)id));
	json_object_set_new(r, "ok", json_true());
	if (obj)
		json_object_update(r, obj);
	json_decref(obj);
	client_send_json(cl, r);
}

void
ctl_reply_error(struct ctl_client *cl, int has_id, int64_t id, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *r, *s;
	size_t i;

	if (!cl)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r = json_object();
	json_object_set_new(r, "id", has_id ? json_integer((json_int_t)id) : json_null());
	json_object_set_new(r, "ok", json_false());
	if (!(s = json_string(msg))) {
		/* not UTF-8 (server text, say): keep it one printable ASCII line */
		for (i = 0; msg[i]; i++)
			if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] >= 0x7f)
				msg[i] = '?';
		s = json_string(msg);
	}
	json_object_set_new(r, "error", s);
	client_send_json(cl, r);
}

struct ctl_watch *
ctl_client_watch(struct ctl_client *cl)
{
	return cl->ctl->watch;
}

struct ctl_pending *
ctl_pending_new(struct ctl_client *cl, const struct ctl_request *rq)
{
	struct ctl_pending *p;

	if (cl->n_pending >= CTL_MAX_PENDING) {
		ctl_reply_error(cl, 1, rq->id, "too many requests in flight (at most %d)",
		    CTL_MAX_PENDING);
		return NULL;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		ctl_reply_error(cl, 1, rq->id, "out of memory");
		return NULL;
	}
	p->client = cl;
	p->env = &cl->ctl->env;
	p->id = rq->id;
	p->rq = *rq;
	p->next = cl->pending;
	if (cl->pending)
		cl->pending->prev = p;
	cl->pending = p;
	cl->n_pending++;
	return p;
}

void
ctl_pending_free(struct ctl_pending *p)
{
	struct ctl_client *cl = p->client;

	if (cl) {
		if (p->prev)
			p->prev->next = p->next;
		else
			cl->pending = p->next;
		if (p->next)
			p->next->prev = p->prev;
		cl->n_pending--;
		/* a half-closed client that got its last answer can go now */
		if (cl->eof && !cl->pending && cl->out_len == cl->out_off)
			client_kill(cl);
	}
	free(p);
}

static void
client_line(struct ctl_client *cl, char *line, size_t len)
{
	struct ctl_request rq;
	char err[256];

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return;
	if (ctl_request_parse(line, len, &rq, err, sizeof(err)) == -1) {
		ctl_reply_error(cl, rq.has_id, rq.id, "%s", err);
		return;
	}
	ctl_cmd_run(&cl->ctl->env, cl, &rq);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = (struct ctl_client *)w;
	size_t start, i, scanned;
	ssize_t n;

	n = recv(cl->fd, cl->in + cl->in_len, CTL_LINE_MAX + 1 - cl->in_len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* answer what was asked, then close (a client may half-close after asking) */
		ev_io_stop(loop, &cl->rio);
		cl->eof = 1;
		if (n == -1 || (!cl->pending && cl->out_len == cl->out_off))
			client_kill(cl);
		return;
	}
	scanned = cl->in_len;
	cl->in_len += (size_t)n;
	start = 0;
	for (i = scanned; i < cl->in_len && !cl->dead; i++) {
		if (cl->in[i] != '\n')
			continue;
		client_line(cl, cl->in + start, i - start);
		start = i + 1;
	}
	if (cl->dead)
		return;
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CTL_LINE_MAX) {
		log_warnx("event=control_client_dropped fd=%d reason=line_too_long", cl->fd);
		client_kill(cl);
	}
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = (struct ctl_client *)((char *)w - offsetof(struct ctl_client, wio));

	if (!cl->dead)
		client_flush(cl);
	if (cl->dead)
		client_free(cl);
}

static int
peer_is_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return 0;
	return cr.uid == getuid() || cr.uid == 0;
}

static int
accept_cb(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct control *c = arg;
	struct ctl_client *cl;

	(void)sa;
	(void)len;
	if (c->n_clients >= CTL_MAX_CLIENTS || !peer_is_us(fd)) {
		log_warnx("event=control_client_refused reason=%s",
		    c->n_clients >= CTL_MAX_CLIENTS ? "too_many" : "other_user");
		close(fd);
		return 0;
	}
	if (!(cl = calloc(1, sizeof(*cl))) || !(cl->in = malloc(CTL_LINE_MAX + 1))) {
		free(cl);
		close(fd);
		return 0;
	}
	cl->ctl = c;
	cl->fd = fd;
	ev_io_init(&cl->rio, client_read_cb, fd, EV_READ);
	ev_io_init(&cl->wio, client_write_cb, fd, EV_WRITE);
	ev_io_start(c->env.loop, &cl->rio);
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	c->n_clients++;
	log_debug("event=control_client fd=%d", fd);
	return 0;
}

/* Removes a socket file left by a daemon that died; refuses if one is still listening. */
static int
clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("event=control_listen_failed path=%s reason=not_a_socket", sa->sun_path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		log_warnx("event=control_listen_failed path=%s reason=another_shoald_is_running",
		    sa->sun_path);
		return -1;
	}
	log_info("event=control_stale_socket_removed path=%s", sa->sun_path);
	return unlink(sa->sun_path);
}

struct control *
control_new(const struct control_env *env, const char *path)
{
	struct sockaddr_un sa;
	struct control *c;
	char why[256];

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_warnx("event=control_listen_failed path=%s reason=path_too_long", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	if (fsloc_make_parent(path, why, sizeof(why)) == -1) {
		log_warnx("event=control_listen_failed path=%s reason=\"%s\"", path, why);
		return NULL;
	}
	if (clear_stale(&sa) == -1)
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->env = *env;
	strcpy(c->path, path);
	if (!(c->watch = ctl_watch_new(&c->env))) {
		free(c);
		return NULL;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		log_warn("event=control_listen_failed path=%s step=socket", path);
		ctl_watch_free(c->watch);
		free(c);
		return NULL;
	}
	/* bind then chmod: the 0700 parent directory covers the moment in between */
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    chmod(path, 0600) == -1 || listen(c->fd, 16) == -1) {
		log_warn("event=control_listen_failed path=%s step=bind", path);
		close(c->fd);
		ctl_watch_free(c->watch);
		free(c);
		return NULL;
	}
	if ((c->acc = acceptor_new(env->loop, c->fd, "control", 0, accept_cb, c)) == NULL) {
		close(c->fd);
		unlink(path);
		ctl_watch_free(c->watch);
		free(c);
		return NULL;
	}
	log_info("event=control_listen path=%s", path);
	return c;
}

void
control_free(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	ctl_watch_free(c->watch);
	acceptor_free(c->acc);
	close(c->fd);
	unlink(c->path);
	free(c);
}
