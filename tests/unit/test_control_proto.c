/* Unit tests for daemon/control_proto: request validation, table-driven. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "control/control_proto.h"
#include "tests/unit/unit.h"

/* Lines that must parse, with the command they become. */
static const struct {
	const char *line;
	enum ctl_cmd cmd;
} good[] = {
	{ "{\"id\":1,\"cmd\":\"status\"}", CTL_STATUS },
	{ " {\"cmd\":\"list\",\"id\":0} ", CTL_LIST },
	{ "{\"id\":3,\"cmd\":\"set-nick\",\"nick\":\"alice\"}", CTL_SET_NICK },
	{ "{\"id\":4,\"cmd\":\"create\",\"network\":\"home-lan\"}", CTL_CREATE },
	{ "{\"id\":5,\"cmd\":\"create\",\"network\":\"n\",\"password\":\"pw\"}", CTL_CREATE },
	{ "{\"id\":6,\"cmd\":\"join\",\"network\":\"n\",\"password\":\"\"}", CTL_JOIN },
	{ "{\"id\":7,\"cmd\":\"leave\",\"network\":\"n\"}", CTL_LEAVE },
	{ "{\"id\":8,\"cmd\":\"go-online\",\"network\":\"n\"}", CTL_GO_ONLINE },
	{ "{\"id\":9,\"cmd\":\"go-offline\",\"network\":\"n\"}", CTL_GO_OFFLINE },
	{ "{\"id\":10,\"cmd\":\"delete\",\"network\":\"n\"}", CTL_DELETE },
	{ "{\"id\":11,\"cmd\":\"set-pass\",\"network\":\"n\",\"password\":\"\"}", CTL_SET_PASS },
	{ "{\"id\":12,\"cmd\":\"set-access\",\"network\":\"n\",\"access\":\"manual\"}",
	    CTL_SET_ACCESS },
	{ "{\"id\":13,\"cmd\":\"approve\",\"network\":\"n\",\"peer\":\"bob\"}", CTL_APPROVE },
	{ "{\"id\":14,\"cmd\":\"reject\",\"network\":\"n\",\"peer\":\"5.0.0.3\"}", CTL_REJECT },
	{ "{\"id\":15,\"cmd\":\"evict\",\"network\":\"n\",\"peer\":\"0123abcd\"}", CTL_EVICT },
	{ "{\"id\":16,\"cmd\":\"expose\",\"port\":65535}", CTL_EXPOSE },
	{ "{\"id\":17,\"cmd\":\"expose\",\"port\":53,\"udp\":true,\"remove\":true}", CTL_EXPOSE },
	{ "{\"id\":18,\"cmd\":\"forward\",\"local_port\":8080,\"peer\":\"bob\",\"port\":80}",
	    CTL_FORWARD },
	{ "{\"id\":19,\"cmd\":\"forward\",\"local_port\":8080,\"remove\":true}", CTL_FORWARD },
	{ "{\"id\":20,\"cmd\":\"ping\",\"peer\":\"bob\"}", CTL_PING },
	{ "{\"id\":-5,\"cmd\":\"ping\",\"peer\":\"bob\",\"count\":100}", CTL_PING },
	{ "{\"id\":30,\"cmd\":\"chat\",\"network\":\"n\",\"text\":\"hi\"}", CTL_CHAT },
	{ "{\"id\":31,\"cmd\":\"chat\",\"peer\":\"bob\",\"text\":\"hi\"}", CTL_CHAT },
	{ "{\"id\":32,\"cmd\":\"chat-follow\",\"after\":9007199254740992}", CTL_CHAT_FOLLOW },
	{ "{\"id\":33,\"cmd\":\"chat-history\",\"peer\":\"bob\",\"limit\":500}",
	    CTL_CHAT_HISTORY },
	{ "{\"id\":22,\"cmd\":\"set-nick\",\"nick\":\"h\\u00e9l\\u00e8ne\"}", CTL_SET_NICK },
	{ "{\"id\":34,\"cmd\":\"watch\"}", CTL_WATCH },
	{ "{\"id\":35,\"cmd\":\"watch\",\"after\":17}", CTL_WATCH },
};

/* Lines that must be refused: the error must contain the given text. has_id: whether the id
 * can still be echoed. */
