/*
 * msg: encode/decode of every mediator control message (the plaintext of one control frame)
 * and of the UDP probe packets. Pure: no I/O, no allocation. Shared by server/ and the daemon.
 * Every decoder checks each field's bounds, rejects trailing bytes, and leaves *m unspecified
 * on failure (returns -1). Layouts are in docs/PROTOCOL.md.
 */
#ifndef SHOAL_MSG_H
#define SHOAL_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"
#include "base/endpoint.h"
#include "mproto/chatmsg.h"

struct msg_hello {                      /* MSG_HELLO */
	uint16_t version;               /* SHOAL_PROTO_VERSION */
	char nick[NICK_MAX_LEN + 1];    /* may be empty: keep the stored one */
	uint16_t udp_port;              /* our peer UDP socket's local port */
	uint8_t n_local;                /* local interface endpoints (LAN candidates) */
	struct endpoint local[MAX_ENDPOINTS];
};

struct msg_welcome {                    /* MSG_WELCOME */
	uint32_t address;               /* our stable virtual address */
	uint8_t prefix_len;             /* of the virtual network, e.g. 8 for 5.0.0.0/8 */
	uint8_t udp_token[UDP_TOKEN_LEN]; /* put in UDP_PROBE so the server can find us */
	char nick[NICK_MAX_LEN + 1];    /* our nick as the server has it */
};

struct msg_request {                    /* MSG_REQUEST */
	uint32_t req_id;
	uint8_t op;                     /* enum req_op */
	char network[NAME_MAX_LEN + 1]; /* empty for OP_SET_NICK */
	char password[PASSWORD_MAX_LEN + 1]; /* CREATE, JOIN, SET_PASS; may be empty */
	char arg[NICK_MAX_LEN + 1];     /* SET_NICK: the nick */
	uint8_t target[KEY_LEN];        /* APPROVE, REJECT, EVICT: the member's key; else zero */
	uint8_t flags;                  /* SET_ACCESS: NETF_*; CREATE: initial NETF_* */
};

struct msg_result {                     /* MSG_RESULT */
	uint32_t req_id;
	uint8_t status;                 /* enum result_status */
	char text[MSG_TEXT_MAX_LEN + 1]; /* human-readable detail, may be empty */
};

struct msg_network {                    /* MSG_NETWORK */
	char name[NAME_MAX_LEN + 1];
	uint8_t flags;                  /* NETF_* */
	uint8_t owner[KEY_LEN];
	uint8_t my_flags;               /* MEMF_* for ourselves in this network */
};

struct msg_member {                     /* MSG_MEMBER */
	char network[NAME_MAX_LEN + 1];
	uint8_t key[KEY_LEN];
	uint32_t address;
	char nick[NICK_MAX_LEN + 1];
	uint8_t flags;                  /* MEMF_* */
	uint8_t n_endpoints;            /* observed endpoint first, then local ones */
	struct endpoint endpoints[MAX_ENDPOINTS];
};

struct msg_member_gone {                /* MSG_MEMBER_GONE */
	char network[NAME_MAX_LEN + 1];
	uint8_t key[KEY_LEN];
};

struct msg_network_gone {               /* MSG_NETWORK_GONE */
	char name[NAME_MAX_LEN + 1];
	uint8_t reason;                 /* enum gone_reason */
};

enum gone_reason { GONE_LEFT = 0, GONE_EVICTED = 1, GONE_DELETED = 2, GONE_REJECTED = 3 };

struct msg_ping {                       /* MSG_PING, MSG_PONG */
	uint64_t nonce;
};

struct msg_nat_plan {                   /* MSG_NAT_PLAN (PROTOCOL.md 3.1) */
	uint16_t test_id;
	uint32_t nonce;
	uint16_t phase2_ms;             /* 0..10000 */
	uint8_t n_targets;              /* 1..NAT_MAX_TARGETS */
	struct endpoint targets[NAT_MAX_TARGETS];
};

enum nat_hairpin_seen { NAT_HP_UNTRIED = 0, NAT_HP_BACK = 1, NAT_HP_LOST = 2 };

struct msg_nat_report {                 /* MSG_NAT_REPORT */
	uint16_t test_id;
	uint16_t local_port;
	uint8_t replies;                /* bit i: reply for target i */
	uint8_t tests;                  /* bit k-1: UDP_NAT_TEST kind k (1, 2) */
	uint8_t lifetime_seen;          /* bit s: kind-3 test seq s (0..4) */
	uint8_t hairpin;                /* enum nat_hairpin_seen */
};

