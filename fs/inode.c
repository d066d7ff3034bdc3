/*
 * inode.c - the inode table: backing (dev, ino) -> struct sfs_inode.
 *
 * The address of an inode is its FUSE inode number, so hard links share one
 * inode; lookup adds a reference, forget drops it, zero frees. The fixed
 * inodes (root, sessions/, archive/, the control file) live in struct sfs_fs
 * and are never freed. Knows nothing of crypto or requests, and calls no
 * other file of fs/ but log.c: node.c and the ops call this one, never the
 * reverse.
 */
#include "fs.h"
#include "fileio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <syslog.h>

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t), "inode numbers must hold pointers");

struct sfs_inode *sfs_inode_of(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &sfs->root;
	return (struct sfs_inode *)(uintptr_t)ino;
}

fuse_ino_t sfs_ino_of(const struct sfs_inode *in)
{
	if (in == &sfs->root)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)in;
}

/*
 * May a (dev, ino) lookup take @in? Not once unlinked for good, nor a node
 * of its session's container from before a rekey: that backing file is
 * gone, and a new one may have its inode number.
 */
static bool current(const struct sfs_inode *in)
{
	return !in->gone && ((in->kind != SFS_INODE_NODE && in->kind != SFS_INODE_SESSION) ||
			     in->rekeyed == atomic_load(&in->sess->rekeyed));
}

static size_t bucket(dev_t dev, ino_t ino, size_t size)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	return (size_t)(h % size);
}

int sfs_itable_init(void)
{
	sfs->itable_size = 4096;
	sfs->itable = calloc(sfs->itable_size, sizeof(*sfs->itable));
	return sfs->itable ? 0 : -ENOMEM;
}

/* Double the table when it gets crowded; called with itable_mu held. */
static void grow(void)
{
	size_t nsize = sfs->itable_size * 2;
	struct sfs_inode **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* keep the longer chains */
	for (size_t i = 0; i < sfs->itable_size; i++) {
		struct sfs_inode *in = sfs->itable[i], *next;

		for (; in; in = next) {
			size_t b = bucket(in->bdev, in->bino, nsize);

			next = in->hnext;
			in->hnext = nt[b];
			nt[b] = in;
		}
	}
	free(sfs->itable);
	sfs->itable = nt;
	sfs->itable_size = nsize;
}

/*
 * The descriptors of forgotten inodes are closed by a thread of their own:
 * closing the last one of an unlinked file is where the backing file system
 * deletes it (a fifth of the daemon's time in rm -rf), and FORGET is served
 * by the request reader (loop.c), which should go back to reading.
 */
static pthread_mutex_t reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static int *reap_fds; /* protected by reap_mu, as the rest */
static size_t reap_n, reap_cap;
static int reaper = -1; /* -1: not started, 0: cannot start, 1: running */

static void *reaper_main(void *unused)
{
	int *fds;
	size_t n;

	(void)unused;
	pthread_mutex_lock(&reap_mu);
	for (;;) {
		while (reap_n == 0)
			pthread_cond_wait(&reap_cond, &reap_mu);
		fds = reap_fds;
		n = reap_n;
		reap_fds = NULL;
		reap_n = reap_cap = 0;
		pthread_mutex_unlock(&reap_mu);
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		free(fds);
		pthread_mutex_lock(&reap_mu);
	}
	return NULL;
}

static void start_reaper(void)
{
	sigset_t all, old;
	pthread_t t;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	reaper = pthread_create(&t, NULL, reaper_main, NULL) == 0;
	if (reaper)
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Close @fd soon, on the reaper thread, or now if it cannot be queued or
 * reap_max wait already: the descriptors waiting count against the limit
 * (inode_fd.c), and a reaper that falls behind is helped by the callers.
 * Called with no lock of the daemon held.
 */
static size_t reap_max = 32; /* set once at mount (sfs_reap_limit) */

void sfs_reap_limit(size_t n)
{
	reap_max = n < 4 ? 4 : n > 32 ? 32 : n;
}

static void close_later(int fd)
{
	pthread_mutex_lock(&reap_mu);
	if (reaper < 0)
		start_reaper();
	if (reap_n >= reap_max) {
		pthread_mutex_unlock(&reap_mu);
		close(fd);
		return;
	}
	if (reaper && reap_n == reap_cap) {
		size_t ncap = reap_cap ? reap_cap * 2 : 256;
		int *n = realloc(reap_fds, ncap * sizeof(*n));

		if (n) {
			reap_fds = n;
			reap_cap = ncap;
		}
	}
	if (!reaper || reap_n == reap_cap) {
		pthread_mutex_unlock(&reap_mu);
		close(fd);
		return;
	}
	reap_fds[reap_n++] = fd;
	if (reap_n == 1)
		pthread_cond_signal(&reap_cond);
	pthread_mutex_unlock(&reap_mu);
}

void sfs_close_later(int fd)
{
	close_later(fd);
}

/* Close @fd now, or (@later) on the reaper thread. Accepts -1. */
static void close_fd(int fd, bool later)
{
	if (fd < 0)
		return;
	if (later)
		close_later(fd);
	else
		close(fd);
}

/* Free @in; its descriptor is closed now or (@later) by the reaper. */
static void inode_free(struct sfs_inode *in, bool later)
{
	close_fd(in->fd, later);
	free(in->bname);
	pthread_mutex_destroy(&in->mu);
	pthread_rwlock_destroy(&in->io);
	free(in);
}

/* Take @in out of the (dev, ino) table if it is there; itable_mu held. */
static void table_remove(struct sfs_inode *in)
{
	struct sfs_inode **pp = &sfs->itable[bucket(in->bdev, in->bino, sfs->itable_size)];

	while (*pp && *pp != in)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = in->hnext;
		sfs->itable_count--;
	}
	in->hnext = NULL;
}

