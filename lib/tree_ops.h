/*
 * tree_ops.h - namespace transactions in an encrypted directory: create a
 * file node (regular file, FIFO, socket, device), make a directory, a
 * symlink, a second link; unlink, rmdir, rename. Each takes the parent's
 * backing descriptor, its node id, a plaintext name and the session's keys,
 * and does the name encryption, the sidecar of a long name, the header and
 * the publish, crash-safe: a node is built under an internal name and
 * published whole; a sidecar is durable before the name that needs it; a
 * directory leaves the namespace whole (retired) before it is taken apart.
 * What a crash leaves is only what the sweep (prepare.c) and the reap of a
 * retired directory recognise: .sfs-new-*, .sfs-gone-*, orphan sidecars.
 *
 * Built on tree.h, fileio.h and symlink.h. Knows nothing of sessions, the
 * inode table, locks, logging or FUSE: what the caller must learn on the
 * way (a node about to lose a name, a leftover it could not remove) comes
 * through struct sfs_tree_hooks.
 */
#ifndef SFS_TREE_OPS_H
#define SFS_TREE_OPS_H

#include "format.h"

#include <stdbool.h>
#include <sys/stat.h>

/* What a transaction tells its caller on the way; any member may be NULL. */
struct sfs_tree_hooks {
	/*
	 * Entry @backing of @dirfd is about to lose a name (unlink, rmdir, the
	 * target of a rename), found and not yet removed. Not called for a
	 * rename of a node over itself.
	 */
	void (*victim)(void *arg, int dirfd, const char *backing);
	/*
	 * A step past the point of no return failed; the transaction's result
	 * stands and what is left is an internal name (@name) the sweep takes:
	 * SFS_TREE_WARN_REAP (a retired directory not removed),
	 * SFS_TREE_WARN_UNRETIRE (a retired directory not put back as @other
	 * after a failed rename), SFS_TREE_WARN_OWNER (a symlink's owner not
	 * set; @name is NULL).
	 */
	void (*warn)(void *arg, int what, const char *name, const char *other, int rc);
	void *arg;
};

enum { SFS_TREE_WARN_REAP, SFS_TREE_WARN_UNRETIRE, SFS_TREE_WARN_OWNER };

/* A node a transaction made, published under its name. */
struct sfs_tree_new {
	int fd;				/* the caller's: read-write for a file node, else O_PATH */
	bool has_id;			/* @id and the attributes given are its header's */
	unsigned char id[SFS_ID_BYTES]; /* a fresh random id (file node, directory) */
	struct sfs_ename en;		/* its name in the store, for sfs_tree_undo */
};

/* Open node @name of @dirfd with @flags (O_NOFOLLOW and O_CLOEXEC added): fd or -errno. */
int sfs_tree_open(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name, int flags,
		  const struct sfs_keys *keys);

/*
 * A file node @name (@attrs->mode: S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR or
 * S_IFBLK): a backing file, its header alone. -EEXIST if the name is taken.
 */
int sfs_tree_mknod(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		   struct sfs_tree_new *out);

/* A directory @name: its header durable before its name (tree.h sfs_tree_dir_init). */
int sfs_tree_mkdir(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		   struct sfs_tree_new *out);

/*
 * A symlink @name to @target: a backing symlink of the encrypted target
 * (owner @attrs->uid/gid where the store lets us: SFS_TREE_WARN_OWNER
 * otherwise, but EPERM silently), or, for a target too long for one, a
 * file node holding it (out->has_id). -ENAMETOOLONG past
 * SFS_SYMLINK_LONG_MAX bytes.
 */
int sfs_tree_symlink(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		     const char *target, const struct sfs_attrs *attrs, const struct sfs_keys *keys,
		     const struct sfs_tree_hooks *h, struct sfs_tree_new *out);

/* A second name @name for the node open as @nodefd (any descriptor). */
int sfs_tree_link(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name, int nodefd,
		  const struct sfs_keys *keys, struct sfs_tree_new *out);

/*
 * Take back a node a transaction just published (its caller could not use
 * it): its name and sidecar go. out->fd is the caller's still.
 */
void sfs_tree_undo(int dirfd, const struct sfs_tree_new *n);

/* Remove name @name (not a directory); its stat before, in @st. 0 or -errno. */
int sfs_tree_unlink(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		    const struct sfs_keys *keys, const struct sfs_tree_hooks *h, struct stat *st);

/* Remove empty directory @name: retired, then reaped (tree.h). 0 or -errno. */
int sfs_tree_rmdir(int dirfd, const unsigned char dirid[SFS_ID_BYTES], const char *name,
		   const struct sfs_keys *keys, const struct sfs_tree_hooks *h);

/*
 * rename(2) of @name in @fromfd to @newname in @tofd, in one session, with
 * @flags 0, RENAME_NOREPLACE or RENAME_EXCHANGE. The new name's sidecar is
 * durable first; a directory renamed over is retired first and reaped
 * after, or put back if the rename fails. @moved: the stat of the node now
 * under @newname (st_mode 0 if that failed). 0 or -errno.
 */
int sfs_tree_rename(int fromfd, const unsigned char fromid[SFS_ID_BYTES], const char *name,
		    int tofd, const unsigned char toid[SFS_ID_BYTES], const char *newname,
		    unsigned int flags, const struct sfs_keys *keys, const struct sfs_tree_hooks *h,
		    struct stat *moved);

#endif
