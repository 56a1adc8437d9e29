/*
 * Unit tests for lanproxy/shim_proto: one golden encoding per message type (the bytes of
 * docs/PROTOCOL.md section 7, written out here by hand), decode of each back into the same
 * fields, every truncation and a trailing byte rejected, unknown types and bad fields rejected
 * both ways, and output buffers that are too small.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lanproxy/shim_proto.h"
#include "tests/unit/unit.h"

static const uint8_t payload[] = { 'h', 'i', '!' };

struct golden {
	const char *name;
	struct shim_msg m;
	size_t len;
	uint8_t bytes[32];
};

static const struct golden goldens[] = {
	{ "hello", { .type = SHIM_HELLO, .id = 0x01020304, .version = 1, .pid = 0x00003039 }, 11,
	    { 1, 1, 2, 3, 4, 0, 1, 0, 0, 0x30, 0x39 } },
	{ "alias", { .type = SHIM_ALIAS, .id = 2, .addr = 0x05010203 }, 9,
	    { 2, 0, 0, 0, 2, 5, 1, 2, 3 } },
	{ "unalias", { .type = SHIM_UNALIAS, .id = 3, .addr = 0x7f430001, .port = 64534 }, 11,
	    { 3, 0, 0, 0, 3, 0x7f, 0x43, 0, 1, 0xfc, 0x16 } },
	{ "udp_bind", { .type = SHIM_UDP_BIND, .id = 4, .port = 5353 }, 7,
	    { 4, 0, 0, 0, 4, 0x14, 0xe9 } },
	{ "udp_alias", { .type = SHIM_UDP_ALIAS, .id = 5, .addr = 0x05000009, .port = 27015 }, 11,
	    { 5, 0, 0, 0, 5, 5, 0, 0, 9, 0x69, 0x87 } },
	{ "tcp_connect", { .type = SHIM_TCP_CONNECT, .id = 6, .lport = 40000, .addr = 0x05010203,
	    .port = 80 }, 13,
	    { 6, 0, 0, 0, 6, 0x9c, 0x40, 5, 1, 2, 3, 0, 80 } },
	{ "tcp_result", { .type = SHIM_TCP_RESULT, .id = 7, .lport = 40000, .flag = 1 }, 8,
	    { 7, 0, 0, 0, 7, 0x9c, 0x40, 1 } },
	{ "tcp_listen", { .type = SHIM_TCP_LISTEN, .id = 8, .port = 8080 }, 7,
	    { 8, 0, 0, 0, 8, 0x1f, 0x90 } },
	{ "mcast", { .type = SHIM_MCAST, .id = 9, .addr = 0xe00000fb, .port = 5353, .flag = 1 },
	    12, { 9, 0, 0, 0, 9, 0xe0, 0, 0, 0xfb, 0x14, 0xe9, 1 } },
	{ "dgram_out", { .type = SHIM_DGRAM_OUT, .id = 0, .addr = 0xffffffff, .port = 27015,
	    .lport = 27016, .data = payload, .data_len = 3 }, 18,
	    { 10, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x69, 0x87, 0x69, 0x88, 0, 3,
	      'h', 'i', '!' } },
	{ "dgram_out_empty", { .type = SHIM_DGRAM_OUT, .addr = 0x05ffffff, .port = 9,
	    .lport = 10 }, 15,
	    { 10, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0, 9, 0, 10, 0, 0 } },
	{ "close", { .type = SHIM_CLOSE, .flag = SHIM_UDP, .port = 5353 }, 8,
	    { 11, 0, 0, 0, 0, 17, 0x14, 0xe9 } },
	{ "reply", { .type = SHIM_REPLY, .id = 0xfffffffe, .err = 111, .r_addr = 0x7f420102,
	    .r_prefix = 8, .r_mtu = 1400, .r_port = 64592 }, 19,
	    { 64, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 111, 0x7f, 0x42, 1, 2, 8, 0x05, 0x78, 0xfc,
	      0x50, 0 } },
	{ "resolve", { .type = SHIM_RESOLVE, .id = 12, .name = "bob.shoal", .name_len = 9 }, 15,
	    { 12, 0, 0, 0, 12, 9, 'b', 'o', 'b', '.', 's', 'h', 'o', 'a', 'l' } },
	{ "reply_name", { .type = SHIM_REPLY, .id = 13, .name = "bob.shoal", .name_len = 9 }, 28,
	    { 64, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 'b', 'o', 'b', '.', 's',
	      'h', 'o', 'a', 'l' } },
	{ "name_of", { .type = SHIM_NAME_OF, .id = 14, .addr = 0x05000002 }, 9,
	    { 13, 0, 0, 0, 14, 5, 0, 0, 2 } },
};

enum { N_GOLDEN = sizeof(goldens) / sizeof(goldens[0]) };

static int
msg_equal(const struct shim_msg *a, const struct shim_msg *b)
{
	if (a->type != b->type || a->id != b->id || a->pid != b->pid ||
	    a->version != b->version || a->addr != b->addr || a->port != b->port ||
	    a->lport != b->lport || a->flag != b->flag || a->data_len != b->data_len ||
	    a->err != b->err || a->r_addr != b->r_addr || a->r_prefix != b->r_prefix ||
	    a->r_mtu != b->r_mtu || a->r_port != b->r_port || a->name_len != b->name_len)
		return 0;
	if (a->name_len && memcmp(a->name, b->name, a->name_len) != 0)
		return 0;
	return a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0;
}

static void
test_golden_encode(void)
{
	uint8_t out[64];
	size_t i;
	int n;

	for (i = 0; i < N_GOLDEN; i++) {
		n = shim_encode(&goldens[i].m, out, sizeof(out));
		if (n != (int)goldens[i].len || memcmp(out, goldens[i].bytes, goldens[i].len) != 0)
			fprintf(stderr, "golden %s differs\n", goldens[i].name);
		CHECK_EQ(n, goldens[i].len);
		CHECK_MEM(out, goldens[i].bytes, goldens[i].len);
	}
}

static void
test_golden_decode(void)
{
	struct shim_msg m;
	size_t i;

	for (i = 0; i < N_GOLDEN; i++) {
		CHECK_EQ(shim_decode(&m, goldens[i].bytes, goldens[i].len), 0);
		if (!msg_equal(&m, &goldens[i].m))
			fprintf(stderr, "golden %s decodes differently\n", goldens[i].name);
		CHECK(msg_equal(&m, &goldens[i].m));
		if (m.data_len)
			CHECK(m.data == goldens[i].bytes + goldens[i].len - m.data_len);
		else
			CHECK(m.data == NULL);
		if (m.name_len)
			CHECK(m.name == (const char *)goldens[i].bytes + goldens[i].len - m.name_len);
	}
}

/* Every strict prefix is short; one extra byte is trailing garbage. */
static void
test_truncation_and_trailing(void)
{
	uint8_t buf[64];
	struct shim_msg m;
	size_t i, k;

	for (i = 0; i < N_GOLDEN; i++) {
		for (k = 0; k < goldens[i].len; k++) {
			memcpy(buf, goldens[i].bytes, k);
			if (shim_decode(&m, buf, k) != -1)
				fprintf(stderr, "golden %s: prefix %zu accepted\n",
				    goldens[i].name, k);
			CHECK_EQ(shim_decode(&m, k ? buf : NULL, k), -1);
			CHECK_EQ(m.type, 0);
		}
		memcpy(buf, goldens[i].bytes, goldens[i].len);
		buf[goldens[i].len] = 0;
		CHECK_EQ(shim_decode(&m, buf, goldens[i].len + 1), -1);
	}
}

