/*
 * node.c - attributes of the nodes inside sessions: loading their headers,
 * answering stat, storing changed attributes, logging corruption.
 *
 * Backing timestamps, link counts and sizes are the store's; mode, owner and
 * group come from the sealed header. Knows the core library; replies to no
 * request. Calls the inode table (inode.c: sfs_reopen, sfs_ino_of), which
 * never calls back into this file.
 */
#include "fs.h"
#include "fileio.h"
#include "symlink.h"
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* Where @in's backing node is now, for the log ("" if unknown). */
static void backing_path(const struct sfs_inode *in, char path[PATH_MAX])
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", in->fd);
	n = readlink(link, path, PATH_MAX - 1);
	path[n > 0 ? n : 0] = '\0';
}

void sfs_log_corrupt(const struct sfs_inode *in, const char *what, long long block)
{
	char path[PATH_MAX];

	backing_path(in, path);
	if (block >= 0)
		sfs_syslog(LOG_ERR, "%s: corrupt file %s: block %lld failed authentication",
			   in->sess ? in->sess->id : "?", path, block);
	else
		sfs_syslog(LOG_ERR, "%s: corrupt %s: %s failed authentication",
			   in->sess ? in->sess->id : "?", path, what);
}

/*
 * Which types a node's header may say for its backing type: a directory is a
 * directory; a backing regular file is a file node: a regular file (of any
 * kind), or, header only, a FIFO, socket or device node, or a symlink in the
 * long form (its target is its content). 0 or -EUCLEAN (damaged).
 */
static int check_type(mode_t backing, const struct sfs_attrs *a)
{
	switch (a->mode & S_IFMT) {
	case S_IFDIR:
		return backing == S_IFDIR ? 0 : -EUCLEAN;
	case S_IFREG:
		return backing == S_IFREG ? 0 : -EUCLEAN;
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return backing == S_IFREG && a->kind == SFS_KIND_BLOCKS ? 0 : -EUCLEAN;
	}
	return -EUCLEAN;
}

static int check_tail(struct sfs_inode *in, const struct sfs_keys *keys,
		      const unsigned char id[SFS_ID_BYTES], uint16_t kind);

/* Read the header of @in; called with in->mu held. */
static int load_locked(struct sfs_inode *in, const struct sfs_keys *keys)
{
	char target[PATH_MAX];
	struct stat st;
	uint64_t plain;
	int fd, rc;

	switch (in->type) {
	case S_IFDIR:
		rc = sfs_tree_dir_load(in->fd, in->id, &in->attrs, keys);
		return rc < 0 ? rc : check_type(in->type, &in->attrs);
	case S_IFREG:
		fd = in->fd_rw ? in->fd : sfs_reopen(in, O_RDONLY);
		if (fd < 0)
			return fd;
		/* An empty backing file has no header: this version never writes one. */
		if (fstat(fd, &st) < 0)
			rc = sfs_neg_errno();
		else if (st.st_size == 0)
			rc = -EBADMSG;
		else
			rc = sfs_file_read_header(fd, in->id, &in->attrs, keys);
		if (fd != in->fd)
			close(fd);
		if (rc == 0)
			rc = check_type(in->type, &in->attrs);
		/*
		 * A size no file has (a crash during a write): its tail record
		 * goes back before anyone sees the size (ops_file.c does the
		 * other cases at the first open). Nothing uses the inode yet.
		 */
		if (rc == 0 && S_ISREG(in->attrs.mode) && in->attrs.kind != SFS_KIND_LOG &&
		    sfs_file_plain_size((uint64_t)st.st_size, &plain) < 0)
			check_tail(in, keys, in->id, in->attrs.kind);
		return rc;
	case S_IFLNK:
		rc = sfs_symlink_read_short(in->fd, target, keys);
		if (rc < 0)
			return rc;
		in->linklen = strlen(target);
		sodium_memzero(target, sizeof(target));
		if (fstat(in->fd, &st) < 0)
			return sfs_neg_errno();
		in->attrs = (struct sfs_attrs){S_IFLNK | 0777, st.st_uid, st.st_gid, 0, 0};
		return 0;
	}
	return -EIO;
}

