/*
 * test_session_report.c - the words of what unlock found and repaired
 * (lib/session_report.c), from fixed reports: nothing found; a torn tail
 * cut by a crash, after a hole, or of whole failing records, with and
 * without a kept file; damage left in place in each of its four shapes
 * (start and end known, only the end, only the start, neither) and with
 * more spans after it; a log with no complete append (-EBADMSG), one that
 * is no log (-EUCLEAN), one that cannot be opened; several findings as
 * lines; the daemon-only notes; an unlock that finds the session unlocked
 * already; and output cut to a small buffer, always NUL-terminated.
 */
#include "check.h"
#include "session_report.h"

#include <errno.h>

#define CONTAINER "/srv/store/sessions/INC-3f2a"
#define KEPT "events.kept-00112233445566778899aabbccddeeff"

static char warn[SFS_WARN_MAX], damage[SFS_DAMAGE_MAX];

/* A log of @size plaintext bytes in @lines lines, as prepare left it. */
static struct sfs_log log_of(uint64_t size, uint64_t lines)
{
	struct sfs_log ev = {.fd = -1};

	atomic_store(&ev.size, size);
	ev.lines = lines;
	return ev;
}

static void text(int rc, const struct sfs_session_report *r, const struct sfs_log *ev)
{
	memset(warn, 'x', sizeof(warn));
	memset(damage, 'x', sizeof(damage));
	sfs_session_report_text(rc, r, ev, CONTAINER, warn, sizeof(warn), damage, sizeof(damage));
}

static void test_nothing(void)
{
	struct sfs_session_report r = {0};
	struct sfs_log ev = log_of(120, 3);

	text(0, &r, &ev);
	CHECK_STR(warn, "");
	CHECK_STR(damage, "");
	/* swept and created are notes for the log, never warnings */
	r.swept = 2;
	r.events_created = true;
	text(0, &r, &ev);
	CHECK_STR(warn, "");
	CHECK_STR(damage, "");
}

static void test_torn_tail(void)
{
	struct sfs_session_report r = {.events_dropped = 77};
	struct sfs_log ev = log_of(4096, 64);

	snprintf(r.events_kept, sizeof(r.events_kept), "%s", "events.kept-0011223344556677");
	text(0, &r, &ev);
	CHECK_STR(warn, "events.jsonl: dropped a torn tail of 77 stored bytes, the unacknowledged "
			"end of an append a crash interrupted; 4096 bytes (64 lines) remain; its "
			"raw bytes are kept as " CONTAINER "/events.kept-0011223344556677");
	CHECK_STR(damage, "");

	r.events_hole = true;
	text(0, &r, &ev);
	CHECK_STR(warn, "events.jsonl: dropped a torn tail of 77 stored bytes, from a hole (zeros) "
			"on: appends never fsynced that a power loss left incomplete; 4096 bytes "
			"(64 lines) remain; its raw bytes are kept as " CONTAINER
			"/events.kept-0011223344556677");

	/* a hole wins over whole records: the cut starts before the hole */
	r.events_whole = true;
	text(0, &r, &ev);
	CHECK(strstr(warn, "from a hole (zeros) on") != NULL);
	r.events_hole = false;
	text(0, &r, &ev);
	CHECK_STR(warn, "events.jsonl: dropped a torn tail of 77 stored bytes, the last append, "
			"whose records are whole but fail authentication (damage, not a crash's "
			"trace); 4096 bytes (64 lines) remain; its raw bytes are kept as " CONTAINER
			"/events.kept-0011223344556677");

	/* no kept file named: a question mark, never an empty path */
	r.events_whole = false;
	r.events_kept[0] = '\0';
	ev = log_of(0, 0);
	text(0, &r, &ev);
	CHECK_STR(warn, "events.jsonl: dropped a torn tail of 77 stored bytes, the unacknowledged "
			"end of an append a crash interrupted; 0 bytes (0 lines) remain; its raw "
			"bytes are kept as " CONTAINER "/?");
	CHECK_STR(damage, "");
}

#define LEFT                                                                                       \
	" fail authentication at stored offset 9000, damage no crash leaves; left as they are: "   \
	"reads touching them fail with EIO, the rest reads and appends work"

/* Damage @d left in place: the damage text @want, and the same as unlock's one warning. */
static void check_damage(const struct sfs_log_damage *d, const char *want)
{
	struct sfs_session_report r = {.events_damage = *d};
	struct sfs_log ev = log_of(100000, 900);
	char line[SFS_WARN_MAX];

	text(0, &r, &ev);
	CHECK_STR(damage, want);
	snprintf(line, sizeof(line), "events.jsonl: damaged: %s", want);
	CHECK_STR(warn, line);
}

