/*
 * ops_xattr.c - FUSE operations on extended attributes (-o xattr):
 * getxattr, setxattr, listxattr, removexattr; and dropping what the store
 * keeps beside a node under its id when its last link goes (its attributes,
 * a file's tail file: lib/fileio.h "Tail records").
 *
 * Only "user." attributes exist, on the files and directories of unlocked
 * sessions, sealed per node by lib/xattr.c (names kept without the prefix).
 * Every other namespace is answered at once, without entering a session
 * or touching the store: ls -l asks security.selinux and
 * system.posix_acl_access of every file, and the kernel asks
 * security.capability before every write. Without -o xattr every
 * operation replies ENOSYS, which the kernel remembers for the mount: it
 * never asks again, so ls -l and writes pay nothing.
 *
 * A node's read-modify-write runs under one of its session's
 * SFS_XATTR_STRIPES mutexes (session->xattr_mu), picked by its id; the lock
 * order is doc/locking.md's.
 */
#include "ops.h"
#include "fileio.h"
#include "tree.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <unistd.h>

#define USER_PREFIX "user."
#define USER_PREFIX_LEN (sizeof(USER_PREFIX) - 1)
/*
 * The lock of node @id's attributes in session @s: held from a blob's load
 * to its store (written and fsynced), so one per session and stripe, never
 * shared with another session.
 */
static pthread_mutex_t *xmu_of(struct sfs_session *s, const unsigned char id[SFS_ID_BYTES])
{
	return &s->xattr_mu[id[0] % SFS_XATTR_STRIPES];
}

/*
 * Is @name in the one namespace stored? A get, set or remove in any other
 * is EOPNOTSUPP, as on a file system without it (ext4 -o noacl for POSIX
 * ACLs): ls and cp take that as "no label, no ACL", and ls stops asking
 * for the rest of the listing.
 */
static bool is_user(const char *name)
{
	return strncmp(name, USER_PREFIX, USER_PREFIX_LEN) == 0;
}

/* The session root of @s (the tree's backing directory): an O_PATH fd or -errno. */

/*
 * The id under which @in's attributes are stored: 0; -EIO its header is
 * damaged; -ENODATA it can have none (a symlink; metadata.json, which every
 * write replaces by a new node).
 */
static int node_id(struct sfs_inode *in, unsigned char id[SFS_ID_BYTES])
{
	int rc = 0;

	if ((in->type != S_IFREG && in->type != S_IFDIR) || in->special == SFS_SP_META)
		return -ENODATA;
	pthread_mutex_lock(&in->mu);
	if (in->bad || !in->loaded)
		rc = -EIO;
	else
		memcpy(id, in->id, SFS_ID_BYTES);
	pthread_mutex_unlock(&in->mu);
	return rc;
}

/*
 * A regular file's id changes when it is renewed (fileio.h), under in->io
 * held for writing: an attribute operation holds it for reading from the
 * id's read to the blob's last use.
 */
static void io_lock(struct sfs_inode *in)
{
	if (in->type == S_IFREG)
		pthread_rwlock_rdlock(&in->io);
}

static void io_unlock(struct sfs_inode *in)
{
	if (in->type == S_IFREG)
		pthread_rwlock_unlock(&in->io);
}

/* Load @in's attributes (session entered); damage is logged. */
static int load(struct sfs_inode *in, const unsigned char id[SFS_ID_BYTES],
		const struct sfs_keys *keys, struct sfs_xattrs *x)
{
	int rootfd = sfs_session_rootfd(in->sess), rc;

	if (rootfd < 0)
		return rootfd;
	rc = sfs_xattr_load(rootfd, id, keys, x);
	close(rootfd);
	if (rc == -EBADMSG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT)
		sfs_log_corrupt(in, "extended attributes", -1);
	return rc;
}

