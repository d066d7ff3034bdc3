/*
 * fileio.h - encrypted content of one regular file over a backing descriptor.
 *
 * Turns plaintext reads, writes and truncates into whole sealed blocks
 * (format.h). Knows the format and crypto layers and pread/pwrite; nothing
 * of names, sessions, JSON or FUSE. Not thread-safe: the caller serialises
 * calls on one file (readers may share, writers are exclusive).
 *
 * Errors: -errno of the backing filesystem; -EBADMSG when a block fails
 * authentication or the file is cut inside a block (the block number goes to
 * *bad_block for the caller to log).
 */
#ifndef SFS_FILEIO_H
#define SFS_FILEIO_H

#include "format.h"

#include <stdbool.h>
#include <sys/types.h>

/* What the caller knows of an open file. */
struct sfs_file {
	int fd;				/* backing file, open read-write */
	unsigned char id[SFS_ID_BYTES]; /* file id from its header */
	uint64_t size;			/* plaintext size; updated by write/truncate */
	const struct sfs_keys *keys;	/* the session's keys */
	uint64_t bad_block;		/* last block that failed authentication */
	bool sparse;			/* header kind SFS_KIND_SPARSE: may hold holes.
					 * Set by the caller from the header; set by
					 * calls that made the file sparse (the caller
					 * then updates what it keeps of the header) */
	/*
	 * @id was drawn at random for this file by the caller, or by a renewal,
	 * and nothing is sealed under it yet: its first content needs no new id.
	 * Cleared once content is about to be sealed.
	 */
	bool fresh;
	/*
	 * Open blocks on the calling thread only, not with the helpers of
	 * parallel.h: the caller already runs several reads at once.
	 */
	bool alone;
	/*
	 * Called by an id renewal (below) after the new id is drawn and before
	 * the header names it, for the caller to move what it keeps under the
	 * old id (extended attributes). A negative errno aborts the renewal and
	 * the call that wanted it. May be NULL.
	 */
	int (*renew)(const struct sfs_file *f, const unsigned char new_id[SFS_ID_BYTES], void *arg);
	void *renew_arg;
};

/*
 * Id renewal. Blocks are bound to the file id in the header, and someone who
 * can write the store can copy one file's header over an empty file: were
 * content then sealed under that id, blocks would move between the two
 * files unnoticed. So an empty file gets a fresh random id before its first
 * content (a write, a truncate or fallocate that grows it from 0) unless
 * f->fresh says its id is one the caller just drew, and again when it is
 * truncated to 0. The header is rewritten with the new id (and kind
 * SFS_KIND_BLOCKS: nothing is stored, so no hole is kept) while the backing
 * file is the header alone, before any block is sealed under it: a crash
 * leaves a valid empty file under the old or the new id. The new id is in
 * f->id when the call returns (also when it fails after the renewal); the
 * caller updates what it keeps of the header.
 */

/* Plaintext size of backing file @fd: 0, -errno or -EBADMSG (a size no valid file has). */
int sfs_file_size(int fd, uint64_t *size);

/*
 * Plaintext size of a backing file of @backing bytes (from its stat): 0,
 * or -EBADMSG for a size no valid file has (a crash during a write).
 */
int sfs_file_plain_size(uint64_t backing, uint64_t *plain);

/* Is a backing file of @backing bytes its header alone (no content block)? */
bool sfs_file_header_only(uint64_t backing);

/*
 * Cut backing file @fd down to its header: its content's space is freed and
 * it reads as empty (a file unlinked while someone may still reach it).
 * 0 or -errno.
 */
int sfs_file_cut_content(int fd);

/* Write a fresh header to an empty backing file @fd. 0 or -errno. */
int sfs_file_init(int fd, const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
		  const struct sfs_keys *keys);

/* Read and check the header of @fd. 0, -errno, or -EBADMSG (tampered or not ours). */
int sfs_file_read_header(int fd, unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
			 const struct sfs_keys *keys);

/* Rewrite the header of @fd with new attributes. 0 or -errno. */
int sfs_file_write_header(int fd, const unsigned char id[SFS_ID_BYTES],
			  const struct sfs_attrs *attrs, const struct sfs_keys *keys);

/* Read up to @len bytes at @off; bytes read (0 at EOF) or a negative errno. */
ssize_t sfs_file_read(struct sfs_file *f, void *buf, size_t len, uint64_t off);

/*
 * Holes. Growing a file past the end of its last block by at least one whole
 * block (a write far past EOF, truncate up, fallocate) makes it sparse: its
 * header is rewritten with kind SFS_KIND_SPARSE first, then the backing file
 * is extended with a hole, and a block stored as all zero bytes reads as
 * zeros. A gap of less than a block is written as sealed zeros. A file that
 * never had a hole keeps kind SFS_KIND_BLOCKS, where a zeroed block is EIO.
 * Callers must hold off header rewrites (chmod, chown) while these run.
 */

