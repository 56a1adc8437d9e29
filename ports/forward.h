/*
 * forward: reaches a peer's service from a local port.
 *   forward LOCALPORT PEER:PORT: 127.0.0.1:LOCALPORT -> PEER's virtual address PORT
 * Owns: the table of forwards and their listening sockets.
 */
#ifndef SHOAL_FORWARD_H
#define SHOAL_FORWARD_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct netstack;
struct forward_table;

/* ns must outlive the table. */
struct forward_table *forward_table_new(struct ev_loop *loop, struct netstack *ns);
void forward_table_free(struct forward_table *t);
/* Forwards serve only our own uid's connections (base/acceptor.h, owner only) unless allow is
 * 1 (--allow-other-users); applies to forwards added later and those there now. */
void forward_table_allow_others(struct forward_table *t, int allow);
/* Listens on 127.0.0.1:local_port; each connection goes to ip:port over the overlay.
 * Returns 0, or -1 with a one-line reason in err. */
int forward_add(struct forward_table *t, uint16_t local_port, uint32_t ip, uint16_t port,
    char *err, size_t errlen);
int forward_remove(struct forward_table *t, uint16_t local_port, char *err, size_t errlen);

/* For `shoal status --json`: fills up to max entries and returns the count. */
struct forward_info { uint16_t local_port; uint32_t ip; uint16_t port; };
size_t forward_list(const struct forward_table *t, struct forward_info *out, size_t max);

#endif
