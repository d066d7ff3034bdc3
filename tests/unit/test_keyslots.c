/*
 * test_keyslots.c - key file version 3 (key slots) with fixed vectors made
 * by the project's own writer (sfs_fmt_slot_seal, sfs_fmt_keyfile_pack):
 * a three-slot file (a password, a recovery key, a second password with a
 * label) parses, packs back byte for byte, and each slot unwraps the same
 * session key, also opened alone by index (one key derivation at most); a corrupted slot is refused
 * while the others still open; a malformed header or slot is refused; a version 1 vector still
 * parses and opens; recovery keys encode and decode (dashes, spaces, case); re-keying
 * (sfs_fmt_slot_rekey, sfs_fmt_keyfile_rekey) moves every slot given its
 * secret to a new session key, keeping index, cost, time added and label,
 * and the old file still opens only the old key.
 */
#include "check.h"
#include "format.h"

#include <errno.h>
#include <string.h>

/*
 * Version 3, XChaCha20-Poly1305, session key 00 01 .. 1f:
 * slot 0: Argon2id ops 2 mem 8192, "correct horse battery", added 1733443200
 * slot 1: recovery key a0 a1 .. bf, added 1733443260
 * slot 3: Argon2id ops 1 mem 8192, "second password", label "laptop", added 1733443320
 */
static const char v3_hex[] = "5346534b03000100030000000000000000000100000000000200000000000000"
			     "0020000000000000803e5267000000007d09606376ecee825787136d7fc7f3dd"
			     "e11b229677df5f856672795dca55c8f6be48d1821ee12120c22bd89f834334b0"
			     "b0caec6768dd8be54b89719dc82b17860800724a1fdf9eaed952f6d8ccaebc30"
			     "03a349beef436468a62dfd70735836325d0ec32e9f63a1ce5b6be85a986a645e"
			     "277c298b2e8cf7c558990d0d83f060a34af7f25548ed3dd6dfdc1845630bb19c"
			     "dff790aaca372902802f9547dd990b609b085cf49858ca53d4f0445df75afd02"
			     "e2b27e2bda87305f772f22ab43d4974c01000200000000000000000000000000"
			     "0000000000000000bc3e5267000000000874cd91cf0472960cb4b3c2c5b17d29"
			     "4db68f14aea317b721e80ef67a205e89328325c53ae99a1ac7995adf014c015e"
			     "aa5b966ffefb057ea737c8ef955b7e70c2651f3baa450856f9e0bceead503130"
			     "a8af7c2841d7f5b4589415540d19624aba2854f32387c2c48a1a568fecafb547"
			     "7292e155e320773bd63095f6115163a1cd375a42e63664d402e04a4399335e0f"
			     "e2e7775e3d799973dd1026461bbeaed46123124f0205eb12e0b4e2cf8d15b7a8"
			     "c56171a1890672ae5726103deacda18803000100000000000100000000000000"
			     "0020000000000000f83e52670000000002845d30fb82427bb330bf56f08d397a"
			     "84dd44696772f407239a9a8007aab6df91e1ed3fab7de7f8138cd484a5d2e210"
			     "12b1a52da84f9b946254fb5af67909db46eeed5b455419312cdb7b1f09a84b92"
			     "a3e2a4d0cf338379237c30d772e033d43bfa282d88c938e5b39e2526d062e300"
			     "6f48edb59eb7d2a0952a114152d1a9b939d2abe05e871870bef99bba3e0afcc7"
			     "c3d22a0fb8e6fbbe7d0ffeff2300fba8b1761ac4472fc18624458e4727e558b9"
			     "6642baffa95afd5ebcc8e5d7c3529e3b";

/* Version 1 of the same session key under "correct horse battery" (ops 2, mem 8192). */
static const char v1_hex[] = "5346534b01000100020000000000000000200000000000009e1dc5baa6f1ab84"
			     "d186b95375e3f7983d5cd11f16266ab58f55e953998410074b9326bd9cf264db"
			     "408b78fa41748426cf040e82ca5a49d4c222d48d7a76fd560daba04cba737262"
			     "7553487af2bf2d01caa713ddcd4104a4";

static const char pw0[] = "correct horse battery";
static const char pw3[] = "second password";
static const char rk_text[] =
	"a0a1-a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-bebf";

static unsigned char v3[SFS_KEYFILE_MAX], v1[SFS_KEYFILE_BYTES];
static size_t v3len;
static unsigned char *master, *got;

