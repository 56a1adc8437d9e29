/*
 * netif: the netstack object and lwIP's one network interface ("sh"). IP packets from peers
 * come in through netstack_input; lwIP's output goes to ops->output. Also start-up and
 * shutdown of lwIP itself.
 * Owns: struct netstack, the netif, lwIP initialisation. Must not touch: TCP/UDP pcbs
 * (splice.c, listen.c, udp.c own those).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "base/log.h"
#include "netstack/netstack_priv.h"

void
ns_ip4_from_host(ip4_addr_t *a, uint32_t host)
{
	ip4_addr_set_u32(a, lwip_htonl(host));
}

uint32_t
ns_ip4_to_host(const ip4_addr_t *a)
{
	return lwip_ntohl(ip4_addr_get_u32(a));
}

/* lwIP is a process-wide singleton; this only records that it was initialised. */
static int lwip_started;

static uint64_t
lwip_ip_drops(void)
{
	return (uint64_t)lwip_stats.ip.drop;
}

/* lwIP hands us a finished IPv4 packet; ipaddr is the next hop, which on our one-hop overlay
 * is the destination (a peer, or a broadcast/multicast address). */
static err_t
netif_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *ipaddr)
{
	struct netstack *ns = netif->state;
	const uint8_t *pkt;
	size_t len = p->tot_len;

	if (p->next == NULL) {
		pkt = p->payload;
	} else {
		if (pbuf_copy_partial(p, ns->obuf, p->tot_len, 0) != p->tot_len)
			return ERR_BUF;
		pkt = ns->obuf;
	}
	ns->st.out_packets++;
	ns->ops->output(ns->arg, ns_ip4_to_host(ipaddr), pkt, len);
	return ERR_OK;
}

static err_t
netif_init_cb(struct netif *netif)
{
	struct netstack *ns = netif->state;

	netif->name[0] = 's';
	netif->name[1] = 'h';
	netif->mtu = (u16_t)ns->mtu;
	netif->output = netif_output;
	netif->flags = NETIF_FLAG_BROADCAST;
	return ERR_OK;
}

int
ns_has_addr(const struct netstack *ns)
{
	return !ip4_addr_isany_val(*netif_ip4_addr(&ns->netif));
}

static void
prefix_to_mask(ip4_addr_t *mask, uint8_t prefix_len)
{
	uint32_t m = prefix_len == 0 ? 0 : prefix_len >= 32 ? 0xffffffffu :
	    ~((1u << (32 - prefix_len)) - 1);

	ns_ip4_from_host(mask, m);
}

struct netstack *
netstack_new(struct ev_loop *loop, uint32_t addr, uint8_t prefix_len, unsigned mtu,
    const struct netstack_ops *ops, void *arg)
{
	struct netstack *ns;
	ip4_addr_t ip, mask, gw;

	if (mtu < 576 || mtu > 65535) {
		errno = EINVAL;
		return NULL;
	}
	if ((ns = calloc(1, sizeof(*ns))) == NULL)
		return NULL;
	ns->loop = loop;
	ns->ops = ops;
	ns->arg = arg;
	ns->mtu = mtu;
	ns->connect_timeout = NS_CONNECT_TIMEOUT_MS / 1000.0;
	/* sys_now() must read this loop before lwip_init() registers its first timeouts. */
	ns_tick_init(ns);
	ns_splice_flush_init(ns);
	if (!lwip_started) {
		/* lwIP has no de-init: a second netstack in the same process reuses its state. */
		lwip_init();
		lwip_started = 1;
	}
	ns->lwip_ip_drops_base = lwip_ip_drops();

	ns_ip4_from_host(&ip, addr);
	prefix_to_mask(&mask, prefix_len);
	ip4_addr_set_zero(&gw);
	if (netif_add(&ns->netif, &ip, &mask, &gw, ns, netif_init_cb, ip4_input) == NULL) {
		ns_splice_flush_stop(ns);
		ns_tick_stop(ns);
		free(ns);
		errno = ENOMEM;
		return NULL;
	}
	netif_set_default(&ns->netif);
	netif_set_link_up(&ns->netif);
	netif_set_up(&ns->netif);
	ns_tick_arm(ns);
	return ns;
}

void
netstack_free(struct netstack *ns)
{
	if (ns == NULL)
		return;
	/* Remaining pcbs belong to splices/listeners the owner should have freed first; lwIP
	 * cannot be de-initialised, so the netif is only taken down. */
	netif_set_down(&ns->netif);
	netif_remove(&ns->netif);
	ns_splice_flush_stop(ns);
	ns_tick_stop(ns);
	ev_timer_stop(ns->loop, &ns->unreach_w);
	free(ns);
}

void
netstack_set_addr(struct netstack *ns, uint32_t addr, uint8_t prefix_len)
{
	ip4_addr_t ip, mask, gw;

	ns_ip4_from_host(&ip, addr);
	prefix_to_mask(&mask, prefix_len);
	ip4_addr_set_zero(&gw);
	/* lwIP aborts TCP connections bound to the old address (their err callbacks close the
	 * splices) and moves listeners and UDP pcbs to the new one. */
	netif_set_addr(&ns->netif, &ip, &mask, &gw);
	ns_tick_arm(ns);
}

void
netstack_set_connect_timeout(struct netstack *ns, double seconds)
{
	ns->connect_timeout = seconds;
}

/* Structural checks lwIP would also make, done here so such drops show in our stats. */
static int
ipv4_plausible(const uint8_t *pkt, size_t len)
{
	size_t ihl, tot;

	if (len < 20 || len > 65535)
		return 0;
	if ((pkt[0] >> 4) != 4)
		return 0;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	tot = ((size_t)pkt[2] << 8) | pkt[3];
	if (ihl < 20 || ihl > len || tot < ihl || tot > len)
		return 0;
	return 1;
}

void
netstack_input(struct netstack *ns, const uint8_t *pkt, size_t len)
{
	struct pbuf *p;

	ns->st.in_packets++;
	if (!ipv4_plausible(pkt, len)) {
		ns->st.in_dropped++;
		return;
	}
	/* Pool first (no malloc); a heap pbuf when the pool is drained by slow readers. */
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
	if (p == NULL)
		p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (p == NULL) {
		ns->st.in_dropped++;
		return;
	}
	if (pbuf_take(p, pkt, (u16_t)len) != ERR_OK) {
		pbuf_free(p);
		ns->st.in_dropped++;
		return;
	}
	/* ip4_input consumes p in every case. */
	ns->netif.input(p, &ns->netif);
	ns_tick_arm(ns);
}

void
netstack_get_stats(const struct netstack *ns, struct netstack_stats *st)
{
	*st = ns->st;
	st->in_dropped += lwip_ip_drops() - ns->lwip_ip_drops_base;
}
