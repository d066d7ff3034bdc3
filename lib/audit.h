/*
 * audit.h - the store's audit trail (doc/format.md "Audit trail"): one JSON
 * line per unlock, lock, new, delete, passwd, archive, restore, repair,
 * use and mount, appended to STORE/audit.jsonl (0600, O_APPEND,
 * fsynced, under an OFD lock so that several mounts of one store, also over
 * NFS, append whole lines), rotated to audit.jsonl.1 past
 * SFS_AUDIT_ROTATE_BYTES; and the reader of both files for `sessionctl
 * audit`.
 *
 * Knows the store directory and jansson, not FUSE, not sessions, no keys:
 * the caller says who did what. A record holds no secret, no password, no
 * session name and no file name from inside a session: only session ids,
 * which the store shows anyway.
 */
#ifndef SFS_AUDIT_H
#define SFS_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#define SFS_AUDIT_NAME "audit.jsonl"	   /* in the store's root */
#define SFS_AUDIT_OLD_NAME "audit.jsonl.1" /* the one file before it */
#define SFS_AUDIT_ROTATE_BYTES (4u << 20)  /* audit.jsonl moves to .1 past this */
#define SFS_AUDIT_BY_MAX 32		   /* a request's "by": bytes */

/* Who asked: the calling process, as the kernel gave it, and a request's "by". */
struct sfs_audit_who {
	uid_t uid;
	pid_t pid;
	const char *comm; /* /proc/PID/comm, or NULL: looked up from pid */
	const char *by;	  /* what acted (a request's "by", "idle", ...), or NULL */
};

/*
 * Append one record to @storefd's audit file: {"time", "event", "session"
 * (if not NULL), "uid", "pid", "comm", "by" (if set), and the members of
 * @extra (consumed; NULL for none)}. Rotates first when the file has grown
 * past SFS_AUDIT_ROTATE_BYTES. 0 or -errno (the caller logs it: a failed
 * audit write does not undo what it records).
 */
int sfs_audit_write(int storefd, const char *event, const char *session,
		    const struct sfs_audit_who *who, json_t *extra);

/* The command name of process @pid (/proc/PID/comm) into @buf; "?" if gone. */
void sfs_audit_comm(pid_t pid, char *buf, size_t sz);

/* Is @by a valid "by": 1 to SFS_AUDIT_BY_MAX of [A-Za-z0-9._-]? */
bool sfs_audit_by_valid(const char *by);

/*
 * Call @fn for each record of @storefd's audit trail, oldest first
 * (audit.jsonl.1, then audit.jsonl), whose time is at or after @since (0:
 * all). A line that is no JSON object with a "time" is passed with @rec
 * NULL and @line its text, so a reader can say so. 0 (also with no file
 * yet), or -errno.
 */
int sfs_audit_read(int storefd, time_t since, void (*fn)(json_t *rec, const char *line, void *arg),
		   void *arg);

/* Parse an audit time ("2026-12-05T19:00:00.123Z", fraction optional) into *t. 0 or -EINVAL. */
int sfs_audit_parse_time(const char *s, time_t *t);

#endif