static void test_parse_pack(void)
{
	unsigned char out[SFS_KEYFILE_MAX];
	struct sfs_keyfile kf;

	CHECK_EQ(v3len, (size_t)(16 + 3 * 224));
	CHECK_HEX(v3, "5346534b030001000300000000000000", 16);
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(kf.version, 3);
	CHECK_EQ(kf.cipher, SFS_CIPHER_XCHACHA);
	CHECK_EQ(kf.nslots, 3);
	CHECK_EQ(kf.slots[0].index, 0);
	CHECK_EQ(kf.slots[1].index, 1);
	CHECK_EQ(kf.slots[2].index, 3);
	CHECK_EQ(kf.slots[0].kdf, SFS_SLOT_ARGON2ID);
	CHECK_EQ(kf.slots[1].kdf, SFS_SLOT_RECOVERY);
	CHECK_EQ(kf.slots[2].kdf, SFS_SLOT_ARGON2ID);
	CHECK_EQ(kf.slots[0].opslimit, 2);
	CHECK_EQ(kf.slots[0].memlimit, 8192);
	CHECK_EQ(kf.slots[1].opslimit, 0);
	CHECK_EQ(kf.slots[2].opslimit, 1);
	CHECK_EQ(kf.slots[0].added, 1733443200);
	CHECK_EQ(kf.slots[1].added, 1733443260);
	CHECK_EQ(kf.slots[2].added, 1733443320);
	/* the public part of the first password slot, for older callers */
	CHECK_EQ(kf.opslimit, 2);
	CHECK_MEM(kf.salt, kf.slots[0].salt, SFS_SALT_BYTES);
	/* serialize(parse(file)) is the file */
	CHECK_EQ(sfs_fmt_keyfile_pack(out, &kf), (ssize_t)v3len);
	CHECK_MEM(out, v3, v3len);
	/* a recovery slot in a version 1 file cannot be packed */
	kf.version = 1;
	CHECK_EQ(sfs_fmt_keyfile_pack(out, &kf), -EINVAL);
}

static void test_each_slot_opens(void)
{
	unsigned char lkey[SFS_KEY_BYTES];
	char label[SFS_SLOT_LABEL_MAX + 1];
	struct sfs_keyfile kf;
	unsigned long runs;
	int index;

	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw0, strlen(pw0), &index), 0);
	CHECK_EQ(index, 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw3, strlen(pw3), &index), 0);
	CHECK_EQ(index, 3);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, rk_text, strlen(rk_text), &index), 0);
	CHECK_EQ(index, 1);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, "nope", 4, &index), -EKEYREJECTED);
	CHECK_EQ(index, -1);
	/* one slot alone, by index: one key derivation at most */
	runs = sfs_crypto_pwhash_runs();
	CHECK_EQ(sfs_fmt_keyfile_open_slot(got, &kf, pw3, strlen(pw3), 3), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_open_slot(got, &kf, pw3, strlen(pw3), 0), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_open_slot(got, &kf, pw3, strlen(pw3), 1), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_open_slot(got, &kf, pw0, strlen(pw0), 2), -ENOENT);
	CHECK_EQ(sfs_crypto_pwhash_runs() - runs, 2);
	CHECK_EQ(sfs_fmt_keyfile_open_slot(got, &kf, rk_text, strlen(rk_text), 1), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_crypto_pwhash_runs() - runs, 2);
	/* the whole-file entry point too, with the cipher check */
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, v3, v3len, pw3, strlen(pw3), NULL), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	/* labels: sealed under the label key of the session key */
	sfs_crypto_label_key(lkey, master);
	CHECK_EQ(sfs_fmt_slot_label(label, &kf.slots[2], lkey), 0);
	CHECK_STR(label, "laptop");
	CHECK_EQ(sfs_fmt_slot_label(label, &kf.slots[0], lkey), 0);
	CHECK_STR(label, "");
	CHECK(memmem(v3, v3len, "laptop", 6) == NULL);
	lkey[0] ^= 1;
	CHECK_EQ(sfs_fmt_slot_label(label, &kf.slots[2], lkey), -EBADMSG);
}

