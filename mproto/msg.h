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

/* An IPv4 UDP endpoint. Addresses and ports are in host byte order. */
struct endpoint {
	uint32_t addr;
	uint16_t port;
};

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

#endif
