/*
 * sys_arch: the platform functions lwIP itself calls (assertions, randomness, the Internet
 * checksum). Built into
 * liblwip.a so any program linking lwIP gets them. sys_now() is not here: it reads the
 * netstack's loop clock (netstack/tick.c); lwIP-only tests supply their own.
 * Owns: the process-wide assertion counter (lwIP is a process-wide singleton already).
 * Must not touch: lwIP state.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "base/log.h"
#include "arch/cc.h"

static unsigned long lwip_asserts;

void
netstack_lwip_assert(const char *msg, const char *file, int line)
{
	lwip_asserts++;
	/* First few in full, then a sample: a peer that triggers one can trigger millions.
	 * lwIP's messages often end in a newline; the log line must not. */
	if (lwip_asserts <= 10 || lwip_asserts % 10000 == 0)
		log_warnx("event=lwip_assert count=%lu msg=\"%.*s\" file=%s line=%d", lwip_asserts,
		    (int)strcspn(msg, "\r\n"), msg, file, line);
}

unsigned long
netstack_lwip_assert_count(void)
{
	return lwip_asserts;
}

uint32_t
netstack_lwip_rand(void)
{
	return randombytes_random();
}

/*
 * The Internet checksum (RFC 1071) for LWIP_CHKSUM. lwIP's portable version adds one 16-bit
 * word per step and was the largest user-space cost of a bulk TCP sender (every segment is
 * summed once while copied). One's-complement addition does not care about byte order or
 * about how words are grouped, so this adds 32-bit loads into a 64-bit accumulator (no carry
 * handling in the loop) and folds at the end; the result equals lwIP's (native-order u16).
 */
uint16_t
netstack_lwip_chksum(const void *data, int len)
{
	const uint8_t *p = data;
	uint64_t sum = 0;
	uint32_t w32;
	uint16_t w16;

	for (; len >= 16; len -= 16, p += 16) {
		uint64_t a, b;

		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		/* Each 64-bit word split into halves: no sum of two halves can overflow 64 bits. */
		sum += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32);
	}
	for (; len >= 4; len -= 4, p += 4) {
		memcpy(&w32, p, 4);
		sum += w32;
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		sum += w16;
		p += 2;
		len -= 2;
	}
	if (len == 1) {
		uint8_t last[2] = { p[0], 0 };

		memcpy(&w16, last, 2);
		sum += w16;
	}
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)sum;
}
