/*
 * shimtest: the C test matrix for lanproxy (issue 3). One program, many subcommands, each run by
 * tests/integ/test_lanproxy_*.py under `shoal run` on one daemon while a peer subcommand runs
 * under `shoal run` on another. It checks what a wrapped program must see (blocking and
 * non-blocking connect through poll/epoll/select, refused and unreachable peers, peer and local
 * addresses, UDP in every send/recv flavour, v4-mapped AF_INET6, the shoal0 interface in every
 * enumeration API, bind/SO_BINDTODEVICE/multicast options, broadcast and multicast delivery,
 * dup/fork/exec/close_range/threads) and prints one JSON line per check:
 *   {"check":"NAME","ok":true,"detail":"..."}
 * and JSON event lines ({"event":"ready",...}, {"event":"dgram",...}) the driver waits on.
 * Exit status: 0 all checks passed, 1 some failed, 2 usage.
 *
 * Built without sanitizers (it runs under the LD_PRELOAD shim) and a second time with
 * -D_FORTIFY_SOURCE=2 -O2 (shimtest_fortify) so its receive calls become __recvfrom_chk,
 * __recv_chk and __read_chk: the receive paths below pass lengths the compiler cannot see
 * (rcap()) so the fortified variants are really used.
 *
 * Owns nothing outside this test; touches no shoal code (it is an ordinary program on purpose).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Options shared by all subcommands; filled once by parse_opts, read-only afterwards. */
struct opts {
	int nonblock;
	const char *mode;        /* poll | epoll | select */
	int v6;                  /* AF_INET6 socket, v4-mapped addresses */
	const char *self;        /* our expected 5.x address */
	const char *peer;        /* expected peer address */
	const char *bind;        /* address to bind */
	const char *expect;      /* ok | refused | unreach */
	const char *mcast;       /* multicast group to join */
	const char *mcast_if;    /* interface address for IP_MULTICAST_IF / membership */
	int mcast_ifindex;       /* join with ip_mreqn and shoal0's index */
	int mcast_group_req;     /* join with MCAST_JOIN_GROUP (struct group_req) */
	int reuse, reuseport;
	long count;
	long bytes;
	int timeout;             /* watchdog, seconds */
	double secs;             /* listen duration / browse window */
	int repeat;
	int interval_ms;
	int prefix;
	const char *pos[8];
	int npos;
};

static int failures;

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void check(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
check(const char *name, int ok, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	printf("{\"check\":");
	json_str(stdout, name);
	printf(",\"ok\":%s,\"detail\":", ok ? "true" : "false");
	json_str(stdout, detail);
	printf(",\"pid\":%d}\n", (int)getpid());
	fflush(stdout);
	if (!ok)
		failures++;
}

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fmt is the body of a JSON object without braces; callers escape their own strings. */
static void
event(const char *fmt, ...)
{
	va_list ap;

	printf("{");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("}\n");
	fflush(stdout);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A length the compiler cannot fold, so fortified builds call the __*_chk receive variants. */
static size_t
rcap(size_t n)
{
	volatile size_t v = n;

	return v;
}

static void
on_alarm(int sig)
{
	static const char msg[] = "{\"check\":\"watchdog\",\"ok\":false,\"detail\":\"timed out: a call hung\"}\n";

	(void)sig;
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(1);
}

/* --- addresses --- */

static int
make_addr(const char *ip, int port, int v6, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		struct in_addr a4;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (strchr(ip, ':')) {
			if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
				return -1;
		} else {
			if (inet_pton(AF_INET, ip, &a4) != 1)
				return -1;
			if (a4.s_addr == htonl(INADDR_ANY)) {
				s6->sin6_addr = in6addr_any;
			} else {
				s6->sin6_addr.s6_addr[10] = 0xff;
				s6->sin6_addr.s6_addr[11] = 0xff;
				memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
			}
		}
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -1;
		*len = sizeof *s4;
	}
	return 0;
}

/* The IPv4 address inside sa (plain or v4-mapped) as dotted text, or the v6 text; port out. */
static void
addr_ip(const struct sockaddr *sa, char *out, size_t cap, int *port)
{
	*port = -1;
	snprintf(out, cap, "?");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)cap);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)cap);
		*port = ntohs(s6->sin6_port);
	} else {
		snprintf(out, cap, "family%d", sa->sa_family);
	}
}

static const char *
family_name(const struct sockaddr *sa, socklen_t len)
{
	if (len == 0)
		return "none";
	if (sa->sa_family == AF_INET)
		return "inet";
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? "inet6-mapped" : "inet6";
	}
	return "other";
}

/* Is sa (from a socket of family v6?AF_INET6:AF_INET) ip:port? port < 0: any port. */
static int
addr_is(const struct sockaddr *sa, socklen_t len, int v6, const char *ip, int port, char *got, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	int p;

	addr_ip(sa, a, sizeof a, &p);
	snprintf(got, cap, "%s:%d family=%s len=%u", a, p, family_name(sa, len), (unsigned)len);
	if (sa->sa_family != (v6 ? AF_INET6 : AF_INET))
		return 0;
	if (len != (v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)))
		return 0;
	return strcmp(a, ip) == 0 && (port < 0 || p == port);
}

/* --- readiness through the chosen API; the kernel must report it, not the shim --- */

static int
wait_fd(int fd, int want_write, const char *mode, int timeout_ms)
{
	if (strcmp(mode, "epoll") == 0) {
		int ep = epoll_create1(EPOLL_CLOEXEC), n;
		struct epoll_event ev = { .events = want_write ? EPOLLOUT : EPOLLIN, .data.fd = fd }, out;

		if (ep < 0)
			return -1;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(ep);
			return -1;
		}
		n = epoll_wait(ep, &out, 1, timeout_ms);
		close(ep);
		return n;
	}
	if (strcmp(mode, "select") == 0) {
		fd_set rs, ws;
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

		FD_ZERO(&rs);
		FD_ZERO(&ws);
		FD_SET(fd, want_write ? &ws : &rs);
		return select(fd + 1, &rs, &ws, NULL, &tv);
	}
	{
		struct pollfd p = { .fd = fd, .events = want_write ? POLLOUT : POLLIN };

		return poll(&p, 1, timeout_ms);
	}
}

static int
set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Write all of buf, waiting through mode when the socket is non-blocking. */
static int
send_all(int fd, const uint8_t *buf, size_t n, const char *mode)
{
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, 1, mode, 15000) <= 0)
				return -1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Read until EOF or cap bytes; -1 on error. */
static ssize_t
recv_all(int fd, uint8_t *buf, size_t cap, const char *mode)
{
	size_t off = 0;

	while (off < cap) {
		ssize_t r = recv(fd, buf + off, rcap(cap - off), 0);

		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, 0, mode, 15000) <= 0)
				return -1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		off += (size_t)r;
	}
	return (ssize_t)off;
}

