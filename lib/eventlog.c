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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
	size_t cap;	    /* at least one frame, at most CHUNK */
	uint64_t start;	    /* backing offset of buf[0] */
	size_t len;	    /* valid bytes in buf */
	uint64_t limit;	    /* nothing at or past it is read */
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

/* Try the record at backing @pos: 0 (header in *r, payload in @plain), -EBADMSG or -errno. */
static int rec_try(struct cursor *c, uint64_t pos, struct sfs_rec *r, unsigned char *plain)
{
	const unsigned char *p;
	int rc = cur_get(c, pos, SFS_REC_HDR, &p);

	if (rc == 0 && sfs_fmt_record_parse(r, p, pos) != 0)
		rc = -EBADMSG;
	if (rc == 0)
		rc = cur_get(c, pos, SFS_REC_OVERHEAD + r->len, &p);
	if (rc == 0 && sfs_fmt_record_open(plain, r, p, c->l->id, c->l->keys) != 0)
		rc = -EBADMSG;
	return rc;
}

/*
 * The first record at or after backing @pos (and before the cursor's limit)
 * that opens, and whose offset and line count are at least @min_off and
 * @min_lines: 0 with it in *r, @plain and *at; -ENODATA if there is none;
 * -errno. Records start anywhere in a frame, so every byte is tried; the
 * clear header rules out almost every position before any crypto.
 */
static int rec_next_good(struct cursor *c, uint64_t pos, uint64_t min_off, uint64_t min_lines,
			 struct sfs_rec *r, unsigned char *plain, uint64_t *at)
{
	for (uint64_t q = pos; q + SFS_REC_MIN <= c->limit; q++) {
		const unsigned char *p = NULL;
		int rc = cur_get(c, q, SFS_REC_HDR, &p);

		if (rc < 0)
			return rc == -EBADMSG ? -ENODATA : rc;
		if (sfs_fmt_record_parse(r, p, q) != 0 || r->offset < min_off ||
		    r->lines < min_lines)
			continue;
		rc = rec_try(c, q, r, plain);
		if (rc == 0) {
			*at = q;
			return 0;
		}
		if (rc != -EBADMSG)
			return rc;
	}
	return -ENODATA;
}

/* Does backing [@from, @to) hold a run of SFS_LOG_ZERO_RUN zero bytes? */
static int has_zero_run(struct cursor *c, uint64_t from, uint64_t to, bool *yes)
{
	uint64_t run = 0;

	*yes = false;
	while (from < to) {
		const unsigned char *p;
		size_t n = to - from < SFS_LOG_FRAME ? (size_t)(to - from) : SFS_LOG_FRAME;
		int rc = cur_get(c, from, n, &p);

		if (rc < 0)
			return rc == -EBADMSG ? 0 : rc;
		for (size_t i = 0; i < n; i++) {
			run = p[i] ? 0 : run + 1;
			if (run >= SFS_LOG_ZERO_RUN) {
				*yes = true;
				return 0;
			}
		}
		from += n;
	}
	return 0;
}

/* A run of backing bytes where records fail, between good ones (or the walk's ends). */
struct span {
	uint64_t pos, next;  /* failing bytes [pos, next) */
	bool known;	     /* the good record before it was seen: off, lines */
	uint64_t off, lines; /* plaintext offset and lines where it starts */
	bool followed;	     /* a good record follows it: next_off, next_lines */
	uint64_t next_off, next_lines;
	bool zeros;			   /* it holds a run of zeros: a write a power loss lost */
	uint64_t end_at, size, size_lines; /* the last complete append before it (end_at 0: none) */
};

/* What a walk over records found. */
struct walk {
	uint64_t end_at;    /* backing end of the last good END record (0: none) */
	uint64_t size;	    /* plaintext size after that record */
	uint64_t lines;	    /* lines after that record */
	struct span *spans; /* failing spans, in order */
	size_t nspans, cap;
};

static void walk_free(struct walk *w)
{
	free(w->spans);
	w->spans = NULL;
	w->nspans = w->cap = 0;
}

