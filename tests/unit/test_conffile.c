/*
 * test_conffile: shoald's configuration file parser. Every setting becomes the option of the
 * same name, in file order (placed before the command line's, so flags win); every kind of bad
 * line is refused with FILE:LINE naming what is wrong; a missing file is no error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/conffile.h"
#include "tests/unit/unit.h"

static int
parse(const char *text, struct conf_args *a, char *err, size_t errlen)
{
	err[0] = '\0';
	return conffile_parse(text, strlen(text), "shoald.conf", a, err, errlen);
}

static void
test_good(void)
{
	struct conf_args a;
	char err[256];

	CHECK_EQ(parse("# a comment\n\n  nick =  zero conf  \r\nsocks=127.0.0.1:1080\n"
	    "udp-port = 4000\nserver = shoal://h:1/k\nallow-other-users = yes\n"
	    "portmap = off\n\t# indented comment\n", &a, err, sizeof(err)), 0);
	CHECK_EQ(a.n, 6);
	CHECK(strcmp(a.v[0], "--nick=zero conf") == 0);
	CHECK(strcmp(a.v[1], "--socks=127.0.0.1:1080") == 0);
	CHECK(strcmp(a.v[2], "--udp-port=4000") == 0);
	CHECK(strcmp(a.v[3], "--server=shoal://h:1/k") == 0);
	CHECK(strcmp(a.v[4], "--allow-other-users") == 0);
	CHECK(strcmp(a.v[5], "--no-portmap") == 0);
	/* several mediator instances: the list form passes through whole (commas included) */
	CHECK_EQ(parse("server = shoal://h:1,g:2/k\n", &a, err, sizeof(err)), 0);
	CHECK(a.n == 1 && strcmp(a.v[0], "--server=shoal://h:1,g:2/k") == 0);
	/* the default value of a switch adds nothing; an empty file is no settings */
	CHECK_EQ(parse("allow-other-users = no\nportmap = yes\n", &a, err, sizeof(err)), 0);
	CHECK_EQ(a.n, 0);
	CHECK_EQ(parse("", &a, err, sizeof(err)), 0);
	CHECK_EQ(a.n, 0);
	/* the last line needs no newline; '=' inside a value is the value's */
	CHECK_EQ(parse("nick = a=b", &a, err, sizeof(err)), 0);
	CHECK(a.n == 1 && strcmp(a.v[0], "--nick=a=b") == 0);
}

static void
test_bad(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "nick = a\nsock = 1\n", "shoald.conf:2: unknown key: sock" },
		{ "\n\n\njust words\n", "shoald.conf:4: expected key = value: just words" },
		{ "nick = a\n# c\nnick = b\n", "shoald.conf:3: given twice: nick" },
		{ "portmap = no\nportmap = no\n", "shoald.conf:2: given twice: portmap" },
		{ "nick =\n", "shoald.conf:1: empty value for: nick" },
		{ "portmap = maybe\n", "shoald.conf:1: want yes or no for: portmap" },
		{ "allow-other-users = 1\n", "shoald.conf:1: want yes or no for: allow-other-users" },
		{ "= x\n", "shoald.conf:1: unknown key: " },
		{ "--nick = x\n", "shoald.conf:1: unknown key: --nick" },
		{ "Nick = x\n", "shoald.conf:1: unknown key: Nick" },
	};
	struct conf_args a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ(parse(cases[i].text, &a, err, sizeof(err)), -1);
		if (strcmp(err, cases[i].want) != 0) {
			fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].want);
			CHECK(0);
		}
	}
}

/* Limits: line length, NUL bytes, value length, number of settings. */
static void
test_limits(void)
{
	static char big[4096];
	struct conf_args a;
	char err[256];

	memset(big, 'x', 1500);
	memcpy(big, "nick = ", 7);
	big[1500] = '\0';
	CHECK_EQ(parse(big, &a, err, sizeof(err)), -1);
	CHECK(strcmp(err, "shoald.conf:1: line too long") == 0);
	CHECK_EQ(conffile_parse("nick = a\nui = b\0c\n", 17, "f", &a, err, sizeof(err)), -1);
	CHECK(strcmp(err, "f:2: NUL byte") == 0);
	memset(big, 'y', 1020);
	memcpy(big, "state = ", 8);
	big[1020] = '\0';
	CHECK_EQ(parse(big, &a, err, sizeof(err)), 0);   /* long, but fits */
	CHECK(a.n == 1 && strlen(a.v[0]) == 1020 - 8 + strlen("--state="));
}

static void
test_load(void)
{
	char dir[] = "/tmp/test_conffile.XXXXXX", path[128], err[512];
	struct conf_args a;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/shoald.conf", dir);
	CHECK_EQ(conffile_load(path, 0, &a, err, sizeof(err)), 0);      /* missing: fine */
	CHECK_EQ(a.n, 0);
	/* ... unless the user named it */
	CHECK_EQ(conffile_load(path, 1, &a, err, sizeof(err)), -1);
	CHECK(strstr(err, "No such file") != NULL);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("nick = n\nbogus\n", f);
		fclose(f);
	}
	CHECK_EQ(conffile_load(path, 0, &a, err, sizeof(err)), -1);
	CHECK(strncmp(err, path, strlen(path)) == 0 &&
	    strcmp(err + strlen(path), ":2: expected key = value: bogus") == 0);
	unlink(path);
	/* a directory where the file should be: an error, not an empty configuration */
	CHECK(mkdir(path, 0700) == 0);
	CHECK_EQ(conffile_load(path, 0, &a, err, sizeof(err)), -1);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	rmdir(path);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_good);
	RUN(test_bad);
	RUN(test_limits);
	RUN(test_load);
	return unit_finish();
}