static void
fill_pattern(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

/* --- TCP --- */

static int
expect_errno_ok(const char *expect, int err)
{
	if (strcmp(expect, "ok") == 0)
		return err == 0;
	if (strcmp(expect, "refused") == 0)
		return err == ECONNREFUSED;
	/* unreachable: any of the kernel's answers for a host that is not there */
	return err == EHOSTUNREACH || err == ETIMEDOUT || err == ECONNREFUSED || err == ENETUNREACH;
}

/* Connects fd (already created) to ip:port per opts; reports checks with prefix tag. Returns
 * the final error (0 connected). */
static int
do_connect(int fd, const struct opts *o, const char *ip, int port, const char *tag)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[96];
	double t0 = now_ms();
	int rc, err;

	make_addr(ip, port, o->v6, &ss, &len);
	if (o->nonblock)
		set_nonblock(fd, 1);
	rc = connect(fd, (struct sockaddr *)&ss, len);
	err = rc < 0 ? errno : 0;
	if (!o->nonblock) {
		snprintf(name, sizeof name, "%sconnect-blocking-%s", tag, o->expect);
		check(name, expect_errno_ok(o->expect, err), "rc=%d errno=%d (%s) after %.0f ms", rc, err,
		    err ? strerror(err) : "-", now_ms() - t0);
		return err;
	}
	snprintf(name, sizeof name, "%sconnect-einprogress", tag);
	check(name, rc < 0 && err == EINPROGRESS, "rc=%d errno=%d (%s)", rc, err, err ? strerror(err) : "-");
	if (rc < 0 && err != EINPROGRESS)
		return err;
	if (rc < 0) {
		int n = wait_fd(fd, 1, o->mode, 20000);
		socklen_t sl = sizeof err;

		snprintf(name, sizeof name, "%sconnect-writable-%s", tag, o->mode);
		check(name, n == 1, "%s returned %d after %.0f ms", o->mode, n, now_ms() - t0);
		err = -1;
		rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		snprintf(name, sizeof name, "%sso-error-%s", tag, o->expect);
		check(name, rc == 0 && expect_errno_ok(o->expect, err), "SO_ERROR=%d (%s) after %.0f ms", err,
		    err > 0 ? strerror(err) : "-", now_ms() - t0);
		if (rc < 0)
			return errno;
		if (err == 0) {
			/* a second SO_ERROR read is 0, as with the kernel */
			int again = -1;

			sl = sizeof again;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &again, &sl);
			snprintf(name, sizeof name, "%sso-error-cleared", tag);
			check(name, again == 0, "second SO_ERROR=%d", again);
		}
	}
	return err;
}

static void
check_names(int fd, const struct opts *o, const char *ip, int port, const char *tag)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char got[160], name[96];
	int rc;

	rc = getpeername(fd, (struct sockaddr *)&ss, &len);
	snprintf(name, sizeof name, "%sgetpeername", tag);
	check(name, rc == 0 && addr_is((struct sockaddr *)&ss, len, o->v6, ip, port, got, sizeof got), "rc=%d got %s want %s:%d",
	    rc, rc == 0 ? got : strerror(errno), ip, port);
	if (o->self) {
		len = sizeof ss;
		rc = getsockname(fd, (struct sockaddr *)&ss, &len);
		snprintf(name, sizeof name, "%sgetsockname", tag);
		check(name, rc == 0 && addr_is((struct sockaddr *)&ss, len, o->v6, o->self, -1, got, sizeof got),
		    "rc=%d got %s want %s", rc, rc == 0 ? got : strerror(errno), o->self);
	}
}

static int
echo_roundtrip(int fd, const struct opts *o, size_t n, unsigned seed, const char *tag)
{
	uint8_t *out = malloc(n), *in = malloc(n + 1);
	char name[96];
	ssize_t got;
	int ok;

	fill_pattern(out, n, seed);
	ok = send_all(fd, out, n, o->mode) == 0;
	if (ok)
		shutdown(fd, SHUT_WR);
	got = ok ? recv_all(fd, in, n + 1, o->mode) : -1;
	ok = ok && got == (ssize_t)n && memcmp(in, out, n) == 0;
	snprintf(name, sizeof name, "%secho-data", tag);
	check(name, ok, "sent %zu got %zd (errno %d)", n, got, errno);
	free(out);
	free(in);
	return ok;
}

static int
cmd_tcp_client(const struct opts *o)
{
	const char *ip = o->pos[0];
	int port = atoi(o->pos[1]);
	int fd = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	int err;

	if (fd < 0) {
		check("socket", 0, "%s", strerror(errno));
		return 1;
	}
	err = do_connect(fd, o, ip, port, "");
	if (err == 0 && strcmp(o->expect, "ok") == 0) {
		check_names(fd, o, ip, port, "");
		echo_roundtrip(fd, o, (size_t)o->bytes, 1, "");
	}
	close(fd);
	return failures ? 1 : 0;
}

/* One accepted connection: report addresses, then echo until EOF. */
struct conn_arg {        /* owned by the serving thread */
	int fd;
	int v6;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

static void *
serve_echo(void *p)
{
	struct conn_arg *c = p;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char a[INET6_ADDRSTRLEN], pn[INET6_ADDRSTRLEN], sn[INET6_ADDRSTRLEN], got[160];
	int port, pport = -1, sport = -1;
	uint8_t buf[65536];

	addr_ip((struct sockaddr *)&c->peer, a, sizeof a, &port);
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_ip((struct sockaddr *)&ss, pn, sizeof pn, &pport);
	else
		snprintf(pn, sizeof pn, "error:%d", errno);
	check("accept-addr-family", addr_is((struct sockaddr *)&c->peer, c->peer_len, c->v6, a, port, got, sizeof got),
	    "accept gave %s", got);
	len = sizeof ss;
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_ip((struct sockaddr *)&ss, sn, sizeof sn, &sport);
	else
		snprintf(sn, sizeof sn, "error:%d", errno);
	check("accept-equals-getpeername", strcmp(a, pn) == 0 && port == pport, "accept %s:%d getpeername %s:%d",
	    a, port, pn, pport);
	event("\"event\":\"accept\",\"peer\":\"%s\",\"peer_port\":%d,\"getpeername\":\"%s\",\"sockname\":\"%s\",\"sock_port\":%d",
	    a, port, pn, sn, sport);
	for (;;) {
		ssize_t r = read(c->fd, buf, rcap(sizeof buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (send_all(c->fd, buf, (size_t)r, "poll") < 0)
			break;
	}
	close(c->fd);
	free(c);
	return NULL;
}

static int
cmd_tcp_server(const struct opts *o)
{
	int port = atoi(o->pos[0]);
	int fd = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_storage ss;
	socklen_t len;
	pthread_t th[256];
	long n = 0, i;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	make_addr(o->bind ? o->bind : "0.0.0.0", port, o->v6, &ss, &len);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		check("tcp-listen", 0, "bind/listen %s:%d: %s", o->bind ? o->bind : "any", port, strerror(errno));
		return 1;
	}
	len = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &len);
	{
		char a[INET6_ADDRSTRLEN];
		int p;

		addr_ip((struct sockaddr *)&ss, a, sizeof a, &p);
		event("\"event\":\"ready\",\"port\":%d,\"addr\":\"%s\"", p, a);
	}
	while (o->count == 0 || n < o->count) {
		struct conn_arg *c = calloc(1, sizeof *c);

		c->v6 = o->v6;
		c->peer_len = sizeof c->peer;
		c->fd = accept(fd, (struct sockaddr *)&c->peer, &c->peer_len);
		if (c->fd < 0) {
			if (errno == EINTR) {
				free(c);
				continue;
			}
			check("accept", 0, "%s", strerror(errno));
			free(c);
			break;
		}
		if (n < (long)(sizeof th / sizeof th[0]))
			pthread_create(&th[n], NULL, serve_echo, c);
		else
			serve_echo(c);
		n++;
	}
	for (i = 0; i < n && i < (long)(sizeof th / sizeof th[0]); i++)
		pthread_join(th[i], NULL);
	close(fd);
	return failures ? 1 : 0;
}

/* --- UDP --- */

static int
udp_socket(const struct opts *o, const char *bind_ip, int port)
{
	int fd = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0), one = 1;
	struct sockaddr_storage ss;
	socklen_t len;

