/*
 * session_report.c - what unlock found and repaired in a session's files,
 * in the words the user is shown (session_report.h): unlock's warning
 * lines, the daemon's notes, the damage text of list.
 *
 * Text only, from a struct sfs_session_report and the log prepare left:
 * no I/O, no logging, no locks; nothing of FUSE or the control protocol.
 */
#include "session_report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Append a printf'd line to @buf (@sz bytes, NUL-terminated), as far as it fits. */
static void add_line(char *buf, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_line(char *buf, size_t sz, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n > 0 && n + 1 < sz)
		buf[n++] = '\n', buf[n] = '\0';
	va_start(ap, fmt);
	if (n < sz)
		vsnprintf(buf + n, sz - n, fmt, ap);
	va_end(ap);
}

/* Describe damaged span @d of events.jsonl into @out: what, where, what it means. */
static void describe_damage(char *out, size_t sz, const struct sfs_log_damage *d)
{
	char bytes[96], lines[96];

	if (d->known && d->bounded) {
		snprintf(bytes, sizeof(bytes), "bytes %llu-%llu", (unsigned long long)d->off,
			 (unsigned long long)d->end - 1);
		if (d->line == d->last)
			snprintf(lines, sizeof(lines), "line %llu", (unsigned long long)d->line);
		else
			snprintf(lines, sizeof(lines), "lines %llu-%llu",
				 (unsigned long long)d->line, (unsigned long long)d->last);
	} else if (d->bounded) {
		snprintf(bytes, sizeof(bytes), "bytes before %llu", (unsigned long long)d->end);
		snprintf(lines, sizeof(lines), "lines up to %llu", (unsigned long long)d->last);
	} else if (d->known) {
		snprintf(bytes, sizeof(bytes), "bytes from %llu", (unsigned long long)d->off);
		snprintf(lines, sizeof(lines), "lines from %llu", (unsigned long long)d->line);
	} else {
		snprintf(bytes, sizeof(bytes), "the bytes at stored offset %llu",
			 (unsigned long long)d->pos);
		snprintf(lines, sizeof(lines), "lines unknown");
	}
	snprintf(out, sz,
		 "%s (%s) fail authentication at stored offset %llu, damage no crash "
		 "leaves; left as they are: reads touching them fail with EIO, the rest reads "
		 "and appends work%s",
		 bytes, lines, (unsigned long long)d->pos,
		 d->count > 1 ? "; more damaged spans follow it" : "");
}

void sfs_session_report_text(int rc, const struct sfs_session_report *r, const struct sfs_log *ev,
			     const char *container, char *warn, size_t wsz, char *damage,
			     size_t dsz)
{
	warn[0] = damage[0] = '\0';
	if (r->events_dropped) {
		const char *why = "the unacknowledged end of an append a crash interrupted";

		if (r->events_hole)
			why = "from a hole (zeros) on: appends never fsynced that a power loss "
			      "left incomplete";
		else if (r->events_whole)
			why = "the last append, whose records are whole but fail authentication "
			      "(damage, not a crash's trace)";
		add_line(warn, wsz,
			 "events.jsonl: dropped a torn tail of %llu stored bytes, %s; %llu bytes "
			 "(%llu lines) remain; its raw bytes are kept as %s/%s",
			 (unsigned long long)r->events_dropped, why, (unsigned long long)ev->size,
			 (unsigned long long)ev->lines, container,
			 r->events_kept[0] ? r->events_kept : "?");
	}
	if (rc == 0 && r->events_damage.count) {
		describe_damage(damage, dsz, &r->events_damage);
		add_line(warn, wsz, "events.jsonl: damaged: %s", damage);
	} else if (rc == -EBADMSG) {
		snprintf(damage, dsz,
			 "no complete append in its last %u MiB (the record at stored offset %llu "
			 "fails authentication), damage no crash leaves: not repaired; it reads as "
			 "an I/O error and takes no appends",
			 SFS_LOG_CHECK_WINDOW >> 20, (unsigned long long)r->events_bad_at);
		add_line(warn, wsz, "events.jsonl: damaged: %s", damage);
	} else if (rc == -EUCLEAN) {
		snprintf(damage, dsz,
			 "not an event log (its header says node kind %d, as when another file is "
			 "copied over it in the store): left untouched; it reads as an I/O error",
			 r->events_kind);
		add_line(warn, wsz, "events.jsonl: %s", damage);
	} else if (rc < 0) {
		add_line(warn, wsz, "events.jsonl: cannot be opened: %s", strerror(-rc));
	}
}

void sfs_session_report_notes(const struct sfs_session_report *r, char *out, size_t sz)
{
	out[0] = '\0';
	if (r->swept > 0)
		add_line(out, sz, "removed %d leftovers of an interrupted operation", r->swept);
	if (r->events_created)
		add_line(out, sz, "events.jsonl was missing: made an empty one");
}

void sfs_session_report_known(const char *damage, char *warn, size_t wsz)
{
	warn[0] = '\0';
	if (damage[0])
		snprintf(warn, wsz, "events.jsonl: damaged: %s", damage);
}
