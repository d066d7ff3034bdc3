/*
 * test_audit.c - the audit trail writer and reader (lib/audit.h): times it
 * parses and refuses, the "by" words it takes, a record's members (and none
 * it was not given), a file made 0600, the reader's order and --since
 * filter, lines that are no record, and rotation at SFS_AUDIT_ROTATE_BYTES
 * keeping one old file.
 */
#include "audit.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_parse_time(void)
{
	time_t t = 0;

	CHECK_EQ(sfs_audit_parse_time("2026-12-05T19:00:00Z", &t), 0);
	CHECK_EQ(t, 1796497200);
	CHECK_EQ(sfs_audit_parse_time("2026-12-05T19:00:00.123Z", &t), 0);
	CHECK_EQ(t, 1796497200);
	CHECK_EQ(sfs_audit_parse_time("1970-01-01T00:00:00+00:00", &t), 0);
	CHECK_EQ(t, 0);
	CHECK_EQ(sfs_audit_parse_time("2026-12-05T19:00:00", &t), -EINVAL);
	CHECK_EQ(sfs_audit_parse_time("2026-12-05T19:00:00+01:00", &t), -EINVAL);
	CHECK_EQ(sfs_audit_parse_time("2026-12-05T19:00:00.Z", &t), -EINVAL);
	CHECK_EQ(sfs_audit_parse_time("2026-12-05", &t), -EINVAL);
	CHECK_EQ(sfs_audit_parse_time("", &t), -EINVAL);
	CHECK_EQ(sfs_audit_parse_time(NULL, &t), -EINVAL);
}

static void test_by(void)
{
	CHECK(sfs_audit_by_valid("prune"));
	CHECK(sfs_audit_by_valid("cron.daily-2_x"));
	CHECK(sfs_audit_by_valid("12345678901234567890123456789012"));
	CHECK(!sfs_audit_by_valid("123456789012345678901234567890123"));
	CHECK(!sfs_audit_by_valid(""));
	CHECK(!sfs_audit_by_valid(NULL));
	CHECK(!sfs_audit_by_valid("pr une"));
	CHECK(!sfs_audit_by_valid("a\nb"));
	CHECK(!sfs_audit_by_valid("\"x\""));
}

struct seen {
	int n, bad;
	char events[8][16];
};

static void collect(json_t *rec, const char *line, void *arg)
{
	struct seen *s = arg;

	(void)line;
	if (!rec) {
		s->bad++;
		return;
	}
	if (s->n < 8)
		snprintf(s->events[s->n], sizeof(s->events[0]), "%s",
			 json_string_value(json_object_get(rec, "event")));
	s->n++;
}

static int count_lines(int dirfd, const char *name)
{
	char buf[4096];
	int fd = openat(dirfd, name, O_RDONLY), n = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	close(fd);
	return n;
}

