/*
 * fuzz_peer_packet: arbitrary datagrams into peers_receive() of a context (A) with one
 * authorized peer (B) and an established session between them. The first byte picks how the
 * rest is delivered, so the fuzzer also reaches code behind the random receiver indices:
 *   0: raw datagram, as is
 *   1: raw datagram with A's current receiver index patched into bytes 4..7 (forged data)
 *   2: raw datagram with A's in-flight handshake index patched into bytes 8..11 (forged
 *      response; a fresh initiation is started first)
 *   3: plaintext [inner type][body] sealed by B's real session: exercises the inner handlers
 * There is no netstack: each context gets a fake struct peers_ops that drops what it is
 * handed. Nothing here may crash, leak or grow without bound.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/ip4.h"
#include "base/log.h"
#include "core/peer_impl.h"
#include "core/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fnode {
	struct noise_keypair key;
	struct vnet vnet;
	struct transport *tp;
	struct peers *peers;
	unsigned delivered, gone;       /* what the fake peers_ops was handed */
};

static void
fake_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct fnode *n = arg;

	(void)pkt;
	(void)len;
	n->delivered++;
}

static void
fake_peer_gone(void *arg, uint32_t vaddr)
{
	struct fnode *n = arg;

	(void)vaddr;
	n->gone++;
}

static const struct peers_ops fake_ops = { fake_deliver, fake_peer_gone, NULL };

struct fuzz_ctx {
	struct ev_loop *loop;
	struct fnode a, b;
	uint8_t buf[UDP_MAX_PAYLOAD + 64];
	uint8_t pt[UDP_MAX_PAYLOAD];
};

static void
dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct fnode *n = arg;

	peers_receive(n->peers, from, pkt, len);
}

static void
fnode_up(struct fuzz_ctx *c, struct fnode *n, uint32_t vaddr)
{
	noise_keypair_generate(&n->key);
	n->vnet.addr = vaddr;
	n->vnet.prefix_len = 8;
	if ((n->tp = transport_new(c->loop, 0, dispatch, n)) == NULL ||
	    (n->peers = peers_new(c->loop, &n->key, n->tp, &n->vnet, &fake_ops, n)) == NULL)
		abort();
}

static struct peer *
peer_ab(struct fuzz_ctx *c)
{
	return peers_lookup_key(c->a.peers, c->b.key.pub);
}

static struct peer *
peer_ba(struct fuzz_ctx *c)
{
	return peers_lookup_key(c->b.peers, c->a.key.pub);
}

static void
settle(struct fuzz_ctx *c)
{
	int i;

	for (i = 0; i < 200; i++) {
		struct peer *pa = peer_ab(c), *pb = peer_ba(c);

		if (pa && pb && peer_usable_keypair(pa) && peer_usable_keypair(pb))
			return;
		ev_run(c->loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

static struct fuzz_ctx *
ctx_get(void)
{
	static struct fuzz_ctx *c;
	struct endpoint ep = { 0 };

	if (c)
		return c;
	if (sodium_init() < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		abort();
	log_init("fuzz_peer_packet", LOG_LVL_WARN);
	c->loop = ev_loop_new(EVFLAG_AUTO);
	fnode_up(c, &c->a, 0x05000001u);
	fnode_up(c, &c->b, 0x05000002u);
	ep.addr = 0x7f000001;
	ep.port = transport_port(c->b.tp);
	peers_authorize(c->a.peers, c->b.key.pub, c->b.vnet.addr, &ep, 1);
	ep.port = transport_port(c->a.tp);
	peers_authorize(c->b.peers, c->a.key.pub, c->a.vnet.addr, &ep, 1);
	settle(c);
	return c;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_ctx *c = ctx_get();
	struct endpoint from = { 0 };
	struct peer *pa, *pb;
	struct keypair *kp;
	size_t len;
	int n;

	if (size < 1 || size - 1 > UDP_MAX_PAYLOAD)
		return 0;
	len = size - 1;
	memcpy(c->buf, data + 1, len);
	from.addr = 0x7f000001u + (uint32_t)(data[0] >> 2);
	from.port = 4000;
	pa = peer_ab(c);
	pb = peer_ba(c);

	switch (data[0] & 3) {
	case 0:
		peers_receive(c->a.peers, &from, c->buf, len);
		break;
	case 1:
		if (pa && pa->current && len >= 8)
			put32(c->buf + 4, pa->current->idx.index);
		peers_receive(c->a.peers, &from, c->buf, len);
		break;
	case 2:
		if (pa) {
			if (!pa->hs_active)
				handshake_initiate(pa, 1);
			if (pa->hs_active && len >= 12)
				put32(c->buf + 8, pa->hs_idx.index);
		}
		peers_receive(c->a.peers, &from, c->buf, len);
		break;
	case 3:
		if (pb == NULL || (kp = peer_usable_keypair(pb)) == NULL || len < 1)
			break;
		memcpy(c->pt, c->buf, len);
		n = session_seal(&kp->s, c->pt[0], c->pt + 1, len - 1, c->buf,
		    sizeof(c->buf));
		if (n > 0)
			peers_receive(c->a.peers, &from, c->buf, (size_t)n);
		break;
	}
	/* Let the sockets drain so queued replies do not pile up. */
	ev_run(c->loop, EVRUN_NOWAIT);
	if (pa && peer_usable_keypair(pa) == NULL)
		settle(c);
	return 0;
}
