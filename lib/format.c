/*
 * format.c - packing and parsing of sessionfs's on-disk structures (v1).
 *
 * Byte tables are in doc/format.md. Every field is packed explicitly in
 * little-endian order; no struct is ever written as memory. Must not know
 * paths, directories, JSON or FUSE.
 */
#include "format.h"

#include <errno.h>
#include <string.h>

static const unsigned char magic_key[4] = {'S', 'F', 'S', 'K'};
static const unsigned char magic_file[4] = {'S', 'F', 'S', 'F'};
static const unsigned char magic_dir[4] = {'S', 'F', 'S', 'D'};
static const char symlink_ad[] = "sfs-symlink-v1";

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

void sfs_put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

void sfs_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void sfs_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint16_t sfs_get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t sfs_get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t sfs_get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Key file: "SFSK" | u16 version | u16 alg | u64 ops | u64 mem | salt 16,
 * in version 2 then u16 cipher | u16 0, and last nonce 24 | ct 32 | tag 16.
 * Everything before the nonce is the associated data.
 */
ssize_t sfs_fmt_keyfile_wrap(unsigned char out[SFS_KEYFILE_MAX],
			     const unsigned char master[SFS_KEY_BYTES], const char *password,
			     size_t pwlen, uint64_t opslimit, uint64_t memlimit,
			     enum sfs_cipher cipher)
{
	/* XChaCha sessions keep version 1, which every build reads. */
	uint16_t version = cipher == SFS_CIPHER_XCHACHA ? 1 : 2;
	size_t ad = version == 1 ? SFS_KEYFILE_AD_BYTES : SFS_KEYFILE_V2_AD_BYTES;
	unsigned char *kek;
	int rc;

	if (!sfs_cipher_available(cipher))
		return -EINVAL;
	kek = sodium_malloc(SFS_KEY_BYTES);
	if (!kek)
		return -ENOMEM;
	memcpy(out, magic_key, 4);
	sfs_put_le16(out + 4, version);
	sfs_put_le16(out + 6, SFS_KDF_ALG_ARGON2ID13);
	sfs_put_le64(out + 8, opslimit);
	sfs_put_le64(out + 16, memlimit);
	sfs_crypto_random(out + 24, SFS_SALT_BYTES);
	if (version == 2) {
		sfs_put_le16(out + 40, (uint16_t)cipher);
		sfs_put_le16(out + 42, 0);
	}
	rc = sfs_crypto_pwhash(kek, password, pwlen, out + 24, opslimit, memlimit);
	if (rc == 0)
		sfs_crypto_seal(out + ad, master, SFS_KEY_BYTES, out, ad, kek);
	sodium_free(kek);
	return rc < 0 ? rc : (ssize_t)(ad + SFS_KEY_BYTES + SFS_SEAL_OVERHEAD);
}

/* The public part of a key file: its AD length, or -EUCLEAN / -EPROTONOSUPPORT. */
static int keyfile_parse(const unsigned char *in, size_t inlen, struct sfs_keyfile *kf)
{
	size_t ad;

	if (inlen < SFS_KEYFILE_AD_BYTES || memcmp(in, magic_key, 4) != 0)
		return -EUCLEAN;
	kf->version = sfs_get_le16(in + 4);
	kf->alg = sfs_get_le16(in + 6);
	kf->opslimit = sfs_get_le64(in + 8);
	kf->memlimit = sfs_get_le64(in + 16);
	memcpy(kf->salt, in + 24, SFS_SALT_BYTES);
	kf->cipher = SFS_CIPHER_XCHACHA;
	if (kf->version != 1 && kf->version != 2)
		return -EPROTONOSUPPORT;
	ad = kf->version == 1 ? SFS_KEYFILE_AD_BYTES : SFS_KEYFILE_V2_AD_BYTES;
	if (inlen != ad + SFS_KEY_BYTES + SFS_SEAL_OVERHEAD)
		return -EUCLEAN;
	if (kf->version == 2) {
		kf->cipher = sfs_get_le16(in + 40);
		if (sfs_get_le16(in + 42) != 0 || kf->cipher < SFS_CIPHER_XCHACHA ||
		    kf->cipher > SFS_CIPHER_AESGCM_DERIVED)
			return -EPROTONOSUPPORT;
	}
	if (kf->alg != SFS_KDF_ALG_ARGON2ID13)
		return -EPROTONOSUPPORT;
	return (int)ad;
}

