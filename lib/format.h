/*
 * format.h - the on-disk byte layouts of sessionfs, version 1.
 *
 * Key files, node headers, content blocks and encrypted names: packing,
 * parsing and offset arithmetic. Knows the crypto layer; knows nothing of
 * paths, directories, JSON or FUSE. doc/format.md is the prose version of
 * this file; change both together.
 */
#ifndef SFS_FORMAT_H
#define SFS_FORMAT_H

#include "crypto.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SFS_FORMAT_VERSION 1

/*
 * Key file, version 1 (content sealed with XChaCha20-Poly1305):
 *   "SFSK" | u16 1 | u16 alg | u64 ops | u64 mem | salt 16 | sealed key 72
 * version 2 (a session that names its content cipher):
 *   "SFSK" | u16 2 | u16 alg | u64 ops | u64 mem | salt 16 | u16 cipher | u16 0 | sealed key 72
 * version 3 (key slots: up to 8 passwords or recovery keys open one session):
 *   "SFSK" | u16 3 | u16 cipher | u8 count | 7 zero | count slots of 224:
 *   u8 index | u8 0 | u16 kdf | u32 0 | u64 ops | u64 mem | u64 added | salt 16 |
 *   sealed key 72 | sealed label 104
 */
#define SFS_KEYFILE_AD_BYTES 40
#define SFS_KEYFILE_BYTES (SFS_KEYFILE_AD_BYTES + SFS_KEY_BYTES + SFS_SEAL_OVERHEAD) /* 112 */
#define SFS_KEYFILE_V2_AD_BYTES (SFS_KEYFILE_AD_BYTES + 4)
#define SFS_KEYFILE_V2_BYTES (SFS_KEYFILE_BYTES + 4) /* 116 */
#define SFS_KDF_ALG_ARGON2ID13 1
#define SFS_KEYFILE_V3_HDR 16  /* magic, version, cipher, count, reserved */
#define SFS_KEYFILE_V3_BOUND 8 /* header bytes every slot's key seal is bound to */
#define SFS_SLOTS_MAX 8
#define SFS_SLOT_PUBLIC 48 /* index .. salt: the slot's associated data */
#define SFS_SLOT_WRAPPED (SFS_KEY_BYTES + SFS_SEAL_OVERHEAD) /* 72 */
#define SFS_SLOT_LABEL_MAX 63				     /* bytes of a label */
#define SFS_SLOT_LABEL_BOX 64				     /* u8 length | label | zero padding */
#define SFS_SLOT_LABEL_SEALED (SFS_SLOT_LABEL_BOX + SFS_SEAL_OVERHEAD)		    /* 104 */
#define SFS_SLOT_BYTES (SFS_SLOT_PUBLIC + SFS_SLOT_WRAPPED + SFS_SLOT_LABEL_SEALED) /* 224 */
#define SFS_KEYFILE_V3_MAX (SFS_KEYFILE_V3_HDR + SFS_SLOTS_MAX * SFS_SLOT_BYTES)    /* 1808 */
#define SFS_KEYFILE_MAX SFS_KEYFILE_V3_MAX
#define SFS_RECOVERY_KEY_BYTES 32 /* a recovery key: random bytes */
#define SFS_RECOVERY_TEXT_MAX 80  /* its text: 16 groups of 4 hex digits, dashes, NUL */

/* How a slot's key-encryption key is made (slot bytes 2..3). */
enum sfs_slot_kdf {
	SFS_SLOT_ARGON2ID = 1, /* Argon2id13 of a password, the slot's cost and salt */
	SFS_SLOT_RECOVERY = 2, /* keyed BLAKE2b of a 32-byte recovery key and the salt */
};

/*
 * One key slot: the session key wrapped under one secret. Version 1 and 2
 * files hold one slot (index 0, Argon2id, @added 0, no label).
 */
struct sfs_keyslot {
	uint8_t index;	   /* 0..SFS_SLOTS_MAX-1, kept when other slots go */
	uint16_t kdf;	   /* enum sfs_slot_kdf */
	uint64_t opslimit; /* Argon2id cost; 0 for a recovery slot */
	uint64_t memlimit;
	uint64_t added; /* when it was added, seconds since the epoch; 0 unknown */
	unsigned char salt[SFS_SALT_BYTES];
	unsigned char wrapped[SFS_SLOT_WRAPPED];    /* nonce | session key | tag */
	unsigned char label[SFS_SLOT_LABEL_SEALED]; /* nonce | label box | tag (v3) */
};
/* Node header: magic 4 | u16 version | u16 kind | id 16 | sealed attrs 56 */
#define SFS_HDR_AD_BYTES 24
#define SFS_ATTR_BYTES 16
#define SFS_HDR_BYTES (SFS_HDR_AD_BYTES + SFS_ATTR_BYTES + SFS_SEAL_OVERHEAD) /* 80 */