	if (fd < 0)
		return -1;
	if (o->reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (o->reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind_ip) {
		make_addr(bind_ip, port, o->v6, &ss, &len);
		if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

static int
cmd_udp_echo(const struct opts *o)
{
	int port = atoi(o->pos[0]);
	int fd = udp_socket(o, o->bind ? o->bind : "0.0.0.0", port);
	long n;

	if (fd < 0) {
		check("udp-bind", 0, "%s", strerror(errno));
		return 1;
	}
	event("\"event\":\"ready\",\"port\":%d", port);
	for (n = 0; o->count == 0 || n < o->count; n++) {
		uint8_t buf[2048], out[2100];
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		char a[INET6_ADDRSTRLEN];
		int p, olen;
		ssize_t r;
		const char *how;

		if (n % 2 == 0) {
			how = "recvfrom";
			r = recvfrom(fd, buf, rcap(sizeof buf - 1), 0, (struct sockaddr *)&ss, &len);
		} else {
			struct iovec iov = { buf, rcap(sizeof buf - 1) };
			struct msghdr mh = { .msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov, .msg_iovlen = 1 };

			how = "recvmsg";
			r = recvmsg(fd, &mh, 0);
			len = mh.msg_namelen;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			check("udp-recv", 0, "%s", strerror(errno));
			break;
		}
		buf[r] = 0;
		addr_ip((struct sockaddr *)&ss, a, sizeof a, &p);
		event("\"event\":\"dgram\",\"via\":\"%s\",\"from\":\"%s\",\"from_port\":%d,\"family\":\"%s\",\"len\":%zd",
		    how, a, p, family_name((struct sockaddr *)&ss, len), r);
		olen = snprintf((char *)out, sizeof out, "echo:%s", (char *)buf);
		if (n % 2 == 0) {
			if (sendto(fd, out, (size_t)olen, 0, (struct sockaddr *)&ss, len) < 0)
				check("udp-echo-sendto", 0, "to %s:%d: %s", a, p, strerror(errno));
		} else {
			struct iovec iov = { out, (size_t)olen };
			struct msghdr mh = { .msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };

			if (sendmsg(fd, &mh, 0) < 0)
				check("udp-echo-sendmsg", 0, "to %s:%d: %s", a, p, strerror(errno));
		}
	}
	close(fd);
	return failures ? 1 : 0;
}

/* One request/reply over UDP with retries (the first datagram may be lost while paths warm
 * up). kind: sendto | sendmsg | send | write. */
static void
udp_exchange(int fd, const struct opts *o, const char *ip, int port, const char *kind, int connected)
{
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	char msg[64], want[80], name[96], got[160];
	uint8_t buf[2048];
	ssize_t r = -1;
	int tries, src_ok = 0, payload_ok = 0, err = 0;

	make_addr(ip, port, o->v6, &dst, &dlen);
	snprintf(msg, sizeof msg, "%s-%d", kind, (int)getpid());
	snprintf(want, sizeof want, "echo:%s", msg);
	for (tries = 0; tries < 6 && !payload_ok; tries++) {
		ssize_t w;

		if (strcmp(kind, "sendto") == 0) {
			w = sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&dst, dlen);
		} else if (strcmp(kind, "sendmsg") == 0) {
			struct iovec iov = { msg, strlen(msg) };
			struct msghdr mh = { .msg_name = &dst, .msg_namelen = dlen, .msg_iov = &iov, .msg_iovlen = 1 };

			w = sendmsg(fd, &mh, 0);
		} else if (strcmp(kind, "send") == 0) {
			w = send(fd, msg, strlen(msg), 0);
		} else {
			w = write(fd, msg, strlen(msg));
		}
		if (w != (ssize_t)strlen(msg)) {
			err = errno;
			snprintf(name, sizeof name, "udp-%s", kind);
			check(name, 0, "send returned %zd: %s", w, strerror(err));
			return;
		}
		while (wait_fd(fd, 0, "poll", 1000) == 1) {
			slen = sizeof src;
			memset(&src, 0, sizeof src);
			if (strcmp(kind, "sendto") == 0) {
				r = recvfrom(fd, buf, rcap(sizeof buf - 1), 0, (struct sockaddr *)&src, &slen);
			} else if (strcmp(kind, "sendmsg") == 0) {
				struct iovec iov = { buf, rcap(sizeof buf - 1) };
				struct msghdr mh = { .msg_name = &src, .msg_namelen = sizeof src, .msg_iov = &iov, .msg_iovlen = 1 };

				r = recvmsg(fd, &mh, 0);
				slen = mh.msg_namelen;
			} else if (strcmp(kind, "send") == 0) {
				r = recv(fd, buf, rcap(sizeof buf - 1), 0);
			} else {
				r = read(fd, buf, rcap(sizeof buf - 1));
			}
			if (r < 0) {
				err = errno;
				break;
			}
			buf[r] = 0;
			if (strcmp((char *)buf, want) != 0)
				continue;      /* a late reply to an earlier try */
			payload_ok = 1;
			if (!connected)
				src_ok = addr_is((struct sockaddr *)&src, slen, o->v6, ip, port, got, sizeof got);
			break;
		}
	}
	snprintf(name, sizeof name, "udp-%s-reply", kind);
	check(name, payload_ok, "tries=%d last r=%zd err=%d", tries, r, err);
	if (!connected && payload_ok) {
		snprintf(name, sizeof name, "udp-%s-reply-source", kind);
		check(name, src_ok, "got %s want %s:%d", got, ip, port);
	}
}

static int
cmd_udp_client(const struct opts *o)
{
	const char *ip = o->pos[0];
	int port = atoi(o->pos[1]);
	int fd = udp_socket(o, NULL, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	char got[160];
	int rc;

	udp_exchange(fd, o, ip, port, "sendto", 0);
	udp_exchange(fd, o, ip, port, "sendmsg", 0);
	close(fd);

	fd = udp_socket(o, NULL, 0);
	make_addr(ip, port, o->v6, &ss, &len);
	rc = connect(fd, (struct sockaddr *)&ss, len);
	check("udp-connect", rc == 0, "rc=%d %s", rc, rc ? strerror(errno) : "");
	len = sizeof ss;
	rc = getpeername(fd, (struct sockaddr *)&ss, &len);
	check("udp-connected-getpeername", rc == 0 && addr_is((struct sockaddr *)&ss, len, o->v6, ip, port, got, sizeof got),
	    "got %s", rc == 0 ? got : strerror(errno));
	udp_exchange(fd, o, ip, port, "send", 1);
	udp_exchange(fd, o, ip, port, "write", 1);
	close(fd);
	return failures ? 1 : 0;
}

/* --- the interface --- */

static uint32_t
mask_of(int prefix)
{
	return prefix <= 0 ? 0 : htonl(~0u << (32 - prefix));
}

static int
ifreq_ioctl(int fd, unsigned long req, const char *ifname, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof *ifr);
	snprintf(ifr->ifr_name, sizeof ifr->ifr_name, "%s", ifname);
	return ioctl(fd, req, ifr);
}

static const char *
ip4(const struct sockaddr *sa, char *buf)
{
	if (!sa || sa->sa_family != AF_INET)
		return "none";
	return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, INET_ADDRSTRLEN);
}

/*
 * An rtnetlink dump of IPv4 addresses, as `ip addr` and GLib read them: the index and
 * label of the entry holding addr (network order), or -1. MSG_PEEK|MSG_TRUNC first, as
 * iproute2 sizes its buffer.
 */
static int
netlink_addr_index(struct in_addr addr, char *label, size_t cap)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
	} rq = { { sizeof(rq), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 77, 0 }, { .ifa_family = AF_INET } };
	char buf[65536];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), found = -1, done = 0;

	if (fd < 0 || send(fd, &rq, sizeof(rq), 0) != (ssize_t)sizeof(rq)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_TRUNC);
		struct nlmsghdr *h;

		if (n <= 0 || n > (ssize_t)sizeof(buf) || (n = recv(fd, buf, sizeof(buf), 0)) <= 0)
			break;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct ifaddrmsg *ifa = NLMSG_DATA(h);
			struct rtattr *a;
			char lab[IFNAMSIZ] = "";
			int len, match = 0;

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = 1;
				break;
			}
			if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_seq != 77)
				continue;
			len = (int)IFA_PAYLOAD(h);
			for (a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
				if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == 4)
					match = memcmp(RTA_DATA(a), &addr, 4) == 0;
				if (a->rta_type == IFA_LABEL)
					snprintf(lab, sizeof lab, "%s", (char *)RTA_DATA(a));
			}
			if (match) {
				found = (int)ifa->ifa_index;
				snprintf(label, cap, "%s", lab);
			}
		}
	}
	close(fd);
	return found;
}

