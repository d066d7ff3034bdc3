/*
 * redact.c - sessionctl redact: every match of a POSIX ERE in an unlocked
 * session's events.jsonl (and with --files in its other text files)
 * replaced by [REDACTED] (lib/redact.h).
 *
 * First the plan: for each file the lines that would change, shown with
 * the matches already replaced (the secret is never printed), and the
 * counts; then the question (or --yes; no terminal and no --yes: nothing
 * changes, exit 11); --dry-run stops after the plan. The other files are
 * rewritten here, through the mount, each atomically (a temporary in its
 * directory with the file's mode, user.* attributes and times, fsynced,
 * renamed over it); events.jsonl last, by the daemon (op "redact"), which
 * rewrites the log under its lock so no append is lost and appends the
 * record of the redaction. "Text": valid UTF-8 without a NUL byte, at most
 * TEXT_MAX bytes; other files are left as they are (and said so).
 * Knows the command line and the mount; nothing of crypto or the store.
 */
#include "crypto.h"
#include "redact.h"
#include "rules.h"
#include "sessionctl.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TEXT_MAX (64u << 20) /* larger files are not rewritten in memory: skipped */
#define SHOW_MAX 200	     /* bytes of a changed line shown in the plan */

/* One file's plan or result. */
struct plan {
	uint64_t matches, lines;
	json_t *at; /* line numbers that change */
};

/* Print @line (already redacted) shortened to SHOW_MAX bytes, whole UTF-8 characters. */
static void show(const char *file, uint64_t no, const char *line, size_t len)
{
	size_t n = len;

	if (n > SHOW_MAX) {
		n = SHOW_MAX;
		while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
			n--;
	}
	printf("  %s:%llu: %.*s%s\n", file, (unsigned long long)no, (int)n, line,
	       n < len ? "..." : "");
}

/*
 * Redact the lines of @buf (@len bytes) into @out (if not NULL: the whole
 * new text, malloc) with @line_fn for each line; plan in @p, each changed
 * line shown under @name unless @quiet. 0 or -errno.
 */
static int redact_lines(const regex_t *re, const char *buf, size_t len, bool events,
			const char *name, bool quiet, struct plan *p, char **out, size_t *outlen)
{
	size_t cap = 0, used = 0, start = 0;
	char *o = NULL;
	uint64_t no = 0;
	int rc = 0;

	while (rc == 0 && start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - buf) : len, n = end - start;
		char *r = NULL;
		size_t rlen = 0;
		uint64_t k = 0;

		no++;
		rc = events ? sfs_redact_line(re, buf + start, n, &r, &rlen, &k)
			    : sfs_redact_text(re, buf + start, n, &r, &rlen, &k);
		if (rc == 0 && r) {
			p->matches += k;
			p->lines++;
			json_array_append_new(p->at, json_integer((json_int_t)no));
			if (!quiet)
				show(name, no, r, rlen);
		}
		if (rc == 0 && out) {
			const char *src = r ? r : buf + start;
			size_t sl = r ? rlen : n, need = used + sl + 1;

			if (need > cap)
				rc = sfs_wiped_grow(&o, &cap, used, need * 2);
			if (rc == 0) {
				memcpy(o + used, src, sl);
				used += sl;
				if (nl)
					o[used++] = '\n';
			}
		}
		if (r) {
			sodium_memzero(r, rlen);
			free(r);
		}
		start = end + 1;
	}
	if (out) {
		*out = o;
		*outlen = used;
	} else {
		free(o);
	}
	return rc;
}

/* Read all of @fd (at most @max bytes: -EFBIG past it) into *@buf, *@len. */
static int slurp(int fd, size_t max, char **buf, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);

	if (!b)
		return -ENOMEM;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			int e = cap >= max ? -EFBIG : sfs_wiped_grow(&b, &cap, n, 0);

			if (e < 0) {
				sodium_memzero(b, n);
				free(b);
				return e;
			}
		}
		got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = -errno;

			sodium_memzero(b, n);
			free(b);
			return e;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*buf = b;
	*len = n;
	return 0;
}

static void wipe_free(char *p, size_t n)
{
	if (p) {
		sodium_memzero(p, n);
		free(p);
	}
}

