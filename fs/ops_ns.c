/*
 * ops_ns.c - FUSE operations on names: unlink, rename, link, symlink.
 *
 * Inside a session every name is re-encrypted for its directory; long names
 * keep their sidecar beside them. Between sessions/ and archive/ a session
 * moves whole under its id. Anything crossing sessions is EXDEV.
 */
#include "ops.h"
#include "special.h"
#include "symlink.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

void sfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct sfs_node_xattr_victim xv = {0};
	const struct sfs_keys *keys;
	struct sfs_ename en;
	struct stat st;
	int rc;

	if (!sfs_in_session(p)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = sfs_enter_node(p, &keys);
	if (rc < 0) {
		sfs_reply_err(req, rc);
		return;
	}
	rc = p->bad ? -EIO : sfs_fmt_name_encrypt(&en, name, p->id, keys);
	if (rc == 0 && sfs_special_of(p, name) != SFS_SP_NONE)
		rc = -EPERM; /* events.jsonl is append-only, metadata.json only replaced */
	if (rc == 0 && fstatat(p->fd, en.backing, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		sfs_node_xattr_victim(p, en.backing, &xv);
	if (rc == 0 && unlinkat(p->fd, en.backing, 0) < 0)
		rc = sfs_neg_errno();
	if (rc == 0) {
		sfs_node_xattr_gone(p->sess, &xv);
		sfs_tree_name_del(p->fd, &en);
		/*
		 * A large file's space is freed at once; a small one's when the
		 * kernel forgets it, right after (rm -rf of small files spent a
		 * quarter of its time reopening and cutting each). Header-only
		 * nodes have none to free, and a FIFO may still be open in the
		 * kernel (FUSE never hears of it): its times stay.
		 */
		if (S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size > (1 << 20))
			sfs_inode_release_space(st.st_dev, st.st_ino);
		sfs_session_changed(p->sess);
	}
	sfs_session_leave(p->sess);
	fuse_reply_err(req, rc < 0 ? sfs_errno_out(rc) : 0);
}

/*
 * mv sessions/ID archive/ (and back): the same id, locked or not here, but
 * not while another mount has it unlocked (EBUSY): its files would move
 * under it. Its busy lock is held through the rename.
 */
static int move_session(struct sfs_inode *from, const char *name, struct sfs_inode *to,
			const char *newname, unsigned int flags)
{
	int lockfd, rc;

	if (strcmp(name, newname) != 0 || !sfs_id_valid(name) || (flags & RENAME_EXCHANGE))
		return -EPERM; /* a session's id is its name */
	if (from == to)
		return 0;
	rc = sfs_session_hold(name, from == &sfs->top[1], &lockfd);
	if (rc < 0)
		return rc;
	rc = renameat2(from->fd, name, to->fd, newname, RENAME_NOREPLACE) < 0 ? sfs_neg_errno() : 0;
	sfs_store_session_release(lockfd);
	if (rc < 0)
		return rc;
	sfs_fsync_dirfd(from->fd);
	sfs_fsync_dirfd(to->fd);
	sfs_syslog(LOG_INFO, "%s: moved to %s/", name,
		   to == &sfs->top[1] ? SFS_ARCHIVE_DIR : SFS_SESSIONS_DIR);
	return 0;
}

/*
 * A directory renamed over another one, which must be empty (-ENOTEMPTY
 * otherwise, as rmdir): the store would refuse to rename over the target's
 * header, and taking the header out in place would show a headerless
 * directory if the daemon died before the rename. So the target is retired
 * whole first (tree.h), then removed after the rename, or put back if it
 * fails. A crash in between leaves the source under its old name and the
 * empty target gone, as if rmdir had run first.
 */
static int over_dir_prepare(struct sfs_inode *p, const char *from, struct sfs_inode *np,
			    const char *to, char *gone)
{
	struct stat sst, tst;

	gone[0] = '\0';
	if (fstatat(np->fd, to, &tst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(tst.st_mode) ||
	    fstatat(p->fd, from, &sst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sst.st_mode) ||
	    (sst.st_dev == tst.st_dev && sst.st_ino == tst.st_ino))
		return 0; /* nothing to do, or the store answers as ext4 would */
	return sfs_tree_dir_retire(np->fd, to, gone);
}

static void over_dir_done(struct sfs_inode *np, const char *to, const char *gone, bool failed)
{
	if (!gone[0])
		return;
	if (!failed)
		sfs_reap_dir(np->fd, gone);
	else if (sfs_tree_dir_unretire(np->fd, gone, to) < 0)
		sfs_syslog(LOG_ERR, "cannot put back directory %s as %s after a failed rename",
			   gone, to);
}

/* The rename itself, names encrypted and checked: @sp_to is what the new name makes the node. */
static int rename_entry(struct sfs_inode *p, const struct sfs_ename *from, struct sfs_inode *np,
			const struct sfs_ename *to, unsigned int flags, enum sfs_special sp_to)
{
	char gone[SFS_TMPNAME_MAX] = "";
	struct sfs_node_xattr_victim xv = {0};
	struct stat st;
	int rc;

	if (!(flags & RENAME_EXCHANGE)) {
		rc = sfs_tree_name_add(np->fd, to);
		if (rc < 0)
			return rc;
	}
	if (!flags) {
		/* A node renamed over may lose its last link, and its attributes with it. */
		sfs_node_xattr_victim(np, to->backing, &xv);
		if (xv.armed && fstatat(p->fd, from->backing, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == xv.dev && st.st_ino == xv.ino)
			xv.armed = false; /* renamed over itself: nothing goes */
		rc = over_dir_prepare(p, from->backing, np, to->backing, gone);
		if (rc < 0)
			return rc;
	}
	rc = renameat2(p->fd, from->backing, np->fd, to->backing, flags) < 0 ? sfs_neg_errno() : 0;
	over_dir_done(np, to->backing, gone, rc < 0);
	if (rc < 0)
		return rc;
	sfs_node_xattr_gone(p->sess, &xv);
	if (!(flags & RENAME_EXCHANGE) && (p != np || strcmp(from->backing, to->backing) != 0))
		sfs_tree_name_del(p->fd, from);
	/* The moved inode is (or no longer is) a special file; its new name is not durable. */
	if (fstatat(np->fd, to->backing, &st, AT_SYMLINK_NOFOLLOW) == 0)
		sfs_inode_renamed(st.st_dev, st.st_ino, S_ISREG(st.st_mode) ? sp_to : SFS_SP_NONE);
	return 0;
}

/*
 * A file renamed over metadata.json (jq ... > t && mv t metadata.json):
 * under the session's meta_mu, which every other replacement of the
 * document holds (special.c: commits and the refresh of "updated"), so none
 * of them writes back a document read before this rename; and with the
 * source's inode io held for writing, so no write changes it between the
 * check and the rename. The source must be a valid document for the
 * session (special.c). As ext4's auto_da_alloc does for a replace by
 * rename, its content is made durable (fsync) before the rename and the
 * rename after it (fsync of the directory): a power cut leaves the old
 * document or the new one, whether or not the user's tool synced anything.
 */
static int rename_over_meta(struct sfs_inode *p, const struct sfs_ename *from, struct sfs_inode *np,
			    const struct sfs_ename *to, unsigned int flags,
			    const struct sfs_keys *keys)
{
	struct sfs_session *s = np->sess;
	struct sfs_inode *src = NULL;
	struct stat st;
	int fd, rc;

	pthread_mutex_lock(&s->meta_mu);
	fd = openat(p->fd, from->backing, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? sfs_neg_errno() : 0;
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = sfs_neg_errno();
	if (rc == 0 && !S_ISREG(st.st_mode))
		rc = -EINVAL;
	if (rc == 0) {
		src = sfs_inode_find(st.st_dev, st.st_ino);
		if (src)
			pthread_rwlock_wrlock(&src->io);
		rc = sfs_meta_check_replacement(np, fd, keys);
	}
	if (rc == 0 && st.st_nlink > 1)
		rc = -EPERM; /* its other name would write the document unchecked */
	/*
	 * Refused: EPERM, as for events.jsonl. EINVAL, which a write of such
	 * a document gets, means "into a subdirectory of itself" to rename(2)
	 * callers: mv would say that.
	 */
	if (rc == -EINVAL)
		rc = -EPERM;
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = rename_entry(p, from, np, to, flags, SFS_SP_META);
	if (rc == 0)
		rc = sfs_fsync_dirfd(np->fd);
	if (src) {
		pthread_rwlock_unlock(&src->io);
		sfs_inode_unref(src, 1);
	}
	pthread_mutex_unlock(&s->meta_mu);
	return rc;
}

static int rename_node(struct sfs_inode *p, const char *name, struct sfs_inode *np,
		       const char *newname, unsigned int flags, const struct sfs_keys *keys)
{
	enum sfs_special sp_from = sfs_special_of(p, name), sp_to = sfs_special_of(np, newname);
	struct sfs_ename from, to;
	int rc;

	if (p->bad || np->bad)
		return -EIO;
	/* events.jsonl is never renamed, away or over. */
	if (sp_from == SFS_SP_EVENTS || sp_to == SFS_SP_EVENTS)
		return -EPERM;
	/* metadata.json is never renamed away (only over): it would be gone. */
	if (sp_from == SFS_SP_META && sp_to != SFS_SP_META)
		return -EPERM;
	if ((flags & RENAME_EXCHANGE) && (sp_from != SFS_SP_NONE || sp_to != SFS_SP_NONE))
		return -EPERM;
	rc = sfs_fmt_name_encrypt(&from, name, p->id, keys);
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&to, newname, np->id, keys);
	if (rc < 0)
		return rc;
	/* A file renamed over metadata.json must be a valid document for it. */
	if (sp_to == SFS_SP_META)
		return rename_over_meta(p, &from, np, &to, flags, keys);
	return rename_entry(p, &from, np, &to, flags, sp_to);
}

void sfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags)
{
	struct sfs_inode *p = sfs_inode_of(parent), *np = sfs_inode_of(newparent);
	const struct sfs_keys *keys;
	int rc;

	if (flags & ~(unsigned int)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		rc = -EINVAL;
	} else if (p->kind == SFS_INODE_TOP && np->kind == SFS_INODE_TOP) {
		rc = move_session(p, name, np, newname, flags);
	} else if (!sfs_in_session(p) || !sfs_in_session(np)) {
		rc = (sfs_in_session(p) || sfs_in_session(np)) ? -EXDEV : -EPERM;
	} else if (p->sess != np->sess) {
		rc = -EXDEV;
	} else {
		rc = sfs_enter_node(p, &keys);
		if (rc == 0) {
			rc = sfs_node_load(np, keys);
			if (rc == 0)
				rc = rename_node(p, name, np, newname, flags, keys);
			if (rc == 0)
				sfs_session_changed(p->sess);
			sfs_session_leave(p->sess);
		}
	}
	fuse_reply_err(req, rc < 0 ? sfs_errno_out(rc) : 0);
}

void sfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct sfs_inode *in = sfs_inode_of(ino), *np = sfs_inode_of(newparent);
	const struct sfs_keys *keys;
	struct fuse_entry_param e;
	struct sfs_ename en;
	char path[64];
	int fd, rc;

	if (in->kind != SFS_INODE_NODE || !sfs_in_session(np) || in->sess != np->sess) {
		fuse_reply_err(req, in->kind == SFS_INODE_NODE ? EXDEV : EPERM);
		return;
	}
	/* Directories, and special files under a second name, cannot be linked. */
	if (in->type == S_IFDIR || in->special != SFS_SP_NONE ||
	    sfs_special_of(np, newname) != SFS_SP_NONE) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = sfs_enter_node(np, &keys);
	if (rc < 0) {
		sfs_reply_err(req, rc);
		return;
	}
	rc = np->bad ? -EIO : sfs_fmt_name_encrypt(&en, newname, np->id, keys);
	if (rc == 0)
		rc = sfs_tree_name_add(np->fd, &en);
	if (rc == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", in->fd);
		if (linkat(AT_FDCWD, path, np->fd, en.backing, AT_SYMLINK_FOLLOW) < 0) {
			rc = sfs_neg_errno();
			if (rc != -EEXIST)
				sfs_tree_name_del(np->fd, &en);
		}
	}
	if (rc == 0) {
		fd = openat(np->fd, en.backing, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? sfs_neg_errno() : sfs_make_entry(np, fd, keys, NULL, NULL, &e);
		if (rc == 0)
			sfs_name_is_new(&e);
	}
	if (rc == 0)
		sfs_session_changed(np->sess);
	sfs_session_leave(np->sess);
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static int do_symlink(fuse_req_t req, const char *link, struct sfs_inode *p, const char *name,
		      const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	struct sfs_attrs a = {.mode = S_IFLNK | 0777};
	size_t len = strlen(link);
	char enc[PATH_MAX];
	struct sfs_ename en;
	int fd, rc;

	if (p->bad)
		return -EIO;
	if (len > SFS_SYMLINK_LONG_MAX)
		return -ENAMETOOLONG; /* as ext4: the kernel stops longer ones first */
	sfs_new_owner(req, p, &a);
	/* A target whose encoding does not fit a backing symlink: a file node. */
	if (sfs_symlink_is_long(len))
		return sfs_make_filenode(p, name, &a, link, len, keys, e);
	rc = sfs_fmt_name_encrypt(&en, name, p->id, keys);
	if (rc == 0)
		rc = sfs_fmt_symlink_encode(enc, sizeof(enc), link, keys);
	if (rc < 0)
		return rc;
	rc = sfs_tree_name_add(p->fd, &en);
	if (rc < 0)
		return rc;
	if (symlinkat(enc, p->fd, en.backing) < 0) {
		rc = sfs_neg_errno();
		if (rc != -EEXIST)
			sfs_tree_name_del(p->fd, &en);
		return rc;
	}
	/* The owner of a symlink is the backing link's (only root may set it). */
	if (fchownat(p->fd, en.backing, a.uid, a.gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
		sfs_syslog(LOG_WARNING, "%s: cannot set a symlink's owner", p->sess->id);
	fd = openat(p->fd, en.backing, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_make_entry(p, fd, keys, NULL, NULL, e);
	if (rc == 0)
		sfs_name_is_new(e);
	return rc;
}

void sfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct fuse_entry_param e;
	const struct sfs_keys *keys;
	int rc;

	if (!sfs_in_session(p)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = sfs_enter_node(p, &keys);
	if (rc == 0) {
		rc = do_symlink(req, link, p, name, keys, &e);
		if (rc == 0)
			sfs_session_changed(p->sess);
		sfs_session_leave(p->sess);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}
