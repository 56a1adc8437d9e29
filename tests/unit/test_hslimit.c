/*
 * Unit tests for core/hslimit: nothing is limited while all sources together stay within the
 * load budget (80 handshakes from one address at once pass); under load each source gets its
 * own bucket; the load budget refills with time.
 */
#include "config.h"

#include <ev.h>

#include "core/peer_impl.h"
#include "tests/unit/unit.h"

static void
test_load_aware(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hslimit *rl = hslimit_new(loop, 20, 20, 500, 500);
	double t = 100.0;
	unsigned i, ok;

	CHECK(rl != NULL);
	if (rl == NULL)
		return;
	/* A LAN party behind one router: 80 at once, all pass. */
	for (i = 0, ok = 0; i < 80; i++)
		ok += (unsigned)hslimit_allow(rl, 0x0a000001u, t);
	CHECK_EQ(ok, 80);
	/* Many sources use up the load budget (420 left). */
	for (i = 0, ok = 0; i < 420; i++)
		ok += (unsigned)hslimit_allow(rl, 0x0b000000u + i, t);
	CHECK_EQ(ok, 420);
	/* Under load: each source its burst of 20, then nothing. */
	for (i = 0, ok = 0; i < 30; i++)
		ok += (unsigned)hslimit_allow(rl, 0x0a000001u, t);
	CHECK_EQ(ok, 20);
	for (i = 0, ok = 0; i < 30; i++)
		ok += (unsigned)hslimit_allow(rl, 0x0c000001u, t);
	CHECK_EQ(ok, 20);
	/* A second later the load budget is back: unlimited again. */
	for (i = 0, ok = 0; i < 100; i++)
		ok += (unsigned)hslimit_allow(rl, 0x0a000001u, t + 1.0);
	CHECK_EQ(ok, 100);
	hslimit_free(rl);
	ev_loop_destroy(loop);
}

int
main(void)
{
	RUN(test_load_aware);
	return unit_finish();
}
