/*
 * fuzz_cluster_event: the NOTIFY payload between mediator instances (server/clusterev.c), which
 * any session of the shared database can send. A payload that decodes must encode back to the
 * same bytes (the form is canonical), and decode to the same event.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/clusterev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[CLUSTEREV_MAX], again[CLUSTEREV_MAX];
	struct cluster_event e, e2;
	int n;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (cluster_event_decode(s, &e) != 0)
		return 0;
	n = cluster_event_encode(&e, again, sizeof(again));
	if (n < 0 || strcmp(again, s) != 0)
		abort();
	if (cluster_event_decode(again, &e2) != 0 || memcmp(&e, &e2, sizeof(e)) != 0)
		abort();
	return 0;
}
