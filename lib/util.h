/*
 * util.h - small system helpers shared by every layer: syscalls turned into
 * negative errnos, whole reads and writes, atomic file replacement, ids and
 * times. Knows POSIX only: no crypto, no format, no JSON.
 */
#ifndef SFS_UTIL_H
#define SFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SFS_ID_HEX_MIN 4 /* INC- followed by at least 4 lowercase hex digits */
#define SFS_ID_HEX_MAX 16
#define SFS_SESSION_ID_MAX (4 + SFS_ID_HEX_MAX)

/* -errno of the last failed call (never 0: -EIO if errno was clobbered). */
int sfs_neg_errno(void);

/* pread/pwrite all of @len bytes; bytes done (short only at EOF for reads) or -errno. */
ssize_t sfs_pread_all(int fd, void *buf, size_t len, uint64_t off);
int sfs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/*
 * Ask the kernel to read @len bytes of @fd from @off into the page cache
 * (posix_fadvise WILLNEED), unless the first of them is there already (a
 * one-byte preadv2 with RWF_NOWAIT): then the kernel has read it or is
 * reading ahead, and the ask would only cost a walk of the range. A hint:
 * nothing is reported. The probe, when it misses, starts the kernel's
 * readahead of @fd from @off: use it on a descriptor of its own, not on one
 * that reads the file in order (its readahead state would follow the probe).
 */
void sfs_prefetch(int fd, uint64_t off, uint64_t len);

/* Read a whole small file at @dirfd/@name into @buf of @cap bytes; length or -errno. */
ssize_t sfs_read_small(int dirfd, const char *name, void *buf, size_t cap);

/*
 * Replace @dirfd/@name atomically with @len bytes of @data, mode 0600:
 * write a temporary, fsync, rename over, fsync the directory. 0 or -errno.
 */
int sfs_write_atomic(int dirfd, const char *name, const void *data, size_t len);

/* fsync entry @name of @dirfd, opened read-only with @flags added. 0 or -errno. */
int sfs_fsync_at(int dirfd, const char *name, int flags);

/* fsync a directory given as a descriptor (O_PATH is fine). 0 or -errno. */
int sfs_fsync_dirfd(int dirfd);

/*
 * fsync the directory that holds backing node @fd now (its name there
 * becomes durable; O_PATH is fine): 0 also when @fd has no name left.
 * 0 or -errno.
 */
int sfs_fsync_parent(int fd);

/* Is @s a valid session id: "INC-" and 4 to 16 lowercase hex digits? */
bool sfs_id_valid(const char *s);

/* Undo the octal escapes of /proc/self/mountinfo (\040 a space, \011, \012, \134) in place. */
void sfs_mountinfo_unescape(char *s);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into @buf (at least 21 bytes). */
void sfs_utc_now(char *buf, size_t len);
/* The same for time @t. */
void sfs_utc_format(char *buf, size_t len, time_t t);

/* sfs_parse_duration's flags */
#define SFS_DUR_UNIT_REQUIRED 1 /* "30" is refused: a unit must be written */

/*
 * A duration: a whole number of seconds, or a whole number followed by one of
 * s, m, h, d, w ("90s", "15m", "2h", "7d", "2w"); a bare number is seconds
 * unless @flags has SFS_DUR_UNIT_REQUIRED. Seconds in *@secs, or -EINVAL for
 * anything else (a sign, a space, a fraction, trailing bytes, more than 2^40
 * seconds: a typo).
 */
int sfs_parse_duration(const char *s, unsigned flags, long long *secs);

/* Remove a directory tree below @dirfd/@name (no symlinks followed). 0 or -errno. */
int sfs_remove_tree(int dirfd, const char *name);

#endif
