/*
 * socks5: the daemon's SOCKS5 server (RFC 1928, no authentication) on a loopback TCP port.
 * CONNECT and UDP ASSOCIATE to virtual addresses and to peer names given as domain names
 * (resolved with medclient_resolve); anything else gets the proper SOCKS error reply.
 * Owns: the listening socket, every client connection and UDP association.
 */
#ifndef SHOAL_SOCKS5_H
#define SHOAL_SOCKS5_H

#include <stdint.h>

struct daemon;
struct socks_server;

/* Listens on host:port. NULL on error (logged). */
struct socks_server *socks_server_new(struct daemon *d, const char *host, uint16_t port);
void socks_server_free(struct socks_server *s);

#endif
