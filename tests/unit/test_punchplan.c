/*
 * test_punchplan: server/punchplan.c, one test per row of docs/PROTOCOL.md 3.2's strategy
 * table (both orders of the pair where the table is asymmetric), the predicted ports, and the
 * start-time rule. Every plan is also encoded: a plan the codec refuses could never be sent.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "mproto/msg.h"
#include "server/punchplan.h"
#include "tests/unit/unit.h"

static uint32_t
ip4(int a, int b, int c, int d)
{
	return ((uint32_t)a << 24) | ((uint32_t)b << 16) | ((uint32_t)c << 8) | (uint32_t)d;
}

#define PUB_A ip4(198, 51, 100, 10)
#define PUB_B ip4(203, 0, 113, 20)

/* A side with a NAT_INFO; the observed endpoint is the info's public endpoint. */
static void
side(struct punch_side *s, uint8_t keybyte, uint32_t pub, uint16_t port, uint8_t mapping,
    uint8_t filtering, uint8_t ports, uint16_t step)
{
	memset(s, 0, sizeof(*s));
	memset(s->key, keybyte, KEY_LEN);
	s->has_info = 1;
	s->info.udp = NAT_UDP_OK;
	s->info.mapping = mapping;
	s->info.filtering = filtering;
	s->info.ports = ports;
	s->info.step = step;
	s->info.public_ep = (struct endpoint){ .addr = pub, .port = port };
	s->info.addrs = 2;
	s->observed = s->info.public_ep;
	s->cand[s->n_cand++] = s->observed;
	s->cand[s->n_cand++] = (struct endpoint){ .addr = ip4(192, 168, 1, keybyte), .port = 40000 };
}

static void
easy(struct punch_side *s, uint8_t keybyte, uint32_t pub, uint8_t filtering)
{
	side(s, keybyte, pub, 40000, NAT_MAP_EIM, filtering, NAT_PORTS_PRESERVED, 0);
}

static void
seq(struct punch_side *s, uint8_t keybyte, uint32_t pub, uint16_t port, uint16_t step)
{
	side(s, keybyte, pub, port, NAT_MAP_APDM, NAT_FILT_APDF, NAT_PORTS_SEQUENTIAL, step);
}

static void
rnd(struct punch_side *s, uint8_t keybyte, uint32_t pub)
{
	side(s, keybyte, pub, 31337, NAT_MAP_APDM, NAT_FILT_APDF, NAT_PORTS_RANDOM, 0);
}

static void
blocked(struct punch_side *s, uint8_t keybyte, uint32_t pub)
{
	side(s, keybyte, pub, 40000, 0, 0, 0, 0);
	s->info.udp = NAT_UDP_BLOCKED;
}

/* Plans a and b, checks the pair agrees on the strategy, names each other, and encodes. */
static void
plan(const struct punch_side *a, const struct punch_side *b, struct msg_punch *pa,
    struct msg_punch *pb)
{
	uint8_t buf[256];
	struct msg m, d;

	punchplan(a, b, pa, pb);
	CHECK_EQ(pa->strategy, pb->strategy);
	CHECK_MEM(pa->peer, b->key, KEY_LEN);
	CHECK_MEM(pb->peer, a->key, KEY_LEN);
	memset(&m, 0, sizeof(m));
	m.type = MSG_PUNCH;
	m.u.punch = *pa;
	CHECK(msg_encode(&m, buf, sizeof(buf)) > 0);
	CHECK_EQ(msg_decode(&d, buf, (size_t)msg_encode(&m, buf, sizeof(buf))), 0);
	m.u.punch = *pb;
	CHECK(msg_encode(&m, buf, sizeof(buf)) > 0);
}

static void
check_ep(const struct endpoint *e, uint32_t addr, uint16_t port)
{
	CHECK_EQ(e->addr, addr);
	CHECK_EQ(e->port, port);
}

static void
check_none(const struct msg_punch *p)
{
	CHECK_EQ(p->strategy, PUNCH_NONE);
	CHECK_EQ(p->n_targets, 0);
	CHECK_EQ(p->rounds, 0);
	CHECK_EQ(p->start_ms, 0);
}

