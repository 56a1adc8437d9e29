/*
 * Unit tests for core/msg: golden encodings (tests/golden/msg_<type>.hex, committed), decode of
 * each golden back into the same struct, and a table of malformed inputs that must be rejected.
 *
 * Regenerate the golden files after a deliberate layout change (and bump SHOAL_PROTO_VERSION):
 *   SHOAL_GOLDEN_UPDATE=1 ./tests/unit/test_msg
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mproto/msg.h"
#include "tests/unit/unit.h"

#ifndef SHOAL_TOP_SRCDIR
#define SHOAL_TOP_SRCDIR "."
#endif

enum { BUF_MAX = 1024 };

static uint32_t
ip4(int a, int b, int c, int d)
{
	return ((uint32_t)a << 24) | ((uint32_t)b << 16) | ((uint32_t)c << 8) | (uint32_t)d;
}

/* ---- the fixed examples, one per message type ---- */

static void
ex_hello(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_HELLO;
	m->u.hello.version = SHOAL_PROTO_VERSION;
	strcpy(m->u.hello.nick, "alice");
	m->u.hello.udp_port = 40000;
	m->u.hello.n_local = 2;
	m->u.hello.local[0] = (struct endpoint){ .addr = ip4(192, 168, 1, 10), .port = 40000 };
	m->u.hello.local[1] = (struct endpoint){ .addr = ip4(10, 0, 0, 5), .port = 40000 };
}

static void
ex_welcome(struct msg *m)
{
	int i;

	memset(m, 0, sizeof(*m));
	m->type = MSG_WELCOME;
	m->u.welcome.address = ip4(5, 1, 2, 3);
	m->u.welcome.prefix_len = 8;
	for (i = 0; i < UDP_TOKEN_LEN; i++)
		m->u.welcome.udp_token[i] = (uint8_t)i;
	strcpy(m->u.welcome.nick, "alice");
}

static void
ex_request(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_REQUEST;
	m->u.request.req_id = 7;
	m->u.request.op = OP_JOIN;
	strcpy(m->u.request.network, "lan-party");
	strcpy(m->u.request.password, "hunter2");
}

static void
ex_request_approve(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_REQUEST;
	m->u.request.req_id = 0x01020304;
	m->u.request.op = OP_APPROVE;
	strcpy(m->u.request.network, "lan-party");
	memset(m->u.request.target, 0x22, KEY_LEN);
	m->u.request.flags = 0;
}

static void
ex_result(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RESULT;
	m->u.result.req_id = 7;
	m->u.result.status = RES_ERR_BAD_PASSWORD;
	strcpy(m->u.result.text, "wrong password");
}

static void
ex_network(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_NETWORK;
	strcpy(m->u.network.name, "lan-party");
	m->u.network.flags = NETF_MANUAL_APPROVAL;
	memset(m->u.network.owner, 0x11, KEY_LEN);
	m->u.network.my_flags = MEMF_ONLINE | MEMF_OWNER;
}

static void
ex_member(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_MEMBER;
	strcpy(m->u.member.network, "lan-party");
	memset(m->u.member.key, 0x22, KEY_LEN);
	m->u.member.address = ip4(5, 1, 2, 4);
	strcpy(m->u.member.nick, "bob");
	m->u.member.flags = MEMF_ONLINE;
	m->u.member.n_endpoints = 2;
	m->u.member.endpoints[0] = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 51820 };
	m->u.member.endpoints[1] = (struct endpoint){ .addr = ip4(192, 168, 1, 11), .port = 40001 };
}

static void
ex_member_gone(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_MEMBER_GONE;
	strcpy(m->u.member_gone.network, "lan-party");
	memset(m->u.member_gone.key, 0x22, KEY_LEN);
}

static void
ex_network_gone(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_NETWORK_GONE;
	strcpy(m->u.network_gone.name, "lan-party");
	m->u.network_gone.reason = GONE_EVICTED;
}

static void
ex_ping(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_PING;
	m->u.ping.nonce = 0x0102030405060708ULL;
}

static void
ex_pong(struct msg *m)
{
	ex_ping(m);
	m->type = MSG_PONG;
}

static void
ex_nat_plan(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_NAT_PLAN;
	m->u.nat_plan.test_id = 0x1234;
	m->u.nat_plan.nonce = 0xdeadbeef;
	m->u.nat_plan.phase2_ms = 1000;
	m->u.nat_plan.n_targets = 3;
	m->u.nat_plan.targets[0] = (struct endpoint){ .addr = ip4(198, 51, 100, 1), .port = 7000 };
	m->u.nat_plan.targets[1] = (struct endpoint){ .addr = ip4(198, 51, 100, 1), .port = 7001 };
	m->u.nat_plan.targets[2] = (struct endpoint){ .addr = ip4(198, 51, 100, 1), .port = 7002 };
}

static void
ex_nat_report(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_NAT_REPORT;
	m->u.nat_report.test_id = 0x1234;
	m->u.nat_report.local_port = 40000;
	m->u.nat_report.replies = 0x07;
	m->u.nat_report.tests = 0x01;
	m->u.nat_report.lifetime_seen = 0x03;
	m->u.nat_report.hairpin = NAT_HP_LOST;
}

static void
ex_nat_info(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_NAT_INFO;
	m->u.nat_info.udp = NAT_UDP_OK;
	m->u.nat_info.mapping = NAT_MAP_APDM;
	m->u.nat_info.filtering = NAT_FILT_APDF;
	m->u.nat_info.ports = NAT_PORTS_SEQUENTIAL;
	m->u.nat_info.step = 2;
	m->u.nat_info.hairpin = NAT_HAIRPIN_NO;
	m->u.nat_info.lifetime_s = 24;
	m->u.nat_info.lifetime_max_s = 48;
	m->u.nat_info.public_ep = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 51820 };
	m->u.nat_info.addrs = 2;
}

static void
ex_punch(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_PUNCH;
	memset(m->u.punch.peer, 0x22, KEY_LEN);
	m->u.punch.strategy = PUNCH_PREDICT;
	m->u.punch.my_mapping = NAT_MAP_EIM;
	m->u.punch.my_ports = NAT_PORTS_PRESERVED;
	m->u.punch.peer_mapping = NAT_MAP_APDM;
	m->u.punch.peer_ports = NAT_PORTS_SEQUENTIAL;
	m->u.punch.peer_filtering = NAT_FILT_APDF;
	m->u.punch.start_ms = 250;
	m->u.punch.interval_ms = 200;
	m->u.punch.rounds = 5;
	m->u.punch.n_targets = 2;
	m->u.punch.targets[0] = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 51821 };
	m->u.punch.targets[1] = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 51822 };
}

static void
ex_punch_request(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_PUNCH_REQUEST;
	memset(m->u.punch_request.peer, 0x33, KEY_LEN);
}

/* The easy side of a birthday plan: probes to the random side's address at random ports. */
static void
ex_punch_birthday(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_PUNCH;
	memset(m->u.punch.peer, 0x33, KEY_LEN);
	m->u.punch.strategy = PUNCH_BIRTHDAY;
	m->u.punch.my_mapping = NAT_MAP_EIM;
	m->u.punch.my_ports = NAT_PORTS_PRESERVED;
	m->u.punch.peer_mapping = NAT_MAP_APDM;
	m->u.punch.peer_ports = NAT_PORTS_RANDOM;
	m->u.punch.peer_filtering = NAT_FILT_APDF;
	m->u.punch.start_ms = 300;
	m->u.punch.interval_ms = 1000;
	m->u.punch.rounds = 3;
	m->u.punch.n_targets = 1;
	m->u.punch.targets[0] = (struct endpoint){ .addr = ip4(203, 0, 113, 9), .port = 40000 };
	m->u.punch.probes = 2048;
	m->u.punch.rate = 1000;
	m->u.punch.port_lo = 1024;
	m->u.punch.port_hi = 65535;
}

/* Its random-port side: extra sockets towards the easy side's endpoint. */
static void
ex_punch_birthday_hard(struct msg *m)
{
	ex_punch_birthday(m);
	m->u.punch.my_mapping = NAT_MAP_APDM;
	m->u.punch.my_ports = NAT_PORTS_RANDOM;
	m->u.punch.peer_mapping = NAT_MAP_EIM;
	m->u.punch.peer_ports = NAT_PORTS_PRESERVED;
	m->u.punch.start_ms = 100;
	m->u.punch.sockets = 256;
	m->u.punch.probes = m->u.punch.rate = m->u.punch.port_lo = m->u.punch.port_hi = 0;
}

/* A TCP plan (PROTOCOL.md 3.3): blocked side towards a port-preserving one, its control
 * connection's source as the one target, TCP pacing. */
