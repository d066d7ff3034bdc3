/*
 * test_keyfile.c - key file wrap/unwrap: roundtrip, wrong password, a flipped
 * byte at every one of the 112 positions of version 1 and the 116 of version 2
 * (which names the content cipher), wrong lengths, versions and ciphers;
 * the public part read without a password.
 */
#include "check.h"
#include "format.h"

#include <errno.h>
#include <stdbool.h>

/* Cheap Argon2id cost so the 112 tamper cases stay fast. */
#define OPS 2
#define MEM 8192

static const char pw[] = "correct horse battery";
#define PWLEN (sizeof(pw) - 1)

static unsigned char *master, *got;

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_roundtrip(void)
{
	unsigned char kf[SFS_KEYFILE_MAX], kf2[SFS_KEYFILE_MAX];
	struct sfs_keyfile info;

	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	/* "SFSK" | version 1 | alg 1 | ops | mem */
	CHECK_HEX(kf, "5346534b", 4);
	CHECK_HEX(kf + 4, "01000100", 4);
	CHECK_HEX(kf + 8, "0200000000000000", 8);
	CHECK_HEX(kf + 16, "0020000000000000", 8);
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, &info), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(info.version, 1);
	CHECK_EQ(info.alg, SFS_KDF_ALG_ARGON2ID13);
	CHECK_EQ(info.opslimit, OPS);
	CHECK_EQ(info.memlimit, MEM);
	CHECK_MEM(info.salt, kf + 24, SFS_SALT_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), 0);

	/* Fresh salt and nonce: wrapping again gives other bytes. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf2, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	CHECK(memcmp(kf + 24, kf2 + 24, SFS_SALT_BYTES) != 0);
	CHECK(memcmp(kf + 40, kf2 + 40, SFS_KEYFILE_BYTES - 40) != 0);

	/* Wrong passwords: another one, a prefix, one with a trailing byte, empty. */
	memset(got, 0xee, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, "correct horse", 13, NULL),
		 -EKEYREJECTED);
	CHECK(all_zero(got, SFS_KEY_BYTES));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN - 1, NULL),
		 -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, "correct horse battery!",
					PWLEN + 1, NULL),
		 -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, "", 0, NULL), -EKEYREJECTED);

	/* The password is bytes, not a C string: an embedded NUL counts. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf2, master, "a\0b", 3, OPS, MEM, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf2, SFS_KEYFILE_BYTES, "a\0c", 3, NULL),
		 -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf2, SFS_KEYFILE_BYTES, "a\0b", 3, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);

	/* Wrong lengths. */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES - 1, pw, PWLEN, NULL), -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, 0, pw, PWLEN, NULL), -EUCLEAN);
	unsigned char longer[SFS_KEYFILE_BYTES + 1];

	memcpy(longer, kf, SFS_KEYFILE_BYTES);
	longer[SFS_KEYFILE_BYTES] = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, longer, sizeof(longer), pw, PWLEN, NULL), -EUCLEAN);

	/* Version 4 and an unknown algorithm are refused before any KDF. */
	kf[4] = 4;
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, &info),
		 -EPROTONOSUPPORT);
	CHECK_EQ(info.version, 4);
	/* Version 3 (key slots) in 112 bytes: not a key file (16 + 224 per slot). */
	kf[4] = 3;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), -EUCLEAN);
	/* Version 2 in 112 bytes: not a key file (version 2 has 116). */
	kf[4] = 2;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), -EUCLEAN);
	kf[4] = 1;
	kf[6] = 2;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL),
		 -EPROTONOSUPPORT);
	kf[6] = 1;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), 0);
}

/*
 * What flipping bit 0 of byte @i must give. Cost fields changed into values
 * libsodium refuses, or above the sensitive level, are -EUCLEAN;
 * changed into valid but costly values (gigabytes, millions of passes) they
 * are skipped (return 1): the change is still caught by the AEAD, as the
 * cheap ones show.
 */
