/*
 * Unit tests for socks/socks5_parse: tables of greetings, requests and UDP headers (complete,
 * every truncation, bad version, bad ATYP, empty and NUL-bearing names), the server's
 * "read exactly what is needed" pattern, and golden encodings of replies.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "socks/socks4_parse.h"
#include "socks/socks5_parse.h"
#include "tests/unit/unit.h"

struct vec {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	enum s5_result res;             /* for the whole buffer */
	size_t n;                       /* COMPLETE: consumed; NEED_MORE: needed */
	int rep;                        /* INVALID: expected reply code */
};

#define V(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static const uint8_t dom255[] = {
	5, 1, 0, 3, 255,
	/* 255 'a's follow, then the port: filled in by test_request_long_domain */
};

static void
test_greeting_table(void)
{
	const struct vec t[] = {
		{ "one byte", V(5), S5_NEED_MORE, 2, 0 },
		{ "no methods yet", V(5, 1), S5_NEED_MORE, 3, 0 },
		{ "noauth", V(5, 1, 0), S5_COMPLETE, 3, 0 },
		{ "three methods", V(5, 3, 2, 1, 0), S5_COMPLETE, 5, 0 },
		{ "zero methods", V(5, 0), S5_COMPLETE, 2, 0 },
		{ "pipelined request", V(5, 1, 0, 5, 1, 0, 1), S5_COMPLETE, 3, 0 },
		{ "version 4", V(4, 1, 0), S5_INVALID, 0, S5_NO_REPLY },
		{ "version 4 first byte", V(4), S5_INVALID, 0, S5_NO_REPLY },
		{ "http", V('G', 'E', 'T', ' '), S5_INVALID, 0, S5_NO_REPLY },
	};
	struct s5_greeting g;
	struct s5_err err;
	size_t i, n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = 0;
		err.rep = 1234;
		CHECK_EQ(s5_parse_greeting(t[i].bytes, t[i].len, &g, &n, &err), t[i].res);
		if (t[i].res != S5_INVALID)
			CHECK_EQ(n, t[i].n);
		else
			CHECK_EQ(err.rep, t[i].rep);
	}
	n = 0;
	CHECK_EQ(s5_parse_greeting(NULL, 0, &g, &n, &err), S5_NEED_MORE);
	CHECK_EQ(n, 2);
}

static void
test_greeting_methods(void)
{
	struct s5_greeting g;
	struct s5_err err;
	size_t n;

	CHECK_EQ(s5_parse_greeting(V(5, 2, 2, 0), &g, &n, &err), S5_COMPLETE);
	CHECK(s5_greeting_has_method(&g, S5_METHOD_NOAUTH));
	/* Only username/password and GSSAPI: we have no acceptable method. */
	CHECK_EQ(s5_parse_greeting(V(5, 2, 2, 1), &g, &n, &err), S5_COMPLETE);
	CHECK(!s5_greeting_has_method(&g, S5_METHOD_NOAUTH));
	CHECK_EQ(s5_parse_greeting(V(5, 0), &g, &n, &err), S5_COMPLETE);
	CHECK(!s5_greeting_has_method(&g, S5_METHOD_NOAUTH));
	/* A method byte past NMETHODS is not part of the greeting. */
	CHECK_EQ(s5_parse_greeting(V(5, 1, 2, 0), &g, &n, &err), S5_COMPLETE);
	CHECK_EQ(n, 3);
	CHECK(!s5_greeting_has_method(&g, S5_METHOD_NOAUTH));
}

static const uint8_t req_v4[] = { 5, 1, 0, 1, 5, 0, 0, 2, 0, 80 };
static const uint8_t req_dom[] = { 5, 1, 0, 3, 5, 'a', 'l', 'i', 'c', 'e', 0x1f, 0x90 };
static const uint8_t req_v6[] = { 5, 1, 0, 4, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 1, 0x01, 0xbb };
static const uint8_t req_udp[] = { 5, 3, 0, 1, 0, 0, 0, 0, 0, 0 };

