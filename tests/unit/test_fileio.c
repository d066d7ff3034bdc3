/*
 * test_fileio.c - encrypted file content against an in-memory model: random
 * writes, gaps, holes, truncates, fallocate modes and reads (seeded,
 * reproducible), checked after every operation; then tampering with the
 * backing file (flipped bytes, swapped blocks, cuts, foreign ids, zeroed
 * blocks) must fail with -EBADMSG, never read as wrong bytes; then sparse
 * files: what holes cost on disk, and past 4 GiB.
 */
#include "check.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_SIZE (3u << 20)
#define OPS 2000 /* random operations of test_model; SFS_FILEIO_OPS changes it */

static struct sfs_keys *keys;
static unsigned char *model, *buf;
static uint64_t msize;
static int ops = OPS;

/* A temporary backing file, already unlinked, with a fresh header. */
static void new_file(struct sfs_file *f, unsigned char tag)
{
	char path[] = "/tmp/sfs-unit-fileio-XXXXXX";
	struct sfs_attrs a = {S_IFREG | 0600, 0, 0, 0, 0};

	memset(f, 0, sizeof(*f));
	f->fd = mkstemp(path);
	REQUIRE(f->fd >= 0);
	unlink(path);
	memset(f->id, tag, sizeof(f->id));
	/* Made up, but unique among the test's files, as a caller's random one: fresh. */
	f->fresh = true;
	f->keys = keys;
	REQUIRE(sfs_file_init(f->fd, f->id, &a, keys) == 0);
}

/* The whole file, its size on both sides, equals the model. */
static bool model_zero(uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		if (model[i])
			return false;
	return true;
}

/*
 * SEEK_DATA and SEEK_HOLE never call data a hole: SEEK_DATA skips only zeros
 * (ENXIO: only zeros follow), and SEEK_HOLE lands on at least a block of
 * zeros or on EOF. A file that is not sparse is all data.
 */
static void check_seek(struct sfs_file *f)
{
	uint64_t pos;
	int rc;

	for (int k = 0; k < 8 && msize > 0; k++) {
		uint64_t off = below(msize);

		rc = sfs_file_seek(f, off, SEEK_DATA, &pos);
		if (rc == -ENXIO)
			CHECK(f->sparse && model_zero(off, msize));
		else
			CHECK_EQ(rc, 0);
		if (rc == 0)
			CHECK(pos >= off && pos < msize && model_zero(off, pos) &&
			      (f->sparse || pos == off));
		rc = sfs_file_seek(f, off, SEEK_HOLE, &pos);
		CHECK_EQ(rc, 0);
		if (rc == 0)
			CHECK(pos >= off && pos <= msize &&
			      (pos == msize ||
			       model_zero(pos,
					  pos + SFS_BLOCK < msize ? pos + SFS_BLOCK : msize)) &&
			      (f->sparse || pos == msize));
	}
	CHECK_EQ(sfs_file_seek(f, msize, SEEK_DATA, &pos), -ENXIO);
	CHECK_EQ(sfs_file_seek(f, msize, SEEK_HOLE, &pos), -ENXIO);
}

static void verify(struct sfs_file *f, int step, const char *what)
{
	uint64_t size = ~0ull;
	ssize_t n;
	int before = check_failures;

	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;

	CHECK(f->size == msize);
	/* The header says sparse exactly when the caller was told so, and its id. */
	CHECK_EQ(sfs_file_read_header(f->fd, id, &a, keys), 0);
	CHECK_EQ(a.kind, f->sparse ? SFS_KIND_SPARSE : SFS_KIND_BLOCKS);
	CHECK_MEM(id, f->id, SFS_ID_BYTES);
	CHECK_EQ(sfs_file_size(f->fd, &size), 0);
	CHECK(size == msize);
	n = sfs_file_read(f, buf, msize + 4096, 0);
	CHECK_EQ(n, msize);
	if (n == (ssize_t)msize)
		CHECK_MEM(buf, model, msize);
	check_seek(f);
	if (check_failures != before) {
		fprintf(stderr, "after step %d (%s), model size %llu\n", step, what,
			(unsigned long long)msize);
		exit(check_done());
	}
}

static void do_write(struct sfs_file *f, uint64_t off, size_t len)
{
	if (off + len > MAX_SIZE)
		off = MAX_SIZE - len;
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)rnd();
	CHECK_EQ(sfs_file_write(f, buf, len, off), len);
	if (len == 0)
		return;
	if (off > msize)
		memset(model + msize, 0, off - msize);
	memcpy(model + off, buf, len);
	if (off + len > msize)
		msize = off + len;
}

static void do_truncate(struct sfs_file *f, uint64_t size)
{
	if (size > MAX_SIZE)
		size = MAX_SIZE;
	CHECK_EQ(sfs_file_truncate(f, size), 0);
	if (size > msize)
		memset(model + msize, 0, size - msize);
	msize = size;
}

/* fallocate(2) @mode over [off, off + len) on file and model. */
static void do_fallocate(struct sfs_file *f, int mode, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	if (end > MAX_SIZE)
		return;
	CHECK_EQ(sfs_file_fallocate(f, mode, off, len), 0);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) && off < msize)
		memset(model + off, 0, (end < msize ? end : msize) - off);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > msize) {
		memset(model + msize, 0, end - msize);
		msize = end;
	}
}

