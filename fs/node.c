/*
 * node.c - attributes of the nodes inside sessions: loading their headers,
 * answering stat, storing changed attributes, logging corruption.
 *
 * Backing timestamps, link counts and sizes are the store's; mode, owner and
 * group come from the sealed header. Knows the core library; replies to no
 * request.
 */
#include "fs.h"
#include "fileio.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

int sfs_reopen(const struct sfs_inode *in, int flags)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", in->fd);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? sfs_neg_errno() : fd;
}

void sfs_log_corrupt(const struct sfs_inode *in, const char *what, long long block)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", in->fd);
	n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	if (block >= 0)
		sfs_log(LOG_ERR, "%s: corrupt file %s: block %lld failed authentication",
			in->sess ? in->sess->id : "?", path, block);
	else
		sfs_log(LOG_ERR, "%s: corrupt %s: %s failed authentication",
			in->sess ? in->sess->id : "?", path, what);
}

/* Read the header of @in; called with in->mu held. */
static int load_locked(struct sfs_inode *in, const struct sfs_keys *keys)
{
	char enc[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd, rc;

	switch (in->type) {
	case S_IFDIR:
		return sfs_tree_dir_load(in->fd, in->id, &in->attrs, keys);
	case S_IFREG:
		fd = in->fd_rw ? in->fd : sfs_reopen(in, O_RDONLY);
		if (fd < 0)
			return fd;
		/* An empty backing file has no header: this version never writes one. */
		if (fstat(fd, &st) == 0 && st.st_size == 0)
			rc = -EBADMSG;
		else
			rc = sfs_file_read_header(fd, in->id, &in->attrs, keys);
		if (fd != in->fd)
			close(fd);
		return rc;
	case S_IFLNK:
		n = readlinkat(in->fd, "", enc, sizeof(enc) - 1);
		if (n < 0)
			return sfs_neg_errno();
		enc[n] = '\0';
		rc = sfs_fmt_symlink_decode(target, sizeof(target), enc, keys);
		if (rc < 0)
			return -EBADMSG;
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

	if (in->kind != SFS_K_SESSION && in->kind != SFS_K_NODE)
		return 0;
	pthread_mutex_lock(&in->mu);
	if (!in->loaded) {
		rc = load_locked(in, keys);
		if (rc == -EBADMSG || rc == -EUCLEAN || rc == -EPROTONOSUPPORT) {
			sfs_log_corrupt(in, in->type == S_IFDIR ? "directory header" : "header", -1);
			in->bad = true;
			in->attrs = (struct sfs_attrs){in->type | 0600, sfs->owner, sfs->owner_gid, 0, 0};
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

	if (in->kind == SFS_K_CTL) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_uid = sfs->owner;
		st->st_gid = sfs->owner_gid;
		return 0;
	}
	if (fstat(in->fd, st) < 0)
		return sfs_neg_errno();
	/*
	 * Nodes keep the backing inode number, as readdir's d_ino does: it is
	 * shared by hard links and stable while the file exists (tar, cp -a
	 * and rsync -H rely on that). The mount root and sessions/ and
	 * archive/ are the daemon's own, numbered as readdir of the root says.
	 */
	if (in->kind == SFS_K_ROOT || in->kind == SFS_K_TOP) {
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
	st->st_rdev = in->attrs.rdev;
	if (in->type == S_IFLNK)
		st->st_size = (off_t)in->linklen;
	if (in->type == S_IFREG && in->attrs.kind == SFS_KIND_LOG) {
		/* events.jsonl: the size unlock found, kept by every append; no read. */
		st->st_size = (off_t)atomic_load(&in->sess->ev_size);
		pthread_mutex_unlock(&in->mu);
		return 0;
	}
	pthread_mutex_unlock(&in->mu);
	if (in->type == S_IFREG) {
		sfs_fmt_plain_size((uint64_t)st->st_size, &plain);
		st->st_size = (off_t)plain;
	}
	return 0;
}

int sfs_node_store_attrs(struct sfs_inode *in, const struct sfs_attrs *a, int fd,
			 const struct sfs_keys *keys)
{
	int rc = 0, own = -1;
	struct stat st;

	pthread_mutex_lock(&in->mu);
	switch (in->type) {
	case S_IFDIR:
		rc = sfs_tree_dir_store(in->fd, in->id, a, keys);
		break;
	case S_IFREG:
		if (fd < 0 && in->fd_rw)
			fd = in->fd;
		if (fd < 0)
			fd = own = sfs_reopen(in, O_WRONLY);
		/* A header rewrite is chmod/chown: ctime changes, mtime must not. */
		rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? sfs_neg_errno() : 0;
		if (rc == 0)
			rc = sfs_file_write_header(fd, in->id, a, keys);
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
	if (rc == 0)
		in->attrs = *a;
	pthread_mutex_unlock(&in->mu);
	return rc;
}
