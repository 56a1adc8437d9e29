/*
 * tcp_cc: the congestion controller of our lwIP's SACK connections. The default is model-based,
 * after BBR (Cardwell et al., ACM Queue 2016): the bottleneck bandwidth is the windowed maximum
 * of the delivery-rate samples over the last TCPX_BW_ROUNDS round trips, the propagation delay
 * the minimum RTT over 10 s, and the window twice their product. Random loss does not move the
 * model, so 0.1-1% loss on a long path costs only the retransmissions, where a loss-based
 * controller (Reno, CUBIC) halves its window each time and ends up at the Mathis limit
 * (MSS/RTT * 1.2/sqrt(p): ~10 Mbit/s at 50 ms and 0.1%). Startup doubles the window each round
 * until the bandwidth stops growing by a quarter for three rounds, like BBR's.
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

static int cc_chosen;
static enum tcpx_cc cc_mode;

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

static void
model_on_ack(struct tcp_pcb *pcb, const struct tcpx_sample *rs, uint32_t now)
{
	struct tcpx *x = &pcb->x;
	uint32_t min_cwnd = (uint32_t)MIN_CWND_SEGS * pcb->mss, bw;
	int round_start = 0;

	if (rs->newly_delivered > 0 && (int32_t)(rs->prior_delivered - x->next_round_delivered) >= 0) {
		x->next_round_delivered = x->delivered;
		x->round++;
		x->bw[x->round % TCPX_BW_ROUNDS] = 0;
		round_start = 1;
	}
	if (rs->rate > x->bw[x->round % TCPX_BW_ROUNDS])
		x->bw[x->round % TCPX_BW_ROUNDS] = rs->rate;
	if (rs->rtt_ms != UINT32_MAX && (x->min_rtt_ms == 0 || rs->rtt_ms <= x->min_rtt_ms ||
	    now - x->min_rtt_stamp > MIN_RTT_WINDOW_MS)) {
		x->min_rtt_ms = rs->rtt_ms > 0 ? rs->rtt_ms : 1;
		x->min_rtt_stamp = now;
	}
	bw = bw_max(x);
	if (!x->filled && round_start && bw > 0) {
		if ((uint64_t)bw * STARTUP_GROWTH_DEN >= (uint64_t)x->full_bw * STARTUP_GROWTH_NUM) {
			x->full_bw = bw;
			x->full_bw_cnt = 0;
		} else if (++x->full_bw_cnt >= STARTUP_ROUNDS) {
			x->filled = 1;
		}
	}
	if (!x->filled) {
		/* Slow start: one more byte per byte delivered. */
		x->cwnd += rs->newly_delivered;
	} else {
		uint64_t target = (uint64_t)bw * x->min_rtt_ms * CWND_GAIN_NUM / 1000u;

		if (target > 0x7fffffffu)
			target = 0x7fffffffu;
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

uint32_t
tcpx_cc_cwnd(const struct tcp_pcb *pcb)
{
	return pcb->x.cwnd;
}
