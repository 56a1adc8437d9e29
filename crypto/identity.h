/*
 * identity: long-term key pairs on disk, node ids, and the mediator connection string.
 * A key file holds the 32-byte X25519 private key and then its public key, each as 64 hex
 * digits and a newline, mode 0600, written atomically (temp file + link or rename). Loading
 * derives the public key from the private one and refuses a file where they differ (a
 * damaged private half would otherwise silently be another identity); a file from before
 * the public half was kept (one line) is loaded and rewritten with both.
 * Connection string: "shoal://HOST:PORT[,HOST:PORT...]/<64 hex digits of the server public
 * key>": one mediator (one key) reachable at one or more addresses (instances sharing a store),
 * which a client tries in turn.
 * Node id: the 64 hex digits of a node's public key (shown shortened to its first 12).
 */
#ifndef SHOAL_IDENTITY_H
#define SHOAL_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"

/* Loads DIR/name, or creates it (and DIR, mode 0700) with a fresh key. Returns 0, or -1 with a
 * one-line reason in err. */
int identity_load_or_create(const char *dir, const char *name, struct noise_keypair *kp,
    char *err, size_t errlen);

/* hex must have room for 2*len+1 bytes. */
void hex_encode(const uint8_t *in, size_t len, char *hex);
/* Exactly 2*len hex digits (either case). Returns 0 or -1. */
int hex_decode(const char *hex, uint8_t *out, size_t len);

#define CONN_MAX_ADDRS 8        /* mediator instances in one connection string */

struct conn_addr {
	char host[254];         /* IPv4 literal or DNS name (at most 253 bytes) */
	uint16_t port;
};

struct conn_string {
	struct conn_addr addr[CONN_MAX_ADDRS];
	unsigned n_addr;        /* 1..CONN_MAX_ADDRS */
	uint8_t pub[KEY_LEN];
};

/* The full form, any number of addresses. 0, or -1 with a reason in err (duplicates, empty
 * elements and more than CONN_MAX_ADDRS addresses are refused). */
int conn_string_parse_list(const char *s, struct conn_string *cs, char *err, size_t errlen);
/* 0, or -1 (a host the parser would refuse, or no room in cap). */
int conn_string_format_list(const struct conn_string *cs, char *out, size_t cap);

/* The one-address form (a server's own URL). */
int conn_string_format(const char *host, uint16_t port, const uint8_t pub[KEY_LEN], char *out,
    size_t cap);
/* Returns 0, or -1 with a reason in err (also for a list of several addresses). host gets at
 * most host_cap-1 bytes. */
int conn_string_parse(const char *s, char *host, size_t host_cap, uint16_t *port,
    uint8_t pub[KEY_LEN], char *err, size_t errlen);

#endif