static void
test_request_table(void)
{
	const struct vec t[] = {
		{ "v4", req_v4, sizeof(req_v4), S5_COMPLETE, 10, 0 },
		{ "domain", req_dom, sizeof(req_dom), S5_COMPLETE, 12, 0 },
		{ "v6", req_v6, sizeof(req_v6), S5_COMPLETE, 22, 0 },
		{ "udp associate", req_udp, sizeof(req_udp), S5_COMPLETE, 10, 0 },
		{ "bind parses", V(5, 2, 0, 1, 1, 2, 3, 4, 0, 1), S5_COMPLETE, 10, 0 },
		{ "rsv ignored", V(5, 1, 0xee, 1, 1, 2, 3, 4, 0, 1), S5_COMPLETE, 10, 0 },
		{ "pipelined data", V(5, 1, 0, 1, 1, 2, 3, 4, 0, 1, 'G', 'E', 'T'), S5_COMPLETE, 10, 0 },
		{ "bad atyp 2", V(5, 1, 0, 2, 1, 2, 3, 4, 0, 1), S5_INVALID, 0, S5_REP_ATYP_UNSUPPORTED },
		{ "bad atyp 0", V(5, 1, 0, 0), S5_INVALID, 0, S5_REP_ATYP_UNSUPPORTED },
		{ "bad atyp ff", V(5, 1, 0, 0xff), S5_INVALID, 0, S5_REP_ATYP_UNSUPPORTED },
		{ "empty domain", V(5, 1, 0, 3, 0, 0, 80), S5_INVALID, 0, S5_REP_HOST_UNREACH },
		{ "empty domain early", V(5, 1, 0, 3, 0), S5_INVALID, 0, S5_REP_HOST_UNREACH },
		{ "NUL in domain", V(5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80), S5_INVALID, 0,
		    S5_REP_HOST_UNREACH },
		{ "version 4", V(4, 1, 0, 1, 1, 2, 3, 4, 0, 1), S5_INVALID, 0, S5_NO_REPLY },
		{ "version 0 alone", V(0), S5_INVALID, 0, S5_NO_REPLY },
		{ "empty", V(5), S5_NEED_MORE, 4, 0 },
	};
	struct s5_request req;
	struct s5_err err;
	size_t i, n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = 0;
		err.rep = 1234;
		if (s5_parse_request(t[i].bytes, t[i].len, &req, &n, &err) != t[i].res) {
			fprintf(stderr, "case %s\n", t[i].name);
			CHECK(0);
			continue;
		}
		if (t[i].res != S5_INVALID)
			CHECK_EQ(n, t[i].n);
		else
			CHECK_EQ(err.rep, t[i].rep);
	}
}

