/*
 * shim_fd: what the shim knows about each fd, one atomic word per fd in a fixed array (256 KiB
 * of zero pages the kernel only backs once touched). Lock-free: every interposer reads and
 * updates its own fd's word; the only writers of another fd's word are dup*, which copy.
 * fd numbers reused behind our back (a close the shim never saw) are harmless: socket() and
 * accept() overwrite the word, and an unknown word is looked up again from the kernel.
 * Must not touch: the daemon connection, addresses.
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "lanproxy/preload/shim_int.h"

/* The shim's one process-wide table: owned by this file, indexed by fd. */
static _Atomic uint32_t fd_state[SHIM_FD_MAX];
/* Only meaningful while FD_VCONN is set: the local port the daemon knows the connect by, and
 * where the kernel socket was sent (kaddr << 16 | kport; 0 unknown). */
static _Atomic uint16_t fd_lport[SHIM_FD_MAX];
static _Atomic uint64_t fd_kdst[SHIM_FD_MAX];

void
shim_fd_set_kdst(int fd, uint32_t addr, uint16_t port)
{
	if (fd >= 0 && fd < SHIM_FD_MAX)
		atomic_store_explicit(&fd_kdst[fd], (uint64_t)addr << 16 | port,
		    memory_order_relaxed);
}

int
shim_fd_kdst(int fd, uint32_t *addr, uint16_t *port)
{
	uint64_t v;

	if (fd < 0 || fd >= SHIM_FD_MAX)
		return -1;
	if ((v = atomic_load_explicit(&fd_kdst[fd], memory_order_relaxed)) == 0)
		return -1;
	*addr = (uint32_t)(v >> 16);
	*port = (uint16_t)v;
	return 0;
}

void
shim_fd_set_lport(int fd, uint16_t port)
{
	if (fd >= 0 && fd < SHIM_FD_MAX)
		atomic_store_explicit(&fd_lport[fd], port, memory_order_relaxed);
}

uint16_t
shim_fd_lport(int fd)
{
	if (fd < 0 || fd >= SHIM_FD_MAX)
		return 0;
	return atomic_load_explicit(&fd_lport[fd], memory_order_relaxed);
}

uint32_t
shim_fd_get(int fd)
{
	if (fd < 0 || fd >= SHIM_FD_MAX)
		return 0;
	return atomic_load_explicit(&fd_state[fd], memory_order_relaxed);
}

void
shim_fd_set(int fd, uint32_t word)
{
	if (fd >= 0 && fd < SHIM_FD_MAX)
		atomic_store_explicit(&fd_state[fd], word, memory_order_relaxed);
}

void
shim_fd_or(int fd, uint32_t bits)
{
	if (fd >= 0 && fd < SHIM_FD_MAX)
		atomic_fetch_or_explicit(&fd_state[fd], bits, memory_order_relaxed);
}

void
shim_fd_clear_bits(int fd, uint32_t bits)
{
	if (fd >= 0 && fd < SHIM_FD_MAX)
		atomic_fetch_and_explicit(&fd_state[fd], ~bits, memory_order_relaxed);
}

uint32_t
shim_fd_probe(int fd)
{
	uint32_t w = shim_fd_get(fd);
	int domain = 0, type = 0, e = errno;
	socklen_t len;

	if (w & FD_KNOWN)
		return w;
	w = FD_KNOWN;
	len = sizeof(domain);
	if (REAL(getsockopt) && REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    (domain == AF_INET || domain == AF_INET6)) {
		len = sizeof(type);
		if (REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
			w |= FD_INET | (domain == AF_INET6 ? FD_INET6 : 0);
			if (type == SOCK_STREAM)
				w |= FD_TCP;
			else if (type == SOCK_DGRAM)
				w |= FD_UDP;
		}
	}
	errno = e;
	shim_fd_set(fd, w);
	return w;
}

void
shim_fd_forget_range(unsigned lo, unsigned hi)
{
	unsigned i;

	if (hi >= SHIM_FD_MAX)
		hi = SHIM_FD_MAX - 1;
	for (i = lo; i <= hi && i < SHIM_FD_MAX; i++)
		if (atomic_load_explicit(&fd_state[i], memory_order_relaxed))
			atomic_store_explicit(&fd_state[i], 0, memory_order_relaxed);
}

void
shim_fd_after_fork(void)
{
	unsigned i;

	/* registrations belong to the parent's connection; the child must not close them */
	for (i = 0; i < SHIM_FD_MAX; i++)
		if (atomic_load_explicit(&fd_state[i], memory_order_relaxed) & FD_ANNOUNCED)
			atomic_fetch_and_explicit(&fd_state[i], ~(uint32_t)FD_ANNOUNCED,
			    memory_order_relaxed);
}
