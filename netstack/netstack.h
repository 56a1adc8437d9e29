/*
 * netstack: the virtual 5.x network terminated in-process by lwIP. The only module that
 * includes lwIP headers; everyone else uses this contract.
 *
 * lwIP runs with NO_SYS=1 on the daemon's one libev loop: packets come in via netstack_input(),
 * leave via ops->output(), and lwIP's timers run from an ev_timer re-armed from
 * sys_timeouts_sleeptime(). Nothing here blocks.
 *
 * Owns: lwIP's global state (lwIP itself is a process-wide singleton: one netstack per process),
 * every ns_* object it hands out, and the fds given to splices.
 * Addresses and ports in this API are in host byte order.
 */
#ifndef SHOAL_NETSTACK_H
#define SHOAL_NETSTACK_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

struct netstack;

struct netstack_ops {
	/* lwIP emits an IPv4 packet for dst (a peer's address or a broadcast address). The
	 * callee copies what it needs before returning. */
	void (*output)(void *arg, uint32_t dst, const uint8_t *pkt, size_t len);
};

/*
 * addr may be 0: the daemon creates the netstack at start-up, before the mediator has given
 * it an address, so listeners and UDP ports can be opened at once (they listen on any
 * address). Until netstack_set_addr gives a real one, connects and sends fail with
 * ENETUNREACH rather than leave with source 0.0.0.0.
 */
struct netstack *netstack_new(struct ev_loop *loop, uint32_t addr, uint8_t prefix_len,
    unsigned mtu, const struct netstack_ops *ops, void *arg);
void netstack_free(struct netstack *ns);
/* Our address changed (first WELCOME, or a new one): existing connections are reset. */
void netstack_set_addr(struct netstack *ns, uint32_t addr, uint8_t prefix_len);
/* Resets every TCP connection with ip (a revoked peer) on both sides of each splice. */
void netstack_abort_peer(struct netstack *ns, uint32_t ip);
/*
 * ip is nobody we can reach (not a peer: an offline member, or an address of nobody): the
 * same reset, so a connect to it is refused at once instead of after the connect timeout.
 * Safe from inside ops.output (lwIP is on the stack then): done on the next loop pass.
 */
void netstack_unreachable(struct netstack *ns, uint32_t ip);
/* An IPv4 packet from a peer. Copied; malformed packets are dropped and counted. */
void netstack_input(struct netstack *ns, const uint8_t *pkt, size_t len);

struct netstack_stats {
	uint64_t in_packets, in_dropped, out_packets;
	uint64_t tcp_active;                /* open TCP connections */
};
void netstack_get_stats(const struct netstack *ns, struct netstack_stats *st);
/* How long ns_splice_connect waits for the SYN to be answered (default 10 s). */
void netstack_set_connect_timeout(struct netstack *ns, double seconds);

/*
 * Splice: joins a kernel stream socket (fd) with one TCP connection over the virtual network,
 * both ways, with backpressure (lwIP's window closes when fd is slow and fd is not read while
 * lwIP's send buffer is full). Half-close is carried across; when both directions are done or
 * either side resets, the fd is closed and the splice frees itself.
 */
struct ns_splice;
/* err: 0 connected; else ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ECONNRESET. */
typedef void (*ns_connect_cb)(void *arg, int err, struct ns_splice *sp);

/*
 * Connects to ip:port over the virtual network, then splices fd (non-blocking, owned by the
 * splice from now on). cb runs once: with err 0 just before data starts flowing (the callee may
 * write a small reply to fd, e.g. a SOCKS5 success), or with an error, after which the fd is
 * closed by the netstack as soon as cb returns. Returns NULL (fd closed) on immediate failure,
 * with errno (EHOSTUNREACH: not a host address; ENETUNREACH: we have no address yet; ENOMEM).
 */
struct ns_splice *ns_splice_connect(struct netstack *ns, int fd, uint32_t ip, uint16_t port,
    ns_connect_cb cb, void *arg);
/* The local (our 5.x) and remote endpoints of a splice's virtual connection. */
void ns_splice_endpoints(const struct ns_splice *sp, uint32_t *lip, uint16_t *lport,
    uint32_t *rip, uint16_t *rport);
/* Aborts a splice (e.g. the peer was evicted). */
void ns_splice_abort(struct ns_splice *sp);

/*
 * A TCP listener on our virtual address. For each accepted connection, open_fd is asked for a
 * kernel socket to splice it to (typically a non-blocking connect to 127.0.0.1:PORT); it
 * returns the fd, or -1 to refuse (the virtual connection is reset).
 */
struct ns_listener;
typedef int (*ns_open_fd_cb)(void *arg, uint32_t peer_ip, uint16_t peer_port);
struct ns_listener *ns_listen(struct netstack *ns, uint16_t port, ns_open_fd_cb open_fd,
    void *arg);
void ns_listener_free(struct ns_listener *l);

/* UDP over the virtual network. port 0 picks an ephemeral port. */
struct ns_udp;
typedef void (*ns_udp_recv_cb)(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip,
    const uint8_t *data, size_t len);
struct ns_udp *ns_udp_bind(struct netstack *ns, uint16_t port, ns_udp_recv_cb cb, void *arg);
uint16_t ns_udp_port(const struct ns_udp *u);
/* Returns 0, or -1 with errno (EMSGSIZE, ENOMEM, EHOSTUNREACH, ENETUNREACH before we have an
 * address). Broadcast destinations work. */
int ns_udp_sendto(struct ns_udp *u, uint32_t ip, uint16_t port, const void *data, size_t len);
void ns_udp_free(struct ns_udp *u);

#endif
