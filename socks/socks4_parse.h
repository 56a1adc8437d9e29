/*
 * socks4_parse: the SOCKS4 and SOCKS4a CONNECT request and reply, the de facto protocol some
 * well-known tools speak to a proxy (socat, older clients): VN 4, CD, DSTPORT, DSTIP, USERID
 * NUL; SOCKS4a: DSTIP 0.0.0.x (x != 0) and the host name NUL after the user id. Pure and
 * incremental like socks5_parse.h (same result codes): the server reads exactly what
 * S5_NEED_MORE asks for, so the NUL-terminated fields are read a byte at a time and nothing
 * past the request is taken from the socket.
 */
#ifndef SHOAL_SOCKS4_PARSE_H
#define SHOAL_SOCKS4_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "socks/socks5_parse.h"

enum {
	S4_VERSION = 4,
	S4_CMD_CONNECT = 1,
	S4_CMD_BIND = 2,
	S4_USERID_MAX = 255,            /* bytes before its NUL; longer requests are refused */
	S4_REQUEST_MAX = 8 + S4_USERID_MAX + 1 + S5_DOMAIN_MAX + 1,
	S4_REPLY_LEN = 8,
	S4_REP_GRANTED = 90,
	S4_REP_FAILED = 91,             /* "rejected or failed": the only refusal a client knows */
};

/* dst.atyp is S5_ATYP_IPV4 (SOCKS4) or S5_ATYP_DOMAIN (SOCKS4a); the user id is ignored. */
struct s4_request {
	uint8_t cmd;
	struct s5_addr dst;
};

/* err->rep is S4_REP_FAILED when the client speaks SOCKS4 but asked for something bad,
 * S5_NO_REPLY when it does not speak SOCKS4 at all. */
enum s5_result s4_parse_request(const uint8_t *buf, size_t len, struct s4_request *req,
    size_t *n, struct s5_err *err);
/* Returns the length written (S4_REPLY_LEN), or 0 when cap is too small. */
size_t s4_encode_reply(uint8_t *out, size_t cap, uint8_t rep, uint32_t ip, uint16_t port);
/* A request as a client sends it (user id empty); for tests and the fuzz target. 0: no room or
 * a bad address. */
size_t s4_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst);

#endif
