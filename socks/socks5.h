/*
 * socks5: the daemon's SOCKS5 server (RFC 1928, no authentication) on a loopback TCP port.
 * CONNECT and UDP ASSOCIATE to virtual addresses and to peer names given as domain names
 * (resolved through the peer directory); anything else gets the proper SOCKS error reply.
 * Owns: the listening socket, every client connection and UDP association.
 */
#ifndef SHOAL_SOCKS5_H
#define SHOAL_SOCKS5_H

#include <stdint.h>

struct ev_loop;
struct netstack;
struct peerdir;
struct socks_server;
struct vnet;

/*
 * Listens on host:port. ns carries the connections and datagrams; vn (our address, 0 until
 * known: requests then get "network unreachable") and dir are read on every request, so they
 * must outlive the server. NULL on error (logged).
 */
struct socks_server *socks_server_new(struct ev_loop *loop, struct netstack *ns,
    const struct vnet *vn, const struct peerdir *dir, const char *host, uint16_t port);
/*
 * By default only our own uid's connections are served when the listener is on loopback
 * (base/acceptor.h, owner only): on a shared machine another user must not act as this node.
 * allow 1 serves every local user (--allow-other-users). A listener on another address is
 * for other hosts and serves everyone who reaches it.
 */
void socks_server_allow_others(struct socks_server *s, int allow);
/* Call before netstack_free(). */
void socks_server_free(struct socks_server *s);

#endif
