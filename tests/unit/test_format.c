/*
 * test_format.c - node headers, content blocks, backing/plain size arithmetic
 * and the little-endian helpers of format.h: roundtrips, tamper cases and
 * fixed byte vectors.
 */
#include "check.h"
#include "format.h"

#include <errno.h>

static struct sfs_keys *keys;
static unsigned char file_id[SFS_ID_BYTES];

static void test_le(void)
{
	unsigned char b[8];

	sfs_put_le16(b, 0x1234);
	CHECK_HEX(b, "3412", 2);
	sfs_put_le32(b, 0x89abcdef);
	CHECK_HEX(b, "efcdab89", 4);
	sfs_put_le64(b, 0x0102030405060708ull);
	CHECK_HEX(b, "0807060504030201", 8);
	unhex(b, "fffe0180aa55c33c", 8);
	CHECK_EQ(sfs_get_le16(b), 0xfeff);
	CHECK_EQ(sfs_get_le32(b), 0x8001feff);
	CHECK(sfs_get_le64(b) == 0x3cc355aa8001feffull);
	sfs_put_le64(b, UINT64_MAX);
	CHECK(sfs_get_le64(b) == UINT64_MAX);
}

static void test_header(void)
{
	struct sfs_attrs a = {0100644, 1000, 1001, 0, 0}, got;
	struct sfs_attrs dev = {0020600, 0, 6, 0x0103, 0};
	unsigned char h[SFS_HDR_BYTES], id[SFS_ID_BYTES];

	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, file_id, &a, keys);
	/* Public part: "SFSF" | version 1 | kind 0 | id */
	CHECK_HEX(h, "5346534601000000", 8);
	CHECK_MEM(h + 8, file_id, SFS_ID_BYTES);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), 0);
	CHECK_MEM(id, file_id, SFS_ID_BYTES);
	CHECK_EQ(got.mode, a.mode);
	CHECK_EQ(got.uid, a.uid);
	CHECK_EQ(got.gid, a.gid);
	CHECK_EQ(got.rdev, a.rdev);

	/* A file header is not a directory header, and the other way round. */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_DIR, id, &got, keys), -EUCLEAN);
	sfs_fmt_header_pack(h, SFS_MAGIC_DIR, file_id, &dev, keys);
	CHECK_HEX(h, "53465344", 4);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), -EUCLEAN);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_DIR, id, &got, keys), 0);
	CHECK_EQ(got.rdev, 0x0103);
	CHECK_EQ(got.mode, 0020600);

	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, file_id, &a, keys);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h) - 1, SFS_MAGIC_FILE, id, &got, keys), -EUCLEAN);
	h[0] ^= 0x20; /* "sFSF" */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), -EUCLEAN);
	h[0] ^= 0x20;
	h[4] = 2; /* version 2 */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys),
		 -EPROTONOSUPPORT);
	h[4] = 1;
	h[6] = 3; /* unknown kind */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys),
		 -EPROTONOSUPPORT);
	h[7] = 1, h[6] = 0; /* kind 256 */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys),
		 -EPROTONOSUPPORT);
	h[7] = 0;
	h[6] = 1; /* a log: known, but bound to the header (kind 0 was sealed) */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), -EBADMSG);
	h[6] = 2; /* sparse: the same */
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), -EBADMSG);
	h[6] = 0;
	/* Kind 2 round-trips for files, with its public bytes. */
	a.kind = SFS_KIND_SPARSE;
	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, file_id, &a, keys);
	CHECK_HEX(h, "5346534601000200", 8);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), 0);
	CHECK_EQ(got.kind, SFS_KIND_SPARSE);
	memcpy(h, "SFSD", 4);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_DIR, id, &got, keys),
		 -EPROTONOSUPPORT);
	/* Kind 1 round-trips for files; directories have no kind but 0. */
	a.kind = SFS_KIND_LOG;
	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, file_id, &a, keys);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), 0);
	CHECK_EQ(got.kind, SFS_KIND_LOG);
	memcpy(h, "SFSD", 4);
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_DIR, id, &got, keys),
		 -EPROTONOSUPPORT);
	a.kind = SFS_KIND_BLOCKS;
	sfs_fmt_header_pack(h, SFS_MAGIC_FILE, file_id, &a, keys);
	/* Every byte from the id on is authenticated. */
	for (size_t i = 8; i < SFS_HDR_BYTES; i++) {
		h[i] ^= 0x01;
		CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys),
			 -EBADMSG);
		h[i] ^= 0x01;
	}
	CHECK_EQ(sfs_fmt_header_unpack(h, sizeof(h), SFS_MAGIC_FILE, id, &got, keys), 0);
}

