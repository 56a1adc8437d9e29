/*
 * completion: shell completion for shoal, generated from the argument parser's verb table.
 */
#ifndef SHOAL_CLI_COMPLETION_H
#define SHOAL_CLI_COMPLETION_H

#include <stdio.h>

/* The bash script on f. 0, or -1 when it could not be written. */
int completion_bash(FILE *f);

#endif
