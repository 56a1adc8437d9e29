/* Unit tests for core/wire: round trips, sticky errors, bounds and string rules. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base/wire.h"
#include "tests/unit/unit.h"

static void
test_roundtrip(void)
{
	uint8_t buf[64], b[3];
	char s[8];
	struct wire_w w;
	struct wire_r r;
	size_t blen;
	const uint8_t *blob;

	wire_w_init(&w, buf, sizeof(buf));
	wire_put_u8(&w, 0xab);
	wire_put_u16(&w, 0x1234);
	wire_put_u32(&w, 0xdeadbeef);
	wire_put_u64(&w, 0x0102030405060708ULL);
	wire_put_bytes(&w, "xyz", 3);
	wire_put_str8(&w, "nick");
	wire_put_blob16(&w, "ab", 2);
	CHECK_EQ(wire_w_len(&w), 1 + 2 + 4 + 8 + 3 + 5 + 4);
	CHECK_EQ(buf[1], 0x12);
	CHECK_EQ(buf[7], 0x01);

	wire_r_init(&r, buf, wire_w_len(&w));
	CHECK_EQ(wire_get_u8(&r), 0xab);
	CHECK_EQ(wire_get_u16(&r), 0x1234);
	CHECK(wire_get_u32(&r) == 0xdeadbeef);
	CHECK(wire_get_u64(&r) == 0x0102030405060708ULL);
	wire_get_bytes(&r, b, 3);
	CHECK_MEM(b, "xyz", 3);
	wire_get_str8(&r, s, sizeof(s));
	CHECK(strcmp(s, "nick") == 0);
	blob = wire_get_blob16(&r, &blen);
	CHECK(blob && blen == 2 && memcmp(blob, "ab", 2) == 0);
	CHECK_EQ(wire_r_done(&r), 0);
}

static void
test_write_overflow_is_sticky(void)
{
	uint8_t buf[3];
	struct wire_w w;

	wire_w_init(&w, buf, sizeof(buf));
	wire_put_u16(&w, 1);
	wire_put_u16(&w, 2);            /* does not fit */
	wire_put_u8(&w, 3);             /* would fit, but the error is sticky */
	CHECK(w.err);
	CHECK_EQ(wire_w_len(&w), 0);
}

static void
test_read_truncated_and_trailing(void)
{
	uint8_t buf[5] = { 0, 0, 0, 1, 9 };
	struct wire_r r;

	wire_r_init(&r, buf, 3);
	CHECK_EQ(wire_get_u32(&r), 0);
	CHECK(r.err);
	CHECK_EQ(wire_get_u8(&r), 0);
	CHECK_EQ(wire_r_done(&r), -1);

	wire_r_init(&r, buf, 5);
	CHECK_EQ(wire_get_u32(&r), 1);
	CHECK_EQ(wire_r_done(&r), -1);  /* one trailing byte */
}

static void
test_str8_rules(void)
{
	uint8_t buf[300];
	char small[4], big[300];
	struct wire_w w;
	struct wire_r r;

	/* Too long for the caller's buffer: error, not truncation. */
	wire_w_init(&w, buf, sizeof(buf));
	wire_put_str8(&w, "abcd");
	wire_r_init(&r, buf, wire_w_len(&w));
	wire_get_str8(&r, small, sizeof(small));
	CHECK(r.err);
	CHECK_EQ(small[0], 0);

	/* Embedded NUL is rejected. */
	buf[0] = 3; buf[1] = 'a'; buf[2] = 0; buf[3] = 'b';
	wire_r_init(&r, buf, 4);
	wire_get_str8(&r, big, sizeof(big));
	CHECK(r.err);

	/* Strings over 255 bytes cannot be written. */
	memset(big, 'x', 256);
	big[256] = 0;
	wire_w_init(&w, buf, sizeof(buf));
	wire_put_str8(&w, big);
	CHECK(w.err);

	/* Length byte claims more than is there. */
	buf[0] = 10; buf[1] = 'a';
	wire_r_init(&r, buf, 2);
	wire_get_str8(&r, big, sizeof(big));
	CHECK(r.err);
}

int
main(void)
{
	RUN(test_roundtrip);
	RUN(test_write_overflow_is_sticky);
	RUN(test_read_truncated_and_trailing);
	RUN(test_str8_rules);
	return unit_finish();
}
