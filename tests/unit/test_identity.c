/*
 * Unit tests for core/identity: hex helpers, key files (creation, modes, reload, corrupt files
 * left alone) in a scratch directory under /tmp, and connection strings (round trip plus a
 * table of malformed strings with the error each must name).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/identity.h"
#include "tests/unit/unit.h"

static char scratch[64];

static void
write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(data, f);
		fclose(f);
	}
	chmod(path, 0600);      /* keep the output free of mode warnings */
}

static void
read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	CHECK(f != NULL);
	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static void
test_hex(void)
{
	static const uint8_t bin[4] = { 0x00, 0xab, 0xCD, 0xff };
	uint8_t out[4];
	char hex[9];

	hex_encode(bin, sizeof(bin), hex);
	CHECK(strcmp(hex, "00abcdff") == 0);
	CHECK_EQ(hex_decode("00abcdff", out, 4), 0);
	CHECK_MEM(out, bin, 4);
	CHECK_EQ(hex_decode("00ABCDFF", out, 4), 0);
	CHECK_MEM(out, bin, 4);
	CHECK_EQ(hex_decode("00abcdf", out, 4), -1);       /* too short */
	CHECK_EQ(hex_decode("00abcdff0", out, 4), -1);     /* too long */
	CHECK_EQ(hex_decode("00abcdfg", out, 4), -1);      /* not hex */
	CHECK_EQ(hex_decode("00 bcdff", out, 4), -1);
	CHECK_EQ(hex_decode("", out, 0), 0);
}

static void
test_create_and_reload(void)
{
	struct noise_keypair kp1, kp2, check;
	char dir[128], path[160], buf[256], err[256];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/a/b", scratch);   /* parents created too */
	snprintf(path, sizeof(path), "%s/node.key", dir);
	CHECK_EQ(identity_load_or_create(dir, "node.key", &kp1, err, sizeof(err)), 0);

	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);

	/* The private key, then the public key: 64 hex digits and a newline each. */
	read_file(path, buf, sizeof(buf));
	CHECK_EQ(strlen(buf), 130);
	CHECK_EQ(buf[64], '\n');
	CHECK_EQ(buf[129], '\n');
	buf[64] = '\0';
	buf[129] = '\0';
	{
		uint8_t priv[KEY_LEN], pub[KEY_LEN];

		CHECK_EQ(hex_decode(buf + 65, pub, KEY_LEN), 0);
		CHECK_MEM(pub, kp1.pub, KEY_LEN);
		CHECK_EQ(hex_decode(buf, priv, KEY_LEN), 0);
		CHECK_MEM(priv, kp1.priv, KEY_LEN);
		noise_keypair_from_private(&check, priv);
		CHECK_MEM(check.pub, kp1.pub, KEY_LEN);
	}

	/* Second call loads the same key. */
	CHECK_EQ(identity_load_or_create(dir, "node.key", &kp2, err, sizeof(err)), 0);
	CHECK_MEM(kp2.priv, kp1.priv, KEY_LEN);
	CHECK_MEM(kp2.pub, kp1.pub, KEY_LEN);

	/* A different name is a different identity. */
	CHECK_EQ(identity_load_or_create(dir, "server.key", &kp2, err, sizeof(err)), 0);
	CHECK(memcmp(kp2.pub, kp1.pub, KEY_LEN) != 0);

	/* No temp files left behind. */
	snprintf(buf, sizeof(buf), "ls -a %s | grep -c tmp > /dev/null", dir);
	CHECK(system(buf) != 0);
}

static void
test_load_variants(void)
{
	struct noise_keypair kp;
	char dir[128], path[160], err[256];
	static const char *hex =
	    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
	static const char *pub_hex =
	    "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62";
	char line[80], pub[65], big[256], want[256];

	snprintf(dir, sizeof(dir), "%s/v", scratch);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/k", dir);

	/* Without newline, with CRLF, upper case: all the same key. */
	write_file(path, hex);
	CHECK_EQ(identity_load_or_create(dir, "k", &kp, err, sizeof(err)), 0);
	hex_encode(kp.pub, KEY_LEN, pub);
	CHECK(strcmp(pub, pub_hex) == 0);
	snprintf(line, sizeof(line), "%s\r\n", hex);
	write_file(path, line);
	CHECK_EQ(identity_load_or_create(dir, "k", &kp, err, sizeof(err)), 0);
	hex_encode(kp.pub, KEY_LEN, pub);
	CHECK(strcmp(pub, pub_hex) == 0);
	/* A one-line file (before the public half was kept) was rewritten with both halves. */
	read_file(path, big, sizeof(big));
	snprintf(want, sizeof(want), "%s\n%s\n", hex, pub_hex);
	CHECK(strcmp(big, want) == 0);
	/* Both halves, CRLF from an editor. */
	snprintf(want, sizeof(want), "%s\r\n%s\r\n", hex, pub_hex);
	write_file(path, want);
	CHECK_EQ(identity_load_or_create(dir, "k", &kp, err, sizeof(err)), 0);
	hex_encode(kp.pub, KEY_LEN, pub);
	CHECK(strcmp(pub, pub_hex) == 0);
}

