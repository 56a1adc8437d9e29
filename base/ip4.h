/*
 * ip4: the one place that formats IPv4 addresses and does subnet arithmetic on them.
 * Addresses are host byte order everywhere in shoal; these helpers never touch the network.
 * Owns nothing.
 */
#ifndef SHOAL_IP4_H
#define SHOAL_IP4_H

#include <stdint.h>

enum {
	IP4_STR_LEN = 16,               /* "255.255.255.255" and its NUL */
	IP4_EP_STR_LEN = 22,            /* "255.255.255.255:65535" and its NUL */
};

/* "a.b.c.d" into out; returns out, so it can sit in a printf argument list. */
const char *ip4_str(uint32_t addr, char out[IP4_STR_LEN]);
/* "a.b.c.d:port" into out; returns out. */
const char *ip4_ep_str(uint32_t addr, uint16_t port, char out[IP4_EP_STR_LEN]);
/* Parses a dotted quad (exactly four decimal parts 0..255, no leading zeros, nothing
 * around it: what inet_pton accepts): 0 and *addr, or -1. */
int ip4_parse(const char *s, uint32_t *addr);

/* The network mask of a prefix length (0..32). */
uint32_t ip4_mask(uint8_t prefix_len);

/*
 * Our place on the virtual network: our address and the prefix of the network we were given.
 * addr 0 means "not known yet" (no WELCOME and no saved address). The daemon owns the one
 * instance and updates it; engines hold a const pointer and ask through the functions below,
 * so subnet policy is written once.
 */
struct vnet {
	uint32_t addr;
	uint8_t prefix_len;
};

/* 1 if we have an address. */
int vnet_ready(const struct vnet *v);
/* 1 if ip is inside our virtual network (any host, network or broadcast address). */
int vnet_contains(const struct vnet *v, uint32_t ip);
/* 1 if ip is the directed broadcast address of our network (never for /31 and /32). */
int vnet_is_broadcast(const struct vnet *v, uint32_t ip);
/* 1 if ip may be another node: inside the network, not us, not its network or broadcast
 * address. */
int vnet_is_other_host(const struct vnet *v, uint32_t ip);

#endif
