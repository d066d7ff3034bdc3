/*
 * redact.c - redaction of text, event lines and a session's event log;
 * see redact.h and doc/format.md ("Redaction").
 *
 * A log is rewritten whole: its plaintext is read line by line, each line
 * redacted, and the lines appended in batches to a new log that has the old
 * one's id and header; only when complete and fsynced is it renamed over
 * events.jsonl. A crash before the rename leaves the old log and a temporary
 * that unlock sweeps; after it, the new log.
 */
#include "redact.h"
#include "fileio.h"
#include "format.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARK_LEN (sizeof(SFS_REDACT_MARK) - 1)
#define READ_CHUNK (1u << 20) /* plaintext read from the old log at a time */
#define BATCH (1u << 20)      /* lines appended to the new log at a time */

/* A growing byte buffer whose old contents are wiped when it moves. */
struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (b->p) {
			memcpy(p, b->p, b->len);
			sodium_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_free(struct buf *b)
{
	if (b->p) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	*b = (struct buf){0};
}

static int redact_cstr(const regex_t *re, const char *in, size_t len, char **out, size_t *outlen,
		       uint64_t *count);

/*
 * What glibc's matcher cannot bound, found before regcomp. It matches
 * back-references by backtracking, in time exponential in the line:
 * "(.*)(.*)\\1\\2x" does not end on 100 bytes. And it expands a counted
 * repetition {m,n} into n copies of its atom, nested ones multiplied:
 * "(.{1,255}){1,255}x" is 65025 states, 20 s on a 200-byte line, and deeper
 * nests take gigabytes to compile. A rule runs on every append, a
 * redaction under the log's lock: so no back-reference (\\1 to \\9 outside
 * a bracket expression), and the copies counts make at most
 * SFS_REDACT_EXPAND_MAX more atoms than the pattern writes (".{1,1000}"
 * passes: about 10 s per MiB of line at worst).
 */
#define SFS_REDACT_EXPAND_MAX 1000
#define TOO_FAR                                                                                    \
	"repetition counts ({m,n}) expand the pattern too far (glibc would take minutes on a "     \
	"long line)"

/* Skip the bracket expression whose '[' @p follows; past its ']'. */
static const char *skip_bracket(const char *p)
{
	if (*p == '^')
		p++;
	if (*p == ']')
		p++; /* a ']' first is one of the set */
	while (*p && *p != ']') {
		/* "[:", "[." and "[=" end at ":]", ".]" or "=]"; a backslash is itself */
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char end = p[1];

			for (p += 2; *p && !(p[0] == end && p[1] == ']'); p++)
				;
			p += *p ? 2 : 0;
		} else {
			p++;
		}
	}
	return *p ? p + 1 : p;
}

/*
 * The bound of the interval "{m}", "{m,}" or "{m,n}" at @q (after its
 * '{'): n, else m, with *@end past its '}'; -1 if it is none.
 */
static long interval(const char *q, const char **end)
{
	long m = 0, n = -1;

	if (*q < '0' || *q > '9')
		return -1;
	for (; *q >= '0' && *q <= '9'; q++)
		m = m < 100000 ? m * 10 + (*q - '0') : m;
	if (*q == ',') {
		q++;
		if (*q >= '0' && *q <= '9')
			for (n = 0; *q >= '0' && *q <= '9'; q++)
				n = n < 100000 ? n * 10 + (*q - '0') : n;
	}
	if (*q != '}')
		return -1;
	*end = q + 1;
	return n >= 0 ? n : m;
}

