/*
 * inode_fd.c - the descriptor cache: every inode the kernel holds, with a
 * bounded number of open backing descriptors.
 *
 * The kernel keeps as many inodes as it likes (a million after ls -lR of a
 * large tree); the daemon may hold only as many descriptors as its hard
 * RLIMIT_NOFILE allows. So the descriptor (in->fd) of a SESSION or NODE
 * inode is a cached thing: at most `cap` of them (half the descriptor
 * limit beyond a reserve of 64, at most 65536; sfs_fdc_init) stay open
 * when nothing uses them, least recently used evicted first. An evicted
 * inode is found again by the way it was found the first time:
 *   - a session root through its session's container (sfs_session_rootfd);
 *   - a node through its parent directory's inode (a lookup reference of
 *     its own, so the parent stays while a child does) and its backing
 *     name there (in->parent, in->bname), kept right by every operation
 *     that names a node: a lookup or readdirplus entry and every new node
 *     give the name, a rename moves it (a directory's children follow it,
 *     since they name the directory's inode, not a path), an unlink, rmdir
 *     or rename over takes it away. A hard link keeps the last name it was
 *     found by.
 * A reopened node must be the one the inode stands for: same device, inode
 * number and type (fstat), or the reopen fails with ESTALE and is logged;
 * nothing ever reads a node through another node's inode.
 *
 * Pins keep a descriptor open while it is used: every request pins the
 * inodes it names before it runs (ops.c) and drops the pins once replied
 * to; inodes a request finds (lookup, readdirplus, the victim of an
 * unlink or rename) are pinned for it too. So in->fd is read with no lock
 * by code that runs inside a request. A file handle that shares a regular
 * file's read-write descriptor holds a pin of its own until released
 * (sfs_inode_rwfd_get), so open files never lose their descriptor, and an
 * inode that lost its last known name (unlinked, or renamed over) keeps
 * its descriptor until the kernel forgets it: an unlinked file still open
 * or a removed directory still someone's working directory stay usable,
 * and a backing inode number cannot be reused under an inode of the table.
 * The descriptors held are thus: the cache (cap), the pins of requests in
 * progress (a few per serving thread), open files, and nodes unlinked but
 * not yet forgotten (the kernel forgets them right after the unlink).
 *
 * Memory per inode the kernel holds: struct sfs_inode (272 bytes) and its
 * backing name (up to 256 bytes: a short name's encrypted form, or a long
 * one's hash), about 345 bytes of RSS in all (README "Benchmarks"), freed at
 * the kernel's FORGET; a directory lives on while it is some child's parent.
 *
 * Locks: everything here (fd while it changes, pins, the LRU, parent, bname,
 * the names index) is fs->itable_mu's (doc/locking.md). No I/O under it: a
 * reopen runs with it released, and evicted descriptors are closed after.
 * Knows nothing of crypto, sessions' keys or requests.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#define CAP_MIN 16
#define CAP_MAX 65536
#define TRIM_BATCH 16 /* descriptors one call evicts at most */
#define RESERVE 64    /* descriptors the daemon needs besides inodes' (sfs_fdc_init) */

static size_t cap = 1024;		      /* fixed after sfs_fdc_init */
static size_t cached;			      /* managed inodes with fd >= 0; itable_mu */
static struct sfs_inode *lru_head, *lru_tail; /* itable_mu */
static struct sfs_inode **names;	      /* (parent, bname) -> inode; itable_mu */
static size_t names_size, names_count;

/* This thread's pins of the request it serves. */
static __thread struct sfs_inode **tl_pins;
static __thread size_t tl_n, tl_cap;

/*
 * Descriptors of nameless nodes let go under itable_mu, closed once it is
 * released (drop_flush): the close may free an unlinked file (disk I/O).
 */
#define DROP_MAX 64
static __thread int tl_drop[DROP_MAX];
static __thread size_t tl_ndrop;

