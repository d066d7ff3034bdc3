/*
 * eventlog.h - an append-only log of sealed records (SFS_KIND_LOG files):
 * how a session's events.jsonl is stored.
 *
 * An append adds records after the last one and never rewrites a byte that
 * was written before, so a crash can only tear the append in flight. A read
 * finds its frame by binary search over the frames' first records and opens
 * only the records it returns; size and line count come from the last frame.
 * Knows the format and crypto layers and pread/pwrite/ftruncate; nothing of
 * names, JSON, sessions or FUSE. Not thread-safe: the caller serialises
 * appends and repairs; reads may share with each other.
 *
 * Errors: -errno of the backing filesystem, or -EBADMSG when a record fails
 * authentication or is not where the chain of records says (its backing
 * offset goes to l->bad for the caller to log).
 */
#ifndef SFS_EVENTLOG_H
#define SFS_EVENTLOG_H

#include "format.h"

#include <stdbool.h>
#include <sys/types.h>

/*
 * How much of a log's end is checked at unlock. An append of complete lines
 * is at most 2 MiB (1 MiB request plus a held tail), so a torn one lies
 * entirely inside this window.
 */
#define SFS_LOG_CHECK_WINDOW (4u << 20)

/* An open log. */
struct sfs_log {
	int fd;                         /* backing file, read-write */
	unsigned char id[SFS_ID_BYTES]; /* file id from its header */
	const struct sfs_keys *keys;
	uint64_t end;   /* backing bytes in use (the next record goes at or after it) */
	uint64_t size;  /* plaintext bytes */
	uint64_t lines; /* newlines, i.e. complete lines */
	uint64_t bad;   /* backing offset of the last record that failed */
};

/* Write the header of a new, empty log (kind SFS_KIND_LOG) to empty file @fd; 0 or -errno. */
int sfs_log_create(int fd, const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
		   const struct sfs_keys *keys);

/*
 * Find end, size and lines of the log in l->fd (whose header the caller has
 * read into l->id) from its last frame: 0, -errno, or -EBADMSG if the log
 * does not end with a whole append (a torn tail: sfs_log_repair mends it).
 */
int sfs_log_load(struct sfs_log *l);

/* What sfs_log_repair did. */
struct sfs_log_repair {
	uint64_t dropped;    /* backing bytes cut off the end (0: none) */
	uint64_t size;       /* plaintext size the log was cut back to */
	uint64_t bad_at;     /* backing offset of the first bad record, if any */
	bool kept;           /* good records followed the bad one: the cut bytes were kept */
};

/*
 * Check the last SFS_LOG_CHECK_WINDOW bytes of the log and cut off what a
 * crash can leave: everything after the last complete append that precedes
 * the first record failing authentication (or the end). A kill -9 leaves a
 * prefix of the last write; a power loss can also leave holes in writes
 * that were never fsynced, with good records after them. Those are cut too
 * (nothing after a hole was acknowledged by fsync), but since bit rot looks
 * the same, the cut bytes are first copied, raw, to a new file @keep_name in
 * directory @keep_dirfd. Then the state is loaded as by sfs_log_load.
 * 0; -EBADMSG when the window holds no complete append at all (damage, not a
 * crash: nothing is cut); -errno.
 */
int sfs_log_repair(struct sfs_log *l, struct sfs_log_repair *rep, int keep_dirfd,
		   const char *keep_name);

/* Read up to @len bytes at plaintext @off; bytes read (0 at EOF) or -errno. */
ssize_t sfs_log_read(struct sfs_log *l, void *buf, size_t len, uint64_t off);

/*
 * Append @len bytes (whole lines, the caller's rule) as the records of one
 * append, with one pwrite after the last record. Space is reserved first,
 * and a failed write is cut off again, so on error nothing was appended.
 * 0 or -errno.
 */
int sfs_log_append(struct sfs_log *l, const void *buf, size_t len);

#endif
