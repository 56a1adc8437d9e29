/*
 * udpbatch: the send side of one UDP socket, batched. Datagrams are queued in a preallocated
 * ring and leave with sendmmsg() once per loop pass (from an ev_prepare watcher, just before
 * the loop blocks) or as soon as the ring is full, so a burst costs one syscall. Where the
 * kernel allows, consecutive datagrams of equal size to one destination leave as one
 * UDP_SEGMENT (GSO) message; the receiver still sees separate datagrams.
 * Used by the peer transport (core/transport.c), UDP exposes (ports/expose.c) and the SOCKS
 * UDP relay (socks/socks5_udp.c).
 *
 * Kernel pushback (EAGAIN, ENOBUFS) keeps what is queued and waits for the socket to become
 * writable; meanwhile new datagrams fill the ring and, once it is full, are dropped (newest
 * first, counted). A datagram the kernel refuses for itself (ICMP error reported on a
 * connected socket, bad address, too big) is dropped, counted and reported to on_drop. If the
 * kernel or the route refuses GSO it is switched off for this batch and the same datagrams
 * are resent one by one.
 *
 * Owns: the ring (slot buffers, message headers) and two watchers (prepare, write). Not the
 * socket: the owner creates it, reads from it and closes it after udpbatch_free().
 */
#ifndef SHOAL_UDPBATCH_H
#define SHOAL_UDPBATCH_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct udpbatch;

/*
 * n datagrams were dropped because the kernel refused them with err. Called from inside
 * udpbatch calls, the prepare or write watcher, and udpbatch_free() (with EAGAIN for what the
 * kernel never took). Must not call back into the batch.
 */
typedef void (*udpbatch_drop_cb)(void *arg, int err, unsigned n);

struct udpbatch_conf {
	unsigned slots;                 /* ring size: datagrams queued at most */
	size_t slot_size;               /* the largest datagram a slot holds */
	/*
	 * 0: the prepare watcher runs only while something is queued (cheap for many batches).
	 * 1: it runs every loop pass, unreferenced. Needed when the batch is fed from another
	 * prepare watcher (the transport, fed by the netstack's higher-priority one): a watcher
	 * started during the prepare phase would only run on the next pass, after the loop
	 * slept with the datagrams still queued.
	 */
	int persistent;
	/* Event name prefix: "udp" logs event=udp_gso_disabled. */
	const char *name;
	udpbatch_drop_cb on_drop;       /* may be NULL: drops are only counted */
};

/* Packets count datagrams even when several left in one GSO message. */
struct udpbatch_stats {
	uint64_t packets;               /* datagrams the kernel took */
	uint64_t batches;               /* successful sendmmsg calls */
	uint64_t dropped;               /* ring full, kernel refusal, or unsent at free */
	uint64_t blocked;               /* EAGAIN/ENOBUFS: flushing paused until writable */
	int gso;                        /* 1 while UDP_SEGMENT is in use */
};

/* conf is copied (name must outlive the batch). NULL on allocation failure (logged). */
struct udpbatch *udpbatch_new(struct ev_loop *loop, int fd, const struct udpbatch_conf *conf,
    void *arg);
/* Tries once to send what is queued, then stops the watchers. Does not close the socket. */
void udpbatch_free(struct udpbatch *b);

/*
 * Zero-copy: reserves the next slot for a datagram to dst (NULL, 0 on a connected socket)
 * and returns its slot_size-byte buffer to write the datagram into, or NULL when the ring is
 * full and the kernel is not draining (counted as dropped). udpbatch_commit(b, len) queues it
 * with len bytes (1..slot_size); 0 abandons it. At most one slot is reserved at a time, and
 * nothing else may be called on b in between.
 * For GSO grouping, destinations are compared bytewise: zero the padding (sin_zero).
 */
uint8_t *udpbatch_slot(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen);
void udpbatch_commit(struct udpbatch *b, size_t len);

/*
 * Copying: queues the concatenation of iov (zero length is a legal datagram). One larger
 * than a slot is sent at once after what is queued, or dropped if that cannot leave now,
 * so the order always holds. 0, or -1 with errno when it was dropped (counted; on_drop is
 * not called, the caller knows).
 */
int udpbatch_addv(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen,
    const struct iovec *iov, int iovcnt);
int udpbatch_add(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen,
    const void *data, size_t len);

/* Sends what is queued now, unless the kernel said to wait (the write watcher resumes). */
void udpbatch_flush(struct udpbatch *b);
/* Datagrams queued and not yet taken by the kernel. */
unsigned udpbatch_pending(const struct udpbatch *b);
void udpbatch_get_stats(const struct udpbatch *b, struct udpbatch_stats *st);

#endif
