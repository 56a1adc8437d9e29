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

double
ctrldial_backoff(double *backoff, double max)
{
	double delay = *backoff * (0.5 + randombytes_uniform(500) / 1000.0);

	*backoff *= 2;
	if (*backoff > max)
		*backoff = max;
	return delay;
}
