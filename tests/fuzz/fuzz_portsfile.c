/*
 * fuzz_portsfile: STATE_DIR/ports as read at start-up (daemon/portsfile.c). Parsing must never
 * crash; a file that parses must format back to a file that parses to the same entries.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/portsfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ports_saved a, b;
	char err[256], *text;

	err[0] = '\0';
	if (portsfile_parse((const char *)data, size, &a, err, sizeof(err)) != 0) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	if ((text = portsfile_format(&a)) == NULL)
		return 0;
	if (portsfile_parse(text, strlen(text), &b, err, sizeof(err)) != 0 ||
	    a.n_expose != b.n_expose || a.n_forward != b.n_forward ||
	    memcmp(a.expose, b.expose, a.n_expose * sizeof(a.expose[0])) != 0 ||
	    memcmp(a.forward, b.forward, a.n_forward * sizeof(a.forward[0])) != 0)
		abort();
	free(text);
	return 0;
}