/* NULL if ERE @p is one glibc matches in bounded time, else why not. */
static const char *unbounded(const char *p)
{
	size_t depth = 0, cap = strlen(p) + 2, written = 0;
	uint64_t total = 0;
	const char *end;
	/* per open group: atoms so far (copies counted), and its last atom's */
	uint64_t *size = calloc(cap, sizeof(*size)), *last = calloc(cap, sizeof(*last));
	const char *why = NULL;
	long bound;

	if (!size || !last) {
		free(size);
		free(last);
		return NULL; /* regcomp will say ENOMEM soon enough */
	}
	while (*p && !why) {
		uint64_t atom = 1;

		if (*p == '\\' && p[1] >= '1' && p[1] <= '9') {
			why = "back-references (\\1 to \\9) are not supported";
			break;
		}
		if (*p == '(' && depth + 1 < cap) {
			depth++;
			size[depth] = last[depth] = 0;
			p++;
			continue;
		}
		if (*p == ')' && depth > 0) {
			atom = size[depth] ? size[depth] : 1;
			depth--;
			p++;
		} else if (*p == '{' && last[depth] && (bound = interval(p + 1, &end)) >= 0) {
			/* the last atom, now @bound copies of it (checked at once: no overflow) */
			uint64_t more = last[depth] * (uint64_t)(bound > 1 ? bound : 1);

			size[depth] += more - last[depth];
			last[depth] = more;
			if (size[depth] > written + SFS_REDACT_EXPAND_MAX)
				why = TOO_FAR;
			p = end;
			continue;
		} else if (*p == '|' || *p == '^' || *p == '$') {
			last[depth] = 0;
			p++;
			continue;
		} else if (*p == '*' || *p == '+' || *p == '?') {
			p++;
			continue;
		} else if (*p == '[') {
			p = skip_bracket(p + 1);
		} else {
			p += *p == '\\' && p[1] ? 2 : 1;
		}
		written++;
		size[depth] += atom;
		last[depth] = atom;
	}
	/* the whole, groups left open included (regcomp refuses those) */
	for (size_t i = 0; !why && i <= depth; i++)
		total += size[i];
	if (!why && total > written + SFS_REDACT_EXPAND_MAX)
		why = TOO_FAR;
	free(size);
	free(last);
	return why;
}

int sfs_redact_compile(regex_t *re, const char *pattern, char *err, size_t errsz)
{
	regmatch_t m[1];
	int rc;

	const char *why = unbounded(pattern);

	if (why) {
		snprintf(err, errsz, "%s", why);
		return -EINVAL;
	}
	rc = regcomp(re, pattern, REG_EXTENDED | REG_NEWLINE);
	if (rc != 0) {
		regerror(rc, re, err, errsz);
		regfree(re);
		return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
	}
	if (regexec(re, "", 1, m, 0) == 0) {
		snprintf(err, errsz, "the pattern matches the empty string");
		regfree(re);
		return -EINVAL;
	}
	return 0;
}

/*
 * regexec on @in, @len bytes that may not be NUL-terminated: REG_STARTEND
 * bounds the match, but a string is what regexec takes (and what a
 * sanitizer's regexec checks, up to its NUL), so a terminated copy is used.
 */
int sfs_redact_text(const regex_t *re, const char *in, size_t len, char **out, size_t *outlen,
		    uint64_t *count)
{
	char *own = malloc(len + 1);
	int rc;

	*out = NULL;
	*outlen = 0;
	*count = 0;
	if (!own)
		return -ENOMEM;
	memcpy(own, in, len);
	own[len] = '\0';
	rc = redact_cstr(re, own, len, out, outlen, count);
	sodium_memzero(own, len);
	free(own);
	return rc;
}

/* sfs_redact_text on @in, which has a NUL at in[len]. */
static int redact_cstr(const regex_t *re, const char *in, size_t len, char **out, size_t *outlen,
		       uint64_t *count)
{
	struct buf b = {0};
	size_t pos = 0, copied = 0;
	uint64_t n = 0;
	int rc = 0;

	*out = NULL;
	*outlen = 0;
	while (pos < len) {
		regmatch_t m[1] = {{.rm_so = (regoff_t)pos, .rm_eo = (regoff_t)len}};
		size_t s, e;

		/* REG_STARTEND: the whole of @in is the string, so ^ and NULs are right */
		if (regexec(re, in, 1, m, REG_STARTEND) != 0)
			break;
		s = (size_t)m[0].rm_so;
		e = (size_t)m[0].rm_eo;
		if (e <= s) {
			pos = s + 1; /* a match of nothing marks nothing */
			continue;
		}
		/* whole UTF-8 characters: continuation bytes go with their character */
		while (s > copied && ((unsigned char)in[s] & 0xc0) == 0x80)
			s--;
		while (e < len && ((unsigned char)in[e] & 0xc0) == 0x80)
			e++;
		rc = buf_add(&b, in + copied, s - copied);
		if (rc == 0)
			rc = buf_add(&b, SFS_REDACT_MARK, MARK_LEN);
		if (rc < 0)
			break;
		copied = pos = e;
		n++;
	}
	if (rc == 0 && n > 0)
		rc = buf_add(&b, in + copied, len - copied);
	if (rc < 0 || n == 0) {
		buf_free(&b);
		*count = 0;
		return rc;
	}
	*out = b.p;
	*outlen = b.len;
	*count = n;
	return 0;
}

