/*
 * mediator: the membership logic of shoal-server, free of sockets and of the event loop.
 * Sessions (one per authenticated control connection) feed it decoded messages; it answers,
 * keeps the store up to date, and pushes deltas (MSG_MEMBER / MSG_MEMBER_GONE /
 * MSG_NETWORK_GONE / MSG_NETWORK) to exactly the connected nodes a change concerns, from
 * inside the call that caused the change. The transport is reached only through struct
 * medsrv_io, so tests drive it with fake connections.
 *
 * Owns: sessions (struct msess), the key and UDP-token indexes of connected nodes, the join
 * and password rate limiter, requests parked for a password job, the hole-punching pacer
 * (punch.c), the relay pool (relaypool.c) and the relay of each pair with its grants
 * (relaygrant.c). Borrows: the store (owned by whoever called medsrv_new).
 */
#ifndef SHOAL_SERVER_MEDIATOR_H
#define SHOAL_SERVER_MEDIATOR_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"
#include "server/natprobe.h"
#include "server/punchplan.h"
#include "server/pwjob.h"
#include "server/store.h"

struct medsrv;
struct msess;

struct medsrv_io {
	/* Queue m on conn. Never re-enters the mediator; a failing connection is closed by the
	 * transport later (not from inside this call). */
	void (*send)(void *arg, void *conn, const struct msg *m);
	/* The mediator dropped conn's session (a newer connection with the same key replaced it,
	 * or it broke the protocol). The transport closes conn and must not pass it to
	 * medsrv_session_* again. May be called from inside medsrv_session_msg for that conn. */
	void (*kick)(void *arg, void *conn);
	/* Monotonic seconds (rate limiting, NAT classification). */
	double (*now)(void *arg);
	void *arg;
	/* NAT classification (PROTOCOL.md 3.1); both may be NULL when cfg.n_nat_socks is 0.
	 * udp_send: best effort, len bytes from UDP socket sock (index into cfg.nat_socks).
	 * timer: (re)arms conn's one NAT timer to fire `after` s from now (after < 0: stop);
	 * when it fires the transport calls medsrv_session_timer. Neither re-enters. */
	void (*udp_send)(void *arg, int sock, const struct endpoint *to, const uint8_t *buf,
	    size_t len);
	void (*timer)(void *arg, void *conn, double after);
	/* Hole punching (PROTOCOL.md 3.2): (re)arms the server's one punch timer to fire `after`
	 * s from now (after < 0: stop); when it fires the transport calls medsrv_punch_timer.
	 * Never re-enters. NULL: plans go out at once, not serialised per sequential NAT. */
	void (*punch_timer)(void *arg, double after);
	/* Password jobs off the loop (server/pwpool.h): queue a copy of job; 0, or -1 when the
	 * queue is full. The result goes to medsrv_pw_done, never from inside this call. NULL:
	 * jobs run inline (tests, fuzzing). */
	int (*pw_submit)(void *arg, const struct pw_job *job);
	/* Unix seconds (relay grants' expiry). NULL: time(). */
	double (*wall)(void *arg);
};

enum { MEDSRV_RELAY_ALLOW_MAX = 64 };

struct medsrv_config {                   /* copied by medsrv_new */
	uint32_t range;                 /* virtual network, host order, e.g. 5.0.0.0 */
	uint8_t prefix_len;             /* 1..30 */
	unsigned long long pw_opslimit; /* crypto_pwhash_str limits for new passwords */
	size_t pw_memlimit;
	/* The server's UDP sockets, for NAT classification; 0 sockets: no classification. */
	uint8_t n_nat_socks;
	struct natsock nat_socks[NATPROBE_MAX_SOCKS];
	unsigned chat_keep;             /* chat history per conversation; 0: the default */
	/* New node keys one source address may register a minute; 0: the default (jl_budget),
	 * UINT_MAX: no limit. */
	unsigned register_budget;
	/* Pairs given a relay at most (PROTOCOL.md 8.4); 0: RELAYGRANT_MAX_PAIRS. */
	unsigned relay_pairs;
	/* The static keys of the relays that may register (PROTOCOL.md 8.1). */
	unsigned n_relay_allow;
	uint8_t relay_allow[MEDSRV_RELAY_ALLOW_MAX][KEY_LEN];
};

