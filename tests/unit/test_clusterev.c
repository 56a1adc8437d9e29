/*
 * test_clusterev: the NOTIFY lines between mediator instances (server/clusterev.h), the forms
 * a fuzzer cannot judge: an `n` event carries the node's endpoints ("+HEX") when it is
 * online, and only an `n` event may; a `d` event names an instance and nothing else.
 */
#include "config.h"

#include <string.h>

#include "server/clusterev.h"
#include "tests/unit/unit.h"

#define INST "0123456789abcdef"
#define KEYHEX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void
test_node_endpoints(void)
{
	struct cluster_event e;
	char out[CLUSTEREV_MAX];

	CHECK_EQ(cluster_event_decode("n " INST " 1 " KEYHEX " +0a1b", &e), 0);
	CHECK_EQ(e.kind, 'n');
	CHECK_EQ(e.val, 1);
	CHECK_EQ(e.eps_len, 2);
	CHECK_EQ(e.eps[0], 0x0a);
	CHECK_EQ(e.eps[1], 0x1b);
	CHECK_EQ(e.has_network, 0);
	CHECK(cluster_event_encode(&e, out, sizeof(out)) > 0);
	CHECK(strcmp(out, "n " INST " 1 " KEYHEX " +0a1b") == 0);
	CHECK_EQ(cluster_event_decode("n " INST " 0 " KEYHEX " -", &e), 0);
	CHECK_EQ(e.eps_len, 0);                         /* offline */
	/* odd, uppercase, empty, on another kind */
	CHECK_EQ(cluster_event_decode("n " INST " 0 " KEYHEX " +0a1", &e), -1);
	CHECK_EQ(cluster_event_decode("n " INST " 0 " KEYHEX " +0A1B", &e), -1);
	CHECK_EQ(cluster_event_decode("n " INST " 0 " KEYHEX " +", &e), -1);
	CHECK_EQ(cluster_event_decode("m " INST " 0 " KEYHEX " +0a1b", &e), -1);
	/* the largest encoding fits the line; one byte more does not encode */
	memset(&e, 0, sizeof(e));
	e.kind = 'n';
	memcpy(e.instance, INST, sizeof(e.instance));
	e.has_key = 1;
	memset(e.eps, 0xff, sizeof(e.eps));
	e.eps_len = CLUSTEREV_EPS_MAX;
	CHECK(cluster_event_encode(&e, out, sizeof(out)) > 0);
	CHECK_EQ(cluster_event_decode(out, &e), 0);
	CHECK_EQ(e.eps_len, CLUSTEREV_EPS_MAX);
	e.eps_len = CLUSTEREV_EPS_MAX + 1;
	CHECK_EQ(cluster_event_encode(&e, out, sizeof(out)), -1);
	e.eps_len = 2;
	e.kind = 'm';
	CHECK_EQ(cluster_event_encode(&e, out, sizeof(out)), -1);
}

/* d: an instance's nodes all went offline; the instance alone, nothing else on the line */
static void
test_instance_down(void)
{
	struct cluster_event e;
	char out[CLUSTEREV_MAX];

	CHECK_EQ(cluster_event_decode("d " INST " 0 - -", &e), 0);
	CHECK_EQ(e.kind, CLUSTER_DOWN);
	CHECK(strcmp(e.instance, INST) == 0);
	CHECK(cluster_event_encode(&e, out, sizeof(out)) > 0);
	CHECK(strcmp(out, "d " INST " 0 - -") == 0);
	CHECK_EQ(cluster_event_decode("d " INST " 1 - -", &e), -1);
	CHECK_EQ(cluster_event_decode("d " INST " 0 " KEYHEX " -", &e), -1);
	CHECK_EQ(cluster_event_decode("d " INST " 0 - =games", &e), -1);
	CHECK_EQ(cluster_event_decode("d " INST " 0 - +0a1b", &e), -1);
	CHECK_EQ(cluster_event_decode("d 0123 0 - -", &e), -1);
	memset(&e, 0, sizeof(e));
	e.kind = CLUSTER_DOWN;
	memcpy(e.instance, INST, sizeof(e.instance));
	e.has_key = 1;
	CHECK_EQ(cluster_event_encode(&e, out, sizeof(out)), -1);
}

int
main(void)
{
	RUN(test_node_endpoints);
	RUN(test_instance_down);
	return unit_finish();
}
