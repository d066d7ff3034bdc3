/*
 * crypto.h - the crypto layer of sessionfs: keys, Argon2id, AEAD, SIV names.
 *
 * Everything here is libsodium. This layer knows bytes and keys only: nothing
 * of files, offsets, paths, JSON or FUSE. Keys live in sodium_malloc memory
 * and are wiped by sfs_keys_free(). Functions return 0 or a negative errno;
 * an authentication failure is -EBADMSG.
 */
#ifndef SFS_CRYPTO_H
#define SFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define SFS_KEY_BYTES 32                                           /* every key */
#define SFS_SALT_BYTES crypto_pwhash_SALTBYTES                     /* 16 */
#define SFS_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define SFS_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES    /* 16 */
#define SFS_SEAL_OVERHEAD (SFS_NONCE_BYTES + SFS_TAG_BYTES)        /* 40 */
#define SFS_ID_BYTES 16                                            /* file and dir ids */
#define SFS_SIV_BYTES 16                                           /* name tag */

/* Argon2id cost levels, as mkfs.sessionfs --kdf names them. */
enum sfs_kdf_level {
	SFS_KDF_INTERACTIVE = 1,
	SFS_KDF_MODERATE = 2,
	SFS_KDF_SENSITIVE = 3,
};

/*
 * The keys of one unlocked session, all derived from its random master key
 * with crypto_kdf (one readable context label per purpose). Allocated with
 * sodium_malloc and read-only between sfs_keys_new() and sfs_keys_free().
 */
struct sfs_keys {
	unsigned char content[SFS_KEY_BYTES];  /* file content blocks ("sfsblock") */
	unsigned char meta[SFS_KEY_BYTES];     /* node headers, symlinks ("sfsmeta_") */
	unsigned char name_mac[SFS_KEY_BYTES]; /* name SIV tag ("sfsnmtag") */
	unsigned char name_enc[SFS_KEY_BYTES]; /* name stream ("sfsnmenc") */
};

/* Initialise libsodium. Call once before anything else; 0 or -EIO. */
int sfs_crypto_init(void);

/* Opslimit and memlimit of a level; 0 or -EINVAL for an unknown level. */
int sfs_kdf_params(enum sfs_kdf_level level, uint64_t *opslimit, uint64_t *memlimit);

/* Level by name ("interactive", "moderate", "sensitive"); 0 if unknown. */
enum sfs_kdf_level sfs_kdf_level_from_name(const char *name);
const char *sfs_kdf_level_name(enum sfs_kdf_level level);

/*
 * Derive a key-encryption key from a password with Argon2id13. @out must be
 * sodium_malloc memory. 0, -EINVAL (parameters out of libsodium's range) or
 * -ENOMEM (the memory limit could not be met).
 */
int sfs_crypto_pwhash(unsigned char out[SFS_KEY_BYTES], const char *password, size_t len,
		      const unsigned char salt[SFS_SALT_BYTES], uint64_t opslimit,
		      uint64_t memlimit);

/* A new sodium_malloc'd key set derived from @master; NULL on ENOMEM. */
struct sfs_keys *sfs_keys_new(const unsigned char master[SFS_KEY_BYTES]);

/* Wipe and free a key set. Accepts NULL. */
void sfs_keys_free(struct sfs_keys *keys);

/*
 * Seal @len bytes of @in under @key with a fresh random nonce:
 * @out receives nonce(24) || ciphertext(len) || tag(16), len + 40 bytes.
 * @ad binds the sealed bytes to their place. @in and @out may not overlap.
 */
void sfs_crypto_seal(unsigned char *out, const unsigned char *in, size_t len,
		     const unsigned char *ad, size_t adlen, const unsigned char key[SFS_KEY_BYTES]);

/*
 * As sfs_crypto_seal(), with the nonce the caller put in out[0, 24): fresh
 * random bytes never used before. A run of blocks takes its nonces from one
 * sfs_crypto_random() call (libsodium asks the kernel for 256 bytes at a
 * time: one getrandom per 10 blocks instead of one per block).
 */
void sfs_crypto_seal_nonce(unsigned char *out, const unsigned char *in, size_t len,
			   const unsigned char *ad, size_t adlen,
			   const unsigned char key[SFS_KEY_BYTES]);

/*
 * Open what sfs_crypto_seal() made: @inlen >= 40, @out receives inlen - 40
 * bytes. 0, or -EBADMSG if anything (byte, nonce, tag, ad, key) is wrong; on
 * failure @out is zeroed.
 */
int sfs_crypto_open(unsigned char *out, const unsigned char *in, size_t inlen,
		    const unsigned char *ad, size_t adlen, const unsigned char key[SFS_KEY_BYTES])
	__attribute__((warn_unused_result));

/*
 * Deterministic authenticated encryption of a name (SIV): the tag is
 * BLAKE2b-128 keyed with name_mac over dirid || name, and the name is
 * encrypted with XChaCha20 keyed with name_enc under the tag as nonce.
 * @out receives tag(16) || ciphertext(len).
 */
void sfs_crypto_name_seal(unsigned char *out, const unsigned char *name, size_t len,
			  const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys);

/* Inverse of sfs_crypto_name_seal; @inlen > 16; 0 or -EBADMSG. */
int sfs_crypto_name_open(unsigned char *out, const unsigned char *in, size_t inlen,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/* Fill @buf with random bytes. */
void sfs_crypto_random(void *buf, size_t len);

#endif
