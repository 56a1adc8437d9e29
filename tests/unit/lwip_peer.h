/*
 * lwip_peer: what the lwIP tests (test_lwip_fixes, test_lwip_sack) drive lwIP with: one netif
 * whose output is captured (sent[], the TCP header fields of each segment lwIP sends), and
 * hand-built IPv4/TCP segments from a pretend peer (PEER_IP:PEER_PORT to LOCAL_IP:LOCAL_PORT).
 * Header-only, like unit.h: each test program includes it once. Define LWIP_PEER_SENT_MAX
 * before including it to keep more than 256 segments.
 */
#ifndef SHOAL_TESTS_LWIP_PEER_H
#define SHOAL_TESTS_LWIP_PEER_H

#include <stdlib.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/pbuf.h"

#ifndef LWIP_PEER_SENT_MAX
#define LWIP_PEER_SENT_MAX 256
#endif

#define LOCAL_IP 0x0a000001u
#define PEER_IP 0x0a000002u
#define LOCAL_PORT 80
#define PEER_PORT 40000

struct sent {
	u32_t seq, ack;
	u8_t flags;
	u16_t len;
};

static struct netif nif;
static struct sent sent[LWIP_PEER_SENT_MAX];
static int nsent;

static err_t
capture_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
	u8_t buf[100];
	u16_t ihl, tot;
	const u8_t *t;

	(void)netif;
	(void)dst;
	if (pbuf_copy_partial(p, buf, sizeof(buf) < p->tot_len ? sizeof(buf) : p->tot_len, 0) < 40)
		return ERR_OK;
	if (nsent >= (int)(sizeof(sent) / sizeof(sent[0])))
		return ERR_OK;
	ihl = (u16_t)((buf[0] & 0x0f) * 4);
	tot = (u16_t)(buf[2] << 8 | buf[3]);
	t = buf + ihl;
	sent[nsent].seq = (u32_t)t[4] << 24 | (u32_t)t[5] << 16 | (u32_t)t[6] << 8 | t[7];
	sent[nsent].ack = (u32_t)t[8] << 24 | (u32_t)t[9] << 16 | (u32_t)t[10] << 8 | t[11];
	sent[nsent].flags = t[13];
	sent[nsent].len = (u16_t)(tot - ihl - (t[12] >> 4) * 4);
	nsent++;
	return ERR_OK;
}

static err_t
nif_init(struct netif *netif)
{
	netif->name[0] = 't';
	netif->name[1] = 't';
	netif->mtu = 1400;
	netif->output = capture_output;
	return ERR_OK;
}

static void
setup(void)
{
	ip4_addr_t ip, mask, gw;

	lwip_init();
	ip4_addr_set_u32(&ip, lwip_htonl(LOCAL_IP));
	ip4_addr_set_u32(&mask, lwip_htonl(0xff000000u));
	ip4_addr_set_zero(&gw);
	netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ip4_input);
	netif_set_default(&nif);
	netif_set_link_up(&nif);
	netif_set_up(&nif);
}

static void
put16(u8_t *p, u16_t v)
{
	p[0] = (u8_t)(v >> 8);
	p[1] = (u8_t)v;
}

static void
put32(u8_t *p, u32_t v)
{
	p[0] = (u8_t)(v >> 24);
	p[1] = (u8_t)(v >> 16);
	p[2] = (u8_t)(v >> 8);
	p[3] = (u8_t)v;
}

static u16_t
csum(const u8_t *p, size_t n, u32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (u32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (u32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16_t)~sum;
}

/* One segment from the peer into lwIP: TCP options (a multiple of 4 bytes, may be NULL) and
 * len bytes of payload, byte i being payload(arg, i) (payload NULL: no data). */
static void
peer_segment(u8_t flags, u32_t seq, u32_t ack, u16_t wnd, const u8_t *opts, size_t optlen,
    u8_t (*payload)(void *arg, size_t i), void *arg, size_t len)
{
	size_t hl = 20 + optlen, tot = 20 + hl + len, i;
	u8_t *b = calloc(1, tot);
	u8_t *t = b + 20;
	u32_t ps;
	struct pbuf *p;

	b[0] = 0x45;
	put16(b + 2, (u16_t)tot);
	b[8] = 64;
	b[9] = 6;
	put32(b + 12, PEER_IP);
	put32(b + 16, LOCAL_IP);
	put16(b + 10, csum(b, 20, 0));
	put16(t, PEER_PORT);
	put16(t + 2, LOCAL_PORT);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (u8_t)((hl / 4) << 4);
	t[13] = flags;
	put16(t + 14, wnd);
	if (optlen > 0)
		memcpy(t + 20, opts, optlen);
	for (i = 0; payload && i < len; i++)
		t[hl + i] = payload(arg, i);
	ps = (PEER_IP >> 16) + (PEER_IP & 0xffff) + (LOCAL_IP >> 16) + (LOCAL_IP & 0xffff) + 6 +
	    (u32_t)(hl + len);
	put16(t + 16, csum(t, hl + len, ps));
	p = pbuf_alloc(PBUF_RAW, (u16_t)tot, PBUF_RAM);
	pbuf_take(p, b, (u16_t)tot);
	free(b);
	ip4_input(p, &nif);
}

#endif