/* Changing attributes changes ctime, not mtime, as on ext4: chmod the backing node to its mode. */
static void touch_ctime(struct sfs_inode *in)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", in->fd);
	if (fstat(in->fd, &st) == 0)
		chmod(path, st.st_mode & 07777);
}

/*
 * What getxattr, setxattr and removexattr of @name on @in begin with: true
 * with @in's session entered, or false with @req answered (@outside where
 * nothing is stored, outside sessions).
 */
static bool begin(fuse_req_t req, struct sfs_inode *in, const char *name, int outside,
		  const struct sfs_keys **keys)
{
	int rc;

	if (!sfs->opts.xattr) {
		fuse_reply_err(req, ENOSYS);
		return false;
	}
	if (!is_user(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return false;
	}
	if (!sfs_in_session(in)) {
		fuse_reply_err(req, outside);
		return false;
	}
	rc = sfs_enter_node(in, keys);
	if (rc < 0)
		sfs_reply_err(req, rc);
	return rc == 0;
}

void sfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	unsigned char id[SFS_ID_BYTES];
	struct sfs_xattrs x = {0};
	const struct sfs_keys *keys;
	const unsigned char *value;
	size_t len;
	int rc;

	if (!begin(req, in, name, ENODATA, &keys)) /* outside sessions there are none */
		return;
	io_lock(in);
	rc = node_id(in, id);
	if (rc == 0)
		rc = load(in, id, keys, &x);
	io_unlock(in);
	sfs_session_leave(in->sess);
	if (rc == 0)
		rc = sfs_xattr_get(&x, name + USER_PREFIX_LEN, &value, &len);
	if (rc < 0)
		sfs_reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, (const char *)value, len);
	sfs_xattrs_free(&x);
}

/* Load, change (@value NULL: remove) and store @in's attributes, serialised per node. */
static int modify(struct sfs_inode *in, const char *name, const char *value, size_t size, int flags,
		  const struct sfs_keys *keys)
{
	unsigned char id[SFS_ID_BYTES];
	struct sfs_xattrs x = {0};
	pthread_mutex_t *mu;
	int xflags = ((flags & XATTR_CREATE) ? SFS_XATTR_CREATE : 0) |
		     ((flags & XATTR_REPLACE) ? SFS_XATTR_REPLACE : 0);
	struct stat st;
	int rootfd, rc;

	rc = node_id(in, id);
	if (rc < 0)
		return rc == -ENODATA && value ? -EPERM : rc;
	/* A removed directory keeps no attributes (its blob went with it). */
	if (in->type == S_IFDIR && fstat(in->fd, &st) == 0 && st.st_nlink == 0)
		return -ENOENT;
	rootfd = sfs_session_rootfd(in->sess);
	if (rootfd < 0)
		return rootfd;
	mu = xmu_of(in->sess, id);
	pthread_mutex_lock(mu);
	rc = sfs_xattr_load(rootfd, id, keys, &x);
	if (rc == 0 && value)
		rc = sfs_xattr_set(&x, name, value, size, xflags, USER_PREFIX_LEN);
	else if (rc == 0)
		rc = sfs_xattr_del(&x, name);
	if (rc == 0)
		rc = sfs_xattr_store(rootfd, id, keys, &x);
	pthread_mutex_unlock(mu);
	close(rootfd);
	sfs_xattrs_free(&x);
	if (rc == -EBADMSG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT)
		sfs_log_corrupt(in, "extended attributes", -1);
	if (rc == 0)
		touch_ctime(in);
	return rc;
}

/*
 * Set (@value not NULL) or remove user attribute @name of @ino and reply;
 * @outside is the answer where nothing is stored (outside sessions).
 */
static void change(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		   int flags, int outside)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	int rc;

	if (!begin(req, in, name, outside, &keys))
		return;
	io_lock(in);
	rc = modify(in, name + USER_PREFIX_LEN, value, size, flags, keys);
	io_unlock(in);
	if (rc == 0)
		sfs_session_changed(in->sess);
	sfs_session_leave(in->sess);
	fuse_reply_err(req, sfs_errno_out(rc));
}

void sfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags)
{
	/* nothing is stored outside sessions */
	change(req, ino, name, value ? value : "", size, flags, EPERM);
}

void sfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	unsigned char id[SFS_ID_BYTES];
	struct sfs_xattrs x = {0};
	const struct sfs_keys *keys;
	char *buf = NULL;
	ssize_t n = 0;
	int rc;

	if (!sfs->opts.xattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (sfs_in_session(in)) {
		rc = sfs_enter_node(in, &keys);
		if (rc < 0) {
			sfs_reply_err(req, rc);
			return;
		}
		io_lock(in);
		rc = node_id(in, id);
		if (rc == 0)
			rc = load(in, id, keys, &x);
		else if (rc == -ENODATA)
			rc = 0; /* no attributes: an empty list */
		io_unlock(in);
		sfs_session_leave(in->sess);
		if (rc < 0) {
			sfs_reply_err(req, rc);
			return;
		}
		n = sfs_xattr_list(&x, USER_PREFIX, NULL, 0);
	}
	if (size == 0) {
		fuse_reply_xattr(req, (size_t)n);
	} else if ((size_t)n > size) {
		fuse_reply_err(req, ERANGE);
	} else {
		buf = malloc((size_t)n + 1);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
		} else {
			sfs_xattr_list(&x, USER_PREFIX, buf, (size_t)n + 1);
			fuse_reply_buf(req, buf, (size_t)n);
		}
	}
	if (buf) {
		sodium_memzero(buf, (size_t)n);
		free(buf);
	}
	sfs_xattrs_free(&x);
}

void sfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	/* there are none outside sessions */
	change(req, ino, name, NULL, 0, 0, ENODATA);
}

