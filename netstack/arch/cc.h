/*
 * arch/cc.h: lwIP's platform glue for shoal (Linux/glibc, gcc or clang). Included by lwIP's
 * arch.h before anything else. Owns the platform macros; the functions declared here live in
 * netstack/arch/sys_arch.c (built into liblwip.a).
 */
#ifndef SHOAL_LWIP_ARCH_CC_H
#define SHOAL_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

#ifndef BYTE_ORDER
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BYTE_ORDER 1234
#else
#define BYTE_ORDER 4321
#endif
#endif

/* Let lwIP use our libc's struct timeval and errno values; we build no socket layer. */
#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_ERRNO_STDINCLUDE 1

/*
 * A failed lwIP assertion is logged (rate-limited) and counted; it never aborts: peers feed
 * lwIP arbitrary packets and one broken connection must not take the daemon down.
 */
void netstack_lwip_assert(const char *msg, const char *file, int line);
unsigned long netstack_lwip_assert_count(void);
uint32_t netstack_lwip_rand(void);
uint16_t netstack_lwip_chksum(const void *data, int len);

#define LWIP_PLATFORM_ASSERT(x) netstack_lwip_assert((x), __FILE__, __LINE__)
/* Debug output is compiled out (LWIP_DEBUG unset); keep the hook harmless anyway. */
#define LWIP_PLATFORM_DIAG(x) do { } while (0)

#endif
