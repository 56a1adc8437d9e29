/*
 * fsloc: default locations of per-user runtime files. Reads the environment, touches nothing
 * but the directory it is asked to create.
 */
#include "config.h"
#include "base/fsloc.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int
fsloc_default_control(char *out, size_t cap)
{
	const char *env = getenv("SHOAL_CONTROL");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(out, cap, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(out, cap, "%s/shoal/shoald.sock", xdg);
	else
		n = snprintf(out, cap, "/tmp/shoal-%u/shoald.sock", (unsigned)getuid());
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* $XDG_<name> if absolute (the spec says to ignore relative ones), else $HOME/fallback; then
 * the leaf. */
static int
xdg_path(const char *xdg_var, const char *fallback, const char *leaf, char *out, size_t cap)
{
	const char *xdg = getenv(xdg_var), *home = getenv("HOME");
	struct passwd *pw;
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, cap, "%s/%s", xdg, leaf);
	else {
		if (!home || home[0] != '/')
			home = (pw = getpwuid(getuid())) != NULL ? pw->pw_dir : NULL;
		if (!home || home[0] != '/')
			return -1;
		n = snprintf(out, cap, "%s/%s/%s", home, fallback, leaf);
	}
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int
fsloc_default_state(char *out, size_t cap)
{
	return xdg_path("XDG_STATE_HOME", ".local/state", "shoal", out, cap);
}

int
fsloc_default_config(char *out, size_t cap)
{
	return xdg_path("XDG_CONFIG_HOME", ".config", "shoal/shoald.conf", out, cap);
}

int
fsloc_mkdirs(const char *dir, char *why, size_t whylen)
{
	char path[4096];
	struct stat st;
	size_t len = strlen(dir), i;

	if (len == 0 || len >= sizeof(path)) {
		snprintf(why, whylen, "bad directory '%s'", dir);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			snprintf(why, whylen, "cannot create directory %s: %s", path, strerror(errno));
			return -1;
		}
		if (i < len)
			path[i] = '/';
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", dir);
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* The directory part of path into dir ("." when there is none). 0, or -1 (too long). */
static int
parent_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		snprintf(dir, cap, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

static int
refuse(void)
{
	errno = EPERM;
	return -1;
}

int
fsloc_check_parent(const char *path, char *why, size_t whylen)
{
	char dir[4096];
	struct stat st;

	if (parent_of(path, dir, sizeof(dir)) != 0) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	if (lstat(dir, &st) != 0) {
		snprintf(why, whylen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory (a symlink?): refusing to use it", dir);
		return refuse();
	}
	if (st.st_uid != getuid() && st.st_uid != 0) {
		snprintf(why, whylen, "%s belongs to another user (uid %u): refusing to use it",
		    dir, (unsigned)st.st_uid);
		return refuse();
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "%s is writable by other users (mode %03o): refusing to use it",
		    dir, (unsigned)(st.st_mode & 0777));
		return refuse();
	}
	return 0;
}

int
fsloc_make_parent(const char *path, char *why, size_t whylen)
{
	char dir[4096];

	if (parent_of(path, dir, sizeof(dir)) != 0) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return fsloc_check_parent(path, why, whylen);
}

int
fsloc_check_peer(int fd, char *why, size_t whylen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr)) {
		snprintf(why, whylen, "cannot tell who serves the socket: %s", strerror(errno));
		return -1;
	}
	if (cr.uid != getuid() && cr.uid != 0) {
		snprintf(why, whylen, "the socket is served by another user (uid %u, pid %d): "
		    "refusing to talk to it", (unsigned)cr.uid, (int)cr.pid);
		return refuse();
	}
	return 0;
}
