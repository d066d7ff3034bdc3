/*
 * test_crypto.c - the crypto layer against fixed vectors: XChaCha20-Poly1305
 * (draft-irtf-cfrg-xchacha-03, A.3.1) through sfs_crypto_open, golden subkeys
 * of a fixed master key, seal/open tamper cases, name SIV, Argon2id, and the
 * AES-256-GCM path against a vector made outside libsodium (Python's hashlib
 * BLAKE2b and OpenSSL's AES-GCM through python3-cryptography).
 */
#include "check.h"
#include "crypto.h"

#include <errno.h>
#include <stdbool.h>

static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				"only one tip for the future, sunscreen would be it.";

/* draft-irtf-cfrg-xchacha-03, Appendix A.3.1: ciphertext then tag. */
static const char xchacha_ct[] = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
				 "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
				 "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
				 "21f9664c97637da9768812f615c68b13b52e";
static const char xchacha_tag[] = "c0875924c1c7987947deafd8780acf49";

static void test_xchacha_kat(void)
{
	unsigned char key[32], in[24 + 114 + 16], out[114], ad[12];
	size_t n = sizeof(sunscreen) - 1;

	REQUIRE(n == 114);
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(0x80 + i);
	for (int i = 0; i < 24; i++)
		in[i] = (unsigned char)(0x40 + i);
	unhex(ad, "50515253c0c1c2c3c4c5c6c7", sizeof(ad));
	unhex(in + 24, xchacha_ct, n);
	unhex(in + 24 + n, xchacha_tag, 16);

	CHECK_EQ(sfs_crypto_open(out, in, sizeof(in), ad, sizeof(ad), key), 0);
	CHECK_MEM(out, sunscreen, n);

	/* What we seal is nonce || ciphertext || tag, as libsodium itself opens it. */
	unsigned char sealed[24 + 114 + 16];

	sfs_crypto_seal(sealed, (const unsigned char *)sunscreen, n, ad, sizeof(ad), key);
	memset(out, 0, sizeof(out));
	CHECK_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, sealed + 24, n + 16,
							    ad, sizeof(ad), sealed, key),
		 0);
	CHECK_MEM(out, sunscreen, n);

	/* With the draft's nonce given, sealing yields the draft's bytes exactly. */
	memset(sealed, 0, sizeof(sealed));
	memcpy(sealed, in, 24);
	sfs_crypto_seal_nonce(sealed, (const unsigned char *)sunscreen, n, ad, sizeof(ad), key);
	CHECK_MEM(sealed, in, sizeof(in));
}

