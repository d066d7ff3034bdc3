/*
 * redact.h - redaction: every match of a POSIX extended regular expression
 * replaced by SFS_REDACT_MARK, in plain text, in one event line (matched
 * against the line's decoded JSON strings, so the line stays valid JSON),
 * and in a session's whole event log (a new sealed log written beside the
 * old one and renamed over it: doc/format.md "Redaction").
 *
 * Session-store layer: knows regex.h, jansson, the eventlog, tree, format
 * and fileio layers; nothing of FUSE, the control protocol or the daemon's
 * locks (the caller keeps appends out while a log is rewritten). Plaintext
 * it copies is wiped before it is freed.
 */
#ifndef SFS_REDACT_H
#define SFS_REDACT_H

#include "eventlog.h"
#include "tree.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SFS_REDACT_MARK "[REDACTED]"

/*
 * Compile @pattern (POSIX ERE, REG_NEWLINE: '.' and bracket expressions
 * never match a newline, ^ and $ match at line ends) into @re. 0; -EINVAL
 * with regerror's text in @err, "the pattern matches the empty string"
 * (such a pattern would mark every position), or "back-references (\1 to
 * \9) are not supported" (glibc backtracks on them, without end); -ENOMEM.
 * On 0 the caller regfree()s @re.
 */
int sfs_redact_compile(regex_t *re, const char *pattern, char *err, size_t errsz);

/*
 * Replace every match of @re in @in (@len bytes, NULs allowed) by the mark.
 * A match is widened to whole UTF-8 characters (never a half character
 * left); a match of nothing is skipped. *@count: the matches replaced; if
 * any, the result in *@out (malloc, NUL-terminated, *@outlen bytes) for
 * the caller to wipe and free, else *@out NULL. 0 or -ENOMEM.
 */
int sfs_redact_text(const regex_t *re, const char *in, size_t len, char **out, size_t *outlen,
		    uint64_t *count);

/*
 * The same for one event line @line (@len bytes, no newline): a JSON object
 * has each of its string values (at any depth; not its keys) redacted as
 * text, and is written again (compact) only if one changed; a line that is
 * no JSON object is redacted as text. *@out NULL: the line is unchanged.
 */
int sfs_redact_line(const regex_t *re, const char *line, size_t len, char **out, size_t *outlen,
		    uint64_t *count);

/*
 * What records and the audit trail say of a pattern instead of the pattern:
 * its SHA-256 in lower-case hex into @hex (SFS_REDACT_HASH_HEX bytes).
 */
#define SFS_REDACT_HASH_HEX 65
void sfs_redact_pattern_hash(const char *pattern, char hex[SFS_REDACT_HASH_HEX]);

/* Is @buf text for redaction: valid UTF-8 with no NUL byte? */
bool sfs_redact_is_text(const char *buf, size_t len);

/* What a redaction of a log found. */
struct sfs_redact_stats {
	uint64_t lines;	  /* lines read */
	uint64_t changed; /* lines that changed */
	uint64_t matches; /* matches replaced */
};

/* A log being rewritten: the new log, not yet in place. */
struct sfs_log_rewrite {
	struct sfs_log nl; /* the new log (nl.fd -1: none) */
	int rootfd;	   /* the session root, O_PATH */
	char tmp[SFS_TMPNAME_MAX];
	char backing[SFS_NAME_MAX + 1]; /* events.jsonl's backing name */
	bool renamed;			/* the new log is in place */
};

/*
 * Write a redacted copy of session log @old (open, loaded, in container
 * @cfd) as a new log with @old's id and header under an internal name of
 * the session root (sfs_tree_tmpname: unlock sweeps it if a crash leaves
 * it). The caller may sfs_log_append more lines to rw->nl, then publishes
 * or discards it. 0 with *@st; -EBADMSG a record of @old fails (nothing is
 * written); -errno. On failure nothing is left.
 */
int sfs_log_redact_begin(int cfd, const struct sfs_log *old, const regex_t *re,
			 struct sfs_log_rewrite *rw, struct sfs_redact_stats *st);

/*
 * fsync the new log, rename it over events.jsonl, fsync the root. 0 or
 * -errno; rw->renamed says whether the new log is in place (then the
 * caller uses it from now on, even on an error of the last fsync).
 * Closes what sfs_log_redact_begin opened except rw->nl.fd once renamed.
 */
int sfs_log_redact_publish(struct sfs_log_rewrite *rw);

/* Remove the unpublished new log and close what begin opened. */
void sfs_log_redact_discard(struct sfs_log_rewrite *rw);

#endif
