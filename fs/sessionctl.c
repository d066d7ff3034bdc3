/*
 * sessionctl.c - the sessionctl command: new, unlock, lock, list, passwd,
 * delete, spoken over a mount's control file (doc/control.md).
 *
 * Knows the control protocol, paths of a mount and exit codes; nothing of
 * crypto or the store format. Passwords never come from argv or the
 * environment and are wiped after use (jansson frees through a wiping
 * allocator).
 */
#include "password.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit codes (doc/exit-codes.md). */
enum {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_WRONGPW = 3,
	EX_NOSESSION = 4,
	EX_NOTMOUNT = 5,
	EX_BUSY = 6,
	EX_LOCKED = 7,
	EX_EXISTS = 8,
	EX_PERM = 9,
	EX_BADPW = 10,
	EX_CANCELLED = 11,
};

#define CTL_NAME ".sessionfs"
#define RESPONSE_MAX (4 << 20)

/* A session named on the command line. */
struct target {
	char mnt[PATH_MAX];
	char id[SFS_SESSION_ID_MAX + 1];
	const char *where; /* "sessions" or "archive" */
};

static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("sessionctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void usage(FILE *out)
{
	fputs("Usage: sessionctl COMMAND [OPTIONS] ARGS\n"
	      "  new    [--name NAME] [--id INC-xxxx] [--password-file F] MOUNTPOINT\n"
	      "  unlock [--password-file F] SESSIONDIR\n"
	      "  lock   SESSIONDIR...  |  lock --all MOUNTPOINT\n"
	      "  list   [--json] MOUNTPOINT\n"
	      "  passwd [--password-file F] [--new-password-file F] SESSIONDIR\n"
	      "  delete [--yes] SESSIONDIR\n"
	      "SESSIONDIR is MOUNTPOINT/sessions/INC-xxxx (or archive/INC-xxxx).\n"
	      "Passwords are asked on the terminal without echo, or read from the first\n"
	      "line of --password-file F (- for standard input); never from arguments.\n"
	      "Exit codes: see sessionctl(1).\n",
	      out);
}

/* A getopt failure (opterr is off: the message is ours, "sessionctl: ..."). */
static int bad_option(char **argv, int c)
{
	if (c == 'P')
		return die(EX_USAGE, "%s: passwords are never taken from the command line: use "
				     "--password-file F or the prompt",
			   argv[0]);
	return die(EX_USAGE, "%s: unknown option or missing argument in '%s' (see sessionctl "
			     "--help)",
		   argv[0], argv[optind - 1]);
}

/* Open the control file of mount @mnt: fd or an exit code (negated). */
static int ctl_open(const char *mnt)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", mnt, CTL_NAME) >= (int)sizeof(path))
		return -die(EX_NOTMOUNT, "%s: path too long", mnt);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == EACCES || errno == EPERM)
		return -die(EX_PERM, "cannot control %s: permission denied (only the mounting "
				     "user and root may)",
			    mnt);
	return -die(EX_NOTMOUNT, "%s is not a sessionfs mount: %s", mnt, strerror(errno));
}

