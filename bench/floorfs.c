/*
 * floorfs - the benchmarks' floor: a minimal passthrough FUSE file system
 * with no crypto, so that every figure of bench/run has a ratio to "FUSE
 * with nothing to do".
 *
 *   floorfs [-f] [-d] [-s] BACKDIR MOUNTPOINT
 *
 * It serves BACKDIR at MOUNTPOINT with the settings sessionfs uses (fs/ops.c,
 * fs/ops_*.c, fs/main.c): 1 MiB max_write and max_readahead, async reads, no
 * writeback cache, no POSIX ACLs; 10 s entry and attribute timeouts (those of
 * nodes inside a session); READDIRPLUS with attributes; cached listings and
 * pages across opens (keep_cache, except for the first open after a write,
 * as sessionfs does), FOPEN_NOFLUSH; nodev,nosuid; libfuse's multi-threaded
 * loop (sessionfs has its own, fs/loop.c: see bench/PROFILE.md). Reads and
 * writes copy through a buffer (pread/pwrite, no splice), as sessionfs must.
 *
 * Caveats: a benchmark tool, not a file system to keep data in. It holds an
 * O_PATH descriptor per inode the kernel knows (like libfuse's
 * passthrough_ll), runs as the mounting user with no permission checks of
 * its own, and has no mknod, no fallocate and no extended attributes (as
 * sessionfs without -o xattr: ENOSYS, which the kernel remembers). It knows nothing of
 * sessionfs; it is built by meson and never installed.
 */
#define FUSE_USE_VERSION 314

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FL_TIMEOUT 10.0
#define FL_BUCKETS 65536

/* One inode the kernel knows; its fuse_ino_t is this struct's address. */
struct fl_inode {
	int fd;	   /* O_PATH descriptor of the backing node */
	dev_t dev; /* backing st_dev and st_ino: the table's key */
	ino_t ino;
	uint64_t nlookup;      /* protected by fl_mu */
	atomic_bool written;   /* a WRITE since the last open: drop its pages */
	struct fl_inode *next; /* hash chain, protected by fl_mu */
};

/* An open directory. */
struct fl_dir {
	DIR *dp;
	off_t off;	      /* the offset dp is at */
	struct dirent *entry; /* read but not yet replied */
};

static struct fl_inode fl_root;
static struct fl_inode *fl_table[FL_BUCKETS];
static pthread_mutex_t fl_mu = PTHREAD_MUTEX_INITIALIZER;

static struct fl_inode *inode_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &fl_root : (struct fl_inode *)(uintptr_t)ino;
}

static size_t bucket(dev_t dev, ino_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) ^ dev) % FL_BUCKETS;
}

static void proc_path(char buf[64], int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

/*
 * Look up @name in @parent: the node's inode (one more lookup reference)
 * into @e with its attributes and timeouts. 0 or a negative errno.
 */
static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct fl_inode *in, **slot;
	int fd, err;

	memset(e, 0, sizeof(*e));
	fd = openat(inode_of(parent)->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	pthread_mutex_lock(&fl_mu);
	slot = &fl_table[bucket(e->attr.st_dev, e->attr.st_ino)];
	for (in = *slot; in; in = in->next)
		if (in->dev == e->attr.st_dev && in->ino == e->attr.st_ino)
			break;
	if (in) {
		close(fd);
	} else {
		in = calloc(1, sizeof(*in));
		if (!in) {
			pthread_mutex_unlock(&fl_mu);
			close(fd);
			return -ENOMEM;
		}
		in->fd = fd;
		in->dev = e->attr.st_dev;
		in->ino = e->attr.st_ino;
		in->next = *slot;
		*slot = in;
	}
	in->nlookup++;
	pthread_mutex_unlock(&fl_mu);
	e->ino = (uintptr_t)in;
	e->attr_timeout = e->entry_timeout = FL_TIMEOUT;
	return 0;
}

/* Drop @n lookup references of @in; the last one frees it. */
static void unref(struct fl_inode *in, uint64_t n)
{
	struct fl_inode **p;

	if (in == &fl_root)
		return;
	pthread_mutex_lock(&fl_mu);
	in->nlookup -= n;
	if (in->nlookup) {
		pthread_mutex_unlock(&fl_mu);
		return;
	}
	for (p = &fl_table[bucket(in->dev, in->ino)]; *p != in; p = &(*p)->next)
		;
	*p = in->next;
	pthread_mutex_unlock(&fl_mu);
	close(in->fd);
	free(in);
}

static void reply_entry(fuse_req_t req, int rc, struct fuse_entry_param *e)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, e);
}