/* Copy every user.* attribute of @from to @to. 0 or -errno. */
static int copy_xattrs(int from, int to)
{
	char names[65536], val[65536];
	ssize_t n = flistxattr(from, names, sizeof(names));

	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	for (char *k = names; k < names + n; k += strlen(k) + 1) {
		ssize_t v;

		if (strncmp(k, "user.", 5) != 0)
			continue;
		v = fgetxattr(from, k, val, sizeof(val));
		if (v < 0 || fsetxattr(to, k, val, (size_t)v, 0) < 0)
			return -errno;
	}
	return 0;
}

/*
 * Rewrite file @name of directory @dfd redacted, atomically: a temporary
 * in @dfd with its mode, user.* attributes and times, fsynced, renamed
 * over it. Matches replaced into @p. 0, 1 not text (left), or -errno.
 */
static int rewrite_file(int dfd, const char *name, const regex_t *re, struct plan *p)
{
	char tmp[NAME_MAX + 1], *buf = NULL, *out = NULL;
	size_t len = 0, outlen = 0;
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), tfd = -1, rc;

	if (fd < 0)
		return -errno;
	rc = fstat(fd, &st) < 0 ? -errno : slurp(fd, TEXT_MAX, &buf, &len);
	if (rc == 0 && !sfs_redact_is_text(buf, len))
		rc = 1;
	if (rc == 0)
		rc = redact_lines(re, buf, len, false, name, true, p, &out, &outlen);
	if (rc != 0 || p->matches == 0)
		goto out;
	snprintf(tmp, sizeof(tmp), ".%.200s.redact-%ld", name, (long)getpid());
	tfd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t done = 0; rc == 0 && done < outlen;) {
		ssize_t w = write(tfd, out + done, outlen - done);

		if (w < 0 && errno != EINTR)
			rc = -errno;
		done += w > 0 ? (size_t)w : 0;
	}
	if (rc == 0 && fchmod(tfd, st.st_mode & 07777) < 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_xattrs(fd, tfd);
	if (rc == 0 && futimens(tfd, (struct timespec[]){st.st_atim, st.st_mtim}) < 0)
		rc = -errno;
	if (rc == 0 && fsync(tfd) < 0)
		rc = -errno;
	if (rc == 0 && renameat(dfd, tmp, dfd, name) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(dfd, tmp, 0);
out:
	if (tfd >= 0)
		close(tfd);
	close(fd);
	wipe_free(buf, len);
	wipe_free(out, outlen);
	return rc;
}

/* Walk state of --files. */
struct walk {
	const regex_t *re;
	bool apply, quiet;
	json_t *files; /* [{file, matches, lines, at}] or {file, skipped} */
	uint64_t matches, nfiles;
	int err; /* first failure (an exit code) */
};

static void add_file(struct walk *w, const char *rel, struct plan *p, const char *skipped)
{
	json_t *o = json_pack("{s:s}", "file", rel);

	if (!o)
		return;
	if (skipped) {
		json_object_set_new(o, "skipped", json_string(skipped));
		json_decref(p->at);
	} else {
		json_object_set_new(o, SFS_PROTO_F_MATCHES, json_integer((json_int_t)p->matches));
		json_object_set_new(o, SFS_PROTO_F_LINES, json_integer((json_int_t)p->lines));
		json_object_set_new(o, "at", p->at);
		w->matches += p->matches;
		w->nfiles++;
	}
	p->at = NULL;
	json_array_append_new(w->files, o);
}

/* One regular file @name of @dfd (@rel its path in the session): plan or rewrite. */
static void one_file(struct walk *w, int dfd, const char *name, const char *rel)
{
	struct plan p = {.at = json_array()};
	char *buf = NULL;
	size_t len = 0;
	int rc, fd;

	if (w->apply) {
		rc = rewrite_file(dfd, name, w->re, &p);
	} else {
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? -errno : slurp(fd, TEXT_MAX, &buf, &len);
		if (fd >= 0)
			close(fd);
		if (rc == 0 && !sfs_redact_is_text(buf, len))
			rc = 1;
		if (rc == 0)
			rc = redact_lines(w->re, buf, len, false, rel, w->quiet, &p, NULL, NULL);
		wipe_free(buf, len);
	}
	if (rc == 1 || rc == -EFBIG) {
		add_file(w, rel, &p, rc == 1 ? "not text" : "larger than 64 MiB");
		return;
	}
	if (rc < 0) {
		if (!w->err)
			w->err = die(SFS_EXIT_FAIL, "redact: %s: %s", rel, strerror(-rc));
		json_decref(p.at);
		return;
	}
	if (p.matches == 0) {
		json_decref(p.at);
		return;
	}
	if (!w->quiet)
		printf("%s: %llu match%s in %llu line%s\n", rel, (unsigned long long)p.matches,
		       p.matches == 1 ? "" : "es", (unsigned long long)p.lines,
		       p.lines == 1 ? "" : "s");
	add_file(w, rel, &p, NULL);
}

/* Every regular file below @dfd (@rel its path), no symlink followed. */
static void walk_dir(struct walk *w, int dfd, const char *rel, bool top)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char path[PATH_MAX];

	if (!d) {
		if (fd >= 0)
			close(fd);
		if (!w->err)
			w->err = die(SFS_EXIT_FAIL, "redact: %s: %s", rel[0] ? rel : ".",
				     strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* the log is the daemon's; metadata.json is a checked document: not here */
		if (top && (strcmp(de->d_name, SFS_EVENTS_NAME) == 0 ||
			    strcmp(de->d_name, SFS_METADATA_NAME) == 0))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				walk_dir(w, sub, path, false);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			one_file(w, dirfd(d), de->d_name, path);
		}
	}
	closedir(d);
}

