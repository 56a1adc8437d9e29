/*
 * shim_int: what the files of libshoal-preload.so share. The shim lives inside other people's
 * programs, so it links nothing but libc, never aborts, never writes to stdout, and passes
 * everything it does not need straight to libc (REAL()).
 *
 * Files: shim.c (constructor, libc symbols, fd lifecycle: close/dup/fcntl/closefrom/fork),
 * shim_fd.c (per-fd state table), shim_addr.c (pure address classification and rewriting,
 * unit-tested), shim_daemon.c (the one connection to shoald, alias caches), shim_net.c (socket
 * interposers), shim_if.c (the shoal0 interface: getifaddrs, if_*, ioctl), shim_dns.c (peer
 * names: getaddrinfo, gethostbyname*).
 * Owns: nothing outside these files; never touches daemon/ or the codec (shim_proto.c).
 */
#ifndef SHOAL_SHIM_INT_H
#define SHOAL_SHIM_INT_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lanproxy/shim_proto.h"

#define SHIM_HIDDEN __attribute__((visibility("hidden")))
#define SHIM_EXPORT __attribute__((visibility("default")))

/* The virtual network, before HELLO told us its exact prefix: 5.0.0.0/8. */
#define SHIM_VNET       0x05000000u
#define SHIM_VNET_MASK  0xff000000u
#define SHIM_LOOPBACK   0x7f000001u     /* 127.0.0.1: where our own 5.x address lives */
#define SHIM_LO_BCAST   0x7fffffffu     /* 127.255.255.255: broadcasts arrive here */
#define SHIM_IFNAME     "shoal0"

/* ---- libc symbols (shim.c) ---- */

enum shim_sym {
	SYM_socket, SYM_bind, SYM_connect, SYM_listen, SYM_accept, SYM_accept4,
	SYM_getsockname, SYM_getpeername, SYM_sendto, SYM_sendmsg, SYM_sendmmsg,
	SYM_recvfrom, SYM_recvmsg, SYM_recvmmsg, SYM___recvfrom_chk, SYM_setsockopt,
	SYM_getsockopt, SYM_close, SYM_dup, SYM_dup2, SYM_dup3, SYM_fcntl, SYM_fcntl64,
	SYM_closefrom, SYM_close_range, SYM_getifaddrs, SYM_freeifaddrs, SYM_if_nameindex,
	SYM_if_freenameindex, SYM_if_nametoindex, SYM_if_indextoname, SYM_ioctl,
	SYM_getaddrinfo, SYM_gethostbyname, SYM_gethostbyname2, SYM_gethostbyname_r,
	SYM_gethostbyname2_r, SYM_getnameinfo, SYM_gethostbyaddr, SYM_gethostbyaddr_r,
	SYM_send, SYM_recv, SYM_execve, SYM_execvpe, SYM_fexecve, SYM_execveat, SYM_posix_spawn, SYM_posix_spawnp,
	SYM_COUNT
};

/* The next definition of a libc symbol after ours (dlsym RTLD_NEXT, cached), or NULL. */
SHIM_HIDDEN void *shim_sym(enum shim_sym s);
#define REAL(f) ((__typeof__(&f))shim_sym(SYM_##f))
/* libc's definition of a function we interpose, by name; NULL for any other name. */
SHIM_HIDDEN void *shim_sym_by_name(const char *name);

/* ---- per-fd state (shim_fd.c) ---- */

/* Bits of one fd's state word. 0 means "nothing known": look it up lazily. */
enum {
	FD_KNOWN = 1u << 0,        /* the rest of the word is valid */
	FD_INET = 1u << 1,         /* AF_INET or AF_INET6 socket */
	FD_INET6 = 1u << 2,        /* AF_INET6 (5.x appears as ::ffff:5.x) */
	FD_TCP = 1u << 3,
	FD_UDP = 1u << 4,
	FD_VBOUND = 1u << 5,       /* bound to our 5.x (kernel: 127.0.0.1) */
	FD_VCONN = 1u << 6,        /* connected to/accepted from a 5.x peer */
	FD_SELF = 1u << 7,         /* connected to our own 5.x (kernel: 127.0.0.1) */
	FD_PENDING = 1u << 8,      /* virtual connect in progress: SO_ERROR asks the daemon */
	FD_BCAST = 1u << 9,        /* SO_BROADCAST set */
	FD_ANNOUNCED = 1u << 10,   /* UDP_BIND or TCP_LISTEN sent on this process's connection */
	FD_SHARED = 1u << 11,      /* dup'ed: closing one fd must not send SHIM_CLOSE */
	FD_MCAST = 1u << 12,       /* joined a group through us */
	FD_PEERCHK = 1u << 13,     /* looked at the kernel peer once (fds inherited via exec) */
	FD_NLROUTE = 1u << 14,     /* a NETLINK_ROUTE socket: shoal0 is added to its answers */
};

