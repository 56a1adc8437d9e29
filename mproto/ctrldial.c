/*
 * ctrldial: see ctrldial.h.
 */
#include "config.h"
#include "mproto/ctrldial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int
ctrldial_resolve(const char *host, uint16_t port, struct endpoint *out, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char ps[8];
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", port);
	if ((e = getaddrinfo(host, ps, &hints, &res)) != 0 || res == NULL) {
		snprintf(err, errlen, "%s", e ? gai_strerror(e) : "no address");
		if (res)
			freeaddrinfo(res);
		return -1;
	}
	out->addr = ntohl(((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr.s_addr);
	out->port = port;
	out->via = 0;
	freeaddrinfo(res);
	return 0;
}

int
ctrldial_connect(int fd, const struct endpoint *to, char *err, size_t errlen)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(to->addr);
	sin.sin_port = htons(to->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Sized for one mediator with 100,000 daemons, all of which lose it at the same instant (a
 * restart, or the instance they were on dies):
 * - First attempt within [0.1, 1) s: a single daemon (failover to another instance, a brief
 *   network blip) is back in well under a second, while the whole population is spread over
 *   0.9 s instead of arriving in one burst. What the server cannot take in that second
 *   waits in SYN retransmission (bounded by ctrlchan's 10 s connect timeout) or, once
 *   connected, in the server's queue of handshakes (up to 30 s), and then backs off.
 * - Doubling: 1, 2, 4, 8, 16, 30 s; after ~30 s of failures every client is at the cap.
 * - Cap 30 s with the delay spread over [3, 30) s: a mediator that was down for long sees the
 *   whole population return spread over 27 s (3,700 a second for 100,000 nodes; the Noise
 *   handshake alone is a small part of that on one core), and a daemon is back at most 30 s
 *   after the mediator is if the mediator keeps up (the target is 60 s), while a dead
 *   mediator costs each daemon one SYN per 16.5 s on average. When it does not keep up, the
 *   handshakes that wait past ctrlchan's 30 s time out and back off again: the measured storms
 *   (make loadtest, README "Scale") are limited by the mediator's cost per reconnect, not by
 *   this policy (at 19,000 nodes 1.2 dials per node).
 * - Full jitter rather than the old [0.5, 1): the draw is independent each time, so clients
 *   that failed together do not stay together, and the width of the window (0.9 instead of
 *   0.5 of the backoff) nearly halves the peak arrival rate at the cap.
 */
double
ctrldial_backoff(double *backoff, double max)
{
	double delay = *backoff * (0.1 + randombytes_uniform(900) / 1000.0);

	*backoff *= 2;
	if (*backoff > max)
		*backoff = max;
	return delay;
}
