/*
 * proto: every wire constant of shoal in one place: packet and message types, sizes, limits.
 * docs/PROTOCOL.md describes each message byte by byte; keep the two in step.
 *
 * Version rule: SHOAL_PROTO_VERSION is sent in the mediator HELLO and in the Noise prologue of
 * peer handshakes. Bump it whenever an existing message changes layout or meaning; adding a new
 * message type or a new request op does not bump it (unknown types are dropped and counted).
 */
#ifndef SHOAL_PROTO_H
#define SHOAL_PROTO_H

#define SHOAL_PROTO_VERSION 3

/* Keys and hashes (X25519, ChaCha20-Poly1305, BLAKE2b as used by Noise). */
enum {
	KEY_LEN = 32,
	AEAD_TAG_LEN = 16,
	HASH_LEN = 64,
	UDP_TOKEN_LEN = 16,
};

/*
 * UDP packets (peer to peer, and daemon to mediator on the mediator's UDP port).
 * Byte 0 is the type; the layout of the rest is in docs/PROTOCOL.md.
 */
enum udp_type {
	UDP_HANDSHAKE_INIT = 1,   /* Noise IK message 1 */
	UDP_HANDSHAKE_RESP = 2,   /* Noise IK message 2 */
	UDP_COOKIE_REPLY = 3,     /* under load: prove your address with this cookie (2.5) */
	UDP_DATA = 4,             /* transport data under an established session */
	UDP_PROBE = 16,           /* daemon -> mediator: "this is where I am" (token) */
	UDP_PROBE_REPLY = 17,     /* mediator -> daemon: the endpoint the mediator observed */
	UDP_NAT_PROBE = 18,       /* daemon -> mediator: NAT classification probe to one target */
	UDP_NAT_TEST = 19,        /* mediator -> daemon: unsolicited filtering / lifetime test */
	UDP_HAIRPIN = 20,         /* daemon -> its own public endpoint: does the NAT hairpin? */
};

/* MSG_PUNCH_REQUEST budget per node (its control connection): a burst, then a steady rate. A
 * node whose every path died at once (its uplink blinked) asks for all its peers; the server
 * drops and counts what is over the budget, and the daemon keeps to it itself (it asks again
 * 20 s later for a path still lost). */
#define PUNCH_REQ_BURST 16.0
#define PUNCH_REQ_RATE 1.0              /* requests per second, refilled */

/* Inner types: the first byte of a decrypted UDP_DATA payload. Empty payload = keepalive. */
enum inner_type {
	INNER_IP = 1,             /* an IPv4 packet for the virtual network */
	INNER_PING = 2,           /* u64 id, u64 sender timestamp (ns): asks for a pong */
	INNER_PONG = 3,           /* echoes a ping's id and timestamp */
	INNER_BOOT = 4,           /* u64: the sender's boot id, after each new session */
};

enum {
	/* Sizes of the UDP packets; see docs/PROTOCOL.md. */
	/* Message 1, then mac1 and mac2 (PROTOCOL.md 2.1: cheap checks before any X25519). */
	HS_MAC_LEN = 16,
	HS_INIT_BODY_LEN = 4 + 4 + 32 + (32 + 16) + (12 + 16),         /* 116 */
	UDP_HANDSHAKE_INIT_LEN = HS_INIT_BODY_LEN + 2 * HS_MAC_LEN,     /* 148 */
	/* type+pad, receiver, nonce, the sealed 16-byte cookie */
	UDP_COOKIE_REPLY_LEN = 4 + 4 + 24 + (16 + 16),                  /* 64 */
	UDP_HANDSHAKE_RESP_LEN = 4 + 4 + 4 + 32 + (0 + 16),            /* 60 */
	UDP_DATA_HEADER_LEN = 4 + 4 + 8,                                /* type+pad, receiver, counter */
	UDP_DATA_OVERHEAD = UDP_DATA_HEADER_LEN + AEAD_TAG_LEN + 1,    /* + tag + inner type */
	/* The largest UDP payload we send: fits a 1500-byte path with IPv4+UDP headers. */
	UDP_MAX_PAYLOAD = 1472,
	/* MTU of the virtual 5.x network: sealed (UDP_DATA_OVERHEAD) behind a relay's 12-byte
	 * RELAY_DATA header it still fits UDP_MAX_PAYLOAD (checked in core/relayclient.c). */
	OVERLAY_MTU = 1400,
	UDP_RECV_BATCH = 32,      /* datagrams per recvmmsg/sendmmsg call */
};

/* Session timing and limits (after WireGuard's). */
#define REKEY_AFTER_MESSAGES   (1ULL << 60)
#define REJECT_AFTER_MESSAGES  (UINT64_MAX - (1ULL << 13))
#define REKEY_AFTER_TIME       120.0   /* s: initiator starts a new handshake */
#define REJECT_AFTER_TIME      180.0   /* s: keys unusable */
#define REKEY_TIMEOUT          5.0     /* s: retry an unanswered handshake */
#define KEEPALIVE_TIMEOUT      10.0    /* s: send a keepalive when idle, keeps NAT bindings */
#define PEER_DEAD_TIMEOUT      30.0    /* s: no packet at all: path considered down */
#define REPLAY_WINDOW_BITS     2048

/*
 * Mediator control channel: TCP, Noise IK handshake (daemon = initiator, pinned server key),
 * then frames: u16 length, ciphertext (Noise transport message). Each decrypted frame is one
 * message: u8 type, then fields.
 */
