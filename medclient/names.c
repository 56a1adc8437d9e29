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
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/ip4.h"
#include "crypto/identity.h"
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

/* A name as typed, parsed once: which member fields it may match. */
struct name_query {
	char name[NAME_INPUT_MAX + 1];
	size_t len;
	int is_hex;
	int is_addr;
	uint32_t addr;
};

static int
query_parse(struct name_query *q, const char *typed)
{
	int nl = medclient_name_normalize(typed, q->name, sizeof(q->name));
	size_t i;

	if (nl <= 0)
		return -1;
	q->len = (size_t)nl;
	q->is_hex = q->len >= MEDCLIENT_ID_PREFIX_MIN && q->len <= 2 * KEY_LEN;
	for (i = 0; i < q->len && q->is_hex; i++)
		if (!isxdigit((unsigned char)q->name[i]))
			q->is_hex = 0;
	q->is_addr = ip4_parse(q->name, &q->addr) == 0;
	return 0;
}

static int
query_matches(const struct name_query *q, const struct med_member *mem)
{
	return (mem->nick[0] && strcasecmp(mem->nick, q->name) == 0) ||
	    (q->is_addr && mem->address == q->addr) ||
	    (q->is_hex && hex_prefix_match(q->name, q->len, mem->key));
}

/* Folds the members of n matching q into *found; -1 once two distinct keys matched. */
static int
query_scan(const struct name_query *q, const struct med_network *n,
    const struct med_member **found)
{
	const struct med_member *mem;

	for (mem = n->members; mem; mem = mem->hh.next) {
		if (!query_matches(q, mem))
			continue;
		if (*found && memcmp((*found)->key, mem->key, KEY_LEN) != 0)
			return -1;      /* ambiguous */
		*found = mem;
	}
	return 0;
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
	const struct med_member *found = NULL;
	struct name_query q;

	if (query_parse(&q, typed) != 0)
		return -1;
	for (n = m->nets; n; n = n->hh.next)
		if (query_scan(&q, n, &found) != 0)
			return -1;
	if (!found)
		return -1;
	memcpy(key, found->key, KEY_LEN);
	*addr = found->address;
	return 0;
}

/* A nick that can stand as a DNS label: letters, digits, '-' and '_' (as real LAN names). */
static int
is_label(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

int
medclient_name_of(const struct medclient *m, uint32_t vaddr, char *out, size_t cap)
{
	const struct med_network *n;
	const struct med_member *mem, *found = NULL;
	uint8_t key[KEY_LEN];
	uint32_t addr;
	char id[17];
	int len;

	for (n = m->nets; n && !found; n = n->hh.next)
		for (mem = n->members; mem && !found; mem = mem->hh.next)
			if (vaddr != 0 && mem->address == vaddr)
				found = mem;
	if (!found)
		return -1;
	/* the nick only when it resolves back to this very member */
	if (is_label(found->nick) && medclient_resolve(m, found->nick, key, &addr) == 0 &&
	    memcmp(key, found->key, KEY_LEN) == 0) {
		len = snprintf(out, cap, "%s%s", found->nick, shoal_suffix);
	} else {
		hex_encode(found->key, 8, id);
		len = snprintf(out, cap, "%s%s", id, shoal_suffix);
	}
	return len < 0 || (size_t)len >= cap ? -1 : 0;
}

int
medclient_resolve_in(const struct med_network *n, const char *typed, uint8_t key[KEY_LEN])
{
	const struct med_member *found = NULL;
	struct name_query q;

	if (query_parse(&q, typed) != 0)
		return 0;
	if (query_scan(&q, n, &found) != 0)
		return -1;
	if (!found)
		return 0;
	memcpy(key, found->key, KEY_LEN);
	return 1;
}
