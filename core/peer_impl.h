/*
 * peer_impl: the private structures shared by the files that make up the peer layer
 * (peer.c table and keypair rotation, peerindex.c receiver indices, handshake.c UDP handshake,
 * send.c / receive.c data path, timers.c all timer policy, path.c endpoints, hslimit.c).
 * Nothing outside core/ (and the peer unit test / fuzz target) may include this header.
 *
 * struct peers holds everything the layer needs from outside, as given to peers_new: the
 * loop, borrowed pointers to our keypair, the transport and the vnet, and a copy of the
 * peers_ops through which it calls out (deliver, peer_gone, path_lost). No file of the layer
 * includes daemon/ or netstack/ headers. Every global symbol carries the name of the layer or
 * of its file (peer_, peers_, peerindex_, handshake_, send_, receive_, timers_, path_,
 * hslimit_), so the library links next to any other without clashes.
 */
#ifndef SHOAL_PEER_IMPL_H
#define SHOAL_PEER_IMPL_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "mproto/msg.h"
#include "crypto/noise.h"
#include "base/keyid.h"
#include "core/peer.h"
#include "crypto/session.h"

enum {
	TAI64N_LEN = 12,
	STAGED_MAX_PKTS = 64,                   /* IP packets queued per peer during a handshake */
	STAGED_PKT_MAX = UDP_MAX_PAYLOAD - UDP_DATA_OVERHEAD,  /* largest inner IP packet */
	PATH_MAX_CANDIDATES = MAX_ENDPOINTS + 1,
	PEER_KEYPAIR_SLOTS = 4,                 /* current, previous, next + one being built */
	PING_PENDING_MAX = 16,                  /* outstanding `shoal ping`s per peer */
	PUNCH_ROUNDS_MAX = 10,                  /* PROTOCOL.md 3.2: rounds per PUNCH */
	SPRAY_BURSTS_MAX = 100,                 /* birthday probes: bursts a second, at most */
	/* Per daemon, over all peers (a random-port node may be planned with many peers at
	 * once): sockets in birthday sets, and peers being probed at the same time. Beyond
	 * them an attempt gets fewer sockets or none, or sends no probes; the mediator's
	 * retry comes later. */
	BDAY_SOCKETS_TOTAL = 4 * BIRTHDAY_SOCKETS_MAX,
	SPRAYS_MAX = 4,
	/* Everything one initiation may go to: current endpoint, candidates, punch targets. */
	PATH_MAX_TARGETS = 1 + PATH_MAX_CANDIDATES + PUNCH_MAX_TARGETS,
};

#define REKEY_ATTEMPT_TIME      90.0    /* s: give up an unanswered handshake */
#define REKEY_JITTER_MAX        0.333   /* s: added to each retry so both ends desynchronise */
#define PING_INTERVAL           5.0     /* s: RTT ping on an active session */
#define PING_TIMEOUT            3.0     /* s: peers_ping gives up */
/* Dead paths (PROTOCOL.md 2.4). A periodic ping waits PATH_PROBE_WAIT (or 3 x the RTT if
 * longer) for anything authenticated to come back; if nothing does, the next ping goes at
 * once. PATH_LOST_MISSES unanswered pings in a row mark the path lost: handshakes to every
 * candidate and a PUNCH_REQUEST. A lost path is pinged every PATH_PROBE_WAIT for its first
 * PATH_LOST_FAST s (so it comes back within a second of the network), then at the refresh
 * interval; the mediator is asked again every PATH_LOST_REASK s while it stays lost. */
#define COOKIE_TTL              120.0   /* s: a cookie, and our cookie secret, live this long */
#define PATH_PROBE_WAIT         1.0
#define PATH_LOST_MISSES        3
#define PATH_LOST_FAST          10.0
#define PATH_LOST_REASK         20.0
#define ZERO_KEYS_AFTER         (REJECT_AFTER_TIME * 3)
#define RTT_EWMA_ALPHA          0.125
#define HANDSHAKE_RATE          20.0    /* handshake packets per second per source address, */
#define HANDSHAKE_BURST         20.0
/* ... applied only under load: while all sources together stay within this, none is limited
 * (80 nodes behind one router connect at once). */
