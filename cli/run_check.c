/*
 * run_check: decides from an executable's ELF headers whether the LD_PRELOAD shim can work in
 * it: statically linked programs (no PT_INTERP: static-pie included) never load it, and Go
 * programs (.go.buildinfo / .note.go.buildid sections) make their own system calls. Reads
 * through pread with every offset and size checked against the file: a damaged file is
 * judged, never trusted. Both byte orders, ELF32 and ELF64.
 * Must not touch: the environment, the daemon.
 */
#include "config.h"
#include "cli/run.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	PT_INTERP_ = 3,
	PH_MAX = 4096,          /* program headers we are willing to read */
	SH_MAX = 65535,
	SHSTR_MAX = 1 << 20,    /* section-name table */
};

/* One ELF file being read: owned by run_check_fd's frame. */
struct elf {
	int fd;
	off_t size;
	int is64, be;
};

static int
rd(const struct elf *e, uint64_t off, void *buf, size_t len)
{
	if (off > (uint64_t)e->size || len > (uint64_t)e->size - off)
		return -1;
	return pread(e->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

static uint64_t
get(const struct elf *e, const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[e->be ? n - 1 - i : i] << (8 * i);
	return v;
}

/* Field at offset o32/o64 of size s32/s64 in a header. */
#define FIELD(e, p, o32, s32, o64, s64) \
	get((e), (p) + ((e)->is64 ? (o64) : (o32)), (e)->is64 ? (s64) : (s32))

static int
has_interp(const struct elf *e, const uint8_t *eh)
{
	uint64_t phoff = FIELD(e, eh, 28, 4, 32, 8);
	uint64_t phentsize = FIELD(e, eh, 42, 2, 54, 2), phnum = FIELD(e, eh, 44, 2, 56, 2);
	uint8_t ph[64];
	uint64_t i;

	if (phnum > PH_MAX || phentsize < (e->is64 ? 56u : 32u) || phentsize > sizeof(ph))
		return -1;
	for (i = 0; i < phnum; i++) {
		if (rd(e, phoff + i * phentsize, ph, (size_t)phentsize) == -1)
			return -1;
		if (get(e, ph, 4) == PT_INTERP_)
			return 1;
	}
	return 0;
}

static int
has_go_section(const struct elf *e, const uint8_t *eh)
{
	static const char *const names[] = { ".go.buildinfo", ".note.go.buildid" };
	char *strtab;
	int found = 0;
	uint64_t shoff = FIELD(e, eh, 32, 4, 40, 8);
	uint64_t shentsize = FIELD(e, eh, 46, 2, 58, 2), shnum = FIELD(e, eh, 48, 2, 60, 2);
	uint64_t shstrndx = FIELD(e, eh, 50, 2, 62, 2), stroff, strsize, name, i;
	uint8_t sh[64];
	size_t k, l;

	if (shoff == 0 || shnum == 0)
		return 0;       /* no section headers: nothing says Go */
	if (shnum > SH_MAX || shentsize < (e->is64 ? 64u : 40u) || shentsize > sizeof(sh) ||
	    shstrndx >= shnum)
		return -1;
	if (rd(e, shoff + shstrndx * shentsize, sh, (size_t)shentsize) == -1)
		return -1;
	stroff = FIELD(e, sh, 16, 4, 24, 8);
	strsize = FIELD(e, sh, 20, 4, 32, 8);
	if (strsize == 0 || strsize > SHSTR_MAX || !(strtab = malloc((size_t)strsize)))
		return -1;
	if (rd(e, stroff, strtab, (size_t)strsize) == -1) {
		free(strtab);
		return -1;
	}
	strtab[strsize - 1] = '\0';
	for (i = 0; i < shnum && !found; i++) {
		if (rd(e, shoff + i * shentsize, sh, (size_t)shentsize) == -1) {
			found = -1;
			break;
		}
		name = get(e, sh, 4);
		if (name >= strsize)
			continue;
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			l = strlen(names[k]) + 1;
			if (strsize - name >= l && memcmp(strtab + name, names[k], l) == 0)
				found = 1;
		}
	}
	free(strtab);
	return found;
}

enum run_verdict
run_check_fd(int fd)
{
	struct elf e;
	struct stat st;
	uint8_t eh[64];
	int r;

	if (fstat(fd, &st) == -1)
		return RUN_BAD_ELF;
	e.fd = fd;
	e.size = st.st_size;
	if (rd(&e, 0, eh, 4) == -1 || memcmp(eh, "\177ELF", 4) != 0)
		return RUN_OK;
	if (rd(&e, 0, eh, 16) == -1)
		return RUN_BAD_ELF;
	if ((eh[4] != 1 && eh[4] != 2) || (eh[5] != 1 && eh[5] != 2))
		return RUN_BAD_ELF;
	e.is64 = eh[4] == 2;
	e.be = eh[5] == 2;
	if (rd(&e, 0, eh, e.is64 ? 64 : 52) == -1)
		return RUN_BAD_ELF;
	if ((r = has_go_section(&e, eh)) == -1)
		return RUN_BAD_ELF;
	if (r)
		return RUN_GO;
	if ((r = has_interp(&e, eh)) == -1)
		return RUN_BAD_ELF;
	return r ? RUN_OK : RUN_STATIC;
}

const char *
run_verdict_text(enum run_verdict v)
{
	switch (v) {
	case RUN_STATIC:
		return "is statically linked, so the LAN shim cannot be loaded into it";
	case RUN_GO:
		return "is a Go program, which bypasses libc, so the LAN shim cannot see its sockets";
	case RUN_BAD_ELF:
		return "is not an ELF file shoal can read";
	default:
		return "can run under the LAN shim";
	}
}