static void do_read(struct sfs_file *f, uint64_t off, size_t len)
{
	size_t want = off >= msize ? 0 : (len < msize - off ? len : (size_t)(msize - off));
	ssize_t n = sfs_file_read(f, buf, len, off);

	CHECK_EQ(n, want);
	if (n == (ssize_t)want)
		CHECK_MEM(buf, model + off, want);
}

static void test_model(void)
{
	struct sfs_file f;

	new_file(&f, 0x11);
	msize = 0;
	verify(&f, -1, "init");
	for (int step = 0; step < ops; step++) {
		uint64_t r = below(100);
		const char *what;

		if (msize > (3u << 19)) {
			what = "truncate down";
			do_truncate(&f, below(msize / 2));
		} else if (r < 35) {
			what = "small write";
			do_write(&f, below(msize + 10000), 1 + below(9000));
		} else if (r < 45) {
			what = "block-aligned write";
			do_write(&f, below(msize / SFS_BLOCK + 3) * SFS_BLOCK,
				 (1 + below(4)) * SFS_BLOCK);
		} else if (r < 48) {
			what = "write past EOF";
			do_write(&f, msize + below(3 * SFS_BLOCK) + 1, 1 + below(100));
		} else if (r < 50) {
			what = "write far past EOF";
			do_write(&f, msize + below(60 * SFS_BLOCK) + 1, 1 + below(9000));
		} else if (r < 53) {
			what = "1 MiB+ write";
			do_write(&f, below(msize + 1), (1u << 20) + below(300000));
		} else if (r < 54) {
			/* whole blocks: sealed straight from the caller's buffer */
			what = "large block-aligned write";
			do_write(&f, below(msize / SFS_BLOCK + 3) * SFS_BLOCK,
				 (16 + below(400)) * SFS_BLOCK);
		} else if (r < 55) {
			what = "large aligned write to a new, unaligned end";
			do_write(&f, (msize / SFS_BLOCK) * SFS_BLOCK,
				 (16 + below(300)) * SFS_BLOCK + 1 + below(SFS_BLOCK - 1));
		} else if (r < 56) {
			what = "empty write";
			do_write(&f, below(msize + 5000), 0);
		} else if (r < 65) {
			what = "truncate down";
			do_truncate(&f, below(msize + 1));
		} else if (r < 72) {
			what = "truncate up";
			do_truncate(&f, msize + below(20000));
		} else if (r < 75) {
			what = "truncate to a block boundary";
			do_truncate(&f, below(msize / SFS_BLOCK + 2) * SFS_BLOCK);
		} else if (r < 78) {
			what = "punch a hole";
			do_fallocate(&f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     below(msize + 10), 1 + below(12 * SFS_BLOCK));
		} else if (r < 80) {
			what = "zero a range";
			do_fallocate(&f,
				     FALLOC_FL_ZERO_RANGE | (below(2) ? FALLOC_FL_KEEP_SIZE : 0),
				     below(msize + 10), 1 + below(12 * SFS_BLOCK));
		} else if (r < 82) {
			what = "allocate";
			do_fallocate(&f, below(2) ? FALLOC_FL_KEEP_SIZE : 0, below(msize + 20000),
				     1 + below(20 * SFS_BLOCK));
		} else {
			what = "read";
			do_read(&f, below(msize + 100), below(20000));
		}
		verify(&f, step, what);
	}

	/* Reopened from the backing file alone, it reads the same. */
	struct sfs_file g = {.fd = f.fd, .keys = keys};
	struct sfs_attrs a;

	CHECK_EQ(sfs_file_read_header(g.fd, g.id, &a, keys), 0);
	CHECK_MEM(g.id, f.id, SFS_ID_BYTES);
	CHECK_EQ(a.mode, S_IFREG | 0600);
	CHECK(f.sparse); /* the steps made holes */
	g.sparse = a.kind == SFS_KIND_SPARSE;
	CHECK_EQ(sfs_file_size(g.fd, &g.size), 0);
	verify(&g, ops, "reopen");
	close(f.fd);
}