/* A flipped byte in slot 3 (its public part, its key, its label) costs that slot only. */
static void test_corrupted_slot(void)
{
	size_t slot3 = 16 + 2 * 224;
	unsigned char lkey[SFS_KEY_BYTES];
	char label[SFS_SLOT_LABEL_MAX + 1];
	static const size_t at[] = {24, 32, 40, 48, 72, 100, 119};
	struct sfs_keyfile kf;
	int index;

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		v3[slot3 + at[i]] ^= 0x01;
		REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
		CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw3, strlen(pw3), &index), -EKEYREJECTED);
		CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw0, strlen(pw0), &index), 0);
		CHECK_EQ(index, 0);
		v3[slot3 + at[i]] ^= 0x01;
	}
	/* its label: refused, the key still opens */
	v3[slot3 + 48 + 72 + 30] ^= 0x01;
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw3, strlen(pw3), &index), 0);
	sfs_crypto_label_key(lkey, master);
	CHECK_EQ(sfs_fmt_slot_label(label, &kf.slots[2], lkey), -EBADMSG);
	v3[slot3 + 48 + 72 + 30] ^= 0x01;
	/* the cipher in the header is bound to every slot: a change looks like a wrong password */
	v3[6] = SFS_CIPHER_AESGCM_DERIVED;
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw0, strlen(pw0), &index), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, rk_text, strlen(rk_text), &index), -EKEYREJECTED);
	v3[6] = SFS_CIPHER_XCHACHA;
	/* a recovery slot moved to another index no longer opens */
	v3[16 + 224] = 2;
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, rk_text, strlen(rk_text), &index), -EKEYREJECTED);
	v3[16 + 224] = 1;
	/* a tampered cost beyond the sensitive level is not run */
	sfs_put_le64(v3 + 16 + 8, 1ull << 40);
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw0, strlen(pw0), &index), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw3, strlen(pw3), &index), 0);
	sfs_put_le64(v3 + 16 + 8, 2);
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, v3, v3len, pw0, strlen(pw0), NULL), 0);
}

/* What a malformed header or slot gives, before any KDF. */
static void test_malformed(void)
{
	struct sfs_keyfile kf;
	struct {
		size_t at;
		unsigned char to;
		int want;
	} cases[] = {
		{4, 4, -EPROTONOSUPPORT},      /* version 4 */
		{6, 9, -EPROTONOSUPPORT},      /* unknown cipher */
		{8, 0, -EUCLEAN},	       /* no slot */
		{8, 2, -EUCLEAN},	       /* count and length differ */
		{8, 9, -EUCLEAN},	       /* more than 8 */
		{9, 1, -EPROTONOSUPPORT},      /* reserved header byte */
		{15, 1, -EPROTONOSUPPORT},     /* reserved header byte */
		{16 + 1, 1, -EPROTONOSUPPORT}, /* reserved slot byte */
		{16 + 2, 3, -EPROTONOSUPPORT}, /* unknown kdf */
		{16 + 4, 1, -EPROTONOSUPPORT}, /* reserved slot word */
		{16 + 224, 0, -EUCLEAN},       /* index twice */
		{16 + 224, 8, -EUCLEAN},       /* index beyond 7 */
		{16 + 2 * 224, 1, -EUCLEAN},   /* not ascending */
		{16 + 224 + 8, 1, -EUCLEAN},   /* a recovery slot with a cost */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char was = v3[cases[i].at];

		v3[cases[i].at] = cases[i].to;
		if (sfs_fmt_keyfile_parse(v3, v3len, &kf) != cases[i].want) {
			fprintf(stderr, "byte %zu set to %u: want %d\n", cases[i].at, cases[i].to,
				cases[i].want);
			check_failures++;
		}
		CHECK_EQ(sfs_fmt_keyfile_unwrap(got, v3, v3len, pw0, strlen(pw0), NULL),
			 cases[i].want);
		v3[cases[i].at] = was;
	}
	CHECK_EQ(sfs_fmt_keyfile_parse(v3, v3len - 1, &kf), -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_parse(v3, 16 + 224, &kf), -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_parse(v3, 15, &kf), -EUCLEAN);
	CHECK_EQ(sfs_fmt_keyfile_parse(v3, v3len, &kf), 0);
}

