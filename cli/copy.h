/*
 * copy.h - what the two halves of sessionctl copy share: copy.c (the
 * command: the new session, the unfinished copy, metadata.json, the audit
 * records) and copy_tree.c (the walk that fills the new session through
 * the mounts with ordinary system calls). CLI-internal; knows nothing of
 * crypto or the store format.
 */
#ifndef SFS_CLI_COPY_H
#define SFS_CLI_COPY_H

#include "sessionctl.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#define CHUNK (1u << 20)	     /* bytes read and written at a time */
#define EVENTS_LINE_MAX (64u << 20)  /* longest events.jsonl line copied */
#define XATTR_LIST_MAX_ (128u << 10) /* sessionfs: user.* per file */
#define XATTR_VALUE_MAX (64u << 10)

/* A file already copied that has other names: its inode and its copy's path. */
struct link {
	dev_t dev; /* of the source file as opened (fstat), not as listed */
	ino_t ino;
	char *rel; /* its first copy, relative to the copy's root */
};

/* One copy under way. */
struct copy {
	const char *src, *tomnt; /* the source's id; the target mountpoint */
	char id[SFS_SESSION_ID_MAX + 1];
	int sroot, droot;   /* the two session directories, O_RDONLY */
	char rel[PATH_MAX]; /* the path being copied, relative to the session */
	struct link *links; /* hard-linked files copied so far */
	size_t nlinks, caplinks;
	char *buf;  /* CHUNK bytes, plaintext: wiped */
	char *xbuf; /* xattr names and a value */
	unsigned long long files, dirs, symlinks, nodes, hardlinks, bytes, events, ev_bytes;
	unsigned long long tfiles, tbytes; /* totals, for progress on a terminal */
	bool tty;
	struct timespec shown;
};

/* "sessionctl: cannot copy SRC to ID: PATH: WHAT: strerror(err)"; SFS_EXIT_FAIL. */
int copy_fail(struct copy *cp, const char *what, int err);

/* Files and bytes done, on a terminal only, at most five times a second (and at @last). */
void copy_progress(struct copy *cp, bool last);

/* write(2) all of @buf at @off (-1: at the end, O_APPEND); 0 or an errno. */
int copy_write_all(int fd, const char *buf, size_t len, off_t off);

/*
 * What @st says of a node onto its copy (@dfd open, or @ddir/@name when
 * @dfd is -1: symlinks and device nodes): extended attributes (from @sfd,
 * files and directories), the owner (kept where the caller may set it:
 * EPERM is no error), the mode, and atime and mtime unless @times is
 * false. 0 or an exit code after saying why.
 */
int copy_attrs(struct copy *cp, int sfd, int dfd, int ddir, const char *name, const struct stat *st,
	       bool times);

/*
 * Open @name in @dir read-only as a node of @type (S_IFREG), into *@fd, its
 * attributes into *@st: with O_NOFOLLOW, and O_NONBLOCK (cleared after) so
 * that a FIFO put there since the walk listed it cannot hold the open; a node
 * of another type is refused. 0 or an exit code after saying why.
 */
int copy_open(struct copy *cp, int dir, const char *name, mode_t type, struct stat *st, int *fd);

/* Every node of the session cp->sroot into cp->droot, its two documents aside; 0 or an exit code.
 */
int copy_tree(struct copy *cp);

/* For progress: cp->tfiles and cp->tbytes from a walk of the source. */
void copy_count(struct copy *cp);

/* events.jsonl, appended to the copy's in whole lines; 0 or an exit code. */
int copy_events(struct copy *cp);

#endif
