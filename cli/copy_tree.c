/*
 * copy_tree.c - the walk of sessionctl copy (copy.h): a session's nodes
 * copied into a new session through the mounts with ordinary system calls:
 * every directory, file (a whole chunk of zeros left a hole), symlink,
 * FIFO, socket and device node, hard links as links, user.* xattrs, owners
 * (where the caller may set them), modes, atime and mtime (a directory's
 * after its entries), each file and directory fsynced; events.jsonl
 * appended in whole lines (the log takes whole JSON lines). The source is
 * only read. Knows the session's layout as the mount shows it; nothing of
 * crypto, the store format or the protocol.
 */
#include "copy.h"
#include "crypto.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

int copy_fail(struct copy *cp, const char *what, int err)
{
	if (cp->tty)
		fputc('\n', stderr);
	return die(SFS_EXIT_FAIL, "cannot copy %s%s%s: %s%s%s: %s", cp->src,
		   cp->id[0] ? " to " : "", cp->id, cp->rel[0] ? cp->rel : "",
		   cp->rel[0] ? ": " : "", what, strerror(err));
}

void copy_progress(struct copy *cp, bool last)
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

int copy_write_all(int fd, const char *buf, size_t len, off_t off)
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
		return errno == ENOTSUP ? 0 : copy_fail(cp, "list extended attributes", errno);
	for (char *name = list; name < list + n; name += strlen(name) + 1) {
		ssize_t v;

		if (strncmp(name, "user.", 5) != 0)
			continue;
		v = fgetxattr(sfd, name, val, XATTR_VALUE_MAX);
		if (v < 0)
			return copy_fail(cp, "read an extended attribute", errno);
		if (fsetxattr(dfd, name, val, (size_t)v, 0) < 0)
			return errno == ENOTSUP
				       ? die(SFS_EXIT_FAIL,
					     "cannot copy %s to %s: %s: extended attributes: the "
					     "target mount has none (mount it with -o xattr)",
					     cp->src, cp->id, cp->rel)
				       : copy_fail(cp, "set an extended attribute", errno);
	}
	return 0;
}

int copy_attrs(struct copy *cp, int sfd, int dfd, int ddir, const char *name, const struct stat *st,
	       bool times)
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
		return copy_fail(cp, "stat", errno);
	if ((now.st_uid != st->st_uid || now.st_gid != st->st_gid) &&
	    (dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
		      : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW)) < 0 &&
	    errno != EPERM)
		return copy_fail(cp, "chown", errno);
	if (!S_ISLNK(st->st_mode) && (dfd >= 0 ? fchmod(dfd, st->st_mode & 07777)
					       : fchmodat(ddir, name, st->st_mode & 07777, 0)) < 0)
		return copy_fail(cp, "chmod", errno);
	if (times &&
	    (dfd >= 0 ? futimens(dfd, ts) : utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		return copy_fail(cp, "set times", errno);
	return 0;
}

/* "a regular file", "a FIFO": the type of @mode in words. */
static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symlink";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	}
	return "of an unknown type";
}

int copy_open(struct copy *cp, int dir, const char *name, mode_t type, struct stat *st, int *fd)
{
	int flags;

	*fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0)
		return copy_fail(cp, "open", errno);
	if (fstat(*fd, st) < 0 || (flags = fcntl(*fd, F_GETFL)) < 0) {
		int err = errno;

		close(*fd);
		*fd = -1;
		return copy_fail(cp, "stat", err);
	}
	if ((st->st_mode & S_IFMT) != type) {
		close(*fd);
		*fd = -1;
		if (cp->tty)
			fputc('\n', stderr);
		return die(SFS_EXIT_FAIL,
			   "cannot copy %s to %s: %s: changed during the copy: %s "
			   "when listed, now %s",
			   cp->src, cp->id, cp->rel, type_name(type), type_name(st->st_mode));
	}
	if (fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		int err = errno;

		close(*fd);
		*fd = -1;
		return copy_fail(cp, "open", err);
	}
	return 0;
}

