/*
 * test_natclass: server/natclass.c, one test per rule of docs/PROTOCOL.md 3.1, and
 * natprobe_targets (the plan's target order). Observations are built by hand the way a NAT of
 * each kind would produce them.
 */
#include "config.h"

#include <string.h>

#include "server/natclass.h"
#include "server/natprobe.h"
#include "tests/unit/unit.h"

#define A 0xc6336401u                   /* 198.51.100.1: server address A */
#define B 0xc6336402u                   /* 198.51.100.2: server address B */
#define PUB 0xcb007107u                 /* 203.0.113.7: the NAT's public address */
#define LOCAL_PORT 40000

/* Two server addresses: A:7000, A:7001, B:7000, B:7001, A:7002, B:7002. */
static void
two_addrs(struct natclass_in *in)
{
	static const struct endpoint t[NAT_MAX_TARGETS] = {
		{ .addr = A, .port = 7000 }, { .addr = A, .port = 7001 }, { .addr = B, .port = 7000 },
		{ .addr = B, .port = 7001 }, { .addr = A, .port = 7002 }, { .addr = B, .port = 7002 },
	};

	memset(in, 0, sizeof(*in));
	in->n_targets = NAT_MAX_TARGETS;
	memcpy(in->targets, t, sizeof(t));
	in->local_port = LOCAL_PORT;
	in->tests_sent = 3;
	in->have_report = 1;
	in->report.local_port = LOCAL_PORT;
}

static void
one_addr(struct natclass_in *in)
{
	static const struct endpoint t[3] = { { .addr = A, .port = 7000 }, { .addr = A, .port = 7001 }, { .addr = A, .port = 7002 } };

	memset(in, 0, sizeof(*in));
	in->n_targets = 3;
	memcpy(in->targets, t, sizeof(t));
	in->local_port = LOCAL_PORT;
	in->tests_sent = 1;             /* no other address: no kind 2 */
	in->have_report = 1;
	in->report.local_port = LOCAL_PORT;
}

/* Every target observed at PUB:port[i]. */
static void
observe_ports(struct natclass_in *in, const uint16_t *ports)
{
	uint8_t i;

	for (i = 0; i < in->n_targets; i++) {
		in->observed |= (uint8_t)(1u << i);
		in->obs[i].addr = PUB;
		in->obs[i].port = ports[i];
	}
}

static void
test_eim_preserved_and_fixed(void)
{
	static const uint16_t same[6] = { 40000, 40000, 40000, 40000, 40000, 40000 };
	static const uint16_t other[6] = { 1234, 1234, 1234, 1234, 1234, 1234 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, same);
	natclass_classify(&in, &o);
	CHECK_EQ(o.udp, NAT_UDP_OK);
	CHECK_EQ(o.mapping, NAT_MAP_EIM);
	CHECK_EQ(o.ports, NAT_PORTS_PRESERVED);
	CHECK_EQ(o.step, 0);
	CHECK_EQ(o.addrs, 2);
	CHECK(o.public_ep.addr == PUB && o.public_ep.port == 40000);

	two_addrs(&in);
	observe_ports(&in, other);
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_EIM);
	CHECK_EQ(o.ports, NAT_PORTS_FIXED);
	CHECK_EQ(o.public_ep.port, 1234);

	/* The local port comes from the caller (report or HELLO): another one makes it fixed. */
	two_addrs(&in);
	observe_ports(&in, same);
	in.local_port = 40001;
	natclass_classify(&in, &o);
	CHECK_EQ(o.ports, NAT_PORTS_FIXED);
}

static void
test_adm(void)
{
	/* One mapping per server address: A targets 0,1,4 share 50000, B targets 2,3,5 50001. */
	static const uint16_t p[6] = { 50000, 50000, 50001, 50001, 50000, 50001 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, p);
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_ADM);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 1);

	/* Only one target per address observed: adm cannot be told from apdm. */
	two_addrs(&in);
	observe_ports(&in, p);
	in.observed = 1u << 0 | 1u << 2;
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_UNKNOWN);
	CHECK_EQ(o.ports, NAT_PORTS_UNKNOWN);
}