/* One flipped bit in the private half: refused, named as damaged, the file left alone. */
static void
test_damaged_key_refused(void)
{
	static const char *good =
	    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893\n"
	    "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62\n";
	struct noise_keypair kp;
	char dir[128], path[160], err[256], bad[200], buf[256];

	snprintf(dir, sizeof(dir), "%s/d", scratch);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/node.key", dir);
	write_file(path, good);
	CHECK_EQ(identity_load_or_create(dir, "node.key", &kp, err, sizeof(err)), 0);
	snprintf(bad, sizeof(bad), "%s", good);
	bad[10] = bad[10] == 'b' ? 'c' : 'b';
	write_file(path, bad);
	err[0] = '\0';
	CHECK_EQ(identity_load_or_create(dir, "node.key", &kp, err, sizeof(err)), -1);
	CHECK(strstr(err, "damaged key file") != NULL);
	read_file(path, buf, sizeof(buf));
	CHECK(strcmp(buf, bad) == 0);
}

static void
test_corrupt_key_not_replaced(void)
{
	static const char *bad[] = {
		"",
		"\n",
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e489\n",    /* 63 */
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e48930\n",  /* 65 */
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e489z\n",   /* not hex */
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893\n\n", /* extra */
		" 4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893\n",
	};
	struct noise_keypair kp;
	char dir[128], path[160], err[256], buf[256];
	size_t i;

	snprintf(dir, sizeof(dir), "%s/c", scratch);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/node.key", dir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i]);
		err[0] = '\0';
		CHECK_EQ(identity_load_or_create(dir, "node.key", &kp, err, sizeof(err)), -1);
		CHECK(strstr(err, "corrupt key file") != NULL);
		CHECK(strstr(err, path) != NULL);
		read_file(path, buf, sizeof(buf));
		if (strcmp(buf, bad[i]) != 0) {
			fprintf(stderr, "corrupt key file %zu was modified\n", i);
			CHECK(0);
		}
	}
	/* A directory where the key should be, and a bad name. */
	snprintf(path, sizeof(path), "%s/dirkey", dir);
	mkdir(path, 0700);
	CHECK_EQ(identity_load_or_create(dir, "dirkey", &kp, err, sizeof(err)), -1);
	CHECK_EQ(identity_load_or_create(dir, "a/b", &kp, err, sizeof(err)), -1);
	CHECK_EQ(identity_load_or_create(dir, "", &kp, err, sizeof(err)), -1);
	/* A file where the directory should be. */
	snprintf(path, sizeof(path), "%s/node.key", dir);
	CHECK_EQ(identity_load_or_create(path, "x", &kp, err, sizeof(err)), -1);
}

