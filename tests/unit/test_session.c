/*
 * Unit tests for core/session: UDP_DATA seal/open round trips between two sessions built from
 * a real handshake, the exact header layout, tampering with every byte region, replays, wrong
 * receiver index, keepalives, counter limits and the expiry/rekey rules.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "crypto/session.h"
#include "tests/unit/unit.h"

#define IDX_A 0x11223344u      /* A's local index: B puts it in packets to A */
#define IDX_B 0xa1b2c3d4u

/* A (initiator) and B (responder) after a full handshake and split. */
static void
make_pair(struct session *a, struct session *b, double now)
{
	struct noise_keypair ka, kb;
	struct noise_hs ha, hb;
	struct noise_cs as, ar, bs, br;
	uint8_t m[256];
	int n;

	noise_keypair_generate(&ka);
	noise_keypair_generate(&kb);
	noise_hs_init(&ha, 1, &ka, kb.pub, NULL, 0);
	noise_hs_init(&hb, 0, &kb, NULL, NULL, 0);
	n = noise_hs_write(&ha, NULL, 0, m, sizeof(m));
	CHECK_EQ(noise_hs_read(&hb, m, (size_t)n, NULL, 0), 0);
	n = noise_hs_write(&hb, NULL, 0, m, sizeof(m));
	CHECK_EQ(noise_hs_read(&ha, m, (size_t)n, NULL, 0), 0);
	CHECK_EQ(noise_hs_split(&ha, &as, &ar), 0);
	CHECK_EQ(noise_hs_split(&hb, &bs, &br), 0);
	session_init(a, as.k, ar.k, IDX_A, IDX_B, 1, now);
	session_init(b, bs.k, br.k, IDX_B, IDX_A, 0, now);
}

static void
test_roundtrip(void)
{
	struct session a, b;
	uint8_t pkt[2048], out[2048], body[1400];
	uint32_t idx;
	int n, i;

	make_pair(&a, &b, 100.0);
	for (i = 0; i < (int)sizeof(body); i++)
		body[i] = (uint8_t)i;

	n = session_seal(&a, INNER_IP, body, sizeof(body), pkt, sizeof(pkt));
	CHECK_EQ(n, UDP_DATA_OVERHEAD + (int)sizeof(body));
	/* Header layout, byte by byte. */
	CHECK_EQ(pkt[0], UDP_DATA);
	CHECK_EQ(pkt[1] | pkt[2] | pkt[3], 0);
	CHECK_EQ(pkt[4], 0xa1);
	CHECK_EQ(pkt[7], 0xd4);
	CHECK(sodium_is_zero(pkt + 8, 8));          /* first counter is 0 */
	CHECK_EQ(session_peek_index(pkt, (size_t)n, &idx), 0);
	CHECK(idx == IDX_B);

	n = session_open(&b, pkt, (size_t)n, out, sizeof(out));
	CHECK_EQ(n, 1 + (int)sizeof(body));
	CHECK_EQ(out[0], INNER_IP);
	CHECK_MEM(out + 1, body, sizeof(body));

	/* Second packet: counter 1, big-endian in bytes 8..15. */
	n = session_seal(&a, INNER_PING, body, 16, pkt, sizeof(pkt));
	CHECK_EQ(pkt[15], 1);
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), 17);

	/* The other direction. */
	n = session_seal(&b, INNER_PONG, body, 16, pkt, sizeof(pkt));
	CHECK_EQ(pkt[4], 0x11);
	CHECK_EQ(session_open(&a, pkt, (size_t)n, out, sizeof(out)), 17);
	CHECK_EQ(out[0], INNER_PONG);

	/* A packet sealed by A cannot be opened by A (wrong key direction and index). */
	n = session_seal(&a, INNER_IP, body, 8, pkt, sizeof(pkt));
	CHECK_EQ(session_open(&a, pkt, (size_t)n, out, sizeof(out)), -1);
	session_wipe(&a);
	session_wipe(&b);
}

static void
test_keepalive(void)
{
	struct session a, b;
	uint8_t pkt[64];
	int n;

	make_pair(&a, &b, 0.0);
	n = session_seal(&a, 0, NULL, 0, pkt, sizeof(pkt));
	CHECK_EQ(n, UDP_DATA_HEADER_LEN + AEAD_TAG_LEN);
	CHECK_EQ(session_open(&b, pkt, (size_t)n, NULL, 0), 0);
	/* Keepalives are replay-protected like everything else. */
	CHECK_EQ(session_open(&b, pkt, (size_t)n, NULL, 0), -1);
	/* A keepalive carries no body. */
	CHECK_EQ(session_seal(&a, 0, pkt, 1, pkt, sizeof(pkt)), -1);
}

