/*
 * tcp_ext: the contract between our patched lwIP (netstack/patches/0003-*) and shoal's own TCP
 * sender mechanisms: SACK scoreboard and recovery (tcp_sack.c) and the congestion controller
 * (tcp_cc.c). Included from lwipopts.h, so it may only use <stdint.h> types: lwIP's own types
 * are not defined yet at that point.
 *
 * lwIP calls the tcpx_* hooks; the per-connection and per-segment state lives inside lwIP's
 * struct tcp_pcb and struct tcp_seg (TCPX_PCB_FIELDS, TCPX_SEG_FIELDS).
 */
#ifndef SHOAL_TCP_EXT_H
#define SHOAL_TCP_EXT_H

#include <stdint.h>

struct tcp_pcb;
struct tcp_seg;

#define TCPX_MAX_SACK 4         /* blocks one segment can carry (40 option bytes) */
#define TCPX_BW_ROUNDS 10       /* the bandwidth filter's window, in round trips */

/* Per-connection state (inside struct tcp_pcb, zeroed by tcp_alloc). */
struct tcpx {
	/* SACK blocks of the segment being processed (tcpx_sack_begin/tcpx_sack_block). */
	uint32_t sack_l[TCPX_MAX_SACK], sack_r[TCPX_MAX_SACK];
	uint8_t nsack;
	uint8_t recovering;     /* a loss episode is open (until lastack passes recover) */
	uint8_t filled;         /* the model left startup: the bandwidth stopped growing */
	uint8_t full_bw_cnt;
	uint32_t recover;       /* snd_nxt when the loss episode began */
	uint32_t sacked;        /* bytes on ->unacked marked SACKed */
	/* Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation). */
	uint32_t delivered;     /* bytes delivered (cumulatively acked or SACKed) so far */
	uint32_t delivered_ms;  /* when delivered last grew */
	uint32_t xmit_order;    /* counts transmissions: orders segments by send time */
	/* RACK: the most recently sent segment known to be delivered. */
	uint32_t rack_order, rack_sent_ms, rack_rtt_ms;
	/* The model (tcp_cc.c). */
	uint32_t min_rtt_ms, min_rtt_stamp;
	uint32_t bw[TCPX_BW_ROUNDS];    /* max delivery rate per round, bytes/s */
	uint32_t round, next_round_delivered;
	uint32_t bw_round;              /* the round bw[bw_round % TCPX_BW_ROUNDS] belongs to */
	uint32_t full_bw;
	uint32_t cwnd;          /* bytes in flight the controller allows (0: not started) */
	uint32_t ssthresh;      /* Reno fallback */
	uint32_t lost_episodes, rexmits, tlp_probes;    /* statistics */
	/* The bounds on data in flight (tcp_cc.c, after BBRv2): learned from rounds that lost
	 * more than TCPX_LOSS_THRESH_PCT of what they sent. 0: no bound. */
	uint32_t lost;                  /* bytes found lost so far */
	uint32_t rnd_lost0, rnd_delivered0;     /* lost, delivered when this round began */
	uint32_t rnd_inflight_max;      /* the most in flight seen in this round */
	uint32_t inflight_hi;           /* long-term: what was in flight when loss got too high */
	uint32_t inflight_lo;           /* short-term: cut by loss, forgotten at the next probe */
	uint32_t probe_slope;           /* segments inflight_hi grows per round while probing */
	uint32_t cycle_round, cycle_ms; /* when the current cruise began */
	uint8_t probing;                /* probing for more room above inflight_hi */
	uint32_t lossy_rounds, probes;  /* statistics */
	/* Pacing (tcp_pace.c): a token bucket filled at the model's pacing rate. */
	uint32_t pace_tokens;           /* bytes that may leave now */
	uint32_t pace_ms;               /* when the bucket was last filled (0: never) */
	uint8_t pace_blocked;           /* tcp_output stopped for want of tokens: tick it */
	uint8_t pace_owed;              /* ... and has not sent since */
	/* Where the scoreboard walks start, so that an ACK costs what it changes, not the length
	 * of ->unacked (thousands of segments on a long fat path). A hint is valid while its
	 * segment is on ->unacked: until lastack passes its end, or an RTO requeues everything. */
	struct tcp_seg *sack_hint;      /* the highest segment marked SACKed */
	uint32_t sack_hint_end;
	struct tcp_seg *rxt_hint;       /* below it, every hole has been retransmitted */
	uint32_t rxt_hint_end;
	uint32_t high_sack;             /* highest SACKed sequence number */
	uint32_t prev_l[TCPX_MAX_SACK], prev_r[TCPX_MAX_SACK];  /* the previous ACK's blocks */
	uint8_t nprev;
	uint32_t rack_scan_ms;          /* last walk for lost retransmissions */
	/* Receiver: the last segment on ->ooseq and where its contiguous run starts, so that a
	 * segment arriving after it is appended without walking the queue (patch 0003). */
	struct tcp_seg *ooseq_tail;
	uint32_t ooseq_run;
	/* Tail loss probe (RACK-TLP, RFC 8985 7): when the ACKs stop with data in flight. */
	uint32_t progress_ms;           /* last delivery, or the start of a flight */
	uint8_t tlp_out;                /* a probe is out and nothing was delivered since */
};

