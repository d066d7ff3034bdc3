/*
 * format.c - packing and parsing of sessionfs's on-disk structures (v1;
 * key files of versions 1 to 3).
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
 * Key file, versions 1 and 2: "SFSK" | u16 version | u16 alg | u64 ops |
 * u64 mem | salt 16, in version 2 then u16 cipher | u16 0, and last the
 * sealed key (nonce 24 | ct 32 | tag 16); everything before it is the
 * associated data. Version 3: "SFSK" | u16 3 | u16 cipher | u8 count |
 * 7 zero bytes, then count slots of SFS_SLOT_BYTES, each "u8 index | u8 0 |
 * u16 kdf | u32 0 | u64 ops | u64 mem | u64 added | salt 16 | sealed key 72
 * | sealed label 104"; a slot's key is bound to header bytes 0..7 and its
 * own bytes 0..47, its label to its bytes 0..47.
 */

/* The associated data slot @s's key is sealed with; its length. */
static size_t slot_ad(unsigned char ad[SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC],
		      const struct sfs_keyfile *kf, const struct sfs_keyslot *s)
{
	memcpy(ad, magic_key, 4);
	sfs_put_le16(ad + 4, kf->version);
	if (kf->version == 3) {
		sfs_put_le16(ad + 6, kf->cipher);
		ad[8] = s->index;
		ad[9] = 0;
		sfs_put_le16(ad + 10, s->kdf);
		sfs_put_le32(ad + 12, 0);
		sfs_put_le64(ad + 16, s->opslimit);
		sfs_put_le64(ad + 24, s->memlimit);
		sfs_put_le64(ad + 32, s->added);
		memcpy(ad + 40, s->salt, SFS_SALT_BYTES);
		return SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC;
	}
	sfs_put_le16(ad + 6, SFS_KDF_ALG_ARGON2ID13);
	sfs_put_le64(ad + 8, s->opslimit);
	sfs_put_le64(ad + 16, s->memlimit);
	memcpy(ad + 24, s->salt, SFS_SALT_BYTES);
	if (kf->version == 1)
		return SFS_KEYFILE_AD_BYTES;
	sfs_put_le16(ad + 40, kf->cipher);
	sfs_put_le16(ad + 42, 0);
	return SFS_KEYFILE_V2_AD_BYTES;
}

static bool cipher_known(uint16_t cipher)
{
	return cipher >= SFS_CIPHER_XCHACHA && cipher <= SFS_CIPHER_AESGCM_DERIVED;
}

/* Version 1 and 2: one slot. 0, -EUCLEAN, -EPROTONOSUPPORT. */
static int parse_v12(const unsigned char *in, size_t inlen, struct sfs_keyfile *kf)
{
	size_t ad = kf->version == 1 ? SFS_KEYFILE_AD_BYTES : SFS_KEYFILE_V2_AD_BYTES;
	struct sfs_keyslot *s = &kf->slots[0];

	kf->alg = sfs_get_le16(in + 6);
	kf->opslimit = sfs_get_le64(in + 8);
	kf->memlimit = sfs_get_le64(in + 16);
	memcpy(kf->salt, in + 24, SFS_SALT_BYTES);
	if (inlen != ad + SFS_SLOT_WRAPPED)
		return -EUCLEAN;
	if (kf->version == 2) {
		kf->cipher = sfs_get_le16(in + 40);
		if (sfs_get_le16(in + 42) != 0 || !cipher_known(kf->cipher))
			return -EPROTONOSUPPORT;
	}
	if (kf->alg != SFS_KDF_ALG_ARGON2ID13)
		return -EPROTONOSUPPORT;
	kf->nslots = 1;
	s->kdf = SFS_SLOT_ARGON2ID;
	s->opslimit = kf->opslimit;
	s->memlimit = kf->memlimit;
	memcpy(s->salt, kf->salt, SFS_SALT_BYTES);
	memcpy(s->wrapped, in + ad, SFS_SLOT_WRAPPED);
	return 0;
}

