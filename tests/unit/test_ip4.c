/*
 * Unit tests for base/ip4: formatting, parsing and the vnet subnet policy.
 *
 * ip4_parse accepts exactly what inet_pton(AF_INET) accepts: four decimal parts 0..255, no
 * leading zeros, nothing before or after. Leading zeros are refused on purpose: "010" is 8 to
 * inet_aton and 10 to a decimal reader, and a third reading of the same string in one program
 * (SOCKS, the CLI and the resolver all parse with it) would be a trap. A trailing dot is not an
 * address either; "1.2.3.4." is left to the name resolver.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "base/ip4.h"
#include "tests/unit/unit.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void
test_str(void)
{
	char s[IP4_STR_LEN], e[IP4_EP_STR_LEN];

	CHECK(ip4_str(0, s) == s);
	CHECK(strcmp(s, "0.0.0.0") == 0);
	CHECK(strcmp(ip4_str(0xffffffffu, s), "255.255.255.255") == 0);
	CHECK(strcmp(ip4_str(IP(5, 0, 0, 1), s), "5.0.0.1") == 0);
	CHECK(strcmp(ip4_str(IP(192, 168, 10, 200), s), "192.168.10.200") == 0);

	CHECK(ip4_ep_str(IP(1, 2, 3, 4), 0, e) == e);
	CHECK(strcmp(e, "1.2.3.4:0") == 0);
	/* The longest form fits exactly. */
	CHECK(strcmp(ip4_ep_str(0xffffffffu, 65535, e), "255.255.255.255:65535") == 0);
	CHECK_EQ(strlen(e) + 1, IP4_EP_STR_LEN);
	CHECK_EQ(strlen(ip4_str(0xffffffffu, s)) + 1, IP4_STR_LEN);
}

static void
test_parse_ok(void)
{
	static const struct {
		const char *s;
		uint32_t a;
	} ok[] = {
		{ "0.0.0.0", 0 },
		{ "255.255.255.255", 0xffffffffu },
		{ "5.1.2.3", IP(5, 1, 2, 3) },
		{ "10.0.0.1", IP(10, 0, 0, 1) },
		{ "192.168.100.250", IP(192, 168, 100, 250) },
		{ "1.0.10.100", IP(1, 0, 10, 100) },
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint32_t a = 12345;

		CHECK_EQ(ip4_parse(ok[i].s, &a), 0);
		CHECK_EQ(a, ok[i].a);
	}
}

static void
test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "1", "1.2", "1.2.3",                /* too few parts */
		"1.2.3.4.5",                            /* too many */
		"1.2.3.4.",                             /* trailing dot: a name's business */
		".1.2.3.4", "1..2.3", "1.2.3.",         /* empty parts */
		"256.1.1.1", "1.2.3.256", "999.1.1.1",  /* over 255 */
		"1000.1.1.1", "1.2.3.0004",             /* fourth digit */
		"01.2.3.4", "1.2.3.04", "00.0.0.0", "1.2.3.00", "010.0.0.1", /* leading zeros */
		" 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n",    /* anything around it */
		"1.2.3.4:80", "1.2.3.4a", "+1.2.3.4", "1.2.-3.4", "1.2.3.-4",
		"0x1.2.3.4", "1.2.3.0x4", "a.b.c.d", "bob", "bob.shoal",
		"2130706433",                           /* inet_aton's forms are not ours */
		"::1", "::ffff:1.2.3.4",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t a = 777;

		if (ip4_parse(bad[i], &a) != -1)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK_EQ(ip4_parse(bad[i], &a), -1);
		CHECK_EQ(a, 777);       /* untouched on failure */
	}
}

/* The documented contract: the same verdict as inet_pton on every string above and more. */
static void
test_parse_matches_inet_pton(void)
{
	static const char *const s[] = {
		"0.0.0.0", "1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.", "256.1.1.1", "255.0.0.0",
		"0.1.2.3", "1.2.3.04", "10.00.0.1", "1.2.3.4 ", "1.2.3.4x", "",
	};
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		struct in_addr in;
		uint32_t a = 0;
		int pton = inet_pton(AF_INET, s[i], &in) == 1;
		int ours = ip4_parse(s[i], &a) == 0;

		if (pton != ours)
			fprintf(stderr, "differs from inet_pton: \"%s\"\n", s[i]);
		CHECK_EQ(ours, pton);
		if (ours && pton)
			CHECK_EQ(a, ntohl(in.s_addr));
	}
}

static void
test_mask(void)
{
	CHECK_EQ(ip4_mask(0), 0);
	CHECK_EQ(ip4_mask(1), 0x80000000u);
	CHECK_EQ(ip4_mask(8), 0xff000000u);
	CHECK_EQ(ip4_mask(24), 0xffffff00u);
	CHECK_EQ(ip4_mask(30), 0xfffffffcu);
	CHECK_EQ(ip4_mask(31), 0xfffffffeu);
	CHECK_EQ(ip4_mask(32), 0xffffffffu);
	CHECK_EQ(ip4_mask(40), 0xffffffffu);
}