/* Flip each byte of a valid packet in turn: every region must be rejected. */
static void
test_tamper(void)
{
	struct session a, b;
	uint8_t pkt[256], bad[256], out[256];
	int n, i;

	make_pair(&a, &b, 0.0);
	n = session_seal(&a, INNER_IP, (const uint8_t *)"0123456789", 10, pkt, sizeof(pkt));
	CHECK_EQ(n, UDP_DATA_OVERHEAD + 10);
	for (i = 0; i < n; i++) {
		memcpy(bad, pkt, (size_t)n);
		bad[i] ^= 0x04;
		if (session_open(&b, bad, (size_t)n, out, sizeof(out)) != -1) {
			fprintf(stderr, "tampered byte %d accepted\n", i);
			CHECK(0);
		}
	}
	/* Truncated (tag cut), extended, and too short for a header. */
	CHECK_EQ(session_open(&b, pkt, (size_t)n - 1, out, sizeof(out)), -1);
	memcpy(bad, pkt, (size_t)n);
	bad[n] = 0;
	CHECK_EQ(session_open(&b, bad, (size_t)n + 1, out, sizeof(out)), -1);
	CHECK_EQ(session_open(&b, pkt, UDP_DATA_HEADER_LEN + AEAD_TAG_LEN - 1, out, sizeof(out)),
	    -1);
	/* Output buffer too small: refused, and the packet is not burned. */
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, 10), -1);
	/* None of the forgeries moved the window: the original still opens, once. */
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), 11);
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), -1);
}

/* A forged packet with a far-future counter must not slide the window past real traffic. */
static void
test_forgery_does_not_move_window(void)
{
	struct session a, b;
	uint8_t p0[64], p1[64], forged[64], out[64];
	int n0, n1;

	make_pair(&a, &b, 0.0);
	n0 = session_seal(&a, INNER_PING, (const uint8_t *)"x", 1, p0, sizeof(p0));
	n1 = session_seal(&a, INNER_PING, (const uint8_t *)"y", 1, p1, sizeof(p1));
	memcpy(forged, p1, (size_t)n1);
	forged[8] = 0x7f;                           /* counter ~2^62 */
	CHECK_EQ(session_open(&b, forged, (size_t)n1, out, sizeof(out)), -1);
	CHECK(b.replay.top == 0);
	CHECK_EQ(session_open(&b, p1, (size_t)n1, out, sizeof(out)), 2);
	CHECK_EQ(session_open(&b, p0, (size_t)n0, out, sizeof(out)), 2);    /* reordered */
}

static void
test_replay_rejected(void)
{
	struct session a, b;
	uint8_t pkts[5][64], out[64];
	int lens[5], i;

	make_pair(&a, &b, 0.0);
	for (i = 0; i < 5; i++)
		lens[i] = session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkts[i],
		    sizeof(pkts[i]));
	CHECK_EQ(session_open(&b, pkts[3], (size_t)lens[3], out, sizeof(out)), 4);
	CHECK_EQ(session_open(&b, pkts[1], (size_t)lens[1], out, sizeof(out)), 4);
	CHECK_EQ(session_open(&b, pkts[3], (size_t)lens[3], out, sizeof(out)), -1);
	CHECK_EQ(session_open(&b, pkts[1], (size_t)lens[1], out, sizeof(out)), -1);
	CHECK_EQ(session_open(&b, pkts[0], (size_t)lens[0], out, sizeof(out)), 4);
	CHECK_EQ(session_open(&b, pkts[4], (size_t)lens[4], out, sizeof(out)), 4);
	CHECK_EQ(session_open(&b, pkts[2], (size_t)lens[2], out, sizeof(out)), 4);
	for (i = 0; i < 5; i++)
		CHECK_EQ(session_open(&b, pkts[i], (size_t)lens[i], out, sizeof(out)), -1);
}

static void
test_wrong_index(void)
{
	struct session a, b, c;
	uint8_t pkt[64], out[64];
	uint32_t idx;
	int n;

	make_pair(&a, &b, 0.0);
	n = session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, sizeof(pkt));
	/* Same keys, but this session's local index differs: not ours. */
	c = b;
	c.local_index = IDX_B ^ 1;
	CHECK_EQ(session_open(&c, pkt, (size_t)n, out, sizeof(out)), -1);
	/* Index rewritten in the header: the AD no longer matches. */
	pkt[7] ^= 1;
	CHECK_EQ(session_open(&c, pkt, (size_t)n, out, sizeof(out)), -1);
	pkt[7] ^= 1;
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), 4);

	/* peek_index: short and non-data packets are refused. */
	CHECK_EQ(session_peek_index(pkt, UDP_DATA_HEADER_LEN + AEAD_TAG_LEN - 1, &idx), -1);
	pkt[0] = UDP_HANDSHAKE_INIT;
	CHECK_EQ(session_peek_index(pkt, (size_t)n, &idx), -1);
	/* Wrong type is rejected by open too. */
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), -1);
}

