/*
 * ui: libmicrohttpd on the libev loop, the token, the page's files and the /api relay (ui.h).
 *
 * MHD runs without threads: MHD_USE_EPOLL gives one descriptor that is readable whenever MHD
 * has work; we watch it, call MHD_run, and re-arm a timer from MHD_get_timeout. An API call
 * is relayed to the control socket over a new Unix connection while its HTTP connection is
 * suspended; the control's one-line answer resumes it. GET /events is stream.c's; here it is
 * only authenticated (a ticket from POST /ticket).
 * Owns: the MHD daemon, its watchers, each relayed call's socket, the stream tickets.
 */
#include "config.h"
#include "ui/ui.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <utlist.h>

#include "base/log.h"
#include "ui/assets.h"
#include "ui/stream.h"

enum {
	TOKEN_BYTES = 32,
	API_BODY_MAX = 64 * 1024,       /* CTL_LINE_MAX */
	API_REPLY_MAX = 4 * 1024 * 1024,
	API_CONNS_MAX = 64,
	TICKET_BYTES = 16,
	TICKETS_MAX = 8,                /* outstanding; a new one replaces the oldest */
};

#define TICKET_TTL_S 30.0

/* A ticket for one GET /events: EventSource cannot send the token header, and a cookie would
 * go to every port of 127.0.0.1 (cookies ignore ports), so the page trades its token for a
 * ticket that opens one stream once, within TICKET_TTL_S. */
struct ticket {
	char hex[2 * TICKET_BYTES + 1]; /* "" when free */
	ev_tstamp expires;
};

struct ui {
	struct ev_loop *loop;
	struct MHD_Daemon *d;
	ev_io io;
	ev_timer timer;
	uint16_t port;
	char token[2 * TOKEN_BYTES + 1];
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char url[64];
	char host_ip[32], host_name[32];        /* the Host values we accept */
	struct call *calls;             /* API calls waiting for the control socket */
	struct ui_stream *streams;      /* GET /events (stream.c) */
	struct ticket tickets[TICKETS_MAX];
	int closing;                    /* ui_free runs MHD itself */
};

/* One HTTP request being handled (MHD's con_cls). */
struct call {
	struct ui *u;
	struct MHD_Connection *conn;
	int is_api, refused, started, done;
	char *body;
	size_t body_len;
	int fd;                         /* the control connection, -1 when none */
	ev_io io;
	struct call *prev, *next;       /* in u->calls while the control socket is open */
	char *reply;
	size_t reply_len, reply_cap;
	int status;
};

static void ui_run(struct ui *u);

/* ---- the token ---- */

