/*
 * Unit tests for cli/run_check.c: synthetic ELF files (32/64-bit, both byte orders, with and
 * without PT_INTERP, with Go sections, truncated) and a few real programs of this system.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run.h"
#include "tests/unit/unit.h"

struct spec {
	int is64, be, interp;
	const char *section;    /* a third section's name */
};

static void
put(uint8_t *p, uint64_t v, size_t n, int be)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[be ? n - 1 - i : i] = (uint8_t)(v >> (8 * i));
}

/* Builds an ELF image in buf (1024 bytes): header, 2 program headers, 4 section headers. */
static size_t
build(uint8_t *buf, const struct spec *s)
{
	const int b = s->be, w = s->is64 ? 8 : 4;
	const size_t phent = s->is64 ? 56 : 32, shent = s->is64 ? 64 : 40;
	const size_t phoff = 64, stroff = 256, shoff = 512;
	char strtab[64];
	size_t n1, n2, n3, len, i;

	memset(buf, 0, 1024);
	/* names: "", ".text", section, ".shstrtab" */
	memset(strtab, 0, sizeof(strtab));
	n1 = 1;
	memcpy(strtab + n1, ".text", 6);
	n2 = n1 + 6;
	memcpy(strtab + n2, s->section, strlen(s->section) + 1);
	n3 = n2 + strlen(s->section) + 1;
	memcpy(strtab + n3, ".shstrtab", 10);
	len = n3 + 10;
	memcpy(buf + stroff, strtab, len);

	memcpy(buf, "\177ELF", 4);
	buf[4] = s->is64 ? 2 : 1;
	buf[5] = s->be ? 2 : 1;
	buf[6] = 1;
	put(buf + 16, 3, 2, b);                                 /* ET_DYN */
	put(buf + (s->is64 ? 32 : 28), phoff, (size_t)w, b);
	put(buf + (s->is64 ? 40 : 32), shoff, (size_t)w, b);
	put(buf + (s->is64 ? 54 : 42), phent, 2, b);
	put(buf + (s->is64 ? 56 : 44), 2, 2, b);
	put(buf + (s->is64 ? 58 : 46), shent, 2, b);
	put(buf + (s->is64 ? 60 : 48), 4, 2, b);
	put(buf + (s->is64 ? 62 : 50), 3, 2, b);
	put(buf + phoff, 1, 4, b);                              /* PT_LOAD */
	put(buf + phoff + phent, s->interp ? 3 : 2, 4, b);      /* PT_INTERP or PT_DYNAMIC */
	for (i = 1; i < 4; i++)
		put(buf + shoff + i * shent, i == 1 ? n1 : i == 2 ? n2 : n3, 4, b);
	put(buf + shoff + 3 * shent + (s->is64 ? 24 : 16), stroff, (size_t)w, b);
	put(buf + shoff + 3 * shent + (s->is64 ? 32 : 20), len, (size_t)w, b);
	return shoff + 4 * shent;
}

static enum run_verdict
judge(const uint8_t *buf, size_t len)
{
	char path[] = "/tmp/test_run_check.XXXXXX";
	enum run_verdict v;
	int fd = mkstemp(path);

	if (fd == -1)
		return RUN_BAD_ELF;
	unlink(path);
	if (write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		return RUN_BAD_ELF;
	}
	v = run_check_fd(fd);
	close(fd);
	return v;
}

static void
test_synthetic(void)
{
	static const struct {
		struct spec s;
		enum run_verdict want;
	} t[] = {
		{ { 1, 0, 1, ".data" }, RUN_OK },
		{ { 1, 0, 0, ".data" }, RUN_STATIC },
		{ { 1, 0, 1, ".go.buildinfo" }, RUN_GO },
		{ { 1, 0, 0, ".note.go.buildid" }, RUN_GO },
		{ { 1, 0, 1, ".go.buildinfox" }, RUN_OK },
		{ { 1, 1, 1, ".data" }, RUN_OK },
		{ { 1, 1, 0, ".data" }, RUN_STATIC },
		{ { 0, 0, 1, ".data" }, RUN_OK },
		{ { 0, 0, 0, ".data" }, RUN_STATIC },
		{ { 0, 1, 1, ".go.buildinfo" }, RUN_GO },
	};
	uint8_t buf[1024];
	size_t i, len;
	enum run_verdict v;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = build(buf, &t[i].s);
		if ((v = judge(buf, len)) != t[i].want) {
			fprintf(stderr, "synthetic[%zu] = %d, want %d\n", i, v, t[i].want);
			CHECK(0);
		}
	}
}

static void
test_damaged(void)
{
	static const struct spec s = { 1, 0, 1, ".data" };
	uint8_t buf[1024];
	size_t len = build(buf, &s);

	/* section headers cut off */
	CHECK_EQ(judge(buf, 600), RUN_BAD_ELF);
	/* a program header table pointing past the end */
	buf[32 + 1] = 0x7f;
	CHECK_EQ(judge(buf, len), RUN_BAD_ELF);
	/* bad class */
	build(buf, &s);
	buf[4] = 9;
	CHECK_EQ(judge(buf, len), RUN_BAD_ELF);
	/* not ELF at all (a script): exec decides */
	CHECK_EQ(judge((const uint8_t *)"#!/bin/sh\necho hi\n", 18), RUN_OK);
	CHECK_EQ(judge((const uint8_t *)"", 0), RUN_OK);
	CHECK_EQ(judge((const uint8_t *)"\177ELF", 4), RUN_BAD_ELF);
}

static void
test_real(void)
{
	int fd;

	if ((fd = open("/bin/sh", O_RDONLY)) >= 0) {
		CHECK_EQ(run_check_fd(fd), RUN_OK);
		close(fd);
	}
	CHECK(strstr(run_verdict_text(RUN_STATIC), "statically linked") != NULL);
	CHECK(strstr(run_verdict_text(RUN_GO), "Go") != NULL);
}

int
main(void)
{
	RUN(test_synthetic);
	RUN(test_damaged);
	RUN(test_real);
	return unit_finish();
}
