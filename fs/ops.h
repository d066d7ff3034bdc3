/*
 * ops.h - helpers shared by the FUSE operation files (ops_*.c): error
 * mapping, entry replies, per-open-file state. Only ops_*.c include it.
 */
#ifndef SFS_OPS_H
#define SFS_OPS_H

#include "fs.h"

#include <dirent.h>

/*
 * Seconds the kernel may cache names and attributes of nodes inside a
 * session (ops_node.c, cache_timeout): long enough that a listing's entries
 * are still valid when ls, cat or rm come to them.
 */
#define SFS_NODE_TIMEOUT 10.0

/* State of one open regular file inside a session. */
struct sfs_fh {
	int fd; /* backing file, read-write */
	struct sfs_session *sess;
	pthread_mutex_t mu; /* the five fields below (special.c; doc/locking.md) */
	char *buf;	    /* special files: metadata.json being written, or
			     * the unterminated tail of an events.jsonl line */
	size_t len, cap;
	bool dirty; /* metadata.json: buf differs from the stored document */
	bool lost;  /* a lock wiped what buf held: writes and close fail (EIO) */
	struct sfs_fh *held_prev, *held_next; /* special.c: handles whose buf is in use */
	atomic_bool held;		      /* on that list; written under held_mu */
	struct sfs_fh *all_prev, *all_next;   /* ops_file.c: every handle not yet released */
};

/* State of one open directory. */
struct sfs_dh {
	DIR *d;	   /* backing directory stream (NULL for the mount root) */
	int ahead; /* entries of d whose headers were prefetched (ops_dir.c) */
};

/* A positive errno for a reply: authentication failures become EIO. */
int sfs_errno_out(int rc);

/* Reply an error (rc < 0) to @req. */
void sfs_reply_err(fuse_req_t req, int rc);

/*
 * The node of entry @e was just created (or linked) under a name that is
 * not durable yet; sfs_sync_name, at an fsync or fsyncdir of the node
 * (backing descriptor @fd), makes it so the first time: an fsync of the
 * backing directory that holds the node, as ext4 commits a new file's
 * entry with its first fsync. 0 or -errno.
 */
void sfs_name_is_new(const struct fuse_entry_param *e);
int sfs_sync_name(struct sfs_inode *in, int fd);

/*
 * Fill @e for the node just created or found at @fd (taken over) in session
 * directory @parent under backing name @backing (NULL: none yet, as an
 * unlinked metadata.json). @attrs and @id, if not NULL, are the new node's
 * (no header read needed). 0 or -errno.
 */
int sfs_make_entry(struct sfs_inode *parent, const char *backing, int fd,
		   const struct sfs_keys *keys, const unsigned char *id,
		   const struct sfs_attrs *attrs, struct fuse_entry_param *e);

/*
 * The entry of backing node @backing in directory @dirfd (the backing
 * directory of @parent, or a descriptor of it), as LOOKUP makes it: the
 * inode the table holds, or a new one. 0 with @e, or -errno.
 */
int sfs_entry_at(struct sfs_inode *parent, int dirfd, const char *backing,
		 const struct sfs_keys *keys, struct fuse_entry_param *e);

/* Look @name up in session directory @parent: 0 with @e, or -errno. */
int sfs_lookup_node(struct sfs_inode *parent, const char *name, const struct sfs_keys *keys,
		    struct fuse_entry_param *e);

/* After an entry for @name in @parent: mark a special file, uncached. */
void sfs_mark_special(struct sfs_inode *parent, const char *name, const struct sfs_keys *keys,
		      struct fuse_entry_param *e);

/* Enter @in's session and load @in's header: 0 or -errno (session left on error). */
int sfs_enter_node(struct sfs_inode *in, const struct sfs_keys **keys);

/*
 * sfs_enter_node() for a directory @p that a node is made in: -ENOTDIR for
 * the control file, -EPERM outside sessions.
 */
int sfs_enter_parent(struct sfs_inode *p, const struct sfs_keys **keys);

/* Is @in a directory inside a session (or a session root)? */
static inline bool sfs_in_session(const struct sfs_inode *in)
{
	return in->kind == SFS_INODE_SESSION || in->kind == SFS_INODE_NODE;
}