/* Version 1, as every earlier build wrote it: still parses and opens. */
static void test_v1_vector(void)
{
	unsigned char out[SFS_KEYFILE_MAX];
	struct sfs_keyfile kf;
	int index;

	REQUIRE(sfs_fmt_keyfile_parse(v1, sizeof(v1), &kf) == 0);
	CHECK_EQ(kf.version, 1);
	CHECK_EQ(kf.nslots, 1);
	CHECK_EQ(kf.slots[0].index, 0);
	CHECK_EQ(kf.slots[0].added, 0);
	CHECK_EQ(kf.opslimit, 2);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, pw0, strlen(pw0), &index), 0);
	CHECK_MEM(got, master, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_pack(out, &kf), (ssize_t)sizeof(v1));
	CHECK_MEM(out, v1, sizeof(v1));
	/* a recovery key's text is no password of a version 1 slot */
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, rk_text, strlen(rk_text), &index), -EKEYREJECTED);
}

/* A new slot sealed into a version 3 file opens; a version 1 file takes no recovery slot. */
static void test_seal(void)
{
	struct sfs_keyfile kf;
	unsigned char rk[SFS_RECOVERY_KEY_BYTES] = {7};
	char text[SFS_RECOVERY_TEXT_MAX];
	int index;

	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	kf.slots[3].index = 5;
	kf.nslots = 4;
	CHECK_EQ(sfs_fmt_slot_seal(&kf.slots[3], &kf, master, SFS_SLOT_RECOVERY, rk, sizeof(rk), 9,
				   9, 42, "x", 1),
		 0);
	CHECK_EQ(kf.slots[3].opslimit, 0);
	sfs_fmt_recovery_encode(text, rk);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &kf, text, strlen(text), &index), 0);
	CHECK_EQ(index, 5);
	CHECK_EQ(sfs_fmt_slot_seal(
			 &kf.slots[3], &kf, master, SFS_SLOT_ARGON2ID, "p", 1, 2, 8192, 0,
			 "0123456789012345678901234567890123456789012345678901234567890123", 64),
		 -EINVAL);
	kf.version = 1;
	CHECK_EQ(sfs_fmt_slot_seal(&kf.slots[3], &kf, master, SFS_SLOT_RECOVERY, rk, sizeof(rk), 0,
				   0, 0, NULL, 0),
		 -EINVAL);
}

/*
 * Re-keying the fixed vector to the session key 20 21 .. 3f with every
 * slot's secret: each opens the new key (not the old one), keeps its index,
 * kind, cost, time added and label (under the new label key) with a fresh
 * salt; the old file still opens only the old key. A wrong secret, one of
 * another slot, or the wrong old key changes nothing; a slot without a
 * secret is left out; none, or the one slot of a version 1 file, is refused.
 */
