/*
 * fsloc: where shoal keeps per-user runtime files, shared by shoald and the shoal CLI so both
 * agree without configuration.
 */
#ifndef SHOAL_FSLOC_H
#define SHOAL_FSLOC_H

#include <stddef.h>

/*
 * The default control socket: $SHOAL_CONTROL if set, else $XDG_RUNTIME_DIR/shoal/shoald.sock,
 * else /tmp/shoal-UID/shoald.sock. Returns 0, or -1 if it does not fit in cap.
 */
int fsloc_default_control(char *out, size_t cap);
/*
 * shoald's default state directory: $XDG_STATE_HOME/shoal if that is an absolute path, else
 * $HOME/.local/state/shoal (the XDG base directory rules). 0, or -1 (no home, or too long).
 */
int fsloc_default_state(char *out, size_t cap);
/*
 * shoald's optional configuration file: $XDG_CONFIG_HOME/shoal/shoald.conf if that is an
 * absolute path, else $HOME/.config/shoal/shoald.conf. 0, or -1 (no home, or too long).
 */
int fsloc_default_config(char *out, size_t cap);
/*
 * mkdir -p: every missing directory of dir is made with mode 0700; dir must end up a
 * directory. 0, or -1 with errno and why filled in for an error line.
 */
int fsloc_mkdirs(const char *dir, char *why, size_t whylen);
/*
 * Creates the parent directory of path with mode 0700 if missing (one level), then checks it
 * as fsloc_check_parent does. 0, or -1 with errno (EPERM: the directory is not safe; why says
 * what is wrong, in words for an error line).
 */
int fsloc_make_parent(const char *path, char *why, size_t whylen);
/*
 * Whether the directory holding path is safe for our sockets: a real directory (not a
 * symlink), owned by us (or root), writable by nobody else. Without that, another local user
 * who created it first (the /tmp fallback is predictable) could swap in a socket of their own
 * and read what we send it, passwords included. 0, or -1 with errno and why filled in.
 */
int fsloc_check_parent(const char *path, char *why, size_t whylen);
/*
 * Whether the process at the other end of connected Unix socket fd runs as us (or root): the
 * client's half of the same defence. 0, or -1 with why filled in.
 */
int fsloc_check_peer(int fd, char *why, size_t whylen);

#endif
