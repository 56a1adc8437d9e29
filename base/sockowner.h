/*
 * sockowner: which user owns the other end of a TCP connection made on this machine. shoal runs
 * on shared machines where the user has no admin rights: a loopback listener of the daemon
 * (SOCKS5, `shoal forward`, the lanproxy's aliases) must not let another local user reach the
 * virtual LAN as this node. The kernel's sock_diag netlink interface reports the owner of the
 * connecting socket; unprivileged processes may ask (it is what ss(8) shows).
 */
#ifndef SHOAL_SOCKOWNER_H
#define SHOAL_SOCKOWNER_H

#include <sys/types.h>

/*
 * The uid owning the local socket at the other end of accepted TCP connection fd (IPv4 or
 * IPv6). 0 with *uid set, or -1 (errno: ENOENT when that socket is not on this machine or
 * already gone, or the error of the netlink exchange).
 */
int sockowner_peer_uid(int fd, uid_t *uid);
/*
 * The uid owning the local UDP socket at client that sends to our socket at server (a
 * datagram's source and our receiving address). 0 with *uid set, or -1 (ENOENT: not a socket
 * of this machine).
 */
struct sockaddr_storage;
int sockowner_udp_uid(const struct sockaddr_storage *client, const struct sockaddr_storage *server,
    uid_t *uid);

#endif