static void
test_apdm_sequential(void)
{
	static const uint16_t step1[6] = { 50000, 50001, 50002, 50003, 50004, 50005 };
	static const uint16_t step256[6] = { 1024, 1280, 1536, 1794, 2050, 2306 };
	static const uint16_t noisy[6] = { 50000, 50001, 50002, 50009, 50010, 50011 };
	static const uint16_t wrap[6] = { 65534, 65535, 0, 1, 2, 3 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, step1);
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_APDM);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 1);
	CHECK(o.public_ep.port == 50000);

	two_addrs(&in);
	observe_ports(&in, step256);
	natclass_classify(&in, &o);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 256);

	/* Another flow took 7 ports in between: one larger delta, the step stays 1. */
	two_addrs(&in);
	observe_ports(&in, noisy);
	natclass_classify(&in, &o);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 1);

	/* Deltas are modulo 65536. */
	two_addrs(&in);
	observe_ports(&in, wrap);
	natclass_classify(&in, &o);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 1);

	/* A delta of exactly 1024 is still sequential, 1025 is not. */
	{
		uint16_t p[6] = { 1000, 2024, 3048, 4072, 5096, 6120 };

		two_addrs(&in);
		observe_ports(&in, p);
		natclass_classify(&in, &o);
		CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
		CHECK_EQ(o.step, 1024);
		p[5] = 6121;
		two_addrs(&in);
		observe_ports(&in, p);
		natclass_classify(&in, &o);
		CHECK_EQ(o.ports, NAT_PORTS_RANDOM);
		CHECK_EQ(o.step, 0);
	}
}

static void
test_apdm_random(void)
{
	static const uint16_t rnd[6] = { 40123, 13001, 61234, 2345, 33333, 50505 };
	/* Sequential but going down: deltas of 65535 mod 65536, not 1..1024. */
	static const uint16_t down[6] = { 50005, 50004, 50003, 50002, 50001, 50000 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, rnd);
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_APDM);
	CHECK_EQ(o.ports, NAT_PORTS_RANDOM);
	CHECK_EQ(o.step, 0);

	two_addrs(&in);
	observe_ports(&in, down);
	natclass_classify(&in, &o);
	CHECK_EQ(o.ports, NAT_PORTS_RANDOM);
}

static void
test_filtering(void)
{
	static const uint16_t same[6] = { 40000, 40000, 40000, 40000, 40000, 40000 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, same);
	in.report.tests = 3;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_EIF);
	in.report.tests = 2;            /* kind 2 alone is enough */
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_EIF);
	in.report.tests = 1;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_ADF);
	in.report.tests = 0;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_APDF);

	/* A kind the server never sent proves nothing. */
	in.tests_sent = 1;
	in.report.tests = 2;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_APDF);
	/* Only kind 2 sent and not seen: adf or apdf, unknown. */
	in.tests_sent = 2;
	in.report.tests = 0;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_UNKNOWN);
	/* No report: unknown (and so are hairpin and lifetime). */
	in.tests_sent = 3;
	in.have_report = 0;
	natclass_classify(&in, &o);
	CHECK_EQ(o.filtering, NAT_FILT_UNKNOWN);
	CHECK_EQ(o.mapping, NAT_MAP_EIM);
}

static void
test_one_server_address(void)
{
	static const uint16_t same[3] = { 40000, 40000, 40000 };
	static const uint16_t seq[3] = { 30000, 30002, 30004 };
	struct natclass_in in;
	struct msg_nat_info o;

	one_addr(&in);
	observe_ports(&in, same);
	in.report.tests = 1;
	natclass_classify(&in, &o);
	CHECK_EQ(o.addrs, 1);
	CHECK_EQ(o.mapping, NAT_MAP_EIM);   /* eim or adm: cannot tell */
	CHECK_EQ(o.filtering, NAT_FILT_ADF); /* adf or eif: cannot tell */
	CHECK_EQ(o.ports, NAT_PORTS_PRESERVED);

	one_addr(&in);
	observe_ports(&in, seq);
	natclass_classify(&in, &o);
	CHECK_EQ(o.mapping, NAT_MAP_APDM);
	CHECK_EQ(o.ports, NAT_PORTS_SEQUENTIAL);
	CHECK_EQ(o.step, 2);
	CHECK_EQ(o.filtering, NAT_FILT_APDF);
}