/* Version 3: the slots. 0, -EUCLEAN, -EPROTONOSUPPORT. */
static int parse_v3(const unsigned char *in, size_t inlen, struct sfs_keyfile *kf)
{
	const unsigned char *p;
	unsigned int n;

	if (inlen < SFS_KEYFILE_V3_HDR)
		return -EUCLEAN;
	kf->cipher = sfs_get_le16(in + 6);
	kf->alg = SFS_KDF_ALG_ARGON2ID13;
	n = in[8];
	for (int i = 9; i < SFS_KEYFILE_V3_HDR; i++)
		if (in[i] != 0)
			return -EPROTONOSUPPORT;
	if (!cipher_known(kf->cipher))
		return -EPROTONOSUPPORT;
	if (n < 1 || n > SFS_SLOTS_MAX || inlen != SFS_KEYFILE_V3_HDR + n * SFS_SLOT_BYTES)
		return -EUCLEAN;
	for (unsigned int i = 0; i < n; i++) {
		struct sfs_keyslot *s = &kf->slots[i];

		p = in + SFS_KEYFILE_V3_HDR + i * SFS_SLOT_BYTES;
		s->index = p[0];
		s->kdf = sfs_get_le16(p + 2);
		s->opslimit = sfs_get_le64(p + 8);
		s->memlimit = sfs_get_le64(p + 16);
		s->added = sfs_get_le64(p + 24);
		memcpy(s->salt, p + 32, SFS_SALT_BYTES);
		memcpy(s->wrapped, p + SFS_SLOT_PUBLIC, SFS_SLOT_WRAPPED);
		memcpy(s->label, p + SFS_SLOT_PUBLIC + SFS_SLOT_WRAPPED, SFS_SLOT_LABEL_SEALED);
		if (p[1] != 0 || sfs_get_le32(p + 4) != 0 ||
		    (s->kdf != SFS_SLOT_ARGON2ID && s->kdf != SFS_SLOT_RECOVERY))
			return -EPROTONOSUPPORT;
		/* ascending indexes, none twice; a recovery slot has no cost */
		if (s->index >= SFS_SLOTS_MAX || (i > 0 && s->index <= kf->slots[i - 1].index) ||
		    (s->kdf == SFS_SLOT_RECOVERY && (s->opslimit || s->memlimit)))
			return -EUCLEAN;
		if (s->kdf == SFS_SLOT_ARGON2ID && !kf->opslimit) {
			kf->opslimit = s->opslimit;
			kf->memlimit = s->memlimit;
			memcpy(kf->salt, s->salt, SFS_SALT_BYTES);
		}
	}
	kf->nslots = n;
	return 0;
}

int sfs_fmt_keyfile_parse(const unsigned char *in, size_t inlen, struct sfs_keyfile *kf)
{
	memset(kf, 0, sizeof(*kf));
	if (inlen < 8 || memcmp(in, magic_key, 4) != 0)
		return -EUCLEAN;
	kf->version = sfs_get_le16(in + 4);
	kf->cipher = SFS_CIPHER_XCHACHA;
	if (kf->version == 3)
		return parse_v3(in, inlen, kf);
	if (inlen < SFS_KEYFILE_AD_BYTES)
		return -EUCLEAN;
	if (kf->version != 1 && kf->version != 2)
		return -EPROTONOSUPPORT;
	return parse_v12(in, inlen, kf);
}

int sfs_fmt_keyfile_info(const unsigned char *in, size_t inlen, struct sfs_keyfile *info)
{
	return sfs_fmt_keyfile_parse(in, inlen, info);
}