static int
cmd_ifaces(const struct opts *o)
{
	struct ifaddrs *ifa = NULL, *i;
	struct in_addr self, mask, bcast;
	char b1[INET_ADDRSTRLEN], b2[INET_ADDRSTRLEN], b3[INET_ADDRSTRLEN];
	const unsigned want_flags = IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_RUNNING;
	int found = 0, lo = 0, idx, fd, rc;
	struct ifreq ifr;

	inet_pton(AF_INET, o->self, &self);
	mask.s_addr = mask_of(o->prefix);
	bcast.s_addr = self.s_addr | ~mask.s_addr;

	rc = getifaddrs(&ifa);
	check("getifaddrs", rc == 0, "rc=%d", rc);
	for (i = ifa; i; i = i->ifa_next) {
		if (strcmp(i->ifa_name, "lo") == 0)
			lo = 1;
		if (strcmp(i->ifa_name, "shoal0") != 0 || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		found++;
		check("getifaddrs-shoal0-addr", ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == self.s_addr,
		    "addr %s want %s", ip4(i->ifa_addr, b1), o->self);
		check("getifaddrs-shoal0-netmask", i->ifa_netmask && i->ifa_netmask->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr == mask.s_addr, "netmask %s want /%d",
		    ip4(i->ifa_netmask, b2), o->prefix);
		check("getifaddrs-shoal0-broadcast", i->ifa_broadaddr && i->ifa_broadaddr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr == bcast.s_addr, "broadcast %s want %s",
		    ip4(i->ifa_broadaddr, b3), inet_ntop(AF_INET, &bcast, b1, sizeof b1));
		check("getifaddrs-shoal0-flags", (i->ifa_flags & want_flags) == want_flags && !(i->ifa_flags & IFF_LOOPBACK),
		    "flags 0x%x", i->ifa_flags);
	}
	check("getifaddrs-shoal0", found == 1, "shoal0 AF_INET entries: %d", found);
	check("getifaddrs-lo-kept", lo, "lo %s", lo ? "present" : "missing");
	if (ifa)
		freeifaddrs(ifa);

	idx = (int)if_nametoindex("shoal0");
	check("if_nametoindex", idx > 0, "index %d", idx);
	{
		struct if_nameindex *ni = if_nameindex(), *p;
		int in_list = 0, max_other = 0;

		for (p = ni; p && p->if_index; p++) {
			if (strcmp(p->if_name, "shoal0") == 0)
				in_list = (int)p->if_index;
			else if ((int)p->if_index > max_other)
				max_other = (int)p->if_index;
		}
		check("if_nameindex", in_list > 0 && in_list == idx, "shoal0 index in list %d, nametoindex %d", in_list, idx);
		check("if_nameindex-unique", in_list > max_other, "shoal0 %d, highest other %d", in_list, max_other);
		if (ni)
			if_freenameindex(ni);
	}
	{
		char name[IF_NAMESIZE] = "";

		check("if_indextoname", idx > 0 && if_indextoname((unsigned)idx, name) && strcmp(name, "shoal0") == 0,
		    "got '%s'", name);
	}

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	{
		char buf[8192];
		struct ifconf ifc = { .ifc_len = sizeof buf, .ifc_buf = buf };
		int n = 0, has = 0, haslo = 0;

		rc = ioctl(fd, SIOCGIFCONF, &ifc);
		if (rc == 0)
			n = ifc.ifc_len / (int)sizeof(struct ifreq);
		for (int k = 0; k < n; k++) {
			struct ifreq *r = &((struct ifreq *)buf)[k];

			if (strcmp(r->ifr_name, "shoal0") == 0 &&
			    ((struct sockaddr_in *)&r->ifr_addr)->sin_addr.s_addr == self.s_addr)
				has = 1;
			if (strcmp(r->ifr_name, "lo") == 0)
				haslo = 1;
		}
		check("siocgifconf", rc == 0 && has && haslo, "rc=%d entries=%d shoal0=%d lo=%d", rc, n, has, haslo);
		/* the size query (NULL buffer) must count shoal0 too */
		ifc.ifc_buf = NULL;
		ifc.ifc_len = 0;
		rc = ioctl(fd, SIOCGIFCONF, &ifc);
		check("siocgifconf-size", rc == 0 && ifc.ifc_len >= n * (int)sizeof(struct ifreq), "rc=%d len=%d want>=%d",
		    rc, ifc.ifc_len, n * (int)sizeof(struct ifreq));
	}
	rc = ifreq_ioctl(fd, SIOCGIFADDR, "shoal0", &ifr);
	check("siocgifaddr", rc == 0 && ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr == self.s_addr,
	    "rc=%d %s", rc, rc == 0 ? ip4(&ifr.ifr_addr, b1) : strerror(errno));
	rc = ifreq_ioctl(fd, SIOCGIFNETMASK, "shoal0", &ifr);
	check("siocgifnetmask", rc == 0 && ((struct sockaddr_in *)&ifr.ifr_netmask)->sin_addr.s_addr == mask.s_addr,
	    "rc=%d %s", rc, rc == 0 ? ip4(&ifr.ifr_netmask, b1) : strerror(errno));
	rc = ifreq_ioctl(fd, SIOCGIFBRDADDR, "shoal0", &ifr);
	check("siocgifbrdaddr", rc == 0 && ((struct sockaddr_in *)&ifr.ifr_broadaddr)->sin_addr.s_addr == bcast.s_addr,
	    "rc=%d %s", rc, rc == 0 ? ip4(&ifr.ifr_broadaddr, b1) : strerror(errno));
	rc = ifreq_ioctl(fd, SIOCGIFFLAGS, "shoal0", &ifr);
	check("siocgifflags", rc == 0 && ((unsigned)ifr.ifr_flags & want_flags) == want_flags, "rc=%d flags=0x%x", rc,
	    rc == 0 ? (unsigned)(uint16_t)ifr.ifr_flags : 0u);
	rc = ifreq_ioctl(fd, SIOCGIFINDEX, "shoal0", &ifr);
	check("siocgifindex", rc == 0 && ifr.ifr_ifindex == idx, "rc=%d index=%d want %d", rc, rc == 0 ? ifr.ifr_ifindex : -1, idx);
	rc = ifreq_ioctl(fd, SIOCGIFMTU, "shoal0", &ifr);
	check("siocgifmtu", rc == 0 && ifr.ifr_mtu >= 576 && ifr.ifr_mtu <= 65535, "rc=%d mtu=%d", rc, rc == 0 ? ifr.ifr_mtu : -1);
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_ifindex = idx;
	rc = ioctl(fd, SIOCGIFNAME, &ifr);
	check("siocgifname", rc == 0 && strcmp(ifr.ifr_name, "shoal0") == 0, "rc=%d name=%s", rc, rc == 0 ? ifr.ifr_name : "-");
	/* rtnetlink lists it too, with the same index */
	{
		char label[IFNAMSIZ] = "-";
		int nl = netlink_addr_index(self, label, sizeof label);

		check("netlink-getaddr", nl == idx && strcmp(label, "shoal0") == 0, "index %d label %s want %d shoal0", nl,
		    label, idx);
	}
	/* real interfaces are untouched */
	rc = ifreq_ioctl(fd, SIOCGIFADDR, "lo", &ifr);
	check("siocgifaddr-lo-untouched", rc == 0 && ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK),
	    "rc=%d", rc);
	close(fd);
	return failures ? 1 : 0;
}

