/*
 * udp: datagram sockets on the virtual network, broadcast allowed both ways (LAN games and
 * discovery protocols live on it).
 * Owns: struct ns_udp and its pcb. Must not touch TCP state.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "lwip/ip.h"
#include "lwip/udp.h"

#include "netstack/netstack_priv.h"

/* Owned by the caller of ns_udp_bind (freed with ns_udp_free). */
struct ns_udp {
	struct netstack *ns;
	struct udp_pcb *pcb;
	ns_udp_recv_cb cb;
	void *arg;
};

enum { UDP_MAX_DATAGRAM = 65535 - 20 - 8 };

static void
udp_recv_cb(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct ns_udp *u = arg;
	struct netstack *ns = u->ns;
	const uint8_t *data = p->payload;
	uint32_t dst;

	(void)pcb;
	/* Valid during input: where the datagram was sent to (ours, broadcast, multicast). */
	dst = ns_ip4_to_host(ip4_current_dest_addr());
	if (p->next != NULL) {
		pbuf_copy_partial(p, ns->ubuf, p->tot_len, 0);
		data = ns->ubuf;
	}
	u->cb(u->arg, ns_ip4_to_host(ip_2_ip4(addr)), port, dst, data, p->tot_len);
	pbuf_free(p);
}

struct ns_udp *
ns_udp_bind(struct netstack *ns, uint16_t port, ns_udp_recv_cb cb, void *arg)
{
	struct ns_udp *u;
	err_t e;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	if ((u->pcb = udp_new_ip_type(IPADDR_TYPE_V4)) == NULL) {
		free(u);
		errno = ENOBUFS;     /* lwIP's pool is full, as the kernel says */
		return NULL;
	}
	u->ns = ns;
	u->cb = cb;
	u->arg = arg;
	ip_set_option(u->pcb, SOF_BROADCAST);
	if ((e = udp_bind(u->pcb, IP4_ADDR_ANY, port)) != ERR_OK) {
		udp_remove(u->pcb);
		free(u);
		errno = e == ERR_USE ? EADDRINUSE : EINVAL;
		return NULL;
	}
	udp_recv(u->pcb, udp_recv_cb, u);
	return u;
}

uint16_t
ns_udp_port(const struct ns_udp *u)
{
	return u->pcb->local_port;
}

int
ns_udp_sendto(struct ns_udp *u, uint32_t ip, uint16_t port, const void *data, size_t len)
{
	struct pbuf *p;
	ip_addr_t dst;
	err_t e;

	if (len > UDP_MAX_DATAGRAM) {
		errno = EMSGSIZE;
		return -1;
	}
	if (!ns_has_addr(u->ns)) {
		errno = ENETUNREACH;
		return -1;
	}
	/*
	 * From the pbuf pool, not the heap: PBUF_RAM is a malloc per datagram with
	 * MEM_LIBC_MALLOC, which showed in small-packet profiles. The pbuf lives only until
	 * udp_sendto returns (netif_output hands the packet on synchronously), so this borrows
	 * pool space for an instant; PBUF_TRANSPORT leaves room for the UDP and IP headers so
	 * the packet stays one contiguous pbuf. Large datagrams come back as a chain, which
	 * udp_sendto and fragmentation handle. The heap remains the fallback when the pool
	 * is drained by slow TCP readers.
	 */
	p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_POOL);
	if (p == NULL)
		p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
	if (p == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (len > 0 && pbuf_take(p, data, (u16_t)len) != ERR_OK) {
		pbuf_free(p);
		errno = ENOMEM;
		return -1;
	}
	ip_addr_set_zero_ip4(&dst);
	ns_ip4_from_host(ip_2_ip4(&dst), ip);
	e = udp_sendto(u->pcb, p, &dst, port);
	pbuf_free(p);
	ns_tick_arm(u->ns);
	switch (e) {
	case ERR_OK:
		return 0;
	case ERR_MEM:
	case ERR_BUF:
		errno = ENOMEM;
		return -1;
	case ERR_RTE:
		errno = EHOSTUNREACH;
		return -1;
	default:
		errno = EMSGSIZE;
		return -1;
	}
}

void
ns_udp_free(struct ns_udp *u)
{
	if (u == NULL)
		return;
	udp_remove(u->pcb);
	free(u);
}
