/*
 * ops_mknod.c - FUSE mknod: FIFOs, sockets (bind() of an AF_UNIX socket),
 * character and block devices, and regular files made by mknod(2); and the
 * file nodes they share with regular files made by create (ops_file.c).
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
#include "tree_ops.h"

#include <errno.h>

int sfs_make_filenode(struct sfs_inode *p, const char *name, const struct sfs_attrs *a,
		      const struct sfs_keys *keys, struct fuse_entry_param *e)
{
	struct sfs_tree_new n;
	int rc;

	if (p->bad)
		return -EIO;
	rc = sfs_tree_mknod(p->fd, p->id, name, a, keys, &n);
	if (rc < 0)
		return rc;
	/* The new node's inode keeps the read-write descriptor (inode.c). */
	rc = sfs_make_entry(p, n.en.backing, n.fd, keys, n.id, a, e);
	if (rc < 0)
		sfs_tree_undo(p->fd, &n);
	else
		sfs_name_is_new(e);
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
	return sfs_make_filenode(p, name, &a, keys, e);
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
