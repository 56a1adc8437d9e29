/*
 * punchplan: for one pair of nodes that may talk, the hole-punching strategy of
 * docs/PROTOCOL.md 3.2 and the two MSG_PUNCH bodies (one per side): where each side sends its
 * handshake initiations and when it starts. Pure: no I/O, no clock, no state; the caller
 * (mediator.c) decides when a pair is planned (punch.c rate-limits and serialises).
 */
#ifndef SHOAL_SERVER_PUNCHPLAN_H
#define SHOAL_SERVER_PUNCHPLAN_H

#include <stdint.h>

#include "mproto/msg.h"

enum {
	PUNCH_INTERVAL_MS = 200,        /* between rounds */
	PUNCH_ROUNDS = 5,
	PUNCH_LEAD_MS = 100,            /* the common start is this long after the slower arrival */
	PUNCH_START_MAX_MS = 5000,      /* start_ms never exceeds this (the codec's bound) */
	PUNCH_PREDICT_PORTS = 8,        /* predicted ports past the highest seen */
	PUNCH_PREDICT_BEHIND = 7,       /* and below it (a mapping made before it was seen) */
	/* Birthday (random-port side vs an EIM side with APDF): sockets x probes over the
	 * 64512 ports of 1024..65535 make ~8 expected hits, a miss ~3 in 10000 attempts. */
	BIRTHDAY_SOCKETS = 256,         /* the random side's extra sockets */
	BIRTHDAY_PROBES = 2048,         /* the other side's probes ... */
	BIRTHDAY_RATE = 1000,           /* ... per second: ~2 s of probing */
	BIRTHDAY_ROUNDS = 4,            /* from every socket, 1 s apart: spans the probing */
	BIRTHDAY_INTERVAL_MS = 1000,
	/* The probes start this long after the sockets' first round, so the mappings they aim
	 * at exist when they arrive (start times already allow for each side's delay). */
	BIRTHDAY_PROBE_LAG_MS = 200,
	/* TCP: a connect stays in SYN_SENT while the peer's SYN is on its way, so rounds are only
	 * for connects that failed (a RST from a host without NAT that had not sent yet). */
	PUNCH_TCP_INTERVAL_MS = 500,
	PUNCH_TCP_ROUNDS = 10,
};

/* What the server knows of one side. */
struct punch_side {
	uint8_t key[KEY_LEN];
	int has_info;                   /* info holds the node's latest NAT_INFO */
	struct msg_nat_info info;
	struct endpoint observed;       /* its public endpoint as the server sees it; addr 0: none */
	uint8_t n_cand;                 /* the MEMBER endpoints: observed first, then local ones */
	struct endpoint cand[MAX_ENDPOINTS];
	uint8_t n_mapped;               /* its gateway's port mappings (CANDIDATES, 3.4) */
	struct endpoint mapped[CAND_MAX_MAPPED];
	uint16_t max_port;              /* highest port observed from its public address; 0: none */
	uint16_t delay_ms;              /* one-way delay to the server; 0: unknown */
	/* Its control connection's source as the server sees it: its public TCP endpoint for
	 * the local port it punches from (PROTOCOL.md 3.3); addr 0: unknown. */
	struct endpoint tcp;
};

/* How one side's NAT is treated by the strategy table. */
enum punch_class {
	PUNCH_CLASS_UNKNOWN = 0,        /* no NAT_INFO, or not enough of it to decide */
	PUNCH_CLASS_EASY,               /* EIM mapping (any filtering), which includes no NAT,
					 * or a port mapping from its gateway (any NAT) */
	PUNCH_CLASS_SEQ,                /* ADM / APDM with sequential ports (step known) */
	PUNCH_CLASS_RANDOM,             /* ADM / APDM with random ports */
	PUNCH_CLASS_BLOCKED,            /* UDP does not get out */
};

enum punch_class punchplan_class(const struct punch_side *s);

/*
 * Fills to_a (sent to a: peer = b, targets on b's side) and to_b. Strategy by 3.2's table;
 * beyond it: a blocked side gets `tcp` (3.3) with any peer but a random-port one, `none`
 * when either side's TCP endpoint is unknown; an unknown side gets `simultaneous`
 * to the observed endpoints (what daemons did before PUNCH existed), and so does random vs an
 * easy side whose filtering is unknown; random vs an easy side with APDF is `birthday` (the
 * random side gets BIRTHDAY_SOCKETS, the other BIRTHDAY_PROBES at BIRTHDAY_RATE over
 * BIRTHDAY_PORT_MIN..65535, starting BIRTHDAY_PROBE_LAG_MS later; both aim at the other's
 * observed endpoint); a side without an observed endpoint (outside `lan`)
 * leaves nothing to aim at: `none`. Timing: T = PUNCH_LEAD_MS + max(delays); start_ms of a
 * side = T - its delay, at most PUNCH_START_MAX_MS; `none` has start, interval, rounds 0.
 */
void punchplan(const struct punch_side *a, const struct punch_side *b, struct msg_punch *to_a,
    struct msg_punch *to_b);

#endif
