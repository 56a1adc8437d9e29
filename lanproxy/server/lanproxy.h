/*
 * lanproxy: shoald's end of `shoal run` (docs/LANPROXY.md). The LD_PRELOAD shim in each
 * program talks to us over a Unix SOCK_SEQPACKET socket (lanproxy/shim_proto.h); we own the
 * loopback aliases standing for peers (127.66.0.0/16), the kernel sockets bound on them, and
 * their bridges to the netstack.
 *
 * What we are given, and only read: the event loop, the netstack (exists from start-up), our
 * place on the virtual network (base/ip4.h struct vnet: "no address yet" is !vnet_ready, and
 * then every request that needs the overlay gets ENETUNREACH), and the peer directory
 * (base/peerdir.h: peer names for RESOLVE, and which addresses are authorized peers; the
 * policy behind both lives in the mediator client, not here).
 *
 *   shim_server.c  the socket, clients, request dispatch, in-order replies, cleanup
 *   alias.c        alias <-> peer vaddr table (low-port aliases too); alias UDP sockets;
 *                  alias TCP listeners; peer checks; peer names (RESOLVE)
 *   tcp.c          TCP_CONNECT records, accept on alias listeners -> ns_splice_connect,
 *                  TCP_RESULT (possibly deferred); TCP_LISTEN -> ns_listen
 *   udp.c          UDP_BIND -> ns_udp; alias socket <-> overlay datagrams; MCAST joins;
 *                  DGRAM_OUT (rate-limited broadcast/multicast copies)
 *   keep.c         registrations of a process that went, kept while its socket lives on in
 *                  another (fork, exec)
 *
 * The functions at the top are the component's interface: daemon/main.c creates and frees the
 * server, control/control_cmd.c reports its path. Everything below "internal contract" is
 * shared by the four files above only.
 * Addresses and ports are in host byte order everywhere.
 */
#ifndef SHOAL_LANPROXY_H
#define SHOAL_LANPROXY_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uthash.h>

#include "lanproxy/shim_proto.h"

struct netstack;
struct peerdir;
struct shim_server;
struct vnet;

/*
 * Where the shim socket goes: next to the control socket, dirname(control_path)/shim.sock.
 * Returns 0, or -1 if it does not fit in cap.
 */
int shim_socket_path(const char *control_path, char *out, size_t cap);
/*
 * Listens on path (mode 0600). A stale socket file is replaced. If another daemon listens
 * there (control sockets sharing a directory), NAME.shim.sock beside the control socket
 * NAME.sock (control_path) is used instead; shim_server_path tells which. NULL on failure
 * (logged). loop, ns, vn and dir are borrowed and must outlive the server; vn and dir are
 * read at each request, so the owner may update them at any time (between callbacks).
 */
struct shim_server *shim_server_new(struct ev_loop *loop, struct netstack *ns,
    const struct vnet *vn, const struct peerdir *dir, const char *path,
    const char *control_path);
/* The loopback aliases that stand for peers serve only our own uid's connections
 * (base/acceptor.h, owner only) unless allow is 1 (--allow-other-users). */
void shim_server_allow_others(struct shim_server *s, int allow);
/* The path actually listened on (see shim_server_new). */
const char *shim_server_path(const struct shim_server *s);
/* Closes every client and alias socket and releases everything registered with the netstack;
 * call it before netstack_free. NULL is allowed. */
void shim_server_free(struct shim_server *s);

/*
 * Virtual listens that failed (a port an expose or another program already listens on, a
 * full pool): the most recent LP_LISTEN_FAIL_MAX, newest first, for `shoal status`. A later
 * successful listen on the port clears its entry. Returns how many were written to out.
 */
struct lp_listen_fail {
	uint16_t port;
	int err;                        /* errno */
	pid_t pid;                      /* the program that asked */
	double at;                      /* ev_now() */
};
size_t shim_server_listen_failures(const struct shim_server *s, struct lp_listen_fail *out,
    size_t cap);

/* ---- internal contract ---- */

enum {
	LP_CLIENT_MAX = 1024,           /* connected shims (one per process) */
	LP_CLIENT_REGS_MAX = 4096,      /* registrations per client (binds, listens, joins) */
	LP_USOCK_MAX = 512,             /* alias UDP sockets in all */
	LP_DGRAM_RATE = 200,            /* DGRAM_OUT copies per second, whole node */
	LP_DGRAM_BURST = 100,
	LP_BATCH = 64,                  /* messages/datagrams handled per readiness event */
	LP_LISTEN_FAIL_MAX = 16,        /* failed virtual listens kept for `shoal status` */
	LP_KEEP_MAX = 4096,             /* registrations kept for sockets of exited processes */
	LP_KEEP_CHECK_S = 2,            /* how often kept ones are checked (seconds) */
};