/* Content: plaintext blocks of 4096 bytes, each sealed as nonce | ct | tag. */
#define SFS_BLOCK 4096
#define SFS_CBLOCK (SFS_BLOCK + SFS_SEAL_OVERHEAD) /* 4136 */

/* Names */
#define SFS_NAME_MAX 255	       /* plaintext bytes, as ext4 */
#define SFS_LONGNAME_PREFIX '~'	       /* backing name of a long name */
#define SFS_SIDECAR_SUFFIX ".n"	       /* file holding a long name */
#define SFS_DIRHDR_NAME ".sfsdir"      /* a directory's header file */
#define SFS_DIRHDR_XATTR "user.sfsdir" /* its copy, set at mkdir (tree.c) */
#define SFS_ENAME_MAX 512	       /* longest encoded name + NUL */

/* What a node header says the node is. */
enum sfs_node_magic {
	SFS_MAGIC_FILE, /* "SFSF": regular file (and later, special files) */
	SFS_MAGIC_DIR,	/* "SFSD": a directory's .sfsdir */
};

/* What a regular file's content is (node header bytes 6..7, authenticated). */
enum sfs_file_kind {
	SFS_KIND_BLOCKS = 0, /* blocks of 4096 bytes, rewritable in place */
	SFS_KIND_LOG = 1,    /* an append-only log of sealed records (events.jsonl) */
	SFS_KIND_SPARSE = 2, /* blocks, and a block stored as all zero bytes is a hole */
};

/*
 * The attributes in a node header: the kind travels in the clear (bound as
 * associated data), mode, uid, gid and rdev are encrypted.
 */
struct sfs_attrs {
	uint32_t mode; /* st_mode, type bits included */
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev; /* 0 unless a device node */
	uint16_t kind; /* enum sfs_file_kind; 0 for directories */
};

/* A parsed key file: its public part and its slots. */
struct sfs_keyfile {
	uint16_t version;  /* 1, 2 or 3 */
	uint16_t alg;	   /* SFS_KDF_ALG_ARGON2ID13 (versions 1 and 2) */
	uint16_t cipher;   /* enum sfs_cipher; SFS_CIPHER_XCHACHA in version 1 */
	uint64_t opslimit; /* the cost of the first password slot (0: none) */
	uint64_t memlimit;
	unsigned char salt[SFS_SALT_BYTES];	 /* ...and its salt */
	unsigned int nslots;			 /* 1..SFS_SLOTS_MAX */
	struct sfs_keyslot slots[SFS_SLOTS_MAX]; /* by ascending index */
};

/*
 * Wrap @master under a key derived from @password with fresh salt and the
 * given Argon2id cost, for a session whose content uses @cipher: @out
 * receives a version 1 key file (SFS_KEYFILE_BYTES) for XChaCha20-Poly1305,
 * which every build reads, and a version 2 one (SFS_KEYFILE_V2_BYTES) for
 * another cipher. Its length, or -ENOMEM/-EINVAL.
 */
ssize_t sfs_fmt_keyfile_wrap(unsigned char out[SFS_KEYFILE_MAX],
			     const unsigned char master[SFS_KEY_BYTES], const char *password,
			     size_t pwlen, uint64_t opslimit, uint64_t memlimit,
			     enum sfs_cipher cipher);

/*
 * Unwrap the master key of a key file into @master (sodium_malloc memory)
 * with a password or a recovery key (any slot). 0; -EUCLEAN not a key file
 * (length, magic, a malformed slot); -EPROTONOSUPPORT unknown version,
 * algorithm or cipher; -ENOTSUP a cipher this CPU cannot run (refused
 * before the KDF); -EKEYREJECTED wrong password (or a tampered slot);
 * -ENOMEM. @info, if not NULL, receives the public part.
 */
int sfs_fmt_keyfile_unwrap(unsigned char master[SFS_KEY_BYTES], const unsigned char *in,
			   size_t inlen, const char *password, size_t pwlen,
			   struct sfs_keyfile *info) __attribute__((warn_unused_result));

