/*
 * socks5_parse: pure, incremental decoders and encoders for the SOCKS5 messages (RFC 1928)
 * the server sees: the method greeting, the request, and the UDP request header.
 * No I/O, no allocation, no daemon state: this is what the fuzz target and the unit tests
 * drive. Must not touch sockets or the netstack.
 *
 * Decoders take the bytes received so far and say one of:
 *   S5_NEED_MORE: *n is the total length needed at least (always > len); read exactly up
 *                 to that many bytes and call again. The server never reads past a message,
 *                 so bytes a client pipelines after its request stay in the socket for the
 *                 splice.
 *   S5_COMPLETE:  *n bytes make one message (the caller may hold more bytes after them).
 *   S5_INVALID:   err->why says why; err->rep is the SOCKS reply code to send before closing,
 *                 or S5_NO_REPLY when the peer is not speaking SOCKS5 at all.
 * Addresses and ports in struct s5_addr are in host byte order.
 */
#ifndef SHOAL_SOCKS5_PARSE_H
#define SHOAL_SOCKS5_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum {
	S5_VERSION = 5,
	S5_GREETING_MAX = 2 + 255,
	S5_REQUEST_MAX = 4 + 1 + 255 + 2,      /* domain form is the longest */
	S5_REPLY_MAX = 4 + 1 + 255 + 2,
	S5_UDP_HEADER_MAX = 4 + 1 + 255 + 2,
	S5_DOMAIN_MAX = 255,
};

enum s5_method {
	S5_METHOD_NOAUTH = 0x00,
	S5_METHOD_NONE = 0xff,                 /* "no acceptable methods" */
};

enum s5_cmd {
	S5_CMD_CONNECT = 0x01,
	S5_CMD_BIND = 0x02,
	S5_CMD_UDP_ASSOCIATE = 0x03,
};

enum s5_atyp {
	S5_ATYP_IPV4 = 0x01,
	S5_ATYP_DOMAIN = 0x03,
	S5_ATYP_IPV6 = 0x04,
};

enum s5_rep {
	S5_REP_OK = 0x00,
	S5_REP_FAILURE = 0x01,
	S5_REP_NOT_ALLOWED = 0x02,
	S5_REP_NET_UNREACH = 0x03,
	S5_REP_HOST_UNREACH = 0x04,
	S5_REP_REFUSED = 0x05,
	S5_REP_TTL_EXPIRED = 0x06,
	S5_REP_CMD_UNSUPPORTED = 0x07,
	S5_REP_ATYP_UNSUPPORTED = 0x08,
	S5_NO_REPLY = -1,                      /* close without answering */
};

enum s5_result {
	S5_NEED_MORE = 0,
	S5_COMPLETE = 1,
	S5_INVALID = 2,
};

/* An address as SOCKS carries it. Owned by the caller. */
struct s5_addr {
	uint8_t atyp;                          /* enum s5_atyp */
	uint32_t ip4;                          /* S5_ATYP_IPV4 */
	uint8_t ip6[16];                       /* S5_ATYP_IPV6 */
	char domain[S5_DOMAIN_MAX + 1];        /* S5_ATYP_DOMAIN: 1..255 bytes, no NUL inside */
	uint16_t port;
};

struct s5_greeting {
	uint8_t nmethods;
	uint8_t methods[255];
};

struct s5_request {
	uint8_t cmd;                           /* any value; the server rejects what it lacks */
	struct s5_addr dst;
};

/* A datagram relayed through a UDP association; data points into the parsed buffer. */
struct s5_udp_header {
	uint8_t frag;
	struct s5_addr dst;
	const uint8_t *data;
	size_t data_len;
};

struct s5_err {
	const char *why;
	int rep;                               /* enum s5_rep or S5_NO_REPLY */
};

enum s5_result s5_parse_greeting(const uint8_t *buf, size_t len, struct s5_greeting *g,
    size_t *n, struct s5_err *err);
int s5_greeting_has_method(const struct s5_greeting *g, uint8_t method);
/* RSV is ignored (clients in the wild send garbage there). */
enum s5_result s5_parse_request(const uint8_t *buf, size_t len, struct s5_request *req,
    size_t *n, struct s5_err *err);
/* A datagram is whole or nothing: truncation is S5_INVALID, never S5_NEED_MORE. */
enum s5_result s5_parse_udp(const uint8_t *buf, size_t len, struct s5_udp_header *h,
    struct s5_err *err);

/* Encoders return the length written, or 0 when cap is too small or the address is bad. */
size_t s5_encode_greeting(uint8_t *out, size_t cap, const uint8_t *methods, size_t nmethods);
size_t s5_encode_method_choice(uint8_t *out, size_t cap, uint8_t method);
size_t s5_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst);
/* bnd NULL encodes 0.0.0.0:0 (what error replies carry). */
size_t s5_encode_reply(uint8_t *out, size_t cap, uint8_t rep, const struct s5_addr *bnd);
/* The UDP header only (FRAG 0); the payload follows it. */
size_t s5_encode_udp_header(uint8_t *out, size_t cap, const struct s5_addr *a);

const char *s5_rep_str(int rep);

#endif
