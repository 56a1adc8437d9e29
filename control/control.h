/*
 * control: the daemon's Unix control socket for the `shoal` CLI (and later the UI).
 * Protocol: newline-delimited JSON, one request object per line, one response per request
 * (docs/PROTOCOL.md, "Control socket"). The socket file is created mode 0600 in a directory
 * only its user can enter.
 * Owns: the listening socket and each client connection.
 */
#ifndef SHOAL_CONTROL_H
#define SHOAL_CONTROL_H

struct daemon;
struct control;

struct control *control_new(struct daemon *d, const char *path);
void control_free(struct control *c);

#endif