/* Row 1: same public address: lan, local candidates first, observed last. */
static void
test_lan(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	seq(&a, 1, PUB_A, 50000, 1);
	rnd(&b, 2, PUB_A);
	b.cand[b.n_cand++] = (struct endpoint){ .addr = ip4(10, 0, 0, 2), .port = 40000 };
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_LAN);
	CHECK_EQ(pa.n_targets, 3);
	check_ep(&pa.targets[0], ip4(192, 168, 1, 2), 40000);
	check_ep(&pa.targets[1], ip4(10, 0, 0, 2), 40000);
	check_ep(&pa.targets[2], PUB_A, 31337);
	CHECK_EQ(pb.n_targets, 2);
	check_ep(&pb.targets[0], ip4(192, 168, 1, 1), 40000);
	check_ep(&pb.targets[1], PUB_A, 50000);
	CHECK_EQ(pa.rounds, PUNCH_ROUNDS);
	CHECK_EQ(pa.interval_ms, PUNCH_INTERVAL_MS);
}

/* Row 2: easy / easy: simultaneous to the observed endpoints; NAT fields carried. */
static void
test_easy_easy(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	easy(&a, 1, PUB_A, NAT_FILT_APDF);
	easy(&b, 2, PUB_B, NAT_FILT_EIF);
	b.info.ports = NAT_PORTS_FIXED;
	b.observed.port = b.info.public_ep.port = 1234;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(pa.n_targets, 1);
	check_ep(&pa.targets[0], PUB_B, 1234);
	CHECK_EQ(pb.n_targets, 1);
	check_ep(&pb.targets[0], PUB_A, 40000);
	CHECK_EQ(pa.my_mapping, NAT_MAP_EIM);
	CHECK_EQ(pa.my_ports, NAT_PORTS_PRESERVED);
	CHECK_EQ(pa.peer_ports, NAT_PORTS_FIXED);
	CHECK_EQ(pa.peer_filtering, NAT_FILT_EIF);
	CHECK_EQ(pb.peer_filtering, NAT_FILT_APDF);
}

/* Row 3: easy / seq, step 1: the easy side gets 8 predicted ports from the highest observed
 * port, the sequential side the easy one's observed endpoint; and the same with the pair
 * swapped. */
static void
test_easy_seq_step1(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;
	int k;

	easy(&a, 1, PUB_A, NAT_FILT_APDF);
	seq(&b, 2, PUB_B, 50000, 1);
	b.max_port = 50004;             /* later mappings seen past the observed one */
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_PREDICT);
	CHECK_EQ(pa.n_targets, PUNCH_PREDICT_PORTS + PUNCH_PREDICT_BEHIND);
	for (k = 0; k < PUNCH_PREDICT_PORTS; k++)
		check_ep(&pa.targets[k], PUB_B, (uint16_t)(50005 + k));
	/* Then below the highest: a mapping towards us made before 50004 was seen. */
	for (k = 0; k < PUNCH_PREDICT_BEHIND; k++)
		check_ep(&pa.targets[PUNCH_PREDICT_PORTS + k], PUB_B, (uint16_t)(50003 - k));
	CHECK_EQ(pb.n_targets, 1);
	check_ep(&pb.targets[0], PUB_A, 40000);
	CHECK_EQ(pa.peer_mapping, NAT_MAP_APDM);
	CHECK_EQ(pa.peer_ports, NAT_PORTS_SEQUENTIAL);

	/* Swapped: same plan from the other side. */
	plan(&b, &a, &pb, &pa);
	CHECK_EQ(pb.strategy, PUNCH_PREDICT);
	CHECK_EQ(pa.n_targets, PUNCH_PREDICT_PORTS + PUNCH_PREDICT_BEHIND);
	check_ep(&pa.targets[0], PUB_B, 50005);
	check_ep(&pa.targets[7], PUB_B, 50012);
	CHECK_EQ(pb.n_targets, 1);

	/* No max_port known: from the observed port. */
	b.max_port = 0;
	plan(&a, &b, &pa, &pb);
	check_ep(&pa.targets[0], PUB_B, 50001);
}

