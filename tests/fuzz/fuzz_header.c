/*
 * fuzz_header.c - node headers: a file's (sfs_file_read_header over a
 * backing file, sfs_file_size), a directory's .sfsdir (sfs_tree_dir_load
 * over a real directory), and sfs_fmt_header_id, the keyless id reader.
 *
 * Input: mode byte; even: the rest is the header file as stored; odd: the
 * harness packs a header of fuzzer-chosen magic, kind, id and attributes
 * with the fixed keys, then applies fuzzer-chosen byte patches and a cut,
 * so the checks after authentication are reached too. Oracle: an unpatched,
 * uncut header of a valid kind opens to exactly what was packed.
 */
#include "fileio.h"
#include "fuzz.h"
#include "tree.h"

static void check(const unsigned char *hdr, size_t len, bool intact, enum sfs_node_magic magic,
		  const unsigned char *want_id, const struct sfs_attrs *want)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	uint64_t size;
	int fd, rc[2];

	(void)sfs_fmt_header_id(hdr, len, id);
	fd = fz_memfd(hdr, len);
	rc[SFS_MAGIC_FILE] = sfs_file_read_header(fd, id, &a, keys);
	if (intact && magic == SFS_MAGIC_FILE && rc[SFS_MAGIC_FILE] == 0)
		FZ_ASSERT(memcmp(id, want_id, SFS_ID_BYTES) == 0 && a.mode == want->mode &&
			  a.uid == want->uid && a.gid == want->gid && a.rdev == want->rdev &&
			  a.kind == want->kind);
	(void)sfs_file_size(fd, &size);
	close(fd);

	fz_put_file(fz_dir(), SFS_DIRHDR_NAME, hdr, len);
	rc[SFS_MAGIC_DIR] = sfs_tree_dir_load(fz_dir(), id, &a, keys);
	if (intact && magic == SFS_MAGIC_DIR)
		FZ_ASSERT(rc[SFS_MAGIC_DIR] == 0 && memcmp(id, want_id, SFS_ID_BYTES) == 0 &&
			  a.mode == want->mode && a.uid == want->uid && a.gid == want->gid &&
			  a.rdev == want->rdev);
	if (intact && magic == SFS_MAGIC_FILE)
		FZ_ASSERT(rc[SFS_MAGIC_FILE] == (want->kind <= SFS_KIND_SPARSE ? 0 : -EBADMSG));
	/* A header is never both a file's and a directory's. */
	FZ_ASSERT(rc[SFS_MAGIC_FILE] != 0 || rc[SFS_MAGIC_DIR] != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	unsigned char hdr[SFS_HDR_BYTES + 32], id[SFS_ID_BYTES];
	enum sfs_node_magic magic = SFS_MAGIC_FILE;
	struct sfs_attrs a = {0};
	unsigned patches, cut;
	size_t len;

	if (!(fz_u8(&f) & 1)) {
		len = f.n < sizeof(hdr) ? f.n : sizeof(hdr);
		fz_take(&f, hdr, len);
		check(hdr, len, false, magic, NULL, &a);
		return 0;
	}
	magic = fz_u8(&f) & 1 ? SFS_MAGIC_DIR : SFS_MAGIC_FILE;
	fz_take(&f, id, sizeof(id));
	a.mode = fz_u32(&f);
	a.uid = fz_u32(&f);
	a.gid = fz_u32(&f);
	a.rdev = fz_u32(&f);
	a.kind = fz_u16(&f);
	sfs_fmt_header_pack(hdr, magic, id, &a, fz_keys(SFS_CIPHER_XCHACHA));
	if (magic == SFS_MAGIC_DIR)
		a.kind = 0;
	patches = fz_u8(&f) % 4;
	for (unsigned i = 0; i < patches; i++) {
		unsigned pos = fz_u8(&f) % SFS_HDR_BYTES;

		hdr[pos] ^= fz_u8(&f);
	}
	cut = fz_u8(&f);
	len = cut && cut < SFS_HDR_BYTES ? cut : SFS_HDR_BYTES;
	check(hdr, len, len == SFS_HDR_BYTES && patches == 0, magic, id, &a);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs a = {.mode = 0100644, .uid = 1000, .gid = 1000, .kind = SFS_KIND_LOG};
	unsigned char hdr[SFS_HDR_BYTES];

	/* As stored: a file's header and a directory's. */
	sfs_fmt_header_pack(hdr, SFS_MAGIC_FILE, fz_id, &a, keys);
	fz_put8(&o, 0);
	fz_put(&o, hdr, sizeof(hdr));
	fz_seed_done(&o);
	a.mode = 040755;
	a.kind = 0;
	sfs_fmt_header_pack(hdr, SFS_MAGIC_DIR, fz_id, &a, keys);
	fz_put8(&o, 0);
	fz_put(&o, hdr, sizeof(hdr));
	fz_seed_done(&o);
	/* Structured: each magic and kind, intact, then patched. */
	for (unsigned m = 0; m < 2; m++)
		for (unsigned kind = 0; kind < 4; kind++)
			for (unsigned patch = 0; patch < 2; patch++) {
				fz_put8(&o, 1);
				fz_put8(&o, (uint8_t)m);
				fz_put(&o, fz_id, SFS_ID_BYTES);
				fz_put32(&o, m ? 040700 : 0100600);
				fz_put32(&o, 0);
				fz_put32(&o, 0);
				fz_put32(&o, 0);
				fz_put16(&o, (uint16_t)kind);
				fz_put8(&o, (uint8_t)patch);
				fz_put8(&o, 6);
				fz_put8(&o, 1);
				fz_put8(&o, 0);
				fz_seed_done(&o);
			}
}
