/*
 * test_keyfile.c - key file wrap/unwrap: roundtrip, wrong password, a flipped
 * byte at every one of the 112 positions, wrong lengths and versions.
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
	unsigned char kf[SFS_KEYFILE_BYTES], kf2[SFS_KEYFILE_BYTES];
	struct sfs_keyfile info;

	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM), 0);
	/* "SFSK" | version 1 | alg 1 | ops | mem */
	CHECK_HEX(kf, "5346534b", 4);
	CHECK_HEX(kf + 4, "01000100", 4);
	CHECK_HEX(kf + 8, "0200000000000000", 8);
	CHECK_HEX(kf + 16, "0020000000000000", 8);
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, &info), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(info.version, 1);
	CHECK_EQ(info.alg, SFS_KDF_ALG_ARGON2ID13);
	CHECK_EQ(info.opslimit, OPS);
	CHECK_EQ(info.memlimit, MEM);
	CHECK_MEM(info.salt, kf + 24, SFS_SALT_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), 0);

	/* Fresh salt and nonce: wrapping again gives other bytes. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf2, master, pw, PWLEN, OPS, MEM), 0);
	CHECK(memcmp(kf + 24, kf2 + 24, SFS_SALT_BYTES) != 0);
	CHECK(memcmp(kf + 40, kf2 + 40, SFS_KEYFILE_BYTES - 40) != 0);

	/* Wrong passwords: another one, a prefix, one with a trailing byte, empty. */
	memset(got, 0xee, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), "correct horse", 13, NULL),
		 -EKEYREJECTED);
	CHECK(all_zero(got, SFS_KEY_BYTES));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN - 1, NULL), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), "correct horse battery!", PWLEN + 1,
					NULL),
		 -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), "", 0, NULL), -EKEYREJECTED);

	/* The password is bytes, not a C string: an embedded NUL counts. */
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf2, master, "a\0b", 3, OPS, MEM), 0);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf2, sizeof(kf2), "a\0c", 3, NULL), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf2, sizeof(kf2), "a\0b", 3, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);

	/* Wrong lengths. */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf) - 1, pw, PWLEN, NULL), -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, 0, pw, PWLEN, NULL), -EUCLEAN);
	unsigned char longer[SFS_KEYFILE_BYTES + 1];

	memcpy(longer, kf, sizeof(kf));
	longer[SFS_KEYFILE_BYTES] = 0;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, longer, sizeof(longer), pw, PWLEN, NULL), -EUCLEAN);

	/* Version 2 and an unknown algorithm are refused before any KDF. */
	kf[4] = 2;
	memset(&info, 0, sizeof(info));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, &info), -EPROTONOSUPPORT);
	CHECK_EQ(info.version, 2);
	kf[4] = 1;
	kf[6] = 2;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), -EPROTONOSUPPORT);
	kf[6] = 1;
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), 0);
}

/*
 * What flipping bit 0 of byte @i must give. Cost fields changed into values
 * libsodium refuses, or above the sensitive level, are -EUCLEAN;
 * changed into valid but costly values (gigabytes, millions of passes) they
 * are skipped (return 1): the change is still caught by the AEAD, as the
 * cheap ones show.
 */
static int expected_after_flip(const unsigned char *kf, size_t i, int *want)
{
	unsigned char t[SFS_KEYFILE_BYTES];
	uint64_t ops, mem;

	if (i < 4) {
		*want = -EUCLEAN;
		return 0;
	}
	if (i < 8) {
		*want = -EPROTONOSUPPORT;
		return 0;
	}
	*want = -EKEYREJECTED;
	if (i >= 24)
		return 0;
	memcpy(t, kf, sizeof(t));
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

static void test_every_byte(void)
{
	unsigned char kf[SFS_KEYFILE_BYTES];
	int tested = 0, want;

	REQUIRE(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM) == 0);
	for (size_t i = 0; i < SFS_KEYFILE_BYTES; i++) {
		int rc;

		if (expected_after_flip(kf, i, &want))
			continue;
		kf[i] ^= 0x01;
		memset(got, 0xee, SFS_KEY_BYTES);
		rc = sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL);
		kf[i] ^= 0x01;
		if (rc != want) {
			fprintf(stderr, "flip of key file byte %zu: %d, want %d\n", i, rc, want);
			check_failures++;
		}
		CHECK(all_zero(got, SFS_KEY_BYTES));
		tested++;
	}
	/* Only flips to valid but costly values are skipped: at most 4 bytes. */
	CHECK(tested >= (int)SFS_KEYFILE_BYTES - 4);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
}

/* A tampered cost beyond the sensitive level is refused at once, not run. */
static void test_cost_cap(void)
{
	unsigned char kf[SFS_KEYFILE_BYTES];

	REQUIRE(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM) == 0);
	sfs_put_le64(kf + 8, 0xffffffffull);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), -EUCLEAN);
	REQUIRE(sfs_fmt_keyfile_wrap(kf, master, pw, PWLEN, OPS, MEM) == 0);
	sfs_put_le64(kf + 16, 1ull << 40);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), pw, PWLEN, NULL), -EUCLEAN);
}

/* One real-cost wrap, as mkfs --kdf=interactive writes it. */
static void test_interactive(void)
{
	unsigned char kf[SFS_KEYFILE_BYTES];
	uint64_t ops, mem;

	REQUIRE(sfs_kdf_params(SFS_KDF_INTERACTIVE, &ops, &mem) == 0);
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, "pw", 2, ops, mem), 0);
	CHECK_EQ(sfs_get_le64(kf + 8), ops);
	CHECK_EQ(sfs_get_le64(kf + 16), mem);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, kf, sizeof(kf), "pw", 2, NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_wrap(kf, master, "pw", 2, 0, mem), -EINVAL);
}

int main(void)
{
	REQUIRE(sfs_crypto_init() == 0);
	master = sodium_malloc(SFS_KEY_BYTES);
	got = sodium_malloc(SFS_KEY_BYTES);
	REQUIRE(master && got);
	fixed_master(master);
	test_roundtrip();
	test_every_byte();
	test_cost_cap();
	test_interactive();
	sodium_free(master);
	sodium_free(got);
	return check_done();
}