static void
test_request_fields(void)
{
	static const uint8_t v6[16] = { 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	struct s5_request req;
	struct s5_err err;
	size_t n;

	CHECK_EQ(s5_parse_request(req_v4, sizeof(req_v4), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(req.cmd, S5_CMD_CONNECT);
	CHECK_EQ(req.dst.atyp, S5_ATYP_IPV4);
	CHECK_EQ(req.dst.ip4, 0x05000002);
	CHECK_EQ(req.dst.port, 80);

	CHECK_EQ(s5_parse_request(req_dom, sizeof(req_dom), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(req.dst.atyp, S5_ATYP_DOMAIN);
	CHECK(strcmp(req.dst.domain, "alice") == 0);
	CHECK_EQ(req.dst.port, 8080);

	CHECK_EQ(s5_parse_request(req_v6, sizeof(req_v6), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(req.dst.atyp, S5_ATYP_IPV6);
	CHECK_MEM(req.dst.ip6, v6, 16);
	CHECK_EQ(req.dst.port, 443);

	CHECK_EQ(s5_parse_request(req_udp, sizeof(req_udp), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(req.cmd, S5_CMD_UDP_ASSOCIATE);
	CHECK_EQ(req.dst.ip4, 0);
}

/*
 * Every proper prefix of a complete message asks for more, never for less than it has nor
 * for more than the message; a reader that reads exactly what is asked lands on the end.
 */
static void
check_truncations(const uint8_t *msg, size_t full, int greeting)
{
	struct s5_greeting g;
	struct s5_request req;
	struct s5_err err;
	enum s5_result res;
	size_t len, n, have, need;

	for (len = 0; len < full; len++) {
		n = 0;
		res = greeting ? s5_parse_greeting(msg, len, &g, &n, &err) :
		    s5_parse_request(msg, len, &req, &n, &err);
		CHECK_EQ(res, S5_NEED_MORE);
		CHECK(n > len && n <= full);
	}
	have = 0;
	need = greeting ? 2 : 4;
	for (;;) {
		CHECK(need > have && need <= full);
		if (need <= have || need > full)
			return;
		have = need;
		res = greeting ? s5_parse_greeting(msg, have, &g, &need, &err) :
		    s5_parse_request(msg, have, &req, &need, &err);
		if (res != S5_NEED_MORE)
			break;
	}
	CHECK_EQ(res, S5_COMPLETE);
	CHECK_EQ(have, full);
	CHECK_EQ(need, full);
}

static void
test_truncations(void)
{
	uint8_t g255[2 + 255];

	check_truncations(req_v4, sizeof(req_v4), 0);
	check_truncations(req_dom, sizeof(req_dom), 0);
	check_truncations(req_v6, sizeof(req_v6), 0);
	check_truncations(V(5, 1, 0), 1);
	check_truncations(V(5, 3, 2, 1, 0), 1);
	g255[0] = 5;
	g255[1] = 255;
	memset(g255 + 2, 0x80, 255);
	check_truncations(g255, sizeof(g255), 1);
}

static void
test_request_long_domain(void)
{
	uint8_t buf[S5_REQUEST_MAX + 1];
	struct s5_request req;
	struct s5_err err;
	size_t n;

	memcpy(buf, dom255, sizeof(dom255));
	memset(buf + 5, 'a', 255);
	buf[260] = 0x12;
	buf[261] = 0x34;
	buf[262] = 'X';
	CHECK_EQ(s5_parse_request(buf, sizeof(buf), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(n, S5_REQUEST_MAX);
	CHECK_EQ(strlen(req.dst.domain), 255);
	CHECK_EQ(req.dst.port, 0x1234);
	check_truncations(buf, S5_REQUEST_MAX, 0);
}

static void
test_udp_header(void)
{
	struct s5_udp_header h;
	struct s5_err err;
	static const uint8_t d4[] = { 0, 0, 0, 1, 5, 0, 0, 3, 0x30, 0x39, 'h', 'i' };
	static const uint8_t ddom[] = { 0, 0, 0, 3, 3, 'b', 'o', 'b', 0, 53 };
	size_t len;

	CHECK_EQ(s5_parse_udp(d4, sizeof(d4), &h, &err), S5_COMPLETE);
	CHECK_EQ(h.frag, 0);
	CHECK_EQ(h.dst.ip4, 0x05000003);
	CHECK_EQ(h.dst.port, 12345);
	CHECK_EQ(h.data_len, 2);
	CHECK(h.data == d4 + 10);

	CHECK_EQ(s5_parse_udp(ddom, sizeof(ddom), &h, &err), S5_COMPLETE);
	CHECK(strcmp(h.dst.domain, "bob") == 0);
	CHECK_EQ(h.data_len, 0);

	CHECK_EQ(s5_parse_udp(V(0, 0, 2, 1, 1, 2, 3, 4, 0, 1, 'x'), &h, &err), S5_COMPLETE);
	CHECK_EQ(h.frag, 2);

	/* Every truncation of a header is invalid: datagrams do not continue. */
	for (len = 0; len < 10; len++)
		CHECK_EQ(s5_parse_udp(d4, len, &h, &err), S5_INVALID);
	for (len = 0; len < sizeof(ddom); len++)
		CHECK_EQ(s5_parse_udp(ddom, len, &h, &err), S5_INVALID);
	CHECK_EQ(s5_parse_udp(V(0, 0, 0, 9, 1, 2, 3, 4, 0, 1), &h, &err), S5_INVALID);
	CHECK_EQ(s5_parse_udp(V(0, 0, 0, 3, 0, 0, 1), &h, &err), S5_INVALID);
	CHECK_EQ(s5_parse_udp(V(0, 0, 0, 3, 2, 'a', 0, 0, 1), &h, &err), S5_INVALID);
}

static void
test_encoders(void)
{
	uint8_t out[S5_REPLY_MAX];
	struct s5_addr a;
	static const uint8_t ok4[] = { 5, 0, 0, 1, 5, 0, 0, 1, 0x04, 0xd2 };
	static const uint8_t refused[] = { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t udp4[] = { 0, 0, 0, 1, 5, 0, 0, 9, 0, 53 };
	static const uint8_t dom[] = { 5, 1, 0, 3, 3, 'b', 'o', 'b', 0, 22 };
	static const uint8_t gr[] = { 5, 2, 0, 2 };

	memset(&a, 0, sizeof(a));
	a.atyp = S5_ATYP_IPV4;
	a.ip4 = 0x05000001;
	a.port = 1234;
	CHECK_EQ(s5_encode_reply(out, sizeof(out), S5_REP_OK, &a), sizeof(ok4));
	CHECK_MEM(out, ok4, sizeof(ok4));
	CHECK_EQ(s5_encode_reply(out, sizeof(out), S5_REP_REFUSED, NULL), sizeof(refused));
	CHECK_MEM(out, refused, sizeof(refused));
	CHECK_EQ(s5_encode_reply(out, 9, S5_REP_OK, &a), 0);

	CHECK_EQ(s5_encode_method_choice(out, sizeof(out), S5_METHOD_NONE), 2);
	CHECK_EQ(out[0], 5);
	CHECK_EQ(out[1], 0xff);
	CHECK_EQ(s5_encode_method_choice(out, 1, 0), 0);

	a.ip4 = 0x05000009;
	a.port = 53;
	CHECK_EQ(s5_encode_udp_header(out, sizeof(out), &a), sizeof(udp4));
	CHECK_MEM(out, udp4, sizeof(udp4));

	memset(&a, 0, sizeof(a));
	a.atyp = S5_ATYP_DOMAIN;
	strcpy(a.domain, "bob");
	a.port = 22;
	CHECK_EQ(s5_encode_request(out, sizeof(out), S5_CMD_CONNECT, &a), sizeof(dom));
	CHECK_MEM(out, dom, sizeof(dom));
	a.domain[0] = '\0';
	CHECK_EQ(s5_encode_request(out, sizeof(out), S5_CMD_CONNECT, &a), 0);
	a.atyp = 7;
	CHECK_EQ(s5_encode_reply(out, sizeof(out), S5_REP_OK, &a), 0);

	CHECK_EQ(s5_encode_greeting(out, sizeof(out), gr + 2, 2), 4);
	CHECK_MEM(out, gr, sizeof(gr));
}

static void
test_request_roundtrip(void)
{
	const uint8_t *reqs[] = { req_v4, req_dom, req_v6, req_udp };
	const size_t lens[] = { sizeof(req_v4), sizeof(req_dom), sizeof(req_v6), sizeof(req_udp) };
	uint8_t out[S5_REQUEST_MAX];
	struct s5_request req;
	struct s5_err err;
	size_t i, n;

	for (i = 0; i < 4; i++) {
		CHECK_EQ(s5_parse_request(reqs[i], lens[i], &req, &n, &err), S5_COMPLETE);
		CHECK_EQ(s5_encode_request(out, sizeof(out), req.cmd, &req.dst), lens[i]);
		CHECK_MEM(out, reqs[i], lens[i]);
	}
}

/* SOCKS4 and 4a (socks4_parse.h): the table, byte-at-a-time reading, limits, replies. */
static void
test_socks4(void)
{
	const struct vec t[] = {
		{ "empty", V(), S5_NEED_MORE, 8, 0 },
		{ "version 5", V(5), S5_INVALID, 0, S5_NO_REPLY },
		{ "header only", V(4, 1, 0, 80, 5, 0, 0, 2), S5_NEED_MORE, 9, 0 },
		{ "socks4", V(4, 1, 0, 80, 5, 0, 0, 2, 'u', 0), S5_COMPLETE, 10, 0 },
		{ "socks4 pipelined", V(4, 1, 0, 80, 5, 0, 0, 2, 0, 'G', 'E'), S5_COMPLETE, 9, 0 },
		{ "socks4a no name yet", V(4, 1, 0, 80, 0, 0, 0, 1, 0), S5_NEED_MORE, 10, 0 },
		{ "socks4a", V(4, 1, 0, 80, 0, 0, 0, 1, 0, 'b', 'o', 'b', 0), S5_COMPLETE, 13, 0 },
		{ "socks4a empty name", V(4, 1, 0, 80, 0, 0, 0, 1, 0, 0), S5_INVALID, 0, S4_REP_FAILED },
		{ "ip 0.0.0.0", V(4, 1, 0, 80, 0, 0, 0, 0, 0), S5_INVALID, 0, S4_REP_FAILED },
	};
	uint8_t buf[S4_REQUEST_MAX + 8], out[S4_REQUEST_MAX];
	struct s4_request req;
	struct s5_err err;
	size_t i, n, have;
	enum s5_result res;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = 0;
		err.rep = 12345;
		res = s4_parse_request(t[i].bytes, t[i].len, &req, &n, &err);
		if (res != t[i].res)
			fprintf(stderr, "socks4 case: %s\n", t[i].name);
		CHECK_EQ(res, t[i].res);
		if (res != S5_INVALID)
			CHECK_EQ(n, t[i].n);
		else
			CHECK_EQ(err.rep, t[i].rep);
	}
	/* 4a by name, read as the server does: exactly what NEED_MORE asks for */
	n = s4_encode_request(buf, sizeof(buf), S4_CMD_CONNECT,
	    &(struct s5_addr){ .atyp = S5_ATYP_DOMAIN, .domain = "bob.shoal", .port = 8080 });
	CHECK_EQ(n, 19);
	have = 0;
	for (;;) {
		size_t need = 0;

		res = s4_parse_request(buf, have, &req, &need, &err);
		if (res != S5_NEED_MORE)
			break;
		CHECK(need > have && need <= n);
		have = need;
	}
	CHECK_EQ(res, S5_COMPLETE);
	CHECK_EQ(req.cmd, S4_CMD_CONNECT);
	CHECK_EQ(req.dst.atyp, S5_ATYP_DOMAIN);
	CHECK_EQ(req.dst.port, 8080);
	CHECK(strcmp(req.dst.domain, "bob.shoal") == 0);
	/* plain SOCKS4 to 5.0.0.2 */
	CHECK_EQ(s4_parse_request(V(4, 1, 0x1f, 0x90, 5, 0, 0, 2, 0), &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(req.dst.atyp, S5_ATYP_IPV4);
	CHECK_EQ(req.dst.ip4, 0x05000002u);
	CHECK_EQ(req.dst.port, 8080);
	/* a user id past 255 bytes is refused, not waited for */
	memset(buf, 'u', sizeof(buf));
	memcpy(buf, (const uint8_t[]){ 4, 1, 0, 80, 5, 0, 0, 2 }, 8);
	CHECK_EQ(s4_parse_request(buf, 8 + 256, &req, &n, &err), S5_INVALID);
	CHECK_EQ(s4_parse_request(buf, 8 + 255, &req, &n, &err), S5_NEED_MORE);
	buf[8 + 256] = 0;               /* terminated, but too long all the same */
	CHECK_EQ(s4_parse_request(buf, 8 + 257, &req, &n, &err), S5_INVALID);
	/* a 4a host name of 256 bytes, terminated in the same read (the fuzzer's find) */
	memcpy(buf, (const uint8_t[]){ 4, 1, 0, 80, 0, 0, 0, 1, 0 }, 9);
	memset(buf + 9, 'h', 256);
	buf[9 + 256] = 0;
	CHECK_EQ(s4_parse_request(buf, 9 + 257, &req, &n, &err), S5_INVALID);
	buf[9 + 255] = 0;
	CHECK_EQ(s4_parse_request(buf, 9 + 256, &req, &n, &err), S5_COMPLETE);
	CHECK_EQ(strlen(req.dst.domain), 255);
	/* replies: version 0, then the code, port and address */
	CHECK_EQ(s4_encode_reply(out, sizeof(out), S4_REP_GRANTED, 0x05000001u, 1234), 8);
	CHECK_MEM(out, ((const uint8_t[]){ 0, 90, 0x04, 0xd2, 5, 0, 0, 1 }), 8);
	CHECK_EQ(s4_encode_reply(out, 7, S4_REP_FAILED, 0, 0), 0);
}

int
main(void)
{
	RUN(test_greeting_table);
	RUN(test_greeting_methods);
	RUN(test_request_table);
	RUN(test_request_fields);
	RUN(test_truncations);
	RUN(test_request_long_domain);
	RUN(test_udp_header);
	RUN(test_encoders);
	RUN(test_request_roundtrip);
	RUN(test_socks4);
	return unit_finish();
}