enum nat_udp { NAT_UDP_UNKNOWN = 0, NAT_UDP_OK = 1, NAT_UDP_BLOCKED = 2 };
enum nat_mapping { NAT_MAP_UNKNOWN = 0, NAT_MAP_EIM = 1, NAT_MAP_ADM = 2, NAT_MAP_APDM = 3 };
enum nat_filtering { NAT_FILT_UNKNOWN = 0, NAT_FILT_EIF = 1, NAT_FILT_ADF = 2, NAT_FILT_APDF = 3 };
enum nat_ports {
	NAT_PORTS_UNKNOWN = 0, NAT_PORTS_PRESERVED = 1, NAT_PORTS_FIXED = 2,
	NAT_PORTS_SEQUENTIAL = 3, NAT_PORTS_RANDOM = 4,
};
enum nat_hairpin { NAT_HAIRPIN_UNKNOWN = 0, NAT_HAIRPIN_YES = 1, NAT_HAIRPIN_NO = 2 };

struct msg_nat_info {                   /* MSG_NAT_INFO */
	uint8_t udp;                    /* enum nat_udp */
	uint8_t mapping;                /* enum nat_mapping */
	uint8_t filtering;              /* enum nat_filtering */
	uint8_t ports;                  /* enum nat_ports */
	uint16_t step;                  /* NAT_PORTS_SEQUENTIAL: 1..1024; else 0 */
	uint8_t hairpin;                /* enum nat_hairpin */
	uint16_t lifetime_s;            /* largest idle gap survived; 0 unknown */
	uint16_t lifetime_max_s;        /* first gap not survived; 0 none yet */
	struct endpoint public_ep;      /* observed at target 0 */
	uint8_t addrs;                  /* distinct server addresses used: 1 or 2 */
};

enum punch_strategy {
	PUNCH_NONE = 0, PUNCH_LAN = 1, PUNCH_SIMULTANEOUS = 2, PUNCH_PREDICT = 3, PUNCH_BIRTHDAY = 4,
	PUNCH_TCP = 5,                  /* TCP simultaneous open; targets are TCP endpoints */
};

struct msg_punch {                      /* MSG_PUNCH (PROTOCOL.md 3.2) */
	uint8_t peer[KEY_LEN];
	uint8_t strategy;               /* enum punch_strategy */
	uint8_t my_mapping, my_ports;   /* enum nat_mapping, enum nat_ports (one byte on the wire) */
	uint8_t peer_mapping, peer_ports;
	uint8_t peer_filtering;         /* enum nat_filtering */
	uint16_t start_ms;              /* 0..5000 */
	uint16_t interval_ms;           /* 0..2000 */
	uint8_t rounds;                 /* 0..10 */
	uint8_t n_targets;              /* 0..PUNCH_MAX_TARGETS; 0 with PUNCH_NONE */
	struct endpoint targets[PUNCH_MAX_TARGETS];
	/* PUNCH_BIRTHDAY only (on the wire only then, after the targets; else all 0). The
	 * random-port side gets sockets; the other side probes, rate, port_lo..port_hi. */
	uint16_t sockets;               /* extra UDP sockets to send from, 0..BIRTHDAY_SOCKETS_MAX */
	uint16_t probes;                /* probes to distinct random ports, 0..BIRTHDAY_PROBES_MAX */
	uint16_t rate;                  /* probes per second, 1..BIRTHDAY_RATE_MAX; 0 without */
	uint16_t port_lo, port_hi;      /* the probes' ports, BIRTHDAY_PORT_MIN..65535; 0 without */
};

struct msg_punch_request {              /* MSG_PUNCH_REQUEST (PROTOCOL.md 3.2, 4.2) */
	uint8_t peer[KEY_LEN];          /* the peer whose path stopped answering */
};

/*
 * MSG_CANDIDATES (PROTOCOL.md 3.4): the endpoints a gateway mapped to our peer UDP socket
 * (UPnP-IGD, NAT-PMP), which take packets from anyone. The full set, replacing the last one;
 * 0 withdraws them.
 */