static void
test_blocked_and_partial(void)
{
	static const uint16_t same[6] = { 40000, 40000, 40000, 40000, 40000, 40000 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	in.report.hairpin = NAT_HP_LOST;
	natclass_classify(&in, &o);
	CHECK_EQ(o.udp, NAT_UDP_BLOCKED);
	CHECK_EQ(o.mapping, NAT_MAP_UNKNOWN);
	CHECK_EQ(o.filtering, NAT_FILT_UNKNOWN);
	CHECK_EQ(o.ports, NAT_PORTS_UNKNOWN);
	CHECK_EQ(o.hairpin, NAT_HAIRPIN_UNKNOWN);
	CHECK_EQ(o.public_ep.addr, 0);
	CHECK_EQ(o.addrs, 2);

	/* Observed bits beyond the plan do not count. */
	one_addr(&in);
	in.observed = 1u << 4;
	natclass_classify(&in, &o);
	CHECK_EQ(o.udp, NAT_UDP_BLOCKED);

	/* Only target 0: UDP works, the mapping is unknown. */
	two_addrs(&in);
	observe_ports(&in, same);
	in.observed = 1;
	natclass_classify(&in, &o);
	CHECK_EQ(o.udp, NAT_UDP_OK);
	CHECK_EQ(o.mapping, NAT_MAP_UNKNOWN);
	CHECK_EQ(o.ports, NAT_PORTS_UNKNOWN);
	CHECK_EQ(o.public_ep.port, 40000);

	/* Target 0 lost, the rest seen: ok, eim, no public endpoint. */
	two_addrs(&in);
	observe_ports(&in, same);
	in.observed = 0x3e;
	natclass_classify(&in, &o);
	CHECK_EQ(o.udp, NAT_UDP_OK);
	CHECK_EQ(o.mapping, NAT_MAP_EIM);
	CHECK_EQ(o.ports, NAT_PORTS_PRESERVED);
	CHECK_EQ(o.public_ep.addr, 0);
}

static void
test_hairpin(void)
{
	static const uint16_t same[6] = { 40000, 40000, 40000, 40000, 40000, 40000 };
	struct natclass_in in;
	struct msg_nat_info o;

	two_addrs(&in);
	observe_ports(&in, same);
	natclass_classify(&in, &o);
	CHECK_EQ(o.hairpin, NAT_HAIRPIN_UNKNOWN);
	in.report.hairpin = NAT_HP_BACK;
	natclass_classify(&in, &o);
	CHECK_EQ(o.hairpin, NAT_HAIRPIN_YES);
	in.report.hairpin = NAT_HP_LOST;
	natclass_classify(&in, &o);
	CHECK_EQ(o.hairpin, NAT_HAIRPIN_NO);
}

static void
test_lifetime(void)
{
	static const uint16_t same[6] = { 40000, 40000, 40000, 40000, 40000, 40000 };
	struct natclass_in in;
	struct msg_nat_info o;

	CHECK_EQ(natclass_gap_s(0), 3);
	CHECK_EQ(natclass_gap_s(4), 48);
	CHECK_EQ(natclass_gap_s(5), 0);

	two_addrs(&in);
	observe_ports(&in, same);
	natclass_classify(&in, &o);
	CHECK(o.lifetime_s == 0 && o.lifetime_max_s == 0);

	/* 3, 6, 12 bridged; 24 overdue and missing: 12 <= lifetime < 24. */
	in.report.lifetime_seen = 0x07;
	in.lifetime_due = 0x0f;
	natclass_classify(&in, &o);
	CHECK_EQ(o.lifetime_s, 12);
	CHECK_EQ(o.lifetime_max_s, 24);

	/* 24 sent but not yet due: no upper bound yet. */
	in.lifetime_due = 0x07;
	natclass_classify(&in, &o);
	CHECK_EQ(o.lifetime_s, 12);
	CHECK_EQ(o.lifetime_max_s, 0);

	/* All five bridged. */
	in.report.lifetime_seen = 0x1f;
	in.lifetime_due = 0x1f;
	natclass_classify(&in, &o);
	CHECK_EQ(o.lifetime_s, 48);
	CHECK_EQ(o.lifetime_max_s, 0);

	/* Even 3 s was too long. */
	in.report.lifetime_seen = 0;
	in.lifetime_due = 0x01;
	natclass_classify(&in, &o);
	CHECK_EQ(o.lifetime_s, 0);
	CHECK_EQ(o.lifetime_max_s, 3);

	/* A lone loss below a bridged gap is not an upper bound. */
	in.report.lifetime_seen = 0x05;
	in.lifetime_due = 0x0f;
	natclass_classify(&in, &o);
	CHECK_EQ(o.lifetime_s, 12);
	CHECK_EQ(o.lifetime_max_s, 24);

	/* Without a report nothing is known. */
	in.have_report = 0;
	natclass_classify(&in, &o);
	CHECK(o.lifetime_s == 0 && o.lifetime_max_s == 0);
}

/* Every NAT_INFO the classifier produces must encode (it goes on the wire as is). */
static void
test_output_encodes(void)
{
	static const uint16_t rnd[6] = { 40123, 13001, 61234, 2345, 33333, 50505 };
	struct natclass_in in;
	struct msg m;
	uint8_t buf[64];

	two_addrs(&in);
	observe_ports(&in, rnd);
	in.report.hairpin = NAT_HP_BACK;
	in.report.lifetime_seen = 1;
	in.lifetime_due = 3;
	memset(&m, 0, sizeof(m));
	m.type = MSG_NAT_INFO;
	natclass_classify(&in, &m.u.nat_info);
	CHECK_EQ(msg_encode(&m, buf, sizeof(buf)), 19);
	two_addrs(&in);
	natclass_classify(&in, &m.u.nat_info);
	CHECK_EQ(msg_encode(&m, buf, sizeof(buf)), 19);
}

static void
test_targets(void)
{
	struct natsock socks[6] = {
		{ A, 7000, 0, 0 }, { A, 7001, 0, 1 }, { A, 7002, 0, 2 },
		{ B, 8000, 1, 0 }, { B, 8001, 1, 1 }, { B, 8002, 1, 2 },
	};
	struct endpoint t[NAT_MAX_TARGETS], local = { .addr = A, .port = 7000 };
	int so[NAT_MAX_TARGETS], n;

	n = natprobe_targets(socks, 6, &local, t, so);
	CHECK_EQ(n, 6);
	CHECK(t[0].addr == A && t[0].port == 7000 && so[0] == 0);
	CHECK(t[1].addr == A && t[1].port == 7001 && so[1] == 1);
	CHECK(t[2].addr == B && t[2].port == 8000 && so[2] == 3);
	CHECK(t[3].addr == B && t[3].port == 8001 && so[3] == 4);
	CHECK(t[4].addr == A && t[4].port == 7002 && so[4] == 2);
	CHECK(t[5].addr == B && t[5].port == 8002 && so[5] == 5);

	/* Connected to B: B is "A" of the plan, so target 0 is where its UDP_PROBEs go. */
	local = (struct endpoint){ .addr = B, .port = 8000 };
	n = natprobe_targets(socks, 6, &local, t, so);
	CHECK_EQ(n, 6);
	CHECK(t[0].addr == B && t[0].port == 8000 && so[0] == 3);
	CHECK(t[2].addr == A && t[2].port == 7000);

	/* One listen, PORT+1 missing: A:P, A:P+2. */
	local = (struct endpoint){ .addr = A, .port = 7000 };
	n = natprobe_targets((struct natsock[]){ { A, 7000, 0, 0 }, { A, 7002, 0, 2 } }, 2, &local,
	    t, so);
	CHECK_EQ(n, 2);
	CHECK(t[1].port == 7002 && so[1] == 1);

	/* Wildcard listener: the TCP connection's local address stands in. */
	local = (struct endpoint){ .addr = 0x7f000001u, .port = 7000 };
	n = natprobe_targets((struct natsock[]){ { 0, 7000, 0, 0 }, { 0, 7001, 0, 1 } }, 2, &local,
	    t, so);
	CHECK_EQ(n, 2);
	CHECK(t[0].addr == 0x7f000001u && t[1].addr == 0x7f000001u && t[1].port == 7001);
	/* ... and without it there is no plan. */
	local = (struct endpoint){ .addr = 0, .port = 7000 };
	CHECK_EQ(natprobe_targets((struct natsock[]){ { 0, 7000, 0, 0 } }, 1, &local, t, so), 0);
	/* A connection on no known listen: no plan. */
	local = (struct endpoint){ .addr = A, .port = 9999 };
	CHECK_EQ(natprobe_targets(socks, 6, &local, t, so), 0);
}

int
main(void)
{
	RUN(test_eim_preserved_and_fixed);
	RUN(test_adm);
	RUN(test_apdm_sequential);
	RUN(test_apdm_random);
	RUN(test_filtering);
	RUN(test_one_server_address);
	RUN(test_blocked_and_partial);
	RUN(test_hairpin);
	RUN(test_lifetime);
	RUN(test_output_encodes);
	RUN(test_targets);
	return unit_finish();
}
