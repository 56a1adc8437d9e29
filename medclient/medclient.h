/*
 * medclient: the daemon's side of the mediator control channel. Connects over TCP
 * (ctrlchan, pinned server key), says HELLO, keeps the membership view the server pushes
 * (NETWORK / MEMBER / MEMBER_GONE / NETWORK_GONE deltas), decides from it which nodes are
 * authorized peers, sends UDP_PROBEs through the transport so the mediator learns our public
 * endpoint, takes part in the mediator's NAT classification, and reconnects with exponential backoff (1 s .. 30 s, jitter) when the server is
 * away. While disconnected the membership view and the authorizations stay as they were.
 *
 * It knows nothing of the daemon: what it learns leaves through struct medclient_ops (our
 * address, authorize, revoke, punch), which daemon/main.c wires to the netstack and the peer table.
 * The transport (core/transport.h) is a lower layer and is called directly.
 *
 * Authorization policy (medclient/authz.c, the only place that decides it): a member is an
 * authorized peer when some network has both us and it as full (non-pending) members, both
 * switched on there (MEMF_ACTIVE, whether or not connected to the mediator). Never ourselves.
 *
 * Names (medclient/names.c, the one resolver every front end uses through base/peerdir.h):
 * see medclient_resolve and medclient_name_normalize below.
 *
 * Owns: the ctrlchan, the membership view (struct med_network/med_member), the set of keys it
 * authorized, pending requests, its timers. Everything runs on the loop given to
 * medclient_new; no function may be called from another thread.
 */
#ifndef SHOAL_MEDCLIENT_H
#define SHOAL_MEDCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "crypto/identity.h"
#include "mproto/msg.h"

struct ev_loop;
struct medclient;
struct noise_keypair;
struct transport;

/* Node id prefixes shorter than this are too vague to name a peer. */
#define MEDCLIENT_ID_PREFIX_MIN 8

struct med_member {
	uint8_t key[KEY_LEN];           /* hash key */
	uint32_t address;
	char nick[NICK_MAX_LEN + 1];
	uint8_t flags;                  /* MEMF_* */
	uint8_t n_endpoints;
	struct endpoint endpoints[MAX_ENDPOINTS];
	UT_hash_handle hh;
};

struct med_network {
	char name[NAME_MAX_LEN + 1];    /* hash key */
	uint8_t flags;                  /* NETF_* */
	uint8_t owner[KEY_LEN];
	uint8_t my_flags;               /* MEMF_* for us */
	struct med_member *members;     /* uthash by key; includes ourselves */
	UT_hash_handle hh;
};

struct medclient_config {
	struct conn_string server;      /* one mediator, maybe several instances (failover) */
	char nick[NICK_MAX_LEN + 1];    /* wanted nick (--nick); may be empty: keep the server's */
	char state_dir[4096];           /* where chat.seq is kept; "" keeps nothing on disk */
};

/*
 * What the mediator client tells its owner. Called from the loop, never from inside a
 * medclient_* call of the owner's; the callbacks must not free the medclient.
 */
struct medclient_ops {
	/* WELCOME gave us our virtual address (host byte order). */
	void (*address)(void *arg, uint32_t vaddr, uint8_t prefix_len);
	/* The authorization policy (authz.c) lets this member in, or updates it (new address or
	 * endpoints). Only called when something changed. */
	void (*authorize)(void *arg, const uint8_t key[KEY_LEN], uint32_t vaddr,
	    const struct endpoint *eps, size_t n_eps);
	/* ...and no longer does. Only for keys authorize was called with. */
	void (*revoke)(void *arg, const uint8_t key[KEY_LEN]);
	/* The mediator's MSG_PUNCH (PROTOCOL.md 3.2) for the peer p->peer, as decoded, right
	 * after it is kept for medclient_punch_info: where and when to send handshake
	 * initiations (start_ms counts from now). Strategy PUNCH_NONE carries no targets and
	 * means "no punching for this pair"; the owner still gets it, so a newer plan can cancel
	 * an older one. Only for members of the view (never ourselves); may be NULL. */
	void (*punch)(void *arg, const struct msg_punch *p);
	/* The mediator classified our NAT (again): e.g. its binding lifetime decides how often
	 * idle paths must be refreshed. May be NULL. */
	void (*nat_info)(void *arg, const struct msg_nat_info *info);
	/* MSG_RELAYS: the relay pool, the full set (PROTOCOL.md 8). May be NULL. */
	void (*relays)(void *arg, const struct msg_relays *r);
	/* MSG_RELAY_GRANT: reach the peer g->peer through this relay (relay_id 0: stop). May be
	 * NULL. */
	void (*relay_grant)(void *arg, const struct msg_relay_grant *g);
};

