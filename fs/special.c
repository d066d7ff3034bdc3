/*
 * special.c - the file handles of a session's metadata.json and
 * events.jsonl: their per-open buffers, and the glue from open, read,
 * write, truncate and flush to lib/ (metadata.h: the document's rules and
 * its crash-safe replacement; eventlog.h: the log the session's container
 * owns, lib/session.h).
 *
 * events.jsonl: writes land at the end; each complete line must be a JSON
 * object or the write fails with EINVAL and none of it is stored; an
 * unterminated tail waits in the open file until its newline (or close).
 * Lines are appended under the session's ev_rw held for writing, so
 * appenders never interleave.
 *
 * metadata.json: writes collect in the open file; at flush, fsync or close
 * the document is checked and replaced (sfs_metadata_replace: the rules of
 * lib/documents.c, then new file, fsync, rename over, fsync of the
 * directory). A refused document leaves the old one, and the reason (never
 * the content) is logged. A file renamed over it (ops_ns.c) is checked here
 * too, and fsynced before that rename. Every replacement holds the
 * session's meta_mu and reads the stored document under it: none writes
 * back an older one. It is never removed or renamed away (ops_ns.c:
 * EPERM); a create where none is stored stores nothing until a valid
 * document commits.
 *
 * Both keep plaintext in their file handle's buffer: bytes a buffer no
 * longer uses are wiped at once, the buffer when the file is released, and
 * at lock every open handle's (sfs_special_forget): what a handle held then
 * is lost, and its writes and close fail with EIO from then on.
 *
 * Knows no backing name, header or container layout beyond the root's
 * name: the store's side is lib/'s. Direction: session.c calls this file
 * (at lock, and to drop the kernel's name of a replaced metadata.json);
 * this file calls no function of session.c, it only uses the struct
 * sfs_session its callers entered.
 */
#include "special.h"
#include "metadata.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PENDING_MAX (1u << 20) /* longest unterminated events line */

/*
 * File handles of the mount's sessions whose buffer is in use (fh->held).
 * A handle's buffer and its state (buf, len, cap, dirty, lost) are under
 * its own fh->mu: requests on one handle may run at once (the kernel
 * serialises a file's writes, not its reads, nor a close beside them).
 * held_mu comes before fh->mu (sfs_special_forget takes both), so a
 * handle goes on the list before its mu is taken (hold), never under it.
 */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sfs_fh *held;

/*
 * Put @fh (of a session) on the list of handles that hold plaintext, if it
 * is not there yet; called inside the session (rw read: no lock can take
 * it off meanwhile), before fh->mu.
 */
static void hold(struct sfs_fh *fh)
{
	if (!fh->sess || atomic_load(&fh->held))
		return;
	pthread_mutex_lock(&held_mu);
	if (!fh->held) {
		fh->held_prev = NULL;
		fh->held_next = held;
		if (held)
			held->held_prev = fh;
		held = fh;
		fh->held = true;
	}
	pthread_mutex_unlock(&held_mu);
}

/* Take @fh off that list; called with held_mu held. */
static void unhold(struct sfs_fh *fh)
{
	if (fh->held_prev)
		fh->held_prev->held_next = fh->held_next;
	else
		held = fh->held_next;
	if (fh->held_next)
		fh->held_next->held_prev = fh->held_prev;
	fh->held = false;
}

/* Wipe and free @fh's buffer; called with fh->mu held. */
static void drop_buf(struct sfs_fh *fh)
{
	if (fh->buf) {
		sodium_memzero(fh->buf, fh->cap);
		free(fh->buf);
	}
	fh->buf = NULL;
	fh->len = fh->cap = 0;
}

enum sfs_special sfs_special_of(const struct sfs_inode *parent, const char *name)
{
	if (parent->kind != SFS_INODE_SESSION)
		return SFS_SP_NONE;
	if (strcmp(name, SFS_METADATA_NAME) == 0)
		return SFS_SP_META;
	if (strcmp(name, SFS_EVENTS_NAME) == 0)
		return SFS_SP_EVENTS;
	return SFS_SP_NONE;
}

