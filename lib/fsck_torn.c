/*
 * fsck_torn.c - fsck.sessionfs's finding for a regular file torn inside its
 * last block: the backing file ends a few bytes into a block (a size no file
 * has), or its last, partial block fails authentication while every block
 * before it opens. Both are what a crash during a write of that block leaves
 * (doc/format.md, "Tail record"); but a last block that fails with a size a
 * file has may as well be damage (a flipped byte), so it is called torn only
 * when its tail record says a write of it was in progress; else it is
 * reported as a content block that fails. The finding says which block, which
 * plaintext bytes, what the stored bytes are, and whether the file's tail
 * record can put the block back. The repair is the one a mount's first open
 * makes (fileio.c's sfs_file_recover_tail), with one step more: the torn
 * block's stored bytes are first copied to torn.kept-<16 hex> in the
 * container, so nothing is deleted; a run after one a kill or crash
 * interrupted completes the kept file it left, and keeps nothing twice. Without a usable record
 * there is no repair: the file is left as it is, its last block reading as EIO.
 *
 * Store layer (lib/fsck.h): blocks and tail records are format.c's and
 * fileio.c's. Nothing of terminals, JSON output or FUSE.
 */
#include "fileio.h"
#include "format.h"
#include "fsck.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct torn_arg {
	int dirfd;
	const char *name;
	unsigned char id[SFS_ID_BYTES];
	bool sparse;
	uint64_t block;
};

#define TORN_KEPT "torn.kept-"

/*
 * A repair of this block that a kill or crash interrupted may have kept its
 * bytes already: a torn.kept-<16 hex> of the container whose bytes and the
 * @len bytes @buf to keep are one a prefix of the other (killed while the
 * file was written; or after the block's cut, which leaves a prefix of the
 * torn bytes). Its name into @name and size into *@have (the longest if
 * several); 1, or 0 if there is none.
 */
static int torn_kept_find(struct sfs_fsck_sess *s, const unsigned char *buf, size_t len,
			  char name[32], size_t *have)
{
	int dfd = openat(s->cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	unsigned char k[SFS_CBLOCK];
	struct dirent *de;
	int found = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		struct stat st;
		size_t i, n;
		int fd;

		if (strlen(nm) != strlen(TORN_KEPT) + 16 || strncmp(nm, TORN_KEPT, 10) != 0)
			continue;
		for (i = strlen(TORN_KEPT); nm[i] && strchr("0123456789abcdef", nm[i]); i++)
			;
		if (nm[i])
			continue;
		fd = openat(s->cfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= SFS_CBLOCK &&
		    (!found || (size_t)st.st_size > *have)) {
			n = (size_t)st.st_size < len ? (size_t)st.st_size : len;
			if (sfs_pread_all(fd, k, n, 0) == (ssize_t)n && memcmp(k, buf, n) == 0) {
				snprintf(name, 32, "%s", nm);
				*have = (size_t)st.st_size;
				found = 1;
			}
		}
		close(fd);
	}
	closedir(d);
	return found;
}

/*
 * Is the file @fd as fix_torn found it (@st, its torn block's @len stored
 * bytes @buf at @off)? A repair that failed before the recovery changed
 * anything leaves it so: the copy it kept is not needed (and would hold
 * rekey up). One that cut the file has changed it: the copy stays.
 */
static bool torn_unchanged(int fd, const struct stat *st, const unsigned char *buf, size_t len,
			   uint64_t off)
{
	unsigned char now[SFS_CBLOCK];
	struct stat cur;
	bool same;

	if (fstat(fd, &cur) < 0 || cur.st_size != st->st_size)
		return false;
	same = sfs_pread_all(fd, now, len, off) == (ssize_t)len && memcmp(now, buf, len) == 0;
	sodium_memzero(now, sizeof(now));
	return same;
}

