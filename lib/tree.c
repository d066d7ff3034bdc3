/*
 * tree.c - directory headers and encrypted names on the backing filesystem;
 * see tree.h. Must not know sessions, JSON or FUSE.
 */
#include "tree.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Write header @hdr to @dirfd's .sfsdir; with @sync, fsync it before the close. */
static int write_header(int dirfd, int flags, bool sync, const unsigned char hdr[SFS_HDR_BYTES])
{
	int fd, rc;

	fd = openat(dirfd, SFS_DIRHDR_NAME, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_pwrite_all(fd, hdr, SFS_HDR_BYTES, 0);
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (close(fd) < 0 && rc == 0)
		rc = sfs_neg_errno();
	return rc;
}

/*
 * A new directory's header must survive a power cut if its name does. Its
 * copy in the xattr user.sfsdir is metadata of the directory's inode, which
 * the backing filesystem's journal (ext4, XFS) commits no later than the
 * rename that publishes the directory, so no fsync is needed (one per mkdir
 * doubled the time of an untar); .sfsdir's bytes may be lost, and
 * sfs_tree_dir_load falls back on the copy. Where user xattrs are not
 * supported, .sfsdir and the directory are fsynced instead.
 */
int sfs_tree_dir_init(int dirfd, const unsigned char id[SFS_ID_BYTES],
		      const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	unsigned char hdr[SFS_HDR_BYTES];
	int fd, rc;

	sfs_fmt_header_pack(hdr, SFS_MAGIC_DIR, id, attrs, keys);
	rc = write_header(dirfd, O_CREAT | O_EXCL, false, hdr);
	if (rc < 0)
		return rc;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	rc = fsetxattr(fd, SFS_DIRHDR_XATTR, hdr, sizeof(hdr), 0) < 0 ? sfs_neg_errno() : 0;
	close(fd);
	if (rc == -EOPNOTSUPP || rc == -ENOTSUP)
		rc = sfs_tree_dir_sync(dirfd);
	return rc;
}

int sfs_tree_dir_sync(int dirfd)
{
	int rc = sfs_fsync_at(dirfd, SFS_DIRHDR_NAME, O_NOFOLLOW);

	return rc < 0 ? rc : sfs_fsync_dirfd(dirfd);
}

int sfs_tree_dir_store(int dirfd, const unsigned char id[SFS_ID_BYTES],
		       const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	unsigned char hdr[SFS_HDR_BYTES];

	sfs_fmt_header_pack(hdr, SFS_MAGIC_DIR, id, attrs, keys);
	return write_header(dirfd, 0, false, hdr);
}

int sfs_tree_dir_load(int dirfd, unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
		      const struct sfs_keys *keys)
{
	static const unsigned char zero[SFS_HDR_BYTES];
	unsigned char hdr[SFS_HDR_BYTES];
	ssize_t n = sfs_read_small(dirfd, SFS_DIRHDR_NAME, hdr, sizeof(hdr));
	int fd, err;

	if (n == -ENOENT)
		return -EBADMSG;
	if (n < 0)
		return (int)n;
	/* Bytes a power cut lost (sfs_tree_dir_init): the copy, as authenticated. */
	if (n < (ssize_t)sizeof(hdr) || memcmp(hdr, zero, sizeof(hdr)) == 0) {
		fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return sfs_neg_errno();
		n = fgetxattr(fd, SFS_DIRHDR_XATTR, hdr, sizeof(hdr));
		err = errno;
		close(fd);
		if (n < 0)
			return err == ENODATA || err == EOPNOTSUPP || err == ERANGE ? -EBADMSG
										    : -err;
	}
	return sfs_fmt_header_unpack(hdr, (size_t)n, SFS_MAGIC_DIR, id, attrs, keys) ? -EBADMSG : 0;
}

static void sidecar_name(char out[SFS_NAME_MAX + 8], const char *backing)
{
	snprintf(out, SFS_NAME_MAX + 8, "%s%s", backing, SFS_SIDECAR_SUFFIX);
}

/*
 * A sidecar is never rewritten in place: one that already holds the name
 * (a rename onto an existing entry, a second link) stays as it is; any
 * other is written whole under an internal name, fsynced, renamed over,
 * and the rename fsynced, so that it is durable before the caller
 * publishes the node that needs it, and a crash at any point leaves the
 * old sidecar or the new one (or an internal leftover), never a torn one.
 */
int sfs_tree_name_add(int dirfd, const struct sfs_ename *en)
{
	char side[SFS_NAME_MAX + 8], tmp[SFS_TMPNAME_MAX], old[SFS_ENAME_MAX];
	size_t len;
	ssize_t n;
	int fd, rc;

	if (!en->is_long)
		return 0;
	sidecar_name(side, en->backing);
	len = strlen(en->full);
	n = sfs_read_small(dirfd, side, old, sizeof(old));
	if (n == (ssize_t)len && memcmp(old, en->full, len) == 0)
		return 0;
	sfs_tree_tmpname(tmp);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_pwrite_all(fd, en->full, len, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (close(fd) < 0 && rc == 0)
		rc = sfs_neg_errno();
	if (rc == 0 && renameat(dirfd, tmp, dirfd, side) < 0)
		rc = sfs_neg_errno();
	if (rc < 0) {
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	return sfs_fsync_dirfd(dirfd);
}

int sfs_tree_name_del(int dirfd, const struct sfs_ename *en)
{
	char side[SFS_NAME_MAX + 8];

	if (!en->is_long)
		return 0;
	sidecar_name(side, en->backing);
	if (unlinkat(dirfd, side, 0) < 0 && errno != ENOENT)
		return sfs_neg_errno();
	return 0;
}

int sfs_tree_backing(char out[SFS_NAME_MAX + 1], const char *name,
		     const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	struct sfs_ename en;
	int rc = sfs_fmt_name_encrypt(&en, name, dirid, keys);

	if (rc == 0)
		memcpy(out, en.backing, sizeof(en.backing));
	return rc;
}

int sfs_tree_name_read(int dirfd, const char *backing, const unsigned char dirid[SFS_ID_BYTES],
		       const struct sfs_keys *keys, char out[SFS_NAME_MAX + 1])
{
	char side[SFS_NAME_MAX + 8], full[SFS_ENAME_MAX];
	ssize_t n;

	switch (sfs_fmt_name_class(backing)) {
	case SFS_NAME_SHORT:
		return sfs_fmt_name_decrypt(out, backing, dirid, keys);
	case SFS_NAME_LONG:
		sidecar_name(side, backing);
		n = sfs_read_small(dirfd, side, full, sizeof(full) - 1);
		if (n < 0)
			return n == -ENOENT ? -EBADMSG : (int)n;
		full[n] = '\0';
		if (!sfs_fmt_longname_matches(backing, full))
			return -EBADMSG;
		return sfs_fmt_name_decrypt(out, full, dirid, keys);
	default:
		return -ENOENT;
	}
}

void sfs_tree_internal_name(char *out, const char *prefix)
{
	unsigned char rnd[8];
	char hex[17];

	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(out, SFS_TMPNAME_MAX, "%s%s", prefix, hex);
}

bool sfs_tree_has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

void sfs_tree_tmpname(char *out)
{
	sfs_tree_internal_name(out, SFS_NEW_PREFIX);
}

/*
 * What a crash can leave in a directory, besides its header: a node never
 * published (.sfs-new-*), a directory retired but not yet removed
 * (.sfs-gone-*), the sidecar of a long name whose node is gone. Any other
 * name (a node, or something not ours) keeps the directory.
 */
static bool is_leftover(const char *name)
{
	return strcmp(name, SFS_DIRHDR_NAME) == 0 || sfs_tree_has_prefix(name, SFS_NEW_PREFIX) ||
	       sfs_tree_has_prefix(name, SFS_GONE_PREFIX) ||
	       sfs_fmt_name_class(name) == SFS_NAME_SIDECAR;
}

/*
 * Call @fn on every entry but "." and ".." of directory @name in @dirfd,
 * until it returns non-zero; that, 0, or -errno (a failed listing).
 */
static int each_entry(int parent, const char *name, int (*fn)(int dfd, const char *entry))
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = sfs_neg_errno();
		if (fd >= 0)
			close(fd);
		return rc;
	}
	errno = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = fn(dirfd(d), de->d_name);
		errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = sfs_neg_errno();
	closedir(d);
	return rc;
}

/*
 * The caller holds the directory (the kernel locks it for rmdir and rename),
 * so no leftover is a step in progress; the user sees the directory empty.
 */
static int keeps_dir(int dfd, const char *entry)
{
	(void)dfd;
	return is_leftover(entry) ? 0 : -ENOTEMPTY;
}

static int remove_leftover(int dfd, const char *entry)
{
	if (is_leftover(entry))
		sfs_remove_tree(dfd, entry); /* a failure shows in the rmdir below */
	return 0;
}

int sfs_tree_dir_retire(int dirfd, const char *backing, char *gone)
{
	int rc = each_entry(dirfd, backing, keeps_dir);

	if (rc < 0)
		return rc;
	sfs_tree_internal_name(gone, SFS_GONE_PREFIX);
	return renameat2(dirfd, backing, dirfd, gone, RENAME_NOREPLACE) < 0 ? sfs_neg_errno() : 0;
}

int sfs_tree_dir_unretire(int dirfd, const char *gone, const char *backing)
{
	return sfs_tree_publish(dirfd, gone, backing);
}

int sfs_tree_dir_reap(int dirfd, const char *gone)
{
	char hdr[SFS_TMPNAME_MAX + sizeof(SFS_DIRHDR_NAME) + 1];
	int rc;

	/* Usually the header is all there is: no listing needed. */
	snprintf(hdr, sizeof(hdr), "%s/%s", gone, SFS_DIRHDR_NAME);
	if (unlinkat(dirfd, hdr, 0) < 0 && errno != ENOENT)
		return sfs_neg_errno();
	if (unlinkat(dirfd, gone, AT_REMOVEDIR) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return sfs_neg_errno();
	rc = each_entry(dirfd, gone, remove_leftover);
	if (rc == 0 && unlinkat(dirfd, gone, AT_REMOVEDIR) < 0)
		rc = sfs_neg_errno();
	return rc;
}

int sfs_tree_publish(int dirfd, const char *tmp, const char *backing)
{
	return renameat2(dirfd, tmp, dirfd, backing, RENAME_NOREPLACE) < 0 ? sfs_neg_errno() : 0;
}

int sfs_tree_node_id(int dirfd, const char *backing, mode_t type, unsigned char id[SFS_ID_BYTES])
{
	unsigned char hdr[SFS_HDR_BYTES];
	ssize_t n;
	int fd;

	if (S_ISREG(type)) {
		n = sfs_read_small(dirfd, backing, hdr, sizeof(hdr));
	} else if (S_ISDIR(type)) {
		fd = openat(dirfd, backing, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sfs_neg_errno();
		n = sfs_read_small(fd, SFS_DIRHDR_NAME, hdr, sizeof(hdr));
		close(fd);
	} else {
		return -EINVAL;
	}
	if (n < 0)
		return (int)n;
	return sfs_fmt_header_id(hdr, (size_t)n, id) < 0 ? -EBADMSG : 0;
}
