/*
 * peerdir: the contract through which front ends (SOCKS5, the lanproxy server, forward, the
 * control socket) ask "who is that peer?" without knowing where the answer comes from.
 *
 * There is one implementation of each question, wired in by daemon/main.c:
 *   resolve   medclient/names.c: a nick (case-insensitive), NICK.shoal, either with a
 *             trailing dot, a node-id prefix (>= 8 hex digits) or a dotted virtual address of
 *             a member, the same for every front end;
 *   is_peer   core/peer.c: the peer table, which holds exactly the nodes the mediator client's
 *             authorization policy (medclient/authz.c) let in;
 *   name_of   medclient/names.c again (reverse lookups of `shoal run` programs).
 * Addresses are host byte order.
 */
#ifndef SHOAL_PEERDIR_H
#define SHOAL_PEERDIR_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

struct peerdir {
	/* 0 with the member's key and virtual address, or -1 (unknown or ambiguous). */
	int (*resolve)(void *arg, const char *name, uint8_t key[KEY_LEN], uint32_t *addr);
	/* 1 if vaddr is an authorized peer we may exchange packets with now. */
	int (*is_peer)(void *arg, uint32_t vaddr);
	/* The reverse of resolve: the name ("NICK.shoal") of the member at vaddr; 0 or -1. */
	int (*name_of)(void *arg, uint32_t vaddr, char *out, size_t cap);
	void *arg;
};

static inline int
peerdir_resolve(const struct peerdir *pd, const char *name, uint8_t key[KEY_LEN],
    uint32_t *addr)
{
	return pd->resolve(pd->arg, name, key, addr);
}

static inline int
peerdir_is_peer(const struct peerdir *pd, uint32_t vaddr)
{
	return pd->is_peer(pd->arg, vaddr);
}

static inline int
peerdir_name_of(const struct peerdir *pd, uint32_t vaddr, char *out, size_t cap)
{
	return pd->name_of(pd->arg, vaddr, out, cap);
}

#endif
