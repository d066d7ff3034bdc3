/*
 * ops_ns.c - FUSE operations on names: unlink, rename, link, symlink.
 *
 * Inside a session the store's side of each (name encryption, sidecars,
 * headers, retire/reap) is a transaction of lib/tree_ops.h; here are the
 * session files' rules, the inode table and the replies. Between sessions/
 * and archive/ a session moves whole under its id. Anything crossing
 * sessions is EXDEV.
 */
#include "ops.h"
#include "special.h"
#include "tree_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

void sfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct sfs_node_xattr_victim xv = {0};
	const struct sfs_keys *keys;
	struct sfs_tree_hooks h;
	struct sfs_ns_hook arg;
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
	sfs_ns_hooks(&h, &arg, p, &xv);
	rc = p->bad ? -EIO : 0;
	if (rc == 0 && sfs_special_of(p, name) != SFS_SP_NONE)
		rc = -EPERM; /* events.jsonl is append-only, metadata.json only replaced */
	if (rc == 0)
		rc = sfs_tree_unlink(p->fd, p->id, name, keys, &h, &st);
	/* An ordinary file unlinked for good: its descriptor goes once unused. */
	if (rc == 0 && arg.victim)
		sfs_inode_unname(arg.victim, p, arg.vname,
				 st.st_nlink <= 1 && S_ISREG(sfs_node_type(arg.victim)));
	if (rc == 0) {
		sfs_node_xattr_gone(p->sess, &xv);
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
static int move_session(fuse_req_t req, struct sfs_inode *from, const char *name,
			struct sfs_inode *to, const char *newname, unsigned int flags)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct sfs_audit_who who = {.uid = ctx->uid, .pid = ctx->pid};
	json_t *extra;
	int rc;

	if (strcmp(name, newname) != 0 || !sfs_id_valid(name) || (flags & RENAME_EXCHANGE))
		return -EPERM; /* a session's id is its name */
	if (from == to)
		return 0;
	rc = sfs_session_move(name, from == &sfs->top[1]);
	/* Every archive and restore goes to the audit trail, refused ones too. */
	extra = json_pack("{s:b}", "ok", rc == 0);
	if (extra && rc < 0)
		json_object_set_new(
			extra, "error",
			json_string(sfs_proto_err_name(sfs_proto_err_from_errno(rc, NULL))));
	sfs_audit(from == &sfs->top[1] ? "restore" : "archive", name, &who, extra);
	return rc;
}

/*
 * The rename itself (tree_ops.h): @sp_to is what the new name makes the
 * node. A node renamed over may lose its last link, and its attributes
 * with it.
 */
static int rename_entry(struct sfs_inode *p, const char *name, struct sfs_inode *np,
			const char *newname, unsigned int flags, enum sfs_special sp_to,
			const struct sfs_keys *keys)
{
	char from[SFS_NAME_MAX + 1], to[SFS_NAME_MAX + 1];
	struct sfs_node_xattr_victim xv = {0};
	struct sfs_tree_hooks h;
	struct sfs_ns_hook arg;
	struct stat st;
	bool named;
	int rc;

	/*
	 * The descriptor cache follows the names (inode_fd.c): the nodes that
	 * move are pinned first, while their old names still find them, so
	 * that nothing reopens one by a name that is changing.
	 */
	named = sfs_tree_backing(from, name, p->id, keys) == 0 &&
		sfs_tree_backing(to, newname, np->id, keys) == 0;
	if (named) {
		sfs_inode_pin_name(p, from);
		if (flags & RENAME_EXCHANGE)
			sfs_inode_pin_name(np, to);
	}
	sfs_ns_hooks(&h, &arg, np, &xv);
	rc = sfs_tree_rename(p->fd, p->id, name, np->fd, np->id, newname, flags, keys, &h, &st);
	if (rc < 0)
		return rc;
	sfs_node_xattr_gone(p->sess, &xv);
	if (named)
		sfs_inode_moved(p, from, np, to, flags & RENAME_EXCHANGE);
	/* The moved inode is (or no longer is) a special file; its new name is not durable. */
	if (st.st_mode)
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
static int rename_over_meta(struct sfs_inode *p, const char *name, struct sfs_inode *np,
			    const char *newname, unsigned int flags, const struct sfs_keys *keys)
{
	struct sfs_session *s = np->sess;
	struct sfs_inode *src = NULL;
	struct stat st;
	int fd, rc;

	pthread_mutex_lock(&s->meta_mu);
	fd = sfs_tree_open(p->fd, p->id, name, O_RDONLY, keys);
	rc = fd < 0 ? fd : 0;
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
		rc = rename_entry(p, name, np, newname, flags, SFS_SP_META, keys);
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
	/* A file renamed over metadata.json must be a valid document for it. */
	if (sp_to == SFS_SP_META)
		return rename_over_meta(p, name, np, newname, flags, keys);
	return rename_entry(p, name, np, newname, flags, sp_to, keys);
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
		rc = move_session(req, p, name, np, newname, flags);
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
	struct sfs_tree_new n;
	int rc;

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
	rc = np->bad ? -EIO : sfs_tree_link(np->fd, np->id, newname, in->fd, keys, &n);
	if (rc == 0) {
		rc = sfs_make_entry(np, n.en.backing, n.fd, keys, NULL, NULL, &e);
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
	struct sfs_tree_hooks h;
	struct sfs_ns_hook arg;
	struct sfs_tree_new n;
	int rc;

	if (p->bad)
		return -EIO;
	sfs_new_owner(req, p, &a);
	sfs_ns_hooks(&h, &arg, p, NULL);
	rc = sfs_tree_symlink(p->fd, p->id, name, link, &a, keys, &h, &n);
	if (rc < 0)
		return rc;
	/* A long target's file node: as any new file node (ops_mknod.c). */
	rc = sfs_make_entry(p, n.en.backing, n.fd, keys, n.has_id ? n.id : NULL,
			    n.has_id ? &a : NULL, e);
	if (rc < 0 && n.has_id)
		sfs_tree_undo(p->fd, &n);
	else if (rc == 0)
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