/* The DGRAM_OUT length field must match the rest of the packet exactly, both ways. */
static void
test_dgram_length_mismatch(void)
{
	uint8_t buf[32];
	struct shim_msg m;
	const struct golden *g = &goldens[9];

	memcpy(buf, g->bytes, g->len);
	buf[14] = 4;                    /* claims 4 bytes, 3 present */
	CHECK_EQ(shim_decode(&m, buf, g->len), -1);
	buf[14] = 2;                    /* claims 2 bytes, 3 present */
	CHECK_EQ(shim_decode(&m, buf, g->len), -1);
}

static void
test_unknown_types(void)
{
	uint8_t buf[16] = { 0 };
	struct shim_msg m;
	static const uint8_t bad_types[] = { 0, 14, 63, 65, 255 };
	size_t i, len;

	for (i = 0; i < sizeof(bad_types); i++) {
		buf[0] = bad_types[i];
		for (len = 0; len <= sizeof(buf); len++)
			CHECK_EQ(shim_decode(&m, buf, len), -1);
		memset(&m, 0, sizeof(m));
		m.type = bad_types[i];
		CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	}
}

/* Out-of-range flags, errno and prefix: rejected by the decoder and refused by the encoder. */
static void
test_bad_fields(void)
{
	static const struct {
		size_t golden, offset;
		uint8_t value;
	} cases[] = {
		{ 6, 7, 2 },            /* tcp_result wait flag 2 */
		{ 8, 11, 2 },           /* mcast flag 2 */
		{ 11, 5, 0 },           /* close proto 0 */
		{ 11, 5, 1 },           /* close proto 1 (ICMP) */
		{ 12, 5, 0x80 },        /* reply err negative */
		{ 12, 13, 33 },         /* reply prefix 33 */
		{ 9, 13, 0xff },        /* dgram_out length 0xff03, far beyond the packet */
		{ 13, 8, 0 },           /* resolve: NUL inside the name */
		{ 13, 14, 0 },          /* resolve: NUL at the end of the name */
		{ 14, 21, 0 },          /* reply: NUL inside the name */
	};
	uint8_t buf[64];
	struct shim_msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct golden *g = &goldens[cases[i].golden];

		memcpy(buf, g->bytes, g->len);
		buf[cases[i].offset] = cases[i].value;
		if (shim_decode(&m, buf, g->len) != -1)
			fprintf(stderr, "bad field case %zu accepted\n", i);
		CHECK_EQ(shim_decode(&m, buf, g->len), -1);
	}
	m = goldens[6].m;
	m.flag = 2;
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m = goldens[11].m;
	m.flag = 1;
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m = goldens[12].m;
	m.err = -1;
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m = goldens[9].m;
	m.data = NULL;                  /* length without bytes */
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m = goldens[13].m;
	m.name_len = 0;                 /* no name */
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m.name = "bo\0b";
	m.name_len = 4;
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	m.name = NULL;
	m.name_len = 3;
	CHECK_EQ(shim_encode(&m, buf, sizeof(buf)), -1);
	/* An empty RESOLVE on the wire: length 0 */
	memcpy(buf, goldens[13].bytes, 6);
	buf[5] = 0;
	CHECK_EQ(shim_decode(&m, buf, 6), -1);
}