struct medsrv_stats {                    /* counters, for logs and tests */
	uint64_t probes_ok;
	uint64_t probes_unknown;        /* UDP_PROBE with a token we never gave out */
	uint64_t nat_probes_ok;         /* UDP_NAT_PROBE for a node's current test */
	uint64_t nat_probes_bad;        /* unknown token, stale test, wrong socket */
	uint64_t nat_reports_stale;     /* NAT_REPORT for another test */
	uint64_t msgs_ignored;          /* messages a client must not send, or duplicate HELLOs */
	uint64_t punch_plans;           /* pairs planned (two PUNCH messages each) */
	uint64_t punch_dropped;         /* plans refused by a bound of punch.c */
	uint64_t punch_deferred;        /* triggers inside a pair's window, planned when it opens */
	uint64_t punch_requests;        /* MSG_PUNCH_REQUESTs received */
	uint64_t punch_requests_limited;        /* ... over the node's budget: dropped */
	uint64_t requests;
	uint64_t registrations_limited; /* HELLOs of new keys refused for their source */
	uint64_t sessions;              /* currently open sessions */
};

struct medsrv *medsrv_new(struct store *st, const struct medsrv_config *cfg,
    const struct medsrv_io *io);
/* Frees every session without calling io->kick (the transport frees its own connections). */
void medsrv_free(struct medsrv *m);

/* A connection finished its handshake as key. The session lives until medsrv_session_close
 * or io->kick. */
struct msess *medsrv_session_open(struct medsrv *m, const uint8_t key[KEY_LEN], void *conn);
/* The local endpoint of s's TCP connection (getsockname): where a wildcard listener's NAT
 * plan points. Call before the HELLO arrives; without it a wildcard listener plans nothing. */
void medsrv_session_local(struct medsrv *m, struct msess *s, const struct endpoint *local);
/* The source address of s's TCP connection, for the per-source limits of password
 * operations and failed joins (joinlimit.h), and, as we see it (getpeername), its public TCP
 * endpoint for the port it punches TCP from (PROTOCOL.md 3.3). Without it only per-key
 * limits apply and no `tcp` plan is made. */
void medsrv_session_remote(struct medsrv *m, struct msess *s, const struct endpoint *remote);
void medsrv_session_msg(struct medsrv *m, struct msess *s, const struct msg *msg);
/*
 * Forgets registrations nobody uses: nodes not connected, last seen more than max_age seconds
 * before now (Unix seconds), in no network (store_nodes_reclaim). Returns how many, or -1.
 */
int medsrv_reclaim(struct medsrv *m, int64_t now, int64_t max_age);
/* A password job submitted through io.pw_submit finished: its request is handled again with
 * the result (if its session is still the one that sent it). */
void medsrv_pw_done(struct medsrv *m, struct pw_job *job);
/* s's NAT timer (io.timer) fired. */
void medsrv_session_timer(struct medsrv *m, struct msess *s);
/* The punch timer (io.punch_timer) fired: plans the pairs whose turn has come. */
void medsrv_punch_timer(struct medsrv *m);
/* The connection is gone: presence deltas go out, s is freed. */
void medsrv_session_close(struct medsrv *m, struct msess *s);

/*
 * A UDP_PROBE with token arrived from `from`. Returns 0 (known token: the node's observed
 * endpoint is updated and pushed if it changed; answer with a UDP_PROBE_REPLY carrying from)
 * or -1 (unknown token: ignore, counted).
 */
int medsrv_probe(struct medsrv *m, const uint8_t token[UDP_TOKEN_LEN], const struct endpoint *from);
/*
 * A UDP_NAT_PROBE arrived on UDP socket sock (index into cfg.nat_socks) from `from`. Returns 0
 * (answer with a UDP_PROBE_REPLY carrying from, from the same socket; on target 0 it also
 * updates the observed endpoint like medsrv_probe) or -1 (drop, counted).
 */
int medsrv_nat_probe(struct medsrv *m, const struct nat_probe *p, int sock,
    const struct endpoint *from);

const struct medsrv_stats *medsrv_stats(const struct medsrv *m);

/*
 * Several instances on one PostgreSQL store (server/cluster.c). The mediator tells the other
 * instances what changed through `event`, and asks `remote` whether a node is connected to
 * another instance (and where it can be reached): such a node counts as online. Kinds:
 *   MEDPEER_NODE     key's presence, endpoints or nick changed (network NULL); a session of
 *                    key here is dropped when key is now connected to another instance
 *   MEDPEER_MEMBER   key's membership in network changed (joined, approved, online switch)
 *   MEDPEER_GONE     key left network (val: it was pending)
 *   MEDPEER_KICKED   key's own session, wherever it is, gets NETWORK_GONE (val: the reason)
 *   MEDPEER_NETWORK  network's settings changed, or it was deleted (key NULL)
 *   MEDPEER_CHAT     key's mailbox grew (network NULL)
 * medsrv_peer_event applies an event another instance sent to this instance's sessions
 * (and never sends it on). Without medsrv_set_peers nothing is sent (one instance).
 */
