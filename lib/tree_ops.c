/*
 * tree_ops.c - namespace transactions in an encrypted directory; see
 * tree_ops.h. Must not know sessions, the inode table, locks, logging or
 * FUSE.
 */
#include "tree_ops.h"
#include "fileio.h"
#include "symlink.h"
#include "tree.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void warn(const struct sfs_tree_hooks *h, int what, const char *name, const char *other,
		 int rc)
{
	if (h && h->warn)
		h->warn(h->arg, what, name, other, rc);
}

static void victim(const struct sfs_tree_hooks *h, int dirfd, const char *backing)
{
	if (h && h->victim)
		h->victim(h->arg, dirfd, backing);
}

int sfs_tree_open(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name, int flags,
		  const struct sfs_keys *keys)
{
	char backing[SFS_NAME_MAX + 1];
	int rc = sfs_tree_backing(backing, name, dirid, keys), fd;

	if (rc < 0)
		return rc;
	fd = openat(dirfd, backing, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

/*
 * Every new node is built the same way: its name's sidecar durable first,
 * the node made under a fresh internal name @tmp (begin_new), then, once
 * complete (@rc 0), published under its name; if anything failed, the
 * internal node goes, and the sidecar too unless the name was taken by
 * another node (-EEXIST) that needs it (end_new).
 */
static int begin_new(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		     const struct sfs_keys *keys, struct sfs_tree_new *out,
		     char tmp[SFS_TMPNAME_MAX])
{
	int rc;

	out->fd = -1;
	out->has_id = false;
	rc = sfs_fmt_name_encrypt(&out->en, name, dirid, keys);
	if (rc == 0)
		rc = sfs_tree_name_add(dirfd, &out->en);
	if (rc == 0)
		sfs_tree_tmpname(tmp);
	return rc;
}

static int end_new(int dirfd, const char *tmp, int fd, int rc, struct sfs_tree_new *out)
{
	if (rc == 0)
		rc = sfs_tree_publish(dirfd, tmp, out->en.backing);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		sfs_remove_tree(dirfd, tmp);
		if (rc != -EEXIST)
			sfs_tree_name_del(dirfd, &out->en);
		return rc;
	}
	out->fd = fd;
	out->has_id = true;
	return 0;
}

/* A file node: header (and a long symlink's target) first. */
static int make_filenode(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
			 const struct sfs_attrs *a, const char *target, size_t len,
			 const struct sfs_keys *keys, struct sfs_tree_new *out)
{
	char tmp[SFS_TMPNAME_MAX];
	int fd, rc = begin_new(dirfd, dirid, name, keys, out, tmp);

	if (rc < 0)
		return rc;
	fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	rc = fd < 0 ? sfs_neg_errno() : 0;
	sfs_crypto_random(out->id, sizeof(out->id));
	if (rc == 0)
		rc = sfs_file_init(fd, out->id, a, keys);
	if (rc == 0 && target)
		rc = sfs_symlink_write_long(fd, out->id, target, len, keys);
	return end_new(dirfd, tmp, fd, rc, out);
}

int sfs_tree_mknod(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		   struct sfs_tree_new *out)
{
	return make_filenode(dirfd, dirid, name, attrs, NULL, 0, keys, out);
}

void sfs_tree_undo(int dirfd, const struct sfs_tree_new *n)
{
	unlinkat(dirfd, n->en.backing, 0);
	sfs_tree_name_del(dirfd, &n->en);
}

/* A directory: its header durable (tree.h) before its name shows it. */
int sfs_tree_mkdir(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		   struct sfs_tree_new *out)
{
	char tmp[SFS_TMPNAME_MAX];
	int fd = -1, rc = begin_new(dirfd, dirid, name, keys, out, tmp);

	if (rc < 0)
		return rc;
	if (mkdirat(dirfd, tmp, 0700) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		fd = openat(dirfd, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rc == 0 && fd < 0)
		rc = sfs_neg_errno();
	sfs_crypto_random(out->id, sizeof(out->id));
	if (rc == 0)
		rc = sfs_tree_dir_init(fd, out->id, attrs, keys);
	return end_new(dirfd, tmp, fd, rc, out);
}

/* The name's sidecar first; the link itself (made by @mk) publishes the node whole. */
static int add_name(int dirfd, struct sfs_tree_new *out,
		    int (*mk)(int dirfd, const char *backing, const void *arg), const void *arg)
{
	int rc = sfs_tree_name_add(dirfd, &out->en);

	if (rc < 0)
		return rc;
	if (mk(dirfd, out->en.backing, arg) < 0) {
		rc = sfs_neg_errno();
		if (rc != -EEXIST)
			sfs_tree_name_del(dirfd, &out->en);
		return rc;
	}
	return 0;
}

static int mk_symlink(int dirfd, const char *backing, const void *enc)
{
	return symlinkat(enc, dirfd, backing);
}

static int mk_link(int dirfd, const char *backing, const void *path)
{
	return linkat(AT_FDCWD, path, dirfd, backing, AT_SYMLINK_FOLLOW);
}

static int open_new(int dirfd, struct sfs_tree_new *out)
{
	out->fd = openat(dirfd, out->en.backing, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return out->fd < 0 ? sfs_neg_errno() : 0;
}

int sfs_tree_symlink(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		     const char *target, const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		     const struct sfs_tree_hooks *h, struct sfs_tree_new *out)
{
	size_t len = strlen(target);
	char enc[PATH_MAX];
	int rc;

	out->fd = -1;
	out->has_id = false;
	if (len > SFS_SYMLINK_LONG_MAX)
		return -ENAMETOOLONG; /* as ext4: the kernel stops longer ones first */
	/* A target whose encoding does not fit a backing symlink: a file node. */
	if (sfs_symlink_is_long(len))
		return make_filenode(dirfd, dirid, name, attrs, target, len, keys, out);
	rc = sfs_fmt_name_encrypt(&out->en, name, dirid, keys);
	if (rc == 0)
		rc = sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys);
	if (rc == 0)
		rc = add_name(dirfd, out, mk_symlink, enc);
	if (rc < 0)
		return rc;
	/* The owner of a symlink is the backing link's (only root may set it). */
	if (fchownat(dirfd, out->en.backing, attrs->uid, attrs->gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno != EPERM)
		warn(h, SFS_TREE_WARN_OWNER, NULL, NULL, sfs_neg_errno());
	return open_new(dirfd, out);
}

int sfs_tree_link(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name, int nodefd,
		  const struct sfs_keys *keys, struct sfs_tree_new *out)
{
	char path[64];
	int rc;

	out->fd = -1;
	out->has_id = false;
	rc = sfs_fmt_name_encrypt(&out->en, name, dirid, keys);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", nodefd);
	rc = add_name(dirfd, out, mk_link, path);
	return rc < 0 ? rc : open_new(dirfd, out);
}

int sfs_tree_unlink(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		    const struct sfs_keys *keys, const struct sfs_tree_hooks *h, struct stat *st)
{
	struct sfs_ename en;
	int rc = sfs_fmt_name_encrypt(&en, name, dirid, keys);

	if (rc < 0)
		return rc;
	if (fstatat(dirfd, en.backing, st, AT_SYMLINK_NOFOLLOW) < 0)
		return sfs_neg_errno();
	victim(h, dirfd, en.backing);
	if (unlinkat(dirfd, en.backing, 0) < 0)
		return sfs_neg_errno();
	sfs_tree_name_del(dirfd, &en);
	return 0;
}

/* Remove retired directory @gone: a failure leaves only an invisible leftover. */
static void reap(int dirfd, const char *gone, const struct sfs_tree_hooks *h)
{
	int rc = sfs_tree_dir_reap(dirfd, gone);

	if (rc < 0)
		warn(h, SFS_TREE_WARN_REAP, gone, NULL, rc);
}

int sfs_tree_rmdir(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_keys *keys, const struct sfs_tree_hooks *h)
{
	char gone[SFS_TMPNAME_MAX];
	struct sfs_ename en;
	struct stat st;
	int rc = sfs_fmt_name_encrypt(&en, name, dirid, keys);

	if (rc < 0)
		return rc;
	if (fstatat(dirfd, en.backing, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return sfs_neg_errno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	victim(h, dirfd, en.backing);
	/* Out of the namespace first, whole; then taken apart. */
	rc = sfs_tree_dir_retire(dirfd, en.backing, gone);
	if (rc < 0)
		return rc;
	reap(dirfd, gone, h);
	sfs_tree_name_del(dirfd, &en);
	return 0;
}

/*
 * Before a rename without flags, which may replace the target: tell the
 * caller of the node losing its name (unless it is the source itself:
 * nothing goes), and, for a directory renamed over another one, which must
 * be empty (-ENOTEMPTY otherwise, as rmdir), retire the target whole
 * first: the store would refuse to rename over its header, and taking the
 * header out in place would show a headerless directory if the daemon died
 * before the rename. A crash between the retire and the rename leaves the
 * source under its old name and the empty target gone, as if rmdir had run
 * first. @gone is empty when nothing was retired.
 */
static int over_prepare(int fromfd, const char *from, int tofd, const char *to,
			const struct sfs_tree_hooks *h, char *gone)
{
	struct stat sst, tst;
	bool have_s, have_t;

	gone[0] = '\0';
	have_t = fstatat(tofd, to, &tst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!have_t)
		return 0;
	have_s = fstatat(fromfd, from, &sst, AT_SYMLINK_NOFOLLOW) == 0;
	if (have_s && sst.st_dev == tst.st_dev && sst.st_ino == tst.st_ino)
		return 0; /* renamed over itself */
	victim(h, tofd, to);
	if (!have_s || !S_ISDIR(tst.st_mode) || !S_ISDIR(sst.st_mode))
		return 0; /* nothing to do, or the store answers as ext4 would */
	return sfs_tree_dir_retire(tofd, to, gone);
}

static void over_done(int tofd, const char *to, const char *gone, bool failed,
		      const struct sfs_tree_hooks *h)
{
	int rc;

	if (!gone[0])
		return;
	if (!failed) {
		reap(tofd, gone, h);
	} else {
		rc = sfs_tree_dir_unretire(tofd, gone, to);
		if (rc < 0)
			warn(h, SFS_TREE_WARN_UNRETIRE, gone, to, rc);
	}
}

int sfs_tree_rename(int fromfd, const unsigned char fromid[SFS_ID_BYTES], const char *name,
		    int tofd, const unsigned char toid[SFS_ID_BYTES], const char *newname,
		    unsigned int flags, const struct sfs_keys *keys, const struct sfs_tree_hooks *h,
		    struct stat *moved)
{
	char gone[SFS_TMPNAME_MAX] = "";
	struct sfs_ename from, to;
	int rc;

	moved->st_mode = 0;
	rc = sfs_fmt_name_encrypt(&from, name, fromid, keys);
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&to, newname, toid, keys);
	if (rc < 0)
		return rc;
	if (!(flags & RENAME_EXCHANGE)) {
		rc = sfs_tree_name_add(tofd, &to);
		if (rc < 0)
			return rc;
	}
	if (!flags) {
		rc = over_prepare(fromfd, from.backing, tofd, to.backing, h, gone);
		if (rc < 0)
			return rc;
	}
	rc = renameat2(fromfd, from.backing, tofd, to.backing, flags) < 0 ? sfs_neg_errno() : 0;
	over_done(tofd, to.backing, gone, rc < 0, h);
	if (rc < 0)
		return rc;
	/* Exchanged names keep their sidecars; a rename onto itself keeps its one. */
	if (!(flags & RENAME_EXCHANGE) && (fromfd != tofd || strcmp(from.backing, to.backing) != 0))
		sfs_tree_name_del(fromfd, &from);
	if (fstatat(tofd, to.backing, moved, AT_SYMLINK_NOFOLLOW) < 0)
		moved->st_mode = 0;
	return 0;
}
