/*
 * pwjob: see pwjob.h.
 */
#include "config.h"
#include "server/pwjob.h"

#include <sodium.h>
#include <string.h>

void
pw_job_run(struct pw_job *j)
{
	size_t len = strnlen(j->password, sizeof(j->password) - 1);

	j->password[len] = '\0';
	if (j->kind == PW_HASH) {
		j->hash[0] = '\0';
		j->rc = len == 0 ? 0 : crypto_pwhash_str(j->hash, j->password, len, j->opslimit,
		    j->memlimit);
		return;
	}
	j->hash[sizeof(j->hash) - 1] = '\0';
	j->rc = crypto_pwhash_str_verify(j->hash, j->password, len) == 0 ? 0 : -1;
}

void
pw_job_wipe(struct pw_job *j)
{
	sodium_memzero(j->password, sizeof(j->password));
	sodium_memzero(j->hash, sizeof(j->hash));
}
