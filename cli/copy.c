/*
 * copy.c - sessionctl copy: an independent copy of an unlocked session
 * under a new id, with its own key and password, in the same mount or in
 * another sessionfs mount (--to), for handing an incident over without
 * sharing a password.
 *
 * All through the mounts, with the crypto left to the daemons: the copy is
 * made by the target mount's "new" op (new key, new password, the source's
 * name and "created", and "copy_of": its first metadata.json says "status":
 * "copying" and names the source), then filled with ordinary system calls:
 * every directory, file (holes of whole zero chunks kept), symlink, FIFO,
 * socket and device node, hard links as links, user.* xattrs, owners (where
 * the caller may set them), modes, atime and mtime; events.jsonl appended
 * in whole lines; every file and directory fsynced. metadata.json is
 * written last: the source's document with the new "id" and "updated"; that
 * one atomic replacement turns the unfinished copy into a whole one. A copy
 * killed before it stays "copying" (never taken for whole: `list` shows
 * it), and the same command with the same --id makes it again. Last, the
 * "copy" op records it in the audit trail of the target's store and, if
 * it is another store, of the source's.
 *
 * The source is only read. Knows the protocol's words and the session's
 * layout as the mount shows it; nothing of crypto or the store format.
 */
#include "sessionctl.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)	     /* bytes read and written at a time */
#define EVENTS_LINE_MAX (64u << 20)  /* longest events.jsonl line copied */
#define XATTR_LIST_MAX_ (128u << 10) /* sessionfs: user.* per file */
#define XATTR_VALUE_MAX (64u << 10)

/* A file already copied that has other names: its inode and its copy's path. */
struct link {
	ino_t ino;
	char *rel;
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

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* "sessionctl: cannot copy SRC: PATH: WHAT: strerror(err)"; SFS_EXIT_FAIL. */
static int fail(struct copy *cp, const char *what, int err)
{
	if (cp->tty)
		fputc('\n', stderr);
	return die(SFS_EXIT_FAIL, "cannot copy %s%s%s: %s%s%s: %s", cp->src,
		   cp->id[0] ? " to " : "", cp->id, cp->rel[0] ? cp->rel : "",
		   cp->rel[0] ? ": " : "", what, strerror(err));
}

/* Files and bytes done, on a terminal only, at most five times a second (and at @last). */
static void progress(struct copy *cp, bool last)
{
	struct timespec now;

	if (!cp->tty)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!last &&
	    (now.tv_sec - cp->shown.tv_sec) * 1000000000LL + (now.tv_nsec - cp->shown.tv_nsec) <
		    200000000LL)
		return;
	cp->shown = now;
	fprintf(stderr, "\rsessionctl: copying %s to %s: %llu/%llu files, %llu/%llu MiB", cp->src,
		cp->id, cp->files + cp->hardlinks, cp->tfiles, (cp->bytes + cp->ev_bytes) >> 20,
		cp->tbytes >> 20);
	if (last)
		fputc('\n', stderr);
}

/* Append /@name to cp->rel (pop with its old length); false if too long. */
static bool push(struct copy *cp, const char *name, size_t *was)
{
	size_t n = strlen(cp->rel);

	*was = n;
	if (n + 1 + strlen(name) >= sizeof(cp->rel))
		return false;
	snprintf(cp->rel + n, sizeof(cp->rel) - n, "%s%s", n ? "/" : "", name);
	return true;
}

