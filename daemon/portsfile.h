/*
 * portsfile: STATE_DIR/ports, the exposes and forwards the user made, so that a restarted
 * shoald offers and reaches the same services without the user repeating them (like the
 * identity, they belong to the node, not to one run). JSON, written atomically (temporary
 * file, fsync, rename) after every change; read once at start-up.
 *
 *   {"version":1,"exposes":[{"port":8000,"udp":false}],
 *    "forwards":[{"local_port":9000,"address":"5.0.0.2","port":8000}]}
 *
 * A file that does not parse is moved aside to STATE_DIR/ports.bad (logged), never
 * overwritten, so nothing the user made is lost to a bug or a damaged disk.
 */
#ifndef SHOAL_PORTSFILE_H
#define SHOAL_PORTSFILE_H

#include <stddef.h>

#include "ports/expose.h"
#include "ports/forward.h"

enum { PORTS_SAVED_MAX = 256 };

struct ports_saved {
	size_t n_expose;
	struct expose_info expose[PORTS_SAVED_MAX];
	size_t n_forward;
	struct forward_info forward[PORTS_SAVED_MAX];
};

/* Pure: text (len bytes, need not be NUL-terminated) into out. 0, or -1 with a one-line
 * reason in err (out is then undefined). */
int portsfile_parse(const char *text, size_t len, struct ports_saved *out, char *err,
    size_t errlen);
/* Pure: the file's text (malloc'd, NUL-terminated), or NULL when out of memory. */
char *portsfile_format(const struct ports_saved *ps);

/* Writes what the tables hold now (logged on failure). */
void portsfile_save(const char *state_dir, const struct expose_table *ex,
    const struct forward_table *fw);
/* Re-creates what the file lists. An entry that cannot be made now (its local port taken by
 * another program, say) is logged with the reason; the file keeps it until the next change
 * is saved. */
void portsfile_restore(const char *state_dir, struct expose_table *ex, struct forward_table *fw);

#endif