/* Keep the torn block's stored bytes in the container, then put the block back. */
static int fix_torn(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct torn_arg *a = arg;
	struct sfs_file f = {.keys = s->keys, .sparse = a->sparse};
	unsigned char buf[SFS_CBLOCK], rnd[8];
	char hex[17], kept[32];
	uint64_t off = sfs_fmt_block_offset(a->block), was, now;
	struct stat st;
	size_t len, have = 0;
	bool made = false;
	int kfd, rc;

	(void)c;
	f.fd = openat(a->dirfd, a->name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (f.fd < 0)
		return sfs_neg_errno();
	memcpy(f.id, a->id, SFS_ID_BYTES);
	if (fstat(f.fd, &st) < 0 || (uint64_t)st.st_size <= off ||
	    (uint64_t)st.st_size - off > SFS_CBLOCK) {
		rc = -ESTALE; /* changed since it was checked */
		goto out;
	}
	len = (size_t)((uint64_t)st.st_size - off);
	if (sfs_pread_all(f.fd, buf, len, off) != (ssize_t)len) {
		rc = -EIO;
		goto out;
	}
	/* Kept already by a run a kill or crash interrupted: complete that file. */
	if (torn_kept_find(s, buf, len, kept, &have)) {
		kfd = openat(s->cfd, kept, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		sfs_crypto_random(rnd, sizeof(rnd));
		sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
		snprintf(kept, sizeof(kept), TORN_KEPT "%s", hex);
		kfd = openat(s->cfd, kept, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			     0600);
		made = kfd >= 0;
	}
	if (kfd < 0) {
		rc = sfs_neg_errno();
		goto out;
	}
	rc = have < len ? sfs_pwrite_all(kfd, buf + have, len - have, have) : 0;
	if (rc == 0 && fsync(kfd) < 0)
		rc = sfs_neg_errno();
	close(kfd);
	if (rc == 0)
		rc = sfs_fsync_dirfd(s->cfd);
	if (rc == 0) {
		rc = sfs_file_recover_tail(&f, s->rootfd, &was, &now);
		rc = rc == 1 ? 0 : rc == 0 ? -ESTALE : rc;
	}
	/* A failure that left the file as it was: the copy made here is not needed. */
	if (rc < 0 && made && torn_unchanged(f.fd, &st, buf, len, off))
		unlinkat(s->cfd, kept, 0);
out:
	close(f.fd);
	return rc;
}

void sfs_fsck_torn(struct sfs_fsck_sess *s, int dirfd, const char *name, int fd,
		   const unsigned char id[SFS_ID_BYTES], bool sparse, uint64_t size,
		   const char *path, bool plain)
{
	struct torn_arg a; /* sfs_fsck_add repairs (or not) before it returns */
	struct sfs_file f = {.fd = fd, .keys = s->keys, .sparse = sparse};
	uint64_t body = size - SFS_HDR_BYTES, b = body / SFS_CBLOCK, rest = body % SFS_CBLOCK;
	uint64_t rb = 0;
	size_t rlen = 0;
	char state[200], rep[300];
	int rc;

	memcpy(f.id, id, SFS_ID_BYTES);
	rc = sfs_file_tail_probe(&f, s->rootfd, &rb, &rlen);
	if (rest <= SFS_SEAL_OVERHEAD)
		snprintf(state, sizeof(state),
			 "the backing file ends %llu stored bytes into it (%llu bytes: a size no "
			 "file has, a block holds at least %d)",
			 (unsigned long long)rest, (unsigned long long)size, SFS_SEAL_OVERHEAD + 1);
	else
		snprintf(state, sizeof(state),
			 "its %llu stored bytes (%llu plaintext bytes by the file's size) fail "
			 "authentication",
			 (unsigned long long)rest, (unsigned long long)(rest - SFS_SEAL_OVERHEAD));
	if (rc == 1 && rb == b) {
		a = (struct torn_arg){.dirfd = dirfd, .name = name, .sparse = sparse, .block = b};
		memcpy(a.id, id, SFS_ID_BYTES);
		snprintf(rep, sizeof(rep),
			 "put block %llu back from its tail record (%zu plaintext bytes, as the "
			 "last fsync left it) and cut the file after it, as a mount's first open "
			 "does; the %llu stored bytes it replaces are first kept in %s/torn.kept-*",
			 (unsigned long long)b, rlen, (unsigned long long)rest, s->name);
		sfs_fsck_add(s->c, s, path, plain, "torn", rep, fix_torn, &a,
			     "torn inside its last block: block %llu (plaintext bytes %llu..): %s; "
			     "every byte before it reads (a crash during a write of that block "
			     "leaves this); its tail record holds the block as the last fsync "
			     "left it",
			     (unsigned long long)b, (unsigned long long)b * SFS_BLOCK, state);
		return;
	}
	if (rest > SFS_SEAL_OVERHEAD) {
		/* A size a file has: a tear or a flipped byte, nothing tells them apart. */
		sfs_fsck_add(s->c, s, path, plain, "content", NULL, NULL, NULL,
			     "1 content block(s) fail authentication (the first is block %llu, "
			     "plaintext bytes %llu..): reads of them fail with EIO; it is the "
			     "last block, partial, and %s, so nothing says it is a tear and not "
			     "damage (fsck cuts nothing)",
			     (unsigned long long)b, (unsigned long long)b * SFS_BLOCK,
			     rc < 0    ? "its tail record cannot be read"
			     : rc == 1 ? "its tail record is of another block"
				       : "it has no tail record that opens");
		return;
	}
	sfs_fsck_add(s->c, s, path, plain, "torn", NULL, NULL, NULL,
		     "torn inside its last block: block %llu (plaintext bytes %llu..): %s; every "
		     "byte before it reads; %s: reads of that block fail with EIO (fsck cuts "
		     "nothing)",
		     (unsigned long long)b, (unsigned long long)b * SFS_BLOCK, state,
		     rc < 0    ? "its tail record cannot be read"
		     : rc == 1 ? "its tail record is of another block"
			       : "it has no tail record that opens (no fsync since it was "
				 "written, or the backing file system keeps no extended "
				 "attributes)");
}