#define HANDSHAKE_LOAD_RATE     500.0
#define HANDSHAKE_LOAD_BURST    500.0
#define PUNCH_TARGETS_LINGER    30.0    /* s: punch targets stay handshake targets after it */
#define PUNCH_START_MAX         5.0     /* s: PROTOCOL.md 4.2 PUNCH start_ms bound */
#define PUNCH_INTERVAL_MIN      0.02    /* s: rounds never closer (a 0 interval would burst) */
#define PUNCH_INTERVAL_MAX      2.0     /* s: PUNCH interval_ms bound */
#define BDAY_LINGER             2.0     /* s: a socket set outlives its last round (late replies) */
#define BDAY_CHECK              10.0    /* s: how often a kept socket is checked for use */
/* With a relay: direct silent this long while we send on it -> the relay (fallback within 2 s);
 * probed by a ping every DIRECT_PROBE_WAIT while unanswered; while on the relay the direct
 * endpoint is retried every DIRECT_RETRY (DIRECT_RETRY_SLOW after DIRECT_RETRY_FAST s). */
#define DIRECT_SILENT_MAX       1.2
#define DIRECT_PROBE_WAIT       0.4
#define RELAY_TICK              0.2
#define DIRECT_RETRY            1.0
#define DIRECT_RETRY_FAST       30.0
#define DIRECT_RETRY_SLOW       5.0
#define BDAY_AWAY_MAX           PEER_DEAD_TIMEOUT /* s: path elsewhere this long: close it */

struct peer;
struct keypair;
struct bday;

/* One entry of the receiver-index table (core/peerindex.c). Embedded in its owner. */
struct peer_index {
	uint32_t index;                         /* hash key; 0 = not in the table */
	struct peer *peer;
	struct keypair *kp;                     /* NULL: our in-flight handshake initiation */
	UT_hash_handle hh;
};

/* A session plus its index entry; lives in its peer's kps[] slots (never moved). */
struct keypair {
	struct session s;
	struct peer_index idx;
};

/* A queued IP packet while a handshake is in flight; from the peers' free list. */
struct staged_pkt {
	struct staged_pkt *next;
	size_t len;
	uint8_t data[STAGED_PKT_MAX];
};

/* A `shoal ping` waiting for its pong; owned by its peer. */
struct pending_ping {
	ev_timer timeout;                       /* first: the callback casts back */
	struct pending_ping *next;
	struct peer *peer;
	uint64_t id;
	int sent;
	peers_ping_cb cb;
	void *arg;
};

/* Candidates and the current endpoint (core/path.c). */
struct path {
	struct endpoint cand[PATH_MAX_CANDIDATES];
	size_t n_cand;
	struct endpoint ep;                     /* where authenticated packets last came from */
	int has_ep;
	/* The mediator's last PUNCH: extra handshake targets until punch_until (ev_now). */
	struct endpoint punch[PUNCH_MAX_TARGETS];
	size_t n_punch;
	double punch_until;
	unsigned punch_rounds_left;             /* rounds still to send (timer t_punch) */
	unsigned punch_rounds_sent;             /* of the running punch, for the log */
	double punch_received;                  /* ev_now the running PUNCH arrived */
	/* Lost (PATH_LOST_MISSES pings unanswered) until an authenticated packet arrives. */
	int lost;
	double lost_since;                      /* ev_now it was marked lost */
	double lost_asked;                      /* last ops.path_lost call */
	int conns_reset;                        /* ops.peer_gone told for this loss */
	double punch_start;                     /* ev_now of its first round */
	/* Birthday punching (PROTOCOL.md 3.2). The random-port side: its socket set, during the
	 * attempt and then (the winner only) while the path uses it. */
	struct bday *bday;
	double bday_away_since;                 /* the path left the kept socket; 0: on it */
	/* The other side: probes of the in-flight initiation to spray_addr at spray[] ports. */
	uint16_t *spray;
	unsigned spray_n, spray_next, spray_per_tick;
	uint32_t spray_addr;
	/* Relays (PROTOCOL.md 8): the relay endpoint (its via names the relay client's link) is
	 * the fallback. Direct is used while it answers: direct_rx is the last authenticated packet
	 * over a direct endpoint, direct_unanswered the first packet sent direct since (0: none),
	 * so a direct path that stops answering while packets flow is left after DIRECT_SILENT_MAX
	 * (timers.c probes it every DIRECT_PROBE_WAIT meanwhile, so a one-way flow stays). */
	struct endpoint relay;
	int has_relay;
	double relay_rx, direct_rx, direct_unanswered, direct_probed;
	int on_relay;                           /* the last packet went to the relay (for logs) */
	const struct endpoint *force_ep;        /* a probe's endpoint, for one send */
};