/*
 * Blocks of a session whose keys are @k: bound to their file and number, cut
 * or flipped blocks refused, and a block sealed with a given nonce is exactly
 * the documented AEAD (doc/format.md, "File content").
 */
static void test_blocks(struct sfs_keys *k)
{
	unsigned char plain[SFS_BLOCK], out[SFS_BLOCK], c[SFS_CBLOCK], other[SFS_ID_BYTES];
	static const size_t lens[] = {1, 17, 4095, SFS_BLOCK};
	struct sfs_blockkey bk;

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)(i * 7 + 3);
	memcpy(other, file_id, sizeof(other));
	other[0] ^= 1;

	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t n = lens[li], cn = n + SFS_SEAL_OVERHEAD;

		CHECK_EQ(sfs_fmt_block_seal1(c, plain, n, file_id, 3, k), 0);
		memset(out, 0, sizeof(out));
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 3, k), 0);
		CHECK_MEM(out, plain, n);
		/* Sealed as block 3: is not block 4, 2 or 3 + 2^32, nor block 3 of another file. */
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 4, k), -EBADMSG);
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 2, k), -EBADMSG);
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 3 + (1ull << 32), k), -EBADMSG);
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, other, 3, k), -EBADMSG);
		/* A cut block. */
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn - 1, file_id, 3, k), -EBADMSG);
		/* A flipped byte anywhere: nonce (both halves), ciphertext, tag. */
		for (size_t at = 0; at < cn; at += (at < SFS_NONCE_BYTES ? 1 : 97)) {
			c[at] ^= 0x80;
			CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 3, k), -EBADMSG);
			c[at] ^= 0x80;
		}
		c[cn - 1] ^= 0x80;
		CHECK_EQ(sfs_fmt_block_open1(out, c, cn, file_id, 3, k), -EBADMSG);
	}
	CHECK_EQ(sfs_fmt_block_open1(out, c, SFS_SEAL_OVERHEAD, file_id, 3, k), -EBADMSG);
	CHECK_EQ(sfs_fmt_block_open1(out, c, SFS_CBLOCK + 1, file_id, 3, k), -EBADMSG);

	unsigned char ad[12 + SFS_ID_BYTES + 8], want[SFS_CBLOCK], fk[32];
	size_t adoff = k->cipher != SFS_CIPHER_XCHACHA ? 12 : 0;

	for (size_t i = 0; i < SFS_NONCE_BYTES; i++)
		c[i] = want[i] = (unsigned char)(0xa0 + i);
	REQUIRE(sfs_fmt_blockkey_init(&bk, file_id, k) == 0);
	/* Cipher 3: the run's random half replaces nonce[12..24). */
	if (k->cipher == SFS_CIPHER_AESGCM_DERIVED)
		memcpy(want + 12, bk.half, 12);
	memcpy(ad, want + 12, 12);
	memcpy(ad + adoff, file_id, SFS_ID_BYTES);
	memcpy(ad + adoff + SFS_ID_BYTES, "\x03\x00\x00\x00\x01\x00\x00\x00", 8); /* 3 + 2^32 */
	sfs_fmt_block_seal_nonce(c, plain, 100, 3 + (1ull << 32), &bk);
	if (k->cipher == SFS_CIPHER_AESGCM_DERIVED) {
		/* AES-256-GCM, key BLAKE2b-256(gcm; id || nonce[12..24)), IV nonce[0..12),
		 * AD nonce[12..24) || id || n */
		crypto_generichash_state st;

		crypto_generichash_init(&st, k->gcm, 32, 32);
		crypto_generichash_update(&st, file_id, SFS_ID_BYTES);
		crypto_generichash_update(&st, want + 12, 12);
		crypto_generichash_final(&st, fk, 32);
		CHECK_EQ(crypto_aead_aes256gcm_encrypt(want + SFS_NONCE_BYTES, NULL, plain, 100, ad,
						       sizeof(ad), NULL, want, fk),
			 0);
	} else if (k->cipher == SFS_CIPHER_AESGCM) {
		/* AES-256-GCM, key BLAKE2b-256(gcm; id), IV nonce[0..12),
		 * AD nonce[12..24) || id || n */
		crypto_generichash(fk, 32, file_id, SFS_ID_BYTES, k->gcm, 32);
		CHECK_EQ(crypto_aead_aes256gcm_encrypt(want + SFS_NONCE_BYTES, NULL, plain, 100, ad,
						       sizeof(ad), NULL, want, fk),
			 0);
	} else {
		/* XChaCha20-Poly1305 under the content key, AD id || n */
		CHECK_EQ(crypto_aead_xchacha20poly1305_ietf_encrypt(want + SFS_NONCE_BYTES, NULL,
								    plain, 100, ad, 24, NULL, want,
								    k->content),
			 0);
	}
	CHECK_MEM(c, want, 100 + SFS_SEAL_OVERHEAD);
	CHECK_EQ(sfs_fmt_block_open_at(out, c, 100 + SFS_SEAL_OVERHEAD, 3 + (1ull << 32), &bk, 0),
		 0);
	CHECK_MEM(out, plain, 100);
	sfs_fmt_blockkey_done(&bk);
	CHECK(bk.gcm == NULL);
	CHECK_EQ(sfs_fmt_block_offset(0), 80);
	CHECK_EQ(sfs_fmt_block_offset(1), 80 + 4136);
	CHECK(sfs_fmt_block_offset(1ull << 40) == 80 + 4136 * (1ull << 40));
}