/* Subkeys of master 00 01 .. 1f, id 1, contexts "sfsblock" "sfsmeta_" "sfsnmtag" "sfsnmenc". */
static void test_subkeys(void)
{
	unsigned char master[32];
	struct sfs_keys *k;

	fixed_master(master);
	k = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(k);
	CHECK_HEX(k->content, "2e2c513886032e514bf7b78b5af9012cb44914d685827f9d30b05ef86e37818e",
		  32);
	CHECK_HEX(k->meta, "7b72b102d37739f731af980f01e5dd418703b8c2301fc2979a33543e02691dd7", 32);
	CHECK_HEX(k->name_mac, "ce6f4effb3473f1f4b795064b390358bacb6401a3ae43cbe99f3740fe6e34852",
		  32);
	CHECK_HEX(k->name_enc, "fa29b52bd6273e9dbd0874ebbc0be22203bc28918a2e315f2e3d9a60fd4c131a",
		  32);
	sfs_keys_free(k);
	sfs_keys_free(NULL);
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Open @in after flipping byte @at; must fail with -EBADMSG and a zeroed output. */
static void check_flip(unsigned char *in, size_t len, size_t at, const unsigned char *ad,
		       size_t adlen, const unsigned char *key)
{
	unsigned char out[64];

	memset(out, 0xee, sizeof(out));
	in[at] ^= 0x01;
	CHECK_EQ(sfs_crypto_open(out, in, len, ad, adlen, key), -EBADMSG);
	CHECK(all_zero(out, len - SFS_SEAL_OVERHEAD));
	in[at] ^= 0x01;
}

static void test_seal_open(void)
{
	static const unsigned char msg[] = "twenty-four bytes of msg";
	static const unsigned char ad[] = "place-7";
	unsigned char key[32], key2[32], sealed[sizeof(msg) + SFS_SEAL_OVERHEAD],
		again[sizeof(sealed)];
	unsigned char out[64];
	size_t len = sizeof(sealed);

	fixed_master(key);
	memcpy(key2, key, 32);
	key2[31] ^= 0x80;
	sfs_crypto_seal(sealed, msg, sizeof(msg), ad, sizeof(ad), key);
	CHECK_EQ(sfs_crypto_open(out, sealed, len, ad, sizeof(ad), key), 0);
	CHECK_MEM(out, msg, sizeof(msg));

	/* A fresh nonce each time: the same input never seals to the same bytes. */
	sfs_crypto_seal(again, msg, sizeof(msg), ad, sizeof(ad), key);
	CHECK(memcmp(again, sealed, SFS_NONCE_BYTES) != 0);
	CHECK(memcmp(again + SFS_NONCE_BYTES, sealed + SFS_NONCE_BYTES, sizeof(msg)) != 0);

	check_flip(sealed, len, 0, ad, sizeof(ad), key); /* nonce */
	check_flip(sealed, len, SFS_NONCE_BYTES - 1, ad, sizeof(ad), key);
	check_flip(sealed, len, SFS_NONCE_BYTES + 3, ad, sizeof(ad), key); /* ciphertext */
	check_flip(sealed, len, len - 1, ad, sizeof(ad), key);		   /* tag */
	check_flip(sealed, len, len - SFS_TAG_BYTES, ad, sizeof(ad), key);

	memset(out, 0xee, sizeof(out));
	CHECK_EQ(sfs_crypto_open(out, sealed, len, (const unsigned char *)"place-8", sizeof(ad),
				 key),
		 -EBADMSG);
	CHECK(all_zero(out, sizeof(msg)));
	CHECK_EQ(sfs_crypto_open(out, sealed, len, ad, sizeof(ad) - 1, key), -EBADMSG);
	CHECK_EQ(sfs_crypto_open(out, sealed, len, NULL, 0, key), -EBADMSG);
	memset(out, 0xee, sizeof(out));
	CHECK_EQ(sfs_crypto_open(out, sealed, len, ad, sizeof(ad), key2), -EBADMSG);
	CHECK(all_zero(out, sizeof(msg)));
	CHECK_EQ(sfs_crypto_open(out, sealed, len - 1, ad, sizeof(ad), key), -EBADMSG);
	CHECK_EQ(sfs_crypto_open(out, sealed, SFS_SEAL_OVERHEAD - 1, ad, sizeof(ad), key),
		 -EBADMSG);
	CHECK_EQ(sfs_crypto_open(out, sealed, 0, ad, sizeof(ad), key), -EBADMSG);
	/* The untouched input still opens. */
	CHECK_EQ(sfs_crypto_open(out, sealed, len, ad, sizeof(ad), key), 0);
	CHECK_MEM(out, msg, sizeof(msg));

	/* An empty message seals to exactly the overhead and opens. */
	sfs_crypto_seal(again, msg, 0, ad, sizeof(ad), key);
	CHECK_EQ(sfs_crypto_open(out, again, SFS_SEAL_OVERHEAD, ad, sizeof(ad), key), 0);
}

static void test_name_siv(void)
{
	unsigned char master[32], dirid[16], dirid2[16], a[64], b[64], out[64];
	const unsigned char *name = (const unsigned char *)"notes.md";
	size_t len = 8, slen = SFS_SIV_BYTES + 8;
	struct sfs_keys *k;

	fixed_master(master);
	k = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(k);
	for (int i = 0; i < 16; i++)
		dirid[i] = (unsigned char)(0xa0 + i);
	memcpy(dirid2, dirid, 16);
	dirid2[15] ^= 1;

	sfs_crypto_name_seal(a, name, len, dirid, k);
	sfs_crypto_name_seal(b, name, len, dirid, k);
	CHECK_MEM(a, b, slen);
	/* tag = BLAKE2b-128(name_mac; dirid || name), then XChaCha20 under the tag. */
	CHECK_HEX(a, "88618651a8c41f5228872b7dbc870174df80bee7fd15364c", slen);
	sfs_crypto_name_seal(b, name, len, dirid2, k);
	CHECK(memcmp(a, b, SFS_SIV_BYTES) != 0);
	CHECK(memcmp(a + SFS_SIV_BYTES, b + SFS_SIV_BYTES, len) != 0);

	CHECK_EQ(sfs_crypto_name_open(out, a, slen, dirid, k), 0);
	CHECK_MEM(out, name, len);
	CHECK_EQ(sfs_crypto_name_open(out, a, slen, dirid2, k), -EBADMSG);
	for (size_t i = 0; i < slen; i++) {
		a[i] ^= 0x40;
		CHECK_EQ(sfs_crypto_name_open(out, a, slen, dirid, k), -EBADMSG);
		a[i] ^= 0x40;
	}
	CHECK_EQ(sfs_crypto_name_open(out, a, slen - 1, dirid, k), -EBADMSG);
	CHECK_EQ(sfs_crypto_name_open(out, a, SFS_SIV_BYTES, dirid, k), -EBADMSG);
	sfs_keys_free(k);
}

static void test_pwhash(void)
{
	unsigned char *out = sodium_malloc(32);
	unsigned char salt[16];
	uint64_t ops = 0, mem = 0;

	REQUIRE(out);
	/* Reference Argon2id13 vector (argon2 CLI: -id -t 5 -k 1024, salt ABCDEFGHIJKLMNOP). */
	CHECK_EQ(sfs_crypto_pwhash(out, "123", 3, (const unsigned char *)"ABCDEFGHIJKLMNOP", 5,
				   1024 * 1024),
		 0);
	CHECK_HEX(out, "3c5d010180ba0cf5b6b858cba23b318e42d33088983c404598599c3b029ecac6", 32);

	/* Interactive cost, salt 00..0f. */
	CHECK_EQ(sfs_kdf_params(SFS_KDF_INTERACTIVE, &ops, &mem), 0);
	CHECK_EQ(ops, 2);
	CHECK_EQ(mem, 64 << 20);
	for (int i = 0; i < 16; i++)
		salt[i] = (unsigned char)i;
	CHECK_EQ(sfs_crypto_pwhash(out, "correct horse", 13, salt, ops, mem), 0);
	CHECK_HEX(out, "9aab5a81db651bf866ff7b6169794d2ad9bb00f3d95177925a5fca692a34dbd1", 32);

	CHECK_EQ(sfs_crypto_pwhash(out, "x", 1, salt, 0, mem), -EINVAL);
	CHECK_EQ(sfs_crypto_pwhash(out, "x", 1, salt, ops, 1024), -EINVAL);
	sodium_free(out);
}

static void test_kdf_levels(void)
{
	uint64_t ops, mem;

	CHECK_EQ(sfs_kdf_params(SFS_KDF_MODERATE, &ops, &mem), 0);
	CHECK_EQ(ops, crypto_pwhash_OPSLIMIT_MODERATE);
	CHECK_EQ(mem, crypto_pwhash_MEMLIMIT_MODERATE);
	CHECK_EQ(sfs_kdf_params(SFS_KDF_SENSITIVE, &ops, &mem), 0);
	CHECK_EQ(ops, crypto_pwhash_OPSLIMIT_SENSITIVE);
	CHECK_EQ(mem, crypto_pwhash_MEMLIMIT_SENSITIVE);
	CHECK_EQ(sfs_kdf_params(0, &ops, &mem), -EINVAL);
	CHECK_EQ(sfs_kdf_params(4, &ops, &mem), -EINVAL);

	CHECK_EQ(sfs_kdf_level_from_name("interactive"), SFS_KDF_INTERACTIVE);
	CHECK_EQ(sfs_kdf_level_from_name("moderate"), SFS_KDF_MODERATE);
	CHECK_EQ(sfs_kdf_level_from_name("sensitive"), SFS_KDF_SENSITIVE);
	CHECK_EQ(sfs_kdf_level_from_name("Interactive"), 0);
	CHECK_EQ(sfs_kdf_level_from_name(""), 0);
	CHECK_STR(sfs_kdf_level_name(SFS_KDF_INTERACTIVE), "interactive");
	CHECK_STR(sfs_kdf_level_name(SFS_KDF_MODERATE), "moderate");
	CHECK_STR(sfs_kdf_level_name(SFS_KDF_SENSITIVE), "sensitive");
	CHECK_STR(sfs_kdf_level_name(0), "unknown");
	CHECK_STR(sfs_kdf_level_name(9), "unknown");
}

/*
 * master 00..1f -> gcm subkey (crypto_kdf, id 1, "sfsgcmfk") -> file key of id
 * 40..4f (BLAKE2b-256 keyed with it) -> AES-256-GCM with IV a0..ab, AD
 * ac..b7 || "place-7". Made with:
 *   k = blake2b(key=master, salt=le64(1)+8*"\0", person="sfsgcmfk"+8*"\0")
 *   fk = blake2b(id, key=k); AESGCM(fk).encrypt(nonce[:12], msg, nonce[12:] + ad)
 */
static const char gcm_subkey[] = "262930182a8c5819a8bdb6ebdd2a2a98df4910c7b96f31a1dd28552e886c34cf";
static const char gcm_sealed[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
				 "9f4d8a7ae165aeff600732e2d34ec03c918e66f945d090ff"
				 "ef90cedf44530c820546e3ebf0db1225";

static void test_gcm(void)
{
	static const unsigned char msg[24] = "twenty-four bytes of msg";
	static const unsigned char ad[7] = "place-7";
	unsigned char master[32], id[SFS_ID_BYTES], id2[SFS_ID_BYTES], want[64], sealed[64];
	unsigned char out[64];
	struct sfs_keys *k;
	struct sfs_gcm *g, *g2;

	if (!sfs_cipher_available(SFS_CIPHER_AESGCM)) {
		fprintf(stderr, "test_gcm: skipped, this CPU has no AES-NI for libsodium\n");
		return;
	}
	fixed_master(master);
	k = sfs_keys_new(master, SFS_CIPHER_AESGCM);
	REQUIRE(k);
	CHECK_EQ(k->cipher, SFS_CIPHER_AESGCM);
	CHECK_HEX(k->gcm, gcm_subkey, 32);
	/* The other subkeys do not depend on the cipher. */
	CHECK_HEX(k->content, "2e2c513886032e514bf7b78b5af9012cb44914d685827f9d30b05ef86e37818e",
		  32);
	for (int i = 0; i < SFS_ID_BYTES; i++)
		id[i] = (unsigned char)(0x40 + i);
	g = sfs_gcm_get(k, id);
	REQUIRE(g);
	unhex(want, gcm_sealed, sizeof(want));
	memset(sealed, 0, sizeof(sealed));
	memcpy(sealed, want, SFS_NONCE_BYTES);
	sfs_gcm_seal_nonce(g, sealed, msg, sizeof(msg), ad, sizeof(ad));
	CHECK_MEM(sealed, want, sizeof(want));
	CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed), ad, sizeof(ad)), 0);
	CHECK_MEM(out, msg, sizeof(msg));
	/* Every byte counts, the 12 nonce bytes the IV does not use included. */
	for (size_t at = 0; at < sizeof(sealed); at++) {
		memset(out, 0xee, sizeof(out));
		sealed[at] ^= 0x01;
		CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
		CHECK(all_zero(out, sizeof(msg)));
		sealed[at] ^= 0x01;
	}
	CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed), ad, sizeof(ad) - 1), -EBADMSG);
	CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed) - 1, ad, sizeof(ad)), -EBADMSG);
	CHECK_EQ(sfs_gcm_open(g, out, sealed, SFS_SEAL_OVERHEAD - 1, ad, sizeof(ad)), -EBADMSG);
	/* Another file: another key, so the same nonce seals differently and does not open. */
	memcpy(id2, id, sizeof(id2));
	id2[15] ^= 0x01;
	g2 = sfs_gcm_get(k, id2);
	REQUIRE(g2);
	CHECK_EQ(sfs_gcm_open(g2, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
	memcpy(out, want, SFS_NONCE_BYTES);
	sfs_gcm_seal_nonce(g2, out, msg, sizeof(msg), ad, sizeof(ad));
	CHECK(memcmp(out + SFS_NONCE_BYTES, want + SFS_NONCE_BYTES, sizeof(msg)) != 0);
	/* A schedule given back is wiped, and one taken again works (the pool). */
	sfs_gcm_put(g2);
	CHECK(all_zero((const unsigned char *)g2, 512));
	sfs_gcm_put(g);
	g = sfs_gcm_get(k, id);
	REQUIRE(g);
	CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed), ad, sizeof(ad)), 0);
	sfs_gcm_put(g);
	sfs_gcm_put(NULL);
	sfs_keys_free(k);
	/* An XChaCha session has no gcm subkey at all. */
	k = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	REQUIRE(k);
	CHECK(all_zero(k->gcm, 32));
	sfs_keys_free(k);
}