/* One authorized peer. Owned by struct peers; keys wiped in peer_destroy(). */
struct peer {
	struct peers *ps;
	uint8_t key[KEY_LEN];
	uint32_t vaddr;
	char id[KEY_SHORT_LEN];                 /* short node id, for logs (base/keyid.h) */

	/* Our in-flight initiation (core/handshake.c). */
	struct noise_hs hs;
	int hs_active;
	struct peer_index hs_idx;
	double hs_started;                      /* first attempt of this round */
	double hs_last_sent;
	/* The in-flight initiation as sent: punch rounds resend these bytes, so the responder
	 * answers the first copy that gets through and drops the rest as replays. */
	uint8_t hs_pkt[UDP_HANDSHAKE_INIT_LEN];
	/* The peer's boot id (INNER_BOOT): a new one means it restarted and lost its side of
	 * every connection with us. */
	uint64_t peer_boot;
	int peer_boot_known;
	/* The peer's last cookie (COOKIE_REPLY, PROTOCOL.md 2.5): our initiations carry mac2 with
	 * it while it is younger than COOKIE_TTL. */
	uint8_t cookie[HS_MAC_LEN];
	double cookie_at;                       /* 0: none */
	uint8_t ts_rx[TAI64N_LEN];              /* newest initiation timestamp accepted */
	uint8_t ts_tx[TAI64N_LEN];              /* last one we sent (kept strictly increasing) */

	/* Sessions, WireGuard style: next (responder, unconfirmed) -> current -> previous. */
	struct keypair kps[PEER_KEYPAIR_SLOTS];
	struct keypair *current, *previous, *next;

	struct path path;

	struct staged_pkt *q_head, *q_tail;
	size_t q_len;

	/* core/timers.c */
	ev_timer t_retransmit, t_keepalive, t_new_handshake, t_zero_keys, t_ping, t_punch;
	/* t_ping either waits for the next periodic ping or (ping_wait) for an answer to the last
	 * one, sent at ping_sent_at; heard_since_ping: an authenticated packet came since. */
	int ping_wait, heard_since_ping;
	double ping_sent_at;
	unsigned ping_misses;                   /* pings in a row nothing came back after */
	ev_timer t_spray, t_bday;               /* birthday probes; socket set end / upkeep */
	ev_timer t_relay;                       /* direct-path probes while a relay is granted */
	double rx_unanswered_since;             /* data received, nothing sent since: 0 = no */
	double tx_unanswered_since;             /* data sent, nothing received since: 0 = no */
	double last_rx, last_tx;

	/* RTT */
	uint64_t ping_next_id;
	uint64_t ping_periodic_id;              /* outstanding periodic ping, 0 none */
	double srtt_ms;                         /* <0 unknown */
	struct pending_ping *pings;
	size_t n_pings;

	uint64_t rx_bytes, tx_bytes;
	UT_hash_handle hh_key, hh_vaddr;
};

/* Counters beyond the public ones (for tests and debugging). */
struct peers_xstats {
	uint64_t rx_spoofed, rx_ratelimited, rx_expired, rx_hs_replay, rx_unauthorized;
	uint64_t rx_bad_mac, cookies_sent, cookies_received;
	uint64_t tx_no_route, tx_queue_dropped, tx_too_big;
};

struct hslimit;

