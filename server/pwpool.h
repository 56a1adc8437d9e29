/*
 * pwpool: a few worker threads that run password jobs (pwjob.h) off the event loop, so one
 * client's Argon2id never stalls everyone else's commands. A bounded queue: a full queue
 * refuses new jobs at once (the mediator answers "busy"). Results come back on the loop
 * thread through one ev_async, in the done callback.
 * Owns: the threads, the queue, copies of the jobs (passwords wiped when done).
 */
#ifndef SHOAL_SERVER_PWPOOL_H
#define SHOAL_SERVER_PWPOOL_H

#include <ev.h>

#include "server/pwjob.h"

struct pwpool;

/* Called on the loop thread with a finished job (valid during the call only). */
typedef void (*pwpool_done_cb)(void *arg, struct pw_job *job);

/* threads >= 1, queue_max >= 1. NULL on failure (logged). */
struct pwpool *pwpool_new(struct ev_loop *loop, unsigned threads, unsigned queue_max,
    pwpool_done_cb done, void *arg);
/* Queues a copy of job. 0, or -1 when the queue is full. */
int pwpool_submit(struct pwpool *p, const struct pw_job *job);
/* Jobs queued or running now. */
unsigned pwpool_pending(struct pwpool *p);
/* Stops the threads (the running jobs finish first); unfinished results are dropped. */
void pwpool_free(struct pwpool *p);

#endif
