/*
 * loop.c - the FUSE request loop: one reader at a time, which serves quick
 * requests itself and hands the reading on before a slow one.
 *
 * libfuse's multi-threaded loop keeps several threads blocked in read() on
 * /dev/fuse and the kernel wakes the one that has waited longest, so the
 * requests of one client (open, write, close) hop from thread to thread and
 * every hop is a wakeup, often on the other CPU: twice the context switches
 * and the daemon CPU per append of a single thread (bench/PROFILE.md).
 *
 * Here exactly one thread, the reader, reads. A request that only touches
 * the backing store and locks held briefly is served by the reader itself,
 * which then reads the next one: a client talks to one hot thread. Before a
 * request that may take long or wait on the kernel (the control file, which
 * waits for cache invalidations; fsync; a special file's commit, which
 * notifies the kernel; reads of 128 KiB or more (a sequential reader's
 * readahead, two READs in flight, which then run at once); large writes;
 * changing a file's size; batches of forgets; moving a session), the
 * reader passes its place to another thread (started if none waits, up to
 * max_threads), so requests keep being read meanwhile. A request that finds
 * only while it is served that it must wait on the kernel (a read-only close
 * of a replaced metadata.json) passes the place on then (sfs_loop_pass).
 * And whatever a quick request turns out to wait for, sfs_loop_watch (once
 * a second, from the notifier thread) passes the place on when the reader
 * has been busy with one request for a second: the loop never stalls for
 * good, at worst for a second or two.
 *
 * After a request the reader keeps polling for the next one for SPIN_NS
 * (receive) before it sleeps, so a client's request sequence does not pay
 * a wakeup each time.
 *
 * Once a request is served, its bytes are wiped from the thread's receive
 * buffer (a WRITE carries plaintext, a control request a password, and the
 * buffer would keep them until a later request as long overwrote them), and
 * so is the stack its callees used if they handled plaintext. The receive
 * buffers (libfuse's, one per thread, about 1 MiB; never a pipe: without a
 * write_buf op libfuse does not splice) are kept out of core dumps
 * (MADV_DONTDUMP).
 *
 * Caveats: a quick request delays the ones queued behind it (they would
 * have run on the other CPU); a busy client costs up to SPIN_NS of CPU per
 * request on top of the work; the threads, once started, stay until
 * unmount.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 10     /* as libfuse's multi-threaded loop */
#define LARGE_IO (128u << 10)  /* writes above this are handed off */
#define STUCK_MS 1000	       /* sfs_loop_watch: a reader busy this long passes */
#define SPIN_NS 20000	       /* the reader polls this long before it sleeps */
#define STACK_WIPE (32u << 10) /* stack wiped below the loop after a request */

struct worker {
	pthread_t thread;
	struct worker *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;  /* threads waiting for the reader's place */
	sem_t ended;	      /* posted when a thread sees the session end */
	atomic_bool active;   /* the loop runs (sfs_loop_watch has work); no lock */
	bool exiting;	      /* protected by mu, as everything below */
	bool taken;	      /* a thread holds the reader's place */
	unsigned long term;   /* counts changes of hands of the place */
	long long busy_since; /* ms the reader began serving a request; 0: reading */
	int waiting;	      /* threads waiting for the place */
	int threads, max_threads;
	struct worker *workers;
	int error;
} L = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long now_ms(void)
{
	return now_ns() / 1000000;
}

/*
 * Read the next request (/dev/fuse is non-blocking here): until @until,
 * keep trying, yielding the CPU in between; then sleep in poll(). The next
 * request of a client usually comes a few microseconds after the reply to
 * its last one, and a sleeping reader takes longer than that to wake up
 * (bench/PROFILE.md: 20-30 us less per append). 0 or the size read, as
 * fuse_session_receive_buf.
 */
static int receive(struct fuse_buf *buf, long long until)
{
	struct pollfd p = {.fd = fuse_session_fd(sfs->se), .events = POLLIN};
	int res;

	for (;;) {
		res = fuse_session_receive_buf(sfs->se, buf);
		if (res != -EAGAIN)
			return res;
		if (now_ns() < until)
			sched_yield();
		else
			poll(&p, 1, -1);
	}
}

/*
 * May @buf's request take long or wait on the kernel? Then the reader
 * hands the reading on before serving it.
 */