static int expected_after_flip(const unsigned char *kf, size_t len, size_t i, int *want)
{
	unsigned char t[SFS_KEYFILE_MAX];
	uint64_t ops, mem;

	if (i < 4) {
		*want = -EUCLEAN;
		return 0;
	}
	/*
	 * In version 2, the cipher's low byte flipped to another known cipher
	 * (2 <-> 3, AES-256-GCM legacy and derived) is caught by the AEAD.
	 */
	if (len == SFS_KEYFILE_V2_BYTES && i == 40 && (kf[40] ^ 0x01) >= SFS_CIPHER_XCHACHA &&
	    (kf[40] ^ 0x01) <= SFS_CIPHER_AESGCM_DERIVED && kf[41] == 0) {
		*want = -EKEYREJECTED;
		return 0;
	}
	/* version 2 flipped to 3, which has slots of its own length: not a key file */
	if (i == 4 && kf[4] == 2) {
		*want = -EUCLEAN;
		return 0;
	}
	/* version, algorithm; in version 2 the cipher and its zero field */
	if (i < 8 || (len == SFS_KEYFILE_V2_BYTES && i >= 40 && i < 44)) {
		*want = -EPROTONOSUPPORT;
		return 0;
	}
	*want = -EKEYREJECTED;
	if (i >= 24)
		return 0;
	memcpy(t, kf, len);
	t[i] ^= 0x01;
	ops = sfs_get_le64(t + 8);
	mem = sfs_get_le64(t + 16);
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE) {
		*want = -EUCLEAN;
		return 0;
	}
	return ops * mem > (1ull << 28);
}

static void test_every_byte(enum sfs_cipher cipher)
{
	unsigned char kf[SFS_KEYFILE_MAX];
	int tested = 0, want;
	ssize_t len = sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, cipher);

	REQUIRE(len == (cipher == SFS_CIPHER_XCHACHA ? SFS_KEYFILE_BYTES : SFS_KEYFILE_V2_BYTES));
	for (size_t i = 0; i < (size_t)len; i++) {
		int rc;

		if (expected_after_flip(kf, (size_t)len, i, &want))
			continue;
		kf[i] ^= 0x01;
		memset(got, 0xee, SFS_KEY_BYTES);
		rc = sfs_fmt_keyfile_unwrap(got, kf, (size_t)len, pw, PWLEN, NULL);
		kf[i] ^= 0x01;
		if (rc != want) {
			fprintf(stderr, "flip of key file byte %zu: %d, want %d\n", i, rc, want);
			check_failures++;
		}
		CHECK(all_zero(got, SFS_KEY_BYTES));
		tested++;
	}
	/* Only flips to valid but costly values are skipped: at most 4 bytes. */
	CHECK(tested >= (int)len - 4);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, (size_t)len, pw, PWLEN, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
}

/* A tampered cost beyond the sensitive level is refused at once, not run. */
static void test_cost_cap(void)
{
	unsigned char kf[SFS_KEYFILE_MAX];

	REQUIRE(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA) ==
		SFS_KEYFILE_BYTES);
	sfs_put_le64(kf + 8, 0xffffffffull);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), -EUCLEAN);
	REQUIRE(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA) ==
		SFS_KEYFILE_BYTES);
	sfs_put_le64(kf + 16, 1ull << 40);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), -EUCLEAN);
}

/* One real-cost wrap, as mkfs --kdf=interactive writes it. */
static void test_interactive(void)
{
	unsigned char kf[SFS_KEYFILE_MAX];
	uint64_t ops, mem;

	REQUIRE(sfs_kdf_params(SFS_KDF_INTERACTIVE, &ops, &mem) == 0);
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, "pw", 2, ops, mem, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	CHECK_EQ(sfs_get_le64(kf + 8), ops);
	CHECK_EQ(sfs_get_le64(kf + 16), mem);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, "pw", 2, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, "pw", 2, 0, mem, SFS_CIPHER_XCHACHA), -EINVAL);
}

