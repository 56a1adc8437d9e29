/*
 * acceptor: the accept loop of one listening socket, safe when file descriptors run out.
 * Used by every kernel listener of the daemon (control socket, SOCKS5, `shoal forward`, the
 * lanproxy's shim socket and loopback aliases) and the mediator's.
 *
 * Out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), the pending
 * connection stays in the backlog and the socket stays readable, so a plain loop spins and
 * logs at full speed. Instead the listener pauses: its watcher stops and a timer restarts it
 * ACCEPTOR_PAUSE_S later (the timer is re-set each time: a one-shot timer restarted as is
 * after firing would expire at once). The condition is logged once per ACCEPTOR_LOG_S per
 * listener, with a count of what happened in between.
 *
 * Reserve: a listener created with reserve R keeps R descriptors free for others. The kernel
 * hands out the lowest free descriptor, so an accepted fd numbered at or above the soft limit
 * minus R means fewer than R are left: it is closed at once (the client sees a reset) and the
 * listener pauses. The control socket has reserve 0 and every other listener a reserve, so
 * the owner's `shoal status` still gets an answer while SOCKS clients exhaust the table.
 *
 * Owner only: a loopback listener that gives access to the virtual LAN (SOCKS5, `shoal
 * forward`, lanproxy aliases) asks the kernel who owns the connecting socket
 * (base/sockowner.h) and closes connections of other users at once, so another user of a
 * shared machine cannot act as this node; logged once per ACCEPTOR_LOG_S with their uid. When
 * the owner cannot be told the connection is refused too (fail closed).
 *
 * Owns: its watchers. Not the socket: the owner made it and closes it after acceptor_free.
 */
#ifndef SHOAL_ACCEPTOR_H
#define SHOAL_ACCEPTOR_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	ACCEPTOR_RESERVE = 32,          /* the reserve of listeners other than the control socket */
};
#define ACCEPTOR_PAUSE_S 1.0
#define ACCEPTOR_LOG_S 10.0

struct acceptor;

/*
 * One accepted connection: fd is non-blocking and close-on-exec, and now the callee's; sa is
 * the peer's address (len bytes). Return 0 to go on accepting, non-zero to stop this round;
 * the callee may free the acceptor only when it returns non-zero.
 */
typedef int (*acceptor_cb)(void *arg, int fd, const struct sockaddr *sa, socklen_t len);

/* Starts accepting on fd at once. name is for logs (a string literal: kept, not copied). NULL
 * when out of memory (logged). */
struct acceptor *acceptor_new(struct ev_loop *loop, int fd, const char *name, unsigned reserve,
    acceptor_cb cb, void *arg);
void acceptor_free(struct acceptor *a);
/* Accept only connections whose socket belongs to our uid (see above); off by default. */
void acceptor_owner_only(struct acceptor *a, int on);
/*
 * Out of descriptors, ask the owner to free some first (the mediator closes connections that
 * have not authenticated, oldest first): fn returns how many it closed; with none the
 * listener pauses as usual. fn must not free the acceptor.
 */
void acceptor_on_full(struct acceptor *a, unsigned (*fn)(void *arg), void *arg);

/* Stops accepting for s seconds, silently: the owner is busy with the connections it has, and
 * the kernel's listen queue holds newcomers meanwhile. Nothing when already paused or held. */
void acceptor_hold(struct acceptor *a, double s);

/* Raises the soft descriptor limit to the hard one (the default soft 1024 is what a few
 * hundred silent clients exhaust); returns the soft limit now (0: unlimited or unknown). */
long acceptor_raise_fd_limit(void);

struct acceptor_stats {
	uint64_t accepted;
	uint64_t pauses;                /* times the listener paused */
	uint64_t holds;                 /* times the owner held it (acceptor_hold) */
	uint64_t refused;               /* closed at once to keep the reserve */
	uint64_t foreign;               /* closed at once: another user's (or unknown) socket */
};
void acceptor_get_stats(const struct acceptor *a, struct acceptor_stats *st);

#endif