static void
test_conn_string_roundtrip(void)
{
	uint8_t pub[KEY_LEN], pub2[KEY_LEN];
	char s[256], host[64], err[128];
	uint16_t port;

	randombytes_buf(pub, sizeof(pub));
	CHECK_EQ(conn_string_format("127.0.0.1", 7777, pub, s, sizeof(s)), 0);
	CHECK_EQ(strncmp(s, "shoal://127.0.0.1:7777/", 23), 0);
	CHECK_EQ(strlen(s), 23 + 64);
	CHECK_EQ(conn_string_parse(s, host, sizeof(host), &port, pub2, err, sizeof(err)), 0);
	CHECK(strcmp(host, "127.0.0.1") == 0);
	CHECK_EQ(port, 7777);
	CHECK_MEM(pub, pub2, KEY_LEN);

	CHECK_EQ(conn_string_format("mediator.example.org", 65535, pub, s, sizeof(s)), 0);
	CHECK_EQ(conn_string_parse(s, host, sizeof(host), &port, pub2, err, sizeof(err)), 0);
	CHECK(strcmp(host, "mediator.example.org") == 0);
	CHECK_EQ(port, 65535);

	/* Upper-case key and scheme, surrounding whitespace (copy and paste). */
	{
		char up[300];
		size_t i;

		snprintf(up, sizeof(up), "  SHOAL://h:1/%s\n", s + strlen(s) - 64);
		for (i = 0; up[i]; i++)
			if (up[i] >= 'a' && up[i] <= 'f')
				up[i] = (char)(up[i] - 'a' + 'A');
		CHECK_EQ(conn_string_parse(up, host, sizeof(host), &port, pub2, err, sizeof(err)),
		    0);
		CHECK(strcmp(host, "h") == 0);
		CHECK_EQ(port, 1);
		CHECK_MEM(pub, pub2, KEY_LEN);
	}

	/* format refuses what parse would refuse, and short buffers. */
	CHECK_EQ(conn_string_format("", 1, pub, s, sizeof(s)), -1);
	CHECK_EQ(conn_string_format("::1", 1, pub, s, sizeof(s)), -1);
	CHECK_EQ(conn_string_format("h", 0, pub, s, sizeof(s)), -1);
	CHECK_EQ(conn_string_format("127.0.0.1", 7777, pub, s, 23 + 64), -1);
	CHECK_EQ(conn_string_format("127.0.0.1", 7777, pub, s, 23 + 64 + 1), 0);
}

#define K64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static const struct {
	const char *in;
	const char *err_has;
} bad_conn[] = {
	{ "127.0.0.1:7777/" K64, "missing scheme" },
	{ "http://127.0.0.1:7777/" K64, "missing scheme" },
	{ "shoal:/127.0.0.1:7777/" K64, "missing scheme" },
	{ "", "missing scheme" },
	{ "shoal://127.0.0.1/" K64, "missing port" },
	{ "shoal://127.0.0.1:7777", "missing server key" },
	{ "shoal://:7777/" K64, "missing host" },
	{ "shoal://127.0.0.1:/" K64, "bad port" },
	{ "shoal://127.0.0.1:0/" K64, "bad port" },
	{ "shoal://127.0.0.1:65536/" K64, "bad port" },
	{ "shoal://127.0.0.1:99999999999999999999/" K64, "bad port" },
	{ "shoal://127.0.0.1:77a7/" K64, "bad port" },
	{ "shoal://127.0.0.1:-1/" K64, "bad port" },
	{ "shoal://127.0.0.1: 7777/" K64, "bad port" },
	{ "shoal://127.0.0.1:7777/", "64 hex digits, got 0" },
	{ "shoal://127.0.0.1:7777/00112233", "64 hex digits, got 8" },
	{ "shoal://127.0.0.1:7777/" K64 "00", "64 hex digits, got 66" },
	{ "shoal://127.0.0.1:7777/" K64 "/", "64 hex digits, got 65" },
	{ "shoal://127.0.0.1:7777/00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
	  "not hex" },
	{ "shoal://[::1]:7777/" K64, "IPv6" },
	{ "shoal://::1:7777/" K64, "IPv6" },
	{ "shoal://ho st:7777/" K64, "invalid character" },
	{ "shoal://user@host:7777/" K64, "invalid character" },
	/* the list form */
	{ "shoal://a:1,/" K64, "empty address" },
	{ "shoal://,a:1/" K64, "empty address" },
	{ "shoal://a:1,,b:2/" K64, "empty address" },
	{ "shoal://a:1,b/" K64, "missing port" },
	{ "shoal://a:1,b:0/" K64, "bad port" },
	{ "shoal://a:1,[::1]:2/" K64, "IPv6" },
	{ "shoal://a:1,A:1/" K64, "listed twice" },
	{ "shoal://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9/" K64, "too many" },
	{ "shoal://a:1, b:2/" K64, "invalid character" },
	{ "shoal://a:1;b/" K64, "bad port" },
};

/* The list form: what parses, to what, and that format gives the same string back. */
static const struct {
	const char *in;
	unsigned n;
	const char *host[3];
	uint16_t port[3];
} good_list[] = {
	{ "shoal://127.0.0.1:7777/" K64, 1, { "127.0.0.1" }, { 7777 } },
	{ "shoal://10.0.0.1:7777,10.0.0.2:7778/" K64, 2, { "10.0.0.1", "10.0.0.2" },
	  { 7777, 7778 } },
	{ "shoal://m1.example.org:1,m2.example.org:65535,10.1.2.3:443/" K64, 3,
	  { "m1.example.org", "m2.example.org", "10.1.2.3" }, { 1, 65535, 443 } },
	{ "shoal://h:1,h:2/" K64, 2, { "h", "h" }, { 1, 2 } },
	{ "shoal://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8/" K64, 8, { "a", "b", "c" }, { 1, 2, 3 } },
};

