/*
 * shim: libshoal-preload.so's entry points that are not about addresses: the constructor
 * (cheap: reads a few environment variables and registers fork handlers; the daemon is contacted
 * only on first need), the table of libc's own definitions (dlsym RTLD_NEXT, resolved lazily so
 * interposers work even before our constructor ran), and the fd lifecycle: close, dup*,
 * fcntl(F_DUPFD*), closefrom, close_range. Per-fd state follows the fd; the shim's own daemon
 * fd is given up whenever the program closes or reuses its number.
 * Must not touch: address rewriting (shim_net.c), interfaces (shim_if.c).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "lanproxy/preload/shim_int.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* libc's definitions, by enum shim_sym: owned by this file, written once each (idempotent). */
static _Atomic(void *) syms[SYM_COUNT];
static const char *const sym_names[SYM_COUNT] = {
	[SYM_socket] = "socket", [SYM_bind] = "bind", [SYM_connect] = "connect",
	[SYM_listen] = "listen", [SYM_accept] = "accept", [SYM_accept4] = "accept4",
	[SYM_getsockname] = "getsockname", [SYM_getpeername] = "getpeername",
	[SYM_sendto] = "sendto", [SYM_sendmsg] = "sendmsg", [SYM_sendmmsg] = "sendmmsg",
	[SYM_recvfrom] = "recvfrom", [SYM_recvmsg] = "recvmsg",
	[SYM_recvmmsg] = "recvmmsg", [SYM___recvfrom_chk] = "__recvfrom_chk",
	[SYM_setsockopt] = "setsockopt", [SYM_getsockopt] = "getsockopt", [SYM_close] = "close",
	[SYM_dup] = "dup", [SYM_dup2] = "dup2", [SYM_dup3] = "dup3", [SYM_fcntl] = "fcntl",
	[SYM_fcntl64] = "fcntl64", [SYM_closefrom] = "closefrom",
	[SYM_close_range] = "close_range", [SYM_getifaddrs] = "getifaddrs",
	[SYM_freeifaddrs] = "freeifaddrs", [SYM_if_nameindex] = "if_nameindex",
	[SYM_if_freenameindex] = "if_freenameindex", [SYM_if_nametoindex] = "if_nametoindex",
	[SYM_if_indextoname] = "if_indextoname", [SYM_ioctl] = "ioctl",
	[SYM_getaddrinfo] = "getaddrinfo", [SYM_gethostbyname] = "gethostbyname",
	[SYM_gethostbyname2] = "gethostbyname2", [SYM_gethostbyname_r] = "gethostbyname_r",
	[SYM_gethostbyname2_r] = "gethostbyname2_r",
	[SYM_getnameinfo] = "getnameinfo",
	[SYM_gethostbyaddr] = "gethostbyaddr",
	[SYM_gethostbyaddr_r] = "gethostbyaddr_r",
	[SYM_send] = "send", [SYM_recv] = "recv", [SYM_execve] = "execve", [SYM_execvpe] = "execvpe", [SYM_fexecve] = "fexecve",
	[SYM_execveat] = "execveat", [SYM_posix_spawn] = "posix_spawn",
	[SYM_posix_spawnp] = "posix_spawnp",
};

void *
shim_sym(enum shim_sym s)
{
	void *p = atomic_load_explicit(&syms[s], memory_order_relaxed);

	if (!p) {
		p = dlsym(RTLD_NEXT, sym_names[s]);
		atomic_store_explicit(&syms[s], p, memory_order_relaxed);
	}
	return p;
}

void *
shim_sym_by_name(const char *name)
{
	int i;

	for (i = 0; i < SYM_COUNT; i++)
		if (sym_names[i] && strcmp(sym_names[i], name) == 0)
			return shim_sym((enum shim_sym)i);
	return NULL;
}

__attribute__((constructor)) static void
shim_init(void)
{
	shim_daemon_init();
	shim_exec_init();
	pthread_atfork(shim_daemon_atfork_prepare, shim_daemon_atfork_parent,
	    shim_daemon_atfork_child);
}

/* ---- fd lifecycle ---- */

/* fd is about to stop meaning what it meant. */
static void
forget(int fd)
{
	uint32_t w = shim_fd_get(fd);

	if (shim_daemon_fd_is(fd))
		shim_daemon_lost();
	if (w & FD_NLROUTE)
		shim_nl_forget(fd);
	if (w & FD_ANNOUNCED)
		shim_net_closing(fd);
	if (w)
		shim_fd_set(fd, 0);
}

