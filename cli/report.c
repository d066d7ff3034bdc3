/*
 * report.c - the `sessionctl report` command: reads an unlocked session
 * through its proven mount (every open is relative to the mount's root
 * descriptor) into a struct report, then hands it to a writer (report.h).
 *
 * Reads metadata.json, events.jsonl line by line (each line summarised,
 * none trusted: any bytes, any JSON, any size) and every regular file of
 * the session (size, mtime, SHA-256 through libsodium). A locked session
 * cannot be read: SFS_EXIT_CTL_LOCKED. Progress goes to stderr only when it
 * is a terminal and the report takes more than a second. Knows the
 * session's file names; nothing of crypto or the store format.
 */
#include "report.h"
#include "sessionctl.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUMMARY_MAX 160 /* bytes of an event's one-line summary */
#define DEPTH_MAX 64	/* directory levels walked for files */

/* ---- formatting shared by the writers ---- */

void rep_iso(char *out, size_t size, double t)
{
	time_t s = isfinite(t) ? (time_t)t : 0;
	int ms;
	struct tm tm;

	if ((double)s > t)
		s--; /* rounded towards zero: down instead */
	ms = (int)((t - (double)s) * 1000.0 + 0.5);
	if (ms >= 1000) {
		s++;
		ms = 0;
	}
	if (!isfinite(t) || !gmtime_r(&s, &tm)) {
		snprintf(out, size, "-");
		return;
	}
	if (ms)
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	else
		snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void rep_duration(char *out, size_t size, double sec)
{
	long long s = (long long)sec;

	if (!isfinite(sec))
		snprintf(out, size, "-");
	else if (sec < 60)
		snprintf(out, size, "%.3gs", sec);
	else if (s < 3600)
		snprintf(out, size, "%lldm %02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%lldh %02lldm %02llds", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(out, size, "%lldd %lldh %02lldm %02llds", s / 86400, s / 3600 % 24,
			 s / 60 % 60, s % 60);
}

const char *rep_entity(char c, bool quotes)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return quotes ? "&quot;" : NULL;
	case '\'':
		return quotes ? "&#39;" : NULL;
	default:
		return NULL;
	}
}

char *rep_dumps(const json_t *v, size_t flags)
{
	json_free_t jfree;
	char *s = json_dumps(v, flags), *copy = s ? strdup(s) : NULL;

	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
	return copy;
}

static struct timespec started;
static bool progress_shown;

/* "sessionctl: report: ..." on one terminal line, at most 5 times a second, after 1 s. */
void rep_progress(const char *fmt, ...)
{
	static struct timespec last;
	struct timespec now;
	va_list ap;

	if (!isatty(STDERR_FILENO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - started.tv_sec < 1 ||
	    (now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) < 200000000L)
		return;
	last = now;
	fputs("\rsessionctl: report: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\033[K", stderr);
	progress_shown = true;
}

static void progress_end(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

/* ---- events ---- */

/*
 * An ISO 8601 date and time ("2026-01-02T03:04:05.25Z", a space for the T,
 * an offset +02:00 or +0200, no zone taken as UTC): seconds since the
 * epoch, or NAN.
 */
static double parse_iso(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	double frac = 0;
	char sep;
	struct tm tm = {0};

	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &n) != 7 ||
	    (sep != 'T' && sep != 't' && sep != ' ') || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 60)
		return NAN;
	s += n;
	if (*s == '.' || *s == ',') {
		double scale = 0.1;

		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += (*s - '0') * scale;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;

		if (sscanf(s + 1, "%2d:%2d", &oh, &om) != 2 &&
		    sscanf(s + 1, "%2d%2d", &oh, &om) != 2)
			return NAN;
		oh *= sign;
		om *= sign;
		s += strlen(s);
	}
	if (*s)
		return NAN;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (double)timegm(&tm) - oh * 3600.0 - om * 60.0 + frac;
}

/* The event's time from timestamp, time or ts: a string or a number of s, ms or us. */
static void event_time(struct rep_event *e, json_t *o)
{
	static const char *const keys[] = {"timestamp", "time", "ts"};
	char iso[40];

	e->t = NAN;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(o, keys[i]);

		if (json_is_string(v)) {
			e->time = strdup(json_string_value(v));
			e->t = parse_iso(json_string_value(v));
			return;
		}
		if (json_is_number(v)) {
			double t = json_number_value(v);

			if (fabs(t) >= 1e14)
				t /= 1e6; /* microseconds */
			else if (fabs(t) >= 1e11)
				t /= 1e3; /* milliseconds */
			e->t = t;
			rep_iso(iso, sizeof(iso), t);
			e->time = strdup(iso);
			return;
		}
	}
}