struct msg_candidates {
	uint8_t n_mapped;               /* 0..CAND_MAX_MAPPED */
	struct endpoint mapped[CAND_MAX_MAPPED];
};

/*
 * MSG_LOCALS (PROTOCOL.md 3.5): the node's local interface endpoints changed since its HELLO (an
 * address came or went: a new IPv6 address, another LAN): the full set, replacing HELLO's.
 */
struct msg_locals {
	uint8_t n_local;                /* 0..MAX_ENDPOINTS */
	struct endpoint local[MAX_ENDPOINTS];
};

/*
 * Relays (PROTOCOL.md 8). A relay is known by its id, which the mediator assigns when it
 * registers (1..65535, never reused while the mediator runs) and which MSG_RELAYS, MSG_RELAY_RTT
 * and MSG_RELAY_GRANT refer to.
 */
struct msg_relay_hello {                /* MSG_RELAY_HELLO (relay -> mediator) */
	uint16_t version;               /* SHOAL_PROTO_VERSION */
	char name[RELAY_NAME_MAX_LEN + 1];
	struct endpoint udp;            /* where nodes send RELAY datagrams; addr 0: the mediator
					 * uses the relay's connection's source address */
	uint16_t tcp_port;              /* the relay's TCP transport (same address); 0: none */
};

struct msg_relay_welcome {              /* MSG_RELAY_WELCOME (mediator -> relay) */
	uint16_t relay_id;
	uint8_t relay_key[32];          /* RELAY_KEY_LEN: the key side secrets are derived from */
};

struct msg_relay_stats {                /* MSG_RELAY_STATS (relay -> mediator), every few s */
	uint32_t pairs;                 /* pairs bound now */
	uint64_t packets, bytes, drops; /* since the relay started */
};

struct msg_relay_info {
	uint16_t id;
	char name[RELAY_NAME_MAX_LEN + 1];
	struct endpoint udp;
	uint16_t tcp_port;              /* 0: none */
};

struct msg_relays {                     /* MSG_RELAYS (mediator -> node): the full pool */
	uint8_t n;                      /* 0..RELAY_POOL_MAX */
	struct msg_relay_info relays[RELAY_POOL_MAX];
};

enum { RELAY_RTT_UNREACHABLE = 0xffff };

struct msg_relay_rtt {                  /* MSG_RELAY_RTT (node -> mediator) */
	uint8_t n;                      /* 0..RELAY_POOL_MAX */
	struct {
		uint16_t id;
		uint16_t rtt_ms;        /* median of recent PONGs; RELAY_RTT_UNREACHABLE: none */
	} rtt[RELAY_POOL_MAX];
};

/* Why a pair is relayed, for `shoal list` and logs. */
enum relay_reason {
	RELAY_WHY_STARTING = 0,         /* while punching is tried: the first packet never waits */
	RELAY_WHY_NO_DIRECT = 1,        /* the two NATs cannot be punched (random vs random, ...) */
	RELAY_WHY_UDP_BLOCKED = 2,      /* a side has no UDP, and TCP punching is impossible */
	RELAY_WHY_PUNCH_FAILED = 3,     /* punching was tried and did not work */
	RELAY_WHY_DIRECT_LOST = 4,      /* the direct path died */
};

struct msg_relay_grant {                /* MSG_RELAY_GRANT (mediator -> node), per peer */
	uint8_t peer[KEY_LEN];          /* the peer this grant reaches */
	uint16_t relay_id;              /* 0: revoke: stop using any relay for this peer */
	struct endpoint udp;            /* the relay's, as in MSG_RELAYS */
	uint16_t tcp_port;
	uint64_t pair;                  /* the pair id (random, never 0) */
	uint8_t side;                   /* 0 or 1 */
	uint32_t expiry;                /* Unix seconds; the mediator sends a new grant before */
	uint8_t secret[32];             /* RELAY_SECRET_LEN: relaymsg_side_secret(key, pair, side,
					 * expiry) */
	uint8_t reason;                 /* enum relay_reason */
};

/* A relay's name as RELAY_HELLO carries it: 1..RELAY_NAME_MAX_LEN bytes of printable ASCII
 * without space. 1 or 0. */
int relay_name_valid(const char *s);

/* "starting", "no-direct", "udp-blocked", "punch-failed", "direct-lost" ("unknown" past). */
const char *relay_reason_name(uint8_t v);