static void flip(int fd, uint64_t off)
{
	unsigned char b;

	REQUIRE(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= 0x01;
	REQUIRE(pwrite(fd, &b, 1, (off_t)off) == 1);
}

static void swap_blocks(int fd, uint64_t a, uint64_t b)
{
	static unsigned char x[SFS_CBLOCK], y[SFS_CBLOCK];

	REQUIRE(pread(fd, x, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(a)) == SFS_CBLOCK);
	REQUIRE(pread(fd, y, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(b)) == SFS_CBLOCK);
	REQUIRE(pwrite(fd, y, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(a)) == SFS_CBLOCK);
	REQUIRE(pwrite(fd, x, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(b)) == SFS_CBLOCK);
}

/* Read [off, off + len) and expect -EBADMSG naming block @bad. */
static void expect_bad(struct sfs_file *f, uint64_t off, size_t len, uint64_t bad)
{
	f->bad_block = ~0ull;
	CHECK_EQ(sfs_file_read(f, buf, len, off), -EBADMSG);
	CHECK_EQ(f->bad_block, bad);
}

/* A file of 5 blocks + 123 bytes: 0..4 full, 5 partial. */
#define TSIZE (5 * SFS_BLOCK + 123)

static void fill(struct sfs_file *f)
{
	for (size_t i = 0; i < TSIZE; i++)
		model[i] = (unsigned char)(i * 13 + i / SFS_BLOCK);
	msize = TSIZE;
	REQUIRE(sfs_file_write(f, model, TSIZE, 0) == TSIZE);
}

static void test_tamper(void)
{
	struct sfs_file f, other;
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	uint64_t size;

	new_file(&f, 0x22);
	fill(&f);
	verify(&f, 0, "tamper setup");

	/* A flipped byte in block 1: block 0 and 2 still read, nothing over 1 does. */
	flip(f.fd, sfs_fmt_block_offset(1) + 50);
	expect_bad(&f, 0, TSIZE, 1);
	expect_bad(&f, 4000, 200, 1);
	expect_bad(&f, SFS_BLOCK + 7, 1, 1);
	do_read(&f, 0, SFS_BLOCK);
	do_read(&f, 2 * SFS_BLOCK, 2 * SFS_BLOCK);
	/* A partial write or a truncate must not reseal the bad block as good. */
	CHECK_EQ(sfs_file_write(&f, "xy", 2, SFS_BLOCK + 10), -EBADMSG);
	CHECK_EQ(sfs_file_truncate(&f, SFS_BLOCK + 100), -EBADMSG);
	CHECK(f.size == TSIZE);
	expect_bad(&f, SFS_BLOCK, 10, 1);
	flip(f.fd, sfs_fmt_block_offset(1) + 50);
	verify(&f, 1, "flip back");

	/* Each byte of the nonce, ciphertext and tag of the last, partial block. */
	for (uint64_t o = sfs_fmt_block_offset(5); o < sfs_fmt_backing_size(TSIZE); o++) {
		flip(f.fd, o);
		expect_bad(&f, 5 * SFS_BLOCK, 1, 5);
		flip(f.fd, o);
	}
	verify(&f, 2, "last block");

	/* The header. */
	flip(f.fd, 30);
	CHECK_EQ(sfs_file_read_header(f.fd, id, &a, keys), -EBADMSG);
	flip(f.fd, 30);
	CHECK_EQ(sfs_file_read_header(f.fd, id, &a, keys), 0);

	/* Blocks swapped within the file. */
	swap_blocks(f.fd, 1, 2);
	expect_bad(&f, SFS_BLOCK, 1, 1);
	expect_bad(&f, 2 * SFS_BLOCK, 1, 2);
	do_read(&f, 0, SFS_BLOCK);
	swap_blocks(f.fd, 1, 2);
	verify(&f, 3, "swap back");

	/* The same keys but another file id; and a block taken from that file. */
	new_file(&other, 0x33);
	REQUIRE(sfs_file_write(&other, model, TSIZE, 0) == TSIZE);
	memcpy(f.id, other.id, SFS_ID_BYTES);
	expect_bad(&f, 0, 10, 0);
	memset(f.id, 0x22, SFS_ID_BYTES);
	{
		static unsigned char c[SFS_CBLOCK];

		REQUIRE(pread(other.fd, c, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(3)) ==
			SFS_CBLOCK);
		REQUIRE(pwrite(f.fd, c, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(3)) == SFS_CBLOCK);
	}
	expect_bad(&f, 3 * SFS_BLOCK, SFS_BLOCK, 3);
	close(other.fd);
	REQUIRE(sfs_file_write(&f, model + 3 * SFS_BLOCK, SFS_BLOCK, 3 * SFS_BLOCK) == SFS_BLOCK);
	verify(&f, 4, "rewrite block 3");

	/* Cut inside block 2's data: a plausible size, but block 2 fails. */
	REQUIRE(ftruncate(f.fd, (off_t)(sfs_fmt_block_offset(2) + 100)) == 0);
	expect_bad(&f, 0, TSIZE, 2); /* f.size still says TSIZE */
	CHECK_EQ(sfs_file_size(f.fd, &size), 0);
	CHECK(size == 2 * SFS_BLOCK + 60);
	f.size = size;
	expect_bad(&f, 2 * SFS_BLOCK, 10, 2);
	do_read(&f, 0, 2 * SFS_BLOCK);
	/* Cut inside a block's overhead or the header: no valid file has that size. */
	REQUIRE(ftruncate(f.fd, (off_t)(sfs_fmt_block_offset(1) + 20)) == 0);
	CHECK_EQ(sfs_file_size(f.fd, &size), -EBADMSG);
	REQUIRE(ftruncate(f.fd, 50) == 0);
	CHECK_EQ(sfs_file_size(f.fd, &size), -EBADMSG);
	CHECK_EQ(sfs_file_read_header(f.fd, id, &a, keys), -EBADMSG);
	REQUIRE(ftruncate(f.fd, 0) == 0);
	CHECK_EQ(sfs_file_size(f.fd, &size), 0);
	CHECK(size == 0);
	close(f.fd);
}

static uint64_t allocated(int fd)
{
	struct stat st;

	REQUIRE(fstat(fd, &st) == 0);
	return (uint64_t)st.st_blocks * 512;
}

static void zero_block(int fd, uint64_t b)
{
	static const unsigned char z[SFS_CBLOCK];

	REQUIRE(pwrite(fd, z, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(b)) == SFS_CBLOCK);
}

/* Holes: when a file turns sparse, what they cost, what a zeroed block means. */
static void test_sparse(void)
{
	struct sfs_file f;
	const uint64_t big = (5ull << 30) + 12345; /* past 4 GiB */
	uint64_t size;

	/* A gap shorter than a block is sealed zeros: the file stays kind 0. */
	new_file(&f, 0x55);
	msize = 0;
	do_write(&f, 100, 10);
	do_write(&f, 2 * SFS_BLOCK - 5, 10);
	do_truncate(&f, 3 * SFS_BLOCK + 7);
	verify(&f, 0, "short gaps");
	CHECK(!f.sparse);
	/* ...so a block zeroed in the store is tampering: EIO, not zeros. */
	zero_block(f.fd, 1);
	expect_bad(&f, SFS_BLOCK, 1, 1);
	/* A gap of a whole block turns it sparse; nothing else changes. */
	REQUIRE(sfs_file_write(&f, model + SFS_BLOCK, SFS_BLOCK, SFS_BLOCK) == SFS_BLOCK);
	do_truncate(&f, 64 * SFS_BLOCK);
	CHECK(f.sparse);
	verify(&f, 1, "truncate up 61 blocks");
	CHECK(allocated(f.fd) < 16 * SFS_BLOCK);
	/* In a sparse file a zeroed block reads as a hole (see doc/format.md). */
	zero_block(f.fd, 1);
	memset(model + SFS_BLOCK, 0, SFS_BLOCK);
	verify(&f, 2, "zeroed block of a sparse file");
	/* Writing into a hole, then punching it again. */
	do_write(&f, 20 * SFS_BLOCK + 5, 3 * SFS_BLOCK);
	verify(&f, 3, "write into a hole");
	do_fallocate(&f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20 * SFS_BLOCK + 100,
		     2 * SFS_BLOCK);
	verify(&f, 4, "punch inside data");
	close(f.fd);

	/* A punched range frees its blocks; its edges keep their bytes. */
	new_file(&f, 0x66);
	msize = 0;
	do_write(&f, 0, 64 * SFS_BLOCK + 100);
	uint64_t full = allocated(f.fd);
	do_fallocate(&f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * SFS_BLOCK + 1,
		     40 * SFS_BLOCK);
	verify(&f, 5, "punch 40 blocks");
	CHECK(allocated(f.fd) + 37 * SFS_BLOCK <=
	      full); /* 39 stored blocks, cut to whole fs blocks */
	/* ...and to EOF, the partial last block included. */
	do_fallocate(&f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 60 * SFS_BLOCK,
		     10 * SFS_BLOCK);
	verify(&f, 6, "punch to EOF");
	/* Allocation reserves space and changes no byte; mode 0 grows the size. */
	uint64_t before = allocated(f.fd);
	do_fallocate(&f, FALLOC_FL_KEEP_SIZE, msize, 32 * SFS_BLOCK);
	verify(&f, 7, "keep-size allocation");
	CHECK(allocated(f.fd) >= before + 32 * SFS_BLOCK);
	do_fallocate(&f, 0, 30 * SFS_BLOCK, 100 * SFS_BLOCK);
	verify(&f, 8, "allocation past EOF");
	/* Modes the kernel knows but a sealed file cannot do. */
	CHECK_EQ(sfs_file_fallocate(&f, FALLOC_FL_PUNCH_HOLE, 0, 10), -EOPNOTSUPP);
	CHECK_EQ(sfs_file_fallocate(&f, FALLOC_FL_COLLAPSE_RANGE, 0, SFS_BLOCK), -EOPNOTSUPP);
	CHECK_EQ(sfs_file_fallocate(&f, FALLOC_FL_INSERT_RANGE, 0, SFS_BLOCK), -EOPNOTSUPP);
	CHECK_EQ(sfs_file_fallocate(&f, 0, 0, 0), -EINVAL);
	close(f.fd);

	/* Past 4 GiB: offsets are 64-bit all the way, and the hole costs nothing. */
	new_file(&f, 0x77);
	REQUIRE(sfs_file_write(&f, "head", 4, 0) == 4);
	CHECK_EQ(sfs_file_write(&f, "tail of a big file", 18, big), 18);
	CHECK(f.sparse);
	CHECK_EQ(sfs_file_size(f.fd, &size), 0);
	CHECK(size == big + 18);
	CHECK_EQ(sfs_file_read(&f, buf, 30, big - 6), 24);
	CHECK_MEM(buf, "\0\0\0\0\0\0tail of a big file", 24);
	CHECK_EQ(sfs_file_read(&f, buf, 8, 0), 8);
	CHECK_MEM(buf, "head\0\0\0\0", 8);
	CHECK_EQ(sfs_file_read(&f, buf, 3 * SFS_BLOCK, 3ull << 30), 3 * SFS_BLOCK);
	CHECK(buf[0] == 0 && memcmp(buf, buf + 1, 3 * SFS_BLOCK - 1) == 0);
	CHECK(allocated(f.fd) < 64 * 1024);
	CHECK_EQ(sfs_file_truncate(&f, 4), 0);
	CHECK_EQ(sfs_file_read(&f, buf, 10, 0), 4);
	close(f.fd);
}

/*
 * Large reads open their blocks on several threads (parallel.h): the block
 * reported is still the first bad one, and good blocks still read.
 */
static void test_large_tamper(void)
{
	struct sfs_file f;

	new_file(&f, 0x55);
	msize = 300 * SFS_BLOCK + 77;
	for (size_t i = 0; i < msize; i++)
		model[i] = (unsigned char)(i * 7 + i / SFS_BLOCK);
	REQUIRE(sfs_file_write(&f, model, msize, 0) == (ssize_t)msize);
	verify(&f, 0, "large setup");
	flip(f.fd, sfs_fmt_block_offset(250) + 100);
	flip(f.fd, sfs_fmt_block_offset(37) + 100);
	for (int i = 0; i < 20; i++)
		expect_bad(&f, 0, msize, 37);
	expect_bad(&f, 100 * SFS_BLOCK, 200 * SFS_BLOCK, 250);
	do_read(&f, 38 * SFS_BLOCK, 200 * SFS_BLOCK);
	flip(f.fd, sfs_fmt_block_offset(37) + 100);
	expect_bad(&f, 0, msize, 250);
	flip(f.fd, sfs_fmt_block_offset(250) + 100);
	verify(&f, 1, "large flips back");
	/* The same on the calling thread alone (f.alone: readahead READs). */
	f.alone = true;
	verify(&f, 2, "large alone");
	flip(f.fd, sfs_fmt_block_offset(250) + 100);
	flip(f.fd, sfs_fmt_block_offset(37) + 100);
	expect_bad(&f, 0, msize, 37);
	expect_bad(&f, 32 * SFS_BLOCK, 32 * SFS_BLOCK, 37);
	expect_bad(&f, 100 * SFS_BLOCK, 200 * SFS_BLOCK, 250);
	do_read(&f, 38 * SFS_BLOCK, 200 * SFS_BLOCK);
	flip(f.fd, sfs_fmt_block_offset(37) + 100);
	flip(f.fd, sfs_fmt_block_offset(250) + 100);
	verify(&f, 3, "large alone flips back");
	f.alone = false;
	/* cut inside the last block: a large read reports it */
	REQUIRE(ftruncate(f.fd, (off_t)(sfs_fmt_block_offset(300) + 50)) == 0);
	expect_bad(&f, 0, msize, 300);
	close(f.fd);
}

/*
 * Every sealed block has its own nonce: a run of 256 blocks sealed at once
 * (one random draw for all) and a rewrite of the same blocks share none.
 */
static void test_nonces(void)
{
	enum { NB = 300 };
	static unsigned char seen[2 * NB][SFS_NONCE_BYTES];
	struct sfs_file f;
	size_t k = 0;

	new_file(&f, 0x66);
	for (int round = 0; round < 2; round++) {
		REQUIRE(sfs_file_write(&f, model, NB * SFS_BLOCK, 0) == NB * SFS_BLOCK);
		for (uint64_t b = 0; b < NB; b++, k++)
			REQUIRE(pread(f.fd, seen[k], SFS_NONCE_BYTES,
				      (off_t)sfs_fmt_block_offset(b)) == SFS_NONCE_BYTES);
	}
	for (size_t i = 0; i < k; i++)
		for (size_t j = i + 1; j < k; j++)
			CHECK(memcmp(seen[i], seen[j], SFS_NONCE_BYTES) != 0);
	/*
	 * Cipher 3: a run (up to 256 blocks) shares one random nonce half, so one
	 * derived key; the next run, and every rewrite, has another.
	 */
	if (keys->cipher == SFS_CIPHER_AESGCM_DERIVED)
		for (size_t i = 1; i < k; i++)
			CHECK_EQ(memcmp(seen[i] + 12, seen[i - 1] + 12, 12) == 0,
				 i % NB != 0 && i % NB != 256);
	close(f.fd);
}

/* A random byte flipped anywhere, random reads: each errors or equals the model. */
static void test_fuzz(void)
{
	struct sfs_file f;
	uint64_t backing = sfs_fmt_backing_size(TSIZE);
	int errors = 0, reads = 0;

	new_file(&f, 0x44);
	fill(&f);
	for (int i = 0; i < 300; i++) {
		uint64_t at = SFS_HDR_BYTES + below(backing - SFS_HDR_BYTES);

		flip(f.fd, at);
		for (int j = 0; j < 8; j++) {
			uint64_t off = below(TSIZE + 10);
			size_t len = 1 + below(3 * SFS_BLOCK);
			ssize_t n = sfs_file_read(&f, buf, len, off);

			reads++;
			if (n < 0) {
				CHECK_EQ(n, -EBADMSG);
				CHECK_EQ(f.bad_block, (at - SFS_HDR_BYTES) / SFS_CBLOCK);
				errors++;
				continue;
			}
			CHECK_EQ(n, off >= TSIZE ? 0 : (len < TSIZE - off ? len : TSIZE - off));
			CHECK_MEM(buf, model + off, (size_t)n);
		}
		flip(f.fd, at);
	}
	CHECK(errors > 0 && errors < reads);
	verify(&f, 0, "fuzz");
	close(f.fd);
}

/* Copy the header of @from over the backing file @to. */
static void copy_header(int from, int to)
{
	unsigned char hdr[SFS_HDR_BYTES];

	REQUIRE(pread(from, hdr, sizeof(hdr), 0) == SFS_HDR_BYTES);
	REQUIRE(pwrite(to, hdr, sizeof(hdr), 0) == SFS_HDR_BYTES);
}

/* Put block @b of backing file @from at block @b of @to. */
static void move_block(int from, int to, uint64_t b)
{
	static unsigned char c[SFS_CBLOCK];

	REQUIRE(pread(from, c, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(b)) == SFS_CBLOCK);
	REQUIRE(pwrite(to, c, SFS_CBLOCK, (off_t)sfs_fmt_block_offset(b)) == SFS_CBLOCK);
}

/* @g as a reader of the store opens backing file @fd: id, kind and size from it. */
static void open_backing(struct sfs_file *g, int fd)
{
	struct sfs_attrs a;

	memset(g, 0, sizeof(*g));
	g->fd = fd;
	g->keys = keys;
	REQUIRE(sfs_file_read_header(fd, g->id, &a, keys) == 0);
	g->sparse = a.kind == SFS_KIND_SPARSE;
	REQUIRE(sfs_file_size(fd, &g->size) == 0);
}

static int hook_calls;
static unsigned char hook_new[SFS_ID_BYTES];

/* The renewal hook: runs before the header names the new id; @arg is what it returns. */
static int hook(const struct sfs_file *f, const unsigned char new_id[SFS_ID_BYTES], void *arg)
{
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;

	hook_calls++;
	memcpy(hook_new, new_id, SFS_ID_BYTES);
	CHECK_EQ(sfs_file_read_header(f->fd, id, &a, keys), 0);
	CHECK_MEM(id, f->id, SFS_ID_BYTES); /* still the old one */
	CHECK(memcmp(new_id, f->id, SFS_ID_BYTES) != 0);
	return *(int *)arg;
}

/*
 * File-id poisoning (the class of the 2017 gocryptfs audit): the header of
 * file X copied over an empty file E. Were what is then written to E sealed
 * under X's id, X's blocks would read as E's content (and E's as X's). E
 * must get a fresh id before its first block: by a write, a truncate up, a
 * fallocate; and when it is truncated to zero.
 */
static void test_id_poisoning(void)
{
	static unsigned char other[2 * SFS_BLOCK];
	struct sfs_file x, e, g;
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	int ok = 0, fail = -ENOSPC;

	for (size_t i = 0; i < sizeof(other); i++)
		other[i] = (unsigned char)(i * 7 + 3);
	new_file(&x, 0x77);
	fill(&x);
	for (int how = 0; how < 4; how++) {
		new_file(&e, (unsigned char)(0x78 + how));
		copy_header(x.fd, e.fd);
		open_backing(&g, e.fd);
		CHECK_MEM(g.id, x.id, SFS_ID_BYTES); /* poisoned */
		CHECK(g.size == 0 && !g.fresh);
		switch (how) {
		case 0: /* a write */
			CHECK_EQ(sfs_file_write(&g, other, sizeof(other), 0), sizeof(other));
			break;
		case 1: /* truncate up, then a write into it */
			CHECK_EQ(sfs_file_truncate(&g, sizeof(other)), 0);
			CHECK_EQ(sfs_file_write(&g, other, sizeof(other), 0), sizeof(other));
			break;
		case 2: /* fallocate, then a write */
			CHECK_EQ(sfs_file_fallocate(&g, 0, 0, sizeof(other)), 0);
			CHECK_EQ(sfs_file_write(&g, other, sizeof(other), 0), sizeof(other));
			break;
		case 3: /* a write far past the end: the file turns sparse under its new id */
			CHECK_EQ(sfs_file_write(&g, other, SFS_BLOCK, 5 * SFS_BLOCK), SFS_BLOCK);
			CHECK(g.sparse);
			CHECK_EQ(sfs_file_write(&g, other, sizeof(other), 0), sizeof(other));
			break;
		}
		CHECK(memcmp(g.id, x.id, SFS_ID_BYTES) != 0);
		CHECK(!g.fresh);
		CHECK_EQ(sfs_file_read_header(e.fd, id, &a, keys), 0);
		CHECK_MEM(id, g.id, SFS_ID_BYTES);
		CHECK_EQ(sfs_file_read(&g, buf, sizeof(other), 0), sizeof(other));
		CHECK_MEM(buf, other, sizeof(other));
		/* X's block 0 moved into E: EIO, never X's bytes; and E's into X. */
		move_block(x.fd, e.fd, 0);
		open_backing(&g, e.fd);
		expect_bad(&g, 0, SFS_BLOCK, 0);
		move_block(e.fd, x.fd, 1);
		expect_bad(&x, SFS_BLOCK, SFS_BLOCK, 1);
		REQUIRE(sfs_file_write(&x, model + SFS_BLOCK, SFS_BLOCK, SFS_BLOCK) == SFS_BLOCK);
		close(e.fd);
	}

	/*
	 * Truncated to zero, a file gets a fresh id at once (a crash then leaves
	 * a valid empty file under it), kind 0 again, and keeps it for its next
	 * content.
	 */
	new_file(&e, 0x7c);
	CHECK_EQ(sfs_file_write(&e, other, SFS_BLOCK, 9 * SFS_BLOCK), SFS_BLOCK);
	CHECK(e.sparse);
	memcpy(id, e.id, SFS_ID_BYTES);
	CHECK_EQ(sfs_file_truncate(&e, 0), 0);
	CHECK(memcmp(e.id, id, SFS_ID_BYTES) != 0 && e.fresh && !e.sparse);
	msize = 0;
	verify(&e, 0, "truncated to zero");
	open_backing(&g, e.fd);
	CHECK_MEM(g.id, e.id, SFS_ID_BYTES);
	CHECK(g.size == 0);
	memcpy(id, e.id, SFS_ID_BYTES);
	CHECK_EQ(sfs_file_write(&e, other, 100, 0), 100);
	CHECK_MEM(e.id, id, SFS_ID_BYTES); /* fresh: no second renewal */
	CHECK(!e.fresh);
	close(e.fd);

	/*
	 * The caller's hook runs before the header changes; its error aborts the
	 * renewal and the write, and leaves the file as it was.
	 */
	new_file(&e, 0x7d);
	e.fresh = false;
	e.renew = hook;
	e.renew_arg = &fail;
	memcpy(id, e.id, SFS_ID_BYTES);
	hook_calls = 0;
	CHECK_EQ(sfs_file_write(&e, other, 10, 0), -ENOSPC);
	CHECK_EQ(hook_calls, 1);
	CHECK_MEM(e.id, id, SFS_ID_BYTES);
	CHECK(e.size == 0);
	open_backing(&g, e.fd);
	CHECK_MEM(g.id, id, SFS_ID_BYTES);
	CHECK(g.size == 0);
	e.renew_arg = &ok;
	CHECK_EQ(sfs_file_write(&e, other, 10, 0), 10);
	CHECK_EQ(hook_calls, 2);
	CHECK_MEM(e.id, hook_new, SFS_ID_BYTES);
	/* Content written, no renewal until the file is empty again. */
	CHECK_EQ(sfs_file_write(&e, other, 10, 10), 10);
	CHECK_EQ(sfs_file_truncate(&e, 5), 0);
	CHECK_EQ(hook_calls, 2);
	CHECK_EQ(sfs_file_truncate(&e, 0), 0);
	CHECK_EQ(hook_calls, 3);
	CHECK_MEM(e.id, hook_new, SFS_ID_BYTES);
	/* A header that is not the file's (swapped while it was open): refused. */
	e.fresh = false;
	copy_header(x.fd, e.fd);
	CHECK_EQ(sfs_file_write(&e, other, 10, 0), -EBADMSG);
	CHECK_EQ(hook_calls, 3);
	close(e.fd);
	close(x.fd);
}

/*
 * Tail records (fileio.h): for tails of 1, 1000, 3900, 4050 and 4095 bytes
 * (inline or, where the attribute block of /tmp's file system is too small,
 * in the tail file), an fsync point, an append that tears the block (old
 * bytes up to a page boundary over the new ones), recovery: the fsynced
 * bytes exactly, cut there. An intact append is never cut; a record of
 * another id is never used; a record at a block boundary is dropped.
 */
static void fill_bytes(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rnd();
}

static void test_tail(void)
{
	static const size_t tails[] = {1, 1000, 3900, 4050, 4095};
	char dir[] = "/tmp/sfs-unit-tail-XXXXXX";
	unsigned char old[SFS_CBLOCK], got[3 * SFS_BLOCK];
	uint64_t was, now, size;
	struct sfs_file f;
	int taildir;

	REQUIRE(mkdtemp(dir));
	taildir = open(dir, O_RDONLY | O_DIRECTORY);
	REQUIRE(taildir >= 0);
	for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		size_t synced = SFS_BLOCK + tails[t], clen = tails[t] + SFS_SEAL_OVERHEAD;
		uint64_t off = sfs_fmt_block_offset(1), cut = (off / 4096 + 1) * 4096 - off;

		new_file(&f, (unsigned char)(0x70 + t));
		fill_bytes(buf, 3 * SFS_BLOCK);
		CHECK_EQ(sfs_file_write(&f, buf, synced, 0), (ssize_t)synced);
		CHECK_EQ(sfs_file_keep_tail(f.fd, f.size, taildir, f.id), 1);
		CHECK_EQ(pread(f.fd, old, clen, (off_t)off), (ssize_t)clen);
		/* Nothing to do while the stored block is the recorded one. */
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 0);
		/* An append that reaches the disk whole is kept. */
		CHECK_EQ(sfs_file_write(&f, buf + synced, 2 * SFS_BLOCK + 7 - synced, synced),
			 (ssize_t)(2 * SFS_BLOCK + 7 - synced));
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 0);
		/* Torn: the fsynced block's bytes up to a page boundary over the new ones. */
		CHECK_EQ(pwrite(f.fd, old, cut < clen ? cut : clen, (off_t)off),
			 (ssize_t)(cut < clen ? cut : clen));
		CHECK_EQ(sfs_file_size(f.fd, &size), 0);
		f.size = size;
		CHECK_EQ(sfs_file_read(&f, got, sizeof(got), 0), -EBADMSG);
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 1);
		CHECK_EQ(was, 2 * SFS_BLOCK + 7);
		CHECK_EQ(now, synced);
		CHECK_EQ(sfs_file_size(f.fd, &size), 0);
		CHECK_EQ(size, synced);
		CHECK_EQ(sfs_file_read(&f, got, sizeof(got), 0), (ssize_t)synced);
		CHECK(memcmp(got, buf, synced) == 0);
		/* A size no file has (cut inside a block's overhead) goes back too. */
		CHECK_EQ(sfs_file_write(&f, buf + synced, 2 * SFS_BLOCK + 7 - synced, synced),
			 (ssize_t)(2 * SFS_BLOCK + 7 - synced));
		CHECK_EQ(ftruncate(f.fd, (off_t)(sfs_fmt_block_offset(2) + 20)), 0);
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 1);
		CHECK_EQ(was, UINT64_MAX);
		CHECK_EQ(now, synced);
		/* Under another id, the record opens under nothing: never used. */
		CHECK_EQ(pwrite(f.fd, old, 10, (off_t)off + 30), 10);
		CHECK_EQ(pwrite(f.fd, "xx", 2, (off_t)off + 30), 2);
		f.id[0] ^= 1;
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 0);
		f.id[0] ^= 1;
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 1);
		/* At a block boundary the record goes. */
		CHECK_EQ(sfs_file_write(&f, buf + synced, 2 * SFS_BLOCK - synced, synced),
			 (ssize_t)(2 * SFS_BLOCK - synced));
		CHECK_EQ(sfs_file_keep_tail(f.fd, f.size, taildir, f.id), 1);
		CHECK_EQ(sfs_file_keep_tail(f.fd, f.size, taildir, f.id), 0);
		CHECK_EQ(pwrite(f.fd, "xx", 2, (off_t)off + 30), 2);
		CHECK_EQ(sfs_file_recover_tail(&f, taildir, &was, &now), 0);
		close(f.fd);
	}
	/*
	 * Without a directory for tail files, a record too large for an
	 * attribute is dropped: no record rather than the stale one before.
	 */
	new_file(&f, 0x7f);
	fill_bytes(buf, 2 * SFS_BLOCK);
	CHECK_EQ(sfs_file_write(&f, buf, SFS_BLOCK + 100, 0), SFS_BLOCK + 100);
	CHECK_EQ(sfs_file_keep_tail(f.fd, f.size, -1, f.id), 1);
	CHECK_EQ(sfs_file_write(&f, buf + SFS_BLOCK + 100, 3995, SFS_BLOCK + 100), 3995);
	CHECK_EQ(sfs_file_keep_tail(f.fd, f.size, -1, f.id), 1);
	{
		ssize_t n = fgetxattr(f.fd, "user.sfs.tail", got, sizeof(got));

		CHECK(n == 9 + 4095 + SFS_SEAL_OVERHEAD || (n < 0 && errno == ENODATA));
	}
	close(f.fd);
	/* Each tail file goes with its file (the caller's job), then the directory is empty. */
	for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		memset(f.id, (unsigned char)(0x70 + t), sizeof(f.id));
		CHECK(sfs_file_drop_tail_file(taildir, f.id) >= 0);
		CHECK_EQ(sfs_file_drop_tail_file(taildir, f.id), 0);
	}
	CHECK(!sfs_file_has_tail_files(taildir));
	close(taildir);
	CHECK_EQ(rmdir(dir), 0);
}

