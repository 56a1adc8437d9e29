/*
 * expose: makes a local service reachable from co-members.
 *   expose PORT[/udp]: our virtual address PORT -> 127.0.0.1:PORT
 * The virtual listener is made at once: lwIP listens on any address, so an expose added
 * before we have an address answers as soon as one arrives.
 * Owns: the table of exposes, their virtual listeners, UDP flows (idle-timed).
 */
#ifndef SHOAL_EXPOSE_H
#define SHOAL_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct netstack;
struct expose_table;

/* ns must outlive the table. */
struct expose_table *expose_table_new(struct ev_loop *loop, struct netstack *ns);
void expose_table_free(struct expose_table *t);
/* Returns 0, or -1 with a one-line reason in err. */
int expose_add(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen);
int expose_remove(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen);

/* For `shoal status --json`: fills up to max entries and returns the count. */
struct expose_info { uint16_t port; int udp; };
size_t expose_list(const struct expose_table *t, struct expose_info *out, size_t max);

#endif
