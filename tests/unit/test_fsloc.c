/*
 * test_fsloc: the default locations (XDG variables, their fallbacks) and the safety checks on
 * the socket's directory, which keep another local user from standing in for our daemon: a
 * symlink, a directory writable by group or others, or one owned by another user is refused;
 * one we create is 0700 and accepted.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsloc.h"
#include "tests/unit/unit.h"

static void
test_defaults(void)
{
	char out[4096], want[256];

	unsetenv("SHOAL_CONTROL");
	setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
	CHECK_EQ(fsloc_default_control(out, sizeof(out)), 0);
	CHECK(strcmp(out, "/run/user/1234/shoal/shoald.sock") == 0);
	/* no runtime directory: a per-user place (its directory is checked before use) */
	unsetenv("XDG_RUNTIME_DIR");
	CHECK_EQ(fsloc_default_control(out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "/tmp/shoal-%u/shoald.sock", (unsigned)getuid());
	CHECK(strcmp(out, want) == 0);
	setenv("XDG_RUNTIME_DIR", "", 1);
	CHECK_EQ(fsloc_default_control(out, sizeof(out)), 0);
	CHECK(strcmp(out, want) == 0);
	setenv("SHOAL_CONTROL", "/x/y.sock", 1);
	CHECK_EQ(fsloc_default_control(out, sizeof(out)), 0);
	CHECK(strcmp(out, "/x/y.sock") == 0);
	CHECK_EQ(fsloc_default_control(out, 5), -1);            /* does not fit */
	unsetenv("SHOAL_CONTROL");

	setenv("HOME", "/home/u", 1);
	setenv("XDG_STATE_HOME", "/s", 1);
	setenv("XDG_CONFIG_HOME", "/c", 1);
	CHECK(fsloc_default_state(out, sizeof(out)) == 0 && strcmp(out, "/s/shoal") == 0);
	CHECK(fsloc_default_config(out, sizeof(out)) == 0 &&
	    strcmp(out, "/c/shoal/shoald.conf") == 0);
	/* relative XDG values are ignored, as the base directory spec says */
	setenv("XDG_STATE_HOME", "rel", 1);
	setenv("XDG_CONFIG_HOME", "rel", 1);
	CHECK(fsloc_default_state(out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/u/.local/state/shoal") == 0);
	CHECK(fsloc_default_config(out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/u/.config/shoal/shoald.conf") == 0);
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_CONFIG_HOME");
	CHECK(fsloc_default_state(out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/u/.local/state/shoal") == 0);
}

static void
test_checks(void)
{
	char dir[] = "/tmp/test_fsloc.XXXXXX", path[256], link[256], why[512];

	CHECK(mkdtemp(dir) != NULL);
	/* created by us: 0700, accepted */
	snprintf(path, sizeof(path), "%s/sub/shoald.sock", dir);
	CHECK_EQ(fsloc_make_parent(path, why, sizeof(why)), 0);
	CHECK_EQ(fsloc_make_parent(path, why, sizeof(why)), 0);         /* exists: still fine */
	/* writable by the group or others: refused */
	snprintf(link, sizeof(link), "%s/sub", dir);
	CHECK(chmod(link, 0770) == 0);
	errno = 0;
	CHECK_EQ(fsloc_check_parent(path, why, sizeof(why)), -1);
	CHECK(errno == EPERM && strstr(why, "writable by other users") != NULL);
	CHECK(chmod(link, 0703) == 0);
	CHECK_EQ(fsloc_make_parent(path, why, sizeof(why)), -1);
	CHECK(chmod(link, 0755) == 0);
	CHECK_EQ(fsloc_check_parent(path, why, sizeof(why)), 0);        /* readable is fine */
	/* owned by another user: refused (only root can make one here) */
	if (getuid() == 0) {
		CHECK(chown(link, 4242, 4242) == 0);
		CHECK_EQ(fsloc_check_parent(path, why, sizeof(why)), -1);
		CHECK(strstr(why, "belongs to another user (uid 4242)") != NULL);
		CHECK(chown(link, 0, 0) == 0);
	}
	/* a symlink to a good directory: refused (it could be swapped) */
	snprintf(link, sizeof(link), "%s/ln", dir);
	CHECK(symlink("sub", link) == 0);
	snprintf(path, sizeof(path), "%s/ln/shoald.sock", dir);
	CHECK_EQ(fsloc_check_parent(path, why, sizeof(why)), -1);
	CHECK(strstr(why, "not a directory") != NULL);
	/* missing: an error naming it */
	snprintf(path, sizeof(path), "%s/none/shoald.sock", dir);
	CHECK_EQ(fsloc_check_parent(path, why, sizeof(why)), -1);
	CHECK(strstr(why, "/none") != NULL);
	unlink(link);
	snprintf(link, sizeof(link), "%s/sub", dir);
	rmdir(link);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_checks);
	return unit_finish();
}
