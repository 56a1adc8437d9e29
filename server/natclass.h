/*
 * natclass: turns what one NAT classification observed into a struct msg_nat_info, by the
 * rules of docs/PROTOCOL.md 3.1. Pure: no I/O, no clock, no state; the caller (natprobe.c)
 * decides when the evidence is complete enough to call it.
 */
#ifndef SHOAL_SERVER_NATCLASS_H
#define SHOAL_SERVER_NATCLASS_H

#include <stdint.h>

#include "mproto/msg.h"

struct natclass_in {
	uint8_t n_targets;                      /* the plan's targets, in plan order */
	struct endpoint targets[NAT_MAX_TARGETS];
	uint8_t observed;                       /* bit i: obs[i] holds o[i] */
	struct endpoint obs[NAT_MAX_TARGETS];   /* source endpoint of the node's probes to i */
	uint16_t local_port;                    /* the node's peer UDP socket port */
	uint8_t tests_sent;                     /* bit k-1: UDP_NAT_TEST kind k (1, 2) was sent */
	uint8_t lifetime_due;                   /* bit s: kind-3 seq s was sent long enough ago
	                                         * that a report without it means it was lost */
	int have_report;                        /* report holds the node's latest NAT_REPORT */
	struct msg_nat_report report;
};

/*
 * Fills out. Call it only when nothing observed means "blocked", i.e. at least 3 s into
 * phase 2, or once something was observed. Beyond the rules of 3.1:
 *   - mapping needs two observed targets, and adm needs two observed targets that share a
 *     server address (otherwise adm cannot be told from apdm): else `unknown`;
 *   - filtering and lifetime need a report; a test kind that was never sent proves nothing
 *     (no kind 1 sent and kind 2 not seen: `unknown`);
 *   - with udp blocked every other field is unknown (0).
 */
void natclass_classify(const struct natclass_in *in, struct msg_nat_info *out);

/* The idle gap before kind-3 test seq (0..NAT_LIFETIME_STEPS-1), in seconds: 3, 6, 12, 24,
 * 48; 0 for any other seq. */
uint16_t natclass_gap_s(unsigned seq);

#endif
