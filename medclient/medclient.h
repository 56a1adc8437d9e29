/*
 * medclient: the daemon's side of the mediator control channel. Connects over TCP
 * (ctrlchan, pinned server key), says HELLO, keeps the membership view the server pushes
 * (NETWORK / MEMBER / MEMBER_GONE / NETWORK_GONE deltas), turns it into peer authorizations
 * (peers_authorize / peers_revoke), sends UDP_PROBEs through the transport so the mediator
 * learns our public endpoint, and reconnects with exponential backoff (1 s .. 30 s, jitter)
 * when the server is away. While disconnected the membership view and peers stay as they were.
 *
 * A member is authorized as a peer when some network has both us and it as full (non-pending)
 * members, both switched on there (MEMF_ACTIVE, whether or not connected to the mediator).
 * Owns: the ctrlchan, the membership view (struct med_network/med_member), pending requests.
 */
#ifndef SHOAL_MEDCLIENT_H
#define SHOAL_MEDCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "mproto/msg.h"

struct daemon;
struct medclient;

struct med_member {
	uint8_t key[KEY_LEN];           /* hash key */
	uint32_t address;
	char nick[NICK_MAX_LEN + 1];
	uint8_t flags;                  /* MEMF_* */
	uint8_t n_endpoints;
	struct endpoint endpoints[MAX_ENDPOINTS];
	UT_hash_handle hh;
};

struct med_network {
	char name[NAME_MAX_LEN + 1];    /* hash key */
	uint8_t flags;                  /* NETF_* */
	uint8_t owner[KEY_LEN];
	uint8_t my_flags;               /* MEMF_* for us */
	struct med_member *members;     /* uthash by key; includes ourselves */
	UT_hash_handle hh;
};

struct medclient *medclient_new(struct daemon *d);
void medclient_free(struct medclient *m);
/* Starts connecting (and keeps reconnecting). */
void medclient_start(struct medclient *m);
int medclient_connected(const struct medclient *m);

/* A UDP_PROBE_REPLY from the transport (only accepted from the server's address). */
void medclient_udp_receive(struct medclient *m, const struct endpoint *from, const uint8_t *pkt,
    size_t len);
/* Our public endpoint as the mediator last saw it; 0 if unknown. */
int medclient_public_endpoint(const struct medclient *m, struct endpoint *ep);

/*
 * Sends a request (req->req_id is assigned here). cb runs exactly once: with the server's
 * RESULT, or with status RES_ERR_INTERNAL and text "mediator not connected" / "mediator
 * connection lost" / "timed out" (10 s). Returns 0 or -1 (then cb is not called).
 */
typedef void (*medclient_result_cb)(void *arg, const struct msg_result *res);
int medclient_request(struct medclient *m, struct msg_request *req, medclient_result_cb cb,
    void *arg);

/* The membership view (uthash head, read-only for callers; changes only on the loop). */
const struct med_network *medclient_networks(const struct medclient *m);

/*
 * Resolves a peer name as a user would type it: a nick (case-insensitive, in any of our
 * networks), a dotted virtual address, or a node id (hex of the key, any unique prefix of at
 * least 8 digits). Returns 0 and fills key/addr, or -1 (unknown or ambiguous).
 */
int medclient_resolve(const struct medclient *m, const char *name, uint8_t key[KEY_LEN],
    uint32_t *addr);

#endif