/* fds lo..hi are about to be closed together (closefrom, close_range): tell the daemon about
 * announced sockets while they are still open, one fd after the other, so that the last fd of
 * a dup'ed socket sees the others gone. */
static void
forget_range(unsigned lo, unsigned hi)
{
	unsigned i;

	if (hi >= SHIM_FD_MAX)
		hi = SHIM_FD_MAX - 1;
	for (i = lo; i <= hi; i++) {
		if (shim_fd_get((int)i) & FD_ANNOUNCED) {
			shim_net_closing((int)i);
			shim_fd_set((int)i, 0);
		}
	}
	shim_fd_forget_range(lo, hi);
}

/* newfd now refers to oldfd's socket. */
static void
copy_state(int oldfd, int newfd)
{
	uint32_t w = shim_fd_get(oldfd);

	if (w & FD_ANNOUNCED) {
		shim_fd_or(oldfd, FD_SHARED);
		w |= FD_SHARED;
	}
	shim_fd_set(newfd, w);
}

SHIM_EXPORT int
close(int fd)
{
	int (*f)(int) = REAL(close);

	forget(fd);
	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f(fd);
}

SHIM_EXPORT int
dup(int fd)
{
	int (*f)(int) = REAL(dup);
	int n;

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	if ((n = f(fd)) >= 0)
		copy_state(fd, n);
	return n;
}

SHIM_EXPORT int
dup2(int oldfd, int newfd)
{
	int (*f)(int, int) = REAL(dup2);
	int n;

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	if (oldfd != newfd && oldfd >= 0)
		forget(newfd);
	if ((n = f(oldfd, newfd)) >= 0 && oldfd != newfd)
		copy_state(oldfd, n);
	return n;
}

SHIM_EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	int (*f)(int, int, int) = REAL(dup3);
	int n;

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	if (oldfd != newfd && oldfd >= 0)
		forget(newfd);
	if ((n = f(oldfd, newfd, flags)) >= 0)
		copy_state(oldfd, n);
	return n;
}

static int
do_fcntl(enum shim_sym which, int fd, int cmd, void *arg)
{
	int (*f)(int, int, ...) = (int (*)(int, int, ...))shim_sym(which);
	int n;

	if (!f && which == SYM_fcntl64)
		f = (int (*)(int, int, ...))shim_sym(SYM_fcntl);
	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	n = f(fd, cmd, arg);
	if (n >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		copy_state(fd, n);
	return n;
}

/* The third argument is an int, a long or a pointer: all are passed in one register (or stack
 * slot) on the ABIs we run on, and libc reads it back with the type cmd calls for. */
SHIM_EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(SYM_fcntl, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);

SHIM_EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(SYM_fcntl64, fd, cmd, arg);
}

/*
 * closefrom/close_range: the program cannot know about the shim's daemon fd (it is close-on-exec
 * and far above its own), so the range is split around it and the connection survives: the
 * registrations of the program's other sockets stay valid.
 */
SHIM_EXPORT void
closefrom(int lowfd)
{
	void (*f)(int) = REAL(closefrom);
	int (*cr)(unsigned int, unsigned int, int) = REAL(close_range);
	unsigned lo = lowfd < 0 ? 0 : (unsigned)lowfd;
	int d = shim_daemon_fd();

	forget_range(lo, ~0u);
	if (d >= 0 && (unsigned)d >= lo && cr) {
		if ((unsigned)d > lo)
			cr(lo, (unsigned)d - 1, 0);
		cr((unsigned)d + 1, ~0u, 0);
		return;
	}
	if (d >= 0 && (unsigned)d >= lo)
		shim_daemon_lost();
	if (f)
		f(lowfd);
}

SHIM_EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	int (*f)(unsigned int, unsigned int, int) = REAL(close_range);
	int d = shim_daemon_fd(), rc = 0;

	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	if (first > last)
		return f(first, last, flags);
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		forget_range(first, last);
	if (d < 0 || (unsigned)d < first || (unsigned)d > last)
		return f(first, last, flags);
	if ((unsigned)d > first)
		rc = f(first, (unsigned)d - 1, flags);
	if (rc == 0 && (unsigned)d < last)
		rc = f((unsigned)d + 1, last, flags);
	return rc;
}
