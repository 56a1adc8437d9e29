/*
 * atomicfile: replace a small file so that readers see the old contents or the whole new ones,
 * and a crash leaves one of the two: a temporary file beside it (mkstemp, so two writers never
 * share one), fsync, rename.
 */
#ifndef SHOAL_ATOMICFILE_H
#define SHOAL_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* path now holds data[0..len) with the given mode. 0, or -1 with errno (nothing left behind). */
int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode);

#endif