/*
 * The public part of a key file (its cost and cipher, its slots), without a
 * password. 0; -EUCLEAN not a key file; -EPROTONOSUPPORT unknown version,
 * algorithm or cipher. sfs_fmt_keyfile_parse is the same.
 */
int sfs_fmt_keyfile_info(const unsigned char *in, size_t inlen, struct sfs_keyfile *info);
int sfs_fmt_keyfile_parse(const unsigned char *in, size_t inlen, struct sfs_keyfile *kf);

/*
 * Pack @kf into @out: version 1 or 2 from its one slot (which must be an
 * Argon2id slot of index 0), version 3 with every slot. Its length, or
 * -EINVAL for slots that version cannot hold (none, too many, not
 * ascending, a recovery slot in version 1 or 2).
 */
ssize_t sfs_fmt_keyfile_pack(unsigned char out[SFS_KEYFILE_MAX], const struct sfs_keyfile *kf);

/*
 * Open the session key from the slots of parsed key file @kf with @secret:
 * if it reads as a recovery key (sfs_fmt_recovery_decode), the recovery
 * slots first; then every password slot with it as a password. 0 with the
 * index of the slot that opened in *@index; -EKEYREJECTED none did;
 * -EUCLEAN every slot tried had parameters no honest writer makes; -ENOMEM.
 */
int sfs_fmt_keyfile_open(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			 const char *secret, size_t len, int *index)
	__attribute__((warn_unused_result));

/*
 * The same, with the slot of index @skip left out (-1: none), so that a
 * slot's removal is proven by a slot that stays: a secret that opens only
 * slot @skip is -EKEYREJECTED here.
 */
int sfs_fmt_keyfile_open_other(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			       const char *secret, size_t len, int skip, int *index)
	__attribute__((warn_unused_result));

/*
 * Open the slot of index @index alone with @secret (a recovery slot only
 * with a secret that reads as a recovery key): one key derivation at most.
 * 0; -EKEYREJECTED it does not open; -EUCLEAN parameters no honest writer
 * makes; -ENOENT no such slot; -ENOMEM.
 */
int sfs_fmt_keyfile_open_slot(unsigned char master[SFS_KEY_BYTES], const struct sfs_keyfile *kf,
			      const char *secret, size_t len, int index)
	__attribute__((warn_unused_result));

/*
 * (Re)seal slot @s of key file @kf (its version and cipher; s->index set)
 * with a fresh salt: @master wrapped under the key made from @secret as
 * @kdf says (Argon2id with @opslimit/@memlimit from a password; BLAKE2b
 * from a recovery key of SFS_RECOVERY_KEY_BYTES), and in version 3 @label
 * (@labellen <= SFS_SLOT_LABEL_MAX bytes, may be 0) sealed under the label
 * key of @master. s->added = @added. 0, -EINVAL, -ENOMEM.
 */
int sfs_fmt_slot_seal(struct sfs_keyslot *s, const struct sfs_keyfile *kf,
		      const unsigned char master[SFS_KEY_BYTES], enum sfs_slot_kdf kdf,
		      const void *secret, size_t len, uint64_t opslimit, uint64_t memlimit,
		      uint64_t added, const char *label, size_t labellen);

/*
 * The label of slot @s of a version 3 key file, opened with @labelkey
 * (keys->label): NUL-terminated into @out. 0; -EBADMSG tampered.
 */
int sfs_fmt_slot_label(char out[SFS_SLOT_LABEL_MAX + 1], const struct sfs_keyslot *s,
		       const unsigned char labelkey[SFS_KEY_BYTES])
	__attribute__((warn_unused_result));

/*
 * Re-key slot @s of parsed key file @kf (session key @oldmaster) to
 * @newmaster, for key file @to (its version and cipher; @kf itself to keep
 * them): @secret (a password, or a recovery key's text for a recovery
 * slot) must open @s; the slot is then sealed anew into *@out under the
 * same secret with a fresh salt, keeping its index, derivation, cost, time
 * added and (version 3) label, which is opened with @oldmaster's label key
 * and sealed under @newmaster's. 0; -EKEYREJECTED @secret does not open
 * @s; -ESTALE it does, but to another key than @oldmaster (the key file
 * changed since); -EBADMSG the label is tampered; -EUCLEAN a cost no honest
 * writer makes; -EPROTONOSUPPORT; -EINVAL @to cannot hold the slot (a
 * recovery slot in version 1 or 2); -ENOMEM. *@out is untouched on error.
 */
