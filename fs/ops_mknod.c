/*
 * ops_mknod.c - FUSE mknod: FIFOs, sockets (bind() of an AF_UNIX socket),
 * character and block devices, and regular files made by mknod(2); and the
 * file nodes they share with long symlinks (ops_ns.c).
 *
 * A file node is a backing regular file (0600, like every store file) whose
 * sealed header says what it is: mode with its type bits, owner, rdev. A
 * FIFO, socket or device node is its header alone; the kernel opens, reads
 * and writes those itself (a FIFO's pipe, a device's driver), so no request
 * ever asks for their content. Knows nothing of blocks or of the session
 * files' rules beyond refusing their names for what cannot be them.
 */
#include "ops.h"
#include "special.h"
#include "fileio.h"
#include "symlink.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int sfs_make_filenode(struct sfs_inode *p, const char *name, const struct sfs_attrs *a,
		      const char *target, size_t len, const struct sfs_keys *keys,
		      struct fuse_entry_param *e)
{
	unsigned char id[SFS_ID_BYTES];
	char tmp[SFS_TMPNAME_MAX];
	struct sfs_ename en;
	int fd, rc;

	if (p->bad)
		return -EIO;
	rc = sfs_fmt_name_encrypt(&en, name, p->id, keys);
	if (rc == 0)
		rc = sfs_tree_name_add(p->fd, &en);
	if (rc < 0)
		return rc;
	/* Built under an internal name, header (and target) first, then published. */
	sfs_tree_tmpname(tmp);
	fd = openat(p->fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = sfs_neg_errno();
		sfs_tree_name_del(p->fd, &en);
		return rc;
	}
	sfs_crypto_random(id, sizeof(id));
	rc = sfs_file_init(fd, id, a, keys);
	if (rc == 0 && target)
		rc = sfs_symlink_write_long(fd, id, target, len, keys);
	if (rc == 0)
		rc = sfs_tree_publish(p->fd, tmp, en.backing);
	if (rc < 0) {
		close(fd);
		unlinkat(p->fd, tmp, 0);
		if (rc != -EEXIST)
			sfs_tree_name_del(p->fd, &en);
		return rc;
	}
	/* The new node's inode keeps the read-write descriptor (inode.c). */
	rc = sfs_make_entry(p, fd, keys, id, a, e);
	if (rc < 0) {
		unlinkat(p->fd, en.backing, 0);
		sfs_tree_name_del(p->fd, &en);
	} else {
		sfs_name_is_new(e);
	}
	return rc;
}

/*
 * At a session root, metadata.json can only be a valid document (an empty
 * file is none: EINVAL, as a refused write) and events.jsonl only the log
 * unlock made (EPERM); neither can be a FIFO, socket or device (EPERM).
 */
static int check_special_name(struct sfs_inode *p, const char *name, mode_t type)
{
	switch (sfs_special_of(p, name)) {
	case SFS_SP_META:
		return type == S_IFREG ? -EINVAL : -EPERM;
	case SFS_SP_EVENTS:
		return -EPERM;
	default:
		return 0;
	}
}

static int do_mknod(fuse_req_t req, struct sfs_inode *p, const char *name, mode_t mode, dev_t rdev,
		    const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	mode_t type = mode & S_IFMT;
	struct sfs_attrs a = {.mode = type | (mode & 07777)};
	int rc;

	switch (type) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL; /* the kernel sends no other type */
	}
	rc = check_special_name(p, name, type);
	if (rc < 0)
		return rc;
	sfs_new_owner(req, p, &a);
	/* ext4 keeps a device number for device nodes only. */
	if (type == S_IFCHR || type == S_IFBLK)
		a.rdev = (uint32_t)rdev; /* as FUSE carries it: the kernel's 32-bit encoding */
	return sfs_make_filenode(p, name, &a, NULL, 0, keys, e);
}

void sfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct sfs_inode *p = sfs_inode_of(parent);
	const struct sfs_keys *keys;
	struct fuse_entry_param e;
	int rc;

	rc = sfs_enter_parent(p, &keys);
	if (rc == 0) {
		rc = do_mknod(req, p, name, mode, rdev, keys, &e);
		if (rc == 0) {
			sfs_mark_special(p, name, keys, &e);
			sfs_session_changed(p->sess);
		}
		sfs_session_leave(p->sess);
	}
	if (rc < 0)
		sfs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}