/* What a client registered, so that it can be released when the client goes. */
enum lp_reg_kind { LP_REG_UDP = 1, LP_REG_LISTEN = 2, LP_REG_MCAST = 3 };

/*
 * One (kind, port, group) a client registered, counted per client: a process may announce the
 * same port several times (two SO_REUSEPORT sockets, a socket whose close the shim never saw),
 * and each announcement is matched by one CLOSE. The shared object (lp_uport, lp_listen,
 * lp_mcast) holds one reference per client, taken by the first announcement and dropped by
 * the last CLOSE or when the client goes, so no sequence of announcements can leak it.
 */
struct lp_reg {
	struct lp_reg *next;
	uint8_t kind;                   /* enum lp_reg_kind */
	uint16_t port;
	uint32_t group;                 /* LP_REG_MCAST */
	unsigned count;                 /* announcements not yet closed; >= 1 */
};

struct lp_tcp_conn;

/* One connected shim (one process). Owned by the server's client list (shim_server.c). */
struct lp_client {
	ev_io io;                       /* the SEQPACKET connection; first member */
	struct shim_server *s;
	struct lp_client *prev, *next;
	pid_t pid;                      /* from HELLO; 0 before */
	struct lp_reg *regs;
	unsigned n_regs;
	/* A deferred reply (TCP_RESULT wait=1): reading stops until it is sent, which keeps
	 * replies in request order. */
	struct lp_tcp_conn *waiting;
	uint32_t wait_id;
	struct lp_client *wprev, *wnext; /* in waiting->waiters */
};

/* An alias address standing for one peer. Owned by the alias table; never freed nor reused
 * while the daemon runs (the shims cache the pair). Its low-port twin (SHIM_LOWALIAS_NET, same
 * index) stands for the same peer on ports p <= SHIM_LOWPORT_MAX moved to p + SHIM_LOWPORT_BASE
 * when we may not bind alias:p. */
struct lp_alias {
	uint32_t vaddr;
	uint32_t alias;
	UT_hash_handle hh_vaddr;
	UT_hash_handle hh_alias;
};

/* A kernel UDP socket on alias:port (kaddr:kport: the low-port alias when alias:port may not
 * be bound): local programs send to it to reach vaddr:port, and datagrams from vaddr:port are
 * delivered from it. Owned by the server's usock table. */
struct lp_usock {
	ev_io io;                       /* first member */
	struct shim_server *s;
	uint64_t key;                   /* alias << 16 | port */
	uint32_t vaddr, alias;
	uint16_t port;
	uint32_t kaddr;                 /* where the socket is bound */
	uint16_t kport;
	struct lp_usock *lru_prev, *lru_next;   /* s->usock_lru, least recently used first */
	UT_hash_handle hh;
};

/* A kernel TCP listener on alias:port (or its low-port twin, kaddr:kport), open while
 * TCP_CONNECT records wait for it. */
struct lp_tlisten {
	int fd;                         /* the alias listener */
	struct acceptor *acc;
	struct shim_server *s;
	uint64_t key;                   /* alias << 16 | port */
	uint32_t vaddr, alias;
	uint16_t port;
	uint32_t kaddr;                 /* where the listener is bound */
	uint16_t kport;
	unsigned refs;                  /* records in state LP_TCP_PENDING on it */
	UT_hash_handle hh;
};

/* A netstack UDP port P shared by every local socket announced on P (refcounted). */
struct lp_uport {
	struct shim_server *s;
	uint16_t port;
	unsigned refs;
	struct ns_udp *u;
	UT_hash_handle hh;
};

/* A netstack listener on our vaddr:P for local programs listening on P (refcounted). */
struct lp_listen {
	struct shim_server *s;
	uint16_t port;
	unsigned refs;
	struct ns_listener *l;
	UT_hash_handle hh;
};

/* A multicast group joined by some local socket on port P (refcounted). */
struct lp_mcast {
	uint64_t key;                   /* group << 16 | port */
	unsigned refs;
	UT_hash_handle hh;
};

enum lp_tcp_state {
	LP_TCP_PENDING = 1,             /* announced; the program's kernel connect not seen yet */
	LP_TCP_CONNECTING,              /* accepted; the virtual connect runs */
	LP_TCP_DONE,                    /* outcome known (err) */
};

