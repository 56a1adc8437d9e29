/*
 * peer: the table of peers we may talk to, each with its Noise sessions (current, previous,
 * next), its candidate endpoints and the path in use. Peers are looked up by public key, by
 * virtual address, and (for data packets) by our random receiver index.
 *
 * Only nodes the mediator vouches for (sharing an online network with us) are in the table;
 * a handshake from any other key is dropped and counted. Authorization outlives the mediator
 * connection: if the mediator goes away, sessions keep running.
 *
 * Path layer: a peer has candidate endpoints (observed by the mediator, LAN addresses); the
 * handshake is sent to all of them and the one a valid reply comes from becomes the path.
 * Hole punching and relays add candidates and path kinds here without touching sessions.
 *
 * The peer layer knows nothing of the daemon or the netstack. It is given, at peers_new:
 *   the loop its timers run on, our long-term keypair, the transport it sends through and
 *   our place on the virtual network (struct vnet, read on every broadcast decision);
 * and it calls out only through struct peers_ops (authenticated IPv4 packets in, a revoked
 * peer's connections to reset, a path that stopped answering). Whoever wires it
 * (daemon/wiring.c, the tests) decides where those go.
 * Owns: every struct peer and its sessions (keys wiped on removal). Borrows (must outlive
 * the table): the loop, the keypair, the transport, the vnet.
 */
#ifndef SHOAL_PEER_H
#define SHOAL_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "mproto/msg.h"

struct ev_loop;
struct noise_keypair;
struct transport;
struct vnet;
struct peers;

/* What the peer layer hands back to its owner. deliver and peer_gone are required; both may
 * call back into peers_* (e.g. the netstack answering with peers_send_ip). */
struct peers_ops {
	/* An authenticated IPv4 packet from a peer (its source already checked): the netstack
	 * takes it. */
	void (*deliver)(void *arg, const uint8_t *pkt, size_t len);
	/* A peer was revoked: reset every connection with vaddr. Called just before its
	 * sessions are torn down (so the resets can still reach it); it is out of the table
	 * right after the call. Also called (the peer staying in the table) when its path has
	 * been lost for PATH_LOST_FAST (10 s): programs then see their connections with it reset,
	 * as on a pulled cable, instead of hanging until their own timeouts; once per loss. */
	void (*peer_gone)(void *arg, uint32_t vaddr);
	/* The path to this peer stopped answering (PROTOCOL.md 2.4: pings in a row with nothing
	 * authenticated back; a peer we send nothing to is never called dead): ask the mediator
	 * for a new punch (MSG_PUNCH_REQUEST). Called once when the path is lost and again every
	 * PATH_LOST_REASK (20 s) while it stays lost. Optional (NULL: nobody is told). It may
	 * call peers_* except peers_revoke of this key and peers_free. */
	void (*path_lost)(void *arg, const uint8_t key[KEY_LEN]);
};

/*
 * key, tp and vn are borrowed, not copied: the caller keeps them alive (and unmoved) until
 * peers_free. The secret key is therefore held once, by its owner, who wipes it. vn may
 * change under us (a new address from the mediator) and may have addr 0 (not known yet).
 * ops is copied. NULL on allocation failure or a missing callback.
 */
struct peers *peers_new(struct ev_loop *loop, const struct noise_keypair *key,
    struct transport *tp, const struct vnet *vn, const struct peers_ops *ops, void *arg);
void peers_free(struct peers *ps);

/* 1 if vaddr is an authorized peer (in the table). Used as the peerdir is_peer answer. */
int peers_is_peer(const struct peers *ps, uint32_t vaddr);

/* (Re)authorize a node: add it or update its address and candidates. Starts a handshake if
 * there is traffic for it or it is new. */
void peers_authorize(struct peers *ps, const uint8_t key[KEY_LEN], uint32_t vaddr,
    const struct endpoint *eps, size_t n_eps);
/* No shared online network any more: tear down its sessions at once and forget it. */
void peers_revoke(struct peers *ps, const uint8_t key[KEY_LEN]);

/* A datagram of type UDP_HANDSHAKE_INIT, UDP_HANDSHAKE_RESP or UDP_DATA from the transport. */
void peers_receive(struct peers *ps, const struct endpoint *from, uint8_t *pkt, size_t len);

/* An IPv4 packet from the netstack: to one peer (dst is its vaddr) or, for a broadcast or
 * multicast dst, to every authorized peer. Unknown destinations are dropped and counted:
 * returns -1 for them (no such peer: the caller may refuse connections to dst), else 0. */
int peers_send_ip(struct peers *ps, uint32_t dst, const uint8_t *pkt, size_t len);

