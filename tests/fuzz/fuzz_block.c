/*
 * fuzz_block.c - the content blocks of a regular file: sfs_file_size,
 * sfs_file_read (runs of blocks opened on several threads, partial blocks,
 * holes of sparse files) and sfs_file_seek, over a backing file in memory,
 * for each content cipher.
 *
 * Input: mode byte (bit 0: raw, bits 1-2: cipher, bit 3: sparse), then
 * raw: the backing bytes after a valid header (the fixed keys' own);
 * structured: up to 8 operations through the real writers (write,
 * truncate, punch a hole) or on the backing bytes (flip a byte, copy a
 * sealed block over another, cut the file), then reads at fuzzer-chosen
 * offsets. Oracle: until the backing bytes are touched, the file reads
 * back exactly what was written (a shadow copy).
 */
#include "fileio.h"
#include "fuzz.h"

#include <linux/falloc.h>

#define SHADOW_MAX (128 * 1024)

static uint8_t shadow[SHADOW_MAX + 8192], out[SHADOW_MAX + 8192];

static void reads(struct fz *fz, struct sfs_file *f)
{
	uint64_t size, pos;
	ssize_t n;

	if (sfs_file_size(f->fd, &size) < 0)
		return;
	f->size = size;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t off = fz_u32(fz) % (size + 2);
		size_t len = fz_u32(fz) % sizeof(out);

		n = sfs_file_read(f, out, len, off);
		FZ_ASSERT(n < 0 || (size_t)n <= len);
		(void)sfs_file_seek(f, off, i & 1 ? SEEK_HOLE : SEEK_DATA, &pos);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz fz = {data, size};
	uint8_t mode = fz_u8(&fz);
	const struct sfs_keys *keys = fz_keys((enum sfs_cipher)((mode >> 1) % 3 + 1));
	bool sparse = mode & 8, touched = false;
	struct sfs_attrs a = {.mode = 0100600, .kind = sparse ? SFS_KIND_SPARSE : SFS_KIND_BLOCKS};
	struct sfs_file f = {.keys = keys, .sparse = sparse, .fresh = true};
	uint64_t plain = 0;
	unsigned ops;

	memcpy(f.id, fz_id, SFS_ID_BYTES);
	f.fd = fz_memfd(NULL, 0);
	if (sfs_file_init(f.fd, f.id, &a, keys) < 0)
		abort();
	if (mode & 1) {
		size_t len = fz.n < SHADOW_MAX ? fz.n : SHADOW_MAX;

		if (len && pwrite(f.fd, fz.p, len, SFS_HDR_BYTES) != (ssize_t)len)
			abort();
		fz.p += len;
		fz.n -= len;
		reads(&fz, &f);
		close(f.fd);
		return 0;
	}
	memset(shadow, 0, sizeof(shadow));
	ops = fz_u8(&fz) % 9;
	for (unsigned i = 0; i < ops; i++) {
		uint8_t op = fz_u8(&fz) % 5;
		uint64_t off = fz_u16(&fz) % (SHADOW_MAX / 2), len = fz_u16(&fz) % 8192;
		const uint8_t *p;
		size_t n;
		int rc;

		switch (op) {
		case 0: /* write */
			p = fz_chunk(&fz, 8192, &n);
			rc = (int)sfs_file_write(&f, p, n, off);
			FZ_ASSERT(rc < 0 || (size_t)rc == n);
			if (rc >= 0 && n) {
				memcpy(shadow + off, p, n);
				if (off + n > plain)
					plain = off + n;
			}
			break;
		case 1: /* truncate */
			if (sfs_file_truncate(&f, off) == 0) {
				if (off < plain)
					memset(shadow + off, 0, plain - off);
				plain = off;
			}
			break;
		case 2: /* punch a hole, keeping the size */
			if (len &&
			    sfs_file_fallocate(&f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
					       len) == 0)
				memset(shadow + off, 0,
				       off >= plain	   ? 0
				       : off + len > plain ? plain - off
							   : len);
			break;
		case 3: { /* flip one backing byte */
			struct stat st;
			uint8_t b;

			if (fstat(f.fd, &st) < 0 || st.st_size == 0)
				break;
			off = fz_u32(&fz) % (uint64_t)st.st_size;
			b = (uint8_t)(fz_u8(&fz) | 1);
			if (pread(f.fd, &b, 1, (off_t)off) == 1) {
				b ^= (uint8_t)len | 1;
				if (pwrite(f.fd, &b, 1, (off_t)off) != 1)
					abort();
			}
			touched = true;
			break;
		}
		case 4: { /* copy sealed block @off over block @len, or cut the file there */
			uint8_t blk[SFS_CBLOCK];
			ssize_t got = pread(f.fd, blk, sizeof(blk),
					    (off_t)sfs_fmt_block_offset(off % 16));

			if (got > 0 && (len & 1))
				FZ_ASSERT(pwrite(f.fd, blk, (size_t)got,
						 (off_t)sfs_fmt_block_offset(len % 16)) == got);
			else if (ftruncate(f.fd, (off_t)(SFS_HDR_BYTES + off)) < 0)
				abort();
			touched = true;
			break;
		}
		}
		if (!touched) {
			ssize_t got = sfs_file_read(&f, out, sizeof(out), 0);

			FZ_ASSERT(f.size == plain);
			FZ_ASSERT(got == (ssize_t)plain);
			FZ_ASSERT(memcmp(out, shadow, plain) == 0);
		}
	}
	reads(&fz, &f);
	close(f.fd);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	static uint8_t text[8192];

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)('a' + i % 26);
	for (unsigned mode = 0; mode < 16; mode += 2) {
		/* write 5000 bytes at 0, then 100 at 9000 (a gap), punch, truncate */
		fz_put8(&o, (uint8_t)mode);
		fz_put8(&o, 4);
		fz_put8(&o, 0);
		fz_put16(&o, 0);
		fz_put16(&o, 0);
		fz_put_chunk(&o, text, 5000);
		fz_put8(&o, 0);
		fz_put16(&o, 9000);
		fz_put16(&o, 0);
		fz_put_chunk(&o, text, 100);
		fz_put8(&o, 2);
		fz_put16(&o, 4096);
		fz_put16(&o, 4096);
		fz_put8(&o, 1);
		fz_put16(&o, 8000);
		fz_put16(&o, 0);
		for (unsigned i = 0; i < 3; i++) {
			fz_put32(&o, i * 3000);
			fz_put32(&o, 5000);
		}
		fz_seed_done(&o);
	}
	/* raw: one block's worth of garbage after a header */
	fz_put8(&o, 1);
	fz_put(&o, text, 200);
	fz_seed_done(&o);
}
