/*
 * shim_daemon: the shim's one connection to shoald (SOCK_SEQPACKET to $SHOAL_SHIM_SOCK),
 * opened lazily on first need, moved to a high fd (>= 900) so it stays out of the program's
 * way, and re-opened after fork (pid check) or after the program closed it. One mutex covers
 * a request and its reply; nothing else in the shim takes a lock. Also the alias caches
 * (peer 5.x <-> 127.66.x.y), which are lock-free: pairs never change while shoald runs.
 * If shoald is not reachable the program runs normally: one line on stderr (unless
 * SHOAL_SHIM_QUIET=1), and a new attempt at most every RETRY_MS.
 * Must not touch: app sockets, the fd table (except through its API).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lanproxy/preload/shim_int.h"

enum {
	HIGH_FD = 900,             /* the connection's fd is moved to this or above */
	RETRY_MS = 2000,           /* after a failed connect, wait before trying again */
	REPLY_MS = 5000,           /* an ordinary request */
	RESULT_WAIT_MS = 75000,    /* TCP_RESULT(wait=1): a virtual connect may take that long */
	CACHE_BITS = 12,
	CACHE_SIZE = 1 << CACHE_BITS,
	CACHE_PROBES = 16,
};

/*
 * The process-wide daemon connection: owned by this file. fd and net_ok are read without the
 * lock (close hooks, address classification); everything else only under lock.
 */
static struct {
	pthread_mutex_t lock;
	_Atomic int fd;             /* -1: not connected */
	pid_t pid;                  /* process that opened fd */
	dev_t dev;                  /* identity of fd, to notice a number reused behind us */
	ino_t ino;
	long long retry_at;         /* ms (CLOCK_MONOTONIC) before which we do not try again */
	uint32_t next_id;
	int enabled;                /* SHOAL_SHIM_SOCK set */
	int quiet;
	_Atomic int warned;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	_Atomic int net_ok;
	struct shim_net net;        /* valid once net_ok */
	uint8_t buf[SHIM_MSG_MAX];  /* encode buffer, under lock */
	uint8_t payload[SHIM_DGRAM_MAX];
} conn = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

/* Alias caches: filled under lock, read without. Indexed by the alias's index, which is the
 * same for an alias and its low-port twin. */
static _Atomic uint32_t alias_to_vaddr[65536];
static _Atomic uint64_t vaddr_alias[CACHE_SIZE];    /* vaddr << 32 | alias (127.66 block) */
/* UDP destinations made ready: 1 << 63 | moved << 62 | vaddr << 16 | port, moved when the
 * daemon put the alias socket on the low-port alias (port + SHIM_LOWPORT_BASE). */
#define UDP_READY  (1ull << 63)
#define UDP_MOVED  (1ull << 62)
static _Atomic uint64_t udp_ready[CACHE_SIZE];

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned
hash32(uint64_t x)
{
	x ^= x >> 29;
	x *= 0x9e3779b97f4a7c15ull;
	return (unsigned)(x >> (64 - CACHE_BITS));
}

void
shim_daemon_init(void)
{
	const char *p = getenv("SHOAL_SHIM_SOCK"), *q = getenv("SHOAL_SHIM_QUIET");

	conn.quiet = q && q[0] == '1';
	if (p && p[0] && strlen(p) < sizeof(conn.path)) {
		memcpy(conn.path, p, strlen(p) + 1);
		conn.enabled = 1;
	}
}

int
shim_enabled(void)
{
	return conn.enabled;
}

static void
say(const char *a, const char *b, const char *c)
{
	ssize_t r;

	r = write(2, a, strlen(a));
	r = write(2, b, strlen(b));
	r = write(2, c, strlen(c));
	(void)r;
}

static void
warn_unreachable(void)
{
	int e = errno;

	if (conn.quiet || atomic_exchange(&conn.warned, 1))
		return;
	say("shoal: shoald not reachable at ", conn.path, "; running without the virtual LAN\n");
	errno = e;
}

void
shim_note_listen_failed(uint16_t port, int err)
{
	int e = errno;
	char num[8];
	int i = sizeof(num) - 1;

	if (conn.quiet)
		return;
	/* the shim stays off stdio (the program may own it) */
	num[i] = 0;
	do
		num[--i] = (char)('0' + port % 10);
	while ((port /= 10) != 0 && i > 0);
	say("shoal: port ", num + i, " is not on the virtual LAN: ");
	say(strerror(err), " (see shoal status)", "\n");
	errno = e;
}