/* Owned by whoever called peers_new (the daemon: d->peers). */
struct peers {
	struct ev_loop *loop;
	const struct noise_keypair *key;        /* borrowed: the owner keeps and wipes it */
	struct transport *tp;                   /* borrowed */
	const struct vnet *vn;                  /* borrowed; the owner updates it */
	double refresh;                         /* t_ping interval (peers_set_refresh) */
	struct peers_ops ops;
	void *ops_arg;
	struct peer *by_key;                    /* uthash hh_key */
	struct peer *by_vaddr;                  /* uthash hh_vaddr (peers with vaddr != 0) */
	struct peer_index *indices;             /* uthash hh, core/peerindex.c */
	struct hslimit *rl;
	struct staged_pkt *free_pkts;
	uint8_t prologue[16];
	size_t prologue_len;
	uint64_t boot_id;                       /* random per peer table: INNER_BOOT */
	/* Cookies (PROTOCOL.md 2.5): a secret rotated every COOKIE_TTL; cookie = MAC(secret,
	 * source address and port). mac1_key / cookie_key: derived from our public key. */
	uint8_t cookie_secret[32];
	double cookie_secret_at;
	uint8_t mac1_key[32], cookie_key[32];
	struct peers_stats st;
	struct peers_xstats xst;
	double dbg_window;                      /* rate limit of debug logs */
	unsigned dbg_count;
	/* No packet buffers here: send.c seals into the transport's send slot and receive.c
	 * decrypts in the receive buffer, which saved a copy each way. */
};

/* peer.c */
double peers_now(const struct peers *ps);
struct peer *peers_lookup_key(struct peers *ps, const uint8_t key[KEY_LEN]);
struct peer *peers_lookup_vaddr(struct peers *ps, uint32_t vaddr);
void peers_drop_debug(struct peers *ps, const char *why, const struct endpoint *from);
struct keypair *peer_keypair_alloc(struct peer *p);
void peer_keypair_free(struct peer *p, struct keypair *kp);
void peer_install_initiator(struct peer *p, struct keypair *kp);
void peer_install_responder(struct peer *p, struct keypair *kp);
void peer_confirm_next(struct peer *p);
void peer_zero_keys(struct peer *p);
/* The current keypair if it may be used for sending now, else NULL. */
struct keypair *peer_usable_keypair(const struct peer *p);

/* peerindex.c */
void peerindex_insert(struct peers *ps, struct peer_index *e, struct peer *p,
    struct keypair *kp);
void peerindex_insert_as(struct peers *ps, struct peer_index *e, uint32_t index,
    struct peer *p, struct keypair *kp);
void peerindex_remove(struct peers *ps, struct peer_index *e);
struct peer_index *peerindex_lookup(struct peers *ps, uint32_t index);

/* handshake.c */
void handshake_make_prologue(struct peers *ps);
/* Starts (or, when retry, repeats) an initiation unless one was sent < REKEY_TIMEOUT ago. */
void handshake_initiate(struct peer *p, int retry);
void handshake_clear(struct peer *p);
/* Sends the in-flight initiation's bytes again to each of to[0..n). Returns how many went
 * out, or -1 if no initiation is in flight. */
int handshake_resend(struct peer *p, const struct endpoint *to, size_t n);
void handshake_receive_init(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len);
void handshake_receive_cookie(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len);
void handshake_receive_resp(struct peers *ps, const struct endpoint *from, const uint8_t *pkt,
    size_t len);

/* send.c */
int peer_send_inner(struct peer *p, uint8_t type, const uint8_t *body, size_t len);
/* INNER_BOOT with our boot id: after each new session, both sides. */
void send_boot(struct peer *p);
void send_keepalive(struct peer *p);
int send_staged(struct peer *p);        /* returns how many were sent */
void send_ping(struct peer *p, uint64_t id);
int send_pending_pings(struct peer *p);
void peer_staged_drop_all(struct peer *p);
uint64_t peer_mono_ns(void);            /* CLOCK_MONOTONIC, for ping timestamps */

/* receive.c */
void receive_data(struct peers *ps, const struct endpoint *from, uint8_t *pkt, size_t len);

/* timers.c: event hooks named after what happened. */
void timers_init(struct peer *p);
void timers_stop(struct peer *p);
void timers_handshake_initiated(struct peer *p);
void timers_handshake_complete(struct peer *p);
void timers_session_derived(struct peer *p);
void timers_any_authenticated_packet_sent(struct peer *p);
void timers_any_authenticated_packet_received(struct peer *p);
void timers_data_sent(struct peer *p);
void timers_data_received(struct peer *p);
/* ps->refresh changed: the periodic ping takes the new interval (from now, if running). */
void timers_refresh_changed(struct peer *p);
/* Punch rounds: the first after start_s, then every interval_s while path_punch_round says
 * there are more. */
