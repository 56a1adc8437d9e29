/*
 * udpbatch: batched, segmentation-offloaded sends on one UDP socket (base/udpbatch.h).
 *
 * Why GSO: the kernel's per-datagram cost (one trip through the IP stack each) dominated the
 * daemon's CPU even with batched syscalls. So consecutive queued datagrams of equal size to
 * the same destination go out as one UDP_SEGMENT message that the kernel walks through the
 * stack once and cuts into wire datagrams as late as possible. The wire format is unchanged
 * and the receiver needs nothing: without GRO its kernel segments them itself. If the kernel
 * or the route refuses GSO at run time (EIO without checksum offload, e.g. on a TUN device;
 * EINVAL; ENOPROTOOPT on old kernels) it is switched off for this batch and the same
 * datagrams are resent one by one.
 *
 * Ring: slot i always uses iov[i], msg[i] and addr[i], so a contiguous run of the ring goes to
 * sendmmsg as is, and a run of slots can be one GSO message's iovec array. Messages never
 * span the wrap: the run up to the end of the array is sent first.
 */
#include "config.h"
#include "base/udpbatch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

enum {
	/* One GSO message: the kernel's UDP_MAX_SEGMENTS (64 on older kernels, the floor) and
	 * the IPv4 UDP payload limit (65535 - 20 - 8; IPv6 allows a little more). */
	UB_GSO_MAX_SEGS = 64,
	UB_GSO_MAX_BYTES = 65507,
};

union ub_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Room for the UDP_SEGMENT cmsg (a u16). */
union ub_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* Owned by whoever called udpbatch_new; the arrays live in the same allocation. */
struct udpbatch {
	struct ev_loop *loop;
	int fd;
	struct udpbatch_conf conf;
	void *arg;
	ev_prepare prep;                /* flushes the ring before the loop blocks */
	ev_io wio;                      /* writable, only while the kernel said EAGAIN */
	int gso;                        /* 0 once the kernel refused UDP_SEGMENT */
	int reserved;                   /* udpbatch_slot handed out the next slot */
	unsigned head, count;
	uint8_t *buf;                   /* slots * slot_size bytes */
	struct mmsghdr *msg;
	struct mmsghdr *gso_msg;        /* built at flush time */
	struct iovec *iov;
	union ub_cmsg *gso_cmsg;
	unsigned *gso_slots;            /* ring slots carried by gso_msg[k] */
	union ub_addr *addr;
	struct udpbatch_stats st;
};

/* Where the next queued datagram goes: head < slots and count <= slots, so no division. */
static unsigned
tail_index(const struct udpbatch *b)
{
	unsigned i = b->head + b->count;

	return i >= b->conf.slots ? i - b->conf.slots : i;
}

static int
same_dest(const struct msghdr *a, const struct msghdr *b)
{
	const struct sockaddr_in *x = a->msg_name, *y = b->msg_name;

	if (a->msg_namelen != b->msg_namelen)
		return 0;
	if (a->msg_namelen == 0)
		return 1;               /* connected socket: one destination */
	if (a->msg_namelen == sizeof(*x) && x->sin_family == AF_INET)
		return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
	return memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0;
}

/*
 * Turns the ring run [head, head + span) into GSO messages in gso_msg: each takes the longest
 * run of slots to one destination whose datagrams all have the first one's size, except that
 * the last may be shorter (the kernel's rule: every segment is gso_size but the final one).
 * Returns the number of messages.
 */
static unsigned
gso_build(struct udpbatch *b, unsigned head, unsigned span)
{
	unsigned i = head, end = head + span, nm = 0;

	while (i < end) {
		size_t seg = b->iov[i].iov_len, total = seg;
		unsigned j = i + 1;
		struct msghdr *h = &b->gso_msg[nm].msg_hdr;

		while (j < end && j - i < UB_GSO_MAX_SEGS &&
		    same_dest(&b->msg[j].msg_hdr, &b->msg[i].msg_hdr)) {
			size_t l = b->iov[j].iov_len;

			if (l > seg || l == 0 || total + l > UB_GSO_MAX_BYTES)
				break;
			total += l;
			j++;
			if (l < seg)
				break;          /* a short one ends the message */
		}
		h->msg_name = b->msg[i].msg_hdr.msg_name;
		h->msg_namelen = b->msg[i].msg_hdr.msg_namelen;
		h->msg_iov = &b->iov[i];
		h->msg_iovlen = j - i;
		h->msg_flags = 0;
		if (j - i > 1) {
			struct cmsghdr *cm;
			uint16_t gs = (uint16_t)seg;

			h->msg_control = b->gso_cmsg[nm].buf;
			h->msg_controllen = CMSG_SPACE(sizeof(gs));
			cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gs));
			memcpy(CMSG_DATA(cm), &gs, sizeof(gs));
		} else {
			h->msg_control = NULL;
			h->msg_controllen = 0;
		}
		b->gso_slots[nm] = j - i;
		nm++;
		i = j;
	}
	return nm;
}

