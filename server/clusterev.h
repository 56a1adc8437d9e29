/*
 * clusterev: the payloads of the NOTIFYs between mediator instances (docs/PROTOCOL.md 4.7),
 * one line of text each. Events: "KIND INSTANCE VAL KEY NETWORK" with KIND one of the MEDPEER_*
 * letters, INSTANCE 16 lowercase hex digits, VAL 0..255 in decimal, KEY 64 lowercase hex digits
 * or "-", NETWORK "=" and the name, or "-"; for KIND n only, "+" and the node's endpoints (a
 * MSG_MEMBER's encoding, lowercase hex) in its place: online there ("-": offline). KIND d
 * (CLUSTER_DOWN) says every node of INSTANCE is offline (it stopped, or was found dead): VAL 0,
 * no KEY, no NETWORK. For a pair
 * split over two instances (4.8):
 * "S INSTANCE SENT_MS TO SIDE", one node's punch side for every instance (TO: zeros, or the
 * peer a PUNCH_REQUEST named), and
 * "F INSTANCE TO MSG", a MSG_PUNCH or MSG_RELAY_GRANT that instance forwards to TO; SENT_MS is
 * the sender's wall clock in decimal milliseconds, SIDE and MSG lowercase hex of binary forms.
 * Pure: no database, no mediator.
 */
#ifndef SHOAL_SERVER_CLUSTEREV_H
#define SHOAL_SERVER_CLUSTEREV_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"
#include "server/punchplan.h"

/* CLUSTEREV_EPS_MAX: the endpoints' encoding at most (a MSG_MEMBER, under 600 bytes). */
enum { CLUSTER_ID_LEN = 16, CLUSTEREV_EPS_MAX = 1024,
    CLUSTEREV_MAX = 1 + 1 + CLUSTER_ID_LEN + 1 + 3 + 1 + 2 * KEY_LEN + 1 + 1 +
    2 * CLUSTEREV_EPS_MAX + 1 };

struct cluster_event {
	char kind;                      /* MEDPEER_* (server/mediator.h) */
	char instance[CLUSTER_ID_LEN + 1];
	uint8_t val;
	int has_key;
	uint8_t key[KEY_LEN];
	int has_network;
	char network[NAME_MAX_LEN + 1];
	size_t eps_len;                 /* > 0: KIND n, online at these endpoints (opaque here) */
	uint8_t eps[CLUSTEREV_EPS_MAX];
};

/* Not a MEDPEER_* letter: about instances, not nodes (cluster.c turns it into node events). */
enum { CLUSTER_DOWN = 'd' };

/* The line for e into out (cap >= CLUSTEREV_MAX): its length, or -1 when e is invalid. */
int cluster_event_encode(const struct cluster_event *e, char *out, size_t cap);
/* Parses a line; 0, or -1 on anything but the exact form above. */
int cluster_event_decode(const char *in, struct cluster_event *e);

/* The first byte of the pair payloads: any other line is an event. */
enum { CLUSTER_SIDE = 'S', CLUSTER_FWD = 'F', CLUSTERPAIR_MAX = 2048 };

struct cluster_side {                    /* "S ...": a punch side, for every instance */
	char instance[CLUSTER_ID_LEN + 1];
	uint64_t sent_ms;               /* the sender's wall clock, for the hop's delay */
	uint8_t to[KEY_LEN];
	struct punch_side side;         /* its key is the sending node's */
};

struct cluster_fwd {                     /* "F ...": for TO, from a plan or grant made elsewhere */
	char instance[CLUSTER_ID_LEN + 1];
	uint8_t to[KEY_LEN];
	struct msg msg;                 /* MSG_PUNCH or MSG_RELAY_GRANT only */
};

/* The line into out (cap >= CLUSTERPAIR_MAX): its length, or -1 when invalid. */
int cluster_side_encode(const struct cluster_side *s, char *out, size_t cap);
int cluster_fwd_encode(const struct cluster_fwd *f, char *out, size_t cap);
/* 0, or -1 on anything but the exact form (the binary parts as strictly as their codecs). */
int cluster_side_decode(const char *in, struct cluster_side *s);
int cluster_fwd_decode(const char *in, struct cluster_fwd *f);

#endif
