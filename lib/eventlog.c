/*
 * eventlog.c - the append-only record log; see eventlog.h and
 * doc/format.md ("Event log").
 *
 * Records chain: each names the plaintext offset and line count it starts
 * at, both authenticated, so a reader that starts at any frame can check
 * every record it opens against the one before. Clear headers steer the
 * search; only opened (authenticated) records decide what is returned.
 */
#include "eventlog.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Backing bytes read at a time when walking records. */
#define CHUNK (64 * SFS_LOG_FRAME)

/* A read window over the backing file. */
struct cursor {
	const struct sfs_log *l;
	unsigned char *buf; /* cap bytes */
	size_t cap;         /* at least one frame, at most CHUNK */
	uint64_t start;     /* backing offset of buf[0] */
	size_t len;         /* valid bytes in buf */
	uint64_t limit;     /* nothing at or past it is read */
};

/* Point @p at @n bytes at backing @pos: 0, -EBADMSG if the file ends first, or -errno. */
static int cur_get(struct cursor *c, uint64_t pos, size_t n, const unsigned char **p)
{
	if (pos + n > c->limit)
		return -EBADMSG;
	if (pos < c->start || pos + n > c->start + c->len) {
		size_t want = c->limit - pos < c->cap ? (size_t)(c->limit - pos) : c->cap;
		ssize_t got = sfs_pread_all(c->l->fd, c->buf, want, pos);

		if (got < 0)
			return (int)got;
		c->start = pos;
		c->len = (size_t)got;
		if (n > (size_t)got)
			return -EBADMSG;
	}
	*p = c->buf + (pos - c->start);
	return 0;
}

static uint64_t count_lines(const unsigned char *p, size_t n)
{
	uint64_t k = 0;

	for (const unsigned char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
		k++;
	return k;
}

static uint64_t frame_of(uint64_t pos)
{
	return (pos - SFS_HDR_BYTES) / SFS_LOG_FRAME;
}

int sfs_log_create(int fd, const unsigned char id[SFS_ID_BYTES], const struct sfs_attrs *attrs,
		   const struct sfs_keys *keys)
{
	unsigned char hdr[SFS_HDR_BYTES];
	struct sfs_attrs a = *attrs;

	a.kind = SFS_KIND_LOG;
	sfs_fmt_header_pack(hdr, SFS_MAGIC_FILE, id, &a, keys);
	return sfs_pwrite_all(fd, hdr, sizeof(hdr), 0);
}

/* Where a walk over records stopped, and the last complete append it saw. */
struct walk {
	uint64_t pos;     /* the first record that failed, or the limit */
	bool bad;         /* stopped at a failing record */
	uint64_t end_at;  /* backing end of the last END record (0: none) */
	uint64_t size;    /* plaintext size after that record */
	uint64_t lines;   /* lines after that record */
};

/*
 * Open every record from frame start @from up to @limit, each checked
 * against the one before; stop at the first that fails.
 */
static int walk(struct sfs_log *l, uint64_t from, uint64_t limit, struct walk *w)
{
	struct cursor c = {.l = l, .limit = limit, .cap = CHUNK};
	unsigned char *plain = malloc(SFS_REC_MAX);
	uint64_t pos = from, expect = 0, lines = 0;
	bool first = true;
	int rc = 0;

	c.buf = malloc(CHUNK);
	memset(w, 0, sizeof(*w));
	if (!plain || !c.buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		const unsigned char *p;
		struct sfs_rec r;

		pos = sfs_fmt_record_pos(pos);
		if (pos >= limit)
			break;
		rc = cur_get(&c, pos, SFS_REC_HDR, &p);
		if (rc == 0 && (sfs_fmt_record_parse(&r, p, pos) != 0 ||
				(!first && (r.offset != expect || r.lines != lines))))
			rc = -EBADMSG;
		if (rc == 0)
			rc = cur_get(&c, pos, SFS_REC_OVERHEAD + r.len, &p);
		if (rc == 0 && sfs_fmt_record_open(plain, &r, p, l->id, l->keys) != 0)
			rc = -EBADMSG;
		if (rc == -EBADMSG) {
			w->bad = true;
			rc = 0;
			break;
		}
		if (rc < 0)
			break;
		first = false;
		expect = r.offset + r.len;
		lines = r.lines + count_lines(plain, r.len);
		pos += SFS_REC_OVERHEAD + r.len;
		if (r.flags & SFS_REC_END) {
			w->end_at = pos;
			w->size = expect;
			w->lines = lines;
		}
	}
	w->pos = pos < limit ? pos : limit;
out:
	if (plain)
		sodium_memzero(plain, SFS_REC_MAX);
	free(plain);
	free(c.buf);
	return rc;
}

static int backing_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	*size = (uint64_t)st.st_size;
	return *size < SFS_HDR_BYTES ? -EBADMSG : 0;
}

