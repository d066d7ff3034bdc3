/*
 * report_text.c - `sessionctl report --format md` (GitHub-flavoured
 * Markdown) and `--format json` (one JSON document, doc/sessionctl.1
 * "REPORT FORMAT"), written from a struct report (report.h).
 *
 * Everything from the session is untrusted: in Markdown every such text is
 * one table cell (| escaped, newlines and control characters as spaces, <
 * > & as entities so no HTML gets through); JSON is written by jansson,
 * events.jsonl lines verbatim only when jansson parsed them. The Markdown
 * sections are walked by report_table.c through the struct rep_format
 * here. Knows only the struct and the two formats.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* @s as the text of a Markdown table cell. */
static void md_cell(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *e = rep_entity(*s, false);

		if (e)
			fputs(e, out);
		else if (c == '|' || c == '\\' || c == '`')
			fprintf(out, "\\%c", c);
		else
			fputc(c < 0x20 || c == 0x7f ? ' ' : c, out);
	}
}

/* Cell @i of a row: | between cells, a hash as `code`. */
static void md_table_cell(FILE *out, size_t i, enum rep_cell kind, const char *s, size_t rank)
{
	(void)rank;
	fputs(i ? " | " : "| ", out);
	if (kind == REP_CODE)
		fputc('`', out);
	md_cell(out, s);
	if (kind == REP_CODE)
		fputc('`', out);
}

/* After a blank line: the header row, then the alignment row (numbers to the right). */
static void md_table(FILE *out, const struct rep_col *cols, size_t ncols)
{
	fputc('\n', out);
	for (size_t i = 0; i < ncols; i++)
		md_table_cell(out, i, REP_TEXT, cols[i].head, 0);
	fputs(" |\n", out);
	for (size_t i = 0; i < ncols; i++)
		fputs(cols[i].kind == REP_NUM ? "|---:" : "|---", out);
	fputs("|\n", out);
}

/* Every block starts with the blank line that parts it from what is before it. */
static const struct rep_format md = {
	.name = "md",
	.text = md_cell,
	.heading = {"\n## ", "\n"},
	.para = {"\n", "\n"},
	.table = md_table,
	.cell = md_table_cell,
	.ranked = 0,
	.row_end = " |\n",
	.table_end = "",
};

int rep_write_md(const struct report *r, FILE *out)
{
	char a[40], b[40], d[40];

	rep_iso(a, sizeof(a), (double)r->generated);
	fprintf(out, "# Session %s\n\n", r->id);
	fprintf(out, "Report of `%s/%s`, made by `sessionctl report` at %s.\n", r->where, r->id, a);
	rep_meta(&md, r, out);

	rep_heading(&md, out, "Summary");
	fprintf(out, "\n- Events: %zu (%zu with a time)\n", r->nev, r->ntimed);
	if (r->ntimed) {
		rep_iso(a, sizeof(a), r->first);
		rep_iso(b, sizeof(b), r->last);
		rep_duration(d, sizeof(d), r->last - r->first);
		fprintf(out, "- From %s to %s (%s)\n", a, b, d);
	}
	fprintf(out, "- Files: %zu\n", r->nfiles);
	if (r->events_err[0])
		fprintf(out, "- events.jsonl was not read to its end: %s\n", r->events_err);
	rep_types(&md, r, out);
	rep_events(&md, r, out);
	rep_files(&md, r, out);
	return ferror(out) ? -EIO : 0;
}

/* Write @v (consumed) as JSON; a NULL (out of memory) as null. */
static void put(FILE *out, json_t *v)
{
	if (v)
		json_dumpf(v, out, JSON_COMPACT | JSON_ENCODE_ANY);
	else
		fputs("null", out);
	json_decref(v);
}

static json_t *time_or_null(double t)
{
	char s[40];

	if (!isfinite(t))
		return json_null();
	rep_iso(s, sizeof(s), t);
	return json_string(s);
}

int rep_write_json(const struct report *r, FILE *out)
{
	json_t *types = json_object();

	fputs("{\"report\":1,\"generated\":", out);
	put(out, time_or_null((double)r->generated));
	fputs(",\"session\":", out);
	put(out, json_string(r->id));
	fputs(",\"where\":", out);
	put(out, json_string(r->where));
	fputs(",\n\"metadata\":", out);
	put(out, json_incref(r->meta));
	if (!r->meta) {
		fputs(",\"metadata_error\":", out);
		put(out, json_string(r->meta_err));
	}
	for (size_t i = 0; types && i < r->ntypes; i++)
		json_object_set_new(types, r->types[i].type,
				    json_integer((json_int_t)r->types[i].n));
	fputs(",\n\"summary\":", out);
	put(out, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:I}", "events", (json_int_t)r->nev,
			   "timed", (json_int_t)r->ntimed, "first", time_or_null(r->first), "last",
			   time_or_null(r->last), "span_seconds",
			   r->ntimed ? json_real(r->last - r->first) : json_null(), "by_type",
			   types ? types : json_object(), "files", (json_int_t)r->nfiles));
	if (r->events_err[0]) {
		fputs(",\"events_error\":", out);
		put(out, json_string(r->events_err));
	}
	fputs(",\n\"events\":[", out);
	for (size_t i = 0; i < r->nev; i++) {
		const struct rep_event *e = &r->ev[i];

		fputs(i ? ",\n" : "\n", out);
		fprintf(out, "{\"line\":%zu,\"time\":", e->line);
		put(out, e->time ? json_string(e->time) : json_null());
		fputs(",\"t\":", out);
		put(out, isfinite(e->t) ? json_real(e->t) : json_null());
		fputs(",\"type\":", out);
		put(out, json_string(e->type));
		fputs(",\"summary\":", out);
		put(out, json_string(e->summary));
		if (e->json) {
			/* jansson parsed it: valid JSON, copied as written */
			fputs(",\"event\":", out);
			fputs(e->raw, out);
		} else {
			fputs(",\"event\":null,\"raw\":", out);
			put(out, json_string(e->raw));
		}
		fputc('}', out);
		if (i % 8192 == 0)
			rep_progress("writing json: %zu of %zu events", i, r->nev);
	}
	fputs("],\n\"files\":[", out);
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct rep_file *f = &r->files[i];
		char m[40];
		json_t *o;

		rep_iso(m, sizeof(m), (double)f->mtime.tv_sec + f->mtime.tv_nsec / 1e9);
		o = json_pack("{s:s, s:I, s:s, s:o}", "path", f->path, "size", (json_int_t)f->size,
			      "mtime", m, "sha256", f->err ? json_null() : json_string(f->sha256));
		if (o && f->err)
			json_object_set_new(o, "error", json_string(strerror(f->err)));
		fputs(i ? ",\n" : "\n", out);
		put(out, o);
	}
	fputs("]}\n", out);
	return ferror(out) ? -EIO : 0;
}
