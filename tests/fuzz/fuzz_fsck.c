/*
 * fuzz_fsck.c - fsck.sessionfs's walk over a store directory (lib/fsck*.c):
 * the store config, a container with a key file that opens with the fixed
 * keys (cheapest Argon2id), and a session root holding fuzzer-chosen
 * entries: files sealed with the fixed keys under fuzzer names and then
 * flipped or cut, raw files under raw names, an events.jsonl made by the log
 * writer from fuzzer lines and then flipped or cut, subdirectories, xattr
 * blobs, sidecars, metadata.json, leftovers.
 *
 * Oracles: a check run (-n) changes nothing in the store (names, sizes,
 * contents); repair runs (-y) settle (at most 4 until one fixes nothing),
 * and then a check run finds nothing a repair could mend: fsck never leaves
 * work for the next run nor undoes its own repairs.
 */
#include "eventlog.h"
#include "fileio.h"
#include "fsck.h"
#include "fuzz.h"
#include "store.h"
#include "tree.h"
#include "util.h"
#include "xattr.h"

#include <dirent.h>

#define PW "pw"

static unsigned char keyfile[SFS_KEYFILE_MAX];
static ssize_t keyfile_len = -1;

static void make_keyfile(void)
{
	unsigned char master[SFS_KEY_BYTES];

	if (keyfile_len >= 0)
		return;
	for (size_t i = 0; i < sizeof(master); i++)
		master[i] = (unsigned char)i;
	keyfile_len =
		sfs_fmt_keyfile_wrap(keyfile, master, PW, 2, crypto_pwhash_argon2id_OPSLIMIT_MIN,
				     crypto_pwhash_argon2id_MEMLIMIT_MIN, SFS_CIPHER_XCHACHA);
	if (keyfile_len < 0)
		abort();
}

static int password(void *arg, const char *id, const char **pw, size_t *len)
{
	(void)id;
	if (!*(bool *)arg)
		return 0;
	*pw = PW;
	*len = 2;
	return 1;
}

/* A hash of every name, size and content below @fd. */
static void hash_tree(int fd, crypto_generichash_state *h)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	static unsigned char buf[1 << 16];

	if (!d)
		abort();
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int sub;
		ssize_t n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			abort();
		crypto_generichash_update(h, (const unsigned char *)de->d_name,
					  strlen(de->d_name) + 1);
		crypto_generichash_update(h, (const unsigned char *)&st.st_size,
					  sizeof(st.st_size));
		if (S_ISDIR(st.st_mode)) {
			sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0)
				abort();
			hash_tree(sub, h);
			close(sub);
		} else if (S_ISREG(st.st_mode)) {
			sub = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
			if (sub < 0)
				abort();
			while ((n = read(sub, buf, sizeof(buf))) > 0)
				crypto_generichash_update(h, buf, (size_t)n);
			close(sub);
		}
	}
	closedir(d);
}

static void digest(int fd, unsigned char out[32])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, 32);
	hash_tree(fd, &h);
	crypto_generichash_final(&h, out, 32);
}

/* Write a fuzzer-named file; a name taken by a directory (or under a file) is skipped. */
static void put(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return;
	if ((len && pwrite(fd, data, len, 0) != (ssize_t)len) || close(fd) < 0)
		abort();
}

