/*
 * fileio.c - block arithmetic and sealing for file content; see fileio.h.
 *
 * A write is turned into whole blocks: partial first and last blocks are
 * read, opened and merged; every touched block is sealed with a fresh nonce
 * and the run is written with one pwrite. No whole-file rewrite ever.
 * Sparse files (fileio.h "Holes") keep unwritten blocks as backing holes.
 */
#include "fileio.h"
#include "parallel.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

/* Largest run of blocks handled in one go (1 MiB of plaintext). */
#define RUN_BLOCKS SFS_RUN_MAX

static const unsigned char zeros[RUN_BLOCKS * SFS_BLOCK];

/* Is every byte of @p zero? (Stored bytes only: nothing secret to time.) */
static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static uint64_t round_up(uint64_t v)
{
	return (v + SFS_BLOCK - 1) / SFS_BLOCK * SFS_BLOCK;
}

/*
 * Blocks a buffer needs for @len bytes at @off: the blocks they span, at
 * most RUN_BLOCKS. Buffers are sized to the request, not to the largest run,
 * so that a 200-byte append allocates and wipes one block, not 1 MiB.
 */
static size_t run_blocks(uint64_t off, size_t len)
{
	uint64_t span = (off % SFS_BLOCK + len + SFS_BLOCK - 1) / SFS_BLOCK;

	return span < RUN_BLOCKS ? (size_t)(span ? span : 1) : RUN_BLOCKS;
}

int sfs_file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	return sfs_fmt_plain_size((uint64_t)st.st_size, size) ? -EBADMSG : 0;
}

int sfs_file_init(int fd, const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
		  const struct sfs_keys *keys)
{
	return sfs_file_write_header(fd, id, attrs, keys);
}

int sfs_file_read_header(int fd, unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
			 const struct sfs_keys *keys)
{
	unsigned char hdr[SFS_HDR_BYTES];
	ssize_t n = sfs_pread_all(fd, hdr, sizeof(hdr), 0);

	if (n < 0)
		return (int)n;
	return sfs_fmt_header_unpack(hdr, (size_t)n, SFS_MAGIC_FILE, id, attrs, keys) ? -EBADMSG
										       : 0;
}

int sfs_file_write_header(int fd, const unsigned char id[SFS_ID_BYTES],
			  const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	unsigned char hdr[SFS_HDR_BYTES];

	sfs_fmt_header_pack(hdr, SFS_MAGIC_FILE, id, attrs, keys);
	return sfs_pwrite_all(fd, hdr, sizeof(hdr), 0);
}

/*
 * Give the empty file @f a fresh random id (fileio.h "Id renewal"): its
 * header must be the one it was opened with; the caller's hook moves what it
 * keeps under the old id, then one 80-byte pwrite names the new one.
 */
static int renew_id(struct sfs_file *f)
{
	unsigned char id[SFS_ID_BYTES], fresh[SFS_ID_BYTES];
	struct sfs_attrs a;
	int rc;

	rc = sfs_file_read_header(f->fd, id, &a, f->keys);
	if (rc < 0)
		return rc;
	if (a.kind == SFS_KIND_LOG || memcmp(id, f->id, SFS_ID_BYTES) != 0)
		return -EBADMSG;
	sfs_crypto_random(fresh, sizeof(fresh));
	a.kind = SFS_KIND_BLOCKS;
	rc = f->renew ? f->renew(f, fresh, f->renew_arg) : 0;
	if (rc == 0)
		rc = sfs_file_write_header(f->fd, fresh, &a, f->keys);
	if (rc < 0)
		return rc;
	memcpy(f->id, fresh, SFS_ID_BYTES);
	f->sparse = false;
	f->fresh = true;
	return 0;
}

/*
 * Content is about to be sealed under f->id: an empty file whose id is not
 * known fresh gets a new one first. The id is no longer fresh afterwards,
 * even if the caller fails before it seals anything.
 */
static int claim_id(struct sfs_file *f)
{
	int rc = 0;

	if (f->size == 0 && !f->fresh)
		rc = renew_id(f);
	if (rc == 0)
		f->fresh = false;
	return rc;
}