/* Make room for @need bytes in fh->buf; called with fh->mu held, after hold(). */
static int reserve(struct sfs_fh *fh, size_t need, size_t max)
{
	char *n;
	size_t cap;

	if (need > max)
		return -EFBIG;
	if (need <= fh->cap)
		return 0;
	cap = fh->cap ? fh->cap : 4096;
	while (cap < need)
		cap *= 2;
	n = malloc(cap);
	if (!n)
		return -ENOMEM;
	if (fh->buf) {
		memcpy(n, fh->buf, fh->len);
		sodium_memzero(fh->buf, fh->cap);
		free(fh->buf);
	}
	fh->buf = n;
	fh->cap = cap;
	return 0;
}

void sfs_special_release(struct sfs_fh *fh)
{
	/* Under held_mu: a lock may be wiping this very buffer. */
	pthread_mutex_lock(&held_mu);
	if (fh->held)
		unhold(fh);
	pthread_mutex_lock(&fh->mu);
	drop_buf(fh);
	pthread_mutex_unlock(&fh->mu);
	pthread_mutex_unlock(&held_mu);
}

int sfs_special_pending(struct sfs_fh *fh)
{
	int rc;

	pthread_mutex_lock(&fh->mu);
	rc = fh->lost ? -EIO : fh->dirty || fh->len > 0;
	pthread_mutex_unlock(&fh->mu);
	return rc;
}

void sfs_special_forget(struct sfs_session *s)
{
	pthread_mutex_lock(&held_mu);
	for (struct sfs_fh *fh = held, *next; fh; fh = next) {
		next = fh->held_next;
		if (fh->sess != s)
			continue;
		pthread_mutex_lock(&fh->mu);
		if (fh->len > 0 || fh->dirty)
			fh->lost = true;
		fh->dirty = false;
		drop_buf(fh);
		pthread_mutex_unlock(&fh->mu);
		unhold(fh);
	}
	pthread_mutex_unlock(&held_mu);
}

/*
 * The session's log (s->c.ev, which unlock opened) if events.jsonl @in is
 * that log, else NULL; called with s->ev_rw held.
 */
static struct sfs_log *log_of(struct sfs_inode *in)
{
	struct sfs_session *s = in->sess;

	/* Only the log unlock prepared; another file by this name is stale or foreign. */
	if (!s->c.ev_ok || !sfs_node_is_log(in) ||
	    sodium_memcmp(in->id, s->c.ev.id, SFS_ID_BYTES) != 0)
		return NULL;
	return &s->c.ev;
}

void sfs_session_changed(struct sfs_session *s)
{
	long long now = (long long)time(NULL), zero = 0;

	atomic_store(&s->changed, now);
	atomic_compare_exchange_strong(&s->changed_first, &zero, now);
}

/* A read of @s's events.jsonl met a failing record at backing offset @pos: list says so. */
static void note_damage(struct sfs_session *s, uint64_t pos)
{
	pthread_rwlock_wrlock(&s->ev_rw);
	if (!s->ev_damage[0]) {
		snprintf(s->ev_damage, sizeof(s->ev_damage),
			 "the record at stored offset %llu fails authentication (a read met it); "
			 "reads touching it fail with EIO, the rest reads and appends work",
			 (unsigned long long)pos);
		s->ev_bad = pos;
	}
	pthread_rwlock_unlock(&s->ev_rw);
}

/*
 * Append @len bytes of whole lines to events.jsonl, the session's
 * redaction rules applied first (what they match is never sealed); called
 * with s->ev_rw held for writing.
 */
static int append(struct sfs_inode *in, const char *data, size_t len)
{
	struct sfs_session *s = in->sess;
	struct sfs_log *l = log_of(in);
	char *red = NULL;
	size_t redlen = 0;
	uint64_t n = 0;
	int rc = l && !s->rules_bad ? 0 : -EIO;

	if (rc == 0 && s->rules.n)
		rc = sfs_rules_apply(&s->rules, data, len, &red, &redlen, &n);
	if (rc == 0)
		rc = red ? sfs_log_append(l, red, redlen) : sfs_log_append(l, data, len);
	if (red) {
		sodium_memzero(red, redlen);
		free(red);
	}
	if (rc < 0)
		return rc;
	sfs_session_changed(in->sess);
	return 0;
}

