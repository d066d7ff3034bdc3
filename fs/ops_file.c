/*
 * ops_file.c - FUSE operations on regular files: create, open, read, write,
 * flush, release, fsync, fallocate. The control file's open/read/write/release are
 * handed to ctl.c.
 *
 * Content goes through fileio (whole sealed blocks); an inode's io lock
 * lets reads share and serialises writes. A block that fails
 * authentication is logged with its file and number and read as EIO.
 */
#include "ops.h"
#include "special.h"
#include "fileio.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static struct sfs_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct sfs_fh *)(uintptr_t)fi->fh;
}

/*
 * A file handle on @in over descriptor @fd (from sfs_inode_rwfd_get, given
 * back by fh_free or here on error). A FLUSH round trip is only wanted where
 * close must commit something: a special file open for writing
 * (metadata.json's document, an unterminated events line). Ordinary writes
 * reached the store before their WRITE was answered.
 */
/* Every handle not yet released; all_mu is a leaf lock, held for a moment. */
static struct sfs_fh *all_head;
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;

static void all_add(struct sfs_fh *fh)
{
	pthread_mutex_lock(&all_mu);
	fh->all_next = all_head;
	if (all_head)
		all_head->all_prev = fh;
	all_head = fh;
	pthread_mutex_unlock(&all_mu);
}

static void all_del(struct sfs_fh *fh)
{
	pthread_mutex_lock(&all_mu);
	if (fh->all_prev)
		fh->all_prev->all_next = fh->all_next;
	else
		all_head = fh->all_next;
	if (fh->all_next)
		fh->all_next->all_prev = fh->all_prev;
	pthread_mutex_unlock(&all_mu);
}

void sfs_fh_reap_all(void)
{
	pthread_mutex_lock(&all_mu);
	while (all_head) {
		struct sfs_fh *fh = all_head;

		all_head = fh->all_next;
		sfs_special_release(fh);
		pthread_mutex_destroy(&fh->mu);
		free(fh);
	}
	pthread_mutex_unlock(&all_mu);
}

static int fh_new(struct sfs_inode *in, int fd, struct fuse_file_info *fi)
{
	struct sfs_fh *fh = calloc(1, sizeof(*fh));

	if (!fh) {
		sfs_inode_rwfd_put(in, fd);
		return -ENOMEM;
	}
	fh->fd = fd;
	fh->sess = in->sess;
	pthread_mutex_init(&fh->mu, NULL);
	all_add(fh);
	atomic_fetch_add(&in->sess->open_files, 1);
	atomic_fetch_add(&in->opens, 1);
	fi->fh = (uintptr_t)fh;
	/*
	 * Pages already read stay cached across opens: every change goes
	 * through this mount, and a lock drops them (notify.c) before it
	 * returns. Special files bypass the cache (direct_io, below). Not
	 * after writes, though: the kernel keeps the pages of a write that
	 * covered them in part but cannot use them, and fetching those one
	 * by one costs more READs (cat after tar -x) than one READ of the
	 * whole file after dropping them.
	 */
	fi->keep_cache = in->special == SFS_SP_NONE && !atomic_exchange(&in->written, false);
	fi->noflush = in->special == SFS_SP_NONE || (fi->flags & O_ACCMODE) == O_RDONLY;
	return 0;
}

/* Undo fh_new: at release, or when the open fails after it. */
static void fh_free(struct sfs_inode *in, struct fuse_file_info *fi)
{
	struct sfs_fh *fh = fh_of(fi);

	sfs_special_release(fh);
	atomic_fetch_sub(&fh->sess->open_files, 1);
	if (atomic_fetch_sub(&in->opens, 1) == 1)
		sfs_node_xattr_last_close(in, fh->fd); /* an unlinked file's attributes go now */
	sfs_inode_rwfd_put(in, fh->fd);
	all_del(fh);
	pthread_mutex_destroy(&fh->mu);
	free(fh);
}