/* A run of blocks sealed or opened by sfs_par_for, one block per iteration. */
struct run {
	const struct sfs_file *f;
	struct sfs_blockkey bk;    /* the file's block key for this run */
	uint64_t first;            /* block number of iteration 0 */
	unsigned char *plain;      /* block i at plain + i * SFS_BLOCK */
	unsigned char *cipher;     /* block i at cipher + i * SFS_CBLOCK */
	size_t last_len;           /* bytes of the last block (plaintext when sealing,
				    * sealed when opening); the others are whole */
	size_t n;
	atomic_size_t bad;         /* opening: lowest block that failed (n: none) */
	const unsigned char *nonces; /* sealing: block i's fresh nonce at i * 24 */
};

static void open_one(size_t i, void *arg)
{
	struct run *r = arg;
	size_t clen = i + 1 == r->n ? r->last_len : SFS_CBLOCK, was;
	const unsigned char *c = r->cipher + i * SFS_CBLOCK;

	/* In a sparse file a block stored as zero bytes is a hole. */
	if (r->f->sparse && clen > SFS_SEAL_OVERHEAD && all_zero(c, clen)) {
		memset(r->plain + i * SFS_BLOCK, 0, clen - SFS_SEAL_OVERHEAD);
		return;
	}
	if (sfs_fmt_block_open_at(r->plain + i * SFS_BLOCK, r->cipher + i * SFS_CBLOCK, clen,
				  r->first + i, &r->bk, i) == 0)
		return;
	was = atomic_load(&r->bad);
	while (i < was && !atomic_compare_exchange_weak(&r->bad, &was, i))
		;
}

static void seal_one(size_t i, void *arg)
{
	struct run *r = arg;
	size_t plen = i + 1 == r->n ? r->last_len : SFS_BLOCK;
	unsigned char *c = r->cipher + i * SFS_CBLOCK;

	memcpy(c, r->nonces + i * SFS_NONCE_BYTES, SFS_NONCE_BYTES);
	sfs_fmt_block_seal_nonce(c, r->plain + i * SFS_BLOCK, plen, r->first + i, &r->bk);
}

/*
 * Read and open blocks [first, first + n) of a file of f->size bytes into
 * @plain (n * SFS_BLOCK bytes). Blocks at or past EOF are not read. In a
 * sparse file a block stored as zero bytes is a hole and reads as zeros.
 */
static int load_blocks(struct sfs_file *f, uint64_t first, uint64_t n, unsigned char *plain,
		       unsigned char *cipher)
{
	uint64_t end = sfs_fmt_backing_size(f->size), off = sfs_fmt_block_offset(first);
	struct run r = {.f = f, .first = first, .plain = plain, .cipher = cipher};
	size_t want;
	ssize_t got;

	if (off >= end)
		return 0;
	want = (size_t)(end - off < n * SFS_CBLOCK ? end - off : n * SFS_CBLOCK);
	got = sfs_pread_all(f->fd, cipher, want, off);
	if (got < 0)
		return (int)got;
	r.n = (want + SFS_CBLOCK - 1) / SFS_CBLOCK;
	r.last_len = want - (r.n - 1) * SFS_CBLOCK;
	/* A short read means the file shrank under us: the block is cut. */
	if ((size_t)got < want) {
		f->bad_block = first + (size_t)got / SFS_CBLOCK;
		return -EBADMSG;
	}
	atomic_init(&r.bad, r.n);
	if (sfs_fmt_blockkey_init_open(&r.bk, f->id, f->keys, cipher, r.n) < 0)
		return -ENOMEM;
	sfs_par_for(r.n, open_one, &r);
	sfs_fmt_blockkey_done(&r.bk);
	if (atomic_load(&r.bad) < r.n) {
		f->bad_block = first + atomic_load(&r.bad);
		return -EBADMSG;
	}
	return 0;
}

