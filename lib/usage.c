/*
 * usage.c - what a session container tells without its key: the bytes its
 * backing files hold and the time of its last change, for `sessionctl
 * list` and `prune` (locked sessions included).
 *
 * A walk of the container's backing tree (key file, lock file, the
 * encrypted root with every node, sidecar and kept file): sizes and mtimes
 * only, no name decrypted, nothing read. Store layer; knows nothing of
 * keys, FUSE or the protocol. A node that goes away during the walk (a
 * session in use) is skipped: the figures are a snapshot, not a lock.
 */
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper than any tree a session holds in practice; below it nothing is counted. */
#define USAGE_DEPTH_MAX 512

/* Add @st (a node of the container) to @u. */
static void add(struct sfs_session_usage *u, const struct stat *st)
{
	if (!S_ISDIR(st->st_mode))
		u->bytes += (uint64_t)st->st_size;
	u->allocated += (uint64_t)st->st_blocks * 512u;
	if (st->st_mtim.tv_sec > u->changed.tv_sec ||
	    (st->st_mtim.tv_sec == u->changed.tv_sec && st->st_mtim.tv_nsec > u->changed.tv_nsec))
		u->changed = st->st_mtim;
	u->nodes++;
}

/* Count the entries of directory @fd (consumed) and below. */
static int walk(int fd, struct sfs_session_usage *u, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	struct stat st;
	int rc = 0;

	if (!d) {
		rc = sfs_neg_errno();
		close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		int sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		add(u, &st);
		if (!S_ISDIR(st.st_mode) || depth >= USAGE_DEPTH_MAX)
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			walk(sub, u, depth + 1);
	}
	closedir(d);
	return rc;
}

int sfs_store_session_usage(int cfd, struct sfs_session_usage *u)
{
	struct stat st;
	int fd;

	memset(u, 0, sizeof(*u));
	if (fstat(cfd, &st) < 0)
		return sfs_neg_errno();
	add(u, &st);
	fd = openat(cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	return walk(fd, u, 0);
}
