/*
 * sockdiag: the NETLINK_SOCK_DIAG plumbing shared by sockowner (one exact lookup) and sockbound
 * (dumps): open the socket, send one inet_diag request, read an NLMSG_ERROR's errno.
 */
#ifndef SHOAL_SOCKDIAG_H
#define SHOAL_SOCKDIAG_H

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <stdint.h>

/* A NETLINK_SOCK_DIAG socket with a 1 s receive timeout; -1 with errno. */
int sockdiag_open(void);

/* Send one SOCK_DIAG_BY_FAMILY request (flags: NLM_F_REQUEST is implied, add NLM_F_DUMP for a
 * dump); id may be NULL for a dump. 0 or -1 with errno. */
int sockdiag_request(int nfd, uint16_t flags, uint32_t seq, uint8_t family, uint8_t protocol,
    uint32_t states, const struct inet_diag_sockid *id);

/* The errno an NLMSG_ERROR message carries (EPROTO when it is malformed or says no error). */
int sockdiag_errno(const struct nlmsghdr *h);

#endif