static void test_damage(void)
{
	struct sfs_log_damage d = {.count = 1,
				   .pos = 9000,
				   .next = 13120,
				   .known = true,
				   .bounded = true,
				   .off = 5000,
				   .end = 8000,
				   .line = 41,
				   .last = 41};

	check_damage(&d, "bytes 5000-7999 (line 41)" LEFT);
	d.last = 57;
	check_damage(&d, "bytes 5000-7999 (lines 41-57)" LEFT);
	d.count = 3;
	check_damage(&d, "bytes 5000-7999 (lines 41-57)" LEFT "; more damaged spans follow it");
	d.count = 1;
	d.known = false;
	check_damage(&d, "bytes before 8000 (lines up to 57)" LEFT);
	d.known = true;
	d.bounded = false;
	check_damage(&d, "bytes from 5000 (lines from 41)" LEFT);
	d.known = false;
	check_damage(&d, "the bytes at stored offset 9000 (lines unknown)" LEFT);

	/* damage only counts when prepare succeeded */
	{
		struct sfs_session_report r = {.events_damage = d};
		struct sfs_log ev = log_of(0, 0);

		text(-EIO, &r, &ev);
		CHECK_STR(damage, "");
		CHECK_STR(warn, "events.jsonl: cannot be opened: Input/output error");
	}
}

static void test_unusable(void)
{
	struct sfs_session_report r = {.events_bad_at = 4198400, .events_kind = 1};
	struct sfs_log ev = log_of(0, 0);

	text(-EBADMSG, &r, &ev);
	CHECK_STR(damage, "no complete append in its last 4 MiB (the record at stored offset "
			  "4198400 fails authentication), damage no crash leaves: not repaired; it "
			  "reads as an I/O error and takes no appends");
	CHECK_STR(warn,
		  "events.jsonl: damaged: no complete append in its last 4 MiB (the record "
		  "at stored offset 4198400 fails authentication), damage no crash leaves: not "
		  "repaired; it reads as an I/O error and takes no appends");

	text(-EUCLEAN, &r, &ev);
	CHECK_STR(damage, "not an event log (its header says node kind 1, as when another file is "
			  "copied over it in the store): left untouched; it reads as an I/O error");
	CHECK_STR(warn, "events.jsonl: not an event log (its header says node kind 1, as when "
			"another file is copied over it in the store): left untouched; it reads as "
			"an I/O error");

	text(-EACCES, &r, &ev);
	CHECK_STR(damage, "");
	CHECK_STR(warn, "events.jsonl: cannot be opened: Permission denied");
}

/* A cut tail and damage before it: two findings, two lines. */
static void test_lines(void)
{
	struct sfs_session_report r = {.events_dropped = 5,
				       .events_damage = {.count = 1, .pos = 9000, .next = 9100}};
	struct sfs_log ev = log_of(10, 1);

	snprintf(r.events_kept, sizeof(r.events_kept), "%s", "events.kept-aa");
	text(0, &r, &ev);
	CHECK_STR(warn,
		  "events.jsonl: dropped a torn tail of 5 stored bytes, the unacknowledged "
		  "end of an append a crash interrupted; 10 bytes (1 lines) remain; its raw "
		  "bytes are kept as " CONTAINER "/events.kept-aa\n"
		  "events.jsonl: damaged: the bytes at stored offset 9000 (lines unknown)" LEFT);
	CHECK_STR(damage, "the bytes at stored offset 9000 (lines unknown)" LEFT);
}

static void test_notes(void)
{
	struct sfs_session_report r = {0};
	char out[256];

	memset(out, 'x', sizeof(out));
	sfs_session_report_notes(&r, out, sizeof(out));
	CHECK_STR(out, "");
	r.swept = 3;
	sfs_session_report_notes(&r, out, sizeof(out));
	CHECK_STR(out, "removed 3 leftovers of an interrupted operation");
	r.events_created = true;
	sfs_session_report_notes(&r, out, sizeof(out));
	CHECK_STR(out, "removed 3 leftovers of an interrupted operation\n"
		       "events.jsonl was missing: made an empty one");
	r.swept = 0;
	sfs_session_report_notes(&r, out, sizeof(out));
	CHECK_STR(out, "events.jsonl was missing: made an empty one");
}

static void test_known(void)
{
	memset(warn, 'x', sizeof(warn));
	sfs_session_report_known("", warn, sizeof(warn));
	CHECK_STR(warn, "");
	sfs_session_report_known("bytes from 5000 (lines from 41)" LEFT, warn, sizeof(warn));
	CHECK_STR(warn, "events.jsonl: damaged: bytes from 5000 (lines from 41)" LEFT);
}

/* Small buffers: cut, NUL-terminated, nothing written past them. */
static void test_cut(void)
{
	struct sfs_session_report r = {.events_dropped = 5,
				       .events_damage = {.count = 1, .pos = 9000, .next = 9100}};
	struct sfs_log ev = log_of(10, 1);
	char w[40 + 8], d[24 + 8];

	memset(w, '#', sizeof(w));
	memset(d, '#', sizeof(d));
	sfs_session_report_text(0, &r, &ev, CONTAINER, w, 40, d, 24);
	CHECK_STR(w, "events.jsonl: dropped a torn tail of 5 ");
	CHECK_STR(d, "the bytes at stored off");
	for (size_t i = 40; i < sizeof(w); i++)
		CHECK_EQ(w[i], '#');
	for (size_t i = 24; i < sizeof(d); i++)
		CHECK_EQ(d[i], '#');

	/* the first line fills the buffer: the second is left out whole */
	sfs_session_report_text(0, &r, &ev, CONTAINER, w, 40, d, sizeof(d));
	CHECK_EQ(strlen(w), 39);
	CHECK(strchr(w, '\n') == NULL);
}

int main(void)
{
	test_nothing();
	test_torn_tail();
	test_damage();
	test_unusable();
	test_lines();
	test_notes();
	test_known();
	test_cut();
	return check_done();
}
