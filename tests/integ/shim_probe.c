/*
 * shim_probe: a small, ordinary network program that tests/integ/test_lanproxy.py runs under
 * `shoal run` to exercise the LD_PRELOAD shim the way real programs do (it knows nothing
 * about shoal). One line of results per action on stdout; exit 0 on success.
 *
 *   serve-tcp FAMILY PORT             accept forever; per connection print
 *                                     "accept peer=A:P local=A:P", echo until EOF
 *   connect MODE FAMILY ADDR PORT     MODE block|poll|epoll; print "ok local=.. peer=.." and
 *                                     echo one line through, or "err ERRNO-NAME"
 *   udp-echo FAMILY PORT              echo datagrams, printing "from=A:P"
 *   udp-ping FAMILY ADDR PORT         one datagram out, print "reply from=A:P" (2 s timeout)
 *   ifaces                            print shoal0 as getifaddrs/if_nametoindex/SIOCGIF* see it
 *   discover PORT NAME SECONDS IF     a LAN game: a server on PORT answers probes with NAME;
 *                                     a browser broadcasts probes on interface IF ("all": every
 *                                     broadcast interface) and prints "server NAME from=A:P"
 *                                     for each other server found
 *   mcast GROUP PORT NAME SECONDS     join GROUP, send "NAME" to it every 200 ms, print
 *                                     "member NAME" for each other sender heard
 *
 * FAMILY is 4 (AF_INET) or 6 (AF_INET6 with v4-mapped addresses and dual-stack binds).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *
errname(int e)
{
	switch (e) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case ECONNRESET: return "ECONNRESET";
	default: return strerror(e);
	}
}

static void
fmt(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(out, cap, "%s:%u", a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		/* v4-mapped shown as plain IPv4 so the test compares one form */
		snprintf(out, cap, "%s:%u", strncmp(a, "::ffff:", 7) == 0 ? a + 7 : a,
		    ntohs(s->sin6_port));
	} else {
		snprintf(out, cap, "?");
	}
}

static socklen_t
mkaddr(int fam, const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip ? ip : "0.0.0.0", &s->sin_addr);
		return sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		char buf[64];

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		if (!ip)
			s->sin6_addr = in6addr_any;
		else {
			snprintf(buf, sizeof(buf), "::ffff:%s", ip);
			inet_pton(AF_INET6, buf, &s->sin6_addr);
		}
		return sizeof(*s);
	}
}

static int
sock(int fam, int type)
{
	int fd = socket(fam == 4 ? AF_INET : AF_INET6, type, 0), off = 0;

	if (fd >= 0 && fam == 6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	return fd;
}

static void
names(int fd, char *local, char *peer, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);

	local[0] = peer[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0)
		fmt(&ss, local, cap);
	l = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &l) == 0)
		fmt(&ss, peer, cap);
}

static int
serve_tcp(int fam, int port)
{
	struct sockaddr_storage ss;
	char local[80], peer[80], buf[4096], acc[80];
	socklen_t l;
	int fd = sock(fam, SOCK_STREAM), c, one = 1;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	l = mkaddr(fam, NULL, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, l) == -1 || listen(fd, 16) == -1) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		l = sizeof(ss);
		if ((c = accept(fd, (struct sockaddr *)&ss, &l)) == -1)
			continue;
		fmt(&ss, acc, sizeof(acc));
		names(c, local, peer, sizeof(local));
		printf("accept from=%s peer=%s local=%s\n", acc, peer, local);
		fflush(stdout);
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, (size_t)n) != n)
				break;
		close(c);
	}
}

static int
do_connect(const char *mode, int fam, const char *ip, int port)
{
	struct sockaddr_storage ss;
	struct epoll_event ev;
	struct pollfd pfd;
	char local[80], peer[80], buf[64];
	socklen_t l = mkaddr(fam, ip, port, &ss), el;
	int fd = sock(fam, SOCK_STREAM), rc, err = 0, ep;
	ssize_t n;

	if (strcmp(mode, "block") != 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	rc = connect(fd, (struct sockaddr *)&ss, l);
	if (rc == -1 && errno != EINPROGRESS) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	if (rc == -1) {
		if (strcmp(mode, "epoll") == 0) {
			ep = epoll_create1(0);
			ev.events = EPOLLOUT;
			ev.data.fd = fd;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			if (epoll_wait(ep, &ev, 1, 30000) != 1) {
				printf("err epoll timeout\n");
				return 1;
			}
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, 30000) != 1) {
				printf("err poll timeout\n");
				return 1;
			}
		}
		el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			printf("err %s\n", errname(err));
			return 1;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	}
	names(fd, local, peer, sizeof(local));
	if (write(fd, "echo-me\n", 8) != 8 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0) {
		printf("err echo failed\n");
		return 1;
	}
	buf[n] = '\0';
	printf("ok local=%s peer=%s echo=%s", local, peer, buf);
	return 0;
}

