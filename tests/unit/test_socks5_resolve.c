/*
 * Unit tests for socks5_resolve (socks/socks5_server.c): the subnet policy and name
 * resolution every SOCKS request goes through, with a stub peer directory. The reply codes
 * are part of the contract with clients: NET_UNREACH while we have no address, NOT_ALLOWED
 * outside the virtual network and for its network address (and for its broadcasts unless the
 * request is UDP), HOST_UNREACH for a name the directory does not know.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base/ip4.h"
#include "base/peerdir.h"
#include "socks/socks5_internal.h"
#include "tests/unit/unit.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* The stub directory knows "bob" (5.0.0.2) and "zero" (a member without an address yet), and
 * records what it was asked, to show names reach it exactly as the client sent them. */
static char asked[S5_DOMAIN_MAX + 1];
static int n_asked;

static int
stub_resolve(void *arg, const char *name, uint8_t key[KEY_LEN], uint32_t *addr)
{
	(void)arg;
	snprintf(asked, sizeof(asked), "%s", name);
	n_asked++;
	memset(key, 0, KEY_LEN);
	if (strcmp(name, "bob") == 0 || strcmp(name, "BOB.shoal.") == 0) {
		*addr = IP(5, 0, 0, 2);
		return 0;
	}
	if (strcmp(name, "zero") == 0) {
		*addr = 0;
		return 0;
	}
	return -1;
}

static int
stub_is_peer(void *arg, uint32_t vaddr)
{
	(void)arg;
	(void)vaddr;
	return 1;
}

static struct vnet vn;
static const struct peerdir dir = { .resolve = stub_resolve, .is_peer = stub_is_peer };
static const struct socks_ctx cx = { .vn = &vn, .dir = &dir };

static int
ip4(uint32_t a, int udp, uint32_t *out)
{
	struct s5_addr s;

	memset(&s, 0, sizeof(s));
	s.atyp = S5_ATYP_IPV4;
	s.ip4 = a;
	return socks5_resolve(&cx, &s, udp, out);
}

static int
name(const char *n, int udp, uint32_t *out)
{
	struct s5_addr s;

	memset(&s, 0, sizeof(s));
	s.atyp = S5_ATYP_DOMAIN;
	snprintf(s.domain, sizeof(s.domain), "%s", n);
	return socks5_resolve(&cx, &s, udp, out);
}

static void
test_no_address(void)
{
	uint32_t ip = 0;
	struct s5_addr s;

	vn.addr = 0;
	vn.prefix_len = 8;
	CHECK_EQ(ip4(IP(5, 0, 0, 2), 0, &ip), S5_REP_NET_UNREACH);
	CHECK_EQ(ip4(IP(5, 0, 0, 2), 1, &ip), S5_REP_NET_UNREACH);
	CHECK_EQ(name("bob", 0, &ip), S5_REP_NET_UNREACH);
	memset(&s, 0, sizeof(s));
	s.atyp = S5_ATYP_IPV6;
	CHECK_EQ(socks5_resolve(&cx, &s, 0, &ip), S5_REP_NET_UNREACH);
}

