/*
 * fuzz_keyfile.c - session key files: sfs_fmt_keyfile_info (the public
 * part: magic, version, algorithm, cost, salt, cipher) and
 * sfs_fmt_keyfile_unwrap (Argon2id, then the sealed master key), as unlock
 * and `sessionctl list` read them.
 *
 * Input: mode byte; even: the key file, raw; odd: the harness wraps a
 * fuzzer-chosen master key under a fuzzer-chosen password with the
 * cheapest Argon2id cost (so an exec stays fast) in a version 1 or 2 file,
 * then sets up to 3 bytes and unwraps with the same or another password.
 * Unwrap runs only where the file's cost is that cheap one (a costlier
 * Argon2id is libsodium's, not this parser's, and would stall the fuzzer);
 * info runs on every input. Oracle: an intact file unwraps to its master
 * key with its password and is rejected with any other.
 */
#include "format.h"
#include "fuzz.h"

#define OPS crypto_pwhash_argon2id_OPSLIMIT_MIN
#define MEM crypto_pwhash_argon2id_MEMLIMIT_MIN

static unsigned char *master;

static int unwrap(const unsigned char *kf, size_t len, const char *pw, size_t pwlen)
{
	struct sfs_keyfile info;
	int rc = sfs_fmt_keyfile_info(kf, len, &info);

	if (rc < 0 || info.opslimit > OPS || info.memlimit > MEM)
		return rc < 0 ? rc : 1;
	return sfs_fmt_keyfile_unwrap(master, kf, len, pw, pwlen, &info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char kf[SFS_KEYFILE_MAX + 16], want[SFS_KEY_BYTES];
	char pw[64], other[64];
	struct fz f = {data, size};
	const uint8_t *p;
	size_t n, pwlen, otherlen;
	ssize_t len;
	int rc;

	if (!master && !(master = sodium_malloc(SFS_KEY_BYTES)))
		abort();
	if (!(fz_u8(&f) & 1)) {
		p = fz_chunk(&f, sizeof(kf), &n);
		(void)unwrap(p, n, "password", 8);
		return 0;
	}
	uint8_t cipher = fz_u8(&f) % 3 + 1;

	fz_take(&f, want, sizeof(want));
	p = fz_chunk(&f, sizeof(pw), &pwlen);
	memcpy(pw, p, pwlen);
	p = fz_chunk(&f, sizeof(other), &otherlen);
	memcpy(other, p, otherlen);
	if (!sfs_cipher_available(cipher))
		cipher = SFS_CIPHER_XCHACHA;
	len = sfs_fmt_keyfile_wrap(kf, want, pw, pwlen, OPS, MEM, cipher);
	FZ_ASSERT(len == (cipher == SFS_CIPHER_XCHACHA ? SFS_KEYFILE_BYTES : SFS_KEYFILE_V2_BYTES));
	unsigned patches = fz_u8(&f) % 4;

	for (unsigned i = 0; i < patches; i++) {
		uint8_t at = fz_u8(&f) % (uint8_t)len, to = fz_u8(&f);

		if (kf[at] == to)
			patches = i; /* an unchanged byte patches nothing */
		kf[at] = to;
	}
	rc = unwrap(kf, (size_t)len, pw, pwlen);
	if (patches == 0) {
		FZ_ASSERT(rc == 0 && memcmp(master, want, sizeof(want)) == 0);
		rc = unwrap(kf, (size_t)len, other, otherlen);
		FZ_ASSERT(rc ==
			  (otherlen == pwlen && memcmp(other, pw, pwlen) == 0 ? 0 : -EKEYREJECTED));
	}
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	unsigned char kf[SFS_KEYFILE_MAX];

	for (uint8_t cipher = 0; cipher < 3; cipher++) {
		fz_put8(&o, 1);
		fz_put8(&o, cipher);
		for (unsigned i = 0; i < SFS_KEY_BYTES; i++)
			fz_put8(&o, (uint8_t)i);
		fz_put_chunk(&o, "password", 8);
		fz_put_chunk(&o, cipher ? "passwore" : "password", 8);
		fz_put8(&o, cipher == 2 ? 1 : 0);
		fz_put8(&o, 40);
		fz_put8(&o, 3);
		fz_seed_done(&o);
	}
	/* raw: key files as mkfs.sessionfs writes them (at the cheapest cost) */
	for (uint8_t cipher = 1; cipher <= 3; cipher += 2) {
		ssize_t len = sfs_fmt_keyfile_wrap(
			kf, kf, "password", 8, OPS, MEM,
			sfs_cipher_available(cipher) ? cipher : SFS_CIPHER_XCHACHA);
		if (len < 0)
			abort();
		fz_put8(&o, 0);
		fz_put_chunk(&o, kf, (size_t)len);
		fz_seed_done(&o);
	}
}