int sfs_fmt_keyfile_info(const unsigned char *in, size_t inlen, struct sfs_keyfile *info)
{
	int ad = keyfile_parse(in, inlen, info);

	return ad < 0 ? ad : 0;
}

int sfs_fmt_keyfile_unwrap(unsigned char master[SFS_KEY_BYTES], const unsigned char *in,
			   size_t inlen, const char *password, size_t pwlen,
			   struct sfs_keyfile *info)
{
	struct sfs_keyfile kf;
	unsigned char *kek;
	int rc, ad;

	sodium_memzero(master, SFS_KEY_BYTES);
	memset(&kf, 0, sizeof(kf));
	ad = keyfile_parse(in, inlen, &kf);
	if (info && ad != -EUCLEAN)
		*info = kf;
	if (ad < 0)
		return ad;
	if (!sfs_cipher_available(kf.cipher))
		return -ENOTSUP;
	kek = sodium_malloc(SFS_KEY_BYTES);
	if (!kek)
		return -ENOMEM;
	/*
	 * Costs above the sensitive level are refused, not run: a tampered key
	 * file must not make unlock take hours or terabytes.
	 */
	if (kf.opslimit > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    kf.memlimit > crypto_pwhash_MEMLIMIT_SENSITIVE)
		rc = -EUCLEAN;
	else
		rc = sfs_crypto_pwhash(kek, password, pwlen, kf.salt, kf.opslimit, kf.memlimit);
	if (rc == -EINVAL)
		rc = -EUCLEAN; /* parameters no honest mkfs writes */
	if (rc == 0 &&
	    sfs_crypto_open(master, in + ad, inlen - (size_t)ad, in, (size_t)ad, kek) != 0)
		rc = -EKEYREJECTED;
	sodium_free(kek);
	return rc;
}

static const unsigned char *magic_bytes(enum sfs_node_magic magic)
{
	return magic == SFS_MAGIC_DIR ? magic_dir : magic_file;
}

/* Node header: magic 4 | u16 version | u16 kind | id 16 | nonce 24 | attrs 16 | tag 16 */
void sfs_fmt_header_pack(unsigned char out[SFS_HDR_BYTES], enum sfs_node_magic magic,
			 const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
			 const struct sfs_keys *keys)
{
	unsigned char plain[SFS_ATTR_BYTES];

	memcpy(out, magic_bytes(magic), 4);
	sfs_put_le16(out + 4, SFS_FORMAT_VERSION);
	sfs_put_le16(out + 6, magic == SFS_MAGIC_DIR ? 0 : attrs->kind);
	memcpy(out + 8, id, SFS_ID_BYTES);
	sfs_put_le32(plain, attrs->mode);
	sfs_put_le32(plain + 4, attrs->uid);
	sfs_put_le32(plain + 8, attrs->gid);
	sfs_put_le32(plain + 12, attrs->rdev);
	sfs_crypto_seal(out + SFS_HDR_AD_BYTES, plain, sizeof(plain), out, SFS_HDR_AD_BYTES,
			keys->meta);
}