enum { SHIM_FD_MAX = 65536 };  /* fds above this pass through untracked */

SHIM_HIDDEN uint32_t shim_fd_get(int fd);
SHIM_HIDDEN void shim_fd_set(int fd, uint32_t word);
SHIM_HIDDEN void shim_fd_or(int fd, uint32_t bits);
SHIM_HIDDEN void shim_fd_clear_bits(int fd, uint32_t bits);
/* The local port of a virtual connect, kept because a reset socket may lose it. */
SHIM_HIDDEN void shim_fd_set_lport(int fd, uint16_t port);
SHIM_HIDDEN uint16_t shim_fd_lport(int fd);
/* Where the kernel socket of a virtual TCP connect goes (alias or low-port alias, and port),
 * for a second connect() on the same socket. 0 if unknown. */
SHIM_HIDDEN void shim_fd_set_kdst(int fd, uint32_t addr, uint16_t port);
SHIM_HIDDEN int shim_fd_kdst(int fd, uint32_t *addr, uint16_t *port);
/* The state of fd, looked up with getsockopt(SO_DOMAIN/SO_TYPE) if not known yet. */
SHIM_HIDDEN uint32_t shim_fd_probe(int fd);
/* Forget fds lo..hi (inclusive). */
SHIM_HIDDEN void shim_fd_forget_range(unsigned lo, unsigned hi);
/* In a forked child: this process's daemon connection announced nothing yet. */
SHIM_HIDDEN void shim_fd_after_fork(void);

/* ---- addresses (shim_addr.c, pure) ---- */

/* An IPv4 endpoint found in a sockaddr, in host order. */
struct shim_ep {
	uint32_t addr;
	uint16_t port;
	int v6;          /* it came as AF_INET6 (v4-mapped, or :: for any) */
	int any;         /* 0.0.0.0 or :: */
};

/* Reads an AF_INET or v4-mapped / unspecified AF_INET6 address. 0, or -1 for anything else
 * (other families, real IPv6 addresses, short lengths). */
SHIM_HIDDEN int shim_ep_read(const struct sockaddr *sa, socklen_t len, struct shim_ep *ep);
/* Writes addr:port as AF_INET, or as ::ffff:addr when v6. Returns the length. */
SHIM_HIDDEN socklen_t shim_ep_write(struct sockaddr_storage *ss, uint32_t addr, uint16_t port,
    int v6);
/* Rewrites the address of an already filled sockaddr in place (same family, port kept),
 * within the caller's buffer length. */
SHIM_HIDDEN void shim_ep_rewrite(struct sockaddr *sa, socklen_t len, uint32_t addr);
/* The same for address and port. */
SHIM_HIDDEN void shim_ep_rewrite_port(struct sockaddr *sa, socklen_t len, uint32_t addr,
    uint16_t port);

/* What the network looks like to this process, from SHIM_HELLO. */
struct shim_net {
	uint32_t vaddr;      /* ours */
	uint32_t mask;       /* from the prefix */
	uint16_t mtu;
};

enum shim_dst {
	DST_OTHER,       /* not ours: straight to libc */
	DST_SELF,        /* our own 5.x address */
	DST_PEER,        /* another 5.x address in our network */
	DST_BCAST,       /* 255.255.255.255 */
	DST_VBCAST,      /* our network's broadcast address */
	DST_MCAST,       /* 224.0.0.0/4 */
};

SHIM_HIDDEN enum shim_dst shim_classify(const struct shim_net *n, uint32_t addr);
/* An alias or a low-port alias (127.66.0.0/15, index not 0 nor 0xffff)? */
SHIM_HIDDEN int shim_is_alias(uint32_t addr);
/* The ordinary alias of the same index (127.66.x.y). */
SHIM_HIDDEN uint32_t shim_alias_base(uint32_t addr);
/* The peer's port that kernel port kport on alias addr stands for (the low-port rule of
 * lanproxy/shim_proto.h). 0, or -1 when no port is ever bound there. */
SHIM_HIDDEN int shim_alias_port(uint32_t addr, uint16_t kport, uint16_t *vport);
SHIM_HIDDEN uint32_t shim_prefix_mask(unsigned prefix);
/* Should a host name be asked of shoald (a peer's nick or node id): a single label or a name
 * ending in ".shoal" (a trailing dot allowed), not "localhost", not numeric (inet_aton)? Our
 * own host name is the caller's business. */
SHIM_HIDDEN int shim_name_is_peerish(const char *name);

/* ---- the daemon (shim_daemon.c) ---- */

