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
/* Creates the parent directory of path with mode 0700 if missing (one level). 0 or -1/errno. */
int fsloc_make_parent(const char *path);

#endif