static int
udp_echo(int fam, int port)
{
	struct sockaddr_storage ss;
	char from[80], buf[2048];
	socklen_t l;
	int fd = sock(fam, SOCK_DGRAM);
	ssize_t n;

	l = mkaddr(fam, NULL, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, l) == -1) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		l = sizeof(ss);
		if ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &l)) < 0)
			continue;
		fmt(&ss, from, sizeof(from));
		printf("from=%s\n", from);
		fflush(stdout);
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, l);
	}
}

static int
udp_ping(int fam, const char *ip, int port)
{
	struct sockaddr_storage ss, from;
	struct pollfd pfd;
	char f[80], buf[2048];
	socklen_t l = mkaddr(fam, ip, port, &ss), fl = sizeof(from);
	int fd = sock(fam, SOCK_DGRAM);
	struct msghdr m;
	struct iovec iov;

	if (sendto(fd, "ping", 4, 0, (struct sockaddr *)&ss, l) != 4) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 2000) != 1) {
		printf("err timeout\n");
		return 1;
	}
	/* recvmsg, so that path is covered too */
	memset(&m, 0, sizeof(m));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	m.msg_name = &from;
	m.msg_namelen = fl;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (recvmsg(fd, &m, 0) < 0) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	fmt(&from, f, sizeof(f));
	printf("reply from=%s\n", f);
	return 0;
}

static int
ifaces(void)
{
	struct ifaddrs *ifa, *p;
	struct ifreq ifr;
	struct ifconf ifc;
	char buf[8192], a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), i, found = 0;

	if (getifaddrs(&ifa) == 0) {
		for (p = ifa; p; p = p->ifa_next)
			if (strcmp(p->ifa_name, "shoal0") == 0 && p->ifa_addr &&
			    p->ifa_addr->sa_family == AF_INET) {
				inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, a,
				    sizeof(a));
				inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_netmask)->sin_addr, m,
				    sizeof(m));
				inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_broadaddr)->sin_addr,
				    b, sizeof(b));
				printf("getifaddrs addr=%s mask=%s bcast=%s flags=%#x\n", a, m, b,
				    p->ifa_flags);
			}
		freeifaddrs(ifa);
	}
	printf("nametoindex=%u\n", if_nametoindex("shoal0"));
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "shoal0");
	if (ioctl(fd, SIOCGIFADDR, &ifr) == 0) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, a, sizeof(a));
		printf("SIOCGIFADDR=%s\n", a);
	}
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0)
		printf("SIOCGIFMTU=%d\n", ifr.ifr_mtu);
	ifc.ifc_len = sizeof(buf);
	ifc.ifc_buf = buf;
	if (ioctl(fd, SIOCGIFCONF, &ifc) == 0)
		for (i = 0; i < ifc.ifc_len / (int)sizeof(struct ifreq); i++)
			if (strcmp(ifc.ifc_req[i].ifr_name, "shoal0") == 0)
				found = 1;
	printf("SIOCGIFCONF shoal0=%d\n", found);
	/* what SO_BINDTODEVICE / IP_MULTICAST_IF on shoal0 say */
	printf("bindtodevice=%d\n", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "shoal0", 7));
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints "server|member NAME" the first time NAME is heard (names are short). */
static void
seen(char found[][64], int *nfound, const char *kind, const char *name, const char *from)
{
	int i;

	for (i = 0; i < *nfound; i++)
		if (strcmp(found[i], name) == 0)
			return;
	if (*nfound < 32)
		snprintf(found[(*nfound)++], 64, "%s", name);
	printf("%s %s from=%s\n", kind, name, from);
	fflush(stdout);
}

/*
 * Like a LAN game: a server socket on the game's port answers probes; the browser socket (an
 * ephemeral port) broadcasts probes to the game port on each broadcast interface (IFNAME, or
 * every one for "all") and lists the servers that answer.
 */