/* Redact every string value under @v in place; matches added to *@n. 0 or -errno. */
static int redact_json(const regex_t *re, json_t *v, uint64_t *n)
{
	const char *key;
	json_t *x;
	size_t i;
	int rc = 0;

	if (json_is_string(v)) {
		char *out;
		size_t outlen;
		uint64_t k;

		rc = sfs_redact_text(re, json_string_value(v), json_string_length(v), &out, &outlen,
				     &k);
		if (rc == 0 && out) {
			/* the input was valid UTF-8 and whole characters were replaced */
			rc = json_string_setn(v, out, outlen) == 0 ? 0 : -ENOMEM;
			sodium_memzero(out, outlen);
			free(out);
			*n += k;
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, x)
		{
			rc = redact_json(re, x, n);
			if (rc < 0)
				break;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			rc = redact_json(re, x, n);
			if (rc < 0)
				break;
		}
	}
	return rc;
}

/*
 * The dump flags for @v: jansson writes reals with 17 digits (0.1 becomes
 * 0.10000000000000001); 15 read back as the same doubles for most numbers
 * people write, so 15 when the result reads back equal, else 17.
 */
static size_t shortest_reals(json_t *v)
{
	size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(15), n = json_dumpb(v, NULL, 0, flags);
	char *s = n ? malloc(n) : NULL;
	json_t *back = s && json_dumpb(v, s, n, flags) == n ? json_loadb(s, n, JSON_ALLOW_NUL, NULL)
							    : NULL;
	bool same = back && json_equal(v, back);

	if (s) {
		sodium_memzero(s, n);
		free(s);
	}
	json_decref(back);
	return same ? flags : JSON_COMPACT;
}

int sfs_redact_line(const regex_t *re, const char *line, size_t len, char **out, size_t *outlen,
		    uint64_t *count)
{
	json_t *v = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	uint64_t n = 0;
	size_t size;
	int rc;

	*out = NULL;
	*outlen = 0;
	*count = 0;
	if (!json_is_object(v)) {
		json_decref(v);
		return sfs_redact_text(re, line, len, out, outlen, count);
	}
	rc = redact_json(re, v, &n);
	if (rc == 0 && n > 0) {
		size_t flags = shortest_reals(v);

		size = json_dumpb(v, NULL, 0, flags);
		*out = size ? malloc(size + 1) : NULL;
		if (!*out) {
			rc = -ENOMEM;
		} else {
			json_dumpb(v, *out, size, flags);
			(*out)[size] = '\0';
			*outlen = size;
			*count = n;
		}
	}
	json_decref(v);
	return rc;
}

void sfs_redact_pattern_hash(const char *pattern, char hex[SFS_REDACT_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)pattern, strlen(pattern));
	sodium_bin2hex(hex, SFS_REDACT_HASH_HEX, h, sizeof(h));
}

bool sfs_redact_is_text(const char *buf, size_t len)
{
	json_t *s;

	if (memchr(buf, '\0', len))
		return false;
	/* jansson checks UTF-8 the way it must for JSON strings */
	s = json_stringn(buf, len);
	json_decref(s);
	return s != NULL;
}

/* Append @b's lines to @l and empty it (wiped); 0 or -errno. */
static int flush_batch(struct sfs_log *l, struct buf *b)
{
	int rc = b->len ? sfs_log_append(l, b->p, b->len) : 0;

	if (b->len)
		sodium_memzero(b->p, b->len);
	b->len = 0;
	return rc;
}

/* Redact line @line (@len bytes, no newline) into @b with its newline; counts in @st. */
static int one_line(const regex_t *re, const char *line, size_t len, struct buf *b,
		    struct sfs_redact_stats *st)
{
	char *out;
	size_t outlen;
	uint64_t k;
	int rc = sfs_redact_line(re, line, len, &out, &outlen, &k);

	if (rc < 0)
		return rc;
	st->lines++;
	if (out) {
		st->changed++;
		st->matches += k;
		rc = buf_add(b, out, outlen);
		sodium_memzero(out, outlen);
		free(out);
	} else {
		rc = buf_add(b, line, len);
	}
	return rc == 0 ? buf_add(b, "\n", 1) : rc;
}

/* Every line of @old, redacted, appended to @nl in batches. */
static int copy_redacted(const struct sfs_log *old, struct sfs_log *nl, const regex_t *re,
			 struct sfs_redact_stats *st)
{
	struct buf carry = {0}, batch = {0};
	char *chunk = malloc(READ_CHUNK);
	uint64_t off = 0, size = old->size, bad = 0;
	int rc = chunk ? 0 : -ENOMEM;

