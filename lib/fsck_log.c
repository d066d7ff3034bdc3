/*
 * fsck_log.c - fsck.sessionfs's check of an event log (a kind-1 file,
 * events.jsonl): every record from the first to the last opened and checked
 * against the chain (offset and line count follow the record before), every
 * whole line held to the events.jsonl rule (one JSON object), spans of
 * records that fail reported with the plaintext bytes and lines they cost,
 * and a torn tail cut off as unlock cuts it (eventlog.c's sfs_log_repair,
 * which keeps the bytes in an events.kept-* file of the container).
 *
 * Store layer (lib/fsck.h): records are parsed and opened by format.c, the
 * tail is eventlog.c's; the JSON rule is documents.c's. Nothing of
 * terminals, JSON output or FUSE. Plaintext is wiped before it is freed.
 */
#include "eventlog.h"
#include "format.h"
#include "fsck.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_CHECKED (4u << 20) /* longer lines are not held to the JSON rule */

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
};

/* Take @len payload bytes into lines; each whole one is checked. */
static void take(struct walk *w, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			if (!w->line_cut && w->linelen <= LINE_MAX_CHECKED &&
			    !sfs_store_event_line_ok((const char *)w->line, w->linelen) &&
			    w->bad_lines++ == 0)
				w->first_bad_line = w->lines + 1;
			w->lines++;
			w->linelen = 0;
			w->line_cut = false;
			continue;
		}
		if (w->linelen < LINE_MAX_CHECKED) {
			if (w->linelen == w->linecap) {
				size_t cap = w->linecap ? 2 * w->linecap : 4096;
				unsigned char *nl = malloc(cap);

				if (!nl) {
					w->line_cut = true;
					continue;
				}
				if (w->line) {
					memcpy(nl, w->line, w->linelen);
					sodium_memzero(w->line, w->linecap);
					free(w->line);
				}
				w->line = nl;
				w->linecap = cap;
			}
			w->line[w->linelen] = p[i];
		}
		w->linelen++;
	}
}

/*
 * Try a record at @at of frame buffer @fb (frame starting at backing @fpos,
 * @flen bytes): 1 with @r and @out set if it opens and comes at or after the
 * chain (exactly at it if @exact), else 0.
 */
static int try_rec(struct walk *w, const unsigned char *fb, size_t flen, uint64_t fpos, size_t at,
		   struct sfs_rec *r, unsigned char *out, bool exact)
{
	if (flen - at < SFS_REC_MIN || sfs_fmt_record_parse(r, fb + at, fpos + at) < 0 ||
	    (size_t)r->len + SFS_REC_OVERHEAD > flen - at)
		return 0;
	if (exact ? (r->offset != w->off || r->lines != w->lines)
		  : (r->offset < w->off || r->lines < w->lines))
		return 0;
	return sfs_fmt_record_open(out, r, fb + at, w->id, w->s->keys) == 0;
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

int sfs_fsck_log(struct sfs_fsck_sess *s, int fd, const unsigned char id[SFS_ID_BYTES],
		 const char *path, const char *bpath)
{
	const char *where = path ? path : bpath;
	bool plain = path != NULL;
	struct walk w = {.s = s, .id = id};
	unsigned char *fb = malloc(SFS_LOG_FRAME), *out = malloc(SFS_LOG_FRAME);
	struct sfs_log l = {.fd = fd, .keys = s->keys};
	uint64_t size, last_end = SFS_HDR_BYTES, good_after_span = 0;
	bool in_span = false;
	struct stat st;
	int rc;

	if (!fb || !out || fstat(fd, &st) < 0) {
		free(fb);
		free(out);
		return -ENOMEM;
	}
	size = (uint64_t)st.st_size;
	memcpy(l.id, id, SFS_ID_BYTES);
	for (uint64_t k = 0; sfs_fmt_frame_offset(k) < size && !sfs_fsck_stop(s->c); k++) {
		uint64_t fpos = sfs_fmt_frame_offset(k);
		size_t flen = size - fpos < SFS_LOG_FRAME ? (size_t)(size - fpos) : SFS_LOG_FRAME;
		size_t at = 0;
		ssize_t n = sfs_pread_all(fd, fb, flen, fpos);

		if (n != (ssize_t)flen) {
			sfs_fsck_add_state(s->c, s, where, plain, "io", SFS_FSCK_FAILED, -EIO,
					   "the event log cannot be read");
			break;
		}
		while (at < flen && sfs_fmt_record_pos(fpos + at) == fpos + at) {
			struct sfs_rec r;

			if (try_rec(&w, fb, flen, fpos, at, &r, out, !in_span)) {
				if (in_span) {
					/* A failing span ends at the next record that opens. */
					w.span_bytes += fpos + at - w.first_span_pos;
					if (w.spans == 1) {
						w.first_span_end = r.offset;
					}
					w.off = r.offset;
					w.lines = r.lines;
					w.linelen = 0;
					w.line_cut = true;
					in_span = false;
					good_after_span++;
				}
				take(&w, out, r.len);
				sodium_memzero(out, r.len);
				w.off += r.len;
				at += (size_t)r.len + SFS_REC_OVERHEAD;
				if (r.flags & SFS_REC_END) {
					last_end = fpos + at;
					good_after_span = 0;
				}
				continue;
			}
			if (!in_span) {
				in_span = true;
				if (w.spans++ == 0) {
					w.first_span_pos = fpos + at;
					w.first_span_off = w.off;
					w.first_span_line = w.lines + 1;
				}
			}
			at++;
		}
		sfs_fsck_bytes(s->c, flen);
	}
	sodium_memzero(fb, SFS_LOG_FRAME);
	free(fb);
	free(out);
	if (w.line) {
		sodium_memzero(w.line, w.linecap);
		free(w.line);
	}
	if (sfs_fsck_stop(s->c))
		return 0;

	/* The end: what a crash leaves there is unlock's to cut, and ours with -y. */
	rc = sfs_log_load(&l);
	if (rc == -EBADMSG || last_end < size) {
		uint64_t tail = size - last_end;

		/* A span that only the tail holds is the torn tail, not damage. */
		if (in_span && w.spans > 0 && w.first_span_pos >= last_end)
			w.spans--;
		sfs_fsck_add(s->c, s, where, plain, "torn-tail",
			     "cut it off as unlock does, keeping its bytes in an events.kept-* "
			     "file of the container",
			     fix_tail, &l,
			     "a torn tail: %llu stored bytes after the last complete append (what "
			     "a crash in the middle of an append leaves)",
			     (unsigned long long)tail);
	} else if (rc < 0) {
		sfs_fsck_add_state(s->c, s, where, plain, "io", SFS_FSCK_FAILED, rc,
				   "the event log cannot be loaded: %s", strerror(-rc));
	}
	if (w.spans > 0)
		sfs_fsck_add(s->c, s, where, plain, "log-damage", NULL, NULL, NULL,
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
	(void)good_after_span;
	return 0;
}
