/*
 * server: the shoal-server process context and the entry points of its I/O files
 * (conn.c: TCP control connections, udp.c: UDP probes). main.c owns start-up and shutdown.
 * Owns (struct server): the loop, the server key pair, the store, the mediator, the listening
 * sockets and every connection. Configuration is read-only once the loop runs.
 */
#ifndef SHOAL_SERVER_SERVER_H
#define SHOAL_SERVER_SERVER_H

#include <ev.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "server/mediator.h"
#include "server/store.h"

#define CONN_IDLE_TIMEOUT 60.0  /* s without a frame from the client: drop it */
#define CONN_MAX 16384          /* simultaneous control connections */

struct conn;
struct udp;

struct server {                          /* owned by main() */
	struct ev_loop *loop;
	struct noise_keypair kp;        /* wiped at exit */
	struct store *st;
	struct medsrv *med;
	int tcp_fd;
	int udp_fd;
	ev_io accept_w;
	ev_timer accept_pause;          /* out of fds: stop accepting for a second */
	ev_signal sigterm_w;
	ev_signal sigint_w;
	struct conn *conns;             /* list of every open control connection */
	unsigned n_conns;
	struct udp *udp;
};

/* Fills the mediator's I/O hooks (sending, kicking, the clock) for this server. */
void conn_medsrv_io(struct server *srv, struct medsrv_io *io);
/* Starts accepting on the listening TCP socket srv->tcp_fd. */
void conn_start(struct server *srv);
/* Closes every connection without telling the mediator (it is being freed). */
void conn_shutdown(struct server *srv);

/* Starts answering UDP probes on srv->udp_fd. Returns 0 or -1. */
int udp_start(struct server *srv);
void udp_stop(struct server *srv);

#endif
