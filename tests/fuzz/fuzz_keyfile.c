/*
 * fuzz_keyfile.c - session key files: sfs_fmt_keyfile_info (the public
 * part: magic, version, algorithm, cost, salt, cipher, key slots) and
 * sfs_fmt_keyfile_unwrap (Argon2id or a recovery key, then the sealed
 * master key), as unlock and `sessionctl list` and `keys` read them;
 * sfs_fmt_keyfile_pack and sfs_fmt_slot_label.
 *
 * Input: mode byte; even: the key file, raw; odd with bit 1 clear: the
 * harness wraps a fuzzer-chosen master key under a fuzzer-chosen password
 * with the cheapest Argon2id cost (so an exec stays fast) in a version 1
 * or 2 file, then sets up to 3 bytes and unwraps with the same or another
 * password; odd with bit 1 set: a version 3 file of 1 to 8 slots, each a
 * fuzzer-chosen password or recovery key with a fuzzer-chosen label, then
 * up to 3 bytes set, and every slot's secret tried. Unwrap runs only where
 * every slot's cost is that cheap one (a costlier Argon2id is libsodium's,
 * not this parser's, and would stall the fuzzer); info runs on every input.
 * Oracles: an intact file unwraps to its master key with its password (or
 * any slot's secret) and is rejected with any other; an intact version 3
 * file packs back to its own bytes, and its labels open to what was sealed.
 * Re-keying (sfs_fmt_keyfile_rekey, mode 3) to a fuzzer-chosen new key with
 * a fuzzer-chosen subset of the secrets: on an intact file it keeps exactly
 * those slots, each opening the new key with its secret and keeping its
 * label, while the old file still opens the old key; on a patched file it
 * fails cleanly or re-keys only slots that really open the old key.
 */
#include "format.h"
#include "fuzz.h"

#define OPS crypto_pwhash_argon2id_OPSLIMIT_MIN
#define MEM crypto_pwhash_argon2id_MEMLIMIT_MIN

static unsigned char *master;

static int unwrap(const unsigned char *kf, size_t len, const char *pw, size_t pwlen)
{
	struct sfs_keyfile info;
	int rc = sfs_fmt_keyfile_info(kf, len, &info);

	for (unsigned int i = 0; rc == 0 && i < info.nslots; i++)
		if (info.slots[i].opslimit > OPS || info.slots[i].memlimit > MEM)
			return 1;
	if (rc < 0)
		return rc;
	return sfs_fmt_keyfile_unwrap(master, kf, len, pw, pwlen, &info);
}