/* One request/response over the control file; the response or NULL (exit code in *code). */
static json_t *transact(const char *mnt, json_t *req, int *code)
{
	size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	char *buf = sodium_malloc(n ? n : 1), *resp = NULL;
	size_t got = 0;
	json_t *out = NULL;
	int fd = ctl_open(mnt);

	*code = EX_FAIL;
	if (fd < 0) {
		*code = -fd;
		goto out;
	}
	if (!buf) {
		die(EX_FAIL, "out of memory");
		goto out;
	}
	json_dumpb(req, buf, n, JSON_COMPACT);
	if (write(fd, buf, n) != (ssize_t)n) {
		die(EX_FAIL, "cannot talk to the sessionfs daemon at %s: %s", mnt, strerror(errno));
		goto out;
	}
	resp = malloc(RESPONSE_MAX);
	while (resp && got < RESPONSE_MAX) {
		ssize_t r = read(fd, resp + got, RESPONSE_MAX - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out = resp ? json_loadb(resp, got, 0, NULL) : NULL;
	if (!json_is_object(out)) {
		die(EX_FAIL, "bad answer from the sessionfs daemon at %s", mnt);
		json_decref(out);
		out = NULL;
	}
out:
	if (buf) {
		sodium_memzero(buf, n);
		sodium_free(buf);
	}
	free(resp);
	if (fd >= 0)
		close(fd);
	return out;
}

/* Exit code of a failed response, after printing "what: why". */
static int fail_resp(json_t *resp, const char *what)
{
	static const struct {
		const char *code;
		int ex;
	} map[] = {
		{"wrong-password", EX_WRONGPW}, {"no-such-session", EX_NOSESSION},
		{"busy", EX_BUSY},              {"locked", EX_LOCKED},
		{"exists", EX_EXISTS},          {"invalid", EX_USAGE},
		{"permission", EX_PERM},
	};
	const char *code = json_string_value(json_object_get(resp, "code"));
	const char *err = json_string_value(json_object_get(resp, "error"));
	int ex = EX_FAIL;

	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(code, map[i].code) == 0)
			ex = map[i].ex;
	return die(ex, "%s: %s", what, err ? err : "failed");
}

/* Send @req (consumed) and check success; 0 with *resp, or an exit code. */
static int call(const char *mnt, json_t *req, const char *what, json_t **resp)
{
	int code;
	json_t *r = req ? transact(mnt, req, &code) : NULL;

	json_decref(req);
	if (!req)
		return die(EX_FAIL, "out of memory");
	if (!r)
		return code;
	if (!json_is_true(json_object_get(r, "ok"))) {
		code = fail_resp(r, what);
		json_decref(r);
		return code;
	}
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return EX_OK;
}

/* MOUNTPOINT/{sessions,archive}/ID -> mount, id. 0 or an exit code. */
static int resolve(const char *arg, struct target *t)
{
	char copy[PATH_MAX], parent[PATH_MAX], *base, *dir, *real;
	size_t len = strlen(arg);

	if (len == 0 || len >= sizeof(copy))
		return die(EX_USAGE, "bad session directory '%s'", arg);
	memcpy(copy, arg, len + 1);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	base = basename(copy);
	if (snprintf(t->id, sizeof(t->id), "%s", base) >= (int)sizeof(t->id) ||
	    !sfs_id_valid(t->id)) {
		memcpy(copy, arg, strlen(arg) + 1);
		return die(EX_NOSESSION, "%s: no such session (ids look like INC-3f2a)", arg);
	}
	memcpy(copy, arg, strlen(arg) + 1);
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	dir = dirname(copy);
	real = realpath(dir, NULL);
	if (!real)
		return die(EX_NOTMOUNT, "%s is not in a sessionfs mount: %s", arg, strerror(errno));
	snprintf(parent, sizeof(parent), "%s", real);
	free(real);
	base = basename(parent);
	if (strcmp(base, "sessions") == 0)
		t->where = "sessions";
	else if (strcmp(base, "archive") == 0)
		t->where = "archive";
	else
		return die(EX_NOTMOUNT, "%s is not a session directory of a sessionfs mount", arg);
	snprintf(t->mnt, sizeof(t->mnt), "%s", dirname(parent));
	return EX_OK;
}

/* Read a password or explain why not; 0 or an exit code. */
static int get_password(struct sfs_password *pw, const char *file, const char *prompt,
			int confirm)
{
	int rc = sfs_password_read(pw, file, prompt, confirm);

	switch (rc) {
	case 0:
		return EX_OK;
	case -ENOTTY:
		return die(EX_BADPW, "no terminal to ask the password on: use --password-file");
	case -EINVAL:
		return die(EX_BADPW, "empty password");
	case -EKEYREJECTED:
		return die(EX_BADPW, "the two passwords differ");
	case -EMSGSIZE:
		return die(EX_BADPW, "password longer than %d bytes", SFS_PASSWORD_MAX - 1);
	default:
		return die(EX_BADPW, "cannot read the password from %s: %s", file ? file : "tty",
			   strerror(-rc));
	}
}

static int cmd_new(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"id", required_argument, NULL, 'i'},
		{"password-file", required_argument, NULL, 'p'},
		{"password", optional_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = "", *id = NULL, *file = NULL;
	struct sfs_password pw;
	json_t *req, *resp;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'n')
			name = optarg;
		else if (c == 'i')
			id = optarg;
		else if (c == 'p')
			file = optarg;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind != argc - 1)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	if (id && !sfs_id_valid(id))
		return die(EX_USAGE, "bad --id '%s': want INC- and 4 to 16 lowercase hex digits",
			   id);
	rc = get_password(&pw, file, "New session password: ", 1);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:s%, s:s}", "op", "new", "password", pw.buf, pw.len, "name", name);
	sfs_password_free(&pw);
	if (req && id)
		json_object_set_new(req, "id", json_string(id));
	rc = call(argv[optind], req, "cannot create a session", &resp);
	if (rc)
		return rc;
	printf("%s\n", json_string_value(json_object_get(resp, "id")));
	json_decref(resp);
	return EX_OK;
}

