/*
 * fuzz_session.c - the walk unlock makes over a session container before
 * anyone uses it: the key file's public part (sfs_store_session_params),
 * then sfs_store_session_prepare: the root's .sfsdir, crash leftovers swept
 * from the root and from .sfsx/, events.jsonl found by its encrypted name,
 * refused if not a log, made if missing, its torn tail cut (kept in the
 * container) and damage found, at the end or at a recheck offset.
 *
 * Input: flags byte, the key file's bytes, then (structured, with the fixed
 * keys) the root header, events.jsonl as the log writer makes it from
 * fuzzer lines, with a fuzzer-chosen node kind, flips and a cut, or its
 * bytes raw, and up to 4 leftovers or other entries in the root.
 * Oracles: after a prepare that succeeds, no leftover is left, a fresh
 * load of the log agrees with the state it returned, and a second prepare
 * finds nothing to mend (the walk never leaves work for the next unlock).
 */
#include "eventlog.h"
#include "fuzz.h"
#include "store.h"
#include "tree.h"
#include "util.h"
#include "xattr.h"

#include <dirent.h>

static bool has_leftover(int rootfd)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool found = false;

	if (!d)
		abort();
	while ((de = readdir(d)) != NULL)
		found |= sfs_tree_has_prefix(de->d_name, SFS_NEW_PREFIX) ||
			 sfs_tree_has_prefix(de->d_name, SFS_GONE_PREFIX) ||
			 sfs_tree_has_prefix(de->d_name, SFS_META_PREFIX);
	closedir(d);
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs da = {.mode = 040700}, fa = {.mode = 0100600, .kind = SFS_KIND_LOG};
	struct fz f = {data, size};
	struct sfs_session_params params;
	struct sfs_log ev, ev2;
	struct sfs_session_report rep, rep2;
	unsigned char hdr[SFS_HDR_BYTES];
	struct sfs_ename en;
	const uint8_t *p;
	size_t n;
	int top = fz_dir(), cfd, rootfd, rc;

	sfs_remove_tree(top, "c");
	if (mkdirat(top, "c", 0700) < 0 || mkdirat(top, "c/" SFS_ROOT_NAME, 0700) < 0)
		abort();
	cfd = openat(top, "c", O_PATH | O_DIRECTORY | O_CLOEXEC);
	rootfd = openat(cfd, SFS_ROOT_NAME, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0 || rootfd < 0)
		abort();

	uint8_t flags = fz_u8(&f);

	p = fz_chunk(&f, SFS_KEYFILE_MAX + 8, &n);
	fz_put_file(cfd, SFS_KEY_NAME, p, n);
	(void)sfs_store_session_params(cfd, &params);

	/* The root's header: as the writer makes it, or raw. */
	if (flags & 1) {
		p = fz_chunk(&f, SFS_HDR_BYTES + 8, &n);
		fz_put_file(rootfd, SFS_DIRHDR_NAME, p, n);
	} else {
		sfs_fmt_header_pack(hdr, SFS_MAGIC_DIR, fz_id, &da, keys);
		fz_put_file(rootfd, SFS_DIRHDR_NAME, hdr, sizeof(hdr));
	}

	/* events.jsonl: missing, raw after a header of a fuzzer-chosen kind, or a log. */
	if (sfs_fmt_name_encrypt(&en, SFS_EVENTS_NAME, fz_id, keys) < 0)
		abort();
	if (!(flags & 2)) {
		int fd = openat(rootfd, en.backing, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		uint8_t k = fz_u8(&f);

		if (fd < 0)
			abort();
		fa.kind = k % 4 == 3 ? SFS_KIND_BLOCKS : SFS_KIND_LOG;
		if (sfs_log_create(fd, fz_id, &fa, keys) < 0)
			abort();
		if (k & 4) {
			p = fz_chunk(&f, 3 * SFS_LOG_FRAME, &n);
			if (n && pwrite(fd, p, n, SFS_HDR_BYTES) != (ssize_t)n)
				abort();
		} else {
			struct sfs_log l = {.fd = fd, .keys = keys, .end = SFS_HDR_BYTES};
			unsigned appends = fz_u8(&f) % 4;
			static uint8_t text[4096];

			memcpy(l.id, fz_id, SFS_ID_BYTES);
			for (unsigned i = 0; i < appends; i++) {
				p = fz_chunk(&f, sizeof(text), &n);
				if (n == 0)
					continue;
				memcpy(text, p, n);
				text[n - 1] = '\n';
				(void)sfs_log_append(&l, text, n);
			}
			struct stat st;
			uint32_t at = fz_u32(&f);
			uint8_t x = fz_u8(&f);

			if (fstat(fd, &st) < 0)
				abort();
			if (x && st.st_size > SFS_HDR_BYTES) {
				off_t pos = SFS_HDR_BYTES + at % (st.st_size - SFS_HDR_BYTES);

				if (k & 8) {
					if (ftruncate(fd, pos) < 0)
						abort();
				} else {
					uint8_t b;

					if (pread(fd, &b, 1, pos) != 1)
						abort();
					b ^= x;
					if (pwrite(fd, &b, 1, pos) != 1)
						abort();
				}
			}
		}
		close(fd);
	}

	/* Leftovers of crashes, and entries that are none. */
	unsigned entries = fz_u8(&f) % 5;

	for (unsigned i = 0; i < entries; i++) {
		static const char *names[] = {SFS_NEW_PREFIX "0123456789abcdef",
					      SFS_META_PREFIX "0123456789abcdef",
					      SFS_GONE_PREFIX "0123456789abcdef",
					      ".sfsx/.tmp.x.1.2",
					      ".sfsx/0123",
					      "~x.n"};
		uint8_t which = fz_u8(&f) % 7;
		char name[80];

		if (which < 6) {
			snprintf(name, sizeof(name), "%s", names[which]);
		} else {
			p = fz_chunk(&f, 40, &n);
			snprintf(name, sizeof(name), "%.*s", (int)n, (const char *)p);
			for (char *s = name; *s; s++)
				if (*s == '/')
					*s = '_';
			if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
			    strcmp(name, SFS_DIRHDR_NAME) == 0 || strcmp(name, en.backing) == 0)
				continue;
		}
		if (strncmp(name, ".sfsx/", 6) == 0)
			mkdirat(rootfd, SFS_XATTR_DIR, 0700);
		if (which == 2) {
			/* A retired directory holds a tree. */
			if (mkdirat(rootfd, name, 0700) == 0) {
				int d = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

				if (d < 0)
					abort();
				fz_put_file(d, "inner", "x", 1);
				close(d);
			}
		} else if (faccessat(rootfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
			fz_put_file(rootfd, name, "left", 4);
		}
	}

	uint64_t recheck = fz_u8(&f) & 1 ? fz_u32(&f) : 0;

	rc = sfs_store_session_prepare(cfd, keys, recheck, &ev, &rep);
	if (rc == 0) {
		FZ_ASSERT(!has_leftover(rootfd));
		/* What it returned is what a fresh load finds. */
		int fd = openat(rootfd, en.backing, O_RDWR | O_CLOEXEC);
		struct sfs_log l = {.fd = fd, .keys = keys, .end = SFS_HDR_BYTES};

		FZ_ASSERT(fd >= 0);
		memcpy(l.id, ev.id, SFS_ID_BYTES);
		FZ_ASSERT(sfs_log_load(&l) == 0);
		FZ_ASSERT(l.end == ev.end && l.size == ev.size && l.lines == ev.lines);
		close(fd);
		/* A second unlock finds nothing more to mend. */
		FZ_ASSERT(sfs_store_session_prepare(cfd, keys, 0, &ev2, &rep2) == 0);
		FZ_ASSERT(rep2.swept == 0 && !rep2.events_created && rep2.events_dropped == 0);
		FZ_ASSERT(ev2.end == ev.end && ev2.size == ev.size && ev2.lines == ev.lines);
		sfs_log_close(&ev2); /* prepare leaves the log open */
		sfs_log_close(&ev);
	}
	close(rootfd);
	close(cfd);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	unsigned char kf[SFS_KEYFILE_MAX];
	ssize_t kl = sfs_fmt_keyfile_wrap(kf, kf, "pw", 2, crypto_pwhash_argon2id_OPSLIMIT_MIN,
					  crypto_pwhash_argon2id_MEMLIMIT_MIN, SFS_CIPHER_XCHACHA);

	if (kl < 0)
		abort();
	/* A clean session; one with a torn tail and leftovers; a missing log; a flipped byte. */
	for (unsigned s = 0; s < 4; s++) {
		fz_put8(&o, s == 2 ? 2 : 0);
		fz_put_chunk(&o, kf, (size_t)kl);
		if (s != 2) {
			fz_put8(&o, s == 1 ? 8 : 0);
			fz_put8(&o, 2);
			fz_put_chunk(&o, "{\"a\":1}\n{\"b\":2}\n", 16);
			fz_put_chunk(&o, "{\"c\":3}\n", 8);
			fz_put32(&o, s == 1 ? 90 : 40);
			fz_put8(&o, s == 0 ? 0 : 0x10);
		}
		fz_put8(&o, s == 1 ? 4 : 0);
		for (unsigned i = 0; s == 1 && i < 4; i++)
			fz_put8(&o, (uint8_t)(i * 2 % 7));
		fz_put8(&o, 0);
		fz_seed_done(&o);
	}
}