static void
ex_punch_tcp(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_PUNCH;
	memset(m->u.punch.peer, 0x22, KEY_LEN);
	m->u.punch.strategy = PUNCH_TCP;
	m->u.punch.peer_mapping = NAT_MAP_EIM;
	m->u.punch.peer_ports = NAT_PORTS_PRESERVED;
	m->u.punch.peer_filtering = NAT_FILT_APDF;
	m->u.punch.start_ms = 100;
	m->u.punch.interval_ms = 500;
	m->u.punch.rounds = 10;
	m->u.punch.n_targets = 1;
	m->u.punch.targets[0] = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 41000 };
}

static void
ex_candidates(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CANDIDATES;
	m->u.candidates.n_mapped = 1;
	m->u.candidates.mapped[0] = (struct endpoint){ .addr = ip4(203, 0, 113, 7), .port = 40000 };
}

static void ex_hello_v6(struct msg *m);

/* A LAN address and a global IPv6 one, as a node that just got IPv6 sends them. */
static void
ex_locals(struct msg *m)
{
	struct msg h;

	ex_hello_v6(&h);
	memset(m, 0, sizeof(*m));
	m->type = MSG_LOCALS;
	m->u.locals.n_local = 2;
	m->u.locals.local[0] = h.u.hello.local[0];
	m->u.locals.local[1] = h.u.hello.local[1];
}

/* 2001:db8::1:2 (documentation prefix), as on the wire. */
static const uint8_t ex_v6_addr[16] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x02,
};

static void
ex_hello_v6(struct msg *m)
{
	ex_hello(m);
	ep_set_v6(&m->u.hello.local[1], ex_v6_addr, 40000);
}

static void
ex_member_v6(struct msg *m)
{
	ex_member(m);
	ep_set_v6(&m->u.member.endpoints[1], ex_v6_addr, 40001);
}

static void
ex_punch_v6(struct msg *m)
{
	ex_punch(m);
	m->u.punch.n_targets = 1;
	ep_set_v6(&m->u.punch.targets[0], ex_v6_addr, 51820);
}

/* Chat (PROTOCOL.md 4.6): a network message, a private one as delivered, an ack, a query. */
static void
ex_chat_send(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT_SEND;
	m->u.chat_send.client_id = 7;
	m->u.chat_send.to.kind = CHAT_NETWORK;
	snprintf(m->u.chat_send.to.network, sizeof(m->u.chat_send.to.network), "lan");
	m->u.chat_send.body_len = 2;
	memcpy(m->u.chat_send.body, "hi", 2);
}

static void
ex_chat(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT;
	m->u.chat.seq = 42;
	m->u.chat.ts_ms = 1764000000000ULL;
	m->u.chat.conv.kind = CHAT_PRIVATE;
	memset(m->u.chat.conv.peer, 0x11, KEY_LEN);
	memset(m->u.chat.sender, 0x11, KEY_LEN);
	snprintf(m->u.chat.nick, sizeof(m->u.chat.nick), "alice");
	m->u.chat.client_id = 7;
	m->u.chat.body_len = CHAT_BOX_OVERHEAD + 1;
	memset(m->u.chat.body, 0xab, CHAT_BOX_OVERHEAD + 1);
}

static void
ex_chat_ack(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT_ACK;
	m->u.chat_ack.seq = 42;
}

static void
ex_chat_refused(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT_REFUSED;
	m->u.chat_refused.client_id = 7;
	m->u.chat_refused.reason = CHAT_REFUSED_RATE;
}

static void
ex_chat_history(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_CHAT_HISTORY;
	m->u.chat_history.conv.kind = CHAT_NETWORK;
	snprintf(m->u.chat_history.conv.network, sizeof(m->u.chat_history.conv.network), "lan");
	m->u.chat_history.limit = 50;
}

/* ---- relays (PROTOCOL.md 4.2, 8) ---- */

static void
ex_relay_hello(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_HELLO;
	m->u.relay_hello.version = SHOAL_PROTO_VERSION;
	strcpy(m->u.relay_hello.name, "fra-1");
	m->u.relay_hello.udp = (struct endpoint){ .addr = 0, .port = 7003 };  /* 0: the connection's source */
	m->u.relay_hello.tcp_port = 443;
}

static void
ex_relay_welcome(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_WELCOME;
	m->u.relay_welcome.relay_id = 2;
	memset(m->u.relay_welcome.relay_key, 0x44, sizeof(m->u.relay_welcome.relay_key));
}

static void
ex_relay_stats(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_STATS;
	m->u.relay_stats.pairs = 3;
	m->u.relay_stats.packets = 1000;
	m->u.relay_stats.bytes = 0x0102030405ULL;
	m->u.relay_stats.drops = 7;
}

static void
ex_relays(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAYS;
	m->u.relays.n = 2;
	m->u.relays.relays[0].id = 1;
	strcpy(m->u.relays.relays[0].name, "embedded");
	m->u.relays.relays[0].udp = (struct endpoint){ .addr = ip4(198, 51, 100, 1), .port = 7003 };
	m->u.relays.relays[0].tcp_port = 7003;
	m->u.relays.relays[1].id = 2;
	strcpy(m->u.relays.relays[1].name, "fra-1");
	m->u.relays.relays[1].udp = (struct endpoint){ .addr = ip4(203, 0, 113, 5), .port = 7003 };
	m->u.relays.relays[1].tcp_port = 0;
}

static void
ex_relay_rtt(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_RTT;
	m->u.relay_rtt.n = 2;
	m->u.relay_rtt.rtt[0].id = 1;
	m->u.relay_rtt.rtt[0].rtt_ms = 25;
	m->u.relay_rtt.rtt[1].id = 2;
	m->u.relay_rtt.rtt[1].rtt_ms = RELAY_RTT_UNREACHABLE;
}

static void
ex_relay_grant(struct msg *m)
{
	int i;

	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_GRANT;
	memset(m->u.relay_grant.peer, 0x22, KEY_LEN);
	m->u.relay_grant.relay_id = 2;
	m->u.relay_grant.udp = (struct endpoint){ .addr = ip4(203, 0, 113, 5), .port = 7003 };
	m->u.relay_grant.tcp_port = 443;
	m->u.relay_grant.pair = 0x1122334455667788ULL;
	m->u.relay_grant.side = 1;
	m->u.relay_grant.expiry = 0x6a000000;
	for (i = 0; i < 32; i++)
		m->u.relay_grant.secret[i] = (uint8_t)(0xa0 + i);
	m->u.relay_grant.reason = RELAY_WHY_STARTING;
}

static void
ex_relay_revoke(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = MSG_RELAY_GRANT;
	memset(m->u.relay_grant.peer, 0x22, KEY_LEN);
}

static const struct golden {
	const char *name;               /* tests/golden/msg_<name>.hex */
	void (*fill)(struct msg *);
	size_t len;                     /* expected encoded length, from PROTOCOL.md */
} goldens[] = {
	{ "hello", ex_hello, 1 + 2 + 1 + 5 + 2 + 1 + 2 * 7 },
	{ "hello_v6", ex_hello_v6, 1 + 2 + 1 + 5 + 2 + 1 + 7 + 19 },
	{ "welcome", ex_welcome, 1 + 4 + 1 + 16 + 1 + 5 },
	{ "request", ex_request, 1 + 4 + 1 + 1 + 9 + 1 + 7 + 1 + 0 + 32 + 1 },
	{ "request_approve", ex_request_approve, 1 + 4 + 1 + 1 + 9 + 1 + 1 + 32 + 1 },
	{ "result", ex_result, 1 + 4 + 1 + 1 + 14 },
	{ "network", ex_network, 1 + 1 + 9 + 1 + 32 + 1 },
	{ "member", ex_member, 1 + 1 + 9 + 32 + 4 + 1 + 3 + 1 + 1 + 2 * 7 },
	{ "member_v6", ex_member_v6, 1 + 1 + 9 + 32 + 4 + 1 + 3 + 1 + 1 + 7 + 19 },
	{ "member_gone", ex_member_gone, 1 + 1 + 9 + 32 },
	{ "network_gone", ex_network_gone, 1 + 1 + 9 + 1 },
	{ "ping", ex_ping, 1 + 8 },
	{ "pong", ex_pong, 1 + 8 },
	{ "nat_plan", ex_nat_plan, 1 + 2 + 4 + 2 + 1 + 3 * 6 },
	{ "nat_report", ex_nat_report, 1 + 2 + 2 + 1 + 1 + 1 + 1 },
	{ "nat_info", ex_nat_info, 1 + 1 + 1 + 1 + 1 + 2 + 1 + 2 + 2 + 6 + 1 },
	{ "punch", ex_punch, 1 + 32 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 2 * 7 },
	{ "punch_v6", ex_punch_v6, 1 + 32 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 19 },
	{ "punch_request", ex_punch_request, 1 + 32 },
	{ "punch_birthday", ex_punch_birthday, 1 + 32 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 7 + 10 },
	{ "punch_tcp", ex_punch_tcp, 1 + 32 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 1 * 7 },
	{ "candidates", ex_candidates, 1 + 1 + 7 },
	{ "locals", ex_locals, 1 + 1 + 7 + 19 },
	{ "chat_send", ex_chat_send, 1 + 4 + 1 + 1 + 3 + 2 + 2 },
	{ "chat", ex_chat, 1 + 8 + 8 + 1 + 1 + 32 + 32 + 1 + 5 + 4 + 2 + 41 },
	{ "chat_ack", ex_chat_ack, 1 + 8 },
	{ "chat_history", ex_chat_history, 1 + 1 + 1 + 3 + 2 },
	{ "chat_refused", ex_chat_refused, 1 + 4 + 1 },
	{ "relay_hello", ex_relay_hello, 1 + 2 + 1 + 5 + 7 + 2 },
	{ "relay_welcome", ex_relay_welcome, 1 + 2 + 32 },
	{ "relay_stats", ex_relay_stats, 1 + 4 + 8 + 8 + 8 },
	{ "relays", ex_relays, 1 + 1 + (2 + 1 + 8 + 7 + 2) + (2 + 1 + 5 + 7 + 2) },
	{ "relay_rtt", ex_relay_rtt, 1 + 1 + 2 * 4 },
	{ "relay_grant", ex_relay_grant, 1 + 32 + 2 + 7 + 2 + 8 + 1 + 4 + 32 + 1 },
	{ "relay_revoke", ex_relay_revoke, 1 + 32 + 2 },
};

