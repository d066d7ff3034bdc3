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

const struct fuse_lowlevel_ops sfs_ops = {
	.init = sfs_op_init,
	.lookup = sfs_op_lookup,
	.forget = sfs_op_forget,
	.forget_multi = sfs_op_forget_multi,
	.getattr = sfs_op_getattr,
	.setattr = sfs_op_setattr,
	.readlink = sfs_op_readlink,
	.statfs = sfs_op_statfs,
	.opendir = sfs_op_opendir,
	.readdir = sfs_op_readdir,
	.readdirplus = sfs_op_readdirplus,
	.releasedir = sfs_op_releasedir,
	.fsyncdir = sfs_op_fsyncdir,
	.mkdir = sfs_op_mkdir,
	.rmdir = sfs_op_rmdir,
	.create = sfs_op_create,
	.open = sfs_op_open,
	.read = sfs_op_read,
	.write = sfs_op_write,
	.flush = sfs_op_flush,
	.release = sfs_op_release,
	.fsync = sfs_op_fsync,
	.fallocate = sfs_op_fallocate,
	.lseek = sfs_op_lseek,
	.unlink = sfs_op_unlink,
	.rename = sfs_op_rename,
	.link = sfs_op_link,
	.symlink = sfs_op_symlink,
	.mknod = sfs_op_mknod,
	.getxattr = sfs_op_getxattr,
	.setxattr = sfs_op_setxattr,
	.listxattr = sfs_op_listxattr,
	.removexattr = sfs_op_removexattr,
};