/* write(2) all of @buf at @off (-1: at the end, O_APPEND); 0 or errno. */
static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t w = off < 0 ? write(fd, buf, len) : pwrite(fd, buf, len, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += w;
		len -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* The user.* extended attributes of @sfd onto @dfd (none if the source mount has none). */
static int copy_xattrs(struct copy *cp, int sfd, int dfd)
{
	char *list = cp->xbuf, *val = cp->xbuf + XATTR_LIST_MAX_;
	ssize_t n = flistxattr(sfd, list, XATTR_LIST_MAX_);

	if (n < 0)
		return errno == ENOTSUP ? 0 : fail(cp, "list extended attributes", errno);
	for (char *name = list; name < list + n; name += strlen(name) + 1) {
		ssize_t v;

		if (strncmp(name, "user.", 5) != 0)
			continue;
		v = fgetxattr(sfd, name, val, XATTR_VALUE_MAX);
		if (v < 0)
			return fail(cp, "read an extended attribute", errno);
		if (fsetxattr(dfd, name, val, (size_t)v, 0) < 0)
			return errno == ENOTSUP
				       ? die(SFS_EXIT_FAIL,
					     "cannot copy %s to %s: %s: extended attributes: the "
					     "target mount has none (mount it with -o xattr)",
					     cp->src, cp->id, cp->rel)
				       : fail(cp, "set an extended attribute", errno);
	}
	return 0;
}

/*
 * What @st says of a node onto its copy (@dfd open, or @ddir/@name when
 * @dfd is -1: symlinks and device nodes): extended attributes (@sfd, files
 * and directories), the owner (kept where the caller may set it: EPERM is
 * no error), the mode, and atime and mtime unless @times is false.
 */
static int copy_attrs(struct copy *cp, int sfd, int dfd, int ddir, const char *name,
		      const struct stat *st, bool times)
{
	const struct timespec ts[2] = {st->st_atim, st->st_mtim};
	struct stat now;
	int rc;

	if (sfd >= 0 && dfd >= 0) {
		rc = copy_xattrs(cp, sfd, dfd);
		if (rc)
			return rc;
	}
	if ((dfd >= 0 ? fstat(dfd, &now) : fstatat(ddir, name, &now, AT_SYMLINK_NOFOLLOW)) < 0)
		return fail(cp, "stat", errno);
	if ((now.st_uid != st->st_uid || now.st_gid != st->st_gid) &&
	    (dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
		      : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW)) < 0 &&
	    errno != EPERM)
		return fail(cp, "chown", errno);
	if (!S_ISLNK(st->st_mode) && (dfd >= 0 ? fchmod(dfd, st->st_mode & 07777)
					       : fchmodat(ddir, name, st->st_mode & 07777, 0)) < 0)
		return fail(cp, "chmod", errno);
	if (times &&
	    (dfd >= 0 ? futimens(dfd, ts) : utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		return fail(cp, "set times", errno);
	return 0;
}

/* A regular file: content (a chunk of zeros left a hole), attributes, fsync. */
static int copy_file(struct copy *cp, int sdir, int ddir, const char *name, const struct stat *st)
{
	int sfd = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), dfd = -1, rc = 0;
	off_t off = 0;

	if (sfd < 0)
		return fail(cp, "open", errno);
	dfd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dfd < 0) {
		rc = fail(cp, "create", errno);
		goto out;
	}
	for (;;) {
		ssize_t n = read(sfd, cp->buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(cp, "read", errno);
			goto out;
		}
		if (n == 0)
			break;
		if (!all_zero(cp->buf, (size_t)n)) {
			int err = write_all(dfd, cp->buf, (size_t)n, off);

			if (err) {
				rc = fail(cp, "write", err);
				goto out;
			}
		}
		off += n;
		cp->bytes += (unsigned long long)n;
		progress(cp, false);
	}
	if (ftruncate(dfd, off) < 0) {
		rc = fail(cp, "truncate", errno);
		goto out;
	}
	rc = copy_attrs(cp, sfd, dfd, ddir, name, st, true);
	if (rc == 0 && fsync(dfd) < 0)
		rc = fail(cp, "fsync", errno);
	cp->files++;
out:
	sodium_memzero(cp->buf, CHUNK);
	if (dfd >= 0 && close(dfd) < 0 && rc == 0)
		rc = fail(cp, "close", errno);
	close(sfd);
	return rc;
}

/* A file with other names: a link to its first copy, or copied and remembered. */
static int copy_linked(struct copy *cp, int sdir, int ddir, const char *name, const struct stat *st)
{
	struct link *l;
	int rc;

	for (size_t i = 0; i < cp->nlinks; i++)
		if (cp->links[i].ino == st->st_ino) {
			if (linkat(cp->droot, cp->links[i].rel, ddir, name, 0) < 0)
				return fail(cp, "link", errno);
			cp->hardlinks++;
			return 0;
		}
	rc = copy_file(cp, sdir, ddir, name, st);
	if (rc)
		return rc;
	if (cp->nlinks == cp->caplinks) {
		size_t cap = cp->caplinks ? 2 * cp->caplinks : 16;

		l = realloc(cp->links, cap * sizeof(*l));
		if (!l)
			return fail(cp, "remember a hard link", ENOMEM);
		cp->links = l;
		cp->caplinks = cap;
	}
	cp->links[cp->nlinks].ino = st->st_ino;
	cp->links[cp->nlinks].rel = strdup(cp->rel);
	if (!cp->links[cp->nlinks].rel)
		return fail(cp, "remember a hard link", ENOMEM);
	cp->nlinks++;
	return 0;
}