ssize_t sfs_file_read(struct sfs_file *f, void *buf, size_t len, uint64_t off)
{
	unsigned char *plain = NULL, *cipher;
	size_t nb;
	size_t done = 0;
	int rc = 0;

	if (off >= f->size || len == 0)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	nb = run_blocks(off, len);
	cipher = malloc(nb * SFS_CBLOCK);
	if (!cipher)
		return -ENOMEM;
	while (done < len) {
		uint64_t pos = off + done, first = pos / SFS_BLOCK;
		uint64_t last = (off + len - 1) / SFS_BLOCK, n = last - first + 1;
		size_t skip = (size_t)(pos % SFS_BLOCK), chunk;

		if (n > nb)
			n = nb;
		chunk = (size_t)(n * SFS_BLOCK) - skip;
		if (chunk > len - done)
			chunk = len - done;
		/*
		 * Whole blocks (or the file's last bytes) are opened straight
		 * into @buf; a block read in part goes through @plain.
		 */
		if (skip == 0 && (chunk == n * SFS_BLOCK || off + len == f->size)) {
			rc = load_blocks(f, first, n, (unsigned char *)buf + done, cipher);
			if (rc < 0)
				break;
			done += chunk;
			continue;
		}
		if (!plain) {
			plain = malloc(nb * SFS_BLOCK);
			if (!plain) {
				rc = -ENOMEM;
				break;
			}
		}
		rc = load_blocks(f, first, n, plain, cipher);
		if (rc < 0)
			break;
		memcpy((char *)buf + done, plain + skip, chunk);
		done += chunk;
	}
	if (plain)
		sodium_memzero(plain, nb * SFS_BLOCK);
	free(plain);
	free(cipher);
	return rc < 0 ? rc : (ssize_t)done;
}

/*
 * Write @len bytes at @off where off <= f->size and the range spans at most
 * RUN_BLOCKS blocks: merge with existing partial blocks, seal, one pwrite.
 */
static int write_run(struct sfs_file *f, const unsigned char *buf, size_t len, uint64_t off,
		     unsigned char *plain, unsigned char *cipher)
{
	uint64_t first = off / SFS_BLOCK, last = (off + len - 1) / SFS_BLOCK;
	uint64_t start = first * SFS_BLOCK, new_size = off + len > f->size ? off + len : f->size;
	uint64_t run_end = (last + 1) * SFS_BLOCK < new_size ? (last + 1) * SFS_BLOCK : new_size;
	size_t clen = 0;
	int rc;

	/* The first and last blocks may keep bytes we are not writing. */
	bool head = off % SFS_BLOCK != 0;
	bool tail = (off + len) % SFS_BLOCK != 0 && off + len < f->size;

	assert(plain || (!head && !tail && off + len == run_end));
	if (head) {
		rc = load_blocks(f, first, 1, plain, cipher);
		if (rc < 0)
			return rc;
	}
	if (tail && (last != first || !head)) {
		rc = load_blocks(f, last, 1, plain + (last - first) * SFS_BLOCK, cipher);
		if (rc < 0)
			return rc;
	}
	/*
	 * Growing the backing file, or filling a hole: reserve the space first,
	 * so that a full disk fails here (ENOSPC) before any existing block is
	 * overwritten. Blocks appended at a block-aligned end overwrite nothing:
	 * a write of them that fails half-way is cut off again below instead
	 * (dd: 224 against 199 MB/s, fallocate turning into unwritten extents
	 * first).
	 */
	uint64_t old_end = sfs_fmt_backing_size(f->size), new_end = sfs_fmt_backing_size(new_size);
	uint64_t cstart = sfs_fmt_block_offset(first);
	uint64_t cend = cstart + (run_end - start) + (last - first + 1) * SFS_SEAL_OVERHEAD;
	uint64_t rstart = f->sparse ? cstart : old_end, rend = f->sparse ? cend : new_end;
	bool append_only = off == f->size && off % SFS_BLOCK == 0;

	if (rend > rstart && !append_only &&
	    fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)rstart, (off_t)(rend - rstart)) < 0 &&
	    errno != EOPNOTSUPP)
		return sfs_neg_errno();
	/* Whole blocks of the caller's (plain == NULL) are sealed where they are. */
	if (plain)
		memcpy(plain + (off - start), buf, len);
	struct run r = {.f = f, .first = first, .cipher = cipher};
	unsigned char nonces[RUN_BLOCKS * SFS_NONCE_BYTES];

	r.plain = plain ? plain : (unsigned char *)buf;
	r.n = (size_t)(last - first + 1);
	r.last_len = (size_t)(run_end - last * SFS_BLOCK);
	assert(r.n <= RUN_BLOCKS);
	/* One random draw for the run's nonces (4-6 % of the daemon in dd, one a block). */
	sfs_crypto_random(nonces, r.n * SFS_NONCE_BYTES);
	r.nonces = nonces;
	if (sfs_fmt_blockkey_init(&r.bk, f->id, f->keys) < 0)
		return -ENOMEM;
	sfs_par_for(r.n, seal_one, &r);
	sfs_fmt_blockkey_done(&r.bk);
	clen = (r.n - 1) * SFS_CBLOCK + r.last_len + SFS_SEAL_OVERHEAD;
	rc = sfs_pwrite_all(f->fd, cipher, clen, sfs_fmt_block_offset(first));
	if (rc == 0)
		f->size = new_size;
	else if (append_only && ftruncate(f->fd, (off_t)old_end) < 0)
		rc = sfs_neg_errno(); /* the torn tail stays: reading it fails (EIO) */
	return rc;
}