/* --- things that need no peer: bind, options, untouched local traffic --- */

static int
cmd_local(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char got[160];
	int fd, rc, one = 1;
	struct in_addr self;
	int idx = (int)if_nametoindex("shoal0");

	inet_pton(AF_INET, o->self, &self);
	for (int tcp = 0; tcp < 2; tcp++) {
		fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
		make_addr(o->self, 0, 0, &ss, &len);
		rc = bind(fd, (struct sockaddr *)&ss, len);
		check(tcp ? "bind-self-tcp" : "bind-self-udp", rc == 0, "bind(%s:0): %s", o->self, rc ? strerror(errno) : "ok");
		len = sizeof ss;
		rc = getsockname(fd, (struct sockaddr *)&ss, &len);
		check(tcp ? "bind-self-tcp-getsockname" : "bind-self-udp-getsockname",
		    rc == 0 && addr_is((struct sockaddr *)&ss, len, 0, o->self, -1, got, sizeof got), "got %s", got);
		close(fd);
	}

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	rc = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "shoal0", 7);
	check("so-bindtodevice-shoal0", rc == 0, "%s", rc ? strerror(errno) : "ok");
	close(fd);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &self, sizeof self);
	check("ip-multicast-if-self", rc == 0, "%s", rc ? strerror(errno) : "ok");
	{
		struct ip_mreqn mn = { .imr_ifindex = idx };

		inet_pton(AF_INET, "239.255.255.250", &mn.imr_multiaddr);
		rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mn, sizeof mn);
		check("ip-multicast-if-ifindex", rc == 0, "%s", rc ? strerror(errno) : "ok");
	}
	rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
	check("ip-multicast-loop", rc == 0, "%s", rc ? strerror(errno) : "ok");
	{
		struct ip_mreq m;

		inet_pton(AF_INET, "224.0.0.251", &m.imr_multiaddr);
		m.imr_interface = self;
		rc = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
		check("ip-add-membership-self-if", rc == 0, "%s", rc ? strerror(errno) : "ok");
		rc = setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m);
		check("ip-drop-membership-self-if", rc == 0, "%s", rc ? strerror(errno) : "ok");
	}
	{
		struct ip_mreqn mn = { .imr_ifindex = idx };

		inet_pton(AF_INET, "239.255.255.250", &mn.imr_multiaddr);
		rc = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mn, sizeof mn);
		check("ip-add-membership-ifindex", rc == 0, "%s", rc ? strerror(errno) : "ok");
	}
	close(fd);

	/* untouched: Unix sockets and loopback TCP behave exactly as without the shim */
	{
		int sv[2];
		char b[8] = "";

		rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		if (rc == 0 && write(sv[0], "unix", 4) == 4 && read(sv[1], b, rcap(sizeof b - 1)) == 4)
			check("unix-socketpair", strcmp(b, "unix") == 0, "got %s", b);
		else
			check("unix-socketpair", 0, "%s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
	}
	{
		int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), a;
		int lport, cport;
		struct sockaddr_storage ps;
		socklen_t pl = sizeof ps;
		char pa[INET6_ADDRSTRLEN];

		make_addr("127.0.0.1", 0, 0, &ss, &len);
		bind(l, (struct sockaddr *)&ss, len);
		listen(l, 4);
		len = sizeof ss;
		getsockname(l, (struct sockaddr *)&ss, &len);
		addr_ip((struct sockaddr *)&ss, pa, sizeof pa, &lport);
		make_addr("127.0.0.1", lport, 0, &ss, &len);
		rc = connect(c, (struct sockaddr *)&ss, len);
		a = accept(l, (struct sockaddr *)&ps, &pl);
		addr_ip((struct sockaddr *)&ps, pa, sizeof pa, &cport);
		check("loopback-tcp-untouched", rc == 0 && a >= 0 && strcmp(pa, "127.0.0.1") == 0, "connect rc=%d accept peer %s", rc, pa);
		len = sizeof ss;
		getpeername(c, (struct sockaddr *)&ss, &len);
		check("loopback-getpeername-untouched", addr_is((struct sockaddr *)&ss, len, 0, "127.0.0.1", lport, got, sizeof got),
		    "got %s", got);
		close(a);
		close(c);

		/* connect to our own 5.x address reaches our own listener on 0.0.0.0 */
		close(l);
		l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		make_addr("0.0.0.0", 0, 0, &ss, &len);
		bind(l, (struct sockaddr *)&ss, len);
		listen(l, 4);
		len = sizeof ss;
		getsockname(l, (struct sockaddr *)&ss, &len);
		addr_ip((struct sockaddr *)&ss, pa, sizeof pa, &lport);
		c = socket(AF_INET, SOCK_STREAM, 0);
		make_addr(o->self, lport, 0, &ss, &len);
		rc = connect(c, (struct sockaddr *)&ss, len);
		check("connect-self-vaddr", rc == 0, "connect(%s:%d): %s", o->self, lport, rc ? strerror(errno) : "ok");
		if (rc == 0) {
			len = sizeof ss;
			getpeername(c, (struct sockaddr *)&ss, &len);
			check("connect-self-getpeername", addr_is((struct sockaddr *)&ss, len, 0, o->self, lport, got, sizeof got),
			    "got %s", got);
			a = accept(l, NULL, NULL);
			if (a >= 0 && send(c, "x", 1, 0) == 1 && recv(a, pa, rcap(1), 0) == 1)
				check("connect-self-data", 1, "ok");
			else
				check("connect-self-data", 0, "%s", strerror(errno));
			if (a >= 0)
				close(a);
		}
		close(c);
		close(l);
	}
	return failures ? 1 : 0;
}

