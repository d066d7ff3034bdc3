/*
 * fsck_log.c - fsck.sessionfs's check of an event log (a kind-1 file,
 * events.jsonl): every record from the first to the last opened and checked
 * against the chain (offset and line count follow the record before), every
 * whole line held to the events.jsonl rule (one JSON object), spans of
 * records that fail reported with the plaintext bytes and lines they cost,
 * and a torn tail cut off as unlock cuts it (eventlog.c's sfs_log_repair,
 * which keeps the bytes in an events.kept-* file of the container).
 *
 * Speed: the log is read a chunk of frames at a time (one pread per MiB),
 * and the records where the chain expects them are opened ahead on every
 * core (lib/parallel.c), each whole line inside one record held to the JSON
 * rule there too; the walk itself then goes record by record in order as
 * before and only looks the results up, so what it finds is exactly what
 * opening and checking one record at a time finds.
 *
 * Store layer (lib/fsck.h): records are parsed and opened by format.c, the
 * tail is eventlog.c's; the JSON rule is documents.c's. Nothing of
 * terminals, JSON output or FUSE. Plaintext is wiped before it is freed.
 */
#include "eventlog.h"
#include "format.h"
#include "fsck.h"
#include "fileio.h"
#include "parallel.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_CHECKED (4u << 20) /* longer lines are not held to the JSON rule */
#define CHUNK_FRAMES 256	    /* frames read, and their records opened ahead, at once */
#define CHUNK_BYTES ((size_t)CHUNK_FRAMES * SFS_LOG_FRAME)
/* The most records a chunk can hold: each is at least SFS_REC_MIN bytes. */
#define CHUNK_RECS (CHUNK_FRAMES * (SFS_LOG_FRAME / SFS_REC_MIN + 1))

struct walk {
	struct sfs_fsck_sess *s;
	const unsigned char *id;
	uint64_t off, lines; /* where the chain stands */
	unsigned char *line; /* the line being collected */
	size_t linelen, linecap;
	bool line_cut;	    /* its start was lost in a failing span */
	uint64_t bad_lines; /* whole lines that are not JSON objects */
	uint64_t first_bad_line;
	uint64_t spans, first_span_pos, first_span_off, first_span_end, first_span_line;
	uint64_t span_bytes;
	/* For a salvage: each whole line (with its newline), each lost stretch. */
	int (*on_line)(struct walk *w, const unsigned char *line, size_t len);
	int (*on_lost)(struct walk *w, uint64_t from, uint64_t to, uint64_t stored);
	void *arg;
	int err;
	/* A kept file (doc/format.md "Kept bytes"): backing bytes from @start on are at
	 * file offset + @shift, and the chain's first offset is not known (@loose). */
	uint64_t start;
	int64_t shift;
	bool loose;
	bool only_valid; /* on_line only for lines that are JSON objects */
};

/*
 * A record opened ahead: the records of a chunk laid out as an unbroken
 * chain lays them out (each frame's first record at its start, each next
 * one right after the one before), opened on every core. The walk looks
 * each record it tries up here by its position, so a record is opened
 * ahead or by the walk, never both, and with the same result.
 */
struct pre {
	uint64_t pos; /* backing offset of the record */
	size_t at;    /* ... in the chunk buffer */
	size_t plain; /* its payload at ahead.plain + plain, its line marks at ahead.ok + plain */
	struct sfs_rec r;
	bool opened;
};

struct ahead {
	const struct walk *w;
	const unsigned char *cb; /* the chunk's stored bytes */
	unsigned char *plain;	 /* the payloads */
	/*
	 * At the index of each newline of a payload that opened: 1 if the line
	 * ending there, counted from the payload's start or its newline before,
	 * is one JSON object (the walk uses it for a line that starts there).
	 */
	unsigned char *ok;
	size_t plain_used;
	struct pre *v;
	size_t n;
	size_t next; /* the walk's lookup cursor: positions only grow in a chunk */
};

static void ahead_one(size_t i, void *arg)
{
	struct ahead *a = arg;
	struct pre *p = &a->v[i];
	unsigned char *out = a->plain + p->plain;
	const unsigned char *nl;
	size_t from = 0;

	p->opened = sfs_fmt_record_open(out, &p->r, a->cb + p->at, a->w->id, a->w->s->keys) == 0;
	if (!p->opened)
		return;
	while (from < p->r.len && (nl = memchr(out + from, '\n', p->r.len - from)) != NULL) {
		size_t j = (size_t)(nl - out);

		a->ok[p->plain + j] = sfs_store_event_line_ok((const char *)out + from, j - from);
		from = j + 1;
	}
}

/* Lay out the records of chunk @cb (@clen bytes at backing @cpos, read from @at0) and open them. */
static void ahead_chunk(struct ahead *a, const unsigned char *cb, size_t clen, uint64_t cpos,
			size_t at0)
{
	a->cb = cb;
	a->n = a->next = a->plain_used = 0;
	for (size_t fs = 0; fs < clen; fs += SFS_LOG_FRAME) {
		size_t flen = clen - fs < SFS_LOG_FRAME ? clen - fs : SFS_LOG_FRAME;
		size_t at = fs == 0 ? at0 : 0;
		uint64_t fpos = cpos + fs;

		while (at < flen && sfs_fmt_record_pos(fpos + at) == fpos + at &&
		       a->n < CHUNK_RECS) {
			struct pre *p = &a->v[a->n];

			if (flen - at < SFS_REC_MIN ||
			    sfs_fmt_record_parse(&p->r, cb + fs + at, fpos + at) < 0 ||
			    (size_t)p->r.len + SFS_REC_OVERHEAD > flen - at)
				break;
			p->pos = fpos + at;
			p->at = fs + at;
			p->plain = a->plain_used;
			a->plain_used += p->r.len;
			a->n++;
			at += (size_t)p->r.len + SFS_REC_OVERHEAD;
		}
	}
	sfs_par_for(a->n, ahead_one, a);
}