/* Version 2: the cipher is named, bound as AD, and survives a round trip. */
static void test_v2(void)
{
	unsigned char kf[SFS_KEYFILE_MAX + 1];
	struct sfs_keyfile info;

	if (!sfs_cipher_available(SFS_CIPHER_AESGCM)) {
		fprintf(stderr, "test_v2: skipped, no AES-NI here (wrap refuses -EINVAL)\n");
		CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_AESGCM),
			 -EINVAL);
		return;
	}
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_AESGCM),
		 SFS_KEYFILE_V2_BYTES);
	/* "SFSK" | version 2 | alg 1 | ... | cipher 2 | 0 */
	CHECK_HEX(kf, "5346534b02000100", 8);
	CHECK_HEX(kf + 40, "02000000", 4);
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, &info), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(info.version, 2);
	CHECK_EQ(info.cipher, SFS_CIPHER_AESGCM);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, "pw", 2, NULL),
		 -EKEYREJECTED);
	/* Lengths of the other version, or one byte more or less. */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, NULL), -EUCLEAN);
	kf[SFS_KEYFILE_V2_BYTES] = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES + 1, pw, PWLEN, NULL),
		 -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES - 1, pw, PWLEN, NULL),
		 -EUCLEAN);
	/* Cipher 2 -> 1 (a downgrade) breaks the AD: it looks like a wrong password. */
	kf[40] = SFS_CIPHER_XCHACHA;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, &info),
		 -EKEYREJECTED);
	kf[40] = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL),
		 -EPROTONOSUPPORT);
	kf[40] = SFS_CIPHER_AESGCM;
	kf[42] = 1; /* a feature this build does not know */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL),
		 -EPROTONOSUPPORT);
	kf[42] = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL), 0);
	/* Cipher 3, derived AES-256-GCM keys: named 3, bound the same way. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_AESGCM_DERIVED),
		 SFS_KEYFILE_V2_BYTES);
	CHECK_HEX(kf, "5346534b02000100", 8);
	CHECK_HEX(kf + 40, "03000000", 4);
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, &info), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(info.cipher, SFS_CIPHER_AESGCM_DERIVED);
	/* 3 -> 2 (back to the bounded legacy form) or -> 1: the AD breaks, a wrong password. */
	for (int c = SFS_CIPHER_XCHACHA; c <= SFS_CIPHER_AESGCM; c++) {
		kf[40] = (unsigned char)c;
		CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL),
			 -EKEYREJECTED);
	}
	kf[40] = 4; /* a cipher this build does not know */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL),
		 -EPROTONOSUPPORT);
	kf[40] = SFS_CIPHER_AESGCM_DERIVED;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_V2_BYTES, pw, PWLEN, NULL), 0);
	/* A version 1 file names no cipher: XChaCha20-Poly1305. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	info.cipher = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, SFS_KEYFILE_BYTES, pw, PWLEN, &info), 0);
	CHECK_EQ(info.cipher, SFS_CIPHER_XCHACHA);
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, 0), -EINVAL);
}

/* The public part, read without a password (sessionctl new and list show it). */
static void test_info(void)
{
	unsigned char kf[SFS_KEYFILE_MAX];
	struct sfs_keyfile info;

	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_XCHACHA),
		 SFS_KEYFILE_BYTES);
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_info(kf, SFS_KEYFILE_BYTES, &info), 0);
	CHECK_EQ(info.version, 1);
	CHECK_EQ(info.opslimit, OPS);
	CHECK_EQ(info.memlimit, MEM);
	CHECK_EQ(info.cipher, SFS_CIPHER_XCHACHA);
	CHECK_EQ(sfs_fmt_keyfile_info(kf, SFS_KEYFILE_BYTES - 1, &info), -EUCLEAN);
	kf[4] = 9; /* an unknown version */
	CHECK_EQ(sfs_fmt_keyfile_info(kf, SFS_KEYFILE_BYTES, &info), -EPROTONOSUPPORT);
	kf[0] = 'X'; /* not a key file */
	CHECK_EQ(sfs_fmt_keyfile_info(kf, SFS_KEYFILE_BYTES, &info), -EUCLEAN);
	if (!sfs_cipher_available(SFS_CIPHER_AESGCM))
		return;
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM, SFS_CIPHER_AESGCM),
		 SFS_KEYFILE_V2_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_info(kf, SFS_KEYFILE_V2_BYTES, &info), 0);
	CHECK_EQ(info.version, 2);
	CHECK_EQ(info.cipher, SFS_CIPHER_AESGCM);
}

int main(void)
{
	REQUIRE(sfs_crypto_init() == 0);
	master = sodium_malloc(SFS_KEY_BYTES);
	got = sodium_malloc(SFS_KEY_BYTES);
	REQUIRE(master && got);
	fixed_master(master);
	test_roundtrip();
	test_every_byte(SFS_CIPHER_XCHACHA);
	if (sfs_cipher_available(SFS_CIPHER_AESGCM)) {
		test_every_byte(SFS_CIPHER_AESGCM);
		test_every_byte(SFS_CIPHER_AESGCM_DERIVED);
	}
	test_v2();
	test_cost_cap();
	test_interactive();
	test_info();
	sodium_free(master);
	sodium_free(got);
	return check_done();
}