/* O_TRUNC: cut the file to nothing; the header stays, with a fresh id (fileio.h). */
static int truncate_all(struct sfs_inode *in, int fd, const struct sfs_keys *keys)
{
	struct sfs_file f = {.fd = fd, .keys = keys};
	struct sfs_renewal rn;
	int rc;

	pthread_rwlock_wrlock(&in->io);
	sfs_node_file_begin(in, &f, &rn);
	rc = sfs_file_size(fd, &f.size);
	/* A size no valid file has: cut it all the same, as before. */
	if (rc == -EBADMSG) {
		f.size = 1;
		rc = 0;
	}
	if (rc == 0 && f.size)
		rc = sfs_file_truncate(&f, 0);
	sfs_node_file_end(in, &f, &rn);
	pthread_rwlock_unlock(&in->io);
	if (rc == -EBADMSG)
		sfs_log_corrupt(in, "header", -1);
	return rc;
}

static int do_create(fuse_req_t req, struct sfs_inode *p, const char *name, mode_t mode,
		     struct fuse_file_info *fi, const struct sfs_keys *keys,
		     struct fuse_entry_param *e)
{
	struct sfs_attrs a = {.mode = S_IFREG | (mode & 07777)};
	struct sfs_inode *in;
	int fd, rc;

	sfs_new_owner(req, p, &a);
	if (sfs_special_of(p, name) == SFS_SP_META)
		rc = sfs_meta_create(p, &a, keys, e); /* stored only once valid */
	else
		rc = sfs_make_filenode(p, name, &a, keys, e);
	if (rc < 0)
		return rc;
	sfs_mark_special(p, name, keys, e);
	in = sfs_inode_of(e->ino);
	fd = sfs_inode_rwfd_get(in);
	rc = fd < 0 ? fd : fh_new(in, fd, fi);
	if (rc == 0 && in->special == SFS_SP_META) {
		rc = sfs_meta_open(in, fh_of(fi), true, keys);
		if (rc < 0)
			fh_free(in, fi);
	}
	if (rc < 0)
		sfs_inode_unref(in, 1);
	return rc;
}

void sfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct fuse_entry_param e;
	const struct sfs_keys *keys;
	int rc;

	rc = sfs_enter_parent(p, &keys);
	if (rc == 0) {
		rc = do_create(req, p, name, mode, fi, keys, &e);
		if (rc == 0)
			sfs_session_changed(p->sess);
		sfs_session_leave(p->sess);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_create(req, &e, fi);
}

void sfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	int fd, rc;

	if (in->kind == SFS_INODE_CTL) {
		sfs_ctl_open(req, fi);
		return;
	}
	if (in->kind != SFS_INODE_NODE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	rc = sfs_enter_node(in, &keys);
	if (rc < 0) {
		sfs_reply_err(req, rc);
		return;
	}
	if (in->bad || sfs_node_type(in) != S_IFREG) {
		/* The kernel opens FIFOs, sockets, devices and symlinks itself: never here. */
		rc = -EIO;
	} else {
		/* Read-write always: partial blocks are read, merged and resealed. */
		bool trunc = fi->flags & O_TRUNC;
		bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;

		fd = sfs_inode_rwfd_get(in);
		if (fd >= 0 && trunc && (in->special == SFS_SP_EVENTS || sfs_node_is_log(in)))
			rc = -EPERM; /* append-only */
		/* libfuse asks for atomic O_TRUNC: the open truncates (metadata.json: at commit).
		 */
		else if (fd >= 0 && trunc && in->special == SFS_SP_NONE) {
			rc = truncate_all(in, fd, keys);
			if (rc == 0)
				rc = sfs_kill_setid_node(req, in, fd, true, keys);
		} else if (fd >= 0) {
			rc = 0;
			if (in->special == SFS_SP_NONE && !atomic_load(&in->tail_checked)) {
				pthread_rwlock_wrlock(&in->io);
				rc = sfs_node_check_tail(in, keys);
				pthread_rwlock_unlock(&in->io);
			}
			rc = rc < 0 ? rc : fd;
			if (rc > 0)
				atomic_store(&in->written, true); /* drop cached pages */
		} else
			rc = fd;
		if (rc >= 0)
			rc = fh_new(in, fd, fi);
		else if (fd >= 0)
			sfs_inode_rwfd_put(in, fd);
		if (rc >= 0 && in->special == SFS_SP_META && writing) {
			rc = sfs_meta_open(in, fh_of(fi), trunc, keys);
			if (rc < 0)
				fh_free(in, fi);
		}
		if (rc >= 0 && in->special != SFS_SP_NONE)
			fi->direct_io = 1; /* what a reader sees is what is stored */
	}
	sfs_session_leave(in->sess);
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
}