/* A backing name from fuzzer bytes: the base64url alphabet, '.', '~'. */
static void raw_name(struct fz *f, char *out, size_t cap)
{
	static const char al[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
	size_t n;
	const uint8_t *p = fz_chunk(f, cap - 1, &n);

	for (size_t i = 0; i < n; i++)
		out[i] = al[p[i] % (sizeof(al) - 1)];
	out[n] = '\0';
	if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		snprintf(out, cap, "x");
}

/* A plaintext name from fuzzer bytes (no '/' nor NUL). */
static void plain_name(struct fz *f, char *out, size_t cap)
{
	size_t n;
	const uint8_t *p = fz_chunk(f, cap - 1, &n);

	for (size_t i = 0; i < n; i++)
		out[i] = (p[i] == '/' || p[i] == 0) ? 'a' : (char)p[i];
	out[n] = '\0';
	if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
		snprintf(out, cap, "f");
}

static void flip_cut(struct fz *f, int fd)
{
	uint32_t at = fz_u32(f);
	uint8_t x = fz_u8(f), cut = fz_u8(f);
	struct stat st;
	unsigned char b;

	if (fstat(fd, &st) < 0 || st.st_size == 0)
		return;
	if (x && pread(fd, &b, 1, at % st.st_size) == 1) {
		b ^= x;
		if (pwrite(fd, &b, 1, at % st.st_size) != 1)
			abort();
	}
	if (cut & 1)
		if (ftruncate(fd, st.st_size - (cut >> 1) % st.st_size) < 0)
			abort();
}

/* A node sealed with the fixed keys in @dirfd (directory id @dirid) under plain @name. */
static int sealed_file(int dirfd, const unsigned char *dirid, const char *name, uint16_t kind)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs a = {.mode = 0100600, .kind = kind};
	struct sfs_ename en;
	unsigned char id[SFS_ID_BYTES];
	int fd;

	if (sfs_fmt_name_encrypt(&en, name, dirid, keys) < 0)
		return -1;
	if (en.is_long && sfs_tree_name_add(dirfd, &en) < 0)
		abort();
	fd = openat(dirfd, en.backing, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1; /* a fuzzer-named directory took the name */
	sfs_crypto_random(id, sizeof(id));
	if ((kind == SFS_KIND_LOG ? sfs_log_create(fd, id, &a, keys)
				  : sfs_file_init(fd, id, &a, keys)) < 0)
		abort();
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs da = {.mode = 040700};
	struct fz f = {data, size};
	unsigned char hdr[SFS_HDR_BYTES], before[32], after[32];
	char name[300], store[128], why[256];
	bool pw;
	int top = fz_dir(), storefd, rootfd, fd, n;

	make_keyfile();
	sfs_remove_tree(top, "s");
	snprintf(store, sizeof(store), "%s/s", fz_dir_path);
	if (sfs_store_create(store, SFS_KDF_INTERACTIVE, SFS_CIPHER_XCHACHA, why, sizeof(why)) < 0)
		abort();
	storefd = openat(top, "s", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd < 0 || mkdirat(storefd, "sessions/INC-f00d", 0700) < 0 ||
	    mkdirat(storefd, "sessions/INC-f00d/root", 0700) < 0)
		abort();
	fz_put_file(storefd, "sessions/INC-f00d/key", keyfile, (size_t)keyfile_len);
	fz_put_file(storefd, "sessions/INC-f00d/lock", "", 0);
	rootfd = openat(storefd, "sessions/INC-f00d/root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		abort();
	pw = fz_u8(&f) & 1;
	sfs_fmt_header_pack(hdr, SFS_MAGIC_DIR, fz_id, &da, keys);
	fz_put_file(rootfd, SFS_DIRHDR_NAME, hdr, sizeof(hdr));
	n = fz_u8(&f) % 8;
	for (int i = 0; i < n; i++) {
		size_t len;
		const uint8_t *p;

		switch (fz_u8(&f) % 8) {
		case 0: /* a sealed file, then flipped or cut */
		case 6: /* metadata.json */
			if (fz_u8(&f) & 1)
				snprintf(name, sizeof(name), "%s", SFS_METADATA_NAME);
			else
				plain_name(&f, name, 256);
			fd = sealed_file(rootfd, fz_id, name, SFS_KIND_BLOCKS);
			if (fd >= 0) {
				struct sfs_file sf = {.fd = fd, .keys = keys, .fresh = true};

				if (sfs_file_read_header(fd, sf.id, &da, keys) < 0)
					abort();
				da.mode = 040700;
				p = fz_chunk(&f, 3 * SFS_BLOCK, &len);
				if (len && sfs_file_write(&sf, p, len, 0) < 0)
					abort();
				flip_cut(&f, fd);
				close(fd);
			}
			break;
		case 1: /* raw bytes under a raw name */
			raw_name(&f, name, 64);
			if (strcmp(name, SFS_DIRHDR_NAME) == 0)
				break;
			p = fz_chunk(&f, 4 * SFS_BLOCK, &len);
			put(rootfd, name, p, len);
			break;
		case 2: { /* events.jsonl from fuzzer lines */
			struct sfs_log l = {.keys = keys};

			fd = sealed_file(rootfd, fz_id, SFS_EVENTS_NAME, SFS_KIND_LOG);
			if (fd < 0)
				break;
			l.fd = fd;
			if (sfs_file_read_header(fd, l.id, &da, keys) < 0 || sfs_log_load(&l) < 0)
				abort();
			da.mode = 040700;
			for (int a = fz_u8(&f) % 4; a > 0; a--) {
				p = fz_chunk(&f, 2 * SFS_LOG_FRAME, &len);
				if (len && sfs_log_append(&l, p, len) < 0)
					abort();
			}
			flip_cut(&f, fd);
			close(fd);
			break;
		}
		case 3: { /* a subdirectory with a raw entry */
			int sub;

			raw_name(&f, name, 64);
			if (mkdirat(rootfd, name, 0700) < 0)
				break;
			sub = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0)
				abort();
			p = fz_chunk(&f, SFS_HDR_BYTES + 2, &len);
			put(sub, SFS_DIRHDR_NAME, p, len);
			raw_name(&f, name, 64);
			if (strcmp(name, SFS_DIRHDR_NAME) != 0) {
				p = fz_chunk(&f, 200, &len);
				put(sub, name, p, len);
			}
			close(sub);
			break;
		}
		case 4: /* an xattr blob: of the fixed id, or raw-named */
			mkdirat(rootfd, SFS_XATTR_DIR, 0700);
			if (fz_u8(&f) & 1)
				sfs_xattr_blob_name(name, fz_id);
			else
				raw_name(&f, name, 40);
			{
				char path[400];

				snprintf(path, sizeof(path), "%s/%s", SFS_XATTR_DIR, name);
				p = fz_chunk(&f, 400, &len);
				put(rootfd, path, p, len);
			}
			break;
		case 5: /* a sidecar */
			raw_name(&f, name + 1, 44);
			name[0] = '~';
			strcat(name, ".n");
			p = fz_chunk(&f, 400, &len);
			put(rootfd, name, p, len);
			break;
		default: /* a leftover */
			mkdirat(rootfd, ".sfs-gone-0123456789abcdef", 0700);
			break;
		}
	}
	close(rootfd);

	/* -n changes nothing. */
	{
		struct sfs_fsck c = {
			.store = store, .mode = SFS_FSCK_CHECK, .password = password, .arg = &pw};

		digest(storefd, before);
		FZ_ASSERT(sfs_fsck_run(&c) == 0);
		digest(storefd, after);
		FZ_ASSERT(memcmp(before, after, 32) == 0);
		sfs_fsck_free(&c);
	}
	/* -y settles, and then -n finds nothing a repair could mend. */
	for (int run = 0;; run++) {
		struct sfs_fsck c = {
			.store = store, .mode = SFS_FSCK_REPAIR, .password = password, .arg = &pw};
		bool fixed = false, failed = false;

		FZ_ASSERT(sfs_fsck_run(&c) == 0);
		for (size_t i = 0; i < c.n; i++) {
			fixed |= c.v[i].state == SFS_FSCK_FIXED;
			failed |= c.v[i].state == SFS_FSCK_FAILED && c.v[i].repair;
		}
		sfs_fsck_free(&c);
		if (failed)
			break; /* a repair that failed (a full disk ...) is reported as such */
		if (!fixed) {
			struct sfs_fsck k = {.store = store,
					     .mode = SFS_FSCK_CHECK,
					     .password = password,
					     .arg = &pw};

			FZ_ASSERT(sfs_fsck_run(&k) == 0);
			for (size_t i = 0; i < k.n; i++)
				if (k.v[i].repair && k.v[i].state == SFS_FSCK_LEFT) {
					fprintf(stderr, "left with a repair: %s: %s\n", k.v[i].path,
						k.v[i].what);
					FZ_ASSERT(0);
				}
			sfs_fsck_free(&k);
			break;
		}
		FZ_ASSERT(run < 4);
	}
	close(storefd);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;

	/* A clean session with a file and a log; one with leftovers and damage. */
	for (unsigned s = 0; s < 3; s++) {
		o.len = 0;
		fz_put8(&o, s == 0 ? 1 : (s == 1 ? 3 : 0));
		fz_put8(&o, 3);
		fz_put8(&o, 0);
		fz_put8(&o, 0);
		fz_put_chunk(&o, "notes.md", 8);
		fz_put_chunk(&o, "hello\n", 6);
		fz_put32(&o, 100);
		fz_put8(&o, s == 2 ? 1 : 0);
		fz_put8(&o, 0);
		fz_put8(&o, 2);
		fz_put8(&o, 2);
		fz_put_chunk(&o, "{\"a\":1}\n{\"b\":2}\n", 16);
		fz_put_chunk(&o, "{\"c\":3}\n", 8);
		fz_put32(&o, 130);
		fz_put8(&o, s == 2 ? 0x10 : 0);
		fz_put8(&o, s == 1 ? 21 : 0);
		fz_put8(&o, s == 0 ? 6 : 7);
		if (s == 0) {
			fz_put8(&o, 1);
			fz_put_chunk(&o, "{\"id\":\"INC-f00d\"}\n", 18);
			fz_put32(&o, 0);
			fz_put8(&o, 0);
			fz_put8(&o, 0);
		}
		fz_seed_done(&o);
	}
}
