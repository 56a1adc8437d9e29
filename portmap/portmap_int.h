/*
 * portmap_int: what the files of portmap/ share. The gateway protocols (natpmp.c, upnp.c)
 * are blocking calls run on the worker thread of portmap.c; they touch nothing but their
 * arguments (no logging, no loop), so the thread shares no state with the loop.
 */
#ifndef SHOAL_PORTMAP_INT_H
#define SHOAL_PORTMAP_INT_H

#include "portmap/portmap.h"

/* What one exchange with the gateway gave. */
struct pm_result {
	int ok;
	enum portmap_proto proto;
	struct endpoint ext;            /* ok: the public endpoint */
	uint32_t lifetime;              /* ok: seconds granted; 0: permanent (UPnP) */
	char error[PORTMAP_ERR_LEN];    /* !ok: why, for `shoal status` */
};

/* natpmp.c: map UDP port -> the public port want_ext (0: any), for lifetime seconds (0:
 * delete the mapping), at gateway gw (0: the default route's). Gives up after about 1.5 s
 * without an answer. 0 or -1 (r->error). */
int pm_natpmp_map(uint32_t gw, uint16_t port, uint16_t want_ext, uint32_t lifetime,
    struct pm_result *r);

/* upnp.c: the IGD found by discovery, kept between exchanges (its control URL). */
struct pm_upnp;
/* Discovers the IGD if *igd is NULL (about 2 s), then adds the mapping (want_ext first, a
 * few other ports if that one is taken). 0 or -1 (r->error); *igd may be set either way. */
int pm_upnp_map(struct pm_upnp **igd, uint16_t port, uint16_t want_ext, uint32_t lifetime,
    struct pm_result *r);
void pm_upnp_unmap(struct pm_upnp *igd, uint16_t ext_port);
void pm_upnp_free(struct pm_upnp *igd);

#endif