int sfs_fmt_slot_rekey(struct sfs_keyslot *out, const struct sfs_keyfile *to,
		       const struct sfs_keyfile *kf, const struct sfs_keyslot *s,
		       const unsigned char oldmaster[SFS_KEY_BYTES],
		       const unsigned char newmaster[SFS_KEY_BYTES], const char *secret, size_t len)
	__attribute__((warn_unused_result));

/*
 * Re-key key file @old (session key @oldmaster) to @newmaster into *@out, a
 * distinct struct: the same version, and @cipher as its content cipher (0:
 * @old's; a version 1 file holds only SFS_CIPHER_XCHACHA). Every slot whose
 * index i has a secret (@secrets[i] not NULL, @lens[i] bytes) is re-keyed
 * with sfs_fmt_slot_rekey; a slot without one is left out. The number of
 * slots kept (1 or more); -EINVAL none kept, a version 1 or 2 file whose
 * one slot is left out, or a cipher the version cannot hold; else
 * sfs_fmt_slot_rekey's error for the first slot that failed, whose index
 * is put in *@failed (-1 otherwise).
 */
int sfs_fmt_keyfile_rekey(struct sfs_keyfile *out, const struct sfs_keyfile *old,
			  const unsigned char oldmaster[SFS_KEY_BYTES],
			  const unsigned char newmaster[SFS_KEY_BYTES], uint16_t cipher,
			  const char *const secrets[SFS_SLOTS_MAX],
			  const size_t lens[SFS_SLOTS_MAX], int *failed)
	__attribute__((warn_unused_result));

/*
 * A recovery key as people copy it: 64 lowercase hex digits in 16 groups
 * of 4 joined by '-', NUL-terminated (79 characters).
 */
void sfs_fmt_recovery_encode(char out[SFS_RECOVERY_TEXT_MAX],
			     const unsigned char key[SFS_RECOVERY_KEY_BYTES]);

/*
 * Read a recovery key from @text: 64 hex digits (either case), any
 * whitespace and dashes between them ignored. 0, or -EINVAL if it is not
 * one (@key zeroed).
 */
int sfs_fmt_recovery_decode(unsigned char key[SFS_RECOVERY_KEY_BYTES], const char *text,
			    size_t len);

/* Pack a node header sealing @attrs under keys->meta, bound to magic, kind and @id. */
void sfs_fmt_header_pack(unsigned char out[SFS_HDR_BYTES], enum sfs_node_magic magic,
			 const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
			 const struct sfs_keys *keys);

/*
 * Parse a node header: 0; -EUCLEAN short or wrong magic; -EPROTONOSUPPORT
 * unknown version or kind (a directory's kind must be 0); -EBADMSG
 * attributes fail authentication.
 */
int sfs_fmt_header_unpack(const unsigned char *in, size_t inlen, enum sfs_node_magic magic,
			  unsigned char id[SFS_ID_BYTES], struct sfs_attrs *attrs,
			  const struct sfs_keys *keys) __attribute__((warn_unused_result));

/* Backing offset of content block @blockno. */
static inline uint64_t sfs_fmt_block_offset(uint64_t blockno)
{
	return SFS_HDR_BYTES + blockno * SFS_CBLOCK;
}

/* Backing size of a file holding @plain bytes. */
uint64_t sfs_fmt_backing_size(uint64_t plain);

/*
 * Plaintext size of a backing file of @backing bytes: 0, or -EUCLEAN if no
 * file of this format has that size (cut inside the header or a block's
 * overhead). An empty backing file is size 0 (its missing header is the
 * caller's concern).
 */
int sfs_fmt_plain_size(uint64_t backing, uint64_t *plain);

/*
 * What the content blocks of one run (at most SFS_RUN_MAX blocks of one
 * file) are sealed or opened under, by the session's cipher: the session's
 * content key (XChaCha20-Poly1305), the file's own AES-256-GCM key (legacy
 * cipher 2), or derived AES-256-GCM keys (cipher 3): for sealing, the key of
 * the run's one random nonce half, which every block of the run carries in
 * nonce[12..24); for opening, one key per run of equal halves among the
 * blocks. Set up with sfs_fmt_blockkey_init() (sealing) or
 * sfs_fmt_blockkey_init_open(), wiped by sfs_fmt_blockkey_done(); read-only
 * in between, so several threads may seal or open with it at once.
 */