/* A block of one cipher never opens as the other's, though the layout is the same. */
static void test_cross_cipher(struct sfs_keys *x, struct sfs_keys *a)
{
	unsigned char plain[64] = "same layout, other cipher", c[64 + SFS_SEAL_OVERHEAD], out[64];

	CHECK_EQ(sfs_fmt_block_seal1(c, plain, sizeof(plain), file_id, 0, x), 0);
	CHECK_EQ(sfs_fmt_block_open1(out, c, sizeof(c), file_id, 0, a), -EBADMSG);
	CHECK_EQ(sfs_fmt_block_seal1(c, plain, sizeof(plain), file_id, 0, a), 0);
	CHECK_EQ(sfs_fmt_block_open1(out, c, sizeof(c), file_id, 0, x), -EBADMSG);
	CHECK_EQ(sfs_fmt_block_open1(out, c, sizeof(c), file_id, 0, a), 0);
	CHECK_MEM(out, plain, sizeof(plain));
}

/*
 * Cipher 3: every block of one sealed run carries the run's half (one
 * derived key), another run another half; a run opened whole, with blocks of
 * both runs in it, opens each under its own key; a block moved to another
 * place or with its half changed does not open.
 */
static void test_run_halves(struct sfs_keys *k)
{
	static unsigned char plain[4 * SFS_BLOCK], c[4 * SFS_CBLOCK], out[4 * SFS_BLOCK];
	struct sfs_blockkey a, b, o;

	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)(i * 5 + 1);
	REQUIRE(sfs_fmt_blockkey_init(&a, file_id, k) == 0);
	REQUIRE(sfs_fmt_blockkey_init(&b, file_id, k) == 0);
	CHECK(memcmp(a.half, b.half, 12) != 0);
	for (int i = 0; i < 4; i++) {
		unsigned char *ci = c + i * SFS_CBLOCK;

		sfs_crypto_random(ci, SFS_NONCE_BYTES);
		/* blocks 0, 1, 3 in run a; block 2 in run b */
		sfs_fmt_block_seal_nonce(ci, plain + i * SFS_BLOCK, SFS_BLOCK, 10 + i,
					 i == 2 ? &b : &a);
		CHECK_MEM(ci + 12, i == 2 ? b.half : a.half, 12);
	}
	CHECK(memcmp(c, c + SFS_CBLOCK, 12) != 0); /* IVs differ */
	sfs_fmt_blockkey_done(&a);
	sfs_fmt_blockkey_done(&b);
	REQUIRE(sfs_fmt_blockkey_init_open(&o, file_id, k, c, 4) == 0);
	CHECK(o.slot[0] == 0 && o.slot[1] == 0 && o.slot[2] == 1 && o.slot[3] == 2);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(sfs_fmt_block_open_at(out + i * SFS_BLOCK, c + i * SFS_CBLOCK, SFS_CBLOCK,
					       10 + i, &o, (size_t)i),
			 0);
	CHECK_MEM(out, plain, sizeof(plain));
	/* Block 1 read as block 2's place: wrong number (and key). */
	CHECK_EQ(sfs_fmt_block_open_at(out, c + SFS_CBLOCK, SFS_CBLOCK, 12, &o, 2), -EBADMSG);
	sfs_fmt_blockkey_done(&o);
	/* Block 2's half made run a's: another key, and the AD changes too. */
	memcpy(c + 2 * SFS_CBLOCK + 12, c + 12, 12);
	REQUIRE(sfs_fmt_blockkey_init_open(&o, file_id, k, c, 4) == 0);
	CHECK(o.slot[2] == 0 && o.slot[3] == 0);
	CHECK_EQ(sfs_fmt_block_open_at(out, c + 2 * SFS_CBLOCK, SFS_CBLOCK, 12, &o, 2), -EBADMSG);
	sfs_fmt_blockkey_done(&o);
}

