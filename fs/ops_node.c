/*
 * ops_node.c - FUSE operations on nodes as such: lookup, forget, getattr,
 * setattr, readlink, statfs; and the entry helpers the other op files share.
 */
#include "ops.h"
#include "special.h"
#include "fileio.h"
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

int sfs_errno_out(int rc)
{
	if (rc >= 0)
		return 0;
	switch (rc) {
	case -EBADMSG:
	case -EUCLEAN:
	case -EPROTONOSUPPORT:
		return EIO;
	}
	return -rc;
}

void sfs_reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, sfs_errno_out(rc));
}

int sfs_enter_node(struct sfs_inode *in, const struct sfs_keys **keys)
{
	int rc = sfs_session_enter(in->sess, keys);

	if (rc < 0)
		return rc;
	rc = sfs_inode_stale(in) ? -EIO : sfs_node_load(in, *keys);
	if (rc < 0)
		sfs_session_leave(in->sess);
	return rc;
}

int sfs_enter_parent(struct sfs_inode *p, const struct sfs_keys **keys)
{
	if (!sfs_in_session(p))
		return p->kind == SFS_INODE_CTL ? -ENOTDIR : -EPERM;
	return sfs_enter_node(p, keys);
}

void sfs_new_owner(fuse_req_t req, struct sfs_inode *parent, struct sfs_attrs *a)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	a->uid = ctx->uid;
	a->gid = ctx->gid;
	pthread_mutex_lock(&parent->mu);
	if (parent->attrs.mode & S_ISGID) {
		a->gid = parent->attrs.gid;
		if (S_ISDIR(a->mode))
			a->mode |= S_ISGID;
	}
	pthread_mutex_unlock(&parent->mu);
	a->rdev = 0;
}

/* Is the caller of @req in group @gid (its fsgid or a supplementary group)? */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t some[64], *list = some;
	bool in = fuse_req_ctx(req)->gid == gid;
	int n;

	if (in)
		return true;
	n = fuse_req_getgroups(req, 64, some);
	if (n > 64) {
		list = calloc((size_t)n, sizeof(*list));
		n = list ? fuse_req_getgroups(req, n, list) : -ENOMEM;
	}
	for (int i = 0; i < n && !in; i++)
		in = list[i] == gid;
	if (list != some)
		free(list);
	return in;
}

