/*
 * Unit tests for relay/engine and mproto/relaymsg: codecs round-trip and refuse bad padding;
 * a pair forwards byte for byte between the two endpoints that bound it and nothing else;
 * forged, replayed and expired BINDs are refused; the per-node rate limit drops the excess,
 * also when one node spreads its traffic over several pairs;
 * PING is answered with a PONG of the same size.
 */
#include "config.h"

#include <sodium.h>
#include <string.h>

#include "relay/engine.h"
#include "tests/unit/unit.h"

struct sent {
	struct endpoint to;
	uint8_t pkt[1500];
	size_t len;
};

static struct sent out[16];
static int n_out;

static void
capture(void *arg, const struct endpoint *to, const uint8_t *pkt, size_t len)
{
	(void)arg;
	if (n_out < 16 && len <= sizeof(out[0].pkt)) {
		out[n_out].to = *to;
		memcpy(out[n_out].pkt, pkt, len);
		out[n_out].len = len;
	}
	n_out++;
}

static const struct relay_engine_ops ops = { .send = capture };
static uint8_t key[RELAY_KEY_LEN];

enum { NOW = 1800000000u, EXP = NOW + 600 };

static size_t
bind_pkt(uint64_t pair, uint8_t side, uint32_t expiry, uint64_t counter, const uint8_t *k,
    uint8_t *buf)
{
	uint8_t secret[RELAY_SECRET_LEN];
	struct relay_bind b = { pair, side, expiry, counter };
	int n;

	relaymsg_side_secret(k, pair, side, expiry, secret);
	n = relay_bind_encode(&b, secret, buf, RELAY_BIND_LEN);
	CHECK_EQ(n, RELAY_BIND_LEN);
	return (size_t)n;
}

static void
test_codecs(void)
{
	uint8_t buf[64], secret[RELAY_SECRET_LEN];
	struct relay_bind b = { 0x0102030405060708ull, 1, EXP, 77 }, b2;
	struct relay_bind_ack a = { 9, 0, 1, 5 }, a2;
	uint64_t v;

	relaymsg_side_secret(key, b.pair, b.side, b.expiry, secret);
	CHECK_EQ(relay_bind_encode(&b, secret, buf, sizeof(buf)), RELAY_BIND_LEN);
	CHECK_EQ(relay_bind_decode(buf, RELAY_BIND_LEN, &b2), 0);
	CHECK(b2.pair == b.pair && b2.side == 1 && b2.expiry == EXP && b2.counter == 77);
	CHECK_EQ(relay_bind_verify(buf, RELAY_BIND_LEN, secret), 0);
	buf[20] ^= 1;           /* expiry changed: MAC fails */
	CHECK_EQ(relay_bind_verify(buf, RELAY_BIND_LEN, secret), -1);
	buf[20] ^= 1;
	buf[13] = 1;            /* padding */
	CHECK_EQ(relay_bind_decode(buf, RELAY_BIND_LEN, &b2), -1);
	CHECK_EQ(relay_bind_decode(buf, RELAY_BIND_LEN - 1, &b2), -1);
	b.side = 2;
	CHECK_EQ(relay_bind_encode(&b, secret, buf, sizeof(buf)), -1);

	CHECK_EQ(relay_bind_ack_encode(&a, secret, buf, sizeof(buf)), RELAY_BIND_ACK_LEN);
	CHECK_EQ(relay_bind_ack_decode(buf, RELAY_BIND_ACK_LEN, &a2), 0);
	CHECK(a2.pair == 9 && a2.side == 0 && a2.peer_bound == 1 && a2.counter == 5);
	CHECK_EQ(relay_bind_ack_verify(buf, RELAY_BIND_ACK_LEN, secret), 0);

	CHECK_EQ(relay_data_header(42, buf, sizeof(buf)), RELAY_DATA_HDR);
	buf[RELAY_DATA_HDR] = 0xee;
	CHECK_EQ(relay_data_decode(buf, RELAY_DATA_HDR + 1, &v), 0);
	CHECK(v == 42);
	CHECK_EQ(relay_data_decode(buf, RELAY_DATA_HDR, &v), -1);       /* empty payload */
	CHECK_EQ(relay_ping_encode(UDP_RELAY_PING, 5, buf, sizeof(buf)), RELAY_PING_LEN);
	CHECK_EQ(relay_ping_decode(buf, RELAY_PING_LEN, UDP_RELAY_PONG, &v), -1);
	CHECK_EQ(relay_ping_decode(buf, RELAY_PING_LEN, UDP_RELAY_PING, &v), 0);
	CHECK(v == 5);
}

