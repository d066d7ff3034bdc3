/*
 * mount.c - sessionctl's proof that a path is a sessionfs mount of the
 * caller or root (doc/control.md, "What sessionctl proves"), the opening of
 * its control file, and the finding of the mount and the session that a
 * SESSIONDIR names.
 *
 * Trusts the kernel (fstatfs, statx, /proc/self/mountinfo), never what a
 * FUSE daemon reports. Knows no protocol beyond the control file's name,
 * mode and file system type (lib/proto.h).
 */
#include "sessionctl.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* What the kernel's mount table says of one mount. */
struct mount_entry {
	char fstype[64];
	bool whole;	   /* it mounts the root of its file system, not a part */
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
int mount_open(const char *arg, struct mount *m)
{
	struct mount_entry e;
	struct statx stx;
	struct statfs fs;
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
	if (m->fd < 0 || fstat(m->fd, &st) < 0 || fstatfs(m->fd, &fs) < 0) {
		/* Another user's FUSE mount without allow_other refuses even stat. */
		if (errno == EACCES || errno == EPERM)
			rc = die(SFS_EXIT_CTL_PERMISSION,
				 "cannot control %s: permission denied (only the mounting "
				 "user and root may)",
				 arg);
		else
			rc = not_mount(arg, "%s", strerror(errno));
		goto fail;
	}
	m->dev = st.st_dev;
	if (fs.f_type != FUSE_SUPER_MAGIC) {
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
	if (strcmp(e.fstype, SFS_PROTO_FSTYPE) != 0) {
		rc = not_mount(arg, "a %s mount, not %s", e.fstype, SFS_PROTO_FSTYPE);
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
	return SFS_EXIT_OK;
fail:
	free(real);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	return rc;
}

void mount_close(struct mount *m)
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
int ctl_open(const struct mount *m)
{
	struct statfs fs;
	struct stat st;
	int fd;

	fd = openat(m->fd, SFS_PROTO_CTL_FILE, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		return -die(SFS_EXIT_CTL_PERMISSION,
			    "cannot control %s: permission denied (only the mounting "
			    "user and root may)",
			    m->arg);
	if (fd < 0)
		return -not_mount(m->arg, "%s: %s", SFS_PROTO_CTL_FILE,
				  errno == ELOOP ? "a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0) {
		close(fd);
		return -not_mount(m->arg, "%s: %s", SFS_PROTO_CTL_FILE, strerror(errno));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != SFS_PROTO_CTL_MODE ||
	    st.st_uid != m->owner || st.st_dev != m->dev || fs.f_type != FUSE_SUPER_MAGIC) {
		close(fd);
		return -not_mount(m->arg,
				  "%s is not sessionfs's control file (type, mode %04o, "
				  "owner %u or device)",
				  SFS_PROTO_CTL_FILE, (unsigned int)(st.st_mode & 07777),
				  (unsigned int)st.st_uid);
	}
	return fd;
}

/*
 * Is @dir the root of a sessionfs mount: the top directory of its device,
 * with the control file in it (which only the mounting user and root may
 * open, but anyone may look up)?
 */
bool mount_root(const char *dir)
{
	char up[PATH_MAX + 4], ctl[PATH_MAX + sizeof(SFS_PROTO_CTL_FILE) + 1];
	struct stat st, pst;

	snprintf(up, sizeof(up), "%s/..", dir);
	/* "/.sessionfs" for "/": the root needs no separator of its own. */
	snprintf(ctl, sizeof(ctl), "%s/" SFS_PROTO_CTL_FILE, dir[0] == '/' && !dir[1] ? "" : dir);
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
		return SFS_EXIT_OK;
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
	return len < PATH_MAX ? SFS_EXIT_OK : die(SFS_EXIT_USAGE, "%s: path too long", arg);
}

/*
 * The session @arg names or is in: MOUNTPOINT/{sessions,archive}/ID, or any
 * path inside one (".", a file, a subdirectory), so that `sessionctl lock .`
 * works from within a session. The mount is the nearest directory above
 * that is a sessionfs mount's root. 0 with @t filled, or an exit code.
 */
int resolve(const char *arg, struct target *t)
{
	char path[PATH_MAX], *slash, *rel, *end;
	size_t idlen;
	int rc;

	if (!*arg || strlen(arg) >= PATH_MAX)
		return die(SFS_EXIT_USAGE, "bad session directory '%s'", arg);
	rc = absolute(arg, path);
	if (rc)
		return rc;
	/* Walk up to the mount root. */
	snprintf(t->mnt, sizeof(t->mnt), "%s", path);
	while (!mount_root(t->mnt)) {
		slash = strrchr(t->mnt, '/');
		if (!slash || slash == t->mnt)
			return not_mount(
				arg,
				"the path is not in a sessionfs mount (no mount root above it)");
		*slash = '\0';
	}
	rel = path + strlen(t->mnt);
	if (strncmp(rel, "/" SFS_SESSIONS_DIR "/", sizeof(SFS_SESSIONS_DIR) + 1) == 0)
		t->where = SFS_SESSIONS_DIR;
	else if (strncmp(rel, "/" SFS_ARCHIVE_DIR "/", sizeof(SFS_ARCHIVE_DIR) + 1) == 0)
		t->where = SFS_ARCHIVE_DIR;
	else
		return die(SFS_EXIT_CTL_NO_SESSION,
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
		return die(SFS_EXIT_CTL_NO_SESSION, "%s: no such session (ids look like INC-3f2a)",
			   arg);
	return SFS_EXIT_OK;
}
