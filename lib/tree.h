/*
 * tree.h - encrypted directories in the store: directory headers (.sfsdir)
 * and names, long ones through sidecar files.
 *
 * Works on backing directory descriptors (O_PATH is fine). Knows the format
 * layer; nothing of sessions, JSON or FUSE.
 */
#ifndef SFS_TREE_H
#define SFS_TREE_H

#include "format.h"

#include <stdbool.h>
#include <sys/types.h>

/*
 * Write the header of a new directory @dirfd (created by the caller), and
 * its copy in the xattr user.sfsdir, so that the caller may publish the
 * directory under its name: a power cut that keeps the name keeps the copy
 * (without user xattrs: the header and @dirfd are fsynced). 0 or -errno.
 */
int sfs_tree_dir_init(int dirfd, const unsigned char id[SFS_ID_BYTES],
		      const struct sfs_attrs *attrs, const struct sfs_keys *keys);

/* fsync a directory's header, then the directory itself (fsyncdir). 0 or -errno. */
int sfs_tree_dir_sync(int dirfd);

/*
 * Read a directory's header (from its copy if a power cut left .sfsdir
 * short or zeroed): 0, -errno, or -EBADMSG (missing, tampered or foreign).
 */
int sfs_tree_dir_load(int dirfd, unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
		      const struct sfs_keys *keys);

/* Rewrite a directory's header with new attributes (one 80-byte pwrite). */
int sfs_tree_dir_store(int dirfd, const unsigned char id[SFS_ID_BYTES],
		       const struct sfs_attrs *attrs, const struct sfs_keys *keys);

/*
 * New nodes are built under an internal name and published once complete,
 * so that no name ever shows a node without its header. sfs_tree_tmpname
 * fills @out (at least SFS_TMPNAME_MAX bytes) with a fresh internal name;
 * sfs_tree_publish renames it to @backing, -EEXIST if that name is taken.
 */
#define SFS_TMPNAME_MAX 32
void sfs_tree_tmpname(char *out);

/*
 * The prefixes of internal names: a node being built (sfs_tree_tmpname), a
 * directory being removed (sfs_tree_dir_retire), a metadata.json being
 * replaced (session root only). sfs_tree_internal_name fills @out (at least
 * SFS_TMPNAME_MAX bytes) with @prefix and 16 random hex digits.
 */
#define SFS_NEW_PREFIX ".sfs-new-"
#define SFS_GONE_PREFIX ".sfs-gone-"
#define SFS_META_PREFIX ".sfs-meta-"
void sfs_tree_internal_name(char *out, const char *prefix);
bool sfs_tree_has_prefix(const char *name, const char *prefix);
int sfs_tree_publish(int dirfd, const char *tmp, const char *backing);

/*
 * Removing an empty directory (rmdir, or a rename over it) must never leave
 * a name that shows a directory without its header, even if the daemon dies
 * half-way: sfs_tree_dir_retire first renames the directory @backing to a
 * fresh internal name (".sfs-gone-..."), written to @gone (at least
 * SFS_TMPNAME_MAX bytes), and only then may the caller remove it with
 * sfs_tree_dir_reap, or put it back with sfs_tree_dir_unretire. The
 * directory must hold nothing but its header and what a crash leaves
 * (.sfs-new-*, .sfs-gone-*, orphan sidecars), which goes with it:
 * -ENOTEMPTY otherwise, also for a name that is not ours. The reap removes
 * only those, then the directory itself with rmdir, so that anything else
 * found there by then stays (-ENOTEMPTY).
 */
int sfs_tree_dir_retire(int dirfd, const char *backing, char *gone);
int sfs_tree_dir_unretire(int dirfd, const char *gone, const char *backing);
int sfs_tree_dir_reap(int dirfd, const char *gone);

/*
 * Before a node is created under a long name: make its sidecar durable
 * (new file, fsync, rename over, fsync of @dirfd; nothing if the sidecar
 * already holds the name). 0 or -errno.
 */
int sfs_tree_name_add(int dirfd, const struct sfs_ename *en);

/* After a node under a long name is gone: remove its sidecar. 0 or -errno. */
int sfs_tree_name_del(int dirfd, const struct sfs_ename *en);

/*
 * The encrypted (backing) name of @name in directory @dirid (a long
 * one's hash; its sidecar is sfs_tree_name_add's job). 0, -ENAMETOOLONG or -EINVAL.
 */
int sfs_tree_backing(char out[SFS_NAME_MAX + 1], const char *name,
		     const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys);

/*
 * Plaintext name of backing entry @backing in directory @dirfd (id @dirid):
 * 0; -ENOENT if the entry is not a node (internal file, sidecar); -EBADMSG if
 * its name fails authentication or its sidecar is missing or foreign.
 */
int sfs_tree_name_read(int dirfd, const char *backing, const unsigned char dirid[SFS_ID_BYTES],
		       const struct sfs_keys *keys, char out[SFS_NAME_MAX + 1]);

/*
 * The node id in the header of entry @backing of @dirfd, a regular file or
 * a directory (@type, from its stat), unauthenticated: enough to find what
 * the node left elsewhere. 0, -errno, -EBADMSG (no header of ours).
 */
int sfs_tree_node_id(int dirfd, const char *backing, mode_t type, unsigned char id[SFS_ID_BYTES]);

#endif
