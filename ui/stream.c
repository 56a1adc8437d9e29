/*
 * stream: GET /events as server-sent events, fed by the control socket's watch (stream.h).
 * Owns: each stream's control connection, its watchers and the bytes not yet sent.
 * Lifetime: MHD owns the response and frees the stream with it (stream_free is its free
 * callback), whenever the connection ends; nothing else frees a stream.
 */
#include "config.h"
#include "ui/stream.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utlist.h>

#include "base/log.h"

enum {
	STREAM_OUT_MAX = 4096,          /* a page that does not read gets no more than this */
	STREAM_IN_MAX = 1024,           /* a watch answer is one short line */
};

struct ui_stream {
	struct ev_loop *loop;
	struct ui_stream **head, *prev, *next;
	struct MHD_Connection *conn;
	void (*kick)(void *arg);
	void *arg;
	int fd;                         /* the control connection; -1 once closed */
	ev_io io;
	ev_timer gap;                   /* after an event: the next watch waits this long */
	int suspended, ended;
	long long gen;                  /* the last generation told to the page */
	long long id;                   /* of the last watch request */
	char in[STREAM_IN_MAX];
	size_t in_len;
	char out[STREAM_OUT_MAX];
	size_t out_len;
};

static void
stream_wake(struct ui_stream *s)
{
	if (s->suspended) {
		s->suspended = 0;
		MHD_resume_connection(s->conn);
		s->kick(s->arg);
	}
}

static void
stream_close_ctl(struct ui_stream *s)
{
	ev_timer_stop(s->loop, &s->gap);
	if (s->fd >= 0) {
		ev_io_stop(s->loop, &s->io);
		close(s->fd);
		s->fd = -1;
	}
}

/* The end: the page sees the stream close (EventSource then reconnects through app.js). */
static void
stream_end(struct ui_stream *s)
{
	stream_close_ctl(s);
	s->ended = 1;
	stream_wake(s);
}

static void
stream_put(struct ui_stream *s, const char *text)
{
	size_t n = strlen(text);

	/* a page this far behind gets one event that says the same */
	if (s->out_len + n > sizeof(s->out))
		return;
	memcpy(s->out + s->out_len, text, n);
	s->out_len += n;
	stream_wake(s);
}

static int
watch_send(struct ui_stream *s)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"id\":%lld,\"cmd\":\"watch\",\"after\":%lld}\n",
	    ++s->id, s->gen);

	/* one short line on an idle connection: the socket buffer takes it at once */
	return send(s->fd, line, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static void
gap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ui_stream *s = w->data;

	(void)loop;
	(void)revents;
	if (watch_send(s) != 0)
		stream_end(s);
}

/* One answer of the control: {"id":N,"ok":true,"gen":G,"chat":C}. */
static void
stream_answer(struct ui_stream *s, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL), *g = j ? json_object_get(j, "gen") : NULL;
	json_t *c = j ? json_object_get(j, "chat") : NULL;
	char ev[128];

	if (!json_is_true(json_object_get(j, "ok")) || !json_is_integer(g) || !json_is_integer(c)) {
		log_info("event=ui_stream_end reason=\"the control refused the watch\"");
		json_decref(j);
		stream_end(s);
		return;
	}
	if (json_integer_value(g) == s->gen) {
		stream_put(s, ": still here\n\n");
		if (watch_send(s) != 0)
			stream_end(s);
	} else {
		s->gen = json_integer_value(g);
		snprintf(ev, sizeof(ev), "event: change\ndata: {\"gen\":%lld,\"chat\":%lld}\n\n",
		    s->gen, (long long)json_integer_value(c));
		stream_put(s, ev);
		ev_timer_set(&s->gap, UI_STREAM_GAP_S, 0.);
		ev_timer_start(s->loop, &s->gap);
	}
	json_decref(j);
}

static void
ctl_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ui_stream *s = w->data;
	char *nl;
	size_t used;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		stream_end(s);          /* the daemon is going away */
		return;
	}
	s->in_len += (size_t)n;
	while (!s->ended && (nl = memchr(s->in, '\n', s->in_len)) != NULL) {
		used = (size_t)(nl - s->in) + 1;
		stream_answer(s, s->in, used - 1);
		memmove(s->in, s->in + used, s->in_len - used);
		s->in_len -= used;
	}
	if (s->in_len == sizeof(s->in))
		stream_end(s);
}

/* MHD asks for bytes: what is queued, the end, or nothing yet (then we wait suspended). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ui_stream *s = cls;
	size_t n = s->out_len < max ? s->out_len : max;

	(void)pos;
	if (n > 0) {
		memcpy(buf, s->out, n);
		memmove(s->out, s->out + n, s->out_len - n);
		s->out_len -= n;
		return (ssize_t)n;
	}
	if (s->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	s->suspended = 1;
	MHD_suspend_connection(s->conn);
	return 0;
}

static void
stream_free(void *cls)
{
	struct ui_stream *s = cls;

	stream_close_ctl(s);
	DL_DELETE(*s->head, s);
	free(s);
}

struct MHD_Response *
ui_stream_new(struct ev_loop *loop, struct ui_stream **head, const char *ctl_path,
    struct MHD_Connection *c, void (*kick)(void *arg), void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct MHD_Response *r;
	struct ui_stream *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->loop = loop;
	s->head = head;
	s->conn = c;
	s->kick = kick;
	s->arg = arg;
	ev_timer_init(&s->gap, gap_cb, 0., 0.);
	s->gap.data = s;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ctl_path);
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || watch_send(s) != 0 ||
	    fcntl(s->fd, F_SETFL, O_NONBLOCK) != 0) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return NULL;
	}
	ev_io_init(&s->io, ctl_read_cb, s->fd, EV_READ);
	s->io.data = s;
	ev_io_start(loop, &s->io);
	DL_APPEND(*head, s);
	/* at once: the page's EventSource opens on the first bytes */
	stream_put(s, ": shoal\n\n");
	if ((r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_read, s,
	    stream_free)) == NULL)
		stream_free(s);
	return r;
}

void
ui_stream_end_all(struct ui_stream *head)
{
	struct ui_stream *s;

	DL_FOREACH(head, s)
		stream_end(s);
}