static int write_chunks(struct sfs_file *f, const unsigned char *buf, size_t len, uint64_t off)
{
	size_t nb = run_blocks(off, len);
	/*
	 * Whole blocks, or whole ones and the file's new last bytes: nothing
	 * to merge, so no plaintext copy to make and wipe (write_run).
	 */
	bool whole = off % SFS_BLOCK == 0 && ((off + len) % SFS_BLOCK == 0 || off + len >= f->size);
	unsigned char *plain = whole ? NULL : malloc(nb * SFS_BLOCK);
	unsigned char *cipher = malloc(nb * SFS_CBLOCK);
	size_t done = 0;
	int rc = 0;

	if ((!whole && !plain) || !cipher) {
		rc = -ENOMEM;
		goto out;
	}
	while (done < len) {
		uint64_t pos = off + done;
		size_t room = nb * SFS_BLOCK - (size_t)(pos % SFS_BLOCK);
		size_t chunk = len - done < room ? len - done : room;

		/* buf == NULL writes zeros (growing a file, zeroing a range). */
		rc = write_run(f, buf ? buf + done : zeros, chunk, pos, plain, cipher);
		if (rc < 0)
			break;
		done += chunk;
	}
out:
	if (plain)
		sodium_memzero(plain, nb * SFS_BLOCK);
	free(plain);
	free(cipher);
	return rc;
}

/* Give a file a hole-capable header (fileio.h "Holes"); before any hole exists. */
static int make_sparse(struct sfs_file *f)
{
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	int rc;

	if (f->sparse)
		return 0;
	rc = sfs_file_read_header(f->fd, id, &a, f->keys);
	if (rc < 0)
		return rc;
	if (a.kind != SFS_KIND_BLOCKS || memcmp(id, f->id, SFS_ID_BYTES) != 0)
		return -EBADMSG;
	a.kind = SFS_KIND_SPARSE;
	rc = sfs_file_write_header(f->fd, id, &a, f->keys);
	if (rc == 0)
		f->sparse = true;
	return rc;
}

/*
 * Grow the file to @to bytes of zeros: a gap of at least one whole block
 * past the last block becomes a hole (the last block is first completed
 * with sealed zeros), a shorter one is written as sealed zeros.
 */
static int grow(struct sfs_file *f, uint64_t to)
{
	uint64_t edge = round_up(f->size);
	int rc = claim_id(f);

	if (rc < 0)
		return rc;
	if (to / SFS_BLOCK * SFS_BLOCK <= edge)
		return write_chunks(f, NULL, (size_t)(to - f->size), f->size);
	rc = make_sparse(f);
	if (rc == 0 && f->size < edge)
		rc = write_chunks(f, NULL, (size_t)(edge - f->size), f->size);
	if (rc < 0)
		return rc;
	if (ftruncate(f->fd, (off_t)sfs_fmt_backing_size(to)) < 0)
		return sfs_neg_errno();
	f->size = to;
	return 0;
}

