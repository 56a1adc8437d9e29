/*
 * names: the one resolver of peer names. Whatever a user types (SOCKS5 host, `shoal run`'s
 * getaddrinfo, the CLI's PEER) reaches medclient_resolve, directly or through base/peerdir.h,
 * so every front end accepts the same spellings: a nick (any case), NICK.shoal, either with a
 * trailing dot (what resolvers hand over for fully qualified names), a node id prefix of at
 * least MEDCLIENT_ID_PREFIX_MIN hex digits, or a member's dotted virtual address.
 *
 * Owns nothing: reads the view. Must not: decide authorization (a name of a pending member
 * resolves; whether packets may flow is authz.c's business).
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/ip4.h"
#include "medclient/medclient_int.h"

/* The suffix that marks our names in a DNS-like namespace; compared case-insensitively. */
static const char shoal_suffix[] = ".shoal";

/* Longest name worth looking at: a DNS name; nicks, ids and addresses are all shorter. */
enum { NAME_INPUT_MAX = 255 };

int
medclient_name_normalize(const char *in, char *out, size_t cap)
{
	size_t len = strlen(in), sl = sizeof(shoal_suffix) - 1;

	if (len > 0 && in[len - 1] == '.')
		len--;
	/* Only a suffix with something before it: ".shoal" alone stays as typed. */
	if (len > sl && strncasecmp(in + len - sl, shoal_suffix, sl) == 0)
		len -= sl;
	if (len + 1 > cap) {
		if (cap > 0)
			out[0] = '\0';
		return -1;
	}
	memmove(out, in, len);
	out[len] = '\0';
	return (int)len;
}

static int
hex_prefix_match(const char *hex, size_t n, const uint8_t key[KEY_LEN])
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t nib = (i & 1) ? key[i / 2] & 15 : key[i / 2] >> 4;

		if (tolower((unsigned char)hex[i]) != hx[nib])
			return 0;
	}
	return 1;
}

/*
 * Every member of every network is a candidate if the name matches it as a nick, as its
 * dotted address, or as a prefix of its node id; the answer must be one distinct key.
 */
int
medclient_resolve(const struct medclient *m, const char *typed, uint8_t key[KEY_LEN],
    uint32_t *addr)
{
	const struct med_network *n;
	const struct med_member *mem, *found = NULL;
	char name[NAME_INPUT_MAX + 1];
	size_t len, i;
	int is_addr, is_hex;
	uint32_t a = 0;
	int nl = medclient_name_normalize(typed, name, sizeof(name));

	if (nl <= 0)
		return -1;
	len = (size_t)nl;
	is_hex = len >= MEDCLIENT_ID_PREFIX_MIN && len <= 2 * KEY_LEN;
	for (i = 0; i < len && is_hex; i++)
		if (!isxdigit((unsigned char)name[i]))
			is_hex = 0;
	is_addr = ip4_parse(name, &a) == 0;
	for (n = m->nets; n; n = n->hh.next) {
		for (mem = n->members; mem; mem = mem->hh.next) {
			if (strcasecmp(mem->nick, name) != 0 &&
			    !(is_addr && mem->address == a) &&
			    !(is_hex && hex_prefix_match(name, len, mem->key)))
				continue;
			if (found && memcmp(found->key, mem->key, KEY_LEN) != 0)
				return -1;      /* ambiguous */
			found = mem;
		}
	}
	if (!found)
		return -1;
	memcpy(key, found->key, KEY_LEN);
	*addr = found->address;
	return 0;
}