/*
 * Plaintext is replied from inside the session (before sfs_session_leave):
 * the reply fills the kernel's page cache as it is written, so a lock, which
 * waits for operations in flight and then drops that cache, never leaves a
 * page behind that was read just before it. Once replied, @in may be
 * forgotten and freed at any moment: only its session (never freed) is used.
 */
void sfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_file f = {.fd = -1};
	struct sfs_session *s = in->sess;
	char *buf;
	ssize_t n;
	int rc;

	if (in->kind == SFS_INODE_CTL) {
		sfs_ctl_read(req, size, off, fi);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = sfs_session_enter(s, &f.keys);
	if (rc < 0) {
		free(buf);
		sfs_reply_err(req, rc);
		return;
	}
	/* A writer of metadata.json reads its own unsaved document (-ENODATA: none). */
	n = in->special == SFS_SP_META ? sfs_meta_read(fh_of(fi), buf, size, off) : -ENODATA;
	if (n == -ENODATA && (in->special == SFS_SP_EVENTS || sfs_node_is_log(in))) {
		/* Only through the log: another file under that name is damage (EIO). */
		n = sfs_events_read(in, buf, size, off);
	} else if (n == -ENODATA && sfs_inode_stale(in)) {
		n = -EIO;
	} else if (n == -ENODATA) {
		f.fd = fh_of(fi)->fd;
		/*
		 * Readahead READs run two at once (loop.c): no helpers. Not
		 * size >= SFS_RA_READ as loop.c's hand-off: a larger READ is no
		 * readahead pair and still splits its opening with a helper
		 * (bench/PROFILE.md, "Sequential read, part 3").
		 */
		f.alone = size == SFS_RA_READ;
		pthread_rwlock_rdlock(&in->io);
		sfs_node_file_begin(in, &f, NULL);
		rc = sfs_file_size(f.fd, &f.size);
		n = rc < 0 ? rc : sfs_file_read(&f, buf, size, (uint64_t)off);
		pthread_rwlock_unlock(&in->io);
		if (n == -EBADMSG)
			sfs_log_corrupt(in, "size", rc < 0 ? -1 : (long long)f.bad_block);
	}
	if (n < 0)
		sfs_reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	sfs_session_leave(s);
	sodium_memzero(buf, n > 0 ? (size_t)n : 0);
	free(buf);
}

void sfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_file f = {.fd = -1};
	struct sfs_renewal rn;
	ssize_t n;
	int rc;

	if (in->kind == SFS_INODE_CTL) {
		sfs_ctl_write(req, buf, size, off, fi);
		return;
	}
	rc = sfs_session_enter(in->sess, &f.keys);
	if (rc < 0) {
		sfs_reply_err(req, rc);
		return;
	}
	if (in->special != SFS_SP_NONE) {
		n = in->special == SFS_SP_META
			    ? sfs_meta_write(fh_of(fi), buf, size, off)
			    : sfs_events_write(in, fh_of(fi), buf, size, off, fi->flags & O_APPEND);
		sfs_session_leave(in->sess);
		if (n < 0)
			sfs_reply_err(req, (int)n);
		else
			fuse_reply_write(req, (size_t)n);
		return;
	}
	if (sfs_node_is_log(in) || sfs_inode_stale(in)) {
		sfs_session_leave(in->sess);
		/* a log only takes appends, as events.jsonl */
		sfs_reply_err(req, sfs_node_is_log(in) ? -EPERM : -EIO);
		return;
	}
	f.fd = fh_of(fi)->fd;
	/* Set-id bits go before the data changes, as in the kernel. */
	rc = size ? sfs_kill_setid_node(req, in, f.fd, false, f.keys) : 0;
	if (rc == 0) {
		pthread_rwlock_wrlock(&in->io);
		sfs_node_file_begin(in, &f, &rn);
		rc = sfs_file_size(f.fd, &f.size);
		if (rc == 0 && (fi->flags & O_APPEND))
			off = (off_t)f.size;
		n = rc < 0 ? rc : sfs_file_write(&f, buf, size, (uint64_t)off);
		sfs_node_file_end(in, &f, &rn);
		pthread_rwlock_unlock(&in->io);
	} else {
		n = rc;
	}
	if (n >= 0) {
		atomic_store(&in->written, true);
		sfs_session_changed(in->sess);
	}
	sfs_session_leave(in->sess);
	if (n == -EBADMSG)
		sfs_log_corrupt(in, "size", rc < 0 ? -1 : (long long)f.bad_block);
	if (n < 0)
		sfs_reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* Commit what a special file holds: metadata.json's document, events' tail. */