/*
 * Hole punching (PROTOCOL.md 3.2), as the mediator's PUNCH for this peer asks: from start_s
 * seconds from now, every interval_s for `rounds` rounds, send the peer's handshake
 * initiation (the one in flight, byte for byte, or a new one if none is) to every target and
 * every candidate endpoint; stop at once when a usable session exists. The targets stay extra
 * handshake targets until 30 s after the last round. A new call replaces the running punch;
 * n == 0 or rounds == 0 only cancels it (the mediator's strategy "none"). Bounds: at most
 * PUNCH_MAX_TARGETS targets and 10 rounds are used, start_s is capped at 5 s, interval_s is
 * taken within 20 ms..2 s. Ignored (debug log) for a key not in the table.
 */
void peers_punch(struct peers *ps, const uint8_t key[KEY_LEN], const struct endpoint *targets,
    size_t n, double start_s, double interval_s, unsigned rounds);

/*
 * Birthday punching (PROTOCOL.md 3.2): added to the punch peers_punch just started for this
 * peer (call right after it; without a running punch it does nothing). sockets > 0: we are
 * the random-port side: open that many extra sockets (fewer if descriptors are short) and
 * send every round's initiation from each to the punch targets. probes > 0: send the
 * initiation to the first target's address at `probes` distinct random ports of
 * port_lo..port_hi, `rate` a second, from the punch's start. A peer that has a direct path
 * already is left alone. The attempt ends with a session (the socket it came through stays,
 * the others close), a new plan, BDAY_LINGER after the last round, or the peer.
 */
struct peers_birthday {
	unsigned sockets;
	unsigned probes, rate;
	uint16_t port_lo, port_hi;
};
void peers_birthday(struct peers *ps, const uint8_t key[KEY_LEN],
    const struct peers_birthday *bd);

/*
 * The relay path to the peer key (PROTOCOL.md 8): ep names a link of the relay client (its via),
 * NULL removes it. It is the fallback: packets go there while no direct path answers (a
 * handshake starts there at once if there is no session), and direct again as soon as a
 * direct endpoint authenticates; a direct path that stops answering while packets flow is left
 * within DIRECT_SILENT_MAX (1.2 s). Same session throughout. Unknown keys are ignored.
 */
void peers_set_relay(struct peers *ps, const uint8_t key[KEY_LEN], const struct endpoint *ep);

enum path_kind { PATH_NONE = 0, PATH_DIRECT = 1, PATH_RELAY = 2 };
const char *path_kind_name(enum path_kind k);   /* "none", "direct", "relay" */

struct peer_status {
	enum path_kind path;
	struct endpoint endpoint;       /* current path endpoint, if any */
	const char *transport;          /* what carries it: "udp", or a link's kind ("tcp");
	                                 * NULL (and path none) when that link is gone */
	double rtt_ms;                  /* smoothed, from keepalive pings; <0 unknown */
	uint64_t rx_bytes, tx_bytes;
	double last_rx;                 /* ev_now of the last authenticated packet, 0 never */
	int lost;                       /* the path stopped answering (PROTOCOL.md 2.4) */
	int direct_lost;                /* a direct path answered and went silent: the relay
	                                 * carries the pair meanwhile (PROTOCOL.md 8) */
	int punch_failed;               /* relayed, and the mediator's punch ran out without a
	                                 * direct path */
};
/* -1 if the key is not in the table. */
int peers_status(struct peers *ps, const uint8_t key[KEY_LEN], struct peer_status *st);

/* Pings the peer at vaddr through its session; cb gets the RTT in ms, or -1 after a 3 s
 * timeout or if the peer is unknown. Returns 0, or -1 with errno ENOENT (vaddr is not a
 * peer), EBUSY (PING_PENDING_MAX pings to it in flight) or ENOMEM. */
typedef void (*peers_ping_cb)(void *arg, double rtt_ms);
int peers_ping(struct peers *ps, uint32_t vaddr, peers_ping_cb cb, void *arg);

/*
 * How often a usable session is refreshed when idle (the periodic INNER_PING, both ways, so it
 * also keeps both NATs' bindings open): PING_INTERVAL by default, shorter when our NAT drops
 * idle bindings sooner. Clamped to [PEERS_REFRESH_MIN, PING_INTERVAL]; applies at once to
 * every peer.
 */
#define PEERS_REFRESH_MIN 1.0
void peers_set_refresh(struct peers *ps, double seconds);

struct peers_stats {
	uint64_t rx_data, tx_data, rx_dropped_replay, rx_dropped_auth, rx_dropped_unknown,
	    rx_dropped_malformed, handshakes_done;
};
void peers_get_stats(const struct peers *ps, struct peers_stats *st);

#endif