/* Append @s (any length) to the summary @buf of @len bytes, as one line; false when full. */
static bool add_text(char *buf, size_t *len, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (*len + 4 >= SUMMARY_MAX) {
			/* Cut at a character boundary, then "...". */
			while (*len > 0 && ((unsigned char)buf[*len - 1] & 0xc0) == 0x80)
				(*len)--;
			if (*len > 0 && (unsigned char)buf[*len - 1] >= 0xc0)
				(*len)--;
			memcpy(buf + *len, "...", 4);
			*len += 3;
			return false;
		}
		buf[(*len)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	buf[*len] = '\0';
	return true;
}

/* A member's value as text: a string as is, anything else as compact JSON. */
static char *value_text(json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return rep_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* tool_name, then text or message; without either, the members but the time and type. */
static char *event_summary(json_t *o)
{
	static const char *const skip[] = {"timestamp", "time", "ts", "type"};
	char buf[SUMMARY_MAX + 4];
	json_t *tool = json_object_get(o, "tool_name"), *text = json_object_get(o, "text");
	size_t len = 0;
	char *s;

	buf[0] = '\0';
	if (!text)
		text = json_object_get(o, "message");
	if (tool || text) {
		if (tool && (s = value_text(tool))) {
			add_text(buf, &len, s);
			free(s);
			if (text)
				add_text(buf, &len, ": ");
		}
		if (text && (s = value_text(text))) {
			add_text(buf, &len, s);
			free(s);
		}
		return strdup(buf);
	}
	json_t *rest = json_deep_copy(o);

	for (size_t i = 0; rest && i < sizeof(skip) / sizeof(skip[0]); i++)
		json_object_del(rest, skip[i]);
	s = rest && json_object_size(rest) ? rep_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(rest);
	if (s) {
		add_text(buf, &len, s);
		free(s);
	}
	return strdup(buf);
}

/* @s (taken over, freed) as one line of at most SUMMARY_MAX bytes; NULL if out of memory. */
static char *one_line(char *s)
{
	char *buf = s ? malloc(SUMMARY_MAX + 4) : NULL;
	size_t len = 0;

	if (buf) {
		buf[0] = '\0';
		add_text(buf, &len, s);
	}
	free(s);
	return buf;
}

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80		    ? 1
		     : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
		     : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
						    : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

/* @raw (taken over) of @n bytes with NULs and invalid UTF-8 as U+FFFD; NULL if out of memory. */
static char *valid_utf8(char *raw, size_t n)
{
	char *out = raw ? malloc(3 * n + 1) : NULL, *p = out;

	for (size_t i = 0, l; out && i < n; i += l ? l : 1) {
		l = raw[i] ? utf8_len((const unsigned char *)raw + i, n - i) : 0;
		if (l) {
			memcpy(p, raw + i, l);
			p += l;
		} else {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
		}
	}
	if (out)
		*p = '\0';
	free(raw);
	return out;
}

/* Fill @e from one line @raw (taken over) of length @n. 0 or -ENOMEM. */
static int parse_event(struct rep_event *e, char *raw, size_t n)
{
	json_t *o = json_loadb(raw, n, JSON_DECODE_ANY, NULL);

	e->t = NAN;
	e->json = o != NULL;
	e->raw = o ? raw : valid_utf8(raw, n);
	if (!o) {
		e->type = strdup("(not JSON)");
		e->summary = one_line(e->raw ? strdup(e->raw) : NULL);
	} else if (!json_is_object(o)) {
		e->type = strdup("(not an object)");
		e->summary = one_line(rep_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY));
	} else {
		json_t *type = json_object_get(o, "type");

		event_time(e, o);
		e->type = type ? one_line(value_text(type)) : strdup("(no type)");
		if (e->type && !*e->type) {
			free(e->type);
			e->type = strdup("(empty type)");
		}
		e->summary = event_summary(o);
	}
	json_decref(o);
	return e->raw && e->type && e->summary ? 0 : -ENOMEM;
}

static int cmp_count(const void *a, const void *b)
{
	const struct rep_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(x->type, y->type);
}

/* Counts by type (a jansson object as the hash table) and the time span. 0 or -ENOMEM. */
static int count_events(struct report *r)
{
	json_t *idx = json_object();

	r->first = r->last = NAN;
	r->types = calloc(r->nev + 1, sizeof(*r->types));
	if (!idx || !r->types) {
		json_decref(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nev; i++) {
		struct rep_event *e = &r->ev[i];
		json_t *k = json_object_get(idx, e->type);

		if (k) {
			r->types[json_integer_value(k)].n++;
		} else {
			if (json_object_set_new(idx, e->type, json_integer((json_int_t)r->ntypes)))
				break;
			r->types[r->ntypes++] = (struct rep_count){e->type, 1};
		}
		if (isfinite(e->t)) {
			r->ntimed++;
			if (!(e->t >= r->first))
				r->first = e->t;
			if (!(e->t <= r->last))
				r->last = e->t;
		}
	}
	json_decref(idx);
	qsort(r->types, r->ntypes, sizeof(*r->types), cmp_count);
	return 0;
}

/* Read events.jsonl of the session @dfd; a read error after some lines is kept in events_err. */
static int read_events(struct report *r, int dfd)
{
	int fd = openat(dfd, SFS_EVENTS_NAME, O_RDONLY | O_CLOEXEC);
	size_t cap = 0, lineno = 0;
	FILE *f;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		char *line = NULL;
		size_t lcap = 0;
		ssize_t n;

		errno = 0;
		n = getline(&line, &lcap, f);
		if (n < 0) {
			free(line);
			if (errno && errno != ENOMEM)
				snprintf(r->events_err, sizeof(r->events_err),
					 "read error after line %zu: %s", lineno, strerror(errno));
			if (errno == ENOMEM)
				return fclose(f), -ENOMEM;
			break;
		}
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0) {
			free(line);
			continue; /* blank lines are no events */
		}
		if (r->nev == cap) {
			struct rep_event *ev;

			cap = cap ? 2 * cap : 1024;
			ev = realloc(r->ev, cap * sizeof(*ev));
			if (!ev)
				return free(line), fclose(f), -ENOMEM;
			r->ev = ev;
		}
		memset(&r->ev[r->nev], 0, sizeof(r->ev[0]));
		r->ev[r->nev].line = lineno;
		if (parse_event(&r->ev[r->nev++], line, (size_t)n))
			return fclose(f), -ENOMEM;
		if (lineno % 4096 == 0)
			rep_progress("reading events: %zu lines", lineno);
	}
	fclose(f);
	return count_events(r);
}

