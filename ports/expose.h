/*
 * expose / forward: make a local service reachable from co-members, and reach a peer's
 * service from a local port.
 *   expose PORT[/udp]: our virtual address PORT -> 127.0.0.1:PORT
 *   forward LOCALPORT PEER:PORT: 127.0.0.1:LOCALPORT -> PEER's virtual address PORT
 * Owns: the tables of exposes and forwards, their listeners, UDP flows (idle-timed).
 */
#ifndef SHOAL_EXPOSE_H
#define SHOAL_EXPOSE_H

#include <stddef.h>
#include <stdint.h>

struct daemon;

struct expose_table *expose_table_new(struct daemon *d);
void expose_table_free(struct expose_table *t);
/* Returns 0, or -1 with a one-line reason in err. */
int expose_add(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen);
int expose_remove(struct expose_table *t, uint16_t port, int udp, char *err, size_t errlen);

struct forward_table *forward_table_new(struct daemon *d);
void forward_table_free(struct forward_table *t);
/* Listens on 127.0.0.1:local_port; each connection goes to ip:port over the overlay. */
int forward_add(struct forward_table *t, uint16_t local_port, uint32_t ip, uint16_t port,
    char *err, size_t errlen);
int forward_remove(struct forward_table *t, uint16_t local_port, char *err, size_t errlen);

/* For `shoal status --json`: lists of what is exposed and forwarded. Each call fills up to max
 * entries and returns the count. */
struct expose_info { uint16_t port; int udp; };
struct forward_info { uint16_t local_port; uint32_t ip; uint16_t port; };
size_t expose_list(const struct expose_table *t, struct expose_info *out, size_t max);
size_t forward_list(const struct forward_table *t, struct forward_info *out, size_t max);

/*
 * The daemon calls this once, right after creating d->ns: exposes added before the netstack
 * existed get their virtual listeners now. (Forwards need nothing: their listeners are kernel
 * sockets, and connections accepted while d->ns is NULL are simply closed.)
 */
void expose_table_netstack_ready(struct expose_table *t);

#endif