static void
test_forwarding(void)
{
	struct endpoint A = { .addr = 0xc6120101u, .port = 4000 }, B = { .addr = 0xc6120202u, .port = 5000 };
	struct endpoint M = { .addr = 0xc6120303u, .port = 6000 }, A2 = { .addr = 0xc6120101u, .port = 4001 };
	uint8_t bindbuf[RELAY_BIND_LEN], data[100], other[RELAY_KEY_LEN];
	struct relay_limits lim = { 0, 0 };
	struct relay_engine *e = relay_engine_new(key, &lim, &ops, NULL);
	struct relay_stats st;
	struct relay_bind_ack ack;
	uint8_t secret[RELAY_SECRET_LEN];
	size_t n;

	/* Data before anyone bound: nowhere to go. */
	relay_data_header(7, data, sizeof(data));
	memset(data + RELAY_DATA_HDR, 0xab, sizeof(data) - RELAY_DATA_HDR);
	n_out = 0;
	relay_engine_input(e, &A, data, sizeof(data), 1.0, NOW);
	CHECK_EQ(n_out, 0);

	/* A binds: acked (peer not yet bound), the ACK's MAC is A's side secret. */
	n = bind_pkt(7, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &A, bindbuf, n, 1.0, NOW);
	CHECK_EQ(n_out, 1);
	CHECK(out[0].to.addr == A.addr && out[0].to.port == A.port);
	CHECK_EQ(relay_bind_ack_decode(out[0].pkt, out[0].len, &ack), 0);
	CHECK(ack.pair == 7 && ack.side == 0 && ack.peer_bound == 0 && ack.counter == 1);
	relaymsg_side_secret(key, 7, 0, EXP, secret);
	CHECK_EQ(relay_bind_ack_verify(out[0].pkt, out[0].len, secret), 0);
	/* Still nobody on the other side. */
	n_out = 0;
	relay_engine_input(e, &A, data, sizeof(data), 1.0, NOW);
	CHECK_EQ(n_out, 0);
	/* B binds; now A's data reaches B byte for byte, and back. */
	n = bind_pkt(7, 1, EXP, 1, key, bindbuf);
	n_out = 0;
	relay_engine_input(e, &B, bindbuf, n, 1.0, NOW);
	CHECK(n_out == 1 && relay_bind_ack_decode(out[0].pkt, out[0].len, &ack) == 0 &&
	    ack.peer_bound == 1);
	n_out = 0;
	relay_engine_input(e, &A, data, sizeof(data), 1.0, NOW);
	CHECK_EQ(n_out, 1);
	CHECK(out[0].to.addr == B.addr && out[0].to.port == B.port);
	CHECK(out[0].len == sizeof(data) && memcmp(out[0].pkt, data, sizeof(data)) == 0);
	n_out = 0;
	relay_engine_input(e, &B, data, sizeof(data), 1.0, NOW);
	CHECK(n_out == 1 && out[0].to.addr == A.addr);

	/* A third party naming the pair is not forwarded. */
	n_out = 0;
	relay_engine_input(e, &M, data, sizeof(data), 1.0, NOW);
	CHECK_EQ(n_out, 0);
	/* Forged: the right fields under another relay key. Replayed: the same counter. */
	randombytes_buf(other, sizeof(other));
	n = bind_pkt(7, 0, EXP, 5, other, bindbuf);
	relay_engine_input(e, &M, bindbuf, n, 1.0, NOW);
	n = bind_pkt(7, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &M, bindbuf, n, 1.0, NOW);
	CHECK_EQ(n_out, 0);
	relay_engine_get_stats(e, &st);
	CHECK_EQ(st.drop_auth, 1);
	CHECK_EQ(st.drop_replay, 1);
	/* A roams (new port) with a newer BIND: followed. */
	n = bind_pkt(7, 0, EXP, 2, key, bindbuf);
	relay_engine_input(e, &A2, bindbuf, n, 1.0, NOW);
	n_out = 0;
	relay_engine_input(e, &B, data, sizeof(data), 1.0, NOW);
	CHECK(n_out == 1 && out[0].to.port == A2.port);
	/* Expired grants: a BIND past its expiry is refused, a pair past it is dropped. */
	n = bind_pkt(8, 0, NOW - 1, 1, key, bindbuf);
	n_out = 0;
	relay_engine_input(e, &A, bindbuf, n, 1.0, NOW);
	CHECK_EQ(n_out, 0);
	relay_engine_input(e, &B, data, sizeof(data), 2.0, EXP + 1);
	CHECK_EQ(n_out, 0);
	relay_engine_get_stats(e, &st);
	CHECK_EQ(st.pairs, 0);
	CHECK_EQ(st.packets, 3);
	relay_engine_free(e);
}