/* ---- files ---- */

static int hash_file(int dfd, const char *name, struct rep_file *rf)
{
	crypto_hash_sha256_state st;
	unsigned char buf[1 << 16], h[crypto_hash_sha256_BYTES];
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(rf->sha256, sizeof(rf->sha256), h, sizeof(h));
	return 0;
}

struct walk {
	struct report *r;
	size_t cap;
	unsigned long long bytes; /* hashed so far, for the progress line */
};

/* Every regular file under @dfd (taken over), as @prefix/NAME. 0 or -errno. */
static int walk(struct walk *w, int dfd, const char *prefix, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while (rc == 0 && (errno = 0, de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "",
				     de->d_name) >= sizeof(path))
			continue;
		if (S_ISDIR(st.st_mode) && depth < DEPTH_MAX) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0)
				rc = walk(w, sub, path, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (w->r->nfiles == w->cap) {
			struct rep_file *f;

			w->cap = w->cap ? 2 * w->cap : 64;
			f = realloc(w->r->files, w->cap * sizeof(*f));
			if (!f) {
				rc = -ENOMEM;
				break;
			}
			w->r->files = f;
		}
		struct rep_file *rf = &w->r->files[w->r->nfiles];

		memset(rf, 0, sizeof(*rf));
		rf->path = valid_utf8(strdup(path), strlen(path));
		if (!rf->path) {
			rc = -ENOMEM;
			break;
		}
		w->r->nfiles++;
		rf->size = st.st_size;
		rf->mtime = st.st_mtim;
		rf->err = -hash_file(dirfd(d), de->d_name, rf);
		w->bytes += (unsigned long long)st.st_size;
		rep_progress("hashing files: %zu files, %llu MiB", w->r->nfiles, w->bytes >> 20);
	}
	closedir(d);
	return rc;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct rep_file *)a)->path, ((const struct rep_file *)b)->path);
}

/* ---- the command ---- */

static void report_free(struct report *r)
{
	for (size_t i = 0; i < r->nev; i++) {
		free(r->ev[i].time);
		free(r->ev[i].type);
		free(r->ev[i].summary);
		free(r->ev[i].raw);
	}
	free(r->ev);
	free(r->types);
	for (size_t i = 0; i < r->nfiles; i++)
		free(r->files[i].path);
	free(r->files);
	json_decref(r->meta);
}

int sfs_report_check(struct cmd *c)
{
	if (c->format && strcmp(c->format, "md") && strcmp(c->format, "json") &&
	    strcmp(c->format, "html"))
		return die(SFS_EXIT_USAGE, "report: unknown format '%s' (md, json or html)",
			   c->format);
	if (c->output && !*c->output)
		return die(SFS_EXIT_USAGE, "report: -o needs a file name");
	return SFS_EXIT_OK;
}