#define TCPX_PCB_FIELDS struct tcpx x;
#define TCPX_SEG_FIELDS \
	uint32_t x_sent_ms;     /* last (re)transmission */ \
	uint32_t x_order;       /* tcpx.xmit_order at that transmission */ \
	uint32_t x_delivered;   /* tcpx.delivered then */ \
	uint32_t x_delivered_ms; /* tcpx.delivered_ms then */ \
	uint8_t x_flags;

#define TCPX_SEG_SENT 0x01u
#define TCPX_SEG_REXMIT 0x02u   /* sent more than once */
#define TCPX_SEG_SACKED 0x04u
#define TCPX_SEG_APP_LIMITED 0x08u      /* sent with nothing queued behind it and room to spare */

/* Hooks called by the patched lwIP (tcp_sack.c). */
void tcpx_sack_begin(struct tcp_pcb *pcb);
void tcpx_sack_block(struct tcp_pcb *pcb, uint32_t left, uint32_t right);
void tcpx_ack_pre(struct tcp_pcb *pcb, uint32_t ackno);
void tcpx_ack_post(struct tcp_pcb *pcb);
int tcpx_owns_recovery(const struct tcp_pcb *pcb);
void tcpx_seg_init(struct tcp_seg *seg);
void tcpx_seg_sent(struct tcp_pcb *pcb, struct tcp_seg *seg);
void tcpx_rto(struct tcp_pcb *pcb);
void tcpx_fasttmr(struct tcp_pcb *pcb);

/* The congestion controller (tcp_cc.c). */
enum tcpx_cc {
	TCPX_CC_MODEL,  /* BBR-style: delivery rate x min RTT; random loss does not cut it */
	TCPX_CC_RENO,   /* halves on each loss episode; SACK recovery still on */
	TCPX_CC_LWIP,   /* lwIP's own NewReno, SACK ignored: as before this work */
};
/* Process-wide; the default is TCPX_CC_MODEL, or SHOAL_TCP_CC=model|reno|lwip (and
 * model-unbounded: the model without its in-flight bounds, to measure what they cost). */
void tcpx_set_cc(enum tcpx_cc cc);
enum tcpx_cc tcpx_get_cc(void);

/* One ACK's samples, from tcp_sack.c to tcp_cc.c. */
struct tcpx_sample {
	uint32_t newly_delivered;       /* bytes */
	uint32_t prior_delivered;       /* tcpx.delivered when the newest delivered seg was sent */
	uint32_t rate;                  /* bytes/s, 0: none */
	uint32_t rtt_ms;                /* UINT32_MAX: none */
	uint32_t newly_lost;            /* bytes this ACK found lost (and retransmitted) */
	int new_loss_episode;           /* a loss was detected outside an open episode */
	int app_limited;                /* the rate was the application's, not the path's */
};
void tcpx_cc_on_ack(struct tcp_pcb *pcb, const struct tcpx_sample *rs, uint32_t now);
/* The rate to pace at, bytes/s, from the model and its gain for this phase; 0: do not pace. */
uint32_t tcpx_cc_pacing_rate(const struct tcp_pcb *pcb);

/* Pacing (tcp_pace.c), on a 1 ms lwIP timeout that the daemon's loop runs (netstack/tick.c):
 * the patched tcp_output() sends a data segment only when tcpx_pace_may_send() says so. */
int tcpx_pace_may_send(struct tcp_pcb *pcb, const struct tcp_seg *seg);
/* Process-wide; off unless SHOAL_TCP_PACING=1. */
void tcpx_set_pacing(int on);
int tcpx_get_pacing(void);

/* A round that loses more than this share of its data (in percent) is not random loss: the
 * flow is overfilling a queue, as a loss-based flow beside it would tell it (BBRv2's 2%). */
#define TCPX_LOSS_THRESH_PCT 2
/* The window lwIP may have in flight past lastack, in bytes. */
uint32_t tcpx_cc_cwnd(const struct tcp_pcb *pcb);

#endif