#define SFS_RUN_MAX SFS_GCM_SET_MAX
struct sfs_blockkey {
	const struct sfs_keys *keys;
	unsigned char id[SFS_ID_BYTES];	  /* the file's id, bound to every block */
	struct sfs_gcm *gcm;		  /* AES-256-GCM sessions only */
	bool derived;			  /* cipher 3: keys by nonce half */
	unsigned char half[SFS_GCM_HALF]; /* cipher 3, sealing: the run's half */
	uint16_t slot[SFS_RUN_MAX];	  /* cipher 3, opening: block i's key */
};

/* For sealing a run: 0 or -ENOMEM. */
int sfs_fmt_blockkey_init(struct sfs_blockkey *bk, const unsigned char id[SFS_ID_BYTES],
			  const struct sfs_keys *keys) __attribute__((warn_unused_result));

/*
 * For opening the @n (<= SFS_RUN_MAX) sealed blocks at @sealed, one every
 * SFS_CBLOCK bytes (the last one may be short but holds its nonce): block i
 * of the run is then opened with sfs_fmt_block_open_at(..., i). 0 or -ENOMEM.
 */
int sfs_fmt_blockkey_init_open(struct sfs_blockkey *bk, const unsigned char id[SFS_ID_BYTES],
			       const struct sfs_keys *keys, const unsigned char *sealed, size_t n)
	__attribute__((warn_unused_result));
void sfs_fmt_blockkey_done(struct sfs_blockkey *bk);

/*
 * Seal block @blockno (@len <= SFS_BLOCK) of the file @bk is for, with the
 * fresh random nonce the caller put in out[0, 24) (sfs_crypto_random over a
 * whole run); in a cipher-3 session nonce[12..24) is then replaced by the
 * run's half.
 */
void sfs_fmt_block_seal_nonce(unsigned char *out, const unsigned char *in, size_t len,
			      uint64_t blockno, const struct sfs_blockkey *bk);

/*
 * Open one sealed block of @inlen bytes, block @i of the run @bk was set up
 * for by sfs_fmt_blockkey_init_open(); 0 or -EBADMSG.
 */
int sfs_fmt_block_open_at(unsigned char *out, const unsigned char *in, size_t inlen,
			  uint64_t blockno, const struct sfs_blockkey *bk, size_t i)
	__attribute__((warn_unused_result));

/* One block of file @id alone, with a fresh nonce: 0 or -ENOMEM. */
int sfs_fmt_block_seal1(unsigned char *out, const unsigned char *in, size_t len,
			const unsigned char id[SFS_ID_BYTES], uint64_t blockno,
			const struct sfs_keys *keys) __attribute__((warn_unused_result));

/* Open one block of file @id alone: 0, -EBADMSG or -ENOMEM. */
int sfs_fmt_block_open1(unsigned char *out, const unsigned char *in, size_t inlen,
			const unsigned char id[SFS_ID_BYTES], uint64_t blockno,
			const struct sfs_keys *keys) __attribute__((warn_unused_result));

/*
 * Log records (SFS_KIND_LOG files, doc/format.md "Event log"). After the
 * header, the file is cut into frames of SFS_LOG_FRAME bytes; records never
 * cross a frame and every frame starts with one, so the plaintext offset of
 * a frame's first record is found without reading what comes before.
 * A record: u16 len | u16 flags | u64 offset | u64 lines | nonce | ct | tag,
 * sealed under keys->content with file id || its first 20 bytes as ad.
 */
#define SFS_LOG_FRAME 4096
#define SFS_REC_HDR 20
#define SFS_REC_OVERHEAD (SFS_REC_HDR + SFS_SEAL_OVERHEAD) /* 60 */
#define SFS_REC_MIN (SFS_REC_OVERHEAD + 1)		   /* smallest record */
#define SFS_REC_MAX (SFS_LOG_FRAME - SFS_REC_OVERHEAD)	   /* payload of a full frame */
#define SFS_REC_END 0x0001				   /* flag: the last record of one append */

/* A record's clear header. */
struct sfs_rec {
	uint16_t len;	 /* payload bytes, 1..SFS_REC_MAX */
	uint16_t flags;	 /* SFS_REC_END, or 0 */
	uint64_t offset; /* plaintext offset of the payload's first byte */
	uint64_t lines;	 /* newlines in the log before @offset */
};

/* Backing offset of log frame @k. */
static inline uint64_t sfs_fmt_frame_offset(uint64_t k)
{
	return SFS_HDR_BYTES + k * SFS_LOG_FRAME;
}