int sfs_node_load(struct sfs_inode *in, const struct sfs_keys *keys)
{
	int rc = 0;

	if (in->kind != SFS_INODE_SESSION && in->kind != SFS_INODE_NODE)
		return 0;
	pthread_mutex_lock(&in->mu);
	if (!in->loaded) {
		rc = load_locked(in, keys);
		if (rc == -EBADMSG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT) {
			sfs_log_corrupt(in, in->type == S_IFDIR ? "directory header" : "header",
					-1);
			atomic_store(&in->bad, true);
			in->attrs = (struct sfs_attrs){in->type | 0600, sfs->owner, sfs->owner_gid,
						       0, 0};
			if (in->type == S_IFDIR)
				in->attrs.mode |= 0100;
			rc = 0;
		}
		if (rc == 0)
			in->loaded = true;
	}
	pthread_mutex_unlock(&in->mu);
	return rc;
}

int sfs_node_stat(struct sfs_inode *in, struct stat *st)
{
	uint64_t plain;
	mode_t type;

	if (in->kind == SFS_INODE_CTL) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | SFS_PROTO_CTL_MODE;
		st->st_nlink = 1;
		st->st_uid = sfs->owner;
		st->st_gid = sfs->owner_gid;
		return 0;
	}
	if (in->kind == SFS_INODE_CURRENT)
		return sfs_current_stat(st);
	if (fstat(in->fd, st) < 0)
		return sfs_neg_errno();
	/*
	 * Nodes keep the backing inode number, as readdir's d_ino does: it is
	 * shared by hard links and stable while the file exists (tar, cp -a
	 * and rsync -H rely on that). The mount root and sessions/ and
	 * archive/ are the daemon's own, numbered as readdir of the root says.
	 */
	if (in->kind == SFS_INODE_ROOT || in->kind == SFS_INODE_TOP) {
		st->st_ino = sfs_ino_of(in);
		st->st_mode = S_IFDIR | 0755;
		st->st_uid = sfs->owner;
		st->st_gid = sfs->owner_gid;
		return 0;
	}
	pthread_mutex_lock(&in->mu);
	if (!in->loaded) {
		/* A locked session root: visible, not enterable. */
		st->st_mode = S_IFDIR | 0700;
		st->st_uid = sfs->owner;
		st->st_gid = sfs->owner_gid;
		pthread_mutex_unlock(&in->mu);
		return 0;
	}
	st->st_mode = (mode_t)in->attrs.mode;
	st->st_uid = in->attrs.uid;
	st->st_gid = in->attrs.gid;
	type = st->st_mode & S_IFMT;
	st->st_rdev = S_ISCHR(type) || S_ISBLK(type) ? in->attrs.rdev : 0;
	if (in->type == S_IFLNK)
		st->st_size = (off_t)in->linklen;
	if (in->type == S_IFREG && in->attrs.kind == SFS_KIND_LOG) {
		/* events.jsonl: the size unlock found, kept by every append; no read. */
		st->st_size = (off_t)atomic_load(&in->sess->c.ev.size);
		pthread_mutex_unlock(&in->mu);
		return 0;
	}
	pthread_mutex_unlock(&in->mu);
	if (in->type == S_IFREG) {
		/* A file's or long symlink target's length; a FIFO, socket or device has none. */
		sfs_file_plain_size((uint64_t)st->st_size, &plain);
		st->st_size = S_ISREG(type) || S_ISLNK(type) ? (off_t)plain : 0;
	}
	return 0;
}

mode_t sfs_node_type(struct sfs_inode *in)
{
	mode_t type;

	pthread_mutex_lock(&in->mu);
	type = in->loaded ? (mode_t)in->attrs.mode & S_IFMT : in->type;
	pthread_mutex_unlock(&in->mu);
	return type;
}

int sfs_node_readlink(struct sfs_inode *in, char out[PATH_MAX], const struct sfs_keys *keys)
{
	int fd, rc;

	out[0] = '\0';
	if (sfs_node_type(in) != S_IFLNK)
		return -EINVAL;
	if (in->type == S_IFLNK) {
		rc = sfs_symlink_read_short(in->fd, out, keys);
	} else {
		/* The long form: the target is the file node's one block. */
		fd = sfs_reopen(in, O_RDONLY);
		if (fd < 0)
			return fd;
		rc = sfs_symlink_read_long(fd, in->id, out, NULL, keys);
		close(fd);
	}
	if (rc == -EBADMSG)
		sfs_log_corrupt(in, "symlink target", -1);
	return rc;
}