ssize_t sfs_fmt_keyfile_pack(unsigned char out[SFS_KEYFILE_MAX], const struct sfs_keyfile *kf)
{
	unsigned char ad[SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC];
	const struct sfs_keyslot *s = &kf->slots[0];
	size_t n;

	if (kf->nslots < 1 || kf->nslots > SFS_SLOTS_MAX || !cipher_known(kf->cipher))
		return -EINVAL;
	if (kf->version == 1 || kf->version == 2) {
		if (kf->nslots != 1 || s->index != 0 || s->kdf != SFS_SLOT_ARGON2ID ||
		    (kf->version == 1 && kf->cipher != SFS_CIPHER_XCHACHA))
			return -EINVAL;
		n = slot_ad(ad, kf, s);
		memcpy(out, ad, n);
		memcpy(out + n, s->wrapped, SFS_SLOT_WRAPPED);
		return (ssize_t)(n + SFS_SLOT_WRAPPED);
	}
	if (kf->version != 3)
		return -EINVAL;
	memset(out, 0, SFS_KEYFILE_V3_HDR);
	memcpy(out, magic_key, 4);
	sfs_put_le16(out + 4, 3);
	sfs_put_le16(out + 6, kf->cipher);
	out[8] = (unsigned char)kf->nslots;
	for (unsigned int i = 0; i < kf->nslots; i++) {
		unsigned char *p = out + SFS_KEYFILE_V3_HDR + i * SFS_SLOT_BYTES;

		s = &kf->slots[i];
		if (s->index >= SFS_SLOTS_MAX || (i > 0 && s->index <= kf->slots[i - 1].index))
			return -EINVAL;
		slot_ad(ad, kf, s);
		memcpy(p, ad + SFS_KEYFILE_V3_BOUND, SFS_SLOT_PUBLIC);
		memcpy(p + SFS_SLOT_PUBLIC, s->wrapped, SFS_SLOT_WRAPPED);
		memcpy(p + SFS_SLOT_PUBLIC + SFS_SLOT_WRAPPED, s->label, SFS_SLOT_LABEL_SEALED);
	}
	return (ssize_t)(SFS_KEYFILE_V3_HDR + kf->nslots * SFS_SLOT_BYTES);
}

/* The key-encryption key of slot @s from @secret into @kek: 0, -EUCLEAN, -EINVAL, -ENOMEM. */
static int slot_kek(unsigned char kek[SFS_KEY_BYTES], const struct sfs_keyslot *s,
		    const void *secret, size_t len)
{
	int rc;

	if (s->kdf == SFS_SLOT_RECOVERY) {
		if (len != SFS_RECOVERY_KEY_BYTES)
			return -EINVAL;
		sfs_crypto_recovery_kek(kek, secret, s->salt);
		return 0;
	}
	/*
	 * Costs above the sensitive level are refused, not run: a tampered key
	 * file must not make unlock take hours or terabytes.
	 */
	if (s->opslimit > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    s->memlimit > crypto_pwhash_MEMLIMIT_SENSITIVE)
		return -EUCLEAN;
	rc = sfs_crypto_pwhash(kek, secret, len, s->salt, s->opslimit, s->memlimit);
	return rc == -EINVAL ? -EUCLEAN : rc; /* parameters no honest mkfs writes */
}

/* Open slot @s with @secret: 0, -EKEYREJECTED, -EUCLEAN, -ENOMEM. */
static int slot_open(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
		     const struct sfs_keyslot *s, const void *secret, size_t len)
{
	unsigned char ad[SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC];
	unsigned char *kek = sodium_malloc(SFS_KEY_BYTES);
	size_t adlen = slot_ad(ad, kf, s);
	int rc;

	if (!kek)
		return -ENOMEM;
	rc = slot_kek(kek, s, secret, len);
	if (rc == 0 && sfs_crypto_open(master, s->wrapped, SFS_SLOT_WRAPPED, ad, adlen, kek) != 0)
		rc = -EKEYREJECTED;
	sodium_free(kek);
	return rc;
}

int sfs_fmt_keyfile_open_slot(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			      const char *secret, size_t len, int index)
{
	unsigned char *rkey;
	int rc = -EKEYREJECTED;

	sodium_memzero(master, SFS_KEY_BYTES);
	for (unsigned int i = 0; i < kf->nslots; i++) {
		const struct sfs_keyslot *s = &kf->slots[i];

		if (s->index != index)
			continue;
		if (s->kdf == SFS_SLOT_ARGON2ID)
			return slot_open(master, kf, s, secret, len);
		if (s->kdf != SFS_SLOT_RECOVERY)
			return -EKEYREJECTED;
		rkey = sodium_malloc(SFS_RECOVERY_KEY_BYTES);
		if (!rkey)
			return -ENOMEM;
		if (sfs_fmt_recovery_decode(rkey, secret, len) == 0)
			rc = slot_open(master, kf, s, rkey, SFS_RECOVERY_KEY_BYTES);
		sodium_free(rkey);
		return rc;
	}
	return -ENOENT;
}

int sfs_fmt_keyfile_open(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			 const char *secret, size_t len, int *index)
{
	return sfs_fmt_keyfile_open_other(master, kf, secret, len, -1, index);
}