/* Has any node of @s ever had attributes (does its root hold .sfsx)? */
/* Does the session root of @s hold the directory @dir? */
static bool session_has(struct sfs_session *s, const char *dir)
{
	char path[sizeof(SFS_ROOT_NAME) + 16];

	snprintf(path, sizeof(path), "%s/%s", SFS_ROOT_NAME, dir);
	return faccessat(s->cfd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Has session @s extended attributes stored? */
static bool session_has_xattrs(struct sfs_session *s)
{
	return session_has(s, SFS_XATTR_DIR);
}

/* Has session @s tail files (fileio.h), which removed files leave unless dropped? */
static bool session_has_tails(struct sfs_session *s)
{
	return session_has(s, SFS_TAIL_DIR);
}

/* Remove the tail file of file id @id, if any: its file is gone or has a new id. */
static void drop_tail(struct sfs_session *s, const unsigned char id[SFS_ID_BYTES])
{
	int rootfd, rc;

	if (!session_has_tails(s))
		return;
	rootfd = sfs_session_rootfd(s);
	if (rootfd < 0)
		return;
	rc = sfs_file_drop_tail_file(rootfd, id);
	close(rootfd);
	if (rc < 0)
		sfs_syslog(LOG_WARNING, "%s: cannot remove the tail file of a removed file: %s",
			   s->id, strerror(-rc));
}

void sfs_node_xattr_victim(struct sfs_inode *p, const char *backing,
			   struct sfs_node_xattr_victim *v)
{
	struct stat st;

	memset(v, 0, sizeof(*v));
	/* Tail files go with their file too (fileio.h "Tail records"). */
	if ((!session_has_xattrs(p->sess) && !session_has_tails(p->sess)) ||
	    fstatat(p->fd, backing, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!(S_ISREG(st.st_mode) && st.st_nlink == 1) && !S_ISDIR(st.st_mode))
		return;
	if (sfs_tree_node_id(p->fd, backing, st.st_mode, v->id) < 0)
		return;
	v->armed = true;
	v->file = S_ISREG(st.st_mode);
	v->dev = st.st_dev;
	v->ino = st.st_ino;
}

/* Remove node @id's blob from session @s. */
static void drop(struct sfs_session *s, const unsigned char id[SFS_ID_BYTES])
{
	pthread_mutex_t *mu = xmu_of(s, id);
	int rootfd = sfs_session_rootfd(s), rc;

	if (rootfd < 0)
		return;
	pthread_mutex_lock(mu);
	rc = sfs_xattr_remove(rootfd, id);
	pthread_mutex_unlock(mu);
	close(rootfd);
	if (rc < 0)
		sfs_syslog(LOG_WARNING,
			   "%s: cannot remove the extended attributes of a removed node: %s", s->id,
			   strerror(-rc));
}

void sfs_node_xattr_gone(struct sfs_session *s, const struct sfs_node_xattr_victim *v)
{
	fuse_ino_t ino;

	if (!v->armed)
		return;
	/* A tail record matters only for a crash; a file unlinked has none to survive. */
	if (v->file)
		drop_tail(s, v->id);
	/*
	 * An open file keeps its attributes until its last close (getxattr
	 * through the open descriptor still works, as on ext4). The kernel
	 * holds the inode of a name it removes, so it cannot be forgotten
	 * while we look. Without -o xattr nothing can read them: drop them now.
	 */
	if (v->file && sfs->opts.xattr) {
		ino = sfs_inode_number(v->dev, v->ino);
		if (ino && atomic_load(&sfs_inode_of(ino)->opens) > 0)
			return;
	}
	drop(s, v->id);
}

void sfs_node_xattr_last_close(struct sfs_inode *in, int fd)
{
	unsigned char id[SFS_ID_BYTES];
	struct stat st;

	/*
	 * Opened before a rekey, its backing file went with the old container
	 * (nlink 0), but the re-keyed file keeps its node id: what the
	 * session's root holds under that id is the re-keyed file's.
	 */
	if (in->type != S_IFREG || sfs_inode_old(in) || fstat(fd, &st) < 0 || st.st_nlink > 0 ||
	    node_id(in, id) < 0)
		return;
	drop_tail(in->sess, id); /* an fsync after the unlink may have made one */
	if (sfs->opts.xattr)
		drop(in->sess, id);
}

int sfs_node_xattr_renew(const struct sfs_file *f, const unsigned char new_id[SFS_ID_BYTES],
			 void *arg)
{
	struct sfs_renewal *rn = arg;
	struct sfs_session *s = rn->in->sess;
	struct sfs_xattrs x = {0};
	pthread_mutex_t *mu;
	int rootfd, rc;

	memcpy(rn->new_id, new_id, SFS_ID_BYTES);
	if (!session_has_xattrs(s))
		return 0;
	rootfd = sfs_session_rootfd(s);
	if (rootfd < 0)
		return rootfd;
	mu = xmu_of(s, f->id);
	pthread_mutex_lock(mu);
	rc = sfs_xattr_load(rootfd, f->id, f->keys, &x);
	pthread_mutex_unlock(mu);
	if (rc == -EBADMSG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT) {
		/* Unreadable: left where it is (an orphan once the id changed), never dropped. */
		sfs_log_corrupt(rn->in, "extended attributes (left under the file's old id)", -1);
		rc = 0;
	} else if (rc == 0 && x.count > 0) {
		mu = xmu_of(s, new_id);
		pthread_mutex_lock(mu);
		rc = sfs_xattr_store(rootfd, new_id, f->keys, &x);
		pthread_mutex_unlock(mu);
		rn->copied = rc == 0;
	}
	close(rootfd);
	sfs_xattrs_free(&x);
	return rc;
}

void sfs_node_xattr_renewed(const struct sfs_renewal *rn, bool moved)
{
	if (moved)
		drop_tail(rn->in->sess, rn->old_id); /* a record under the old id is stale */
	if (rn->copied)
		drop(rn->in->sess, moved ? rn->old_id : rn->new_id);
}
