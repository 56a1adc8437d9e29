/*
 * medclient_int: what the files of medclient/ share and nobody else may see: struct medclient
 * and the calls between the concerns (docs/PROTOCOL.md 3 and 4.4 describe the protocol).
 *
 *   conn.c      the connection state machine: resolve, connect, HELLO/WELCOME, dispatch of
 *               server messages, PING, idle timeout, reconnect backoff; medclient_new/free.
 *   view.c      the membership view: NETWORK / MEMBER / *_GONE deltas and the refresh sweep.
 *   authz.c     the authorization policy: the one place that decides who is a peer.
 *   requests.c  requests waiting for their RESULT, their deadlines and failures.
 *   probe.c     UDP probes to the mediator and the public endpoint it reports; the entry
 *               point for every mediator datagram the transport hands us.
 *   natprobe.c  our part of NAT classification (PROTOCOL.md 3.1): the probes of a NAT_PLAN,
 *               what came back, NAT_REPORT, and the last NAT_INFO.
 *   cand.c      our gateway's port mappings, sent as MSG_CANDIDATES (PROTOCOL.md 3.4).
 *   punch.c     the last PUNCH per peer (PROTOCOL.md 3.2): kept for display, handed out
 *               through ops->punch; dropped when its member leaves the view.
 *   names.c     name normalisation and resolution.
 *
 * Timers (each file owns its own; all timing policy is in the constants below):
 *   retry    conn.c, one-shot: reconnect after a failure; 1 s doubling to 30 s, times
 *            [0.5, 1) jitter, reset by a WELCOME.
 *   ping     conn.c, every 15 s while connected: PING the server.
 *   idle     conn.c, 45 s without any message from the server: drop the connection, reconnect.
 *   probe    probe.c, after WELCOME: UDP_PROBE now, then 1 s, 2 s, 3 s later, then every 15 s.
 *   refresh  view.c, 5 s after WELCOME at the latest: end of the refresh burst (sweep).
 *   nat_p1   natprobe.c, from a NAT_PLAN: UDP_NAT_PROBE to target 0 now, +100 ms, +200 ms.
 *   nat_p2   natprobe.c, phase2_ms after the plan: targets 1..n-1, the same again 300 ms later.
 *   nat_hp   natprobe.c, 2 s after the UDP_HAIRPIN: it did not come back.
 *   nat_rep  natprobe.c, 200 ms after the first unreported change: send NAT_REPORT.
 *   request  requests.c, the earliest pending request deadline (10 s per request).
 *
 * Refresh boundary: the server re-sends NETWORK + MEMBER for everything right after WELCOME.
 * WELCOME bumps `gen`; NETWORK and MEMBER stamp their entries with it. The burst ends at the
 * first message that is neither NETWORK nor MEMBER (the PONG to the PING we send on WELCOME
 * is always such a message, as the server answers in order) or when the refresh timer fires;
 * then entries with an older stamp are swept. Nothing is removed before that, so a reconnect
 * never briefly revokes a peer that is still valid.
 */
#ifndef SHOAL_MEDCLIENT_INT_H
#define SHOAL_MEDCLIENT_INT_H

#include <ev.h>
#include <sodium.h>

#include "base/keyid.h"
#include "base/tokenbucket.h"
#include "crypto/identity.h"
#include "crypto/noise.h"
#include "medclient/medclient.h"
#include "mproto/ctrldial.h"

struct ctrlchan;

#define BACKOFF_MIN       CTRLDIAL_BACKOFF_MIN
#define BACKOFF_MAX       CTRLDIAL_BACKOFF_MAX
#define PING_INTERVAL     15.0
#define IDLE_TIMEOUT      45.0
#define PROBE_INTERVAL    15.0
#define PROBE_BURST_GAP   1.0
#define PROBE_BURST       3       /* re-sends 1 s apart after the first probe */
#define REFRESH_TIMEOUT   5.0
#define REQUEST_TIMEOUT   10.0
#define NAT_P1_PROBES     3       /* phase-1 probes to target 0 ... */
#define NAT_P1_GAP        0.1     /* ... this far apart */
#define NAT_P2_BURSTS     2       /* phase-2 bursts to targets 1..n-1 ... */
#define NAT_P2_GAP        0.3     /* ... this far apart */
#define NAT_HAIRPIN_WAIT  2.0     /* a UDP_HAIRPIN not back by then counts as lost */
#define NAT_REPORT_DELAY  0.2     /* observations are batched this long into one NAT_REPORT */

