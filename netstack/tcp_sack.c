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
	/* Nothing in flight: the delivery-rate interval starts now, not at the last ACK; so does
	 * the wait for a tail loss probe. */
	if (pcb->unacked == NULL || (pcb->unacked == seg && seg->next == NULL))
		x->delivered_ms = x->progress_ms = now;
	if (seg->x_flags & TCPX_SEG_SENT) {
		seg->x_flags |= TCPX_SEG_REXMIT;
		x->rexmits++;
	}
	seg->x_flags |= TCPX_SEG_SENT;
	/* Application-limited (draft-cheng-iccrg-delivery-rate-estimation): the last queued
	 * segment, sent with the window not full. Its delivery rate says how fast the application
	 * wrote, not how fast the path is, so it must not lower the model (tcp_cc.c). */
	seg->x_flags &= (uint8_t)~TCPX_SEG_APP_LIMITED;
	if (seg->next == NULL && pcb->unsent == seg &&
	    pcb->snd_nxt - pcb->lastack + seg->len < pcb->cwnd)
		seg->x_flags |= TCPX_SEG_APP_LIMITED;
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
	pcb->x.sack_hint = pcb->x.rxt_hint = NULL;
	pcb->x.nprev = 0;
}

static uint32_t
seg_end(const struct tcp_seg *seg)
{
	return seg_seq(seg) + TCP_TCPLEN(seg);
}

