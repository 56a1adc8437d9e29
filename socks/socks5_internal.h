/*
 * socks5_internal: what socks5_server.c and socks5_udp.c share. Not for use outside socks/.
 */
#ifndef SHOAL_SOCKS5_INTERNAL_H
#define SHOAL_SOCKS5_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

#include "socks/socks5_parse.h"

struct ev_loop;
struct netstack;
struct peerdir;
struct s5_udp;
struct vnet;

/* What every SOCKS request needs from outside; owned by the server, borrowed by associations. */
struct socks_ctx {
	struct ev_loop *loop;
	struct netstack *ns;
	const struct vnet *vn;
	const struct peerdir *dir;
	/* Only our own uid's sockets may use an association (listening on loopback, without
	 * --allow-other-users): its first datagram's socket is checked like the control
	 * connection was. */
	int owner_only;
};

enum {
	/* Greeting and request must both arrive within this long after accept. */
	S5_HANDSHAKE_TIMEOUT = 10,
};

/*
 * Turns a SOCKS destination into an overlay IPv4 address: a literal IPv4 inside our virtual
 * network, or a name peerdir_resolve() knows (nick, node id, dotted address).
 * for_udp allows the overlay's broadcast addresses (LAN games announce that way).
 * Returns S5_REP_OK with *ip set, or the reply code to send.
 */
int socks5_resolve(const struct socks_ctx *cx, const struct s5_addr *a, int for_udp,
    uint32_t *ip);

/* A sockaddr as a SOCKS address (IPv4 or IPv6). */
void socks5_addr_from_sockaddr(struct s5_addr *a, const struct sockaddr_storage *ss);

/*
 * A UDP association for the control connection ctl_fd: a kernel UDP socket on the address
 * the client reached us at, port 0, and one ns_udp on the overlay. hint is the client's
 * DST.ADDR/DST.PORT from the request (zeros mean "whoever sends first").
 * On success *bnd is what to put in the reply; on failure NULL and *rep says why.
 * Freed by the control connection's owner when that connection ends; cx must outlive it.
 */
struct s5_udp *s5_udp_new(const struct socks_ctx *cx, int ctl_fd, const struct s5_addr *hint,
    struct s5_addr *bnd, int *rep);
void s5_udp_free(struct s5_udp *u);

#endif
