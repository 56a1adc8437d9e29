/*
 * tick: lwIP's timeouts (TCP fast/slow timers, IP reassembly) on one ev_timer. Instead of a
 * fixed poll, the timer is re-armed from sys_timeouts_sleeptime() after every input, output
 * and API call, so an idle netstack does not wake up at all and a new TCP connection gets its
 * first timer tick on time.
 * Owns: the netstack's tick timer and lwIP's clock (sys_now). Must not touch: pcbs.
 */
#include "config.h"

#include <time.h>

#include "lwip/sys.h"
#include "lwip/timeouts.h"

#include "netstack/netstack_priv.h"

/*
 * lwIP's clock, in ms. Deliberately not ev_now(): libev's "now" is wall-clock time and jumps
 * with settimeofday/NTP steps; a step backwards would freeze lwIP's retransmission timers for
 * that long. The monotonic clock is a vDSO read, and the ev_timer below still does all the
 * sleeping, so this is the loop's timebase without its jumps.
 */
u32_t
sys_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct netstack *ns = w->data;

	(void)loop;
	(void)revents;
	sys_check_timeouts();
	ns_tick_arm(ns);
}

void
ns_tick_init(struct netstack *ns)
{
	ev_init(&ns->tick, tick_cb);
	ns->tick.data = ns;
}

void
ns_tick_arm(struct netstack *ns)
{
	u32_t ms = sys_timeouts_sleeptime();
	u32_t due;

	if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
		ev_timer_stop(ns->loop, &ns->tick);
		return;
	}
	due = sys_now() + ms;
	/* Most calls leave the earliest timeout unchanged: skip the timer heap update. */
	if (ev_is_active(&ns->tick) && due == ns->tick_due)
		return;
	ns->tick_due = due;
	ev_timer_stop(ns->loop, &ns->tick);
	/* Half a millisecond late rather than early: sys_now() truncates to whole ms, and a timer
	 * that fires just before the deadline would find nothing due. */
	ev_timer_set(&ns->tick, ms / 1000.0 + 0.0005, 0.);
	ev_timer_start(ns->loop, &ns->tick);
}

void
ns_tick_stop(struct netstack *ns)
{
	ev_timer_stop(ns->loop, &ns->tick);
}
