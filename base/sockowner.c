/*
 * sockowner: one exact-match SOCK_DIAG_BY_FAMILY request per connection. The kernel's exact
 * lookup (inet_diag_find_one_icsk) finds the socket that would receive a packet sent from
 * idiag_dst:idiag_dport to idiag_src:idiag_sport, so naming the client's address and port as
 * "src" yields the client's socket, with its owner's uid. One netlink socket per call: this
 * runs once per accepted connection, not per packet.
 */
#include "config.h"
#include "base/sockowner.h"
#include "base/sockdiag.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
fill_id(struct inet_diag_sockid *id, const struct sockaddr_storage *client,
    const struct sockaddr_storage *server)
{
	if (client->ss_family == AF_INET) {
		const struct sockaddr_in *c = (const struct sockaddr_in *)(const void *)client;
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)server;

		id->idiag_sport = c->sin_port;
		id->idiag_dport = s->sin_port;
		memcpy(id->idiag_src, &c->sin_addr, 4);
		memcpy(id->idiag_dst, &s->sin_addr, 4);
		return 0;
	}
	if (client->ss_family == AF_INET6) {
		const struct sockaddr_in6 *c = (const struct sockaddr_in6 *)(const void *)client;
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)server;

		id->idiag_sport = c->sin6_port;
		id->idiag_dport = s->sin6_port;
		memcpy(id->idiag_src, &c->sin6_addr, 16);
		memcpy(id->idiag_dst, &s->sin6_addr, 16);
		return 0;
	}
	errno = EAFNOSUPPORT;
	return -1;
}

/* One exact-match request: the owner of the socket id names (protocol TCP or UDP). */
static int
lookup_uid(uint8_t family, uint8_t protocol, const struct inet_diag_sockid *id, uid_t *uid)
{
	union {
		struct nlmsghdr nh;
		char buf[8192];
	} rp;
	const struct nlmsghdr *h;
	const struct inet_diag_msg *m;
	ssize_t n;
	int nfd, e;

	if ((nfd = sockdiag_open()) < 0)
		return -1;
	if (sockdiag_request(nfd, 0, 1, family, protocol, ~0u, id) != 0 ||
	    (n = recv(nfd, &rp, sizeof(rp), 0)) < 0) {
		e = errno;
		close(nfd);
		errno = e;
		return -1;
	}
	close(nfd);
	for (h = &rp.nh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = sockdiag_errno(h);
			return -1;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
			continue;
		m = NLMSG_DATA(h);
		*uid = (uid_t)m->idiag_uid;
		return 0;
	}
	errno = ENOENT;
	return -1;
}

int
sockowner_peer_uid(int fd, uid_t *uid)
{
	struct sockaddr_storage client, server;
	socklen_t cl = sizeof(client), sl = sizeof(server);
	struct inet_diag_sockid id;

	if (getpeername(fd, (struct sockaddr *)&client, &cl) != 0 ||
	    getsockname(fd, (struct sockaddr *)&server, &sl) != 0)
		return -1;
	memset(&id, 0, sizeof(id));
	if (fill_id(&id, &client, &server) != 0)
		return -1;
	return lookup_uid((uint8_t)client.ss_family, IPPROTO_TCP, &id, uid);
}

int
sockowner_udp_uid(const struct sockaddr_storage *client, const struct sockaddr_storage *server,
    uid_t *uid)
{
	struct inet_diag_sockid id;

	memset(&id, 0, sizeof(id));
	/* UDP's exact lookup finds the socket that would receive a datagram from src to dst:
	 * the client's socket is found naming our end as src */
	if (client->ss_family != server->ss_family || fill_id(&id, server, client) != 0)
		return -1;
	return lookup_uid((uint8_t)client->ss_family, IPPROTO_UDP, &id, uid);
}