/* The record opened ahead at backing @pos, or NULL. */
static const struct pre *ahead_find(struct ahead *a, uint64_t pos)
{
	if (!a)
		return NULL;
	while (a->next < a->n && a->v[a->next].pos < pos)
		a->next++;
	return a->next < a->n && a->v[a->next].pos == pos ? &a->v[a->next] : NULL;
}

static void ahead_free(struct ahead *a)
{
	if (!a)
		return;
	if (a->plain) {
		sodium_memzero(a->plain, CHUNK_BYTES);
		free(a->plain);
	}
	free(a->ok);
	free(a->v);
	free(a);
}

/* NULL when memory is short: the walk then opens and checks each record itself. */
static struct ahead *ahead_new(const struct walk *w)
{
	struct ahead *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->w = w;
	a->plain = malloc(CHUNK_BYTES);
	a->ok = malloc(CHUNK_BYTES);
	a->v = malloc(CHUNK_RECS * sizeof(*a->v));
	if (!a->plain || !a->ok || !a->v) {
		ahead_free(a);
		return NULL;
	}
	return a;
}

/* A whole line of @len bytes (its newline included) is a JSON object or not (@ok). */
static void line_done(struct walk *w, const unsigned char *line, size_t len, bool ok)
{
	/*
	 * After a failing span the first line may be the end of a line whose
	 * start was lost, or a whole line (the span ended with an append): a
	 * proper suffix of a JSON object line is no JSON object, so one that is
	 * is kept.
	 */
	if (!ok && !w->line_cut && w->bad_lines++ == 0)
		w->first_bad_line = w->lines + 1;
	if (w->on_line && w->err == 0 && (ok || (!w->line_cut && !w->only_valid)))
		w->err = w->on_line(w, line, len);
}

/* Add @n bytes to the line being collected (only its first LINE_MAX_CHECKED are kept). */
static void collect(struct walk *w, const unsigned char *p, size_t n)
{
	size_t keep = 0;

	if (w->linelen < LINE_MAX_CHECKED)
		keep = n < LINE_MAX_CHECKED - w->linelen ? n : LINE_MAX_CHECKED - w->linelen;
	if (keep && w->linelen + keep > w->linecap) {
		size_t cap = w->linecap ? w->linecap : 4096;
		unsigned char *nl;

		while (cap < w->linelen + keep)
			cap *= 2;
		nl = malloc(cap);
		if (!nl) {
			w->line_cut = true;
			w->err = -ENOMEM;
			keep = 0;
		} else {
			if (w->line) {
				memcpy(nl, w->line, w->linelen);
				sodium_memzero(w->line, w->linecap);
				free(w->line);
			}
			w->line = nl;
			w->linecap = cap;
		}
	}
	if (keep)
		memcpy(w->line + w->linelen, p, keep);
	w->linelen += n;
}

/*
 * Take @len payload bytes into lines; each whole one is checked. @ok (NULL:
 * none) holds, at each newline's index in @p, whether the line ending there
 * and starting in @p is a JSON object (struct ahead).
 */
static void take(struct walk *w, const unsigned char *p, size_t len, const unsigned char *ok)
{
	size_t i = 0;

	while (i < len) {
		const unsigned char *nl = memchr(p + i, '\n', len - i);
		size_t seg = nl ? (size_t)(nl - p) + 1 - i : len - i;

		if (nl && ok && w->linelen == 0) {
			/* A whole line inside this payload, checked ahead. */
			line_done(w, p + i, seg, ok[nl - p]);
		} else {
			collect(w, p + i, seg);
			if (nl && w->linelen <= LINE_MAX_CHECKED)
				line_done(w, w->line, w->linelen,
					  w->err != -ENOMEM &&
						  sfs_store_event_line_ok((const char *)w->line,
									  w->linelen - 1));
		}
		if (nl) {
			w->lines++;
			w->linelen = 0;
			w->line_cut = false;
		}
		i += seg;
	}
}

/*
 * Try a record at @at of frame buffer @fb (frame starting at backing @fpos,
 * @flen bytes): 1 with @r and *@plain (its payload: @out, or where @a opened
 * it ahead) and *@ok (take()'s line marks, NULL none) set if it opens and
 * comes at or after the chain (exactly at it if @exact), else 0.
 */
static int try_rec(struct walk *w, struct ahead *a, const unsigned char *fb, size_t flen,
		   uint64_t fpos, size_t at, struct sfs_rec *r, unsigned char *out,
		   const unsigned char **plain, const unsigned char **ok, bool exact)
{
	const struct pre *p = ahead_find(a, fpos + at);

	if (flen - at < SFS_REC_MIN || sfs_fmt_record_parse(r, fb + at, fpos + at) < 0 ||
	    (size_t)r->len + SFS_REC_OVERHEAD > flen - at)
		return 0;
	if (exact ? (r->offset != w->off || r->lines != w->lines)
		  : (r->offset < w->off || r->lines < w->lines))
		return 0;
	if (p) {
		*plain = a->plain + p->plain;
		*ok = a->ok + p->plain;
		return p->opened;
	}
	*plain = out;
	*ok = NULL;
	return sfs_fmt_record_open(out, r, fb + at, w->id, w->s->keys) == 0;
}