/*
 * cfg is copied. key (our long-term identity) and tp (the peer UDP socket, which carries the
 * UDP probes; may be NULL: no probes, no local endpoints in HELLO) are borrowed and must
 * outlive the client. ops is borrowed too (usually a static const); arg is passed to it.
 * Returns NULL on allocation failure.
 */
struct medclient *medclient_new(struct ev_loop *loop, const struct medclient_config *cfg,
    const struct noise_keypair *key, struct transport *tp, const struct medclient_ops *ops,
    void *arg);
/* Revokes nothing: at shutdown the peer table goes away with it. NULL is fine. */
void medclient_free(struct medclient *m);
/* Starts connecting (and keeps reconnecting). */
void medclient_start(struct medclient *m);
/* "HOST:PORT" of the mediator instance we are connected to (status --json "mediator"); -1 when
 * not connected. */
int medclient_server(const struct medclient *m, char *out, size_t cap);
int medclient_connected(const struct medclient *m);
/* The local port of the mediator connection, bound to be shared (SO_REUSEPORT): where TCP
 * punches leave from (PROTOCOL.md 3.3). 0 while there is no connection. */
uint16_t medclient_tcp_port(const struct medclient *m);

/*
 * Our nick as the mediator last confirmed it ("" before the first WELCOME). A SET_NICK
 * confirmed by the server (our own MEMBER record with a new nick) also becomes the nick we ask
 * for in later HELLOs, so a reconnect does not undo `set-nick` with the --nick of start-up.
 */
const char *medclient_nick(const struct medclient *m);

/*
 * A mediator datagram from the transport: UDP_PROBE_REPLY, UDP_NAT_TEST or UDP_HAIRPIN (the
 * owner routes these three types here). A reply sets our public endpoint only when it comes
 * from the server's address and port; from a NAT_PLAN target it counts for the NAT
 * classification (PROTOCOL.md 3.1). Anything else is dropped and counted.
 */
void medclient_udp_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len);
/* Our public endpoint as the mediator last saw it; 0 if unknown, 1 if *ep was filled. */
int medclient_public_endpoint(const struct medclient *m, struct endpoint *ep);

/*
 * The endpoints our gateway mapped to our peer UDP socket (UPnP-IGD / NAT-PMP; n = 0: none
 * any more). Kept, and sent to the mediator (MSG_CANDIDATES, PROTOCOL.md 3.4) now if
 * connected and after every WELCOME, so peers get them in our MEMBER endpoints. At most
 * CAND_MAX_MAPPED are kept; zero ones are left out.
 */
void medclient_set_mapped(struct medclient *m, const struct endpoint *eps, size_t n);

/*
 * The machine's interface addresses may have changed (base/addrwatch): when our local
 * endpoints differ from what the mediator last heard and we are connected, they go to it in
 * MSG_LOCALS (PROTOCOL.md 3.5), so peers learn a new LAN or IPv6 address without a reconnect.
 */
void medclient_locals_changed(struct medclient *m);

/*
 * The NAT classification the mediator last sent (MSG_NAT_INFO), kept across reconnects: the
 * NAT does not change because the mediator went away. 0 and *out filled, or -1 if none yet.
 */
int medclient_nat_info(const struct medclient *m, struct msg_nat_info *out);

/*
 * The last MSG_PUNCH the mediator sent for the peer key (for `shoal list` / `shoal ping`: the
 * strategy and why there is no direct path). Kept across reconnects like the view, dropped
 * when the key leaves the view (no network lists it any more). 0 and *out filled, or -1.
 */
int medclient_punch_info(const struct medclient *m, const uint8_t key[KEY_LEN],
    struct msg_punch *out);

/*
 * Our path to the peer key stopped answering (the peer layer says so): asks the mediator to
 * plan the pair again (MSG_PUNCH_REQUEST, PROTOCOL.md 3.2); its PUNCH comes back through
 * ops->punch. 0 when sent; -1 when not connected, for ourselves or a key not in the view
 * (nothing sent: after a reconnect the mediator plans every pair anyway), or over the
 * mediator's budget (PUNCH_REQ_BURST, then PUNCH_REQ_RATE a second: held, counted). The
 * caller need not rate-limit.
 */
int medclient_punch_request(struct medclient *m, const uint8_t key[KEY_LEN]);

/* Our RTTs to the relay pool (MSG_RELAY_RTT). 0 when sent, -1 when not connected. */
int medclient_relay_rtt(struct medclient *m, const struct msg_relay_rtt *r);

/*
 * Sends a request (req->req_id is assigned here). cb runs exactly once, never from inside
 * this call: with the server's RESULT, or with status RES_ERR_INTERNAL and text "mediator not
 * connected" / "mediator connection lost" / "timed out" (10 s). Returns 0 or -1 (then cb is
 * not called). medclient_free drops pending requests without calling them.
 */
typedef void (*medclient_result_cb)(void *arg, const struct msg_result *res);
int medclient_request(struct medclient *m, struct msg_request *req, medclient_result_cb cb,
    void *arg);

