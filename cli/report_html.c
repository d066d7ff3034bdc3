/*
 * report_html.c - `sessionctl report --format html`: one self-contained
 * HTML file (no network: no external script, style, font or image, and a
 * Content-Security-Policy that forbids any) with the metadata, the counts by
 * type, an inline SVG chart of events over time stacked by type, and the
 * timeline as a table filterable by type, each event's full JSON in a
 * <details>: the events are JSON data in the page, which a few lines of
 * inline JS show a page of 500 rows at a time (a browser takes minutes to
 * lay out 100,000 rows of HTML).
 *
 * The metadata, the counts by type and the files are walked by
 * report_table.c through the struct rep_format here (its tables and cells).
 *
 * Everything from the session is untrusted: in markup it goes through esc()
 * (& < > " ' as entities, in text and attributes alike), in the data through
 * put_data() (< > & as \u escapes); the script sets text only, never
 * markup. Knows only the struct report and HTML.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define BINS 60	    /* bars of the chart */
#define COLOURS 10  /* types with their own colour; the rest are "other" */
#define CHART_W 960 /* SVG user units */
#define CHART_H 220

static const char *const colour[COLOURS + 1] = {
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
	"#b07aa1", "#ff9da7", "#9c755f", "#79706e", "#bab0ac",
};

/* @s, HTML-escaped for text and quoted attributes. */
static void esc(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		const char *e = rep_entity(*s, true);

		if (e)
			fputs(e, out);
		else
			fputc(*s, out);
	}
}