	while (rc == 0 && off < size) {
		ssize_t got = sfs_log_pread(old, chunk, READ_CHUNK, off, &bad);
		size_t start = 0;

		if (got <= 0) {
			rc = got < 0 ? (int)got : -EIO;
			break;
		}
		for (size_t i = 0; rc == 0 && i < (size_t)got; i++) {
			if (chunk[i] != '\n')
				continue;
			if (carry.len) {
				rc = buf_add(&carry, chunk + start, i - start);
				if (rc == 0)
					rc = one_line(re, carry.p, carry.len, &batch, st);
				sodium_memzero(carry.p, carry.len);
				carry.len = 0;
			} else {
				rc = one_line(re, chunk + start, i - start, &batch, st);
			}
			start = i + 1;
			if (rc == 0 && batch.len >= BATCH)
				rc = flush_batch(nl, &batch);
		}
		if (rc == 0)
			rc = buf_add(&carry, chunk + start, (size_t)got - start);
		off += (uint64_t)got;
	}
	/* A last line without newline (no append leaves one): kept so. */
	if (rc == 0 && carry.len) {
		rc = one_line(re, carry.p, carry.len, &batch, st);
		if (rc == 0)
			batch.len--;
	}
	if (rc == 0)
		rc = flush_batch(nl, &batch);
	if (chunk) {
		sodium_memzero(chunk, READ_CHUNK);
		free(chunk);
	}
	buf_free(&carry);
	buf_free(&batch);
	return rc;
}

int sfs_log_redact_begin(int cfd, const struct sfs_log *old, const regex_t *re,
			 struct sfs_log_rewrite *rw, struct sfs_redact_stats *st)
{
	unsigned char dirid[SFS_ID_BYTES], id[SFS_ID_BYTES];
	struct sfs_attrs dattrs, a;
	struct sfs_ename en;
	int rc;

	memset(st, 0, sizeof(*st));
	memset(rw, 0, sizeof(*rw));
	rw->nl.fd = -1;
	rw->rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rw->rootfd < 0)
		return sfs_neg_errno();
	rc = sfs_tree_dir_load(rw->rootfd, dirid, &dattrs, old->keys);
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&en, SFS_EVENTS_NAME, dirid, old->keys);
	/* the header the new log keeps: the old one's (mode, owner, id) */
	if (rc == 0)
		rc = sfs_file_read_header(old->fd, id, &a, old->keys);
	if (rc == 0 && (en.is_long || sodium_memcmp(id, old->id, SFS_ID_BYTES) != 0))
		rc = -EIO;
	if (rc < 0)
		goto fail;
	snprintf(rw->backing, sizeof(rw->backing), "%s", en.backing);
	sfs_tree_tmpname(rw->tmp);
	rw->nl = (struct sfs_log){.fd = -1, .keys = old->keys, .end = SFS_HDR_BYTES};
	memcpy(rw->nl.id, id, SFS_ID_BYTES);
	rw->nl.fd = openat(rw->rootfd, rw->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			   0600);
	if (rw->nl.fd < 0) {
		rc = sfs_neg_errno();
		goto fail;
	}
	rc = sfs_log_create(rw->nl.fd, id, &a, old->keys);
	if (rc == 0)
		rc = copy_redacted(old, &rw->nl, re, st);
	if (rc == 0)
		return 0;
fail:
	sfs_log_redact_discard(rw);
	return rc;
}

int sfs_log_redact_publish(struct sfs_log_rewrite *rw)
{
	int rc = fsync(rw->nl.fd) < 0 ? sfs_neg_errno() : 0;

	if (rc == 0 && renameat(rw->rootfd, rw->tmp, rw->rootfd, rw->backing) < 0)
		rc = sfs_neg_errno();
	if (rc < 0) {
		sfs_log_redact_discard(rw);
		return rc;
	}
	rw->renamed = true;
	rc = sfs_fsync_dirfd(rw->rootfd);
	close(rw->rootfd);
	rw->rootfd = -1;
	return rc;
}

void sfs_log_redact_discard(struct sfs_log_rewrite *rw)
{
	if (rw->nl.fd >= 0) {
		sfs_log_close(&rw->nl);
		if (rw->rootfd >= 0)
			unlinkat(rw->rootfd, rw->tmp, 0);
	}
	if (rw->rootfd >= 0)
		close(rw->rootfd);
	rw->rootfd = -1;
}