/*
 * A chunk of the log: its stored bytes, read with one pread, and (when @a)
 * its records opened ahead. The walk's reader (below) fills the next one
 * while the walk goes through this one.
 */
struct chunk {
	unsigned char *cb;
	struct ahead *a; /* NULL: the walk opens each record itself */
	uint64_t cpos;	 /* backing offset of its first frame */
	size_t clen, at0;
	int rc; /* 0, or -EIO: the read failed */
};

static void chunk_free(struct chunk *ch)
{
	if (ch->cb) {
		sodium_memzero(ch->cb, CHUNK_BYTES);
		free(ch->cb);
	}
	ahead_free(ch->a);
	ch->cb = NULL;
	ch->a = NULL;
}

static int chunk_new(struct chunk *ch, const struct walk *w)
{
	ch->cb = malloc(CHUNK_BYTES);
	ch->a = ahead_new(w);
	return ch->cb ? 0 : -ENOMEM;
}

/* The first frame the walk reads (that of w->start). */
static uint64_t first_frame(const struct walk *w)
{
	return w->start > SFS_HDR_BYTES ? (w->start - SFS_HDR_BYTES) / SFS_LOG_FRAME : 0;
}

/* Read chunk number @i of the walk into @ch, and open its records ahead. */
static void chunk_fill(const struct walk *w, int fd, uint64_t size, uint64_t i, struct chunk *ch)
{
	uint64_t cpos = sfs_fmt_frame_offset(first_frame(w) + i * CHUNK_FRAMES);

	ch->cpos = cpos;
	ch->clen = size - cpos < CHUNK_BYTES ? (size_t)(size - cpos) : CHUNK_BYTES;
	ch->at0 = w->start > cpos ? (size_t)(w->start - cpos) : 0;
	ch->rc = 0;
	if (sfs_pread_all(fd, ch->cb + ch->at0, ch->clen - ch->at0,
			  (uint64_t)((int64_t)(cpos + ch->at0) + w->shift)) !=
	    (ssize_t)(ch->clen - ch->at0)) {
		ch->rc = -EIO;
		return;
	}
	/* The disk reads the chunk after this one while this one is opened and walked. */
	if (size - cpos > CHUNK_BYTES)
		posix_fadvise(fd, (off_t)((int64_t)(cpos + CHUNK_BYTES) + w->shift),
			      (off_t)CHUNK_BYTES, POSIX_FADV_WILLNEED);
	if (ch->a)
		ahead_chunk(ch->a, ch->cb, ch->clen, ch->cpos, ch->at0);
}

/*
 * The walk's reader: a thread that reads and opens the chunks in order,
 * each into one of SLOTS slots, at most SLOTS - 1 chunks ahead of the walk;
 * so reading and opening chunk i+1 (on every core) overlaps with the walk
 * through chunk i (on one core: lines across records, the chain), and a
 * thread that waits for a core on a busy machine does not hold the other
 * up at once. The walk sees the same chunks, in the same order, as when it
 * read them itself.
 */
#define SLOTS 4

struct reader {
	const struct walk *w;
	int fd;
	uint64_t size, chunks;
	struct chunk slot[SLOTS];
	pthread_t t;
	bool threaded;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t filled, taken; /* chunks filled by the reader, released by the walk; mu */
	bool stop;		/* the walk is done: fill no more; mu */
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	for (uint64_t i = 0; i < rd->chunks; i++) {
		struct chunk *ch = &rd->slot[i % SLOTS];
		bool stop;

		pthread_mutex_lock(&rd->mu);
		while (!rd->stop && i - rd->taken >= SLOTS)
			pthread_cond_wait(&rd->cv, &rd->mu);
		stop = rd->stop;
		pthread_mutex_unlock(&rd->mu);
		if (stop)
			break;
		chunk_fill(rd->w, rd->fd, rd->size, i, ch);
		pthread_mutex_lock(&rd->mu);
		rd->filled = i + 1;
		pthread_cond_broadcast(&rd->cv);
		pthread_mutex_unlock(&rd->mu);
		if (ch->rc < 0)
			break; /* the walk stops at this chunk */
	}
	return NULL;
}