static int copy_dir(struct copy *cp, int sdir, int ddir, int depth);

/* One entry @name of @sdir into @ddir. */
static int copy_entry(struct copy *cp, int sdir, int ddir, const char *name, int depth)
{
	char target[PATH_MAX];
	struct stat st;
	int sfd, dfd, rc;
	ssize_t n;

	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(cp, "stat", errno);
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return st.st_nlink > 1 ? copy_linked(cp, sdir, ddir, name, &st)
				       : copy_file(cp, sdir, ddir, name, &st);
	case S_IFDIR:
		if (mkdirat(ddir, name, 0700) < 0)
			return fail(cp, "mkdir", errno);
		sfd = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			return fail(cp, "open", errno);
		dfd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			rc = fail(cp, "open the copy", errno);
			close(sfd);
			return rc;
		}
		rc = copy_dir(cp, sfd, dfd, depth + 1);
		/* Its entries are in: now its times (last), after attributes that may forbid
		 * writes. */
		if (rc == 0)
			rc = copy_attrs(cp, sfd, dfd, ddir, name, &st, true);
		if (rc == 0 && fsync(dfd) < 0)
			rc = fail(cp, "fsync", errno);
		cp->dirs++;
		close(dfd);
		close(sfd);
		return rc;
	case S_IFLNK:
		n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return fail(cp, "readlink", errno);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return fail(cp, "symlink", errno);
		cp->symlinks++;
		return copy_attrs(cp, -1, -1, ddir, name, &st, true);
	default: /* FIFO, socket, device node */
		if (mknodat(ddir, name, st.st_mode & (S_IFMT | 0700), st.st_rdev) < 0)
			return fail(cp, "mknod", errno);
		cp->nodes++;
		return copy_attrs(cp, -1, -1, ddir, name, &st, true);
	}
}

/* Every entry of @sdir into @ddir (at @depth 0, the session: its two documents aside). */
static int copy_dir(struct copy *cp, int sdir, int ddir, int depth)
{
	int fd = dup(sdir), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return fail(cp, "list", errno);
	}
	rewinddir(d);
	while (rc == 0) {
		size_t was;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = fail(cp, "list", errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (depth == 0 && (strcmp(de->d_name, SFS_METADATA_NAME) == 0 ||
				    strcmp(de->d_name, SFS_EVENTS_NAME) == 0)))
			continue;
		if (!push(cp, de->d_name, &was)) {
			rc = fail(cp, de->d_name, ENAMETOOLONG);
			break;
		}
		rc = copy_entry(cp, sdir, ddir, de->d_name, depth);
		if (rc == 0)
			cp->rel[was] = '\0';
	}
	closedir(d);
	if (rc == 0 && fsync(ddir) < 0)
		rc = fail(cp, "fsync", errno);
	return rc;
}

/*
 * For progress: the names of regular files below @dir and their bytes
 * (at @top, the session: metadata.json not at all, events.jsonl's bytes
 * only), as copy counts them as done (never fails: a guess).
 */
static void count(struct copy *cp, int dir, bool top)
{
	int fd = dup(dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	struct stat st;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (top && strcmp(de->d_name, SFS_METADATA_NAME) == 0)
			continue; /* written last, not counted */
		if (S_ISREG(st.st_mode)) {
			cp->tfiles += !top || strcmp(de->d_name, SFS_EVENTS_NAME) != 0;
			cp->tbytes += (unsigned long long)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

			if (sub >= 0) {
				count(cp, sub, false);
				close(sub);
			}
		}
	}
	closedir(d);
}

/*
 * events.jsonl: its lines appended to the copy's in whole-line writes of
 * about CHUNK bytes (the log takes whole JSON lines), an unterminated last
 * line as it is; then its attributes and an fsync.
 */