static int special_commit(struct sfs_inode *in, struct sfs_fh *fh)
{
	const struct sfs_keys *keys;
	int rc;

	/* -EIO: a lock wiped what it held (special.c), even with the session locked */
	rc = in->special == SFS_SP_NONE ? 0 : sfs_special_pending(fh);
	if (rc <= 0)
		return rc;
	rc = sfs_session_enter(in->sess, &keys);
	if (rc < 0)
		return rc;
	if (in->special == SFS_SP_META)
		rc = sfs_meta_commit(in, fh, keys);
	else
		rc = sfs_events_flush(in, fh);
	sfs_session_leave(in->sess);
	return rc;
}

void sfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	int rc;

	/* Ordinary writes already reached the store; special files commit here. */
	rc = in->kind == SFS_INODE_NODE ? sfs_errno_out(special_commit(in, fh_of(fi))) : 0;
	/* Before close returns, not at the release that follows it. */
	if (in->kind == SFS_INODE_NODE && in->special == SFS_SP_META)
		sfs_meta_closed(in, fh_of(fi)->fd);
	fuse_reply_err(req, rc);
}

void sfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_fh *fh;

	if (in->kind == SFS_INODE_CTL) {
		sfs_ctl_release(req, fi);
		return;
	}
	fh = fh_of(fi);
	if (special_commit(in, fh) < 0)
		sfs_syslog(LOG_NOTICE, "%s: a special file's last write was refused at close",
			   in->sess->id);
	if (in->special == SFS_SP_META)
		sfs_meta_closed(in, fh->fd);
	fh_free(in, fi);
	fuse_reply_err(req, 0);
}

/*
 * Before an fsync of regular file @in: record its last block if partial
 * (fileio.h "Tail records"), so that no later write can tear bytes this
 * fsync acknowledges. 1 if the record changed, 0 if not, or -errno.
 */
static int keep_tail(struct sfs_inode *in, int fd)
{
	unsigned char id[SFS_ID_BYTES];
	uint64_t size;
	int rc, rootfd;

	rootfd = sfs_session_rootfd(in->sess);
	pthread_rwlock_rdlock(&in->io);
	pthread_mutex_lock(&in->mu);
	memcpy(id, in->id, SFS_ID_BYTES);
	pthread_mutex_unlock(&in->mu);
	rc = sfs_file_size(fd, &size);
	if (rc == 0)
		rc = sfs_file_keep_tail(fd, size, rootfd, id);
	pthread_rwlock_unlock(&in->io);
	if (rootfd >= 0)
		close(rootfd);
	return rc == -EBADMSG ? 0 : rc; /* a size no file has: reads say so */
}

void sfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	int fd, rc = 0, tail = 0;

	if (in->kind == SFS_INODE_CTL) {
		fuse_reply_err(req, 0);
		return;
	}
	fd = fh_of(fi)->fd;
	if (in->special == SFS_SP_META)
		rc = sfs_errno_out(special_commit(in, fh_of(fi)));
	else if (in->special == SFS_SP_NONE && !sfs_node_is_log(in) && sfs_inode_stale(in))
		rc = EIO; /* its writes before the rekey are in the new container, synced */
	else if (in->special == SFS_SP_NONE && !sfs_node_is_log(in))
		tail = keep_tail(in, fd);
	if (tail < 0)
		rc = sfs_errno_out(tail);
	/* A changed tail record is an extended attribute: fdatasync may leave it out. */
	if (rc == 0 && (datasync && tail == 0 ? fdatasync(fd) : fsync(fd)) < 0)
		rc = errno;
	/* A new name: durable with the file's first fsync, as on ext4. */
	if (rc == 0 && in->kind == SFS_INODE_NODE)
		rc = sfs_errno_out(sfs_sync_name(in, fd));
	fuse_reply_err(req, rc);
}

