/*
 * Unit tests for lanproxy/preload/shim_addr.c: reading IPv4 endpoints out of AF_INET and v4-mapped
 * AF_INET6 sockaddrs, writing them back, in-place rewriting, destination classification, the
 * low-port alias rule, and which host names are peer names.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "lanproxy/preload/shim_int.h"
#include "tests/unit/unit.h"

static socklen_t
mk(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		return sizeof(*s6);
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return sizeof(*s4);
}

static void
test_read(void)
{
	static const struct {
		const char *ip;
		int ok;
		uint32_t addr;
		int v6, any;
	} t[] = {
		{ "5.1.2.3", 0, 0x05010203, 0, 0 },
		{ "0.0.0.0", 0, 0, 0, 1 },
		{ "::ffff:5.1.2.3", 0, 0x05010203, 1, 0 },
		{ "::", 0, 0, 1, 1 },
		{ "::ffff:0.0.0.0", 0, 0, 1, 1 },
		{ "::1", -1, 0, 0, 0 },
		{ "2001:db8::1", -1, 0, 0, 0 },
	};
	struct sockaddr_storage ss;
	struct shim_ep ep;
	socklen_t len;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = mk(&ss, t[i].ip, 4242);
		CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len, &ep), t[i].ok);
		if (t[i].ok)
			continue;
		CHECK_EQ(ep.addr, t[i].addr);
		CHECK_EQ(ep.port, 4242);
		CHECK_EQ(ep.v6, t[i].v6);
		CHECK_EQ(ep.any, t[i].any);
	}
	/* short lengths and other families are refused */
	len = mk(&ss, "5.1.2.3", 1);
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len - 1, &ep), -1);
	len = mk(&ss, "::ffff:5.1.2.3", 1);
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len - 1, &ep), -1);
	ss.ss_family = AF_UNIX;
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, sizeof(ss), &ep), -1);
	CHECK_EQ(shim_ep_read(NULL, 16, &ep), -1);
}

static void
test_write_rewrite(void)
{
	struct sockaddr_storage ss, want;
	struct shim_ep ep;
	socklen_t len;

	len = shim_ep_write(&ss, 0x7f420001, 80, 0);
	CHECK_EQ(len, sizeof(struct sockaddr_in));
	mk(&want, "127.66.0.1", 80);
	CHECK_MEM(&ss, &want, len);
	len = shim_ep_write(&ss, 0x7f420001, 80, 1);
	CHECK_EQ(len, sizeof(struct sockaddr_in6));
	mk(&want, "::ffff:127.66.0.1", 80);
	CHECK_MEM(&ss, &want, len);

	/* alias -> vaddr, port and family kept */
	len = mk(&ss, "::ffff:127.66.1.2", 5353);
	shim_ep_rewrite((struct sockaddr *)&ss, len, 0x05000007);
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len, &ep), 0);
	CHECK_EQ(ep.addr, 0x05000007);
	CHECK_EQ(ep.port, 5353);
	CHECK_EQ(ep.v6, 1);
	len = mk(&ss, "127.66.1.2", 1);
	shim_ep_rewrite((struct sockaddr *)&ss, len, 0x05000007);
	mk(&want, "5.0.0.7", 1);
	CHECK_MEM(&ss, &want, len);
	/* a buffer too short to read is left alone */
	len = mk(&ss, "127.66.1.2", 1);
	shim_ep_rewrite((struct sockaddr *)&ss, 4, 0x05000007);
	mk(&want, "127.66.1.2", 1);
	CHECK_MEM(&ss, &want, len);
}

static void
test_classify(void)
{
	struct shim_net n = { 0x05000002, 0, 1400 };
	static const struct {
		uint32_t addr;
		enum shim_dst d;
	} t[] = {
		{ 0x05000002, DST_SELF },
		{ 0x05000003, DST_PEER },
		{ 0x05fffffe, DST_PEER },
		{ 0x05ffffff, DST_VBCAST },
		{ 0x05000000, DST_OTHER },
		{ 0x06000001, DST_OTHER },
		{ 0x7f000001, DST_OTHER },
		{ 0xffffffff, DST_BCAST },
		{ 0xe00000fb, DST_MCAST },
		{ 0xeffffffa, DST_MCAST },
	};
	size_t i;

	n.mask = shim_prefix_mask(8);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (shim_classify(&n, t[i].addr) != t[i].d) {
			fprintf(stderr, "classify[%zu] = %d\n", i, shim_classify(&n, t[i].addr));
			CHECK(0);
		}
	CHECK_EQ(shim_prefix_mask(0), 0);
	CHECK_EQ(shim_prefix_mask(24), 0xffffff00u);
	CHECK_EQ(shim_prefix_mask(32), 0xffffffffu);
	CHECK_EQ(shim_prefix_mask(40), 0xffffffffu);
	/* before HELLO nothing is virtual */
	n.vaddr = 0;
	CHECK_EQ(shim_classify(&n, 0x05000003), DST_OTHER);
}