/* Row 3 with step 256 near the top of the port range: ports past 65535 are left out. */
static void
test_easy_seq_step256_wrap(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	easy(&a, 1, PUB_A, NAT_FILT_EIF);
	seq(&b, 2, PUB_B, 64000, 256);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_PREDICT);
	/* 64256, 64512, 64768, 65024, 65280, 65536 (gone), ...; then 63744 down to 62208. */
	CHECK_EQ(pa.n_targets, 5 + PUNCH_PREDICT_BEHIND);
	check_ep(&pa.targets[0], PUB_B, 64256);
	check_ep(&pa.targets[4], PUB_B, 65280);
	check_ep(&pa.targets[5], PUB_B, 63744);
	check_ep(&pa.targets[11], PUB_B, 62208);

	/* Lower down all 8 fit ahead, and nothing below 1024 is aimed at. */
	seq(&b, 2, PUB_B, 1000, 256);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.n_targets, 8);
	check_ep(&pa.targets[0], PUB_B, 1256);
	check_ep(&pa.targets[7], PUB_B, 3048);

	/* At the very top only the ports below are left. */
	seq(&b, 2, PUB_B, 65535, 256);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_PREDICT);
	CHECK_EQ(pa.n_targets, PUNCH_PREDICT_BEHIND);
	check_ep(&pa.targets[0], PUB_B, 65279);

	/* Nowhere to aim (a step no NAT_INFO carries, past the top and below 1024): no plan. */
	seq(&b, 2, PUB_B, 65535, 65535);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	check_none(&pb);
}

/* Row 4: seq / seq: both get the other's predicted ports. */
static void
test_seq_seq(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	seq(&a, 1, PUB_A, 20000, 2);
	seq(&b, 2, PUB_B, 30000, 1);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_PREDICT);
	CHECK_EQ(pa.n_targets, 15);
	check_ep(&pa.targets[0], PUB_B, 30001);
	check_ep(&pa.targets[7], PUB_B, 30008);
	check_ep(&pa.targets[8], PUB_B, 29999);
	CHECK_EQ(pb.n_targets, 15);
	check_ep(&pb.targets[0], PUB_A, 20002);
	check_ep(&pb.targets[7], PUB_A, 20016);
	check_ep(&pb.targets[14], PUB_A, 19986);
}

/* Row 5: random vs easy with EIF or ADF: simultaneous (both orders). */
static void
test_random_easy_open(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	rnd(&a, 1, PUB_A);
	easy(&b, 2, PUB_B, NAT_FILT_EIF);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	check_ep(&pa.targets[0], PUB_B, 40000);
	check_ep(&pb.targets[0], PUB_A, 31337);

	easy(&b, 2, PUB_B, NAT_FILT_ADF);
	plan(&b, &a, &pb, &pa);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(pa.n_targets, 1);
	CHECK_EQ(pb.n_targets, 1);
}

/* Row 6: random vs easy with APDF: birthday. The random side gets the sockets, the easy side
 * the probes over 1024..65535, later by the lag; both aim at the other's observed endpoint. */
static void
check_birthday(const struct msg_punch *hard, const struct msg_punch *soft, uint32_t easy_pub,
    uint32_t rnd_pub)
{
	CHECK_EQ(hard->strategy, PUNCH_BIRTHDAY);
	CHECK_EQ(hard->n_targets, 1);
	check_ep(&hard->targets[0], easy_pub, 40000);
	CHECK_EQ(hard->sockets, BIRTHDAY_SOCKETS);
	CHECK_EQ(hard->probes, 0);
	CHECK_EQ(hard->rate, 0);
	CHECK_EQ(hard->port_lo, 0);
	CHECK_EQ(soft->n_targets, 1);
	check_ep(&soft->targets[0], rnd_pub, 31337);
	CHECK_EQ(soft->sockets, 0);
	CHECK_EQ(soft->probes, BIRTHDAY_PROBES);
	CHECK_EQ(soft->rate, BIRTHDAY_RATE);
	CHECK_EQ(soft->port_lo, BIRTHDAY_PORT_MIN);
	CHECK_EQ(soft->port_hi, 65535);
	CHECK_EQ(hard->rounds, BIRTHDAY_ROUNDS);
	CHECK_EQ(soft->rounds, BIRTHDAY_ROUNDS);
	CHECK_EQ(hard->interval_ms, BIRTHDAY_INTERVAL_MS);
	CHECK_EQ(soft->start_ms, hard->start_ms + BIRTHDAY_PROBE_LAG_MS);
	/* The bounds PROTOCOL.md 3.2 promises: probing lasts about 2 s, never faster. */
	CHECK(soft->probes <= BIRTHDAY_PROBES_MAX && soft->rate <= BIRTHDAY_RATE_MAX);
	CHECK(hard->sockets <= BIRTHDAY_SOCKETS_MAX);
}