static int cmd_unlock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"password-file", required_argument, NULL, 'p'},
		{"password", optional_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL;
	struct sfs_password pw;
	struct target t;
	char what[64], prompt[64];
	json_t *req, *resp, *w;
	size_t i;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'p')
			file = optarg;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind != argc - 1)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	rc = resolve(argv[optind], &t);
	if (rc)
		return rc;
	snprintf(prompt, sizeof(prompt), "Password for %s: ", t.id);
	rc = get_password(&pw, file, prompt, 0);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:s, s:s%}", "op", "unlock", "session", t.id, "password", pw.buf,
			pw.len);
	sfs_password_free(&pw);
	snprintf(what, sizeof(what), "cannot unlock %s", t.id);
	rc = call(t.mnt, req, what, &resp);
	if (rc)
		return rc;
	/* Unlocked all the same: what unlock cut or found damaged is a warning, exit 0. */
	json_array_foreach(json_object_get(resp, "warnings"), i, w)
		fprintf(stderr, "sessionctl: warning: %s: %s\n", t.id, json_string_value(w));
	json_decref(resp);
	return EX_OK;
}

static int lock_one(const char *mnt, const char *id)
{
	char what[64];
	json_t *resp;
	int rc;

	snprintf(what, sizeof(what), "cannot lock %s", id);
	rc = call(mnt, json_pack("{s:s, s:s}", "op", "lock", "session", id), what, &resp);
	if (rc)
		return rc;
	printf("%s: locked (%lld open files)\n", id,
	       json_integer_value(json_object_get(resp, "open_files")));
	json_decref(resp);
	return EX_OK;
}

static int cmd_lock(int argc, char **argv)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct target t;
	json_t *resp;
	int c, all = 0, rc = EX_OK;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'a')
			all = 1;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind >= argc || (all && optind != argc - 1))
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	if (all) {
		rc = call(argv[optind], json_pack("{s:s}", "op", "lock_all"), "cannot lock",
			  &resp);
		if (rc)
			return rc;
		printf("locked %lld sessions (%lld open files)\n",
		       json_integer_value(json_object_get(resp, "sessions")),
		       json_integer_value(json_object_get(resp, "open_files")));
		json_decref(resp);
		return EX_OK;
	}
	for (int i = optind; i < argc; i++) {
		int r = resolve(argv[i], &t);

		if (r == EX_OK)
			r = lock_one(t.mnt, t.id);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* For an unlocked session, its metadata.json read through the mount (or NULL). */
static json_t *read_metadata(const char *mnt, const char *where, const char *id)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s/%s/metadata.json", mnt, where, id);
	return json_load_file(path, 0, NULL);
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	json_t *resp, *arr, *s;
	int c, as_json = 0, rc;
	size_t i;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j')
			as_json = 1;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind != argc - 1)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	rc = call(argv[optind], json_pack("{s:s}", "op", "list"), "cannot list sessions", &resp);
	if (rc)
		return rc;
	arr = json_object_get(resp, "sessions");
	json_array_foreach(arr, i, s) {
		const char *id = json_string_value(json_object_get(s, "id"));
		const char *where = json_string_value(json_object_get(s, "where"));
		json_t *meta;

		if (json_is_true(json_object_get(s, "locked")))
			continue;
		meta = read_metadata(argv[optind], where, id);
		if (!json_is_object(meta)) {
			json_decref(meta);
			continue;
		}
		for (const char **k = (const char *[]){"status", "name", "created", "updated",
						      NULL};
		     *k; k++) {
			json_t *v = json_object_get(meta, *k);

			if (v)
				json_object_set(s, *k, v);
		}
		json_decref(meta);
	}
	if (as_json) {
		char *text = json_dumps(arr, JSON_INDENT(2));

		if (text)
			printf("%s\n", text);
		/* json_dumps allocates through jansson's allocator: free it there. */
		json_free_t f;

		json_get_alloc_funcs(NULL, &f);
		f(text);
	} else {
		printf("%-20s %-8s %-8s %-9s %-20s %-20s %8s %10s  %s\n", "ID", "WHERE", "STATE",
		       "STATUS", "CREATED", "UPDATED", "EVENTS", "SIZE", "NAME");
		json_array_foreach(arr, i, s) {
			const char *st = json_string_value(json_object_get(s, "status"));
			const char *cr = json_string_value(json_object_get(s, "created"));
			const char *up = json_string_value(json_object_get(s, "updated"));
			const char *nm = json_string_value(json_object_get(s, "name"));
			json_t *ev = json_object_get(s, "events"), *sz = json_object_get(s, "events_bytes");
			json_t *dmg = json_object_get(s, "damaged"), *d;
			const char *state = json_array_size(dmg) ? "damaged" : "unlocked";
			char evs[24] = "-", szs[24] = "-";
			size_t j;

			if (json_is_integer(ev))
				snprintf(evs, sizeof(evs), "%lld", (long long)json_integer_value(ev));
			if (json_is_integer(sz))
				snprintf(szs, sizeof(szs), "%lld", (long long)json_integer_value(sz));
			if (json_is_true(json_object_get(s, "locked")))
				state = "locked";
			printf("%-20s %-8s %-8s %-9s %-20s %-20s %8s %10s  %s\n",
			       json_string_value(json_object_get(s, "id")),
			       json_string_value(json_object_get(s, "where")), state, st ? st : "-",
			       cr ? cr : "-", up ? up : "-", evs, szs, nm ? nm : "");
			/* What is damaged, beside the table (the table stays one line each). */
			json_array_foreach(dmg, j, d)
				fprintf(stderr, "sessionctl: warning: %s: %s: damaged: %s\n",
					json_string_value(json_object_get(s, "id")),
					json_string_value(json_object_get(d, "file")),
					json_string_value(json_object_get(d, "what")));
		}
	}
	json_decref(resp);
	return EX_OK;
}

