/*
 * util.c - system helpers; see util.h. Knows POSIX only.
 */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int sfs_neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

void sfs_prefetch(int fd, uint64_t off, uint64_t len)
{
	unsigned char b;
	struct iovec v = {&b, 1};

	if (len == 0 || off > INT64_MAX - len)
		return;
	if (preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT) == 1)
		return;
	posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

ssize_t sfs_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sfs_neg_errno();
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int sfs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sfs_neg_errno();
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

ssize_t sfs_read_small(int dirfd, const char *name, void *buf, size_t cap)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return sfs_neg_errno();
	n = sfs_pread_all(fd, buf, cap, 0);
	close(fd);
	return n;
}

int sfs_fsync_at(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | flags);
	int rc = 0;

	if (fd < 0)
		return sfs_neg_errno();
	if (fsync(fd) < 0)
		rc = sfs_neg_errno();
	close(fd);
	return rc;
}

int sfs_fsync_dirfd(int dirfd)
{
	return sfs_fsync_at(dirfd, ".", O_DIRECTORY);
}

int sfs_fsync_parent(int fd)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;
	char *slash;
	int dfd, rc = 0;

	/* The kernel knows where the node is now, after any rename. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return sfs_neg_errno();
	path[n] = '\0';
	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	slash = strrchr(path, '/');
	if (st.st_nlink == 0 || path[0] != '/' || !slash)
		return 0; /* unlinked: no name to keep */
	*slash = '\0';
	dfd = open(slash == path ? "/" : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sfs_neg_errno();
	if (fsync(dfd) < 0)
		rc = sfs_neg_errno();
	close(dfd);
	return rc;
}

int sfs_write_atomic(int dirfd, const char *name, const void *data, size_t len)
{
	static atomic_uint seq;
	char tmp[300];
	int fd, rc;

	/* A name of its own per call: concurrent writers never share a temporary. */
	snprintf(tmp, sizeof(tmp), ".tmp.%s.%ld.%u", name, (long)getpid(),
		 atomic_fetch_add(&seq, 1));
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_pwrite_all(fd, data, len, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (close(fd) < 0 && rc == 0)
		rc = sfs_neg_errno();
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		rc = sfs_neg_errno();
	if (rc != 0) {
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	return sfs_fsync_dirfd(dirfd);
}

bool sfs_id_valid(const char *s)
{
	size_t n;

	if (strncmp(s, "INC-", 4) != 0)
		return false;
	n = strlen(s + 4);
	if (n < SFS_ID_HEX_MIN || n > SFS_ID_HEX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[4 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

void sfs_utc_format(char *buf, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void sfs_utc_now(char *buf, size_t len)
{
	sfs_utc_format(buf, len, time(NULL));
}

int sfs_parse_duration(const char *s, unsigned flags, long long *secs)
{
	static const struct {
		char unit;
		long long secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
	const long long max = 1LL << 40;
	long long v, mult = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL; /* no sign, space, "nan", ".5" */
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == '\0') {
		if (flags & SFS_DUR_UNIT_REQUIRED)
			return -EINVAL;
		mult = 1;
	} else if (end[1] == '\0') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*end == units[i].unit)
				mult = units[i].secs;
	}
	if (!mult || v > max / mult)
		return -EINVAL;
	*secs = v * mult;
	return 0;
}

static int remove_entries(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = sfs_neg_errno();
		close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int r = sfs_remove_tree(dirfd(d), de->d_name);

		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	return rc;
}

int sfs_remove_tree(int dirfd, const char *name)
{
	int fd, rc;

	if (unlinkat(dirfd, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	rc = remove_entries(fd);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		rc = sfs_neg_errno();
	return rc;
}

void sfs_mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}
