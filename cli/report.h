/*
 * report.h - `sessionctl report`: an unlocked session read through its
 * mount (metadata.json, events.jsonl, the files) into a timeline, written
 * as Markdown, JSON or one self-contained HTML file.
 *
 * report.c reads the session into a struct report (and is the command);
 * report_text.c writes Markdown and JSON; report_html.c writes HTML;
 * report_table.c walks the sections Markdown and HTML share (metadata,
 * counts by type, timeline rows, files) once, through a struct rep_format
 * that each of the two provides. The writers only format what the struct
 * holds: everything in it that came from the session is untrusted text,
 * escaped by each writer for its format. Knows the session's file names
 * (lib/store.h); nothing of crypto or the store format.
 */
#ifndef SFS_REPORT_H
#define SFS_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

/* One line of events.jsonl. */
struct rep_event {
	size_t line;   /* 1-based line number */
	double t;      /* its time in seconds since the epoch; NAN if none parses */
	char *time;    /* its time as written (a number as ISO 8601 UTC); NULL if none */
	char *type;    /* its "type", or "(no type)", "(not JSON)", "(not an object)" */
	char *summary; /* one line from tool_name and text/message (or the rest) */
	char *raw;     /* the line as read, without its newline */
	bool json;     /* raw is one JSON value (and so may be copied verbatim) */
};

/* How many events have one type. */
struct rep_count {
	const char *type; /* points into the first event of that type */
	size_t n;
};

/* A regular file of the session. */
struct rep_file {
	char *path; /* relative to the session directory */
	off_t size;
	struct timespec mtime;
	char sha256[65]; /* lowercase hex; "" if it could not be read */
	int err;	 /* 0, or the errno its reading failed with */
};

struct report {
	const char *id, *where; /* the session: INC-xxxx, "sessions" or "archive" */
	time_t generated;
	json_t *meta; /* metadata.json; NULL if it did not parse (meta_err) */
	char meta_err[160];
	struct rep_event *ev; /* in file order */
	size_t nev;
	char events_err[160];	 /* "" or why events.jsonl was not read to its end */
	struct rep_count *types; /* most frequent first, then by name */
	size_t ntypes;
	size_t ntimed;		/* events with a time */
	double first, last;	/* the earliest and latest time; NAN if ntimed == 0 */
	struct rep_file *files; /* sorted by path */
	size_t nfiles;
};

/* report.c: formatting shared by the writers. */
void rep_iso(char *out, size_t size, double t); /* "2026-01-02T03:04:05Z" (.123 if any) */
void rep_duration(char *out, size_t size, double seconds); /* "1d 2h 03m 04s", "4.2s" */
/* The HTML entity for & < > (and " ' if @quotes), NULL for any other @c. */
const char *rep_entity(char c, bool quotes);
/* json_dumps into plain malloc memory (free() it): jansson's own frees wipe (lib/store.c). */
char *rep_dumps(const json_t *v, size_t flags);
void rep_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What a table cell holds: how Markdown aligns its column, how HTML marks it up. */
enum rep_cell {
	REP_TEXT,
	REP_KEY,  /* a row's name (HTML: a <th>) */
	REP_NUM,  /* a number (right-aligned) */
	REP_TIME, /* a time (HTML: not wrapped, monospace) */
	REP_CODE, /* a hash (Markdown `code`, HTML <code>) */
	REP_TYPE, /* an event type (HTML: after its colour) */
};

struct rep_col {
	const char *head;
	enum rep_cell kind;
};

/* How Markdown or HTML writes a heading, a paragraph and a table. */
struct rep_format {
	const char *name;			/* "md", "html": for the progress line */
	void (*text)(FILE *out, const char *s); /* untrusted text, escaped */
	const char *heading[2];			/* around a section's title */
	const char *para[2];			/* around a paragraph */
	/* a table's start and its header row */
	void (*table)(FILE *out, const struct rep_col *cols, size_t ncols);
	/* cell @i (0 starts a row) holding @s, escaped; @rank: a REP_TYPE's, see ranked */
	void (*cell)(FILE *out, size_t i, enum rep_cell kind, const char *s, size_t rank);
	size_t ranked; /* a type's rank is among the first this many types, else this */
	const char *row_end, *table_end;
};

/* report_table.c: the sections, each from its heading to its end. */
size_t rep_rank(const struct report *r, const char *type, size_t max); /* 0.., or max */
void rep_heading(const struct rep_format *f, FILE *out, const char *title);
void rep_meta(const struct rep_format *f, const struct report *r, FILE *out);
void rep_types(const struct rep_format *f, const struct report *r, FILE *out); /* no heading */
void rep_events(const struct rep_format *f, const struct report *r, FILE *out);
void rep_files(const struct rep_format *f, const struct report *r, FILE *out);

/* The writers: 0, or -errno of the stream. */
int rep_write_md(const struct report *r, FILE *out);
int rep_write_json(const struct report *r, FILE *out);
int rep_write_html(const struct report *r, FILE *out);

#endif