/* Mode 3: a version 3 file of fuzzer-chosen slots (see the top). */
static void slots(struct fz *f)
{
	struct sfs_keyfile kf = {.version = 3, .nslots = fz_u8(f) % SFS_SLOTS_MAX + 1};
	unsigned char out[SFS_KEYFILE_MAX], again[SFS_KEYFILE_MAX], want[SFS_KEY_BYTES];
	unsigned char secret[SFS_SLOTS_MAX][SFS_RECOVERY_TEXT_MAX], lkey[SFS_KEY_BYTES];
	char labels[SFS_SLOTS_MAX][SFS_SLOT_LABEL_MAX + 1], got[SFS_SLOT_LABEL_MAX + 1];
	size_t slen[SFS_SLOTS_MAX], n;
	struct sfs_keyfile parsed;
	const uint8_t *p;
	ssize_t len;
	int rc;

	kf.cipher = fz_u8(f) % 3 + 1;
	if (!sfs_cipher_available(kf.cipher))
		kf.cipher = SFS_CIPHER_XCHACHA;
	fz_take(f, want, sizeof(want));
	for (unsigned int i = 0; i < kf.nslots; i++) {
		bool recovery = fz_u8(f) & 1;
		unsigned char rk[SFS_RECOVERY_KEY_BYTES];

		kf.slots[i].index = (uint8_t)i;
		p = fz_chunk(f, SFS_SLOT_LABEL_MAX, &n);
		memcpy(labels[i], p, n);
		labels[i][n] = '\0';
		n = strlen(labels[i]); /* sealed as a string: up to a NUL */
		if (recovery) {
			fz_take(f, rk, sizeof(rk));
			sfs_fmt_recovery_encode((char *)secret[i], rk);
			slen[i] = strlen((char *)secret[i]);
			rc = sfs_fmt_slot_seal(&kf.slots[i], &kf, want, SFS_SLOT_RECOVERY, rk,
					       sizeof(rk), 0, 0, fz_u64(f), labels[i], n);
		} else {
			p = fz_chunk(f, 32, &slen[i]);
			memcpy(secret[i], p, slen[i]);
			rc = sfs_fmt_slot_seal(&kf.slots[i], &kf, want, SFS_SLOT_ARGON2ID, p,
					       slen[i], OPS, MEM, fz_u64(f), labels[i], n);
		}
		FZ_ASSERT(rc == 0);
	}
	len = sfs_fmt_keyfile_pack(out, &kf);
	FZ_ASSERT(len == (ssize_t)(SFS_KEYFILE_V3_HDR + kf.nslots * SFS_SLOT_BYTES));
	unsigned patches = fz_u8(f) % 4;

	for (unsigned i = 0; i < patches; i++) {
		uint16_t at = fz_u16(f) % (uint16_t)len;
		uint8_t to = fz_u8(f);

		if (out[at] == to)
			patches = i; /* an unchanged byte patches nothing */
		out[at] = to;
	}
	rc = sfs_fmt_keyfile_parse(out, (size_t)len, &parsed);
	if (rc == 0 && patches == 0) {
		FZ_ASSERT(sfs_fmt_keyfile_pack(again, &parsed) == len &&
			  memcmp(again, out, (size_t)len) == 0);
		sfs_crypto_label_key(lkey, want);
		for (unsigned int i = 0; i < parsed.nslots; i++)
			FZ_ASSERT(sfs_fmt_slot_label(got, &parsed.slots[i], lkey) == 0 &&
				  strcmp(got, labels[i]) == 0);
	}
	for (unsigned int i = 0; i < kf.nslots; i++) {
		rc = unwrap(out, (size_t)len, (const char *)secret[i], slen[i]);
		if (patches == 0)
			FZ_ASSERT(rc == 0 && memcmp(master, want, sizeof(want)) == 0);
	}
	/* re-key to a fuzzer-chosen key with a fuzzer-chosen subset of the secrets */
	unsigned char nkey[SFS_KEY_BYTES], rekeyed[SFS_KEYFILE_MAX];
	const char *give[SFS_SLOTS_MAX] = {NULL};
	size_t glen[SFS_SLOTS_MAX] = {0};
	uint8_t keep = fz_u8(f);
	struct sfs_keyfile nkf;
	unsigned int kept = 0;
	int failed;

	fz_take(f, nkey, sizeof(nkey));
	for (unsigned int i = 0; i < kf.nslots; i++)
		if (keep & (1u << i)) {
			give[i] = (const char *)secret[i];
			glen[i] = slen[i];
			kept++;
		}
	{
		bool cheap = sfs_fmt_keyfile_parse(out, (size_t)len, &parsed) == 0;

		for (unsigned int i = 0; cheap && i < parsed.nslots; i++)
			cheap = parsed.slots[i].opslimit <= OPS && parsed.slots[i].memlimit <= MEM;
		rc = cheap ? sfs_fmt_keyfile_rekey(&nkf, &parsed, want, nkey, 0, give, glen,
						   &failed)
			   : -EUCLEAN;
		if (cheap && patches == 0) {
			FZ_ASSERT(kept ? rc == (int)kept && failed == -1 : rc == -EINVAL);
			if (kept) {
				FZ_ASSERT(sfs_fmt_keyfile_pack(rekeyed, &nkf) ==
					  (ssize_t)(SFS_KEYFILE_V3_HDR + kept * SFS_SLOT_BYTES));
				sfs_crypto_label_key(lkey, nkey);
			}
			for (unsigned int i = 0; kept && i < kf.nslots; i++) {
				int index;

				rc = sfs_fmt_keyfile_open(master, &nkf, (const char *)secret[i],
							  slen[i], &index);
				/* two slots may share a secret: the first one opens */
				if (give[i])
					FZ_ASSERT(rc == 0 &&
						  memcmp(master, nkey, sizeof(nkey)) == 0);
				else
					FZ_ASSERT(rc == -EKEYREJECTED ||
						  (rc == 0 && index != (int)i));
			}
			for (unsigned int i = 0; kept && i < nkf.nslots; i++)
				FZ_ASSERT(sfs_fmt_slot_label(got, &nkf.slots[i], lkey) == 0 &&
					  strcmp(got, labels[nkf.slots[i].index]) == 0);
		} else if (cheap && rc >= 0) {
			/* every slot kept really opened the old key: it opens the new one */
			for (unsigned int i = 0; i < nkf.nslots; i++) {
				unsigned int at = nkf.slots[i].index;
				int index;

				FZ_ASSERT(give[at] &&
					  sfs_fmt_keyfile_open(master, &nkf, give[at], glen[at],
							       &index) == 0 &&
					  memcmp(master, nkey, sizeof(nkey)) == 0);
			}
		}
	}
	bool taken = false; /* a slot's own secret is the probe */

	for (unsigned int i = 0; i < kf.nslots; i++)
		taken |= slen[i] == 16 && memcmp(secret[i], "\x01no such secret", 16) == 0;
	if (patches == 0 && !taken)
		FZ_ASSERT(unwrap(out, (size_t)len, "\x01no such secret", 16) == -EKEYREJECTED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char kf[SFS_KEYFILE_MAX + 16], want[SFS_KEY_BYTES];
	char pw[64], other[64];
	struct fz f = {data, size};
	const uint8_t *p;
	size_t n, pwlen, otherlen;
	ssize_t len;
	int rc;

	if (!master && !(master = sodium_malloc(SFS_KEY_BYTES)))
		abort();
	uint8_t mode = fz_u8(&f);

	if (!(mode & 1)) {
		p = fz_chunk(&f, sizeof(kf), &n);
		(void)unwrap(p, n, "password", 8);
		return 0;
	}
	if (mode & 2) {
		slots(&f);
		return 0;
	}
	uint8_t cipher = fz_u8(&f) % 3 + 1;

	fz_take(&f, want, sizeof(want));
	p = fz_chunk(&f, sizeof(pw), &pwlen);
	memcpy(pw, p, pwlen);
	p = fz_chunk(&f, sizeof(other), &otherlen);
	memcpy(other, p, otherlen);
	if (!sfs_cipher_available(cipher))
		cipher = SFS_CIPHER_XCHACHA;
	len = sfs_fmt_keyfile_wrap(kf, want, pw, pwlen, OPS, MEM, cipher);
	FZ_ASSERT(len == (cipher == SFS_CIPHER_XCHACHA ? SFS_KEYFILE_BYTES : SFS_KEYFILE_V2_BYTES));
	unsigned patches = fz_u8(&f) % 4;

	for (unsigned i = 0; i < patches; i++) {
		uint8_t at = fz_u8(&f) % (uint8_t)len, to = fz_u8(&f);

		if (kf[at] == to)
			patches = i; /* an unchanged byte patches nothing */
		kf[at] = to;
	}
	rc = unwrap(kf, (size_t)len, pw, pwlen);
	if (patches == 0) {
		FZ_ASSERT(rc == 0 && memcmp(master, want, sizeof(want)) == 0);
		rc = unwrap(kf, (size_t)len, other, otherlen);
		FZ_ASSERT(rc ==
			  (otherlen == pwlen && memcmp(other, pw, pwlen) == 0 ? 0 : -EKEYREJECTED));
	}
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	unsigned char kf[SFS_KEYFILE_MAX];

	for (uint8_t cipher = 0; cipher < 3; cipher++) {
		fz_put8(&o, 1);
		fz_put8(&o, cipher);
		for (unsigned i = 0; i < SFS_KEY_BYTES; i++)
			fz_put8(&o, (uint8_t)i);
		fz_put_chunk(&o, "password", 8);
		fz_put_chunk(&o, cipher ? "passwore" : "password", 8);
		fz_put8(&o, cipher == 2 ? 1 : 0);
		fz_put8(&o, 40);
		fz_put8(&o, 3);
		fz_seed_done(&o);
	}
	/* raw: key files as mkfs.sessionfs writes them (at the cheapest cost) */
	for (uint8_t cipher = 1; cipher <= 3; cipher += 2) {
		ssize_t len = sfs_fmt_keyfile_wrap(
			kf, kf, "password", 8, OPS, MEM,
			sfs_cipher_available(cipher) ? cipher : SFS_CIPHER_XCHACHA);
		if (len < 0)
			abort();
		fz_put8(&o, 0);
		fz_put_chunk(&o, kf, (size_t)len);
		fz_seed_done(&o);
	}
	/* version 3: 1, 3 and 8 slots, passwords and recovery keys, labels */
	for (uint8_t count = 0; count < 8; count += count < 2 ? 2 : 5) {
		fz_put8(&o, 3);
		fz_put8(&o, count);
		fz_put8(&o, 0);
		for (unsigned i = 0; i < SFS_KEY_BYTES; i++)
			fz_put8(&o, (uint8_t)i);
		for (unsigned s = 0; s <= count; s++) {
			fz_put8(&o, s & 1);
			fz_put_chunk(&o, s == 1 ? "laptop" : "", s == 1 ? 6 : 0);
			if (s & 1) {
				for (unsigned i = 0; i < SFS_RECOVERY_KEY_BYTES; i++)
					fz_put8(&o, (uint8_t)(0xa0 + i + s));
			} else {
				fz_put_chunk(&o, "password", 8);
				fz_put8(&o, (uint8_t)('0' + s));
			}
			for (unsigned i = 0; i < 8; i++)
				fz_put8(&o, (uint8_t)(i == 0 ? 0x80 + s : i == 3 ? 0x67 : 0));
		}
		fz_put8(&o, 0);
		/* re-key: every slot, or slots 0 and 2, to the key 20 21 .. 3f */
		fz_put8(&o, count == 2 ? 0x05 : 0xff);
		for (unsigned i = 0; i < SFS_KEY_BYTES; i++)
			fz_put8(&o, (uint8_t)(0x20 + i));
		fz_seed_done(&o);
	}
	/* raw: a version 3 file as sessionctl new --recovery-key and passwd --add write it */
	{
		struct sfs_keyfile v3 = {.version = 3, .cipher = SFS_CIPHER_XCHACHA, .nslots = 3};
		unsigned char rk[SFS_RECOVERY_KEY_BYTES] = {1, 2, 3};
		ssize_t len;

		v3.slots[1].index = 1;
		v3.slots[2].index = 2;
		if (sfs_fmt_slot_seal(&v3.slots[0], &v3, kf, SFS_SLOT_ARGON2ID, "password", 8, OPS,
				      MEM, 1733443200, NULL, 0) < 0 ||
		    sfs_fmt_slot_seal(&v3.slots[1], &v3, kf, SFS_SLOT_RECOVERY, rk, sizeof(rk), 0,
				      0, 1733443200, NULL, 0) < 0 ||
		    sfs_fmt_slot_seal(&v3.slots[2], &v3, kf, SFS_SLOT_ARGON2ID, "other", 5, OPS,
				      MEM, 1733443260, "laptop", 6) < 0 ||
		    (len = sfs_fmt_keyfile_pack(kf, &v3)) < 0)
			abort();
		fz_put8(&o, 0);
		fz_put_chunk(&o, kf, (size_t)len);
		fz_seed_done(&o);
	}
}
