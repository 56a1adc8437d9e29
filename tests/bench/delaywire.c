/*
 * delaywire: a userspace "cable" with a fixed one-way delay between two TUN devices, for
 * `make bench` on kernels without the netem qdisc.
 *
 *   delaywire [--delay-ms N] [--loss-ppm N] [--rate-mbit N] [--queue-kb N] [--limit-pkts N]
 *             [--limit-mb N] TUN_A TUN_B
 *
 * --loss-ppm drops that many packets in a million, independently and at random, each way (a
 * lossy Wi-Fi or Internet path: issue 12's bench).
 * --rate-mbit makes each direction a bottleneck link of that rate: packets leave one after the
 * other at its serialisation time, and a packet that would find more than --queue-kb (default:
 * 100 ms at the rate) already waiting for the link is tail-dropped, as a router's buffer does.
 * Without a rate, the wire is as fast as this process gets CPU (the flows' fairness then
 * depends on the scheduler, not on the congestion controllers: issue 12's fairness row uses a
 * rate).
 * Creates TUN_A and TUN_B (IFF_TUN|IFF_NO_PI), prints "ready" on stdout, then forwards every
 * packet read from one device to the other once it is N ms old, in order. The caller moves the
 * devices into network namespaces and configures them after "ready": the open fds keep working
 * across `ip link set DEV netns NS`. Exits cleanly on SIGTERM/SIGINT and prints per-direction
 * counters on stderr.
 *
 * Each direction is a bounded FIFO: a byte arena (preallocated, used as a ring) plus a ring of
 * packet descriptors; nothing is allocated per packet. When either is full the device is not
 * read, so the kernel's TUN queue overflows and drops, as a router's tail-drop would.
 * Owns: only the two TUN devices it creates. Must not touch any other interface.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

enum {
	PKT_MAX = 65536,	/* contiguous room kept for one read: the largest IP packet */
	READ_BATCH = 256,	/* reads per device per wake-up, so one busy side cannot starve the other */
};

/* One queued packet: where it sits in the arena and when it may leave. */
struct pkt {
	size_t		off;
	uint32_t	len;
	uint64_t	due_ns;
};

/* One direction of the wire. Owned by struct wire; the fds are borrowed from it. */
struct lane {
	const char	*name;		/* "a>b" or "b>a", for the counters */
	int		 in_fd;
	int		 out_fd;
	uint8_t		*arena;
	size_t		 arena_cap;
	size_t		 wr;		/* next write offset in the arena */
	struct pkt	*q;
	uint32_t	 qcap;
	uint32_t	 first;		/* index of the oldest packet in q */
	uint32_t	 count;
	int		 blocked;	/* out_fd said EAGAIN: wait for POLLOUT before writing again */
	uint64_t	 forwarded;
	uint64_t	 bytes;
	uint64_t	 write_errors;
	uint64_t	 full_waits;	/* times the queue was full when the device had data */
	uint64_t	 max_count;
	uint64_t	 dropped;	/* lost on purpose (--loss-ppm) */
	uint64_t	 qdropped;	/* tail-dropped by the bottleneck's buffer (--queue-kb) */
	uint64_t	 link_free_ns;	/* when the bottleneck finishes sending what it holds */
	uint64_t	 rng;		/* xorshift64 state for the losses */
};

/* The whole program's state, on main()'s stack. */
struct wire {
	int		 tun[2];
	int		 sigfd;
	uint64_t	 delay_ns;
	uint32_t	 loss_ppm;	/* random loss, per million packets, each way */
	uint64_t	 rate_bps;	/* bottleneck rate each way, bit/s; 0: none */
	uint64_t	 queue_bytes;	/* the bottleneck's buffer */
	struct lane	 lane[2];	/* lane[0]: tun[0] -> tun[1]; lane[1]: tun[1] -> tun[0] */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
tun_open(const char *name)
{
	struct ifreq ifr;
	int fd;

	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "delaywire: device name too long: %s\n", name);
		return -1;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		perror("delaywire: /dev/net/tun");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "delaywire: TUNSETIFF %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
lane_init(struct lane *l, const char *name, int in_fd, int out_fd, uint32_t qcap, size_t arena_cap)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->in_fd = in_fd;
	l->out_fd = out_fd;
	l->qcap = qcap;
	l->arena_cap = arena_cap;
	l->q = calloc(qcap, sizeof(*l->q));
	l->arena = malloc(arena_cap);
	/* any non-zero seed: runs need not repeat, the rate is what matters */
	l->rng = (now_ns() ^ ((uint64_t)(uintptr_t)l << 17)) | 1;
	return l->q && l->arena ? 0 : -1;
}

static void
lane_free(struct lane *l)
{
	free(l->q);
	free(l->arena);
}