static const char style[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;"
	"max-width:1400px}\n"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;"
	"border-bottom:1px solid #ddd;padding-bottom:4px}\n"
	".sub{color:#666}table{border-collapse:collapse;font-size:13px}\n"
	"th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}\n"
	"th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	"td.time{white-space:nowrap;font-family:ui-monospace,monospace;font-size:12px}\n"
	"td.sum{max-width:760px;overflow-wrap:anywhere}\n"
	".sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}\n"
	".ty{white-space:nowrap}details summary{cursor:pointer;color:#555;font-size:12px}\n"
	"pre{margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere;background:#f8f8f8;"
	"padding:6px;font-size:12px}\n"
	"code{font-size:12px}svg{max-width:100%;height:auto;border:1px solid #eee}\n"
	".filter{margin:8px 0}select{font-size:13px}\n";

/*
 * Builds the timeline's rows from the #events data, a page at a time (a
 * browser lays out 100,000 rows for minutes): the rows of the type chosen in
 * #f, each cell's text set as text (textContent), never as markup, and the
 * line as written behind a JSON <details>.
 */
static const char script[] =
	"(function(){var ev=JSON.parse(document.getElementById('events').textContent),"
	"f=document.getElementById('f'),tb=document.getElementById('ev').tBodies[0],"
	"shown=document.getElementById('shown'),prev=document.getElementById('prev'),"
	"next=document.getElementById('next'),PAGE=500,page=0,rows=ev,"
	"colours=JSON.parse(document.getElementById('colours').textContent);\n"
	"function cell(tr,cls,text){var c=document.createElement('td');c.className=cls;"
	"c.textContent=text;tr.appendChild(c);return c}\n"
	"function row(e){var tr=document.createElement('tr');cell(tr,'n',e[0]);"
	"cell(tr,'time',e[1]===null?'-':e[1]);var ty=cell(tr,'ty',e[2]),"
	"sw=document.createElement('span');sw.className='sw';sw.style.background=colours[e[4]];"
	"ty.insertBefore(sw,ty.firstChild);var s=cell(tr,'sum',e[3]),"
	"d=document.createElement('details'),su=document.createElement('summary'),"
	"pre=document.createElement('pre');su.textContent='JSON';pre.textContent=e[5];"
	"d.appendChild(su);d.appendChild(pre);s.appendChild(d);return tr}\n"
	"function render(){var v=f.value;rows=v===''?ev:ev.filter(function(e){return e[2]===v});"
	"var pages=Math.max(1,Math.ceil(rows.length/PAGE));if(page>=pages)page=pages-1;"
	"if(page<0)page=0;var frag=document.createDocumentFragment(),"
	"end=Math.min(rows.length,(page+1)*PAGE);for(var i=page*PAGE;i<end;i++)"
	"frag.appendChild(row(rows[i]));tb.textContent='';tb.appendChild(frag);"
	"shown.textContent=rows.length+' of '+ev.length+' events'+(pages>1?', page '+(page+1)+"
	"' of '+pages:'');prev.disabled=page===0;next.disabled=page>=pages-1}\n"
	"f.addEventListener('change',function(){page=0;render()});"
	"prev.addEventListener('click',function(){page--;render()});"
	"next.addEventListener('click',function(){page++;render()});render()})();\n";

/*
 * @v (consumed) as JSON inside a <script type="application/json">: < > &
 * as \u escapes (they only occur inside strings), so no "</script>" or
 * "<!--" of the session's ends or bends the element.
 */
static void put_data(FILE *out, json_t *v)
{
	char *s = v ? rep_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	for (const char *p = s ? s : "null"; *p; p++) {
		if (*p == '<')
			fputs("\\u003c", out);
		else if (*p == '>')
			fputs("\\u003e", out);
		else if (*p == '&')
			fputs("\\u0026", out);
		else
			fputc(*p, out);
	}
	free(s);
	json_decref(v);
}

/* Cell @i of a row: a row's name as <th>, a type after its colour's swatch. */
static void html_cell(FILE *out, size_t i, enum rep_cell kind, const char *s, size_t rank)
{
	if (i == 0)
		fputs("<tr>", out);
	switch (kind) {
	case REP_KEY:
		fputs("<th>", out);
		esc(out, s);
		fputs("</th>", out);
		return;
	case REP_CODE:
		fputs("<td><code>", out);
		esc(out, s);
		fputs("</code></td>", out);
		return;
	case REP_NUM:
		fputs("<td class=\"n\">", out);
		break;
	case REP_TIME:
		fputs("<td class=\"time\">", out);
		break;
	case REP_TYPE:
		fprintf(out, "<td class=\"ty\"><span class=\"sw\" style=\"background:%s\"></span>",
			colour[rank < COLOURS ? rank : COLOURS]);
		break;
	default:
		fputs("<td>", out);
	}
	esc(out, s);
	fputs("</td>", out);
}

static void html_table(FILE *out, const struct rep_col *cols, size_t ncols)
{
	fputs("<table><tr>", out);
	for (size_t i = 0; i < ncols; i++)
		fprintf(out, "<th>%s</th>", cols[i].head);
	fputs("</tr>\n", out);
}

static const struct rep_format html = {
	.name = "html",
	.text = esc,
	.heading = {"<h2>", "</h2>\n"},
	.para = {"<p>", "</p>\n"},
	.table = html_table,
	.cell = html_cell,
	.ranked = COLOURS,
	.row_end = "</tr>\n",
	.table_end = "</table>\n",
};

static void html_summary(const struct report *r, FILE *out)
{
	char a[40], b[40], d[40];

	rep_heading(&html, out, "Summary");
	fputs("<p>", out);
	fprintf(out, "%zu events (%zu with a time), %zu files.", r->nev, r->ntimed, r->nfiles);
	if (r->ntimed) {
		rep_iso(a, sizeof(a), r->first);
		rep_iso(b, sizeof(b), r->last);
		rep_duration(d, sizeof(d), r->last - r->first);
		fprintf(out, " From <code>%s</code> to <code>%s</code> (%s).", a, b, d);
	}
	if (r->events_err[0]) {
		fputs(" <strong>events.jsonl was not read to its end: ", out);
		esc(out, r->events_err);
		fputs("</strong>", out);
	}
	fputs("</p>\n", out);
	rep_types(&html, r, out);
}

/* Events with a time in BINS bars, each stacked by type (the first COLOURS types, then the rest).
 */
static int html_chart(const struct report *r, FILE *out)
{
	static size_t count[BINS][COLOURS + 1];
	size_t total[BINS] = {0}, max = 0, nbins = BINS;
	const double left = 50, top = 12, w = CHART_W - left - 12, h = CHART_H - top - 40;
	double span = r->last - r->first;
	char a[40], b[40];

	fputs("<h2>Events over time</h2>\n", out);
	if (!r->ntimed) {
		fputs("<p>No event has a time (timestamp, time or ts): no chart.</p>\n", out);
		return 0;
	}
	if (!(span > 0))
		nbins = 1;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < r->nev; i++) {
		const struct rep_event *e = &r->ev[i];
		size_t k;

		if (!isfinite(e->t))
			continue;
		k = nbins == 1 ? 0 : (size_t)((e->t - r->first) / span * (double)nbins);
		if (k >= nbins)
			k = nbins - 1;
		count[k][rep_rank(r, e->type, COLOURS)]++;
		if (++total[k] > max)
			max = total[k];
	}
	fprintf(out,
		"<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
		"aria-label=\"events over time\">\n",
		CHART_W, CHART_H, CHART_W, CHART_H);
	/* axes, the y scale, the first and last time */
	fprintf(out,
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#888\"/>"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#888\"/>\n",
		left, top, left, top + h, left, top + h, left + w, top + h);
	fprintf(out,
		"<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%zu</text>"
		"<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">0</text>\n",
		left - 4, top + 10, max, left - 4, top + h);
	rep_iso(a, sizeof(a), r->first);
	rep_iso(b, sizeof(b), r->last);
	fprintf(out,
		"<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>"
		"<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
		left, top + h + 16, a, left + w, top + h + 16, b);
	fprintf(out,
		"<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\" "
		"fill=\"#666\">%zu bars of ",
		left + w / 2, top + h + 32, nbins);
	rep_duration(a, sizeof(a), span / (double)nbins);
	fprintf(out, "%s; %zu events without a time not shown</text>\n", a, r->nev - r->ntimed);
	for (size_t k = 0; k < nbins; k++) {
		double bw = w / (double)nbins, y = top + h;

		for (size_t c = 0; c <= COLOURS; c++) {
			double bh = (double)count[k][c] / (double)max * h;

			if (!count[k][c])
				continue;
			y -= bh;
			fprintf(out,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				"fill=\"%s\"><title>",
				left + bw * (double)k + 1, y, bw > 3 ? bw - 2 : bw, bh, colour[c]);
			esc(out, c < COLOURS ? r->types[c].type : "other types");
			fprintf(out, ": %zu</title></rect>\n", count[k][c]);
		}
	}
	fputs("</svg>\n", out);
	return 0;
}