static void
test_rate_and_ping(void)
{
	struct endpoint A = { .addr = 0xc6120101u, .port = 4000 }, B = { .addr = 0xc6120202u, .port = 5000 };
	struct relay_limits lim = { 1000, 2000 };
	struct relay_engine *e = relay_engine_new(key, &lim, &ops, NULL);
	uint8_t bindbuf[RELAY_BIND_LEN], data[500], ping[RELAY_PING_LEN];
	struct relay_stats st;
	uint64_t nonce;
	size_t n;
	int i;

	n = bind_pkt(9, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &A, bindbuf, n, 10.0, NOW);
	n = bind_pkt(9, 1, EXP, 1, key, bindbuf);
	relay_engine_input(e, &B, bindbuf, n, 10.0, NOW);
	relay_data_header(9, data, sizeof(data));
	n_out = 0;
	for (i = 0; i < 10; i++)        /* 5000 bytes at once: the 2000-byte burst passes */
		relay_engine_input(e, &A, data, sizeof(data), 10.0, NOW);
	CHECK_EQ(n_out, 4);
	n_out = 0;
	relay_engine_input(e, &A, data, sizeof(data), 10.5, NOW);   /* 500 bytes refilled */
	CHECK_EQ(n_out, 1);
	relay_engine_get_stats(e, &st);
	CHECK_EQ(st.drop_rate, 6);

	relay_ping_encode(UDP_RELAY_PING, 1234, ping, sizeof(ping));
	n_out = 0;
	relay_engine_input(e, &A, ping, sizeof(ping), 11.0, NOW);
	CHECK(n_out == 1 && out[0].len == RELAY_PING_LEN &&
	    relay_ping_decode(out[0].pkt, out[0].len, UDP_RELAY_PONG, &nonce) == 0 &&
	    nonce == 1234);
	relay_engine_free(e);
}

/* A node relaying to two peers binds both pairs from its one socket: they share its bucket, so
 * two pairs give it no more than one. The bucket goes when its last pair does. */
