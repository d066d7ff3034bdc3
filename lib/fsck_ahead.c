/*
 * fsck_ahead.c - the disk works ahead of fsck.sessionfs's walk over a
 * session's tree (fsck_tree.c): a thread goes through the same backing
 * directories in the same order and asks the kernel to read each small file
 * (up to 1 MiB) into the page cache (posix_fadvise WILLNEED), opening it on
 * the way (which reads its inode), so the walk finds most of what it reads
 * in memory. A walk of many small files otherwise waits on the disk for each
 * of them in turn, and while the walk is busy on the CPU (the event log) the
 * disk sits idle. In a large file the kernel's readahead keeps ahead of the
 * walk's reads by itself.
 *
 * It stays at most AHEAD_ENTRIES entries and AHEAD_BYTES bytes ahead of the
 * walk, which tells it where it is (sfs_fsck_ahead_at, once per entry), so
 * it never fills the page cache with much more than the walk will soon read.
 * It is only a hint: it reads no byte the walk looks at, decides nothing and
 * reports nothing; what the walk finds is the same with it or without it.
 *
 * Store layer (lib/fsck.h): knows the backing layout (format.c's name
 * classes) and POSIX threads; parses no bytes. Nothing of keys, terminals,
 * JSON output or FUSE.
 */
#include "format.h"
#include "fsck.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * At most AHEAD_ENTRIES entries and AHEAD_BYTES bytes prefetched beyond the
 * walk's entry; files of at most AHEAD_FILE bytes, whole (a larger one is
 * read in order by the walk, which the kernel's readahead keeps ahead of,
 * and a prefetch of its start would only compete with the file the walk
 * reads now); directories deeper than AHEAD_DEPTH are left to the walk.
 */
#define AHEAD_ENTRIES 4096u
#define AHEAD_BYTES (128ull << 20)
#define AHEAD_FILE (1ll << 20)
#define AHEAD_DEPTH 64

struct sfs_fsck_ahead {
	int rootfd;
	pthread_t t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t at;   /* entries the walk has come to; mu */
	bool stop;     /* mu */
	uint64_t next; /* the thread's: entries numbered so far */
	uint64_t sum;  /* ... and the bytes prefetched for them */
	/* The bytes prefetched for the entries before entry i, at i % (AHEAD_ENTRIES + 1). */
	uint64_t cum[AHEAD_ENTRIES + 1];
};

/*
 * Wait until entry @i may be prefetched: false to skip it (the walk is past
 * it) or to stop (*@stop set).
 */
static bool ahead_wait(struct sfs_fsck_ahead *a, uint64_t i, bool *stop)
{
	bool go;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		*stop = a->stop;
		if (*stop || a->at > i)
			break;
		/* Entries a->at .. i-1 are prefetched and the walk has not come to them. */
		if (i - a->at < AHEAD_ENTRIES &&
		    a->sum - a->cum[a->at % (AHEAD_ENTRIES + 1)] < AHEAD_BYTES)
			break;
		pthread_cond_wait(&a->cv, &a->mu);
	}
	go = !*stop && a->at <= i;
	pthread_mutex_unlock(&a->mu);
	return go;
}

/* Regular file @name of @dirfd if it has at most AHEAD_FILE bytes; how many in *@bytes. */
static void ahead_file(int dirfd, const char *name, uint64_t *bytes)
{
	/* O_NONBLOCK: should a FIFO have taken its place, the open does not wait. */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= AHEAD_FILE) {
		*bytes = (uint64_t)st.st_size;
		sfs_prefetch(fd, 0, *bytes);
	}
	close(fd);
}

/* The bytes prefetched for the entries before the next one to be numbered. */
static void ahead_count(struct sfs_fsck_ahead *a, uint64_t bytes)
{
	pthread_mutex_lock(&a->mu);
	a->sum += bytes;
	a->cum[a->next % (AHEAD_ENTRIES + 1)] = a->sum;
	pthread_mutex_unlock(&a->mu);
}

/* Number and prefetch the entries of directory @fd as fsck_tree.c's check_dir walks them. */
static bool ahead_dir(struct sfs_fsck_ahead *a, int fd, unsigned depth)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	bool stop = false;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	while (!stop && (de = readdir(d)) != NULL) {
		enum sfs_name_class cl = sfs_fmt_name_class(de->d_name);
		unsigned char type = de->d_type;
		uint64_t i, bytes = 0;
		struct stat st;
		bool go;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		i = a->next++;
		go = ahead_wait(a, i, &stop);
		if (!stop && type == DT_UNKNOWN &&
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			type = S_ISREG(st.st_mode)   ? DT_REG
			       : S_ISDIR(st.st_mode) ? DT_DIR
						     : DT_UNKNOWN;
		if (!stop && type == DT_REG && go)
			ahead_file(fd, de->d_name, &bytes);
		ahead_count(a, bytes);
		/* The walk numbers a directory's entries right after it. */
		if (!stop && type == DT_DIR && cl != SFS_NAME_INTERNAL && cl != SFS_NAME_SIDECAR &&
		    depth < AHEAD_DEPTH) {
			int sub = openat(fd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				stop = ahead_dir(a, sub, depth + 1);
				close(sub);
			}
		}
	}
	closedir(d);
	return stop;
}

static void *ahead_main(void *arg)
{
	struct sfs_fsck_ahead *a = arg;

	ahead_dir(a, a->rootfd, 0);
	return NULL;
}

struct sfs_fsck_ahead *sfs_fsck_ahead_start(int rootfd)
{
	struct sfs_fsck_ahead *a = calloc(1, sizeof(*a));
	sigset_t all, old;
	int rc;

	if (!a)
		return NULL;
	a->rootfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->rootfd < 0) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	/* Signals stay with the threads that expect them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&a->t, NULL, ahead_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
		close(a->rootfd);
		free(a);
		return NULL;
	}
	return a;
}

void sfs_fsck_ahead_at(struct sfs_fsck_ahead *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->at++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void sfs_fsck_ahead_end(struct sfs_fsck_ahead *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->t, NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	close(a->rootfd);
	free(a);
}