static int
token_load(struct ui *u, const char *state_dir)
{
	uint8_t raw[TOKEN_BYTES];
	char path[4200];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/ui.token", state_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		n = read(fd, u->token, sizeof(u->token) - 1);
		/* a token anyone else could read is no secret: make a new one */
		if (fstat(fd, &st) == 0 && (st.st_mode & 077) == 0 && st.st_uid == getuid() &&
		    n == 2 * TOKEN_BYTES) {
			u->token[n] = '\0';
			close(fd);
			return 0;
		}
		close(fd);
		log_warnx("event=ui_token_replaced path=%s reason=\"unsafe or damaged\"", path);
		(void)unlink(path);
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(u->token, sizeof(u->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
	    write(fd, u->token, 2 * TOKEN_BYTES) != 2 * TOKEN_BYTES || close(fd) != 0) {
		log_warn("event=ui_token_failed path=%s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}

/* ---- responses ---- */

static enum MHD_Result
queue(struct MHD_Connection *c, unsigned status, const char *type, struct MHD_Response *r)
{
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *type, const void *data,
    size_t len, int copy)
{
	return queue(c, status, type, MHD_create_response_from_buffer(len, (void *)data,
	    copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT));
}

static enum MHD_Result
respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return respond(c, status, "text/plain; charset=utf-8", text, strlen(text), 0);
}

/* ---- the relay to the control socket ---- */

static void
call_close(struct call *k)
{
	if (k->fd >= 0) {
		ev_io_stop(k->u->loop, &k->io);
		close(k->fd);
		k->fd = -1;
		DL_DELETE(k->u->calls, k);
	}
}

/* The control answered (or failed): hand the HTTP connection back to MHD. */
static void
call_finish(struct call *k, int status)
{
	call_close(k);
	k->status = status;
	k->done = 1;
	MHD_resume_connection(k->conn);
	ui_run(k->u);
}

static void
call_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct call *k = w->data;
	char buf[16384], *nl, *p;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(k->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		call_finish(k, MHD_HTTP_BAD_GATEWAY);
		return;
	}
	if (k->reply_len + (size_t)n > API_REPLY_MAX) {
		call_finish(k, MHD_HTTP_BAD_GATEWAY);
		return;
	}
	if (k->reply_len + (size_t)n > k->reply_cap) {
		size_t cap = k->reply_cap ? k->reply_cap * 2 : 16384;

		while (cap < k->reply_len + (size_t)n)
			cap *= 2;
		if ((p = realloc(k->reply, cap)) == NULL) {
			call_finish(k, MHD_HTTP_INTERNAL_SERVER_ERROR);
			return;
		}
		k->reply = p;
		k->reply_cap = cap;
	}
	memcpy(k->reply + k->reply_len, buf, (size_t)n);
	k->reply_len += (size_t)n;
	/* one request, one response line */
	if ((nl = memchr(k->reply, '\n', k->reply_len)) != NULL) {
		k->reply_len = (size_t)(nl - k->reply);
		call_finish(k, MHD_HTTP_OK);
	}
}

static int
call_start(struct call *k)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t off = 0;
	ssize_t n;

	if ((k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memcpy(sun.sun_path, k->u->ctl_path, strlen(k->u->ctl_path));
	if (connect(k->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		goto fail;
	/* a request line is at most 64 KiB: the socket buffer takes it at once */
	while (off < k->body_len) {
		n = send(k->fd, k->body + off, k->body_len - off, MSG_NOSIGNAL);
		if (n <= 0 && errno != EINTR)
			goto fail;
		if (n > 0)
			off += (size_t)n;
	}
	if (send(k->fd, "\n", 1, MSG_NOSIGNAL) != 1 || fcntl(k->fd, F_SETFL, O_NONBLOCK) != 0)
		goto fail;
	ev_io_init(&k->io, call_read_cb, k->fd, EV_READ);
	k->io.data = k;
	ev_io_start(k->u->loop, &k->io);
	DL_APPEND(k->u->calls, k);
	return 0;
fail:
	close(k->fd);
	k->fd = -1;
	return -1;
}

/* ---- requests ---- */

static int
host_ok(const struct ui *u, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	return h && (strcmp(h, u->host_ip) == 0 || strcmp(h, u->host_name) == 0);
}

static int
token_ok(const struct ui *u, struct MHD_Connection *c)
{
	const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Shoal-Token");

	return t && strlen(t) == strlen(u->token) &&
	    sodium_memcmp(t, u->token, strlen(u->token)) == 0;
}

/* ---- the live stream's tickets ---- */

static enum MHD_Result
ticket_issue(struct ui *u, struct MHD_Connection *c)
{
	uint8_t raw[TICKET_BYTES];
	struct ticket *t = &u->tickets[0];
	char body[64];
	size_t i;

	/* a free or expired slot, else the one that expires first */
	for (i = 0; i < TICKETS_MAX; i++) {
		if (!u->tickets[i].hex[0] || u->tickets[i].expires < ev_now(u->loop)) {
			t = &u->tickets[i];
			break;
		}
		if (u->tickets[i].expires < t->expires)
			t = &u->tickets[i];
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(t->hex, sizeof(t->hex), raw, sizeof(raw));
	t->expires = ev_now(u->loop) + TICKET_TTL_S;
	snprintf(body, sizeof(body), "{\"ticket\":\"%s\"}", t->hex);
	sodium_memzero(raw, sizeof(raw));
	return respond(c, MHD_HTTP_OK, "application/json", body, strlen(body), 1);
}

/* 1 when the request's ticket is a live one (used up now), else 0. */
static int
ticket_take(struct ui *u, struct MHD_Connection *c)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ticket");
	size_t i;

	if (q == NULL || strlen(q) != 2 * TICKET_BYTES)
		return 0;
	for (i = 0; i < TICKETS_MAX; i++) {
		struct ticket *t = &u->tickets[i];

		if (t->hex[0] && sodium_memcmp(q, t->hex, 2 * TICKET_BYTES) == 0) {
			int live = t->expires >= ev_now(u->loop);

			sodium_memzero(t, sizeof(*t));
			return live;
		}
	}
	return 0;
}

/* A stream resumed: MHD must run, but not from inside the stream's own call. */
static void
ui_kick(void *arg)
{
	struct ui *u = arg;

	if (!u->closing)
		ev_feed_event(u->loop, &u->io, EV_READ);
}

static enum MHD_Result
serve_events(struct ui *u, struct MHD_Connection *c)
{
	struct MHD_Response *r;

	if (!ticket_take(u, c)) {
		log_info("event=ui_refused reason=ticket");
		return respond_text(c, MHD_HTTP_FORBIDDEN, "wrong, used or missing ticket\n");
	}
	if ((r = ui_stream_new(u->loop, &u->streams, u->ctl_path, c, ui_kick, u)) == NULL)
		return respond_text(c, MHD_HTTP_BAD_GATEWAY, "shoald's control socket failed\n");
	return queue(c, MHD_HTTP_OK, "text/event-stream", r);
}

static enum MHD_Result
serve_asset(struct MHD_Connection *c, const char *url)
{
	const struct ui_asset *a = ui_asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);

	if (a == NULL)
		return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	return respond(c, MHD_HTTP_OK, a->type, a->data, a->len, 0);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct ui *u = cls;
	struct call *k = *con_cls;
	char *p;

	(void)version;
	if (k == NULL) {
		if ((k = calloc(1, sizeof(*k))) == NULL)
			return MHD_NO;
		k->u = u;
		k->conn = c;
		k->fd = -1;
		*con_cls = k;
		if (!host_ok(u, c)) {
			k->refused = 1;
			return respond_text(c, MHD_HTTP_FORBIDDEN, "wrong host\n");
		}
		if (strcmp(url, "/events") == 0) {
			if (strcmp(method, "GET") != 0)
				return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
			k->refused = 1;         /* nothing more to do for it here */
			return serve_events(u, c);
		}
		if (strcmp(url, "/ticket") == 0) {
			k->refused = 1;
			if (strcmp(method, "POST") != 0)
				return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only\n");
			if (!token_ok(u, c)) {
				log_info("event=ui_refused reason=token");
				return respond_text(c, MHD_HTTP_FORBIDDEN, "wrong or missing token\n");
			}
			return ticket_issue(u, c);
		}
		if (strcmp(url, "/api") != 0) {
			if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
				return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
			return serve_asset(c, url);
		}
		k->is_api = 1;
		if (strcmp(method, "POST") != 0)
			return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only\n");
		if (!token_ok(u, c)) {
			k->refused = 1;
			log_info("event=ui_refused reason=token");
			return respond_text(c, MHD_HTTP_FORBIDDEN, "wrong or missing token\n");
		}
		return MHD_YES;         /* the body follows */
	}
	if (k->refused)
		return MHD_YES;
	if (*upload_size > 0) {
		if (k->body_len + *upload_size > API_BODY_MAX ||
		    (p = realloc(k->body, k->body_len + *upload_size)) == NULL) {
			k->refused = 1;
			*upload_size = 0;
			return respond_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "request too large\n");
		}
		k->body = p;
		memcpy(k->body + k->body_len, upload, *upload_size);
		k->body_len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (k->done) {
		if (k->status != MHD_HTTP_OK)
			return respond_text(c, (unsigned)k->status, "shoald's control socket failed\n");
		return respond(c, MHD_HTTP_OK, "application/json", k->reply, k->reply_len, 1);
	}
	if (k->started)
		return MHD_YES;
	k->started = 1;
	if (k->body_len == 0 || memchr(k->body, '\n', k->body_len) != NULL)
		return respond_text(c, MHD_HTTP_BAD_REQUEST, "one JSON request per call\n");
	if (call_start(k) != 0)
		return respond_text(c, MHD_HTTP_BAD_GATEWAY, "shoald's control socket failed\n");
	MHD_suspend_connection(c);
	return MHD_YES;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct call *k = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (k == NULL)
		return;
	call_close(k);
	free(k->body);
	free(k->reply);
	free(k);
	*con_cls = NULL;
}

/* ---- the loop ---- */

static void
ui_run(struct ui *u)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(u->d);
	ev_timer_stop(u->loop, &u->timer);
	if (MHD_get_timeout(u->d, &ms) == MHD_YES) {
		ev_timer_set(&u->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(u->loop, &u->timer);
	}
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	ui_run(w->data);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ui_run(w->data);
}

struct ui *
ui_new(struct ev_loop *loop, const char *host, uint16_t port, const char *control_path,
    const char *state_dir)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	const union MHD_DaemonInfo *info;
	struct ui *u;

	if (strlen(control_path) >= sizeof(u->ctl_path) || inet_pton(AF_INET, host,
	    &sin.sin_addr) != 1 || (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		log_warnx("event=ui_failed reason=\"the window listens on a loopback address only\" "
		    "host=%s", host);
		return NULL;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->loop = loop;
	memcpy(u->ctl_path, control_path, strlen(control_path) + 1);
	if (token_load(u, state_dir) != 0)
		goto fail;
	u->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, port, NULL, NULL,
	    handler, u, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_NOTIFY_COMPLETED, completed, u,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNS_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (u->d == NULL) {
		log_warnx("event=ui_failed reason=\"cannot listen\" host=%s port=%u", host, port);
		goto fail;
	}
	info = MHD_get_daemon_info(u->d, MHD_DAEMON_INFO_BIND_PORT);
	u->port = info ? info->port : port;
	snprintf(u->url, sizeof(u->url), "http://%s:%u/", host, u->port);
	snprintf(u->host_ip, sizeof(u->host_ip), "%s:%u", host, u->port);
	snprintf(u->host_name, sizeof(u->host_name), "localhost:%u", u->port);
	info = MHD_get_daemon_info(u->d, MHD_DAEMON_INFO_EPOLL_FD);
	ev_io_init(&u->io, io_cb, info->epoll_fd, EV_READ);
	u->io.data = u;
	ev_io_start(loop, &u->io);
	ev_timer_init(&u->timer, timer_cb, 0., 0.);
	u->timer.data = u;
	ui_run(u);
	log_info("event=ui_listening url=%s", u->url);
	return u;
fail:
	sodium_memzero(u->token, sizeof(u->token));
	free(u);
	return NULL;
}

const char *
ui_url(const struct ui *u)
{
	return u->url;
}

void
ui_free(struct ui *u)
{
	int i;

	if (u == NULL)
		return;
	u->closing = 1;
	ev_io_stop(u->loop, &u->io);
	ev_timer_stop(u->loop, &u->timer);
	/* MHD stops only with no connection suspended */
	while (u->calls) {
		struct call *k = u->calls;

		call_close(k);
		k->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		k->done = 1;
		MHD_resume_connection(k->conn);
	}
	/* The streams end cleanly (the pages see the end, not a reset): a few rounds let MHD
	 * send what is left; MHD_run does not block in this mode. */
	ui_stream_end_all(u->streams);
	for (i = 0; i < 4; i++)
		MHD_run(u->d);
	MHD_stop_daemon(u->d);
	sodium_memzero(u->token, sizeof(u->token));
	sodium_memzero(u->tickets, sizeof(u->tickets));
	free(u);
}
