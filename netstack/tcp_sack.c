/*
 * tcp_sack: the sender side of SACK (RFC 2018) for our lwIP: a scoreboard built from the peer's
 * SACK blocks, loss detection by RFC 6675's rule (DupThresh segments' worth SACKed above a hole)
 * and by RACK's time rule (RFC 8985: a segment sent before one that has been delivered, and
 * older than that one's RTT plus a reordering window, is lost - which also finds a lost
 * retransmission), and recovery that retransmits every lost segment at once instead of one per
 * round trip. It also takes the delivery-rate and RTT samples the controller (tcp_cc.c) needs.
 *
 * lwIP keeps sent segments on pcb->unacked in sequence order; the scoreboard is a flag per
 * segment (TCPX_SEG_SACKED), and a retransmission is sent in place (tcp_resend_segment), so
 * lwIP's queues never change order behind its back.
 * Owns: struct tcpx's scoreboard and sampling fields. Must not touch: anything but ->unacked.
 */
#include "config.h"

#include <string.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

#include "netstack/tcp_ext.h"

#define DUPTHRESH 3
/* Bound on retransmissions per ACK, so that a burst of losses is repaired in a few ACKs'
 * worth of bursts rather than one burst that overflows the path. */
#define REXMIT_BURST 64

/* The current ACK's samples: taken in tcpx_ack_pre, used in tcpx_ack_post (lwIP runs one
 * segment at a time, on one thread). */
static struct tcpx_sample cur;
static int cur_valid;

static uint32_t
seg_seq(const struct tcp_seg *seg)
{
	return lwip_ntohl(seg->tcphdr->seqno);
}

int
tcpx_owns_recovery(const struct tcp_pcb *pcb)
{
	return (pcb->flags & TF_SACK) && tcpx_get_cc() != TCPX_CC_LWIP;
}

void
tcpx_sack_begin(struct tcp_pcb *pcb)
{
	pcb->x.nsack = 0;
}

void
tcpx_sack_block(struct tcp_pcb *pcb, uint32_t left, uint32_t right)
{
	struct tcpx *x = &pcb->x;

	/* Only blocks inside what we have sent and not had acked mean anything; a D-SACK or
	 * garbage block is ignored. */
	if (x->nsack >= TCPX_MAX_SACK || !TCP_SEQ_LT(left, right) ||
	    !TCP_SEQ_GEQ(left, pcb->lastack) || TCP_SEQ_GT(right, pcb->snd_nxt))
		return;
	x->sack_l[x->nsack] = left;
	x->sack_r[x->nsack] = right;
	x->nsack++;
}

static int
sacked_by_blocks(const struct tcpx *x, uint32_t s, uint32_t e)
{
	uint8_t i;

	for (i = 0; i < x->nsack; i++)
		if (TCP_SEQ_GEQ(s, x->sack_l[i]) && TCP_SEQ_LEQ(e, x->sack_r[i]))
			return 1;
	return 0;
}

void
tcpx_seg_init(struct tcp_seg *seg)
{
	seg->x_sent_ms = seg->x_order = seg->x_delivered = seg->x_delivered_ms = 0;
	seg->x_flags = 0;
}

void
tcpx_seg_sent(struct tcp_pcb *pcb, struct tcp_seg *seg)
{
	struct tcpx *x = &pcb->x;
	uint32_t now = sys_now();

	if (seg->len == 0)
		return;
	/* Nothing in flight: the delivery-rate interval starts now, not at the last ACK. */
	if (pcb->unacked == NULL || (pcb->unacked == seg && seg->next == NULL))
		x->delivered_ms = now;
	if (seg->x_flags & TCPX_SEG_SENT) {
		seg->x_flags |= TCPX_SEG_REXMIT;
		x->rexmits++;
	}
	seg->x_flags |= TCPX_SEG_SENT;
	seg->x_sent_ms = now;
	seg->x_order = ++x->xmit_order;
	seg->x_delivered = x->delivered;
	seg->x_delivered_ms = x->delivered_ms;
}

void
tcpx_rto(struct tcp_pcb *pcb)
{
	struct tcp_seg *seg;

	/* lwIP resends the whole window after a timeout (go-back-N): forget the scoreboard, as a
	 * receiver that dropped its out-of-order queue (RFC 2018 reneging) would need. */
	for (seg = pcb->unacked; seg != NULL; seg = seg->next)
		seg->x_flags &= (uint8_t)~TCPX_SEG_SACKED;
	pcb->x.sacked = 0;
	pcb->x.recovering = 0;
}