/* Ask on the terminal; 1 yes, 0 no, -1 no terminal. */
static int confirm(const char *id, uint64_t n)
{
	char ans[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");

	if (!tty)
		return -1;
	fprintf(tty, "Redact %llu match%s in %s? [y/N] ", (unsigned long long)n, n == 1 ? "" : "es",
		id);
	fflush(tty);
	if (!fgets(ans, sizeof(ans), tty))
		ans[0] = '\0';
	fclose(tty);
	return ans[0] == 'y' || ans[0] == 'Y';
}

/* The names of the built-in rules, ", "-separated, into @buf. */
static void builtin_names(char *buf, size_t sz)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const struct sfs_rule_builtin *b = sfs_rules_builtins; b->name && n < sz; b++)
		n += (size_t)snprintf(buf + n, sz - n, "%s%s", n ? ", " : "", b->name);
}

/*
 * --pattern-file F: the pattern from F's first line ("-": standard input),
 * kept out of argv (where ps and shell history see it), in sodium_malloc
 * memory like a password: a pattern is often the very secret to remove.
 */
static int pattern_from_file(struct cmd *c)
{
	int rc;

	if (c->pattern)
		return die(SFS_EXIT_USAGE,
			   "redact: --pattern and --pattern-file exclude each other");
	rc = sfs_password_read(&c->pat, c->pattern_file, NULL, 0);
	if (rc == -EINVAL)
		return die(SFS_EXIT_USAGE, "redact: --pattern-file %s: empty first line",
			   c->pattern_file);
	if (rc == -EMSGSIZE)
		return die(SFS_EXIT_USAGE,
			   "redact: --pattern-file %s: a pattern is at most %d bytes",
			   c->pattern_file, SFS_PASSWORD_MAX - 1);
	if (rc < 0)
		return die(SFS_EXIT_FAIL, "redact: cannot read --pattern-file %s: %s",
			   c->pattern_file, strerror(-rc));
	c->pattern = c->pat.buf;
	return SFS_EXIT_OK;
}

int sfs_redact_check(struct cmd *c)
{
	int modes, rc = c->pattern_file ? pattern_from_file(c) : SFS_EXIT_OK;
	char err[128], names[256];
	const char *eq;
	regex_t re;

	if (rc)
		return rc;
	modes = !!c->pattern + !!c->rule + !!c->builtin + !!c->remove_rule + c->list_rules;
	if (modes != 1)
		return die(SFS_EXIT_USAGE,
			   "redact: give one of --pattern REGEX, --rule NAME=REGEX, "
			   "--builtin NAME, --remove-rule NAME, --list-rules");
	if (!c->pattern && (c->files || c->dry_run || c->yes))
		return die(SFS_EXIT_USAGE,
			   "redact: --files, --dry-run and --yes go with --pattern");
	if (c->builtin && !sfs_rules_builtin(c->builtin)) {
		builtin_names(names, sizeof(names));
		return die(SFS_EXIT_USAGE, "redact: no built-in rule '%s' (there are: %s)",
			   c->builtin, names);
	}
	if ((c->remove_rule && !sfs_rule_name_valid(c->remove_rule)) ||
	    (c->rule && ((eq = strchr(c->rule, '=')) == NULL || eq == c->rule)))
		return die(SFS_EXIT_USAGE, "redact: %s: want %s",
			   c->rule ? "--rule" : "--remove-rule",
			   c->rule ? "NAME=REGEX" : "a rule name (A-Z a-z 0-9 . _ -)");
	if (c->rule) {
		struct sfs_rules r = {0};
		char name[SFS_RULE_NAME_MAX + 2];

		snprintf(name, sizeof(name), "%.*s", (int)(eq - c->rule), c->rule);
		rc = strlen(name) > SFS_RULE_NAME_MAX
			     ? -EINVAL
			     : sfs_rules_set(&r, name, eq + 1, false, err, sizeof(err));
		if (rc == -EINVAL && strlen(name) > SFS_RULE_NAME_MAX)
			snprintf(err, sizeof(err), "a rule name is 1 to %d of A-Z a-z 0-9 . _ -",
				 SFS_RULE_NAME_MAX);
		sfs_rules_free(&r);
		if (rc < 0)
			return die(SFS_EXIT_USAGE, "redact: invalid rule: %s", err);
		return SFS_EXIT_OK;
	}
	if (!c->pattern)
		return SFS_EXIT_OK;
	rc = sfs_redact_compile(&re, c->pattern, err, sizeof(err));
	if (rc == -ENOMEM)
		return die(SFS_EXIT_FAIL, "redact: out of memory");
	if (rc < 0)
		return die(SFS_EXIT_USAGE, "redact: invalid pattern: %s", err);
	regfree(&re);
	return SFS_EXIT_OK;
}

