/*
 * keyid: the short form of a node key used in every log line (the first 6 bytes in hex), so
 * the mediator's and the daemons' logs name a node the same way.
 */
#ifndef SHOAL_KEYID_H
#define SHOAL_KEYID_H

#include <stdint.h>

#include "base/proto.h"

enum { KEY_SHORT_LEN = 13 };            /* 12 hex digits and the NUL */

static inline void
key_short(const uint8_t key[KEY_LEN], char out[KEY_SHORT_LEN])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < (KEY_SHORT_LEN - 1) / 2; i++) {
		out[2 * i] = hx[key[i] >> 4];
		out[2 * i + 1] = hx[key[i] & 15];
	}
	out[KEY_SHORT_LEN - 1] = '\0';
}

#endif
