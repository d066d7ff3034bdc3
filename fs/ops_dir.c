/*
 * ops_dir.c - FUSE operations on directories: opendir, readdir,
 * readdirplus, releasedir, fsyncdir, mkdir, rmdir; and the hooks every
 * namespace transaction (tree_ops.h) gets from fs/.
 *
 * The mount root lists sessions/ and archive/; those list session ids; a
 * session directory lists its decrypted names (entries that fail
 * authentication are logged and skipped). The control file is never listed.
 * READDIRPLUS fills the entries of session directories with attributes, as
 * LOOKUP would, so that ls -l, find and rm -rf need no LOOKUP per entry.
 */
#include "ops.h"
#include "tree.h"
#include "tree_ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PREFETCH 64	/* entries whose headers a listing asks for at once */
#define PREFETCH_SUB 16 /* entries of each new subdirectory it asks for too */

static bool prefetched(const struct sfs_inode *in);

/* The backing directory stream of @dh on @in, opened at the first need: 0 or -errno. */
static int dh_dir(struct sfs_inode *in, struct sfs_dh *dh)
{
	int fd, rc;

	if (dh->d)
		return 0;
	fd = openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dh->d = fd >= 0 ? fdopendir(fd) : NULL;
	if (dh->d) {
		if (in->kind == SFS_INODE_NODE && prefetched(in))
			dh->ahead = PREFETCH_SUB; /* its parent's listing asked for these */
		return 0;
	}
	rc = sfs_neg_errno();
	if (fd >= 0)
		close(fd);
	return rc;
}

void sfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	struct sfs_dh *dh;
	int rc = 0;

	if (in->kind == SFS_INODE_CTL) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (sfs_in_session(in)) {
		rc = sfs_enter_node(in, &keys);
		if (rc < 0) {
			sfs_reply_err(req, rc);
			return;
		}
		if (in->bad)
			rc = -EIO;
		sfs_session_leave(in->sess);
		if (rc < 0) {
			sfs_reply_err(req, rc);
			return;
		}
	}
	/*
	 * The backing directory is opened at the first READDIR (dh_dir): a
	 * listing the kernel has cached needs none.
	 */
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)dh;
	/*
	 * Below a session root, the kernel may keep listings across opens:
	 * every change goes through this mount, which bumps the directory's
	 * version, and a lock drops the cache (notify.c). Not the root, whose
	 * metadata.json the daemon replaces, nor the mount's own directories.
	 */
	if (in->kind == SFS_INODE_NODE)
		fi->cache_readdir = fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/*
 * Add one entry to a READDIR (@e NULL) or READDIRPLUS reply; bytes it needs,
 * which may be more than @size (then nothing was added).
 */
static size_t add_entry(fuse_req_t req, char *buf, size_t size, const char *name,
			const struct stat *st, const struct fuse_entry_param *e, off_t next)
{
	struct fuse_entry_param bare;

	if (!e)
		return fuse_add_direntry(req, buf, size, name, st, next);
	if (!e->ino) {
		/* No attributes (".", "..", sessions): the kernel looks it up if needed. */
		memset(&bare, 0, sizeof(bare));
		bare.attr = *st;
		e = &bare;
	}
	return fuse_add_direntry_plus(req, buf, size, name, e, next);
}

/* The mount root: ".", "..", sessions, archive at offsets 1..4. */
static size_t root_entries(fuse_req_t req, bool plus, char *buf, size_t size, off_t off)
{
	static const char *const names[] = {".", "..", SFS_SESSIONS_DIR, SFS_ARCHIVE_DIR,
					    SFS_CURRENT_NAME};
	struct fuse_entry_param none = {0};
	struct stat st = {.st_mode = S_IFDIR};
	char id[SFS_SESSION_ID_MAX + 1];
	/* current only while `sessionctl use` names a session */
	off_t count = sfs_current_get(id) ? 5 : 4;
	size_t pos = 0;

	for (off_t i = off; i < count; i++) {
		size_t n;

		st.st_ino =
			i < 2 ? FUSE_ROOT_ID : sfs_ino_of(i < 4 ? &sfs->top[i - 2] : &sfs->current);
		st.st_mode = i < 4 ? S_IFDIR : S_IFLNK;
		n = add_entry(req, buf + pos, size - pos, names[i], &st, plus ? &none : NULL,
			      i + 1);
		if (n > size - pos)
			break;
		pos += n;
	}
	return pos;
}

