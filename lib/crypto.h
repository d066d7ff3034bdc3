/*
 * crypto.h - the crypto layer of sessionfs: keys, Argon2id, AEADs, SIV names.
 *
 * Everything here is libsodium. This layer knows bytes and keys only: nothing
 * of files, offsets, paths, JSON or FUSE. Keys live in sodium_malloc memory
 * and are wiped by sfs_keys_free(). Functions return 0 or a negative errno;
 * an authentication failure is -EBADMSG.
 */
#ifndef SFS_CRYPTO_H
#define SFS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define SFS_KEY_BYTES 32					     /* every key */
#define SFS_SALT_BYTES crypto_pwhash_SALTBYTES			     /* 16 */
#define SFS_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define SFS_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES	     /* 16 */
#define SFS_SEAL_OVERHEAD (SFS_NONCE_BYTES + SFS_TAG_BYTES)	     /* 40 */
#define SFS_ID_BYTES 16						     /* file and dir ids */
#define SFS_SIV_BYTES 16					     /* name tag */

/* Argon2id cost levels, as mkfs.sessionfs --kdf names them. */
enum sfs_kdf_level {
	SFS_KDF_INTERACTIVE = 1,
	SFS_KDF_MODERATE = 2,
	SFS_KDF_SENSITIVE = 3,
};

/*
 * How a session's content blocks are sealed; its key file says which. Every
 * other seal (headers, names, event records, xattrs) is XChaCha20-Poly1305.
 */
enum sfs_cipher {
	SFS_CIPHER_XCHACHA = 1,	       /* XChaCha20-Poly1305 under the content key */
	SFS_CIPHER_AESGCM = 2,	       /* legacy: AES-256-GCM under a key of each file's own */
	SFS_CIPHER_AESGCM_DERIVED = 3, /* AES-256-GCM under a key per file and nonce half */
};

/*
 * The keys of one unlocked session, all derived from its random master key
 * with crypto_kdf (one readable context label per purpose). Allocated with
 * sodium_malloc and read-only between sfs_keys_new() and sfs_keys_free().
 */
