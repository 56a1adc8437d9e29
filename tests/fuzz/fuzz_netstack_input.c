/*
 * fuzz_netstack_input: arbitrary bytes as an IPv4 packet from a peer, into a netstack with a
 * TCP listener (spliced to a socketpair) and a bound UDP socket, output discarded. The first
 * input byte picks a mode: raw bytes, or a valid IPv4 header for us with the rest as payload
 * (so the fuzzer reaches TCP/UDP/ICMP quickly despite the IP header checksum).
 * lwIP is a process-wide singleton: one netstack for the whole run; pcbs that inputs create
 * live on and are part of the state later inputs see, like in a daemon.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "netstack/netstack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUR_ADDR 0x05000001u

static void
discard(void *arg, uint32_t dst, const uint8_t *pkt, size_t len)
{
	(void)arg;
	(void)dst;
	(void)pkt;
	(void)len;
}

static const struct netstack_ops ops = { .output = discard };

static int
open_pair(void *arg, uint32_t ip, uint16_t port)
{
	int sv[2];

	(void)arg;
	(void)ip;
	(void)port;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return -1;
	close(sv[0]);   /* the splice sees a reset peer: exercises the error paths too */
	return sv[1];
}

static void
udp_recv(void *arg, uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, const uint8_t *d,
    size_t len)
{
	(void)src_ip;
	(void)dst_ip;
	if (len > 0 && d[0] == 'e')
		ns_udp_sendto(*(struct ns_udp **)arg, src_ip, src_port, d, len);
}

static uint16_t
csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ev_loop *loop;
	static struct netstack *ns;
	static struct ns_udp *u;
	static uint8_t pkt[65536];

	if (ns == NULL) {
		loop = ev_loop_new(EVFLAG_AUTO);
		ns = netstack_new(loop, OUR_ADDR, 8, 1400, &ops, NULL);
		ns_listen(ns, 80, open_pair, NULL);
		u = ns_udp_bind(ns, 53, udp_recv, &u);
	}
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0 || size < 1 + 12) {
		netstack_input(ns, data + 1, size - 1);
	} else {
		/* data[1] = protocol, data[2..5] = source, rest = payload after a valid header. */
		size_t plen = size - 6, tot = 20 + plen;

		if (tot > sizeof(pkt))
			return 0;
		memset(pkt, 0, 20);
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)(tot >> 8);
		pkt[3] = (uint8_t)tot;
		pkt[8] = 64;
		pkt[9] = data[1];
		memcpy(pkt + 12, data + 2, 4);
		pkt[16] = 5;
		pkt[19] = 1;
		memcpy(pkt + 20, data + 6, plen);
		pkt[10] = 0;
		pkt[11] = 0;
		{
			uint16_t c = csum(pkt, 20);

			pkt[10] = (uint8_t)(c >> 8);
			pkt[11] = (uint8_t)c;
		}
		netstack_input(ns, pkt, tot);
	}
	/* Let callbacks that wait for fd readiness (splice error paths) run. */
	ev_run(loop, EVRUN_NOWAIT);
	return 0;
}