static void test_sizes(void)
{
	static const struct {
		uint64_t backing;
		int rc;
		uint64_t plain;
	} v[] = {
		{0, 0, 0},
		{1, -EUCLEAN, 0},
		{50, -EUCLEAN, 0},
		{79, -EUCLEAN, 0},
		{80, 0, 0},
		{80 + 1, -EUCLEAN, 0},
		{80 + 40, -EUCLEAN, 0},
		{80 + 41, 0, 1},
		{80 + 4135, 0, 4095},
		{80 + 4136, 0, 4096},
		{80 + 4136 + 20, -EUCLEAN, 0},
		{80 + 4136 + 40, -EUCLEAN, 0},
		{80 + 4136 + 41, 0, 4097},
		{80 + 3 * 4136 + 100, 0, 3 * 4096 + 60},
		{80 + 1048576ull * 4136, 0, 1048576ull * 4096}, /* 4 GiB */
		{80 + 1048576ull * 4136 + 41, 0, 1048576ull * 4096 + 1},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint64_t plain = 12345;
		int rc = sfs_fmt_plain_size(v[i].backing, &plain);

		if (rc != v[i].rc || plain != v[i].plain) {
			fprintf(stderr, "plain_size(%llu) = %d, %llu; want %d, %llu\n",
				(unsigned long long)v[i].backing, rc, (unsigned long long)plain,
				v[i].rc, (unsigned long long)v[i].plain);
			check_failures++;
		}
		if (v[i].rc == 0 && v[i].backing != 0)
			CHECK(sfs_fmt_backing_size(v[i].plain) == v[i].backing);
	}
	CHECK_EQ(sfs_fmt_backing_size(0), 80);

	/* Every plain size maps to a backing size that maps back, and sizes grow. */
	uint64_t prev = 0;

	for (uint64_t p = 0; p < 5 * SFS_BLOCK + 7; p++) {
		uint64_t b = sfs_fmt_backing_size(p), back = ~0ull;

		CHECK_EQ(sfs_fmt_plain_size(b, &back), 0);
		if (back != p) {
			fprintf(stderr, "size %llu -> %llu -> %llu\n", (unsigned long long)p,
				(unsigned long long)b, (unsigned long long)back);
			check_failures++;
			break;
		}
		CHECK(p == 0 || b > prev);
		prev = b;
	}
	for (uint64_t p = 1ull << 32; p < (1ull << 32) + 3 * SFS_BLOCK; p += 1021) {
		uint64_t back = 0;

		CHECK_EQ(sfs_fmt_plain_size(sfs_fmt_backing_size(p), &back), 0);
		CHECK(back == p);
	}
}

int main(void)
{
	keys = fixed_keys();
	for (int i = 0; i < SFS_ID_BYTES; i++)
		file_id[i] = (unsigned char)(0xf0 ^ i);
	test_le();
	test_header();
	test_blocks(keys);
	if (sfs_cipher_available(SFS_CIPHER_AESGCM)) {
		unsigned char master[32];
		struct sfs_keys *aes;

		struct sfs_keys *derived;

		fixed_master(master);
		aes = sfs_keys_new(master, SFS_CIPHER_AESGCM);
		derived = sfs_keys_new(master, SFS_CIPHER_AESGCM_DERIVED);
		REQUIRE(aes && derived);
		test_blocks(aes);
		test_blocks(derived);
		test_cross_cipher(keys, aes);
		test_cross_cipher(keys, derived);
		test_cross_cipher(aes, derived);
		test_run_halves(derived);
		sfs_keys_free(derived);
		sfs_keys_free(aes);
	} else {
		fprintf(stderr, "test_format: AES-256-GCM blocks skipped, no AES-NI here\n");
	}
	test_sizes();
	sfs_keys_free(keys);
	return check_done();
}
