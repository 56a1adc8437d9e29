/*
 * ip4: formatting, parsing and subnet arithmetic for host-order IPv4 addresses (base/ip4.h).
 */
#include "config.h"
#include "base/ip4.h"

#include <stdio.h>

const char *
ip4_str(uint32_t a, char out[IP4_STR_LEN])
{
	snprintf(out, IP4_STR_LEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
	    a & 255);
	return out;
}

const char *
ip4_ep_str(uint32_t a, uint16_t port, char out[IP4_EP_STR_LEN])
{
	snprintf(out, IP4_EP_STR_LEN, "%u.%u.%u.%u:%u", a >> 24, (a >> 16) & 255,
	    (a >> 8) & 255, a & 255, (unsigned)port);
	return out;
}

int
ip4_parse(const char *s, uint32_t *addr)
{
	uint32_t a = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0 && *s++ != '.')
			return -1;
		while (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		/* No empty parts, no fourth digit, nothing over 255, and no leading zero:
		 * "010" is 8 to inet_aton and 10 to a decimal reader, so it is refused, as
		 * inet_pton does, rather than read a third way. */
		if (digits == 0 || (*s >= '0' && *s <= '9') || v > 255 ||
		    (digits > 1 && s[-(int)digits] == '0'))
			return -1;
		a = a << 8 | v;
	}
	if (*s != '\0')
		return -1;
	*addr = a;
	return 0;
}

uint32_t
ip4_mask(uint8_t prefix_len)
{
	if (prefix_len == 0)
		return 0;
	if (prefix_len >= 32)
		return 0xffffffffu;
	return 0xffffffffu << (32 - prefix_len);
}

int
vnet_ready(const struct vnet *v)
{
	return v->addr != 0;
}

int
vnet_contains(const struct vnet *v, uint32_t ip)
{
	uint32_t mask = ip4_mask(v->prefix_len);

	return vnet_ready(v) && (ip & mask) == (v->addr & mask);
}

int
vnet_is_broadcast(const struct vnet *v, uint32_t ip)
{
	uint32_t mask = ip4_mask(v->prefix_len);

	if (!vnet_ready(v) || v->prefix_len == 0 || v->prefix_len > 30)
		return 0;
	return ip == (v->addr | ~mask);
}

int
vnet_is_other_host(const struct vnet *v, uint32_t ip)
{
	uint32_t mask = ip4_mask(v->prefix_len);

	if (!vnet_contains(v, ip) || ip == v->addr)
		return 0;
	if (v->prefix_len > 30)
		return 1;
	return (ip & ~mask) != 0 && (ip & ~mask) != ~mask;
}