/* ---- golden file I/O ---- */

static void
golden_path(const char *name, char *out, size_t cap)
{
	const char *src = getenv("SHOAL_SRCDIR");

	snprintf(out, cap, "%s/tests/golden/msg_%s.hex", src ? src : SHOAL_TOP_SRCDIR, name);
}

/* Reads hex digits, ignoring whitespace and '#' comment lines. Returns the byte count or -1. */
static int
golden_read(const char *name, uint8_t *out, size_t cap)
{
	char path[4096];
	FILE *f;
	int c, hi = -1;
	size_t n = 0;

	golden_path(name, path, sizeof(path));
	if (!(f = fopen(path, "r"))) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	while ((c = fgetc(f)) != EOF) {
		int v;

		if (c == '#') {
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (isspace(c))
			continue;
		if (!isxdigit(c) || n >= cap) {
			fclose(f);
			return -1;
		}
		v = isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	fclose(f);
	return hi < 0 ? (int)n : -1;
}

static void
golden_write(const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *f;
	size_t i;

	golden_path(name, path, sizeof(path));
	if (!(f = fopen(path, "w"))) {
		fprintf(stderr, "cannot write %s\n", path);
		return;
	}
	fprintf(f, "# msg_%s: %zu bytes; layout in docs/PROTOCOL.md. Generated by test_msg.\n",
	    name, n);
	for (i = 0; i < n; i++)
		fprintf(f, "%02x%s", b[i], (i % 16 == 15 || i == n - 1) ? "\n" : " ");
	fclose(f);
}

/* ---- field-by-field comparison ---- */

static void
check_endpoints(const struct endpoint *a, const struct endpoint *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		CHECK_EQ(a[i].family, b[i].family);
		CHECK_EQ(a[i].addr, b[i].addr);
		CHECK_EQ(a[i].port, b[i].port);
		CHECK_MEM(a[i].addr6, b[i].addr6, 16);
		CHECK_EQ(b[i].via, 0);
	}
}

static void
check_msg_equal(const struct msg *a, const struct msg *b)
{
	CHECK_EQ(a->type, b->type);
	if (a->type != b->type)
		return;
	switch (a->type) {
	case MSG_HELLO:
		CHECK_EQ(a->u.hello.version, b->u.hello.version);
		CHECK(strcmp(a->u.hello.nick, b->u.hello.nick) == 0);
		CHECK_EQ(a->u.hello.udp_port, b->u.hello.udp_port);
		CHECK_EQ(a->u.hello.n_local, b->u.hello.n_local);
		check_endpoints(a->u.hello.local, b->u.hello.local, a->u.hello.n_local);
		break;
	case MSG_WELCOME:
		CHECK_EQ(a->u.welcome.address, b->u.welcome.address);
		CHECK_EQ(a->u.welcome.prefix_len, b->u.welcome.prefix_len);
		CHECK_MEM(a->u.welcome.udp_token, b->u.welcome.udp_token, UDP_TOKEN_LEN);
		CHECK(strcmp(a->u.welcome.nick, b->u.welcome.nick) == 0);
		break;
	case MSG_REQUEST:
		CHECK_EQ(a->u.request.req_id, b->u.request.req_id);
		CHECK_EQ(a->u.request.op, b->u.request.op);
		CHECK(strcmp(a->u.request.network, b->u.request.network) == 0);
		CHECK(strcmp(a->u.request.password, b->u.request.password) == 0);
		CHECK(strcmp(a->u.request.arg, b->u.request.arg) == 0);
		CHECK_MEM(a->u.request.target, b->u.request.target, KEY_LEN);
		CHECK_EQ(a->u.request.flags, b->u.request.flags);
		break;
	case MSG_RESULT:
		CHECK_EQ(a->u.result.req_id, b->u.result.req_id);
		CHECK_EQ(a->u.result.status, b->u.result.status);
		CHECK(strcmp(a->u.result.text, b->u.result.text) == 0);
		break;
	case MSG_NETWORK:
		CHECK(strcmp(a->u.network.name, b->u.network.name) == 0);
		CHECK_EQ(a->u.network.flags, b->u.network.flags);
		CHECK_MEM(a->u.network.owner, b->u.network.owner, KEY_LEN);
		CHECK_EQ(a->u.network.my_flags, b->u.network.my_flags);
		break;
	case MSG_MEMBER:
		CHECK(strcmp(a->u.member.network, b->u.member.network) == 0);
		CHECK_MEM(a->u.member.key, b->u.member.key, KEY_LEN);
		CHECK_EQ(a->u.member.address, b->u.member.address);
		CHECK(strcmp(a->u.member.nick, b->u.member.nick) == 0);
		CHECK_EQ(a->u.member.flags, b->u.member.flags);
		CHECK_EQ(a->u.member.n_endpoints, b->u.member.n_endpoints);
		check_endpoints(a->u.member.endpoints, b->u.member.endpoints,
		    a->u.member.n_endpoints);
		break;
	case MSG_MEMBER_GONE:
		CHECK(strcmp(a->u.member_gone.network, b->u.member_gone.network) == 0);
		CHECK_MEM(a->u.member_gone.key, b->u.member_gone.key, KEY_LEN);
		break;
	case MSG_NETWORK_GONE:
		CHECK(strcmp(a->u.network_gone.name, b->u.network_gone.name) == 0);
		CHECK_EQ(a->u.network_gone.reason, b->u.network_gone.reason);
		break;
	case MSG_PING:
	case MSG_PONG:
		CHECK(a->u.ping.nonce == b->u.ping.nonce);
		break;
	case MSG_NAT_PLAN:
		CHECK_EQ(a->u.nat_plan.test_id, b->u.nat_plan.test_id);
		CHECK_EQ(a->u.nat_plan.nonce, b->u.nat_plan.nonce);
		CHECK_EQ(a->u.nat_plan.phase2_ms, b->u.nat_plan.phase2_ms);
		CHECK_EQ(a->u.nat_plan.n_targets, b->u.nat_plan.n_targets);
		check_endpoints(a->u.nat_plan.targets, b->u.nat_plan.targets,
		    a->u.nat_plan.n_targets);
		break;
	case MSG_NAT_REPORT:
		CHECK_EQ(a->u.nat_report.test_id, b->u.nat_report.test_id);
		CHECK_EQ(a->u.nat_report.local_port, b->u.nat_report.local_port);
		CHECK_EQ(a->u.nat_report.replies, b->u.nat_report.replies);
		CHECK_EQ(a->u.nat_report.tests, b->u.nat_report.tests);
		CHECK_EQ(a->u.nat_report.lifetime_seen, b->u.nat_report.lifetime_seen);
		CHECK_EQ(a->u.nat_report.hairpin, b->u.nat_report.hairpin);
		break;
	case MSG_NAT_INFO:
		CHECK_EQ(a->u.nat_info.udp, b->u.nat_info.udp);
		CHECK_EQ(a->u.nat_info.mapping, b->u.nat_info.mapping);
		CHECK_EQ(a->u.nat_info.filtering, b->u.nat_info.filtering);
		CHECK_EQ(a->u.nat_info.ports, b->u.nat_info.ports);
		CHECK_EQ(a->u.nat_info.step, b->u.nat_info.step);
		CHECK_EQ(a->u.nat_info.hairpin, b->u.nat_info.hairpin);
		CHECK_EQ(a->u.nat_info.lifetime_s, b->u.nat_info.lifetime_s);
		CHECK_EQ(a->u.nat_info.lifetime_max_s, b->u.nat_info.lifetime_max_s);
		check_endpoints(&a->u.nat_info.public_ep, &b->u.nat_info.public_ep, 1);
		CHECK_EQ(a->u.nat_info.addrs, b->u.nat_info.addrs);
		break;
	case MSG_PUNCH:
		CHECK_MEM(a->u.punch.peer, b->u.punch.peer, KEY_LEN);
		CHECK_EQ(a->u.punch.strategy, b->u.punch.strategy);
		CHECK_EQ(a->u.punch.my_mapping, b->u.punch.my_mapping);
		CHECK_EQ(a->u.punch.my_ports, b->u.punch.my_ports);
		CHECK_EQ(a->u.punch.peer_mapping, b->u.punch.peer_mapping);
		CHECK_EQ(a->u.punch.peer_ports, b->u.punch.peer_ports);
		CHECK_EQ(a->u.punch.peer_filtering, b->u.punch.peer_filtering);
		CHECK_EQ(a->u.punch.start_ms, b->u.punch.start_ms);
		CHECK_EQ(a->u.punch.interval_ms, b->u.punch.interval_ms);
		CHECK_EQ(a->u.punch.rounds, b->u.punch.rounds);
		CHECK_EQ(a->u.punch.n_targets, b->u.punch.n_targets);
		check_endpoints(a->u.punch.targets, b->u.punch.targets, a->u.punch.n_targets);
		CHECK_EQ(a->u.punch.sockets, b->u.punch.sockets);
		CHECK_EQ(a->u.punch.probes, b->u.punch.probes);
		CHECK_EQ(a->u.punch.rate, b->u.punch.rate);
		CHECK_EQ(a->u.punch.port_lo, b->u.punch.port_lo);
		CHECK_EQ(a->u.punch.port_hi, b->u.punch.port_hi);
		break;
	case MSG_PUNCH_REQUEST:
		CHECK_MEM(a->u.punch_request.peer, b->u.punch_request.peer, KEY_LEN);
		break;
	case MSG_CANDIDATES:
		CHECK_EQ(a->u.candidates.n_mapped, b->u.candidates.n_mapped);
		check_endpoints(a->u.candidates.mapped, b->u.candidates.mapped,
		    a->u.candidates.n_mapped);
		break;
	case MSG_LOCALS:
		CHECK_EQ(a->u.locals.n_local, b->u.locals.n_local);
		check_endpoints(a->u.locals.local, b->u.locals.local, a->u.locals.n_local);
		break;
	/* chat structs hold no pointers and both sides start zeroed: compare them whole */
	case MSG_CHAT_SEND:
		CHECK_MEM(&a->u.chat_send, &b->u.chat_send, sizeof(a->u.chat_send));
		break;
	case MSG_CHAT:
		CHECK_MEM(&a->u.chat, &b->u.chat, sizeof(a->u.chat));
		break;
	case MSG_CHAT_ACK:
		CHECK(a->u.chat_ack.seq == b->u.chat_ack.seq);
		break;
	case MSG_CHAT_HISTORY:
		CHECK_MEM(&a->u.chat_history, &b->u.chat_history, sizeof(a->u.chat_history));
		break;
	case MSG_CHAT_REFUSED:
		CHECK_MEM(&a->u.chat_refused, &b->u.chat_refused, sizeof(a->u.chat_refused));
		break;
	case MSG_RELAY_HELLO:
	case MSG_RELAY_WELCOME:
	case MSG_RELAY_STATS:
	case MSG_RELAYS:
	case MSG_RELAY_RTT:
	case MSG_RELAY_GRANT:
		/* Plain values and fixed arrays; decode zeroes the whole struct first. */
		CHECK_MEM(&a->u, &b->u, sizeof(a->u));
		break;
	default:
		CHECK(!"unexpected type");
	}
}

/* ---- tests ---- */

static void
test_golden(void)
{
	uint8_t enc[BUF_MAX], gold[BUF_MAX];
	struct msg m, d;
	size_t i;
	int n, g;
	int update = getenv("SHOAL_GOLDEN_UPDATE") != NULL;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		goldens[i].fill(&m);
		n = msg_encode(&m, enc, sizeof(enc));
		CHECK_EQ(n, goldens[i].len);
		if (n < 0)
			continue;
		if (update)
			golden_write(goldens[i].name, enc, (size_t)n);
		g = golden_read(goldens[i].name, gold, sizeof(gold));
		if (g != n || memcmp(enc, gold, (size_t)n) != 0) {
			fprintf(stderr, "golden mismatch: msg_%s\n", goldens[i].name);
			CHECK(0);
			continue;
		}
		CHECK_EQ(msg_decode(&d, gold, (size_t)g), 0);
		check_msg_equal(&m, &d);
	}
}