/*
 * Returns where the next packet may be read to, with PKT_MAX bytes of room, or NULL when the
 * lane is full. The write offset never lands on the oldest packet while the lane is non-empty,
 * so wr == oldest offset only ever means "empty".
 */
static uint8_t *
lane_reserve(struct lane *l)
{
	size_t rd;

	if (l->count == l->qcap)
		return NULL;
	if (l->count == 0)
		l->wr = 0;
	rd = l->count ? l->q[l->first].off : 0;
	if (l->count == 0 || l->wr > rd) {
		/* Live data is [rd, wr): room at the end, or wrap to the start ahead of rd. */
		if (l->arena_cap - l->wr >= PKT_MAX)
			return l->arena + l->wr;
		if (rd > PKT_MAX) {
			l->wr = 0;
			return l->arena;
		}
		return NULL;
	}
	/* Wrapped: live data is [rd, end) and [0, wr); keep strictly short of rd. */
	if (rd - l->wr > PKT_MAX)
		return l->arena + l->wr;
	return NULL;
}

static void
lane_push(struct lane *l, uint32_t len, uint64_t due_ns)
{
	struct pkt *p = &l->q[(l->first + l->count) % l->qcap];

	p->off = l->wr;
	p->len = len;
	p->due_ns = due_ns;
	l->wr += len;
	l->count++;
	if (l->count > l->max_count)
		l->max_count = l->count;
}

/* Independent random loss, as a lossy Wi-Fi or Internet path: xorshift64 is plenty for that. */
static int
lane_lose(struct lane *l, uint32_t loss_ppm)
{
	if (loss_ppm == 0)
		return 0;
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	return (uint32_t)(l->rng % 1000000u) < loss_ppm;
}

/* Reads what the device has, up to READ_BATCH packets; returns -1 on a fatal device error. */
/*
 * When a packet of len bytes read now leaves the bottleneck (before the delay), or 0 if the
 * buffer is full and it is dropped. Departures are monotonic, so the FIFO stays in order.
 */
static uint64_t
lane_serialise(struct lane *l, const struct wire *w, uint32_t len, uint64_t now)
{
	uint64_t start = l->link_free_ns > now ? l->link_free_ns : now;
	uint64_t backlog = (start - now) * w->rate_bps / 8000000000u;

	if (backlog + len > w->queue_bytes) {
		l->qdropped++;
		return 0;
	}
	l->link_free_ns = start + (uint64_t)len * 8000000000u / w->rate_bps;
	return l->link_free_ns;
}

static int
lane_read(struct lane *l, const struct wire *w)
{
	for (int i = 0; i < READ_BATCH; i++) {
		uint8_t *dst = lane_reserve(l);
		uint64_t now;
		ssize_t n;

		if (!dst) {
			l->full_waits++;
			return 0;
		}
		n = read(l->in_fd, dst, PKT_MAX);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			fprintf(stderr, "delaywire: read %s: %s\n", l->name, strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if (lane_lose(l, w->loss_ppm)) {
			l->dropped++;
			continue;
		}
		/* Stamped per packet: a batch may span a while under load, and order must hold. */
		now = now_ns();
		if (w->rate_bps) {
			now = lane_serialise(l, w, (uint32_t)n, now);
			if (now == 0)
				continue;
		}
		lane_push(l, (uint32_t)n, now + w->delay_ns);
	}
	return 0;
}

/* Writes every packet that is due. Write errors (device down, not yet moved) drop the packet. */
static void
lane_flush(struct lane *l, uint64_t now)
{
	l->blocked = 0;
	while (l->count) {
		struct pkt *p = &l->q[l->first];
		ssize_t n;

		if (p->due_ns > now)
			return;
		n = write(l->out_fd, l->arena + p->off, p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			l->blocked = 1;
			return;
		}
		if (n < 0) {
			l->write_errors++;
		} else {
			l->forwarded++;
			l->bytes += p->len;
		}
		l->first = (l->first + 1) % l->qcap;
		l->count--;
	}
}

static int
wire_run(struct wire *w)
{
	for (;;) {
		struct pollfd pfd[3];
		struct timespec ts, *tsp = NULL;
		uint64_t now = now_ns(), next = UINT64_MAX;

		for (int i = 0; i < 2; i++) {
			struct lane *l = &w->lane[i];

			lane_flush(l, now);
			if (l->count && !l->blocked && l->q[l->first].due_ns < next)
				next = l->q[l->first].due_ns;
		}
		for (int i = 0; i < 2; i++) {
			/* tun[i] is lane[i]'s input and lane[1 - i]'s output. */
			pfd[i].fd = w->tun[i];
			pfd[i].events = 0;
			pfd[i].revents = 0;
			/* A full lane is not read (or polled: POLLIN would spin until a packet leaves). */
			if (lane_reserve(&w->lane[i]))
				pfd[i].events |= POLLIN;
			if (w->lane[1 - i].blocked)
				pfd[i].events |= POLLOUT;
		}
		pfd[2].fd = w->sigfd;
		pfd[2].events = POLLIN;
		pfd[2].revents = 0;
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;

			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tsp = &ts;
		}
		if (ppoll(pfd, 3, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			perror("delaywire: ppoll");
			return 1;
		}
		if (pfd[2].revents & POLLIN)
			return 0;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].revents & (POLLERR | POLLNVAL)) {
				fprintf(stderr, "delaywire: device %d failed\n", i);
				return 1;
			}
			if ((pfd[i].revents & POLLIN) && lane_read(&w->lane[i], w) < 0)
				return 1;
		}
	}
}