/* Where the next record goes after backing offset @pos (skips a frame's unusable tail). */
uint64_t sfs_fmt_record_pos(uint64_t pos);

/* Payload bytes a record at backing offset @pos (from sfs_fmt_record_pos) can hold. */
size_t sfs_fmt_record_room(uint64_t pos);

/* Seal a record: @out receives SFS_REC_OVERHEAD + r->len bytes. */
void sfs_fmt_record_seal(unsigned char *out, const struct sfs_rec *r, const unsigned char *in,
			 const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys);

/*
 * Parse the clear header of a record at backing offset @pos from @in
 * (SFS_REC_HDR bytes): 0, or -EBADMSG if no record could say that there
 * (length 0, past its frame, unknown flags).
 */
int sfs_fmt_record_parse(struct sfs_rec *r, const unsigned char *in, uint64_t pos);

/* Open a parsed record's payload from @in (SFS_REC_OVERHEAD + r->len bytes); 0 or -EBADMSG. */
int sfs_fmt_record_open(unsigned char *out, const struct sfs_rec *r, const unsigned char *in,
			const unsigned char id[SFS_ID_BYTES], const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/*
 * Symlink targets: sealed under keys->meta (ad "sfs-symlink-v1", not bound to
 * a directory, so a renamed link stays valid), then base64url. The encoded
 * target must fit PATH_MAX: targets up to SFS_SYMLINK_MAX bytes.
 * encode: 0 or -ENAMETOOLONG; decode: 0, -EBADMSG or -ENAMETOOLONG.
 */
#define SFS_SYMLINK_MAX 3000
int sfs_fmt_symlink_encode(char *out, size_t outsize, const char *target,
			   const struct sfs_keys *keys);
int sfs_fmt_symlink_decode(char *out, size_t outsize, const char *enc, const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/*
 * The encrypted form of one name in a directory: @backing is the name used
 * in the store; when the encoded name is longer than NAME_MAX, @backing is
 * "~" + base64url(BLAKE2b-256(encoded)) and @full holds the encoded name,
 * which lives in the sidecar file backing + ".n".
 */
struct sfs_ename {
	char backing[SFS_NAME_MAX + 1];
	bool is_long;
	char full[SFS_ENAME_MAX];
};

/* Encrypt @name (not "." or ".."); 0 or -ENAMETOOLONG past 255 bytes, -EINVAL empty. */
int sfs_fmt_name_encrypt(struct sfs_ename *out, const char *name,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys);

/* Decrypt an encoded name (a short backing name or sidecar content); 0 or -EBADMSG. */
int sfs_fmt_name_decrypt(char out[SFS_NAME_MAX + 1], const char *encoded,
			 const unsigned char dirid[SFS_ID_BYTES], const struct sfs_keys *keys)
	__attribute__((warn_unused_result));

/* Does @full (sidecar content) belong to long backing name @backing? */
bool sfs_fmt_longname_matches(const char *backing, const char *full);

/* Classes of backing names in an encrypted directory. */
enum sfs_name_class {
	SFS_NAME_SHORT,	   /* base64url of an encrypted name */
	SFS_NAME_LONG,	   /* "~" + hash; its name is in the sidecar */
	SFS_NAME_SIDECAR,  /* "~hash.n" */
	SFS_NAME_INTERNAL, /* ".", "..", .sfsdir and anything else not a node */
};
enum sfs_name_class sfs_fmt_name_class(const char *backing);

/* Little-endian packing helpers. */
void sfs_put_le16(unsigned char *p, uint16_t v);
void sfs_put_le32(unsigned char *p, uint32_t v);
void sfs_put_le64(unsigned char *p, uint64_t v);
uint16_t sfs_get_le16(const unsigned char *p);
uint32_t sfs_get_le32(const unsigned char *p);
uint64_t sfs_get_le64(const unsigned char *p);

/*
 * The node id in a file header or directory header (@inlen >= 24 bytes),
 * read without the key: to name what belongs to a node that is going away
 * (its xattr blob), never to trust anything. 0 or -EUCLEAN (short, no magic).
 */
int sfs_fmt_header_id(const unsigned char *in, size_t inlen, unsigned char id[SFS_ID_BYTES]);

/*
 * The content kind (SFS_KIND_*) in a file header, read without the key as
 * sfs_fmt_header_id: for a check that needs no password (fsck), never to
 * trust. 0 or -EUCLEAN (short, no file magic).
 */
int sfs_fmt_header_kind(const unsigned char *in, size_t inlen, unsigned int *kind);

#endif