/* --rule, --builtin, --remove-rule, --list-rules: op "rules", then the list. */
static int run_rules(struct cmd *c)
{
	json_t *req =
		json_pack("{s:s, s:s}", SFS_PROTO_F_OP, "rules", SFS_PROTO_F_SESSION, c->t.id);
	json_t *resp = NULL, *list, *x;
	size_t i;
	int rc;

	if (req && c->rule) {
		const char *eq = strchr(c->rule, '=');

		json_object_set_new(req, SFS_PROTO_F_NAME,
				    json_stringn(c->rule, (size_t)(eq - c->rule)));
		json_object_set_new(req, SFS_PROTO_F_PATTERN, json_string(eq + 1));
	} else if (req && c->builtin) {
		json_object_set_new(req, SFS_PROTO_F_BUILTIN, json_string(c->builtin));
	} else if (req && c->remove_rule) {
		json_object_set_new(req, SFS_PROTO_F_REMOVE, json_string(c->remove_rule));
	}
	rc = call(&c->m, req, "redact", &resp);
	if (rc)
		return rc;
	list = json_object_get(resp, SFS_PROTO_F_RULES);
	if (json_is_false(json_object_get(resp, "removed")))
		fprintf(stderr, "sessionctl: redact: no rule '%s': nothing removed\n",
			c->remove_rule);
	if (c->json) {
		json_t *out =
			json_pack("{s:s, s:O}", SFS_PROTO_F_ID, c->t.id, SFS_PROTO_F_RULES, list);

		if (out) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(out);
	} else if (json_array_size(list) == 0) {
		printf("no redaction rules: appends to %s are stored as written\n",
		       SFS_EVENTS_NAME);
	} else {
		json_array_foreach(list, i, x)
			printf("%-20s %-8s %s\n", json_string_value(json_object_get(x, "name")),
			       json_is_true(json_object_get(x, "builtin")) ? "built-in" : "rule",
			       json_string_value(json_object_get(x, "pattern")));
	}
	json_decref(resp);
	return SFS_EXIT_OK;
}

/* The session directory through the proven mount: its fd, or an exit code negated. */
static int session_dir(struct cmd *c)
{
	char path[PATH_MAX];
	struct stat st;
	int dfd;

	snprintf(path, sizeof(path), "%s/%s", c->t.where, c->t.id);
	dfd = openat(c->m.fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0 && fstatat(dfd, SFS_EVENTS_NAME, &st, 0) == 0)
		return dfd;
	int e = errno;

	if (dfd >= 0)
		close(dfd);
	switch (e) {
	case EACCES:
		return -die(SFS_EXIT_CTL_LOCKED, "redact: the session is locked (unlock it first)");
	case EBUSY:
		return -die(SFS_EXIT_CTL_BUSY, "redact: the session is unlocked by another mount");
	case ENOENT:
		return -die(SFS_EXIT_CTL_NO_SESSION, "redact: no such session");
	default:
		return -die(SFS_EXIT_FAIL, "redact: %s", strerror(e));
	}
}