int sfs_fmt_header_unpack(const unsigned char *in, size_t inlen, enum sfs_node_magic magic,
			  unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
			  const struct sfs_keys *keys)
{
	unsigned char plain[SFS_ATTR_BYTES];
	uint16_t kind;

	if (inlen < SFS_HDR_BYTES || memcmp(in, magic_bytes(magic), 4) != 0)
		return -EUCLEAN;
	kind = sfs_get_le16(in + 6);
	if (sfs_get_le16(in + 4) != SFS_FORMAT_VERSION || kind > SFS_KIND_SPARSE ||
	    (kind != SFS_KIND_BLOCKS && magic == SFS_MAGIC_DIR))
		return -EPROTONOSUPPORT;
	if (sfs_crypto_open(plain, in + SFS_HDR_AD_BYTES, SFS_HDR_BYTES - SFS_HDR_AD_BYTES, in,
			    SFS_HDR_AD_BYTES, keys->meta) != 0)
		return -EBADMSG;
	memcpy(id, in + 8, SFS_ID_BYTES);
	attrs->mode = sfs_get_le32(plain);
	attrs->uid = sfs_get_le32(plain + 4);
	attrs->gid = sfs_get_le32(plain + 8);
	attrs->rdev = sfs_get_le32(plain + 12);
	attrs->kind = kind;
	return 0;
}

uint64_t sfs_fmt_backing_size(uint64_t plain)
{
	uint64_t full = plain / SFS_BLOCK, rest = plain % SFS_BLOCK;

	return SFS_HDR_BYTES + full * SFS_CBLOCK + (rest ? rest + SFS_SEAL_OVERHEAD : 0);
}

int sfs_fmt_plain_size(uint64_t backing, uint64_t *plain)
{
	uint64_t body, rest;

	*plain = 0;
	if (backing == 0)
		return 0;
	if (backing < SFS_HDR_BYTES)
		return -EUCLEAN;
	body = backing - SFS_HDR_BYTES;
	rest = body % SFS_CBLOCK;
	if (rest != 0 && rest <= SFS_SEAL_OVERHEAD)
		return -EUCLEAN;
	*plain = body / SFS_CBLOCK * SFS_BLOCK + (rest ? rest - SFS_SEAL_OVERHEAD : 0);
	return 0;
}

/* Block ad: file id 16 | u64 block number */
static void block_ad(unsigned char ad[SFS_ID_BYTES + 8], const unsigned char id[SFS_ID_BYTES],
		     uint64_t blockno)
{
	memcpy(ad, id, SFS_ID_BYTES);
	sfs_put_le64(ad + SFS_ID_BYTES, blockno);
}

int sfs_fmt_blockkey_init(struct sfs_blockkey *bk, const unsigned char id[SFS_ID_BYTES],
			  const struct sfs_keys *keys)
{
	bk->keys = keys;
	memcpy(bk->id, id, SFS_ID_BYTES);
	bk->gcm = NULL;
	bk->derived = keys->cipher == SFS_CIPHER_AESGCM_DERIVED;
	if (keys->cipher == SFS_CIPHER_AESGCM) {
		bk->gcm = sfs_gcm_get(keys, id);
	} else if (bk->derived) {
		/* One random half, and so one derived key, for the whole run. */
		sfs_crypto_random(bk->half, sizeof(bk->half));
		bk->gcm = sfs_gcm_get_derived(keys, id, bk->half, 0, 1, bk->slot);
	} else {
		return 0;
	}
	return bk->gcm ? 0 : -ENOMEM;
}

int sfs_fmt_blockkey_init_open(struct sfs_blockkey *bk, const unsigned char id[SFS_ID_BYTES],
			       const struct sfs_keys *keys, const unsigned char *sealed, size_t n)
{
	if (keys->cipher != SFS_CIPHER_AESGCM_DERIVED)
		return sfs_fmt_blockkey_init(bk, id, keys);
	bk->keys = keys;
	memcpy(bk->id, id, SFS_ID_BYTES);
	bk->derived = true;
	bk->gcm = sfs_gcm_get_derived(keys, id, sealed + (SFS_NONCE_BYTES - SFS_GCM_HALF),
				      SFS_CBLOCK, n, bk->slot);
	return bk->gcm ? 0 : -ENOMEM;
}

