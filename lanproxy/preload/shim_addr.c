/*
 * shim_addr: pure address helpers for the shim: read an IPv4 endpoint out of an AF_INET or
 * v4-mapped AF_INET6 sockaddr, write one back in the caller's family, and classify
 * destinations against our virtual network. No I/O, no state: unit-tested on its own
 * (tests/unit/test_shim_addr.c).
 * Must not touch: sockets, the daemon, the fd table.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "lanproxy/preload/shim_int.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int
shim_ep_read(const struct sockaddr *sa, socklen_t len, struct shim_ep *ep)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	static const uint8_t zero[16];

	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -1;
	memset(ep, 0, sizeof(*ep));
	if (sa->sa_family == AF_INET) {
		if (len < (socklen_t)sizeof(sin))
			return -1;
		memcpy(&sin, sa, sizeof(sin));
		ep->addr = ntohl(sin.sin_addr.s_addr);
		ep->port = ntohs(sin.sin_port);
		ep->any = ep->addr == 0;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		if (len < (socklen_t)sizeof(sin6))
			return -1;
		memcpy(&sin6, sa, sizeof(sin6));
		ep->v6 = 1;
		ep->port = ntohs(sin6.sin6_port);
		if (memcmp(sin6.sin6_addr.s6_addr, zero, 16) == 0) {
			ep->any = 1;
			return 0;
		}
		if (memcmp(sin6.sin6_addr.s6_addr, v4mapped_prefix, 12) != 0)
			return -1;
		ep->addr = (uint32_t)sin6.sin6_addr.s6_addr[12] << 24 |
		    (uint32_t)sin6.sin6_addr.s6_addr[13] << 16 |
		    (uint32_t)sin6.sin6_addr.s6_addr[14] << 8 | sin6.sin6_addr.s6_addr[15];
		ep->any = ep->addr == 0;
		return 0;
	}
	return -1;
}

socklen_t
shim_ep_write(struct sockaddr_storage *ss, uint32_t addr, uint16_t port, int v6)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		sin.sin_addr.s_addr = htonl(addr);
		memcpy(ss, &sin, sizeof(sin));
		return sizeof(sin);
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	memcpy(sin6.sin6_addr.s6_addr, v4mapped_prefix, 12);
	sin6.sin6_addr.s6_addr[12] = (uint8_t)(addr >> 24);
	sin6.sin6_addr.s6_addr[13] = (uint8_t)(addr >> 16);
	sin6.sin6_addr.s6_addr[14] = (uint8_t)(addr >> 8);
	sin6.sin6_addr.s6_addr[15] = (uint8_t)addr;
	memcpy(ss, &sin6, sizeof(sin6));
	return sizeof(sin6);
}

void
shim_ep_rewrite_port(struct sockaddr *sa, socklen_t len, uint32_t addr, uint16_t port)
{
	struct sockaddr_storage ss;
	struct shim_ep ep;
	socklen_t n;

	if (shim_ep_read(sa, len, &ep) == -1)
		return;
	n = shim_ep_write(&ss, addr, port, ep.v6);
	/* the kernel truncates to the caller's length too; keep its length untouched */
	memcpy(sa, &ss, n < len ? n : len);
}

void
shim_ep_rewrite(struct sockaddr *sa, socklen_t len, uint32_t addr)
{
	struct shim_ep ep;

	if (shim_ep_read(sa, len, &ep) == -1)
		return;
	shim_ep_rewrite_port(sa, len, addr, ep.port);
}

uint32_t
shim_prefix_mask(unsigned prefix)
{
	if (prefix == 0)
		return 0;
	if (prefix >= 32)
		return 0xffffffffu;
	return 0xffffffffu << (32 - prefix);
}

int
shim_is_alias(uint32_t addr)
{
	return (addr & SHIM_ANYALIAS_MASK) == SHIM_ALIAS_NET && (addr & 0xffff) != 0 &&
	    (addr & 0xffff) != 0xffff;
}

uint32_t
shim_alias_base(uint32_t addr)
{
	return SHIM_ALIAS_NET | (addr & ~SHIM_ALIAS_MASK);
}

int
shim_alias_port(uint32_t addr, uint16_t kport, uint16_t *vport)
{
	if (!shim_is_alias(addr))
		return -1;
	if ((addr & SHIM_ALIAS_MASK) != SHIM_LOWALIAS_NET) {
		*vport = kport;
		return 0;
	}
	if (kport <= SHIM_LOWPORT_BASE)
		return -1;
	*vport = (uint16_t)(kport - SHIM_LOWPORT_BASE);
	return 0;
}

int
shim_name_is_peerish(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	struct in_addr ia;
	const char *dot;

	if (len > 0 && name[len - 1] == '.')
		len--;                          /* "bob." is "bob", absolute */
	if (len == 0 || len > SHIM_NAME_MAX || name[0] == '.')
		return 0;
	if (len == 9 && strncasecmp(name, "localhost", 9) == 0)
		return 0;
	/* "2130706433" and "0x7f000001" are addresses to inet_aton, and so to libc */
	if (inet_aton(name, &ia) == 1)
		return 0;
	dot = memchr(name, '.', len);
	if (dot == NULL)
		return 1;
	return len > 6 && strncasecmp(name + len - 6, ".shoal", 6) == 0 && name[len - 7] != '.';
}

enum shim_dst
shim_classify(const struct shim_net *n, uint32_t addr)
{
	if (addr == 0xffffffffu)
		return DST_BCAST;
	if ((addr & 0xf0000000u) == 0xe0000000u)
		return DST_MCAST;
	if (!n->vaddr || (addr & n->mask) != (n->vaddr & n->mask))
		return DST_OTHER;
	if (addr == n->vaddr)
		return DST_SELF;
	if (n->mask != 0xffffffffu && addr == (n->vaddr | ~n->mask))
		return DST_VBCAST;
	if (n->mask != 0xffffffffu && addr == (n->vaddr & n->mask))
		return DST_OTHER;       /* the network address itself */
	return DST_PEER;
}