int sfs_redact_run(struct cmd *c)
{
	struct plan ev = {0};
	struct walk w = {.quiet = c->json};
	json_t *req, *resp = NULL, *out;
	char *buf = NULL;
	size_t len = 0;
	regex_t re;
	char err[128];
	int dfd, fd, rc;

	if (!c->pattern)
		return run_rules(c);
	ev.at = json_array();
	w.files = json_array();
	if (sfs_redact_compile(&re, c->pattern, err, sizeof(err)) < 0)
		return die(SFS_EXIT_FAIL, "redact: %s", err);
	w.re = &re;
	dfd = session_dir(c);
	if (dfd < 0) {
		rc = -dfd;
		goto done;
	}
	/* The plan: events.jsonl through the mount, then the other files. */
	fd = openat(dfd, SFS_EVENTS_NAME, O_RDONLY | O_CLOEXEC);
	rc = fd < 0 ? -errno : slurp(fd, SIZE_MAX / 2, &buf, &len);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = redact_lines(&re, buf, len, true, SFS_EVENTS_NAME, c->json, &ev, NULL, NULL);
	wipe_free(buf, len);
	if (rc < 0) {
		rc = die(SFS_EXIT_FAIL, "redact: %s: %s", SFS_EVENTS_NAME, strerror(-rc));
		goto done;
	}
	if (!c->json)
		printf("%s: %llu match%s in %llu line%s\n", SFS_EVENTS_NAME,
		       (unsigned long long)ev.matches, ev.matches == 1 ? "" : "es",
		       (unsigned long long)ev.lines, ev.lines == 1 ? "" : "s");
	if (c->files)
		walk_dir(&w, dfd, "", true);
	if (w.err) {
		rc = w.err;
		goto done;
	}
	fflush(stdout);
	rc = SFS_EXIT_OK;
	if (c->dry_run || ev.matches + w.matches == 0) {
		if (!c->json)
			printf(c->dry_run ? "dry run: nothing changed\n"
					  : "nothing to redact: no match\n");
		goto report;
	}
	if (!c->yes) {
		int r = confirm(c->t.id, ev.matches + w.matches);

		if (r <= 0) {
			rc = die(SFS_EXIT_CTL_CANCELLED, "redact: %s: nothing changed%s",
				 r < 0 ? "no terminal to ask on" : "not confirmed",
				 r < 0 ? " (use --yes)" : "");
			goto done;
		}
	}
	/* The other files first, so that the record in events.jsonl counts them. */
	if (c->files) {
		json_decref(w.files);
		w.files = json_array();
		w.matches = w.nfiles = 0;
		w.apply = w.quiet = true;
		walk_dir(&w, dfd, "", true);
		if (w.err) {
			rc = w.err;
			goto done;
		}
	}
	req = json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP, "redact", SFS_PROTO_F_SESSION, c->t.id,
			SFS_PROTO_F_PATTERN, c->pattern);
	if (req && c->files)
		json_object_set_new(req, SFS_PROTO_F_FILE_MATCHES,
				    json_integer((json_int_t)w.matches));
	rc = call(&c->m, req, "redact", &resp);
	if (rc)
		goto done;
	/* What the daemon replaced: the log as it was then, appends since included. */
	ev.matches = (uint64_t)json_integer_value(json_object_get(resp, SFS_PROTO_F_MATCHES));
	ev.lines = (uint64_t)json_integer_value(json_object_get(resp, SFS_PROTO_F_LINES));
	json_decref(resp);
	if (!c->json)
		printf("redacted %llu match%s in %llu line%s of %s, %llu in %llu other file%s\n",
		       (unsigned long long)ev.matches, ev.matches == 1 ? "" : "es",
		       (unsigned long long)ev.lines, ev.lines == 1 ? "" : "s", SFS_EVENTS_NAME,
		       (unsigned long long)w.matches, (unsigned long long)w.nfiles,
		       w.nfiles == 1 ? "" : "s");
report:
	if (c->json) {
		bool changed = !c->dry_run && ev.matches + w.matches > 0;

		out = json_pack("{s:s, s:b, s:b, s:{s:I, s:I, s:O}, s:O}", SFS_PROTO_F_ID, c->t.id,
				"dry_run", c->dry_run, "changed", changed, SFS_EVENTS_NAME,
				SFS_PROTO_F_MATCHES, (json_int_t)ev.matches, SFS_PROTO_F_LINES,
				(json_int_t)ev.lines, "at", ev.at, "files", w.files);
		if (out) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(out);
	}
done:
	if (dfd >= 0)
		close(dfd);
	regfree(&re);
	json_decref(ev.at);
	json_decref(w.files);
	return rc;
}
