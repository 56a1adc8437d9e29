/*
 * tcp_cc: the congestion controller of our lwIP's SACK connections. The default is model-based,
 * after BBR (Cardwell et al., ACM Queue 2016): the bottleneck bandwidth is the windowed maximum
 * of the delivery-rate samples over the last TCPX_BW_ROUNDS round trips, the propagation delay
 * the minimum RTT over 10 s, and the window twice their product. Random loss does not move the
 * model, so 0.1-1% loss on a long path costs only the retransmissions, where a loss-based
 * controller (Reno, CUBIC) halves its window each time and ends up at the Mathis limit
 * (MSS/RTT * 1.2/sqrt(p): ~10 Mbit/s at 50 ms and 0.1%). Startup doubles the window each round
 * until the bandwidth stops growing by a quarter for three rounds, like BBR's.
 * Fairness (after BBRv2): rounds that lose more than 2% of their data bound what is in flight
 * (inflight_hi, inflight_lo; see round_end), and the flow probes above the bound only every few
 * seconds, so a loss-based flow on the same bottleneck keeps its share; random loss below the
 * threshold still moves nothing. ECN would be the better signal but lwIP 2.1.3 does not
 * negotiate it, and the overlay's UDP carriage hides the outer IP header's CE marks anyway.
 * The Reno fallback (SHOAL_TCP_CC=reno) halves once per loss episode; SHOAL_TCP_CC=lwip turns
 * all of this off and leaves lwIP's own NewReno, for comparison.
 * Owns: struct tcpx's model fields and the process-wide choice. Must not touch: lwIP's queues.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "netstack/tcp_ext.h"

#define MIN_RTT_WINDOW_MS 10000
#define CWND_GAIN_NUM 2         /* window = 2 x bandwidth x min RTT */
#define MIN_CWND_SEGS 4
#define STARTUP_GROWTH_NUM 5    /* "still growing": by 5/4 per round */
#define STARTUP_GROWTH_DEN 4
#define STARTUP_ROUNDS 3
#define STARTUP_LOSS_SEGS 8     /* losses in a round that end startup (BBRv2's full_loss_cnt) */
#define LOSS_MIN_SEGS 3         /* fewer losses than this in a round are chance */
#define BETA_NUM 7              /* inflight_lo's cut on a lossy round: to 70% */
#define BETA_DEN 10
#define CRUISE_HEADROOM_PCT 85  /* cruise below inflight_hi, leaving room for others */
#define PROBE_MIN_ROUNDS 8
#define PROBE_MAX_ROUNDS 63
#define PROBE_WAIT_MS 2000
#define PROBE_JITTER_MS 1000

static int cc_chosen;
static enum tcpx_cc cc_mode;
static int unbounded;   /* SHOAL_TCP_CC=model-unbounded: no in-flight bounds, for comparison */

void
tcpx_set_cc(enum tcpx_cc cc)
{
	cc_mode = cc;
	cc_chosen = 1;
}

enum tcpx_cc
tcpx_get_cc(void)
{
	if (!cc_chosen) {
		const char *e = getenv("SHOAL_TCP_CC");

		cc_chosen = 1;
		cc_mode = TCPX_CC_MODEL;
		if (e != NULL && strcmp(e, "reno") == 0)
			cc_mode = TCPX_CC_RENO;
		else if (e != NULL && strcmp(e, "lwip") == 0)
			cc_mode = TCPX_CC_LWIP;
		else if (e != NULL && strcmp(e, "model-unbounded") == 0)
			unbounded = 1;
	}
	return cc_mode;
}

static uint32_t
bw_max(const struct tcpx *x)
{
	uint32_t m = 0;
	int i;

	for (i = 0; i < TCPX_BW_ROUNDS; i++)
		if (x->bw[i] > m)
			m = x->bw[i];
	return m;
}

/* What is in flight now: sent, not cumulatively acked, not SACKed. */
static uint32_t
in_flight(const struct tcp_pcb *pcb)
{
	uint32_t f = pcb->snd_nxt - pcb->lastack;

	return f > pcb->x.sacked ? f - pcb->x.sacked : 0;
}

static uint32_t
scale(uint32_t v, uint32_t num, uint32_t den)
{
	return (uint32_t)((uint64_t)v * num / den);
}

/* Starts a cruise: the bounds hold until the next probe (see the end of round_end). */
static void
cruise(struct tcpx *x, uint32_t now)
{
	x->probing = 0;
	x->cycle_round = x->round;
	x->cycle_ms = now;
}

/*
 * The end of a round trip: did it lose more than random loss does? A round that lost over
 * TCPX_LOSS_THRESH_PCT of its data, and at least LOSS_MIN_SEGS segments (a handful of losses in
 * a short round is still chance), is a queue overflowing: a loss-based flow beside us, or our
 * own excess. BBRv2's answer:
 *  - while probing for more room, what was in flight becomes inflight_hi (the path holds no
 *    more than that), and the flow goes back to cruising at CRUISE_HEADROOM of it, so that a
 *    competing flow finds free room in the queue;
 *  - while cruising, inflight_lo is cut to BETA of the window: the flow yields as a loss-based
 *    one would, but by 30% rather than half, and only on loss above the threshold;
 *  - in startup, enough such loss ends startup (BBRv2's full-pipe-by-loss) with inflight_hi at
 *    what was in flight.
 * Random loss of 0.1-1% crosses 2% (with at least 3 losses) only by rare chance in short
 * rounds and practically never in long ones, so it moves nothing, which is the whole point of
 * this controller on lossy paths (test_cc_random_loss_moves_nothing; lossy_rounds in the
 * bench's sender counters).
 */
