/*
 * daemonconf: the settings of shoald's configuration file the CLI must agree on (where its
 * control socket is, where it keeps its state and so its log). Read with shoald's own parser
 * (daemon/conffile.c) from the default path; a file that is absent, unreadable or invalid
 * gives nothing here (shoald itself reports what is wrong with it when it starts).
 */
#ifndef SHOAL_DAEMONCONF_H
#define SHOAL_DAEMONCONF_H

#include <stddef.h>

/* The value of key (a long option's name, e.g. "control", "state") into out: 0, or -1 when
 * the default configuration file does not set it (or it does not fit). */
int daemonconf_get(const char *key, char *out, size_t cap);

#endif