static void test_rekey(void)
{
	unsigned char *newkey = sodium_malloc(SFS_KEY_BYTES), out[SFS_KEYFILE_MAX];
	unsigned char lkey[SFS_KEY_BYTES];
	const char *secrets[SFS_SLOTS_MAX] = {pw0, rk_text, NULL, pw3};
	size_t lens[SFS_SLOTS_MAX] = {strlen(pw0), strlen(rk_text), 0, strlen(pw3)};
	const char *none[SFS_SLOTS_MAX] = {NULL};
	struct sfs_keyfile kf, nkf, again;
	struct sfs_keyslot slot;
	char label[SFS_SLOT_LABEL_MAX + 1];
	int index, failed;
	ssize_t len;

	REQUIRE(newkey != NULL);
	for (int i = 0; i < SFS_KEY_BYTES; i++)
		newkey[i] = (unsigned char)(0x20 + i);
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &kf) == 0);
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, secrets, lens, &failed), 3);
	CHECK_EQ(failed, -1);
	len = sfs_fmt_keyfile_pack(out, &nkf);
	CHECK_EQ(len, (ssize_t)v3len);
	REQUIRE(sfs_fmt_keyfile_parse(out, (size_t)len, &again) == 0);
	CHECK_EQ(again.version, 3);
	CHECK_EQ(again.cipher, SFS_CIPHER_XCHACHA);
	CHECK_EQ(again.nslots, 3);
	CHECK_EQ(again.opslimit, 2);
	CHECK_MEM(again.salt, again.slots[0].salt, SFS_SALT_BYTES);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK_EQ(again.slots[i].index, kf.slots[i].index);
		CHECK_EQ(again.slots[i].kdf, kf.slots[i].kdf);
		CHECK_EQ(again.slots[i].opslimit, kf.slots[i].opslimit);
		CHECK_EQ(again.slots[i].memlimit, kf.slots[i].memlimit);
		CHECK_EQ(again.slots[i].added, kf.slots[i].added);
		CHECK(memcmp(again.slots[i].salt, kf.slots[i].salt, SFS_SALT_BYTES) != 0);
		CHECK_EQ(sfs_fmt_keyfile_open(got, &again, secrets[kf.slots[i].index],
					      lens[kf.slots[i].index], &index),
			 0);
		CHECK_EQ(index, kf.slots[i].index);
		CHECK_MEM(got, newkey, SFS_KEY_BYTES);
		/* the old file, same secret: the old key, never the new one */
		CHECK_EQ(sfs_fmt_keyfile_unwrap(got, v3, v3len, secrets[kf.slots[i].index],
						lens[kf.slots[i].index], NULL),
			 0);
		CHECK_MEM(got, master, SFS_KEY_BYTES);
	}
	sfs_crypto_label_key(lkey, newkey);
	CHECK_EQ(sfs_fmt_slot_label(label, &again.slots[2], lkey), 0);
	CHECK_STR(label, "laptop");
	CHECK_EQ(sfs_fmt_slot_label(label, &again.slots[0], lkey), 0);
	CHECK_STR(label, "");
	sfs_crypto_label_key(lkey, master);
	CHECK_EQ(sfs_fmt_slot_label(label, &again.slots[2], lkey), -EBADMSG);

	/* a wrong secret, another slot's, a wrong old key: refused, *out untouched */
	memset(&slot, 0x5a, sizeof(slot));
	CHECK_EQ(sfs_fmt_slot_rekey(&slot, &kf, &kf, &kf.slots[2], master, newkey, "nope", 4),
		 -EKEYREJECTED);
	CHECK_EQ(
		sfs_fmt_slot_rekey(&slot, &kf, &kf, &kf.slots[2], master, newkey, pw0, strlen(pw0)),
		-EKEYREJECTED);
	CHECK_EQ(
		sfs_fmt_slot_rekey(&slot, &kf, &kf, &kf.slots[1], master, newkey, pw0, strlen(pw0)),
		-EKEYREJECTED);
	CHECK_EQ(
		sfs_fmt_slot_rekey(&slot, &kf, &kf, &kf.slots[2], newkey, newkey, pw3, strlen(pw3)),
		-ESTALE);
	CHECK_EQ(slot.index, 0x5a);
	secrets[3] = pw0;
	lens[3] = strlen(pw0);
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, secrets, lens, &failed),
		 -EKEYREJECTED);
	CHECK_EQ(failed, 3);
	CHECK_EQ(nkf.nslots, 0);
	/* a tampered label: the slot is not re-keyed */
	v3[16 + 2 * 224 + 120 + 30] ^= 0x01;
	REQUIRE(sfs_fmt_keyfile_parse(v3, v3len, &again) == 0);
	CHECK_EQ(sfs_fmt_slot_rekey(&slot, &again, &again, &again.slots[2], master, newkey, pw3,
				    strlen(pw3)),
		 -EBADMSG);
	v3[16 + 2 * 224 + 120 + 30] ^= 0x01;

	/* slot 3 left out; then none */
	secrets[3] = NULL;
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, secrets, lens, &failed), 2);
	CHECK_EQ(nkf.slots[0].index, 0);
	CHECK_EQ(nkf.slots[1].index, 1);
	CHECK_EQ(sfs_fmt_keyfile_pack(out, &nkf), (ssize_t)(16 + 2 * 224));
	CHECK_EQ(sfs_fmt_keyfile_open(got, &nkf, pw3, strlen(pw3), &index), -EKEYREJECTED);
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, none, lens, &failed), -EINVAL);
	CHECK_EQ(failed, -1);

	/* version 1 stays version 1, bytes for bytes the same length */
	REQUIRE(sfs_fmt_keyfile_parse(v1, sizeof(v1), &kf) == 0);
	secrets[1] = NULL;
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, secrets, lens, &failed), 1);
	CHECK_EQ(sfs_fmt_keyfile_pack(out, &nkf), (ssize_t)sizeof(v1));
	CHECK_EQ(sfs_fmt_keyfile_unwrap(got, out, sizeof(v1), pw0, strlen(pw0), NULL), 0);
	CHECK_MEM(got, newkey, SFS_KEY_BYTES);
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, 0, none, lens, &failed), -EINVAL);
	/* version 1 names no cipher: it cannot move to another */
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &kf, master, newkey, SFS_CIPHER_AESGCM_DERIVED,
				       secrets, lens, &failed),
		 -EINVAL);

	/* a version 2 file of the legacy cipher 2 moves to cipher 3, bound in the seal */
	struct sfs_keyfile v2 = kf;
	unsigned char v2bytes[SFS_KEYFILE_MAX];

	v2.version = 2;
	v2.cipher = SFS_CIPHER_AESGCM;
	REQUIRE(sfs_fmt_slot_seal(&v2.slots[0], &v2, master, SFS_SLOT_ARGON2ID, pw0, strlen(pw0), 2,
				  8192, 0, NULL, 0) == 0);
	CHECK_EQ(sfs_fmt_keyfile_rekey(&nkf, &v2, master, newkey, SFS_CIPHER_AESGCM_DERIVED,
				       secrets, lens, &failed),
		 1);
	CHECK_EQ(sfs_fmt_keyfile_pack(v2bytes, &nkf), (ssize_t)SFS_KEYFILE_V2_BYTES);
	REQUIRE(sfs_fmt_keyfile_parse(v2bytes, SFS_KEYFILE_V2_BYTES, &again) == 0);
	CHECK_EQ(again.version, 2);
	CHECK_EQ(again.cipher, SFS_CIPHER_AESGCM_DERIVED);
	/* opened without the CPU check unwrap makes: the test runs on any machine */
	CHECK_EQ(sfs_fmt_keyfile_open(got, &again, pw0, strlen(pw0), &index), 0);
	CHECK_MEM(got, newkey, SFS_KEY_BYTES);
	sfs_put_le16(v2bytes + 40, SFS_CIPHER_AESGCM);
	REQUIRE(sfs_fmt_keyfile_parse(v2bytes, SFS_KEYFILE_V2_BYTES, &again) == 0);
	CHECK_EQ(sfs_fmt_keyfile_open(got, &again, pw0, strlen(pw0), &index), -EKEYREJECTED);
	sodium_free(newkey);
}