static const struct {
	const char *line;
	int has_id;
	const char *err;
} bad[] = {
	{ "", 0, "bad JSON" },
	{ "{", 0, "bad JSON" },
	{ "[1,2]", 0, "JSON object" },
	{ "\"status\"", 0, "bad JSON" },  /* jansson refuses non-container roots by default */
	{ "{\"cmd\":\"status\"}", 0, "missing field \"id\"" },
	{ "{\"id\":\"1\",\"cmd\":\"status\"}", 0, "\"id\" must be an integer" },
	{ "{\"id\":1.5,\"cmd\":\"status\"}", 0, "\"id\" must be an integer" },
	{ "{\"id\":1}", 1, "missing field \"cmd\"" },
	{ "{\"id\":1,\"cmd\":7}", 1, "\"cmd\" must be a string" },
	{ "{\"id\":1,\"cmd\":\"reboot\"}", 1, "unknown command \"reboot\"" },
	{ "{\"id\":1,\"cmd\":\"status\",\"network\":\"n\"}", 1, "unexpected field \"network\"" },
	{ "{\"id\":1,\"cmd\":\"status\",\"bogus\":1}", 1, "unexpected field \"bogus\"" },
	{ "{\"id\":1,\"cmd\":\"status\",\"id\":2}", 0, "duplicate" },
	{ "{\"id\":1,\"cmd\":\"join\"}", 1, "missing field \"network\"" },
	{ "{\"id\":1,\"cmd\":\"join\",\"network\":\"\"}", 1, "must not be empty" },
	{ "{\"id\":1,\"cmd\":\"join\",\"network\":5}", 1, "\"network\" must be a string" },
	{ "{\"id\":1,\"cmd\":\"join\",\"network\":\"a\\nb\"}", 1, "control characters" },
	{ "{\"id\":1,\"cmd\":\"join\",\"network\":\"a\\u0000b\"}", 0, "bad JSON" },
	{ "{\"id\":1,\"cmd\":\"join\",\"network\":"
	  "\"0123456789012345678901234567890123456789012345678901234567890123X\"}", 1,
	  "too long" },
	{ "{\"id\":1,\"cmd\":\"set-pass\",\"network\":\"n\"}", 1, "missing field \"password\"" },
	{ "{\"id\":1,\"cmd\":\"set-nick\",\"nick\":\"\"}", 1, "must not be empty" },
	{ "{\"id\":1,\"cmd\":\"set-access\",\"network\":\"n\",\"access\":\"open\"}", 1,
	  "\"lock\", \"unlock\"" },
	{ "{\"id\":1,\"cmd\":\"set-access\",\"network\":\"n\"}", 1, "missing field \"access\"" },
	{ "{\"id\":1,\"cmd\":\"approve\",\"network\":\"n\"}", 1, "missing field \"peer\"" },
	{ "{\"id\":1,\"cmd\":\"expose\"}", 1, "missing field \"port\"" },
	{ "{\"id\":1,\"cmd\":\"expose\",\"port\":0}", 1, "between 1 and 65535" },
	{ "{\"id\":1,\"cmd\":\"expose\",\"port\":65536}", 1, "between 1 and 65535" },
	{ "{\"id\":1,\"cmd\":\"expose\",\"port\":\"22\"}", 1, "must be an integer" },
	{ "{\"id\":1,\"cmd\":\"expose\",\"port\":22,\"udp\":1}", 1, "true or false" },
	{ "{\"id\":1,\"cmd\":\"forward\",\"local_port\":1,\"peer\":\"b\"}", 1,
	  "missing field \"port\"" },
	{ "{\"id\":1,\"cmd\":\"forward\",\"local_port\":1,\"remove\":false}", 1,
	  "missing field \"peer\"" },
	{ "{\"id\":1,\"cmd\":\"forward\",\"peer\":\"b\",\"port\":1}", 1,
	  "missing field \"local_port\"" },
	{ "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"b\",\"count\":0}", 1, "between 1 and 100" },
	{ "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"b\",\"count\":101}", 1, "between 1 and 100" },
	{ "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"b\",\"count\":null}", 1, "must be an integer" },
	{ "{\"id\":1,\"cmd\":\"ping\"} trailing", 0, "bad JSON" },
	{ "{\"id\":1,\"cmd\":\"chat\",\"text\":\"hi\"}", 1, "exactly one of" },
	{ "{\"id\":1,\"cmd\":\"chat\",\"network\":\"n\",\"peer\":\"b\",\"text\":\"hi\"}", 1,
	    "exactly one of" },
	{ "{\"id\":1,\"cmd\":\"chat\",\"network\":\"n\",\"text\":\"\"}", 1, "must not be empty" },
	{ "{\"id\":1,\"cmd\":\"chat-history\"}", 1, "exactly one of" },
	{ "{\"id\":1,\"cmd\":\"chat-history\",\"network\":\"n\",\"limit\":501}", 1,
	    "between 1 and 500" },
	{ "{\"id\":1,\"cmd\":\"chat-follow\",\"after\":-1}", 1, "between 0 and" },
	{ "{\"id\":1,\"cmd\":\"watch\",\"network\":\"n\"}", 1, "network" },
	{ "{\"id\":1,\"cmd\":\"watch\",\"after\":\"3\"}", 1, "after" },
};