static bool is_slow(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	struct sfs_inode *ino;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in))
		return true; /* not looked at: hand off */
	if (in->nodeid == sfs_ino_of(&sfs->ctl))
		return true; /* sessionctl: key derivation, waits for invalidations */
	switch (in->opcode) {
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		return true;
	case FUSE_BATCH_FORGET:
		/* thousands at once after a tree is removed: each close may free an inode */
		return true;
	case FUSE_FLUSH:
		/* metadata.json's commit fsyncs and notifies the kernel */
		ino = sfs_inode_of(in->nodeid);
		return ino->kind == SFS_INODE_NODE && ino->special == SFS_SP_META;
	case FUSE_RELEASE:
		/*
		 * The same, but a handle opened read-only (cat, grep, jq of
		 * metadata.json) has written nothing to commit: at most a
		 * create of a missing one with O_RDONLY is refused, empty,
		 * without an fsync. It may wait for the session's lock as a
		 * READ does; if it finds the file replaced meanwhile, it
		 * passes the place on before it notifies (special.c,
		 * sfs_loop_pass).
		 */
		ino = sfs_inode_of(in->nodeid);
		return ino->kind == SFS_INODE_NODE && ino->special == SFS_SP_META &&
		       (buf->size < sizeof(*in) + sizeof(struct fuse_release_in) ||
			(((const struct fuse_release_in *)(in + 1))->flags & O_ACCMODE) !=
				O_RDONLY);
	case FUSE_READ:
		/*
		 * Readahead READs of a file read start to end come 128 KiB at
		 * a time with two in flight: served one after the other, the
		 * second waits for the first's pread and opening. Handed off,
		 * they run on two threads at once, as in the floor's
		 * multi-threaded loop (bench/PROFILE.md, "Against the floor").
		 * Larger READs (direct_io, a bigger read_ahead_kb, the 256 KiB
		 * ones of cat and cp) are handed off too: they take long. Only
		 * a READ of exactly SFS_RA_READ opens its blocks alone
		 * (sfs_op_read: f.alone), the other core serving its pair; a
		 * larger one still splits its opening with a helper
		 * (bench/PROFILE.md, "Sequential read, part 3"). The two tests
		 * differ on purpose.
		 */
		return buf->size >= sizeof(*in) + sizeof(struct fuse_read_in) &&
		       ((const struct fuse_read_in *)(in + 1))->size >= SFS_RA_READ;
	case FUSE_WRITE:
		return buf->size >= sizeof(*in) + sizeof(struct fuse_write_in) &&
		       ((const struct fuse_write_in *)(in + 1))->size > LARGE_IO;
	case FUSE_SETATTR:
		/* a resize reseals the last block and may write zeros or cut a tail */
		return buf->size < sizeof(*in) + sizeof(struct fuse_setattr_in) ||
		       (((const struct fuse_setattr_in *)(in + 1))->valid & FATTR_SIZE);
	case FUSE_FALLOCATE:
	case FUSE_SETXATTR:
	case FUSE_REMOVEXATTR:
		/* xattr blobs are replaced with fsyncs (lib/xattr.c) */
		return true;
	case FUSE_RENAME:
	case FUSE_RENAME2:
		/* mv sessions/ID archive/ fsyncs both directories */
		ino = sfs_inode_of(in->nodeid);
		return ino->kind == SFS_INODE_TOP;
	}
	return false;
}

/*
 * Keep libfuse's receive buffer @mem (allocated at the first receive, freed
 * by us) out of core dumps. It is one malloc block: the pages it spans are
 * marked, rounded outwards (a neighbour's bytes on a shared page are left
 * out of a dump too; nothing needs them there).
 */
static void no_dump(void *mem)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), p = (uintptr_t)mem;
	uintptr_t start = p & ~(page - 1), end = p + malloc_usable_size(mem);

	end = (end + page - 1) & ~(page - 1);
	if (madvise((void *)start, end - start, MADV_DONTDUMP) < 0)
		sfs_syslog(LOG_WARNING, "cannot keep a request buffer out of core dumps: %s",
			   strerror(errno));
}

/*
 * Wipe the stack below the caller, where the callees of the request just
 * served kept their locals: decrypted bytes and parsed documents pass
 * through them (and through libsodium's and jansson's). The deepest request
 * seen uses about 20 KiB of stack; wiping 32 KiB costs about 0.4 us.
 */
__attribute__((noinline)) void sfs_wipe_stack(void)
{
	unsigned char below[STACK_WIPE];

	sodium_memzero(below, sizeof(below));
}

/* The request this thread serves handled plaintext (sfs_loop_plaintext). */
static _Thread_local bool touched;

/* The term in which this thread took the reader's place (sfs_loop_pass). */
static _Thread_local unsigned long my_term;

void sfs_loop_plaintext(void)
{
	touched = true;
}

/*
 * Do the callees of @buf's request handle plaintext on the stack: content,
 * names, symlink targets, attribute values, a session's documents, a
 * password? Then the stack is wiped after it (about 0.4 us). Not after the
 * rest (attributes, opens and closes, forgets), so an append (open, write,
 * close) pays it once; special.c flags the opens and closes that do.
 */
static bool touches_plaintext(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in))
		return true;
	if (in->nodeid == sfs_ino_of(&sfs->ctl))
		return true; /* passwords */
	switch (in->opcode) {
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_READLINK:
	case FUSE_SYMLINK:
	case FUSE_SETXATTR:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_LOOKUP:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_CREATE:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_LINK:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
		return true;
	case FUSE_SETATTR:
		/* a resize reseals the last block; metadata.json's is its document */
		return buf->size < sizeof(*in) + sizeof(struct fuse_setattr_in) ||
		       (((const struct fuse_setattr_in *)(in + 1))->valid & FATTR_SIZE);
	}
	/* The rest say so if they do: metadata.json loaded or committed (special.c). */
	return false;
}

