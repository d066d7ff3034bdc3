/*
 * symlink.h - symlink targets in the store, in their two forms.
 *
 * Short form, targets of 1..SFS_SYMLINK_MAX bytes: a backing symlink whose
 * own target is the sealed, base64url-encoded target (format.h). Long form,
 * targets of SFS_SYMLINK_MAX + 1 ..SFS_SYMLINK_LONG_MAX bytes, whose
 * encoding would not fit the backing filesystem's PATH_MAX: a file node (a
 * backing regular file with a node header whose sealed mode is
 * S_IFLNK | 0777) whose content, one block laid out as any file's block 0,
 * is the target, bound to the node's file id. doc/format.md "Symlinks".
 *
 * Knows the format layer and readlinkat/pread/pwrite; nothing of names,
 * sessions or FUSE. Errors: -errno of the backing filesystem; -EBADMSG when
 * a target fails authentication or has a length no target of its form has.
 */
#ifndef SFS_SYMLINK_H
#define SFS_SYMLINK_H

#include "format.h"

#include <limits.h>
#include <stdbool.h>

#define SFS_SYMLINK_LONG_MAX (PATH_MAX - 1) /* 4095, as ext4 */

/* Does a target of @len bytes take the long form? (Longer than SFS_SYMLINK_MAX.) */
static inline bool sfs_symlink_is_long(size_t len)
{
	return len > SFS_SYMLINK_MAX;
}

/*
 * Short form: the target of backing symlink @fd (an O_PATH | O_NOFOLLOW
 * descriptor of the link itself) into @out, NUL-terminated. 0 or -errno.
 */
int sfs_symlink_read_short(int fd, char out[PATH_MAX], const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/*
 * Long form: write the @len-byte target (SFS_SYMLINK_MAX < len <=
 * SFS_SYMLINK_LONG_MAX) after the header of file node @fd, whose file id is
 * @id. 0, -ENAMETOOLONG (len out of range) or -errno.
 */
int sfs_symlink_write_long(int fd, const unsigned char id[SFS_ID_BYTES], const char *target,
			   size_t len, const struct sfs_keys *keys);

/*
 * Long form: the target of file node @fd (file id @id) into @out,
 * NUL-terminated; its length in *@len if not NULL. 0 or -errno.
 */
int sfs_symlink_read_long(int fd, const unsigned char id[SFS_ID_BYTES], char out[PATH_MAX],
			  size_t *len, const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/*
 * Is @plain (a file node's plaintext size) the length of a long-form
 * target? Lets a directory listing tell which file nodes may be symlinks
 * without reading them.
 */
static inline bool sfs_symlink_long_size(uint64_t plain)
{
	return plain > SFS_SYMLINK_MAX && plain <= SFS_SYMLINK_LONG_MAX;
}

#endif