static void
round_end(struct tcp_pcb *pcb, uint32_t target, uint32_t now)
{
	struct tcpx *x = &pcb->x;
	uint32_t lost = x->lost - x->rnd_lost0, deliv = x->delivered - x->rnd_delivered0;
	uint32_t min_cwnd = (uint32_t)MIN_CWND_SEGS * pcb->mss;
	uint32_t bdp_segs = pcb->mss ? scale(target, 1, 2u * pcb->mss) : 0;
	int lossy = lost >= (uint32_t)LOSS_MIN_SEGS * pcb->mss &&
	    (uint64_t)lost * 100u > ((uint64_t)lost + deliv) * TCPX_LOSS_THRESH_PCT;
	uint32_t peak = x->rnd_inflight_max;

	x->rnd_lost0 = x->lost;
	x->rnd_delivered0 = x->delivered;
	x->rnd_inflight_max = in_flight(pcb);
	x->lossy_rounds += (uint32_t)lossy;
	if (!x->filled) {
		if (lossy && lost >= (uint32_t)STARTUP_LOSS_SEGS * pcb->mss) {
			x->filled = 1;
			x->inflight_hi = peak > min_cwnd ? peak : min_cwnd;
			cruise(x, now);
		}
		return;
	}
	if (x->probing) {
		if (lossy) {
			x->inflight_hi = peak > min_cwnd ? peak : min_cwnd;
			cruise(x, now);
			return;
		}
		/* Grow the bound faster each round (1, 2, 4... segments), as BBRv2's PROBE_UP; a
		 * bound that reaches the model's own window limits nothing: forget it. */
		x->inflight_hi += x->probe_slope * pcb->mss;
		if (x->probe_slope < (1u << 16))
			x->probe_slope *= 2;
		if (x->inflight_hi >= target) {
			x->inflight_hi = 0;
			cruise(x, now);
		}
		return;
	}
	if (lossy) {
		uint32_t base = x->inflight_lo ? x->inflight_lo : x->cwnd;

		x->inflight_lo = scale(base, BETA_NUM, BETA_DEN);
		if (x->inflight_lo < min_cwnd)
			x->inflight_lo = min_cwnd;
		if (x->inflight_hi == 0)
			x->inflight_hi = peak > min_cwnd ? peak : min_cwnd;
	}
	/* Time to probe: after as many rounds as Reno would take to grow back by the BDP (capped,
	 * BBRv2's Reno coexistence), or a few seconds, whichever first; the jitter keeps two
	 * shoal flows from probing in step. Probing drops the short-term bound. */
	if (x->inflight_hi != 0 || x->inflight_lo != 0) {
		uint32_t rounds = bdp_segs < PROBE_MAX_ROUNDS ? bdp_segs : PROBE_MAX_ROUNDS;
		uint32_t wait = PROBE_WAIT_MS + (x->cycle_ms * 2654435761u >> 22) % PROBE_JITTER_MS;

		if (rounds < PROBE_MIN_ROUNDS)
			rounds = PROBE_MIN_ROUNDS;
		if (x->round - x->cycle_round >= rounds || now - x->cycle_ms >= wait) {
			x->inflight_lo = 0;
			if (x->inflight_hi != 0) {
				x->probing = 1;
				x->probe_slope = 1;
				x->probes++;
			} else {
				cruise(x, now);
			}
		}
	}
}