static int
parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: delaywire [--delay-ms N] [--loss-ppm N] [--rate-mbit N] "
	    "[--queue-kb N] [--limit-pkts N] [--limit-mb N] TUN_A TUN_B\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct wire w;
	unsigned long delay_ms = 25, limit_pkts = 65536, limit_mb = 32, loss_ppm = 0;
	unsigned long rate_mbit = 0, queue_kb = 0;
	const char *names[2];
	sigset_t sigs;
	int i, rc;

	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		unsigned long *dst;

		if (strcmp(argv[i], "--delay-ms") == 0)
			dst = &delay_ms;
		else if (strcmp(argv[i], "--limit-pkts") == 0)
			dst = &limit_pkts;
		else if (strcmp(argv[i], "--limit-mb") == 0)
			dst = &limit_mb;
		else if (strcmp(argv[i], "--loss-ppm") == 0)
			dst = &loss_ppm;
		else if (strcmp(argv[i], "--rate-mbit") == 0)
			dst = &rate_mbit;
		else if (strcmp(argv[i], "--queue-kb") == 0)
			dst = &queue_kb;
		else
			return usage();
		if (parse_num(argv[i + 1], dst == &delay_ms || dst == &loss_ppm ||
		    dst == &rate_mbit || dst == &queue_kb ? 0 : 1,
		    dst == &loss_ppm ? 1000000u : 1u << 20, dst) < 0)
			return usage();
	}
	if (argc - i != 2)
		return usage();
	names[0] = argv[i];
	names[1] = argv[i + 1];
	if (limit_mb * 1024 * 1024 < 2 * PKT_MAX) {
		fprintf(stderr, "delaywire: --limit-mb too small\n");
		return 2;
	}

	memset(&w, 0, sizeof(w));
	w.delay_ns = (uint64_t)delay_ms * 1000000u;
	w.loss_ppm = (uint32_t)loss_ppm;
	w.rate_bps = (uint64_t)rate_mbit * 1000000u;
	/* 100 ms at the rate unless told; at least one largest packet, or nothing would pass. */
	w.queue_bytes = queue_kb ? (uint64_t)queue_kb * 1024u : w.rate_bps / 80u;
	if (w.queue_bytes < PKT_MAX)
		w.queue_bytes = PKT_MAX;
	/* Signals arrive as a readable fd, so the loop needs no global flag. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	w.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w.sigfd < 0) {
		perror("delaywire: signalfd");
		return 1;
	}
	/* The default 50 us timer slack would be noise on top of the delay; ask for 1 us. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	w.tun[0] = tun_open(names[0]);
	w.tun[1] = w.tun[0] < 0 ? -1 : tun_open(names[1]);
	if (w.tun[0] < 0 || w.tun[1] < 0)
		return 1;
	if (lane_init(&w.lane[0], "a>b", w.tun[0], w.tun[1], (uint32_t)limit_pkts,
	    (size_t)limit_mb * 1024 * 1024) < 0 ||
	    lane_init(&w.lane[1], "b>a", w.tun[1], w.tun[0], (uint32_t)limit_pkts,
	    (size_t)limit_mb * 1024 * 1024) < 0) {
		fprintf(stderr, "delaywire: out of memory\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	rc = wire_run(&w);
	for (i = 0; i < 2; i++) {
		struct lane *l = &w.lane[i];

		fprintf(stderr, "delaywire: lane=%s forwarded=%llu bytes=%llu write_errors=%llu "
		    "full_waits=%llu max_queued=%llu dropped=%llu queue_dropped=%llu\n", l->name,
		    (unsigned long long)l->forwarded, (unsigned long long)l->bytes,
		    (unsigned long long)l->write_errors, (unsigned long long)l->full_waits,
		    (unsigned long long)l->max_count, (unsigned long long)l->dropped,
		    (unsigned long long)l->qdropped);
		lane_free(l);
	}
	close(w.tun[0]);
	close(w.tun[1]);
	close(w.sigfd);
	return rc;
}
