/*
 * fuzz.h - what every libFuzzer harness of tests/fuzz/ shares: fixed keys,
 * a reader of fuzzer bytes, backing files in memory or in a private
 * directory, and seed corpora written by the project's own writers.
 *
 * A harness defines LLVMFuzzerTestOneInput() and seeds(); this header
 * defines LLVMFuzzerInitialize(), which runs seeds() and exits when
 * SFS_FUZZ_SEEDS names a directory (tests/fuzz/run does that to make each
 * harness's corpus, so no binary blob is checked in).
 *
 * The keys are fixed (master key bytes 0, 1, ..., 31), so a harness can
 * seal fuzzer-chosen fields with the same writers the store uses and the
 * fuzzer explores the parsers past authentication; raw inputs reach the
 * checks before it. Test code: it knows every layer of lib/, and none of it
 * is linked into sessionfs.
 */
#ifndef SFS_FUZZ_H
#define SFS_FUZZ_H

#include "crypto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Abort (a crash libFuzzer reports and keeps) when a harness's oracle fails. */
#define FZ_ASSERT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: FZ_ASSERT(%s) failed\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The fuzzer's bytes, read front to back; past the end every read gives zeros. */
struct fz {
	const uint8_t *p;
	size_t n;
};

static inline void fz_take(struct fz *f, void *out, size_t len)
{
	size_t k = len < f->n ? len : f->n;

	memcpy(out, f->p, k);
	memset((uint8_t *)out + k, 0, len - k);
	f->p += k;
	f->n -= k;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	fz_take(f, &v, 1);
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint8_t b[2];

	fz_take(f, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	return fz_u16(f) | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	return fz_u32(f) | (uint64_t)fz_u32(f) << 32;
}

/* Up to @max of the next bytes (a u16 says how many); their count in *@len. */
static inline const uint8_t *fz_chunk(struct fz *f, size_t max, size_t *len)
{
	const uint8_t *p = f->p;
	size_t want = fz_u16(f) % (max + 1);

	p = f->p;
	*len = want < f->n ? want : f->n;
	f->p += *len;
	f->n -= *len;
	return p;
}

/* The fixed keys of a session whose content uses @cipher (XChaCha if this CPU lacks it). */
static inline const struct sfs_keys *fz_keys(enum sfs_cipher cipher)
{
	static struct sfs_keys *k[4];
	unsigned char master[SFS_KEY_BYTES];

	if (cipher < SFS_CIPHER_XCHACHA || cipher > SFS_CIPHER_AESGCM_DERIVED ||
	    !sfs_cipher_available(cipher))
		cipher = SFS_CIPHER_XCHACHA;
	if (!k[cipher]) {
		for (size_t i = 0; i < sizeof(master); i++)
			master[i] = (unsigned char)i;
		k[cipher] = sfs_keys_new(master, cipher);
		if (!k[cipher])
			abort();
	}
	return k[cipher];
}

/* A fixed node or directory id. */
static const unsigned char fz_id[SFS_ID_BYTES] = "fuzz-node-id-16";

/* A file in memory holding @len bytes of @data; its descriptor (aborts on failure). */
static inline int fz_memfd(const void *data, size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len))
		abort();
	return fd;
}

/* This process's private directory (made once, removed at exit): its descriptor. */
static char fz_dir_path[64];

static inline void fz_dir_remove(void)
{
	if (fz_dir_path[0] && sfs_remove_tree(AT_FDCWD, fz_dir_path) < 0)
		fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_path);
}

static inline int fz_dir(void)
{
	static int fd = -1;

	if (fd < 0) {
		/* tmpfs if there is one: repairs fsync, and fsync there costs nothing. */
		snprintf(fz_dir_path, sizeof(fz_dir_path), "%s/sfs-fuzz.XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(fz_dir_path))
			abort();
		atexit(fz_dir_remove);
		fd = open(fz_dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			abort();
	}
	return fd;
}

/* Replace @dirfd/@name with @len bytes of @data. */
static inline void fz_put_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len) || close(fd) < 0)
		abort();
}

/* Seed corpus: each call writes one input to $SFS_FUZZ_SEEDS/seed-N. */
static inline void fz_seed(const void *data, size_t len)
{
	static unsigned count;
	char path[4096];
	const char *dir = getenv("SFS_FUZZ_SEEDS");
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%03u", dir, count++);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A growing seed: bytes appended, then written with fz_seed_done(). */
struct fz_out {
	uint8_t buf[1 << 16];
	size_t len;
};

static inline void fz_put(struct fz_out *o, const void *data, size_t len)
{
	if (o->len + len > sizeof(o->buf))
		abort();
	memcpy(o->buf + o->len, data, len);
	o->len += len;
}

static inline void fz_put8(struct fz_out *o, uint8_t v)
{
	fz_put(o, &v, 1);
}

static inline void fz_put16(struct fz_out *o, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	fz_put(o, b, 2);
}

static inline void fz_put32(struct fz_out *o, uint32_t v)
{
	fz_put16(o, (uint16_t)v);
	fz_put16(o, (uint16_t)(v >> 16));
}

static inline void fz_put64(struct fz_out *o, uint64_t v)
{
	fz_put32(o, (uint32_t)v);
	fz_put32(o, (uint32_t)(v >> 32));
}

/* A chunk as fz_chunk() reads it: u16 length, then the bytes. */
static inline void fz_put_chunk(struct fz_out *o, const void *data, size_t len)
{
	fz_put16(o, (uint16_t)len);
	fz_put(o, data, len);
}

static inline void fz_seed_done(struct fz_out *o)
{
	fz_seed(o->buf, o->len);
	o->len = 0;
}

/* Each harness's seed writer. */
static void seeds(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sfs_crypto_init() < 0)
		abort();
	if (getenv("SFS_FUZZ_SEEDS")) {
		seeds();
		exit(0);
	}
	return 0;
}

#endif