static void
test_good(void)
{
	struct ctl_request rq;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (ctl_request_parse(good[i].line, strlen(good[i].line), &rq, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "good[%zu] refused: %s\n", i, err);
			CHECK(0);
			continue;
		}
		CHECK_EQ(rq.cmd, good[i].cmd);
		CHECK(rq.has_id);
	}
}

static void
test_bad(void)
{
	struct ctl_request rq;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (ctl_request_parse(bad[i].line, strlen(bad[i].line), &rq, err,
		    sizeof(err)) != -1) {
			fprintf(stderr, "bad[%zu] accepted: %s\n", i, bad[i].line);
			CHECK(0);
			continue;
		}
		if (!strstr(err, bad[i].err) || rq.has_id != bad[i].has_id) {
			fprintf(stderr, "bad[%zu]: error \"%s\" has_id=%d, want \"%s\" has_id=%d\n",
			    i, err, rq.has_id, bad[i].err, bad[i].has_id);
			CHECK(0);
		}
		CHECK(strchr(err, '\n') == NULL);
	}
}

static void
test_fields(void)
{
	static const char l1[] = "{\"id\":42,\"cmd\":\"forward\",\"local_port\":8080,"
	    "\"peer\":\"bob\",\"port\":80}";
	static const char l2[] = "{\"id\":9007199254740993,\"cmd\":\"set-access\","
	    "\"network\":\"home-lan\",\"access\":\"unlock\"}";
	static const char l3[] = "{\"id\":1,\"cmd\":\"ping\",\"peer\":\"5.0.0.3\"}";
	static const char l4[] = "{\"id\":1,\"cmd\":\"join\",\"network\":\"n\",\"password\":\"s3\"}";
	struct ctl_request rq;
	char err[256];

	CHECK_EQ(ctl_request_parse(l1, sizeof(l1) - 1, &rq, err, sizeof(err)), 0);
	CHECK_EQ(rq.id, 42);
	CHECK_EQ(rq.local_port, 8080);
	CHECK_EQ(rq.port, 80);
	CHECK(strcmp(rq.peer, "bob") == 0);
	CHECK_EQ(rq.remove, 0);

	CHECK_EQ(ctl_request_parse(l2, sizeof(l2) - 1, &rq, err, sizeof(err)), 0);
	CHECK(rq.id == 9007199254740993LL);
	CHECK_EQ(rq.access, CTL_ACCESS_UNLOCK);
	CHECK(strcmp(rq.network, "home-lan") == 0);
	CHECK(strcmp(ctl_access_name(rq.access), "unlock") == 0);

	CHECK_EQ(ctl_request_parse(l3, sizeof(l3) - 1, &rq, err, sizeof(err)), 0);
	CHECK_EQ(rq.count, CTL_PING_DEFAULT);

	CHECK_EQ(ctl_request_parse(l4, sizeof(l4) - 1, &rq, err, sizeof(err)), 0);
	CHECK(strcmp(rq.password, "s3") == 0);
	CHECK(strcmp(ctl_cmd_name(rq.cmd), "join") == 0);
}

/* The line is length-delimited: bytes after len are not read, no NUL needed. */
static void
test_length_bound(void)
{
	static const char l[] = "{\"id\":1,\"cmd\":\"status\"}GARBAGE";
	struct ctl_request rq;
	char err[256];

	CHECK_EQ(ctl_request_parse(l, sizeof(l) - 1 - 7, &rq, err, sizeof(err)), 0);
	CHECK_EQ(ctl_request_parse(l, sizeof(l) - 1, &rq, err, sizeof(err)), -1);
	CHECK_EQ(ctl_request_parse(l, CTL_LINE_MAX + 1, &rq, err, sizeof(err)), -1);
	CHECK(strstr(err, "longer than") != NULL);
}

/* Errors quote client bytes; they must stay printable single lines. */
static void
test_error_printable(void)
{
	static const char l[] = "{\"id\":1,\"cmd\":\"st\\u0001\\u00e9\"}";
	static const char l2[] = "{\"id\":1,\xff}";
	struct ctl_request rq;
	char err[256];
	size_t i;

	CHECK_EQ(ctl_request_parse(l, sizeof(l) - 1, &rq, err, sizeof(err)), -1);
	for (i = 0; err[i]; i++)
		CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
	CHECK_EQ(ctl_request_parse(l2, sizeof(l2) - 1, &rq, err, sizeof(err)), -1);
	for (i = 0; err[i]; i++)
		CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] < 0x7f);
}

int
main(void)
{
	RUN(test_good);
	RUN(test_bad);
	RUN(test_fields);
	RUN(test_length_bound);
	RUN(test_error_printable);
	return unit_finish();
}
