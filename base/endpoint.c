/*
 * endpoint: compare, hash, format, convert and encode IPv4/IPv6 endpoints (endpoint.h).
 * Owns nothing. Must not: do I/O or allocate.
 */
#include "config.h"
#include "base/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/wire.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int
ep_same_addr(const struct endpoint *a, const struct endpoint *b)
{
	if (ep_is_v6(a) != ep_is_v6(b) || a->port != b->port)
		return 0;
	if (ep_is_v6(a))
		return memcmp(a->addr6, b->addr6, sizeof(a->addr6)) == 0;
	return a->addr == b->addr;
}

int
ep_equal(const struct endpoint *a, const struct endpoint *b)
{
	return ep_same_addr(a, b) && a->via == b->via;
}

/* FNV-1a: tables of endpoints are small and not keyed by attacker-chosen values alone. */
static uint32_t
fnv(uint32_t h, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

uint32_t
ep_hash(const struct endpoint *ep)
{
	uint8_t b[EP_WIRE_MAX];
	struct wire_w w;

	wire_w_init(&w, b, sizeof(b));
	ep_put(&w, ep);
	return fnv(2166136261u, b, wire_w_len(&w));
}

uint32_t
ep_source_key(const struct endpoint *ep)
{
	if (ep_is_v6(ep))
		return fnv(2166136261u, ep->addr6, 8);
	return ep->addr;
}

int
ep_is_set(const struct endpoint *ep)
{
	static const uint8_t zero[16];

	if (ep->port == 0)
		return 0;
	if (ep_is_v6(ep))
		return memcmp(ep->addr6, zero, sizeof(zero)) != 0;
	return ep->addr != 0;
}

void
ep_set_v6(struct endpoint *ep, const uint8_t a6[16], uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->family = EP_INET6;
	memcpy(ep->addr6, a6, 16);
	ep->port = port;
}

const char *
ep_addr_str(const struct endpoint *ep, char out[EP_STR_LEN])
{
	if (ep_is_v6(ep)) {
		if (inet_ntop(AF_INET6, ep->addr6, out, EP_STR_LEN) == NULL)
			snprintf(out, EP_STR_LEN, "?");
		return out;
	}
	snprintf(out, EP_STR_LEN, "%u.%u.%u.%u", (unsigned)(ep->addr >> 24),
	    (unsigned)(ep->addr >> 16 & 0xff), (unsigned)(ep->addr >> 8 & 0xff),
	    (unsigned)(ep->addr & 0xff));
	return out;
}

const char *
ep_str(const struct endpoint *ep, char out[EP_STR_LEN])
{
	char a[INET6_ADDRSTRLEN];

	if (ep_is_v6(ep)) {
		if (inet_ntop(AF_INET6, ep->addr6, a, sizeof(a)) == NULL)
			snprintf(a, sizeof(a), "?");
	} else {
		ep_addr_str(ep, out);
		snprintf(a, sizeof(a), "%.15s", out);
	}
	if (ep_is_v6(ep))
		snprintf(out, EP_STR_LEN, "[%s]:%u", a, (unsigned)ep->port);
	else
		snprintf(out, EP_STR_LEN, "%s:%u", a, (unsigned)ep->port);
	return out;
}

socklen_t
ep_to_sockaddr(const struct endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ep_is_v6(ep)) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, ep->addr6, 16);
		s6->sin6_port = htons(ep->port);
		return sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(ep->addr);
		s4->sin_port = htons(ep->port);
		return sizeof(*s4);
	}
}

int
ep_from_sockaddr(struct endpoint *ep, const struct sockaddr *sa, socklen_t len)
{
	memset(ep, 0, sizeof(*ep));
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		ep->addr = ntohl(s4->sin_addr.s_addr);
		ep->port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		const uint8_t *a = s6->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
			ep->addr = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 |
			    (uint32_t)a[14] << 8 | a[15];
			ep->port = ntohs(s6->sin6_port);
			return 0;
		}
		ep_set_v6(ep, a, ntohs(s6->sin6_port));
		return 0;
	}
	return -1;
}

void
ep_put(struct wire_w *w, const struct endpoint *ep)
{
	if (ep_is_v6(ep)) {
		wire_put_u8(w, EP_WIRE_FAMILY_V6);
		wire_put_bytes(w, ep->addr6, 16);
	} else {
		wire_put_u8(w, EP_WIRE_FAMILY_V4);
		wire_put_u32(w, ep->addr);
	}
	wire_put_u16(w, ep->port);
}

void
ep_get(struct wire_r *r, struct endpoint *ep)
{
	uint8_t fam = wire_get_u8(r);

	memset(ep, 0, sizeof(*ep));
	switch (fam) {
	case EP_WIRE_FAMILY_V4:
		ep->addr = wire_get_u32(r);
		break;
	case EP_WIRE_FAMILY_V6:
		ep->family = EP_INET6;
		wire_get_bytes(r, ep->addr6, 16);
		break;
	default:
		r->err = 1;
		return;
	}
	ep->port = wire_get_u16(r);
}