/* Drops hints whose segment lwIP has freed (fully acked). */
static void
check_hints(struct tcp_pcb *pcb)
{
	struct tcpx *x = &pcb->x;

	if (x->sack_hint != NULL && TCP_SEQ_LEQ(x->sack_hint_end, pcb->lastack))
		x->sack_hint = NULL;
	if (x->rxt_hint != NULL && TCP_SEQ_LEQ(x->rxt_hint_end, pcb->lastack))
		x->rxt_hint = NULL;
	/* (Also its first setting: a zeroed high_sack may look "above" a random ISN.) */
	if (x->sacked == 0 || TCP_SEQ_LT(x->high_sack, pcb->lastack))
		x->high_sack = pcb->lastack;
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

/* Marks the segments inside [l, r) SACKed. */
static void
mark_block(struct tcp_pcb *pcb, uint32_t l, uint32_t r, const struct tcp_seg **newest)
{
	struct tcpx *x = &pcb->x;
	struct tcp_seg *seg = pcb->unacked;
	uint32_t lo = l;
	uint8_t i;

	/* The usual new block is an old one whose right edge moved up: only [old right, r) is
	 * new, and it starts at or after the hint. Anything else (a retransmission filled a hole
	 * and blocks merged) is walked from the head: once per repaired hole. */
	for (i = 0; i < x->nprev; i++)
		if (x->prev_l[i] == l && TCP_SEQ_LT(x->prev_r[i], r) && TCP_SEQ_GT(x->prev_r[i], lo))
			lo = x->prev_r[i];
	if (x->sack_hint != NULL && TCP_SEQ_LEQ(x->sack_hint_end, lo))
		seg = x->sack_hint;
	for (; seg != NULL; seg = seg->next) {
		uint32_t s = seg_seq(seg), e = s + TCP_TCPLEN(seg);

		if (!TCP_SEQ_LT(s, r))
			break;
		if ((seg->x_flags & TCPX_SEG_SACKED) || TCP_SEQ_LT(s, l) || TCP_SEQ_GT(e, r))
			continue;
		seg->x_flags |= TCPX_SEG_SACKED;
		x->sacked += seg->len;
		deliver(x, seg, newest);
		if (x->sack_hint == NULL || TCP_SEQ_GT(e, x->sack_hint_end)) {
			x->sack_hint = seg;
			x->sack_hint_end = e;
		}
	}
	if (TCP_SEQ_GT(r, x->high_sack))
		x->high_sack = r;
}

static int
seen_block(const struct tcpx *x, uint32_t l, uint32_t r)
{
	uint8_t i;

	for (i = 0; i < x->nprev; i++)
		if (x->prev_l[i] == l && x->prev_r[i] == r)
			return 1;
	return 0;
}

void
tcpx_ack_pre(struct tcp_pcb *pcb, uint32_t ackno)
{
	struct tcpx *x = &pcb->x;
	const struct tcp_seg *newest = NULL;
	struct tcp_seg *seg;
	uint32_t now;
	uint8_t i;

	cur_valid = 0;
	if (!tcpx_owns_recovery(pcb))
		return;
	memset(&cur, 0, sizeof(cur));
	cur.rtt_ms = UINT32_MAX;
	cur_valid = 1;
	if (!TCP_SEQ_BETWEEN(ackno, pcb->lastack, pcb->snd_nxt))
		return;
	check_hints(pcb);
	/* Cumulatively acked: the head of ->unacked, which lwIP frees next. */
	for (seg = pcb->unacked; seg != NULL && TCP_SEQ_LEQ(seg_end(seg), ackno); seg = seg->next) {
		if (seg->x_flags & TCPX_SEG_SACKED)
			x->sacked -= seg->len;
		else
			deliver(x, seg, &newest);
	}
	/* A receiver repeats its older blocks on every ACK: only new ones need a walk. */
	for (i = 0; i < x->nsack; i++)
		if (!seen_block(x, x->sack_l[i], x->sack_r[i]) && TCP_SEQ_GT(x->sack_r[i], ackno))
			mark_block(pcb, x->sack_l[i], x->sack_r[i], &newest);
	memcpy(x->prev_l, x->sack_l, sizeof(x->prev_l));
	memcpy(x->prev_r, x->sack_r, sizeof(x->prev_r));
	x->nprev = x->nsack;
	if (newest == NULL)
		return;
	now = sys_now();
	x->delivered_ms = x->progress_ms = now;
	x->tlp_out = 0;
	cur.prior_delivered = newest->x_delivered;
	cur.app_limited = (newest->x_flags & TCPX_SEG_APP_LIMITED) != 0;
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

/* RACK's rule: sent before a segment that has been delivered, and older than that one's RTT
 * plus a reordering window. */
static int
rack_lost(const struct tcp_pcb *pcb, const struct tcp_seg *seg, uint32_t now)
{
	const struct tcpx *x = &pcb->x;
	uint32_t reo = x->min_rtt_ms / 4;

	return (int32_t)(x->rack_order - seg->x_order) > 0 &&
	    (int32_t)(now - seg->x_sent_ms) >= (int32_t)(x->rack_rtt_ms + reo + 1);
}

/* RFC 6675's IsLost, by sequence distance: DupThresh segments' worth SACKed above the hole
 * (counted as the distance to the highest SACKed byte, which a walk from a hint can know). */
static int
dupthresh_lost(const struct tcp_pcb *pcb, const struct tcp_seg *seg)
{
	return TCP_SEQ_GEQ(pcb->x.high_sack, seg_end(seg) + (uint32_t)DUPTHRESH * pcb->mss);
}

static int
retransmit(struct tcp_pcb *pcb, struct tcp_seg *seg)
{
	struct tcpx *x = &pcb->x;

	if (!x->recovering) {
		x->recovering = 1;
		x->recover = pcb->snd_nxt;
		x->lost_episodes++;
		cur.new_loss_episode = 1;
	}
	cur.newly_lost += seg->len;
	return tcp_resend_segment(pcb, seg) == ERR_OK;
}

void
tcpx_ack_post(struct tcp_pcb *pcb)
{
	struct tcpx *x = &pcb->x;
	struct tcp_seg *seg;
	uint32_t now;
	int sent = 0;

	if (!cur_valid)
		return;
	cur_valid = 0;
	check_hints(pcb);
	if (x->recovering && TCP_SEQ_GEQ(pcb->lastack, x->recover))
		x->recovering = 0;
	now = sys_now();
	if (x->sacked > 0) {
		/* New holes: from the first segment not yet dealt with, up to the first one that is
		 * not lost yet (those above it are nearer the highest SACK, so not lost either). */
		seg = x->rxt_hint != NULL ? x->rxt_hint : pcb->unacked;
		for (; seg != NULL && sent < REXMIT_BURST; seg = seg->next) {
			if (!TCP_SEQ_LT(seg_end(seg), x->high_sack))
				break;
			if (!(seg->x_flags & (TCPX_SEG_SACKED | TCPX_SEG_REXMIT))) {
				if (!(seg->x_flags & TCPX_SEG_SENT) ||
				    (!dupthresh_lost(pcb, seg) && !rack_lost(pcb, seg, now)))
					break;
				if (!retransmit(pcb, seg))
					break;
				sent++;
			}
			x->rxt_hint = seg->next;
			x->rxt_hint_end = seg->next != NULL ? seg_end(seg->next) : 0;
		}
	}
	/* Lost retransmissions (RACK): a walk of the holes below the hint, a few times per RTT. */
	if (x->recovering && (int32_t)(now - x->rack_scan_ms) >= (int32_t)(x->min_rtt_ms / 4 + 1)) {
		x->rack_scan_ms = now;
		for (seg = pcb->unacked; seg != NULL && seg != x->rxt_hint && sent < REXMIT_BURST;
		    seg = seg->next) {
			if ((seg->x_flags & (TCPX_SEG_SACKED | TCPX_SEG_REXMIT)) == TCPX_SEG_REXMIT &&
			    rack_lost(pcb, seg, now)) {
				if (!retransmit(pcb, seg))
					break;
				sent++;
			}
		}
	}
	tcpx_cc_on_ack(pcb, &cur, now);
	/* lwIP limits what it sends to lastack + cwnd; SACKed bytes are not in flight. */
	pcb->cwnd = tcpx_cc_cwnd(pcb) + x->sacked;
}

/*
 * Tail loss probe, on lwIP's fast timer (TCP_TMR_INTERVAL): when nothing has been delivered for
 * two round trips with data in flight, the last segment goes out again. Its SACK (or ACK) then
 * tells RACK which segments before it are lost, so a loss at the end of a burst - where no
 * later segment produces duplicate ACKs - is repaired in about a round trip instead of a
 * retransmission timeout (lwIP's is a multiple of its 200 ms slow timer). One probe, then the
 * timeout as before.
 */
void
tcpx_fasttmr(struct tcp_pcb *pcb)
{
	struct tcpx *x = &pcb->x;
	struct tcp_seg *seg;
	uint32_t now, pto;

	if (!tcpx_owns_recovery(pcb) || pcb->unacked == NULL || x->tlp_out || x->min_rtt_ms == 0)
		return;
	now = sys_now();
	pto = 2 * x->min_rtt_ms + 10;
	if ((int32_t)(now - x->progress_ms) < (int32_t)pto)
		return;
	check_hints(pcb);
	seg = x->sack_hint != NULL ? x->sack_hint : pcb->unacked;
	while (seg->next != NULL)
		seg = seg->next;
	if (seg->x_flags & TCPX_SEG_SACKED)
		return;
	x->tlp_out = 1;
	if (tcp_resend_segment(pcb, seg) == ERR_OK)
		x->tlp_probes++;
}