/* The errors with which a kernel or route says "no GSO here" rather than "bad datagram". */
static int
gso_refused(int err)
{
	return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP ||
	    err == EMSGSIZE;
}

static void
flush_ring(struct udpbatch *b)
{
	while (b->count > 0) {
		unsigned span = b->conf.slots - b->head, slots = 0, nm, k;
		int r, err;

		if (span > b->count)
			span = b->count;
		if (b->gso) {
			nm = gso_build(b, b->head, span);
			r = sendmmsg(b->fd, b->gso_msg, nm, MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			r = sendmmsg(b->fd, &b->msg[b->head], span, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		if (r < 0) {
			err = errno;
			if (err == EINTR)
				continue;
			if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
				b->st.blocked++;
				if (!ev_is_active(&b->wio))
					ev_io_start(b->loop, &b->wio);
				return;
			}
			if (b->gso && b->gso_slots[0] > 1 && gso_refused(err)) {
				/* Nothing of this message was sent: go on without GSO and
				 * resend the same datagrams one by one. */
				log_info("event=%s_gso_disabled errno=%d", b->conf.name, err);
				b->gso = 0;
				continue;
			}
			/* The first datagram (or GSO message) of the run is refused
			 * (unreachable, bad address): drop it and go on with the rest. */
			slots = b->gso ? b->gso_slots[0] : 1;
			b->st.dropped += slots;
			if (b->conf.on_drop != NULL)
				b->conf.on_drop(b->arg, err, slots);
		} else {
			if (b->gso) {
				for (k = 0; k < (unsigned)r; k++)
					slots += b->gso_slots[k];
			} else {
				slots = (unsigned)r;
			}
			b->st.packets += slots;
			b->st.batches++;
		}
		b->head += slots;
		if (b->head >= b->conf.slots)
			b->head -= b->conf.slots;
		b->count -= slots;
	}
	b->head = 0;
}

void
udpbatch_flush(struct udpbatch *b)
{
	if (ev_is_active(&b->wio))
		return;         /* the kernel is full; the write watcher resumes */
	if (b->count > 0)
		flush_ring(b);
}

static void
prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct udpbatch *b = w->data;

	(void)revents;
	if (!b->conf.persistent)
		ev_prepare_stop(loop, w);
	if (b->count > 0)
		udpbatch_flush(b);
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udpbatch *b = w->data;

	(void)revents;
	ev_io_stop(loop, w);
	flush_ring(b);
}

/* Queues the slot after the queued ones with len bytes (already written there). */
static void
queue(struct udpbatch *b, size_t len)
{
	b->iov[tail_index(b)].iov_len = len;
	b->count++;
	if (!b->conf.persistent && !ev_is_active(&b->prep))
		ev_prepare_start(b->loop, &b->prep);
	if (b->count == b->conf.slots)
		udpbatch_flush(b);
}

uint8_t *
udpbatch_slot(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen)
{
	struct msghdr *h;
	unsigned i;

	if (dstlen > sizeof(union ub_addr)) {
		b->st.dropped++;        /* a caller bug, not a reason to write past addr[i] */
		return NULL;
	}
	if (b->count == b->conf.slots) {
		udpbatch_flush(b);
		if (b->count == b->conf.slots) {
			/* Bounded queue: the kernel is not draining, the newest datagram goes. */
			b->st.dropped++;
			return NULL;
		}
	}
	i = tail_index(b);
	h = &b->msg[i].msg_hdr;
	if (dstlen > 0) {
		memcpy(&b->addr[i], dst, dstlen);
		h->msg_name = &b->addr[i];
	} else {
		h->msg_name = NULL;
	}
	h->msg_namelen = dstlen;
	b->reserved = 1;
	return b->buf + (size_t)i * b->conf.slot_size;
}

void
udpbatch_commit(struct udpbatch *b, size_t len)
{
	if (!b->reserved)
		return;
	b->reserved = 0;
	if (len == 0 || len > b->conf.slot_size)
		return;         /* abandoned (or a caller bug): the slot stays free */
	queue(b, len);
}

int
udpbatch_addv(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen,
    const struct iovec *iov, int iovcnt)
{
	struct msghdr mh;
	uint8_t *p;
	size_t len = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len <= b->conf.slot_size) {
		if ((p = udpbatch_slot(b, dst, dstlen)) == NULL) {
			errno = ENOBUFS;
			return -1;
		}
		for (i = 0; i < iovcnt; i++) {
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
			p += iov[i].iov_len;
		}
		b->reserved = 0;
		queue(b, len);  /* not commit: a zero-length datagram is legal UDP */
		return 0;
	}
	/* Too big for a slot: what is queued goes first, then this one on its own. */
	udpbatch_flush(b);
	if (b->count > 0) {
		b->st.dropped++;
		errno = EAGAIN;
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = dstlen > 0 ? (void *)(uintptr_t)dst : NULL;
	mh.msg_namelen = dstlen;
	mh.msg_iov = (struct iovec *)(uintptr_t)iov;
	mh.msg_iovlen = (size_t)iovcnt;
	for (;;) {
		if (sendmsg(b->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
			b->st.packets++;
			b->st.batches++;
			return 0;
		}
		if (errno != EINTR)
			break;
	}
	b->st.dropped++;
	return -1;
}

int
udpbatch_add(struct udpbatch *b, const struct sockaddr *dst, socklen_t dstlen,
    const void *data, size_t len)
{
	struct iovec iov = { (void *)(uintptr_t)data, len };

	return udpbatch_addv(b, dst, dstlen, &iov, 1);
}

unsigned
udpbatch_pending(const struct udpbatch *b)
{
	return b->count;
}

void
udpbatch_get_stats(const struct udpbatch *b, struct udpbatch_stats *st)
{
	*st = b->st;
	st->gso = b->gso;
}

/* Carves n elements of size sz from *p. Callers go in order of decreasing alignment, so each
 * array starts aligned (the struct's size is a multiple of its own 8-byte alignment). */
static void *
carve(uint8_t **p, size_t n, size_t sz)
{
	void *r = *p;

	*p += n * sz;
	return r;
}

struct udpbatch *
udpbatch_new(struct ev_loop *loop, int fd, const struct udpbatch_conf *conf, void *arg)
{
	struct udpbatch *b;
	size_t n = conf->slots, total;
	socklen_t gl = sizeof(int);
	unsigned i;
	uint8_t *p;
	int gs = 0;

	if (n == 0 || conf->slot_size == 0 || conf->slot_size > 65535)
		return NULL;
	total = sizeof(*b) + n * (2 * sizeof(struct mmsghdr) + sizeof(struct iovec) +
	    sizeof(union ub_cmsg) + sizeof(union ub_addr) + sizeof(unsigned));
	if ((b = calloc(1, total)) == NULL)
		goto fail;
	/* Large and only touched as far as datagrams are written: its own allocation. */
	if ((b->buf = calloc(n, conf->slot_size)) == NULL)
		goto fail;
	p = (uint8_t *)(b + 1);
	b->msg = carve(&p, n, sizeof(*b->msg));
	b->gso_msg = carve(&p, n, sizeof(*b->gso_msg));
	b->iov = carve(&p, n, sizeof(*b->iov));
	b->gso_cmsg = carve(&p, n, sizeof(*b->gso_cmsg));
	b->addr = carve(&p, n, sizeof(*b->addr));
	b->gso_slots = carve(&p, n, sizeof(*b->gso_slots));
	b->loop = loop;
	b->fd = fd;
	b->conf = *conf;
	b->arg = arg;
	for (i = 0; i < n; i++) {
		b->iov[i].iov_base = b->buf + (size_t)i * conf->slot_size;
		b->msg[i].msg_hdr.msg_iov = &b->iov[i];
		b->msg[i].msg_hdr.msg_iovlen = 1;
	}
	/* GSO needs nothing up front (it is per message), but a kernel without it says so
	 * here, which saves one refused send later. */
	b->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &gs, &gl) == 0;
	ev_prepare_init(&b->prep, prep_cb);
	ev_io_init(&b->wio, write_cb, fd, EV_WRITE);
	b->prep.data = b->wio.data = b;
	if (conf->persistent) {
		ev_prepare_start(loop, &b->prep);
		/* The prepare watcher alone must not keep ev_run() alive. */
		ev_unref(loop);
	}
	return b;

fail:
	log_warnx("event=%s_batch_alloc_failed slots=%zu", conf->name, n);
	if (b != NULL)
		free(b->buf);
	free(b);
	return NULL;
}

void
udpbatch_free(struct udpbatch *b)
{
	if (b == NULL)
		return;
	/* One last try even while waiting for writability: the kernel may have drained. */
	ev_io_stop(b->loop, &b->wio);
	if (b->count > 0)
		flush_ring(b);
	ev_io_stop(b->loop, &b->wio);
	if (b->count > 0) {
		b->st.dropped += b->count;
		if (b->conf.on_drop != NULL)
			b->conf.on_drop(b->arg, EAGAIN, b->count);
	}
	if (b->conf.persistent && ev_is_active(&b->prep))
		ev_ref(b->loop);
	ev_prepare_stop(b->loop, &b->prep);
	free(b->buf);
	free(b);
}
