/*
 * parallel.c - loops shared with helper threads; see parallel.h.
 *
 * One job at a time is offered to the helpers (a caller that finds one
 * running does its loop alone). Iterations are taken in chunks through an
 * atomic counter by the caller and the helpers alike; the caller then
 * withdraws the offer and waits for the helpers still inside its job.
 * Helpers start at the first large loop: one per CPU but the caller's, at
 * most MAX_HELPERS.
 */
#include "parallel.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define CHUNK 4	     /* iterations taken at once (4 blocks: 16 KiB) */
#define MIN_ITERS 16 /* smaller loops are not worth a wakeup */
#define MAX_HELPERS 3

struct job {
	void (*fn)(size_t i, void *arg);
	void *arg;
	size_t n;
	atomic_size_t next; /* first iteration nobody took yet */
	int helping;	    /* helpers inside this job; protected by mu */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER; /* a job was offered */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER; /* a helper left a job */
static struct job *offered;			       /* protected by mu */
static unsigned long gen;			       /* counts offers; protected by mu */
static int helpers;				       /* started; set once */

/* Take and run chunks of @j until none is left. */
static void run_chunks(struct job *j)
{
	size_t i, end;

	while ((i = atomic_fetch_add(&j->next, CHUNK)) < j->n) {
		end = i + CHUNK < j->n ? i + CHUNK : j->n;
		for (size_t k = i; k < end; k++)
			j->fn(k, j->arg);
	}
}

static void *helper_main(void *unused)
{
	unsigned long seen = 0;
	struct job *j;

	(void)unused;
	pthread_mutex_lock(&mu);
	for (;;) {
		/* A job this helper has not been in yet. */
		while (!offered || gen == seen)
			pthread_cond_wait(&work, &mu);
		seen = gen;
		j = offered;
		j->helping++;
		pthread_mutex_unlock(&mu);
		run_chunks(j);
		pthread_mutex_lock(&mu);
		if (--j->helping == 0)
			pthread_cond_broadcast(&idle);
	}
	return NULL;
}

static void start_helpers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	sigset_t all, old;
	pthread_t t;

	/* Signals stay with the threads that expect them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (long i = 1; i < cpus && helpers < MAX_HELPERS; i++) {
		if (pthread_create(&t, NULL, helper_main, NULL) != 0)
			break;
		pthread_detach(t);
		helpers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void sfs_par_for(size_t n, void (*fn)(size_t i, void *arg), void *arg)
{
	struct job j = {.fn = fn, .arg = arg, .n = n};
	bool shared = false;

	if (n >= MIN_ITERS) {
		pthread_once(&once, start_helpers);
		pthread_mutex_lock(&mu);
		if (helpers > 0 && !offered) {
			offered = &j;
			gen++;
			shared = true;
			pthread_cond_broadcast(&work);
		}
		pthread_mutex_unlock(&mu);
	}
	run_chunks(&j);
	if (!shared)
		return;
	/* Withdraw the offer, then wait for the chunks helpers still hold. */
	pthread_mutex_lock(&mu);
	offered = NULL;
	while (j.helping > 0)
		pthread_cond_wait(&idle, &mu);
	pthread_mutex_unlock(&mu);
}
