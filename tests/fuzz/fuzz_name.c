/*
 * fuzz_name.c - encrypted names: sfs_fmt_name_class of a backing name, and
 * sfs_tree_name_read over a real directory, which decrypts a short name
 * (sfs_fmt_name_decrypt) or reads a long name's sidecar, checks that it
 * belongs to the backing name (sfs_fmt_longname_matches) and decrypts it.
 *
 * Input: mode byte; even: a backing name and a sidecar's content, raw;
 * odd: a fuzzer-chosen plaintext name is encrypted with the fixed keys
 * (short or long form, sidecar written as sfs_tree_name_add writes it),
 * then the encoded name is patched (a byte set to a fuzzer-chosen value)
 * and, for a long name, the backing name may be renamed after the patched
 * sidecar's hash, as someone who can write the store could. Oracle: a
 * name decrypts only from its one canonical encoding: re-encrypting the
 * plaintext gives back the very backing name (and sidecar) it was read
 * from, so no entry has two backing names.
 */
#include "fuzz.h"
#include "tree.h"

#include <sys/stat.h>

static void check(const char *backing, const char *full, bool has_sidecar)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	char side[SFS_NAME_MAX + 8], out[SFS_NAME_MAX + 1];
	struct sfs_ename en;
	int dirfd = fz_dir(), rc;

	(void)sfs_fmt_name_class(backing);
	if (strlen(backing) + 2 >= SFS_NAME_MAX || !backing[0] || strchr(backing, '/') ||
	    strcmp(backing, ".") == 0 || strcmp(backing, "..") == 0)
		return;
	snprintf(side, sizeof(side), "%s.n", backing);
	if (has_sidecar)
		fz_put_file(dirfd, side, full, strlen(full));
	rc = sfs_tree_name_read(dirfd, backing, fz_id, keys, out);
	if (has_sidecar)
		unlinkat(dirfd, side, 0);
	if (rc != 0)
		return;
	FZ_ASSERT(out[0] && !strchr(out, '/'));
	FZ_ASSERT(sfs_fmt_name_encrypt(&en, out, fz_id, keys) == 0);
	FZ_ASSERT(strcmp(en.backing, backing) == 0);
	if (en.is_long)
		FZ_ASSERT(strcmp(en.full, full) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	char backing[SFS_NAME_MAX + 1], full[SFS_ENAME_MAX], name[SFS_NAME_MAX + 1];
	struct sfs_ename en;
	const uint8_t *p;
	size_t n;

	if (!(fz_u8(&f) & 1)) {
		p = fz_chunk(&f, SFS_NAME_MAX, &n);
		memcpy(backing, p, n);
		backing[n] = '\0';
		p = fz_chunk(&f, SFS_ENAME_MAX - 1, &n);
		memcpy(full, p, n);
		full[n] = '\0';
		check(backing, full, backing[0] == SFS_LONGNAME_PREFIX);
		return 0;
	}
	p = fz_chunk(&f, SFS_NAME_MAX, &n);
	memcpy(name, p, n);
	name[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || name[i] == '\0')
			name[i] = '_';
	if (sfs_fmt_name_encrypt(&en, name, fz_id, fz_keys(SFS_CIPHER_XCHACHA)) < 0)
		return 0;
	/* Patch: byte @at of the encoded name becomes @to (0 patches nothing). */
	uint16_t at = fz_u16(&f);
	uint8_t to = fz_u8(&f), flags = fz_u8(&f);
	char *enc = en.is_long ? en.full : en.backing;

	if (to && at < strlen(enc))
		enc[at] = (char)to;
	if (en.is_long && (flags & 1)) {
		/* Rename the entry after the patched sidecar's hash: sfs_fmt_longname_matches
		 * holds. */
		unsigned char h[32];

		crypto_generichash(h, sizeof(h), (const unsigned char *)en.full, strlen(en.full),
				   NULL, 0);
		en.backing[0] = SFS_LONGNAME_PREFIX;
		sodium_bin2base64(en.backing + 1, SFS_NAME_MAX, h, sizeof(h),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	}
	check(en.backing, en.full, en.is_long);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	static const char *names[] = {"notes.md", "a", "events.jsonl", "..a", "\xc3\xa9t\xc3\xa9"};
	char longname[201];

	memset(longname, 'x', 200);
	longname[200] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fz_put8(&o, 1);
		fz_put_chunk(&o, names[i], strlen(names[i]));
		fz_put16(&o, 0);
		fz_put8(&o, 0);
		fz_put8(&o, 0);
		fz_seed_done(&o);
	}
	for (unsigned flags = 0; flags < 2; flags++) {
		fz_put8(&o, 1);
		fz_put_chunk(&o, longname, strlen(longname));
		fz_put16(&o, 10);
		fz_put8(&o, 'A');
		fz_put8(&o, (uint8_t)flags);
		fz_seed_done(&o);
	}
	/* raw: a short backing name as encrypt makes it, and a long one with its sidecar */
	struct sfs_ename en;

	if (sfs_fmt_name_encrypt(&en, "notes.md", fz_id, fz_keys(SFS_CIPHER_XCHACHA)) < 0)
		abort();
	fz_put8(&o, 0);
	fz_put_chunk(&o, en.backing, strlen(en.backing));
	fz_put_chunk(&o, "", 0);
	fz_seed_done(&o);
	if (sfs_fmt_name_encrypt(&en, longname, fz_id, fz_keys(SFS_CIPHER_XCHACHA)) < 0)
		abort();
	fz_put8(&o, 0);
	fz_put_chunk(&o, en.backing, strlen(en.backing));
	fz_put_chunk(&o, en.full, strlen(en.full));
	fz_seed_done(&o);
}