int main(void)
{
	const char *n = getenv("SFS_FILEIO_OPS");

	/* Fewer operations only where the build is slow: tests/run sets it under TSan. */
	if (n && atoi(n) > 0)
		ops = atoi(n);
	check_rng = 0x5eed5eed12345678ull;
	keys = fixed_keys();
	model = malloc(MAX_SIZE + SFS_BLOCK);
	buf = malloc(MAX_SIZE + 2 * SFS_BLOCK);
	REQUIRE(keys && model && buf);
	test_model();
	test_tamper();
	test_large_tamper();
	test_nonces();
	test_fuzz();
	test_sparse();
	test_id_poisoning();
	test_tail();
	/* The same with the content blocks of AES-256-GCM with derived keys (cipher 3). */
	if (sfs_cipher_available(SFS_CIPHER_AESGCM_DERIVED)) {
		unsigned char master[32];

		sfs_keys_free(keys);
		fixed_master(master);
		keys = sfs_keys_new(master, SFS_CIPHER_AESGCM_DERIVED);
		REQUIRE(keys);
		test_model();
		test_tamper();
		test_nonces();
		test_fuzz();
		test_id_poisoning();
		test_tail();
	}
	free(model);
	free(buf);
	sfs_keys_free(keys);
	return check_done();
}