static void
test_golden_probe(void)
{
	uint8_t token[UDP_TOKEN_LEN], tok2[UDP_TOKEN_LEN], enc[64], gold[64];
	struct endpoint ep = { .addr = ip4(203, 0, 113, 7), .port = 51820 }, ep2;
	int i, n, g;
	int update = getenv("SHOAL_GOLDEN_UPDATE") != NULL;

	for (i = 0; i < UDP_TOKEN_LEN; i++)
		token[i] = (uint8_t)(0xa0 + i);
	n = probe_encode(token, enc, sizeof(enc));
	CHECK_EQ(n, UDP_PROBE_LEN);
	if (update)
		golden_write("probe", enc, (size_t)n);
	g = golden_read("probe", gold, sizeof(gold));
	CHECK(g == n && memcmp(enc, gold, (size_t)n) == 0);
	CHECK_EQ(probe_decode(gold, (size_t)n, tok2), 0);
	CHECK_MEM(token, tok2, UDP_TOKEN_LEN);

	n = probe_reply_encode(&ep, enc, sizeof(enc));
	CHECK_EQ(n, UDP_PROBE_REPLY_LEN);
	if (update)
		golden_write("probe_reply", enc, (size_t)n);
	g = golden_read("probe_reply", gold, sizeof(gold));
	CHECK(g == n && memcmp(enc, gold, (size_t)n) == 0);
	CHECK_EQ(probe_reply_decode(gold, (size_t)n, &ep2), 0);
	CHECK_EQ(ep2.addr, ep.addr);
	CHECK_EQ(ep2.port, ep.port);

	/* Every truncation, a trailing byte, bad padding, the other type. */
	for (i = 0; i < UDP_PROBE_LEN; i++)
		CHECK_EQ(probe_decode(gold, (size_t)i, tok2), -1);
	probe_encode(token, enc, sizeof(enc));
	CHECK_EQ(probe_reply_decode(enc, UDP_PROBE_REPLY_LEN, &ep2), -1);
	enc[UDP_PROBE_LEN] = 0;
	CHECK_EQ(probe_decode(enc, UDP_PROBE_LEN + 1, tok2), -1);
	enc[2] = 1;
	CHECK_EQ(probe_decode(enc, UDP_PROBE_LEN, tok2), -1);
	probe_reply_encode(&ep, enc, sizeof(enc));
	for (i = 0; i < UDP_PROBE_REPLY_LEN; i++)
		CHECK_EQ(probe_reply_decode(enc, (size_t)i, &ep2), -1);
	enc[3] = 0x80;
	CHECK_EQ(probe_reply_decode(enc, UDP_PROBE_REPLY_LEN, &ep2), -1);
	CHECK_EQ(probe_encode(token, enc, UDP_PROBE_LEN - 1), -1);
	CHECK_EQ(probe_reply_encode(&ep, enc, UDP_PROBE_REPLY_LEN - 1), -1);
}

/* One golden datagram: encode matches the file, and every strict prefix, one extra byte and a
 * non-zero padding byte at each of pad_offs are rejected by decode. */
static void
check_datagram(const char *name, const uint8_t *enc, int n, int expect_len,
    int (*decode)(const uint8_t *, size_t, void *), void *out, const size_t *pad_offs,
    size_t n_pad)
{
	uint8_t gold[64], b[64];
	int g, i;
	size_t k;

	CHECK_EQ(n, expect_len);
	if (n != expect_len)
		return;
	if (getenv("SHOAL_GOLDEN_UPDATE") != NULL)
		golden_write(name, enc, (size_t)n);
	g = golden_read(name, gold, sizeof(gold));
	if (g != n || memcmp(enc, gold, (size_t)n) != 0) {
		fprintf(stderr, "golden mismatch: msg_%s\n", name);
		CHECK(0);
		return;
	}
	CHECK_EQ(decode(gold, (size_t)n, out), 0);
	for (i = 0; i < n; i++)
		CHECK_EQ(decode(gold, (size_t)i, out), -1);
	memcpy(b, gold, (size_t)n);
	b[n] = 0;
	CHECK_EQ(decode(b, (size_t)n + 1, out), -1);
	for (k = 0; k < n_pad; k++) {
		memcpy(b, gold, (size_t)n);
		b[pad_offs[k]] = 1;
		CHECK_EQ(decode(b, (size_t)n, out), -1);
	}
	/* The other NAT datagram types are not this one. */
	memcpy(b, gold, (size_t)n);
	b[0] = UDP_PROBE;
	CHECK_EQ(decode(b, (size_t)n, out), -1);
}

