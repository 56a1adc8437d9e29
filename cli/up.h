/*
 * up: `shoal up` and `shoal down`, this user's shoald started and stopped without a service
 * manager. up starts it (detached, logging to its state directory) if the control socket does
 * not answer, then waits until it reports the mediator connected; down asks the process that
 * serves the control socket (ours, checked) to stop and waits until it is gone.
 */
#ifndef SHOAL_CLI_UP_H
#define SHOAL_CLI_UP_H

/* control: the socket path; control_given: it came from --control (passed on to shoald);
 * server: CONNSTR or NULL (the remembered one); wait_s: how long to wait for the mediator
 * (0: UP_WAIT_DEFAULT_S). Returns the exit status. */
enum { UP_WAIT_DEFAULT_S = 30 };
int up_run(const char *control, int control_given, const char *server, long wait_s, int json);
int down_run(const char *control, int json);

#endif