static void
test_random_easy_apdf(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	rnd(&a, 1, PUB_A);
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	plan(&a, &b, &pa, &pb);
	check_birthday(&pa, &pb, PUB_B, PUB_A);
	/* The NAT fields travel as with any plan (a failure names both NATs). */
	CHECK_EQ(pa.peer_filtering, NAT_FILT_APDF);
	CHECK_EQ(pb.peer_ports, NAT_PORTS_RANDOM);
	plan(&b, &a, &pb, &pa);
	check_birthday(&pa, &pb, PUB_B, PUB_A);

	/* Delays: both still meet at T, the probing side the lag later. */
	a.delay_ms = 30;
	b.delay_ms = 120;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.start_ms + a.delay_ms + BIRTHDAY_PROBE_LAG_MS, pb.start_ms + b.delay_ms);

	/* Random vs random and random vs seq stay none. */
	rnd(&b, 2, PUB_B);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	CHECK_EQ(pa.sockets, 0);
}

/* A side whose gateway mapped a port (CANDIDATES, PROTOCOL.md 3.4) counts as easy with
 * endpoint-independent filtering, and peers aim at the mapping first. */
static void
mapped(struct punch_side *s, uint32_t addr, uint16_t port)
{
	s->mapped[s->n_mapped++] = (struct endpoint){ .addr = addr, .port = port };
}

static void
test_mapped(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	/* random vs portrestricted (APDF): none without the mapping, simultaneous with it */
	rnd(&a, 1, PUB_A);
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	mapped(&b, PUB_B, 41000);
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_EASY);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(pa.n_targets, 2);
	check_ep(&pa.targets[0], PUB_B, 41000);
	check_ep(&pa.targets[1], PUB_B, 40000);
	CHECK_EQ(pb.n_targets, 1);
	check_ep(&pb.targets[0], PUB_A, 31337);
	plan(&b, &a, &pb, &pa);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);

	/* random vs random: the mapped one is reachable */
	rnd(&b, 2, PUB_B);
	mapped(&b, PUB_B, 41000);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	check_ep(&pa.targets[0], PUB_B, 41000);
	check_ep(&pa.targets[1], PUB_B, 31337);
	rnd(&b, 2, PUB_B);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);

	/* seq vs a mapped random side: predict, the seq side aims at the mapping */
	seq(&a, 1, PUB_A, 50000, 1);
	mapped(&b, PUB_B, 41000);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_PREDICT);
	check_ep(&pa.targets[0], PUB_B, 41000);
	check_ep(&pb.targets[0], PUB_A, 50001);

	/* a mapping equal to the observed endpoint is one target, not two */
	rnd(&a, 1, PUB_A);
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	mapped(&b, PUB_B, 40000);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.n_targets, 1);
	check_ep(&pa.targets[0], PUB_B, 40000);

	/* blocked stays blocked; no NAT_INFO yet but a mapping: easy */
	blocked(&b, 2, PUB_B);
	mapped(&b, PUB_B, 41000);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	b.has_info = 0;
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_UNKNOWN);
	mapped(&b, PUB_B, 41000);
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_EASY);
}

/* Row 7: random or blocked vs random, seq or blocked: none; blocked vs easy too (without a
 * TCP endpoint: test_tcp has them). */