static int
dec_nat_probe(const uint8_t *in, size_t len, void *out)
{
	return nat_probe_decode(in, len, out);
}

static int
dec_nat_test(const uint8_t *in, size_t len, void *out)
{
	return nat_test_decode(in, len, out);
}

static int
dec_hairpin(const uint8_t *in, size_t len, void *out)
{
	return hairpin_decode(in, len, out);
}

static void
test_golden_nat_datagrams(void)
{
	static const size_t probe_pad[] = { 1, 2, 3, 23 }, hdr_pad[] = { 1, 2, 3 };
	struct nat_probe p, p2;
	struct nat_test t, t2;
	uint8_t enc[64];
	uint64_t nonce = 0;
	int i, n;

	memset(&p, 0, sizeof(p));
	for (i = 0; i < UDP_TOKEN_LEN; i++)
		p.token[i] = (uint8_t)(0xa0 + i);
	p.test_id = 0x1234;
	p.target = 2;
	n = nat_probe_encode(&p, enc, sizeof(enc));
	check_datagram("nat_probe", enc, n, UDP_NAT_PROBE_LEN, dec_nat_probe, &p2, probe_pad, 4);
	CHECK_EQ(nat_probe_decode(enc, (size_t)n, &p2), 0);
	CHECK_MEM(p2.token, p.token, UDP_TOKEN_LEN);
	CHECK_EQ(p2.test_id, 0x1234);
	CHECK_EQ(p2.target, 2);
	enc[22] = NAT_MAX_TARGETS;              /* target 6: no plan has it */
	CHECK_EQ(nat_probe_decode(enc, (size_t)n, &p2), -1);
	enc[22] = NAT_MAX_TARGETS - 1;
	CHECK_EQ(nat_probe_decode(enc, (size_t)n, &p2), 0);
	p.target = NAT_MAX_TARGETS;
	CHECK_EQ(nat_probe_encode(&p, enc, sizeof(enc)), -1);
	p.target = 0;
	CHECK_EQ(nat_probe_encode(&p, enc, UDP_NAT_PROBE_LEN - 1), -1);

	t.test_id = 0x1234;
	t.kind = NAT_TEST_LIFETIME;
	t.seq = 4;
	t.nonce = 0xdeadbeef;
	n = nat_test_encode(&t, enc, sizeof(enc));
	check_datagram("nat_test", enc, n, UDP_NAT_TEST_LEN, dec_nat_test, &t2, hdr_pad, 3);
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), 0);
	CHECK(t2.test_id == 0x1234 && t2.kind == 3 && t2.seq == 4 && t2.nonce == 0xdeadbeef);
	/* kind 0 and 4 are not kinds; seq 5 is past the last gap; kinds 1, 2 carry seq 0. */
	enc[6] = 0;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), -1);
	enc[6] = 4;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), -1);
	enc[6] = 3;
	enc[7] = NAT_LIFETIME_STEPS;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), -1);
	enc[6] = 1;
	enc[7] = 1;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), -1);
	enc[7] = 0;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), 0);
	enc[6] = 2;
	CHECK_EQ(nat_test_decode(enc, (size_t)n, &t2), 0);
	t.seq = NAT_LIFETIME_STEPS;
	CHECK_EQ(nat_test_encode(&t, enc, sizeof(enc)), -1);
	t.kind = NAT_TEST_OTHER_PORT;
	t.seq = 1;
	CHECK_EQ(nat_test_encode(&t, enc, sizeof(enc)), -1);
	t.kind = 0;
	t.seq = 0;
	CHECK_EQ(nat_test_encode(&t, enc, sizeof(enc)), -1);
	t.kind = NAT_TEST_OTHER_ADDR;
	CHECK_EQ(nat_test_encode(&t, enc, UDP_NAT_TEST_LEN - 1), -1);

	n = hairpin_encode(0x0102030405060708ULL, enc, sizeof(enc));
	check_datagram("hairpin", enc, n, UDP_HAIRPIN_LEN, dec_hairpin, &nonce, hdr_pad, 3);
	CHECK_EQ(hairpin_decode(enc, (size_t)n, &nonce), 0);
	CHECK(nonce == 0x0102030405060708ULL);
	CHECK_EQ(hairpin_encode(1, enc, UDP_HAIRPIN_LEN - 1), -1);
}

/* Every strict prefix of every golden encoding, and every encoding plus one byte, is rejected. */
static void
test_truncated_and_trailing(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m, d;
	size_t i, k;
	int n;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		goldens[i].fill(&m);
		n = msg_encode(&m, enc, sizeof(enc));
		CHECK(n > 0);
		if (n <= 0)
			continue;
		for (k = 0; k < (size_t)n; k++) {
			if (msg_decode(&d, enc, k) != -1) {
				fprintf(stderr, "msg_%s: prefix %zu accepted\n", goldens[i].name, k);
				CHECK(0);
			}
		}
		enc[n] = 0;
		CHECK_EQ(msg_decode(&d, enc, (size_t)n + 1), -1);
		/* The encoder refuses every buffer that is too small. */
		for (k = 0; k < (size_t)n; k++)
			CHECK_EQ(msg_encode(&m, enc, k), -1);
	}
}

