/*
 * keyfile.c - a session container's key file in the store: read it, and
 * change it under its edit lock (store.h, struct sfs_keyedit).
 *
 * Two writers of one key file (two requests of one mount, or two mounts of
 * a shared store) must not lose each other's slot: a change reads the file
 * under an OFD write lock on the file itself, then replaces it atomically
 * (temporary, fsync, rename, fsync of the directory). A waiter that wakes
 * on a file already renamed away locks the new one and reads again. A
 * reader (unlock, list) takes no lock: the rename gives it the old or the
 * new file, whole. The byte layout is format.c's; this file knows where
 * the key file lives and how it is replaced, nothing of slots' meaning.
 */
#include "format.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read and parse the key file open as @fd into @e. 0 or -errno. */
static int read_fd(int fd, struct sfs_keyedit *e)
{
	unsigned char buf[SFS_KEYFILE_MAX + 1];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	e->mtime = st.st_mtime;
	n = sfs_pread_all(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return (int)n;
	return sfs_fmt_keyfile_parse(buf, (size_t)n, &e->kf);
}

int sfs_store_keyfile_read(int cfd, struct sfs_keyedit *e)
{
	int fd = openat(cfd, SFS_KEY_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

	e->fd = -1;
	if (fd < 0)
		return errno == ENOENT ? -EUCLEAN : sfs_neg_errno();
	rc = read_fd(fd, e);
	close(fd);
	return rc;
}

int sfs_store_keyfile_begin(int cfd, struct sfs_keyedit *e)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat held, now;
	int fd, rc;

	e->fd = -1;
	for (;;) {
		fd = openat(cfd, SFS_KEY_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return errno == ENOENT ? -EUCLEAN : sfs_neg_errno();
		if (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
			rc = sfs_neg_errno();
			close(fd);
			return rc;
		}
		/* Still the key file, or did the writer we waited for rename a new one in? */
		if (fstat(fd, &held) < 0 ||
		    fstatat(cfd, SFS_KEY_NAME, &now, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = sfs_neg_errno();
			close(fd);
			return rc == -ENOENT ? -EUCLEAN : rc;
		}
		if (held.st_ino == now.st_ino && held.st_dev == now.st_dev)
			break;
		close(fd);
	}
	rc = read_fd(fd, e);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	e->fd = fd;
	return 0;
}

int sfs_store_keyfile_commit(int cfd, const struct sfs_keyedit *e)
{
	unsigned char out[SFS_KEYFILE_MAX];
	ssize_t n = sfs_fmt_keyfile_pack(out, &e->kf);

	if (n < 0)
		return (int)n;
	return sfs_write_atomic(cfd, SFS_KEY_NAME, out, (size_t)n);
}

void sfs_store_keyfile_end(struct sfs_keyedit *e)
{
	if (e->fd >= 0)
		close(e->fd); /* gives the edit lock back */
	e->fd = -1;
	sodium_memzero(&e->kf, sizeof(e->kf));
}