static void *worker_main(void *arg);

/* Start one more thread; called with L.mu held. */
static void spawn(void)
{
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	if (!w)
		return;
	/* Signals (SIGTERM: unmount) go to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sfs_syslog(LOG_ERR, "cannot start a request thread: %s", strerror(rc));
		free(w);
		return;
	}
	w->next = L.workers;
	L.workers = w;
	L.threads++;
}

/* The reader gives its place up; called with L.mu held. */
static void pass_on(void)
{
	L.taken = false;
	L.term++;
	L.busy_since = 0;
	if (L.waiting > 0)
		pthread_cond_signal(&L.cond);
	else if (L.threads < L.max_threads)
		spawn();
	/* else: the next thread to finish its request reads */
}

static void *worker_main(void *arg)
{
	long long until = 0; /* spin for a next request until then */
	struct fuse_buf buf = {0};
	unsigned long term = 0;
	bool reader = false, fresh, wipe;
	int res;

	(void)arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		pthread_mutex_lock(&L.mu);
		if (reader && L.term != term)
			reader = false; /* sfs_loop_watch passed the place on */
		if (!reader) {
			L.waiting++;
			while (L.taken && !L.exiting)
				pthread_cond_wait(&L.cond, &L.mu);
			L.waiting--;
			if (L.exiting) {
				pthread_mutex_unlock(&L.mu);
				break;
			}
			L.taken = reader = true;
			my_term = term = ++L.term;
		}
		L.busy_since = 0;
		pthread_mutex_unlock(&L.mu);

		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		fresh = buf.mem == NULL;
		res = receive(&buf, until);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (fresh && buf.mem)
			no_dump(buf.mem);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			/* Unmounted (or a read error): the session ends. */
			pthread_mutex_lock(&L.mu);
			if (res < 0 && !L.error)
				L.error = res;
			pthread_mutex_unlock(&L.mu);
			fuse_session_exit(sfs->se);
			sem_post(&L.ended);
			break;
		}
		wipe = touches_plaintext(&buf);
		pthread_mutex_lock(&L.mu);
		if (is_slow(&buf)) {
			pass_on();
			reader = false;
		} else {
			L.busy_since = now_ms();
		}
		pthread_mutex_unlock(&L.mu);
		fuse_session_process_buf(sfs->se, &buf);
		/* Served and replied: its bytes (a write's plaintext, a password) go. */
		if (!(buf.flags & FUSE_BUF_IS_FD))
			sodium_memzero(buf.mem, (size_t)res);
		if (wipe || touched)
			sfs_wipe_stack();
		touched = false;
		until = reader ? now_ns() + SPIN_NS : 0;
	}
	free(buf.mem);
	return NULL;
}

void sfs_loop_watch(void)
{
	bool stuck;

	if (!atomic_load(&L.active))
		return;
	pthread_mutex_lock(&L.mu);
	stuck = L.taken && L.busy_since && now_ms() - L.busy_since >= STUCK_MS;
	if (stuck)
		pass_on();
	pthread_mutex_unlock(&L.mu);
	if (stuck)
		sfs_syslog(LOG_NOTICE, "a request held the request loop's reader for a second: "
				       "another thread reads on");
	/* A signal handled on another thread ended the session: wake the main one. */
	if (fuse_session_exited(sfs->se))
		sem_post(&L.ended);
}

void sfs_loop_pass(void)
{
	pthread_mutex_lock(&L.mu);
	if (L.taken && L.term == my_term && my_term != 0 && !L.exiting)
		pass_on(); /* the worker sees the new term after this request */
	pthread_mutex_unlock(&L.mu);
}

int sfs_loop_run(int max_threads)
{
	struct worker *w, *next;
	int fd, flags;

	if (sem_init(&L.ended, 0, 0) < 0)
		return -errno;
	fd = fuse_session_fd(sfs->se);
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	pthread_mutex_lock(&L.mu);
	L.max_threads = max_threads > 0 ? max_threads : DEFAULT_THREADS;
	spawn();
	L.active = L.threads > 0;
	pthread_mutex_unlock(&L.mu);
	if (!L.active)
		return -EAGAIN;
	/* Until unmount, or a signal (the handlers libfuse set end the session). */
	while (!fuse_session_exited(sfs->se))
		sem_wait(&L.ended);
	pthread_mutex_lock(&L.mu);
	L.exiting = true;
	pthread_cond_broadcast(&L.cond);
	for (w = L.workers; w; w = w->next)
		pthread_cancel(w->thread); /* the reader, blocked in read() */
	pthread_mutex_unlock(&L.mu);
	for (w = L.workers; w; w = next) {
		next = w->next;
		pthread_join(w->thread, NULL);
		free(w);
	}
	L.workers = NULL;
	L.active = false;
	sem_destroy(&L.ended);
	return L.error;
}
