/*
 * fsck_lost.c - fsck.sessionfs's lost+found: an entry of a session whose
 * name no longer decrypts (tampered, moved from another directory, a long
 * name whose sidecar is gone) is never listed by a mount. A repair moves it,
 * whole (a directory with its subtree), into the folder lost+found of the
 * session root under a new name "#<its backing name>", where it is listed
 * and can be read, copied or removed; nothing is deleted. Content, headers
 * and xattr blobs are bound to node ids, not names, so they stay valid.
 *
 * Store layer (lib/fsck.h): names are tree.c's and format.c's. Nothing of
 * terminals, JSON output or FUSE.
 */
#include "fsck.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOST_FOUND "lost+found"

/* Open (making it if need be) the session's lost+found: its fd and directory id. */
static int lost_found(struct sfs_fsck_sess *s, unsigned char lfid[SFS_ID_BYTES])
{
	unsigned char rootid[SFS_ID_BYTES];
	struct sfs_attrs ra, la;
	char tmp[SFS_TMPNAME_MAX];
	struct sfs_ename en;
	int fd, rc;

	rc = sfs_tree_dir_load(s->rootfd, rootid, &ra, s->keys);
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&en, LOST_FOUND, rootid, s->keys);
	if (rc < 0)
		return rc;
	fd = openat(s->rootfd, en.backing, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		rc = sfs_tree_dir_load(fd, lfid, &la, s->keys);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		return fd;
	}
	if (errno != ENOENT)
		return sfs_neg_errno();
	/* A new directory, built under an internal name and published whole. */
	sfs_tree_tmpname(tmp);
	if (mkdirat(s->rootfd, tmp, 0700) < 0)
		return sfs_neg_errno();
	fd = openat(s->rootfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = sfs_neg_errno();
		unlinkat(s->rootfd, tmp, AT_REMOVEDIR);
		return rc;
	}
	la = (struct sfs_attrs){S_IFDIR | 0700, ra.uid, ra.gid, 0, SFS_KIND_BLOCKS};
	sfs_crypto_random(lfid, SFS_ID_BYTES);
	rc = sfs_tree_dir_init(fd, lfid, &la, s->keys);
	if (rc == 0)
		rc = sfs_tree_publish(s->rootfd, tmp, en.backing);
	if (rc == 0)
		rc = sfs_fsync_dirfd(s->rootfd);
	if (rc < 0) {
		close(fd);
		sfs_remove_tree(s->rootfd, tmp);
		return rc;
	}
	return fd;
}

int sfs_fsck_lost_found(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	const struct sfs_fsck_entry *e = arg;
	unsigned char lfid[SFS_ID_BYTES];
	char name[SFS_NAME_MAX + 1], side[SFS_NAME_MAX + 8];
	struct sfs_ename en;
	int lf, rc;

	(void)c;
	if (!s->keys)
		return -ENOKEY;
	lf = lost_found(s, lfid);
	if (lf < 0)
		return lf;
	snprintf(name, sizeof(name), "#%.64s", e->name);
	rc = sfs_fmt_name_encrypt(&en, name, lfid, s->keys);
	if (rc == 0)
		rc = sfs_tree_name_add(lf, &en);
	if (rc == 0 && renameat2(e->dirfd, e->name, lf, en.backing, RENAME_NOREPLACE) < 0)
		rc = sfs_neg_errno();
	if (rc == 0 && sfs_fmt_name_class(e->name) == SFS_NAME_LONG) {
		snprintf(side, sizeof(side), "%s%s", e->name, SFS_SIDECAR_SUFFIX);
		unlinkat(e->dirfd, side, 0);
	}
	if (rc == 0)
		rc = sfs_fsync_dirfd(lf);
	if (rc == 0)
		rc = sfs_fsync_dirfd(e->dirfd);
	close(lf);
	return rc;
}