unsigned char sfs_node_dtype(int dirfd, const char *backing, unsigned char d_type,
			     const struct sfs_keys *keys)
{
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	uint64_t plain;
	struct stat st;
	int fd, rc;

	if (d_type != DT_REG && d_type != DT_UNKNOWN)
		return d_type;
	if (fstatat(dirfd, backing, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return DT_UNKNOWN;
	if (!S_ISREG(st.st_mode))
		return IFTODT(st.st_mode);
	/*
	 * Only a header-only file node may be a FIFO, socket or device, and only
	 * one of a long target's size a long symlink: any other file is regular
	 * without a look at its header.
	 */
	if (sfs_file_plain_size((uint64_t)st.st_size, &plain) < 0 ||
	    (!sfs_file_header_only((uint64_t)st.st_size) && !sfs_symlink_long_size(plain)))
		return DT_REG;
	fd = openat(dirfd, backing, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return DT_UNKNOWN;
	rc = sfs_file_read_header(fd, id, &a, keys);
	close(fd);
	/* Unreadable now (damaged, or a chmod in flight): whoever lists it stats it. */
	if (rc < 0 || check_type(S_IFREG, &a) < 0)
		return DT_UNKNOWN;
	return IFTODT(a.mode);
}

int sfs_node_store_attrs(struct sfs_inode *in, const struct sfs_attrs *a, int fd,
			 const struct sfs_keys *keys)
{
	int rc = 0, own = -1;
	struct stat st;

	/* A file's header also changes kind under in->io (fileio.h "Holes"). */
	if (in->type == S_IFREG)
		pthread_rwlock_rdlock(&in->io);
	pthread_mutex_lock(&in->mu);
	switch (in->type) {
	case S_IFDIR:
		rc = sfs_tree_dir_store(in->fd, in->id, a, keys);
		/*
		 * The header is a file inside: its rewrite leaves the directory's
		 * own times. chmod/chown move ctime (ext4 does): a no-op chown does.
		 */
		if (rc == 0 && fchownat(in->fd, "", (uid_t)-1, (gid_t)-1,
					AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			rc = sfs_neg_errno();
		break;
	case S_IFREG:
		if (fd < 0 && in->fd_rw)
			fd = in->fd;
		if (fd < 0)
			fd = own = sfs_reopen(in, O_WRONLY);
		/* A header rewrite is chmod/chown: ctime changes, mtime must not. */
		rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? sfs_neg_errno() : 0;
		if (rc == 0) {
			/* The kind now (io held): a write may have changed it since @a was read. */
			struct sfs_attrs cur = *a;

			cur.kind = in->attrs.kind;
			rc = sfs_file_write_header(fd, in->id, &cur, keys);
		}
		if (rc == 0)
			futimens(fd, (struct timespec[2]){st.st_atim, st.st_mtim});
		if (own >= 0)
			close(own);
		break;
	case S_IFLNK:
		if (fchownat(in->fd, "", a->uid, a->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			rc = sfs_neg_errno();
		break;
	}
	if (rc == 0) {
		/* Not the kind: content calls change it, under io held for writing. */
		in->attrs.mode = a->mode;
		in->attrs.uid = a->uid;
		in->attrs.gid = a->gid;
		in->attrs.rdev = a->rdev;
	}
	pthread_mutex_unlock(&in->mu);
	if (in->type == S_IFREG)
		pthread_rwlock_unlock(&in->io);
	return rc;
}

bool sfs_node_is_log(struct sfs_inode *in)
{
	bool log;

	pthread_mutex_lock(&in->mu);
	log = in->attrs.kind == SFS_KIND_LOG;
	pthread_mutex_unlock(&in->mu);
	return log;
}

void sfs_node_file_begin(struct sfs_inode *in, struct sfs_file *f, struct sfs_renewal *rn)
{
	pthread_mutex_lock(&in->mu);
	memcpy(f->id, in->id, SFS_ID_BYTES);
	f->sparse = in->attrs.kind == SFS_KIND_SPARSE;
	pthread_mutex_unlock(&in->mu);
	f->fresh = in->fresh_id;
	if (!rn)
		return;
	memset(rn, 0, sizeof(*rn));
	rn->in = in;
	memcpy(rn->old_id, f->id, SFS_ID_BYTES);
	f->renew = sfs_node_xattr_renew;
	f->renew_arg = rn;
}

void sfs_node_file_end(struct sfs_inode *in, const struct sfs_file *f, struct sfs_renewal *rn)
{
	bool moved = memcmp(f->id, rn->old_id, SFS_ID_BYTES) != 0;

	in->fresh_id = f->fresh;
	pthread_mutex_lock(&in->mu);
	if (in->attrs.kind != SFS_KIND_LOG)
		in->attrs.kind = f->sparse ? SFS_KIND_SPARSE : SFS_KIND_BLOCKS;
	if (moved)
		memcpy(in->id, f->id, SFS_ID_BYTES);
	pthread_mutex_unlock(&in->mu);
	sfs_node_xattr_renewed(rn, moved);
}

/* sfs_node_check_tail of @in, whose id and kind (read under in->mu) are @id and @kind. */
static int check_tail(struct sfs_inode *in, const struct sfs_keys *keys,
		      const unsigned char id[SFS_ID_BYTES], uint16_t kind)
{
	struct sfs_file f = {.fd = in->fd, .keys = keys};
	char path[PATH_MAX];
	uint64_t was, now;
	int rc, rootfd;

	if (atomic_exchange(&in->tail_checked, true) || kind == SFS_KIND_LOG)
		return 0;
	memcpy(f.id, id, SFS_ID_BYTES);
	f.sparse = kind == SFS_KIND_SPARSE;
	if (!in->fd_rw)
		f.fd = sfs_reopen(in, O_RDWR);
	if (f.fd < 0)
		return f.fd;
	rootfd = sfs_session_rootfd(in->sess);
	rc = sfs_file_recover_tail(&f, rootfd, &was, &now);
	if (rootfd >= 0)
		close(rootfd);
	if (f.fd != in->fd)
		close(f.fd);
	if (rc <= 0)
		return rc;
	backing_path(in, path);
	if (was == UINT64_MAX)
		sfs_syslog(LOG_WARNING,
			   "%s: file %s: its size was one no file has (a crash during a write); "
			   "the block its last fsync left was put back from its tail record and "
			   "the bytes after it, never fsynced, cut: now %llu bytes",
			   in->sess->id, path, (unsigned long long)now);
	else
		sfs_syslog(LOG_WARNING,
			   "%s: file %s: its last block failed authentication (a crash during a "
			   "write); the block its last fsync left was put back from its tail "
			   "record and the bytes after it, never fsynced, cut: %llu -> %llu bytes",
			   in->sess->id, path, (unsigned long long)was, (unsigned long long)now);
	return 1;
}

int sfs_node_check_tail(struct sfs_inode *in, const struct sfs_keys *keys)
{
	unsigned char id[SFS_ID_BYTES];
	uint16_t kind;

	pthread_mutex_lock(&in->mu);
	memcpy(id, in->id, SFS_ID_BYTES);
	kind = in->attrs.kind;
	pthread_mutex_unlock(&in->mu);
	return check_tail(in, keys, id, kind);
}

int sfs_node_headerless(struct sfs_inode *in, const struct sfs_keys *keys)
{
	struct sfs_attrs a = {S_IFREG | 0600, sfs->owner, sfs->owner_gid, 0, SFS_KIND_BLOCKS};
	unsigned char id[SFS_ID_BYTES];
	char path[PATH_MAX];
	struct stat st;
	int fd, rc = 0;

	if (in->type != S_IFREG || !atomic_load(&in->bad))
		return 0;
	/* The id and kind of a loaded regular file change under io held for writing. */
	pthread_rwlock_wrlock(&in->io);
	pthread_mutex_lock(&in->mu);
	if (!in->bad || !in->loaded)
		goto out;
	fd = in->fd_rw ? in->fd : sfs_reopen(in, O_RDWR);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	if (fstat(fd, &st) < 0)
		rc = sfs_neg_errno();
	else if (st.st_size == 0) {
		sfs_crypto_random(id, sizeof(id));
		rc = sfs_file_init(fd, id, &a, keys);
		if (rc == 0) {
			memcpy(in->id, id, SFS_ID_BYTES);
			in->attrs = a;
			atomic_store(&in->bad, false);
			rc = 1;
		}
	}
	if (fd != in->fd)
		close(fd);
out:
	pthread_mutex_unlock(&in->mu);
	pthread_rwlock_unlock(&in->io);
	if (rc == 1) {
		backing_path(in, path);
		sfs_syslog(LOG_WARNING,
			   "%s: file %s had no header (created right before a crash, its header "
			   "never reached the disk): it is now an empty file, mode 0600",
			   in->sess->id, path);
	}
	return rc;
}