mode_t sfs_kill_setid(fuse_req_t req, mode_t mode, gid_t gid, bool all)
{
	if (!S_ISREG(mode) || !(mode & (S_ISUID | S_ISGID)) || fuse_req_ctx(req)->uid == 0)
		return mode;
	if (all) {
		mode &= ~(mode_t)S_ISUID;
		if (mode & S_IXGRP)
			mode &= ~(mode_t)S_ISGID;
	}
	if ((mode & S_ISGID) && !(mode & S_IXGRP) && !caller_in_group(req, gid))
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

int sfs_kill_setid_node(fuse_req_t req, struct sfs_inode *in, int fd, bool all,
			const struct sfs_keys *keys)
{
	struct sfs_attrs a;
	uint32_t old;

	pthread_mutex_lock(&in->mu);
	a = in->attrs;
	pthread_mutex_unlock(&in->mu);
	if (!(a.mode & (S_ISUID | S_ISGID)))
		return 0;
	old = a.mode;
	a.mode = (uint32_t)sfs_kill_setid(req, a.mode, a.gid, all);
	if (a.mode == old)
		return 0;
	return sfs_node_store_attrs(in, &a, fd, keys);
}

/*
 * How long the kernel may keep @in's name and attributes. Inside an unlocked
 * session every change goes through this mount, where the kernel sees it,
 * or is announced to it (metadata.json replaced, a lock): nodes keep
 * SFS_NODE_TIMEOUT. The mount's own directories keep sfs->timeout (sessionctl
 * new and delete change them behind the kernel's back), a session root that
 * was never unlocked nothing (its first unlock shows its real attributes).
 */
static double cache_timeout(struct sfs_inode *in)
{
	bool loaded;

	switch (in->kind) {
	case SFS_INODE_NODE:
		return SFS_NODE_TIMEOUT;
	case SFS_INODE_CURRENT:
		return 0; /* sessionctl use changes it: looked up at every walk */
	case SFS_INODE_SESSION:
		pthread_mutex_lock(&in->mu);
		loaded = in->loaded;
		pthread_mutex_unlock(&in->mu);
		return loaded ? sfs->timeout : 0;
	default:
		return sfs->timeout;
	}
}

/* The same for attributes alone: the control file and special files keep none. */
static double attr_timeout(struct sfs_inode *in)
{
	return in->kind == SFS_INODE_CTL || in->special != SFS_SP_NONE ? 0 : cache_timeout(in);
}

static void fill_timeouts(struct fuse_entry_param *e, struct sfs_inode *in)
{
	e->attr_timeout = attr_timeout(in);
	e->entry_timeout = cache_timeout(in);
}

/* Fill @e for @in, which holds a lookup reference for it (dropped on error). */
static int finish_entry(struct sfs_inode *in, const struct sfs_keys *keys, const unsigned char *id,
			const struct sfs_attrs *attrs, struct fuse_entry_param *e)
{
	int rc;

	if (attrs) {
		pthread_mutex_lock(&in->mu);
		if (!in->loaded) {
			if (id)
				memcpy(in->id, id, SFS_ID_BYTES);
			in->fresh_id = id != NULL; /* drawn by the caller: nothing sealed yet */
			in->attrs = *attrs;
			in->loaded = true;
		}
		pthread_mutex_unlock(&in->mu);
	}
	rc = sfs_node_load(in, keys);
	if (rc == 0)
		rc = sfs_node_stat(in, &e->attr);
	if (rc < 0) {
		sfs_inode_unref(in, 1);
		return rc;
	}
	memset(e, 0, offsetof(struct fuse_entry_param, attr));
	e->ino = sfs_ino_of(in);
	fill_timeouts(e, in);
	return 0;
}

int sfs_make_entry(struct sfs_inode *parent, const char *backing, int fd,
		   const struct sfs_keys *keys, const unsigned char *id,
		   const struct sfs_attrs *attrs, struct fuse_entry_param *e)
{
	struct sfs_inode *in;
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0) {
		rc = sfs_neg_errno();
		close(fd);
		return rc;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		close(fd);
		return -EIO; /* nothing of ours */
	}
	in = sfs_inode_get(fd, &st, SFS_INODE_NODE, parent->sess, parent, backing);
	if (!in)
		return -ENOMEM;
	return finish_entry(in, keys, id, attrs, e);
}

void sfs_name_is_new(const struct fuse_entry_param *e)
{
	atomic_store(&sfs_inode_of(e->ino)->name_new, true);
}

int sfs_sync_name(struct sfs_inode *in, int fd)
{
	int rc;

	if (!atomic_load(&in->name_new))
		return 0;
	rc = sfs_fsync_parent(fd);
	if (rc == 0)
		atomic_store(&in->name_new, false);
	return rc;
}

