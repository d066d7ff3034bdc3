/*
 * fuzz_xattr.c - extended attribute blobs: sfs_xattr_open (header, size,
 * authentication, then the packed plaintext's entries), sfs_xattr_load
 * from a real .sfsx/ directory, and what is done with an opened set
 * (get, list, set, del).
 *
 * Input: mode byte; even: the blob as stored, raw; odd: a fuzzer-chosen
 * plaintext (u32 count and entries, well formed or not) sealed with the
 * fixed keys for the node, so every check of the plaintext is reached,
 * then a fuzzer-chosen name and value to set and delete. Oracles: an
 * opened set lists each of its names once and gets each; a set changed by
 * sfs_xattr_set seals and opens back to the same bytes.
 */
#include "fuzz.h"
#include "xattr.h"

#include <sys/stat.h>

static void use(struct fz *f, struct sfs_xattrs *x)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static char list[SFS_XATTR_LIST_MAX + 1024];
	static unsigned char blob[SFS_XATTR_OVERHEAD + SFS_XATTR_PLAIN_MAX];
	struct sfs_xattrs y = {0};
	const unsigned char *v;
	char name[SFS_XATTR_NAME_MAX + 2];
	const uint8_t *p;
	size_t n, vlen;
	ssize_t ln;

	ln = sfs_xattr_list(x, "user.", NULL, 0);
	if (ln >= 0 && (size_t)ln <= sizeof(list)) {
		FZ_ASSERT(sfs_xattr_list(x, "user.", list, sizeof(list)) == ln);
		for (char *s = list; s < list + ln; s += strlen(s) + 1) {
			FZ_ASSERT(strncmp(s, "user.", 5) == 0);
			FZ_ASSERT(sfs_xattr_get(x, s + 5, &v, &vlen) == 0);
		}
	}
	p = fz_chunk(f, SFS_XATTR_NAME_MAX + 1, &n);
	memcpy(name, p, n);
	name[n] = '\0';
	p = fz_chunk(f, 4096, &n);
	if (sfs_xattr_set(x, name, p, n, fz_u8(f) % 4, 5) == 0) {
		FZ_ASSERT(sfs_xattr_get(x, name, &v, &vlen) == 0 && vlen == n &&
			  memcmp(v, p, n) == 0);
		FZ_ASSERT(sfs_xattr_blob_len(x) <= sizeof(blob));
		sfs_xattr_seal(blob, x, fz_id, keys);
		FZ_ASSERT(sfs_xattr_open(&y, blob, sfs_xattr_blob_len(x), fz_id, keys) == 0);
		FZ_ASSERT(y.len == x->len && y.count == x->count &&
			  memcmp(y.plain, x->plain, x->len) == 0);
		sfs_xattrs_free(&y);
		FZ_ASSERT(sfs_xattr_del(x, name) == 0);
		FZ_ASSERT(sfs_xattr_get(x, name, &v, &vlen) == -ENODATA);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static unsigned char blob[SFS_XATTR_OVERHEAD + SFS_XATTR_PLAIN_MAX + 64];
	struct fz f = {data, size};
	struct sfs_xattrs x = {0};
	char path[64], hex[2 * SFS_ID_BYTES + 1];
	const uint8_t *p;
	size_t n;

	if (!(fz_u8(&f) & 1)) {
		p = fz_chunk(&f, sizeof(blob), &n);
		if (sfs_xattr_open(&x, p, n, fz_id, keys) == 0)
			use(&f, &x);
		sfs_xattrs_free(&x);
		/* The same bytes as node fz_id's blob in a session root. */
		mkdirat(fz_dir(), SFS_XATTR_DIR, 0700);
		sfs_xattr_blob_name(hex, fz_id);
		snprintf(path, sizeof(path), "%s/%s", SFS_XATTR_DIR, hex);
		fz_put_file(fz_dir(), path, p, n);
		(void)sfs_xattr_load(fz_dir(), fz_id, keys, &x);
		sfs_xattrs_free(&x);
		return 0;
	}
	uint32_t count = fz_u32(&f);

	p = fz_chunk(&f, SFS_XATTR_PLAIN_MAX, &n);
	x.plain = malloc(n + 4);
	if (!x.plain)
		abort();
	sfs_put_le32(x.plain, count);
	memcpy(x.plain + 4, p, n);
	x.len = n + 4;
	x.count = count;
	sfs_xattr_seal(blob, &x, fz_id, keys);
	n = sfs_xattr_blob_len(&x);
	sfs_xattrs_free(&x);
	if (sfs_xattr_open(&x, blob, n, fz_id, keys) == 0)
		use(&f, &x);
	sfs_xattrs_free(&x);
	return 0;
}

static void seeds(void)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	static unsigned char blob[4096];
	static struct fz_out o;
	struct sfs_xattrs x = {0};

	/* Sets made by sfs_xattr_set: one entry, then three. */
	for (unsigned k = 1; k <= 3; k += 2) {
		for (unsigned i = 0; i < k; i++) {
			char name[16];

			snprintf(name, sizeof(name), "attr%u", i);
			if (sfs_xattr_set(&x, name, "value-of-it", 5 + i, 0, 5) < 0)
				abort();
		}
		/* structured: the packed plaintext as the writer made it */
		fz_put8(&o, 1);
		fz_put32(&o, x.count);
		fz_put_chunk(&o, x.plain + 4, x.len - 4);
		fz_put_chunk(&o, "new", 3);
		fz_put_chunk(&o, "v", 1);
		fz_put8(&o, 0);
		fz_seed_done(&o);
		/* raw: the blob as sfs_xattr_store writes it */
		sfs_xattr_seal(blob, &x, fz_id, keys);
		fz_put8(&o, 0);
		fz_put_chunk(&o, blob, sfs_xattr_blob_len(&x));
		fz_put_chunk(&o, "attr0", 5);
		fz_put_chunk(&o, "", 0);
		fz_put8(&o, 2);
		fz_seed_done(&o);
		sfs_xattrs_free(&x);
	}
}