void sfs_fmt_blockkey_done(struct sfs_blockkey *bk)
{
	sfs_gcm_put(bk->gcm);
	bk->gcm = NULL;
}

void sfs_fmt_block_seal_nonce(unsigned char *out, const unsigned char *in, size_t len,
			      uint64_t blockno, const struct sfs_blockkey *bk)
{
	unsigned char ad[SFS_ID_BYTES + 8];

	block_ad(ad, bk->id, blockno);
	if (bk->derived)
		memcpy(out + SFS_NONCE_BYTES - SFS_GCM_HALF, bk->half, SFS_GCM_HALF);
	if (bk->gcm)
		sfs_gcm_seal_nonce(bk->gcm, out, in, len, ad, sizeof(ad));
	else
		sfs_crypto_seal_nonce(out, in, len, ad, sizeof(ad), bk->keys->content);
}

int sfs_fmt_block_open_at(unsigned char *out, const unsigned char *in, size_t inlen,
			  uint64_t blockno, const struct sfs_blockkey *bk, size_t i)
{
	unsigned char ad[SFS_ID_BYTES + 8];

	if (inlen <= SFS_SEAL_OVERHEAD || inlen > SFS_CBLOCK)
		return -EBADMSG;
	block_ad(ad, bk->id, blockno);
	if (bk->derived)
		return sfs_gcm_open_k(bk->gcm, bk->slot[i], out, in, inlen, ad, sizeof(ad));
	if (bk->gcm)
		return sfs_gcm_open(bk->gcm, out, in, inlen, ad, sizeof(ad));
	return sfs_crypto_open(out, in, inlen, ad, sizeof(ad), bk->keys->content);
}

int sfs_fmt_block_seal1(unsigned char *out, const unsigned char *in, size_t len,
			const unsigned char id[SFS_ID_BYTES], uint64_t blockno,
			const struct sfs_keys *keys)
{
	struct sfs_blockkey bk;
	int rc = sfs_fmt_blockkey_init(&bk, id, keys);

	if (rc < 0)
		return rc;
	sfs_crypto_random(out, SFS_NONCE_BYTES);
	sfs_fmt_block_seal_nonce(out, in, len, blockno, &bk);
	sfs_fmt_blockkey_done(&bk);
	return 0;
}

int sfs_fmt_block_open1(unsigned char *out, const unsigned char *in, size_t inlen,
			const unsigned char id[SFS_ID_BYTES], uint64_t blockno,
			const struct sfs_keys *keys)
{
	struct sfs_blockkey bk;
	int rc;

	if (inlen <= SFS_SEAL_OVERHEAD)
		return -EBADMSG;
	rc = sfs_fmt_blockkey_init_open(&bk, id, keys, in, 1);
	if (rc < 0)
		return rc;
	rc = sfs_fmt_block_open_at(out, in, inlen, blockno, &bk, 0);
	sfs_fmt_blockkey_done(&bk);
	return rc;
}

uint64_t sfs_fmt_record_pos(uint64_t pos)
{
	uint64_t used = (pos - SFS_HDR_BYTES) % SFS_LOG_FRAME;

	if (SFS_LOG_FRAME - used < SFS_REC_MIN)
		pos += SFS_LOG_FRAME - used;
	return pos;
}

size_t sfs_fmt_record_room(uint64_t pos)
{
	return SFS_LOG_FRAME - (size_t)((pos - SFS_HDR_BYTES) % SFS_LOG_FRAME) - SFS_REC_OVERHEAD;
}

/* Record ad: file id 16 | the record's clear header 20 */
static void record_ad(unsigned char ad[SFS_ID_BYTES + SFS_REC_HDR],
		      const unsigned char id[SFS_ID_BYTES], const unsigned char *hdr)
{
	memcpy(ad, id, SFS_ID_BYTES);
	memcpy(ad + SFS_ID_BYTES, hdr, SFS_REC_HDR);
}

