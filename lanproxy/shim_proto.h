/*
 * shim_proto: messages between the LD_PRELOAD shim (libshoal-preload.so, inside other people's
 * programs) and shoald, over one Unix SOCK_SEQPACKET connection per process (one message per
 * packet, so no framing). Pure encode/decode, libc only (it is linked into the shim), fuzzed.
 * All integers big-endian; addresses and ports in host order in the structs. Layouts are in
 * docs/PROTOCOL.md section 7.
 *
 * Requests are answered in order with SHIM_REPLY carrying the same id; SHIM_DGRAM_OUT and
 * SHIM_CLOSE are one-way (no reply). The daemon never sends anything unasked.
 */
#ifndef SHOAL_SHIM_PROTO_H
#define SHOAL_SHIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_PROTO_VERSION 3

/* The block of loopback addresses standing for peers: 127.66.0.0/16. Alias i (1..65534) is
 * 127.66.(i >> 8).(i & 255); which peer it stands for is the daemon's choice (SHIM_ALIAS). */
#define SHIM_ALIAS_NET   0x7f420000u
#define SHIM_ALIAS_MASK  0xffff0000u
/*
 * Low-port aliases: 127.67.0.0/16. A daemon that may not bind alias:p (p below the kernel's
 * ip_unprivileged_port_start, EACCES) uses the low-port alias of the same index instead, on
 * port p + SHIM_LOWPORT_BASE: 127.67.x.y:(p + 64512) stands for the peer of 127.66.x.y, port p.
 * Replies carry the port to use (r_port), and the mapping is fixed, so the shim can turn a
 * source address back into the peer's without asking. 127.66.0.0/15 covers both blocks.
 */
#define SHIM_LOWALIAS_NET  0x7f430000u
#define SHIM_ANYALIAS_MASK 0xfffe0000u
#define SHIM_LOWPORT_BASE  64512u
#define SHIM_LOWPORT_MAX   1023u        /* ports p <= this may be moved; 1023 + 64512 = 65535 */

enum shim_type {
	SHIM_HELLO = 1,        /* shim -> d: version, pid; reply: our address, prefix, mtu */
	SHIM_ALIAS = 2,        /* shim -> d: vaddr -> alias (daemon makes sure it exists) */
	SHIM_UNALIAS = 3,      /* shim -> d: alias:port -> vaddr:port (recvfrom/accept/getpeername) */
	SHIM_UDP_BIND = 4,     /* shim -> d: an app UDP socket is bound to kernel port P */
	SHIM_UDP_ALIAS = 5,    /* shim -> d: the app will send to vaddr:port: ensure alias UDP socket */
	SHIM_TCP_CONNECT = 6,  /* shim -> d: app socket 127.0.0.1:lport is about to connect to vaddr:port */
	SHIM_TCP_RESULT = 7,   /* shim -> d: outcome of the virtual connect for lport (may wait) */
	SHIM_TCP_LISTEN = 8,   /* shim -> d: an app listens on port P: make it reachable at vaddr:P */
	SHIM_MCAST = 9,        /* shim -> d: socket on port P joined/left group G */
	SHIM_DGRAM_OUT = 10,   /* shim -> d, one-way: a broadcast/multicast datagram to copy to the LAN */
	SHIM_CLOSE = 11,       /* shim -> d, one-way: the app closed its socket on proto/port */
	SHIM_RESOLVE = 12,     /* shim -> d: a peer name (nick, node id) -> vaddr */
	SHIM_NAME_OF = 13,     /* shim -> d: vaddr -> the member's name (reverse lookups) */
	SHIM_REPLY = 64,       /* d -> shim: answer to one request */
};

enum shim_proto_l4 { SHIM_UDP = 17, SHIM_TCP = 6 };

enum {
	SHIM_MSG_MAX = 65536 + 64,     /* largest message (DGRAM_OUT with a 64 KiB payload) */
	SHIM_DGRAM_MAX = 65507,
	SHIM_NAME_MAX = 255,           /* RESOLVE: longest name (a DNS name's limit) */
};

struct shim_msg {
	uint8_t type;                  /* enum shim_type */
	uint32_t id;                   /* request id; echoed in SHIM_REPLY; 0 for one-way */
	/* Request fields; which are meaningful depends on type (docs/PROTOCOL.md 7). */
	uint32_t pid;                  /* HELLO */
	uint16_t version;              /* HELLO */
	uint32_t addr;                 /* ALIAS, UDP_ALIAS, TCP_CONNECT, NAME_OF: vaddr; UNALIAS: alias;
	                                  MCAST: group; DGRAM_OUT: destination */
	uint16_t port;                 /* UDP_BIND, UDP_ALIAS, TCP_CONNECT, TCP_LISTEN, MCAST,
	                                  UNALIAS (the alias's port), DGRAM_OUT: destination port;
	                                  CLOSE */
	uint16_t lport;                /* TCP_CONNECT, TCP_RESULT: app's local kernel port;
	                                  DGRAM_OUT: source port */
	uint8_t flag;                  /* MCAST: 1 join, 0 leave; TCP_RESULT: 1 wait until known;
	                                  CLOSE: enum shim_proto_l4 */
	const uint8_t *data;           /* DGRAM_OUT payload (points into the decoded buffer) */
	uint16_t data_len;
	const char *name;              /* RESOLVE, REPLY to NAME_OF: name_len bytes, no NUL among
	                                  them and none after (points into the decoded buffer) */
	uint8_t name_len;              /* RESOLVE: 1..SHIM_NAME_MAX; REPLY: 0..SHIM_NAME_MAX */
	/* SHIM_REPLY fields. */
	int32_t err;                   /* 0 or a positive errno (ECONNREFUSED, EINPROGRESS, ...) */
	uint32_t r_addr;               /* HELLO: our vaddr; ALIAS: alias; UDP_ALIAS/TCP_CONNECT:
	                                  the alias (or low-port alias) to use; UNALIAS: vaddr (0 if
	                                  unknown); RESOLVE: vaddr; NAME_OF: the name in name */
	uint8_t r_prefix;              /* HELLO: prefix length of the virtual network */
	uint16_t r_mtu;                /* HELLO */
	uint16_t r_port;               /* UDP_ALIAS/TCP_CONNECT: the port to use on r_addr;
	                                  UNALIAS: the peer's port */
};

/* Returns the encoded length or -1 (does not fit, unknown type, payload too long). */
int shim_encode(const struct shim_msg *m, uint8_t *out, size_t cap);
/* Returns 0 or -1 (short, trailing bytes, unknown type, bad field). On success data points
 * into in. */
int shim_decode(struct shim_msg *m, const uint8_t *in, size_t len);

#endif
