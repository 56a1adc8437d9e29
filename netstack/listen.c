/*
 * listen: TCP listeners on our virtual address. Each accepted connection asks the owner for
 * a kernel socket (open_fd, typically a non-blocking connect to 127.0.0.1:PORT) and is
 * spliced to it; a refusal resets the virtual connection.
 * Owns: struct ns_listener and its listening pcb. Must not touch accepted connections after
 * handing them to splice.c.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lwip/tcp.h"

#include "base/log.h"
#include "netstack/netstack_priv.h"

/* Owned by the caller of ns_listen (freed with ns_listener_free). */
struct ns_listener {
	struct netstack *ns;
	struct tcp_pcb *lpcb;
	uint16_t port;
	ns_open_fd_cb open_fd;
	void *arg;
};

static err_t
listener_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct ns_listener *l = arg;
	int fd;

	if (err != ERR_OK || pcb == NULL)
		return ERR_VAL;
	fd = l->open_fd(l->arg, ns_ip4_to_host(ip_2_ip4(&pcb->remote_ip)), pcb->remote_port);
	if (fd < 0) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (ns_splice_accepted(l->ns, pcb, fd) == NULL) {
		log_warnx("event=listen_accept_failed port=%u reason=nomem", l->port);
		close(fd);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return ERR_OK;
}

struct ns_listener *
ns_listen(struct netstack *ns, uint16_t port, ns_open_fd_cb open_fd, void *arg)
{
	struct ns_listener *l;
	struct tcp_pcb *pcb, *lpcb;
	err_t e;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_V4)) == NULL) {
		free(l);
		errno = ENOBUFS;     /* lwIP's pool is full, as the kernel says */
		return NULL;
	}
	/* Re-creatable at once: connections accepted by an earlier listener on this port (still
	 * open, or in TIME_WAIT) inherit the option and do not hold the port. */
	ip_set_option(pcb, SOF_REUSEADDR);
	/* Bound to any address: the listener survives netstack_set_addr. */
	if ((e = tcp_bind(pcb, IP4_ADDR_ANY, port)) != ERR_OK) {
		tcp_close(pcb);
		free(l);
		errno = e == ERR_USE ? EADDRINUSE : EINVAL;
		return NULL;
	}
	/* With SOF_REUSEADDR the bind passes even when another listener holds the port;
	 * tcp_listen is where that conflict is found (ERR_USE). */
	if ((lpcb = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &e)) == NULL) {
		tcp_close(pcb);
		free(l);
		errno = e == ERR_USE ? EADDRINUSE : ENOBUFS;
		return NULL;
	}
	l->ns = ns;
	l->lpcb = lpcb;
	l->port = port;
	l->open_fd = open_fd;
	l->arg = arg;
	tcp_arg(lpcb, l);
	tcp_accept(lpcb, listener_accept);
	ns_tick_arm(ns);
	return l;
}

void
ns_listener_free(struct ns_listener *l)
{
	if (l == NULL)
		return;
	tcp_arg(l->lpcb, NULL);
	tcp_accept(l->lpcb, NULL);
	tcp_close(l->lpcb);
	ns_tick_arm(l->ns);
	free(l);
}