/*
 * What fallocate and lseek begin with: true with @in's session entered, or
 * false with @req answered (@other for the mount's own files).
 */
static bool enter_file(fuse_req_t req, struct sfs_inode *in, int other,
		       const struct sfs_keys **keys)
{
	int rc;

	if (in->kind != SFS_INODE_NODE) {
		fuse_reply_err(req, other);
		return false;
	}
	rc = sfs_session_enter(in->sess, keys);
	if (rc < 0)
		sfs_reply_err(req, rc);
	return rc == 0;
}

void sfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		      struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_file f = {.fd = -1};
	struct sfs_renewal rn;
	int rc;

	if (!enter_file(req, in, in->kind == SFS_INODE_CTL ? EOPNOTSUPP : EISDIR, &f.keys))
		return;
	/* events.jsonl and logs grow by appends only; metadata.json is replaced whole. */
	if (in->special != SFS_SP_NONE || sfs_node_is_log(in)) {
		sfs_session_leave(in->sess);
		fuse_reply_err(req, in->special == SFS_SP_META ? EOPNOTSUPP : EPERM);
		return;
	}
	if (sfs_inode_stale(in)) {
		sfs_session_leave(in->sess);
		fuse_reply_err(req, EIO);
		return;
	}
	f.fd = fh_of(fi)->fd;
	pthread_rwlock_wrlock(&in->io);
	sfs_node_file_begin(in, &f, &rn);
	rc = sfs_file_size(f.fd, &f.size);
	if (rc == 0)
		rc = sfs_file_fallocate(&f, mode, (uint64_t)off, (uint64_t)len);
	/*
	 * ext4 (since Linux 6.15) moves mtime and ctime at every fallocate
	 * that succeeds, even one past EOF that changes nothing; the backing
	 * file's own times move only where sfs_file_fallocate touched it.
	 */
	if (rc == 0 && futimens(f.fd, (struct timespec[2]){{.tv_nsec = UTIME_OMIT},
							   {.tv_nsec = UTIME_NOW}}) < 0)
		rc = sfs_neg_errno();
	sfs_node_file_end(in, &f, &rn);
	pthread_rwlock_unlock(&in->io);
	if (rc == 0)
		sfs_session_changed(in->sess);
	sfs_session_leave(in->sess);
	if (rc == -EBADMSG)
		sfs_log_corrupt(in, "", (long long)f.bad_block);
	fuse_reply_err(req, sfs_errno_out(rc));
}

/*
 * lseek(2) SEEK_DATA and SEEK_HOLE (the kernel does the other kinds itself):
 * holes of sparse files are found through the backing file's own
 * (sfs_file_seek); every other node is data from 0 to its size. Never
 * ENOSYS: that would turn the op off for the whole mount.
 */
void sfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_file f = {.fd = -1};
	struct stat st;
	uint64_t pos = 0;
	int rc;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!enter_file(req, in, EINVAL, &f.keys))
		return;
	if (in->special != SFS_SP_NONE || sfs_node_is_log(in)) {
		rc = sfs_node_stat(in, &st);
		f.size = rc < 0 ? 0 : (uint64_t)st.st_size;
	} else if (sfs_inode_stale(in)) {
		rc = -EIO;
	} else {
		f.fd = fh_of(fi)->fd;
		pthread_rwlock_rdlock(&in->io);
		sfs_node_file_begin(in, &f, NULL);
		rc = sfs_file_size(f.fd, &f.size);
	}
	if (rc == 0)
		rc = sfs_file_seek(&f, (uint64_t)off, whence, &pos);
	if (f.fd >= 0)
		pthread_rwlock_unlock(&in->io);
	sfs_session_leave(in->sess);
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_lseek(req, (off_t)pos);
}
