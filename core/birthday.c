/*
 * birthday: K UDP sockets, each a transport link. While the attempt runs every socket sends
 * with a plain sendto (one small datagram per socket per round: nothing to batch); the winner
 * gets a udpbatch (base/udpbatch.h) because it then carries the peer's data, and every socket
 * reads with recvmmsg into one receive batch shared by the set (callbacks never overlap).
 *
 * Descriptor budget: the soft RLIMIT_NOFILE minus the descriptors open now (counted in
 * /proc/self/fd) minus a reserve; 256 sockets are a lot for a default limit of 1024, and the
 * daemon must still accept control connections while an attempt runs.
 *
 * Freeing from inside a receive: the peer layer may end the attempt (or drop the peer) while
 * one of our sockets delivers a datagram. The sockets then close at once, but the memory (the
 * receive buffer being read) is released when the read callback unwinds.
 * Owns: the sockets, links, watchers, buffers. Must not: interpret packets.
 */
#include "config.h"
#include "core/birthday.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "base/log.h"
#include "base/udpbatch.h"
#include "core/transport.h"

enum {
	BDAY_RX_BATCH = 16,             /* datagrams per recvmmsg */
	BDAY_RX_ROUNDS = 8,             /* recvmmsg calls per wakeup, for fairness */
	BDAY_TX_SLOTS = 256,            /* the winner's send ring (~380 KiB) */
};

struct bday_sock {
	struct bday *b;
	int fd;                         /* -1: closed */
	uint16_t via;
	uint16_t port;
	ev_io rio;
};

/* Owned by whoever called bday_new (the peer layer: one per attempt). */
struct bday {
	struct ev_loop *loop;
	struct transport *tp;
	struct bday_sock *s;
	unsigned n;                     /* entries in s */
	unsigned open;                  /* of them open */
	uint16_t winner;
	struct udpbatch *tx;            /* the winner's */
	int busy;                       /* inside a read callback */
	int dead;                       /* bday_free ran meanwhile: free when it unwinds */
	uint8_t rx_buf[BDAY_RX_BATCH][UDP_MAX_PAYLOAD];
	struct iovec rx_iov[BDAY_RX_BATCH];
	struct sockaddr_in rx_addr[BDAY_RX_BATCH];
	struct mmsghdr rx_msg[BDAY_RX_BATCH];
	uint64_t rx_packets, tx_packets, tx_failed;
};

static const struct udpbatch_conf bday_batch_conf = {
	.slots = BDAY_TX_SLOTS,
	.slot_size = UDP_MAX_PAYLOAD,
	/* Fed from the peer layer, like the transport, which the netstack's prepare watcher
	 * feeds: without it a burst would wait one loop pass. */
	.persistent = 1,
	.name = "bday",
	.on_drop = NULL,
};

/* Descriptors we may still open, keeping `reserve` free; 0 when none. */
static unsigned
fd_room(unsigned reserve)
{
	struct rlimit rl;
	struct dirent *de;
	unsigned long used = 0, lim;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	lim = rl.rlim_cur == RLIM_INFINITY ? 1UL << 20 : (unsigned long)rl.rlim_cur;
	if ((d = opendir("/proc/self/fd")) == NULL)
		return 0;               /* cannot tell: do not risk the reserve */
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			used++;
	closedir(d);
	if (used + reserve >= lim)
		return 0;
	return lim - used - reserve > 65535 ? 65535 : (unsigned)(lim - used - reserve);
}

static void
sock_close(struct bday *b, struct bday_sock *s)
{
	if (s->fd < 0)
		return;
	ev_io_stop(b->loop, &s->rio);
	transport_link_del(b->tp, s->via);
	close(s->fd);
	s->fd = -1;
	b->open--;
}

static void
bday_release(struct bday *b)
{
	free(b->s);
	free(b);
}

static int
link_send(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct bday_sock *s = arg;
	struct bday *b = s->b;
	struct sockaddr_in sin;

	/* The set's sockets are IPv4: birthday punching is for IPv4 NATs only. */
	if (s->fd < 0 || ep_is_v6(to))
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(to->addr);
	sin.sin_port = htons(to->port);
	if (b->tx != NULL && s->via == b->winner) {
		if (udpbatch_add(b->tx, (const struct sockaddr *)&sin, sizeof(sin), pkt, len) != 0)
			return -1;
		b->tx_packets++;
		return 0;
	}
	if (sendto(s->fd, pkt, len, MSG_DONTWAIT, (const struct sockaddr *)&sin,
	    sizeof(sin)) < 0) {
		b->tx_failed++;
		return -1;
	}
	b->tx_packets++;
	return 0;
}

