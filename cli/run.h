/*
 * run: `shoal run [--] CMD ARGS...`: puts an unmodified, dynamically linked program on the
 * virtual LAN by exec'ing it with LD_PRELOAD=libshoal-preload.so (docs/LANPROXY.md).
 * run_check_fd() is the pure-ish part (reads an executable through pread, decides whether the
 * shim can work in it), unit-tested; run_exec() does the rest and only returns on failure.
 * Owns: nothing; run_exec replaces the process.
 */
#ifndef SHOAL_CLI_RUN_H
#define SHOAL_CLI_RUN_H

#include <stddef.h>

enum run_verdict {
	RUN_OK,          /* dynamically linked ELF, or not ELF at all (a script: its interpreter
	                    is what runs, and exec reports the rest) */
	RUN_STATIC,      /* ELF without PT_INTERP: nothing loads the shim */
	RUN_GO,          /* a Go binary: it makes its own system calls, bypassing libc */
	RUN_BAD_ELF,     /* an ELF file too damaged to judge */
};

/* Judges the executable open at fd. */
enum run_verdict run_check_fd(int fd);

/* A one-line reason for a refusal, pointing to the alternatives. */
const char *run_verdict_text(enum run_verdict v);

/*
 * Asks shoald at control (its status) for the shim socket, finds libshoal-preload.so, checks
 * argv[0] and execs it. If shoald is not running the program still runs (its shim says so
 * once on stderr, unless SHOAL_SHIM_QUIET=1, and joins the LAN when shoald comes up).
 * Returns only on failure, with the exit status to use (1 failed, 126 cannot run, 127 not
 * found), after printing one line on stderr.
 */
int run_exec(const char *control, char *const argv[]);

#endif