/* A 255-byte name (the longest a length byte says) round-trips. */
static void
test_resolve_max(void)
{
	char name[SHIM_NAME_MAX];
	uint8_t out[6 + SHIM_NAME_MAX];
	struct shim_msg m, d;
	int n;

	memset(name, 'a', sizeof(name));
	memset(&m, 0, sizeof(m));
	m.type = SHIM_RESOLVE;
	m.name = name;
	m.name_len = SHIM_NAME_MAX;
	n = shim_encode(&m, out, sizeof(out));
	CHECK_EQ(n, 6 + SHIM_NAME_MAX);
	CHECK_EQ(shim_decode(&d, out, (size_t)n), 0);
	CHECK_EQ(d.name_len, SHIM_NAME_MAX);
	CHECK_MEM(d.name, name, SHIM_NAME_MAX);
}

static void
test_encode_small_buffer(void)
{
	uint8_t out[64];
	size_t i, cap;

	for (i = 0; i < N_GOLDEN; i++)
		for (cap = 0; cap < goldens[i].len; cap++)
			CHECK_EQ(shim_encode(&goldens[i].m, out, cap), -1);
}

/* The largest datagram fits SHIM_MSG_MAX; one byte more is refused. */
static void
test_dgram_max(void)
{
	static uint8_t data[SHIM_DGRAM_MAX + 1], out[SHIM_MSG_MAX];
	struct shim_msg m, d;
	int n;

	memset(&m, 0, sizeof(m));
	m.type = SHIM_DGRAM_OUT;
	m.addr = 0xffffffff;
	m.port = 1;
	m.lport = 2;
	m.data = data;
	m.data_len = SHIM_DGRAM_MAX;
	data[SHIM_DGRAM_MAX - 1] = 0x5a;
	n = shim_encode(&m, out, sizeof(out));
	CHECK_EQ(n, 15 + SHIM_DGRAM_MAX);
	CHECK_EQ(shim_decode(&d, out, (size_t)n), 0);
	CHECK_EQ(d.data_len, SHIM_DGRAM_MAX);
	CHECK_EQ(d.data[SHIM_DGRAM_MAX - 1], 0x5a);
	m.data_len = SHIM_DGRAM_MAX + 1;
	CHECK_EQ(shim_encode(&m, out, sizeof(out)), -1);
	/* Same on the way in: a well-formed packet carrying 65508 bytes is refused. */
	out[13] = (uint8_t)((SHIM_DGRAM_MAX + 1) >> 8);
	out[14] = (uint8_t)(SHIM_DGRAM_MAX + 1);
	CHECK_EQ(shim_decode(&d, out, (size_t)n + 1), -1);
}

int
main(void)
{
	RUN(test_golden_encode);
	RUN(test_golden_decode);
	RUN(test_truncation_and_trailing);
	RUN(test_dgram_length_mismatch);
	RUN(test_unknown_types);
	RUN(test_bad_fields);
	RUN(test_encode_small_buffer);
	RUN(test_dgram_max);
	RUN(test_resolve_max);
	return unit_finish();
}