/* One segment newly delivered: count it, and keep the newest as the ACK's rate sample. */
static void
deliver(struct tcpx *x, const struct tcp_seg *seg, const struct tcp_seg **newest)
{
	x->delivered += seg->len;
	cur.newly_delivered += seg->len;
	if (*newest == NULL || (int32_t)(seg->x_order - (*newest)->x_order) > 0)
		*newest = seg;
}

void
tcpx_ack_pre(struct tcp_pcb *pcb, uint32_t ackno)
{
	struct tcpx *x = &pcb->x;
	const struct tcp_seg *newest = NULL;
	struct tcp_seg *seg;
	uint32_t now, top = ackno;
	uint8_t i;

	cur_valid = 0;
	if (!tcpx_owns_recovery(pcb))
		return;
	memset(&cur, 0, sizeof(cur));
	cur.rtt_ms = UINT32_MAX;
	cur_valid = 1;
	if (!TCP_SEQ_BETWEEN(ackno, pcb->lastack, pcb->snd_nxt))
		return;
	for (i = 0; i < x->nsack; i++)
		if (TCP_SEQ_GT(x->sack_r[i], top))
			top = x->sack_r[i];
	for (seg = pcb->unacked; seg != NULL; seg = seg->next) {
		uint32_t s = seg_seq(seg), e = s + TCP_TCPLEN(seg);

		if (!TCP_SEQ_LT(s, top))
			break;
		if (TCP_SEQ_LEQ(e, ackno)) {
			if (seg->x_flags & TCPX_SEG_SACKED)
				x->sacked -= seg->len;  /* lwIP frees it */
			else
				deliver(x, seg, &newest);
		} else if (!(seg->x_flags & TCPX_SEG_SACKED) && sacked_by_blocks(x, s, e)) {
			seg->x_flags |= TCPX_SEG_SACKED;
			x->sacked += seg->len;
			deliver(x, seg, &newest);
		}
	}
	if (newest == NULL)
		return;
	now = sys_now();
	x->delivered_ms = now;
	cur.prior_delivered = newest->x_delivered;
	if (now != newest->x_delivered_ms)
		cur.rate = (uint32_t)((uint64_t)(x->delivered - newest->x_delivered) * 1000u /
		    (now - newest->x_delivered_ms));
	/* Karn: a retransmitted segment's RTT is ambiguous. */
	if (!(newest->x_flags & TCPX_SEG_REXMIT))
		cur.rtt_ms = now - newest->x_sent_ms;
	if ((int32_t)(newest->x_order - x->rack_order) > 0) {
		x->rack_order = newest->x_order;
		x->rack_sent_ms = newest->x_sent_ms;
		x->rack_rtt_ms = now - newest->x_sent_ms;
	}
}

/* RFC 6675 IsLost, and RACK's rule. */
static int
is_lost(const struct tcp_pcb *pcb, const struct tcp_seg *seg, uint32_t sacked_above, uint32_t now)
{
	const struct tcpx *x = &pcb->x;
	uint32_t reo = x->min_rtt_ms / 4;

	if (!(seg->x_flags & TCPX_SEG_REXMIT) && sacked_above >= (uint32_t)DUPTHRESH * pcb->mss)
		return 1;
	return (int32_t)(x->rack_order - seg->x_order) > 0 &&
	    (int32_t)(now - seg->x_sent_ms) >= (int32_t)(x->rack_rtt_ms + reo + 1);
}

void
tcpx_ack_post(struct tcp_pcb *pcb)
{
	struct tcpx *x = &pcb->x;
	struct tcp_seg *seg;
	uint32_t now, before = 0;
	int sent = 0;

	if (!cur_valid)
		return;
	cur_valid = 0;
	if (x->recovering && TCP_SEQ_GEQ(pcb->lastack, x->recover))
		x->recovering = 0;
	now = sys_now();
	if (x->sacked > 0 || x->recovering) {
		for (seg = pcb->unacked; seg != NULL && sent < REXMIT_BURST; seg = seg->next) {
			if (seg->x_flags & TCPX_SEG_SACKED) {
				before += seg->len;
				if (before >= x->sacked)
					break;  /* nothing SACKed above: no evidence */
				continue;
			}
			if (!(seg->x_flags & TCPX_SEG_SENT) || !is_lost(pcb, seg, x->sacked - before, now))
				continue;
			if (!x->recovering) {
				x->recovering = 1;
				x->recover = pcb->snd_nxt;
				x->lost_episodes++;
				cur.new_loss_episode = 1;
			}
			if (tcp_resend_segment(pcb, seg) != ERR_OK)
				break;
			sent++;
		}
	}
	tcpx_cc_on_ack(pcb, &cur, now);
	/* lwIP limits what it sends to lastack + cwnd; SACKed bytes are not in flight. */
	pcb->cwnd = tcpx_cc_cwnd(pcb) + x->sacked;
}