static int cmd_passwd(int argc, char **argv)
{
	static const struct option opts[] = {
		{"password-file", required_argument, NULL, 'p'},
		{"password", optional_argument, NULL, 'P'},
		{"new-password-file", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL, *newfile = NULL;
	struct sfs_password old, neu;
	struct target t;
	char what[64], prompt[64];
	json_t *req;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'p')
			file = optarg;
		else if (c == 'n')
			newfile = optarg;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind != argc - 1)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	rc = resolve(argv[optind], &t);
	if (rc)
		return rc;
	snprintf(prompt, sizeof(prompt), "Current password for %s: ", t.id);
	rc = get_password(&old, file, prompt, 0);
	if (rc)
		return rc;
	snprintf(prompt, sizeof(prompt), "New password for %s: ", t.id);
	rc = get_password(&neu, newfile, prompt, 1);
	if (rc) {
		sfs_password_free(&old);
		return rc;
	}
	req = json_pack("{s:s, s:s, s:s%, s:s%}", "op", "passwd", "session", t.id, "password",
			old.buf, old.len, "new_password", neu.buf, neu.len);
	sfs_password_free(&old);
	sfs_password_free(&neu);
	snprintf(what, sizeof(what), "cannot change the password of %s", t.id);
	return call(t.mnt, req, what, NULL);
}

/* Ask "y" on the terminal; 1 yes, 0 no or no terminal. */
static int confirm(const char *id)
{
	char ans[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");

	if (!tty)
		return 0;
	fprintf(tty, "Delete session %s and all its files? [y/N] ", id);
	fflush(tty);
	if (!fgets(ans, sizeof(ans), tty))
		ans[0] = '\0';
	fclose(tty);
	return ans[0] == 'y' || ans[0] == 'Y';
}

static int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {
		{"yes", no_argument, NULL, 'y'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct target t;
	char what[64], path[PATH_MAX + 64];
	struct stat st;
	int c, yes = 0, rc;

	while ((c = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
		if (c == 'y')
			yes = 1;
		else
			return c == 'h' ? (usage(stdout), EX_OK) : bad_option(argv, c);
	}
	if (optind != argc - 1)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	rc = resolve(argv[optind], &t);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s/%s/metadata.json", t.mnt, t.where, t.id);
	snprintf(what, sizeof(what), "cannot delete %s", t.id);
	if (stat(path, &st) < 0 && errno == EACCES)
		return die(EX_LOCKED, "%s: the session is locked (unlock it first)", what);
	if (!yes && !confirm(t.id))
		return die(EX_CANCELLED, "%s: not confirmed (use --yes)", what);
	return call(t.mnt, json_pack("{s:s, s:s}", "op", "delete", "session", t.id), what, NULL);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"new", cmd_new},       {"unlock", cmd_unlock}, {"lock", cmd_lock},
		{"list", cmd_list},     {"passwd", cmd_passwd}, {"delete", cmd_delete},
	};

	if (argc < 2)
		return die(EX_USAGE, "%s: wrong number of arguments (see sessionctl --help)", argv[0]);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(stdout), EX_OK;
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return printf("sessionctl %s\n", SFS_VERSION), EX_OK;
	opterr = 0;
	if (sodium_init() < 0)
		return die(EX_FAIL, "cannot initialise libsodium");
	sfs_store_json_wipe_on_free();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	return die(EX_USAGE, "unknown command '%s' (see sessionctl --help)", argv[1]);
}
