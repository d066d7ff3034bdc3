/*
 * sessionctl.c - the sessionctl command: new, unlock, lock, list, passwd,
 * delete, spoken over a mount's control file (doc/control.md).
 *
 * Knows the control protocol, paths of a mount and exit codes; nothing of
 * crypto or the store format. Passwords never come from argv or the
 * environment and are wiped after use (jansson frees through a wiping
 * allocator). Before a request leaves, the mount is proven to be a
 * sessionfs daemon's, mounted by the caller or root (mount_open, ctl_open):
 * no password goes to a file, FIFO or FUSE mount that merely sits at the
 * path given. sessionctl never dumps core.
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
#include <linux/magic.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
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
#define CTL_MODE 0600 /* the control file's mode, as the daemon shows it */
#define FSTYPE "fuse.sessionfs"
#define RESPONSE_MAX (4 << 20)

/* A mount proven to be served by a sessionfs daemon of the caller or root. */
struct mount {
	int fd; /* O_PATH descriptor of the mount's root directory */
	dev_t dev; /* the mount's device */
	uid_t owner; /* who mounted it (the kernel's user_id=): the caller or 0 */
	const char *arg; /* the path as given, for messages */
};

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

static int not_mount(const char *arg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "sessionctl: ARG: not a sessionfs mount: WHY"; EX_NOTMOUNT. */
static int not_mount(const char *arg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sessionctl: %s: not a sessionfs mount: ", arg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EX_NOTMOUNT;
}

/* What the kernel's mount table says of one mount. */
struct mount_entry {
	char fstype[64];
	bool whole; /* it mounts the root of its file system, not a part */
	long long user_id; /* -1 if the super options name none */
};

/*
 * Look up the mount at @path (canonical) with device @dev, and mount id
 * @mnt_id if not 0, in /proc/self/mountinfo: the kernel's word, which no
 * FUSE daemon can bend. 0 found; -ENOENT none; other -errno.
 */
static int find_mount(const char *path, dev_t dev, uint64_t mnt_id, struct mount_entry *e)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *field[6], *save = NULL, *tok, *fstype = NULL, *super = NULL;
		unsigned long long id;
		unsigned int maj, min;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		for (tok = strtok_r(line, " ", &save); tok && n < 6;
		     tok = strtok_r(NULL, " ", &save))
			field[n++] = tok;
		/* Optional fields up to "-", then fstype, source, super options. */
		while (tok && strcmp(tok, "-") != 0)
			tok = strtok_r(NULL, " ", &save);
		if (tok)
			fstype = strtok_r(NULL, " ", &save);
		if (fstype && strtok_r(NULL, " ", &save))
			super = strtok_r(NULL, " ", &save);
		if (n < 6 || !super || sscanf(field[0], "%llu", &id) != 1 ||
		    sscanf(field[2], "%u:%u", &maj, &min) != 2)
			continue;
		sfs_mountinfo_unescape(field[3]);
		sfs_mountinfo_unescape(field[4]);
		if (maj != major(dev) || min != minor(dev) || strcmp(field[4], path) != 0 ||
		    (mnt_id && id != mnt_id))
			continue;
		snprintf(e->fstype, sizeof(e->fstype), "%s", fstype);
		e->whole = strcmp(field[3], "/") == 0;
		e->user_id = -1;
		for (tok = strtok_r(super, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (strncmp(tok, "user_id=", 8) == 0)
				e->user_id = strtoll(tok + 8, NULL, 10);
		rc = 0; /* the last match is the one on top */
	}
	free(line);
	fclose(f);
	return rc;
}

/*
 * Prove that @arg is the root of a sessionfs mount whose daemon runs for the
 * caller or root, and open it (O_PATH: nothing reaches a daemon's open).
 * The file system type comes from fstatfs and the mount table, both the
 * kernel's; owner and mode reported by a FUSE daemon could be lies. 0 with
 * *m set (mount_close it), or an exit code after saying why.
 */
static int mount_open(const char *arg, struct mount *m)
{
	struct mount_entry e;
	struct statx stx;
	struct statfs sfs;
	struct stat st;
	uint64_t mnt_id = 0;
	uid_t me = getuid();
	char *real;
	int rc;

	m->fd = -1;
	m->arg = arg;
	real = realpath(arg, NULL);
	if (real)
		m->fd = open(real, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m->fd < 0 || fstat(m->fd, &st) < 0 || fstatfs(m->fd, &sfs) < 0) {
		/* Another user's FUSE mount without allow_other refuses even stat. */
		if (errno == EACCES || errno == EPERM)
			rc = die(EX_PERM,
				 "cannot control %s: permission denied (only the mounting "
				 "user and root may)",
				 arg);
		else
			rc = not_mount(arg, "%s", strerror(errno));
		goto fail;
	}
	m->dev = st.st_dev;
	if (sfs.f_type != FUSE_SUPER_MAGIC) {
		/* A store given for its mountpoint is the likely mistake: say so. */
		if (faccessat(m->fd, SFS_CONF_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			rc = not_mount(arg, "a sessionfs store, not a mount (mount it with "
					    "sessionfs STORE MOUNTPOINT and give the mountpoint)");
		else
			rc = not_mount(arg, "not a FUSE file system");
		goto fail;
	}
	if (statx(m->fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) == 0) {
		if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
			rc = not_mount(arg, "not the root of a mount");
			goto fail;
		}
		if (stx.stx_mask & STATX_MNT_ID)
			mnt_id = stx.stx_mnt_id;
	}
	rc = find_mount(real, st.st_dev, mnt_id, &e);
	if (rc < 0) {
		rc = not_mount(arg, "%s",
			       rc == -ENOENT ? "no such mount in /proc/self/mountinfo"
					     : strerror(-rc));
		goto fail;
	}
	if (strcmp(e.fstype, FSTYPE) != 0) {
		rc = not_mount(arg, "a %s mount, not %s", e.fstype, FSTYPE);
		goto fail;
	}
	if (!e.whole) {
		rc = not_mount(arg, "a bind mount of a part of a file system");
		goto fail;
	}
	if (e.user_id != (long long)me && e.user_id != 0) {
		rc = not_mount(arg, "mounted by uid %lld, not by you (uid %u) or root", e.user_id,
			       (unsigned int)me);
		goto fail;
	}
	m->owner = (uid_t)e.user_id;
	free(real);
	return EX_OK;
fail:
	free(real);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	return rc;
}

static void mount_close(struct mount *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/*
 * Open the control file of the proven mount @m, never through a symlink,
 * and check it is what the daemon shows (doc/control.md): a regular file of
 * mode 0600, owned by the mount's owner, on the mount's own device. The fd,
 * or an exit code (negated).
 */
static int ctl_open(const struct mount *m)
{
	struct statfs sfs;
	struct stat st;
	int fd;

	fd = openat(m->fd, CTL_NAME, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		return -die(EX_PERM,
			    "cannot control %s: permission denied (only the mounting "
			    "user and root may)",
			    m->arg);
	if (fd < 0)
		return -not_mount(m->arg, "%s: %s", CTL_NAME,
				  errno == ELOOP ? "a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		close(fd);
		return -not_mount(m->arg, "%s: %s", CTL_NAME, strerror(errno));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != CTL_MODE || st.st_uid != m->owner ||
	    st.st_dev != m->dev || sfs.f_type != FUSE_SUPER_MAGIC) {
		close(fd);
		return -not_mount(m->arg,
				  "%s is not sessionfs's control file (type, mode %04o, "
				  "owner %u or device)",
				  CTL_NAME, (unsigned int)(st.st_mode & 07777),
				  (unsigned int)st.st_uid);
	}
	return fd;
}

/* One request/response over the control file; the response or NULL (exit code in *code). */
static json_t *transact(const struct mount *m, json_t *req, int *code)
{
	size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	char *buf = sodium_malloc(n ? n : 1), *resp = NULL;
	size_t got = 0;
	json_t *out = NULL;
	int fd = ctl_open(m);

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
		die(EX_FAIL, "cannot talk to the sessionfs daemon at %s: %s", m->arg,
		    strerror(errno));
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
		die(EX_FAIL, "bad answer from the sessionfs daemon at %s", m->arg);
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
static int call(const struct mount *m, json_t *req, const char *what, json_t **resp)
{
	int code;
	json_t *r = req ? transact(m, req, &code) : NULL;

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

/*
 * Prove the mount at @mnt before asking for a password or a confirmation,
 * without holding it (an unmount meanwhile is not refused as busy): the
 * proof is made again when the request goes (call_at).
 */
static int check_mount(const char *mnt)
{
	struct mount m;
	int rc = mount_open(mnt, &m);

	mount_close(&m);
	return rc;
}

/* call() on the mount at @mnt, proven right before the request goes; consumes @req. */
static int call_at(const char *mnt, json_t *req, const char *what, json_t **resp)
{
	struct mount m;
	int rc = mount_open(mnt, &m);

	if (rc) {
		json_decref(req);
		return rc;
	}
	rc = call(&m, req, what, resp);
	mount_close(&m);
	return rc;
}

/*
 * Is @dir the root of a sessionfs mount: the top directory of its device,
 * with the control file in it (which only the mounting user and root may
 * open, but anyone may look up)?
 */
static bool mount_root(const char *dir)
{
	char up[PATH_MAX + 4], ctl[PATH_MAX + sizeof(CTL_NAME) + 1];
	struct stat st, pst;

	snprintf(up, sizeof(up), "%s/..", dir);
	snprintf(ctl, sizeof(ctl), "%s/%s", strcmp(dir, "/") ? dir : "", CTL_NAME);
	if (stat(dir, &st) < 0 || stat(up, &pst) < 0)
		return false;
	if (st.st_dev == pst.st_dev && st.st_ino != pst.st_ino)
		return false;
	return lstat(ctl, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * @arg made absolute with symlinks resolved, into @out (PATH_MAX): by
 * realpath, or, when its last component cannot be reached (a session that
 * does not exist, a file of a locked session), realpath of its directory
 * and the name as given. 0 or an exit code.
 */
static int absolute(const char *arg, char *out)
{
	char copy[PATH_MAX], name[PATH_MAX], *real = realpath(arg, NULL), *dir;
	int err = errno;
	size_t len = strlen(arg);

	if (real) {
		snprintf(out, PATH_MAX, "%s", real);
		free(real);
		return EX_OK;
	}
	memcpy(copy, arg, len + 1);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	snprintf(name, sizeof(name), "%s", basename(copy));
	dir = dirname(copy);
	real = strcmp(name, ".") && strcmp(name, "..") ? realpath(dir, NULL) : NULL;
	if (!real)
		return not_mount(arg, "the path is not in a sessionfs mount: %s", strerror(err));
	len = (size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "", name);
	free(real);
	return len < PATH_MAX ? EX_OK : die(EX_USAGE, "%s: path too long", arg);
}

/*
 * The session @arg names or is in: MOUNTPOINT/{sessions,archive}/ID, or any
 * path inside one (".", a file, a subdirectory), so that `sessionctl lock .`
 * works from within a session. The mount is the nearest directory above
 * that is a sessionfs mount's root. 0 with @t filled, or an exit code.
 */
static int resolve(const char *arg, struct target *t)
{
	char path[PATH_MAX], *slash, *rel, *end;
	size_t idlen;
	int rc;

	if (!*arg || strlen(arg) >= PATH_MAX)
		return die(EX_USAGE, "bad session directory '%s'", arg);
	rc = absolute(arg, path);
	if (rc)
		return rc;
	/* Walk up to the mount root. */
	snprintf(t->mnt, sizeof(t->mnt), "%s", path);
	while (!mount_root(t->mnt)) {
		slash = strrchr(t->mnt, '/');
		if (!slash || slash == t->mnt)
			return not_mount(arg, "the path is not in a sessionfs mount (no mount root above it)");
		*slash = '\0';
	}
	rel = path + strlen(t->mnt);
	if (strncmp(rel, "/" SFS_SESSIONS_DIR "/", sizeof(SFS_SESSIONS_DIR) + 1) == 0)
		t->where = SFS_SESSIONS_DIR;
	else if (strncmp(rel, "/" SFS_ARCHIVE_DIR "/", sizeof(SFS_ARCHIVE_DIR) + 1) == 0)
		t->where = SFS_ARCHIVE_DIR;
	else
		return die(EX_NOSESSION,
			   "%s is not in a session of the sessionfs mount %s (want "
			   "MOUNTPOINT/sessions/INC-xxxx or a path in it)",
			   arg, t->mnt);
	rel += strlen(t->where) + 2;
	end = strchr(rel, '/');
	idlen = end ? (size_t)(end - rel) : strlen(rel);
	if (idlen < sizeof(t->id)) {
		memcpy(t->id, rel, idlen);
		t->id[idlen] = '\0';
	}
	if (idlen >= sizeof(t->id) || !sfs_id_valid(t->id))
		return die(EX_NOSESSION, "%s: no such session (ids look like INC-3f2a)", arg);
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

/*
 * Say on stderr how the new session in @resp is protected: the store's
 * sessionfs.conf chose its cost and cipher and is not authenticated, so a
 * downgrade must be visible. Standard output keeps the id alone.
 */
static void say_protection(json_t *resp)
{
	const char *id = json_string_value(json_object_get(resp, "id"));
	const char *kdf = json_string_value(json_object_get(resp, "kdf"));
	const char *cipher = json_string_value(json_object_get(resp, "cipher"));
	json_t *ops = json_object_get(resp, "opslimit"), *mem = json_object_get(resp, "memlimit");
	long long mib;

	if (!id || !kdf || !cipher || !json_is_integer(ops) || !json_is_integer(mem))
		return; /* an older daemon */
	if (strcmp(cipher, "aes256gcm") == 0)
		cipher = "AES-256-GCM";
	else if (strcmp(cipher, "xchacha20poly1305") == 0)
		cipher = "XChaCha20-Poly1305";
	mib = (long long)(json_integer_value(mem) >> 20);
	fprintf(stderr, "sessionctl: %s: Argon2id %s (opslimit %lld, memlimit %lld MiB), %s\n", id,
		kdf, (long long)json_integer_value(ops), mib, cipher);
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
	rc = check_mount(argv[optind]);
	if (rc == EX_OK)
		rc = get_password(&pw, file, "New session password: ", 1);
	if (rc)
		return rc;
	req = json_pack("{s:s, s:s%, s:s}", "op", "new", "password", pw.buf, pw.len, "name", name);
	sfs_password_free(&pw);
	if (req && id)
		json_object_set_new(req, "id", json_string(id));
	rc = call_at(argv[optind], req, "cannot create a session", &resp);
	if (rc)
		return rc;
	printf("%s\n", json_string_value(json_object_get(resp, "id")));
	fflush(stdout);
	say_protection(resp);
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
	if (rc == EX_OK)
		rc = check_mount(t.mnt);
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
	rc = call_at(t.mnt, req, what, &resp);
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
	rc = call_at(mnt, json_pack("{s:s, s:s}", "op", "lock", "session", id), what, &resp);
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
		rc = call_at(argv[optind], json_pack("{s:s}", "op", "lock_all"), "cannot lock",
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

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	json_t *resp, *arr, *s;
	struct mount m;
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
	rc = mount_open(argv[optind], &m);
	if (rc)
		return rc;
	rc = call(&m, json_pack("{s:s}", "op", "list"), "cannot list sessions", &resp);
	if (rc) {
		mount_close(&m);
		return rc;
	}
	/*
	 * status, name, created and updated come with the reply: the daemon
	 * reads them, as reading metadata.json through the mount would count as
	 * a use of the session and hold off its idle_lock.
	 */
	arr = json_object_get(resp, "sessions");
	mount_close(&m);
	if (as_json) {
		char *text = json_dumps(arr, JSON_INDENT(2));

		if (text)
			printf("%s\n", text);
		/* json_dumps allocates through jansson's allocator: free it there. */
		json_free_t f;

		json_get_alloc_funcs(NULL, &f);
		f(text);
	} else {
		/* STATE is wide enough for "unlocked elsewhere" only when a row says so. */
		int sw = 8;

		json_array_foreach(arr, i, s)
		{
			if (json_is_true(json_object_get(s, "unlocked_elsewhere")))
				sw = 18;
		}
		printf("%-20s %-8s %-*s %-9s %-20s %-20s %8s %10s  %s\n", "ID", "WHERE", sw,
		       "STATE", "STATUS", "CREATED", "UPDATED", "EVENTS", "SIZE", "NAME");
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
			if (json_is_true(json_object_get(s, "unlocked_elsewhere")))
				state = "unlocked elsewhere";
			else if (json_is_true(json_object_get(s, "locked")))
				state = "locked";
			printf("%-20s %-8s %-*s %-9s %-20s %-20s %8s %10s  %s\n",
			       json_string_value(json_object_get(s, "id")),
			       json_string_value(json_object_get(s, "where")), sw, state, st ? st : "-",
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
	/* Each is read from the first line of its file: one standard input cannot give both. */
	if (file && newfile && strcmp(file, "-") == 0 && strcmp(newfile, "-") == 0)
		return die(EX_USAGE,
			   "%s: --password-file and --new-password-file cannot both be "
			   "- (standard input)",
			   argv[0]);
	rc = resolve(argv[optind], &t);
	if (rc == EX_OK)
		rc = check_mount(t.mnt);
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
	return call_at(t.mnt, req, what, NULL);
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
	struct mount m;
	char what[64], path[PATH_MAX];
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
	if (rc == EX_OK)
		rc = mount_open(t.mnt, &m);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s/metadata.json", t.where, t.id);
	snprintf(what, sizeof(what), "cannot delete %s", t.id);
	if (fstatat(m.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == EACCES)
		rc = die(EX_LOCKED, "%s: the session is locked (unlock it first)", what);
	mount_close(&m);
	if (rc)
		return rc;
	if (!yes && !confirm(t.id))
		return die(EX_CANCELLED, "%s: not confirmed (use --yes)", what);
	return call_at(t.mnt, json_pack("{s:s, s:s}", "op", "delete", "session", t.id), what, NULL);
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

	/* It holds passwords: no core file, no ptrace by other users, from the start. */
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	prctl(PR_SET_DUMPABLE, 0);
	if (argc < 2)
		return die(EX_USAGE, "missing command (see sessionctl --help)");
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