void sfs_fmt_record_seal(unsigned char *out, const struct sfs_rec *r, const unsigned char *in,
			 const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char ad[SFS_ID_BYTES + SFS_REC_HDR];

	sfs_put_le16(out, r->len);
	sfs_put_le16(out + 2, r->flags);
	sfs_put_le64(out + 4, r->offset);
	sfs_put_le64(out + 12, r->lines);
	record_ad(ad, id, out);
	sfs_crypto_seal(out + SFS_REC_HDR, in, r->len, ad, sizeof(ad), keys->content);
}

int sfs_fmt_record_parse(struct sfs_rec *r, const unsigned char *in, uint64_t pos)
{
	r->len = sfs_get_le16(in);
	r->flags = sfs_get_le16(in + 2);
	r->offset = sfs_get_le64(in + 4);
	r->lines = sfs_get_le64(in + 12);
	if (r->len == 0 || pos < SFS_HDR_BYTES || sfs_fmt_record_pos(pos) != pos ||
	    r->len > sfs_fmt_record_room(pos) || (r->flags & ~SFS_REC_END) != 0 ||
	    r->lines > r->offset || r->offset > UINT64_MAX / 2)
		return -EBADMSG;
	return 0;
}

int sfs_fmt_record_open(unsigned char *out, const struct sfs_rec *r, const unsigned char *in,
			const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char ad[SFS_ID_BYTES + SFS_REC_HDR];

	record_ad(ad, id, in);
	return sfs_crypto_open(out, in + SFS_REC_HDR, (size_t)r->len + SFS_SEAL_OVERHEAD, ad,
			       sizeof(ad), keys->content);
}

/*
 * base64url (no padding) of @enc into @bin of @cap bytes, *@len bytes: 0, or
 * -EBADMSG unless @enc is the one canonical encoding of what it decodes to
 * (decode, re-encode, compare). libsodium 1.0.18 reads every byte >= 0x80 as
 * '_': without this, one sealed name would have several backing names.
 */
static int b64_decode(unsigned char *bin, size_t cap, const char *enc, size_t *len)
{
	char again[sodium_base64_ENCODED_LEN(SFS_SYMLINK_MAX + SFS_SEAL_OVERHEAD, B64)];
	size_t enclen = strlen(enc);

	if (sodium_base642bin(bin, cap, enc, enclen, NULL, len, NULL, B64) != 0 ||
	    sodium_base64_ENCODED_LEN(*len, B64) != enclen + 1 || enclen + 1 > sizeof(again))
		return -EBADMSG;
	sodium_bin2base64(again, sizeof(again), bin, *len, B64);
	return memcmp(again, enc, enclen) == 0 ? 0 : -EBADMSG;
}

int sfs_fmt_symlink_encode(char *out, size_t outsize, const char *target,
			   const struct sfs_keys *keys)
{
	size_t len = strlen(target);
	unsigned char sealed[SFS_SYMLINK_MAX + SFS_SEAL_OVERHEAD];

	if (len > SFS_SYMLINK_MAX ||
	    sodium_base64_ENCODED_LEN(len + SFS_SEAL_OVERHEAD, B64) > outsize)
		return -ENAMETOOLONG;
	sfs_crypto_seal(sealed, (const unsigned char *)target, len,
			(const unsigned char *)symlink_ad, sizeof(symlink_ad) - 1, keys->meta);
	sodium_bin2base64(out, outsize, sealed, len + SFS_SEAL_OVERHEAD, B64);
	return 0;
}

int sfs_fmt_symlink_decode(char *out, size_t outsize, const char *enc, const struct sfs_keys *keys)
{
	unsigned char sealed[SFS_SYMLINK_MAX + SFS_SEAL_OVERHEAD];
	size_t len;

	if (b64_decode(sealed, sizeof(sealed), enc, &len) != 0 || len <= SFS_SEAL_OVERHEAD)
		return -EBADMSG;
	if (len - SFS_SEAL_OVERHEAD + 1 > outsize)
		return -ENAMETOOLONG;
	if (sfs_crypto_open((unsigned char *)out, sealed, len, (const unsigned char *)symlink_ad,
			    sizeof(symlink_ad) - 1, keys->meta) != 0)
		return -EBADMSG;
	out[len - SFS_SEAL_OVERHEAD] = '\0';
	return 0;
}

