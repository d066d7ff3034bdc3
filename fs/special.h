/*
 * special.h - the two special files at the root of a session:
 * events.jsonl (append-only, one JSON object per line) and metadata.json
 * (a JSON object replaced atomically, its id and created fixed).
 * Files of those names deeper in the tree are ordinary.
 */
#ifndef SFS_SPECIAL_H
#define SFS_SPECIAL_H

#include "ops.h"

/* Which special file @name in directory @parent is, if any. */
enum sfs_special sfs_special_of(const struct sfs_inode *parent, const char *name);

/* events.jsonl: append the complete lines of @buf; @size or -errno (EINVAL, EPERM). */
ssize_t sfs_events_write(struct sfs_inode *in, struct sfs_fh *fh, const char *buf, size_t size,
			 off_t off, bool append);

/* events.jsonl: read at any offset; bytes or -errno (EIO when a record fails). */
ssize_t sfs_events_read(struct sfs_inode *in, char *buf, size_t size, off_t off);

/* events.jsonl at close: store a pending unterminated line (with a newline) or refuse it. */
int sfs_events_flush(struct sfs_inode *in, struct sfs_fh *fh);

/* metadata.json opened for writing: start its buffer (empty if @trunc). */
int sfs_meta_open(struct sfs_inode *in, struct sfs_fh *fh, bool trunc, const struct sfs_keys *keys);

/*
 * metadata.json writes, reads and truncates on the buffer of @fh, each
 * under fh->mu. A read gives -ENODATA if @fh holds no document (not open
 * for writing, or a lock wiped it): the stored one is read instead.
 */
ssize_t sfs_meta_write(struct sfs_fh *fh, const char *buf, size_t size, off_t off);
ssize_t sfs_meta_read(struct sfs_fh *fh, char *buf, size_t size, off_t off);
int sfs_meta_truncate(struct sfs_fh *fh, off_t size);

/* metadata.json at flush, fsync or close: validate and replace atomically. */
int sfs_meta_commit(struct sfs_inode *in, struct sfs_fh *fh, const struct sfs_keys *keys);

/*
 * create of metadata.json where none is stored (a damaged store, or a
 * session an older build let lose it): a node that is never stored itself
 * (made and unlinked at once), so nothing is until a valid document
 * commits under the name. Fills @e. 0 or -errno.
 */
int sfs_meta_create(struct sfs_inode *p, const struct sfs_attrs *a, const struct sfs_keys *keys,
		    struct fuse_entry_param *e);

/*
 * metadata.json handle @fd flushed (close) or released: if its node is no
 * longer stored (made by sfs_meta_create and never committed, or replaced
 * since), the kernel's entry for the name is dropped, so the name shows
 * what is stored.
 */
void sfs_meta_closed(struct sfs_inode *in, int fd);

/*
 * rename over metadata.json: is the source file @fd (backing, read-only) a
 * valid replacement for the document in session root @root? 0 or -EINVAL.
 * Called with the session's meta_mu held (the stored document it reads
 * must stay the one the rename replaces).
 */
int sfs_meta_check_replacement(struct sfs_inode *root, int fd, const struct sfs_keys *keys);

/*
 * Has @fh something for close to commit (1: a metadata.json document, an
 * unterminated events line) or not (0)? -EIO if a lock wiped what it held.
 */
int sfs_special_pending(struct sfs_fh *fh);

/* Free what @fh holds for a special file. */
void sfs_special_release(struct sfs_fh *fh);

#endif
