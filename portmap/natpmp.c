/*
 * natpmp: one NAT-PMP (RFC 6886) exchange with the default gateway through libnatpmp: its
 * public address, then the UDP mapping (or its deletion). Runs on portmap.c's worker thread:
 * blocking, but bounded by our own deadline rather than libnatpmp's retry schedule, which
 * would wait 64 s for a gateway that never answers.
 * Must not: log, or touch anything but its arguments.
 */
#include "config.h"

#include <arpa/inet.h>
#include <natpmp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "portmap/portmap_int.h"

#define NATPMP_WAIT_MS 1500     /* per request: libnatpmp resends at 250 and 750 ms */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The answer to the request just sent, or an error (NATPMP_TRYAGAIN: no answer in time). */
static int
wait_answer(natpmp_t *n, natpmpresp_t *resp)
{
	long long deadline = now_ms() + NATPMP_WAIT_MS, left, ms;
	struct timeval tv;
	struct pollfd pfd;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return NATPMP_TRYAGAIN;
		ms = left;
		if (getnatpmprequesttimeout(n, &tv) == 0) {
			long long t = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;

			if (t >= 0 && t < ms)
				ms = t;
		}
		pfd.fd = n->s;
		pfd.events = POLLIN;
		pfd.revents = 0;
		(void)poll(&pfd, 1, (int)ms);
		/* Reads an answer if there is one, else resends when the retry time has come. */
		r = readnatpmpresponseorretry(n, resp);
		if (r != NATPMP_TRYAGAIN)
			return r;
	}
}

static void
fail(struct pm_result *r, const char *what, int code)
{
	r->ok = 0;
	switch (code) {
	case NATPMP_ERR_CANNOTGETGATEWAY:
		snprintf(r->error, sizeof(r->error), "no gateway (no default route)");
		break;
	case NATPMP_TRYAGAIN:
	case NATPMP_ERR_NOGATEWAYSUPPORT:
	case NATPMP_ERR_RECVFROM:       /* ICMP port unreachable: nothing listens */
		snprintf(r->error, sizeof(r->error), "no NAT-PMP gateway");
		break;
	case NATPMP_ERR_NOTAUTHORIZED:
		snprintf(r->error, sizeof(r->error), "NAT-PMP %s: not authorized", what);
		break;
	case NATPMP_ERR_NETWORKFAILURE:
		snprintf(r->error, sizeof(r->error), "NAT-PMP %s: gateway has no public address",
		    what);
		break;
	case NATPMP_ERR_OUTOFRESOURCES:
		snprintf(r->error, sizeof(r->error), "NAT-PMP %s: gateway out of resources", what);
		break;
	default:
		snprintf(r->error, sizeof(r->error), "NAT-PMP %s: error %d", what, code);
		break;
	}
}

int
pm_natpmp_map(uint32_t gw, uint16_t port, uint16_t want_ext, uint32_t lifetime,
    struct pm_result *r)
{
	natpmp_t n;
	natpmpresp_t resp;
	uint32_t pub;
	int rc;

	memset(r, 0, sizeof(*r));
	r->proto = PORTMAP_PROTO_NATPMP;
	if ((rc = initnatpmp(&n, gw != 0, htonl(gw))) < 0) {
		fail(r, "start", rc);
		return -1;
	}
	if ((rc = sendpublicaddressrequest(&n)) < 0 || (rc = wait_answer(&n, &resp)) < 0) {
		fail(r, "public address", rc);
		closenatpmp(&n);
		return -1;
	}
	pub = ntohl(resp.pnu.publicaddress.addr.s_addr);
	if ((rc = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, port, want_ext,
	    lifetime)) < 0 || (rc = wait_answer(&n, &resp)) < 0) {
		fail(r, lifetime ? "mapping" : "unmapping", rc);
		closenatpmp(&n);
		return -1;
	}
	closenatpmp(&n);
	if (lifetime == 0) {
		r->ok = 1;
		return 0;
	}
	if (pub == 0 || resp.pnu.newportmapping.mappedpublicport == 0) {
		r->ok = 0;
		snprintf(r->error, sizeof(r->error), "NAT-PMP gateway gave no public endpoint");
		return -1;
	}
	r->ok = 1;
	r->ext.addr = pub;
	r->ext.port = resp.pnu.newportmapping.mappedpublicport;
	r->lifetime = resp.pnu.newportmapping.lifetime;
	return 0;
}