int sfs_log_load(struct sfs_log *l)
{
	uint64_t bsize = 0;
	struct walk w;
	int rc = backing_size(l->fd, &bsize);

	if (rc < 0)
		return rc;
	if (bsize == SFS_HDR_BYTES) {
		l->end = SFS_HDR_BYTES;
		l->size = l->lines = 0;
		return 0;
	}
	rc = walk(l, sfs_fmt_frame_offset(frame_of(bsize - 1)), bsize, &w);
	if (rc < 0)
		return rc;
	if (w.bad || w.end_at != bsize) {
		l->bad = w.pos;
		return -EBADMSG;
	}
	l->end = bsize;
	l->size = w.size;
	l->lines = w.lines;
	return 0;
}

/* Does any frame starting after @pos and before @limit begin with a good record? */
static bool good_frame_after(struct sfs_log *l, uint64_t pos, uint64_t limit)
{
	for (uint64_t k = frame_of(pos) + 1; sfs_fmt_frame_offset(k) < limit; k++) {
		struct walk w;
		uint64_t f = sfs_fmt_frame_offset(k);

		/* A walk to the frame's end opens its first record at least. */
		if (walk(l, f, limit < f + SFS_LOG_FRAME ? limit : f + SFS_LOG_FRAME, &w) == 0 &&
		    w.pos > f)
			return true;
	}
	return false;
}

