/*
 * clusterev: the payload of the NOTIFY events between mediator instances (docs/PROTOCOL.md
 * 4.7), one line of text: "KIND INSTANCE VAL KEY NETWORK" with KIND one of the MEDPEER_*
 * letters, INSTANCE 16 lowercase hex digits, VAL 0..255 in decimal, KEY 64 lowercase hex digits
 * or "-", NETWORK "=" and the name, or "-". Pure: no database, no mediator.
 */
#ifndef SHOAL_SERVER_CLUSTEREV_H
#define SHOAL_SERVER_CLUSTEREV_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"

enum { CLUSTER_ID_LEN = 16, CLUSTEREV_MAX = 1 + 1 + CLUSTER_ID_LEN + 1 + 3 + 1 + 2 * KEY_LEN + 1 +
    1 + NAME_MAX_LEN + 1 };

struct cluster_event {
	char kind;                      /* MEDPEER_* (server/mediator.h) */
	char instance[CLUSTER_ID_LEN + 1];
	uint8_t val;
	int has_key;
	uint8_t key[KEY_LEN];
	int has_network;
	char network[NAME_MAX_LEN + 1];
};

/* The line for e into out (cap >= CLUSTEREV_MAX): its length, or -1 when e is invalid. */
int cluster_event_encode(const struct cluster_event *e, char *out, size_t cap);
/* Parses a line; 0, or -1 on anything but the exact form above. */
int cluster_event_decode(const char *in, struct cluster_event *e);

#endif