/*
 * Cipher 3, derived keys: master 00..1f -> gcm subkey (crypto_kdf, id 1,
 * "sfsgcmnk") -> seal key BLAKE2b-256(key = it, id 40..4f || nonce[12..24) =
 * ac..b7) -> AES-256-GCM with IV a0..ab, AD ac..b7 || "place-7". Made
 * outside libsodium (Python's hashlib and the cryptography module, OpenSSL):
 *   k = blake2b(key=master, salt=le64(1)+8*"\0", person="sfsgcmnk"+8*"\0")
 *   sk = blake2b(id + nonce[12:], key=k); AESGCM(sk).encrypt(nonce[:12], msg, nonce[12:] + ad)
 */
static const char gcm3_subkey[] =
	"27e2261609b1eba8d50eaf382567897929087eeeca525d4717f0d9014fa462c7";
static const char gcm3_sealed[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
				  "01d7615a8f5d2540493f4df9571cd0cd0e141871968ac3d9"
				  "1545f58c3360eb75c12ee0c19e533a59";

static void test_gcm_derived(void)
{
	static const unsigned char msg[24] = "twenty-four bytes of msg";
	static const unsigned char ad[7] = "place-7";
	unsigned char master[32], id[SFS_ID_BYTES], want[64], sealed[64], out[64];
	unsigned char halves[5][SFS_GCM_HALF];
	uint16_t slot[5];
	struct sfs_keys *k, *legacy;
	struct sfs_gcm *g, *g1;

	if (!sfs_cipher_available(SFS_CIPHER_AESGCM_DERIVED)) {
		fprintf(stderr,
			"test_gcm_derived: skipped, this CPU has no AES-NI for libsodium\n");
		return;
	}
	fixed_master(master);
	k = sfs_keys_new(master, SFS_CIPHER_AESGCM_DERIVED);
	legacy = sfs_keys_new(master, SFS_CIPHER_AESGCM);
	REQUIRE(k && legacy);
	CHECK_EQ(k->cipher, SFS_CIPHER_AESGCM_DERIVED);
	CHECK_HEX(k->gcm, gcm3_subkey, 32);
	CHECK_HEX(k->content, "2e2c513886032e514bf7b78b5af9012cb44914d685827f9d30b05ef86e37818e",
		  32);
	for (int i = 0; i < SFS_ID_BYTES; i++)
		id[i] = (unsigned char)(0x40 + i);
	unhex(want, gcm3_sealed, sizeof(want));
	g = sfs_gcm_get_derived(k, id, want + 12, 0, 1, slot);
	REQUIRE(g);
	CHECK_EQ(slot[0], 0);
	memset(sealed, 0, sizeof(sealed));
	memcpy(sealed, want, SFS_NONCE_BYTES);
	sfs_gcm_seal_nonce_k(g, 0, sealed, msg, sizeof(msg), ad, sizeof(ad));
	CHECK_MEM(sealed, want, sizeof(want));
	CHECK_EQ(sfs_gcm_open_k(g, 0, out, sealed, sizeof(sealed), ad, sizeof(ad)), 0);
	CHECK_MEM(out, msg, sizeof(msg));
	for (size_t at = 0; at < sizeof(sealed); at++) {
		memset(out, 0xee, sizeof(out));
		sealed[at] ^= 0x01;
		CHECK_EQ(sfs_gcm_open_k(g, 0, out, sealed, sizeof(sealed), ad, sizeof(ad)),
			 -EBADMSG);
		CHECK(all_zero(out, sizeof(msg)));
		sealed[at] ^= 0x01;
	}
	/* Key index out of the set: refused, never another key. */
	CHECK_EQ(sfs_gcm_open_k(g, 1, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
	sfs_gcm_put(g);
	/* The legacy file key (cipher 2) of the same id and nonce does not open it. */
	g = sfs_gcm_get(legacy, id);
	REQUIRE(g);
	CHECK_EQ(sfs_gcm_open(g, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
	sfs_gcm_put(g);
	/*
	 * A set for five blocks with halves A A B A C: one key per run of equal
	 * consecutive halves (A, B, A again, C), each the key of its own half.
	 */
	memset(halves, 0, sizeof(halves));
	memcpy(halves[0], want + 12, SFS_GCM_HALF);
	memcpy(halves[1], want + 12, SFS_GCM_HALF);
	memset(halves[2], 0x5b, SFS_GCM_HALF);
	memcpy(halves[3], want + 12, SFS_GCM_HALF);
	memset(halves[4], 0x5c, SFS_GCM_HALF);
	g = sfs_gcm_get_derived(k, id, halves[0], SFS_GCM_HALF, 5, slot);
	REQUIRE(g);
	CHECK(slot[0] == 0 && slot[1] == 0 && slot[2] == 1 && slot[3] == 2 && slot[4] == 3);
	CHECK_EQ(sfs_gcm_open_k(g, slot[3], out, want, sizeof(want), ad, sizeof(ad)), 0);
	CHECK_MEM(out, msg, sizeof(msg));
	CHECK_EQ(sfs_gcm_open_k(g, slot[2], out, want, sizeof(want), ad, sizeof(ad)), -EBADMSG);
	/* Sealed under half B's key, with half B in the nonce: opens with B's key only. */
	memcpy(sealed, want, 12);
	memcpy(sealed + 12, halves[2], SFS_GCM_HALF);
	sfs_gcm_seal_nonce_k(g, slot[2], sealed, msg, sizeof(msg), ad, sizeof(ad));
	g1 = sfs_gcm_get_derived(k, id, sealed + 12, 0, 1, slot);
	REQUIRE(g1);
	CHECK_EQ(sfs_gcm_open_k(g1, 0, out, sealed, sizeof(sealed), ad, sizeof(ad)), 0);
	CHECK_EQ(sfs_gcm_open_k(g, 0, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
	/* Another file id: another key for the same half. */
	id[3] ^= 1;
	sfs_gcm_put(g1);
	g1 = sfs_gcm_get_derived(k, id, sealed + 12, 0, 1, slot);
	REQUIRE(g1);
	CHECK_EQ(sfs_gcm_open_k(g1, 0, out, sealed, sizeof(sealed), ad, sizeof(ad)), -EBADMSG);
	sfs_gcm_put(g1);
	sfs_gcm_put(g);
	sfs_keys_free(legacy);
	sfs_keys_free(k);
}

static void test_cipher_names(void)
{
	/* "aes256gcm" names what new AES sessions get: the derived keys of cipher 3. */
	CHECK_EQ(sfs_cipher_from_name("aes256gcm"), SFS_CIPHER_AESGCM_DERIVED);
	CHECK_EQ(sfs_cipher_from_name("xchacha20poly1305"), SFS_CIPHER_XCHACHA);
	CHECK_EQ(sfs_cipher_from_name("auto"), 0);
	CHECK_EQ(sfs_cipher_from_name("AES256GCM"), 0);
	CHECK_EQ(sfs_cipher_from_name("aes256gcm-filekey"), 0); /* legacy: no new sessions */
	CHECK_STR(sfs_cipher_name(SFS_CIPHER_AESGCM), "aes256gcm-filekey");
	CHECK_STR(sfs_cipher_name(SFS_CIPHER_AESGCM_DERIVED), "aes256gcm");
	CHECK_STR(sfs_cipher_name(SFS_CIPHER_XCHACHA), "xchacha20poly1305");
	CHECK_STR(sfs_cipher_name(0), "unknown");
	CHECK_STR(sfs_cipher_name(4), "unknown");
	CHECK(sfs_cipher_available(SFS_CIPHER_XCHACHA));
	CHECK(!sfs_cipher_available(0));
	CHECK(!sfs_cipher_available(4));
	CHECK_EQ(sfs_cipher_available(SFS_CIPHER_AESGCM),
		 crypto_aead_aes256gcm_is_available() == 1);
	CHECK_EQ(sfs_cipher_available(SFS_CIPHER_AESGCM_DERIVED),
		 crypto_aead_aes256gcm_is_available() == 1);
}

/* sfs_wiped_grow: the used bytes move, the size at least doubles, NULL starts one. */
static void test_wiped_grow(void)
{
	char *b = NULL;
	size_t cap = 0;

	CHECK_EQ(sfs_wiped_grow(&b, &cap, 0, 10), 0);
	REQUIRE(b != NULL);
	CHECK_EQ(cap, 10);
	memcpy(b, "0123456789", 10);
	CHECK_EQ(sfs_wiped_grow(&b, &cap, 10, 0), 0);
	CHECK_EQ(cap, 20);
	CHECK_MEM(b, "0123456789", 10);
	CHECK_EQ(sfs_wiped_grow(&b, &cap, 4, 100), 0);
	CHECK_EQ(cap, 100);
	CHECK_MEM(b, "0123", 4);
	sodium_memzero(b, cap);
	free(b);
}

int main(void)
{
	REQUIRE(sfs_crypto_init() == 0);
	test_gcm();
	test_cipher_names();
	test_gcm_derived();
	test_xchacha_kat();
	test_subkeys();
	test_seal_open();
	test_name_siv();
	test_pwhash();
	test_kdf_levels();
	test_wiped_grow();
	return check_done();
}