static void
test_limits(void)
{
	struct session a, b;
	uint8_t pkt[64], out[64];
	int n;

	make_pair(&a, &b, 0.0);
	/* out too small for header + inner type + body + tag. */
	CHECK_EQ(session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, UDP_DATA_OVERHEAD + 2),
	    -1);
	CHECK_EQ(a.send_counter, 0);
	CHECK_EQ(session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, UDP_DATA_OVERHEAD + 3),
	    UDP_DATA_OVERHEAD + 3);

	/* The last usable counter seals; after it, nothing does. */
	a.send_counter = REJECT_AFTER_MESSAGES - 1;
	n = session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, sizeof(pkt));
	CHECK_EQ(n, UDP_DATA_OVERHEAD + 3);
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), 4);
	CHECK_EQ(session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, sizeof(pkt)), -1);

	/* A receiver refuses counters at REJECT_AFTER_MESSAGES even when authentic. */
	a.send_counter = REJECT_AFTER_MESSAGES;
	{
		/* Seal by hand at the forbidden counter, bypassing session_seal's own check. */
		uint8_t hdr[UDP_DATA_HEADER_LEN] = { UDP_DATA, 0, 0, 0 };
		uint64_t c = REJECT_AFTER_MESSAGES;
		uint8_t pt[1] = { INNER_IP };
		int i;

		hdr[4] = (uint8_t)(IDX_B >> 24);
		hdr[5] = (uint8_t)(IDX_B >> 16);
		hdr[6] = (uint8_t)(IDX_B >> 8);
		hdr[7] = (uint8_t)IDX_B;
		for (i = 0; i < 8; i++)
			hdr[8 + i] = (uint8_t)(c >> (56 - 8 * i));
		memcpy(pkt, hdr, sizeof(hdr));
		n = noise_encrypt_n(a.send_key, c, hdr, sizeof(hdr), pt, 1, pkt + sizeof(hdr));
		CHECK_EQ(n, 17);
		CHECK_EQ(session_open(&b, pkt, sizeof(hdr) + 17, out, sizeof(out)), -1);
	}

	/* Wiped sessions do nothing. */
	session_wipe(&a);
	CHECK_EQ(a.valid, 0);
	CHECK(sodium_is_zero(a.send_key, KEY_LEN));
	CHECK_EQ(session_seal(&a, INNER_IP, (const uint8_t *)"abc", 3, pkt, sizeof(pkt)), -1);
}

static void
test_expiry_and_rekey(void)
{
	struct session a, b;

	make_pair(&a, &b, 1000.0);
	CHECK(!session_expired(&a, 1000.0));
	CHECK(!session_needs_rekey(&a, 1000.0));
	CHECK(!session_needs_rekey(&a, 1000.0 + REKEY_AFTER_TIME - 0.5));
	/* Time-based rekey: the initiator (a) only. */
	CHECK(session_needs_rekey(&a, 1000.0 + REKEY_AFTER_TIME));
	CHECK(!session_needs_rekey(&b, 1000.0 + REKEY_AFTER_TIME + 10));
	/* Reject-after-time: both. */
	CHECK(!session_expired(&a, 1000.0 + REJECT_AFTER_TIME - 0.5));
	CHECK(session_expired(&a, 1000.0 + REJECT_AFTER_TIME));
	CHECK(session_expired(&b, 1000.0 + REJECT_AFTER_TIME));
	/* Message-count rekey applies to whoever sent that much. */
	b.send_counter = REKEY_AFTER_MESSAGES;
	CHECK(session_needs_rekey(&b, 1000.0));
	b.send_counter = REJECT_AFTER_MESSAGES;
	CHECK(session_expired(&b, 1000.0));
	b.send_counter = 0;
	b.replay.top = REJECT_AFTER_MESSAGES;
	CHECK(session_expired(&b, 1000.0));
	session_wipe(&a);
	CHECK(session_expired(&a, 1000.0));
	CHECK(!session_needs_rekey(&a, 5000.0));
}

/* The body may already sit where the plaintext goes (out + 17): zero-copy callers. */
static void
test_body_in_place(void)
{
	struct session a, b;
	uint8_t pkt[128], out[128];
	int n;

	make_pair(&a, &b, 0.0);
	memcpy(pkt + UDP_DATA_HEADER_LEN + 1, "in place body", 13);
	n = session_seal(&a, INNER_IP, pkt + UDP_DATA_HEADER_LEN + 1, 13, pkt, sizeof(pkt));
	CHECK_EQ(n, UDP_DATA_OVERHEAD + 13);
	CHECK_EQ(session_open(&b, pkt, (size_t)n, out, sizeof(out)), 14);
	CHECK_MEM(out + 1, "in place body", 13);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_roundtrip);
	RUN(test_keepalive);
	RUN(test_tamper);
	RUN(test_forgery_does_not_move_window);
	RUN(test_replay_rejected);
	RUN(test_wrong_index);
	RUN(test_limits);
	RUN(test_expiry_and_rekey);
	RUN(test_body_in_place);
	return unit_finish();
}