/* "none", "lan", "simultaneous", "predict", "birthday", "tcp" ("unknown" past the end). */
const char *punch_strategy_name(uint8_t v);

/* For logs and `shoal status --json`: "eim", "apdf", "sequential", ... ("unknown" for 0). */
const char *nat_udp_name(uint8_t v);
const char *nat_mapping_name(uint8_t v);
const char *nat_filtering_name(uint8_t v);
const char *nat_ports_name(uint8_t v);
const char *nat_hairpin_name(uint8_t v);

struct msg {
	uint8_t type;                   /* enum msg_type: selects the union member */
	union {
		struct msg_hello hello;
		struct msg_welcome welcome;
		struct msg_request request;
		struct msg_result result;
		struct msg_network network;
		struct msg_member member;
		struct msg_member_gone member_gone;
		struct msg_network_gone network_gone;
		struct msg_ping ping;
		struct msg_nat_plan nat_plan;
		struct msg_nat_report nat_report;
		struct msg_nat_info nat_info;
		struct msg_punch punch;
		struct msg_punch_request punch_request;
		struct msg_candidates candidates;
		struct msg_locals locals;
		struct msg_relay_hello relay_hello;
		struct msg_relay_welcome relay_welcome;
		struct msg_relay_stats relay_stats;
		struct msg_relays relays;
		struct msg_relay_rtt relay_rtt;
		struct msg_relay_grant relay_grant;
		struct msg_chat_send chat_send;
		struct msg_chat chat;
		struct msg_chat_ack chat_ack;
		struct msg_chat_history chat_history;
		struct msg_chat_refused chat_refused;
	} u;
};

/* Returns the encoded length, or -1 if it does not fit in cap or a field is out of range. */
int msg_encode(const struct msg *m, uint8_t *out, size_t cap);
/* Returns 0, or -1 for an unknown type or a malformed message. */
int msg_decode(struct msg *m, const uint8_t *in, size_t len);
/* For logs: "HELLO", "REQUEST", ... or "UNKNOWN". */
const char *msg_type_name(uint8_t type);
const char *req_op_name(uint8_t op);
/* A one-line human-readable text for a status (used by the CLI). */
const char *result_status_text(uint8_t status);

/* UDP_PROBE: [type][3 zero][token]. UDP_PROBE_REPLY: [type][3 zero][addr u32][port u16]. */
enum { UDP_PROBE_LEN = 4 + UDP_TOKEN_LEN, UDP_PROBE_REPLY_LEN = 4 + 4 + 2 };
int probe_encode(const uint8_t token[UDP_TOKEN_LEN], uint8_t *out, size_t cap);
int probe_decode(const uint8_t *in, size_t len, uint8_t token[UDP_TOKEN_LEN]);
int probe_reply_encode(const struct endpoint *ep, uint8_t *out, size_t cap);
int probe_reply_decode(const uint8_t *in, size_t len, struct endpoint *ep);

/* NAT classification datagrams (PROTOCOL.md 3.1). Encoders return the length or -1; decoders
 * 0 or -1 (wrong type, length, non-zero padding, kind or seq out of range). */
enum { UDP_NAT_PROBE_LEN = 24, UDP_NAT_TEST_LEN = 12, UDP_HAIRPIN_LEN = 12 };
enum nat_test_kind { NAT_TEST_OTHER_PORT = 1, NAT_TEST_OTHER_ADDR = 2, NAT_TEST_LIFETIME = 3 };
enum { NAT_LIFETIME_STEPS = 5 };        /* kind-3 gaps: 3, 6, 12, 24, 48 s */
struct nat_probe { uint8_t token[UDP_TOKEN_LEN]; uint16_t test_id; uint8_t target; };
struct nat_test { uint16_t test_id; uint8_t kind; uint8_t seq; uint32_t nonce; };
int nat_probe_encode(const struct nat_probe *p, uint8_t *out, size_t cap);
int nat_probe_decode(const uint8_t *in, size_t len, struct nat_probe *p);
int nat_test_encode(const struct nat_test *t, uint8_t *out, size_t cap);
int nat_test_decode(const uint8_t *in, size_t len, struct nat_test *t);
int hairpin_encode(uint64_t nonce, uint8_t *out, size_t cap);
int hairpin_decode(const uint8_t *in, size_t len, uint64_t *nonce);

#endif
