/*
 * eventlog.h - an append-only log of sealed records (SFS_KIND_LOG files):
 * how a session's events.jsonl is stored.
 *
 * An append adds records after the last one and never rewrites a byte that
 * was written before, so a crash can only tear the append in flight. A read
 * finds its frame by binary search over the frames' first records and opens
 * only the records it returns; size and line count come from the last frame.
 * A failing record costs only the bytes it held: reads and loads step over
 * it to the next record that opens.
 * Knows the format and crypto layers and pread/pwrite/ftruncate; nothing of
 * names, JSON, sessions or FUSE.
 *
 * A struct sfs_log is the one copy of an open log's position: an append
 * moves it in place. It is not locked: the caller serialises appends,
 * loads and repairs, and lets reads (sfs_log_pread, which writes nothing
 * into the log) share with each other. Only l->size may also be read with
 * no lock at all (atomic_load: what a stat shows).
 *
 * Errors: -errno of the backing filesystem, or -EBADMSG when a record fails
 * authentication or is not where the chain of records says (its backing
 * offset goes to l->bad for the caller to log).
 */
#ifndef SFS_EVENTLOG_H
#define SFS_EVENTLOG_H

#include "format.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * How much of a log's end is checked at unlock. An append of complete lines
 * is at most 2 MiB (1 MiB request plus a held tail), so a torn one lies
 * entirely inside this window.
 */
#define SFS_LOG_CHECK_WINDOW (4u << 20)

/* An open log and where it ends. */
struct sfs_log {
	int fd;				/* backing file, read-write (-1: none open) */
	unsigned char id[SFS_ID_BYTES]; /* file id from its header */
	const struct sfs_keys *keys;
	uint64_t end;	       /* backing bytes in use (the next record goes at or after it) */
	_Atomic uint64_t size; /* plaintext bytes; readable without the caller's lock */
	uint64_t lines;	       /* newlines, i.e. complete lines */
	uint64_t bad;	       /* backing offset of the last record that failed */
};

/* Write the header of a new, empty log (kind SFS_KIND_LOG) to empty file @fd; 0 or -errno. */
int sfs_log_create(int fd, const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
		   const struct sfs_keys *keys);

/*
 * Find end, size and lines of the log in l->fd (whose header the caller has
 * read into l->id) from its last frame: 0, -errno, or -EBADMSG if the log
 * does not end with a whole append (a torn tail: sfs_log_repair mends it).
 * Failing records before the last one do not stop it.
 */
int sfs_log_load(struct sfs_log *l);

/*
 * A run of zero bytes at least this long inside failing records is what a
 * write lost in a power loss leaves (a lost disk sector is 512 zero bytes or
 * more); a healthy log never has one (a frame's unused tail is under 61).
 */
#define SFS_LOG_ZERO_RUN 512

/* Bytes before the kept bytes in a kept file: the log's header and a u64 (doc/format.md). */
#define SFS_LOG_KEPT_HDR (SFS_HDR_BYTES + 8)
/* The size of a kept file's name, "events.kept-<16 hex>", with its NUL. */
#define SFS_LOG_KEPT_NAME 29

/*
 * A span of records that fail and that no crash explains (damage), left
 * in place: reads that touch it fail, every other byte reads.
 */
struct sfs_log_damage {
	uint64_t count; /* damaged spans found (0: none); the fields describe the first */
	uint64_t pos;	/* backing offset where it starts */
	uint64_t next;	/* backing offset of the good record after it */
	bool known;	/* its start in the plaintext is known: off, line */
	bool bounded;	/* a good record follows it: end, last */
	uint64_t off;	/* plaintext bytes [off, end) are in it */
	uint64_t end;
	uint64_t line; /* it holds (parts of) lines line..last, counting from 1 */
	uint64_t last;
};

/* What sfs_log_repair did and found. */
struct sfs_log_repair {
	uint64_t dropped; /* backing bytes cut off the end (0: none) */
	uint64_t cut_at;  /* backing offset of the cut */
	uint64_t size;	  /* plaintext size the log was cut back to */
	uint64_t lines;	  /* ... and its lines */
	bool hole;	  /* the cut starts before a hole (zeros) a power loss left */
	bool whole;	  /* the cut records were whole but failed: damage, not a crash */
	bool kept;	  /* the cut bytes were kept (whenever anything was cut) */
	uint64_t bad_at;  /* backing offset of the first failing record, if any */
	struct sfs_log_damage damage; /* damage left in place */
};

/*
 * Check the last SFS_LOG_CHECK_WINDOW bytes of the log and cut off what a
 * crash can leave, and only that:
 *  - the tail after the last complete append (the last END record that
 *    opens): a kill -9 leaves a prefix of the last write;
 *  - after a power loss, writes never fsynced can also have lost sectors
 *    (a run of SFS_LOG_ZERO_RUN zero bytes in a failing span) with good
 *    records after them: everything from the last complete append before
 *    such a hole is cut.
 * The cut bytes are first copied to a new file @keep_name in directory
 * @keep_dirfd (doc/format.md, "Kept bytes"), unless a cut of the same tail
 * that a kill or crash interrupted before the log was cut left a kept file
 * ("events.kept-<16 hex>") holding a prefix of those bytes: that file is
 * completed instead, and its name written to @keep_name (SFS_LOG_KEPT_NAME
 * bytes), so no bytes are kept twice. A failing span that no crash
 * explains (no hole, good records of later appends after it) is damage:
 * it stays as it is, and is described in rep->damage. Then the state is
 * loaded as by sfs_log_load.
 * 0; -EBADMSG when the window holds no complete append at all (damage, not
 * a crash: nothing is cut); -errno.
 */
int sfs_log_repair(struct sfs_log *l, struct sfs_log_repair *rep, int keep_dirfd, char *keep_name);

/*
 * Check the frame of a loaded log that holds backing offset @pos (and the
 * one before it) for failing records: 0 with d->count 0 if there are none,
 * 0 with @d describing the first, or -errno.
 */
int sfs_log_check(struct sfs_log *l, uint64_t pos, struct sfs_log_damage *d);

/*
 * Read up to @len bytes at plaintext @off; bytes read (0 at EOF) or -errno:
 * -EBADMSG if any byte asked for is in a failing record (the others of the
 * log read all the same).
 */
ssize_t sfs_log_read(struct sfs_log *l, void *buf, size_t len, uint64_t off);

/*
 * The same read for readers that share @l: nothing is written into it, and
 * the backing offset of a record that failed goes to *@bad instead.
 */
ssize_t sfs_log_pread(const struct sfs_log *l, void *buf, size_t len, uint64_t off, uint64_t *bad);

/*
 * Append @len bytes (whole lines, the caller's rule) as the records of one
 * append, with one pwrite after the last record. Space is reserved first,
 * and a failed write is cut off again, so on error nothing was appended.
 * 0 or -errno.
 */
int sfs_log_append(struct sfs_log *l, const void *buf, size_t len);

/* Close l->fd (if open) and set it to -1; the state stays what was last known. */
void sfs_log_close(struct sfs_log *l);

#endif