ssize_t sfs_events_read(struct sfs_inode *in, char *buf, size_t size, off_t off)
{
	const struct sfs_log *l;
	uint64_t bad = 0;
	ssize_t n;

	pthread_rwlock_rdlock(&in->sess->ev_rw);
	l = log_of(in);
	n = l ? sfs_log_pread(l, buf, size, (uint64_t)off, &bad) : -EIO;
	pthread_rwlock_unlock(&in->sess->ev_rw);
	if (n == -EBADMSG) {
		char what[64];

		snprintf(what, sizeof(what), "event record at stored offset %llu",
			 (unsigned long long)bad);
		sfs_log_corrupt(in, what, -1);
		/* list shows it until an unlock finds it gone */
		note_damage(in->sess, bad);
	}
	return n;
}

ssize_t sfs_events_write(struct sfs_inode *in, struct sfs_fh *fh, const char *buf, size_t size,
			 off_t off, bool appending)
{
	struct sfs_session *s = in->sess;
	size_t old, start = 0, end;
	uint64_t fsize;
	int rc = 0;

	hold(fh);
	pthread_mutex_lock(&fh->mu);
	if (fh->lost) {
		pthread_mutex_unlock(&fh->mu);
		return -EIO;
	}
	old = fh->len;
	pthread_rwlock_wrlock(&s->ev_rw);
	fsize = s->c.ev.size;
	/* The end is the stored size, or past the tail this file still holds. */
	if (!appending && (uint64_t)off != fsize && (uint64_t)off != fsize + old)
		rc = -EPERM;
	if (rc == 0)
		rc = reserve(fh, old + size, PENDING_MAX + size);
	if (rc < 0)
		goto out;
	memcpy(fh->buf + old, buf, size);
	fh->len = old + size;
	end = fh->len;
	while (end > 0 && fh->buf[end - 1] != '\n')
		end--;
	/* Check every complete line before storing any. */
	for (size_t i = 0; i < end; i++) {
		if (fh->buf[i] != '\n')
			continue;
		if (!sfs_store_event_line_ok(fh->buf + start, i - start)) {
			sfs_syslog(LOG_NOTICE,
				   "%s: events.jsonl: refused a line that is not a JSON "
				   "object",
				   s->id);
			rc = -EINVAL;
			break;
		}
		start = i + 1;
	}
	if (rc == 0 && end > 0)
		rc = append(in, fh->buf, end);
	if (rc < 0) {
		/* Nothing of this write is kept; an earlier tail stays pending. */
		fh->len = rc == -EINVAL ? 0 : old;
		sodium_memzero(fh->buf + fh->len, old + size - fh->len);
		goto out;
	}
	memmove(fh->buf, fh->buf + end, fh->len - end);
	sodium_memzero(fh->buf + fh->len - end, end); /* the lines now stored */
	fh->len -= end;
	if (fh->len > PENDING_MAX)
		rc = -EFBIG;
out:
	pthread_rwlock_unlock(&s->ev_rw);
	pthread_mutex_unlock(&fh->mu);
	return rc < 0 ? rc : (ssize_t)size;
}

/* sfs_events_flush with fh->mu held. */
static int flush_locked(struct sfs_inode *in, struct sfs_fh *fh)
{
	int rc;

	if (fh->lost)
		return -EIO;
	if (fh->len == 0)
		return 0;
	sfs_loop_plaintext();
	if (!sfs_store_event_line_ok(fh->buf, fh->len)) {
		sfs_syslog(LOG_NOTICE,
			   "%s: events.jsonl: refused an unterminated line that is not "
			   "a JSON object",
			   in->sess->id);
		sodium_memzero(fh->buf, fh->len);
		fh->len = 0;
		return -EINVAL;
	}
	rc = reserve(fh, fh->len + 1, PENDING_MAX + 1); /* a buffer on the list: len > 0 */
	if (rc < 0)
		return rc;
	fh->buf[fh->len++] = '\n';
	pthread_rwlock_wrlock(&in->sess->ev_rw);
	rc = append(in, fh->buf, fh->len);
	pthread_rwlock_unlock(&in->sess->ev_rw);
	sodium_memzero(fh->buf, fh->len);
	fh->len = 0;
	return rc;
}

int sfs_events_flush(struct sfs_inode *in, struct sfs_fh *fh)
{
	int rc;

	pthread_mutex_lock(&fh->mu);
	rc = flush_locked(in, fh);
	pthread_mutex_unlock(&fh->mu);
	return rc;
}

