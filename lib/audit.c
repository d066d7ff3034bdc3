/*
 * audit.c - the store's audit trail; see audit.h and doc/format.md "Audit
 * trail". Knows the store directory and jansson; nothing of FUSE, sessions
 * or keys. Records are facts the store shows anyway (session ids, who, when):
 * never a password, a key, a session's name or a file name inside one.
 */
#include "audit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sfs_audit_comm(pid_t pid, char *buf, size_t sz)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(buf, sz, "?");
	if (pid <= 0 || sz < 2)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sz - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, sz, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

bool sfs_audit_by_valid(const char *by)
{
	size_t n = by ? strlen(by) : 0;

	if (n == 0 || n > SFS_AUDIT_BY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = by[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Now as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void now_iso(char *buf, size_t sz)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, sz, "%.20s.%03dZ", s, (int)(ts.tv_nsec / 1000000) % 1000);
}

int sfs_audit_parse_time(const char *s, time_t *t)
{
	struct tm tm = {0};
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -EINVAL;
	*t = timegm(&tm);
	return 0;
}

/* Write all of @buf to @fd. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sfs_neg_errno();
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Open audit.jsonl for appending, OFD-locked (whole file, waits for another
 * writer, of this mount or another), and still the file of that name: a
 * writer that rotated meanwhile renamed the one we opened. Rotates it first
 * when it is full. The descriptor (its close drops the lock) or -errno;
 * *@created when the name is new (its directory wants an fsync).
 */
static int open_locked(int storefd, bool *created)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat st, now;

	*created = false;
	for (int tries = 0; tries < 8; tries++) {
		int fd = openat(storefd, SFS_AUDIT_NAME,
				O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 && errno == ENOENT) {
			fd = openat(storefd, SFS_AUDIT_NAME,
				    O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				    0600);
			if (fd >= 0)
				*created = true;
			else if (errno == EEXIST)
				continue; /* another writer made it: open that */
		}
		if (fd < 0)
			return sfs_neg_errno();
		while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
			if (errno != EINTR) {
				int rc = sfs_neg_errno();

				close(fd);
				return rc;
			}
		}
		if (fstat(fd, &st) < 0 ||
		    fstatat(storefd, SFS_AUDIT_NAME, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_ino != now.st_ino || st.st_dev != now.st_dev) {
			close(fd); /* rotated (or removed) meanwhile: the new one */
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			close(fd);
			return -EINVAL;
		}
		if ((uint64_t)st.st_size < SFS_AUDIT_ROTATE_BYTES)
			return fd;
		/* Full: it becomes the one old file (replacing the one before). */
		if (renameat(storefd, SFS_AUDIT_NAME, storefd, SFS_AUDIT_OLD_NAME) < 0) {
			int rc = sfs_neg_errno();

			close(fd);
			return rc;
		}
		sfs_fsync_dirfd(storefd);
		close(fd);
	}
	return -EAGAIN;
}

int sfs_audit_write(int storefd, const char *event, const char *session,
		    const struct sfs_audit_who *who, json_t *extra)
{
	char when[64], comm[64];
	json_t *rec;
	char *line = NULL;
	size_t len;
	bool created;
	int fd, rc;

	now_iso(when, sizeof(when));
	if (who->comm)
		snprintf(comm, sizeof(comm), "%s", who->comm);
	else
		sfs_audit_comm(who->pid, comm, sizeof(comm));
	rec = json_pack("{s:s, s:s}", "time", when, "event", event);
	if (!rec) {
		json_decref(extra);
		return -ENOMEM;
	}
	if (session)
		json_object_set_new(rec, "session", json_string(session));
	json_object_set_new(rec, "uid", json_integer((json_int_t)who->uid));
	json_object_set_new(rec, "pid", json_integer((json_int_t)who->pid));
	json_object_set_new(rec, "comm", json_string(comm));
	if (who->by)
		json_object_set_new(rec, "by", json_string(who->by));
	if (extra) {
		json_object_update(rec, extra);
		json_decref(extra);
	}
	len = json_dumpb(rec, NULL, 0, JSON_COMPACT);
	line = len ? malloc(len + 1) : NULL;
	if (line) {
		json_dumpb(rec, line, len, JSON_COMPACT);
		line[len++] = '\n';
	}
	json_decref(rec);
	if (!line)
		return -ENOMEM;
	fd = open_locked(storefd, &created);
	if (fd < 0) {
		free(line);
		return fd;
	}
	rc = write_all(fd, line, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	close(fd);
	free(line);
	if (rc == 0 && created)
		rc = sfs_fsync_dirfd(storefd);
	return rc;
}

/* Read one file of the trail; ENOENT is no error (no such file yet). */
static int read_one(int storefd, const char *name, time_t since,
		    void (*fn)(json_t *rec, const char *line, void *arg), void *arg)
{
	int fd = openat(storefd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (fd < 0)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = getline(&buf, &cap, f)) > 0) {
		json_t *rec;
		time_t t;

		if (buf[n - 1] == '\n')
			buf[--n] = '\0';
		if (n == 0)
			continue;
		rec = json_loadb(buf, (size_t)n, 0, NULL);
		if (!json_is_object(rec) ||
		    sfs_audit_parse_time(json_string_value(json_object_get(rec, "time")), &t) < 0) {
			json_decref(rec);
			fn(NULL, buf, arg);
			continue;
		}
		if (since == 0 || t >= since)
			fn(rec, buf, arg);
		json_decref(rec);
	}
	free(buf);
	fclose(f);
	return 0;
}

int sfs_audit_read(int storefd, time_t since, void (*fn)(json_t *rec, const char *line, void *arg),
		   void *arg)
{
	int rc = read_one(storefd, SFS_AUDIT_OLD_NAME, since, fn, arg);

	return rc < 0 ? rc : read_one(storefd, SFS_AUDIT_NAME, since, fn, arg);
}