/* One TCP_CONNECT: the program's 127.0.0.1:lport goes to vaddr:port. Owned by the server's
 * record list; while in_splice it is also the splice callback's argument, so it is only
 * freed once that callback ran (or at shutdown, when the loop no longer runs). */
struct lp_tcp_conn {
	struct shim_server *s;
	struct lp_tcp_conn *prev, *next; /* every record */
	struct lp_client *owner;        /* NULL once the client went */
	uint16_t lport;
	uint32_t vaddr, alias;
	uint16_t port;
	enum lp_tcp_state state;
	int err;                        /* LP_TCP_DONE: 0 or errno */
	int fail;                       /* not 0: the outcome, known before trying (EHOSTUNREACH
	                                   for an address that is no peer of ours) */
	int hashed;                     /* in s->conns (a newer record for lport replaces it) */
	int in_splice;                  /* the splice callback is still to come */
	int dead;                       /* forgotten; freed by that callback */
	struct lp_tlisten *tl;          /* held while PENDING */
	struct lp_client *waiters;      /* clients waiting in TCP_RESULT */
	ev_timer timer;                 /* give-up while not DONE; linger once DONE */
	UT_hash_handle hh;              /* key: lport */
};

struct lp_stats {
	uint64_t requests, malformed, dgram_out, dgram_out_limited, udp_to_overlay,
	    udp_from_overlay, udp_dropped, usock_recycled, tcp_accepted, tcp_rejected;
};

/* The whole daemon side of lanproxy. Owned by main (shim_server_new / shim_server_free). */
struct shim_server {
	struct ev_loop *loop;
	struct netstack *ns;
	const struct vnet *vn;          /* our address; read, never written */
	const struct peerdir *dir;      /* names and authorized peers; read, never written */
	int fd;                         /* listening socket */
	struct acceptor *acc;
	int allow_others;               /* alias listeners: serve every local user */
	char path[108];
	struct lp_client *clients;
	unsigned n_clients;
	int stopping;                   /* shim_server_free: release everything, keep nothing */
	/* keep.c */
	struct lp_kept *kept;
	unsigned n_kept;
	ev_timer keep_timer;
	/* alias.c */
	struct lp_alias *by_vaddr, *by_alias;
	uint32_t alias_next;            /* next alias index to hand out (1..65534) */
	unsigned alias_count;
	struct lp_usock *usocks;
	struct lp_usock *usock_lru;     /* the same, least recently used first */
	unsigned n_usocks;
	struct lp_tlisten *tlistens;
	/* tcp.c */
	struct lp_tcp_conn *conns;      /* hash by lport (current record per lport) */
	struct lp_tcp_conn *all_conns;  /* every record, hashed or not */
	struct lp_listen *listens;
	struct lp_listen_fail listen_fails[LP_LISTEN_FAIL_MAX]; /* a ring, see listen_failed */
	unsigned n_listen_fails;        /* entries ever recorded (ring index: mod the size) */
	/* udp.c */
	struct lp_uport *uports;
	struct lp_mcast *mcasts;
	double tokens;
	ev_tstamp tokens_at;
	struct lp_stats st;
	uint8_t buf[SHIM_MSG_MAX];      /* receive buffer shared by every socket (one loop) */
	char name_buf[SHIM_NAME_MAX + 1]; /* NAME_OF's answer until its reply is encoded */
};

/* What a request handler did with the reply. */
enum lp_verdict { LP_REPLY, LP_DEFER, LP_NOREPLY };

/* shim_server.c: sends a deferred reply and resumes reading the client. */
void lp_client_reply(struct lp_client *c, const struct shim_msg *rep);
/* Registration bookkeeping (counted per client, see struct lp_reg). lp_reg_add returns 1 for
 * the client's first registration of (kind, port, group) (the caller takes a reference on the
 * shared object), 0 when it only counted one more, -1 (ENOBUFS: too many). lp_reg_del returns
 * 1 when the client's last one went (the caller drops its reference), 0 when one was counted
 * down, -1 when there was none. */
int lp_reg_add(struct lp_client *c, uint8_t kind, uint16_t port, uint32_t group);
int lp_reg_del(struct lp_client *c, uint8_t kind, uint16_t port, uint32_t group);

/* alias.c */
void lp_alias_init(struct shim_server *s);
void lp_alias_free_all(struct shim_server *s);
/* 0 if vaddr may be another node's address on our virtual network, else an errno
 * (ENETUNREACH: no address yet or another network; EINVAL: ourselves, network or broadcast
 * address). Says nothing about whether that node is a peer: see lp_peer_known. */
