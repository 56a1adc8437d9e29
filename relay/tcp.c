/*
 * tcp: see tcp.h. The framing and the link plumbing are core/tcplink's; this file accepts,
 * counts streams per source address and frees closed links.
 */
#include "config.h"
#include "relay/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "core/tcplink.h"

struct stream {                          /* owned by struct relay_tcp */
	struct relay_tcp *t;
	struct tcplink *link;
	uint32_t addr;
	struct stream *prev, *next;
};

struct relay_tcp {
	struct ev_loop *loop;
	struct transport *tp;
	int fd;
	uint16_t port;
	struct acceptor *acc;
	struct stream *streams;
	struct relay_tcp_stats st;
};

static void
stream_free(struct stream *s)
{
	struct relay_tcp *t = s->t;

	if (s->prev)
		s->prev->next = s->next;
	else
		t->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	tcplink_free(s->link);
	t->st.streams--;
	free(s);
}

static void
link_closed(void *arg, struct tcplink *l, const char *why)
{
	struct stream *s = arg;

	(void)l;
	s->t->st.closed++;
	log_debug("event=relay_tcp_closed reason=%s", why);
	stream_free(s);
}

static const struct tcplink_ops link_ops = { .closed = link_closed };

static unsigned
from_source(const struct relay_tcp *t, uint32_t addr)
{
	const struct stream *s;
	unsigned n = 0;

	for (s = t->streams; s != NULL; s = s->next)
		n += s->addr == addr;
	return n;
}

static int
accept_one(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct relay_tcp *t = arg;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
	struct endpoint remote;
	struct stream *s;

	if (len < sizeof(*sin) || sin->sin_family != AF_INET) {
		close(fd);
		return 0;
	}
	remote.addr = ntohl(sin->sin_addr.s_addr);
	remote.port = ntohs(sin->sin_port);
	remote.via = 0;
	/* One source cannot take every stream: the cap is per address, then global. */
	if (from_source(t, remote.addr) >= RELAY_TCP_PER_SOURCE) {
		t->st.refused_source++;
		close(fd);
		return 0;
	}
	if (t->st.streams >= RELAY_TCP_MAX || (s = calloc(1, sizeof(*s))) == NULL) {
		t->st.refused_full++;
		close(fd);
		return 0;
	}
	s->t = t;
	s->addr = remote.addr;
	if ((s->link = tcplink_new(t->loop, t->tp, fd, &remote, &link_ops, s)) == NULL) {
		free(s);
		t->st.refused_full++;
		return 0;
	}
	s->next = t->streams;
	if (t->streams)
		t->streams->prev = s;
	t->streams = s;
	t->st.streams++;
	t->st.accepted++;
	return 0;
}

struct relay_tcp *
relay_tcp_new(struct ev_loop *loop, struct transport *tp, uint32_t addr, uint16_t port)
{
	struct relay_tcp *t = calloc(1, sizeof(*t));
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int one = 1;

	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->tp = tp;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(addr);
	sin.sin_port = htons(port);
	if ((t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(t->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(t->fd, 128) < 0 ||
	    getsockname(t->fd, (struct sockaddr *)&sin, &sl) < 0) {
		log_warn("event=relay_tcp_listen_failed port=%u", port);
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		return NULL;
	}
	t->port = ntohs(sin.sin_port);
	if ((t->acc = acceptor_new(loop, t->fd, "relay-tcp", ACCEPTOR_RESERVE, accept_one, t)) ==
	    NULL) {
		close(t->fd);
		free(t);
		return NULL;
	}
	return t;
}

void
relay_tcp_free(struct relay_tcp *t)
{
	if (t == NULL)
		return;
	acceptor_free(t->acc);
	while (t->streams)
		stream_free(t->streams);
	close(t->fd);
	free(t);
}

uint16_t
relay_tcp_port(const struct relay_tcp *t)
{
	return t ? t->port : 0;
}

void
relay_tcp_get_stats(const struct relay_tcp *t, struct relay_tcp_stats *st)
{
	*st = t->st;
}
