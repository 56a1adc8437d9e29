/*
 * sockbound: which of our user's sockets are bound to a port on the machine's wildcard or
 * loopback address, as the kernel's sock_diag netlink dump reports them (what ss(8) shows; any
 * user may ask). The lanproxy keeps a program's virtual listener or UDP port for as long as
 * the socket behind it lives, whichever process holds it now (a daemon that bound and forked,
 * an fd inherited across exec), not for as long as the process that announced it.
 */
#ifndef SHOAL_SOCKBOUND_H
#define SHOAL_SOCKBOUND_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sockbound_sock {
	uint8_t proto;                  /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;                  /* host order */
	uint64_t inode;
};

/* Every socket of one user bound on the wildcard or loopback address, taken at one moment. */
struct sockbound_snap {
	struct sockbound_sock *v;       /* sorted by proto, port */
	size_t n;
};

/*
 * uid's UDP sockets (any state) and TCP sockets in LISTEN bound on 0.0.0.0, 127.0.0.1, ::, ::1
 * or ::ffff:127.0.0.1, IPv4 and IPv6: four dumps, whatever the number of ports asked about
 * afterwards. 0, or -1 with errno (snap is then empty). Free with sockbound_snap_free.
 */
int sockbound_snapshot(uid_t uid, struct sockbound_snap *snap);
/* The inodes of proto's sockets on port in snap: writes at most cap, returns how many. */
size_t sockbound_find(const struct sockbound_snap *snap, uint8_t proto, uint16_t port,
    uint64_t *inodes, size_t cap);
void sockbound_snap_free(struct sockbound_snap *snap);

#endif
