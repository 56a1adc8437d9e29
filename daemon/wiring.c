/*
 * wiring: how shoald's engines reach each other. Each engine talks outward only through its
 * callback struct; this file fills those structs with calls into the engine that answers.
 * It is the only place besides main.c that follows pointers of struct daemon, and it holds no
 * policy: every decision stays in the engine it is called into.
 *
 *   netstack --output--> peers_send_ip        peers --deliver--> netstack_input
 *   transport --receive--> medclient | peers   peers --peer_gone--> netstack_abort_peer
 *                                              peers --path_lost--> medclient_punch_request
 *   medclient --address--> daemon_set_address  medclient --authorize/revoke/punch--> peers
 *   medclient --punch (strategy tcp)--> tcppunch --up--> peers_punch (the new link's endpoint)
 *   front ends --peerdir resolve--> medclient_resolve, --is_peer--> peers_is_peer
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/peer.h"
#include "core/relayclient.h"
#include "core/tcppunch.h"
#include "daemon/daemon.h"
#include "daemon/portsfile.h"
#include "medclient/medclient.h"
#include "mproto/relaymsg.h"
#include "portmap/portmap.h"
#include "netstack/netstack.h"

static void
ns_output(void *arg, uint32_t dst, const uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	/* No such peer: refuse its connections now, not after the connect timeout. */
	if (peers_send_ip(d->peers, dst, pkt, len) != 0)
		netstack_unreachable(d->ns, dst);
}

const struct netstack_ops daemon_netstack_ops = { ns_output };

static void
peer_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	netstack_input(d->ns, pkt, len);
}

static void
peer_gone(void *arg, uint32_t vaddr)
{
	struct daemon *d = arg;

	netstack_abort_peer(d->ns, vaddr);
}

/* The path to a peer stopped answering: the mediator plans the pair again. While it is not
 * connected nothing is sent (a reconnect plans every pair anyway). */
static void
peer_path_lost(void *arg, const uint8_t key[KEY_LEN])
{
	struct daemon *d = arg;

	if (d->med)
		(void)medclient_punch_request(d->med, key);
}

const struct peers_ops daemon_peers_ops = { peer_deliver, peer_gone, peer_path_lost };

/* A punched TCP connection is up: the peer's handshake goes through it now, and again in a
 * few rounds in case the first copy crossed the peer's own (both sides get the link). */
static void
tcp_up(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	struct daemon *d = arg;

	peers_punch(d->peers, key, ep, 1, 0.0, 0.5, 3);
}

const struct tcppunch_ops daemon_tcppunch_ops = { tcp_up };

void
daemon_udp_dispatch(void *arg, const struct endpoint *from, uint8_t *pkt, size_t len)
{
	struct daemon *d = arg;

	/* The mediator's datagrams (probe replies, NAT classification) go to the mediator
	 * client. The transport exists before it: such a datagram then has no taker. */
	if (pkt[0] == UDP_PROBE_REPLY || pkt[0] == UDP_NAT_TEST || pkt[0] == UDP_HAIRPIN) {
		if (d->med)
			medclient_udp_receive(d->med, from, pkt, len);
		return;
	}
	/* Relay datagrams (PROTOCOL.md 8): the relay client; the peer datagrams it unwraps come
	 * back here through its links. */
	if (pkt[0] >= UDP_RELAY_BIND && pkt[0] <= UDP_RELAY_PONG) {
		if (d->relays)
			relayclient_receive(d->relays, from, pkt, len);
		return;
	}
	peers_receive(d->peers, from, pkt, len);
}

static int
dir_resolve(void *arg, const char *name, uint8_t key[KEY_LEN], uint32_t *addr)
{
	struct daemon *d = arg;

	return medclient_resolve(d->med, name, key, addr);
}

static int
dir_is_peer(void *arg, uint32_t vaddr)
{
	struct daemon *d = arg;

	return peers_is_peer(d->peers, vaddr);
}

static int
dir_name_of(void *arg, uint32_t vaddr, char *out, size_t cap)
{
	struct daemon *d = arg;

	return medclient_name_of(d->med, vaddr, out, cap);
}

void
daemon_peerdir_init(struct daemon *d)
{
	d->dir = (struct peerdir){ dir_resolve, dir_is_peer, dir_name_of, d };
}

void
daemon_set_address(struct daemon *d, uint32_t vaddr, uint8_t prefix_len)
{
	char ip[IP4_STR_LEN];

	if (vaddr == d->vnet.addr && prefix_len == d->vnet.prefix_len)
		return;
	d->vnet.addr = vaddr;
	d->vnet.prefix_len = prefix_len;
	netstack_set_addr(d->ns, vaddr, prefix_len);
	log_info("event=address addr=%s/%u", ip4_str(vaddr, ip), (unsigned)prefix_len);
	addrfile_save(d->cfg.state_dir, vaddr, prefix_len);
}