int sfs_fmt_keyfile_open_other(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			       const char *secret, size_t len, int skip, int *index)
{
	unsigned char *rkey = sodium_malloc(SFS_RECOVERY_KEY_BYTES);
	bool is_rkey, rejected = false, tried = false;
	int rc = -EKEYREJECTED;

	sodium_memzero(master, SFS_KEY_BYTES);
	*index = -1;
	if (!rkey)
		return -ENOMEM;
	is_rkey = sfs_fmt_recovery_decode(rkey, secret, len) == 0;
	/* Recovery slots first (a cheap derivation), then every password slot. */
	for (int pass = 0; pass < 2 && rc != 0 && rc != -ENOMEM; pass++) {
		for (unsigned int i = 0; i < kf->nslots; i++) {
			const struct sfs_keyslot *s = &kf->slots[i];

			if (s->index == skip || (pass == 0 ? !is_rkey || s->kdf != SFS_SLOT_RECOVERY
							   : s->kdf != SFS_SLOT_ARGON2ID))
				continue;
			tried = true;
			rc = pass == 0 ? slot_open(master, kf, s, rkey, SFS_RECOVERY_KEY_BYTES)
				       : slot_open(master, kf, s, secret, len);
			if (rc == 0) {
				*index = s->index;
				break;
			}
			if (rc == -ENOMEM)
				break;
			if (rc == -EKEYREJECTED)
				rejected = true;
		}
	}
	sodium_free(rkey);
	if (rc == 0 || rc == -ENOMEM)
		return rc;
	return tried && !rejected ? -EUCLEAN : -EKEYREJECTED;
}

int sfs_fmt_slot_seal(struct sfs_keyslot *s, const struct sfs_keyfile *kf,
		      const unsigned char master[SFS_KEY_BYTES], enum sfs_slot_kdf kdf,
		      const void *secret, size_t len, uint64_t opslimit, uint64_t memlimit,
		      uint64_t added, const char *label, size_t labellen)
{
	unsigned char ad[SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC];
	unsigned char *kek, *box;
	size_t adlen;
	int rc;

	if (labellen > SFS_SLOT_LABEL_MAX ||
	    (kdf != SFS_SLOT_ARGON2ID && kdf != SFS_SLOT_RECOVERY) ||
	    (kdf == SFS_SLOT_RECOVERY && kf->version != 3))
		return -EINVAL;
	s->kdf = (uint16_t)kdf;
	s->opslimit = kdf == SFS_SLOT_ARGON2ID ? opslimit : 0;
	s->memlimit = kdf == SFS_SLOT_ARGON2ID ? memlimit : 0;
	s->added = kf->version == 3 ? added : 0;
	sfs_crypto_random(s->salt, SFS_SALT_BYTES);
	kek = sodium_malloc(SFS_KEY_BYTES + SFS_SLOT_LABEL_BOX);
	if (!kek)
		return -ENOMEM;
	box = kek + SFS_KEY_BYTES;
	rc = kdf == SFS_SLOT_ARGON2ID
		     ? sfs_crypto_pwhash(kek, secret, len, s->salt, s->opslimit, s->memlimit)
		     : slot_kek(kek, s, secret, len);
	if (rc == 0) {
		adlen = slot_ad(ad, kf, s);
		sfs_crypto_seal(s->wrapped, master, SFS_KEY_BYTES, ad, adlen, kek);
		memset(s->label, 0, sizeof(s->label));
	}
	if (rc == 0 && kf->version == 3) {
		/* the label key, then the label box under it, bound to this slot */
		sfs_crypto_label_key(kek, master);
		memset(box, 0, SFS_SLOT_LABEL_BOX);
		box[0] = (unsigned char)labellen;
		if (labellen)
			memcpy(box + 1, label, labellen);
		sfs_crypto_seal(s->label, box, SFS_SLOT_LABEL_BOX, ad + SFS_KEYFILE_V3_BOUND,
				SFS_SLOT_PUBLIC, kek);
	}
	sodium_free(kek);
	return rc;
}

