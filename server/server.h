/*
 * server: the shoal-server process context and the entry points of its I/O files
 * (conn.c: TCP control connections, udp.c: UDP probes and NAT tests). main.c owns start-up
 * and shutdown. Owns (struct server): the loop, the server key pair, the store, the mediator,
 * the listening sockets and every connection. Configuration is read-only once the loop runs.
 *
 * Sockets: per --listen HOST:PORT (up to SRV_MAX_LISTEN) one TCP listener on PORT and UDP on
 * PORT, PORT+1, PORT+2 (the last two best effort); every UDP socket is one entry of udp_fd /
 * udp_sock, and udp_sock is also the mediator's NAT socket table (same indexes).
 */
#ifndef SHOAL_SERVER_SERVER_H
#define SHOAL_SERVER_SERVER_H

#include <ev.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "server/mediator.h"
#include "server/natprobe.h"
#include "server/store.h"

#define CONN_IDLE_TIMEOUT 60.0  /* s without a frame from the client: drop it */
/* Simultaneous control connections: follows RLIMIT_NOFILE (raised to its hard limit at start),
 * less room for the store, UDP sockets and logs; see conn_max in struct server. */
#define CONN_FD_RESERVE 64
#define CONN_MAX_UNLIMITED 4000000u     /* the cap when the fd limit is unlimited */
/* Connections that have not finished their handshake: at most this many from one source
 * address, and at most preauth_max in all (a quarter of the descriptors, see conn_start);
 * past either the oldest such connection is closed for the new one, so silent connections
 * cannot lock nodes out (they used to hold their descriptor for the whole idle timeout). */
#define PREAUTH_PER_SOURCE 64
/* PREAUTH_EVICT_SCAN: pre-auth connections looked at for an idle one to close; PREAUTH_HOLD_S:
 * how long the listener holds when none of them is idle (server/conn.c) */
#define PREAUTH_EVICT_SCAN 32
#define PREAUTH_HOLD_S 0.05
#define SRV_MAX_LISTEN 4        /* --listen options; NAT plans use two of them */

struct conn;
struct udp;
struct server;

struct listener {                        /* one TCP listening socket */
	struct acceptor *acc;           /* base/acceptor.h */
	struct server *srv;
	int fd;
};

struct server {                          /* owned by main() */
	struct ev_loop *loop;
	struct noise_keypair kp;        /* wiped at exit */
	struct store *st;
	struct medsrv *med;
	int n_listen;
	struct listener listen[SRV_MAX_LISTEN];
	int n_udp;
	int udp_fd[NATPROBE_MAX_SOCKS];
	struct natsock udp_sock[NATPROBE_MAX_SOCKS]; /* what each UDP socket is bound to */
	ev_timer punch_timer;           /* the mediator's hole-punching pacer (medsrv_io) */
	ev_signal sigterm_w;
	ev_signal sigint_w;
	struct conn *conns;             /* list of every open control connection */
	unsigned n_conns;
	unsigned conn_max;               /* from the fd limit at start (main.c) */
	struct conn *preauth, *preauth_tail;    /* not yet authenticated, oldest first */
	struct srccount *preauth_by_src;        /* how many of them per source address */
	unsigned n_preauth, preauth_max;
	uint64_t preauth_evicted;
	double preauth_logged_at;
	double hold_logged_at;          /* last accept_held line (the count: acceptor_stats) */
	struct udp *udp[NATPROBE_MAX_SOCKS];
	struct pwpool *pw;              /* Argon2id off the loop (pwpool.h) */
	ev_timer reclaim_w;             /* hourly: forget unused registrations */
	struct relay_sock *relay;       /* the embedded relay (relay/sock.h); NULL: none */
	uint8_t relay_key[32];          /* its key, shared with the mediator's grants */
	uint16_t relay_id;              /* its id in the mediator's pool; 0: not in it */
	ev_timer relay_tick_w;          /* each second: its stats, the pool's health (main.c) */
	int64_t reclaim_age;            /* s; 0: never */
	struct cluster *cluster;        /* --store postgresql: the other instances (cluster.h) */
};

/* Fills the mediator's I/O hooks (sending, kicking, the clock, NAT timers) for this server. */
void conn_medsrv_io(struct server *srv, struct medsrv_io *io);
/* Starts accepting on every listening TCP socket srv->listen[]. */
void conn_start(struct server *srv);
/* Closes every connection without telling the mediator (it is being freed). */
void conn_shutdown(struct server *srv);

/* Starts srv->pw and fills io->pw_submit. Returns 0 or -1. */
int pw_medsrv_io(struct server *srv, struct medsrv_io *io);

/* Fills io->udp_send (datagrams from one of srv->udp_fd). */
void udp_medsrv_io(struct server *srv, struct medsrv_io *io);
/* Starts answering UDP probes on every srv->udp_fd. Returns 0 or -1. */
int udp_start(struct server *srv);
void udp_stop(struct server *srv);

#endif