static void
test_rate_per_node(void)
{
	struct endpoint A = { .addr = 0xc6120101u, .port = 4000 }, B = { .addr = 0xc6120202u, .port = 5000 };
	struct endpoint C = { .addr = 0xc6120303u, .port = 6000 };
	struct relay_limits lim = { 1000, 2000 };
	struct relay_engine *e = relay_engine_new(key, &lim, &ops, NULL);
	uint8_t bindbuf[RELAY_BIND_LEN], d1[500], d2[500];
	struct relay_stats st;
	size_t n;
	int i;

	n = bind_pkt(1, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &A, bindbuf, n, 10.0, NOW);
	n = bind_pkt(1, 1, EXP, 1, key, bindbuf);
	relay_engine_input(e, &B, bindbuf, n, 10.0, NOW);
	n = bind_pkt(2, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &A, bindbuf, n, 10.0, NOW);
	n = bind_pkt(2, 1, EXP, 1, key, bindbuf);
	relay_engine_input(e, &C, bindbuf, n, 10.0, NOW);
	relay_engine_get_stats(e, &st);
	CHECK_EQ(st.pairs, 2);
	CHECK_EQ(st.sources, 3);
	relay_data_header(1, d1, sizeof(d1));
	relay_data_header(2, d2, sizeof(d2));
	n_out = 0;
	for (i = 0; i < 5; i++) {       /* 5000 bytes over two pairs: still one 2000-byte burst */
		relay_engine_input(e, &A, d1, sizeof(d1), 10.0, NOW);
		relay_engine_input(e, &A, d2, sizeof(d2), 10.0, NOW);
	}
	CHECK_EQ(n_out, 4);
	/* B and C have buckets of their own. */
	n_out = 0;
	relay_engine_input(e, &B, d1, sizeof(d1), 10.0, NOW);
	relay_engine_input(e, &C, d2, sizeof(d2), 10.0, NOW);
	CHECK_EQ(n_out, 2);
	/* Grants end: the pairs go, and with them every source. */
	relay_engine_expire(e, EXP + 1);
	relay_engine_get_stats(e, &st);
	CHECK_EQ(st.pairs, 0);
	CHECK_EQ(st.sources, 0);
	relay_engine_free(e);
}

/* A TCP stream (via 1) and a UDP source with the same address and port are two sources: the
 * stream binds side 1, DATA from the UDP twin is not the stream's and goes nowhere, and what
 * is forwarded to side 1 goes out on the stream (its via). */
static void
test_tcp_sources(void)
{
	struct endpoint U = { .addr = 0xc6120101u, .port = 4000 };
	struct endpoint T = { .addr = 0xc6120202u, .port = 5000, .via = 1 };
	struct endpoint Ttwin = { .addr = 0xc6120202u, .port = 5000 };
	uint8_t bindbuf[RELAY_BIND_LEN], data[40];
	struct relay_limits lim = { 0, 0 };
	struct relay_engine *e = relay_engine_new(key, &lim, &ops, NULL);
	struct relay_stats st;
	struct msg_relay_stats ms;
	size_t n;

	n = bind_pkt(9, 0, EXP, 1, key, bindbuf);
	relay_engine_input(e, &U, bindbuf, n, 1.0, NOW);
	n = bind_pkt(9, 1, EXP, 1, key, bindbuf);
	n_out = 0;
	relay_engine_input(e, &T, bindbuf, n, 1.0, NOW);
	CHECK(n_out == 1 && out[0].to.via == 1);        /* the ACK goes back on the stream */
	relay_data_header(9, data, sizeof(data));
	memset(data + RELAY_DATA_HDR, 0x5a, sizeof(data) - RELAY_DATA_HDR);
	n_out = 0;
	relay_engine_input(e, &U, data, sizeof(data), 1.0, NOW);
	CHECK(n_out == 1 && out[0].to.addr == T.addr && out[0].to.port == T.port &&
	    out[0].to.via == 1);
	n_out = 0;
	relay_engine_input(e, &Ttwin, data, sizeof(data), 1.0, NOW);
	CHECK_EQ(n_out, 0);
	n_out = 0;
	relay_engine_input(e, &T, data, sizeof(data), 1.0, NOW);
	CHECK(n_out == 1 && out[0].to.addr == U.addr && out[0].to.via == 0);
	relay_engine_get_stats(e, &st);
	relay_stats_to_msg(&st, &ms);
	CHECK(ms.pairs == 1 && ms.packets == 2 && ms.drops == st.drop_unbound && ms.drops == 1);
	relay_engine_free(e);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	RUN(test_codecs);
	RUN(test_forwarding);
	RUN(test_rate_and_ping);
	RUN(test_rate_per_node);
	RUN(test_tcp_sources);
	return unit_finish();
}