void timers_punch_start(struct peer *p, double start_s, double interval_s);
void timers_punch_stop(struct peer *p);
/* Birthday: probe bursts from start_s every tick_s while path_spray_tick says there are more;
 * path_bday_check after after_s (again every BDAY_CHECK while it says so). */
void timers_spray_start(struct peer *p, double start_s, double tick_s);
void timers_spray_stop(struct peer *p);
void timers_bday_arm(struct peer *p, double after_s);
/* A relay was granted (or taken away): t_relay runs path_relay_tick every RELAY_TICK. */
void timers_relay_changed(struct peer *p);

/* path.c */
/* Returns 1 if the candidate list changed. */
int path_set_candidates(struct peer *p, const struct endpoint *eps, size_t n);
void path_authenticated_from(struct peer *p, const struct endpoint *from);
size_t path_handshake_targets(const struct peer *p, double now, struct endpoint *out,
    size_t max);
enum path_kind path_current(const struct peer *p, double now);
void peer_path_send(struct peer *p, const uint8_t *pkt, size_t len);
/* Where the next authenticated packet goes (direct while it answers, else the relay), NULL for
 * nowhere. Notes the send for the direct path's liveness (call once per packet sent). */
const struct endpoint *path_send_ep(struct peer *p);
/* A usable session and a direct path that answers (without a relay: a usable session). A
 * session the relay carries does not end punching: punching is for the direct path. */
int path_direct_usable(const struct peer *p);
/* A relay is granted and the direct path, which answered before, went silent. */
int path_direct_lost(const struct peer *p, double now);
/* A relay is granted, the mediator's last punch ran to its end, and no direct path answers. */
int path_punch_failed(const struct peer *p, double now);
/* t_relay: probes the direct endpoint (a ping sent there) when it is due. */
void path_relay_tick(struct peer *p);
/* A packet authenticated from a relay link that is not this peer's relay (any more). */
int path_is_relay_ep(const struct peer *p, const struct endpoint *ep);
/* PATH_LOST_MISSES pings went unanswered: mark the path lost (status none, handshakes to
 * every candidate from now on) and send a fresh initiation there. Calls nothing outside. */
void path_mark_lost(struct peer *p);
/* Tells the owner (ops.path_lost) so it can ask the mediator for a punch. The owner's code
 * runs: call it last, p may be gone afterwards. */
void path_ask_punch(struct peer *p);
/* Lost for PATH_LOST_FAST: the owner resets the peer's connections (ops.peer_gone), once per
 * loss. The owner's code runs: call it last, p may be gone afterwards. */
void path_reset_conns(struct peer *p);
/* One punch round (t_punch fired). Returns 1 if more rounds follow, 0 if the punch is over. */
int path_punch_round(struct peer *p);
/* One burst of birthday probes (t_spray). Returns 1 if more follow. */
int path_spray_tick(struct peer *p);
/* t_bday: ends an attempt without a winner, or closes a kept socket the path left. Returns 1
 * to be called again after BDAY_CHECK. */
int path_bday_check(struct peer *p);
/* The peer goes: its socket set and probes with it. */
void path_free(struct peer *p);

/* timers.c, rekey policy on the data path. */
void timers_check_rekey_on_send(struct peer *p, const struct keypair *kp);
void timers_check_rekey_on_receive(struct peer *p, const struct keypair *kp);
void timers_ping_started(struct pending_ping *pp);

/* hslimit.c: rate/burst per source (addr: ep_source_key(), an IPv4 address or a hash of an
 * IPv6 /64), applied only while all sources together exceed
 * load_rate/load_burst (under load). */
struct hslimit *hslimit_new(struct ev_loop *loop, double rate, double burst, double load_rate,
    double load_burst);
void hslimit_free(struct hslimit *rl);
/* 1 if a packet from addr may be processed now (not under load, or within addr's bucket). */
int hslimit_allow(struct hslimit *rl, uint32_t addr, double now);
/* 0 when not under load (one packet of the load budget is taken), 1 under load: then only
 * sources that proved their address (mac2) get through, within hslimit_allow_ip. */
int hslimit_loaded(struct hslimit *rl, double now);
/* addr's own bucket, regardless of load. */
int hslimit_allow_ip(struct hslimit *rl, uint32_t addr, double now);
/* Tests: change the load budget (0 rate and burst: always under load). */
void hslimit_set_load(struct hslimit *rl, double load_rate, double load_burst);

#endif