static void test_write_read_rotate(void)
{
	char top[] = "/tmp/test_audit.XXXXXX", line[512];
	struct sfs_audit_who who = {.uid = 1000, .pid = 42, .comm = "sessionctl", .by = "prune"};
	struct sfs_audit_who daemon = {.uid = 1000, .pid = 7, .comm = "sessionfs"};
	struct seen s = {0};
	struct stat st;
	json_t *rec;
	int dfd, fd;
	ssize_t n;

	REQUIRE(mkdtemp(top));
	dfd = open(top, O_RDONLY | O_DIRECTORY);
	REQUIRE(dfd >= 0);
	CHECK_EQ(sfs_audit_read(dfd, 0, collect, &s), 0); /* no trail yet: nothing */
	CHECK_EQ(s.n, 0);
	CHECK_EQ(sfs_audit_write(dfd, "unlock", "INC-3f2a", &who,
				 json_pack("{s:b, s:s}", "ok", 0, "error", "wrong-password")),
		 0);
	CHECK_EQ(sfs_audit_write(dfd, "lock", "INC-3f2a", &daemon,
				 json_pack("{s:s, s:i}", "cause", "idle", "open_files", 2)),
		 0);
	CHECK_EQ(fstatat(dfd, SFS_AUDIT_NAME, &st, 0), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	/* the first record, member by member: nothing it was not given */
	fd = openat(dfd, SFS_AUDIT_NAME, O_RDONLY);
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	REQUIRE(n > 0);
	line[n] = '\0';
	*strchr(line, '\n') = '\0';
	rec = json_loads(line, 0, NULL);
	REQUIRE(json_is_object(rec));
	CHECK_EQ(json_object_size(rec), 9);
	CHECK_STR(json_string_value(json_object_get(rec, "event")), "unlock");
	CHECK_STR(json_string_value(json_object_get(rec, "session")), "INC-3f2a");
	CHECK_EQ(json_integer_value(json_object_get(rec, "uid")), 1000);
	CHECK_EQ(json_integer_value(json_object_get(rec, "pid")), 42);
	CHECK_STR(json_string_value(json_object_get(rec, "comm")), "sessionctl");
	CHECK_STR(json_string_value(json_object_get(rec, "by")), "prune");
	CHECK(json_is_false(json_object_get(rec, "ok")));
	CHECK_STR(json_string_value(json_object_get(rec, "error")), "wrong-password");
	CHECK(json_string_length(json_object_get(rec, "time")) == 24);
	json_decref(rec);

	/* a line that is no record is passed as such; --since filters */
	fd = openat(dfd, SFS_AUDIT_NAME, O_WRONLY | O_APPEND);
	CHECK_EQ(write(fd, "not json\n", 9), 9);
	snprintf(line, sizeof(line), "{\"time\":\"2001-01-01T00:00:00.000Z\",\"event\":\"old\"}\n");
	CHECK_EQ(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	CHECK_EQ(sfs_audit_read(dfd, 0, collect, &s), 0);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(s.bad, 1);
	CHECK_STR(s.events[0], "unlock");
	CHECK_STR(s.events[1], "lock");
	CHECK_STR(s.events[2], "old");
	memset(&s, 0, sizeof(s));
	CHECK_EQ(sfs_audit_read(dfd, 1000000000, collect, &s), 0); /* 2001-09-09 on */
	CHECK_EQ(s.n, 2);

	/* rotation: past the limit, the file becomes .1 and a new one starts */
	fd = openat(dfd, SFS_AUDIT_NAME, O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	REQUIRE(ftruncate(fd, SFS_AUDIT_ROTATE_BYTES) == 0); /* zeros: lines no record */
	close(fd);
	CHECK_EQ(sfs_audit_write(dfd, "new", "INC-0001", &who, NULL), 0);
	CHECK_EQ(count_lines(dfd, SFS_AUDIT_NAME), 1);
	CHECK_EQ(fstatat(dfd, SFS_AUDIT_OLD_NAME, &st, 0), 0);
	CHECK_EQ(st.st_size, SFS_AUDIT_ROTATE_BYTES);
	fd = openat(dfd, SFS_AUDIT_NAME, O_WRONLY | O_APPEND);
	REQUIRE(ftruncate(fd, SFS_AUDIT_ROTATE_BYTES + 1) == 0);
	close(fd);
	CHECK_EQ(sfs_audit_write(dfd, "delete", "INC-0001", &who, NULL), 0);
	CHECK_EQ(fstatat(dfd, SFS_AUDIT_OLD_NAME, &st, 0), 0);
	CHECK_EQ(st.st_size, SFS_AUDIT_ROTATE_BYTES + 1); /* one old file, the latest */
	CHECK_EQ(count_lines(dfd, SFS_AUDIT_NAME), 1);
	CHECK(faccessat(dfd, "audit.jsonl.2", F_OK, 0) < 0);

	unlinkat(dfd, SFS_AUDIT_NAME, 0);
	unlinkat(dfd, SFS_AUDIT_OLD_NAME, 0);
	close(dfd);
	rmdir(top);
}

int main(void)
{
	test_parse_time();
	test_by();
	test_write_read_rotate();
	return check_done();
}
