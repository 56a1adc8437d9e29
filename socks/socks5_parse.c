/*
 * socks5_parse: SOCKS5 (RFC 1928) message codecs. Pure functions over caller buffers, built
 * on base/wire.h cursors; no I/O, no allocation. Must not know about sockets or the daemon.
 *
 * Lengths are worked out first from the fixed prefix (VER .. ATYP and the domain length byte)
 * so an incomplete message can say exactly how many bytes it still needs; the fields are then
 * decoded with a cursor over exactly that many bytes.
 */
#include "config.h"
#include "socks/socks5_parse.h"

#include <string.h>

#include "base/wire.h"

static enum s5_result
invalid(struct s5_err *err, const char *why, int rep)
{
	if (err) {
		err->why = why;
		err->rep = rep;
	}
	return S5_INVALID;
}

/*
 * How long the address starting at buf[off] (its ATYP byte) is, ATYP and port included.
 * NEED_MORE when even that cannot be known yet (*n: bytes needed to learn it).
 */
static enum s5_result
addr_span(const uint8_t *buf, size_t len, size_t off, size_t *span, size_t *n,
    struct s5_err *err)
{
	if (len < off + 1) {
		*n = off + 1;
		return S5_NEED_MORE;
	}
	switch (buf[off]) {
	case S5_ATYP_IPV4:
		*span = 1 + 4 + 2;
		return S5_COMPLETE;
	case S5_ATYP_IPV6:
		*span = 1 + 16 + 2;
		return S5_COMPLETE;
	case S5_ATYP_DOMAIN:
		if (len < off + 2) {
			*n = off + 2;
			return S5_NEED_MORE;
		}
		/* An empty name names nothing: no resolver would accept it. */
		if (buf[off + 1] == 0)
			return invalid(err, "empty domain name", S5_REP_HOST_UNREACH);
		*span = 1 + 1 + buf[off + 1] + 2;
		return S5_COMPLETE;
	default:
		return invalid(err, "unknown address type", S5_REP_ATYP_UNSUPPORTED);
	}
}

/* Decodes an address whose span addr_span() already checked is present. */
static enum s5_result
addr_decode(struct wire_r *r, struct s5_addr *a, struct s5_err *err)
{
	memset(a, 0, sizeof(*a));
	a->atyp = wire_get_u8(r);
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		a->ip4 = wire_get_u32(r);
		break;
	case S5_ATYP_IPV6:
		wire_get_bytes(r, a->ip6, sizeof(a->ip6));
		break;
	case S5_ATYP_DOMAIN:
		/* wire_get_str8 rejects an embedded NUL: "peer\0.evil" must not pass as "peer". */
		wire_get_str8(r, a->domain, sizeof(a->domain));
		if (r->err)
			return invalid(err, "NUL byte in domain name", S5_REP_HOST_UNREACH);
		break;
	default:
		return invalid(err, "unknown address type", S5_REP_ATYP_UNSUPPORTED);
	}
	a->port = wire_get_u16(r);
	if (r->err)
		return invalid(err, "truncated address", S5_REP_FAILURE);
	return S5_COMPLETE;
}

enum s5_result
s5_parse_greeting(const uint8_t *buf, size_t len, struct s5_greeting *g, size_t *n,
    struct s5_err *err)
{
	struct wire_r r;
	size_t total;

	if (len >= 1 && buf[0] != S5_VERSION)
		return invalid(err, "not SOCKS version 5", S5_NO_REPLY);
	if (len < 2) {
		*n = 2;
		return S5_NEED_MORE;
	}
	total = 2 + (size_t)buf[1];
	if (len < total) {
		*n = total;
		return S5_NEED_MORE;
	}
	wire_r_init(&r, buf, total);
	(void)wire_get_u8(&r);
	g->nmethods = wire_get_u8(&r);
	wire_get_bytes(&r, g->methods, g->nmethods);
	if (wire_r_done(&r) != 0)
		return invalid(err, "truncated greeting", S5_NO_REPLY);
	*n = total;
	return S5_COMPLETE;
}

int
s5_greeting_has_method(const struct s5_greeting *g, uint8_t method)
{
	return memchr(g->methods, method, g->nmethods) != NULL;
}

enum s5_result
s5_parse_request(const uint8_t *buf, size_t len, struct s5_request *req, size_t *n,
    struct s5_err *err)
{
	struct wire_r r;
	enum s5_result res;
	size_t span = 0;