ssize_t sfs_file_write(struct sfs_file *f, const void *buf, size_t len, uint64_t off)
{
	int rc;

	if (len == 0)
		return 0;
	rc = off > f->size ? grow(f, off) : claim_id(f);
	if (rc < 0)
		return rc;
	rc = write_chunks(f, buf, len, off);
	return rc < 0 ? rc : (ssize_t)len;
}

int sfs_file_truncate(struct sfs_file *f, uint64_t size)
{
	unsigned char plain[SFS_BLOCK], cipher[SFS_CBLOCK];
	uint64_t keep = size % SFS_BLOCK, blk = size / SFS_BLOCK;
	struct sfs_blockkey bk = {0};
	int rc = 0;

	if (size == f->size)
		return 0;
	if (size > f->size)
		return grow(f, size);
	/*
	 * Shrinking: load the block that keeps a part, cut the file at a block
	 * boundary first (a crash then leaves a valid prefix), then reseal it.
	 * Everything that can fail for want of memory happens before the cut.
	 */
	if (keep) {
		rc = load_blocks(f, blk, 1, plain, cipher);
		if (rc == 0)
			rc = sfs_fmt_blockkey_init(&bk, f->id, f->keys);
		if (rc < 0)
			goto out;
	}
	if (ftruncate(f->fd, (off_t)sfs_fmt_block_offset(blk)) < 0) {
		rc = sfs_neg_errno();
		goto out;
	}
	f->size = blk * SFS_BLOCK;
	if (size == 0) {
		rc = renew_id(f); /* the file is the header alone now */
		goto out;
	}
	if (keep) {
		sfs_crypto_random(cipher, SFS_NONCE_BYTES);
		sfs_fmt_block_seal_nonce(cipher, plain, (size_t)keep, blk, &bk);
		rc = sfs_pwrite_all(f->fd, cipher, (size_t)keep + SFS_SEAL_OVERHEAD,
				    sfs_fmt_block_offset(blk));
		if (rc == 0)
			f->size = size;
	}
out:
	sodium_memzero(plain, sizeof(plain));
	sfs_fmt_blockkey_done(&bk);
	return rc;
}

/* Turn stored bytes [from, to) into zeros: a backing hole where it can. */
static int zero_stored(struct sfs_file *f, uint64_t from, uint64_t to)
{
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(to - from)) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return sfs_neg_errno();
	while (from < to) {
		size_t n = to - from < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		int rc = sfs_pwrite_all(f->fd, zeros, n, from);

		if (rc < 0)
			return rc;
		from += n;
	}
	return 0;
}

/* Zero plaintext [from, to) of a file, to <= f->size: whole blocks become holes. */
static int punch(struct sfs_file *f, uint64_t from, uint64_t to)
{
	uint64_t cstart, cend;
	int rc;

	if (from >= to)
		return 0;
	rc = make_sparse(f);
	if (rc < 0)
		return rc;
	/* Partial blocks at either end keep their other bytes: reseal them. */
	if (from % SFS_BLOCK) {
		uint64_t e = (from / SFS_BLOCK + 1) * SFS_BLOCK;

		e = e < to ? e : to;
		rc = write_chunks(f, NULL, (size_t)(e - from), from);
		if (rc < 0)
			return rc;
		from = e;
	}
	if (from < to && to % SFS_BLOCK && to < f->size) {
		uint64_t s = to / SFS_BLOCK * SFS_BLOCK;

		rc = write_chunks(f, NULL, (size_t)(to - s), s);
		if (rc < 0)
			return rc;
		to = s;
	}
	if (from >= to)
		return 0;
	/* Whole blocks, and the last block if the range runs to EOF. */
	cstart = sfs_fmt_block_offset(from / SFS_BLOCK);
	cend = to == f->size ? sfs_fmt_backing_size(to) : sfs_fmt_block_offset(to / SFS_BLOCK);
	return zero_stored(f, cstart, cend);
}