enum msg_type {
	MSG_HELLO = 1,            /* c->s */
	MSG_WELCOME = 2,          /* s->c */
	MSG_REQUEST = 3,          /* c->s */
	MSG_RESULT = 4,           /* s->c */
	MSG_NETWORK = 5,          /* s->c: a network we are in (or pending), its settings */
	MSG_MEMBER = 6,           /* s->c: one member of a network, added or changed (delta) */
	MSG_MEMBER_GONE = 7,      /* s->c: a member left / was evicted / rejected */
	MSG_NETWORK_GONE = 8,     /* s->c: we are no longer in that network */
	MSG_PING = 9,             /* either way: keepalive, u64 nonce */
	MSG_PONG = 10,
	MSG_NAT_PLAN = 11,        /* s->c: NAT classification targets (PROTOCOL.md 3.1) */
	MSG_NAT_REPORT = 12,      /* c->s: what the daemon saw of the classification */
	MSG_NAT_INFO = 13,        /* s->c: the node's NAT as classified */
	MSG_PUNCH = 14,           /* s->c: where and when to punch towards one peer (3.2) */
	MSG_PUNCH_REQUEST = 15,   /* c->s: our path to one peer stopped answering: punch again */
	MSG_CANDIDATES = 18,      /* c->s: endpoints the node's gateway mapped for it (3.4) */
	/* Relays (PROTOCOL.md 8). A relay's own control connection speaks only the first three. */
	MSG_RELAY_HELLO = 19,     /* relay->s: a relay registers: name, endpoints */
	MSG_RELAY_WELCOME = 20,   /* s->relay: accepted; the relay key its grants are made with */
	MSG_RELAY_STATS = 21,     /* relay->s: load and counters, periodically (health) */
	MSG_RELAYS = 22,          /* s->c: the relay pool, the full set (replaces the last one) */
	MSG_RELAY_RTT = 23,       /* c->s: our measured RTTs to the pool's relays */
	MSG_RELAY_GRANT = 24,     /* s->c: reach this peer through this relay (or: stop) */
	MSG_LOCALS = 25,          /* c->s: our local endpoints changed since HELLO (3.5) */
	/* Chat (PROTOCOL.md 4.6, mproto/chatmsg.h). */
	MSG_CHAT_SEND = 30,       /* c->s: a message to a network or to one peer */
	MSG_CHAT = 31,            /* s->c: a message for us (new, or history) */
	MSG_CHAT_ACK = 32,        /* c->s: our mailbox up to seq arrived */
	MSG_CHAT_HISTORY = 33,    /* c->s: the newest messages of a conversation */
	MSG_CHAT_REFUSED = 34,    /* s->c: a CHAT_SEND of ours was not taken, and why */
};

enum req_op {
	OP_CREATE = 1, OP_JOIN, OP_LEAVE, OP_GO_ONLINE, OP_GO_OFFLINE, OP_DELETE, OP_SET_PASS,
	OP_SET_ACCESS, OP_APPROVE, OP_REJECT, OP_EVICT, OP_SET_NICK,
};

/* MSG_RESULT status codes. */
enum result_status {
	RES_OK = 0, RES_ERR_BAD_REQUEST, RES_ERR_NO_SUCH_NETWORK, RES_ERR_EXISTS, RES_ERR_BAD_PASSWORD,
	RES_ERR_LOCKED, RES_ERR_NOT_OWNER, RES_ERR_NO_SUCH_MEMBER, RES_ERR_RATE_LIMITED,
	RES_ERR_PENDING, RES_ERR_INTERNAL, RES_ERR_NOT_MEMBER,
};

/* Network flags (MSG_NETWORK, OP_SET_ACCESS). */
enum {
	NETF_LOCKED = 1 << 0,          /* no new joins */
	NETF_MANUAL_APPROVAL = 1 << 1, /* joins wait for the owner's approve */
};

/* Member flags (MSG_MEMBER). */
enum {
	MEMF_ONLINE = 1 << 0,     /* connected to the mediator and online in this network */
	MEMF_PENDING = 1 << 1,    /* waiting for approval */
	MEMF_OWNER = 1 << 2,
	/* Its online switch in this network is on, whether or not it is connected to the mediator
	 * right now. Peer authorization follows this flag, not MEMF_ONLINE, so a mediator restart
	 * (when members reconnect one by one) never tears down working P2P sessions. */
	MEMF_ACTIVE = 1 << 3,
};

enum {
	NAME_MAX_LEN = 64,        /* network names, bytes */
	NICK_MAX_LEN = 64,
	PASSWORD_MAX_LEN = 128,
	MSG_TEXT_MAX_LEN = 255,   /* RESULT message */
	MAX_ENDPOINTS = 8,        /* per member */
	ENDPOINTS_V6_MAX = 2,     /* of those, kept for global IPv6 ones (IPv4 first) */
	CTRL_FRAME_MAX = 4096,    /* largest control frame, ciphertext */
	NAT_MAX_TARGETS = 6,      /* server UDP sockets in a NAT_PLAN */
	PUNCH_MAX_TARGETS = 16,   /* endpoints in a PUNCH */
	/* Birthday punching (PROTOCOL.md 3.2): what one PUNCH may ask of a side, at most. */
	BIRTHDAY_SOCKETS_MAX = 256,       /* extra sockets on the random-port side */
	BIRTHDAY_PROBES_MAX = 2048,       /* probes to random ports from the other side */
	BIRTHDAY_RATE_MAX = 1000,         /* probes per second */
	BIRTHDAY_PORT_MIN = 1024,         /* probes never aim at well-known ports */
	CAND_MAX_MAPPED = 4,      /* port-mapped endpoints in a CANDIDATES */
	RELAY_POOL_MAX = 32,      /* relays in a MSG_RELAYS / MSG_RELAY_RTT */
	RELAY_NAME_MAX_LEN = 32,  /* a relay's name, bytes (printable ASCII) */
};

#endif
