/*
 * sys_arch: the platform functions lwIP itself calls (assertions, randomness). Built into
 * liblwip.a so any program linking lwIP gets them. sys_now() is not here: it reads the
 * netstack's loop clock (netstack/tick.c); lwIP-only tests supply their own.
 * Owns: the process-wide assertion counter (lwIP is a process-wide singleton already).
 * Must not touch: lwIP state.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "core/log.h"
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