/* Reserve store space for plaintext [off, end) without changing any size. */
static int reserve(struct sfs_file *f, uint64_t off, uint64_t end)
{
	uint64_t cstart = sfs_fmt_block_offset(off / SFS_BLOCK);
	uint64_t cend = sfs_fmt_block_offset(round_up(end) / SFS_BLOCK);

	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)cstart, (off_t)(cend - cstart)) < 0 &&
	    errno != EOPNOTSUPP)
		return sfs_neg_errno();
	return 0;
}

int sfs_file_fallocate(struct sfs_file *f, int mode, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	int rc;

	if (len == 0 || end < off)
		return -EINVAL;
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
		rc = reserve(f, off, end);
		if (rc == 0 && !keep && end > f->size)
			rc = grow(f, end);
		return rc;
	case FALLOC_FL_PUNCH_HOLE:
		if (!keep)
			return -EOPNOTSUPP; /* as the kernel: a punch never changes the size */
		return punch(f, off, end < f->size ? end : f->size);
	case FALLOC_FL_ZERO_RANGE:
		rc = punch(f, off, end < f->size ? end : f->size);
		if (rc == 0)
			rc = reserve(f, off, end);
		if (rc == 0 && !keep && end > f->size)
			rc = grow(f, end);
		return rc;
	}
	return -EOPNOTSUPP;
}

/* Bytes stored for block @b of a file of @size bytes (b below the last block or it). */
static uint64_t stored_len(uint64_t size, uint64_t b)
{
	uint64_t plain = size - b * SFS_BLOCK;

	return (plain < SFS_BLOCK ? plain : SFS_BLOCK) + SFS_SEAL_OVERHEAD;
}

/* The block whose stored range holds backing offset @boff (>= the header). */
static uint64_t block_at(uint64_t boff)
{
	return (boff - sfs_fmt_block_offset(0)) / SFS_CBLOCK;
}

/*
 * The backing file's next data at or after @boff, into *@d; 1 if there is
 * none (a hole up to EOF), 0, or -errno.
 */
static int next_data(int fd, uint64_t boff, uint64_t *d)
{
	off_t r = lseek(fd, (off_t)boff, SEEK_DATA);

	if (r < 0)
		return errno == ENXIO ? 1 : sfs_neg_errno();
	*d = (uint64_t)r;
	return 0;
}

int sfs_file_seek(const struct sfs_file *f, uint64_t off, int whence, uint64_t *pos)
{
	uint64_t nblocks = (f->size + SFS_BLOCK - 1) / SFS_BLOCK, b = off / SFS_BLOCK, c, d = 0, h;
	off_t r;
	int rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= f->size)
		return -ENXIO;
	if (!f->sparse) {
		*pos = whence == SEEK_DATA ? off : f->size;
		return 0;
	}
	if (whence == SEEK_DATA) {
		/* Block b, or the first block with a stored byte after it. */
		rc = next_data(f->fd, sfs_fmt_block_offset(b), &d);
		if (rc != 0)
			return rc > 0 ? -ENXIO : rc;
		if (block_at(d) > b)
			b = block_at(d);
		if (b >= nblocks)
			return -ENXIO;
		*pos = b * SFS_BLOCK > off ? b * SFS_BLOCK : off;
		return 0;
	}
	/* SEEK_HOLE: the first block from b whose stored range holds no data. */
	while (b < nblocks) {
		r = lseek(f->fd, (off_t)sfs_fmt_block_offset(b), SEEK_HOLE);
		if (r < 0)
			return sfs_neg_errno();
		/* The first block stored wholly at or after that hole's start. */
		h = (uint64_t)r;
		c = block_at(h);
		if (sfs_fmt_block_offset(c) < h)
			c++;
		if (c >= nblocks)
			break;
		rc = next_data(f->fd, sfs_fmt_block_offset(c), &d);
		if (rc < 0)
			return rc;
		if (rc > 0 || d >= sfs_fmt_block_offset(c) + stored_len(f->size, c)) {
			*pos = c * SFS_BLOCK > off ? c * SFS_BLOCK : off;
			return 0;
		}
		b = c + 1; /* c holds data */
	}
	*pos = f->size;
	return 0;
}