/*
 * Set-id bits the kernel leaves to us. libfuse 3.14 never passes
 * FUSE_CAP_HANDLE_KILLPRIV to the kernel (and we do not want it), so the
 * kernel clears S_ISUID, and S_ISGID with S_IXGRP, itself at write, truncate
 * and chown. What it misses, and ext4 does: S_ISGID without S_IXGRP when the
 * caller is not in the file's group (Linux 6.2's setattr_should_drop_sgid),
 * and everything at open(O_TRUNC), which with atomic O_TRUNC sends no
 * SETATTR. sfs_kill_setid: @mode without what ext4 drops for the caller of
 * @req on a regular file of group @gid; @all adds the kernel's part (for
 * O_TRUNC). Callers with uid 0 (taken as having CAP_FSETID) keep them.
 * sfs_kill_setid_node: the same, stored into @in (@fd: an open backing
 * descriptor or -1); 0 or -errno.
 */
mode_t sfs_kill_setid(fuse_req_t req, mode_t mode, gid_t gid, bool all);
int sfs_kill_setid_node(fuse_req_t req, struct sfs_inode *in, int fd, bool all,
			const struct sfs_keys *keys);

/* Owner and group of a new node in @parent, per the request (setgid dirs honoured). */
void sfs_new_owner(fuse_req_t req, struct sfs_inode *parent, struct sfs_attrs *a);

/*
 * ops_mknod.c: make file node @name in session directory @p: a backing
 * regular file with a header sealing @a (owner set by the caller),
 * published whole (tree_ops.h). Fills @e; the new inode keeps the backing
 * file's read-write descriptor. 0 or -errno.
 */
int sfs_make_filenode(struct sfs_inode *p, const char *name, const struct sfs_attrs *a,
		      const struct sfs_keys *keys, struct fuse_entry_param *e);

/*
 * ops_dir.c: the hooks of a namespace transaction (tree_ops.h) in session
 * directory @p: note a node losing its last name in @xv (ops_xattr.c), log
 * what the transaction left behind.
 */
struct sfs_tree_hooks;
struct sfs_node_xattr_victim;
struct sfs_ns_hook {
	struct sfs_inode *p;
	struct sfs_node_xattr_victim *xv;
	struct sfs_inode *victim;     /* the inode losing the name, pinned (inode_fd.c), or NULL */
	char vname[SFS_NAME_MAX + 1]; /* that backing name */
};
void sfs_ns_hooks(struct sfs_tree_hooks *h, struct sfs_ns_hook *arg, struct sfs_inode *p,
		  struct sfs_node_xattr_victim *xv);

/* Operations, one file per kind. */
void sfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void sfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void sfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void sfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi);
void sfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void sfs_op_statfs(fuse_req_t req, fuse_ino_t ino);

void sfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void sfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void sfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void sfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void sfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);

void sfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi);
void sfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void sfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi);
void sfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void sfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void sfs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void sfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		      struct fuse_file_info *fi);

void sfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void sfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags);
void sfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void sfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);

void sfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);

/* ops_xattr.c: user.* extended attributes (-o xattr), and their end with the node. */
void sfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void sfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags);
void sfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void sfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* A node about to lose a name, and whether its attributes go with it. */
struct sfs_node_xattr_victim {
	bool armed; /* its last link (a directory's only one) and the session stores attributes */
	bool file;  /* a regular file: may still be open */
	dev_t dev;  /* its backing identity */
	ino_t ino;
	unsigned char id[SFS_ID_BYTES]; /* its node id, read from its header */
};

/*
 * Before the entry @backing of session directory @p is removed (unlink,
 * rmdir, or replaced by rename): note its node if that removes its last
 * link. Costs one faccessat when no node of the session has attributes.
 */
void sfs_node_xattr_victim(struct sfs_inode *p, const char *backing,
			   struct sfs_node_xattr_victim *v);
/* After that removal succeeded: drop the node's attributes, or leave them to its last close. */
void sfs_node_xattr_gone(struct sfs_session *s, const struct sfs_node_xattr_victim *v);
/*
 * After the last file handle of @in is released (@fd: its descriptor, still
 * open): drop its attributes if its last link is gone. Not for an inode
 * from before a rekey (sfs_inode_old): its link went with the old
 * container, and its node id's attributes are the re-keyed file's.
 */
void sfs_node_xattr_last_close(struct sfs_inode *in, int fd);

#endif