static void
med_address(void *arg, uint32_t vaddr, uint8_t prefix_len)
{
	daemon_set_address(arg, vaddr, prefix_len);
}

static void
med_authorize(void *arg, const uint8_t key[KEY_LEN], uint32_t vaddr,
    const struct endpoint *eps, size_t n_eps)
{
	struct daemon *d = arg;

	peers_authorize(d->peers, key, vaddr, eps, n_eps);
	if (d->relays)
		relayclient_announce(d->relays, key);
}

static void
med_revoke(void *arg, const uint8_t key[KEY_LEN])
{
	struct daemon *d = arg;

	if (d->relays)
		relayclient_forget(d->relays, key);
	peers_revoke(d->peers, key);
}

/* The mediator's PUNCH drives the peer table's punch rounds. Strategy none sends nothing but
 * still goes through: it cancels whatever an older plan started. */
static void
med_punch(void *arg, const struct msg_punch *p)
{
	struct daemon *d = arg;

	/* Every plan goes to both: each cancels what an older plan of the other kind started. */
	tcppunch_start(d->tcp, p, medclient_tcp_port(d->med));
	if (p->strategy == PUNCH_TCP) {
		peers_punch(d->peers, p->peer, NULL, 0, 0, 0, 0);
		return;
	}
	peers_punch(d->peers, p->peer, p->targets,
	    p->strategy == PUNCH_NONE ? 0 : p->n_targets, p->start_ms / 1000.0,
	    p->interval_ms / 1000.0, p->rounds);
	if (p->strategy == PUNCH_BIRTHDAY) {
		struct peers_birthday bd = { p->sockets, p->probes, p->rate, p->port_lo,
			p->port_hi };

		peers_birthday(d->peers, p->peer, &bd);
	}
}

/*
 * Idle paths are refreshed well inside the shortest idle time our NAT was seen to keep a
 * binding (lifetime_s is a lower bound; a binding that lived 3 s gets a refresh every 2.4 s).
 */
static void
med_nat_info(void *arg, const struct msg_nat_info *info)
{
	struct daemon *d = arg;

	if (info->lifetime_s > 0)
		peers_set_refresh(d->peers, info->lifetime_s * 0.8);
	else if (info->lifetime_max_s > 0)     /* not even the first gap survived */
		peers_set_refresh(d->peers, info->lifetime_max_s * 0.5);
}

static void
pm_changed(void *arg, const struct endpoint *ext)
{
	struct daemon *d = arg;

	medclient_set_mapped(d->med, ext, ext ? 1 : 0);
}

const struct portmap_ops daemon_portmap_ops = { pm_changed };

static void
med_relays(void *arg, const struct msg_relays *r)
{
	struct daemon *d = arg;

	relayclient_pool(d->relays, r);
}

static void
med_relay_grant(void *arg, const struct msg_relay_grant *g)
{
	struct daemon *d = arg;

	relayclient_grant(d->relays, g);
}

static void
rc_report(void *arg, const struct msg_relay_rtt *r)
{
	struct daemon *d = arg;

	(void)medclient_relay_rtt(d->med, r);
}

static void
rc_path(void *arg, const uint8_t key[KEY_LEN], const struct endpoint *ep)
{
	struct daemon *d = arg;

	peers_set_relay(d->peers, key, ep);
}

const struct relayclient_ops daemon_relayclient_ops = { rc_report, rc_path };

static const struct medclient_ops med_ops = { med_address, med_authorize, med_revoke,
	med_punch, med_nat_info, med_relays, med_relay_grant };

void
daemon_addrs_changed(void *arg)
{
	struct daemon *d = arg;

	medclient_locals_changed(d->med);
}

struct medclient *
daemon_medclient_new(struct daemon *d)
{
	struct medclient_config mc;

	memset(&mc, 0, sizeof(mc));
	mc.server = d->cfg.server_cs;
	snprintf(mc.nick, sizeof(mc.nick), "%s", d->cfg.nick);
	snprintf(mc.state_dir, sizeof(mc.state_dir), "%s", d->cfg.state_dir);
	return medclient_new(d->loop, &mc, &d->key, d->tp, &med_ops, d);
}

void
daemon_ports_changed(void *arg)
{
	struct daemon *d = arg;

	portsfile_save(d->cfg.state_dir, d->expose, d->fwd);
}
