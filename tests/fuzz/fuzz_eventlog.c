/*
 * fuzz_eventlog.c - event logs (SFS_KIND_LOG files, events.jsonl): frames
 * and records as sfs_log_load, sfs_log_repair (which also writes the kept
 * bytes), sfs_log_check and sfs_log_read find them, and an append after a
 * repair.
 *
 * Input: mode byte; even: the bytes after a valid log header, raw; odd: up
 * to 10 operations: appends of whole lines through sfs_log_append, records
 * sealed with the fixed keys whose clear header (length, flags, plaintext
 * offset, line count) and place are the fuzzer's, so the code behind
 * authentication meets records no writer makes; byte flips, zeroed runs
 * (lost sectors), cuts (torn appends) and frames copied over others. Then
 * the log is loaded, repaired, checked and read at fuzzer-chosen offsets.
 * Oracles: until the bytes are touched, the log reads back what was
 * appended, with its size and lines; after a repair that succeeds, a fresh
 * load finds the same end, size and lines, and a new line appends and
 * reads back. Before the repair, a kept file an interrupted cut of the same
 * tail may have left (a fuzzer-chosen prefix of what the cut keeps, found on
 * a copy, perhaps with a byte changed): the repair keeps the bytes once,
 * completing that file if it holds a prefix, else in a new one.
 */
#include "eventlog.h"
#include "fuzz.h"

#define TEXT_MAX (64 * 1024)

static uint8_t text[TEXT_MAX + 8192], out[TEXT_MAX + 8192];

static void open_log(struct sfs_log *l, int fd)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->keys = fz_keys(SFS_CIPHER_XCHACHA);
	memcpy(l->id, fz_id, SFS_ID_BYTES);
	l->end = SFS_HDR_BYTES;
}

static void reads(struct fz *f, struct sfs_log *l)
{
	for (unsigned i = 0; i < 3; i++) {
		uint64_t off = fz_u32(f) % (l->size + 2);
		size_t len = fz_u16(f) % sizeof(out);
		ssize_t n = sfs_log_read(l, out, len, off);

		FZ_ASSERT(n < 0 || (size_t)n <= len);
	}
}

#define KEPT_OLD "events.kept-0123456789abcdef"