static int walk_push(struct walk *w, const struct span *s)
{
	if (w->nspans == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		struct span *n = realloc(w->spans, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->spans = n;
		w->cap = cap;
	}
	w->spans[w->nspans++] = *s;
	return 0;
}

/*
 * Open every record from frame start @from up to @limit, each checked
 * against the one before. A record that fails (or does not follow the one
 * before) starts a failing span, which ends at the next record that opens
 * and comes later in the file's plaintext; the walk goes on from there.
 * The caller frees w->spans (walk_free) whatever is returned.
 */
static int walk(struct sfs_log *l, uint64_t from, uint64_t limit, struct walk *w)
{
	struct cursor c = {.l = l, .limit = limit, .cap = CHUNK};
	unsigned char *plain = malloc(SFS_REC_MAX);
	uint64_t pos = from, expect = 0, lines = 0;
	bool known = false;
	int rc = 0;

	c.buf = malloc(CHUNK);
	memset(w, 0, sizeof(*w));
	if (!plain || !c.buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct sfs_rec r;

		pos = sfs_fmt_record_pos(pos);
		if (pos >= limit)
			break;
		rc = rec_try(&c, pos, &r, plain);
		if (rc == 0 && known && (r.offset != expect || r.lines != lines))
			rc = -EBADMSG;
		if (rc == -EBADMSG) {
			struct span s = {.pos = pos,
					 .known = known,
					 .off = expect,
					 .lines = lines,
					 .end_at = w->end_at,
					 .size = w->size,
					 .size_lines = w->lines};
			uint64_t at = limit;

			rc = rec_next_good(&c, pos + 1, known ? expect + 1 : 0, lines, &r, plain,
					   &at);
			if (rc < 0 && rc != -ENODATA)
				break;
			s.followed = rc == 0;
			s.next = at;
			s.next_off = s.followed ? r.offset : 0;
			s.next_lines = s.followed ? r.lines : 0;
			rc = has_zero_run(&c, s.pos, s.next, &s.zeros);
			if (rc == 0)
				rc = walk_push(w, &s);
			if (rc < 0 || !s.followed)
				break;
			pos = at;
			/* has_zero_run moved the window: the record at @at is opened again */
			rc = rec_try(&c, pos, &r, plain);
			if (rc < 0)
				break;
		} else if (rc < 0) {
			break;
		}
		known = true;
		expect = r.offset + r.len;
		lines = r.lines + count_lines(plain, r.len);
		pos += SFS_REC_OVERHEAD + r.len;
		if (r.flags & SFS_REC_END) {
			w->end_at = pos;
			w->size = expect;
			w->lines = lines;
		}
	}
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
	/* Failing records before the last one do not matter here: reads meet them. */
	rc = walk(l, sfs_fmt_frame_offset(frame_of(bsize - 1)), bsize, &w);
	if (rc == 0 && w.end_at != bsize) {
		l->bad = w.nspans ? w.spans[w.nspans - 1].pos : w.end_at ? w.end_at : bsize;
		rc = -EBADMSG;
	}
	if (rc == 0) {
		l->end = bsize;
		l->size = w.size;
		l->lines = w.lines;
	}
	walk_free(&w);
	return rc;
}

/* Fill @d from failing span @s, one of @count found. */
static void damage_of(struct sfs_log_damage *d, const struct span *s, uint64_t count)
{
	memset(d, 0, sizeof(*d));
	d->count = count;
	d->pos = s->pos;
	d->next = s->next;
	d->known = s->known;
	d->bounded = s->followed;
	d->off = s->known ? s->off : 0;
	d->end = s->followed ? s->next_off : 0;
	d->line = s->known ? s->lines + 1 : 0;
	d->last = s->followed ? s->next_lines : 0;
	if (d->last < d->line)
		d->last = d->line;
}

/*
 * Are the @have bytes of kept file @fd a prefix of what a cut of [@from,
 * @to) keeps: @hdr (SFS_LOG_KEPT_HDR bytes: header and *from*), then the
 * log's bytes? @buf: two CHUNKs of scratch.
 */
static bool keep_is_prefix(struct sfs_log *l, int fd, uint64_t have, uint64_t from,
			   const unsigned char *hdr, unsigned char *buf)
{
	size_t h = have < SFS_LOG_KEPT_HDR ? (size_t)have : SFS_LOG_KEPT_HDR;

	if (sfs_pread_all(fd, buf, h, 0) != (ssize_t)h || memcmp(buf, hdr, h) != 0)
		return false;
	for (uint64_t pos = SFS_LOG_KEPT_HDR; pos < have;) {
		size_t n = have - pos < CHUNK ? (size_t)(have - pos) : CHUNK;

		if (sfs_pread_all(fd, buf, n, pos) != (ssize_t)n ||
		    sfs_pread_all(l->fd, buf + CHUNK, n, from + pos - SFS_LOG_KEPT_HDR) !=
			    (ssize_t)n ||
		    memcmp(buf, buf + CHUNK, n) != 0)
			return false;
		pos += n;
	}
	return true;
}

/*
 * A cut is made in two steps, the bytes kept, then the log cut; a kill or
 * crash in between leaves a kept file of this very tail, whole or a prefix,
 * and the log uncut. An "events.kept-<16 hex>" of @dirfd whose bytes are a
 * prefix of what a cut of [@from, @to) keeps (@hdr first): its name into
 * @name (SFS_LOG_KEPT_NAME bytes) and its size into *@have, the largest if
 * there are several; 1, or 0 if there is none.
 */
static int keep_find(struct sfs_log *l, uint64_t from, uint64_t to, int dirfd,
		     const unsigned char *hdr, char *name, uint64_t *have)
{
	unsigned char *buf = malloc(2 * CHUNK);
	int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	struct dirent *de;
	int found = 0;

	if (!d || !buf) {
		if (d)
			closedir(d);
		else if (dfd >= 0)
			close(dfd);
		free(buf);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		struct stat st;
		size_t i;
		int fd;

		if (strlen(nm) != SFS_LOG_KEPT_NAME - 1 || strncmp(nm, "events.kept-", 12) != 0)
			continue;
		for (i = 12; nm[i] && strchr("0123456789abcdef", nm[i]); i++)
			;
		if (nm[i])
			continue;
		fd = openat(dirfd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size <= SFS_LOG_KEPT_HDR + (to - from) &&
		    (!found || (uint64_t)st.st_size > *have) &&
		    keep_is_prefix(l, fd, (uint64_t)st.st_size, from, hdr, buf)) {
			snprintf(name, SFS_LOG_KEPT_NAME, "%s", nm);
			*have = (uint64_t)st.st_size;
			found = 1;
		}
		close(fd);
	}
	closedir(d);
	sodium_memzero(buf, 2 * CHUNK);
	free(buf);
	return found;
}

/*
 * Copy backing bytes [@from, @to) of the log to a new file @name in @dirfd,
 * as doc/format.md ("Kept bytes") describes: the log's header, @from as a
 * u64, then the bytes.
 * An interrupted cut's file of this tail (keep_find) is completed instead.
 */
static int keep_copy(struct sfs_log *l, uint64_t from, uint64_t to, int dirfd, char *name)
{
	unsigned char *buf = malloc(CHUNK);
	uint64_t have = 0;
	int fd = -1, rc = buf ? 0 : -ENOMEM;
	bool made = false;
	ssize_t got;

	if (rc == 0) {
		got = sfs_pread_all(l->fd, buf, SFS_HDR_BYTES, 0);
		rc = got < 0 ? (int)got : got != SFS_HDR_BYTES ? -EIO : 0;
		sfs_put_le64(buf + SFS_HDR_BYTES, from);
	}
	/* The file an interrupted cut of this tail left is completed, not kept twice. */
	if (rc == 0 && keep_find(l, from, to, dirfd, buf, name, &have)) {
		fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? sfs_neg_errno() : 0;
	} else if (rc == 0) {
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		rc = fd < 0 ? sfs_neg_errno() : 0;
		made = fd >= 0;
	}
	if (rc == 0 && have < SFS_LOG_KEPT_HDR)
		rc = sfs_pwrite_all(fd, buf + have, SFS_LOG_KEPT_HDR - (size_t)have, have);
	for (uint64_t pos = from + (have > SFS_LOG_KEPT_HDR ? have - SFS_LOG_KEPT_HDR : 0);
	     rc == 0 && pos < to;) {
		size_t want = to - pos < CHUNK ? (size_t)(to - pos) : CHUNK;

		got = sfs_pread_all(l->fd, buf, want, pos);
		rc = got < 0 ? (int)got : got == 0 ? -EIO : 0;
		if (rc == 0)
			rc = sfs_pwrite_all(fd, buf, (size_t)got, SFS_LOG_KEPT_HDR + pos - from);
		pos += got > 0 ? (uint64_t)got : 0;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = sfs_neg_errno();
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = sfs_fsync_dirfd(dirfd);
	else if (made)
		unlinkat(dirfd, name, 0);
	free(buf);
	return rc;
}

/*
 * Do the clear headers of [@from, @to) describe whole records of one or more
 * appends from plaintext @off on, the last with END ending at @to? Then the
 * tail is no prefix of a write (what a kill -9 leaves) but whole records
 * that fail: damage.
 */
static bool tail_whole(struct sfs_log *l, uint64_t from, uint64_t to, uint64_t off)
{
	uint64_t pos = from;

	for (;;) {
		unsigned char h[SFS_REC_HDR];
		struct sfs_rec r;

		pos = sfs_fmt_record_pos(pos);
		if (pos + SFS_REC_HDR > to ||
		    sfs_pread_all(l->fd, h, sizeof(h), pos) != SFS_REC_HDR ||
		    sfs_fmt_record_parse(&r, h, pos) != 0 || r.offset != off)
			return false;
		pos += SFS_REC_OVERHEAD + r.len;
		off += r.len;
		if (pos >= to)
			return pos == to && (r.flags & SFS_REC_END);
	}
}

int sfs_log_repair(struct sfs_log *l, struct sfs_log_repair *rep, int keep_dirfd, char *keep_name)
{
	uint64_t bsize = 0, from, cut, size, lines, ndamage = 0;
	const struct span *first = NULL;
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
		goto out;
	if (w.nspans)
		rep->bad_at = w.spans[0].pos;
	/* What a crash leaves: a tail after the last complete append... */
	if (w.end_at) {
		cut = w.end_at, size = w.size, lines = w.lines;
	} else if (from == SFS_HDR_BYTES) {
		cut = SFS_HDR_BYTES, size = lines = 0; /* the log's very first append was torn */
	} else {
		/* No complete append in the whole window: not what a crash leaves. */
		l->bad = w.nspans ? w.spans[0].pos : from;
		rc = -EBADMSG;
		goto out;
	}
	/*
	 * ...or, after a power loss, a hole (zeros) in bytes never fsynced,
	 * with whatever followed it: cut from the last complete append before
	 * the first hole. Any other failing span before the cut is damage no
	 * crash leaves: it stays, and reads over it fail.
	 */
	for (size_t i = 0; i < w.nspans && w.spans[i].pos < cut; i++) {
		const struct span *s = &w.spans[i];

		if (s->zeros && (s->end_at || from == SFS_HDR_BYTES)) {
			cut = s->end_at ? s->end_at : SFS_HDR_BYTES;
			size = s->end_at ? s->size : 0;
			lines = s->end_at ? s->size_lines : 0;
			rep->hole = true;
			break;
		}
	}
	for (size_t i = 0; i < w.nspans && w.spans[i].pos < cut; i++) {
		if (!first)
			first = &w.spans[i];
		ndamage++;
	}
	if (first) {
		damage_of(&rep->damage, first, ndamage);
		l->bad = first->pos;
	}
	if (cut < bsize && !rep->hole)
		rep->whole = tail_whole(l, cut, bsize, size);
	if (cut < bsize) {
		rc = keep_copy(l, cut, bsize, keep_dirfd, keep_name);
		if (rc < 0)
			goto out;
		rep->kept = true;
		if (ftruncate(l->fd, (off_t)cut) < 0 || fsync(l->fd) < 0) {
			rc = sfs_neg_errno();
			goto out;
		}
		rep->dropped = bsize - cut;
		rep->cut_at = cut;
	}
	rep->size = size;
	rep->lines = lines;
	rc = sfs_log_load(l);
out:
	walk_free(&w);
	return rc;
}

int sfs_log_check(struct sfs_log *l, uint64_t pos, struct sfs_log_damage *d)
{
	uint64_t k, from, to;
	struct walk w;
	int rc;

	memset(d, 0, sizeof(*d));
	if (pos < SFS_HDR_BYTES || pos >= l->end)
		return 0;
	/* From the frame before, so that a span at a frame's start has a known start. */
	k = frame_of(pos);
	from = sfs_fmt_frame_offset(k > 0 ? k - 1 : 0);
	to = sfs_fmt_frame_offset(k + 1) < l->end ? sfs_fmt_frame_offset(k + 1) : l->end;
	rc = walk(l, from, to, &w);
	if (rc == 0 && w.nspans) {
		damage_of(d, &w.spans[0], w.nspans);
		l->bad = w.spans[0].pos;
	}
	walk_free(&w);
	return rc;
}

/* Index of the last frame whose first record starts at or before plaintext @off. */
static int find_frame(const struct sfs_log *l, uint64_t off, uint64_t *frame, uint64_t *bad)
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
			*bad = pos;
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

/* The fast read: clear headers steer, the chain of records must hold from the frame found. */
static ssize_t read_chained(const struct sfs_log *l, void *buf, size_t len, uint64_t off,
			    uint64_t *bad)
{
	struct cursor c = {.l = l, .limit = l->end};
	unsigned char *plain = NULL;
	uint64_t frame = 0, pos, want_end, expect = 0;
	size_t done = 0;
	bool first = true;
	int rc;

	want_end = off + len;
	rc = find_frame(l, off, &frame, bad);
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
		*bad = pos;
out:
	if (plain)
		sodium_memzero(plain, SFS_REC_MAX);
	free(plain);
	free(c.buf);
	return rc < 0 ? rc : (ssize_t)done;
}

/*
 * The read that works around failing records: frames are found by binary
 * search over the first record of each that opens, and the bytes come from
 * records that open, each copied to its authenticated offset. Bytes no
 * such record holds (a failing span) make the read fail.
 */
static ssize_t read_robust(const struct sfs_log *l, void *buf, size_t len, uint64_t off,
			   uint64_t *bad)
{
	/* Small windows for the search, one sized to the request for the walk. */
	struct cursor c = {.l = l, .limit = l->end, .cap = 2 * SFS_LOG_FRAME};
	unsigned char *plain = malloc(SFS_REC_MAX);
	uint64_t lo = 0, hi = frame_of(l->end - 1), pos = 0, cur = off, want_end = off + len;
	size_t wcap = len + 2 * SFS_LOG_FRAME < CHUNK ? len + 2 * SFS_LOG_FRAME : CHUNK;
	bool found = false;
	struct sfs_rec r;
	int rc = 0;

	c.buf = malloc(wcap);
	if (!plain || !c.buf) {
		rc = -ENOMEM;
		goto out;
	}
	/* The last frame whose first good record starts at or before @off. */
	while (lo <= hi) {
		uint64_t mid = lo + (hi - lo) / 2, at;

		c.limit = sfs_fmt_frame_offset(hi + 1) < l->end ? sfs_fmt_frame_offset(hi + 1)
								: l->end;
		rc = rec_next_good(&c, sfs_fmt_frame_offset(mid), 0, 0, &r, plain, &at);
		if (rc < 0 && rc != -ENODATA)
			goto out;
		if (rc == 0 && r.offset <= off) {
			found = true;
			pos = at;
			lo = frame_of(at) + 1;
		} else {
			if (mid == 0)
				break;
			hi = mid - 1;
		}
	}
	rc = 0;
	c.limit = l->end;
	c.cap = wcap;
	c.len = 0;
	if (!found) {
		*bad = SFS_HDR_BYTES;
		rc = -EBADMSG;
		goto out;
	}
	while (cur < want_end) {
		pos = sfs_fmt_record_pos(pos);
		rc = rec_try(&c, pos, &r, plain);
		if (rc == -EBADMSG) {
			uint64_t at;

			*bad = pos;
			rc = rec_next_good(&c, pos + 1, 0, 0, &r, plain, &at);
			if (rc == -ENODATA)
				rc = -EBADMSG;
			if (rc < 0)
				break;
			pos = at;
		} else if (rc < 0) {
			break;
		}
		if (r.offset > cur) {
			/* [cur, r.offset) is in no record that opens */
			rc = -EBADMSG;
			break;
		}
		if (r.offset + r.len > cur) {
			uint64_t e = r.offset + r.len < want_end ? r.offset + r.len : want_end;

			memcpy((unsigned char *)buf + (cur - off), plain + (cur - r.offset),
			       (size_t)(e - cur));
			cur = e;
		}
		pos += SFS_REC_OVERHEAD + r.len;
	}
out:
	if (plain)
		sodium_memzero(plain, SFS_REC_MAX);
	free(plain);
	free(c.buf);
	return rc < 0 ? rc : (ssize_t)(cur - off);
}

ssize_t sfs_log_pread(const struct sfs_log *l, void *buf, size_t len, uint64_t off, uint64_t *bad)
{
	uint64_t size = l->size;
	ssize_t n;

	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	n = read_chained(l, buf, len, off, bad);
	/* A failing record on the way: look again, around it. */
	if (n == -EBADMSG)
		n = read_robust(l, buf, len, off, bad);
	return n;
}

ssize_t sfs_log_read(struct sfs_log *l, void *buf, size_t len, uint64_t off)
{
	return sfs_log_pread(l, buf, len, off, &l->bad);
}

void sfs_log_close(struct sfs_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

int sfs_log_append(struct sfs_log *l, const void *buf, size_t len)
{
	const unsigned char *in = buf;
	uint64_t pos = l->end, lines = l->lines, size = l->size, total;
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
		struct sfs_rec r = {.offset = size + done, .lines = lines};

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
	l->lines = lines;
	l->size = size + len; /* last: what a stat that takes no lock reads */
	return 0;
}