/* 0, or -ENOMEM. Without a thread (or with one chunk) the walk's get() fills each chunk itself. */
static int reader_start(struct reader *rd, const struct walk *w, int fd, uint64_t size)
{
	uint64_t k0 = first_frame(w);
	sigset_t all, old;
	int rc;

	memset(rd, 0, sizeof(*rd));
	rd->w = w;
	rd->fd = fd;
	rd->size = size;
	while (sfs_fmt_frame_offset(k0 + rd->chunks * CHUNK_FRAMES) < size)
		rd->chunks++;
	rc = chunk_new(&rd->slot[0], w);
	if (rc < 0 || rd->chunks < 2)
		return rc;
	for (int i = 1; i < SLOTS; i++) {
		if (chunk_new(&rd->slot[i], w) < 0 || !rd->slot[i].a || !rd->slot[0].a) {
			for (int j = 1; j <= i; j++)
				chunk_free(&rd->slot[j]);
			return 0;
		}
	}
	pthread_mutex_init(&rd->mu, NULL);
	pthread_cond_init(&rd->cv, NULL);
	/* Signals stay with the threads that expect them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rd->threaded = pthread_create(&rd->t, NULL, reader_main, rd) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!rd->threaded) {
		pthread_mutex_destroy(&rd->mu);
		pthread_cond_destroy(&rd->cv);
		for (int j = 1; j < SLOTS; j++)
			chunk_free(&rd->slot[j]);
	}
	return 0;
}

/* Chunk number @i, filled. */
static struct chunk *reader_get(struct reader *rd, uint64_t i)
{
	struct chunk *ch;

	if (!rd->threaded) {
		ch = &rd->slot[0];
		chunk_fill(rd->w, rd->fd, rd->size, i, ch);
		return ch;
	}
	pthread_mutex_lock(&rd->mu);
	while (rd->filled <= i)
		pthread_cond_wait(&rd->cv, &rd->mu);
	pthread_mutex_unlock(&rd->mu);
	return &rd->slot[i % SLOTS];
}

/* The walk is done with chunk number @i: its plaintext is wiped and its slot free. */
static void reader_put(struct reader *rd, uint64_t i, struct chunk *ch)
{
	if (ch->a)
		sodium_memzero(ch->a->plain, ch->a->plain_used);
	if (!rd->threaded)
		return;
	pthread_mutex_lock(&rd->mu);
	rd->taken = i + 1;
	pthread_cond_broadcast(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
}

static void reader_end(struct reader *rd)
{
	if (rd->threaded) {
		pthread_mutex_lock(&rd->mu);
		rd->stop = true;
		pthread_cond_broadcast(&rd->cv);
		pthread_mutex_unlock(&rd->mu);
		pthread_join(rd->t, NULL);
		pthread_mutex_destroy(&rd->mu);
		pthread_cond_destroy(&rd->cv);
	}
	for (int i = 0; i < SLOTS; i++)
		chunk_free(&rd->slot[i]);
}

/*
 * Walk the log in @fd of @size backing bytes record by record; *@last_end
 * receives the end of the last END record that opens, *@in_span whether the
 * walk ended in a failing span. 0 or -errno.
 */
static int walk_log(struct walk *w, int fd, uint64_t size, uint64_t *last_end, bool *in_span)
{
	unsigned char *out = malloc(SFS_LOG_FRAME);
	struct reader rd;
	uint64_t span_from = 0;
	int rc = 0;

	*last_end = SFS_HDR_BYTES;
	*in_span = false;
	if (!out || reader_start(&rd, w, fd, size) < 0) {
		if (out)
			reader_end(&rd);
		free(out);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < rd.chunks && !sfs_fsck_stop(w->s->c); i++) {
		struct chunk *ch = reader_get(&rd, i);
		struct ahead *a = ch->a;
		const unsigned char *cb = ch->cb;
		uint64_t cpos = ch->cpos;
		size_t clen = ch->clen, at0 = ch->at0;

		if (ch->rc < 0) {
			rc = ch->rc;
			break;
		}
		for (size_t fs = 0; fs < clen; fs += SFS_LOG_FRAME) {
			const unsigned char *fb = cb + fs;
			uint64_t fpos = cpos + fs;
			size_t flen = clen - fs < SFS_LOG_FRAME ? clen - fs : SFS_LOG_FRAME;
			size_t at = fs == 0 ? at0 : 0;

			while (at < flen && sfs_fmt_record_pos(fpos + at) == fpos + at) {
				const unsigned char *plain, *ok;
				struct sfs_rec r;

				if (try_rec(w, a, fb, flen, fpos, at, &r, out, &plain, &ok,
					    !*in_span && !w->loose)) {
					if (w->loose) {
						/* The first record of kept bytes sets the chain. */
						w->off = r.offset;
						w->lines = r.lines;
						w->loose = false;
						*in_span = false;
					} else if (*in_span) {
						/* A failing span ends at the next record that
						 * opens. */
						w->span_bytes += fpos + at - span_from;
						if (w->spans == 1)
							w->first_span_end = r.offset;
						if (w->on_lost && w->err == 0)
							w->err = w->on_lost(w, w->off - w->linelen,
									    r.offset,
									    fpos + at - span_from);
						w->off = r.offset;
						w->lines = r.lines;
						w->linelen = 0;
						w->line_cut = true;
						*in_span = false;
					}
					take(w, plain, r.len, ok);
					if (plain == out)
						sodium_memzero(out, r.len);
					w->off += r.len;
					at += (size_t)r.len + SFS_REC_OVERHEAD;
					if (r.flags & SFS_REC_END)
						*last_end = fpos + at;
					continue;
				}
				if (!*in_span && !w->loose) {
					*in_span = true;
					span_from = fpos + at;
					if (w->spans++ == 0) {
						w->first_span_pos = fpos + at;
						w->first_span_off = w->off;
						w->first_span_line = w->lines + 1;
					}
				}
				at++;
			}
		}
		reader_put(&rd, i, ch);
		sfs_fsck_bytes(w->s->c, clen);
	}
	reader_end(&rd);
	free(out);
	if (w->line) {
		sodium_memzero(w->line, w->linecap);
		free(w->line);
		w->line = NULL;
	}
	return rc ? rc : w->err;
}

static int fix_tail(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct sfs_log *l = arg;
	struct sfs_log_repair rep;
	unsigned char rnd[8];
	char hex[17], kept[40], proc[40];
	int fd, rc;

	(void)c;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", l->fd);
	fd = open(proc, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(kept, sizeof(kept), "events.kept-%s", hex);
	l->fd = fd;
	rc = sfs_log_repair(l, &rep, s->cfd, kept);
	close(fd);
	return rc;
}

/* A salvage in progress: the new log and what waits to be appended to it. */
struct salvage {
	struct sfs_log nl;
	unsigned char *buf;
	size_t len;
};

#define SALVAGE_CHUNK (512u << 10)

static int salvage_flush(struct salvage *sv)
{
	int rc = sfs_log_append(&sv->nl, sv->buf, sv->len);

	sodium_memzero(sv->buf, sv->len);
	sv->len = 0;
	return rc;
}

static int salvage_put(struct salvage *sv, const void *p, size_t len)
{
	if (sv->len + len > SALVAGE_CHUNK && sv->len > 0) {
		int rc = salvage_flush(sv);

		if (rc < 0)
			return rc;
	}
	if (len > SALVAGE_CHUNK)
		return sfs_log_append(&sv->nl, p, len);
	memcpy(sv->buf + sv->len, p, len);
	sv->len += len;
	return 0;
}

static int salvage_line(struct walk *w, const unsigned char *line, size_t len)
{
	return salvage_put(w->arg, line, len);
}

/* One marker line for each stretch of the log that could not be read. */
static int salvage_lost(struct walk *w, uint64_t from, uint64_t to, uint64_t stored)
{
	char m[256];
	int n = snprintf(m, sizeof(m),
			 "{\"sessionfs\":\"damaged\",\"bytes\":%llu,\"offset\":%llu,"
			 "\"stored_bytes\":%llu,\"line\":%llu}\n",
			 (unsigned long long)(to - from), (unsigned long long)from,
			 (unsigned long long)stored, (unsigned long long)w->lines + 1);

	return salvage_put(w->arg, m, (size_t)n);
}

/*
 * Where the log to salvage is: its directory (the session root) and backing
 * name; @kept: the backing name an interrupted salvage already linked it to
 * ("" none).
 */
struct salvage_arg {
	int dirfd;
	const char *name;
	const unsigned char *id;
	char kept[SFS_NAME_MAX + 1];
};

#define DAMAGED_PREFIX "events.damaged-"
#define DAMAGED_SUFFIX ".jsonl"

/*
 * An interrupted salvage: a kill or crash between fix_salvage's link and
 * its rename leaves the damaged log under two names of the session root,
 * events.jsonl (@name, its stat @st) and events.damaged-<hex>.jsonl, one
 * backing inode. 1 with the kept name's backing name in @bk and plaintext
 * in @plain (of several, the first by plaintext name), else 0.
 */
static int salvage_kept(struct sfs_fsck_sess *s, int dirfd, const char *name, const struct stat *st,
			char bk[SFS_NAME_MAX + 1], char plain[SFS_NAME_MAX + 1])
{
	unsigned char dirid[SFS_ID_BYTES];
	char out[SFS_NAME_MAX + 1];
	struct sfs_attrs da;
	struct dirent *de;
	struct stat o;
	DIR *d;
	int fd, found = 0;

	if (st->st_nlink < 2 || sfs_tree_dir_load(dirfd, dirid, &da, s->keys) < 0)
		return 0;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n;

		if (strcmp(de->d_name, name) == 0 ||
		    fstatat(dirfd, de->d_name, &o, AT_SYMLINK_NOFOLLOW) < 0 ||
		    o.st_ino != st->st_ino || o.st_dev != st->st_dev ||
		    sfs_tree_name_read(dirfd, de->d_name, dirid, s->keys, out) < 0)
			continue;
		n = strlen(out);
		if (strncmp(out, DAMAGED_PREFIX, strlen(DAMAGED_PREFIX)) != 0 ||
		    n < strlen(DAMAGED_PREFIX) + strlen(DAMAGED_SUFFIX) ||
		    strcmp(out + n - strlen(DAMAGED_SUFFIX), DAMAGED_SUFFIX) != 0 ||
		    (found && strcmp(out, plain) >= 0))
			continue;
		snprintf(bk, SFS_NAME_MAX + 1, "%s", de->d_name);
		snprintf(plain, SFS_NAME_MAX + 1, "%s", out);
		found = 1;
	}
	closedir(d);
	return found;
}

/*
 * Salvage a damaged log: a new log gets every line that reads, and a marker
 * line for each stretch that does not; the old log stays, linked as
 * events.damaged-<16 hex>.jsonl in the session root; then the new log is
 * renamed over events.jsonl. A crash leaves at worst a .sfs-new-* file and
 * the old log under both names: a run after it finds that (salvage_kept)
 * and finishes the salvage under the name already kept, not a new one.
 */
static int fix_salvage(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct salvage_arg *a = arg;
	struct salvage sv = {.nl = {.fd = -1, .keys = s->keys}};
	struct walk w = {
		.s = s, .id = a->id, .on_line = salvage_line, .on_lost = salvage_lost, .arg = &sv};
	unsigned char dirid[SFS_ID_BYTES], rnd[8];
	char tmp[SFS_TMPNAME_MAX], keep[64], hex[17];
	struct sfs_attrs attrs, da;
	struct sfs_ename en;
	uint64_t last_end;
	bool in_span;
	struct stat st;
	int fd, rc;

	(void)c;
	fd = openat(a->dirfd, a->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_file_read_header(fd, (unsigned char[SFS_ID_BYTES]){0}, &attrs, s->keys);
	if (rc == 0)
		rc = sfs_tree_dir_load(a->dirfd, dirid, &da, s->keys);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = sfs_neg_errno();
	sv.buf = rc == 0 ? malloc(SALVAGE_CHUNK) : NULL;
	if (rc == 0 && !sv.buf)
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	sfs_tree_tmpname(tmp);
	sv.nl.fd = openat(a->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sv.nl.fd < 0) {
		rc = sfs_neg_errno();
		goto out;
	}
	sfs_crypto_random(sv.nl.id, sizeof(sv.nl.id));
	sv.nl.end = SFS_HDR_BYTES;
	rc = sfs_log_create(sv.nl.fd, sv.nl.id, &attrs, s->keys);
	if (rc == 0)
		rc = walk_log(&w, fd, (uint64_t)st.st_size, &last_end, &in_span);
	/* A span at the very end (nothing good after it) is lost too. */
	if (rc == 0 && in_span && w.err == 0)
		rc = salvage_lost(&w, w.off - w.linelen, w.off, 0);
	if (rc == 0 && sv.len)
		rc = salvage_flush(&sv);
	if (rc == 0 && fsync(sv.nl.fd) < 0)
		rc = sfs_neg_errno();
	/*
	 * Keep the old log under a name of its own in the session (or the one
	 * an interrupted salvage kept it under: still a link of it), then replace.
	 */
	if (rc == 0 && a->kept[0]) {
		struct stat k;

		if (fstatat(a->dirfd, a->kept, &k, AT_SYMLINK_NOFOLLOW) < 0 ||
		    k.st_ino != st.st_ino || k.st_dev != st.st_dev)
			rc = -ESTALE; /* changed since it was checked */
	} else if (rc == 0) {
		sfs_crypto_random(rnd, sizeof(rnd));
		sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
		snprintf(keep, sizeof(keep), DAMAGED_PREFIX "%s" DAMAGED_SUFFIX, hex);
		rc = sfs_fmt_name_encrypt(&en, keep, dirid, s->keys);
		if (rc == 0 && linkat(a->dirfd, a->name, a->dirfd, en.backing, 0) < 0)
			rc = sfs_neg_errno();
	}
	if (rc == 0 && renameat(a->dirfd, tmp, a->dirfd, a->name) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fsync_dirfd(a->dirfd);
	if (rc < 0)
		unlinkat(a->dirfd, tmp, 0);
out:
	if (sv.buf) {
		sodium_memzero(sv.buf, SALVAGE_CHUNK);
		free(sv.buf);
	}
	if (sv.nl.fd >= 0)
		close(sv.nl.fd);
	close(fd);
	return rc;
}

int sfs_fsck_log(struct sfs_fsck_sess *s, int fd, const unsigned char id[SFS_ID_BYTES],
		 const char *path, const char *bpath, int dirfd, const char *name, bool salvage)
{
	const char *where = path ? path : bpath;
	bool plain = path != NULL, in_span;
	struct walk w = {.s = s, .id = id};
	struct sfs_log l = {.fd = fd, .keys = s->keys};
	struct salvage_arg sa = {dirfd, name, id, ""};
	char kept[SFS_NAME_MAX + 1], rep[SFS_NAME_MAX + 300];
	uint64_t size, last_end;
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		return sfs_neg_errno();
	size = (uint64_t)st.st_size;
	memcpy(l.id, id, SFS_ID_BYTES);
	rc = walk_log(&w, fd, size, &last_end, &in_span);
	if (rc < 0) {
		sfs_fsck_add_state(s->c, s, where, plain, "io", SFS_FSCK_FAILED, rc,
				   "the event log cannot be read: %s", strerror(-rc));
		return rc;
	}
	if (sfs_fsck_stop(s->c))
		return 0;

	/* The end: what a crash leaves there is unlock's to cut, and ours with -y. */
	rc = sfs_log_load(&l);
	if (rc == -EBADMSG || last_end < size) {
		/* A span that only the tail holds is the torn tail, not damage. */
		if (in_span && w.spans > 0 && w.first_span_pos >= last_end)
			w.spans--;
		sfs_fsck_add(s->c, s, where, plain, "torn-tail",
			     "cut it off as unlock does, keeping its bytes in an events.kept-* "
			     "file of the container",
			     fix_tail, &l,
			     "a torn tail: %llu stored bytes after the last complete append (what "
			     "a crash in the middle of an append leaves)",
			     (unsigned long long)(size - last_end));
	} else if (rc < 0) {
		sfs_fsck_add_state(s->c, s, where, plain, "io", SFS_FSCK_FAILED, rc,
				   "the event log cannot be loaded: %s", strerror(-rc));
	}
	if (w.spans > 0 && path && strncmp(path, "events.damaged-", 15) == 0)
		sfs_fsck_add_state(s->c, s, where, plain, "log-damage", SFS_FSCK_NOTE, 0,
				   "the damaged log a salvage kept: %llu span(s) of records fail "
				   "authentication; remove it when you no longer need it",
				   (unsigned long long)w.spans);
	else if (w.spans > 0 && salvage && salvage_kept(s, dirfd, name, &st, sa.kept, kept)) {
		snprintf(rep, sizeof(rep),
			 "finish the salvage: a new events.jsonl with every line that reads and "
			 "one {\"sessionfs\":\"damaged\",...} line for each stretch that does "
			 "not; the old log stays as %s, no other name is made",
			 kept);
		sfs_fsck_add(
			s->c, s, where, plain, "log-damage", rep, fix_salvage, &sa,
			"an interrupted salvage: events.jsonl and %s are one file (two "
			"links of one backing file, what a kill or crash of fsck -y leaves "
			"after it kept the damaged log under that name and before it put "
			"the new log in place); %llu span(s) of records fail "
			"authentication (the first at stored offset %llu: plaintext bytes "
			"%llu-%llu, from line %llu); reads touching them fail with EIO",
			kept, (unsigned long long)w.spans, (unsigned long long)w.first_span_pos,
			(unsigned long long)w.first_span_off, (unsigned long long)w.first_span_end,
			(unsigned long long)w.first_span_line);
	} else if (w.spans > 0)
		sfs_fsck_add(s->c, s, where, plain, "log-damage",
			     salvage ? "salvage: a new events.jsonl with every line that reads "
				       "and one {\"sessionfs\":\"damaged\",...} line for each "
				       "stretch that does not; the old log is kept as "
				       "events.damaged-*.jsonl in the session"
				     : NULL,
			     salvage ? fix_salvage : NULL, &sa,
			     "%llu span(s) of records fail authentication, damage no crash leaves "
			     "(the first at stored offset %llu: plaintext bytes %llu-%llu, from "
			     "line %llu); reads touching them fail with EIO, the rest reads",
			     (unsigned long long)w.spans, (unsigned long long)w.first_span_pos,
			     (unsigned long long)w.first_span_off,
			     (unsigned long long)w.first_span_end,
			     (unsigned long long)w.first_span_line);
	if (w.bad_lines > 0)
		sfs_fsck_add(s->c, s, where, plain, "log-line", NULL, NULL, NULL,
			     "%llu line(s) are not one JSON object each (the first is line %llu)",
			     (unsigned long long)w.bad_lines, (unsigned long long)w.first_bad_line);
	return 0;
}

/* Lines of a kept file waiting to be appended. */
struct kept_lines {
	unsigned char *buf;
	size_t len, cap;
	uint64_t count;
};

static int kept_line(struct walk *w, const unsigned char *line, size_t len)
{
	struct kept_lines *k = w->arg;

	if (k->len + len > k->cap) {
		size_t cap = (k->len + len) * 2;
		unsigned char *nb = malloc(cap);

		if (!nb)
			return -ENOMEM;
		if (k->buf) {
			memcpy(nb, k->buf, k->len);
			sodium_memzero(k->buf, k->cap);
			free(k->buf);
		}
		k->buf = nb;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, line, len);
	k->len += len;
	k->count++;
	return 0;
}

/*
 * The whole lines that are JSON objects in kept file @fd (of @size bytes),
 * whose header (read) gives file id @id, into @k. 0 or -errno.
 */
static int kept_read(struct sfs_fsck_sess *s, int fd, uint64_t size,
		     const unsigned char id[SFS_ID_BYTES], struct kept_lines *k)
{
	unsigned char f8[8];
	struct walk w = {.s = s,
			 .id = id,
			 .on_line = kept_line,
			 .arg = k,
			 .loose = true,
			 .only_valid = true};
	uint64_t from, last_end;
	bool in_span;

	if (size < SFS_LOG_KEPT_HDR || sfs_pread_all(fd, f8, 8, SFS_HDR_BYTES) != 8)
		return -EBADMSG;
	from = sfs_get_le64(f8);
	if (from < SFS_HDR_BYTES || from > UINT64_MAX / 4)
		return -EBADMSG;
	w.start = from;
	w.shift = (int64_t)SFS_LOG_KEPT_HDR - (int64_t)from;
	return walk_log(&w, fd, from + (size - SFS_LOG_KEPT_HDR), &last_end, &in_span);
}

struct kept_arg {
	const char *name;   /* the kept file in the container */
	const char *events; /* events.jsonl's backing name in the root */
	unsigned char id[SFS_ID_BYTES];
	bool appending; /* @name is "<kept>" KEPT_APPENDING "<size>": an append began */
	uint64_t at;	/* ... at events.jsonl's plaintext size @at */
};

/*
 * A kept file whose lines are being appended is renamed first
 * "events.kept-<hex>.appending-<size>", <size> the plaintext size of
 * events.jsonl before the first append; so a run after a crash finds which of
 * the appends already reached the log (their bytes from <size> on) and makes
 * only the others: no line is appended twice.
 */
#define KEPT_APPENDING ".appending-"

/* The appends of kept lines: whole lines, at most 1 MiB each; the length of the one at @off. */
static size_t kept_chunk(const struct kept_lines *k, size_t off)
{
	size_t n = k->len - off, cut;

	if (n <= (1u << 20))
		return n;
	for (cut = 1u << 20; cut > 0 && k->buf[off + cut - 1] != '\n'; cut--)
		;
	return cut ? cut : n;
}

/*
 * How many bytes of @k an interrupted run already appended to loaded log @l
 * at plaintext @at: whole appends (kept_chunk) found there byte for byte.
 */
static size_t kept_done(struct sfs_log *l, const struct kept_lines *k, uint64_t at)
{
	unsigned char *buf = malloc(1u << 20);
	size_t off = 0;

	if (!buf)
		return 0;
	while (off < k->len) {
		size_t n = kept_chunk(k, off), got = 0;

		while (got < n) {
			ssize_t r = sfs_log_read(l, buf + got, n - got, at + off + got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != n || sodium_memcmp(buf, k->buf + off, n) != 0)
			break;
		off += n;
	}
	sodium_memzero(buf, 1u << 20);
	free(buf);
	return off;
}

/* Open and load events.jsonl (backing @events in the root) into @l. */
static int kept_log_open(struct sfs_fsck_sess *s, const char *events, struct sfs_log *l)
{
	struct sfs_attrs at;
	int rc;

	l->fd = openat(s->rootfd, events, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	rc = l->fd < 0 ? sfs_neg_errno() : sfs_file_read_header(l->fd, l->id, &at, s->keys);
	if (rc == 0 && at.kind != SFS_KIND_LOG)
		rc = -EUCLEAN;
	if (rc == 0)
		rc = sfs_log_load(l);
	return rc;
}

/*
 * Append the kept file's whole valid lines to events.jsonl, then mark it
 * done: renamed *.appending-<size> (fsynced) before the first append,
 * *.appended after the last (and the log's fsync).
 */
static int fix_kept(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct kept_arg *a = arg;
	struct kept_lines k = {0};
	struct sfs_log l = {.fd = -1, .keys = s->keys};
	char cur[160], done[160];
	size_t base, off = 0;
	struct stat st;
	int fd, rc;

	(void)c;
	base = a->appending ? (size_t)(strstr(a->name, KEPT_APPENDING) - a->name) : strlen(a->name);
	snprintf(cur, sizeof(cur), "%s", a->name);
	snprintf(done, sizeof(done), "%.*s.appended", (int)base, a->name);
	fd = openat(s->cfd, a->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sfs_neg_errno();
	rc = fstat(fd, &st) < 0 ? sfs_neg_errno()
				: kept_read(s, fd, (uint64_t)st.st_size, a->id, &k);
	close(fd);
	if (rc == 0 && k.len > 0)
		rc = kept_log_open(s, a->events, &l);
	if (rc == 0 && k.len > 0 && a->appending) {
		off = kept_done(&l, &k, a->at);
	} else if (rc == 0 && k.len > 0) {
		snprintf(cur, sizeof(cur), "%s" KEPT_APPENDING "%llu", a->name,
			 (unsigned long long)atomic_load(&l.size));
		if (renameat(s->cfd, a->name, s->cfd, cur) < 0)
			rc = sfs_neg_errno();
		if (rc == 0)
			rc = sfs_fsync_dirfd(s->cfd);
	}
	while (rc == 0 && off < k.len) {
		size_t n = kept_chunk(&k, off);

		rc = sfs_log_append(&l, k.buf + off, n);
		off += n;
	}
	if (rc == 0 && l.fd >= 0 && fsync(l.fd) < 0)
		rc = sfs_neg_errno();
	sfs_log_close(&l);
	if (k.buf) {
		sodium_memzero(k.buf, k.cap);
		free(k.buf);
	}
	if (rc == 0 && renameat(s->cfd, cur, s->cfd, done) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fsync_dirfd(s->cfd);
	return rc;
}

void sfs_fsck_kept(struct sfs_fsck_sess *s, const char *name)
{
	struct kept_arg a = {.name = name};
	unsigned char dirid[SFS_ID_BYTES];
	struct kept_lines k = {0};
	struct sfs_log l = {.fd = -1, .keys = s->keys};
	struct sfs_attrs at, ra;
	struct sfs_ename en;
	const char *ap = strstr(name, KEPT_APPENDING);
	size_t done = 0;
	struct stat st;
	char path[256], *end;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", s->name, name);
	if (ap) {
		errno = 0;
		a.at = strtoull(ap + strlen(KEPT_APPENDING), &end, 10);
		a.appending = errno == 0 && *end == '\0' && end != ap + strlen(KEPT_APPENDING);
		if (!a.appending) {
			sfs_fsck_add_state(s->c, s, path, false, "unknown", SFS_FSCK_NOTE, 0,
					   "an entry sessionfs never makes in a container: "
					   "ignored, left as it is");
			return;
		}
	}
	fd = openat(s->cfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!s->keys) {
		sfs_fsck_add_state(
			s->c, s, path, false, "kept", SFS_FSCK_NOTE, 0,
			"%lld bytes an unlock cut off events.jsonl (a torn tail)%s; with "
			"the password fsck re-appends their whole lines",
			(long long)st.st_size, a.appending ? ", whose re-append fsck began" : "");
		close(fd);
		return;
	}
	rc = sfs_file_read_header(fd, a.id, &at, s->keys);
	if (rc == 0 && at.kind != SFS_KIND_LOG)
		rc = -EBADMSG;
	if (rc == 0)
		rc = kept_read(s, fd, (uint64_t)st.st_size, a.id, &k);
	close(fd);
	if (rc < 0) {
		if (k.buf) {
			sodium_memzero(k.buf, k.cap);
			free(k.buf);
		}
		sfs_fsck_add_state(s->c, s, path, false, "kept", SFS_FSCK_NOTE, 0,
				   "bytes an unlock cut off events.jsonl, which do not read as a "
				   "kept file of this session: left as they are");
		return;
	}
	if (sfs_tree_dir_load(s->rootfd, dirid, &ra, s->keys) < 0 ||
	    sfs_fmt_name_encrypt(&en, SFS_EVENTS_NAME, dirid, s->keys) < 0)
		goto out;
	a.events = en.backing;
	/* An interrupted re-append: how much of it is in the log already. */
	if (a.appending && k.len > 0 && kept_log_open(s, a.events, &l) == 0)
		done = kept_done(&l, &k, a.at);
	sfs_log_close(&l);
	if (k.count == 0) {
		sfs_fsck_add_state(s->c, s, path, false, "kept", SFS_FSCK_NOTE, 0,
				   "%lld bytes an unlock or fsck cut off events.jsonl (a torn "
				   "tail); no whole line in them reads",
				   (long long)st.st_size);
	} else if (a.appending) {
		sfs_fsck_add(s->c, s, path, false, "kept",
			     "append the lines not yet in the log and rename the file *.appended",
			     fix_kept, &a,
			     "an interrupted re-append of %llu whole line(s) an unlock cut off "
			     "events.jsonl: %zu of their %zu bytes are in the log (from byte "
			     "%llu), the rest are not",
			     (unsigned long long)k.count, done, k.len, (unsigned long long)a.at);
	} else {
		sfs_fsck_add(s->c, s, path, false, "kept",
			     "append those lines to events.jsonl and rename the file *.appended",
			     fix_kept, &a,
			     "bytes an unlock cut off events.jsonl: %llu whole line(s) in them are "
			     "valid events not in the log",
			     (unsigned long long)k.count);
	}
out:
	if (k.buf) {
		sodium_memzero(k.buf, k.cap);
		free(k.buf);
	}
}
