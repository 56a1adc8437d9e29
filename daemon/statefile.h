/*
 * statefile: the small files shoald keeps in STATE_DIR (its last address, the mediator it was
 * last given, the saved exposes and forwards), written atomically: a temporary file, fsync,
 * rename, mode 0600; read whole.
 */
#ifndef SHOAL_STATEFILE_H
#define SHOAL_STATEFILE_H

#include <stddef.h>

/* STATE_DIR/name holds text now. 0, or -1 (logged with event=state_save_failed). */
int statefile_write(const char *state_dir, const char *name, const char *text);
/* STATE_DIR/name into buf, NUL-ended (at most cap - 1 bytes). 0, or -1 when absent or empty. */
int statefile_read(const char *state_dir, const char *name, char *buf, size_t cap);

#endif