int sfs_fmt_slot_label(char out[SFS_SLOT_LABEL_MAX + 1], const struct sfs_keyslot *s,
		       const unsigned char labelkey[SFS_KEY_BYTES])
{
	unsigned char ad[SFS_KEYFILE_V3_BOUND + SFS_SLOT_PUBLIC];
	unsigned char box[SFS_SLOT_LABEL_BOX];
	struct sfs_keyfile v3 = {.version = 3};
	int rc;

	out[0] = '\0';
	slot_ad(ad, &v3, s);
	rc = sfs_crypto_open(box, s->label, SFS_SLOT_LABEL_SEALED, ad + SFS_KEYFILE_V3_BOUND,
			     SFS_SLOT_PUBLIC, labelkey);
	if (rc == 0 && box[0] > SFS_SLOT_LABEL_MAX)
		rc = -EBADMSG;
	if (rc == 0) {
		memcpy(out, box + 1, box[0]);
		out[box[0]] = '\0';
	}
	sodium_memzero(box, sizeof(box));
	return rc;
}

int sfs_fmt_slot_rekey(struct sfs_keyslot *out, const struct sfs_keyfile *to,
		       const struct sfs_keyfile *kf, const struct sfs_keyslot *s,
		       const unsigned char oldmaster[SFS_KEY_BYTES],
		       const unsigned char newmaster[SFS_KEY_BYTES], const char *secret, size_t len)
{
	/* the key the slot opens to, the old label key, a recovery key, the label */
	unsigned char *buf = sodium_malloc(3 * SFS_KEY_BYTES + SFS_SLOT_LABEL_MAX + 1);
	unsigned char *got, *lkey, *rkey;
	char *label;
	struct sfs_keyslot fresh = {.index = s->index};
	int rc;

	if (!buf)
		return -ENOMEM;
	got = buf;
	lkey = buf + SFS_KEY_BYTES;
	rkey = buf + 2 * SFS_KEY_BYTES;
	label = (char *)buf + 3 * SFS_KEY_BYTES;
	label[0] = '\0';
	if (s->kdf == SFS_SLOT_RECOVERY)
		rc = sfs_fmt_recovery_decode(rkey, secret, len) == 0
			     ? slot_open(got, kf, s, rkey, SFS_RECOVERY_KEY_BYTES)
			     : -EKEYREJECTED;
	else if (s->kdf == SFS_SLOT_ARGON2ID)
		rc = slot_open(got, kf, s, secret, len);
	else
		rc = -EPROTONOSUPPORT;
	if (rc == 0 && sodium_memcmp(got, oldmaster, SFS_KEY_BYTES) != 0)
		rc = -ESTALE;
	if (rc == 0 && kf->version == 3) {
		sfs_crypto_label_key(lkey, oldmaster);
		rc = sfs_fmt_slot_label(label, s, lkey);
	}
	if (rc == 0)
		rc = s->kdf == SFS_SLOT_RECOVERY
			     ? sfs_fmt_slot_seal(&fresh, to, newmaster, SFS_SLOT_RECOVERY, rkey,
						 SFS_RECOVERY_KEY_BYTES, 0, 0, s->added, label,
						 strlen(label))
			     : sfs_fmt_slot_seal(&fresh, to, newmaster, SFS_SLOT_ARGON2ID, secret,
						 len, s->opslimit, s->memlimit, s->added, label,
						 strlen(label));
	if (rc == 0)
		*out = fresh;
	sodium_memzero(&fresh, sizeof(fresh));
	sodium_free(buf);
	return rc;
}

int sfs_fmt_keyfile_rekey(struct sfs_keyfile *out, const struct sfs_keyfile *old,
			  const unsigned char oldmaster[SFS_KEY_BYTES],
			  const unsigned char newmaster[SFS_KEY_BYTES], uint16_t cipher,
			  const char *const secrets[SFS_SLOTS_MAX],
			  const size_t lens[SFS_SLOTS_MAX], int *failed)
{
	int rc = 0;

	*failed = -1;
	*out = *old;
	sodium_memzero(out->slots, sizeof(out->slots));
	out->nslots = 0;
	if (cipher)
		out->cipher = cipher;
	if (!cipher_known(out->cipher) ||
	    (out->version == 1 && out->cipher != SFS_CIPHER_XCHACHA)) {
		sodium_memzero(out, sizeof(*out));
		return -EINVAL;
	}
	for (unsigned int i = 0; i < old->nslots && rc == 0; i++) {
		const struct sfs_keyslot *s = &old->slots[i];

		if (!secrets[s->index])
			continue;
		rc = sfs_fmt_slot_rekey(&out->slots[out->nslots], out, old, s, oldmaster, newmaster,
					secrets[s->index], lens[s->index]);
		if (rc < 0)
			*failed = s->index;
		else
			out->nslots++;
	}
	if (rc == 0 && (out->nslots == 0 || (old->version != 3 && out->nslots != old->nslots)))
		rc = -EINVAL;
	if (rc < 0) {
		sodium_memzero(out, sizeof(*out));
		return rc;
	}
	/* the public copy of the first password slot's cost and salt, as parse gives it */
	out->opslimit = out->memlimit = 0;
	memset(out->salt, 0, sizeof(out->salt));
	for (unsigned int i = 0; i < out->nslots; i++)
		if (out->slots[i].kdf == SFS_SLOT_ARGON2ID) {
			out->opslimit = out->slots[i].opslimit;
			out->memlimit = out->slots[i].memlimit;
			memcpy(out->salt, out->slots[i].salt, sizeof(out->salt));
			break;
		}
	return (int)out->nslots;
}

