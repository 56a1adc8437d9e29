/*
 * forward: reaches a peer's service from a local port. `forward LOCALPORT PEER:PORT` listens
 * on 127.0.0.1:LOCALPORT (kernel TCP) and splices each accepted connection to PEER's virtual
 * address PORT over the overlay. A connection that cannot be made is just closed: there is no
 * protocol on the local side to report why.
 * Owns: the forward table and its listening sockets. Accepted connections belong to the
 * netstack's splices as soon as they are accepted. Must not touch lwIP.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#include "base/acceptor.h"
#include "base/ip4.h"
#include "base/log.h"
#include "ports/forward.h"
#include "netstack/netstack.h"

/* One forward. Owned by the forward table's list. */
struct forward {
	int fd;                         /* listening socket */
	struct acceptor *acc;
	struct forward_table *t;
	struct forward *next;
	uint16_t local_port;
	uint32_t ip;
	uint16_t port;
};

/* Owned by its creator (daemon/main.c). */
struct forward_table {
	struct ev_loop *loop;
	struct netstack *ns;
	struct forward *list;
	int allow_others;
};

/*
 * The splice reports here; arg is NULL on purpose: the forward may be removed while a connect
 * is in flight, and the connection does not need it.
 */
static void
forward_connect_cb(void *arg, int err, struct ns_splice *sp)
{
	uint32_t lip = 0, rip = 0;
	uint16_t lport = 0, rport = 0;
	char dst[IP4_EP_STR_LEN];

	(void)arg;
	if (err != 0 || sp == NULL) {
		log_debug("event=forward_connect_failed error=\"%s\"", strerror(err));
		return;
	}
	ns_splice_endpoints(sp, &lip, &lport, &rip, &rport);
	log_debug("event=forward_connected dst=%s lport=%u", ip4_ep_str(rip, rport, dst), lport);
}

static int
accept_cb(void *arg, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct forward *f = arg;
	int one = 1;

	(void)sa;
	(void)len;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* NULL: fd already closed by the netstack. */
	if (ns_splice_connect(f->t->ns, fd, f->ip, f->port, forward_connect_cb, NULL) == NULL)
		log_debug("event=forward_connect_failed port=%u reason=splice_refused",
		    f->local_port);
	return 0;
}

static void
forward_free(struct forward *f)
{
	acceptor_free(f->acc);
	close(f->fd);
	free(f);
}

static struct forward *
forward_find(const struct forward_table *t, uint16_t local_port)
{
	struct forward *f;

	LL_FOREACH(t->list, f)
		if (f->local_port == local_port)
			return f;
	return NULL;
}

void
forward_table_allow_others(struct forward_table *t, int allow)
{
	struct forward *f;

	t->allow_others = allow;
	for (f = t->list; f != NULL; f = f->next)
		acceptor_owner_only(f->acc, !allow);
}

struct forward_table *
forward_table_new(struct ev_loop *loop, struct netstack *ns)
{
	struct forward_table *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->ns = ns;
	return t;
}

void
forward_table_free(struct forward_table *t)
{
	struct forward *f, *tmp;

	if (t == NULL)
		return;
	LL_FOREACH_SAFE(t->list, f, tmp) {
		LL_DELETE(t->list, f);
		forward_free(f);
	}
	free(t);
}

int
forward_add(struct forward_table *t, uint16_t local_port, uint32_t ip, uint16_t port,
    char *err, size_t errlen)
{
	struct forward *f;
	struct sockaddr_in sin;
	char dst[IP4_EP_STR_LEN];
	int fd, one = 1;

	if (local_port == 0 || port == 0) {
		snprintf(err, errlen, "bad port 0");
		return -1;
	}
	if (ip == 0) {
		snprintf(err, errlen, "bad address 0.0.0.0");
		return -1;
	}
	if (forward_find(t, local_port) != NULL) {
		snprintf(err, errlen, "local port %u is already forwarded", local_port);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(local_port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 128) != 0) {
		if (errno == EADDRINUSE)
			snprintf(err, errlen, "127.0.0.1:%u is already in use", local_port);
		else
			snprintf(err, errlen, "cannot listen on 127.0.0.1:%u: %s", local_port,
			    strerror(errno));
		close(fd);
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->t = t;
	f->local_port = local_port;
	f->ip = ip;
	f->port = port;
	f->fd = fd;
	if ((f->acc = acceptor_new(t->loop, fd, "forward", ACCEPTOR_RESERVE, accept_cb, f)) ==
	    NULL) {
		close(fd);
		free(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	acceptor_owner_only(f->acc, !t->allow_others);
	LL_APPEND(t->list, f);
	log_info("event=forward_added local_port=%u dst=%s", local_port,
	    ip4_ep_str(ip, port, dst));
	return 0;
}

int
forward_remove(struct forward_table *t, uint16_t local_port, char *err, size_t errlen)
{
	struct forward *f;

	f = forward_find(t, local_port);
	if (f == NULL) {
		snprintf(err, errlen, "local port %u is not forwarded", local_port);
		return -1;
	}
	LL_DELETE(t->list, f);
	forward_free(f);
	log_info("event=forward_removed local_port=%u", local_port);
	return 0;
}

size_t
forward_list(const struct forward_table *t, struct forward_info *out, size_t max)
{
	const struct forward *f;
	size_t n = 0;

	for (f = t->list; f != NULL && n < max; f = f->next) {
		out[n].local_port = f->local_port;
		out[n].ip = f->ip;
		out[n].port = f->port;
		n++;
	}
	return n;
}