static void test_recovery_text(void)
{
	unsigned char key[SFS_RECOVERY_KEY_BYTES], want[SFS_RECOVERY_KEY_BYTES];
	char text[SFS_RECOVERY_TEXT_MAX];
	static const char *const good[] = {
		"a0a1-a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-bebf",
		"A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF",
		" a0a1a 2a3a4a5a6a7\ta8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n",
		"a0-a1-a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe--bf",
	};
	static const char *const bad[] = {
		"",
		"a0a1",
		"a0a1-a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-beb",
		"a0a1-a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-bebf0",
		"g0a1-a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-bebf",
		"a0a1_a2a3-a4a5-a6a7-a8a9-aaab-acad-aeaf-b0b1-b2b3-b4b5-b6b7-b8b9-babb-bcbd-bebf",
		"correct horse battery",
	};

	for (int i = 0; i < 32; i++)
		want[i] = (unsigned char)(0xa0 + i);
	sfs_fmt_recovery_encode(text, want);
	CHECK_STR(text, rk_text);
	CHECK_EQ(strlen(text), 79);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(key, 0, sizeof(key));
		CHECK_EQ(sfs_fmt_recovery_decode(key, good[i], strlen(good[i])), 0);
		CHECK_MEM(key, want, sizeof(want));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(key, 0xee, sizeof(key));
		CHECK_EQ(sfs_fmt_recovery_decode(key, bad[i], strlen(bad[i])), -EINVAL);
		CHECK(key[0] == 0 && key[31] == 0);
	}
}

int main(void)
{
	size_t n;

	REQUIRE(sfs_crypto_init() == 0);
	master = sodium_malloc(SFS_KEY_BYTES);
	got = sodium_malloc(SFS_KEY_BYTES);
	REQUIRE(master && got);
	fixed_master(master);
	REQUIRE(sodium_hex2bin(v3, sizeof(v3), v3_hex, strlen(v3_hex), NULL, &v3len, NULL) == 0);
	REQUIRE(sodium_hex2bin(v1, sizeof(v1), v1_hex, strlen(v1_hex), NULL, &n, NULL) == 0 &&
		n == sizeof(v1));
	test_parse_pack();
	test_each_slot_opens();
	test_corrupted_slot();
	test_malformed();
	test_v1_vector();
	test_seal();
	test_rekey();
	test_recovery_text();
	sodium_free(master);
	sodium_free(got);
	return check_done();
}