enum { MEDPEER_NODE = 'n', MEDPEER_MEMBER = 'm', MEDPEER_GONE = 'g', MEDPEER_KICKED = 'x',
    MEDPEER_NETWORK = 'w', MEDPEER_CHAT = 'c' };
/* MEDPEER_NODE's val: bits. NICK: the node's nick changed (a copy of it is read again).
 * NEW: the node was registered just now and is in no network (cluster.c checks that again when
 * it writes the event), so there is nothing to push or read: in a crowd of new nodes every
 * instance read each one's networks, and its row for the nick. */
enum { MEDPEER_NODE_NICK = 1, MEDPEER_NODE_NEW = 2 };
/* MEDPEER_MEMBER's val: 0, the row changed (the others read it again); or SWITCH, only the
 * member's online switch changed, to bit ON. A switch is a single-column write, so its
 * events, in commit order, keep a copy of the row exact without a read: at 100 changes a
 * second every instance read each changed row back, ~6 reads per change in all. */
enum { MEDPEER_MEMBER_ON = 1, MEDPEER_MEMBER_SWITCH = 2 };

struct medsrv_peers {
	void (*event)(void *arg, char kind, const char *network, const uint8_t *key, uint8_t val);
	/* 1 with key's endpoints when another instance holds its session, else 0 */
	int (*remote)(void *arg, const uint8_t key[KEY_LEN], struct endpoint *eps, uint8_t *n);
	/* A pair split over two instances (PROTOCOL.md 4.8), both may be NULL: side->key's
	 * punch side, to the instance holding `to`; a MSG_PUNCH (its half of a plan) or
	 * MSG_RELAY_GRANT made here for `to`, likewise. */
	void (*side)(void *arg, const uint8_t to[KEY_LEN], const struct punch_side *side);
	void (*forward)(void *arg, const uint8_t to[KEY_LEN], const struct msg *m);
	void *arg;
};

void medsrv_set_peers(struct medsrv *m, const struct medsrv_peers *p);
void medsrv_peer_event(struct medsrv *m, char kind, const char *network, const uint8_t *key,
    uint8_t val);
/* What another instance sent for a split pair (PROTOCOL.md 4.8): a remote node's side
 * (`to`: zeros, or the peer a PUNCH_REQUEST named; both are treated alike), which arrived after
 * hop_ms, its pairs with our nodes planned here; a MSG_PUNCH or MSG_RELAY_GRANT for our node
 * made there (anything else is dropped). */
void medsrv_peer_side(struct medsrv *m, const uint8_t to[KEY_LEN], const struct punch_side *side,
    unsigned hop_ms);
void medsrv_peer_forward(struct medsrv *m, const uint8_t to[KEY_LEN], const struct msg *msg);
/* cb for the key of every session connected here (cluster.c writes them all again after the
 * other instances took this one for dead). cb must not open or close sessions. */
void medsrv_sessions_each(struct medsrv *m, void (*cb)(void *arg, const uint8_t key[KEY_LEN]),
    void *arg);
/* key's session here, with the endpoints MEMBER would carry: 1, or 0 when not connected here. */
int medsrv_session_endpoints(struct medsrv *m, const uint8_t key[KEY_LEN],
    struct endpoint eps[MAX_ENDPOINTS], uint8_t *n);

/*
 * Relays (PROTOCOL.md 8). Standalone relays register over their own control connection
 * (RELAY_HELLO on a session, refused unless cfg.relay_allow lists its key). The embedded relay
 * joins here, in-process: udp.addr 0 means each node is told the address it reached the
 * mediator on. Returns its id (0: pool full) and the relay key its engine must use.
 */
uint16_t medsrv_relay_embedded(struct medsrv *m, const char *name, const struct endpoint *udp,
    uint16_t tcp_port, uint8_t relay_key[32]);
/* The embedded relay's counters (its health: call at least every few seconds). */
void medsrv_relay_embedded_stats(struct medsrv *m, uint16_t id, const struct msg_relay_stats *st);
/* Once a second: relays silent for 10 s are dead (the pool goes out, pairs move), grants near
 * their expiry are renewed. */
void medsrv_relay_tick(struct medsrv *m);
/* The relay pair (a, b) is on, 0 for none (tests). */
uint16_t medsrv_relay_of(struct medsrv *m, const uint8_t a[KEY_LEN], const uint8_t b[KEY_LEN]);

#endif
