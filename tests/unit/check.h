/*
 * check.h - tiny assertion helpers shared by the unit tests.
 *
 * A failed CHECK prints where and what, counts the failure and goes on, so
 * one run reports every broken case; main() ends with `return check_done();`
 * which exits non-zero if anything failed.
 */
#ifndef SFS_TEST_CHECK_H
#define SFS_TEST_CHECK_H

#include "crypto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* Integers (return codes, sizes): prints both values on failure. */
#define CHECK_EQ(got, want)                                                                        \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		if (g_ != w_) {                                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, want %s == %lld\n", __FILE__,          \
				__LINE__, #got, g_, #want, w_);                                    \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(got, want, len)                                                                  \
	do {                                                                                       \
		if (memcmp((got), (want), (len)) != 0) {                                           \
			fprintf(stderr, "%s:%d: %s differs from %s (%zu bytes)\n", __FILE__,       \
				__LINE__, #got, #want, (size_t)(len));                             \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		if (!g_ || strcmp(g_, w_) != 0) {                                                  \
			fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__,  \
				#got, g_ ? g_ : "(null)", w_);                                     \
			check_failures++;                                                          \
		}                                                                                  \
	} while (0)

/* Stop the test: for setup steps nothing after them can survive. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static inline int check_done(void)
{
	if (check_failures)
		fprintf(stderr, "%d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}

/* Decode a hex string of exactly 2 * @len digits into @out. */
static inline void unhex(unsigned char *out, const char *hex, size_t len)
{
	REQUIRE(strlen(hex) == 2 * len);
	for (size_t i = 0; i < len; i++) {
		unsigned int b;

		REQUIRE(sscanf(hex + 2 * i, "%2x", &b) == 1);
		out[i] = (unsigned char)b;
	}
}

/* Compare @len bytes at @got with the hex string @want. */
#define CHECK_HEX(got, want, len)                                                                  \
	do {                                                                                       \
		unsigned char w_[512];                                                             \
		REQUIRE((len) <= sizeof(w_));                                                      \
		unhex(w_, (want), (len));                                                          \
		CHECK_MEM((got), w_, (len));                                                       \
	} while (0)

/*
 * A seeded xorshift64 generator for reproducible random tests: set
 * check_rng to the test's seed, then call rnd() and below().
 */
static uint64_t check_rng = 0x5eed5eed12345678ull;

static inline uint64_t rnd(void)
{
	check_rng ^= check_rng << 13;
	check_rng ^= check_rng >> 7;
	check_rng ^= check_rng << 17;
	return check_rng;
}

/* A random number in [0, n); 0 when n is 0. */
static inline uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* A fixed test master key: bytes 0, 1, ..., 31. */
static inline void fixed_master(unsigned char master[32])
{
	for (int i = 0; i < 32; i++)
		master[i] = (unsigned char)i;
}

/* libsodium ready, and the key set of fixed_master(). */
static inline struct sfs_keys *fixed_keys(void)
{
	unsigned char master[32];
	struct sfs_keys *keys;

	REQUIRE(sfs_crypto_init() == 0);
	fixed_master(master);
	keys = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(keys);
	return keys;
}

#endif