/*
 * A regular file opened as @sfd (stat @now): content (a chunk of zeros left
 * a hole), attributes (as the open file has them: it may have been
 * replaced since the walk listed it), fsync. Closes @sfd.
 */
static int copy_file(struct copy *cp, int sfd, const struct stat *now, int ddir, const char *name)
{
	int dfd, rc = 0;
	off_t off = 0;

	dfd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dfd < 0) {
		rc = copy_fail(cp, "create", errno);
		goto out;
	}
	for (;;) {
		ssize_t n = read(sfd, cp->buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = copy_fail(cp, "read", errno);
			goto out;
		}
		if (n == 0)
			break;
		if (!all_zero(cp->buf, (size_t)n)) {
			int err = copy_write_all(dfd, cp->buf, (size_t)n, off);

			if (err) {
				rc = copy_fail(cp, "write", err);
				goto out;
			}
		}
		off += n;
		cp->bytes += (unsigned long long)n;
		copy_progress(cp, false);
	}
	if (ftruncate(dfd, off) < 0) {
		rc = copy_fail(cp, "truncate", errno);
		goto out;
	}
	rc = copy_attrs(cp, sfd, dfd, ddir, name, now, true);
	if (rc == 0 && fsync(dfd) < 0)
		rc = copy_fail(cp, "fsync", errno);
	cp->files++;
out:
	sodium_memzero(cp->buf, CHUNK);
	if (dfd >= 0 && close(dfd) < 0 && rc == 0)
		rc = copy_fail(cp, "close", errno);
	close(sfd);
	return rc;
}

/*
 * A regular file @name of @sdir. One with other names is a link to its
 * first copy, or copied and remembered: by the (dev, ino) of the file
 * opened, not of what the walk saw, which may have been replaced since.
 */