static void
test_conn_string_list(void)
{
	struct conn_string cs;
	uint8_t pub[KEY_LEN];
	char err[256], again[1024], host[64];
	uint16_t port;
	size_t i;
	unsigned j;

	CHECK_EQ(hex_decode(K64, pub, KEY_LEN), 0);
	for (i = 0; i < sizeof(good_list) / sizeof(good_list[0]); i++) {
		err[0] = '\0';
		if (conn_string_parse_list(good_list[i].in, &cs, err, sizeof(err)) != 0) {
			fprintf(stderr, "conn string \"%s\": %s\n", good_list[i].in, err);
			CHECK(0);
			continue;
		}
		CHECK_EQ(cs.n_addr, good_list[i].n);
		for (j = 0; j < 3 && good_list[i].host[j]; j++) {
			CHECK(strcmp(cs.addr[j].host, good_list[i].host[j]) == 0);
			CHECK_EQ(cs.addr[j].port, good_list[i].port[j]);
		}
		CHECK_MEM(cs.pub, pub, KEY_LEN);
		CHECK_EQ(conn_string_format_list(&cs, again, sizeof(again)), 0);
		CHECK(strcmp(again, good_list[i].in) == 0);
	}
	/* The one-address API refuses a list instead of silently dropping addresses. */
	err[0] = '\0';
	CHECK_EQ(conn_string_parse(good_list[1].in, host, sizeof(host), &port, pub, err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "one mediator address") != NULL);
	/* format refuses an empty list, a bad element and a short buffer. */
	CHECK_EQ(conn_string_parse_list(good_list[1].in, &cs, err, sizeof(err)), 0);
	CHECK_EQ(conn_string_format_list(&cs, again, strlen(good_list[1].in)), -1);
	CHECK_EQ(conn_string_format_list(&cs, again, strlen(good_list[1].in) + 1), 0);
	cs.addr[1].port = 0;
	CHECK_EQ(conn_string_format_list(&cs, again, sizeof(again)), -1);
	cs.n_addr = 0;
	CHECK_EQ(conn_string_format_list(&cs, again, sizeof(again)), -1);
}

static void
test_conn_string_errors(void)
{
	uint8_t pub[KEY_LEN];
	char host[64], err[256];
	uint16_t port;
	size_t i;

	for (i = 0; i < sizeof(bad_conn) / sizeof(bad_conn[0]); i++) {
		err[0] = '\0';
		if (conn_string_parse(bad_conn[i].in, host, sizeof(host), &port, pub, err,
		    sizeof(err)) != -1 || strstr(err, bad_conn[i].err_has) == NULL) {
			fprintf(stderr, "conn string \"%s\": err \"%s\", want \"%s\"\n",
			    bad_conn[i].in, err, bad_conn[i].err_has);
			CHECK(0);
		}
	}
	/* Host longer than the caller's buffer is an error, not a truncation. */
	err[0] = '\0';
	CHECK_EQ(conn_string_parse("shoal://abcdefghij:1/" K64, host, 10, &port, pub, err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "too long") != NULL);
	CHECK_EQ(conn_string_parse("shoal://abcdefghi:1/" K64, host, 10, &port, pub, err,
	    sizeof(err)), 0);
	/* NULL err is allowed. */
	CHECK_EQ(conn_string_parse("nope", host, sizeof(host), &port, pub, NULL, 0), -1);
}

int
main(void)
{
	char cmd[128];
	int rc;

	if (sodium_init() < 0)
		return 1;
	snprintf(scratch, sizeof(scratch), "/tmp/shoal-test-identity.XXXXXX");
	if (mkdtemp(scratch) == NULL)
		return 1;
	RUN(test_hex);
	RUN(test_create_and_reload);
	RUN(test_conn_string_list);
	RUN(test_load_variants);
	RUN(test_corrupt_key_not_replaced);
	RUN(test_damaged_key_refused);
	RUN(test_conn_string_roundtrip);
	RUN(test_conn_string_errors);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", scratch);
	return rc;
}