/* Drops the connection if we still own it (the app may have closed the number already). */
static void
conn_drop(int fd)
{
	int expected = fd;

	if (fd >= 0 && atomic_compare_exchange_strong(&conn.fd, &expected, -1))
		REAL(close)(fd);
}

void
shim_daemon_lost(void)
{
	atomic_store(&conn.fd, -1);
}

int
shim_daemon_fd_is(int fd)
{
	return fd >= 0 && atomic_load_explicit(&conn.fd, memory_order_relaxed) == fd;
}

int
shim_daemon_fd(void)
{
	return atomic_load_explicit(&conn.fd, memory_order_relaxed);
}

/* One request and its reply on fd, under lock. 0 or -1 (connection unusable). */
/* A reply's name (NAME_OF), per thread: valid until the thread's next request. */
static _Thread_local char reply_name[SHIM_NAME_MAX + 1];

static int
exchange(int fd, struct shim_msg *req, struct shim_msg *rep, int timeout_ms)
{
	uint8_t in[512];
	long long deadline;
	struct pollfd pfd;
	ssize_t n;
	int len, rc;

	req->id = ++conn.next_id ? conn.next_id : ++conn.next_id;
	if ((len = shim_encode(req, conn.buf, sizeof(conn.buf))) < 0)
		return -1;
	do
		n = send(fd, conn.buf, (size_t)len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != len)
		return -1;
	deadline = now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - now_ms();

		if (left <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			return -1;
		n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		if (shim_decode(rep, in, (size_t)n) == -1 || rep->type != SHIM_REPLY)
			continue;       /* not for us: skip, never crash */
		if (rep->id == req->id) {
			/* the name points into in[], which dies with this frame */
			if (rep->name_len) {
				memcpy(reply_name, rep->name, rep->name_len);
				reply_name[rep->name_len] = '\0';
				rep->name = reply_name;
			}
			return 0;
		}
	}
}

/* Is the fd we hold still the socket we opened? */
static int
conn_alive(int fd)
{
	struct stat st;

	if (conn.pid != getpid())
		return 0;
	return fstat(fd, &st) == 0 && st.st_dev == conn.dev && st.st_ino == conn.ino;
}

/*
 * The socket's server runs as us (or root). Otherwise another local user put a socket where
 * ours should be, and would learn every address and port this program uses: treat it as no
 * daemon (the CLI refuses such a socket with a message before we ever run).
 */
static int
served_by_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return 0;
	return cr.uid == getuid() || cr.uid == 0;
}

/* A working, greeted connection under lock, or -1. */
static int
conn_get(void)
{
	struct sockaddr_un sa;
	struct shim_msg req, rep;
	struct stat st;
	int fd = atomic_load(&conn.fd), hi, e = errno;

	if (fd >= 0 && conn_alive(fd))
		return fd;
	if (fd >= 0) {
		/* inherited across fork or replaced behind our back: not ours to close */
		atomic_store(&conn.fd, -1);
	}
	if (!conn.enabled || now_ms() < conn.retry_at)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, conn.path, sizeof(conn.path));
	if ((fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		goto fail;
	if (REAL(connect)(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || !served_by_us(fd)) {
		REAL(close)(fd);
		goto fail;
	}
	if ((hi = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, HIGH_FD)) >= 0) {
		REAL(close)(fd);
		fd = hi;
	}
	if (fstat(fd, &st) == -1) {
		REAL(close)(fd);
		goto fail;
	}
	conn.pid = getpid();
	conn.dev = st.st_dev;
	conn.ino = st.st_ino;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_HELLO;
	req.version = SHIM_PROTO_VERSION;
	req.pid = (uint32_t)conn.pid;
	if (exchange(fd, &req, &rep, REPLY_MS) == -1 || rep.err != 0 || rep.r_addr == 0) {
		REAL(close)(fd);
		goto fail;
	}
	conn.net.vaddr = rep.r_addr;
	conn.net.mask = shim_prefix_mask(rep.r_prefix);
	conn.net.mtu = rep.r_mtu;
	atomic_store(&conn.net_ok, 1);
	atomic_store(&conn.fd, fd);
	errno = e;
	return fd;
fail:
	conn.retry_at = now_ms() + RETRY_MS;
	warn_unreachable();
	errno = e;
	return -1;
}

int
shim_net_get(struct shim_net *out)
{
	int fd;

	if (!conn.enabled)
		return -1;
	if (!atomic_load_explicit(&conn.net_ok, memory_order_acquire)) {
		pthread_mutex_lock(&conn.lock);
		fd = conn_get();
		pthread_mutex_unlock(&conn.lock);
		if (fd < 0)
			return -1;
	}
	*out = conn.net;
	return 0;
}

int
shim_call(struct shim_msg *req, struct shim_msg *rep)
{
	int fd, rc, e = errno;

	if (!conn.enabled)
		return -1;
	pthread_mutex_lock(&conn.lock);
	if ((fd = conn_get()) < 0) {
		pthread_mutex_unlock(&conn.lock);
		return -1;
	}
	rc = exchange(fd, req, rep, req->type == SHIM_TCP_RESULT && req->flag ? RESULT_WAIT_MS :
	    REPLY_MS);
	if (rc == -1) {
		conn_drop(fd);
		conn.retry_at = now_ms() + RETRY_MS;
	}
	pthread_mutex_unlock(&conn.lock);
	errno = e;
	return rc;
}

/* Sends an encoded one-way message under lock. */
static void
post_locked(const struct shim_msg *m, int dontwait)
{
	int fd, len;
	ssize_t n;

	if ((fd = conn_get()) < 0)
		return;
	if ((len = shim_encode(m, conn.buf, sizeof(conn.buf))) < 0)
		return;
	do
		n = send(fd, conn.buf, (size_t)len, MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0));
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno != EAGAIN && errno != ENOBUFS)
		conn_drop(fd);
}