/* Write @len bytes at @off (past EOF fills the gap with zeros); @len or -errno. */
ssize_t sfs_file_write(struct sfs_file *f, const void *buf, size_t len, uint64_t off);

/* Set the size to @size, zero-filling when growing. 0 or -errno. */
int sfs_file_truncate(struct sfs_file *f, uint64_t size);

/*
 * fallocate(2) on the plaintext: @mode 0 or FALLOC_FL_KEEP_SIZE reserve store
 * space for [off, off + len) (mode 0 also grows the size); FALLOC_FL_PUNCH_HOLE
 * (with KEEP_SIZE) turns the range into a hole that frees its blocks;
 * FALLOC_FL_ZERO_RANGE zeroes it, space reserved. 0, -EOPNOTSUPP for other
 * modes, or -errno (-ENOSPC before anything changed).
 */
int sfs_file_fallocate(struct sfs_file *f, int mode, uint64_t off, uint64_t len);

/*
 * lseek(2)'s SEEK_DATA (@whence) or SEEK_HOLE from @off into *@pos. Only a
 * block whose whole stored range is a hole in the backing file counts as a
 * hole (a punched block that shares a file system block with a neighbour is
 * reported as data: conservative, as lseek allows); a file that is not
 * sparse is all data. 0, -ENXIO at or past EOF (or no data after @off),
 * -EINVAL for another @whence, or -errno.
 */
int sfs_file_seek(const struct sfs_file *f, uint64_t off, int whence, uint64_t *pos);

/*
 * Tail records (doc/format.md "Tail record"). A write that extends a file
 * whose last block is partial rewrites that block in place, and a power cut
 * can tear it: bytes an earlier fsync acknowledged would then fail
 * authentication with the rest of the block. So before the fsync of a file
 * whose size is not a whole number of blocks, sfs_file_keep_tail() copies
 * the stored last block (sealed, as stored) into the backing file's extended
 * attribute "user.sfs.tail", or, where the backing file system's attributes
 * cannot hold it (ext4 keeps one block of them), into a tail file named
 * after the file id in the tail directory SFS_TAIL_DIR of a directory the
 * caller gives (the session root), the attribute pointing at it; at a whole
 * number of blocks it removes the record. sfs_file_recover_tail() (the
 * first open after a mount) puts the recorded block back when the stored one
 * fails authentication or the size is one no file has, and cuts what
 * follows it: only bytes no fsync acknowledged. Neither needs the
 * plaintext; the record opens only under the file's id and the block's
 * number, so a stale one (another id, another block) is never used. A tail
 * file outlives its file unless the caller drops it when the file goes
 * (sfs_file_drop_tail_file) or its id changes.
 */
#define SFS_TAIL_DIR ".sfstail"

/*
 * Record (or, at a block boundary, drop) the tail of @fd, a file of @size
 * plaintext bytes and id @id; a record too large for an attribute goes to
 * the tail directory in @rootfd (-1: none, and the record is dropped). 1 if
 * the attribute changed (the caller must fsync(2), not fdatasync), 0 if
 * nothing changed (no record to drop, or a backing file system without user
 * extended attributes), or -errno.
 */
int sfs_file_keep_tail(int fd, uint64_t size, int rootfd, const unsigned char id[SFS_ID_BYTES]);

/*
 * After a crash: if @f (fd, id, keys, sparse set) has a tail record (tail
 * files under @rootfd) whose block opens, and the stored block fails
 * authentication or the backing size is one no file has, write the recorded
 * block back, cut the file after it and fsync. 1 if it did (*@was: the
 * plaintext size before, or UINT64_MAX if it had none; *@now: after), 0 if
 * nothing was needed or no usable record exists, or -errno.
 */
int sfs_file_recover_tail(struct sfs_file *f, int rootfd, uint64_t *was, uint64_t *now);

/*
 * Read only: 1 if @f (fd, id, keys) has a tail record whose block opens under
 * its id, with *@block its block number and *@plain_len its plaintext bytes
 * (what sfs_file_recover_tail would put back); 0 if none is usable, or -errno.
 */
int sfs_file_tail_probe(struct sfs_file *f, int rootfd, uint64_t *block, size_t *plain_len);

/* Does @rootfd hold a tail directory (so removed files may leave tail files)? */
bool sfs_file_has_tail_files(int rootfd);

/* Remove the tail file of file id @id under @rootfd: 1, 0 if none, or -errno. */
int sfs_file_drop_tail_file(int rootfd, const unsigned char id[SFS_ID_BYTES]);

#endif