/* The @len bytes of file @name of the fuzz directory, malloc'd (NULL: none). */
static uint8_t *read_kept(const char *name, size_t *len)
{
	int fd = openat(fz_dir(), name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *b;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(b = malloc((size_t)st.st_size + 1)) ||
	    pread(fd, b, (size_t)st.st_size, 0) != st.st_size)
		abort();
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/*
 * What a repair of the log in @fd keeps (malloc'd, NULL: nothing), found by
 * repairing a copy; and, as an interrupted cut of the same tail leaves it, a
 * kept file KEPT_OLD of a fuzzer-chosen prefix of those bytes, perhaps with
 * a byte changed (*@old, *@oldlen; *@flip).
 */
static uint8_t *interrupted_cut(struct fz *f, int fd, size_t *klen, uint8_t **old, size_t *oldlen,
				bool *flip)
{
	struct stat st;
	struct sfs_log l;
	struct sfs_log_repair rep;
	char name[SFS_LOG_KEPT_NAME] = "kept";
	uint8_t *b, *k = NULL;
	int copy;

	*old = NULL;
	*flip = false;
	unlinkat(fz_dir(), "kept", 0);
	unlinkat(fz_dir(), KEPT_OLD, 0);
	if (fstat(fd, &st) < 0 || !(b = malloc((size_t)st.st_size + 1)) ||
	    pread(fd, b, (size_t)st.st_size, 0) != st.st_size)
		abort();
	copy = fz_memfd(b, (size_t)st.st_size);
	free(b);
	open_log(&l, copy);
	if (sfs_log_repair(&l, &rep, fz_dir(), name) == 0 && rep.kept) {
		FZ_ASSERT(strcmp(name, "kept") == 0);
		k = read_kept(name, klen);
		FZ_ASSERT(k && *klen == SFS_LOG_KEPT_HDR + rep.dropped);
	}
	close(copy);
	unlinkat(fz_dir(), "kept", 0);
	if (k && (fz_u8(f) & 1)) {
		*oldlen = fz_u32(f) % (*klen + 1);
		*old = malloc(*oldlen + 1);
		if (!*old)
			abort();
		memcpy(*old, k, *oldlen);
		if (*oldlen && (fz_u8(f) & 1)) {
			(*old)[fz_u32(f) % *oldlen] ^= (uint8_t)(1 + fz_u8(f) % 255);
			*flip = true;
		}
		fz_put_file(fz_dir(), KEPT_OLD, *old, *oldlen);
	}
	return k;
}

/* Load, repair, check and read what is in @fd. */
static void recover(struct fz *f, int fd)
{
	struct sfs_log l, l2;
	struct sfs_log_repair rep;
	struct sfs_log_damage d;
	char name[SFS_LOG_KEPT_NAME] = "kept";
	uint8_t *want, *old, *got;
	size_t wlen = 0, olen = 0, glen = 0;
	bool flip;
	int rc;

	open_log(&l, fd);
	(void)sfs_log_load(&l);
	reads(f, &l);

	want = interrupted_cut(f, fd, &wlen, &old, &olen, &flip);
	open_log(&l, fd);
	rc = sfs_log_repair(&l, &rep, fz_dir(), name);
	/*
	 * The bytes are kept once: in the file an interrupted cut left when it
	 * holds a prefix of them (completed), else in a new one (the other stays
	 * as it was).
	 */
	if (rc == 0 && rep.kept) {
		FZ_ASSERT(want != NULL);
		FZ_ASSERT(strcmp(name, old && !flip ? KEPT_OLD : "kept") == 0);
		got = read_kept(name, &glen);
		FZ_ASSERT(got && glen == wlen && memcmp(got, want, wlen) == 0);
		free(got);
		if (old && flip) {
			got = read_kept(KEPT_OLD, &glen);
			FZ_ASSERT(got && glen == olen && memcmp(got, old, olen) == 0);
			free(got);
		}
	}
	free(want);
	free(old);
	if (rc < 0)
		return;
	open_log(&l2, fd);
	FZ_ASSERT(sfs_log_load(&l2) == 0);
	FZ_ASSERT(l2.end == l.end && l2.size == l.size && l2.lines == l.lines);
	(void)sfs_log_check(&l, SFS_HDR_BYTES + fz_u32(f) % (l.end + 1), &d);
	reads(f, &l);
	/* The log takes a new line after the repair, and it reads back. */
	uint64_t size = l.size, lines = l.lines;
	static const char line[] = "{\"after\":\"repair\"}\n";

	if (sfs_log_append(&l, line, sizeof(line) - 1) == 0) {
		FZ_ASSERT(l.size == size + sizeof(line) - 1 && l.lines == lines + 1);
		FZ_ASSERT(sfs_log_read(&l, out, sizeof(line) - 1, size) ==
			  (ssize_t)(sizeof(line) - 1));
		FZ_ASSERT(memcmp(out, line, sizeof(line) - 1) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sfs_keys *keys = fz_keys(SFS_CIPHER_XCHACHA);
	struct sfs_attrs a = {.mode = 0100600, .kind = SFS_KIND_LOG};
	struct fz f = {data, size};
	bool touched = false;
	size_t shadow = 0, newlines = 0;
	struct sfs_log l;
	unsigned ops;
	int fd = fz_memfd(NULL, 0);

	if (sfs_log_create(fd, fz_id, &a, keys) < 0)
		abort();
	if (!(fz_u8(&f) & 1)) {
		const uint8_t *p;
		size_t n;

		p = fz_chunk(&f, TEXT_MAX, &n);
		if (n && pwrite(fd, p, n, SFS_HDR_BYTES) != (ssize_t)n)
			abort();
		recover(&f, fd);
		close(fd);
		return 0;
	}
	open_log(&l, fd);
	ops = fz_u8(&f) % 11;
	for (unsigned i = 0; i < ops; i++) {
		uint8_t op = fz_u8(&f) % 6;
		uint32_t pos = fz_u32(&f), arg = fz_u16(&f);
		struct stat st;
		const uint8_t *p;
		size_t n;

		if (fstat(fd, &st) < 0)
			abort();
		switch (op) {
		case 0: /* append whole lines */
			p = fz_chunk(&f, 8192, &n);
			if (n == 0 || shadow + n > TEXT_MAX)
				break;
			memcpy(text + shadow, p, n);
			text[shadow + n - 1] = '\n';
			if (sfs_log_append(&l, text + shadow, n) == 0) {
				for (size_t k = 0; k < n; k++)
					newlines += text[shadow + k] == '\n';
				shadow += n;
			}
			break;
		case 1: { /* a record with fuzzer-chosen header fields, sealed */
			static unsigned char rec[SFS_LOG_FRAME];
			struct sfs_rec r;
			uint64_t at = sfs_fmt_record_pos(
				arg & 1 ? (uint64_t)st.st_size : SFS_HDR_BYTES + pos % (64 * 1024));

			r.len = (uint16_t)(fz_u16(&f) % SFS_REC_MAX + 1);
			if (r.len > sfs_fmt_record_room(at))
				r.len = (uint16_t)sfs_fmt_record_room(at);
			if (r.len == 0)
				break;
			r.flags = arg & 2 ? SFS_REC_END : 0;
			r.offset = arg & 4 ? shadow : fz_u64(&f);
			r.lines = arg & 8 ? newlines : fz_u64(&f);
			p = fz_chunk(&f, r.len, &n);
			memset(out, '\n', r.len);
			memcpy(out, p, n);
			sfs_fmt_record_seal(rec, &r, out, fz_id, keys);
			if (pwrite(fd, rec, SFS_REC_OVERHEAD + r.len, (off_t)at) < 0)
				abort();
			touched = true;
			break;
		}
		case 2: /* flip a byte */
			if (st.st_size > SFS_HDR_BYTES) {
				uint8_t b;
				off_t at = SFS_HDR_BYTES + pos % (st.st_size - SFS_HDR_BYTES);

				if (pread(fd, &b, 1, at) != 1)
					abort();
				b ^= (uint8_t)(arg | 1);
				if (pwrite(fd, &b, 1, at) != 1)
					abort();
				touched = true;
			}
			break;
		case 3: /* zero a run: sectors a power loss lost */
			if (st.st_size > SFS_HDR_BYTES) {
				static const uint8_t zero[4096];
				off_t at = SFS_HDR_BYTES + pos % (st.st_size - SFS_HDR_BYTES);
				size_t len = arg % sizeof(zero) + 1;

				if (at + (off_t)len > st.st_size)
					len = (size_t)(st.st_size - at);
				if (pwrite(fd, zero, len, at) < 0)
					abort();
				touched = true;
			}
			break;
		case 4: /* cut: an append torn by a crash */
			if (st.st_size > SFS_HDR_BYTES) {
				if (ftruncate(fd, SFS_HDR_BYTES +
							  pos % (st.st_size - SFS_HDR_BYTES)) < 0)
					abort();
				touched = true;
			}
			break;
		case 5: { /* copy frame @pos over frame @arg */
			static uint8_t frame[SFS_LOG_FRAME];
			ssize_t got = pread(fd, frame, sizeof(frame),
					    (off_t)sfs_fmt_frame_offset(pos % 16));

			if (got > 0) {
				if (pwrite(fd, frame, (size_t)got,
					   (off_t)sfs_fmt_frame_offset(arg % 16)) < 0)
					abort();
				touched = true;
			}
			break;
		}
		}
		if (touched) {
			/* The writer's own state no longer says what is stored. */
			open_log(&l, fd);
			if (sfs_log_load(&l) < 0)
				break;
			continue;
		}
		FZ_ASSERT(l.size == shadow && l.lines == newlines);
		FZ_ASSERT(sfs_log_read(&l, out, shadow, 0) == (ssize_t)shadow);
		FZ_ASSERT(memcmp(out, text, shadow) == 0);
	}
	recover(&f, fd);
	close(fd);
	return 0;
}

static void seeds(void)
{
	static struct fz_out o;
	static char lines[8192];
	size_t n = 0;

	while (n + 40 < sizeof(lines))
		n += (size_t)snprintf(lines + n, sizeof(lines) - n, "{\"event\":%zu,\"ok\":true}\n",
				      n);
	/* Appends, then each kind of damage after them. */
	for (unsigned damage = 0; damage < 7; damage++) {
		fz_put8(&o, 1);
		fz_put8(&o, damage < 6 ? 4 : 3);
		for (unsigned k = 0; k < 3; k++) {
			fz_put8(&o, 0);
			fz_put32(&o, 0);
			fz_put16(&o, 0);
			fz_put_chunk(&o, lines, k == 1 ? 5000 : 300);
		}
		if (damage < 6) {
			fz_put8(&o, (uint8_t)damage);
			fz_put32(&o, 5100);
			fz_put16(&o, damage == 1 ? 15 : 700);
			if (damage == 1) {
				fz_put16(&o, 100);
				fz_put_chunk(&o, lines, 100);
			}
		}
		for (unsigned k = 0; k < 10; k++)
			fz_put32(&o, k * 1000);
		fz_seed_done(&o);
	}
	/* raw: nothing after the header; a record's worth of garbage */
	fz_put8(&o, 0);
	fz_put_chunk(&o, "", 0);
	fz_seed_done(&o);
	fz_put8(&o, 0);
	fz_put_chunk(&o, lines, 200);
	fz_seed_done(&o);
}
