/*
 * audit.c - sessionctl audit (the store's audit trail, lib/audit.h) and
 * sessionctl use (MOUNTPOINT/current, for hooks).
 *
 * audit reads STORE/audit.jsonl(.1) itself: the store named directly, or
 * the store a proven mount's daemon says it serves (hello). use speaks the
 * use and unuse ops. Knows the command line and the trail's JSON members;
 * nothing of crypto or the store format.
 */
#include "sessionctl.h"

#include "audit.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * --since T: an ISO-8601 UTC time (2026-12-05T19:00:00Z, a fraction or
 * +00:00 also; no zone means UTC; a date alone is its midnight), or a
 * duration back from now: a whole number with s, m, h, d or w (a bare number is
 * seconds). 0 with *t, or -EINVAL.
 */
static int parse_since(const char *s, time_t *t)
{
	struct tm tm = {0};
	char buf[64];
	const char *p;
	long long n;

	if (!*s || strlen(s) >= sizeof(buf) - 2)
		return -EINVAL;
	if (strchr(s, '-')) {
		if (sfs_audit_parse_time(s, t) == 0)
			return 0;
		snprintf(buf, sizeof(buf), "%sZ", s); /* no zone: UTC */
		if (sfs_audit_parse_time(buf, t) == 0)
			return 0;
		p = strptime(s, "%Y-%m-%d", &tm);
		if (!p || *p)
			return -EINVAL;
		*t = timegm(&tm);
		return 0;
	}
	if (sfs_parse_duration(s, 0, &n) < 0 || n > 10000000000LL)
		return -EINVAL;
	*t = time(NULL) - (time_t)n;
	return 0;
}

int sfs_audit_check(struct cmd *c)
{
	time_t t;

	if (c->nargs != 1)
		return die(SFS_EXIT_USAGE, "%s: wrong number of arguments (see sessionctl --help)",
			   c->argv0);
	if (c->since && parse_since(c->since, &t) < 0)
		return die(SFS_EXIT_USAGE,
			   "%s: bad --since '%s': want an ISO time (2026-12-05T19:00:00Z, "
			   "2026-12-05) or a duration (90s, 15m, 1h, 7d, 2w)",
			   c->argv0, c->since);
	return SFS_EXIT_OK;
}

/*
 * The store directory of @arg: @arg itself if it is a store (its
 * sessionfs.conf is there: a mount's root shows none), else the store the
 * sessionfs mount at @arg serves. An open directory descriptor, or an exit
 * code negated.
 */
static int open_store(const char *arg, char *path, size_t psz)
{
	struct stat st;
	struct mount m;
	json_t *resp;
	int fd, rc;

	fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && fstatat(fd, SFS_CONF_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode)) {
		snprintf(path, psz, "%s", arg);
		return fd;
	}
	if (fd >= 0)
		close(fd);
	rc = mount_open(arg, &m);
	if (rc)
		return -rc;
	rc = call(&m, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_HELLO)),
		  "cannot reach the daemon", &resp);
	mount_close(&m);
	if (rc)
		return -rc;
	snprintf(path, psz, "%s", json_string_value(json_object_get(resp, SFS_PROTO_F_STORE)));
	json_decref(resp);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -die(SFS_EXIT_FAIL, "cannot read the audit trail: %s: %s", path,
			    strerror(errno));
	return fd;
}

struct audit_out {
	bool json;
	json_t *arr;	/* --json: the records */
	size_t skipped; /* lines that are no record */
};

/* One record as a line of text: TIME EVENT SESSION RESULT WHO DETAILS. */
static void print_record(json_t *r)
{
	const char *sess = json_string_value(json_object_get(r, "session"));
	const char *err = json_string_value(json_object_get(r, "error"));
	const char *by = json_string_value(json_object_get(r, "by"));
	const char *cause = json_string_value(json_object_get(r, "cause"));
	json_t *okv = json_object_get(r, "ok"), *what = json_object_get(r, "what"), *w;
	json_t *of = json_object_get(r, "open_files");
	static const char *const ids[] = {"copy_of", "from", "to", /* sessionctl copy's */
					  "kind", "code"};	   /* slot_add's, fsck's repair */
	char result[48] = "-";
	size_t i;

	if (json_is_true(okv))
		snprintf(result, sizeof(result), "ok");
	else if (json_is_false(okv))
		snprintf(result, sizeof(result), "FAILED %s", err ? err : "");
	printf("%-24s %-8s %-20s %-22s uid=%lld pid=%lld comm=%s",
	       json_string_value(json_object_get(r, "time")),
	       json_string_value(json_object_get(r, "event")) ?: "?", sess ? sess : "-", result,
	       (long long)json_integer_value(json_object_get(r, "uid")),
	       (long long)json_integer_value(json_object_get(r, "pid")),
	       json_string_value(json_object_get(r, "comm")) ?: "?");
	if (by)
		printf(" by=%s", by);
	if (cause)
		printf(" cause=%s", cause);
	if (json_is_integer(of))
		printf(" open_files=%lld", (long long)json_integer_value(of));
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (json_string_value(json_object_get(r, ids[i])))
			printf(" %s=%s", ids[i], json_string_value(json_object_get(r, ids[i])));
	json_array_foreach(what, i, w)
		printf("%s%s", i ? "; " : " what: ", json_string_value(w) ?: "");
	putchar('\n');
}