/* Whether the daemon's list says session @id is unlocked by another mount of the store. */
static bool unlocked_elsewhere(const struct mount *m, const char *id)
{
	json_t *resp = NULL, *s;
	bool yes = false;
	size_t i;

	if (call(m, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_LIST)),
		 "list", &resp) == SFS_EXIT_OK)
		json_array_foreach(json_object_get(resp, SFS_PROTO_F_SESSIONS), i, s)
		{
			const char *sid = json_string_value(json_object_get(s, SFS_PROTO_F_ID));

			if (sid && !strcmp(sid, id))
				yes = json_is_true(
					json_object_get(s, SFS_PROTO_F_UNLOCKED_ELSEWHERE));
		}
	json_decref(resp);
	return yes;
}

/* Open the session directory; an exit code (after saying why) if it cannot be read. */
static int open_session(struct cmd *c, const char *what, int *dfd)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", c->t.where, c->t.id);
	*dfd = openat(c->m.fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd >= 0 && fstatat(*dfd, SFS_METADATA_NAME, &st, 0) == 0)
		return SFS_EXIT_OK;
	int e = errno;

	if (*dfd >= 0)
		close(*dfd);
	*dfd = -1;
	switch (e) {
	case EACCES:
		if (unlocked_elsewhere(&c->m, c->t.id))
			return die(SFS_EXIT_CTL_BUSY,
				   "%s: the session is unlocked by another mount of the store "
				   "(report it there)",
				   what);
		return die(SFS_EXIT_CTL_LOCKED, "%s: the session is locked (unlock it first)",
			   what);
	case EBUSY:
		return die(SFS_EXIT_CTL_BUSY, "%s: the session is unlocked by another mount", what);
	case ENOENT:
		return die(SFS_EXIT_CTL_NO_SESSION, "%s: no such session", what);
	default:
		return die(SFS_EXIT_FAIL, "%s: %s", what, strerror(e));
	}
}

static int read_report(struct report *r, int dfd, const char *what)
{
	int fd = openat(dfd, SFS_METADATA_NAME, O_RDONLY | O_CLOEXEC);
	json_error_t jerr;
	struct walk w = {.r = r};
	int rc;

	if (fd < 0) {
		snprintf(r->meta_err, sizeof(r->meta_err), "%s", strerror(errno));
	} else {
		r->meta = json_loadfd(fd, 0, &jerr);
		if (!r->meta)
			snprintf(r->meta_err, sizeof(r->meta_err), "%s", jerr.text);
		close(fd);
	}
	rc = read_events(r, dfd);
	if (rc) {
		progress_end();
		return die(SFS_EXIT_FAIL, "%s: %s: %s", what, SFS_EVENTS_NAME, strerror(-rc));
	}
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : walk(&w, fd, "", 0);
	if (rc) {
		progress_end();
		return die(SFS_EXIT_FAIL, "%s: listing the files: %s", what, strerror(-rc));
	}
	qsort(r->files, r->nfiles, sizeof(*r->files), cmp_file);
	return SFS_EXIT_OK;
}

int sfs_report_run(struct cmd *c)
{
	const char *fmt = c->format ? c->format : "md";
	struct report r = {.id = c->t.id, .where = c->t.where};
	char what[96];
	FILE *out = stdout;
	int dfd, rc, wrc;

	clock_gettime(CLOCK_MONOTONIC, &started);
	snprintf(what, sizeof(what), "cannot report %s", c->t.id);
	rc = open_session(c, what, &dfd);
	if (rc)
		return rc;
	r.generated = time(NULL);
	rc = read_report(&r, dfd, what);
	close(dfd);
	mount_close(&c->m);
	progress_end();
	if (rc == SFS_EXIT_OK && c->output && !(out = fopen(c->output, "we")))
		rc = die(SFS_EXIT_FAIL, "%s: cannot write: %s", c->output, strerror(errno));
	if (rc == SFS_EXIT_OK) {
		rep_progress("writing %s", fmt);
		wrc = !strcmp(fmt, "json")   ? rep_write_json(&r, out)
		      : !strcmp(fmt, "html") ? rep_write_html(&r, out)
					     : rep_write_md(&r, out);
		if (fflush(out) && !wrc)
			wrc = -errno;
		if (out != stdout && fclose(out) && !wrc)
			wrc = -errno;
		progress_end();
		if (wrc)
			rc = die(SFS_EXIT_FAIL, "%s: cannot write: %s",
				 c->output ? c->output : "standard output", strerror(-wrc));
	}
	if (rc == SFS_EXIT_OK && r.events_err[0])
		rc = die(SFS_EXIT_FAIL, "%s: %s: %s (the report has the lines before it)", what,
			 SFS_EVENTS_NAME, r.events_err);
	report_free(&r);
	return rc;
}
