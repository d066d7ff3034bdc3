/*
 * xattr.h - extended attributes of the nodes inside a session, stored
 * encrypted beside the tree: one sealed blob per node that has any, named
 * after the node's id, in the session root's internal directory .sfsx/.
 *
 * Knows the format, crypto and util layers: the blob layout (doc/format.md,
 * "Extended attributes"), sealing under keys->meta bound to the node id, and
 * atomic replacement. Names are stored without a namespace prefix; which
 * namespaces exist (only "user.") is the caller's business. Knows nothing of
 * FUSE, sessions or JSON. Functions return 0 or a negative errno; a blob
 * that fails authentication is -EBADMSG.
 */
#ifndef SFS_XATTR_H
#define SFS_XATTR_H

#include "format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SFS_XATTR_DIR ".sfsx" /* in a session root: one blob per node */
#define SFS_XATTR_VERSION 1
#define SFS_XATTR_HDR_BYTES 6					     /* "SFSX" | u16 version */
#define SFS_XATTR_AD_BYTES (SFS_XATTR_HDR_BYTES + SFS_ID_BYTES)	     /* header || node id */
#define SFS_XATTR_OVERHEAD (SFS_XATTR_HDR_BYTES + SFS_SEAL_OVERHEAD) /* 46 */

#define SFS_XATTR_NAME_MAX 255		 /* bytes of one name (u8 on disk) */
#define SFS_XATTR_VALUE_MAX 65536	 /* bytes of one value, as Linux's XATTR_SIZE_MAX */
#define SFS_XATTR_PLAIN_MAX (128 * 1024) /* packed plaintext of one node: count and entries */
#define SFS_XATTR_LIST_MAX 65536	 /* a listxattr reply, as Linux's XATTR_LIST_MAX */

/* Flags of sfs_xattr_set(), as setxattr(2)'s. */
#define SFS_XATTR_CREATE 1  /* fail with -EEXIST if the name exists */
#define SFS_XATTR_REPLACE 2 /* fail with -ENODATA if it does not */

/*
 * The attributes of one node in memory, decrypted: the packed plaintext
 * (u32 count, then per entry u8 name length, u32 value length, name, value)
 * in a malloc'd buffer that sfs_xattrs_free() wipes. All zero is the empty
 * set.
 */
struct sfs_xattrs {
	unsigned char *plain; /* NULL when empty */
	size_t len;	      /* bytes of plain in use */
	uint32_t count;	      /* entries */
};

/* Wipe and free @x's buffer and make it the empty set again. */
void sfs_xattrs_free(struct sfs_xattrs *x);

/*
 * Look @name (without prefix) up: 0 with *value pointing into @x (valid
 * until @x changes) and *len set, or -ENODATA.
 */
int sfs_xattr_get(const struct sfs_xattrs *x, const char *name, const unsigned char **value,
		  size_t *len);

/*
 * Set @name to @len bytes of @value, replacing its old value in place or
 * adding it at the end. 0; -EEXIST (SFS_XATTR_CREATE, present); -ENODATA
 * (SFS_XATTR_REPLACE, absent); -EINVAL empty name; -ERANGE name too long;
 * -E2BIG value too long; -ENOSPC the node's attributes would pass
 * SFS_XATTR_PLAIN_MAX or their list SFS_XATTR_LIST_MAX (with @prefix_len
 * bytes of prefix per name); -ENOMEM. @x is unchanged on error.
 */
int sfs_xattr_set(struct sfs_xattrs *x, const char *name, const void *value, size_t len, int flags,
		  size_t prefix_len);

/* Remove @name: 0 or -ENODATA. */
int sfs_xattr_del(struct sfs_xattrs *x, const char *name);

/*
 * The names as listxattr(2) returns them, each with @prefix in front and a
 * NUL after, into @out of @size bytes. The bytes needed (also when @size is
 * 0, and then nothing is written), or -ERANGE if @size is too small.
 */
ssize_t sfs_xattr_list(const struct sfs_xattrs *x, const char *prefix, char *out, size_t size);

/* Bytes of the blob that holds @x (SFS_XATTR_OVERHEAD + x->len). */
size_t sfs_xattr_blob_len(const struct sfs_xattrs *x);

/* Seal @x (not empty) for node @id into @out of sfs_xattr_blob_len(x) bytes. */
void sfs_xattr_seal(unsigned char *out, const struct sfs_xattrs *x,
		    const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys);

/*
 * Open a blob of @inlen bytes for node @id into @x (emptied first). 0;
 * -EUCLEAN not a blob (size, magic) or a plaintext no writer makes;
 * -EPROTONOSUPPORT another version; -EBADMSG authentication failed (a
 * flipped byte, another node's blob, another session's key); -ENOMEM.
 */
int sfs_xattr_open(struct sfs_xattrs *x, const unsigned char *in, size_t inlen,
		   const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/* The blob's file name in .sfsx/: 32 lowercase hex digits of @id, NUL-terminated. */
void sfs_xattr_blob_name(char out[2 * SFS_ID_BYTES + 1], const unsigned char id[SFS_ID_BYTES]);

/*
 * Read node @id's attributes from session root @rootfd (O_PATH is fine)
 * into @x: no blob (or no .sfsx) is the empty set. 0 or -errno, and the
 * errors of sfs_xattr_open().
 */
int sfs_xattr_load(int rootfd, const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys,
		   struct sfs_xattrs *x);

/*
 * Replace node @id's blob with @x atomically (temporary, fsync, rename,
 * fsync of .sfsx), making .sfsx if needed; an empty @x removes the blob.
 * 0 or -errno; on error the old blob stays.
 */
int sfs_xattr_store(int rootfd, const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys,
		    const struct sfs_xattrs *x);

/* The node @id is gone: remove its blob, if any. 0 or -errno. Needs no key. */
int sfs_xattr_remove(int rootfd, const unsigned char id[SFS_ID_BYTES]);

/* Does session root @rootfd have a .sfsx directory (has any node ever had attributes)? */
bool sfs_xattr_present(int rootfd);

/*
 * Remove what a crash during sfs_xattr_store() can leave in .sfsx/ (its
 * temporaries); how many were removed.
 */
int sfs_xattr_sweep(int rootfd);

#endif