	if (len >= 1 && buf[0] != S5_VERSION)
		return invalid(err, "not SOCKS version 5", S5_NO_REPLY);
	if (len < 4) {
		*n = 4;
		return S5_NEED_MORE;
	}
	res = addr_span(buf, len, 3, &span, n, err);
	if (res != S5_COMPLETE)
		return res;
	if (len < 3 + span) {
		*n = 3 + span;
		return S5_NEED_MORE;
	}
	wire_r_init(&r, buf, 3 + span);
	(void)wire_get_u8(&r);          /* VER */
	req->cmd = wire_get_u8(&r);
	(void)wire_get_u8(&r);          /* RSV */
	res = addr_decode(&r, &req->dst, err);
	if (res != S5_COMPLETE)
		return res;
	if (wire_r_done(&r) != 0)
		return invalid(err, "bad request length", S5_REP_FAILURE);
	*n = 3 + span;
	return S5_COMPLETE;
}

enum s5_result
s5_parse_udp(const uint8_t *buf, size_t len, struct s5_udp_header *h, struct s5_err *err)
{
	struct wire_r r;
	enum s5_result res;
	size_t span = 0, need = 0;

	res = addr_span(buf, len, 3, &span, &need, err);
	if (res == S5_NEED_MORE || (res == S5_COMPLETE && len < 3 + span))
		return invalid(err, "truncated UDP header", S5_NO_REPLY);
	if (res != S5_COMPLETE)
		return res;
	wire_r_init(&r, buf, len);
	(void)wire_get_u16(&r);         /* RSV */
	h->frag = wire_get_u8(&r);
	res = addr_decode(&r, &h->dst, err);
	if (res != S5_COMPLETE)
		return res;
	h->data_len = wire_r_left(&r);
	h->data = buf + r.off;
	return S5_COMPLETE;
}

static void
addr_encode(struct wire_w *w, const struct s5_addr *a)
{
	size_t dlen;

	wire_put_u8(w, a->atyp);
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		wire_put_u32(w, a->ip4);
		break;
	case S5_ATYP_IPV6:
		wire_put_bytes(w, a->ip6, sizeof(a->ip6));
		break;
	case S5_ATYP_DOMAIN:
		dlen = strnlen(a->domain, sizeof(a->domain));
		if (dlen == 0 || dlen > S5_DOMAIN_MAX) {
			w->err = 1;
			return;
		}
		wire_put_str8(w, a->domain);
		break;
	default:
		w->err = 1;
		return;
	}
	wire_put_u16(w, a->port);
}

size_t
s5_encode_greeting(uint8_t *out, size_t cap, const uint8_t *methods, size_t nmethods)
{
	struct wire_w w;

	if (nmethods > 255)
		return 0;
	wire_w_init(&w, out, cap);
	wire_put_u8(&w, S5_VERSION);
	wire_put_u8(&w, (uint8_t)nmethods);
	wire_put_bytes(&w, methods, nmethods);
	return wire_w_len(&w);
}

size_t
s5_encode_method_choice(uint8_t *out, size_t cap, uint8_t method)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	wire_put_u8(&w, S5_VERSION);
	wire_put_u8(&w, method);
	return wire_w_len(&w);
}

size_t
s5_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	wire_put_u8(&w, S5_VERSION);
	wire_put_u8(&w, cmd);
	wire_put_u8(&w, 0);
	addr_encode(&w, dst);
	return wire_w_len(&w);
}

size_t
s5_encode_reply(uint8_t *out, size_t cap, uint8_t rep, const struct s5_addr *bnd)
{
	static const struct s5_addr none = { .atyp = S5_ATYP_IPV4 };
	struct wire_w w;

	wire_w_init(&w, out, cap);
	wire_put_u8(&w, S5_VERSION);
	wire_put_u8(&w, rep);
	wire_put_u8(&w, 0);
	addr_encode(&w, bnd ? bnd : &none);
	return wire_w_len(&w);
}

size_t
s5_encode_udp_header(uint8_t *out, size_t cap, const struct s5_addr *a)
{
	struct wire_w w;

	wire_w_init(&w, out, cap);
	wire_put_u16(&w, 0);
	wire_put_u8(&w, 0);
	addr_encode(&w, a);
	return wire_w_len(&w);
}

const char *
s5_rep_str(int rep)
{
	switch (rep) {
	case S5_REP_OK: return "succeeded";
	case S5_REP_FAILURE: return "general failure";
	case S5_REP_NOT_ALLOWED: return "connection not allowed by ruleset";
	case S5_REP_NET_UNREACH: return "network unreachable";
	case S5_REP_HOST_UNREACH: return "host unreachable";
	case S5_REP_REFUSED: return "connection refused";
	case S5_REP_TTL_EXPIRED: return "TTL expired";
	case S5_REP_CMD_UNSUPPORTED: return "command not supported";
	case S5_REP_ATYP_UNSUPPORTED: return "address type not supported";
	case S5_NO_REPLY: return "no reply";
	default: return "unknown";
	}
}