static int copy_events(struct copy *cp)
{
	int sfd, dfd = -1, rc = 0, err;
	size_t cap = CHUNK, have = 0;
	char *ev = malloc(cap), *nl;
	struct stat st;

	snprintf(cp->rel, sizeof(cp->rel), "%s", SFS_EVENTS_NAME);
	sfd = openat(cp->sroot, SFS_EVENTS_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0 || !ev || fstat(sfd, &st) < 0) {
		rc = fail(cp, "open", ev ? errno : ENOMEM);
		goto out;
	}
	dfd = openat(cp->droot, SFS_EVENTS_NAME, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		rc = fail(cp, "open the copy", errno);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (have == cap) { /* one line longer than the buffer */
			char *bigger = cap < EVENTS_LINE_MAX ? realloc(ev, 2 * cap) : NULL;

			if (!bigger) {
				rc = fail(cp, "read a line",
					  cap < EVENTS_LINE_MAX ? ENOMEM : EFBIG);
				goto out;
			}
			ev = bigger;
			cap *= 2;
		}
		n = read(sfd, ev + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(cp, "read", errno);
			goto out;
		}
		if (n == 0)
			break;
		for (char *p = ev + have; (p = memchr(p, '\n', (size_t)(ev + have + n - p))); p++)
			cp->events++;
		have += (size_t)n;
		nl = memrchr(ev, '\n', have);
		if (!nl)
			continue;
		err = write_all(dfd, ev, (size_t)(nl + 1 - ev), -1);
		if (err) {
			rc = fail(cp, "append", err);
			goto out;
		}
		cp->ev_bytes += (unsigned long long)(nl + 1 - ev);
		have -= (size_t)(nl + 1 - ev);
		memmove(ev, nl + 1, have);
		progress(cp, false);
	}
	if (have > 0) {
		err = write_all(dfd, ev, have, -1);
		if (err) {
			rc = fail(cp, "append", err);
			goto out;
		}
		cp->ev_bytes += have;
	}
	if (fsync(dfd) < 0) {
		rc = fail(cp, "fsync", errno);
		goto out;
	}
	rc = copy_attrs(cp, sfd, dfd, cp->droot, SFS_EVENTS_NAME, &st, true);
	if (rc == 0 && fsync(dfd) < 0)
		rc = fail(cp, "fsync", errno);
out:
	if (ev) {
		sodium_memzero(ev, cap);
		free(ev);
	}
	if (dfd >= 0 && close(dfd) < 0 && rc == 0)
		rc = fail(cp, "close", errno);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

/*
 * Read the metadata.json at @dir (a session directory) into *@doc, a JSON
 * object, and its attributes into *@st (if not NULL); 0, or an exit code
 * after saying why (@what names it: "INC-3f2a").
 */
static int read_metadata(int dir, const char *what, json_t **doc, struct stat *st)
{
	int fd = openat(dir, SFS_METADATA_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	json_error_t jerr;

	*doc = NULL;
	if (fd < 0)
		return die(errno == EACCES ? SFS_EXIT_CTL_LOCKED : SFS_EXIT_FAIL,
			   "%s: cannot read %s: %s", what, SFS_METADATA_NAME,
			   errno == EACCES ? "the session is locked" : strerror(errno));
	if (st && fstat(fd, st) < 0) {
		close(fd);
		return die(SFS_EXIT_FAIL, "%s: %s: %s", what, SFS_METADATA_NAME, strerror(errno));
	}
	*doc = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		return die(SFS_EXIT_FAIL, "%s: %s is not a JSON object (%s)", what,
			   SFS_METADATA_NAME, jerr.text);
	}
	return SFS_EXIT_OK;
}

/*
 * Last: the source's document @src (attributes @st) with the copy's "id",
 * "updated" now and the copy's "created" if the source had none it could
 * keep, as the copy's metadata.json; its commit (at fsync) makes the copy whole.
 */
static int write_metadata(struct copy *cp, json_t *src, const struct stat *st)
{
	json_t *doc = json_deep_copy(src), *now_doc = NULL;
	char now[32], *text = NULL;
	size_t n = 0;
	int fd = -1, rc;

	snprintf(cp->rel, sizeof(cp->rel), "%s", SFS_METADATA_NAME);
	rc = read_metadata(cp->droot, cp->id, &now_doc, NULL);
	if (rc)
		goto out;
	sfs_utc_now(now, sizeof(now));
	if (!doc || json_object_set_new(doc, "id", json_string(cp->id)) < 0 ||
	    json_object_set_new(doc, SFS_PROTO_F_UPDATED, json_string(now)) < 0 ||
	    (json_object_get(now_doc, SFS_PROTO_F_CREATED) &&
	     json_object_set(doc, SFS_PROTO_F_CREATED,
			     json_object_get(now_doc, SFS_PROTO_F_CREATED)) < 0)) {
		rc = fail(cp, "build", ENOMEM);
		goto out;
	}
	n = json_dumpb(doc, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	text = n ? malloc(n + 1) : NULL;
	if (!text) {
		rc = fail(cp, "build", ENOMEM);
		goto out;
	}
	json_dumpb(doc, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	text[n++] = '\n';
	fd = openat(cp->droot, SFS_METADATA_NAME, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = fail(cp, "open", errno);
		goto out;
	}
	rc = write_all(fd, text, n, 0);
	if (rc) {
		rc = fail(cp, "write", rc);
		goto out;
	}
	rc = copy_attrs(cp, -1, fd, cp->droot, SFS_METADATA_NAME, st, false);
	/* The daemon checks and commits the document here: refused, it says why (EINVAL). */
	if (rc == 0 && fsync(fd) < 0)
		rc = fail(cp, "write (refused by the daemon)", errno);
out:
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = fail(cp, "close", errno);
	if (text) {
		sodium_memzero(text, n);
		free(text);
	}
	json_decref(doc);
	json_decref(now_doc);
	return rc;
}

/* The session directory MNT/WHERE/ID opened O_RDONLY, or -1 with errno. */
static int open_session(const char *mnt, const char *where, const char *id)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", mnt, where, id) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A request of op @op on session @id, with "by": "copy". */
static json_t *request(enum sfs_proto_op op, const char *id)
{
	return json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(op),
			 SFS_PROTO_F_SESSION, id, SFS_PROTO_F_BY, "copy");
}

/*
 * --id ID exists on the target mount: an unfinished copy of this source
 * (its metadata.json "copying" with "copy_of" the source; a locked one is
 * unlocked with the new password to see) is deleted, to be made again;
 * anything else is left as it was (locked again if it was unlocked here)
 * and refused: SFS_EXIT_CTL_EXISTS. SFS_EXIT_OK when ID is free now.
 */
static int clear_unfinished(struct copy *cp, struct cmd *c)
{
	char what[96], path[PATH_MAX + 64];
	bool unlocked = false;
	json_t *doc = NULL, *req;
	struct stat st;
	int dir = -1, rc = SFS_EXIT_OK;
	const char *where = SFS_SESSIONS_DIR;

	snprintf(path, sizeof(path), "%s/%s/%s", cp->tomnt, where, c->id);
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		where = SFS_ARCHIVE_DIR;
		snprintf(path, sizeof(path), "%s/%s/%s", cp->tomnt, where, c->id);
		if (lstat(path, &st) < 0 && errno == ENOENT)
			return SFS_EXIT_OK;
	}
	snprintf(what, sizeof(what), "cannot copy %s to %s", cp->src, c->id);
	snprintf(path, sizeof(path), "%s/%s/%s/%s", cp->tomnt, where, c->id, SFS_METADATA_NAME);
	if (lstat(path, &st) < 0 && errno == EACCES) {
		/* Locked: only the new password can tell whether it is ours. */
		req = request(SFS_PROTO_OP_UNLOCK, c->id);
		if (req)
			json_object_set_new(req, SFS_PROTO_F_PASSWORD,
					    json_stringn(c->newpw.buf, c->newpw.len));
		rc = call_at(cp->tomnt, req, what, NULL);
		if (rc == SFS_EXIT_CTL_WRONG_PASSWORD)
			rc = die(SFS_EXIT_CTL_EXISTS,
				 "%s: a session with that id already exists in %s (locked, and the "
				 "new password does not open it)",
				 what, cp->tomnt);
		if (rc)
			goto out;
		unlocked = true;
	}
	dir = open_session(cp->tomnt, where, c->id);
	if (dir >= 0 && read_metadata(dir, c->id, &doc, NULL) == SFS_EXIT_OK &&
	    strcmp(get_str(doc, SFS_PROTO_F_STATUS) ? get_str(doc, SFS_PROTO_F_STATUS) : "",
		   SFS_STATUS_COPYING) == 0 &&
	    strcmp(get_str(doc, SFS_COPY_OF) ? get_str(doc, SFS_COPY_OF) : "", cp->src) == 0) {
		fprintf(stderr, "sessionctl: %s: an unfinished copy of %s: making it again\n",
			c->id, cp->src);
		close(dir);
		dir = -1;
		rc = call_at(cp->tomnt, request(SFS_PROTO_OP_DELETE, c->id), what, NULL);
		goto out;
	}
	if (unlocked)
		call_at(cp->tomnt, request(SFS_PROTO_OP_LOCK, c->id), what, NULL);
	rc = die(SFS_EXIT_CTL_EXISTS, "%s: a session with that id already exists in %s", what,
		 cp->tomnt);
out:
	json_decref(doc);
	if (dir >= 0)
		close(dir);
	return rc;
}

/* The "store" a mount's daemon serves (hello), into @buf; "" if unknown. */
static void store_of(const char *mnt, char *buf, size_t len)
{
	json_t *resp;

	buf[0] = '\0';
	if (call_at(mnt, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_HELLO)),
		    "cannot ask the daemon", &resp) == SFS_EXIT_OK) {
		snprintf(buf, len, "%s",
			 get_str(resp, SFS_PROTO_F_STORE) ? get_str(resp, SFS_PROTO_F_STORE) : "");
		json_decref(resp);
	}
}

