/*
 * pwpool: see pwpool.h. The queue is a fixed array of slots (queue_max is small): a slot is
 * free, queued (with a sequence number, so the oldest runs first), running or done. One mutex
 * guards the slots; workers wait on a condition; the loop is woken with ev_async_send, which
 * is safe from any thread.
 */
#include "config.h"
#include "server/pwpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

enum slot_state { SLOT_FREE = 0, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

struct slot {
	enum slot_state state;
	uint64_t seq;
	struct pw_job job;
};

struct pwpool {
	struct ev_loop *loop;
	ev_async wake;                          /* results are waiting */
	pwpool_done_cb done;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;                      /* a job was queued, or stop */
	int stop;
	uint64_t next_seq;
	unsigned n_slots, n_threads, busy;      /* busy: slots not free */
	struct slot *slots;
	pthread_t *threads;
};

/* The oldest queued slot, or NULL. Under mu. */
static struct slot *
oldest_queued(struct pwpool *p)
{
	struct slot *best = NULL;
	unsigned i;

	for (i = 0; i < p->n_slots; i++)
		if (p->slots[i].state == SLOT_QUEUED && (!best || p->slots[i].seq < best->seq))
			best = &p->slots[i];
	return best;
}

static void *
worker(void *arg)
{
	struct pwpool *p = arg;
	struct slot *s;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && (s = oldest_queued(p)) == NULL)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		s->state = SLOT_RUNNING;
		pthread_mutex_unlock(&p->mu);
		pw_job_run(&s->job);    /* the slot is ours while RUNNING: no lock needed */
		pthread_mutex_lock(&p->mu);
		s->state = SLOT_DONE;
		ev_async_send(p->loop, &p->wake);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct pwpool *p = w->data;
	struct pw_job job;
	unsigned i;

	(void)loop;
	(void)revents;
	for (i = 0; i < p->n_slots; i++) {
		pthread_mutex_lock(&p->mu);
		if (p->slots[i].state != SLOT_DONE) {
			pthread_mutex_unlock(&p->mu);
			continue;
		}
		job = p->slots[i].job;
		pw_job_wipe(&p->slots[i].job);
		p->slots[i].state = SLOT_FREE;
		p->busy--;
		pthread_mutex_unlock(&p->mu);
		/* Outside the lock: the callback may submit again. */
		p->done(p->arg, &job);
		pw_job_wipe(&job);
	}
}

struct pwpool *
pwpool_new(struct ev_loop *loop, unsigned threads, unsigned queue_max, pwpool_done_cb done,
    void *arg)
{
	struct pwpool *p = calloc(1, sizeof(*p));
	unsigned i;

	if (p == NULL || threads == 0 || queue_max == 0)
		goto fail;
	p->loop = loop;
	p->done = done;
	p->arg = arg;
	p->n_slots = queue_max;
	if ((p->slots = calloc(queue_max, sizeof(*p->slots))) == NULL ||
	    (p->threads = calloc(threads, sizeof(*p->threads))) == NULL)
		goto fail;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	ev_async_init(&p->wake, wake_cb);
	p->wake.data = p;
	ev_async_start(loop, &p->wake);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			log_warnx("event=pwpool_thread_failed started=%u", i);
			break;
		}
		p->n_threads++;
	}
	if (p->n_threads == 0) {
		pwpool_free(p);
		return NULL;
	}
	return p;
fail:
	log_warnx("event=pwpool_alloc_failed");
	if (p) {
		free(p->slots);
		free(p->threads);
		free(p);
	}
	return NULL;
}

int
pwpool_submit(struct pwpool *p, const struct pw_job *job)
{
	unsigned i;
	int rc = -1;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n_slots; i++) {
		if (p->slots[i].state != SLOT_FREE)
			continue;
		p->slots[i].job = *job;
		p->slots[i].seq = p->next_seq++;
		p->slots[i].state = SLOT_QUEUED;
		p->busy++;
		pthread_cond_signal(&p->cv);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

unsigned
pwpool_pending(struct pwpool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->busy;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
pwpool_free(struct pwpool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	ev_async_stop(p->loop, &p->wake);
	for (i = 0; i < p->n_slots; i++)
		pw_job_wipe(&p->slots[i].job);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p->threads);
	free(p);
}