static void
test_alias(void)
{
	CHECK(shim_is_alias(0x7f420001));
	CHECK(shim_is_alias(0x7f42fffe));
	CHECK(!shim_is_alias(0x7f420000));
	CHECK(!shim_is_alias(0x7f42ffff));
	CHECK(!shim_is_alias(0x7f000001));
	CHECK(!shim_is_alias(0x05420001));
	/* low-port aliases: the same indexes one /16 up, nothing beyond */
	CHECK(shim_is_alias(0x7f430001));
	CHECK(!shim_is_alias(0x7f430000));
	CHECK(!shim_is_alias(0x7f440001));
	CHECK(!shim_is_alias(0x7f410001));
	CHECK_EQ(shim_alias_base(0x7f430102), 0x7f420102);
	CHECK_EQ(shim_alias_base(0x7f420102), 0x7f420102);
}

/* The low-port rule: 127.67.x.y:(p + 64512) is the peer's p; 127.66.x.y keeps ports. */
static void
test_alias_port(void)
{
	static const struct {
		uint32_t addr;
		uint16_t kport;
		int rc;
		uint16_t vport;
	} cases[] = {
		{ 0x7f420001, 22, 0, 22 },
		{ 0x7f420001, 65535, 0, 65535 },
		{ 0x7f430001, 64512 + 22, 0, 22 },
		{ 0x7f430001, 64512 + 80, 0, 80 },
		{ 0x7f430001, 65535, 0, 1023 },
		{ 0x7f430001, 64512, -1, 0 },        /* port 0 is never moved */
		{ 0x7f430001, 8080, -1, 0 },         /* nothing else is bound there */
		{ 0x7f000001, 80, -1, 0 },           /* not an alias */
	};
	size_t i;
	uint16_t vp;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vp = 0;
		CHECK_EQ(shim_alias_port(cases[i].addr, cases[i].kport, &vp), cases[i].rc);
		if (cases[i].rc == 0)
			CHECK_EQ(vp, cases[i].vport);
	}
}

static void
test_rewrite_port(void)
{
	struct sockaddr_storage ss;
	struct shim_ep ep;
	socklen_t len;

	len = mk(&ss, "127.67.0.1", 64534);
	shim_ep_rewrite_port((struct sockaddr *)&ss, len, 0x05000007, 22);
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len, &ep), 0);
	CHECK_EQ(ep.addr, 0x05000007);
	CHECK_EQ(ep.port, 22);
	len = mk(&ss, "::ffff:127.67.0.1", 64534);
	shim_ep_rewrite_port((struct sockaddr *)&ss, len, 0x05000007, 22);
	CHECK_EQ(shim_ep_read((struct sockaddr *)&ss, len, &ep), 0);
	CHECK_EQ(ep.addr, 0x05000007);
	CHECK_EQ(ep.port, 22);
	CHECK(ep.v6);
}

/* Which names are asked of shoald: nicks and node ids, never DNS names. */
static void
test_peerish(void)
{
	static const struct {
		const char *name;
		int want;
	} cases[] = {
		{ "bob", 1 }, { "Bob", 1 }, { "bob.", 1 }, { "bob.shoal", 1 },
		{ "bob.SHOAL", 1 }, { "bob.shoal.", 1 }, { "3f2a9c01", 1 }, { "my-laptop", 1 },
		{ "example.com", 0 }, { "www.example.com", 0 }, { "bob.shoal.example.com", 0 },
		{ "localhost", 0 }, { "LOCALHOST.", 0 }, { "", 0 }, { ".", 0 }, { ".shoal", 0 },
		{ "..shoal", 0 }, { "bob..shoal", 0 }, { "5.0.0.2", 0 }, { "2130706433", 0 },
		{ "0x7f000001", 0 }, { ".bob", 0 }, { "shoal", 1 },
	};
	char longname[300];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (shim_name_is_peerish(cases[i].name) != cases[i].want)
			fprintf(stderr, "peerish(%s) != %d\n", cases[i].name, cases[i].want);
		CHECK_EQ(shim_name_is_peerish(cases[i].name), cases[i].want);
	}
	CHECK_EQ(shim_name_is_peerish(NULL), 0);
	memset(longname, 'a', sizeof(longname));
	longname[SHIM_NAME_MAX] = '\0';
	CHECK_EQ(shim_name_is_peerish(longname), 1);
	longname[SHIM_NAME_MAX] = 'a';
	longname[SHIM_NAME_MAX + 1] = '\0';
	CHECK_EQ(shim_name_is_peerish(longname), 0);
}

int
main(void)
{
	RUN(test_read);
	RUN(test_write_rewrite);
	RUN(test_classify);
	RUN(test_alias);
	RUN(test_alias_port);
	RUN(test_rewrite_port);
	RUN(test_peerish);
	return unit_finish();
}
