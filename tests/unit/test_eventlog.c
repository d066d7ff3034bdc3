/*
 * test_eventlog.c - the append-only record log (lib/eventlog.c) against an
 * in-memory model: record arithmetic and a fixed record vector; seeded
 * random appends with loads and reads at random offsets; crashes simulated
 * by cutting the file at every kind of point (the repair must leave exactly
 * the complete appends before the cut); holes left by a power loss; and
 * tampering, which must read as -EBADMSG, never as wrong bytes.
 */
#include "check.h"
#include "eventlog.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAX (24u << 20)
#define MAX_APPENDS 20000

static struct sfs_keys *keys;
static unsigned char *model, *buf;
static uint64_t msize;
/* After append i: backing end and plaintext size (ends[0] = empty log). */
static uint64_t ends[MAX_APPENDS + 1], sizes[MAX_APPENDS + 1];
static int nappends;
static char tmpdir[] = "/tmp/sfs-unit-eventlog-XXXXXX";
static int dirfd_;
static struct sfs_log l_shared;

static void new_log(struct sfs_log *l)
{
	struct sfs_attrs a = {S_IFREG | 0600, 0, 0, 0, 0};

	memset(l, 0, sizeof(*l));
	l->fd = openat(dirfd_, "log", O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(l->fd >= 0);
	memset(l->id, 0x42, sizeof(l->id));
	l->keys = keys;
	REQUIRE(sfs_log_create(l->fd, l->id, &a, keys) == 0);
	l->end = SFS_HDR_BYTES;
	msize = 0;
	nappends = 0;
	ends[0] = SFS_HDR_BYTES;
	sizes[0] = 0;
}

/* Random printable lines, @len bytes in all, ending with a newline. */
static void make_lines(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = below(40) == 0 ? '\n' : (unsigned char)('a' + below(26));
	p[len - 1] = '\n';
}

static uint64_t model_lines(uint64_t size)
{
	uint64_t k = 0;

	for (uint64_t i = 0; i < size; i++)
		k += model[i] == '\n';
	return k;
}

static void do_append(struct sfs_log *l, size_t len)
{
	REQUIRE(msize + len <= MODEL_MAX && nappends < MAX_APPENDS);
	make_lines(model + msize, len);
	CHECK_EQ(sfs_log_append(l, model + msize, len), 0);
	msize += len;
	nappends++;
	ends[nappends] = l->end;
	sizes[nappends] = msize;
	CHECK(l->size == msize);
}

/* Append one line of @len bytes (its newline included), as `echo ... >> events.jsonl` does. */
static void do_line(struct sfs_log *l, size_t len)
{
	REQUIRE(msize + len <= MODEL_MAX && nappends < MAX_APPENDS && len > 0);
	for (size_t i = 0; i + 1 < len; i++)
		model[msize + i] = (unsigned char)('a' + below(26));
	model[msize + len - 1] = '\n';
	CHECK_EQ(sfs_log_append(l, model + msize, len), 0);
	msize += len;
	nappends++;
	ends[nappends] = l->end;
	sizes[nappends] = msize;
}

static void check_read(struct sfs_log *l, uint64_t off, size_t len)
{
	size_t want = off >= msize ? 0 : (len < msize - off ? len : (size_t)(msize - off));
	ssize_t n = sfs_log_read(l, buf, len, off);

	CHECK_EQ(n, want);
	if (n == (ssize_t)want)
		CHECK_MEM(buf, model + off, want);
}

/* A fresh load of the file agrees with the writer's state and the model. */
static void check_load(struct sfs_log *l)
{
	struct sfs_log m = {.fd = l->fd, .keys = keys};
	struct stat st;

	memcpy(m.id, l->id, sizeof(m.id));
	CHECK_EQ(sfs_log_load(&m), 0);
	CHECK(m.size == msize && m.end == l->end);
	CHECK(m.lines == model_lines(msize) && m.lines == l->lines);
	CHECK(fstat(l->fd, &st) == 0 && (uint64_t)st.st_size == l->end);
}

static void test_arithmetic(void)
{
	uint64_t f1 = sfs_fmt_frame_offset(1);

	CHECK_EQ(SFS_REC_OVERHEAD, 60);
	CHECK_EQ(SFS_REC_MAX, 4036);
	CHECK_EQ(f1, 80 + 4096);
	CHECK_EQ(sfs_fmt_record_pos(80), 80);
	CHECK_EQ(sfs_fmt_record_room(80), 4036);
	CHECK_EQ(sfs_fmt_record_pos(f1 - 61), f1 - 61); /* room for 1 byte */
	CHECK_EQ(sfs_fmt_record_room(f1 - 61), 1);
	CHECK_EQ(sfs_fmt_record_pos(f1 - 60), f1); /* too small: next frame */
	CHECK_EQ(sfs_fmt_record_pos(f1 - 1), f1);
	CHECK_EQ(sfs_fmt_record_pos(f1), f1);
}

/*
 * A record made by this version, kept as bytes: every later version must
 * open it (the format is a promise). Master key 0x00..0x1f, file id 0x42 x16,
 * record {len 14, END, offset 4096, lines 7}, payload "{\"type\":\"x\"}\n" + 'A'.
 */
static const char vector_hex[] = "0e0001000010000000000000070000000000000073b4fc4238d2417d4212d163"
				 "f8f2994e9da46d8caeca05f17918e05f6f69cdc4826ca2250c460e4e5f1f23fc"
				 "ebefb6a3a1dfd8f8c851";

static void test_vector(void)
{
	unsigned char rec[SFS_REC_OVERHEAD + 14], out[14], id[SFS_ID_BYTES];
	const char payload[] = "{\"type\":\"x\"}\nA";
	struct sfs_rec r = {14, SFS_REC_END, 4096, 7}, got;
	size_t len = 0;

	memset(id, 0x42, sizeof(id));
	if (getenv("SFS_PRINT_VECTOR")) {
		char hex[2 * sizeof(rec) + 1];

		sfs_fmt_record_seal(rec, &r, (const unsigned char *)payload, id, keys);
		printf("%s\n", sodium_bin2hex(hex, sizeof(hex), rec, sizeof(rec)));
	}
	REQUIRE(sodium_hex2bin(rec, sizeof(rec), vector_hex, strlen(vector_hex), NULL, &len,
			       NULL) == 0 &&
		len == sizeof(rec));
	CHECK_EQ(sfs_fmt_record_parse(&got, rec, 80), 0);
	CHECK(got.len == 14 && got.flags == SFS_REC_END && got.offset == 4096 && got.lines == 7);
	CHECK_EQ(sfs_fmt_record_open(out, &got, rec, id, keys), 0);
	CHECK_MEM(out, payload, 14);
	/* Any changed byte, header included, fails (a changed length would read another span). */
	for (size_t i = 0; i < sizeof(rec); i++) {
		rec[i] ^= 0x01;
		if (sfs_fmt_record_parse(&got, rec, 80) != 0)
			; /* refused before any crypto: flags, lines > offset */
		else if (got.len == 14)
			CHECK_EQ(sfs_fmt_record_open(out, &got, rec, id, keys), -EBADMSG);
		else
			CHECK(i < 2); /* only the length bytes change the span */
		rec[i] ^= 0x01;
	}
	/* Bound to its file. */
	id[0] ^= 1;
	CHECK_EQ(sfs_fmt_record_parse(&got, rec, 80), 0);
	CHECK_EQ(sfs_fmt_record_open(out, &got, rec, id, keys), -EBADMSG);
	/* Headers no writer makes are refused before any crypto. */
	CHECK_EQ(sfs_fmt_record_parse(&got, rec, 80 + 4096 - 30), -EBADMSG);
	rec[0] = 0;
	rec[1] = 0;
	CHECK_EQ(sfs_fmt_record_parse(&got, rec, 80), -EBADMSG);
}

/* Random appends, each checked by a fresh load; random reads along the way. */
static void test_model(void)
{
	struct sfs_log l;

	new_log(&l);
	check_load(&l);
	CHECK_EQ(sfs_log_read(&l, buf, 100, 0), 0);
	for (int step = 0; step < 1500; step++) {
		uint64_t r = below(100);
		int before = check_failures;

		if (r < 80)
			do_append(&l, 1 + below(400));
		else if (step % 300 != 299)
			do_append(&l, 1 + below(9000));
		else
			do_append(&l, (1u << 20) + below(600000));
		check_load(&l);
		for (int i = 0; i < 3; i++)
			check_read(&l, below(msize + 10), (size_t)below(20000));
		check_read(&l, msize - 1 - below(msize < 300 ? msize : 300), 1000);
		if (check_failures != before) {
			fprintf(stderr, "model: after step %d, size %llu\n", step,
				(unsigned long long)msize);
			exit(check_done());
		}
	}
	check_read(&l, 0, (size_t)msize + 100);
	/* One record per frame at most wastes a frame's unusable tail: < 2% here. */
	CHECK((double)(l.end - msize) / (double)msize < 0.25);
	close(l.fd);
}

/* A copy of the log file cut to @cut bytes, as a crash could leave it. */
static int cut_copy(int src, uint64_t cut)
{
	int fd = openat(dirfd_, "cut", O_RDWR | O_CREAT | O_TRUNC, 0600);
	loff_t in = 0, out = 0;

	REQUIRE(fd >= 0);
	while (in < (loff_t)cut)
		REQUIRE(copy_file_range(src, &in, fd, &out, (size_t)(cut - (uint64_t)in), 0) > 0);
	return fd;
}

/* Kept file "kept": the header of log @src, u64 @from, then its bytes [@from, @to). */
static void check_kept(int src, uint64_t from, uint64_t to)
{
	int fd = openat(dirfd_, "kept", O_RDONLY);
	size_t n = (size_t)(to - from) + SFS_LOG_KEPT_HDR;
	unsigned char *got = malloc(n + 1), *want = malloc(n);
	struct stat st;

	REQUIRE(fd >= 0 && got && want);
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_EQ(pread(fd, got, n + 1, 0), n);
	REQUIRE(pread(src, want, SFS_HDR_BYTES, 0) == SFS_HDR_BYTES);
	sfs_put_le64(want + SFS_HDR_BYTES, from);
	REQUIRE(pread(src, want + SFS_LOG_KEPT_HDR, (size_t)(to - from), (off_t)from) ==
		(ssize_t)(to - from));
	CHECK_MEM(got, want, n);
	close(fd);
	free(got);
	free(want);
}

/* The last append that ends at or before backing offset @cut. */
static int last_before(uint64_t cut)
{
	int i = nappends;

	while (i > 0 && ends[i] > cut)
		i--;
	return i;
}

static void test_crash_cuts(void)
{
	struct sfs_log l;
	uint64_t first;

	new_log(&l);
	for (int i = 0; i < 40; i++)
		do_append(&l, 1 + below(300));
	first = l.end;
	do_append(&l, 3 * SFS_REC_MAX + 77); /* four records over four frames */
	for (int i = 0; i < 30; i++)
		do_append(&l, 1 + below(i % 5 == 0 ? 6000 : 200));
	for (int t = 0; t < 400; t++) {
		/* Every byte of the big append's records, then random points. */
		uint64_t cut =
			t < 150 ? first + below(l.end - first) : SFS_HDR_BYTES + below(l.end);
		struct sfs_log c = {.keys = keys};
		struct sfs_log_repair rep;
		int k = last_before(cut);
		int before = check_failures;

		if (cut > l.end)
			cut = l.end;
		c.fd = cut_copy(l.fd, cut);
		memcpy(c.id, l.id, sizeof(c.id));
		if (cut != ends[k])
			CHECK_EQ(sfs_log_load(&c), -EBADMSG); /* torn: not loadable as is */
		CHECK_EQ(sfs_log_repair(&c, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
		CHECK(c.size == sizes[k] && c.end == ends[k]);
		CHECK(rep.dropped == cut - ends[k] && rep.kept == (rep.dropped > 0));
		CHECK(rep.damage.count == 0 && !rep.hole && !rep.whole);
		CHECK(c.lines == model_lines(sizes[k]) && rep.lines == c.lines);
		/* What was cut is kept, whole, in the documented form. */
		if (rep.kept)
			check_kept(l.fd, ends[k], cut);
		else
			CHECK(faccessat(dirfd_, "kept", F_OK, 0) < 0);
		unlinkat(dirfd_, "kept", 0);
		{
			uint64_t keep = msize;

			msize = sizes[k];
			check_read(&c, 0, (size_t)msize + 10);
			msize = keep;
		}
		/* The mended log takes new appends. */
		CHECK_EQ(sfs_log_append(&c, "{}\n", 3), 0);
		CHECK(c.size == sizes[k] + 3);
		CHECK_EQ(sfs_log_read(&c, buf, 3, sizes[k]), 3);
		CHECK_MEM(buf, "{}\n", 3);
		close(c.fd);
		if (check_failures != before) {
			fprintf(stderr, "crash cut at %llu (append %d ends at %llu)\n",
				(unsigned long long)cut, k, (unsigned long long)ends[k]);
			exit(check_done());
		}
	}
	close(l.fd);
}

/* A power loss can leave a hole (zeros) in writes never fsynced, good bytes after it. */
static void test_hole(void)
{
	static unsigned char zeros[SFS_LOG_FRAME];
	struct sfs_log l;
	struct sfs_log_repair rep;
	struct stat st;
	uint64_t hole;
	int k;

	new_log(&l);
	for (int i = 0; i < 200; i++)
		do_append(&l, 1 + below(500));
	k = nappends - 20;
	hole = ends[k] + 10;
	REQUIRE(pwrite(l.fd, zeros, 1000, (off_t)hole) == 1000);
	CHECK_EQ(sfs_log_repair(&l, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
	CHECK(l.size == sizes[k] && l.end == ends[k]);
	CHECK(rep.kept && rep.hole && rep.bad_at == ends[k] && rep.damage.count == 0);
	CHECK(fstatat(dirfd_, "kept", &st, 0) == 0 &&
	      (uint64_t)st.st_size == SFS_LOG_KEPT_HDR + ends[nappends] - ends[k]);
	msize = sizes[k];
	check_read(&l, 0, (size_t)msize);
	unlinkat(dirfd_, "kept", 0);
	close(l.fd);
}

/* Backing offset and header of record @n (0-based) of log @fd, walking the clear headers. */
static uint64_t nth_record(int fd, int n, struct sfs_rec *r)
{
	uint64_t pos = SFS_HDR_BYTES;

	for (int i = 0;; i++) {
		unsigned char h[SFS_REC_HDR];

		pos = sfs_fmt_record_pos(pos);
		REQUIRE(pread(fd, h, sizeof(h), (off_t)pos) == sizeof(h));
		REQUIRE(sfs_fmt_record_parse(r, h, pos) == 0);
		if (i == n)
			return pos;
		pos += SFS_REC_OVERHEAD + r->len;
	}
}

/*
 * The last line a damaged span [@off, @end) is reported to touch: the last
 * that ends in it (newlines before @end), at least the one @off is in.
 */
static uint64_t lines_to(uint64_t off, uint64_t end)
{
	uint64_t first = model_lines(off) + 1, last = model_lines(end);

	return last > first ? last : first;
}

static void flip(int fd, uint64_t pos)
{
	unsigned char b;

	REQUIRE(pread(fd, &b, 1, (off_t)pos) == 1);
	b ^= 0x01;
	REQUIRE(pwrite(fd, &b, 1, (off_t)pos) == 1);
}

/*
 * Read the log line by line (and the last six lines in one read, as tail
 * does): a line reads as the model's bytes, or fails with -EBADMSG exactly
 * when it shares a byte with plaintext [@bad_off, @bad_end). Then reads of
 * random spans: right bytes, or -EBADMSG exactly when they touch it.
 * Lines more than @near bytes from the damage are skipped unless @near is 0.
 */
static void check_lines(struct sfs_log *l, uint64_t bad_off, uint64_t bad_end, uint64_t near)
{
	uint64_t a = 0, nl = 0, six = msize;
	ssize_t n;

	for (uint64_t b = 0; b < msize; b++) {
		if (model[b] != '\n')
			continue;
		if (near && (b + near < bad_off || a > bad_end + near)) {
			a = b + 1;
			nl++;
			continue;
		}
		n = sfs_log_read(l, buf, (size_t)(b + 1 - a), a);
		if (b + 1 > bad_off && a < bad_end) {
			CHECK_EQ(n, -EBADMSG);
		} else {
			CHECK_EQ(n, b + 1 - a);
			if (n == (ssize_t)(b + 1 - a))
				CHECK_MEM(buf, model + a, (size_t)n);
		}
		a = b + 1;
		nl++;
	}
	CHECK(l->lines == nl && l->size == msize);
	/* The last six lines, in one read. */
	for (int k = 0; six > 0 && k < 7;)
		if (model[--six] == '\n' && ++k == 7)
			six++;
	if (six >= bad_end) {
		n = sfs_log_read(l, buf, (size_t)(msize - six), six);
		CHECK_EQ(n, msize - six);
		if (n == (ssize_t)(msize - six))
			CHECK_MEM(buf, model + six, (size_t)n);
	}
	for (int i = 0; i < 200; i++) {
		uint64_t off = below(msize), len = 1 + below(3 * SFS_LOG_FRAME);

		if (len > msize - off)
			len = msize - off;
		n = sfs_log_read(l, buf, (size_t)len, off);
		if (off + len > bad_off && off < bad_end) {
			CHECK_EQ(n, -EBADMSG);
		} else {
			CHECK_EQ(n, len);
			if (n == (ssize_t)len)
				CHECK_MEM(buf, model + off, (size_t)len);
		}
	}
}

/*
 * After damage: repair cuts nothing and keeps nothing, reports the damaged
 * span (record @rec, plaintext [@off, @end), lines @line..@last), and the
 * log reads around it, takes appends and loads again with the right size
 * and count.
 */
static void check_damaged(struct sfs_log *l, uint64_t rec, uint64_t off, uint64_t end,
			  uint64_t line, uint64_t last, uint64_t near)
{
	struct sfs_log_repair rep;
	struct sfs_log_damage d;
	uint64_t bend = l->end;
	int before = check_failures;

	CHECK_EQ(sfs_log_repair(l, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
	CHECK(rep.dropped == 0 && !rep.kept && l->end == bend);
	CHECK(faccessat(dirfd_, "kept", F_OK, 0) < 0);
	CHECK_EQ(rep.damage.count, 1);
	CHECK_EQ(rep.damage.pos, rec);
	CHECK(rep.damage.known && rep.damage.bounded);
	CHECK_EQ(rep.damage.off, off);
	CHECK_EQ(rep.damage.end, end);
	CHECK_EQ(rep.damage.line, line);
	CHECK_EQ(rep.damage.last, last);
	CHECK(l->size == msize && l->lines == model_lines(msize));
	/* The spot is found again, on its own. */
	CHECK_EQ(sfs_log_check(l, rec, &d), 0);
	CHECK(d.count == 1 && d.pos == rec && d.off == off && d.end == end);
	check_lines(l, off, end, near);
	do_append(l, 1 + below(5000));
	check_load(l);
	check_lines(l, off, end, near);
	/* A frame two past it has nothing to report. */
	if ((l->end - 1 - SFS_HDR_BYTES) / SFS_LOG_FRAME >
	    (rec - SFS_HDR_BYTES) / SFS_LOG_FRAME + 1) {
		CHECK_EQ(sfs_log_check(l, l->end - 1, &d), 0);
		CHECK_EQ(d.count, 0);
	}
	if (check_failures != before) {
		fprintf(stderr, "damage at stored offset %llu (bytes %llu-%llu)\n",
			(unsigned long long)rec, (unsigned long long)off, (unsigned long long)end);
		exit(check_done());
	}
}

/* The case: ten lines appended one by one, a byte of the 4th record flipped. */
static void test_damage_last_frame(void)
{
	struct sfs_rec r;
	uint64_t pos;

	new_log(&l_shared);
	for (int i = 0; i < 10; i++)
		do_line(&l_shared, 20 + below(40));
	pos = nth_record(l_shared.fd, 3, &r);
	/* Every byte of it in turn: clear header, nonce, payload, tag. */
	for (uint64_t i = 0; i < SFS_REC_OVERHEAD + r.len; i++) {
		struct sfs_log l = {.fd = cut_copy(l_shared.fd, l_shared.end), .keys = keys};
		uint64_t keep = msize;
		int keepn = nappends;

		memcpy(l.id, l_shared.id, sizeof(l.id));
		REQUIRE(sfs_log_load(&l) == 0);
		flip(l.fd, pos + i);
		/* Loading is not stopped by it: the last record says size and count. */
		REQUIRE(sfs_log_load(&l) == 0 && l.size == msize && l.lines == 10);
		check_damaged(&l, pos, sizes[3], sizes[4], 4, 4, 0);
		close(l.fd);
		msize = keep;
		nappends = keepn;
	}
	close(l_shared.fd);
}

/* Damage in an earlier frame: 300 lines, one record of frame 2 flipped. */
static void test_damage_earlier_frame(void)
{
	struct sfs_log l;
	struct sfs_rec r;
	uint64_t pos, off;
	int k = 0;

	new_log(&l);
	for (int i = 0; i < 300; i++)
		do_line(&l, 30 + below(150));
	REQUIRE(l.end > sfs_fmt_frame_offset(8));
	while (nth_record(l.fd, k, &r) < sfs_fmt_frame_offset(2) + 1000)
		k++;
	pos = nth_record(l.fd, k, &r);
	off = r.offset;
	flip(l.fd, pos + SFS_REC_HDR + SFS_SEAL_OVERHEAD / 2 + r.len / 2);
	check_damaged(&l, pos, off, off + r.len, model_lines(off) + 1, lines_to(off, off + r.len),
		      0);
	close(l.fd);
}

/*
 * The clear header of a frame's first record: a log of about 1,600 frames,
 * a byte of frame 786's first record header changed (its length, flags,
 * offset or line count), inside unlock's window.
 */
static void test_damage_frame_header(void)
{
	static const int bytes[] = {0, 2, 5, 11, 13};
	struct sfs_log l;

	new_log(&l);
	while (l.end < sfs_fmt_frame_offset(1600))
		do_append(&l, 200 + below(3800));
	for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++) {
		struct sfs_log c = {.fd = cut_copy(l.fd, l.end), .keys = keys};
		uint64_t pos = sfs_fmt_frame_offset(786), keep = msize;
		int keepn = nappends;
		unsigned char h[SFS_REC_HDR];
		struct sfs_rec r;

		memcpy(c.id, l.id, sizeof(c.id));
		REQUIRE(pread(c.fd, h, sizeof(h), (off_t)pos) == sizeof(h));
		REQUIRE(sfs_fmt_record_parse(&r, h, pos) == 0);
		REQUIRE(sfs_log_load(&c) == 0);
		flip(c.fd, pos + (uint64_t)bytes[b]);
		/* Every line once; around the damage for the other bytes. */
		check_damaged(&c, pos, r.offset, r.offset + r.len, model_lines(r.offset) + 1,
			      lines_to(r.offset, r.offset + r.len), b == 0 ? 0 : 64 * 4096);
		close(c.fd);
		msize = keep;
		nappends = keepn;
	}
	close(l.fd);
}

/*
 * Damage and a torn tail together: the damage stays, the tail (and only
 * it) is cut and kept.
 */
static void test_damage_and_torn_tail(void)
{
	struct sfs_log l, c = {.keys = keys};
	struct sfs_log_repair rep;
	struct sfs_rec r;
	uint64_t pos, cut;
	int k;

	new_log(&l);
	for (int i = 0; i < 60; i++)
		do_append(&l, 10 + below(300));
	k = nappends;
	do_append(&l, 2 * SFS_REC_MAX);
	cut = ends[k] + SFS_REC_MAX + 100; /* inside the big append's second record */
	pos = nth_record(l.fd, 7, &r);
	c.fd = cut_copy(l.fd, cut);
	memcpy(c.id, l.id, sizeof(c.id));
	flip(c.fd, pos + 30);
	CHECK_EQ(sfs_log_load(&c), -EBADMSG);
	CHECK_EQ(sfs_log_repair(&c, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
	CHECK(rep.dropped == cut - ends[k] && rep.kept && !rep.hole && rep.cut_at == ends[k]);
	CHECK(rep.damage.count == 1 && rep.damage.pos == pos && rep.damage.off == r.offset);
	CHECK(c.end == ends[k] && c.size == sizes[k]);
	check_kept(l.fd, ends[k], cut);
	unlinkat(dirfd_, "kept", 0);
	msize = sizes[k];
	nappends = k;
	check_lines(&c, r.offset, r.offset + r.len, 0);
	close(c.fd);
	close(l.fd);
}

/*
 * A flipped byte in the log's last record: nothing good follows it, so it is
 * cut (and kept) like a torn tail, but said to be whole records that fail.
 */
static void test_damage_last_record(void)
{
	struct sfs_log l;
	struct sfs_log_repair rep;
	struct sfs_rec r;
	uint64_t pos;

	new_log(&l);
	for (int i = 0; i < 10; i++)
		do_line(&l, 20 + below(40));
	pos = nth_record(l.fd, 9, &r);
	flip(l.fd, pos + SFS_REC_HDR + SFS_SEAL_OVERHEAD);
	CHECK_EQ(sfs_log_repair(&l, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
	CHECK(rep.dropped == ends[10] - ends[9] && rep.kept && rep.whole && !rep.hole);
	CHECK(rep.damage.count == 0 && l.size == sizes[9] && l.lines == 9);
	unlinkat(dirfd_, "kept", 0);
	close(l.fd);
}

/* Tampering far from the end: reads fail, never return wrong bytes; nothing is cut. */
static void test_tamper(void)
{
	unsigned char frame_a[SFS_LOG_FRAME], frame_b[SFS_LOG_FRAME];
	struct sfs_log l;
	struct sfs_log_repair rep;
	uint64_t end;
	ssize_t n;

	new_log(&l);
	while (msize < (6u << 20))
		do_append(&l, 1 + below(3000));
	end = l.end;
	/* A flipped byte in frame 10's payload. */
	REQUIRE(pread(l.fd, frame_a, 1, (off_t)sfs_fmt_frame_offset(10) + 100) == 1);
	frame_a[0] ^= 0x20;
	REQUIRE(pwrite(l.fd, frame_a, 1, (off_t)sfs_fmt_frame_offset(10) + 100) == 1);
	CHECK_EQ(sfs_log_repair(&l, &rep, dirfd_, (char[SFS_LOG_KEPT_NAME]){"kept"}), 0);
	CHECK(rep.dropped == 0 && l.end == end && l.size == msize);
	n = sfs_log_read(&l, buf, 3 * SFS_LOG_FRAME, 9 * SFS_REC_MAX);
	CHECK_EQ(n, -EBADMSG);
	check_read(&l, 20 * SFS_LOG_FRAME, 50000);
	/* Frames 30 and 31 swapped: reads there fail or return the model's bytes. */
	REQUIRE(pread(l.fd, frame_a, sizeof(frame_a), (off_t)sfs_fmt_frame_offset(30)) ==
		sizeof(frame_a));
	REQUIRE(pread(l.fd, frame_b, sizeof(frame_b), (off_t)sfs_fmt_frame_offset(31)) ==
		sizeof(frame_b));
	REQUIRE(pwrite(l.fd, frame_b, sizeof(frame_b), (off_t)sfs_fmt_frame_offset(30)) ==
		sizeof(frame_b));
	REQUIRE(pwrite(l.fd, frame_a, sizeof(frame_a), (off_t)sfs_fmt_frame_offset(31)) ==
		sizeof(frame_a));
	for (uint64_t off = 28 * SFS_REC_MAX; off < 34 * SFS_REC_MAX; off += 333) {
		n = sfs_log_read(&l, buf, 2000, off);
		if (n != -EBADMSG) {
			CHECK_EQ(n, 2000);
			CHECK_MEM(buf, model + off, 2000);
		}
	}
	CHECK_EQ(sfs_log_read(&l, buf, 4 * SFS_LOG_FRAME, 29 * SFS_REC_MAX), -EBADMSG);
	/* Another file's id: nothing opens. */
	l.id[3] ^= 1;
	CHECK_EQ(sfs_log_read(&l, buf, 100, 0), -EBADMSG);
	CHECK_EQ(sfs_log_load(&l), -EBADMSG);
	close(l.fd);
}

/*
 * The log is one object its appends move in place, and readers that share
 * it (sfs_log_pread) write nothing into it: a failing record's offset goes
 * to the reader. sfs_log_close keeps the state.
 */
static void test_shared_reads(void)
{
	struct sfs_log l, before;
	const struct sfs_log *shared = &l;
	uint64_t bad = 0, end;
	unsigned char c;

	new_log(&l);
	for (int i = 0; i < 40; i++)
		do_append(&l, 1 + below(3000));
	CHECK(l.end > SFS_HDR_BYTES && l.size == msize && l.lines == model_lines(msize));
	CHECK_EQ(atomic_load(&l.size), msize);
	memcpy(&before, &l, sizeof(l));
	CHECK_EQ(sfs_log_pread(shared, buf, 5000, 1000, &bad), 5000);
	CHECK_MEM(buf, model + 1000, 5000);
	CHECK_MEM(&l, &before, sizeof(l));
	/* A flipped byte in the first record: the reader learns where, the log does not change. */
	REQUIRE(pread(l.fd, &c, 1, SFS_HDR_BYTES + SFS_REC_HDR + 1) == 1);
	c ^= 0x20;
	REQUIRE(pwrite(l.fd, &c, 1, SFS_HDR_BYTES + SFS_REC_HDR + 1) == 1);
	CHECK_EQ(sfs_log_pread(shared, buf, 10, 0, &bad), -EBADMSG);
	CHECK(bad >= SFS_HDR_BYTES && bad < l.end);
	CHECK_MEM(&l, &before, sizeof(l));
	CHECK_EQ(sfs_log_read(&l, buf, 10, 0), -EBADMSG);
	CHECK_EQ(l.bad, bad);
	end = l.end;
	sfs_log_close(&l);
	CHECK(l.fd == -1 && l.end == end && l.size == msize);
	sfs_log_close(&l); /* twice is harmless */
	CHECK_EQ(l.fd, -1);
}

int main(void)
{
	unsigned char master[SFS_KEY_BYTES];

	check_rng = 0x10910910feedull;
	REQUIRE(sfs_crypto_init() == 0);
	for (int i = 0; i < SFS_KEY_BYTES; i++)
		master[i] = (unsigned char)i;
	keys = sfs_keys_new(master, SFS_CIPHER_XCHACHA);
	model = malloc(MODEL_MAX);
	buf = malloc(MODEL_MAX + 4096);
	REQUIRE(keys && model && buf && mkdtemp(tmpdir));
	dirfd_ = open(tmpdir, O_PATH | O_DIRECTORY);
	REQUIRE(dirfd_ >= 0);
	test_arithmetic();
	test_vector();
	test_model();
	test_crash_cuts();
	test_hole();
	test_damage_last_frame();
	test_damage_earlier_frame();
	test_damage_frame_header();
	test_damage_and_torn_tail();
	test_damage_last_record();
	test_tamper();
	test_shared_reads();
	unlinkat(dirfd_, "log", 0);
	unlinkat(dirfd_, "cut", 0);
	rmdir(tmpdir);
	sfs_keys_free(keys);
	free(model);
	free(buf);
	return check_done();
}
