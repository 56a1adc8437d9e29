/*
 * peerindex: the receiver-index table. Every handshake and session we take part in gets a
 * random 32-bit index, unique among ours; peers put it in each packet to us, so a data packet
 * finds its session with one hash lookup and never by trying keys. Indices are random so they
 * reveal nothing about how many sessions we have or in what order they were made.
 * Owns: the uthash of struct peer_index (the entries themselves are embedded in peers and
 * keypairs). Must not: touch keys or send anything.
 */
#include "config.h"

#include <sodium.h>

#include "core/peer_impl.h"

void
peerindex_insert_as(struct peers *ps, struct peer_index *e, uint32_t index, struct peer *p,
    struct keypair *kp)
{
	e->index = index;
	e->peer = p;
	e->kp = kp;
	HASH_ADD(hh, ps->indices, index, sizeof(e->index), e);
}

void
peerindex_insert(struct peers *ps, struct peer_index *e, struct peer *p, struct keypair *kp)
{
	uint32_t idx;

	/* 0 marks "not in the table"; collisions are rare, just draw again. */
	do {
		randombytes_buf(&idx, sizeof(idx));
	} while (idx == 0 || peerindex_lookup(ps, idx) != NULL);
	peerindex_insert_as(ps, e, idx, p, kp);
}

void
peerindex_remove(struct peers *ps, struct peer_index *e)
{
	if (e->index == 0)
		return;
	HASH_DELETE(hh, ps->indices, e);
	e->index = 0;
	e->kp = NULL;
}

struct peer_index *
peerindex_lookup(struct peers *ps, uint32_t index)
{
	struct peer_index *e;

	if (index == 0)
		return NULL;
	HASH_FIND(hh, ps->indices, &index, sizeof(index), e);
	return e;
}
