/*
 * ctrldial: how a client reaches the mediator's control port, shared by the daemon's mediator
 * client (medclient/conn.c) and shoal-relay's registration (relay/register.c): resolving the
 * connection string's host, starting the non-blocking connect, and the retry backoff. The
 * channel itself is mproto/ctrlchan.c.
 */
#ifndef SHOAL_CTRLDIAL_H
#define SHOAL_CTRLDIAL_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

/* host (IPv4 literal or name) and port to an endpoint; resolved on every call, so a changed
 * DNS record is followed (getaddrinfo blocks: hosts are usually literals or cached). 0, or -1
 * with a reason in err. */
int ctrldial_resolve(const char *host, uint16_t port, struct endpoint *out, char *err,
    size_t errlen);
/* Starts connecting fd (a non-blocking TCP socket) to `to`. 0 (connected or in progress), or
 * -1 with a reason in err. */
int ctrldial_connect(int fd, const struct endpoint *to, char *err, size_t errlen);
/*
 * Reconnect policy shared by shoald, shoal-relay and the load generator (so the load test
 * measures the real thing). A client starts at CTRLDIAL_BACKOFF_MIN after losing a working
 * connection and the backoff doubles per failed attempt up to CTRLDIAL_BACKOFF_MAX; the
 * numbers are explained in ctrldial.c.
 */
#define CTRLDIAL_BACKOFF_MIN 1.0        /* s */
#define CTRLDIAL_BACKOFF_MAX 30.0       /* s */

/* The delay before the next attempt: uniform in [0.1, 1) of *backoff, drawn afresh every time
 * (clients that lost the same server do not return in lockstep); *backoff then doubles, up to
 * max. */
double ctrldial_backoff(double *backoff, double max);

#endif
