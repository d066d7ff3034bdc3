/*
 * crypto.c - libsodium wrappers for sessionfs: KDF, key set, AEAD, SIV names.
 *
 * Must not know files, formats or JSON; see crypto.h for the contracts.
 */
#include "crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* crypto_kdf context labels, one per purpose (exactly 8 bytes each). */
static const char ctx_content[crypto_kdf_CONTEXTBYTES + 1] = "sfsblock";
static const char ctx_meta[crypto_kdf_CONTEXTBYTES + 1] = "sfsmeta_";
static const char ctx_name_mac[crypto_kdf_CONTEXTBYTES + 1] = "sfsnmtag";
static const char ctx_name_enc[crypto_kdf_CONTEXTBYTES + 1] = "sfsnmenc";
static const char ctx_gcm[crypto_kdf_CONTEXTBYTES + 1] = "sfsgcmfk";
static const char ctx_gcm_derived[crypto_kdf_CONTEXTBYTES + 1] = "sfsgcmnk";
static const char ctx_label[crypto_kdf_CONTEXTBYTES + 1] = "sfslabel";

_Static_assert(crypto_kdf_KEYBYTES == SFS_KEY_BYTES, "kdf key size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == SFS_KEY_BYTES, "aead key size");
_Static_assert(crypto_stream_xchacha20_NONCEBYTES == SFS_NONCE_BYTES, "stream nonce size");
_Static_assert(crypto_aead_aes256gcm_KEYBYTES == SFS_KEY_BYTES, "gcm key size");
_Static_assert(crypto_aead_aes256gcm_ABYTES == SFS_TAG_BYTES, "gcm tag size");
_Static_assert(crypto_aead_aes256gcm_NPUBBYTES * 2 == SFS_NONCE_BYTES, "gcm iv size");

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

static atomic_ulong pwhash_runs;

unsigned long sfs_crypto_pwhash_runs(void)
{
	return atomic_load(&pwhash_runs);
}

int sfs_crypto_pwhash(unsigned char out[SFS_KEY_BYTES], const char *password, size_t len,
		      const unsigned char salt[SFS_SALT_BYTES], uint64_t opslimit,
		      uint64_t memlimit)
{
	if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > crypto_pwhash_OPSLIMIT_MAX ||
	    memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > crypto_pwhash_MEMLIMIT_MAX ||
	    memlimit > SIZE_MAX)
		return -EINVAL;
	atomic_fetch_add(&pwhash_runs, 1);
	if (crypto_pwhash(out, SFS_KEY_BYTES, password, len, salt, opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_memzero(out, SFS_KEY_BYTES);
		return -ENOMEM;
	}
	return 0;
}

bool sfs_cipher_available(enum sfs_cipher cipher)
{
	switch (cipher) {
	case SFS_CIPHER_XCHACHA:
		return true;
	case SFS_CIPHER_AESGCM:
	case SFS_CIPHER_AESGCM_DERIVED:
		return crypto_aead_aes256gcm_is_available() == 1;
	}
	return false;
}

/*
 * "aes256gcm" names the AES form new sessions get: the name stores have
 * always had in sessionfs.conf, so builds that predate cipher 3 still mount
 * a new store (and make their own AES sessions, which every later build opens).
 */
static const char *const cipher_names[] = {
	[SFS_CIPHER_XCHACHA] = "xchacha20poly1305",
	[SFS_CIPHER_AESGCM] = "aes256gcm-filekey",
	[SFS_CIPHER_AESGCM_DERIVED] = "aes256gcm",
};

const char *sfs_cipher_name(enum sfs_cipher cipher)
{
	if (cipher < SFS_CIPHER_XCHACHA || cipher > SFS_CIPHER_AESGCM_DERIVED)
		return "unknown";
	return cipher_names[cipher];
}

enum sfs_cipher sfs_cipher_from_name(const char *name)
{
	if (strcmp(name, cipher_names[SFS_CIPHER_XCHACHA]) == 0)
		return SFS_CIPHER_XCHACHA;
	if (strcmp(name, cipher_names[SFS_CIPHER_AESGCM_DERIVED]) == 0)
		return SFS_CIPHER_AESGCM_DERIVED;
	return 0;
}

struct sfs_keys *sfs_keys_new(const unsigned char master[SFS_KEY_BYTES], enum sfs_cipher cipher)
{
	struct sfs_keys *keys = sodium_malloc(sizeof(*keys));

	if (!keys)
		return NULL;
	memset(keys, 0, sizeof(*keys));
	keys->cipher = cipher;
	if (cipher == SFS_CIPHER_AESGCM)
		crypto_kdf_derive_from_key(keys->gcm, SFS_KEY_BYTES, 1, ctx_gcm, master);
	if (cipher == SFS_CIPHER_AESGCM_DERIVED)
		crypto_kdf_derive_from_key(keys->gcm, SFS_KEY_BYTES, 1, ctx_gcm_derived, master);
	crypto_kdf_derive_from_key(keys->content, SFS_KEY_BYTES, 1, ctx_content, master);
	crypto_kdf_derive_from_key(keys->meta, SFS_KEY_BYTES, 1, ctx_meta, master);
	crypto_kdf_derive_from_key(keys->name_mac, SFS_KEY_BYTES, 1, ctx_name_mac, master);
	crypto_kdf_derive_from_key(keys->name_enc, SFS_KEY_BYTES, 1, ctx_name_enc, master);
	sfs_crypto_label_key(keys->label, master);
	sodium_mprotect_readonly(keys);
	return keys;
}

void sfs_crypto_label_key(unsigned char out[SFS_KEY_BYTES],
			  const unsigned char master[SFS_KEY_BYTES])
{
	crypto_kdf_derive_from_key(out, SFS_KEY_BYTES, 1, ctx_label, master);
}

void sfs_crypto_recovery_kek(unsigned char out[SFS_KEY_BYTES], const unsigned char rkey[32],
			     const unsigned char salt[SFS_SALT_BYTES])
{
	static const unsigned char personal[crypto_generichash_blake2b_PERSONALBYTES] =
		"sfs-recovery-key"; /* 16 bytes, no NUL */

	crypto_generichash_blake2b_salt_personal(out, SFS_KEY_BYTES, NULL, 0, rkey, 32, salt,
						 personal);
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

/*
 * A set of key schedules. sodium_malloc puts an allocation at the end of its
 * page, so a size that is a multiple of 16 keeps the states 16-byte aligned.
 */
struct sfs_gcm {
	struct sfs_gcm *next;		  /* pool link while unused */
	size_t cls;			  /* pool class: gcm_class[cls] states */
	unsigned char key[SFS_KEY_BYTES]; /* a key being expanded, wiped at once */
	crypto_aead_aes256gcm_state state[];
};

_Static_assert(sizeof(struct sfs_gcm) % 16 == 0, "sodium_malloc alignment");
_Static_assert(sizeof(crypto_aead_aes256gcm_state) % 16 == 0, "sodium_malloc alignment");

/*
 * Sets given back, wiped, for the next get: sodium_malloc costs a few
 * system calls (guard pages, mlock), too many for every append. One pool
 * per size class; each only grows to the number of runs in flight at once.
 */
static const size_t gcm_class[] = {1, 16, SFS_GCM_SET_MAX};
#define GCM_CLASSES (sizeof(gcm_class) / sizeof(gcm_class[0]))

static pthread_mutex_t gcm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sfs_gcm *gcm_pool[GCM_CLASSES];

/* A wiped set of at least @n states; NULL on ENOMEM. */
static struct sfs_gcm *gcm_take(size_t n)
{
	struct sfs_gcm *g;
	size_t c = 0;

	while (gcm_class[c] < n)
		c++;
	pthread_mutex_lock(&gcm_lock);
	g = gcm_pool[c];
	if (g)
		gcm_pool[c] = g->next;
	pthread_mutex_unlock(&gcm_lock);
	if (!g) {
		g = sodium_malloc(sizeof(*g) + gcm_class[c] * sizeof(g->state[0]));
		if (!g)
			return NULL;
		g->cls = c;
	}
	g->next = NULL;
	return g;
}

/* Expand g->key into state @k and wipe it. */
static void gcm_expand(struct sfs_gcm *g, size_t k)
{
	crypto_aead_aes256gcm_beforenm(&g->state[k], g->key);
	sodium_memzero(g->key, sizeof(g->key));
}

struct sfs_gcm *sfs_gcm_get(const struct sfs_keys *keys, const unsigned char id[SFS_ID_BYTES])
{
	struct sfs_gcm *g = gcm_take(1);

	if (!g)
		return NULL;
	crypto_generichash(g->key, SFS_KEY_BYTES, id, SFS_ID_BYTES, keys->gcm, SFS_KEY_BYTES);
	gcm_expand(g, 0);
	return g;
}

struct sfs_gcm *sfs_gcm_get_derived(const struct sfs_keys *keys,
				    const unsigned char id[SFS_ID_BYTES], const unsigned char *half,
				    size_t stride, size_t count, uint16_t *slot)
{
	crypto_generichash_state st;
	struct sfs_gcm *g;
	size_t n = 0;

	if (count == 0 || count > SFS_GCM_SET_MAX)
		abort(); /* a caller's bug, never data */
	for (size_t i = 0; i < count; i++)
		if (i == 0 || memcmp(half + i * stride, half + (i - 1) * stride, SFS_GCM_HALF) != 0)
			n++;
	g = gcm_take(n);
	if (!g)
		return NULL;
	n = 0;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *h = half + i * stride;

		if (i > 0 && memcmp(h, h - stride, SFS_GCM_HALF) == 0) {
			slot[i] = slot[i - 1];
			continue;
		}
		/* seal key = BLAKE2b-256(key = gcm, file id || nonce[12..24)) */
		crypto_generichash_init(&st, keys->gcm, SFS_KEY_BYTES, SFS_KEY_BYTES);
		crypto_generichash_update(&st, id, SFS_ID_BYTES);
		crypto_generichash_update(&st, h, SFS_GCM_HALF);
		crypto_generichash_final(&st, g->key, SFS_KEY_BYTES);
		gcm_expand(g, n);
		slot[i] = (uint16_t)n++;
	}
	sodium_memzero(&st, sizeof(st));
	return g;
}

void sfs_gcm_put(struct sfs_gcm *g)
{
	size_t c;

	if (!g)
		return;
	c = g->cls;
	sodium_memzero(g->state, gcm_class[c] * sizeof(g->state[0]));
	pthread_mutex_lock(&gcm_lock);
	g->next = gcm_pool[c];
	gcm_pool[c] = g;
	pthread_mutex_unlock(&gcm_lock);
}

#define GCM_IV_BYTES crypto_aead_aes256gcm_NPUBBYTES /* 12 */
#define GCM_AD_MAX 32

/* The AD sealed: the 12 nonce bytes the IV does not use, then @ad. */
static size_t gcm_ad(unsigned char out[GCM_IV_BYTES + GCM_AD_MAX], const unsigned char *nonce,
		     const unsigned char *ad, size_t adlen)
{
	memcpy(out, nonce + GCM_IV_BYTES, SFS_NONCE_BYTES - GCM_IV_BYTES);
	memcpy(out + GCM_IV_BYTES, ad, adlen);
	return GCM_IV_BYTES + adlen;
}

void sfs_gcm_seal_nonce_k(const struct sfs_gcm *g, size_t k, unsigned char *out,
			  const unsigned char *in, size_t len, const unsigned char *ad,
			  size_t adlen)
{
	unsigned char full[GCM_IV_BYTES + GCM_AD_MAX];
	size_t fulllen;

	if (adlen > GCM_AD_MAX || k >= gcm_class[g->cls])
		abort(); /* a caller's bug, never data */
	fulllen = gcm_ad(full, out, ad, adlen);
	crypto_aead_aes256gcm_encrypt_afternm(out + SFS_NONCE_BYTES, NULL, in, len, full, fulllen,
					      NULL, out, &g->state[k]);
}

void sfs_gcm_seal_nonce(const struct sfs_gcm *g, unsigned char *out, const unsigned char *in,
			size_t len, const unsigned char *ad, size_t adlen)
{
	sfs_gcm_seal_nonce_k(g, 0, out, in, len, ad, adlen);
}

int sfs_gcm_open(const struct sfs_gcm *g, unsigned char *out, const unsigned char *in, size_t inlen,
		 const unsigned char *ad, size_t adlen)
{
	return sfs_gcm_open_k(g, 0, out, in, inlen, ad, adlen);
}

int sfs_gcm_open_k(const struct sfs_gcm *g, size_t k, unsigned char *out, const unsigned char *in,
		   size_t inlen, const unsigned char *ad, size_t adlen)
{
	unsigned char full[GCM_IV_BYTES + GCM_AD_MAX];
	size_t fulllen;

	if (inlen < SFS_SEAL_OVERHEAD || adlen > GCM_AD_MAX || k >= gcm_class[g->cls])
		return -EBADMSG;
	fulllen = gcm_ad(full, in, ad, adlen);
	if (crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, in + SFS_NONCE_BYTES,
						  inlen - SFS_NONCE_BYTES, full, fulllen, in,
						  &g->state[k]) != 0) {
		sodium_memzero(out, inlen - SFS_SEAL_OVERHEAD);
		return -EBADMSG;
	}
	return 0;
}

void sfs_crypto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

int sfs_wiped_grow(char **buf, size_t *cap, size_t used, size_t want)
{
	size_t ncap = want > 2 * *cap ? want : 2 * *cap;
	char *g = malloc(ncap);

	if (!g)
		return -ENOMEM;
	if (*buf) {
		memcpy(g, *buf, used);
		sodium_memzero(*buf, *cap);
		free(*buf);
	}
	*buf = g;
	*cap = ncap;
	return 0;
}
