/*
 * clusterev: encode and decode the instances' NOTIFY payload (clusterev.h). The decoder takes
 * nothing on trust: the payload comes from any session of the database.
 */
#include "config.h"
#include "server/clusterev.h"

#include <stdio.h>
#include <string.h>

static const char kinds[] = "nmgxwc";   /* MEDPEER_* */

static int
is_lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
hex_nibble(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* A network name as the mediator accepts one: printable ASCII, no space at either end. */
static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int
cluster_event_encode(const struct cluster_event *e, char *out, size_t cap)
{
	char key[2 * KEY_LEN + 1] = "-";
	size_t i;
	int n;

	if (e->kind == '\0' || strchr(kinds, e->kind) == NULL ||
	    strlen(e->instance) != CLUSTER_ID_LEN || !is_lower_hex(e->instance, CLUSTER_ID_LEN) ||
	    (e->has_network && !name_ok(e->network, strlen(e->network))))
		return -1;
	if (e->has_key)
		for (i = 0; i < KEY_LEN; i++)
			snprintf(key + 2 * i, 3, "%02x", e->key[i]);
	n = snprintf(out, cap, "%c %s %u %s %s%s", e->kind, e->instance, e->val, key,
	    e->has_network ? "=" : "-", e->has_network ? e->network : "");
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int
cluster_event_decode(const char *in, struct cluster_event *e)
{
	const char *p = in;
	unsigned val = 0;
	size_t i, n;

	memset(e, 0, sizeof(*e));
	if (p[0] == '\0' || strchr(kinds, p[0]) == NULL || p[1] != ' ')
		return -1;
	e->kind = p[0];
	p += 2;
	if (strlen(p) < CLUSTER_ID_LEN + 1 || !is_lower_hex(p, CLUSTER_ID_LEN) ||
	    p[CLUSTER_ID_LEN] != ' ')
		return -1;
	memcpy(e->instance, p, CLUSTER_ID_LEN);
	p += CLUSTER_ID_LEN + 1;
	for (n = 0; p[n] >= '0' && p[n] <= '9' && n < 3; n++)
		val = val * 10 + (unsigned)(p[n] - '0');
	if (n == 0 || p[n] != ' ' || val > 255 || (n > 1 && p[0] == '0'))
		return -1;
	e->val = (uint8_t)val;
	p += n + 1;
	if (p[0] == '-' && p[1] == ' ') {
		p += 2;
	} else {
		if (strlen(p) < 2 * KEY_LEN + 1 || !is_lower_hex(p, 2 * KEY_LEN) ||
		    p[2 * KEY_LEN] != ' ')
			return -1;
		for (i = 0; i < KEY_LEN; i++)
			e->key[i] = (uint8_t)(hex_nibble(p[2 * i]) << 4 | hex_nibble(p[2 * i + 1]));
		e->has_key = 1;
		p += 2 * KEY_LEN + 1;
	}
	if (p[0] == '-' && p[1] == '\0')
		return 0;
	if (p[0] != '=' || !name_ok(p + 1, strlen(p + 1)))
		return -1;
	memcpy(e->network, p + 1, strlen(p + 1) + 1);
	e->has_network = 1;
	return 0;
}
