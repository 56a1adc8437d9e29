/*
 * upnp: UPnP-IGD through miniupnpc: SSDP discovery of the gateway (kept for later renewals
 * and the removal), its external address, AddPortMapping / DeletePortMapping for UDP.
 * Runs on portmap.c's worker thread (or at shutdown): blocking, bounded by miniupnpc's own
 * timeouts (discovery 2 s, HTTP a few seconds).
 * Must not: log, or touch anything but its arguments.
 */
#include "config.h"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portmap/portmap_int.h"

#define UPNP_DISCOVER_MS 2000
#define UPNP_DESC "shoal"
#define UPNP_ERR_CONFLICT 718           /* ConflictInMappingEntry: the port is someone's */
#define UPNP_ERR_PERMANENT_ONLY 725     /* OnlyPermanentLeasesSupported */
#define UPNP_PORT_TRIES 4               /* want_ext, then a few other ports */

struct pm_upnp {
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lan[64];                   /* our address as the gateway sees us */
};

static struct pm_upnp *
discover(struct pm_result *r)
{
	struct UPNPDev *devs;
	struct pm_upnp *g;
	int err = 0, found;

	devs = upnpDiscover(UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
	if (devs == NULL) {
		snprintf(r->error, sizeof(r->error), "no gateway (no UPnP-IGD or NAT-PMP answer)");
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		freeUPNPDevlist(devs);
		snprintf(r->error, sizeof(r->error), "out of memory");
		return NULL;
	}
#if MINIUPNPC_API_VERSION >= 18
	found = UPNP_GetValidIGD(devs, &g->urls, &g->data, g->lan, sizeof(g->lan), NULL, 0);
#else
	found = UPNP_GetValidIGD(devs, &g->urls, &g->data, g->lan, sizeof(g->lan));
#endif
	freeUPNPDevlist(devs);
	/* 1: a connected IGD. 2: miniupnpc found it not connected, or (2.2+) connected with an
	 * external address it deems reserved, which portmap.c judges itself: only private ones
	 * (double NAT) are useless. 3 is no IGD. */
	if (found != 1 && found != 2) {
		if (found != 0)
			FreeUPNPUrls(&g->urls);
		free(g);
		snprintf(r->error, sizeof(r->error), "no UPnP-IGD among the UPnP devices");
		return NULL;
	}
	return g;
}

/* The port to ask for on try k: the wanted one, then others from a fixed spread (a game
 * console may hold ours), all above the well-known range. */
static uint16_t
try_port(uint16_t want, unsigned k)
{
	uint32_t p = want ? want : 40000;

	if (k == 0)
		return (uint16_t)p;
	p = 1024 + (p - 1024 + k * 7919u) % (65535 - 1024);
	return (uint16_t)p;
}

int
pm_upnp_map(struct pm_upnp **igd, uint16_t port, uint16_t want_ext, uint32_t lifetime,
    struct pm_result *r)
{
	struct pm_upnp *g;
	char ext_ip[40], eport[8], iport[8], lease[16];
	struct in_addr a;
	unsigned k;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->proto = PORTMAP_PROTO_UPNP;
	if (*igd == NULL && (*igd = discover(r)) == NULL)
		return -1;
	g = *igd;
	ext_ip[0] = '\0';
	rc = UPNP_GetExternalIPAddress(g->urls.controlURL, g->data.first.servicetype, ext_ip);
	if (rc != UPNPCOMMAND_SUCCESS || inet_pton(AF_INET, ext_ip, &a) != 1 ||
	    a.s_addr == 0) {
		snprintf(r->error, sizeof(r->error), "UPnP gateway has no external address");
		return -1;
	}
	snprintf(iport, sizeof(iport), "%u", (unsigned)port);
	snprintf(lease, sizeof(lease), "%u", (unsigned)lifetime);
	for (k = 0; k < UPNP_PORT_TRIES; k++) {
		snprintf(eport, sizeof(eport), "%u", (unsigned)try_port(want_ext, k));
		rc = UPNP_AddPortMapping(g->urls.controlURL, g->data.first.servicetype, eport,
		    iport, g->lan, UPNP_DESC, "UDP", NULL, lease);
		if (rc == UPNP_ERR_PERMANENT_ONLY) {
			/* Old IGDv1 boxes: a permanent one, which portmap_free removes. */
			snprintf(lease, sizeof(lease), "0");
			rc = UPNP_AddPortMapping(g->urls.controlURL, g->data.first.servicetype,
			    eport, iport, g->lan, UPNP_DESC, "UDP", NULL, lease);
		}
		if (rc != UPNP_ERR_CONFLICT)
			break;
	}
	if (rc != UPNPCOMMAND_SUCCESS) {
		snprintf(r->error, sizeof(r->error), "UPnP AddPortMapping: %d %s", rc,
		    strupnperror(rc) ? strupnperror(rc) : "");
		/* A gateway that went away answers nothing: discover afresh next time. */
		if (rc < 0) {
			pm_upnp_free(g);
			*igd = NULL;
		}
		return -1;
	}
	r->ok = 1;
	r->ext.addr = ntohl(a.s_addr);
	r->ext.port = (uint16_t)atoi(eport);
	r->lifetime = (uint32_t)strtoul(lease, NULL, 10);
	return 0;
}

void
pm_upnp_unmap(struct pm_upnp *g, uint16_t ext_port)
{
	char eport[8];

	if (g == NULL)
		return;
	snprintf(eport, sizeof(eport), "%u", (unsigned)ext_port);
	(void)UPNP_DeletePortMapping(g->urls.controlURL, g->data.first.servicetype, eport, "UDP",
	    NULL);
}

void
pm_upnp_free(struct pm_upnp *g)
{
	if (g == NULL)
		return;
	FreeUPNPUrls(&g->urls);
	free(g);
}