void sfs_fmt_recovery_encode(char out[SFS_RECOVERY_TEXT_MAX],
			     const unsigned char key[SFS_RECOVERY_KEY_BYTES])
{
	char *hex = sodium_malloc(2 * SFS_RECOVERY_KEY_BYTES + 1);
	size_t o = 0;

	if (!hex) {
		out[0] = '\0';
		return;
	}
	sodium_bin2hex(hex, 2 * SFS_RECOVERY_KEY_BYTES + 1, key, SFS_RECOVERY_KEY_BYTES);
	for (int i = 0; i < 2 * SFS_RECOVERY_KEY_BYTES; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[o] = '\0';
	sodium_free(hex);
}

int sfs_fmt_recovery_decode(unsigned char key[SFS_RECOVERY_KEY_BYTES], const char *text, size_t len)
{
	char *hex = sodium_malloc(2 * SFS_RECOVERY_KEY_BYTES);
	size_t n = 0, bin = 0;
	int rc = 0;

	sodium_memzero(key, SFS_RECOVERY_KEY_BYTES);
	if (!hex)
		return -ENOMEM;
	for (size_t i = 0; i < len && rc == 0; i++) {
		char c = text[i];

		if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) ||
		    n == 2 * SFS_RECOVERY_KEY_BYTES)
			rc = -EINVAL;
		else
			hex[n++] = c;
	}
	if (rc == 0 &&
	    (n != 2 * SFS_RECOVERY_KEY_BYTES ||
	     sodium_hex2bin(key, SFS_RECOVERY_KEY_BYTES, hex, n, NULL, &bin, NULL) != 0 ||
	     bin != SFS_RECOVERY_KEY_BYTES))
		rc = -EINVAL;
	if (rc < 0)
		sodium_memzero(key, SFS_RECOVERY_KEY_BYTES);
	sodium_free(hex);
	return rc;
}

ssize_t sfs_fmt_keyfile_wrap(unsigned char out[SFS_KEYFILE_MAX],
			     const unsigned char master[SFS_KEY_BYTES], const char *password,
			     size_t pwlen, uint64_t opslimit, uint64_t memlimit,
			     enum sfs_cipher cipher)
{
	/* XChaCha sessions keep version 1, which every build reads. */
	struct sfs_keyfile kf = {.version = cipher == SFS_CIPHER_XCHACHA ? 1 : 2,
				 .cipher = (uint16_t)cipher,
				 .nslots = 1};
	int rc;

	if (!sfs_cipher_available(cipher))
		return -EINVAL;
	rc = sfs_fmt_slot_seal(&kf.slots[0], &kf, master, SFS_SLOT_ARGON2ID, password, pwlen,
			       opslimit, memlimit, 0, NULL, 0);
	return rc < 0 ? rc : sfs_fmt_keyfile_pack(out, &kf);
}

int sfs_fmt_keyfile_unwrap(unsigned char master[SFS_KEY_BYTES], const unsigned char *in,
			   size_t inlen, const char *password, size_t pwlen,
			   struct sfs_keyfile *info)
{
	struct sfs_keyfile kf;
	int rc, index;

	sodium_memzero(master, SFS_KEY_BYTES);
	rc = sfs_fmt_keyfile_parse(in, inlen, &kf);
	if (info && rc != -EUCLEAN)
		*info = kf;
	if (rc < 0)
		return rc;
	if (!sfs_cipher_available(kf.cipher))
		return -ENOTSUP;
	return sfs_fmt_keyfile_open(master, &kf, password, pwlen, &index);
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