/* One byte patched at an offset of an example's encoding; the decode must fail. */
static const struct bad_patch {
	const char *why;
	void (*fill)(struct msg *);
	size_t off;
	uint8_t val;
} bad_patches[] = {
	{ "unknown type 0", ex_ping, 0, 0 },
	{ "unknown type 99", ex_ping, 0, 99 },
	{ "unknown type 255", ex_ping, 0, 255 },
	/* HELLO: type, u16 version, str8 nick(5) at 3, u16 port at 9, count at 11, endpoints from 12
	 * (7 bytes each for IPv4, 19 for IPv6) */
	{ "hello count 9", ex_hello, 11, MAX_ENDPOINTS + 1 },
	{ "hello count 255", ex_hello, 11, 255 },
	{ "hello count 3 > present", ex_hello, 11, 3 },
	/* endpoint 0 at 12: the family byte must be 4 or 6 */
	{ "hello endpoint family 0", ex_hello, 12, 0 },
	{ "hello endpoint family 5", ex_hello, 12, 5 },
	{ "hello endpoint family 6 with 4 bytes", ex_hello, 12, 6 },
	{ "hello v6 endpoint as family 4", ex_hello_v6, 19, 4 },
	{ "hello nick len past end", ex_hello, 3, 200 },
	{ "hello nick NUL", ex_hello, 5, 0 },
	/* WELCOME: type, u32 addr, u8 prefix at 5 */
	{ "welcome prefix 33", ex_welcome, 5, 33 },
	{ "welcome nick len 6", ex_welcome, 22, 6 },
	/* REQUEST: type, u32 id, u8 op at 5, str8 network at 6 */
	{ "request op 0", ex_request, 5, 0 },
	{ "request network NUL", ex_request, 8, 0 },
	{ "request network len 8", ex_request, 6, 8 },
	/* MEMBER: type, str8 network(9) at 1, key at 11, addr at 43, str8 nick(3) at 47,
	 * flags at 51, count at 52 */
	{ "member count 9", ex_member, 52, MAX_ENDPOINTS + 1 },
	{ "member count 1 < present", ex_member, 52, 1 },
	{ "member nick NUL", ex_member, 49, 0 },
	/* NETWORK_GONE: type, str8 name(9) at 1, reason at 11 */
	{ "network_gone reason 4", ex_network_gone, 11, GONE_REJECTED + 1 },
	/* NAT_PLAN: type, test_id at 1, nonce at 3, phase2_ms at 7, count at 9 */
	{ "nat_plan 0 targets", ex_nat_plan, 9, 0 },
	{ "nat_plan 7 targets", ex_nat_plan, 9, NAT_MAX_TARGETS + 1 },
	{ "nat_plan 255 targets", ex_nat_plan, 9, 255 },
	{ "nat_plan 2 targets < present", ex_nat_plan, 9, 2 },
	{ "nat_plan 4 targets > present", ex_nat_plan, 9, 4 },
	{ "nat_plan phase2_ms 10001", ex_nat_plan, 7, 0x27 },     /* 0x27e8 = 10216 */
	{ "nat_plan phase2_ms 0xff..", ex_nat_plan, 7, 0xff },
	/* NAT_REPORT: type, test_id 1, local_port 3, replies 5, tests 6, lifetime 7, hairpin 8 */
	{ "nat_report reply bit 6", ex_nat_report, 5, 0x40 },
	{ "nat_report test kind 3 bit", ex_nat_report, 6, 0x04 },
	{ "nat_report lifetime bit 5", ex_nat_report, 7, 0x20 },
	{ "nat_report hairpin 3", ex_nat_report, 8, 3 },
	/* NAT_INFO: type, udp 1, mapping 2, filtering 3, ports 4, step 5..6, hairpin 7,
	 * lifetime 8..9, lifetime_max 10..11, public 12..17, addrs 18 */
	{ "nat_info udp 3", ex_nat_info, 1, 3 },
	{ "nat_info mapping 4", ex_nat_info, 2, 4 },
	{ "nat_info filtering 4", ex_nat_info, 3, 4 },
	{ "nat_info ports 5", ex_nat_info, 4, 5 },
	{ "nat_info ports random with step", ex_nat_info, 4, NAT_PORTS_RANDOM },
	{ "nat_info step 0 while sequential", ex_nat_info, 6, 0 },
	{ "nat_info step 1026", ex_nat_info, 5, 0x04 },
	{ "nat_info hairpin 3", ex_nat_info, 7, 3 },
	{ "nat_info addrs 0", ex_nat_info, 18, 0 },
	{ "nat_info addrs 3", ex_nat_info, 18, 3 },
	/* PUNCH: type, peer 1..32, strategy 33, my_nat 34 (mapping | ports << 4), peer_nat 35,
	 * peer_filter 36, start_ms 37..38 (250), interval_ms 39..40 (200), rounds 41, count 42 */
	{ "punch strategy 6", ex_punch, 33, PUNCH_TCP + 1 },
	{ "punch strategy 255", ex_punch, 33, 255 },
	{ "punch none with targets", ex_punch, 33, PUNCH_NONE },
	{ "punch my mapping nibble 4", ex_punch, 34, 0x14 },
	{ "punch my mapping nibble 15", ex_punch, 34, 0x1f },
	{ "punch my ports nibble 5", ex_punch, 34, 0x51 },
	{ "punch my ports nibble 15", ex_punch, 34, 0xf1 },
	{ "punch peer mapping nibble 4", ex_punch, 35, 0x34 },
	{ "punch peer ports nibble 5", ex_punch, 35, 0x53 },
	{ "punch peer filter 4", ex_punch, 36, NAT_FILT_APDF + 1 },
	{ "punch start_ms 5370", ex_punch, 37, 0x14 },            /* 0x14fa */
	{ "punch interval_ms 2248", ex_punch, 39, 0x08 },         /* 0x08c8 */
	{ "punch rounds 11", ex_punch, 41, 11 },
	{ "punch 17 targets", ex_punch, 42, PUNCH_MAX_TARGETS + 1 },
	{ "punch 1 target < present", ex_punch, 42, 1 },
	{ "punch 3 targets > present", ex_punch, 42, 3 },
	{ "predict as birthday: fields missing", ex_punch, 33, PUNCH_BIRTHDAY },
	/* birthday: one target 43..49 (family 4), sockets 50..51, probes 52..53 (2048), rate
	 * 54..55 (1000), port_lo 56..57 (1024), port_hi 58..59 */
	{ "birthday as predict: trailing fields", ex_punch_birthday, 33, PUNCH_PREDICT },
	{ "birthday sockets 257", ex_punch_birthday_hard, 51, 0x01 },
	{ "birthday sockets 0x8100", ex_punch_birthday_hard, 50, 0x81 },
	{ "birthday probes 2304", ex_punch_birthday, 52, 0x09 },
	{ "birthday probes without rate", ex_punch_birthday_hard, 53, 1 },
	{ "birthday rate 1256", ex_punch_birthday, 54, 0x04 },
	{ "birthday port_lo 0", ex_punch_birthday, 56, 0x00 },
	{ "birthday port_lo 768", ex_punch_birthday, 56, 0x03 },
	{ "birthday port_lo > port_hi", ex_punch_birthday, 58, 0x03 },
	{ "birthday rate without probes", ex_punch_birthday_hard, 55, 1 },
	{ "birthday port_hi without probes", ex_punch_birthday_hard, 59, 1 },
	/* CANDIDATES: type, count 1, family 2, addr 3..6, port 7..8 */
	{ "candidates 5 mapped", ex_candidates, 1, CAND_MAX_MAPPED + 1 },
	{ "candidates 9 mapped", ex_candidates, 1, MAX_ENDPOINTS + 1 },
	{ "candidates 2 mapped > present", ex_candidates, 1, 2 },
	{ "candidates 0 mapped < present", ex_candidates, 1, 0 },
	/* LOCALS: type, count 1, family 2, addr 3..6, port 7..8, family 9, addr 10..25 */
	{ "locals 9 endpoints", ex_locals, 1, MAX_ENDPOINTS + 1 },
	{ "locals 3 > present", ex_locals, 1, 3 },
	{ "locals family 5", ex_locals, 2, 5 },
	/* NETWORK: type, str8 name at 1 */
	{ "network name len 0 leaves bytes", ex_network, 1, 0 },
	/* RELAY_HELLO: type, version 1..2, str8 name(5) at 3, family 9, addr 10..13, port 14..15,
	 * tcp 16..17 */
	{ "relay_hello name space", ex_relay_hello, 5, ' ' },
	{ "relay_hello name DEL", ex_relay_hello, 5, 0x7f },
	{ "relay_hello name high", ex_relay_hello, 5, 0xc3 },
	{ "relay_hello name NUL", ex_relay_hello, 5, 0 },
	{ "relay_hello name len 0 leaves bytes", ex_relay_hello, 3, 0 },
	/* RELAY_WELCOME: type, id 1..2 (2) */
	{ "relay_welcome id 0", ex_relay_welcome, 2, 0 },
	/* RELAYS: type, n at 1, id 2..3, str8 name(8) at 4, family 13, addr 14..17, port 18..19,
	 * tcp 20..21, id 22..23, ... */
	{ "relays n 33", ex_relays, 1, RELAY_POOL_MAX + 1 },
	{ "relays n 255", ex_relays, 1, 255 },
	{ "relays n 1 < present", ex_relays, 1, 1 },
	{ "relays n 3 > present", ex_relays, 1, 3 },
	{ "relays id 0", ex_relays, 3, 0 },
	{ "relays ids not ascending", ex_relays, 3, 2 },
	{ "relays ids descending", ex_relays, 23, 0 },
	{ "relays family 6 with a v4 length", ex_relays, 13, 6 },
	{ "relays name space", ex_relays, 6, ' ' },
	/* RELAY_RTT: type, n at 1, id 2..3, rtt 4..5, id 6..7, rtt 8..9 */
	{ "relay_rtt n 33", ex_relay_rtt, 1, RELAY_POOL_MAX + 1 },
	{ "relay_rtt n 3 > present", ex_relay_rtt, 1, 3 },
	{ "relay_rtt n 1 < present", ex_relay_rtt, 1, 1 },
	{ "relay_rtt id 0", ex_relay_rtt, 3, 0 },
	{ "relay_rtt duplicate id", ex_relay_rtt, 7, 1 },
	/* RELAY_GRANT: type, peer 1..32, relay_id 33..34, family 35, addr 36..39, port 40..41,
	 * tcp 42..43, pair 44..51, side 52, expiry 53..56, secret 57..88, reason 89 */
	{ "relay_grant side 2", ex_relay_grant, 52, 2 },
	{ "relay_grant reason 5", ex_relay_grant, 89, RELAY_WHY_DIRECT_LOST + 1 },
	{ "relay_grant as revoke: trailing", ex_relay_grant, 34, 0 },
	{ "relay_revoke as grant: fields missing", ex_relay_revoke, 34, 1 },
};

static void
test_bad_table(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m, d;
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad_patches) / sizeof(bad_patches[0]); i++) {
		const struct bad_patch *b = &bad_patches[i];

		b->fill(&m);
		n = msg_encode(&m, enc, sizeof(enc));
		CHECK(n > 0 && b->off < (size_t)n);
		if (n <= 0 || b->off >= (size_t)n)
			continue;
		enc[b->off] = b->val;
		if (msg_decode(&d, enc, (size_t)n) != -1) {
			fprintf(stderr, "accepted: %s\n", b->why);
			CHECK(0);
		}
	}
}