static void drop_push(int fd)
{
	if (tl_ndrop < DROP_MAX)
		tl_drop[tl_ndrop++] = fd;
	else
		sfs_close_later(fd); /* rare: the reaper's lock is a leaf */
}

static void drop_flush(void)
{
	while (tl_ndrop > 0)
		sfs_close_later(tl_drop[--tl_ndrop]);
}

static pthread_key_t tl_key; /* frees a thread's pin array when it ends */

static void tl_free(void *p)
{
	free(p);
}

void sfs_fdc_init(void)
{
	struct rlimit rl;
	size_t c = 1024;

	/*
	 * Half of what the limit leaves beyond RESERVE (the store, the
	 * sessions' containers, locks and logs, /dev/fuse, the log): the other
	 * half is for open files, directory streams, pins of requests in
	 * progress and the reaper's queue (a sixteenth of the limit, at most 32).
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		size_t lim = rl.rlim_cur == RLIM_INFINITY ? 2 * CAP_MAX : (size_t)rl.rlim_cur;

		c = lim > RESERVE ? (lim - RESERVE) / 2 : 0;
		sfs_reap_limit(lim / 16);
	}
	cap = c < CAP_MIN ? CAP_MIN : c > CAP_MAX ? CAP_MAX : c;
	pthread_key_create(&tl_key, tl_free);
}

void sfs_fdc_destroy(void)
{
	free(names);
	names = NULL;
	names_size = names_count = 0;
	lru_head = lru_tail = NULL;
	cached = 0;
}

static bool managed(const struct sfs_inode *in)
{
	return in->kind == SFS_INODE_NODE || in->kind == SFS_INODE_SESSION;
}

static void lru_del(struct sfs_inode *in)
{
	if (!in->on_lru)
		return;
	if (in->lru_prev)
		in->lru_prev->lru_next = in->lru_next;
	else
		lru_head = in->lru_next;
	if (in->lru_next)
		in->lru_next->lru_prev = in->lru_prev;
	else
		lru_tail = in->lru_prev;
	in->lru_prev = in->lru_next = NULL;
	in->on_lru = false;
}

/*
 * Put @in on the LRU (newest) if its descriptor may go, else off it. A
 * regular file whose last link was unlinked (drop_ok) and that nothing uses
 * (no pin, no open file) loses its descriptor now, on the reaper thread
 * (closing it may be where the backing file system frees it), and leaves
 * the (dev, ino) lookups: its inode number may be a new node's soon. Other
 * nodes without a name (a removed directory, a FIFO the kernel holds open
 * without FUSE knowing, a node renamed over) keep theirs until the kernel
 * forgets them.
 */
static void lru_fix(struct sfs_inode *in)
{
	bool evictable = managed(in) && in->fd >= 0 && in->pins == 0 && in->nlookup > 0 &&
			 (in->kind == SFS_INODE_SESSION || in->parent);

	if (in->on_lru)
		lru_del(in);
	if (in->drop_ok && !in->parent && in->fd >= 0 && in->pins == 0 && in->nlookup > 0 &&
	    atomic_load(&in->opens) == 0) {
		drop_push(in->fd);
		in->fd = -1;
		in->fd_rw = false;
		cached--;
		sfs_itable_detach_locked(in);
	}
	if (!evictable)
		return;
	in->lru_next = lru_head;
	if (lru_head)
		lru_head->lru_prev = in;
	else
		lru_tail = in;
	lru_head = in;
	in->on_lru = true;
}

void sfs_fdc_trim_locked(int *out, size_t *n, size_t max)
{
	while (cached > cap && lru_tail && *n < max) {
		struct sfs_inode *in = lru_tail;

		lru_del(in);
		out[(*n)++] = in->fd;
		in->fd = -1;
		in->fd_rw = false;
		cached--;
	}
}

static void close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* The names index. */
static size_t name_hash(const struct sfs_inode *p, const char *name, size_t size)
{
	uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return (size_t)(h % size);
}

static void names_grow(void)
{
	size_t nsize = names_size ? names_size * 2 : 4096;
	struct sfs_inode **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* longer chains */
	for (size_t i = 0; i < names_size; i++) {
		struct sfs_inode *in = names[i], *next;

		for (; in; in = next) {
			size_t b = name_hash(in->parent, in->bname, nsize);

			next = in->nnext;
			in->nnext = nt[b];
			nt[b] = in;
		}
	}
	free(names);
	names = nt;
	names_size = nsize;
}

static struct sfs_inode *name_find(const struct sfs_inode *p, const char *name)
{
	if (!names_size)
		return NULL;
	for (struct sfs_inode *in = names[name_hash(p, name, names_size)]; in; in = in->nnext)
		if (in->parent == p && strcmp(in->bname, name) == 0)
			return in;
	return NULL;
}

/* @in forgets its name; its parent's reference goes on *@dead's way. */
static void name_del(struct sfs_inode *in, struct sfs_inode **dead)
{
	struct sfs_inode **pp;

	if (!in->parent)
		return;
	pp = &names[name_hash(in->parent, in->bname, names_size)];
	while (*pp && *pp != in)
		pp = &(*pp)->nnext;
	if (*pp) {
		*pp = in->nnext;
		names_count--;
	}
	in->nnext = NULL;
	sfs_inode_put_locked(in->parent, 1, dead);
	in->parent = NULL;
	free(in->bname);
	in->bname = NULL;
	lru_fix(in);
}

/* @in is named @bname (taken over) in @p from now on. */
static void name_set(struct sfs_inode *in, struct sfs_inode *p, char *bname,
		     struct sfs_inode **dead)
{
	struct sfs_inode *other;
	size_t b;

	if (in->parent == p && strcmp(in->bname, bname) == 0) {
		free(bname);
		return;
	}
	name_del(in, dead);
	other = name_find(p, bname);
	if (other)
		name_del(other, dead); /* a name the index had wrong: replaced meanwhile */
	if (names_count >= names_size * 2)
		names_grow();
	if (!names_size) {
		free(bname);
		return;
	}
	p->nlookup++;
	in->parent = p;
	in->bname = bname;
	b = name_hash(p, bname, names_size);
	in->nnext = names[b];
	names[b] = in;
	names_count++;
	lru_fix(in);
}

void sfs_fdc_unhash(struct sfs_inode *in)
{
	lru_del(in);
	if (in->parent) {
		struct sfs_inode **pp = &names[name_hash(in->parent, in->bname, names_size)];

		while (*pp && *pp != in)
			pp = &(*pp)->nnext;
		if (*pp) {
			*pp = in->nnext;
			names_count--;
		}
		in->nnext = NULL;
		/* in->parent's reference is dropped when @in is freed */
	}
	if (managed(in) && in->fd >= 0)
		cached--;
}

int sfs_pin_reserve(void)
{
	if (tl_n == tl_cap) {
		size_t ncap = tl_cap ? tl_cap * 2 : 64;
		struct sfs_inode **n = realloc(tl_pins, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		tl_pins = n;
		tl_cap = ncap;
		pthread_setspecific(tl_key, n);
	}
	return 0;
}

void sfs_pin_push(struct sfs_inode *in)
{
	tl_pins[tl_n++] = in;
}

static bool fd_rw_of(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_PATH) && (fl & O_ACCMODE) == O_RDWR;
}

int sfs_fdc_adopt(struct sfs_inode *in, int fd, bool rw)
{
	if (in->fd >= 0 || !managed(in))
		return 0;
	in->fd = fd;
	in->fd_rw = rw;
	cached++;
	return 1;
}

void sfs_fdc_new(struct sfs_inode *in)
{
	if (managed(in) && in->fd >= 0)
		cached++;
}

/* A new descriptor of @in's backing node, checked to be that node; or -errno. */
static int reopen(struct sfs_inode *in)
{
	struct sfs_inode *p = NULL, *dead = NULL;
	char *name = NULL;
	struct stat st;
	int fd, rc;

	pthread_mutex_lock(&sfs->itable_mu);
	if (in->kind == SFS_INODE_NODE && in->parent) {
		p = in->parent;
		p->nlookup++;
		name = strdup(in->bname);
	}
	pthread_mutex_unlock(&sfs->itable_mu);
	if (in->kind == SFS_INODE_SESSION) {
		fd = sfs_session_rootfd(in->sess);
	} else if (!p) {
		fd = -ESTALE; /* no name known: unlinked */
	} else {
		fd = name ? sfs_inode_hold(p) : -ENOMEM;
		if (fd == 0) {
			fd = sfs_inode_open(p->fd, name, in->type);
			sfs_inode_unhold(p);
		}
		pthread_mutex_lock(&sfs->itable_mu);
		sfs_inode_put_locked(p, 1, &dead);
		pthread_mutex_unlock(&sfs->itable_mu);
		sfs_inode_bury(dead);
	}
	free(name);
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
		fd = -ESTALE;
	if (fd < 0)
		return fd;
	rc = fstat(fd, &st) < 0 ? sfs_neg_errno() : 0;
	if (rc == 0 &&
	    (st.st_dev != in->bdev || st.st_ino != in->bino || (st.st_mode & S_IFMT) != in->type)) {
		sfs_syslog(LOG_WARNING,
			   "%s: a node changed under its backing name (ino %llu): ESTALE",
			   in->sess ? in->sess->id : "?", (unsigned long long)in->bino);
		rc = -ESTALE;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Pin @in (the caller's own pin, or with @tl the request's). */
static int pin(struct sfs_inode *in, bool tl)
{
	int evicted[TRIM_BATCH], fd = -1, extra = -1, rc;
	size_t nev = 0;
	bool rw = false;

	if (!managed(in))
		return 0;
	if (tl && sfs_pin_reserve() < 0)
		return -ENOMEM;
	for (;;) {
		pthread_mutex_lock(&sfs->itable_mu);
		if (in->fd >= 0 || fd >= 0)
			break;
		pthread_mutex_unlock(&sfs->itable_mu);
		fd = reopen(in);
		if (fd < 0)
			return fd;
		rw = S_ISREG(in->type) && fd_rw_of(fd);
		if (rw)
			posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	/* itable_mu held */
	if (fd >= 0 && !sfs_fdc_adopt(in, fd, rw))
		extra = fd; /* another thread reopened it meanwhile */
	in->pins++;
	lru_fix(in);
	if (tl)
		sfs_pin_push(in);
	sfs_fdc_trim_locked(evicted, &nev, TRIM_BATCH);
	pthread_mutex_unlock(&sfs->itable_mu);
	if (extra >= 0)
		close(extra);
	close_all(evicted, nev);
	drop_flush();
	rc = 0;
	return rc;
}

/* Drop a pin of @in; itable_mu held. An inode forgotten meanwhile goes on *@dead. */
static void unpin_locked(struct sfs_inode *in, struct sfs_inode **dead)
{
	if (!managed(in))
		return;
	if (--in->pins > 0)
		return;
	if (in->nlookup == 0) {
		in->hnext = *dead; /* out of the table already */
		*dead = in;
		return;
	}
	lru_fix(in);
}

int sfs_inode_pin(struct sfs_inode *in)
{
	return pin(in, true);
}

int sfs_inode_hold(struct sfs_inode *in)
{
	return pin(in, false);
}

void sfs_inode_unhold(struct sfs_inode *in)
{
	struct sfs_inode *dead = NULL;
	int evicted[TRIM_BATCH];
	size_t nev = 0;

	pthread_mutex_lock(&sfs->itable_mu);
	unpin_locked(in, &dead);
	sfs_fdc_trim_locked(evicted, &nev, TRIM_BATCH);
	pthread_mutex_unlock(&sfs->itable_mu);
	close_all(evicted, nev);
	drop_flush();
	sfs_inode_bury(dead);
}

size_t sfs_pin_mark(void)
{
	return tl_n;
}

void sfs_pin_release(size_t mark)
{
	struct sfs_inode *dead = NULL;
	int evicted[TRIM_BATCH];
	size_t nev = 0;

	if (tl_n <= mark)
		return;
	pthread_mutex_lock(&sfs->itable_mu);
	while (tl_n > mark)
		unpin_locked(tl_pins[--tl_n], &dead);
	sfs_fdc_trim_locked(evicted, &nev, TRIM_BATCH);
	pthread_mutex_unlock(&sfs->itable_mu);
	close_all(evicted, nev);
	drop_flush();
	sfs_inode_bury(dead);
}

int sfs_inode_name(struct sfs_inode *in, struct sfs_inode *parent, const char *backing)
{
	struct sfs_inode *dead = NULL;
	char *b;

	if (in->kind != SFS_INODE_NODE)
		return 0;
	b = strdup(backing);
	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&sfs->itable_mu);
	if (in->nlookup > 0)
		name_set(in, parent, b, &dead);
	else
		free(b);
	pthread_mutex_unlock(&sfs->itable_mu);
	drop_flush();
	sfs_inode_bury(dead);
	return 0;
}

struct sfs_inode *sfs_inode_pin_name(struct sfs_inode *p, const char *backing)
{
	struct sfs_inode *in, *dead = NULL;
	int rc;

	pthread_mutex_lock(&sfs->itable_mu);
	in = name_find(p, backing);
	if (in)
		in->nlookup++;
	pthread_mutex_unlock(&sfs->itable_mu);
	if (!in)
		return NULL;
	rc = sfs_inode_pin(in);
	pthread_mutex_lock(&sfs->itable_mu);
	sfs_inode_put_locked(in, 1, &dead);
	pthread_mutex_unlock(&sfs->itable_mu);
	drop_flush();
	sfs_inode_bury(dead);
	return rc == 0 ? in : NULL; /* kept by the request's pin */
}

void sfs_inode_unname(struct sfs_inode *in, struct sfs_inode *p, const char *backing, bool last)
{
	struct sfs_inode *dead = NULL;

	pthread_mutex_lock(&sfs->itable_mu);
	if (last) {
		in->drop_ok = true;
		if (in->fd < 0)
			sfs_itable_detach_locked(in); /* not pinned: gone for good */
	}
	if (in->nlookup > 0 && in->parent == p && strcmp(in->bname, backing) == 0)
		name_del(in, &dead);
	else if (last)
		lru_fix(in);
	pthread_mutex_unlock(&sfs->itable_mu);
	drop_flush();
	sfs_inode_bury(dead);
}

void sfs_inode_moved(struct sfs_inode *p, const char *from, struct sfs_inode *np, const char *to,
		     bool exchange)
{
	struct sfs_inode *a, *b, *dead = NULL;
	char *na = strdup(to), *nb = exchange ? strdup(from) : NULL;

	pthread_mutex_lock(&sfs->itable_mu);
	a = name_find(p, from);
	b = name_find(np, to);
	if (a == b)
		b = NULL; /* renamed over itself */
	if (a)
		name_del(a, &dead);
	if (b)
		name_del(b, &dead); /* renamed over (pinned by the victim hook), or exchanged */
	if (a && na && a->nlookup > 0) {
		name_set(a, np, na, &dead);
		na = NULL;
	}
	if (b && nb && b->nlookup > 0) {
		name_set(b, p, nb, &dead);
		nb = NULL;
	}
	pthread_mutex_unlock(&sfs->itable_mu);
	free(na);
	free(nb);
	drop_flush();
	sfs_inode_bury(dead);
}