/* Name to show for backing entry @de of @in, or NULL to skip it. */
static const char *entry_name(struct sfs_inode *in, DIR *d, const struct dirent *de,
			      const struct sfs_keys *keys, char *plain)
{
	int rc;

	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
		return de->d_name;
	if (in->kind == SFS_INODE_TOP)
		return sfs_id_valid(de->d_name) ? de->d_name : NULL;
	rc = sfs_tree_name_read(dirfd(d), de->d_name, in->id, keys, plain);
	if (rc == -EBADMSG)
		sfs_syslog(LOG_ERR, "%s: corrupt name %s in a directory: skipped", in->sess->id,
			   de->d_name);
	return rc == 0 ? plain : NULL;
}

/*
 * READDIRPLUS: the entry of node @name (backing @de) of session directory
 * @in, as a lookup would make it (one lookup reference), so that ls -l needs
 * no LOOKUP per file. e->ino stays 0 for "." and "..", and when the node
 * cannot be read: the kernel then looks it up itself.
 */
static void plus_entry(struct sfs_inode *in, DIR *d, const struct dirent *de, const char *name,
		       const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	if (in->kind == SFS_INODE_TOP || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return;
	if (sfs_entry_at(in, dirfd(d), de->d_name, keys, e) == 0)
		sfs_mark_special(in, name, keys, e);
	else
		memset(e, 0, sizeof(*e));
}

/* POSIX_FADV_WILLNEED on the header block of node @name below @at. */
static void willneed(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0) {
		posix_fadvise(fd, 0, SFS_HDR_BYTES, POSIX_FADV_WILLNEED);
		close(fd);
	}
}

/*
 * Backing names of nodes are base64url (tree.h): a name with a dot is ".",
 * "..", or the store's own (.sfsdir, .sfsx, .sfstail, temporary names,
 * name sidecars), which a listing never shows and the prefetch skips.
 */
static bool internal_name(const char *name)
{
	return strchr(name, '.') != NULL;
}

/*
 * Subdirectories whose first PREFETCH_SUB entries were all asked for by
 * their parent's listing: their own first listing skips that window. A hint
 * as well: a slot is overwritten by another directory, or taken by that
 * first listing; a directory whose slot is lost is prefetched twice.
 */
#define RECENT_BITS 12
static _Atomic uint64_t recent[1u << RECENT_BITS];