/* A network name of 65 bytes is valid str8 but longer than NAME_MAX_LEN: rejected. */
static void
test_overlong_strings(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m, d;
	size_t off = 0;

	enc[off++] = MSG_MEMBER_GONE;
	enc[off++] = NAME_MAX_LEN + 1;
	memset(enc + off, 'n', NAME_MAX_LEN + 1);
	off += NAME_MAX_LEN + 1;
	memset(enc + off, 0x22, KEY_LEN);
	off += KEY_LEN;
	CHECK_EQ(msg_decode(&d, enc, off), -1);
	/* Exactly NAME_MAX_LEN is fine. */
	enc[1] = NAME_MAX_LEN;
	memmove(enc + 2 + NAME_MAX_LEN, enc + 3 + NAME_MAX_LEN, KEY_LEN);
	CHECK_EQ(msg_decode(&d, enc, off - 1), 0);
	CHECK_EQ(strlen(d.u.member_gone.network), NAME_MAX_LEN);

	/* RESULT text may use the full 255 bytes. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESULT;
	memset(m.u.result.text, 't', MSG_TEXT_MAX_LEN);
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 1 + 4 + 1 + 1 + MSG_TEXT_MAX_LEN);
	CHECK_EQ(msg_decode(&d, enc, 1 + 4 + 1 + 1 + MSG_TEXT_MAX_LEN), 0);
	CHECK_EQ(strlen(d.u.result.text), MSG_TEXT_MAX_LEN);
}

/* Zero fields a grant must not carry, a pool that is not a set, names that cannot be logged. */
static void
test_relay_rejects(void)
{
	uint8_t enc[CTRL_FRAME_MAX];
	struct msg m, d;
	int n, i;

	ex_relay_grant(&m);
	m.u.relay_grant.pair = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_grant(&m);
	m.u.relay_grant.expiry = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_grant(&m);
	m.u.relay_grant.udp.addr = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_grant(&m);
	m.u.relay_grant.udp.port = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_grant(&m);
	m.u.relay_grant.side = 2;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	/* A revoke carrying any grant field has no encoding of its own. */
	ex_relay_revoke(&m);
	m.u.relay_grant.secret[31] = 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_revoke(&m);
	m.u.relay_grant.reason = RELAY_WHY_NO_DIRECT;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	/* The grant's zero bytes after the id are patched to 0: rejected (zero pair, expiry). */
	ex_relay_grant(&m);
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK(n > 0);
	memset(enc + 44, 0, 8);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);
	n = msg_encode(&m, enc, sizeof(enc));
	memset(enc + 53, 0, 4);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);
	n = msg_encode(&m, enc, sizeof(enc));
	memset(enc + 36, 0, 4);                 /* relay address 0 */
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);
	n = msg_encode(&m, enc, sizeof(enc));
	memset(enc + 40, 0, 2);                 /* relay port 0 */
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);

	/* RELAY_HELLO with UDP port 0 (bytes 14..15); RELAYS with an address 0 (14..17). */
	ex_relay_hello(&m);
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK(n > 0);
	memset(enc + 14, 0, 2);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);
	m.u.relay_hello.udp.port = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relays(&m);
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK(n > 0);
	memset(enc + 14, 0, 4);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), -1);
	m.u.relays.relays[1].udp.addr = 0;      /* the mediator fills in the source address */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_relays(&m);
	m.u.relays.relays[1].id = 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relays(&m);
	m.u.relays.n = RELAY_POOL_MAX + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relays(&m);
	m.u.relays.relays[0].name[0] = '\0';
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	/* A full pool with the longest names fits a control frame. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_RELAYS;
	m.u.relays.n = RELAY_POOL_MAX;
	for (i = 0; i < RELAY_POOL_MAX; i++) {
		m.u.relays.relays[i].id = (uint16_t)(100 + i);
		memset(m.u.relays.relays[i].name, 'r', RELAY_NAME_MAX_LEN);
		m.u.relays.relays[i].udp = (struct endpoint){ .addr = ip4(10, 0, 0, 1), .port = 7003 };
	}
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK_EQ(n, 2 + RELAY_POOL_MAX * (2 + 1 + RELAY_NAME_MAX_LEN + 7 + 2));
	CHECK(n > 0 && n + AEAD_TAG_LEN <= CTRL_FRAME_MAX);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), 0);
	CHECK_EQ(d.u.relays.n, RELAY_POOL_MAX);
	/* A name one byte too long. */
	m.u.relays.relays[0].name[RELAY_NAME_MAX_LEN] = 'r';
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_relay_rtt(&m);
	m.u.relay_rtt.rtt[0].id = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_rtt(&m);
	m.u.relay_rtt.n = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 2);

	ex_relay_welcome(&m);
	m.u.relay_welcome.relay_id = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_relay_hello(&m);
	strcpy(m.u.relay_hello.name, "two words");
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_relay_hello(&m);
	m.u.relay_hello.version = 99;            /* any version travels: the mediator decides */
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK(n > 0);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), 0);
	CHECK_EQ(d.u.relay_hello.version, 99);

	CHECK(strcmp(relay_reason_name(RELAY_WHY_STARTING), "starting") == 0);
	CHECK(strcmp(relay_reason_name(RELAY_WHY_NO_DIRECT), "no-direct") == 0);
	CHECK(strcmp(relay_reason_name(RELAY_WHY_UDP_BLOCKED), "udp-blocked") == 0);
	CHECK(strcmp(relay_reason_name(RELAY_WHY_PUNCH_FAILED), "punch-failed") == 0);
	CHECK(strcmp(relay_reason_name(RELAY_WHY_DIRECT_LOST), "direct-lost") == 0);
	CHECK(strcmp(relay_reason_name(RELAY_WHY_DIRECT_LOST + 1), "unknown") == 0);
	CHECK(strcmp(msg_type_name(MSG_RELAY_GRANT), "RELAY_GRANT") == 0);
}

/* The encoder refuses what the decoder would refuse. */
static void
test_encode_rejects(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m, m2;

	ex_member(&m);
	m.u.member.n_endpoints = MAX_ENDPOINTS + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_member(&m);
	m.u.member.n_endpoints = MAX_ENDPOINTS;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);

	ex_hello(&m);
	m.u.hello.n_local = MAX_ENDPOINTS + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_hello(&m);
	memset(m.u.hello.nick, 'x', sizeof(m.u.hello.nick));  /* no NUL */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_request(&m);
	m.u.request.op = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.request.op = OP_SET_NICK + 1;      /* unknown ops travel: the server rejects them */
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);

	ex_welcome(&m);
	m.u.welcome.prefix_len = 33;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_network_gone(&m);
	m.u.network_gone.reason = 4;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	/* Birthday fields outside a birthday plan, or beyond their bounds. */
	ex_punch(&m);
	m.u.punch.sockets = 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch_birthday_hard(&m);
	m.u.punch.sockets = BIRTHDAY_SOCKETS_MAX + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch_birthday(&m);
	m.u.punch.probes = BIRTHDAY_PROBES_MAX + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch_birthday(&m);
	m.u.punch.rate = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch_birthday(&m);
	m.u.punch.port_lo = BIRTHDAY_PORT_MIN - 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch_birthday_hard(&m);
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 1 + 32 + 10 + 7 + 10);

	ex_nat_plan(&m);
	m.u.nat_plan.n_targets = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.nat_plan.n_targets = NAT_MAX_TARGETS + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.nat_plan.n_targets = NAT_MAX_TARGETS;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 1 + 2 + 4 + 2 + 1 + NAT_MAX_TARGETS * 6);
	m.u.nat_plan.phase2_ms = 10001;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.nat_plan.phase2_ms = 10000;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);

	ex_nat_report(&m);
	m.u.nat_report.replies = 1u << NAT_MAX_TARGETS;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_nat_report(&m);
	m.u.nat_report.hairpin = NAT_HP_LOST + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_nat_info(&m);
	m.u.nat_info.step = 1025;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.nat_info.step = 1024;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	m.u.nat_info.ports = NAT_PORTS_FIXED;     /* a step without sequential ports */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.nat_info.step = 0;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	m.u.nat_info.addrs = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_nat_info(&m);
	m.u.nat_info.mapping = NAT_MAP_APDM + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_punch(&m);
	m.u.punch.strategy = PUNCH_TCP + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.punch.strategy = PUNCH_TCP;         /* TCP targets: same layout */
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	CHECK_EQ(msg_decode(&m2, enc, (size_t)msg_encode(&m, enc, sizeof(enc))), 0);
	CHECK_EQ(m2.u.punch.strategy, PUNCH_TCP);
	ex_punch(&m);
	ex_punch(&m);
	m.u.punch.strategy = PUNCH_NONE;        /* none carries no targets */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.punch.n_targets = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 1 + 32 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1);
	ex_punch(&m);
	m.u.punch.start_ms = 5001;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.punch.start_ms = 5000;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	m.u.punch.interval_ms = 2001;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.punch.interval_ms = 2000;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	m.u.punch.rounds = 11;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.u.punch.rounds = 10;
	CHECK(msg_encode(&m, enc, sizeof(enc)) > 0);
	m.u.punch.my_ports = NAT_PORTS_RANDOM + 1;   /* would not fit its nibble's range */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch(&m);
	m.u.punch.peer_mapping = 16;                 /* would spill into the ports nibble */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch(&m);
	m.u.punch.peer_filtering = NAT_FILT_APDF + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_punch(&m);
	m.u.punch.n_targets = PUNCH_MAX_TARGETS + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);

	ex_candidates(&m);
	m.u.candidates.n_mapped = CAND_MAX_MAPPED + 1;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_candidates(&m);
	m.u.candidates.mapped[0].port = 0;      /* "no mapping" is n = 0, nothing else */
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_candidates(&m);
	m.u.candidates.mapped[0].addr = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	ex_candidates(&m);
	m.u.candidates.n_mapped = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), 2);
	m.u.candidates.n_mapped = CAND_MAX_MAPPED;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);   /* mapped[1..3] are zero */

	memset(&m, 0, sizeof(m));
	m.type = 0;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
	m.type = 200;
	CHECK_EQ(msg_encode(&m, enc, sizeof(enc)), -1);
}