/* --- fork, dup, exec, close_range, threads --- */

struct th_arg {          /* owned by the spawning function; each thread writes only ok */
	const struct opts *o;
	const char *ip;
	int port;
	int ok;
	unsigned seed;
};

static void *
th_conn(void *p)
{
	struct th_arg *t = p;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	size_t n = 32768;
	uint8_t *out = malloc(n), *in = malloc(n + 1);

	make_addr(t->ip, t->port, 0, &ss, &len);
	fill_pattern(out, n, t->seed);
	t->ok = connect(fd, (struct sockaddr *)&ss, len) == 0 && send_all(fd, out, n, "poll") == 0 &&
	    shutdown(fd, SHUT_WR) == 0 && recv_all(fd, in, n + 1, "poll") == (ssize_t)n && memcmp(in, out, n) == 0;
	close(fd);
	free(out);
	free(in);
	return NULL;
}

static int
cmd_lifecycle(const struct opts *o, const char *argv0)
{
	const char *ip = o->pos[0];
	int port = atoi(o->pos[1]);
	struct sockaddr_storage ss;
	socklen_t len;
	char got[160] = "getpeername failed";
	int s, d, rc;
	uint8_t b[16];

	make_addr(ip, port, 0, &ss, &len);

	/* dup before connect: the state follows the socket, not the fd number */
	s = socket(AF_INET, SOCK_STREAM, 0);
	d = dup(s);
	close(s);
	rc = connect(d, (struct sockaddr *)&ss, len);
	check("dup-then-connect", rc == 0, "%s", rc ? strerror(errno) : "ok");
	if (rc == 0)
		echo_roundtrip(d, o, 4096, 2, "dup-");
	close(d);

	/* dup2 after connect onto a fixed number, original closed */
	s = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(s, (struct sockaddr *)&ss, len);
	d = dup2(s, 60);
	close(s);
	len = sizeof ss;
	rc = rc == 0 ? getpeername(d, (struct sockaddr *)&ss, &len) : -1;
	check("dup2-getpeername", rc == 0 && addr_is((struct sockaddr *)&ss, len, 0, ip, port, got, sizeof got), "got %s", got);
	echo_roundtrip(d, o, 4096, 3, "dup2-");
	close(d);

	/* fcntl(F_DUPFD_CLOEXEC) then dup3 */
	make_addr(ip, port, 0, &ss, &len);
	s = socket(AF_INET, SOCK_STREAM, 0);
	d = fcntl(s, F_DUPFD_CLOEXEC, 70);
	close(s);
	s = dup3(d, 71, O_CLOEXEC);
	close(d);
	rc = connect(s, (struct sockaddr *)&ss, len);
	check("fdupfd-dup3-connect", rc == 0, "%s", rc ? strerror(errno) : "ok");
	if (rc == 0)
		echo_roundtrip(s, o, 4096, 4, "dup3-");
	close(s);

	/* fork: the child uses an inherited connected socket and makes a new connection */
	s = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(s, (struct sockaddr *)&ss, len);
	fflush(stdout);
	{
		pid_t pid = fork(), w;
		int st = 0;

		if (pid == 0) {
			int ok = 1, c;
			socklen_t l2 = sizeof ss;

			ok = getpeername(s, (struct sockaddr *)&ss, &l2) == 0 &&
			    addr_is((struct sockaddr *)&ss, l2, 0, ip, port, got, sizeof got);
			ok = ok && echo_roundtrip(s, o, 4096, 5, "fork-child-inherited-");
			make_addr(ip, port, 0, &ss, &l2);
			c = socket(AF_INET, SOCK_STREAM, 0);
			ok = ok && connect(c, (struct sockaddr *)&ss, l2) == 0 && echo_roundtrip(c, o, 4096, 6, "fork-child-new-");
			_exit(ok ? 0 : 1);
		}
		close(s);
		w = waitpid(pid, &st, 0);
		check("fork-child", rc == 0 && w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "connect rc=%d status=0x%x", rc, st);
	}

	/* exec through posix_spawn (glibc's internal execve): the shim must still be there */
	{
		const char *pre = getenv("LD_PRELOAD");
		char portbuf[16];
		char *args[] = { (char *)argv0, (char *)"tcp-client", (char *)ip, portbuf, (char *)"--bytes", (char *)"2048", NULL };
		pid_t pid;
		int st = 0;

		check("exec-ld-preload-kept", pre && strstr(pre, "shoal"), "LD_PRELOAD=%s", pre ? pre : "(unset)");
		snprintf(portbuf, sizeof portbuf, "%d", port);
		fflush(stdout);
		rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
		if (rc == 0)
			waitpid(pid, &st, 0);
		check("posix-spawn-child", rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "rc=%d status=0x%x", rc, st);
	}

	/* close_range closes the shim's own daemon fd too: the next overlay call must still work */
	rc = (int)syscall(SYS_close_range, 3u, ~0u, 0u);
	check("close-range", rc == 0, "%s", rc ? strerror(errno) : "ok");
	s = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(s, (struct sockaddr *)&ss, len);
	check("connect-after-close-range", rc == 0, "%s", rc ? strerror(errno) : "ok");
	if (rc == 0)
		echo_roundtrip(s, o, 4096, 7, "close-range-");
	close(s);
	/* a fd number the shim saw as a socket, reused for a file, must be a file again */
	s = socket(AF_INET, SOCK_STREAM, 0);
	(void)syscall(SYS_close, s);   /* a close the shim never saw */
	d = open("/dev/zero", O_RDONLY);
	rc = d >= 0 ? (int)read(d, b, rcap(sizeof b)) : -1;
	check("fd-reuse-after-raw-close", rc == (int)sizeof b, "fd %d read %d", d, rc);
	if (d >= 0)
		close(d);

	/* threads: concurrent overlay connections */
	{
		pthread_t th[4];
		struct th_arg ta[4];
		int ok = 1;

		for (int i = 0; i < 4; i++) {
			ta[i] = (struct th_arg){ o, ip, port, 0, (unsigned)(10 + i) };
			pthread_create(&th[i], NULL, th_conn, &ta[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			ok = ok && ta[i].ok;
		}
		check("threads-4-connections", ok, "%d %d %d %d", ta[0].ok, ta[1].ok, ta[2].ok, ta[3].ok);
	}
	return failures ? 1 : 0;
}

/* --- broadcast and multicast --- */

static int
is_mcast(const char *ip)
{
	struct in_addr a;

	return inet_pton(AF_INET, ip, &a) == 1 && IN_MULTICAST(ntohl(a.s_addr));
}

static int
cmd_dgram_listen(const struct opts *o)
{
	int port = atoi(o->pos[0]);
	int fd = udp_socket(o, o->bind ? o->bind : "0.0.0.0", port);
	double end;

	if (fd < 0) {
		check("listen-bind", 0, "%s", strerror(errno));
		return 1;
	}
	if (o->mcast) {
		int rc;

		if (o->mcast_group_req) {
			struct group_req gr;
			struct sockaddr_in *g = (struct sockaddr_in *)&gr.gr_group;

			memset(&gr, 0, sizeof gr);
			gr.gr_interface = o->mcast_ifindex ? if_nametoindex("shoal0") : 0;
			g->sin_family = AF_INET;
			inet_pton(AF_INET, o->mcast, &g->sin_addr);
			rc = setsockopt(fd, IPPROTO_IP, MCAST_JOIN_GROUP, &gr, sizeof gr);
		} else if (o->mcast_ifindex) {
			struct ip_mreqn mn = { .imr_ifindex = (int)if_nametoindex("shoal0") };

			inet_pton(AF_INET, o->mcast, &mn.imr_multiaddr);
			rc = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mn, sizeof mn);
		} else {
			struct ip_mreq m;

			inet_pton(AF_INET, o->mcast, &m.imr_multiaddr);
			inet_pton(AF_INET, o->mcast_if ? o->mcast_if : "0.0.0.0", &m.imr_interface);
			rc = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
		}
		check("mcast-join", rc == 0, "group %s%s if %s: %s", o->mcast,
		    o->mcast_group_req ? " (MCAST_JOIN_GROUP)" : "", o->mcast_ifindex ? "shoal0-index" :
		    o->mcast_if ? o->mcast_if : "any", rc ? strerror(errno) : "ok");
	}
	event("\"event\":\"ready\",\"port\":%d", port);
	end = now_ms() + o->secs * 1000;
	while (now_ms() < end) {
		uint8_t buf[2048];
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		char a[INET6_ADDRSTRLEN];
		int p;
		ssize_t r;

		if (wait_fd(fd, 0, "poll", (int)(end - now_ms()) + 1) != 1)
			continue;
		r = recvfrom(fd, buf, rcap(sizeof buf - 1), 0, (struct sockaddr *)&ss, &len);
		if (r < 0)
			continue;
		buf[r] = 0;
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] < 0x20 || buf[k] >= 0x7f || buf[k] == '"' || buf[k] == '\\')
				buf[k] = '.';
		addr_ip((struct sockaddr *)&ss, a, sizeof a, &p);
		event("\"event\":\"dgram\",\"from\":\"%s\",\"from_port\":%d,\"data\":\"%s\",\"ms\":%.0f", a, p, (char *)buf,
		    now_ms());
	}
	close(fd);
	return failures ? 1 : 0;
}

