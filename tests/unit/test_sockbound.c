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
#include <stdlib.h>
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

/* The sockets of one snapshot test and their ports. */
struct sockset {
	int u4, u6, tl, tc, other, many[MANY];
	uint16_t pu4, pu6, pt, pc, pn, pa, many_port[MANY];
};

static void
sockset_close(struct sockset *s)
{
	int i;

	for (i = 0; i < MANY; i++)
		close(s->many[i]);
	close(s->u4);
	if (s->u6 >= 0)
		close(s->u6);
	close(s->tl);
	close(s->tc);
	if (s->other >= 0)
		close(s->other);
}

static int
port_cmp(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Opens the set; 0 when two of its sockets share a port number. The kernel draws UDP and TCP
 * ports apart, IPv4 and IPv6 apart, and hands a closed socket's port to the next: any of these
 * made "exactly this socket on this port" or "nothing on this port" false about once in 50 runs. */
static int
sockset_open(struct sockset *s)
{
	uint16_t all[MANY + 6];
	int closed, i, n = 0;

	memset(s, 0, sizeof(*s));
	s->u4 = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", &s->pu4);
	s->u6 = bound_sock(AF_INET6, SOCK_DGRAM, "::1", &s->pu6);
	s->tl = bound_sock(AF_INET, SOCK_STREAM, "0.0.0.0", &s->pt);
	CHECK_EQ(listen(s->tl, 1), 0);
	s->tc = bound_sock(AF_INET, SOCK_STREAM, "127.0.0.1", &s->pc);  /* bound, not listening */
	closed = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", &s->pn);
	close(closed);
	/* another loopback address is not "the" loopback address */
	s->other = bound_sock(AF_INET, SOCK_DGRAM, "127.0.0.2", &s->pa);
	for (i = 0; i < MANY; i++)
		s->many[i] = bound_sock(AF_INET, SOCK_DGRAM, "0.0.0.0", &s->many_port[i]);

	all[n++] = s->pu4;
	if (s->u6 >= 0)
		all[n++] = s->pu6;
	all[n++] = s->pt;
	all[n++] = s->pc;
	all[n++] = s->pn;
	if (s->other >= 0)
		all[n++] = s->pa;
	for (i = 0; i < MANY; i++)
		all[n++] = s->many_port[i];
	qsort(all, (size_t)n, sizeof(all[0]), port_cmp);
	for (i = 1; i < n; i++)
		if (all[i] == all[i - 1])
			return 0;
	return 1;
}

static void
test_snapshot(void)
{
	struct sockbound_snap snap;
	struct sockset s;
	uint64_t ino[4];
	int i, tries = 0;

	while (!sockset_open(&s)) {
		sockset_close(&s);
		CHECK(++tries < 100);
	}
	CHECK_EQ(sockbound_snapshot(getuid(), &snap), 0);
	check_only(&snap, IPPROTO_UDP, s.pu4, s.u4);
	if (s.u6 >= 0)          /* a host without IPv6 loopback skips this one */
		check_only(&snap, IPPROTO_UDP, s.pu6, s.u6);
	check_only(&snap, IPPROTO_TCP, s.pt, s.tl);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, s.pt, ino, 4), 0); /* TCP is not UDP */
	CHECK_EQ(sockbound_find(&snap, IPPROTO_TCP, s.pc, ino, 4), 0);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, s.pn, ino, 4), 0);
	if (s.other >= 0)
		CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, s.pa, ino, 4), 0);
	for (i = 0; i < MANY; i++)
		check_only(&snap, IPPROTO_UDP, s.many_port[i], s.many[i]);
	/* another user's view has none of ours */
	sockbound_snap_free(&snap);
	CHECK_EQ(sockbound_snapshot(getuid() + 12345, &snap), 0);
	CHECK_EQ(sockbound_find(&snap, IPPROTO_UDP, s.pu4, ino, 4), 0);
	sockbound_snap_free(&snap);
	sockset_close(&s);
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