static int
discover(int port, const char *name, double secs, const char *ifname)
{
	struct sockaddr_storage ss;
	struct sockaddr_in to;
	struct ifaddrs *ifa, *p;
	struct pollfd pfd[2];
	char found[32][64], buf[256], from[80], reply[128];
	double end = now() + secs, next = 0;
	socklen_t l;
	int srv = socket(AF_INET, SOCK_DGRAM, 0), br = socket(AF_INET, SOCK_DGRAM, 0);
	int one = 1, nfound = 0;
	ssize_t n;

	setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(br, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	l = mkaddr(4, NULL, port, &ss);
	if (bind(srv, (struct sockaddr *)&ss, l) == -1) {
		printf("err %s\n", errname(errno));
		return 1;
	}
	snprintf(reply, sizeof(reply), "SERVER %s", name);
	while (now() < end) {
		if (now() >= next) {
			if (getifaddrs(&ifa) == 0) {
				for (p = ifa; p; p = p->ifa_next)
					if (p->ifa_broadaddr && (p->ifa_flags & IFF_BROADCAST) &&
					    p->ifa_addr && p->ifa_addr->sa_family == AF_INET &&
					    (strcmp(ifname, "all") == 0 ||
					    strcmp(ifname, p->ifa_name) == 0)) {
						memcpy(&to, p->ifa_broadaddr, sizeof(to));
						to.sin_port = htons((uint16_t)port);
						sendto(br, "PROBE", 5, 0, (struct sockaddr *)&to,
						    sizeof(to));
					}
				freeifaddrs(ifa);
			}
			next = now() + 0.3;
		}
		pfd[0].fd = srv;
		pfd[1].fd = br;
		pfd[0].events = pfd[1].events = POLLIN;
		if (poll(pfd, 2, 50) < 1)
			continue;
		l = sizeof(ss);
		if ((pfd[0].revents & POLLIN) && (n = recvfrom(srv, buf, sizeof(buf) - 1, 0,
		    (struct sockaddr *)&ss, &l)) > 0) {
			buf[n] = '\0';
			if (strcmp(buf, "PROBE") == 0)
				sendto(srv, reply, strlen(reply), 0, (struct sockaddr *)&ss, l);
		}
		l = sizeof(ss);
		if ((pfd[1].revents & POLLIN) && (n = recvfrom(br, buf, sizeof(buf) - 1, 0,
		    (struct sockaddr *)&ss, &l)) > 0) {
			buf[n] = '\0';
			if (strncmp(buf, "SERVER ", 7) == 0 && strcmp(buf + 7, name) != 0) {
				fmt(&ss, from, sizeof(from));
				seen(found, &nfound, "server", buf + 7, from);
			}
		}
	}
	return 0;
}

static int
mcast(const char *group, int port, const char *name, double secs)
{
	struct sockaddr_storage ss;
	struct sockaddr_in to;
	struct ip_mreqn mr;
	struct pollfd pfd;
	char found[32][64], buf[256], from[80];
	double end = now() + secs, next = 0;
	socklen_t l;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, nfound = 0;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	l = mkaddr(4, NULL, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, l) == -1) {
		printf("err bind %s\n", errname(errno));
		return 1;
	}
	memset(&mr, 0, sizeof(mr));
	inet_pton(AF_INET, group, &mr.imr_multiaddr);
	mr.imr_ifindex = (int)if_nametoindex("shoal0");
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) == -1) {
		printf("err join %s\n", errname(errno));
		return 1;
	}
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) == -1) {
		printf("err multicast_if %s\n", errname(errno));
		return 1;
	}
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	to.sin_addr = mr.imr_multiaddr;
	while (now() < end) {
		if (now() >= next) {
			sendto(fd, name, strlen(name), 0, (struct sockaddr *)&to, sizeof(to));
			next = now() + 0.2;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) != 1)
			continue;
		l = sizeof(ss);
		if ((n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&ss, &l)) <= 0)
			continue;
		buf[n] = '\0';
		if (strcmp(buf, name) != 0) {
			fmt(&ss, from, sizeof(from));
			seen(found, &nfound, "member", buf, from);
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "serve-tcp") == 0)
		return serve_tcp(atoi(argv[2]), atoi(argv[3]));
	if (argc == 6 && strcmp(argv[1], "connect") == 0)
		return do_connect(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
	if (argc == 4 && strcmp(argv[1], "udp-echo") == 0)
		return udp_echo(atoi(argv[2]), atoi(argv[3]));
	if (argc == 5 && strcmp(argv[1], "udp-ping") == 0)
		return udp_ping(atoi(argv[2]), argv[3], atoi(argv[4]));
	if (argc == 2 && strcmp(argv[1], "ifaces") == 0)
		return ifaces();
	if (argc == 6 && strcmp(argv[1], "discover") == 0)
		return discover(atoi(argv[2]), argv[3], atof(argv[4]), argv[5]);
	if (argc == 6 && strcmp(argv[1], "mcast") == 0)
		return mcast(argv[2], atoi(argv[3]), argv[4], atof(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of shim_probe.c\n");
	return 2;
}