/* sfs_meta_open with fh->mu held. */
static int open_locked(struct sfs_inode *in, struct sfs_fh *fh, bool trunc,
		       const struct sfs_keys *keys)
{
	char *text;
	size_t len;
	int rc;

	fh->len = 0;
	fh->dirty = trunc;
	if (trunc)
		return reserve(fh, 1, SFS_METADATA_MAX);
	sfs_loop_plaintext();
	pthread_rwlock_rdlock(&in->io);
	rc = sfs_metadata_read_fd(fh->fd, keys, NULL, &text, &len);
	pthread_rwlock_unlock(&in->io);
	if (rc < 0)
		return rc;
	rc = reserve(fh, len + 1, SFS_METADATA_MAX);
	if (rc == 0) {
		memcpy(fh->buf, text, len);
		fh->len = len;
	}
	sfs_metadata_free(text, len);
	return rc;
}

int sfs_meta_open(struct sfs_inode *in, struct sfs_fh *fh, bool trunc, const struct sfs_keys *keys)
{
	int rc;

	hold(fh);
	pthread_mutex_lock(&fh->mu);
	rc = open_locked(in, fh, trunc, keys);
	pthread_mutex_unlock(&fh->mu);
	return rc;
}

ssize_t sfs_meta_write(struct sfs_fh *fh, const char *buf, size_t size, off_t off)
{
	size_t end = (size_t)off + size;
	int rc;

	hold(fh);
	pthread_mutex_lock(&fh->mu);
	if (fh->lost)
		rc = -EIO;
	else if (off < 0 || (uint64_t)off > SFS_METADATA_MAX)
		rc = -EFBIG;
	else
		rc = reserve(fh, end, SFS_METADATA_MAX);
	if (rc == 0) {
		if ((size_t)off > fh->len)
			memset(fh->buf + fh->len, 0, (size_t)off - fh->len);
		memcpy(fh->buf + off, buf, size);
		if (end > fh->len)
			fh->len = end;
		fh->dirty = true;
	}
	pthread_mutex_unlock(&fh->mu);
	return rc < 0 ? rc : (ssize_t)size;
}

ssize_t sfs_meta_read(struct sfs_fh *fh, char *buf, size_t size, off_t off)
{
	ssize_t n = 0;

	pthread_mutex_lock(&fh->mu);
	if (!fh->buf) {
		n = -ENODATA;
	} else if ((size_t)off < fh->len) {
		if (size > fh->len - (size_t)off)
			size = fh->len - (size_t)off;
		memcpy(buf, fh->buf + off, size);
		n = (ssize_t)size;
	}
	pthread_mutex_unlock(&fh->mu);
	return n;
}

int sfs_meta_truncate(struct sfs_fh *fh, off_t size)
{
	int rc;

	hold(fh);
	pthread_mutex_lock(&fh->mu);
	rc = fh->lost ? -EIO : reserve(fh, (size_t)size + 1, SFS_METADATA_MAX);
	if (rc == 0) {
		if ((size_t)size > fh->len)
			memset(fh->buf + fh->len, 0, (size_t)size - fh->len);
		else
			sodium_memzero(fh->buf + size, fh->len - (size_t)size);
		fh->len = (size_t)size;
		fh->dirty = true;
	}
	pthread_mutex_unlock(&fh->mu);
	return rc;
}

/* Log why session @sid's metadata.json was refused (never the content). */
static void log_refusal(const char *sid, const struct sfs_metadata_refusal *r)
{
	if (r->line > 0)
		sfs_syslog(LOG_NOTICE, "%s: metadata.json refused: %s (line %d)", sid, r->why,
			   r->line);
	else
		sfs_syslog(LOG_NOTICE, "%s: metadata.json refused: %s", sid, r->why);
}

/*
 * The kernel may still map the name metadata.json to the file just replaced:
 * drop that dentry, and the session root's cached attributes (the rename
 * moved its mtime). Called from flush, fsync or release, which hold no
 * directory lock, so notifying from here cannot deadlock; but a process may
 * hold the root's lock while it waits for a reply, so a release served by
 * the request loop's reader (a read-only one, loop.c) first passes the
 * reading on to another thread.
 */
