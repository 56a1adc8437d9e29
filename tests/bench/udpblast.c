/*
 * udpblast: 64-byte UDP packet-rate benchmark helper (no timed assertions: it prints numbers).
 *   udpblast sink PORT SECONDS        count datagrams on 127.0.0.1:PORT; print "received N"
 *   udpblast send HOST PORT SECONDS [SOCKSPORT]
 *        send 64-byte datagrams as fast as possible for SECONDS, directly or, with SOCKSPORT,
 *        through that SOCKS5 server's UDP ASSOCIATE; print "sent N"
 * Uses sendmmsg/recvmmsg like the daemon, so the reference run is not handicapped.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, PAYLOAD = 64 };

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Opens a UDP ASSOCIATE; returns the TCP control fd and fills relay with the UDP relay. */
static int
socks_associate(int socks_port, struct sockaddr_in *relay)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)socks_port) };
	unsigned char req[10] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 }, rep[10];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (write(fd, "\x05\x01\x00", 3) != 3 || read_full(fd, rep, 2) || rep[1] != 0)
		return -1;
	if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req) || read_full(fd, rep, 10) || rep[1] != 0 ||
	    rep[3] != 1)
		return -1;
	memset(relay, 0, sizeof(*relay));
	relay->sin_family = AF_INET;
	memcpy(&relay->sin_addr, rep + 4, 4);
	memcpy(&relay->sin_port, rep + 8, 2);
	return fd;
}

static int
do_sink(int port, double secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static unsigned char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	unsigned long long n = 0;
	double end;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rcv = 8 << 20;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("udpblast: bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* The clock starts at the first packet so start-up does not count. */
	end = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r;

		if (poll(&p, 1, 1000) <= 0 && n)
			break;
		r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (r > 0) {
			if (!n)
				end = now_s() + secs;
			n += (unsigned)r;
		}
		if (n && now_s() > end)
			break;
	}
	printf("received %llu\n", n);
	return 0;
}

static int
do_send(const char *host, int port, double secs, int socks_port)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	unsigned char pkt[10 + PAYLOAD];
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	unsigned long long n = 0;
	size_t off = 0;
	double end;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ctl = -1;

	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fprintf(stderr, "udpblast: bad host %s\n", host);
		return 2;
	}
	memset(pkt, 'x', sizeof(pkt));
	if (socks_port) {
		struct sockaddr_in relay;

		ctl = socks_associate(socks_port, &relay);
		if (ctl < 0) {
			fprintf(stderr, "udpblast: UDP ASSOCIATE failed\n");
			return 1;
		}
		pkt[0] = pkt[1] = pkt[2] = 0;
		pkt[3] = 1;
		memcpy(pkt + 4, &dst.sin_addr, 4);
		memcpy(pkt + 8, &dst.sin_port, 2);
		off = 10;
		dst = relay;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		perror("udpblast: connect");
		return 1;
	}
	iov.iov_base = pkt;
	iov.iov_len = off + PAYLOAD;
	for (int i = 0; i < BATCH; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now_s() + secs;
	while (now_s() < end) {
		int r = sendmmsg(fd, msgs, BATCH, 0);
		if (r > 0)
			n += (unsigned)r;
	}
	printf("sent %llu\n", n);
	if (ctl >= 0)
		close(ctl);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "sink") == 0)
		return do_sink(atoi(argv[2]), atof(argv[3]));
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], atoi(argv[3]), atof(argv[4]), argc == 6 ? atoi(argv[5]) : 0);
	fprintf(stderr, "usage: udpblast sink PORT SECONDS | send HOST PORT SECONDS [SOCKSPORT]\n");
	return 2;
}
