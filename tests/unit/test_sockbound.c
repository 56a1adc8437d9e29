/*
 * test_sockbound: base/sockbound.c against the kernel's own sock_diag. Sockets of ours bound on
 * the loopback and wildcard addresses (UDP, IPv4 and IPv6; TCP in LISTEN) are in one snapshot,
 * each found under its protocol and port with its inode; a TCP socket bound but not listening,
 * one bound to another address and a closed one are not; many ports cost one snapshot.
 */
#include "config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sockbound.h"
#include "tests/unit/unit.h"

enum { MANY = 200 };

static int
bound_sock(int family, int type, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, type, 0);

	CHECK(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static uint64_t
inode_of(int fd)
{
	struct stat st;

	CHECK_EQ(fstat(fd, &st), 0);
	return (uint64_t)st.st_ino;
}

/* Exactly one socket of proto on port, and it is fd. */
static void
check_only(const struct sockbound_snap *snap, uint8_t proto, uint16_t port, int fd)
{
	uint64_t ino[4];

	CHECK_EQ(sockbound_find(snap, proto, port, ino, 4), 1);
	CHECK(ino[0] == inode_of(fd));
}

static void
test_snapshot(void)
{
	struct sockbound_snap snap;
	uint16_t pu4, pu6, pt, pc, pn, pa, many_port[MANY];
	int u4, u6, tl, tc, closed, other, many[MANY], i;
	uint64_t ino[4];

	u4 = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", &pu4);
	u6 = bound_sock(AF_INET6, SOCK_DGRAM, "::1", &pu6);
	tl = bound_sock(AF_INET, SOCK_STREAM, "0.0.0.0", &pt);
	CHECK_EQ(listen(tl, 1), 0);
	tc = bound_sock(AF_INET, SOCK_STREAM, "127.0.0.1", &pc);      /* bound, not listening */
	closed = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", &pn);
	close(closed);
	/* another loopback address is not "the" loopback address */
	other = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.2", &pa);
	for (i = 0; i < MANY; i++)
		many[i] = bound_sock(AF_INET, SOCK_DGRAM, "0.0.0.0", &many_port[i]);

	CHECK_EQ(sockbound_snapshot(getuid(), &snap), 0);
	check_only(&snap, IPPROTO_UDP, pu4, u4);
	if (u6 >= 0)            /* a host without IPv6 loopback skips this one */
		check_only(&snap, IPPROTO_UDP, pu6, u6);
	check_only(&snap, IPPROTO_TCP, pt, tl);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, pt, ino, 4), 0);   /* TCP is not UDP */
	CHECK_EQ(sockbound_find(&snap, IPPROTO_TCP, pc, ino, 4), 0);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, pn, ino, 4), 0);
	if (other >= 0)
		CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, pa, ino, 4), 0);
	for (i = 0; i < MANY; i++)
		check_only(&snap, IPPROTO_UDP, many_port[i], many[i]);
	/* another user's view has none of ours */
	sockbound_snap_free(&snap);
	CHECK_EQ(sockbound_snapshot(getuid() + 12345, &snap), 0);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, pu4, ino, 4), 0);
	sockbound_snap_free(&snap);

	for (i = 0; i < MANY; i++)
		close(many[i]);
	close(u4);
	if (u6 >= 0)
		close(u6);
	close(tl);
	close(tc);
	if (other >= 0)
		close(other);
}

/* A network namespace of our own when we may (root, as in CI), its loopback up: the snapshot
 * sees every socket of the namespace, and in the shared one a parallel test's socket on the
 * same port number was counted too. */
static void
own_netns(void)
{
	struct ifreq ifr;
	int fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
		return;
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		(void)ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	printf("# in a network namespace of its own\n");
}

int
main(void)
{
	own_netns();
	RUN(test_snapshot);
	return unit_finish();
}
