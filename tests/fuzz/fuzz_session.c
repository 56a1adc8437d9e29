/*
 * fuzz_session: UDP_DATA packets into session_open, plus a differential check of the replay
 * window. The input is a list of operations:
 *   0x00 len(u16 BE) bytes   open these raw bytes as a packet (a forgery, or an authentic
 *                            packet from a seed, which must then agree with the model)
 *   0x01 counter(u64 BE)     seal a packet at that counter with the peer's keys, open it,
 *                            and compare the verdict with a plain model of the window
 *   other                    open the rest of the input as one packet and stop
 * The model: an authentic packet is accepted iff its counter is below REJECT_AFTER_MESSAGES,
 * was not accepted before, and is newer than the newest accepted or at most
 * REPLAY_WINDOW_BITS - 64 behind it. Any disagreement aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 256
#define WINDOW ((uint64_t)REPLAY_WINDOW_BITS - REPLAY_WORD_BITS)

struct model {
	uint64_t seen[MAX_OPS];
	size_t n_seen;
	uint64_t newest;
	int any;
};

static int
model_accepts(const struct model *m, uint64_t c)
{
	size_t i;

	if (c >= REJECT_AFTER_MESSAGES)
		return 0;
	for (i = 0; i < m->n_seen; i++)
		if (m->seen[i] == c)
			return 0;
	return !m->any || c > m->newest || m->newest - c <= WINDOW;
}

static void
model_add(struct model *m, uint64_t c)
{
	if (m->n_seen < MAX_OPS)
		m->seen[m->n_seen++] = c;
	if (!m->any || c > m->newest)
		m->newest = c;
	m->any = 1;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t k1[KEY_LEN] = { 1 }, k2[KEY_LEN] = { 2 };
	struct session rx, tx;
	struct model m;
	uint8_t pkt[2048], out[2048];
	uint32_t idx;
	size_t off = 0, len;
	int ops = 0, n;

	if (sodium_init() < 0)
		abort();
	/* tx seals what rx opens: rx's recv key is tx's send key. */
	session_init(&rx, k2, k1, 0x01020304, 0x0a0b0c0d, 0, 0.0);
	session_init(&tx, k1, k2, 0x0a0b0c0d, 0x01020304, 1, 0.0);
	memset(&m, 0, sizeof(m));

	while (off < size && ops++ < MAX_OPS) {
		uint8_t op = data[off++];

		if (op == 0x00) {
			if (size - off < 2)
				break;
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
			if (len > size - off)
				len = size - off;
			(void)session_peek_index(data + off, len, &idx);
			n = session_open(&rx, data + off, len, out, sizeof(out));
			if (n > (int)len)
				abort();
			/* An authentic packet (from a seed) moves the window: keep the model in step. */
			if (n >= 0) {
				uint64_t c = get_u64(data + off + 8);

				if (!model_accepts(&m, c))
					abort();
				model_add(&m, c);
			}
			off += len;
		} else if (op == 0x01) {
			uint64_t c;
			int want;

			if (size - off < 8)
				break;
			c = get_u64(data + off);
			off += 8;
			tx.send_counter = c;
			n = session_seal(&tx, INNER_PING, data, size < 32 ? size : 32, pkt,
			    sizeof(pkt));
			if (c >= REJECT_AFTER_MESSAGES) {
				if (n != -1)
					abort();
				continue;
			}
			if (n < 0)
				abort();
			want = model_accepts(&m, c);
			if ((session_open(&rx, pkt, (size_t)n, out, sizeof(out)) >= 0) != want)
				abort();
			if (want)
				model_add(&m, c);
		} else {
			(void)session_peek_index(data + off, size - off, &idx);
			(void)session_open(&rx, data + off, size - off, out, sizeof(out));
			break;
		}
	}
	session_wipe(&rx);
	session_wipe(&tx);
	return 0;
}