static void
test_hopeless(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	rnd(&a, 1, PUB_A);
	rnd(&b, 2, PUB_B);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);

	seq(&b, 2, PUB_B, 50000, 1);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	plan(&b, &a, &pb, &pa);
	check_none(&pb);

	blocked(&b, 2, PUB_B);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);

	blocked(&a, 1, PUB_A);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);

	seq(&a, 1, PUB_A, 50000, 1);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);

	easy(&a, 1, PUB_A, NAT_FILT_EIF);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_BLOCKED);
}

static void
add_v6(struct punch_side *s, uint8_t last)
{
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, last };

	a6[15] = 0x0a;
	ep_set_v6(&s->cand[s->n_cand++], a6, 40000);
}

/* Global IPv6 on both sides (3.2): random vs random is simultaneous to the IPv6 candidates
 * only; easy vs easy gets them after the IPv4 targets; IPv6 on one side alone changes nothing. */
static void
test_ipv6(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	rnd(&a, 1, PUB_A);
	rnd(&b, 2, PUB_B);
	add_v6(&a, 1);
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	add_v6(&b, 2);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(pa.n_targets, 1);
	CHECK_EQ(pb.n_targets, 1);
	CHECK(ep_is_v6(&pa.targets[0]) && ep_same_addr(&pa.targets[0], &b.cand[2]));
	CHECK(ep_is_v6(&pb.targets[0]) && ep_same_addr(&pb.targets[0], &a.cand[2]));
	CHECK(pa.rounds > 0 && pa.interval_ms > 0);

	easy(&a, 1, PUB_A, NAT_FILT_APDF);
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	add_v6(&a, 1);
	add_v6(&b, 2);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	CHECK_EQ(pa.n_targets, 2);
	CHECK(!ep_is_v6(&pa.targets[0]) && pa.targets[0].addr == PUB_B);
	CHECK(ep_is_v6(&pa.targets[1]));
}

/* UDP blocked on a side (3.3): tcp to the peer's control-connection source, plus a sequential
 * peer's predicted ports; none against random ports or without a TCP endpoint. */
static void
test_tcp(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;
	unsigned i;

	blocked(&a, 1, PUB_A);
	a.observed.addr = 0;            /* no UDP_PROBE ever got through */
	a.tcp = (struct endpoint){ .addr = PUB_A, .port = 41000 };
	easy(&b, 2, PUB_B, NAT_FILT_APDF);
	b.tcp = (struct endpoint){ .addr = PUB_B, .port = 42000 };
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_TCP);
	CHECK_EQ(pa.n_targets, 1);
	CHECK_EQ(pb.n_targets, 1);
	check_ep(&pa.targets[0], PUB_B, 42000);
	check_ep(&pb.targets[0], PUB_A, 41000);
	CHECK_EQ(pa.interval_ms, PUNCH_TCP_INTERVAL_MS);
	CHECK_EQ(pa.rounds, PUNCH_TCP_ROUNDS);
	CHECK_EQ(pa.start_ms, PUNCH_LEAD_MS);
	plan(&b, &a, &pb, &pa);         /* either order */
	CHECK_EQ(pb.strategy, PUNCH_TCP);
	check_ep(&pb.targets[0], PUB_A, 41000);

	/* A sequential peer: its TCP source first, then its predicted UDP-counter ports. */
	seq(&b, 2, PUB_B, 50000, 1);
	b.tcp = (struct endpoint){ .addr = PUB_B, .port = 43000 };
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_TCP);
	CHECK_EQ(pa.n_targets, 1 + PUNCH_PREDICT_PORTS + PUNCH_PREDICT_BEHIND);
	check_ep(&pa.targets[0], PUB_B, 43000);
	for (i = 1; i <= PUNCH_PREDICT_PORTS; i++)
		check_ep(&pa.targets[i], PUB_B, (uint16_t)(50000 + i));
	CHECK_EQ(pb.n_targets, 1);

	/* A predicted port equal to the TCP source is not sent twice. */
	b.tcp.port = 50001;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.n_targets, PUNCH_PREDICT_PORTS + PUNCH_PREDICT_BEHIND);

	blocked(&b, 2, PUB_B);
	b.tcp = (struct endpoint){ .addr = PUB_B, .port = 40000 };
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_TCP);
	check_ep(&pa.targets[0], PUB_B, 40000);

	side(&b, 2, PUB_B, 999, NAT_MAP_UNKNOWN, NAT_FILT_UNKNOWN, NAT_PORTS_UNKNOWN, 0);
	b.tcp = (struct endpoint){ .addr = PUB_B, .port = 999 };
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_TCP);

	rnd(&b, 2, PUB_B);
	b.tcp = (struct endpoint){ .addr = PUB_B, .port = 44000 };
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
	check_none(&pb);

	easy(&b, 2, PUB_B, NAT_FILT_EIF);   /* its TCP source unknown */
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
}

