/*
 * birthday: the socket set of one birthday-punch attempt on the random-port side
 * (PROTOCOL.md 3.2). A NAT that gives every new destination a random port cannot be aimed
 * at; instead we open K extra UDP sockets and send from each to the other side's public
 * endpoint, so our NAT makes K random mappings towards it, while the other side probes our
 * public address at N random ports: with K = 256 and N = 2048 of ~64500 ports some probe
 * almost surely hits one of the mappings.
 *
 * Each socket is a transport link (core/transport.h): what it receives reaches the peer
 * layer as from {addr, port, via}, and a path whose endpoint names that via sends through
 * it, so sessions need not know which socket they use. When a session comes up over one
 * socket, bday_keep closes the rest; the winner then carries the peer's data (batched both
 * ways) until its owner frees the set.
 *
 * Owns: the sockets, their links and watchers, one receive batch shared by the set, the
 * winner's send batch. Borrows: the loop and the transport (must outlive the set).
 * May be freed from inside the transport's receive callback of one of its own sockets.
 */
#ifndef SHOAL_BIRTHDAY_H
#define SHOAL_BIRTHDAY_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct transport;
struct bday;

enum {
	/* Descriptors left free for everything else (the control socket, accepts, exposes): a
	 * set never takes the process closer than this to its RLIMIT_NOFILE. */
	BDAY_FD_RESERVE = 128,
};

/*
 * Opens up to want sockets (at most BIRTHDAY_SOCKETS_MAX), fewer when descriptors are short
 * (the soft RLIMIT_NOFILE minus those open minus reserve) or socket() fails; each bound to an
 * ephemeral port and registered as a link. NULL when not even one could be opened (logged).
 */
struct bday *bday_new(struct ev_loop *loop, struct transport *tp, unsigned want,
    unsigned reserve);
/* Closes every socket and deregisters its link. NULL is a no-op. */
void bday_free(struct bday *b);

/* Sockets open now. */
unsigned bday_count(const struct bday *b);
/* Sends pkt from every open socket to `to` (its via is ignored). Returns how many went. */
unsigned bday_send_all(struct bday *b, const struct endpoint *to, const uint8_t *pkt,
    size_t len);
/* 1 if via is the link of one of the set's open sockets. */
int bday_owns(const struct bday *b, uint16_t via);
/* A session came over via's socket: it is kept, every other socket closes now. A via not in
 * the set changes nothing. */
void bday_keep(struct bday *b, uint16_t via);
/* The kept socket's via, 0 before bday_keep. */
uint16_t bday_winner(const struct bday *b);
/* The local port of via's socket (tests, logs); 0 if not in the set. */
uint16_t bday_port(const struct bday *b, uint16_t via);

#endif