void sfs_itable_detach_locked(struct sfs_inode *in)
{
	in->gone = true;
}

void sfs_inode_put_locked(struct sfs_inode *in, uint64_t n, struct sfs_inode **dead)
{
	if (in->kind == SFS_INODE_ROOT || in->kind == SFS_INODE_TOP || in->kind == SFS_INODE_CTL ||
	    in->kind == SFS_INODE_CURRENT)
		return;
	if (in->nlookup > n) {
		in->nlookup -= n;
		return;
	}
	in->nlookup = 0;
	table_remove(in);
	sfs_fdc_unhash(in);
	if (in->pins > 0)
		return; /* freed by its last unpin (inode_fd.c) */
	in->hnext = *dead;
	*dead = in;
}

void sfs_inode_bury(struct sfs_inode *dead)
{
	while (dead) {
		struct sfs_inode *in = dead;

		dead = in->hnext;
		if (in->parent) {
			pthread_mutex_lock(&sfs->itable_mu);
			sfs_inode_put_locked(in->parent, 1, &dead);
			pthread_mutex_unlock(&sfs->itable_mu);
		}
		inode_free(in, true);
	}
}

struct sfs_inode *sfs_inode_get(int fd, const struct stat *st, enum sfs_kind kind,
				struct sfs_session *sess, struct sfs_inode *parent,
				const char *backing)
{
	struct sfs_inode *in, *fresh, *dead = NULL;
	char *bname = NULL;
	size_t b;

	fresh = calloc(1, sizeof(*fresh));
	if (backing && parent)
		bname = strdup(backing);
	if (!fresh || (backing && parent && !bname) || sfs_pin_reserve() < 0) {
		free(fresh);
		free(bname);
		close(fd);
		return NULL;
	}
	fresh->kind = kind;
	fresh->fd = fd;
	if (S_ISREG(st->st_mode)) {
		int fl = fcntl(fd, F_GETFL);

		fresh->fd_rw = fl >= 0 && !(fl & O_PATH) && (fl & O_ACCMODE) == O_RDWR;
		/* Files are mostly read start to end: twice the backing readahead. */
		if (fresh->fd_rw)
			posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	fresh->bdev = st->st_dev;
	fresh->bino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->sess = sess;
	fresh->rekeyed = sess ? atomic_load(&sess->rekeyed) : 0;
	fresh->nlookup = 1;
	pthread_mutex_init(&fresh->mu, NULL);
	pthread_rwlock_init(&fresh->io, NULL);

	pthread_mutex_lock(&sfs->itable_mu);
	b = bucket(st->st_dev, st->st_ino, sfs->itable_size);
	for (in = sfs->itable[b]; in; in = in->hnext)
		if (in->bdev == st->st_dev && in->bino == st->st_ino && current(in))
			break;
	if (in) {
		in->nlookup++;
		/* Its descriptor, if it was evicted, is this fresh one. */
		if (sfs_fdc_adopt(in, fd, fresh->fd_rw))
			fresh->fd = -1;
	} else {
		in = fresh;
		in->hnext = sfs->itable[b];
		sfs->itable[b] = in;
		if (++sfs->itable_count > sfs->itable_size * 2)
			grow();
		sfs_fdc_new(in);
		fresh = NULL;
	}
	in->pins++;
	sfs_pin_push(in);
	pthread_mutex_unlock(&sfs->itable_mu);
	if (bname)
		sfs_inode_name(in, parent, bname);
	free(bname);
	if (fresh)
		inode_free(fresh, false);
	sfs_inode_bury(dead);
	return in;
}

void sfs_inode_unref(struct sfs_inode *in, uint64_t n)
{
	struct sfs_inode *dead = NULL;

	pthread_mutex_lock(&sfs->itable_mu);
	sfs_inode_put_locked(in, n, &dead);
	pthread_mutex_unlock(&sfs->itable_mu);
	sfs_inode_bury(dead);
}

int sfs_inode_open(int dirfd, const char *name, mode_t type)
{
	int fd = -1;

	/* Only a regular file is opened for I/O: never a FIFO or a device. */
	if (S_ISREG(type))
		fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	/* Anything else, or a file not writable here (or replaced meanwhile): O_PATH. */
	if (fd < 0)
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

bool sfs_inode_old(struct sfs_inode *in)
{
	return (in->kind == SFS_INODE_NODE || in->kind == SFS_INODE_SESSION) &&
	       in->rekeyed != atomic_load(&in->sess->rekeyed);
}

bool sfs_inode_stale(struct sfs_inode *in)
{
	return sfs_inode_old(in) && atomic_load(&in->special) != SFS_SP_EVENTS;
}

struct sfs_inode *sfs_inode_find(dev_t dev, ino_t ino)
{
	struct sfs_inode *in;

	pthread_mutex_lock(&sfs->itable_mu);
	for (in = sfs->itable[bucket(dev, ino, sfs->itable_size)]; in; in = in->hnext)
		if (in->bdev == dev && in->bino == ino && current(in)) {
			in->nlookup++;
			break;
		}
	pthread_mutex_unlock(&sfs->itable_mu);
	return in;
}

int sfs_reopen(const struct sfs_inode *in, int flags)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", in->fd);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

int sfs_inode_rwfd_get(struct sfs_inode *in)
{
	/* @in is pinned by the request: fd_rw holds until the hold is taken. */
	if (in->fd_rw && sfs_inode_hold(in) == 0)
		return in->fd;
	return sfs_reopen(in, O_RDWR);
}

void sfs_inode_rwfd_put(struct sfs_inode *in, int fd)
{
	bool shared;

	/* While a handle holds it, in->fd cannot be another open descriptor @fd. */
	pthread_mutex_lock(&sfs->itable_mu);
	shared = fd == in->fd;
	pthread_mutex_unlock(&sfs->itable_mu);
	if (shared)
		sfs_inode_unhold(in);
	else
		close(fd);
}

void sfs_inode_foreach(struct sfs_session *sess, void (*fn)(struct sfs_inode *, void *), void *arg)
{
	pthread_mutex_lock(&sfs->itable_mu);
	for (size_t i = 0; i < sfs->itable_size; i++)
		for (struct sfs_inode *in = sfs->itable[i]; in; in = in->hnext)
			if (in->sess == sess)
				fn(in, arg);
	pthread_mutex_unlock(&sfs->itable_mu);
}

void sfs_itable_destroy(void)
{
	for (size_t i = 0; i < sfs->itable_size; i++) {
		struct sfs_inode *in = sfs->itable[i], *next;

		for (; in; in = next) {
			next = in->hnext;
			inode_free(in, false);
		}
	}
	free(sfs->itable);
	sfs->itable = NULL;
	sfs_fdc_destroy();
	/* What the reaper has not closed yet is closed here. */
	pthread_mutex_lock(&reap_mu);
	for (size_t i = 0; i < reap_n; i++)
		close(reap_fds[i]);
	reap_n = 0;
	pthread_mutex_unlock(&reap_mu);
}

void sfs_inode_renamed(dev_t dev, ino_t ino, enum sfs_special sp)
{
	pthread_mutex_lock(&sfs->itable_mu);
	for (struct sfs_inode *in = sfs->itable[bucket(dev, ino, sfs->itable_size)]; in;
	     in = in->hnext)
		if (in->bdev == dev && in->bino == ino && current(in)) {
			in->special = sp;
			atomic_store(&in->name_new, true);
		}
	pthread_mutex_unlock(&sfs->itable_mu);
}

fuse_ino_t sfs_inode_number(dev_t dev, ino_t ino)
{
	fuse_ino_t found = 0;

	pthread_mutex_lock(&sfs->itable_mu);
	for (struct sfs_inode *in = sfs->itable[bucket(dev, ino, sfs->itable_size)]; in;
	     in = in->hnext)
		if (in->bdev == dev && in->bino == ino && current(in))
			found = sfs_ino_of(in);
	pthread_mutex_unlock(&sfs->itable_mu);
	return found;
}

void sfs_inode_release_space(dev_t dev, ino_t ino)
{
	struct sfs_inode *in;
	int fd, rc;

	/*
	 * A reference of our own keeps the inode, and a hold its descriptor,
	 * while the backing file is reopened through /proc outside itable_mu.
	 */
	pthread_mutex_lock(&sfs->itable_mu);
	for (in = sfs->itable[bucket(dev, ino, sfs->itable_size)]; in; in = in->hnext)
		if (in->bdev == dev && in->bino == ino && current(in))
			break;
	if (in && (in->type != S_IFREG || atomic_load(&in->opens) > 0))
		in = NULL;
	if (in)
		in->nlookup++;
	pthread_mutex_unlock(&sfs->itable_mu);
	if (!in)
		return;
	fd = sfs_inode_hold(in);
	if (fd == 0) {
		fd = in->fd_rw ? dup(in->fd) : sfs_reopen(in, O_WRONLY);
		sfs_inode_unhold(in);
	}
	sfs_inode_unref(in, 1);
	if (fd < 0)
		return;
	/* Down to the header: should anyone still reach it, it reads as empty. */
	rc = sfs_file_cut_content(fd);
	if (rc < 0)
		sfs_syslog(LOG_WARNING, "cannot free the space of an unlinked file: %s",
			   strerror(-rc));
	close(fd);
}