/* Unknown NAT info (none at all, udp unknown, mapping unknown): simultaneous to the observed
 * endpoints, as daemons did before PUNCH. */
static void
test_unknown(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	easy(&a, 1, PUB_A, NAT_FILT_APDF);
	rnd(&b, 2, PUB_B);
	b.has_info = 0;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	check_ep(&pa.targets[0], PUB_B, 31337);
	check_ep(&pb.targets[0], PUB_A, 40000);
	CHECK_EQ(pa.peer_ports, 0);     /* nothing known, nothing claimed */
	CHECK_EQ(pb.my_ports, 0);

	rnd(&a, 1, PUB_A);
	side(&b, 2, PUB_B, 999, NAT_MAP_UNKNOWN, NAT_FILT_UNKNOWN, NAT_PORTS_UNKNOWN, 0);
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_UNKNOWN);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.strategy, PUNCH_SIMULTANEOUS);
	check_ep(&pa.targets[0], PUB_B, 999);

	b.info.udp = NAT_UDP_UNKNOWN;
	b.info.mapping = NAT_MAP_EIM;
	CHECK_EQ(punchplan_class(&b), PUNCH_CLASS_UNKNOWN);

	/* No observed endpoint: nothing to aim at. */
	easy(&b, 2, PUB_B, NAT_FILT_EIF);
	b.observed.addr = 0;
	plan(&a, &b, &pa, &pb);
	check_none(&pa);
}

/* start_ms = 100 + max(delay) - own delay, both ways, capped at 5000. */
static void
test_timing(void)
{
	struct punch_side a, b;
	struct msg_punch pa, pb;

	easy(&a, 1, PUB_A, NAT_FILT_EIF);
	easy(&b, 2, PUB_B, NAT_FILT_EIF);
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.start_ms, PUNCH_LEAD_MS);   /* delays unknown: both at +100 ms */
	CHECK_EQ(pb.start_ms, PUNCH_LEAD_MS);

	a.delay_ms = 30;
	b.delay_ms = 120;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.start_ms, 100 + 120 - 30);  /* a hears sooner, waits longer */
	CHECK_EQ(pb.start_ms, 100);
	CHECK_EQ(pa.start_ms + a.delay_ms, pb.start_ms + b.delay_ms);

	a.delay_ms = 400;
	b.delay_ms = 0;
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.start_ms, 100);
	CHECK_EQ(pb.start_ms, 500);

	a.delay_ms = 9000;              /* absurd estimate: bounded by the codec's limit */
	plan(&a, &b, &pa, &pb);
	CHECK_EQ(pa.start_ms, 100);
	CHECK_EQ(pb.start_ms, PUNCH_START_MAX_MS);
}

int
main(void)
{
	RUN(test_lan);
	RUN(test_easy_easy);
	RUN(test_easy_seq_step1);
	RUN(test_easy_seq_step256_wrap);
	RUN(test_seq_seq);
	RUN(test_ipv6);
	RUN(test_random_easy_open);
	RUN(test_random_easy_apdf);
	RUN(test_mapped);
	RUN(test_hopeless);
	RUN(test_tcp);
	RUN(test_unknown);
	RUN(test_timing);
	return unit_finish();
}