/* Short node ids in logs: the first 6 bytes of the key in hex. */

enum med_state {
	MED_IDLE,               /* not connected; retry timer may be running */
	MED_CONNECTING,         /* TCP connect + Noise handshake in progress */
	MED_HELLO,              /* HELLO sent, waiting for WELCOME */
	MED_ONLINE,             /* WELCOME received */
};

/* View entries: the public struct first (callers see only that), our bookkeeping after. */
struct mnode {
	struct med_member pub;
	uint32_t gen;                   /* refresh generation of the last MEMBER for it */
};

struct nnode {
	struct med_network pub;
	uint32_t gen;
};

/* A key we authorized, with what we told the owner (to skip no-op updates). */
struct auth {
	uint8_t key[KEY_LEN];
	uint32_t address;
	uint8_t n_endpoints;
	struct endpoint endpoints[MAX_ENDPOINTS];
	UT_hash_handle hh;
};

/* The last PUNCH for one peer key (punch.c). */
struct med_punch {
	struct msg_punch p;             /* p.peer is the hash key */
	UT_hash_handle hh;
};

/* A request waiting for its RESULT, or a failure waiting to be delivered. Sorted by deadline. */
struct pending {
	uint32_t req_id;
	double deadline;
	const char *fail;               /* text used when the deadline passes */
	medclient_result_cb cb;
	void *arg;
	struct pending *next;
};

/* Created by medclient_new, freed by medclient_free; the daemon holds it as d->med. */
struct medclient {
	struct ev_loop *loop;
	struct medclient_config cfg;
	const struct noise_keypair *key;
	struct transport *tp;           /* may be NULL */
	const struct medclient_ops *ops;
	void *ops_arg;

	/* conn.c */
	enum med_state state;
	int started;
	struct ctrlchan *ch;
	uint16_t tcp_port;              /* ch's local port (shared with TCP punches); 0 unknown */
	struct endpoint server;         /* resolved server address; UDP probes go here too */
	int have_server;
	unsigned cur_addr;              /* index into cfg.server.addr: the instance in use */
	ev_timer retry_timer, ping_timer, idle_timer;
	double backoff;
	uint64_t ping_nonce;
	char nick[NICK_MAX_LEN + 1];    /* as the mediator last confirmed it */
	char wanted_nick[NICK_MAX_LEN + 1];     /* sent in HELLO; "" keeps the server's */

	/* probe.c */
	ev_timer probe_timer;
	int probes_left;
	uint8_t udp_token[UDP_TOKEN_LEN];
	int have_token;
	struct endpoint public_ep;
	int have_public;

	/* natprobe.c: the current plan (one per connection at a time) and what it showed. */
	struct {
		int active;             /* a plan is running on this connection */
		struct msg_nat_plan plan;
		ev_timer p1_timer, p2_timer, hp_timer, rep_timer;
		int p1_left, p2_left;   /* probes / bursts still to send: the 3.1 budget */
		uint8_t probed;         /* bit i: a UDP_NAT_PROBE went to target i */
		struct msg_nat_report seen;     /* what we observed so far */
		struct msg_nat_report sent;     /* what the last NAT_REPORT said (at first: nothing) */
		int hp_sent;            /* the one UDP_HAIRPIN of this plan went out */
		uint64_t hp_nonce;
		struct endpoint hp_to;  /* our observed endpoint: where it went, whence it returns */
		struct msg_nat_info info;       /* the last NAT_INFO; kept across reconnects */
		int have_info;
	} nat;

	/* view.c */
	struct med_network *nets;       /* uthash by name; really struct nnode */
	ev_timer refresh_timer;
	uint32_t gen;
	int refreshing;

	/* authz.c */
	struct auth *auth;              /* uthash by key */

	/* punch.c */
	struct med_punch *punches;      /* uthash by p.peer */
	struct tokenbucket req_budget;  /* our PUNCH_REQUESTs, kept to the server's budget */
	uint64_t punch_requests_held;   /* ... and those over it, not sent */

	/* chat.c */
	struct med_chat *chat;

	/* cand.c: the mapped endpoints the owner gave us, re-sent after each WELCOME; the local
	 * endpoints the mediator last heard from us (HELLO, then LOCALS). */
	struct {
		uint8_t n;
		struct endpoint eps[CAND_MAX_MAPPED];
		uint8_t n_local;
		struct endpoint local[MAX_ENDPOINTS];
	} cand;

	/* requests.c */
	ev_timer req_timer;
	uint32_t next_req_id;
	struct pending *pending;