/* Our network, after a HELLO on a working connection (opened lazily). 0, or -1 when shoald is
 * not reachable (the program then runs without the virtual LAN). */
SHIM_HIDDEN int shim_net_get(struct shim_net *out);
/* Is SHOAL_SHIM_SOCK set at all? */
SHIM_HIDDEN int shim_enabled(void);
/* One request and its reply. 0 (reply in *rep, rep->err may be set), or -1. */
SHIM_HIDDEN int shim_call(struct shim_msg *req, struct shim_msg *rep);
/* A one-way message (DGRAM_OUT, CLOSE). Best effort. */
SHIM_HIDDEN void shim_post(const struct shim_msg *m);
/* DGRAM_OUT with a payload gathered from iov (under the daemon lock, no allocation). */
SHIM_HIDDEN void shim_post_dgram(uint32_t dst, uint16_t dport, uint16_t sport,
    const struct iovec *iov, size_t iovlen);
/* vaddr -> alias (SHIM_ALIAS, cached). 0 if unknown. */
SHIM_HIDDEN uint32_t shim_alias_of(uint32_t vaddr, int *err);
/* Where to send UDP for vaddr:port (SHIM_UDP_ALIAS, cached per vaddr:port): the alias and
 * *kport, or the low-port alias and port + SHIM_LOWPORT_BASE. 0 (with *err) if unknown. */
SHIM_HIDDEN uint32_t shim_udp_alias_of(uint32_t vaddr, uint16_t port, uint16_t *kport,
    int *err);
/* Kernel endpoint kaddr:kport on an alias -> the peer's vaddr:port (cache, else SHIM_UNALIAS).
 * 0, or -1 if unknown. */
SHIM_HIDDEN int shim_unalias(uint32_t kaddr, uint16_t kport, uint32_t *vaddr, uint16_t *vport);
/* Remember a pair learnt from a reply (either alias block). */
SHIM_HIDDEN void shim_alias_learn(uint32_t vaddr, uint32_t alias);
/* A peer name -> vaddr (SHIM_RESOLVE, not cached: nicks change). 0, or -1: unknown, or shoald
 * not reachable. */
SHIM_HIDDEN int shim_resolve(const char *name, uint32_t *vaddr);
/* The reverse (SHIM_NAME_OF, not cached): the member's "NICK.shoal" into out. 0, or -1. */
SHIM_HIDDEN int shim_name_of(uint32_t vaddr, char *out, size_t cap);
/* Is fd the daemon connection? Used by close/dup2/closefrom before the fd goes away. */
SHIM_HIDDEN int shim_daemon_fd_is(int fd);
/* The daemon connection's fd, or -1. */
SHIM_HIDDEN int shim_daemon_fd(void);
/* The daemon fd is going away under us (the app closed it): forget it. */
SHIM_HIDDEN void shim_daemon_lost(void);
SHIM_HIDDEN void shim_daemon_init(void);
/* One line on stderr (unless SHOAL_SHIM_QUIET=1): the overlay refused a listen on port, so peers
 * cannot reach it (the program still listens locally). Keeps errno. */
SHIM_HIDDEN void shim_note_listen_failed(uint16_t port, int err);
SHIM_HIDDEN void shim_daemon_atfork_prepare(void);
SHIM_HIDDEN void shim_daemon_atfork_parent(void);
SHIM_HIDDEN void shim_daemon_atfork_child(void);

/* ---- rtnetlink (shim_nl.c) ---- */

/* After a request was sent on a NETLINK_ROUTE socket (the first message of data). */
SHIM_HIDDEN void shim_nl_sent(int fd, const void *data, size_t len);
/* Before a receive on one: 1 with *rc (the receive's result, msg filled) when shoal0's answer
 * is owed, else 0 (receive from the kernel). */
SHIM_HIDDEN int shim_nl_recv(int fd, struct msghdr *msg, int flags, ssize_t *rc);
/* fd is closed or reused. */
SHIM_HIDDEN void shim_nl_forget(int fd);

/* ---- exec (shim_exec.c) ---- */

/* Takes, once, what children must get back in their environment (LD_PRELOAD with us,
 * SHOAL_SHIM_SOCK, SHOAL_SHIM_QUIET) before the program can change its own. */
SHIM_HIDDEN void shim_exec_init(void);

/* ---- the shoal0 interface (shim_if.c) ---- */

/* shoal0's interface index (above the real ones, fixed for the process). */
SHIM_HIDDEN unsigned shim_ifindex(void);

/* ---- socket helpers shared by shim_net.c and shim.c ---- */

/* Called before fd's state is forgotten (close): tells the daemon if fd was announced. */
SHIM_HIDDEN void shim_net_closing(int fd);

#endif