static void html_events(const struct report *r, FILE *out)
{
	fputs("<h2>Timeline</h2>\n<div class=\"filter\"><label>Type: <select id=\"f\">"
	      "<option value=\"\">all types</option>",
	      out);
	for (size_t i = 0; i < r->ntypes; i++) {
		fputs("<option value=\"", out);
		esc(out, r->types[i].type);
		fputs("\">", out);
		esc(out, r->types[i].type);
		fprintf(out, " (%zu)</option>", r->types[i].n);
	}
	fputs("</select></label> <button id=\"prev\">&larr; previous</button> "
	      "<button id=\"next\">next &rarr;</button> <span id=\"shown\" class=\"sub\"></span>"
	      "</div>\n<noscript><p>The timeline table needs JavaScript; the json format has "
	      "it all.</p></noscript>\n"
	      "<table id=\"ev\"><thead><tr><th>Line</th><th>Time</th><th>Type</th>"
	      "<th>Summary</th></tr></thead><tbody></tbody></table>\n"
	      "<script type=\"application/json\" id=\"colours\">",
	      out);
	json_t *c = json_array();

	for (size_t i = 0; c && i <= COLOURS; i++)
		json_array_append_new(c, json_string(colour[i]));
	put_data(out, c);
	/* [line, time or null, type, summary, colour index, the line as written] */
	fputs("</script>\n<script type=\"application/json\" id=\"events\">[", out);
	for (size_t i = 0; i < r->nev; i++) {
		const struct rep_event *e = &r->ev[i];

		if (i)
			fputs(",\n", out);
		put_data(out,
			 json_pack("[I, o, s, s, I, s]", (json_int_t)e->line,
				   e->time ? json_string(e->time) : json_null(), e->type,
				   e->summary, (json_int_t)rep_rank(r, e->type, COLOURS), e->raw));
		if (i % 8192 == 0)
			rep_progress("writing html: %zu of %zu events", i, r->nev);
	}
	fputs("]</script>\n", out);
}

int rep_write_html(const struct report *r, FILE *out)
{
	char when[40];
	json_t *name = r->meta ? json_object_get(r->meta, "name") : NULL;

	rep_iso(when, sizeof(when), (double)r->generated);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
	      out);
	fprintf(out, "Session %s</title>\n<style>\n%s</style></head><body>\n", r->id, style);
	fprintf(out, "<h1>Session %s", r->id);
	if (json_is_string(name)) {
		fputs(": ", out);
		esc(out, json_string_value(name));
	}
	fprintf(out,
		"</h1>\n<p class=\"sub\">Report of <code>%s/%s</code>, made by "
		"<code>sessionctl report</code> at %s.</p>\n",
		r->where, r->id, when);
	rep_meta(&html, r, out);
	html_summary(r, out);
	html_chart(r, out);
	html_events(r, out);
	rep_files(&html, r, out);
	fprintf(out, "<script>\n%s</script>\n</body></html>\n", script);
	return ferror(out) ? -EIO : 0;
}
