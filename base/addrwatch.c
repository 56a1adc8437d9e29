/*
 * addrwatch: see addrwatch.h. The notifications are only a trigger: their contents are read
 * and dropped, and a receive buffer overrun (ENOBUFS: we missed some) counts as a change too.
 */
#include "config.h"
#include "base/addrwatch.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"

struct addrwatch {
	struct ev_loop *loop;
	addrwatch_fn fn;
	void *arg;
	ev_io io;
	ev_timer settle;
};

static void
settle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct addrwatch *w = t->data;

	(void)loop;
	(void)revents;
	w->fn(w->arg);
}

static void
io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct addrwatch *w = io->data;
	char buf[8192];
	ssize_t n;
	int changed = 0;

	(void)revents;
	for (;;) {
		n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			changed = 1;
			continue;
		}
		if (n < 0 && errno == ENOBUFS) {
			changed = 1;
			continue;
		}
		break;
	}
	if (changed) {
		ev_timer_stop(loop, &w->settle);
		ev_timer_set(&w->settle, ADDRWATCH_SETTLE_S, 0);
		ev_timer_start(loop, &w->settle);
	}
}

struct addrwatch *
addrwatch_new(struct ev_loop *loop, addrwatch_fn fn, void *arg)
{
	struct sockaddr_nl nl;
	struct addrwatch *w;
	int fd, e;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE)) < 0) {
		e = errno;
		free(w);
		errno = e;
		return NULL;
	}
	memset(&nl, 0, sizeof(nl));
	nl.nl_family = AF_NETLINK;
	nl.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
	if (bind(fd, (struct sockaddr *)&nl, sizeof(nl)) != 0) {
		e = errno;
		close(fd);
		free(w);
		errno = e;
		return NULL;
	}
	w->loop = loop;
	w->fn = fn;
	w->arg = arg;
	ev_io_init(&w->io, io_cb, fd, EV_READ);
	w->io.data = w;
	ev_io_start(loop, &w->io);
	ev_timer_init(&w->settle, settle_cb, ADDRWATCH_SETTLE_S, 0);
	w->settle.data = w;
	return w;
}

void
addrwatch_free(struct addrwatch *w)
{
	if (w == NULL)
		return;
	ev_io_stop(w->loop, &w->io);
	ev_timer_stop(w->loop, &w->settle);
	close(w->io.fd);
	free(w);
}
