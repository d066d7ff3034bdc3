/*
 * crypto.c - libsodium wrappers for sessionfs: KDF, key set, AEAD, SIV names.
 *
 * Must not know files, formats or JSON; see crypto.h for the contracts.
 */
#include "crypto.h"

#include <errno.h>
#include <string.h>

/* crypto_kdf context labels, one per purpose (exactly 8 bytes each). */
static const char ctx_content[crypto_kdf_CONTEXTBYTES + 1] = "sfsblock";
static const char ctx_meta[crypto_kdf_CONTEXTBYTES + 1] = "sfsmeta_";
static const char ctx_name_mac[crypto_kdf_CONTEXTBYTES + 1] = "sfsnmtag";
static const char ctx_name_enc[crypto_kdf_CONTEXTBYTES + 1] = "sfsnmenc";

_Static_assert(crypto_kdf_KEYBYTES == SFS_KEY_BYTES, "kdf key size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == SFS_KEY_BYTES, "aead key size");
_Static_assert(crypto_stream_xchacha20_NONCEBYTES == SFS_NONCE_BYTES, "stream nonce size");

int sfs_crypto_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int sfs_kdf_params(enum sfs_kdf_level level, uint64_t *opslimit, uint64_t *memlimit)
{
	switch (level) {
	case SFS_KDF_INTERACTIVE:
		*opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		*memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
		return 0;
	case SFS_KDF_MODERATE:
		*opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
		*memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
		return 0;
	case SFS_KDF_SENSITIVE:
		*opslimit = crypto_pwhash_OPSLIMIT_SENSITIVE;
		*memlimit = crypto_pwhash_MEMLIMIT_SENSITIVE;
		return 0;
	}
	return -EINVAL;
}

static const char *const level_names[] = {
	[SFS_KDF_INTERACTIVE] = "interactive",
	[SFS_KDF_MODERATE] = "moderate",
	[SFS_KDF_SENSITIVE] = "sensitive",
};

enum sfs_kdf_level sfs_kdf_level_from_name(const char *name)
{
	for (int i = SFS_KDF_INTERACTIVE; i <= SFS_KDF_SENSITIVE; i++)
		if (strcmp(name, level_names[i]) == 0)
			return (enum sfs_kdf_level)i;
	return 0;
}

const char *sfs_kdf_level_name(enum sfs_kdf_level level)
{
	if (level < SFS_KDF_INTERACTIVE || level > SFS_KDF_SENSITIVE)
		return "unknown";
	return level_names[level];
}

int sfs_crypto_pwhash(unsigned char out[SFS_KEY_BYTES], const char *password, size_t len,
		      const unsigned char salt[SFS_SALT_BYTES], uint64_t opslimit,
		      uint64_t memlimit)
{
	if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > crypto_pwhash_OPSLIMIT_MAX ||
	    memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > crypto_pwhash_MEMLIMIT_MAX ||
	    memlimit > SIZE_MAX)
		return -EINVAL;
	if (crypto_pwhash(out, SFS_KEY_BYTES, password, len, salt, opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_memzero(out, SFS_KEY_BYTES);
		return -ENOMEM;
	}
	return 0;
}

struct sfs_keys *sfs_keys_new(const unsigned char master[SFS_KEY_BYTES])
{
	struct sfs_keys *keys = sodium_malloc(sizeof(*keys));

	if (!keys)
		return NULL;
	crypto_kdf_derive_from_key(keys->content, SFS_KEY_BYTES, 1, ctx_content, master);
	crypto_kdf_derive_from_key(keys->meta, SFS_KEY_BYTES, 1, ctx_meta, master);
	crypto_kdf_derive_from_key(keys->name_mac, SFS_KEY_BYTES, 1, ctx_name_mac, master);
	crypto_kdf_derive_from_key(keys->name_enc, SFS_KEY_BYTES, 1, ctx_name_enc, master);
	sodium_mprotect_readonly(keys);
	return keys;
}

void sfs_keys_free(struct sfs_keys *keys)
{
	/* sodium_free() wipes the whole allocation before releasing it. */
	if (keys)
		sodium_free(keys);
}

void sfs_crypto_seal(unsigned char *out, const unsigned char *in, size_t len,
		     const unsigned char *ad, size_t adlen, const unsigned char key[SFS_KEY_BYTES])
{
	randombytes_buf(out, SFS_NONCE_BYTES);
	sfs_crypto_seal_nonce(out, in, len, ad, adlen, key);
}

void sfs_crypto_seal_nonce(unsigned char *out, const unsigned char *in, size_t len,
			   const unsigned char *ad, size_t adlen,
			   const unsigned char key[SFS_KEY_BYTES])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + SFS_NONCE_BYTES, NULL, in, len, ad, adlen,
						   NULL, out, key);
}

int sfs_crypto_open(unsigned char *out, const unsigned char *in, size_t inlen,
		    const unsigned char *ad, size_t adlen, const unsigned char key[SFS_KEY_BYTES])
{
	if (inlen < SFS_SEAL_OVERHEAD)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in + SFS_NONCE_BYTES,
						       inlen - SFS_NONCE_BYTES, ad, adlen, in,
						       key) != 0) {
		sodium_memzero(out, inlen - SFS_SEAL_OVERHEAD);
		return -EBADMSG;
	}
	return 0;
}

/* tag = BLAKE2b-128(key = name_mac, dirid || name) */
static void name_tag(unsigned char tag[SFS_SIV_BYTES], const unsigned char *name, size_t len,
		     const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, keys->name_mac, SFS_KEY_BYTES, SFS_SIV_BYTES);
	crypto_generichash_update(&st, dirid, SFS_ID_BYTES);
	crypto_generichash_update(&st, name, len);
	crypto_generichash_final(&st, tag, SFS_SIV_BYTES);
	sodium_memzero(&st, sizeof(st));
}

/* The stream nonce is the tag padded with zeros to 24 bytes. */
static void name_xor(unsigned char *out, const unsigned char *in, size_t len,
		     const unsigned char tag[SFS_SIV_BYTES], const struct sfs_keys *keys)
{
	unsigned char nonce[SFS_NONCE_BYTES] = {0};

	memcpy(nonce, tag, SFS_SIV_BYTES);
	crypto_stream_xchacha20_xor(out, in, len, nonce, keys->name_enc);
}

void sfs_crypto_name_seal(unsigned char *out, const unsigned char *name, size_t len,
			  const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	name_tag(out, name, len, dirid, keys);
	name_xor(out + SFS_SIV_BYTES, name, len, out, keys);
}

int sfs_crypto_name_open(unsigned char *out, const unsigned char *in, size_t inlen,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
{
	unsigned char tag[SFS_SIV_BYTES];
	size_t len;

	if (inlen <= SFS_SIV_BYTES)
		return -EBADMSG;
	len = inlen - SFS_SIV_BYTES;
	name_xor(out, in + SFS_SIV_BYTES, len, in, keys);
	name_tag(tag, out, len, dirid, keys);
	if (sodium_memcmp(tag, in, SFS_SIV_BYTES) != 0) {
		sodium_memzero(out, len);
		return -EBADMSG;
	}
	return 0;
}

void sfs_crypto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}