static int
cmd_dgram_send(const struct opts *o)
{
	const char *dst = o->pos[0];
	int port = atoi(o->pos[1]);
	const char *msg = o->pos[2];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, ok = 1, lastrc = 0, lasterr = 0;
	struct sockaddr_storage ss;
	socklen_t len;

	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
		check("so-broadcast", 0, "%s", strerror(errno));
	if (is_mcast(dst)) {
		if (o->mcast_if) {
			struct in_addr a;
			int rc;

			inet_pton(AF_INET, o->mcast_if, &a);
			rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a);
			check("ip-multicast-if", rc == 0, "%s", rc ? strerror(errno) : "ok");
		}
		setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
	}
	make_addr(dst, port, 0, &ss, &len);
	for (int i = 0; i < o->repeat; i++) {
		lastrc = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len);
		if (lastrc != (int)strlen(msg)) {
			ok = 0;
			lasterr = errno;
		}
		usleep((useconds_t)o->interval_ms * 1000);
	}
	check("dgram-sendto", ok, "to %s:%d x%d last rc=%d errno=%d (%s)", dst, port, o->repeat, lastrc, lasterr,
	    lasterr ? strerror(lasterr) : "-");
	close(fd);
	return failures ? 1 : 0;
}

/* A game's LAN server browser: one UDP socket on the game port answers probes; after "go" on
 * stdin it enumerates interfaces, broadcasts a probe on every broadcast-capable one and lists
 * the servers that answer. */
static int
cmd_lan_game(const struct opts *o)
{
	const char *me = o->pos[0];
	int port = atoi(o->pos[1]);
	int fd = udp_socket(o, "0.0.0.0", port), one = 1;
	char found[16][64];
	int nfound = 0, go = 0, stdin_open = 1;
	double t0 = 0, done_at = 0, end = now_ms() + o->secs * 1000;

	if (fd < 0) {
		check("game-bind", 0, "%s", strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
	event("\"event\":\"ready\",\"port\":%d", port);
	while (now_ms() < end) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = stdin_open ? POLLIN : 0 } };

		if (poll(p, 2, 100) < 0)
			continue;
		if (p[1].revents) {
			char line[64];
			ssize_t r = read(0, line, rcap(sizeof line));

			if (r <= 0)
				break;      /* the driver is done with us */
			if (!go) {
				struct ifaddrs *ifa = NULL, *i;
				char probe[96], list[256] = "";

				go = 1;
				t0 = now_ms();
				snprintf(probe, sizeof probe, "PROBE %s", me);
				getifaddrs(&ifa);
				for (i = ifa; i; i = i->ifa_next) {
					struct sockaddr_in dst;
					char b[INET_ADDRSTRLEN];

					if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
					    !(i->ifa_flags & IFF_BROADCAST) || (i->ifa_flags & IFF_LOOPBACK) || !i->ifa_broadaddr)
						continue;
					dst = *(struct sockaddr_in *)i->ifa_broadaddr;
					dst.sin_port = htons((uint16_t)port);
					/* games repeat their probe a few times: UDP may drop one */
					for (int k = 0; k < 3; k++)
						sendto(fd, probe, strlen(probe), 0, (struct sockaddr *)&dst, sizeof dst);
					snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s=%s", *list ? "," : "",
					    i->ifa_name, inet_ntop(AF_INET, &dst.sin_addr, b, sizeof b));
				}
				if (ifa)
					freeifaddrs(ifa);
				event("\"event\":\"probed\",\"interfaces\":\"%s\"", list);
			}
		}
		if (p[0].revents & POLLIN) {
			char buf[256], a[INET6_ADDRSTRLEN];
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss;
			ssize_t r = recvfrom(fd, buf, rcap(sizeof buf - 1), 0, (struct sockaddr *)&ss, &len);
			int pp;

			if (r <= 0)
				continue;
			buf[r] = 0;
			addr_ip((struct sockaddr *)&ss, a, sizeof a, &pp);
			if (strncmp(buf, "PROBE ", 6) == 0 && strcmp(buf + 6, me) != 0) {
				char reply[96];

				snprintf(reply, sizeof reply, "SERVER %s", me);
				sendto(fd, reply, strlen(reply), 0, (struct sockaddr *)&ss, len);
			} else if (strncmp(buf, "SERVER ", 7) == 0 && go) {
				int dupe = 0;

				for (int k = 0; k < nfound; k++)
					dupe |= strcmp(found[k], buf + 7) == 0;
				if (!dupe && nfound < 16) {
					snprintf(found[nfound++], sizeof found[0], "%.60s", buf + 7);
					done_at = now_ms();
					event("\"event\":\"found\",\"server\":\"%.60s\",\"from\":\"%s\",\"ms\":%.0f", buf + 7, a, done_at - t0);
				}
			}
		}
	}
	close(fd);
	return failures ? 1 : 0;
}

/* --- names --- */