static void
test_vnet_8(void)
{
	struct vnet v = { IP(5, 1, 2, 3), 8 };

	CHECK(vnet_ready(&v));
	CHECK(vnet_contains(&v, IP(5, 0, 0, 0)));
	CHECK(vnet_contains(&v, IP(5, 255, 255, 255)));
	CHECK(vnet_contains(&v, IP(5, 1, 2, 3)));
	CHECK(!vnet_contains(&v, IP(6, 0, 0, 0)));
	CHECK(!vnet_contains(&v, IP(4, 255, 255, 255)));
	CHECK(!vnet_contains(&v, 0xffffffffu));

	CHECK(vnet_is_broadcast(&v, IP(5, 255, 255, 255)));
	CHECK(!vnet_is_broadcast(&v, 0xffffffffu));     /* limited broadcast is not "ours" */
	CHECK(!vnet_is_broadcast(&v, IP(5, 0, 0, 0)));
	CHECK(!vnet_is_broadcast(&v, IP(5, 1, 2, 255)));

	CHECK(vnet_is_other_host(&v, IP(5, 0, 0, 1)));
	CHECK(vnet_is_other_host(&v, IP(5, 1, 2, 4)));
	CHECK(vnet_is_other_host(&v, IP(5, 255, 255, 254)));
	CHECK(vnet_is_other_host(&v, IP(5, 1, 2, 255)));  /* .255 is a host in a /8 */
	CHECK(vnet_is_other_host(&v, IP(5, 1, 2, 0)));
	CHECK(!vnet_is_other_host(&v, IP(5, 1, 2, 3)));   /* us */
	CHECK(!vnet_is_other_host(&v, IP(5, 0, 0, 0)));   /* network */
	CHECK(!vnet_is_other_host(&v, IP(5, 255, 255, 255))); /* broadcast */
	CHECK(!vnet_is_other_host(&v, IP(6, 0, 0, 1)));
}

static void
test_vnet_24(void)
{
	struct vnet v = { IP(192, 168, 1, 10), 24 };

	CHECK(vnet_contains(&v, IP(192, 168, 1, 0)));
	CHECK(vnet_contains(&v, IP(192, 168, 1, 255)));
	CHECK(!vnet_contains(&v, IP(192, 168, 2, 1)));
	CHECK(vnet_is_broadcast(&v, IP(192, 168, 1, 255)));
	CHECK(!vnet_is_broadcast(&v, IP(192, 168, 2, 255)));
	CHECK(vnet_is_other_host(&v, IP(192, 168, 1, 1)));
	CHECK(vnet_is_other_host(&v, IP(192, 168, 1, 254)));
	CHECK(!vnet_is_other_host(&v, IP(192, 168, 1, 10)));
	CHECK(!vnet_is_other_host(&v, IP(192, 168, 1, 0)));
	CHECK(!vnet_is_other_host(&v, IP(192, 168, 1, 255)));
	CHECK(!vnet_is_other_host(&v, IP(192, 168, 0, 1)));
}

static void
test_vnet_30(void)
{
	struct vnet v = { IP(10, 0, 0, 1), 30 };

	CHECK(vnet_contains(&v, IP(10, 0, 0, 0)));
	CHECK(vnet_contains(&v, IP(10, 0, 0, 3)));
	CHECK(!vnet_contains(&v, IP(10, 0, 0, 4)));
	CHECK(vnet_is_broadcast(&v, IP(10, 0, 0, 3)));
	CHECK(vnet_is_other_host(&v, IP(10, 0, 0, 2)));    /* the only other host */
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 1)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 0)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 3)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 4)));
}

/* RFC 3021: a /31 is two hosts, no network and no broadcast address. */
static void
test_vnet_31(void)
{
	struct vnet v = { IP(10, 0, 0, 0), 31 }, w = { IP(10, 0, 0, 1), 31 };

	CHECK(vnet_ready(&v));
	CHECK(vnet_contains(&v, IP(10, 0, 0, 1)));
	CHECK(!vnet_contains(&v, IP(10, 0, 0, 2)));
	CHECK(!vnet_is_broadcast(&v, IP(10, 0, 0, 1)));
	CHECK(!vnet_is_broadcast(&w, IP(10, 0, 0, 1)));
	CHECK(vnet_is_other_host(&v, IP(10, 0, 0, 1)));
	CHECK(vnet_is_other_host(&w, IP(10, 0, 0, 0)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 0)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 2)));
}

static void
test_vnet_32(void)
{
	struct vnet v = { IP(10, 0, 0, 5), 32 };

	CHECK(vnet_contains(&v, IP(10, 0, 0, 5)));
	CHECK(!vnet_contains(&v, IP(10, 0, 0, 4)));
	CHECK(!vnet_contains(&v, IP(10, 0, 0, 6)));
	CHECK(!vnet_is_broadcast(&v, IP(10, 0, 0, 5)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 5)));
	CHECK(!vnet_is_other_host(&v, IP(10, 0, 0, 6)));
}

/* No address yet: nothing is ours, whatever the prefix says. */
static void
test_vnet_no_addr(void)
{
	struct vnet v = { 0, 8 }, z = { 0, 0 };

	CHECK(!vnet_ready(&v));
	CHECK(!vnet_ready(&z));
	CHECK(!vnet_contains(&v, 0));
	CHECK(!vnet_contains(&v, IP(0, 0, 0, 1)));
	CHECK(!vnet_contains(&z, IP(5, 0, 0, 1)));
	CHECK(!vnet_is_broadcast(&v, IP(0, 255, 255, 255)));
	CHECK(!vnet_is_broadcast(&v, 0xffffffffu));
	CHECK(!vnet_is_other_host(&v, IP(0, 0, 0, 1)));
	CHECK(!vnet_is_other_host(&z, IP(5, 0, 0, 1)));
}

int
main(void)
{
	RUN(test_str);
	RUN(test_parse_ok);
	RUN(test_parse_bad);
	RUN(test_parse_matches_inet_pton);
	RUN(test_mask);
	RUN(test_vnet_8);
	RUN(test_vnet_24);
	RUN(test_vnet_30);
	RUN(test_vnet_31);
	RUN(test_vnet_32);
	RUN(test_vnet_no_addr);
	return unit_finish();
}