/* Never 0, the empty slot's value; the slot is the top bits (the mixed ones). */
static uint64_t recent_key(dev_t dev, ino_t ino)
{
	return (((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ull) | 1;
}

static _Atomic uint64_t *recent_slot(uint64_t key)
{
	return &recent[key >> (64 - RECENT_BITS)];
}

/*
 * Ask for the headers of subdirectory @sub of @at: its .sfsdir and the
 * files among its first PREFETCH_SUB entries. Its block is read to find
 * them (finding .sfsdir read it anyway). Recorded in recent[] only if that
 * window held no directory: a subdirectory's own header is found through
 * its block, which is left for the subdirectory's own listing to read.
 */
static void prefetch_subdir(int at, dev_t dev, const struct dirent *sub)
{
	char buf[4096] __attribute__((aligned(8)));
	bool whole = true;
	ssize_t got, pos;
	int fd, n;

	fd = openat(at, sub->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	willneed(fd, SFS_DIRHDR_NAME);
	got = getdents64(fd, buf, sizeof(buf));
	for (pos = 0, n = 0; pos < got && n < PREFETCH_SUB; n++) {
		const struct dirent64 *de = (const struct dirent64 *)(buf + pos);

		pos += de->d_reclen;
		if (internal_name(de->d_name))
			continue;
		if (de->d_type == DT_REG)
			willneed(fd, de->d_name);
		else if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)
			whole = false;
	}
	close(fd);
	/* PREFETCH_SUB entries, or all: a short read had room for another. */
	if (got < 0 || (n < PREFETCH_SUB && (size_t)got + sizeof(struct dirent64) > sizeof(buf)))
		whole = false;
	if (whole) {
		uint64_t key = recent_key(dev, sub->d_ino);

		atomic_store(recent_slot(key), key);
	}
}

/* Did @in's parent's listing ask for all of @in's first PREFETCH_SUB entries? */
static bool prefetched(const struct sfs_inode *in)
{
	uint64_t key = recent_key(in->bdev, in->bino);

	return atomic_compare_exchange_strong(recent_slot(key), &key, 0);
}

/*
 * Cold listings: a node's attributes are in its sealed header, so listing a
 * directory the page cache has forgotten costs one read of a header block
 * per entry (a file's first block, a directory's .sfsdir), each waited for
 * in turn as list_dir (or the LOOKUPs after a plain READDIR) loads them.
 * Ask the kernel for the next PREFETCH entries' headers at once
 * (POSIX_FADV_WILLNEED), so the disk gets them together. Nodes the inode
 * table holds have their header loaded and are skipped. A hint only:
 * nothing is read or trusted here, errors are ignored, and the position of
 * @d (a stream of a backing directory on @dev) is kept.
 *
 * A subdirectory not yet in the table is likely listed next (ls -l of a
 * glob, find, grep -r): prefetch_subdir asks for its files' headers too, so
 * that they go to the disk with the rest of the window instead of one
 * directory at a time.
 */
static void prefetch_headers(DIR *d, dev_t dev)
{
	long pos = telldir(d);
	struct dirent *de;

	for (int i = 0; i < PREFETCH && (de = readdir(d)); i++) {
		if (internal_name(de->d_name) || (de->d_type != DT_REG && de->d_type != DT_DIR) ||
		    sfs_inode_number(dev, de->d_ino))
			continue;
		if (de->d_type == DT_REG)
			willneed(dirfd(d), de->d_name);
		else
			prefetch_subdir(dirfd(d), dev, de);
	}
	seekdir(d, pos);
}

static int list_dir(fuse_req_t req, bool plus, struct sfs_inode *in, struct sfs_dh *dh, char *buf,
		    size_t size, off_t off, const struct sfs_keys *keys, size_t *out)
{
	char plain[SFS_NAME_MAX + 1];
	struct fuse_entry_param e;
	DIR *d = dh->d;
	size_t pos = 0;

	if (off != telldir(d)) {
		seekdir(d, off);
		dh->ahead = 0;
	}
	for (;;) {
		long before = telldir(d);
		struct dirent *de;
		const char *name;
		struct stat st = {0};
		size_t n, mark;

		if (keys && dh->ahead-- <= 0) {
			prefetch_headers(d, in->bdev); /* the backing directory's device */
			dh->ahead = PREFETCH - 1;
		}
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				return sfs_neg_errno();
			break;
		}
		name = entry_name(in, d, de, keys, plain);
		if (!name)
			continue;
		st.st_ino = de->d_ino;
		/* Each entry's node is pinned only while its entry is made. */
		mark = sfs_pin_mark();
		if (plus)
			plus_entry(in, d, de, name, keys, &e);
		/*
		 * A backing regular file may be a FIFO, socket, device or long
		 * symlink. An entry READDIRPLUS filled says its type itself.
		 */
		if (!plus || !e.ino)
			st.st_mode = (mode_t)(keys ? sfs_node_dtype(dirfd(d), de->d_name,
								    de->d_type, keys)
						   : de->d_type)
				     << 12;
		n = add_entry(req, buf + pos, size - pos, name, &st, plus ? &e : NULL, telldir(d));
		if (n > size - pos) {
			if (plus && e.ino)
				sfs_inode_unref(sfs_inode_of(e.ino), 1); /* not sent */
			sfs_pin_release(mark);
			seekdir(d, before);
			dh->ahead++; /* read again next time */
			break;
		}
		sfs_pin_release(mark);
		pos += n;
	}
	sodium_memzero(plain, sizeof(plain));
	*out = pos;
	return 0;
}

static void do_readdir(fuse_req_t req, bool plus, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_dh *dh = (struct sfs_dh *)(uintptr_t)fi->fh;
	const struct sfs_keys *keys = NULL;
	char *buf = calloc(1, size);
	size_t pos = 0;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (in->kind == SFS_INODE_ROOT) {
		fuse_reply_buf(req, buf, root_entries(req, plus, buf, size, off));
	} else if (in->kind == SFS_INODE_TOP) {
		rc = dh_dir(in, dh);
		if (rc == 0)
			rc = list_dir(req, plus, in, dh, buf, size, off, NULL, &pos);
		if (rc == 0)
			fuse_reply_buf(req, buf, pos);
	} else {
		/*
		 * Names are replied from inside the session, as reads
		 * (ops_file.c); after the reply, only @s is used.
		 */
		struct sfs_session *s = in->sess;

		rc = sfs_session_enter(s, &keys);
		if (rc == 0) {
			/* held open across a rekey: the old container's (sfs_inode_stale) */
			rc = sfs_inode_stale(in) ? -EIO : dh_dir(in, dh);
			if (rc == 0)
				rc = list_dir(req, plus, in, dh, buf, size, off, keys, &pos);
			if (rc == 0)
				fuse_reply_buf(req, buf, pos);
			sfs_session_leave(s);
		}
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	free(buf);
}

void sfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, false, ino, size, off, fi);
}

void sfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, true, ino, size, off, fi);
}

void sfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_dh *dh = (struct sfs_dh *)(uintptr_t)fi->fh;

	(void)ino;
	if (dh->d)
		closedir(dh->d);
	free(dh);
	fuse_reply_err(req, 0);
}

void sfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	struct sfs_dh *dh = (struct sfs_dh *)(uintptr_t)fi->fh;
	int rc = 0;

	(void)datasync; /* a directory's entries are its data */
	if (in->kind != SFS_INODE_ROOT)
		rc = dh_dir(in, dh);
	/*
	 * Its entries, and its header (attributes a chmod rewrote in place:
	 * a new directory's was made durable before it was published); the
	 * first time for a new directory, also its own name.
	 */
	if (rc == 0 && dh->d)
		rc = sfs_in_session(in) ? sfs_tree_dir_sync(dirfd(dh->d))
					: sfs_fsync_dirfd(dirfd(dh->d));
	if (rc == 0 && in->kind == SFS_INODE_NODE)
		rc = sfs_sync_name(in, dirfd(dh->d));
	fuse_reply_err(req, rc < 0 ? sfs_errno_out(rc) : 0);
}

static int do_mkdir(fuse_req_t req, struct sfs_inode *p, const char *name, mode_t mode,
		    const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	struct sfs_attrs a = {.mode = S_IFDIR | (mode & 07777)};
	struct sfs_tree_new n;
	int rc;

	if (p->bad)
		return -EIO;
	sfs_new_owner(req, p, &a);
	rc = sfs_tree_mkdir(p->fd, p->id, name, &a, keys, &n);
	if (rc < 0)
		return rc;
	rc = sfs_make_entry(p, n.en.backing, n.fd, keys, n.id, &a, e);
	if (rc == 0)
		sfs_name_is_new(e);
	return rc;
}

void sfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct fuse_entry_param e;
	const struct sfs_keys *keys;
	int rc;

	if (!sfs_in_session(p)) {
		/* A session needs a password: sessionctl new makes them. */
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = sfs_enter_node(p, &keys);
	if (rc == 0) {
		rc = do_mkdir(req, p, name, mode, keys, &e);
		if (rc == 0)
			sfs_session_changed(p->sess);
		sfs_session_leave(p->sess);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void hook_victim(void *arg, int dirfd, const char *backing)
{
	struct sfs_ns_hook *h = arg;

	(void)dirfd; /* h->p's */
	if (h->xv)
		sfs_node_xattr_victim(h->p, backing, h->xv);
	/* Its descriptor is kept while it has no name (inode_fd.c). */
	h->victim = sfs_inode_pin_name(h->p, backing);
	snprintf(h->vname, sizeof(h->vname), "%s", backing);
}

static void hook_warn(void *arg, int what, const char *name, const char *other, int rc)
{
	struct sfs_ns_hook *h = arg;

	switch (what) {
	case SFS_TREE_WARN_REAP:
		sfs_syslog(LOG_WARNING, "cannot remove the retired directory %s: %s", name,
			   strerror(-rc));
		break;
	case SFS_TREE_WARN_UNRETIRE:
		sfs_syslog(LOG_ERR, "cannot put back directory %s as %s after a failed rename",
			   name, other);
		break;
	default:
		sfs_syslog(LOG_WARNING, "%s: cannot set a symlink's owner", h->p->sess->id);
		break;
	}
}

void sfs_ns_hooks(struct sfs_tree_hooks *h, struct sfs_ns_hook *arg, struct sfs_inode *p,
		  struct sfs_node_xattr_victim *xv)
{
	arg->p = p;
	arg->xv = xv;
	arg->victim = NULL;
	h->victim = hook_victim;
	h->warn = hook_warn;
	h->arg = arg;
}

static int do_rmdir(struct sfs_inode *p, const char *name, const struct sfs_keys *keys)
{
	struct sfs_node_xattr_victim xv = {0};
	struct sfs_tree_hooks h;
	struct sfs_ns_hook arg;
	int rc;

	if (p->bad)
		return -EIO;
	sfs_ns_hooks(&h, &arg, p, &xv);
	rc = sfs_tree_rmdir(p->fd, p->id, name, keys, &h);
	if (rc == 0)
		sfs_node_xattr_gone(p->sess, &xv);
	if (rc == 0 && arg.victim)
		sfs_inode_unname(arg.victim, p, arg.vname, false); /* kept: a cwd still works */
	return rc;
}

void sfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	const struct sfs_keys *keys;
	int rc;

	if (!sfs_in_session(p)) {
		fuse_reply_err(req, EPERM); /* sessionctl delete removes sessions */
		return;
	}
	rc = sfs_enter_node(p, &keys);
	if (rc == 0) {
		rc = do_rmdir(p, name, keys);
		if (rc == 0)
			sfs_session_changed(p->sess);
		sfs_session_leave(p->sess);
	}
	fuse_reply_err(req, rc < 0 ? sfs_errno_out(rc) : 0);
}
