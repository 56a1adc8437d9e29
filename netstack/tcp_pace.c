/*
 * tcp_pace: pacing for our lwIP's model-controlled connections. Without it lwIP sends a whole
 * window's worth the moment ACKs open it: after a pause, or when an ACK covers a large stretch,
 * that is a line-rate burst of hundreds of segments, which a bottleneck with a shallow buffer
 * drops. Here each connection has a token bucket filled at the controller's pacing rate
 * (tcpx_cc_pacing_rate: the bandwidth model times a per-phase gain); the patched tcp_output()
 * (netstack/patches/0004-*) sends a data segment only while there are tokens, and otherwise
 * stops and arms a 1 ms lwIP timeout, which the daemon's libev loop runs (netstack/tick.c
 * re-arms its timer from lwIP's next timeout). So a flow leaves in small bursts, one timer tick's
 * worth of its rate each, instead of whole windows at once.
 * Off unless SHOAL_TCP_PACING=1: at a bottleneck with a shallow buffer it more than doubled
 * throughput, but on the loaded bench machine the paced 0.1%-loss paths came out lower (README
 * "Performance"), which a quiet machine has to settle before it is the default.
 * Owns: struct tcpx's pacing fields and the one pacing timeout. Must not touch: lwIP's queues.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "netstack/tcp_ext.h"

#define PACE_TICK_MS 1
/* The bucket holds this long at the rate (or PACE_MIN_SEGS segments). When the loop comes back
 * later than that (busy with other work: encryption, other flows), it holds up to the time that
 * passed, at most PACE_LATE_MS: a late tick sends what it owes instead of forfeiting it, which
 * would make the flow send, then measure and then pace at less than the path carries. */
#define PACE_BURST_MS 2
#define PACE_LATE_MS 10
#define PACE_MIN_SEGS 10

static int pace_chosen, pace_on;
static int tick_pending;        /* the pacing timeout is armed */

void
tcpx_set_pacing(int on)
{
	pace_on = on;
	pace_chosen = 1;
}

int
tcpx_get_pacing(void)
{
	if (!pace_chosen) {
		const char *e = getenv("SHOAL_TCP_PACING");

		pace_chosen = 1;
		pace_on = e != NULL && strcmp(e, "1") == 0;
	}
	return pace_on;
}

/* One tick: every connection that stopped for want of tokens tries again. */
static void
pace_tick(void *arg)
{
	struct tcp_pcb *pcb;

	(void)arg;
	tick_pending = 0;
	for (pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
		if (pcb->x.pace_blocked) {
			pcb->x.pace_blocked = 0;
			tcp_output(pcb);
		}
	}
}

int
tcpx_pace_may_send(struct tcp_pcb *pcb, const struct tcp_seg *seg)
{
	struct tcpx *x = &pcb->x;
	uint32_t rate, now, cap, elapsed, window;

	if (seg->len == 0 || !tcpx_get_pacing() || !tcpx_owns_recovery(pcb))
		return 1;
	rate = tcpx_cc_pacing_rate(pcb);
	if (rate == 0)
		return 1;
	now = sys_now();
	/* A new flow, or one back from idle, starts with a full bucket. */
	elapsed = x->pace_ms == 0 ? 1000u : now - x->pace_ms;
	if (elapsed > 1000u)
		elapsed = 1000u;
	/* A flow that was waiting for a tick is owed the whole time it waited, up to PACE_LATE_MS. */
	window = PACE_BURST_MS;
	if (x->pace_owed && elapsed > window)
		window = elapsed < PACE_LATE_MS ? elapsed : PACE_LATE_MS;
	cap = rate / 1000u * window;
	if (cap < (uint32_t)PACE_MIN_SEGS * pcb->mss)
		cap = (uint32_t)PACE_MIN_SEGS * pcb->mss;
	/* The cap limits what accrues; it does not take back what a late tick was given. */
	if (x->pace_tokens < cap) {
		uint64_t t = (uint64_t)x->pace_tokens + (uint64_t)rate * elapsed / 1000u;

		x->pace_tokens = t > cap ? cap : (uint32_t)t;
	}
	x->pace_ms = now;
	if (x->pace_tokens >= seg->len) {
		x->pace_tokens -= seg->len;
		x->pace_owed = 0;
		return 1;
	}
	x->pace_blocked = 1;
	x->pace_owed = 1;
	if (!tick_pending) {
		tick_pending = 1;
		sys_timeout(PACE_TICK_MS, pace_tick, NULL);
	}
	return 0;
}
