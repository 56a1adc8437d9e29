/*
 * conffile: shoald's optional configuration file (~/.config/shoal/shoald.conf, or --config
 * PATH): what the command line can set, one `key = value` per line, `#` starts a comment line.
 * Keys are the long options' names (server, state, socks, control, udp-port, nick, ui) and two
 * switches (allow-other-users = yes|no, portmap = yes|no). The file becomes options placed
 * before the command line's, so a flag always wins. Strict: an unknown key, a missing `=`, a
 * key given twice or a bad switch value is an error naming FILE:LINE.
 */
#ifndef SHOAL_CONFFILE_H
#define SHOAL_CONFFILE_H

#include <stddef.h>

enum { CONF_MAX_ARGS = 16, CONF_ARG_MAX = 1100 };

struct conf_args {
	int n;
	char v[CONF_MAX_ARGS][CONF_ARG_MAX];    /* "--key=value" or "--switch" */
};

/* The text of a file named name (for messages) into out. 0, or -1 with err "name:line: why". */
int conffile_parse(const char *text, size_t len, const char *name, struct conf_args *out,
    char *err, size_t errlen);
/*
 * The file at path: 0, or -1 with err. required (a path the user named): it must be there.
 * Otherwise (the default path) a file that is not there, or that we may not read (a HOME of
 * another user's, as when a service runs under its own uid with the caller's environment),
 * means no options.
 */
int conffile_load(const char *path, int required, struct conf_args *out, char *err,
    size_t errlen);

#endif