static void fl_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(unsigned)FUSE_CAP_POSIX_ACL;
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
}

static void fl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	reply_entry(req, do_lookup(parent, name, &e), &e);
}

static void fl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	unref(inode_of(ino), n);
	fuse_reply_none(req);
}

static void fl_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		unref(inode_of(f[i].ino), f[i].nlookup);
	fuse_reply_none(req);
}

static void fl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (fstatat(inode_of(ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, FL_TIMEOUT);
}

static void fl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fl_inode *in = inode_of(ino);
	struct timespec tv[2];
	char path[64];
	int rc = 0;

	proc_path(path, in->fd);
	if (to_set & FUSE_SET_ATTR_MODE)
		rc = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
	if (!rc && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = fchownat(in->fd, "", (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
			      (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1,
			      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
		rc = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
	if (!rc && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		tv[0].tv_nsec = tv[1].tv_nsec = UTIME_OMIT;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		rc = fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
	}
	if (rc < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fl_getattr(req, ino, NULL);
}

static void fl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(inode_of(ino)->fd, "", buf, sizeof(buf));

	if (n < 0 || n == (ssize_t)sizeof(buf)) {
		fuse_reply_err(req, n < 0 ? errno : ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void fl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;

	if (mkdirat(inode_of(parent)->fd, name, mode) < 0)
		fuse_reply_err(req, errno);
	else
		reply_entry(req, do_lookup(parent, name, &e), &e);
}

static void fl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (symlinkat(link, inode_of(parent)->fd, name) < 0)
		fuse_reply_err(req, errno);
	else
		reply_entry(req, do_lookup(parent, name, &e), &e);
}

static void fl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (linkat(inode_of(ino)->fd, "", inode_of(parent)->fd, name, AT_EMPTY_PATH) < 0)
		fuse_reply_err(req, errno);
	else
		reply_entry(req, do_lookup(parent, name, &e), &e);
}

static void fl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, unlinkat(inode_of(parent)->fd, name, 0) < 0 ? errno : 0);
}

static void fl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, unlinkat(inode_of(parent)->fd, name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void fl_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int rc = renameat2(inode_of(parent)->fd, name, inode_of(newparent)->fd, newname, flags);

	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void fl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fl_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(inode_of(ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = fi->keep_cache = ino != FUSE_ROOT_ID;
	fuse_reply_open(req, fi);
}

/* READDIR (@plus false) or READDIRPLUS: entries from @off into one reply of @size bytes. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fl_dir *d = (struct fl_dir *)(uintptr_t)fi->fh;
	struct fuse_entry_param e;
	char *buf = calloc(1, size), *p = buf;
	size_t left = size, n;
	bool dot;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->off) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->off = off;
	}
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		dot = !strcmp(d->entry->d_name, ".") || !strcmp(d->entry->d_name, "..");
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = d->entry->d_ino;
		e.attr.st_mode = (mode_t)d->entry->d_type << 12;
		if (plus && !dot) {
			err = -do_lookup(ino, d->entry->d_name, &e);
			if (err)
				break;
		}
		n = plus ? fuse_add_direntry_plus(req, p, left, d->entry->d_name, &e,
						  d->entry->d_off)
			 : fuse_add_direntry(req, p, left, d->entry->d_name, &e.attr,
					     d->entry->d_off);
		if (n > left) {
			if (plus && !dot)
				unref(inode_of(e.ino), 1);
			break;
		}
		p += n;
		left -= n;
		d->off = d->entry->d_off;
		d->entry = NULL;
	}
	if (err && p == buf)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, (size_t)(p - buf));
	free(buf);
}

static void fl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void fl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void fl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fl_dir *d = (struct fl_dir *)(uintptr_t)fi->fh;

	(void)ino;
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void fl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fl_dir *d = (struct fl_dir *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

/* What sessionfs' fh_new sets on a regular file's open. */
static void open_flags(struct fl_inode *in, struct fuse_file_info *fi)
{
	fi->keep_cache = !atomic_exchange(&in->written, false);
	fi->noflush = 1;
}

static void fl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int fd, rc;

	fd = openat(inode_of(parent)->fd, name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW,
		    mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	rc = do_lookup(parent, name, &e);
	if (rc < 0) {
		close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)fd;
	open_flags(inode_of(e.ino), fi);
	fuse_reply_create(req, &e, fi);
}

static void fl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fl_inode *in = inode_of(ino);
	char path[64];
	int fd;

	proc_path(path, in->fd);
	fd = open(path, (fi->flags | O_CLOEXEC) & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	open_flags(in, fi);
	fuse_reply_open(req, fi);
}

static void fl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ssize_t n = pwrite((int)fi->fh, buf, size, off);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	atomic_store(&inode_of(ino)->written, true);
	fuse_reply_write(req, (size_t)n);
}

static void fl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void fl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = (int)fi->fh;

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0);
}

static void fl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(inode_of(ino)->fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fl_ops = {
	.init = fl_init,
	.lookup = fl_lookup,
	.forget = fl_forget,
	.forget_multi = fl_forget_multi,
	.getattr = fl_getattr,
	.setattr = fl_setattr,
	.readlink = fl_readlink,
	.mkdir = fl_mkdir,
	.symlink = fl_symlink,
	.link = fl_link,
	.unlink = fl_unlink,
	.rmdir = fl_rmdir,
	.rename = fl_rename,
	.opendir = fl_opendir,
	.readdir = fl_readdir,
	.readdirplus = fl_readdirplus,
	.releasedir = fl_releasedir,
	.fsyncdir = fl_fsyncdir,
	.create = fl_create,
	.open = fl_open,
	.read = fl_read,
	.write = fl_write,
	.flush = fl_flush,
	.release = fl_release,
	.fsync = fl_fsync,
	.statfs = fl_statfs,
};

/* The first two non-option arguments: BACKDIR, then MOUNTPOINT. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	char **paths = data;

	(void)outargs;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (!paths[0]) {
		paths[0] = strdup(arg);
		return 0;
	}
	return 1; /* the mount point: fuse_parse_cmdline takes it */
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct fuse_loop_config *config;
	struct fuse_session *se = NULL;
	char *paths[1] = {NULL};
	int rc = 1;

	if (fuse_opt_parse(&args, paths, NULL, opt_proc) < 0 || fuse_parse_cmdline(&args, &cmd) < 0)
		return 2;
	if (cmd.show_help || !paths[0] || !cmd.mountpoint) {
		printf("usage: floorfs [-f] [-d] [-s] BACKDIR MOUNTPOINT\n");
		return cmd.show_help ? 0 : 2;
	}
	fl_root.fd = open(paths[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fl_root.fd < 0) {
		fprintf(stderr, "floorfs: cannot open %s: %s\n", paths[0], strerror(errno));
		return 1;
	}
	fl_root.nlookup = 2;
	if (fuse_opt_add_arg(&args, "-osubtype=floorfs,nodev,nosuid") < 0)
		return 1;
	se = fuse_session_new(&args, &fl_ops, sizeof(fl_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) < 0 || fuse_session_mount(se, cmd.mountpoint) < 0)
		goto out;
	fuse_daemonize(cmd.foreground);
	if (cmd.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		config = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(config, cmd.clone_fd);
		if (cmd.max_threads > 0 && cmd.max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(config, cmd.max_threads);
		if (cmd.max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(config, cmd.max_idle_threads);
		rc = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
	}
	fuse_session_unmount(se);
out:
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	free(paths[0]);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return rc ? 1 : 0;
}