int sfs_copy_check(struct cmd *c)
{
	struct target t;
	struct mount m;
	char path[PATH_MAX + 64];
	struct stat st;
	int rc;

	if (c->id && !sfs_id_valid(c->id))
		return die(SFS_EXIT_USAGE,
			   "bad --id '%s': want INC- and 4 to 16 lowercase hex digits", c->id);
	if (c->to) {
		rc = mount_open(c->to, &m);
		if (rc)
			return rc;
		mount_close(&m);
	}
	/* Before a password is asked: a locked source cannot be copied. */
	rc = resolve(c->args[0], &t);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s/%s/%s", t.mnt, t.where, t.id, SFS_METADATA_NAME);
	if (lstat(path, &st) < 0 && errno == EACCES)
		return die(SFS_EXIT_CTL_LOCKED,
			   "cannot copy %s: the session is locked (unlock it first)", t.id);
	return SFS_EXIT_OK;
}

int sfs_copy_run(struct cmd *c)
{
	struct copy cp = {
		.src = c->t.id, .tomnt = c->to ? c->to : c->mnt, .sroot = -1, .droot = -1};
	char what[96], sstore[PATH_MAX], dstore[PATH_MAX];
	json_t *meta = NULL, *req, *resp = NULL, *out;
	struct stat mst, rst;
	int rc;

	cp.tty = isatty(STDERR_FILENO);
	cp.buf = malloc(CHUNK);
	cp.xbuf = malloc(XATTR_LIST_MAX_ + XATTR_VALUE_MAX);
	if (!cp.buf || !cp.xbuf) {
		rc = die(SFS_EXIT_FAIL, "out of memory");
		goto out;
	}
	cp.sroot = open_session(c->mnt, c->t.where, c->t.id);
	if (cp.sroot < 0) {
		rc = die(errno == ENOENT ? SFS_EXIT_CTL_NO_SESSION : SFS_EXIT_FAIL,
			 "cannot copy %s: %s", c->t.id, strerror(errno));
		goto out;
	}
	rc = read_metadata(cp.sroot, c->t.id, &meta, &mst);
	if (rc)
		goto out;
	if (c->id) {
		rc = clear_unfinished(&cp, c);
		if (rc)
			goto out;
	}
	/* The copy, made "copying" until its metadata.json is written last. */
	snprintf(what, sizeof(what), "cannot copy %s", c->t.id);
	req = json_pack("{s:s, s:s%, s:s, s:s, s:s}", SFS_PROTO_F_OP,
			sfs_proto_op_name(SFS_PROTO_OP_NEW), SFS_PROTO_F_PASSWORD, c->newpw.buf,
			c->newpw.len, SFS_PROTO_F_NAME,
			get_str(meta, SFS_PROTO_F_NAME) ? get_str(meta, SFS_PROTO_F_NAME) : "",
			SFS_PROTO_F_COPY_OF, c->t.id, SFS_PROTO_F_BY, "copy");
	sfs_password_free(&c->newpw);
	if (req && c->id)
		json_object_set_new(req, SFS_PROTO_F_ID, json_string(c->id));
	if (req && sfs_store_utc_time_ok(get_str(meta, SFS_PROTO_F_CREATED)))
		json_object_set(req, SFS_PROTO_F_CREATED,
				json_object_get(meta, SFS_PROTO_F_CREATED));
	rc = call_at(cp.tomnt, req, what, &resp);
	if (rc)
		goto out;
	snprintf(cp.id, sizeof(cp.id), "%s", get_str(resp, SFS_PROTO_F_ID));
	cp.droot = open_session(cp.tomnt, SFS_SESSIONS_DIR, cp.id);
	if (cp.droot < 0) {
		rc = fail(&cp, "open the copy", errno);
		goto out;
	}
	if (cp.tty)
		count(&cp, cp.sroot, true);
	rc = copy_dir(&cp, cp.sroot, cp.droot, 0);
	if (rc == 0)
		rc = copy_events(&cp);
	cp.rel[0] = '\0';
	/* The session directory's attributes; its times move with metadata.json's replacements. */
	if (rc == 0 && fstat(cp.sroot, &rst) < 0)
		rc = fail(&cp, "stat", errno);
	if (rc == 0)
		rc = copy_attrs(&cp, cp.sroot, cp.droot, -1, NULL, &rst, false);
	if (rc == 0)
		rc = write_metadata(&cp, meta, &mst);
	if (rc) {
		fprintf(stderr,
			"sessionctl: %s stays an unfinished copy (status \"%s\"): run the same "
			"command with --id %s to make it again, or delete it\n",
			cp.id, SFS_STATUS_COPYING, cp.id);
		goto out;
	}
	progress(&cp, true);
	/* Whole: the audit trail of each store says so. */
	store_of(cp.tomnt, dstore, sizeof(dstore));
	store_of(c->mnt, sstore, sizeof(sstore));
	snprintf(what, sizeof(what), "%s copied to %s, but not recorded", c->t.id, cp.id);
	req = json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_COPY),
			SFS_PROTO_F_SESSION, cp.id, SFS_PROTO_F_FROM, c->t.id);
	rc = call_at(cp.tomnt, req, what, NULL);
	if (rc == 0 && (!dstore[0] || strcmp(sstore, dstore) != 0))
		rc = call_at(c->mnt,
			     json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP,
				       sfs_proto_op_name(SFS_PROTO_OP_COPY), SFS_PROTO_F_SESSION,
				       c->t.id, SFS_PROTO_F_TO, cp.id),
			     what, NULL);
	if (c->json) {
		out = json_pack(
			"{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", SFS_PROTO_F_ID,
			cp.id, SFS_PROTO_F_FROM, c->t.id, "mount", cp.tomnt, "files",
			(json_int_t)cp.files, "directories", (json_int_t)cp.dirs, "symlinks",
			(json_int_t)cp.symlinks, "special", (json_int_t)cp.nodes, "hardlinks",
			(json_int_t)cp.hardlinks, "bytes", (json_int_t)cp.bytes, SFS_PROTO_F_EVENTS,
			(json_int_t)cp.events, SFS_PROTO_F_EVENTS_BYTES, (json_int_t)cp.ev_bytes);
		if (out) {
			static const char *const keep[] = {SFS_PROTO_F_KDF, SFS_PROTO_F_OPSLIMIT,
							   SFS_PROTO_F_MEMLIMIT,
							   SFS_PROTO_F_CIPHER};

			for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
				if (json_object_get(resp, keep[i]))
					json_object_set(out, keep[i],
							json_object_get(resp, keep[i]));
			json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		json_decref(out);
	} else {
		printf("%s\n", cp.id);
		fflush(stdout);
		say_protection(resp);
	}
out:
	json_decref(meta);
	json_decref(resp);
	for (size_t i = 0; i < cp.nlinks; i++)
		free(cp.links[i].rel);
	free(cp.links);
	if (cp.buf) {
		sodium_memzero(cp.buf, CHUNK);
		free(cp.buf);
	}
	if (cp.xbuf) {
		sodium_memzero(cp.xbuf, XATTR_LIST_MAX_ + XATTR_VALUE_MAX);
		free(cp.xbuf);
	}
	if (cp.sroot >= 0)
		close(cp.sroot);
	if (cp.droot >= 0)
		close(cp.droot);
	return rc;
}