	uint64_t dropped_msgs;          /* messages that made no sense in our state */
};

static inline int
med_is_self(const struct medclient *m, const uint8_t key[KEY_LEN])
{
	return sodium_memcmp(key, m->key->pub, KEY_LEN) == 0;
}

/* conn.c: queues one message to the server; -1 (logged) if there is no usable channel. */
int med_send(struct medclient *m, const struct msg *msg);

/* view.c */
void med_view_init(struct medclient *m);
/* WELCOME: the server's full re-send starts now (bumps the generation, arms the timer). */
void med_view_refresh_begin(struct medclient *m);
/* The burst is over (no-op if none is running): sweep what was not re-sent. */
void med_view_refresh_end(struct medclient *m);
/* The connection dropped mid-burst: keep everything, an incomplete burst proves nothing. */
void med_view_refresh_abort(struct medclient *m);
void med_view_network(struct medclient *m, const struct msg_network *mn);
void med_view_member(struct medclient *m, const struct msg_member *mm);
void med_view_member_gone(struct medclient *m, const struct msg_member_gone *g);
void med_view_network_gone(struct medclient *m, const struct msg_network_gone *g);
/* Stops the refresh timer and frees the view (shutdown; authorizations are authz.c's). */
void med_view_free(struct medclient *m);

/* authz.c: bring the owner's peer table in line with the view... */
/* ...for one key; */
void med_authz_update(struct medclient *m, const uint8_t key[KEY_LEN]);
/* ...for every member of n (our own status there changed); */
void med_authz_update_network(struct medclient *m, const struct med_network *n);
/* ...for every key authorized so far (entries were removed from the view). */
void med_authz_update_authorized(struct medclient *m);
/* Forgets the authorizations without calling revoke (shutdown). */
void med_authz_free(struct medclient *m);

/* punch.c */
/* MSG_PUNCH: kept (replacing the peer's previous one) and passed to ops->punch. */
void med_punch(struct medclient *m, const struct msg_punch *p);
/* Members left the view: forget the PUNCH of every key no network lists any more. */
void med_punch_prune(struct medclient *m);
void med_punch_free(struct medclient *m);

/* cand.c: WELCOME: tell the new connection our mapped endpoints (if any). */
void med_cand_welcome(struct medclient *m);
/* Our local endpoints now (transport_local_endpoints, each on our peer port) into out, kept as
 * what the mediator heard: for HELLO. Returns how many. */
uint8_t med_cand_locals(struct medclient *m, struct endpoint out[MAX_ENDPOINTS]);

/* chat.c */
void med_chat_init(struct medclient *m);
void med_chat_free(struct medclient *m);
void med_chat_welcome(struct medclient *m);
void med_chat_msg(struct medclient *m, const struct msg_chat *c);
void med_chat_refused(struct medclient *m, const struct msg_chat_refused *r);

/* requests.c */
void med_req_init(struct medclient *m);
void med_req_result(struct medclient *m, const struct msg_result *r);
/* The connection is gone: every request in flight fails now with why. */
void med_req_fail_all(struct medclient *m, const char *why);
/* Drops every pending request without calling it back (shutdown). */
void med_req_free(struct medclient *m);

/* probe.c */
void med_probe_init(struct medclient *m);
/* WELCOME brought a token: probe now, then on the burst/interval schedule. */
void med_probe_start(struct medclient *m, const uint8_t token[UDP_TOKEN_LEN]);
/* Disconnected: the token is void until the next WELCOME. */
void med_probe_stop(struct medclient *m);

/* natprobe.c (needs the UDP token of probe.c: plans only run while it is valid) */
void med_nat_init(struct medclient *m);
/* MSG_NAT_PLAN: replaces any running plan and starts phase 1 at once. */
void med_nat_plan(struct medclient *m, const struct msg_nat_plan *p);
/* MSG_NAT_INFO: kept for medclient_nat_info. */
void med_nat_info(struct medclient *m, const struct msg_nat_info *info);
/* A decoded UDP_PROBE_REPLY from `from`: counted if from a target we probed. Returns 1 if it
 * was a plan target's reply, else 0. */
int med_nat_reply(struct medclient *m, const struct endpoint *from, const struct endpoint *seen);
/* UDP_NAT_TEST or UDP_HAIRPIN (by pkt[0]); anything not matching the plan is dropped. */
void med_nat_udp(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len);
/* Disconnected or freed: the plan ends, every natprobe timer stops; the last info stays. */
void med_nat_stop(struct medclient *m);

#endif