static void forget_old_name(int rootfd)
{
	struct stat st;
	fuse_ino_t ino;

	if (fstat(rootfd, &st) < 0)
		return;
	ino = sfs_inode_number(st.st_dev, st.st_ino);
	if (!ino)
		return;
	sfs_loop_pass(); /* a read-only release is served by the reader (loop.c) */
	fuse_lowlevel_notify_inval_entry(sfs->se, ino, SFS_METADATA_NAME,
					 strlen(SFS_METADATA_NAME));
	fuse_lowlevel_notify_inval_inode(sfs->se, ino, -1, 0);
}

int sfs_meta_commit(struct sfs_inode *in, struct sfs_fh *fh, const struct sfs_keys *keys)
{
	struct sfs_session *s = in->sess;
	struct sfs_metadata_refusal why = {0};
	struct sfs_metadata m;
	struct sfs_attrs attrs;
	int rc;

	/* Held throughout: a write on this handle meanwhile waits for the commit. */
	pthread_mutex_lock(&fh->mu);
	if (fh->lost || !fh->dirty) {
		rc = fh->lost ? -EIO : 0;
		pthread_mutex_unlock(&fh->mu);
		return rc;
	}
	sfs_loop_plaintext();
	pthread_mutex_lock(&in->mu);
	attrs = in->attrs;
	pthread_mutex_unlock(&in->mu);
	rc = sfs_metadata_open(&m, s->cfd, s->id, keys);
	if (rc < 0) {
		pthread_mutex_unlock(&fh->mu);
		return rc;
	}
	/*
	 * The document it replaces is the stored one: not necessarily this
	 * file's (replaced since, or made by a create where none was).
	 */
	pthread_mutex_lock(&s->meta_mu);
	pthread_rwlock_wrlock(&in->io);
	rc = sfs_metadata_replace(&m, fh->buf, fh->len, &attrs, &why);
	pthread_rwlock_unlock(&in->io);
	pthread_mutex_unlock(&s->meta_mu);
	if (rc == 0)
		fh->dirty = false;
	pthread_mutex_unlock(&fh->mu);
	if (why.why)
		log_refusal(s->id, &why);
	if (rc == 0) {
		sfs_syslog(LOG_INFO, "%s: metadata.json replaced", s->id);
		forget_old_name(m.rootfd);
	}
	sfs_metadata_close(&m);
	return rc;
}

int sfs_meta_create(struct sfs_inode *p, const struct sfs_attrs *a, const struct sfs_keys *keys,
		    struct fuse_entry_param *e)
{
	unsigned char id[SFS_ID_BYTES];
	int fd;

	if (p->bad)
		return -EIO;
	/* -EEXIST: stored after all (the kernel's entry was stale) */
	fd = sfs_metadata_new_unlinked(p->fd, p->id, a, keys, id);
	if (fd < 0)
		return fd;
	return sfs_make_entry(p, NULL, fd, keys, id, a, e); /* the inode keeps fd; no name yet */
}