static void
model_on_ack(struct tcp_pcb *pcb, const struct tcpx_sample *rs, uint32_t now)
{
	struct tcpx *x = &pcb->x;
	uint32_t min_cwnd = (uint32_t)MIN_CWND_SEGS * pcb->mss, bw, f;
	uint64_t target;
	int round_start = 0;

	x->lost += rs->newly_lost;
	f = in_flight(pcb);
	if (f > x->rnd_inflight_max)
		x->rnd_inflight_max = f;
	if (rs->newly_delivered > 0 && (int32_t)(rs->prior_delivered - x->next_round_delivered) >= 0) {
		x->next_round_delivered = x->delivered;
		x->round++;
		round_start = 1;
	}
	/* An application-limited sample only counts if it shows more than the model has: a quiet
	 * spell (a request/response protocol, iperf3's control exchange) must not shrink the model
	 * and end startup early, or the window and pacing rate would start from its rate. */
	if (rs->rate > 0 && (!rs->app_limited || rs->rate >= bw_max(x))) {
		/* A round's slot is cleared by its first sample, so rounds without any (all
		 * application-limited) leave the older ones in place instead of zeros. */
		if (x->bw_round != x->round) {
			x->bw_round = x->round;
			x->bw[x->round % TCPX_BW_ROUNDS] = 0;
		}
		if (rs->rate > x->bw[x->round % TCPX_BW_ROUNDS])
			x->bw[x->round % TCPX_BW_ROUNDS] = rs->rate;
	}
	if (rs->rtt_ms != UINT32_MAX && (x->min_rtt_ms == 0 || rs->rtt_ms <= x->min_rtt_ms ||
	    now - x->min_rtt_stamp > MIN_RTT_WINDOW_MS)) {
		x->min_rtt_ms = rs->rtt_ms > 0 ? rs->rtt_ms : 1;
		x->min_rtt_stamp = now;
	}
	bw = bw_max(x);
	if (!x->filled && round_start && bw > 0 && !rs->app_limited) {
		if ((uint64_t)bw * STARTUP_GROWTH_DEN >= (uint64_t)x->full_bw * STARTUP_GROWTH_NUM) {
			x->full_bw = bw;
			x->full_bw_cnt = 0;
		} else if (++x->full_bw_cnt >= STARTUP_ROUNDS) {
			x->filled = 1;
			cruise(x, now);
		}
	}
	target = (uint64_t)bw * x->min_rtt_ms * CWND_GAIN_NUM / 1000u;
	if (target > 0x7fffffffu)
		target = 0x7fffffffu;
	if (round_start && !unbounded)
		round_end(pcb, (uint32_t)target, now);
	if (!x->filled) {
		/* Slow start: one more byte per byte delivered. */
		x->cwnd += rs->newly_delivered;
	} else {
		/* The bounds: inflight_hi with headroom while cruising, all of it while probing. */
		if (x->inflight_hi != 0) {
			uint32_t hi = x->probing ? x->inflight_hi :
			    scale(x->inflight_hi, CRUISE_HEADROOM_PCT, 100);

			if (target > hi)
				target = hi;
		}
		if (x->inflight_lo != 0 && target > x->inflight_lo)
			target = x->inflight_lo;
		/* Grow towards the target as data is delivered, fall to it at once. */
		if (x->cwnd < target)
			x->cwnd += rs->newly_delivered;
		if (x->cwnd > target)
			x->cwnd = (uint32_t)target;
	}
	if (x->cwnd < min_cwnd)
		x->cwnd = min_cwnd;
}

static void
reno_on_ack(struct tcp_pcb *pcb, const struct tcpx_sample *rs)
{
	struct tcpx *x = &pcb->x;
	uint32_t min_cwnd = 2u * pcb->mss;

	if (x->ssthresh == 0)
		x->ssthresh = 0x7fffffffu;
	if (rs->new_loss_episode) {
		x->ssthresh = x->cwnd / 2 > min_cwnd ? x->cwnd / 2 : min_cwnd;
		x->cwnd = x->ssthresh;
	} else if (!x->recovering) {
		if (x->cwnd < x->ssthresh)
			x->cwnd += rs->newly_delivered;
		else if (x->cwnd > 0)
			x->cwnd += (uint32_t)((uint64_t)pcb->mss * rs->newly_delivered / x->cwnd) + 1;
	}
	if (x->cwnd < min_cwnd)
		x->cwnd = min_cwnd;
}

void
tcpx_cc_on_ack(struct tcp_pcb *pcb, const struct tcpx_sample *rs, uint32_t now)
{
	if (pcb->x.cwnd == 0)
		pcb->x.cwnd = pcb->cwnd;        /* lwIP's initial window */
	if (tcpx_get_cc() == TCPX_CC_RENO)
		reno_on_ack(pcb, rs);
	else
		model_on_ack(pcb, rs, now);
}

/*
 * BBR's pacing gains: 2/ln 2 in startup (the rate doubles each round), 1.25 while probing above
 * inflight_hi, and otherwise BBRv1's cycle of one round at 1.25 (look for more bandwidth), one
 * at 0.75 (drain what that queued) and six at 1.0. Only the model paces.
 */
uint32_t
tcpx_cc_pacing_rate(const struct tcp_pcb *pcb)
{
	const struct tcpx *x = &pcb->x;
	uint32_t bw = bw_max(x), gain, floor;

	if (tcpx_get_cc() != TCPX_CC_MODEL || bw == 0 || x->min_rtt_ms == 0)
		return 0;
	/* Never slower than half the window per round trip: a model built from a few small
	 * messages (a protocol's handshake) would otherwise pace the bulk transfer after it at
	 * their rate, and a paced flow cannot show the model it is wrong. In steady state the
	 * window is twice bandwidth x delay, so this is the model's own rate. */
	floor = (uint32_t)((uint64_t)x->cwnd * 1000u / (2u * x->min_rtt_ms));
	if (bw < floor)
		bw = floor;
	if (!x->filled)
		gain = 289;
	else if (x->probing || x->round % 8 == 0)
		gain = 125;
	else if (x->round % 8 == 1)
		gain = 75;
	else
		gain = 100;
	return scale(bw, gain, 100);
}

uint32_t
tcpx_cc_cwnd(const struct tcp_pcb *pcb)
{
	return pcb->x.cwnd;
}