/* "~" + base64url(BLAKE2b-256(full)) */
static void longname_of(char out[SFS_NAME_MAX + 1], const char *full)
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)full, strlen(full), NULL, 0);
	out[0] = SFS_LONGNAME_PREFIX;
	sodium_bin2base64(out + 1, SFS_NAME_MAX, h, sizeof(h), B64);
}

int sfs_fmt_name_encrypt(struct sfs_ename *out, const char *name,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	size_t len = strlen(name);
	unsigned char sealed[SFS_SIV_BYTES + SFS_NAME_MAX];

	if (len == 0)
		return -EINVAL;
	if (len > SFS_NAME_MAX)
		return -ENAMETOOLONG;
	sfs_crypto_name_seal(sealed, (const unsigned char *)name, len, dirid, keys);
	sodium_bin2base64(out->full, sizeof(out->full), sealed, SFS_SIV_BYTES + len, B64);
	out->is_long = strlen(out->full) > SFS_NAME_MAX;
	if (out->is_long)
		longname_of(out->backing, out->full);
	else
		memcpy(out->backing, out->full, strlen(out->full) + 1);
	return 0;
}

int sfs_fmt_name_decrypt(char out[SFS_NAME_MAX + 1], const char *encoded,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char sealed[SFS_SIV_BYTES + SFS_NAME_MAX];
	size_t len;

	if (b64_decode(sealed, sizeof(sealed), encoded, &len) != 0 || len <= SFS_SIV_BYTES)
		return -EBADMSG;
	if (sfs_crypto_name_open((unsigned char *)out, sealed, len, dirid, keys) != 0)
		return -EBADMSG;
	out[len - SFS_SIV_BYTES] = '\0';
	if (memchr(out, '/', len - SFS_SIV_BYTES) || strlen(out) != len - SFS_SIV_BYTES)
		return -EBADMSG; /* never produced by encrypt */
	return 0;
}

bool sfs_fmt_longname_matches(const char *backing, const char *full)
{
	char expect[SFS_NAME_MAX + 1];

	longname_of(expect, full);
	return strcmp(expect, backing) == 0;
}

static bool is_b64url(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return len > 0;
}

enum sfs_name_class sfs_fmt_name_class(const char *backing)
{
	size_t len = strlen(backing), slen = strlen(SFS_SIDECAR_SUFFIX);

	if (backing[0] == SFS_LONGNAME_PREFIX) {
		if (len > slen && strcmp(backing + len - slen, SFS_SIDECAR_SUFFIX) == 0 &&
		    is_b64url(backing + 1, len - 1 - slen))
			return SFS_NAME_SIDECAR;
		return is_b64url(backing + 1, len - 1) ? SFS_NAME_LONG : SFS_NAME_INTERNAL;
	}
	return is_b64url(backing, len) ? SFS_NAME_SHORT : SFS_NAME_INTERNAL;
}

int sfs_fmt_header_id(const unsigned char *in, size_t inlen, unsigned char id[SFS_ID_BYTES])
{
	if (inlen < SFS_HDR_AD_BYTES ||
	    (memcmp(in, magic_file, 4) != 0 && memcmp(in, magic_dir, 4) != 0))
		return -EUCLEAN;
	memcpy(id, in + 8, SFS_ID_BYTES);
	return 0;
}

int sfs_fmt_header_kind(const unsigned char *in, size_t inlen, unsigned int *kind)
{
	if (inlen < SFS_HDR_AD_BYTES || memcmp(in, magic_file, 4) != 0)
		return -EUCLEAN;
	*kind = sfs_get_le16(in + 6);
	return 0;
}
