/*
 * addrwatch: tells when the machine's interface addresses change, from the kernel's own
 * notifications (rtnetlink groups RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR, which any user may
 * listen to), once per burst: the callback runs ADDRWATCH_SETTLE_S after the last change of a
 * burst (an interface coming up adds several addresses; an IPv6 address is announced again
 * when it leaves the tentative state). What changed is the caller's to find out.
 * Owns: the netlink socket and its watchers.
 */
#ifndef SHOAL_ADDRWATCH_H
#define SHOAL_ADDRWATCH_H

#include <ev.h>

#define ADDRWATCH_SETTLE_S 0.5

struct addrwatch;
typedef void (*addrwatch_fn)(void *arg);

/* NULL (and errno) when the netlink socket cannot be had: the caller goes on without. */
struct addrwatch *addrwatch_new(struct ev_loop *loop, addrwatch_fn fn, void *arg);
void addrwatch_free(struct addrwatch *w);

#endif
