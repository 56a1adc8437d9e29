/*
 * pwjob: one password operation (Argon2id hash of a new password, or verification of one
 * against a stored hash) as plain data, so it can run off the event loop (pwpool.c) or inline
 * (tests, fuzzing). Pure: no I/O, no clock.
 */
#ifndef SHOAL_SERVER_PWJOB_H
#define SHOAL_SERVER_PWJOB_H

#include <stddef.h>
#include <stdint.h>

#include "base/proto.h"
#include "server/store.h"

enum pw_kind { PW_HASH = 1, PW_VERIFY = 2 };

struct pw_job {
	uint64_t ticket;                /* the submitter's handle for the result */
	uint8_t kind;                   /* enum pw_kind */
	char password[PASSWORD_MAX_LEN + 1];
	char hash[STORE_PWHASH_MAX];    /* VERIFY: the stored hash; HASH: the result */
	unsigned long long opslimit;    /* HASH: crypto_pwhash_str limits */
	size_t memlimit;
	int rc;                         /* after pw_job_run: 0 hashed / matches, -1 not */
};

/* Runs the job (slow: Argon2id); an empty password hashes to "" (no password). */
void pw_job_run(struct pw_job *j);
/* Wipes the password (and a made hash) once the job is done with. */
void pw_job_wipe(struct pw_job *j);

#endif