int sfs_entry_at(struct sfs_inode *parent, int dirfd, const char *backing,
		 const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	struct sfs_inode *in;
	struct stat st;
	int fd;

	/* A node the table already holds needs no descriptor of its own. */
	if (fstatat(dirfd, backing, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return sfs_neg_errno();
	in = sfs_inode_find(st.st_dev, st.st_ino);
	if (in) {
		/* Found by this name now (a hard link's other one, or after a rename). */
		int rc = sfs_inode_name(in, parent, backing);

		if (rc == 0)
			rc = sfs_inode_pin(in);
		if (rc < 0) {
			sfs_inode_unref(in, 1);
			return rc;
		}
		return finish_entry(in, keys, NULL, NULL, e);
	}
	fd = sfs_inode_open(dirfd, backing, st.st_mode);
	return fd < 0 ? fd : sfs_make_entry(parent, backing, fd, keys, NULL, NULL, e);
}

int sfs_lookup_node(struct sfs_inode *parent, const char *name, const struct sfs_keys *keys,
		    struct fuse_entry_param *e)
{
	char backing[SFS_NAME_MAX + 1];
	int rc;

	if (parent->bad)
		return -EIO;
	rc = sfs_tree_backing(backing, name, parent->id, keys);
	if (rc < 0)
		return rc;
	rc = sfs_entry_at(parent, parent->fd, backing, keys, e);
	if (rc == 0)
		sfs_mark_special(parent, name, keys, e);
	return rc;
}

void sfs_mark_special(struct sfs_inode *parent, const char *name, const struct sfs_keys *keys,
		      struct fuse_entry_param *e)
{
	struct sfs_inode *in = sfs_inode_of(e->ino);

	in->special = sfs_node_type(in) == S_IFREG ? sfs_special_of(parent, name) : SFS_SP_NONE;
	if (in->special == SFS_SP_NONE && sfs_node_headerless(in, keys) > 0)
		sfs_node_stat(in, &e->attr);
	/*
	 * A replaced metadata.json must be looked up again: never cached.
	 * events.jsonl is never replaced (renames over it are refused), so its
	 * name may stay cached; its size moves with every append: attributes
	 * are not cached.
	 */
	if (in->special == SFS_SP_META)
		e->entry_timeout = e->attr_timeout = 0;
	else if (in->special == SFS_SP_EVENTS)
		e->attr_timeout = 0;
}

/*
 * Load the attributes of session root @in if the session is unlocked. Its
 * name and attributes seen from outside (ls -l sessions/, sessionctl's
 * checks of its argument) are no use of the session: idle_lock runs on.
 */
static void load_session_root(struct sfs_inode *in)
{
	const struct sfs_keys *keys;

	if (sfs_session_enter_quiet(in->sess, &keys) == 0) {
		sfs_node_load(in, keys);
		sfs_session_leave(in->sess);
	}
}

/* sessions/ID or archive/ID */
static int lookup_session(struct sfs_inode *top, const char *name, struct fuse_entry_param *e)
{
	struct sfs_session *s;
	struct sfs_inode *in;
	struct stat st;
	int cfd, rfd, rc;

	if (!sfs_id_valid(name))
		return -ENOENT;
	cfd = openat(top->fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		return sfs_neg_errno();
	if (faccessat(cfd, SFS_KEY_NAME, F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (rfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		close(cfd);
		return -ENOENT;
	}
	s = sfs_session_get(name, cfd);
	close(cfd);
	close(rfd);
	if (!s)
		return -ENOMEM;
	/*
	 * Opened again, and its inode made, under rw held for reading: a rekey
	 * switches the containers and counts the switch under rw held for
	 * writing, so the inode is stamped with the count of the container
	 * whose root it is (sfs_inode_stale; opened before the lock, it could
	 * be the old root stamped with the new count, and what was written
	 * through it lost with the old container).
	 */
	pthread_rwlock_rdlock(&s->rw);
	cfd = openat(top->fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rfd = cfd < 0 ? -1
		      : openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = rfd < 0 ? -ENOENT : fstat(rfd, &st) < 0 ? sfs_neg_errno() : 0;
	if (cfd >= 0)
		close(cfd);
	in = rc < 0 ? NULL : sfs_inode_get(rfd, &st, SFS_INODE_SESSION, s, NULL, NULL);
	pthread_rwlock_unlock(&s->rw);
	if (rc < 0) {
		if (rfd >= 0)
			close(rfd);
		return rc;
	}
	if (!in)
		return -ENOMEM;
	load_session_root(in);
	rc = sfs_node_stat(in, &e->attr);
	if (rc < 0) {
		sfs_inode_unref(in, 1);
		return rc;
	}
	e->ino = sfs_ino_of(in);
	e->generation = 0;
	fill_timeouts(e, in);
	return 0;
}

static int lookup_fixed(const char *name, struct fuse_entry_param *e)
{
	struct sfs_inode *in;

	if (strcmp(name, SFS_SESSIONS_DIR) == 0)
		in = &sfs->top[0];
	else if (strcmp(name, SFS_ARCHIVE_DIR) == 0)
		in = &sfs->top[1];
	else if (strcmp(name, SFS_PROTO_CTL_FILE) == 0)
		in = &sfs->ctl;
	else if (strcmp(name, SFS_CURRENT_NAME) == 0)
		in = &sfs->current; /* -ENOENT from sfs_node_stat while none is set */
	else
		return -ENOENT;
	e->ino = sfs_ino_of(in);
	fill_timeouts(e, in);
	return sfs_node_stat(in, &e->attr);
}

void sfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	struct fuse_entry_param e = {0};
	const struct sfs_keys *keys;
	int rc;

	switch (p->kind) {
	case SFS_INODE_ROOT:
		rc = lookup_fixed(name, &e);
		break;
	case SFS_INODE_TOP:
		rc = lookup_session(p, name, &e);
		break;
	case SFS_INODE_SESSION:
	case SFS_INODE_NODE:
		rc = sfs_enter_node(p, &keys);
		if (rc == 0) {
			rc = sfs_lookup_node(p, name, keys, &e);
			sfs_session_leave(p->sess);
		}
		break;
	default:
		rc = -ENOTDIR;
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

void sfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	sfs_inode_unref(sfs_inode_of(ino), nlookup);
	fuse_reply_none(req);
}

void sfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		sfs_inode_unref(sfs_inode_of(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

void sfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	struct stat st;
	int rc;

	(void)fi;
	if (in->kind == SFS_INODE_NODE) {
		/* Nothing inside a locked session is reachable, stat included. */
		rc = sfs_enter_node(in, &keys);
		if (rc < 0) {
			sfs_reply_err(req, rc);
			return;
		}
		rc = sfs_node_stat(in, &st);
		sfs_session_leave(in->sess);
	} else {
		if (in->kind == SFS_INODE_SESSION)
			load_session_root(in);
		rc = sfs_node_stat(in, &st);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(in));
}

/*
 * Set times on a node: through the open file's descriptor when there is one
 * (futimens), else through the node's own descriptor (AT_EMPTY_PATH).
 */
static int set_times(struct sfs_inode *in, const struct stat *attr, int to_set,
		     struct fuse_file_info *fi)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	if (fi && in->type == S_IFREG) {
		if (futimens(((struct sfs_fh *)(uintptr_t)fi->fh)->fd, ts) < 0)
			return sfs_neg_errno();
		return 0;
	}
	return utimensat(in->fd, "", ts, AT_EMPTY_PATH) < 0 ? sfs_neg_errno() : 0;
}

static int set_size(struct sfs_inode *in, off_t size, struct fuse_file_info *fi,
		    const struct sfs_keys *keys)
{
	struct sfs_file f = {.keys = keys};
	struct sfs_renewal rn;
	mode_t type = sfs_node_type(in);
	int rc;

	/* As the kernel answers truncate(2): only a regular file has a size to set. */
	if (type == S_IFDIR)
		return -EISDIR;
	if (type != S_IFREG)
		return -EINVAL;
	if (in->bad)
		return -EIO;
	if (fi)
		f.fd = ((struct sfs_fh *)(uintptr_t)fi->fh)->fd;
	else
		f.fd = in->fd_rw ? in->fd : sfs_reopen(in, O_RDWR);
	if (f.fd < 0)
		return f.fd;
	pthread_rwlock_wrlock(&in->io);
	sfs_node_file_begin(in, &f, &rn);
	rc = sfs_file_size(f.fd, &f.size);
	if (rc == 0 && f.size == (uint64_t)size) {
		/* Nothing to cut or add, but ext4 moves mtime and ctime all the same. */
		if (futimens(f.fd, (struct timespec[2]){{.tv_nsec = UTIME_OMIT},
							{.tv_nsec = UTIME_NOW}}) < 0)
			rc = sfs_neg_errno();
	} else if (rc == 0) {
		rc = sfs_file_truncate(&f, (uint64_t)size);
	}
	sfs_node_file_end(in, &f, &rn);
	pthread_rwlock_unlock(&in->io);
	if (rc == -EBADMSG)
		sfs_log_corrupt(in, "", (long long)f.bad_block);
	if (!fi && f.fd != in->fd)
		close(f.fd);
	return rc;
}

static int setattr_node(fuse_req_t req, struct sfs_inode *in, struct stat *attr, int to_set,
			struct fuse_file_info *fi, const struct sfs_keys *keys)
{
	int fd = fi ? ((struct sfs_fh *)(uintptr_t)fi->fh)->fd : -1;
	struct sfs_attrs a, was;
	gid_t old_gid;
	int rc = 0;

	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		if (sfs_node_type(in) == S_IFLNK && (to_set & FUSE_SET_ATTR_MODE))
			return -EOPNOTSUPP;
		pthread_mutex_lock(&in->mu);
		a = was = in->attrs;
		pthread_mutex_unlock(&in->mu);
		old_gid = a.gid;
		/*
		 * Without default_permissions the kernel keeps S_ISVTX out of its
		 * copy of a file's mode, so the mode it sends with a chown or a
		 * truncate, to clear set-id bits, lacks it: ours stays.
		 */
		if ((to_set & FUSE_SET_ATTR_MODE) && in->type == S_IFREG &&
		    (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE)) &&
		    !sfs->opts.default_permissions)
			attr->st_mode |= a.mode & S_ISVTX;
		if (to_set & FUSE_SET_ATTR_MODE)
			a.mode = (uint32_t)((a.mode & S_IFMT) | (attr->st_mode & 07777));
		if (to_set & FUSE_SET_ATTR_UID)
			a.uid = attr->st_uid;
		if (to_set & FUSE_SET_ATTR_GID)
			a.gid = attr->st_gid;
		/* chown: what the kernel leaves to us of clearing set-id bits */
		if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
			a.mode = (uint32_t)sfs_kill_setid(req, a.mode, old_gid, false);
		if (in->bad)
			return -EIO;
		/*
		 * Nothing changes (tar's chown to the owner a file already has,
		 * its chmod to the mode it was made with): no header to reseal,
		 * only ctime moves, as on ext4.
		 */
		if (a.mode == was.mode && a.uid == was.uid && a.gid == was.gid)
			rc = fchownat(in->fd, "", (uid_t)-1, (gid_t)-1,
				      AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
				     ? sfs_neg_errno()
				     : 0;
		else
			rc = sfs_node_store_attrs(in, &a, fd, keys);
	}
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (in->special == SFS_SP_EVENTS)
			rc = -EPERM; /* append-only */
		else if (in->special == SFS_SP_META)
			rc = fi ? sfs_meta_truncate((struct sfs_fh *)(uintptr_t)fi->fh,
						    attr->st_size)
				: -EINVAL; /* a cut document is no document */
		else
			rc = set_size(in, attr->st_size, fi, keys);
		if (rc == 0 && in->special == SFS_SP_NONE)
			rc = sfs_kill_setid_node(req, in, fd, false, keys);
	}
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		rc = set_times(in, attr, to_set, fi);
	return rc;
}

void sfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	struct stat st;
	int rc;

	if (in->kind == SFS_INODE_CTL && to_set == FUSE_SET_ATTR_SIZE) {
		rc = sfs_node_stat(in, &st); /* O_TRUNC of the control file: nothing to do */
	} else if (!sfs_in_session(in)) {
		rc = -EPERM;
	} else {
		rc = sfs_enter_node(in, &keys);
		if (rc == 0) {
			/*
			 * An events.jsonl from before a rekey: its node is the old
			 * container's (EIO), but a truncate is refused as on any
			 * events.jsonl: append-only.
			 */
			if (!sfs_inode_old(in))
				rc = setattr_node(req, in, attr, to_set, fi, keys);
			else if (in->special == SFS_SP_EVENTS && (to_set & FUSE_SET_ATTR_SIZE))
				rc = -EPERM;
			else
				rc = -EIO;
			if (rc == 0 && in->special != SFS_SP_META)
				sfs_session_changed(in->sess);
			if (rc == 0)
				rc = sfs_node_stat(in, &st);
			sfs_session_leave(in->sess);
		}
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(in));
}

void sfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_inode *in = sfs_inode_of(ino);
	const struct sfs_keys *keys;
	char target[PATH_MAX];
	int rc;

	target[0] = '\0';
	if (in->kind == SFS_INODE_CURRENT) {
		rc = sfs_current_target(target, sizeof(target));
		if (rc < 0)
			sfs_reply_err(req, rc);
		else
			fuse_reply_readlink(req, target);
		return;
	}
	if (in->kind != SFS_INODE_NODE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = sfs_enter_node(in, &keys);
	if (rc == 0) {
		rc = sfs_node_readlink(in, target, keys);
		sfs_session_leave(in->sess);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_readlink(req, target);
	sodium_memzero(target, sizeof(target));
}

void sfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(sfs->storefd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = SFS_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}