int lp_check_peer(const struct shim_server *s, uint32_t vaddr);
/* The alias for vaddr, created on first use; 0 when all 65534 are taken. */
uint32_t lp_alias_get(struct shim_server *s, uint32_t vaddr);
/* The vaddr an alias (or low-port alias) stands for, or 0. */
uint32_t lp_alias_lookup(const struct shim_server *s, uint32_t alias);
/* The peer endpoint a kernel endpoint kaddr:kport stands for (low-port aliases mapped back).
 * 0, or -1 when kaddr is no alias of ours. */
int lp_alias_unmap(const struct shim_server *s, uint32_t kaddr, uint16_t kport,
    uint32_t *vaddr, uint16_t *vport);
/* Binds fd to alias:port, or, when that is refused for lack of privilege (EACCES, ports below
 * ip_unprivileged_port_start), to the low-port alias on port + SHIM_LOWPORT_BASE. 0 with the
 * address used in kaddr and kport (either may be NULL), or -1 with errno. */
int lp_alias_bind(int fd, uint32_t alias, uint16_t port, uint32_t *kaddr, uint16_t *kport);
/* Is vaddr an authorized peer of ours now (peerdir_is_peer: the mediator client's policy)? */
int lp_peer_known(const struct shim_server *s, uint32_t vaddr);
/* RESOLVE: a peer name to its vaddr (peerdir_resolve, which accepts every spelling of a name:
 * nick, NICK.shoal, trailing dot, node-id prefix, dotted address); ENOENT if it is none. */
/* keep.c: the registrations of a client that is going: each whose port a socket of ours is
 * still bound to is kept (its reference taken over), the others released; all released when
 * the server is stopping. The caller frees the list. */
void lp_keep_or_release(struct shim_server *s, const struct lp_reg *regs);
void lp_keep_free_all(struct shim_server *s);
/* shim_server.c: drops the reference a registration held on its shared object. */
void lp_reg_release(struct shim_server *s, const struct lp_reg *r);
enum lp_verdict lp_resolve(struct shim_server *s, const struct shim_msg *rq,
    struct shim_msg *rep);
enum lp_verdict lp_name_of(struct shim_server *s, const struct shim_msg *rq,
    struct shim_msg *rep);
/*
 * The UDP socket on alias(vaddr):port, created on first use; NULL with errno. At most
 * LP_USOCK_MAX exist: beyond, the least recently used one is closed for the new one (a peer
 * port that talks again gets its socket back, on the same alias:port).
 */
struct lp_usock *lp_usock_get(struct shim_server *s, uint32_t vaddr, uint16_t port);
/* Marks us as just used (traffic either way), so it is the last to be recycled. */
void lp_usock_touch(struct lp_usock *us);
/* A reference on the TCP listener on alias(vaddr):port; NULL with errno. */
struct lp_tlisten *lp_tlisten_hold(struct shim_server *s, uint32_t vaddr, uint16_t port);
void lp_tlisten_release(struct lp_tlisten *tl);

/* tcp.c */
enum lp_verdict lp_tcp_connect(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
enum lp_verdict lp_tcp_result(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
enum lp_verdict lp_tcp_listen(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
/* A connection accepted on an alias listener (fd is the program's side). Takes fd. */
void lp_tcp_accepted(struct shim_server *s, struct lp_tlisten *tl, int fd, uint16_t src_port);
/* The program closed its TCP socket on port (a listener's P, or a client's lport). */
void lp_tcp_close(struct shim_server *s, struct lp_client *c, uint16_t port);
/* The client is going: stop waiting, forget its records and listens. */
void lp_tcp_client_gone(struct shim_server *s, struct lp_client *c);
void lp_listen_release(struct shim_server *s, uint16_t port);
void lp_tcp_free_all(struct shim_server *s);

/* udp.c */
enum lp_verdict lp_udp_bind(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
enum lp_verdict lp_udp_alias(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
enum lp_verdict lp_mcast(struct shim_server *s, struct lp_client *c,
    const struct shim_msg *rq, struct shim_msg *rep);
void lp_dgram_out(struct shim_server *s, struct lp_client *c, const struct shim_msg *rq);
/* A datagram a local program sent to an alias socket: over the overlay. */
void lp_usock_readable(struct lp_usock *us);
void lp_uport_release(struct shim_server *s, uint16_t port);
void lp_mcast_release(struct shim_server *s, uint32_t group, uint16_t port);
void lp_udp_free_all(struct shim_server *s);

#endif