struct sfs_keys {
	unsigned char content[SFS_KEY_BYTES];  /* content blocks, event records ("sfsblock") */
	unsigned char meta[SFS_KEY_BYTES];     /* node headers, symlinks ("sfsmeta_") */
	unsigned char name_mac[SFS_KEY_BYTES]; /* name SIV tag ("sfsnmtag") */
	unsigned char name_enc[SFS_KEY_BYTES]; /* name stream ("sfsnmenc") */
	unsigned char gcm[SFS_KEY_BYTES];      /* AES-GCM keys' parent ("sfsgcmfk", or
						* "sfsgcmnk" for derived seal keys), all
						* zero in an XChaCha session */
	unsigned char label[SFS_KEY_BYTES];    /* key slot labels ("sfslabel") */
	enum sfs_cipher cipher;		       /* how content blocks are sealed */
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

/*
 * How many Argon2id runs sfs_crypto_pwhash has started in this process:
 * what a caller holding a lock pays is counted (tests/unit/test_container.c).
 */
unsigned long sfs_crypto_pwhash_runs(void);

/* Whether this build and CPU can run @cipher (AES-256-GCM needs AES-NI and PCLMUL). */
bool sfs_cipher_available(enum sfs_cipher cipher);

/*
 * "xchacha20poly1305", "aes256gcm" (SFS_CIPHER_AESGCM_DERIVED, what new
 * AES sessions get) or "aes256gcm-filekey" (legacy); "unknown" otherwise.
 */
const char *sfs_cipher_name(enum sfs_cipher cipher);

/*
 * A cipher for new sessions by its name ("xchacha20poly1305", "aes256gcm");
 * 0 if unknown. The legacy SFS_CIPHER_AESGCM has no such name: existing
 * sessions keep it, none is made.
 */
enum sfs_cipher sfs_cipher_from_name(const char *name);

/*
 * A new sodium_malloc'd key set derived from @master for a session whose
 * content blocks use @cipher; NULL on ENOMEM.
 */
struct sfs_keys *sfs_keys_new(const unsigned char master[SFS_KEY_BYTES], enum sfs_cipher cipher);

/*
 * The key that seals the labels of a session's key slots, derived from its
 * master key (context "sfslabel"): what sfs_keys_new puts in keys->label.
 */
void sfs_crypto_label_key(unsigned char out[SFS_KEY_BYTES],
			  const unsigned char master[SFS_KEY_BYTES]);

/*
 * The key-encryption key of a recovery-key slot: keyed BLAKE2b-256
 * (crypto_generichash_blake2b_salt_personal) with the 32-byte recovery key
 * as key, the slot's salt as salt, "sfs-recovery-key" as personalisation
 * and no message. A recovery key is 256 random bits: nothing to stretch.
 */
void sfs_crypto_recovery_kek(unsigned char out[SFS_KEY_BYTES], const unsigned char rkey[32],
			     const unsigned char salt[SFS_SALT_BYTES]);

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

/*
 * AES-256-GCM key schedules, in sodium_malloc memory taken from a pool;
 * sfs_gcm_put() wipes them. A set is read-only once made: threads may seal
 * and open with it at once.
 *
 * SFS_CIPHER_AESGCM (legacy): one key per file, BLAKE2b-256 keyed with
 * keys->gcm over the file's 16-byte id. Its blocks' random 96-bit IVs are
 * safe up to about 2^32 seals of one file.
 *
 * SFS_CIPHER_AESGCM_DERIVED: one key per file and per value of the 12
 * random nonce bytes that are not the IV (nonce[12..24), which a run of
 * blocks sealed at once shares): BLAKE2b-256 keyed with keys->gcm over
 * file id || nonce[12..24). A key seals one run, so no IV budget is ever
 * approached (XAES-256-GCM's idea, with BLAKE2b as the derivation).
 */
struct sfs_gcm;

#define SFS_GCM_HALF 12 /* nonce bytes that are not the GCM IV */

/* The legacy schedule of file @id under @keys: one key, index 0; NULL on ENOMEM. */
struct sfs_gcm *sfs_gcm_get(const struct sfs_keys *keys, const unsigned char id[SFS_ID_BYTES]);

/*
 * The derived keys of file @id for @count blocks whose nonce halves are at
 * @half + i * @stride: one key per run of equal consecutive halves, block
 * i's index into @slot[i]. @count <= SFS_GCM_SET_MAX; NULL on ENOMEM.
 */
#define SFS_GCM_SET_MAX 256
struct sfs_gcm *sfs_gcm_get_derived(const struct sfs_keys *keys,
				    const unsigned char id[SFS_ID_BYTES], const unsigned char *half,
				    size_t stride, size_t count, uint16_t *slot);

/* Wipe a schedule and give it back. Accepts NULL. */
void sfs_gcm_put(struct sfs_gcm *gcm);

/*
 * Seal as sfs_crypto_seal_nonce() does, with AES-256-GCM: out[0, 24) holds
 * 24 fresh random bytes; the first 12 are the IV and the other 12 are
 * authenticated in front of @ad (@adlen <= 32), so the layout and the
 * overhead (40 bytes) are those of XChaCha20-Poly1305 and no byte of the
 * sealed form can change unnoticed.
 */
void sfs_gcm_seal_nonce(const struct sfs_gcm *gcm, unsigned char *out, const unsigned char *in,
			size_t len, const unsigned char *ad, size_t adlen);

/* Open what sfs_gcm_seal_nonce() made, as sfs_crypto_open(): 0 or -EBADMSG. */
int sfs_gcm_open(const struct sfs_gcm *gcm, unsigned char *out, const unsigned char *in,
		 size_t inlen, const unsigned char *ad, size_t adlen)
	__attribute__((warn_unused_result));

/* The same with key @k of the set (sfs_gcm_seal_nonce() and sfs_gcm_open() use key 0). */
void sfs_gcm_seal_nonce_k(const struct sfs_gcm *gcm, size_t k, unsigned char *out,
			  const unsigned char *in, size_t len, const unsigned char *ad,
			  size_t adlen);
int sfs_gcm_open_k(const struct sfs_gcm *gcm, size_t k, unsigned char *out, const unsigned char *in,
		   size_t inlen, const unsigned char *ad, size_t adlen)
	__attribute__((warn_unused_result));

/* Fill @buf with random bytes. */
void sfs_crypto_random(void *buf, size_t len);

/*
 * Grow heap buffer *@buf (of *@cap bytes, @used of them in use; *@buf may be
 * NULL) to at least @want bytes, and to twice its size at least: a new block
 * with the used bytes copied, the old one wiped whole and freed (not realloc,
 * which leaves the old block's plaintext in the heap). 0, or -ENOMEM with
 * the buffer as it was.
 */
int sfs_wiped_grow(char **buf, size_t *cap, size_t used, size_t want);

#endif
