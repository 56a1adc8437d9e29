/*
 * Unit tests for daemon/portsfile: what format writes, parse reads back exactly; damaged or
 * hostile files are refused with a reason instead of being half applied.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/portsfile.h"
#include "tests/unit/unit.h"

static void
test_roundtrip(void)
{
	static struct ports_saved a, b;
	char err[256], *text;

	memset(&a, 0, sizeof(a));
	a.n_expose = 2;
	a.expose[0] = (struct expose_info){ 8000, 0 };
	a.expose[1] = (struct expose_info){ 27015, 1 };
	a.n_forward = 1;
	a.forward[0] = (struct forward_info){ 9000, 0x05000002u, 80 };
	text = portsfile_format(&a);
	CHECK(text != NULL);
	if (!text)
		return;
	CHECK_EQ(portsfile_parse(text, strlen(text), &b, err, sizeof(err)), 0);
	CHECK_EQ(b.n_expose, 2);
	CHECK(b.expose[0].port == 8000 && !b.expose[0].udp);
	CHECK(b.expose[1].port == 27015 && b.expose[1].udp);
	CHECK_EQ(b.n_forward, 1);
	CHECK(b.forward[0].local_port == 9000 && b.forward[0].ip == 0x05000002u &&
	    b.forward[0].port == 80);
	free(text);

	/* An empty file of the current version, and one without the lists. */
	CHECK_EQ(portsfile_parse("{\"version\":1}", 13, &b, err, sizeof(err)), 0);
	CHECK(b.n_expose == 0 && b.n_forward == 0);
}

static void
test_refused(void)
{
	static const char *bad[] = {
		"",
		"[]",
		"{\"version\":2}",
		"{\"version\":1,\"exposes\":[{\"port\":0}]}",
		"{\"version\":1,\"exposes\":[{\"port\":70000}]}",
		"{\"version\":1,\"exposes\":[{\"port\":80,\"udp\":\"yes\"}]}",
		"{\"version\":1,\"exposes\":{}}",
		"{\"version\":1,\"forwards\":[{\"local_port\":9000,\"address\":\"bob\",\"port\":80}]}",
		"{\"version\":1,\"forwards\":[{\"local_port\":9000,\"address\":\"5.0.0.2\"}]}",
		"{\"version\":1,\"version\":1}",
		"{\"version\":1,\"exposes\":[{\"port\":80}]",
	};
	static struct ports_saved b;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_EQ(portsfile_parse(bad[i], strlen(bad[i]), &b, err, sizeof(err)), -1);
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
}

int
main(void)
{
	RUN(test_roundtrip);
	RUN(test_refused);
	return unit_finish();
}
