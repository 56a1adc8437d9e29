/*
 * fuzz_cli_args: arbitrary bytes as a command line (NUL-separated arguments). Parsing must
 * never crash; an accepted command line must turn into a request the daemon's limits allow.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ARGS = 16 };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *argv[MAX_ARGS + 2], err[256], *s;
	struct cli_args a;
	json_t *req;
	size_t i, start = 0;
	int argc = 1;

	if (!(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = "shoal";
	for (i = 0; i <= size && argc <= MAX_ARGS; i++)
		if (buf[i] == '\0') {
			argv[argc++] = buf + start;
			start = i + 1;
		}
	argv[argc] = NULL;
	err[0] = '\0';
	if (cli_args_parse(argc, argv, &a, err, sizeof(err)) == -1) {
		if (!err[0] || strchr(err, '\n'))
			abort();
	} else if (!a.help) {
		if (!a.cmd)
			abort();
		if ((req = cli_args_request(&a, 1))) {
			if (!(s = json_dumps(req, JSON_COMPACT)))
				abort();
			free(s);
			json_decref(req);
		}
	}
	free(buf);
	return 0;
}
