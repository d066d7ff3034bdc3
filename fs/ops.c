/*
 * ops.c - the one table of FUSE low-level operations, and the connection
 * setup (init). Each op lives in an ops_*.c file by kind.
 */
#include "ops.h"

#include <syslog.h>

static void sfs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Room for 1 MiB requests; libfuse sizes max_pages from max_write. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	/* Every write reaches the store before it returns: no writeback cache. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(unsigned)FUSE_CAP_POSIX_ACL;
	/*
	 * The kernel clears set-id bits at write, truncate and chown, and we
	 * do what it misses (sfs_kill_setid). libfuse 3.14 sets this in want by
	 * default without ever telling the kernel; a libfuse that did would
	 * leave all of it to us.
	 */
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
}

/*
 * Every request pins the inodes it names (inode_fd.c) before its op runs,
 * so their backing descriptors stay open through it, and drops the pins
 * once it has been answered. A pin that fails (the node is gone, or
 * another node stands under its name) answers the request with its error.
 * RELEASE and RELEASEDIR use their handle's descriptor only, and FORGET
 * none: they pin nothing.
 */
static bool pin(fuse_req_t req, fuse_ino_t ino)
{
	int rc = sfs_inode_pin(sfs_inode_of(ino));

	if (rc < 0) {
		sfs_pin_release(0);
		sfs_reply_err(req, rc);
	}
	return rc == 0;
}

static bool pin2(fuse_req_t req, fuse_ino_t a, fuse_ino_t b)
{
	return pin(req, a) && pin(req, b);
}

static void served(void)
{
	sfs_pin_release(0);
}

static void w_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (pin(req, parent))
		sfs_op_lookup(req, parent, name);
	served();
}

static void w_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_getattr(req, ino, fi);
	served();
}

static void w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_setattr(req, ino, attr, to_set, fi);
	served();
}

static void w_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (pin(req, ino))
		sfs_op_readlink(req, ino);
	served();
}

static void w_statfs(fuse_req_t req, fuse_ino_t ino)
{
	if (pin(req, ino))
		sfs_op_statfs(req, ino);
	served();
}

static void w_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_opendir(req, ino, fi);
	served();
}

static void w_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_readdir(req, ino, size, off, fi);
	served();
}

static void w_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_readdirplus(req, ino, size, off, fi);
	served();
}

static void w_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_fsyncdir(req, ino, datasync, fi);
	served();
}

static void w_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (pin(req, parent))
		sfs_op_mkdir(req, parent, name, mode);
	served();
}

static void w_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (pin(req, parent))
		sfs_op_rmdir(req, parent, name);
	served();
}

static void w_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi)
{
	if (pin(req, parent))
		sfs_op_create(req, parent, name, mode, fi);
	served();
}

static void w_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_open(req, ino, fi);
	served();
}

static void w_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_read(req, ino, size, off, fi);
	served();
}

static void w_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_write(req, ino, buf, size, off, fi);
	served();
}

static void w_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_flush(req, ino, fi);
	served();
}

static void w_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_fsync(req, ino, datasync, fi);
	served();
}

static void w_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_fallocate(req, ino, mode, off, len, fi);
	served();
}

static void w_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		    struct fuse_file_info *fi)
{
	if (pin(req, ino))
		sfs_op_lseek(req, ino, off, whence, fi);
	served();
}

static void w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (pin(req, parent))
		sfs_op_unlink(req, parent, name);
	served();
}

static void w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	if (pin2(req, parent, newparent))
		sfs_op_rename(req, parent, name, newparent, newname, flags);
	served();
}

static void w_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	if (pin2(req, ino, newparent))
		sfs_op_link(req, ino, newparent, newname);
	served();
}

static void w_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	if (pin(req, parent))
		sfs_op_symlink(req, link, parent, name);
	served();
}

static void w_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (pin(req, parent))
		sfs_op_mknod(req, parent, name, mode, rdev);
	served();
}

static void w_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (pin(req, ino))
		sfs_op_getxattr(req, ino, name, size);
	served();
}

static void w_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		       size_t size, int flags)
{
	if (pin(req, ino))
		sfs_op_setxattr(req, ino, name, value, size, flags);
	served();
}

static void w_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (pin(req, ino))
		sfs_op_listxattr(req, ino, size);
	served();
}

static void w_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (pin(req, ino))
		sfs_op_removexattr(req, ino, name);
	served();
}

const struct fuse_lowlevel_ops sfs_ops = {
	.init = sfs_op_init,
	.lookup = w_lookup,
	.forget = sfs_op_forget,
	.forget_multi = sfs_op_forget_multi,
	.getattr = w_getattr,
	.setattr = w_setattr,
	.readlink = w_readlink,
	.statfs = w_statfs,
	.opendir = w_opendir,
	.readdir = w_readdir,
	.readdirplus = w_readdirplus,
	.releasedir = sfs_op_releasedir,
	.fsyncdir = w_fsyncdir,
	.mkdir = w_mkdir,
	.rmdir = w_rmdir,
	.create = w_create,
	.open = w_open,
	.read = w_read,
	.write = w_write,
	.flush = w_flush,
	.release = sfs_op_release,
	.fsync = w_fsync,
	.fallocate = w_fallocate,
	.lseek = w_lseek,
	.unlink = w_unlink,
	.rename = w_rename,
	.link = w_link,
	.symlink = w_symlink,
	.mknod = w_mknod,
	.getxattr = w_getxattr,
	.setxattr = w_setxattr,
	.listxattr = w_listxattr,
	.removexattr = w_removexattr,
};
