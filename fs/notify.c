/*
 * notify.c - kernel cache invalidation for locked sessions, from a thread of
 * its own.
 *
 * Sending an invalidation from inside a request can deadlock the kernel
 * (libfuse doc/README.notifications), so a lock queues a job here and the
 * control file's read waits for its ticket. Once a second it also runs the
 * daemon's own timed work: metadata.json "updated" refreshes and automatic
 * locks (idle_lock, max_unlock). Knows the inode table, the sessions and
 * libfuse's notify calls.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

struct job {
	struct sfs_session *sess;
	uint64_t ticket;
	struct job *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct job *head, **tail = &head; /* protected by mu */
static uint64_t issued, done;		 /* protected by mu */
static bool stopping, started;		 /* protected by mu */

struct collect {
	fuse_ino_t *inos;
	size_t n, cap;
};

static void collect_one(struct sfs_inode *in, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		fuse_ino_t *n = realloc(c->inos, ncap * sizeof(*n));

		if (!n)
			return; /* what we have is still invalidated */
		c->inos = n;
		c->cap = ncap;
	}
	c->inos[c->n++] = sfs_ino_of(in);
}

static void run(struct sfs_session *s)
{
	struct collect c = {0};
	size_t idlen = strlen(s->id);

	sfs_inode_foreach(s, collect_one, &c);
	for (size_t i = 0; i < c.n; i++)
		fuse_lowlevel_notify_inval_inode(sfs->se, c.inos[i], 0, 0);
	/* Drop the session's dentry and, with it, every cached name below it. */
	for (int w = 0; w < 2; w++)
		fuse_lowlevel_notify_inval_entry(sfs->se, sfs_ino_of(&sfs->top[w]), s->id, idlen);
	free(c.inos);
}

/*
 * -o idle_lock and max_unlock: lock every unlocked session that is due
 * (sfs_session_expire), with every guarantee of sessionctl lock. Runs in
 * this thread, outside any request, so it may notify directly; holds no
 * lock while a session locks (its metadata.json refresh is fsynced).
 */
static void idle_check(void)
{
	if (sfs->opts.idle_lock <= 0 && sfs->opts.max_unlock <= 0)
		return;
	for (struct sfs_session *s = sfs_session_first(); s; s = s->next)
		if (sfs_session_expire(s))
			run(s);
}

/*
 * Write settled changes into each session's metadata.json "updated"
 * (special.c). No lock is held while refreshing (sfs_session_first).
 */
static void refresh_check(void)
{
	if (fuse_session_exited(sfs->se))
		return; /* unmounted: the store is the user's again */
	for (struct sfs_session *s = sfs_session_first(); s; s = s->next)
		if (atomic_load(&s->changed) != 0)
			sfs_meta_refresh(s, false, true);
}

static void *loop(void *arg)
{
	struct timespec tick;

	(void)arg;
	/*
	 * The timed work runs a second after the last time it ran: jobs and
	 * wakeups in between do not put it off, and neither does a change of
	 * the wall clock.
	 */
	clock_gettime(CLOCK_MONOTONIC, &tick);
	tick.tv_sec += 1;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!head && !stopping) {
			if (pthread_cond_clockwait(&cond, &mu, CLOCK_MONOTONIC, &tick) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&mu);
				sfs_loop_watch();
				refresh_check();
				idle_check();
				pthread_mutex_lock(&mu);
				clock_gettime(CLOCK_MONOTONIC, &tick);
				tick.tv_sec += 1;
			}
		}
		if (!head)
			break;
		struct job *j = head;

		head = j->next;
		if (!head)
			tail = &head;
		pthread_mutex_unlock(&mu);
		run(j->sess);
		pthread_mutex_lock(&mu);
		done = j->ticket;
		free(j);
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int sfs_notify_start(void)
{
	int rc = pthread_create(&sfs->notifier, NULL, loop, NULL);

	if (rc == 0)
		started = true;
	return -rc;
}

void sfs_notify_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mu);
	pthread_join(sfs->notifier, NULL);
	started = false;
}

uint64_t sfs_notify_session(struct sfs_session *s)
{
	struct job *j = calloc(1, sizeof(*j));
	uint64_t t;

	pthread_mutex_lock(&mu);
	t = ++issued;
	if (j) {
		j->sess = s;
		j->ticket = t;
		*tail = j;
		tail = &j->next;
		pthread_cond_broadcast(&cond);
	} else {
		done = t; /* nothing queued; the lock itself still holds */
		sfs_syslog(LOG_ERR, "%s: out of memory: kernel caches not invalidated", s->id);
	}
	pthread_mutex_unlock(&mu);
	return t;
}

void sfs_notify_wait(uint64_t ticket)
{
	pthread_mutex_lock(&mu);
	while (done < ticket && !stopping)
		pthread_cond_wait(&cond, &mu);
	pthread_mutex_unlock(&mu);
}