static int copy_regular(struct copy *cp, int sdir, int ddir, const char *name)
{
	struct stat now;
	struct link *l;
	int sfd, rc;

	rc = copy_open(cp, sdir, name, S_IFREG, &now, &sfd);
	if (rc)
		return rc;
	if (now.st_nlink > 1)
		for (size_t i = 0; i < cp->nlinks; i++)
			if (cp->links[i].dev == now.st_dev && cp->links[i].ino == now.st_ino) {
				close(sfd);
				if (linkat(cp->droot, cp->links[i].rel, ddir, name, 0) < 0)
					return copy_fail(cp, "link", errno);
				cp->hardlinks++;
				return 0;
			}
	rc = copy_file(cp, sfd, &now, ddir, name);
	if (rc || now.st_nlink <= 1)
		return rc;
	if (cp->nlinks == cp->caplinks) {
		size_t cap = cp->caplinks ? 2 * cp->caplinks : 16;

		l = realloc(cp->links, cap * sizeof(*l));
		if (!l)
			return copy_fail(cp, "remember a hard link", ENOMEM);
		cp->links = l;
		cp->caplinks = cap;
	}
	cp->links[cp->nlinks].dev = now.st_dev;
	cp->links[cp->nlinks].ino = now.st_ino;
	cp->links[cp->nlinks].rel = strdup(cp->rel);
	if (!cp->links[cp->nlinks].rel)
		return copy_fail(cp, "remember a hard link", ENOMEM);
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
		return copy_fail(cp, "stat", errno);
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return copy_regular(cp, sdir, ddir, name);
	case S_IFDIR:
		if (mkdirat(ddir, name, 0700) < 0)
			return copy_fail(cp, "mkdir", errno);
		sfd = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			return copy_fail(cp, "open", errno);
		dfd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			rc = copy_fail(cp, "open the copy", errno);
			close(sfd);
			return rc;
		}
		rc = copy_dir(cp, sfd, dfd, depth + 1);
		/* Its entries are in: now its times (last), after attributes that may forbid
		 * writes. */
		if (rc == 0)
			rc = copy_attrs(cp, sfd, dfd, ddir, name, &st, true);
		if (rc == 0 && fsync(dfd) < 0)
			rc = copy_fail(cp, "fsync", errno);
		cp->dirs++;
		close(dfd);
		close(sfd);
		return rc;
	case S_IFLNK:
		n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return copy_fail(cp, "readlink", errno);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return copy_fail(cp, "symlink", errno);
		cp->symlinks++;
		return copy_attrs(cp, -1, -1, ddir, name, &st, true);
	default: /* FIFO, socket, device node */
		if (mknodat(ddir, name, st.st_mode & (S_IFMT | 0700), st.st_rdev) < 0)
			return copy_fail(cp, "mknod", errno);
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
		return copy_fail(cp, "list", errno);
	}
	rewinddir(d);
	while (rc == 0) {
		size_t was;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = copy_fail(cp, "list", errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (depth == 0 && (strcmp(de->d_name, SFS_METADATA_NAME) == 0 ||
				    strcmp(de->d_name, SFS_EVENTS_NAME) == 0)))
			continue;
		if (!push(cp, de->d_name, &was)) {
			rc = copy_fail(cp, de->d_name, ENAMETOOLONG);
			break;
		}
		rc = copy_entry(cp, sdir, ddir, de->d_name, depth);
		if (rc == 0)
			cp->rel[was] = '\0';
	}
	closedir(d);
	if (rc == 0 && fsync(ddir) < 0)
		rc = copy_fail(cp, "fsync", errno);
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
int copy_events(struct copy *cp)
{
	int sfd, dfd = -1, rc = 0, err;
	size_t cap = CHUNK, have = 0;
	char *ev = malloc(cap), *nl;
	struct stat st;

	snprintf(cp->rel, sizeof(cp->rel), "%s", SFS_EVENTS_NAME);
	if (!ev) {
		sfd = -1;
		rc = copy_fail(cp, "read", ENOMEM);
		goto out;
	}
	rc = copy_open(cp, cp->sroot, SFS_EVENTS_NAME, S_IFREG, &st, &sfd);
	if (rc)
		goto out;
	dfd = openat(cp->droot, SFS_EVENTS_NAME, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		rc = copy_fail(cp, "open the copy", errno);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (have == cap && /* one line longer than the buffer */
		    (cap >= EVENTS_LINE_MAX || sfs_wiped_grow(&ev, &cap, have, 0) < 0)) {
			rc = copy_fail(cp, "read a line", cap < EVENTS_LINE_MAX ? ENOMEM : EFBIG);
			goto out;
		}
		n = read(sfd, ev + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = copy_fail(cp, "read", errno);
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
		err = copy_write_all(dfd, ev, (size_t)(nl + 1 - ev), -1);
		if (err) {
			rc = copy_fail(cp, "append", err);
			goto out;
		}
		cp->ev_bytes += (unsigned long long)(nl + 1 - ev);
		have -= (size_t)(nl + 1 - ev);
		memmove(ev, nl + 1, have);
		copy_progress(cp, false);
	}
	if (have > 0) {
		err = copy_write_all(dfd, ev, have, -1);
		if (err) {
			rc = copy_fail(cp, "append", err);
			goto out;
		}
		cp->ev_bytes += have;
	}
	if (fsync(dfd) < 0) {
		rc = copy_fail(cp, "fsync", errno);
		goto out;
	}
	rc = copy_attrs(cp, sfd, dfd, cp->droot, SFS_EVENTS_NAME, &st, true);
	if (rc == 0 && fsync(dfd) < 0)
		rc = copy_fail(cp, "fsync", errno);
out:
	if (ev) {
		sodium_memzero(ev, cap);
		free(ev);
	}
	if (dfd >= 0 && close(dfd) < 0 && rc == 0)
		rc = copy_fail(cp, "close", errno);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

int copy_tree(struct copy *cp)
{
	return copy_dir(cp, cp->sroot, cp->droot, 0);
}

void copy_count(struct copy *cp)
{
	count(cp, cp->sroot, true);
}