/* The membership view (uthash head, read-only for callers; changes only on the loop). */
const struct med_network *medclient_networks(const struct medclient *m);

/*
 * A peer name as a user types it anywhere, reduced to what the view knows: one trailing "."
 * is removed, then one trailing ".shoal" (any case) if something is left before it. So "bob",
 * "bob.", "BOB.shoal" and "bob.Shoal." are all "bob"/"BOB"; "5.0.0.2." is "5.0.0.2".
 * in and out may be the same buffer. Returns the length written to out (0: nothing left, which
 * names nobody), or -1 if it does not fit in cap bytes (out is then "").
 */
int medclient_name_normalize(const char *in, char *out, size_t cap);

/*
 * Resolves a peer name as a user would type it, after medclient_name_normalize: a nick
 * (case-insensitive), a node id (hex of the key, any prefix of at least
 * MEDCLIENT_ID_PREFIX_MIN digits, either case), or the dotted virtual address of a member.
 * Every member of every network in the view counts, pending ones and ourselves included.
 * Returns 0 and fills key/addr, or -1 (unknown, or ambiguous: matches several keys).
 */
int medclient_resolve(const struct medclient *m, const char *name, uint8_t key[KEY_LEN],
    uint32_t *addr);
/*
 * The same match within one network (evict, approve, reject name a member of that network,
 * pending ones included). Returns 1 and fills key, 0 if nobody matches, -1 if several do.
 */
int medclient_resolve_in(const struct med_network *n, const char *name, uint8_t key[KEY_LEN]);
/*
 * The reverse: the name of the member at virtual address vaddr, "NICK.shoal", which resolves
 * back to it. When the nick is no DNS label (spaces, dots, ...) or other members share it, the
 * node id's first 16 hex digits stand in ("3f2a9c01d4e5b6a7.shoal"). 0, or -1 (nobody has that
 * address, or out is too small).
 */
int medclient_name_of(const struct medclient *m, uint32_t vaddr, char *out, size_t cap);

/*
 * Chat (chat.c, PROTOCOL.md 4.6). Messages arrive from the mediator's mailbox exactly once
 * (numbers already seen, kept in STATE_DIR/chat.seq, are dropped) and are kept in a ring of
 * the newest MED_CHAT_RING, each with a local id that only grows.
 */
enum { MED_CHAT_RING = 256, MED_CHAT_SEND_TIMEOUT_S = 10 };

struct med_chat_entry {
	uint64_t id;                    /* local, increasing; 0: none */
	int64_t ts_ms;
	uint8_t kind;                   /* enum chat_kind */
	char network[NAME_MAX_LEN + 1];
	uint8_t peer[KEY_LEN];          /* private: the other one of the pair */
	uint8_t sender[KEY_LEN];
	char nick[NICK_MAX_LEN + 1];
	int mine;                       /* we sent it */
	int sealed;                     /* private, and it could not be opened: text is empty */
	char text[CHAT_TEXT_MAX + 1];
};

/* err NULL: the mediator took the message (e its stored copy); else why not. */
typedef void (*med_chat_sent_cb)(void *arg, const char *err, const struct med_chat_entry *e);
/* Sends text (1..CHAT_TEXT_MAX bytes, no NUL) to a network we are an approved member of, or
 * to one peer (sealed with crypto_box for it). cb fires once: when our own copy comes back,
 * or with an error (not connected, refused, no answer within MED_CHAT_SEND_TIMEOUT_S).
 * 0, or -1 (bad arguments; cb not called). */
int medclient_chat_send(struct medclient *m, const struct chat_conv *to, const char *text,
    med_chat_sent_cb cb, void *arg);
/* Ring entries with id > after, oldest first, at most max; returns how many. */
size_t medclient_chat_since(const struct medclient *m, uint64_t after,
    struct med_chat_entry *out, size_t max);
/* The highest id given so far (0: none). */
uint64_t medclient_chat_last(const struct medclient *m);
/* cb(arg) once, when the next new entry arrives (or the client is freed: then with 0). A
 * returned handle cancels it (medclient_chat_unwait); NULL on allocation failure. */
typedef void (*med_chat_wait_cb)(void *arg, int alive);
void *medclient_chat_wait(struct medclient *m, med_chat_wait_cb cb, void *arg);
void medclient_chat_unwait(struct medclient *m, void *handle);
/* The newest limit (1..CHAT_HISTORY_MAX) messages of a conversation, from the mediator:
 * cb(arg, err, entries, n) once (err NULL on success). 0, or -1 (cb not called). */
typedef void (*med_chat_history_cb)(void *arg, const char *err,
    const struct med_chat_entry *e, size_t n);
int medclient_chat_history(struct medclient *m, const struct chat_conv *conv, unsigned limit,
    med_chat_history_cb cb, void *arg);

#endif
