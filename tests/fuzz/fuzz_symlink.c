/*
 * fuzz_symlink.c - symlink targets in both forms: the short form, a
 * backing symlink whose own target is the sealed, base64url target
 * (sfs_symlink_read_short over a real link, sfs_fmt_symlink_decode), and
 * the long form, a file node whose one block is the target
 * (sfs_symlink_read_long over a backing file in memory).
 *
 * Input: mode byte; even: the backing link's target and the long form's
 * bytes after its header, raw; odd: a fuzzer-chosen target is written in
 * its form with the fixed keys, then one byte (of the encoded target, or
 * of the backing file) is set to a fuzzer-chosen value. Oracles: an intact
 * target reads back as written; a patched short target that still decodes
 * is the very encoding written (only the canonical encoding decodes).
 */
#include "fuzz.h"
#include "symlink.h"

#include <limits.h>

static char out[PATH_MAX];

/* Read @enc as the target of a backing symlink: 0 or -errno, as sessionfs does. */
static int read_short(const char *enc)
{
	int dirfd = fz_dir(), fd, rc;

	if (!enc[0] || strlen(enc) >= PATH_MAX)
		return -EINVAL;
	unlinkat(dirfd, "link", 0);
	if (symlinkat(enc, dirfd, "link") < 0)
		return -errno;
	fd = openat(dirfd, "link", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		abort();
	rc = sfs_symlink_read_short(fd, out, fz_keys(SFS_CIPHER_XCHACHA));
	close(fd);
	return rc;
}

/* A long-form node: a file header then @len bytes of @body. */
static int read_long(const uint8_t *body, size_t len, size_t *got)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs a = {.mode = S_IFLNK | 0777};
	unsigned char hdr[SFS_HDR_BYTES];
	int fd, rc;

	sfs_fmt_header_pack(hdr, SFS_MAGIC_FILE, fz_id, &a, keys);
	fd = fz_memfd(hdr, sizeof(hdr));
	if (len && pwrite(fd, body, len, SFS_HDR_BYTES) != (ssize_t)len)
		abort();
	rc = sfs_symlink_read_long(fd, fz_id, out, got, keys);
	close(fd);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static char target[PATH_MAX], enc[PATH_MAX], orig[PATH_MAX];
	static unsigned char body[SFS_CBLOCK + 64];
	struct fz f = {data, size};
	const uint8_t *p;
	size_t n, got;

	if (!(fz_u8(&f) & 1)) {
		p = fz_chunk(&f, PATH_MAX - 1, &n);
		memcpy(enc, p, n);
		enc[n] = '\0';
		(void)sfs_fmt_symlink_decode(out, PATH_MAX, enc, keys);
		(void)read_short(enc);
		p = fz_chunk(&f, sizeof(body), &n);
		(void)read_long(p, n, &got);
		return 0;
	}
	p = fz_chunk(&f, SFS_SYMLINK_LONG_MAX, &n);
	memcpy(target, p, n);
	target[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!target[i])
			target[i] = 'x';
	uint16_t at = fz_u16(&f);
	uint8_t to = fz_u8(&f);

	if (n == 0)
		return 0;
	if (!sfs_symlink_is_long(n)) {
		FZ_ASSERT(sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys) == 0);
		memcpy(orig, enc, sizeof(enc));
		if (to && at < strlen(enc))
			enc[at] = (char)to;
		if (read_short(enc) == 0) {
			FZ_ASSERT(strcmp(enc, orig) == 0);
			FZ_ASSERT(strcmp(out, target) == 0);
		} else {
			FZ_ASSERT(strcmp(enc, orig) != 0);
		}
		return 0;
	}
	/* Long form: the block as sfs_symlink_write_long writes it, then one byte set. */
	int fd = fz_memfd(NULL, 0);

	FZ_ASSERT(sfs_symlink_write_long(fd, fz_id, target, n, keys) == 0);
	FZ_ASSERT(pread(fd, body, n + SFS_SEAL_OVERHEAD, SFS_HDR_BYTES) ==
		  (ssize_t)(n + SFS_SEAL_OVERHEAD));
	close(fd);
	bool patched = to && at < n + SFS_SEAL_OVERHEAD && body[at] != to;

	if (patched)
		body[at] = to;
	int rc = read_long(body, n + SFS_SEAL_OVERHEAD, &got);

	FZ_ASSERT(patched ? rc == -EBADMSG : rc == 0 && got == n && strcmp(out, target) == 0);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	static char t[SFS_SYMLINK_LONG_MAX];
	static const char *targets[] = {"../a/b", "/etc/passwd", "x", "a b\tc"};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		fz_put8(&o, 1);
		fz_put_chunk(&o, targets[i], strlen(targets[i]));
		fz_put16(&o, (uint16_t)i);
		fz_put8(&o, i & 1 ? 0 : 0x80);
		fz_seed_done(&o);
	}
	memset(t, 'a', sizeof(t));
	fz_put8(&o, 1);
	fz_put_chunk(&o, t, SFS_SYMLINK_MAX + 1);
	fz_put16(&o, 0);
	fz_put8(&o, 0);
	fz_seed_done(&o);
	fz_put8(&o, 1);
	fz_put_chunk(&o, t, SFS_SYMLINK_MAX);
	fz_put16(&o, 0);
	fz_put8(&o, 0);
	fz_seed_done(&o);
	/* raw: an encoding sfs_fmt_symlink_encode made */
	if (sfs_fmt_symlink_encode(t, sizeof(t), "../target", fz_keys(SFS_CIPHER_XCHACHA)) < 0)
		abort();
	fz_put8(&o, 0);
	fz_put_chunk(&o, t, strlen(t));
	fz_put_chunk(&o, "", 0);
	fz_seed_done(&o);
}
