/*
 * fuzz_connstr: the connection string (shoald --server, shoal-server's DIR/url) and hex key
 * parsing, which read user-typed and file-stored configuration. A string that parses must
 * format back to a string that parses to the same host, port and key; the same for the list
 * form (several mediator addresses), whose format must also be exactly what was parsed once
 * the input is in canonical form, and which agrees with the one-address parser on one address.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[1024], host[256], host2[256], err[256], again[1024];
	uint8_t pub[KEY_LEN], pub2[KEY_LEN], key[KEY_LEN];
	uint16_t port, port2;
	struct conn_string cs, cs2;
	char again2[1024];
	int single_ok, list_ok;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (hex_decode(s, key, sizeof(key)) == 0) {
		char hex[2 * KEY_LEN + 1];

		hex_encode(key, sizeof(key), hex);
		if (hex_decode(hex, pub2, sizeof(pub2)) != 0 || memcmp(key, pub2, sizeof(key)) != 0)
			abort();
	}
	single_ok = conn_string_parse(s, host, sizeof(host), &port, pub, err, sizeof(err)) == 0;
	if (!single_ok && err[0] == '\0')
		abort();            /* every rejection says why */
	err[0] = '\0';
	list_ok = conn_string_parse_list(s, &cs, err, sizeof(err)) == 0;
	if (!list_ok && err[0] == '\0')
		abort();
	/* One address: both parsers agree. */
	if (single_ok && (!list_ok || cs.n_addr != 1 || strcmp(cs.addr[0].host, host) != 0 ||
	    cs.addr[0].port != port || memcmp(cs.pub, pub, KEY_LEN) != 0))
		abort();
	if (list_ok && cs.n_addr == 1 && !single_ok && strlen(cs.addr[0].host) < sizeof(host))
		abort();
	if (list_ok) {
		if (cs.n_addr == 0 || cs.n_addr > CONN_MAX_ADDRS)
			abort();
		if (conn_string_format_list(&cs, again2, sizeof(again2)) != 0)
			abort();    /* everything the parser accepts can be written back */
		if (conn_string_parse_list(again2, &cs2, err, sizeof(err)) != 0 ||
		    memcmp(&cs, &cs2, sizeof(cs)) != 0)
			abort();
		if (conn_string_format_list(&cs2, again, sizeof(again)) != 0 ||
		    strcmp(again, again2) != 0)
			abort();    /* the written form is a fixed point */
	}
	if (!single_ok)
		return 0;
	if (conn_string_format(host, port, pub, again, sizeof(again)) != 0)
		return 0;           /* e.g. a host name the formatter is stricter about */
	if (conn_string_parse(again, host2, sizeof(host2), &port2, pub2, err, sizeof(err)) != 0 ||
	    strcmp(host, host2) != 0 || port != port2 || memcmp(pub, pub2, KEY_LEN) != 0)
		abort();
	return 0;
}
