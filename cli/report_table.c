/*
 * report_table.c - the sections of `sessionctl report` that Markdown and
 * HTML both write (the metadata, the counts by type, the timeline rows, the
 * files), each walked once over a struct report (report.h) and written
 * through the struct rep_format that report_text.c (Markdown) or
 * report_html.c (HTML) provides.
 *
 * Every text from the session goes through the format's text() or cell(),
 * which escape it; the headings, column names and fixed sentences here are
 * our own. Knows the struct report and which sections hold what; nothing
 * of any format's syntax or escaping.
 */
#include "report.h"

#include <string.h>

#define ROWS(a) (sizeof(a) / sizeof((a)[0]))

size_t rep_rank(const struct report *r, const char *type, size_t max)
{
	for (size_t i = 0; i < r->ntypes && i < max; i++)
		if (r->types[i].type == type || strcmp(r->types[i].type, type) == 0)
			return i;
	return max;
}

void rep_heading(const struct rep_format *f, FILE *out, const char *title)
{
	fprintf(out, "%s%s%s", f->heading[0], title, f->heading[1]);
}

/* Our @text, then @untrusted (may be NULL) escaped, as one paragraph. */
static void para(const struct rep_format *f, FILE *out, const char *text, const char *untrusted)
{
	fprintf(out, "%s%s", f->para[0], text);
	if (untrusted)
		f->text(out, untrusted);
	fputs(f->para[1], out);
}

/* metadata.json's fields in its order, a non-string as compact JSON. */
void rep_meta(const struct rep_format *f, const struct report *r, FILE *out)
{
	static const struct rep_col cols[] = {{"Field", REP_KEY}, {"Value", REP_TEXT}};
	const char *key;
	json_t *v;

	rep_heading(f, out, "Metadata");
	if (!r->meta) {
		para(f, out, "metadata.json could not be read: ", r->meta_err);
		return;
	}
	f->table(out, cols, ROWS(cols));
	json_object_foreach(r->meta, key, v)
	{
		char *s = json_is_string(v) ? NULL : rep_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		f->cell(out, 0, REP_KEY, key, 0);
		f->cell(out, 1, REP_TEXT, s ? s : json_string_value(v), 0);
		fputs(f->row_end, out);
		free(s);
	}
	fputs(f->table_end, out);
}

/* How many events have each type, most frequent first; nothing if there are none. */
void rep_types(const struct rep_format *f, const struct report *r, FILE *out)
{
	static const struct rep_col cols[] = {{"Type", REP_TYPE}, {"Events", REP_NUM}};
	char n[24];

	if (!r->ntypes)
		return;
	f->table(out, cols, ROWS(cols));
	for (size_t i = 0; i < r->ntypes; i++) {
		snprintf(n, sizeof(n), "%zu", r->types[i].n);
		f->cell(out, 0, REP_TYPE, r->types[i].type, i < f->ranked ? i : f->ranked);
		f->cell(out, 1, REP_NUM, n, 0);
		fputs(f->row_end, out);
	}
	fputs(f->table_end, out);
}

/* Every event as a row, in file order (HTML shows its timeline by script instead). */
void rep_events(const struct rep_format *f, const struct report *r, FILE *out)
{
	static const struct rep_col cols[] = {
		{"Line", REP_NUM}, {"Time", REP_TIME}, {"Type", REP_TYPE}, {"Summary", REP_TEXT}};
	char n[24];

	rep_heading(f, out, "Timeline");
	if (!r->nev) {
		para(f, out, "No events.", NULL);
		return;
	}
	f->table(out, cols, ROWS(cols));
	for (size_t i = 0; i < r->nev; i++) {
		const struct rep_event *e = &r->ev[i];

		snprintf(n, sizeof(n), "%zu", e->line);
		f->cell(out, 0, REP_NUM, n, 0);
		f->cell(out, 1, REP_TIME, e->time ? e->time : "-", 0);
		f->cell(out, 2, REP_TYPE, e->type, rep_rank(r, e->type, f->ranked));
		f->cell(out, 3, REP_TEXT, e->summary, 0);
		fputs(f->row_end, out);
		if (i % 8192 == 0)
			rep_progress("writing %s: %zu of %zu events", f->name, i, r->nev);
	}
	fputs(f->table_end, out);
}

/* Every regular file, by path: size, mtime (seconds), SHA-256 or why it is missing. */
void rep_files(const struct rep_format *f, const struct report *r, FILE *out)
{
	static const struct rep_col cols[] = {{"Path", REP_TEXT},
					      {"Size", REP_NUM},
					      {"Modified", REP_TIME},
					      {"SHA-256", REP_CODE}};
	char size[24], m[40], why[128];

	rep_heading(f, out, "Files");
	if (!r->nfiles) {
		para(f, out, "No files.", NULL);
		return;
	}
	f->table(out, cols, ROWS(cols));
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct rep_file *fi = &r->files[i];

		snprintf(size, sizeof(size), "%lld", (long long)fi->size);
		rep_iso(m, sizeof(m), (double)fi->mtime.tv_sec);
		f->cell(out, 0, REP_TEXT, fi->path, 0);
		f->cell(out, 1, REP_NUM, size, 0);
		f->cell(out, 2, REP_TIME, m, 0);
		if (fi->err) {
			snprintf(why, sizeof(why), "(unreadable: %s)", strerror(fi->err));
			f->cell(out, 3, REP_TEXT, why, 0);
		} else {
			f->cell(out, 3, REP_CODE, fi->sha256, 0);
		}
		fputs(f->row_end, out);
	}
	fputs(f->table_end, out);
}