static int
cmd_resolve(const struct opts *o)
{
	const char *name = o->pos[0];
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL, *r;
	char a[INET_ADDRSTRLEN] = "none";
	int rc = getaddrinfo(name, "80", &hints, &res), hit = 0;

	for (r = res; rc == 0 && r; r = r->ai_next) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)r->ai_addr)->sin_addr, a, sizeof a);
		hit |= o->peer && strcmp(a, o->peer) == 0;
	}
	check("getaddrinfo-nick", rc == 0 && hit, "rc=%d (%s) last %s want %s", rc, rc ? gai_strerror(rc) : "ok", a,
	    o->peer ? o->peer : "?");
	if (res)
		freeaddrinfo(res);
	{
		struct hostent *h = gethostbyname(name);

		if (h && h->h_addrtype == AF_INET && h->h_addr_list[0])
			inet_ntop(AF_INET, h->h_addr_list[0], a, sizeof a);
		else
			snprintf(a, sizeof a, "none");
		check("gethostbyname-nick", h && o->peer && strcmp(a, o->peer) == 0, "got %s want %s", a, o->peer ? o->peer : "?");
	}
	if (o->peer) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		struct in_addr in;
		char host[NI_MAXHOST], want[NI_MAXHOST];
		struct hostent *h;

		/* the reverse: the peer's address names it NICK.shoal */
		snprintf(want, sizeof want, "%s.shoal", name);
		inet_pton(AF_INET, o->peer, &sin.sin_addr);
		rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL, 0, NI_NAMEREQD);
		check("getnameinfo-peer", rc == 0 && strcmp(host, want) == 0, "rc=%d host %s want %s", rc, rc ? "-" : host,
		    want);
		in = sin.sin_addr;
		h = gethostbyaddr(&in, sizeof in, AF_INET);
		check("gethostbyaddr-peer", h && strcmp(h->h_name, want) == 0, "got %s want %s", h ? h->h_name : "-", want);
		/* AF_INET6 without AI_V4MAPPED: the v4-mapped address */
		hints = (struct addrinfo){ .ai_family = AF_INET6, .ai_socktype = SOCK_STREAM };
		res = NULL;
		rc = getaddrinfo(name, "80", &hints, &res);
		hit = 0;
		if (rc == 0 && res && res->ai_family == AF_INET6) {
			char a6[INET6_ADDRSTRLEN], w6[INET6_ADDRSTRLEN + 8];

			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, a6, sizeof a6);
			snprintf(w6, sizeof w6, "::ffff:%s", o->peer);
			hit = strcmp(a6, w6) == 0;
		}
		check("getaddrinfo-inet6-mapped", rc == 0 && hit, "rc=%d", rc);
		if (res)
			freeaddrinfo(res);
	}
	return failures ? 1 : 0;
}

/* --- main --- */

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .mode = "poll", .expect = "ok", .bytes = 65536, .timeout = 60, .secs = 5, .repeat = 1,
	    .interval_ms = 0, .prefix = 8 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
		if (strcmp(a, "--nonblock") == 0)
			o->nonblock = 1;
		else if (strcmp(a, "--poll") == 0 || strcmp(a, "--epoll") == 0 || strcmp(a, "--select") == 0)
			o->mode = a + 2;
		else if (strcmp(a, "--v6") == 0)
			o->v6 = 1;
		else if (strcmp(a, "--reuse") == 0)
			o->reuse = 1;
		else if (strcmp(a, "--reuseport") == 0)
			o->reuseport = 1;
		else if (strcmp(a, "--mcast-ifindex") == 0)
			o->mcast_ifindex = 1;
		else if (strcmp(a, "--mcast-group-req") == 0)
			o->mcast_group_req = 1;
		else if (ARG("--self"))
			o->self = v;
		else if (ARG("--peer"))
			o->peer = v;
		else if (ARG("--bind"))
			o->bind = v;
		else if (ARG("--expect"))
			o->expect = v;
		else if (ARG("--mcast"))
			o->mcast = v;
		else if (ARG("--mcast-if"))
			o->mcast_if = v;
		else if (ARG("--count"))
			o->count = atol(v);
		else if (ARG("--bytes"))
			o->bytes = atol(v);
		else if (ARG("--timeout"))
			o->timeout = atoi(v);
		else if (ARG("--secs"))
			o->secs = atof(v);
		else if (ARG("--repeat"))
			o->repeat = atoi(v);
		else if (ARG("--interval-ms"))
			o->interval_ms = atoi(v);
		else if (ARG("--prefix"))
			o->prefix = atoi(v);
		else if (a[0] == '-' && a[1] == '-')
			return -1;
		else if (o->npos < 8)
			o->pos[o->npos++] = a;
#undef ARG
	}
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: shimtest CMD ARGS [options]\n"
	    "  tcp-server PORT [--bind A] [--v6] [--count N]\n"
	    "  tcp-client ADDR PORT [--nonblock] [--poll|--epoll|--select] [--v6] [--self A] [--expect ok|refused|unreach] [--bytes N]\n"
	    "  udp-echo PORT [--bind A] [--v6] [--count N]\n"
	    "  udp-client ADDR PORT [--v6]\n"
	    "  ifaces --self A [--prefix N]\n"
	    "  local --self A\n"
	    "  lifecycle ADDR PORT              (against a tcp-server)\n"
	    "  dgram-listen PORT [--reuse] [--reuseport] [--mcast G [--mcast-if A|--mcast-ifindex] [--mcast-group-req]] [--secs S]\n"
	    "  dgram-send DEST PORT MSG [--repeat N] [--interval-ms M] [--mcast-if A]\n"
	    "  lan-game NAME PORT [--secs S]    (\"go\" on stdin starts browsing)\n"
	    "  resolve NAME --peer A\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct opts o;
	const char *cmd;
	struct sigaction sa = { .sa_handler = on_alarm };
	int need;

	if (argc < 2 || parse_opts(argc, argv, &o) < 0)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)o.timeout);
	cmd = argv[1];
	need = strcmp(cmd, "tcp-client") == 0 || strcmp(cmd, "udp-client") == 0 || strcmp(cmd, "lifecycle") == 0 ? 2 :
	    strcmp(cmd, "dgram-send") == 0 ? 3 : strcmp(cmd, "lan-game") == 0 ? 2 :
	    strcmp(cmd, "ifaces") == 0 || strcmp(cmd, "local") == 0 ? 0 : 1;
	if (o.npos < need)
		return usage();
	if ((strcmp(cmd, "ifaces") == 0 || strcmp(cmd, "local") == 0) && !o.self)
		return usage();
	if (strcmp(cmd, "tcp-client") == 0)
		return cmd_tcp_client(&o);
	if (strcmp(cmd, "tcp-server") == 0)
		return cmd_tcp_server(&o);
	if (strcmp(cmd, "udp-echo") == 0)
		return cmd_udp_echo(&o);
	if (strcmp(cmd, "udp-client") == 0)
		return cmd_udp_client(&o);
	if (strcmp(cmd, "ifaces") == 0)
		return cmd_ifaces(&o);
	if (strcmp(cmd, "local") == 0)
		return cmd_local(&o);
	if (strcmp(cmd, "lifecycle") == 0)
		return cmd_lifecycle(&o, argv[0]);
	if (strcmp(cmd, "dgram-listen") == 0)
		return cmd_dgram_listen(&o);
	if (strcmp(cmd, "dgram-send") == 0)
		return cmd_dgram_send(&o);
	if (strcmp(cmd, "lan-game") == 0)
		return cmd_lan_game(&o);
	if (strcmp(cmd, "resolve") == 0)
		return cmd_resolve(&o);
	return usage();
}