void
shim_post(const struct shim_msg *m)
{
	int e = errno;

	if (!conn.enabled)
		return;
	pthread_mutex_lock(&conn.lock);
	post_locked(m, 0);
	pthread_mutex_unlock(&conn.lock);
	errno = e;
}

void
shim_post_dgram(uint32_t dst, uint16_t dport, uint16_t sport, const struct iovec *iov,
    size_t iovlen)
{
	struct shim_msg m;
	size_t i, len = 0;
	int e = errno;

	if (!conn.enabled)
		return;
	pthread_mutex_lock(&conn.lock);
	for (i = 0; i < iovlen; i++) {
		if (iov[i].iov_len > sizeof(conn.payload) - len)
			goto out;       /* larger than any datagram: the kernel refuses it too */
		if (iov[i].iov_len)
			memcpy(conn.payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	memset(&m, 0, sizeof(m));
	m.type = SHIM_DGRAM_OUT;
	m.addr = dst;
	m.port = dport;
	m.lport = sport;
	m.data = conn.payload;
	m.data_len = (uint16_t)len;
	/* a broadcast copy is lossy by nature: never block the program for it */
	post_locked(&m, 1);
out:
	pthread_mutex_unlock(&conn.lock);
	errno = e;
}

void
shim_alias_learn(uint32_t vaddr, uint32_t alias)
{
	uint64_t want, cur;
	unsigned h = hash32(vaddr), i;

	if (!vaddr || !shim_is_alias(alias))
		return;
	alias = shim_alias_base(alias);
	want = (uint64_t)vaddr << 32 | alias;
	atomic_store_explicit(&alias_to_vaddr[alias & 0xffff], vaddr, memory_order_relaxed);
	for (i = 0; i < CACHE_PROBES; i++) {
		_Atomic uint64_t *slot = &vaddr_alias[(h + i) & (CACHE_SIZE - 1)];

		cur = atomic_load_explicit(slot, memory_order_relaxed);
		if (cur >> 32 == vaddr)
			return;
		if (cur == 0) {
			if (atomic_compare_exchange_strong(slot, &cur, want) || cur >> 32 == vaddr)
				return;
		}
	}
}

static uint32_t
alias_cached(uint32_t vaddr)
{
	unsigned h = hash32(vaddr), i;
	uint64_t cur;

	for (i = 0; i < CACHE_PROBES; i++) {
		cur = atomic_load_explicit(&vaddr_alias[(h + i) & (CACHE_SIZE - 1)],
		    memory_order_relaxed);
		if (cur == 0)
			return 0;
		if (cur >> 32 == vaddr)
			return (uint32_t)cur;
	}
	return 0;
}

uint32_t
shim_alias_of(uint32_t vaddr, int *err)
{
	struct shim_msg req, rep;
	uint32_t a;

	*err = 0;
	if ((a = alias_cached(vaddr)))
		return a;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_ALIAS;
	req.addr = vaddr;
	if (shim_call(&req, &rep) == -1) {
		*err = ENETUNREACH;
		return 0;
	}
	if (rep.err || !shim_is_alias(rep.r_addr)) {
		*err = rep.err ? rep.err : EHOSTUNREACH;
		return 0;
	}
	shim_alias_learn(vaddr, rep.r_addr);
	return rep.r_addr;
}

uint32_t
shim_udp_alias_of(uint32_t vaddr, uint16_t port, uint16_t *kport, int *err)
{
	uint64_t key = UDP_READY | (uint64_t)vaddr << 16 | port, cur, want;
	struct shim_msg req, rep;
	unsigned h = hash32(key), i;
	uint16_t vport;
	uint32_t a;

	*err = 0;
	if ((a = alias_cached(vaddr))) {
		for (i = 0; i < CACHE_PROBES; i++) {
			cur = atomic_load_explicit(&udp_ready[(h + i) & (CACHE_SIZE - 1)],
			    memory_order_relaxed);
			if ((cur & ~UDP_MOVED) == key) {
				if (!(cur & UDP_MOVED)) {
					*kport = port;
					return a;
				}
				*kport = (uint16_t)(port + SHIM_LOWPORT_BASE);
				return SHIM_LOWALIAS_NET | (a & ~SHIM_ALIAS_MASK);
			}
			if (cur == 0)
				break;
		}
	}
	memset(&req, 0, sizeof(req));
	req.type = SHIM_UDP_ALIAS;
	req.addr = vaddr;
	req.port = port;
	if (shim_call(&req, &rep) == -1) {
		*err = ENETUNREACH;
		return 0;
	}
	/* The reply must follow the low-port rule, else receiving could not map sources back. */
	if (rep.err || shim_alias_port(rep.r_addr, rep.r_port, &vport) == -1 || vport != port) {
		*err = rep.err ? rep.err : EHOSTUNREACH;
		return 0;
	}
	shim_alias_learn(vaddr, rep.r_addr);
	want = key | (rep.r_port != port ? UDP_MOVED : 0);
	for (i = 0; i < CACHE_PROBES; i++) {
		_Atomic uint64_t *slot = &udp_ready[(h + i) & (CACHE_SIZE - 1)];

		cur = atomic_load_explicit(slot, memory_order_relaxed);
		if ((cur & ~UDP_MOVED) == key)
			break;
		if (cur == 0 && (atomic_compare_exchange_strong(slot, &cur, want) ||
		    (cur & ~UDP_MOVED) == key))
			break;
	}
	*kport = rep.r_port;
	return rep.r_addr;
}

int
shim_unalias(uint32_t kaddr, uint16_t kport, uint32_t *vaddr, uint16_t *vport)
{
	struct shim_msg req, rep;
	uint32_t v;

	if (shim_alias_port(kaddr, kport, vport) == -1)
		return -1;
	if ((v = atomic_load_explicit(&alias_to_vaddr[kaddr & 0xffff], memory_order_relaxed))) {
		*vaddr = v;
		return 0;
	}
	memset(&req, 0, sizeof(req));
	req.type = SHIM_UNALIAS;
	req.addr = kaddr;
	req.port = kport;
	if (shim_call(&req, &rep) == -1 || rep.err || !rep.r_addr)
		return -1;
	shim_alias_learn(rep.r_addr, kaddr);
	*vaddr = rep.r_addr;
	*vport = rep.r_port;
	return 0;
}

int
shim_resolve(const char *name, uint32_t *vaddr)
{
	struct shim_msg req, rep;
	size_t len = strlen(name);

	if (len == 0 || len > SHIM_NAME_MAX)
		return -1;
	memset(&req, 0, sizeof(req));
	req.type = SHIM_RESOLVE;
	req.name = name;
	req.name_len = (uint8_t)len;
	if (shim_call(&req, &rep) == -1 || rep.err || !rep.r_addr)
		return -1;
	*vaddr = rep.r_addr;
	return 0;
}

int
shim_name_of(uint32_t vaddr, char *out, size_t cap)
{
	struct shim_msg req, rep;

	memset(&req, 0, sizeof(req));
	req.type = SHIM_NAME_OF;
	req.addr = vaddr;
	if (shim_call(&req, &rep) == -1 || rep.err || rep.name_len == 0 || rep.name_len >= cap)
		return -1;
	memcpy(out, rep.name, rep.name_len);
	out[rep.name_len] = '\0';
	return 0;
}

void
shim_daemon_atfork_prepare(void)
{
	pthread_mutex_lock(&conn.lock);
}

void
shim_daemon_atfork_parent(void)
{
	pthread_mutex_unlock(&conn.lock);
}

void
shim_daemon_atfork_child(void)
{
	int fd = atomic_exchange(&conn.fd, -1);

	/* the parent's connection: our copy goes, the parent keeps its own */
	if (fd >= 0)
		REAL(close)(fd);
	conn.retry_at = 0;
	pthread_mutex_unlock(&conn.lock);
	shim_fd_after_fork();
}
