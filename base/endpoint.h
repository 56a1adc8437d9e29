/*
 * endpoint: a UDP (or TCP) endpoint, IPv4 or IPv6, and the one place that compares, hashes,
 * formats, converts and encodes them. Every module that holds endpoints uses these helpers,
 * so a second address family is handled once.
 *
 * IPv4 stays the zero value: family 0 (EP_INET), addr and port in host byte order, exactly as
 * before IPv6 existed, so code that only sets addr/port keeps working. An IPv6 endpoint has
 * family EP_INET6, its address in addr6 (network byte order, as in struct in6_addr) and addr 0.
 * Every helper asks ep_is_v6() (family EP_INET6 and addr 0) and reads anything else as IPv4,
 * so a struct whose code set only addr and port (and left family unset) stays IPv4.
 * Owns nothing; pure except ep_to_sockaddr/ep_from_sockaddr (no I/O either).
 */
#ifndef SHOAL_ENDPOINT_H
#define SHOAL_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct wire_w;
struct wire_r;

enum ep_family { EP_INET = 0, EP_INET6 = 1 };

struct endpoint {
	uint32_t addr;                  /* IPv4, host order; 0 for IPv6 */
	uint16_t port;                  /* host order */
	/* The local link it is reached through: 0 = the daemon's peer UDP socket, else a link
	 * registered with the daemon's transport (a birthday-punch socket, a punched TCP stream;
	 * core/transport.h). Local meaning only: never on the wire, decoders leave it 0. */
	uint16_t via;
	uint8_t family;                 /* enum ep_family; 0 = IPv4 */
	uint8_t addr6[16];              /* IPv6, network order; all zero for IPv4 */
};

enum {
	/* "[ffff:...:ffff]:65535" and its NUL (INET6_ADDRSTRLEN 46 + "[]:65535"). */
	EP_STR_LEN = 46 + 8,
	/* On the wire: family byte, 4 or 16 address bytes, port. */
	EP_WIRE_MAX = 1 + 16 + 2,
	EP_WIRE_FAMILY_V4 = 4,
	EP_WIRE_FAMILY_V6 = 6,
};

/* 1 if a and b are the same endpoint: family, address, port and via. */
int ep_equal(const struct endpoint *a, const struct endpoint *b);
/* The same ignoring via: the same remote address and port whatever carries it. */
int ep_same_addr(const struct endpoint *a, const struct endpoint *b);
/* A hash of family, address and port (not via), for tables keyed by endpoint. */
uint32_t ep_hash(const struct endpoint *ep);
/* 1 if it names somewhere: a non-zero address and port. */
int ep_is_set(const struct endpoint *ep);
/* IPv6: family EP_INET6 and addr 0 (ep_set_v6 and ep_get leave addr 0). Requiring both keeps
 * an IPv4 endpoint whose family was never set (a stack struct filled field by field) IPv4. */
static inline int
ep_is_v6(const struct endpoint *ep)
{
	/* addr first: an IPv4 endpoint's family is then never read (it may be unset) */
	return ep->addr == 0 && ep->family == EP_INET6;
}
/*
 * The per-source key handshake rate limits count by: the IPv4 address, or for IPv6 a hash of
 * the /64 (one host controls a whole /64, so counting addresses would give it 2^64 buckets).
 */
uint32_t ep_source_key(const struct endpoint *ep);
/* "a.b.c.d:port" or "[v6]:port" into out; returns out (for printf argument lists). */
const char *ep_str(const struct endpoint *ep, char out[EP_STR_LEN]);
/* The address alone: "a.b.c.d" or "v6" (no brackets); returns out. */
const char *ep_addr_str(const struct endpoint *ep, char out[EP_STR_LEN]);
/* An IPv6 endpoint from a 16-byte address (network order) and a port (host order). */
void ep_set_v6(struct endpoint *ep, const uint8_t a6[16], uint16_t port);

/* Fills ss (sockaddr_in or sockaddr_in6, padding zeroed so equal endpoints compare bytewise)
 * and returns its length. */
socklen_t ep_to_sockaddr(const struct endpoint *ep, struct sockaddr_storage *ss);
/* 0 and *ep (via 0), or -1 for another family or a short length. An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) becomes the IPv4 endpoint it is. */
int ep_from_sockaddr(struct endpoint *ep, const struct sockaddr *sa, socklen_t len);

/*
 * Wire encoding (PROTOCOL.md 3.0): u8 family (4 or 6), then 4 or 16 address bytes (network
 * order), then u16 port. via is never encoded. The decoder rejects any other family byte
 * (sets r->err) and leaves via 0; every message that carries endpoints calls these.
 */
void ep_put(struct wire_w *w, const struct endpoint *ep);
void ep_get(struct wire_r *r, struct endpoint *ep);

#endif