static void one(json_t *rec, const char *line, void *arg)
{
	struct audit_out *o = arg;

	(void)line;
	if (!rec)
		o->skipped++;
	else if (o->json)
		json_array_append(o->arr, rec);
	else
		print_record(rec);
}

int sfs_audit_run(struct cmd *c)
{
	struct audit_out o = {.json = c->json};
	char path[PATH_MAX];
	time_t since = 0;
	int fd, rc;

	if (c->since)
		parse_since(c->since, &since); /* checked in sfs_audit_check */
	fd = open_store(c->args[0], path, sizeof(path));
	if (fd < 0)
		return -fd;
	o.arr = c->json ? json_array() : NULL;
	if (c->json && !o.arr) {
		close(fd);
		return die(SFS_EXIT_FAIL, "out of memory");
	}
	if (!c->json)
		printf("%-24s %-8s %-20s %-22s %s\n", "TIME", "EVENT", "SESSION", "RESULT",
		       "WHO AND DETAILS");
	rc = sfs_audit_read(fd, since, one, &o);
	close(fd);
	if (rc < 0) {
		json_decref(o.arr);
		return die(SFS_EXIT_FAIL, "cannot read the audit trail: %s/%s: %s", path,
			   SFS_AUDIT_NAME, strerror(-rc));
	}
	if (c->json) {
		char *text = json_dumps(o.arr, JSON_INDENT(2));
		json_free_t f;

		if (text)
			printf("%s\n", text);
		json_get_alloc_funcs(NULL, &f);
		f(text);
		json_decref(o.arr);
	}
	if (o.skipped)
		fprintf(stderr,
			"sessionctl: warning: %s/%s: %zu lines are no audit record: skipped\n",
			path, SFS_AUDIT_NAME, o.skipped);
	return SFS_EXIT_OK;
}

int sfs_use_check(struct cmd *c)
{
	if (c->nargs > 1)
		return die(SFS_EXIT_USAGE, "%s: wrong number of arguments (see sessionctl --help)",
			   c->argv0);
	return SFS_EXIT_OK;
}

/* The root of the sessionfs mount @arg is or is in, into @mnt; an exit code. */
static int mount_of(const char *arg, char *mnt)
{
	char *real = realpath(arg, NULL), *slash;

	if (!real)
		return die(SFS_EXIT_USAGE, "%s: %s", arg, strerror(errno));
	snprintf(mnt, PATH_MAX, "%s", real);
	free(real);
	while (!mount_root(mnt)) {
		slash = strrchr(mnt, '/');
		if (!slash || slash == mnt)
			return not_mount(
				arg,
				"the path is not in a sessionfs mount (no mount root above it)");
		*slash = '\0';
	}
	return SFS_EXIT_OK;
}

int sfs_use_run(struct cmd *c)
{
	const char *arg = c->nargs ? c->args[0] : ".";
	char mnt[PATH_MAX], what[80];
	struct target t;
	json_t *resp;
	int rc;

	/* use SESSIONDIR: the operand is a session (or a path in one). */
	if (!c->none && c->nargs && !mount_root(arg)) {
		rc = resolve(arg, &t);
		if (rc)
			return rc;
		snprintf(what, sizeof(what), "cannot use %s", t.id);
		rc = call_at(t.mnt,
			     json_pack("{s:s, s:s}", SFS_PROTO_F_OP,
				       sfs_proto_op_name(SFS_PROTO_OP_USE), SFS_PROTO_F_SESSION,
				       t.id),
			     what, NULL);
		if (rc == SFS_EXIT_OK)
			printf("%s/%s -> %s/%s\n", t.mnt, SFS_CURRENT_NAME, t.where, t.id);
		return rc;
	}
	rc = mount_of(arg, mnt);
	if (rc)
		return rc;
	if (c->none)
		return call_at(
			mnt,
			json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_UNUSE)),
			"cannot remove current", NULL);
	/* use [MOUNTPOINT]: say which session current names. */
	rc = call_at(mnt, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_HELLO)),
		     "cannot reach the daemon", &resp);
	if (rc)
		return rc;
	const char *id = json_string_value(json_object_get(resp, SFS_PROTO_F_CURRENT));
	char link[PATH_MAX + 16], target[PATH_MAX];
	ssize_t n = -1;

	if (id) {
		snprintf(link, sizeof(link), "%s/%s", mnt, SFS_CURRENT_NAME);
		n = readlink(link, target, sizeof(target) - 1);
	}
	if (n >= 0)
		target[n] = '\0';
	if (c->json && id) {
		char path[2 * PATH_MAX + 2], *text;
		json_free_t f;
		json_t *o;

		snprintf(path, sizeof(path), "%s/%s", mnt, n >= 0 ? target : id);
		o = json_pack("{s:s, s:s}", SFS_PROTO_F_CURRENT, id, "path", path);
		text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(o);
		if (text)
			printf("%s\n", text);
		json_get_alloc_funcs(NULL, &f);
		f(text);
	} else if (id)
		printf("%s/%s\n", mnt, n >= 0 ? target : id);
	json_decref(resp);
	if (!id)
		return die(SFS_EXIT_CTL_NO_SESSION,
			   "%s: no current session (sessionctl use SESSIONDIR names one)", mnt);
	return SFS_EXIT_OK;
}
