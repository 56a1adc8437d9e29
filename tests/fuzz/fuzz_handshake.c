/*
 * fuzz_handshake: arbitrary bytes as Noise IK handshake messages.
 *  1. the whole input as message 1 to a responder (and, if it is accepted, the responder
 *     answers and splits, so a valid seed reaches the transport keys);
 *  2. the whole input as message 2 to an initiator that wrote message 1 with fixed keys;
 *  3. the input split in two at a point chosen by its first byte: the first part as
 *     message 1, the second as message 2, so both readers see short and odd lengths.
 * Keys (static and ephemeral) are fixed, so the seeds in corpus/fuzz_handshake/ (a real
 * message 1 and the matching message 2) are accepted and cover the success paths.
 * Invariant checked: a failed read leaves the state NOISE_HS_FAILED; a payload never
 * exceeds what the message can hold.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct keys {
	struct noise_keypair is, ie, rs, re;
};

static const uint8_t prologue[] = "shoal fuzz";

static void
keys_make(struct keys *k)
{
	uint8_t priv[KEY_LEN];

	memset(priv, 0x11, sizeof(priv));
	noise_keypair_from_private(&k->is, priv);
	memset(priv, 0x22, sizeof(priv));
	noise_keypair_from_private(&k->ie, priv);
	memset(priv, 0x33, sizeof(priv));
	noise_keypair_from_private(&k->rs, priv);
	memset(priv, 0x44, sizeof(priv));
	noise_keypair_from_private(&k->re, priv);
}

static void
as_msg1(const struct keys *k, const uint8_t *msg, size_t len)
{
	struct noise_hs r;
	struct noise_cs tx, rx;
	uint8_t payload[2048], out[2048];
	int n;

	noise_hs_init(&r, 0, &k->rs, NULL, prologue, sizeof(prologue));
	noise_hs_set_ephemeral(&r, &k->re);
	n = noise_hs_read(&r, msg, len, payload, sizeof(payload));
	if (n < 0) {
		if (r.state != NOISE_HS_FAILED)
			abort();
		return;
	}
	if ((size_t)n + 96 != len)
		abort();
	n = noise_hs_write(&r, payload, (size_t)n, out, sizeof(out));
	if (n < 0 || noise_hs_split(&r, &tx, &rx) != 0)
		abort();
	n = noise_cs_encrypt(&tx, msg, len < 64 ? len : 64, out);
	if (n < 0)
		abort();
	noise_hs_wipe(&r);
}

static void
as_msg2(const struct keys *k, const uint8_t *msg, size_t len)
{
	struct noise_hs i;
	struct noise_cs tx, rx;
	uint8_t m1[256], payload[2048];
	int n;

	noise_hs_init(&i, 1, &k->is, k->rs.pub, prologue, sizeof(prologue));
	noise_hs_set_ephemeral(&i, &k->ie);
	if (noise_hs_write(&i, (const uint8_t *)"hello", 5, m1, sizeof(m1)) < 0)
		abort();
	n = noise_hs_read(&i, msg, len, payload, sizeof(payload));
	if (n < 0) {
		if (i.state != NOISE_HS_FAILED)
			abort();
		return;
	}
	if ((size_t)n + 48 != len || noise_hs_split(&i, &tx, &rx) != 0)
		abort();
	noise_hs_wipe(&i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keys k;
	size_t cut;

	if (sodium_init() < 0)
		abort();
	keys_make(&k);
	as_msg1(&k, data, size);
	as_msg2(&k, data, size);
	if (size > 1) {
		cut = 1 + (size_t)data[0] * (size - 1) / 255;
		as_msg1(&k, data + 1, cut - 1);
		as_msg2(&k, data + cut, size - cut);
	}
	return 0;
}
