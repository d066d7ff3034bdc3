/*
 * symlink.c - reading and writing symlink targets in the store; see
 * symlink.h. Must not know names, sessions, JSON or FUSE.
 */
#include "symlink.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(SFS_SYMLINK_LONG_MAX <= SFS_BLOCK, "a long target is one content block");

int sfs_symlink_read_short(int fd, char out[PATH_MAX], const struct sfs_keys *keys)
{
	char enc[PATH_MAX];
	ssize_t n;
	int rc;

	out[0] = '\0';
	n = readlinkat(fd, "", enc, sizeof(enc) - 1);
	if (n < 0)
		return sfs_neg_errno();
	enc[n] = '\0';
	rc = sfs_fmt_symlink_decode(out, PATH_MAX, enc, keys);
	/* What the backing link holds is ours: too long for a target means damaged. */
	return rc < 0 ? -EBADMSG : 0;
}

/* The long form's one block: nonce | sealed target | tag at offset SFS_HDR_BYTES. */
int sfs_symlink_write_long(int fd, const unsigned char id[SFS_ID_BYTES], const char *target,
			   size_t len, const struct sfs_keys *keys)
{
	unsigned char block[SFS_CBLOCK];

	if (!sfs_symlink_is_long(len) || len > SFS_SYMLINK_LONG_MAX)
		return -ENAMETOOLONG;
	int rc = sfs_fmt_block_seal1(block, (const unsigned char *)target, len, id, 0, keys);

	if (rc < 0)
		return rc;
	return sfs_pwrite_all(fd, block, len + SFS_SEAL_OVERHEAD, sfs_fmt_block_offset(0));
}

int sfs_symlink_read_long(int fd, const unsigned char id[SFS_ID_BYTES], char out[PATH_MAX],
			  size_t *len, const struct sfs_keys *keys)
{
	unsigned char block[SFS_CBLOCK];
	uint64_t plain;
	struct stat st;
	ssize_t n;
	int rc;

	out[0] = '\0';
	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	if (sfs_fmt_plain_size((uint64_t)st.st_size, &plain) < 0 || !sfs_symlink_long_size(plain))
		return -EBADMSG; /* cut, grown, or no target of this form */
	n = sfs_pread_all(fd, block, (size_t)plain + SFS_SEAL_OVERHEAD, sfs_fmt_block_offset(0));
	if (n < 0)
		return (int)n;
	if ((size_t)n != plain + SFS_SEAL_OVERHEAD)
		return -EBADMSG; /* cut since the fstat */
	rc = sfs_fmt_block_open1((unsigned char *)out, block, (size_t)n, id, 0, keys);
	if (rc == 0 && memchr(out, '\0', (size_t)plain))
		rc = -EBADMSG; /* never written: a target is a C string */
	if (rc < 0) {
		sodium_memzero(out, PATH_MAX);
		return -EBADMSG;
	}
	out[plain] = '\0';
	if (len)
		*len = (size_t)plain;
	return 0;
}