void sfs_meta_closed(struct sfs_inode *in, int fd)
{
	struct stat st;
	int rootfd;

	if (fstat(fd, &st) < 0 || st.st_nlink > 0)
		return;
	/* Outside the session, which may be locked: s->cfd is read under s->rw. */
	pthread_rwlock_rdlock(&in->sess->rw);
	rootfd = openat(in->sess->cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	pthread_rwlock_unlock(&in->sess->rw);
	if (rootfd >= 0) {
		forget_old_name(rootfd);
		close(rootfd);
	}
}

int sfs_meta_check_replacement(struct sfs_inode *root, int fd, const struct sfs_keys *keys)
{
	struct sfs_session *s = root->sess;
	struct sfs_metadata_refusal why = {0};
	struct sfs_metadata m;
	char *doc;
	size_t len;
	int rc;

	sfs_loop_plaintext();
	rc = sfs_metadata_read_fd(fd, keys, NULL, &doc, &len);
	if (rc < 0)
		return rc;
	rc = sfs_metadata_open(&m, s->cfd, s->id, keys);
	if (rc == 0) {
		rc = sfs_metadata_check(&m, doc, len, &why);
		sfs_metadata_close(&m);
	}
	if (why.why)
		log_refusal(s->id, &why);
	sfs_metadata_free(doc, len);
	return rc;
}

void sfs_meta_forget_name(int rootfd)
{
	forget_old_name(rootfd);
	close(rootfd);
}

int sfs_events_redact(struct sfs_session *s, const regex_t *re, json_t *rec,
		      struct sfs_redact_stats *st, int *rootfd_out, fuse_ino_t *old_out)
{
	struct sfs_log_rewrite rw = {.nl.fd = -1, .rootfd = -1};
	struct stat old = {0};
	char *line = NULL;
	size_t len = 0;
	int rc;

	*rootfd_out = -1;
	*old_out = 0;
	memset(st, 0, sizeof(*st));
	pthread_rwlock_wrlock(&s->ev_rw);
	rc = s->c.ev_ok ? 0 : -EIO;
	if (rc == 0 && fstat(s->c.ev.fd, &old) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_container_redact_begin(&s->c, s->cfd, re, &rw, st);
	if (rc == 0) {
		json_object_set_new(rec, "matches", json_integer((json_int_t)st->matches));
		json_object_set_new(rec, "lines", json_integer((json_int_t)st->changed));
		len = json_dumpb(rec, NULL, 0, JSON_COMPACT);
		line = len ? malloc(len + 1) : NULL;
		rc = line ? 0 : -ENOMEM;
		if (rc == 0) {
			json_dumpb(rec, line, len, JSON_COMPACT);
			line[len] = '\n';
			rc = sfs_log_append(&rw.nl, line, len + 1);
			free(line);
		}
		if (rc < 0)
			sfs_log_redact_discard(&rw);
	}
	if (rc == 0)
		rc = sfs_container_redact_commit(&s->c, &rw);
	pthread_rwlock_unlock(&s->ev_rw);
	if (rw.renamed) {
		sfs_session_changed(s);
		*rootfd_out = sfs_session_rootfd(s);
		if (*rootfd_out < 0)
			*rootfd_out = -1;
		*old_out = sfs_inode_number(old.st_dev, old.st_ino);
		sfs_syslog(LOG_INFO, "%s: events.jsonl redacted (%llu matches)", s->id,
			   (unsigned long long)st->matches);
	}
	return rc;
}

void sfs_events_forget_name(int rootfd, fuse_ino_t old)
{
	struct stat st;
	fuse_ino_t ino;

	if (rootfd < 0)
		return;
	if (fstat(rootfd, &st) == 0 && (ino = sfs_inode_number(st.st_dev, st.st_ino)) != 0) {
		fuse_lowlevel_notify_inval_entry(sfs->se, ino, SFS_EVENTS_NAME,
						 strlen(SFS_EVENTS_NAME));
		fuse_lowlevel_notify_inval_inode(sfs->se, ino, -1, 0);
	}
	if (old)
		fuse_lowlevel_notify_inval_inode(sfs->se, old, -1, 0);
	close(rootfd);
}

/* @r as [{name, pattern, builtin}]. */
static json_t *rules_json(const struct sfs_rules *r)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < r->n; i++)
		json_array_append_new(arr,
				      json_pack("{s:s, s:s, s:b}", "name", r->r[i].name, "pattern",
						r->r[i].pattern, "builtin", r->r[i].builtin));
	return arr;
}

int sfs_events_rules(struct sfs_session *s, const char *name, const char *pattern, bool builtin,
		     json_t **list, char *err, size_t errsz)
{
	struct sfs_rules r;
	int rc;

	*list = NULL;
	err[0] = '\0';
	pthread_rwlock_wrlock(&s->ev_rw);
	rc = sfs_rules_load(s->cfd, s->c.keys, &r);
	if (rc == 0 && name) {
		rc = pattern ? sfs_rules_set(&r, name, pattern, builtin, err, errsz)
			     : sfs_rules_remove(&r, name);
		if (rc == 0)
			rc = sfs_rules_store(s->cfd, &r, s->c.keys);
	}
	if (rc == -ENOENT) { /* no such rule: the list as it is */
		*list = rules_json(&r);
		sfs_rules_free(&r);
	} else if (rc == 0) {
		/* what is stored is what applies: also after a lock and unlock */
		sfs_rules_free(&s->rules);
		s->rules = r;
		s->rules_bad = false;
		*list = rules_json(&s->rules);
	} else {
		sfs_rules_free(&r);
	}
	pthread_rwlock_unlock(&s->ev_rw);
	if ((rc == 0 || rc == -ENOENT) && !*list)
		rc = -ENOMEM;
	return rc;
}
