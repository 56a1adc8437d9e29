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

/*
 * The inodes of uid's sockets of proto (IPPROTO_TCP: in LISTEN; IPPROTO_UDP: any) bound to
 * port (host order) on 0.0.0.0, 127.0.0.1, ::, ::1 or ::ffff:127.0.0.1, IPv4 and IPv6. Writes
 * at most cap of them; returns how many there are (may exceed cap), or -1 with errno.
 */
int sockbound_list(uint8_t proto, uint16_t port, uid_t uid, uint64_t *inodes, size_t cap);

#endif
