/*
 * test_symlink.c - symlink targets in both forms (lib/symlink.c): the short
 * form round trip through a backing symlink, the long form round trip for
 * every length it takes (3001..4095 bytes), its layout (one content block
 * after the header, readable as block 0 of the file), and tampering: a
 * flipped byte, a cut, a grown file, another file's id, a block from another
 * node all fail with -EBADMSG, never read as another target.
 */
#include "check.h"
#include "fileio.h"
#include "symlink.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sfs_keys *keys;

/* A temporary file node (already unlinked) with a long-symlink header. */
static int new_node(unsigned char id[SFS_ID_BYTES], unsigned char tag)
{
	char path[] = "/tmp/sfs-unit-symlink-XXXXXX";
	struct sfs_attrs a = {S_IFLNK | 0777, 0, 0, 0, 0};
	int fd = mkstemp(path);

	REQUIRE(fd >= 0);
	unlink(path);
	memset(id, tag, SFS_ID_BYTES);
	REQUIRE(sfs_file_init(fd, id, &a, keys) == 0);
	return fd;
}

static void fill(char *t, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		t[i] = (char)('!' + (seed + i * 7) % 90); /* printable, never NUL */
	t[len] = '\0';
}

static void flip(int fd, off_t off)
{
	unsigned char b;

	REQUIRE(pread(fd, &b, 1, off) == 1);
	b ^= 0x01;
	REQUIRE(pwrite(fd, &b, 1, off) == 1);
}

static void test_short(void)
{
	char dir[] = "/tmp/sfs-unit-symlink-dir-XXXXXX", enc[PATH_MAX], out[PATH_MAX];
	char target[SFS_SYMLINK_MAX + 1];
	int dfd, fd;

	REQUIRE(mkdtemp(dir));
	dfd = open(dir, O_PATH | O_DIRECTORY);
	REQUIRE(dfd >= 0);
	fill(target, SFS_SYMLINK_MAX, 3);
	CHECK(!sfs_symlink_is_long(SFS_SYMLINK_MAX));
	CHECK(sfs_symlink_is_long(SFS_SYMLINK_MAX + 1));
	REQUIRE(sfs_fmt_symlink_encode(enc, sizeof(enc), target, keys) == 0);
	REQUIRE(symlinkat(enc, dfd, "l") == 0);
	fd = openat(dfd, "l", O_PATH | O_NOFOLLOW);
	REQUIRE(fd >= 0);
	CHECK_EQ(sfs_symlink_read_short(fd, out, keys), 0);
	CHECK_STR(out, target);
	close(fd);
	/* A backing link that is no sealed target: damaged. */
	REQUIRE(unlinkat(dfd, "l", 0) == 0);
	REQUIRE(symlinkat("plain", dfd, "l") == 0);
	fd = openat(dfd, "l", O_PATH | O_NOFOLLOW);
	CHECK_EQ(sfs_symlink_read_short(fd, out, keys), -EBADMSG);
	CHECK_STR(out, "");
	close(fd);
	unlinkat(dfd, "l", 0);
	close(dfd);
	rmdir(dir);
}

static void test_long_round_trip(void)
{
	unsigned char id[SFS_ID_BYTES];
	char target[PATH_MAX + 1], out[PATH_MAX];
	struct sfs_file f = {.keys = keys};
	struct stat st;
	size_t len;

	for (size_t n = SFS_SYMLINK_MAX + 1; n <= SFS_SYMLINK_LONG_MAX; n++) {
		int fd = new_node(id, (unsigned char)n);

		fill(target, n, (unsigned)n);
		CHECK_EQ(sfs_symlink_write_long(fd, id, target, n, keys), 0);
		CHECK_EQ(sfs_symlink_read_long(fd, id, out, &len, keys), 0);
		CHECK_EQ(len, n);
		CHECK_STR(out, target);
		/* Laid out as block 0 of a file: header, then len + 40 bytes. */
		REQUIRE(fstat(fd, &st) == 0);
		CHECK_EQ(st.st_size, SFS_HDR_BYTES + n + SFS_SEAL_OVERHEAD);
		if (n == SFS_SYMLINK_LONG_MAX) {
			f.fd = fd;
			memcpy(f.id, id, SFS_ID_BYTES);
			CHECK_EQ(sfs_file_size(fd, &f.size), 0);
			CHECK_EQ(sfs_file_read(&f, out, sizeof(out), 0), n);
			CHECK_MEM(out, target, n);
		}
		close(fd);
	}
	/* Lengths the long form does not take. */
	int fd = new_node(id, 1);

	fill(target, SFS_SYMLINK_LONG_MAX + 1, 1);
	CHECK_EQ(sfs_symlink_write_long(fd, id, target, SFS_SYMLINK_MAX, keys), -ENAMETOOLONG);
	CHECK_EQ(sfs_symlink_write_long(fd, id, target, SFS_SYMLINK_LONG_MAX + 1, keys),
		 -ENAMETOOLONG);
	/* A header alone, or a file node whose content is too short for a long target. */
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	close(fd);
}

static void test_long_tamper(void)
{
	unsigned char id[SFS_ID_BYTES], other[SFS_ID_BYTES], block[SFS_CBLOCK];
	char target[PATH_MAX], out[PATH_MAX];
	size_t n = 3777, size = SFS_HDR_BYTES + n + SFS_SEAL_OVERHEAD;
	int fd = new_node(id, 0xa1), fd2 = new_node(other, 0xb2);

	fill(target, n, 9);
	REQUIRE(sfs_symlink_write_long(fd, id, target, n, keys) == 0);
	/* Every byte of the block matters: nonce, ciphertext, tag. */
	for (off_t off = SFS_HDR_BYTES; off < (off_t)size; off += 97) {
		flip(fd, off);
		CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
		CHECK_STR(out, "");
		flip(fd, off);
	}
	flip(fd, (off_t)size - 1);
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	flip(fd, (off_t)size - 1);
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), 0);
	/* Bound to its file id. */
	CHECK_EQ(sfs_symlink_read_long(fd, other, out, NULL, keys), -EBADMSG);
	/* Cut, or grown by a byte: a size no long target has, or a failing tag. */
	REQUIRE(ftruncate(fd, (off_t)size - 1) == 0);
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	REQUIRE(ftruncate(fd, (off_t)size + 1) == 0);
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	REQUIRE(ftruncate(fd, SFS_HDR_BYTES + 100 + SFS_SEAL_OVERHEAD) == 0);
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	/* Another node's block moved in: it is bound to the other id. */
	REQUIRE(sfs_symlink_write_long(fd2, other, target, n, keys) == 0);
	REQUIRE(pread(fd2, block, n + SFS_SEAL_OVERHEAD, SFS_HDR_BYTES) ==
		(ssize_t)(n + SFS_SEAL_OVERHEAD));
	REQUIRE(ftruncate(fd, SFS_HDR_BYTES) == 0);
	REQUIRE(pwrite(fd, block, n + SFS_SEAL_OVERHEAD, SFS_HDR_BYTES) ==
		(ssize_t)(n + SFS_SEAL_OVERHEAD));
	CHECK_EQ(sfs_symlink_read_long(fd, id, out, NULL, keys), -EBADMSG);
	CHECK_EQ(sfs_symlink_read_long(fd, other, out, NULL, keys), 0);
	close(fd);
	close(fd2);
}

int main(void)
{
	keys = fixed_keys();
	test_short();
	test_long_round_trip();
	test_long_tamper();
	sfs_keys_free(keys);
	return check_done();
}