/* 16 targets travel; a 17th, even with its 6 bytes present, is rejected. */
static void
test_punch_max_targets(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m, d;
	int n, i;

	ex_punch(&m);
	m.u.punch.n_targets = PUNCH_MAX_TARGETS;
	for (i = 0; i < PUNCH_MAX_TARGETS; i++)
		m.u.punch.targets[i] = (struct endpoint){ .addr = ip4(198, 51, 100, 9), .port = (uint16_t)(1000 + i) };
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK_EQ(n, 43 + PUNCH_MAX_TARGETS * 7);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n), 0);
	check_msg_equal(&m, &d);
	enc[42] = PUNCH_MAX_TARGETS + 1;
	memset(enc + n, 0x01, 6);
	CHECK_EQ(msg_decode(&d, enc, (size_t)n + 6), -1);
}

/* The largest message fits a control frame with room for the AEAD tag. */
static void
test_max_sizes(void)
{
	uint8_t enc[BUF_MAX];
	struct msg m;
	int n, i;

	memset(&m, 0, sizeof(m));
	m.type = MSG_REQUEST;
	m.u.request.op = OP_CREATE;
	memset(m.u.request.network, 'n', NAME_MAX_LEN);
	memset(m.u.request.password, 'p', PASSWORD_MAX_LEN);
	memset(m.u.request.arg, 'a', NICK_MAX_LEN);
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK_EQ(n, 1 + 4 + 1 + 65 + 129 + 65 + 32 + 1);
	CHECK(n + AEAD_TAG_LEN <= CTRL_FRAME_MAX);

	memset(&m, 0, sizeof(m));
	m.type = MSG_MEMBER;
	memset(m.u.member.network, 'n', NAME_MAX_LEN);
	memset(m.u.member.nick, 'k', NICK_MAX_LEN);
	m.u.member.n_endpoints = MAX_ENDPOINTS;
	for (i = 0; i < MAX_ENDPOINTS; i++)
		m.u.member.endpoints[i] = (struct endpoint){ .addr = (uint32_t)i, .port = (uint16_t)i };
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK_EQ(n, 1 + 65 + 32 + 4 + 65 + 1 + 1 + 8 * 7);
	/* All IPv6: the largest MEMBER, still far below a frame. */
	for (i = 0; i < MAX_ENDPOINTS; i++)
		ep_set_v6(&m.u.member.endpoints[i], ex_v6_addr, (uint16_t)(i + 1));
	n = msg_encode(&m, enc, sizeof(enc));
	CHECK_EQ(n, 1 + 65 + 32 + 4 + 65 + 1 + 1 + 8 * 19);
	CHECK(n + AEAD_TAG_LEN <= CTRL_FRAME_MAX);
}

/* The shared endpoint helpers: equality, formatting, sockaddr round trips. */
static void
test_endpoint_helpers(void)
{
	struct endpoint a = { .addr = ip4(203, 0, 113, 7), .port = 51820 }, b, c;
	struct sockaddr_storage ss;
	char s[EP_STR_LEN];
	socklen_t sl;

	CHECK(strcmp(ep_str(&a, s), "203.0.113.7:51820") == 0);
	ep_set_v6(&b, ex_v6_addr, 443);
	CHECK(strcmp(ep_str(&b, s), "[2001:db8::1:2]:443") == 0);
	CHECK(!ep_equal(&a, &b));
	CHECK(ep_is_set(&b) && ep_is_v6(&b) && !ep_is_v6(&a));
	sl = ep_to_sockaddr(&b, &ss);
	CHECK_EQ(ep_from_sockaddr(&c, (struct sockaddr *)&ss, sl), 0);
	CHECK(ep_equal(&b, &c) && ep_hash(&b) == ep_hash(&c));
	sl = ep_to_sockaddr(&a, &ss);
	CHECK_EQ(ep_from_sockaddr(&c, (struct sockaddr *)&ss, sl), 0);
	CHECK(ep_equal(&a, &c));
	c.via = 3;
	CHECK(!ep_equal(&a, &c) && ep_same_addr(&a, &c));
	/* A zeroed struct is IPv4 and unset. */
	memset(&c, 0, sizeof(c));
	CHECK(!ep_is_set(&c) && !ep_is_v6(&c));
	/* The v6 source key is the /64. */
	b.addr6[15] ^= 1;
	ep_set_v6(&c, ex_v6_addr, 1);
	CHECK_EQ(ep_source_key(&b), ep_source_key(&c));
}

static void
test_names(void)
{
	CHECK(strcmp(msg_type_name(MSG_MEMBER_GONE), "MEMBER_GONE") == 0);
	CHECK(strcmp(msg_type_name(0), "UNKNOWN") == 0);
	CHECK(strcmp(req_op_name(OP_SET_NICK), "SET_NICK") == 0);
	CHECK(strcmp(req_op_name(99), "UNKNOWN") == 0);
	CHECK(strcmp(result_status_text(RES_OK), "ok") == 0);
	CHECK(strcmp(result_status_text(200), "unknown error") == 0);
	CHECK(strcmp(msg_type_name(MSG_NAT_PLAN), "NAT_PLAN") == 0);
	CHECK(strcmp(msg_type_name(MSG_NAT_REPORT), "NAT_REPORT") == 0);
	CHECK(strcmp(msg_type_name(MSG_NAT_INFO), "NAT_INFO") == 0);
	CHECK(strcmp(nat_udp_name(NAT_UDP_BLOCKED), "blocked") == 0);
	CHECK(strcmp(nat_udp_name(3), "unknown") == 0);
	CHECK(strcmp(nat_mapping_name(NAT_MAP_EIM), "eim") == 0);
	CHECK(strcmp(nat_mapping_name(NAT_MAP_ADM), "adm") == 0);
	CHECK(strcmp(nat_mapping_name(NAT_MAP_APDM), "apdm") == 0);
	CHECK(strcmp(nat_mapping_name(0), "unknown") == 0);
	CHECK(strcmp(nat_filtering_name(NAT_FILT_EIF), "eif") == 0);
	CHECK(strcmp(nat_filtering_name(NAT_FILT_APDF), "apdf") == 0);
	CHECK(strcmp(nat_filtering_name(200), "unknown") == 0);
	CHECK(strcmp(nat_ports_name(NAT_PORTS_PRESERVED), "preserved") == 0);
	CHECK(strcmp(nat_ports_name(NAT_PORTS_SEQUENTIAL), "sequential") == 0);
	CHECK(strcmp(nat_ports_name(NAT_PORTS_RANDOM), "random") == 0);
	CHECK(strcmp(nat_ports_name(5), "unknown") == 0);
	CHECK(strcmp(nat_hairpin_name(NAT_HAIRPIN_YES), "yes") == 0);
	CHECK(strcmp(nat_hairpin_name(NAT_HAIRPIN_NO), "no") == 0);
	CHECK(strcmp(nat_hairpin_name(0), "unknown") == 0);
	CHECK(strcmp(msg_type_name(MSG_PUNCH), "PUNCH") == 0);
	CHECK(strcmp(msg_type_name(MSG_CANDIDATES), "CANDIDATES") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_NONE), "none") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_LAN), "lan") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_SIMULTANEOUS), "simultaneous") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_PREDICT), "predict") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_BIRTHDAY), "birthday") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_TCP), "tcp") == 0);
	CHECK(strcmp(punch_strategy_name(PUNCH_TCP + 1), "unknown") == 0);
}

int
main(void)
{
	RUN(test_golden);
	RUN(test_golden_probe);
	RUN(test_golden_nat_datagrams);
	RUN(test_truncated_and_trailing);
	RUN(test_bad_table);
	RUN(test_overlong_strings);
	RUN(test_encode_rejects);
	RUN(test_relay_rejects);
	RUN(test_punch_max_targets);
	RUN(test_max_sizes);
	RUN(test_names);
	RUN(test_endpoint_helpers);
	return unit_finish();
}