static const struct transport_link_ops bday_link_ops = { .send = link_send, .kind = "udp" };

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bday_sock *s = w->data;
	struct bday *b = s->b;
	int round, i, n;

	(void)loop;
	(void)revents;
	b->busy = 1;
	for (round = 0; round < BDAY_RX_ROUNDS && !b->dead && s->fd >= 0; round++) {
		for (i = 0; i < BDAY_RX_BATCH; i++) {
			b->rx_msg[i].msg_hdr.msg_namelen = sizeof(b->rx_addr[i]);
			b->rx_msg[i].msg_hdr.msg_flags = 0;
			b->rx_msg[i].msg_len = 0;
		}
		n = recvmmsg(s->fd, b->rx_msg, BDAY_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n && !b->dead && s->fd >= 0; i++) {
			const struct sockaddr_in *sin = &b->rx_addr[i];

			if ((b->rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC) ||
			    b->rx_msg[i].msg_hdr.msg_namelen < sizeof(*sin) ||
			    sin->sin_family != AF_INET || b->rx_msg[i].msg_len == 0)
				continue;
			b->rx_packets++;
			/* May end the attempt (bday_keep) or free the whole set. */
			transport_link_input(b->tp, s->via, ntohl(sin->sin_addr.s_addr),
			    ntohs(sin->sin_port), b->rx_buf[i], b->rx_msg[i].msg_len);
		}
		if (n < BDAY_RX_BATCH)
			break;
	}
	b->busy = 0;
	if (b->dead)
		bday_release(b);
}

static int
sock_open(struct bday *b, struct bday_sock *s)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	s->b = b;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&sin, &sl) != 0 ||
	    (s->via = transport_link_add(b->tp, &bday_link_ops, s)) == 0) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->port = ntohs(sin.sin_port);
	ev_io_init(&s->rio, read_cb, s->fd, EV_READ);
	s->rio.data = s;
	ev_io_start(b->loop, &s->rio);
	b->open++;
	return 0;
}

struct bday *
bday_new(struct ev_loop *loop, struct transport *tp, unsigned want, unsigned reserve)
{
	struct bday *b;
	unsigned room = fd_room(reserve), i;

	if (want > BIRTHDAY_SOCKETS_MAX)
		want = BIRTHDAY_SOCKETS_MAX;
	if (want > room)
		want = room;
	if (want == 0) {
		log_warnx("event=bday_no_sockets reason=descriptors reserve=%u", reserve);
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL || (b->s = calloc(want, sizeof(*b->s))) == NULL) {
		free(b);
		log_warn("event=bday_alloc_failed");
		return NULL;
	}
	b->loop = loop;
	b->tp = tp;
	for (i = 0; i < BDAY_RX_BATCH; i++) {
		b->rx_iov[i].iov_base = b->rx_buf[i];
		b->rx_iov[i].iov_len = sizeof(b->rx_buf[i]);
		b->rx_msg[i].msg_hdr.msg_name = &b->rx_addr[i];
		b->rx_msg[i].msg_hdr.msg_iov = &b->rx_iov[i];
		b->rx_msg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < want; i++) {
		if (sock_open(b, &b->s[b->n]) != 0) {
			log_warn("event=bday_socket_failed opened=%u", b->n);
			break;
		}
		b->n++;
	}
	if (b->n == 0) {
		bday_release(b);
		return NULL;
	}
	log_debug("event=bday_open sockets=%u room=%u", b->n, room);
	return b;
}

void
bday_free(struct bday *b)
{
	unsigned i;

	if (b == NULL || b->dead)
		return;
	if (b->tx != NULL) {
		udpbatch_free(b->tx);   /* sends what is queued, before its socket closes */
		b->tx = NULL;
	}
	for (i = 0; i < b->n; i++)
		sock_close(b, &b->s[i]);
	if (b->busy) {
		b->dead = 1;
		return;
	}
	bday_release(b);
}

unsigned
bday_count(const struct bday *b)
{
	return b ? b->open : 0;
}

unsigned
bday_send_all(struct bday *b, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	struct endpoint ep = *to;
	unsigned i, sent = 0;

	for (i = 0; i < b->n; i++) {
		if (b->s[i].fd < 0)
			continue;
		ep.via = b->s[i].via;
		if (link_send(&b->s[i], &ep, pkt, len) == 0)
			sent++;
	}
	return sent;
}

static struct bday_sock *
find(const struct bday *b, uint16_t via)
{
	unsigned i;

	if (b == NULL || via == 0)
		return NULL;
	for (i = 0; i < b->n; i++)
		if (b->s[i].fd >= 0 && b->s[i].via == via)
			return &b->s[i];
	return NULL;
}

int
bday_owns(const struct bday *b, uint16_t via)
{
	return find(b, via) != NULL;
}

void
bday_keep(struct bday *b, uint16_t via)
{
	struct bday_sock *w = find(b, via);
	unsigned i;

	if (w == NULL || b->winner == via)
		return;
	for (i = 0; i < b->n; i++)
		if (&b->s[i] != w)
			sock_close(b, &b->s[i]);
	b->winner = via;
	/* It carries the peer's data from now on: batched like the main socket. */
	if (b->tx == NULL)
		b->tx = udpbatch_new(b->loop, w->fd, &bday_batch_conf, b);
	log_info("event=bday_won via=%u port=%u", (unsigned)via, (unsigned)w->port);
}

uint16_t
bday_winner(const struct bday *b)
{
	return b ? b->winner : 0;
}

uint16_t
bday_port(const struct bday *b, uint16_t via)
{
	const struct bday_sock *s = find(b, via);

	return s ? s->port : 0;
}