static void
test_subnet_8(void)
{
	uint32_t ip = 0;
	struct s5_addr s;
	int udp;

	vn.addr = IP(5, 0, 0, 1);
	vn.prefix_len = 8;
	for (udp = 0; udp < 2; udp++) {
		CHECK_EQ(ip4(IP(5, 0, 0, 2), udp, &ip), S5_REP_OK);
		CHECK_EQ(ip, IP(5, 0, 0, 2));
		CHECK_EQ(ip4(IP(5, 1, 2, 255), udp, &ip), S5_REP_OK);   /* a host in a /8 */
		CHECK_EQ(ip4(IP(5, 0, 0, 1), udp, &ip), S5_REP_OK);     /* ourselves */
		CHECK_EQ(ip4(IP(5, 0, 0, 0), udp, &ip), S5_REP_NOT_ALLOWED);
		CHECK_EQ(ip4(IP(6, 0, 0, 1), udp, &ip), S5_REP_NOT_ALLOWED);
		CHECK_EQ(ip4(IP(127, 0, 0, 1), udp, &ip), S5_REP_NOT_ALLOWED);
		CHECK_EQ(ip4(0, udp, &ip), S5_REP_NOT_ALLOWED);
		memset(&s, 0, sizeof(s));
		s.atyp = S5_ATYP_IPV6;
		CHECK_EQ(socks5_resolve(&cx, &s, udp, &ip), S5_REP_NOT_ALLOWED);
	}
	/* Broadcasts: datagrams only. */
	CHECK_EQ(ip4(IP(5, 255, 255, 255), 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(0xffffffffu, 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(5, 255, 255, 255), 1, &ip), S5_REP_OK);
	CHECK_EQ(ip, IP(5, 255, 255, 255));
	CHECK_EQ(ip4(0xffffffffu, 1, &ip), S5_REP_OK);
	CHECK_EQ(ip, 0xffffffffu);
}

static void
test_subnet_24_30_32(void)
{
	uint32_t ip = 0;

	vn.addr = IP(10, 1, 2, 3);
	vn.prefix_len = 24;
	CHECK_EQ(ip4(IP(10, 1, 2, 4), 0, &ip), S5_REP_OK);
	CHECK_EQ(ip4(IP(10, 1, 3, 4), 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(10, 1, 2, 0), 1, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(10, 1, 2, 255), 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(10, 1, 2, 255), 1, &ip), S5_REP_OK);

	vn.addr = IP(10, 0, 0, 1);
	vn.prefix_len = 30;
	CHECK_EQ(ip4(IP(10, 0, 0, 2), 0, &ip), S5_REP_OK);
	CHECK_EQ(ip4(IP(10, 0, 0, 3), 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(10, 0, 0, 3), 1, &ip), S5_REP_OK);
	CHECK_EQ(ip4(IP(10, 0, 0, 0), 1, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(IP(10, 0, 0, 4), 1, &ip), S5_REP_NOT_ALLOWED);

	vn.addr = IP(10, 0, 0, 5);
	vn.prefix_len = 32;
	CHECK_EQ(ip4(IP(10, 0, 0, 5), 0, &ip), S5_REP_OK);
	CHECK_EQ(ip4(IP(10, 0, 0, 6), 1, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(ip4(0xffffffffu, 1, &ip), S5_REP_OK);
}

static void
test_names(void)
{
	uint32_t ip = 0;

	vn.addr = IP(5, 0, 0, 1);
	vn.prefix_len = 8;
	CHECK_EQ(name("bob", 0, &ip), S5_REP_OK);
	CHECK_EQ(ip, IP(5, 0, 0, 2));
	/* Spellings are the directory's business: passed on untouched. */
	CHECK_EQ(name("BOB.shoal.", 0, &ip), S5_REP_OK);
	CHECK(strcmp(asked, "BOB.shoal.") == 0);
	CHECK_EQ(name("nobody", 0, &ip), S5_REP_HOST_UNREACH);
	CHECK_EQ(name("nobody", 1, &ip), S5_REP_HOST_UNREACH);
	CHECK_EQ(name("zero", 0, &ip), S5_REP_HOST_UNREACH);   /* no address: unreachable */

	/* A literal address in domain form is parsed here, the directory not asked. */
	n_asked = 0;
	CHECK_EQ(name("5.0.0.9", 0, &ip), S5_REP_OK);
	CHECK_EQ(ip, IP(5, 0, 0, 9));
	CHECK_EQ(name("8.8.8.8", 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(name("5.255.255.255", 0, &ip), S5_REP_NOT_ALLOWED);
	CHECK_EQ(name("5.255.255.255", 1, &ip), S5_REP_OK);
	CHECK_EQ(n_asked, 0);
	/* Not a dotted quad: a name, even if it looks close to one. */
	CHECK_EQ(name("5.0.0.9.", 0, &ip), S5_REP_HOST_UNREACH);
	CHECK_EQ(name("05.0.0.9", 0, &ip), S5_REP_HOST_UNREACH);
	CHECK_EQ(n_asked, 2);
}

int
main(void)
{
	RUN(test_no_address);
	RUN(test_subnet_8);
	RUN(test_subnet_24_30_32);
	RUN(test_names);
	return unit_finish();
}