/* Copy backing bytes [@from, @to) of the log to a new file @name in @dirfd. */
static int keep_copy(struct sfs_log *l, uint64_t from, uint64_t to, int dirfd, const char *name)
{
	unsigned char *buf = malloc(CHUNK);
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = fd < 0 ? sfs_neg_errno() : buf ? 0 : -ENOMEM;

	for (uint64_t pos = from; rc == 0 && pos < to;) {
		size_t want = to - pos < CHUNK ? (size_t)(to - pos) : CHUNK;
		ssize_t got = sfs_pread_all(l->fd, buf, want, pos);

		rc = got < 0 ? (int)got : got == 0 ? -EIO : 0;
		if (rc == 0)
			rc = sfs_pwrite_all(fd, buf, (size_t)got, pos - from);
		pos += got > 0 ? (uint64_t)got : 0;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = sfs_fsync_dirfd(dirfd);
	else if (fd >= 0)
		unlinkat(dirfd, name, 0);
	free(buf);
	return rc;
}

int sfs_log_repair(struct sfs_log *l, struct sfs_log_repair *rep, int keep_dirfd,
		   const char *keep_name)
{
	uint64_t bsize = 0, from, cut;
	struct walk w;
	int rc = backing_size(l->fd, &bsize);

	memset(rep, 0, sizeof(*rep));
	if (rc < 0)
		return rc;
	if (bsize == SFS_HDR_BYTES)
		return sfs_log_load(l);
	from = bsize - SFS_HDR_BYTES > SFS_LOG_CHECK_WINDOW ? bsize - SFS_LOG_CHECK_WINDOW
							     : SFS_HDR_BYTES;
	from = sfs_fmt_frame_offset(frame_of(from));
	rc = walk(l, from, bsize, &w);
	if (rc < 0)
		return rc;
	if (!w.bad && w.end_at == bsize)
		return sfs_log_load(l);
	if (w.bad)
		rep->bad_at = w.pos;
	if (w.end_at) {
		cut = w.end_at;
	} else if (from == SFS_HDR_BYTES) {
		cut = SFS_HDR_BYTES; /* the log's very first append was torn */
	} else {
		/* No complete append in the whole window: not what a crash leaves. */
		l->bad = w.pos;
		return -EBADMSG;
	}
	if (w.bad && good_frame_after(l, w.pos, bsize)) {
		rc = keep_copy(l, cut, bsize, keep_dirfd, keep_name);
		if (rc < 0)
			return rc;
		rep->kept = true;
	}
	if (ftruncate(l->fd, (off_t)cut) < 0 || fsync(l->fd) < 0)
		return sfs_neg_errno();
	rep->dropped = bsize - cut;
	rep->size = w.end_at ? w.size : 0;
	return sfs_log_load(l);
}

/* Index of the last frame whose first record starts at or before plaintext @off. */
static int find_frame(struct sfs_log *l, uint64_t off, uint64_t *frame)
{
	uint64_t lo = 0, hi = frame_of(l->end - 1);

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2, pos = sfs_fmt_frame_offset(mid);
		unsigned char h[SFS_REC_HDR];
		struct sfs_rec r;
		ssize_t n = sfs_pread_all(l->fd, h, sizeof(h), pos);

		if (n < 0)
			return (int)n;
		if ((size_t)n < sizeof(h) || sfs_fmt_record_parse(&r, h, pos) != 0) {
			l->bad = pos;
			return -EBADMSG;
		}
		if (r.offset <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	*frame = lo;
	return 0;
}

ssize_t sfs_log_read(struct sfs_log *l, void *buf, size_t len, uint64_t off)
{
	struct cursor c = {.l = l, .limit = l->end};
	unsigned char *plain = NULL;
	uint64_t frame = 0, pos, want_end, expect = 0;
	size_t done = 0;
	bool first = true;
	int rc;

	if (off >= l->size || len == 0)
		return 0;
	if (len > l->size - off)
		len = (size_t)(l->size - off);
	want_end = off + len;
	rc = find_frame(l, off, &frame);
	if (rc < 0)
		return rc;
	/* Sized to the request: the frame before @off and the records up to its end. */
	c.cap = len + 2 * SFS_LOG_FRAME < CHUNK ? len + 2 * SFS_LOG_FRAME : CHUNK;
	plain = malloc(SFS_REC_MAX);
	c.buf = malloc(c.cap);
	if (!plain || !c.buf) {
		rc = -ENOMEM;
		goto out;
	}
	pos = sfs_fmt_frame_offset(frame);
	while (done < len) {
		const unsigned char *p;
		struct sfs_rec r;

		pos = sfs_fmt_record_pos(pos);
		rc = cur_get(&c, pos, SFS_REC_HDR, &p);
		if (rc == 0 && (sfs_fmt_record_parse(&r, p, pos) != 0 ||
				(first ? r.offset > off : r.offset != expect)))
			rc = -EBADMSG;
		if (rc < 0)
			break;
		expect = r.offset + r.len;
		first = false;
		if (expect > off) {
			uint64_t from = off + done;
			size_t n = (size_t)((expect < want_end ? expect : want_end) - from);

			rc = cur_get(&c, pos, SFS_REC_OVERHEAD + r.len, &p);
			if (rc == 0 && sfs_fmt_record_open(plain, &r, p, l->id, l->keys) != 0)
				rc = -EBADMSG;
			if (rc < 0)
				break;
			memcpy((unsigned char *)buf + done, plain + (from - r.offset), n);
			done += n;
		}
		pos += SFS_REC_OVERHEAD + r.len;
	}
	if (rc == -EBADMSG)
		l->bad = pos;
out:
	if (plain)
		sodium_memzero(plain, SFS_REC_MAX);
	free(plain);
	free(c.buf);
	return rc < 0 ? rc : (ssize_t)done;
}

int sfs_log_append(struct sfs_log *l, const void *buf, size_t len)
{
	const unsigned char *in = buf;
	uint64_t pos = l->end, lines = l->lines, total;
	unsigned char *out;
	size_t done = 0;
	int rc;

	if (len == 0)
		return 0;
	/* Plan: how many backing bytes these records take, gaps included. */
	while (done < len) {
		size_t n;

		pos = sfs_fmt_record_pos(pos);
		n = sfs_fmt_record_room(pos);
		if (n > len - done)
			n = len - done;
		pos += SFS_REC_OVERHEAD + n;
		done += n;
	}
	total = pos - l->end;
	out = calloc(1, (size_t)total);
	if (!out)
		return -ENOMEM;
	for (pos = l->end, done = 0; done < len;) {
		struct sfs_rec r = {.offset = l->size + done, .lines = lines};

		pos = sfs_fmt_record_pos(pos);
		r.len = (uint16_t)sfs_fmt_record_room(pos);
		if (r.len > len - done)
			r.len = (uint16_t)(len - done);
		if (done + r.len == len)
			r.flags = SFS_REC_END;
		sfs_fmt_record_seal(out + (pos - l->end), &r, in + done, l->id, l->keys);
		lines += count_lines(in + done, r.len);
		pos += SFS_REC_OVERHEAD + r.len;
		done += r.len;
	}
	/*
	 * Reserve first: a full disk fails here, before anything is written.
	 * Only needed when the records reach past the 4 KiB block the log's
	 * last byte is in (most appends do not, and the block is written); a
	 * write that fails half-way all the same is cut off below.
	 */
	if ((l->end + total - 1) / 4096 != (l->end - 1) / 4096 &&
	    fallocate(l->fd, FALLOC_FL_KEEP_SIZE, (off_t)l->end, (off_t)total) < 0 &&
	    errno != EOPNOTSUPP)
		rc = sfs_neg_errno();
	else
		rc = sfs_pwrite_all(l->fd, out, (size_t)total, l->end);
	free(out);
	if (rc < 0) {
		/* Whatever part of it landed is no append: cut it off again. */
		if (ftruncate(l->fd, (off_t)l->end) < 0)
			l->bad = l->end;
		return rc;
	}
	l->end += total;
	l->size += len;
	l->lines = lines;
	return 0;
}
