/*
 * client: the CLI's side of the control socket: connect, send one request line, wait for the
 * response line with the same id (docs/PROTOCOL.md section 5).
 * Owns: nothing beyond the fd its caller holds.
 */
#ifndef SHOAL_CLI_CLIENT_H
#define SHOAL_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

/*
 * Connects to the Unix socket at path after checking that its directory is safe and, once
 * connected, that shoald at the other end runs as us (base/fsloc.h). Returns the fd, or -1
 * with errno set (EPERM: refused for safety) and why filled in for an error line.
 */
int client_connect(const char *path, char *why, size_t whylen);
/*
 * The one line on stderr for a client_connect that failed with errno e and why: refused for
 * safety, or shoald not running (with how to start it), or another reason.
 */
void client_say_unreachable(const char *path, const char *why, int e);

/*
 * Sends req as one line and waits up to timeout_ms for the response whose "id" is id (other
 * lines are skipped). Returns the response object (new reference), or NULL with a one-line
 * reason in err.
 */
json_t *client_call(int fd, json_t *req, long long id, int timeout_ms, char *err,
    size_t errlen);

#endif
