/*
 * socks4_parse: SOCKS4/4a request decoding and reply encoding (socks4_parse.h).
 */
#include "config.h"

#include <string.h>

#include "base/wire.h"
#include "socks/socks4_parse.h"

static enum s5_result
invalid(struct s5_err *err, const char *why, int rep)
{
	err->why = why;
	err->rep = rep;
	return S5_INVALID;
}

/* Length of the NUL-terminated field at buf[off..len) including the NUL, or 0 if the NUL is
 * not there yet. */
static size_t
field_len(const uint8_t *buf, size_t len, size_t off)
{
	const uint8_t *z = off < len ? memchr(buf + off, 0, len - off) : NULL;

	return z ? (size_t)(z - (buf + off)) + 1 : 0;
}

enum s5_result
s4_parse_request(const uint8_t *buf, size_t len, struct s4_request *req, size_t *n,
    struct s5_err *err)
{
	struct wire_r r;
	size_t ulen, dlen, off;
	uint32_t ip;

	if (len < 8) {
		if (len >= 1 && buf[0] != S4_VERSION)
			return invalid(err, "not SOCKS4", S5_NO_REPLY);
		*n = 8;
		return S5_NEED_MORE;
	}
	if (buf[0] != S4_VERSION)
		return invalid(err, "not SOCKS4", S5_NO_REPLY);
	memset(req, 0, sizeof(*req));
	wire_r_init(&r, buf + 1, 7);
	req->cmd = wire_get_u8(&r);
	req->dst.port = wire_get_u16(&r);
	ip = wire_get_u32(&r);
	if ((ulen = field_len(buf, len, 8)) == 0) {
		if (len - 8 > S4_USERID_MAX)
			return invalid(err, "user id too long", S4_REP_FAILED);
		*n = len + 1;
		return S5_NEED_MORE;
	}
	if (ulen - 1 > S4_USERID_MAX)
		return invalid(err, "user id too long", S4_REP_FAILED);
	off = 8 + ulen;
	/* 0.0.0.x with x != 0: SOCKS4a, the host name follows the user id */
	if ((ip & 0xffffff00u) != 0 || ip == 0) {
		if (ip == 0)
			return invalid(err, "destination 0.0.0.0", S4_REP_FAILED);
		req->dst.atyp = S5_ATYP_IPV4;
		req->dst.ip4 = ip;
		*n = off;
		return S5_COMPLETE;
	}
	if ((dlen = field_len(buf, len, off)) == 0) {
		if (len - off > S5_DOMAIN_MAX)
			return invalid(err, "host name too long", S4_REP_FAILED);
		*n = len + 1;
		return S5_NEED_MORE;
	}
	if (dlen == 1)
		return invalid(err, "empty host name", S4_REP_FAILED);
	if (dlen - 1 > S5_DOMAIN_MAX)
		return invalid(err, "host name too long", S4_REP_FAILED);
	req->dst.atyp = S5_ATYP_DOMAIN;
	memcpy(req->dst.domain, buf + off, dlen);       /* with its NUL */
	*n = off + dlen;
	return S5_COMPLETE;
}

size_t
s4_encode_reply(uint8_t *out, size_t cap, uint8_t rep, uint32_t ip, uint16_t port)
{
	struct wire_w w;

	if (cap < S4_REPLY_LEN)
		return 0;
	wire_w_init(&w, out, cap);
	wire_put_u8(&w, 0);             /* the reply's version byte is 0, not 4 */
	wire_put_u8(&w, rep);
	wire_put_u16(&w, port);
	wire_put_u32(&w, ip);
	return wire_w_len(&w);
}

size_t
s4_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst)
{
	struct wire_w w;
	size_t dlen = 0;

	if (dst->atyp == S5_ATYP_DOMAIN) {
		dlen = strnlen(dst->domain, sizeof(dst->domain));
		if (dlen == 0 || dlen > S5_DOMAIN_MAX || cap < 8 + 1 + dlen + 1)
			return 0;
	} else if (dst->atyp != S5_ATYP_IPV4 || dst->ip4 == 0 || (dst->ip4 & 0xffffff00u) == 0 ||
	    cap < 9) {
		return 0;
	}
	wire_w_init(&w, out, cap);
	wire_put_u8(&w, S4_VERSION);
	wire_put_u8(&w, cmd);
	wire_put_u16(&w, dst->port);
	wire_put_u32(&w, dlen ? 1 : dst->ip4);
	wire_put_u8(&w, 0);             /* empty user id */
	if (dlen)
		wire_put_bytes(&w, dst->domain, dlen + 1);
	return wire_w_len(&w);
}
