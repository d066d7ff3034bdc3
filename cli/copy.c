/*
 * copy.c - sessionctl copy: an independent copy of an unlocked session
 * under a new id, with its own key and password, in the same mount or in
 * another sessionfs mount (--to), for handing an incident over without
 * sharing a password.
 *
 * All through the mounts, with the crypto left to the daemons: the copy is
 * made by the target mount's "new" op (new key, new password, the source's
 * name and "created", and "copy_of": its first metadata.json says "status":
 * "copying" and names the source), then filled with ordinary system calls:
 * every directory, file (holes of whole zero chunks kept), symlink, FIFO,
 * socket and device node, hard links as links, user.* xattrs, owners (where
 * the caller may set them), modes, atime and mtime; events.jsonl appended
 * in whole lines; every file and directory fsynced; the redaction rules
 * set on it as the source has them. metadata.json is
 * written last: the source's document with the new "id" and "updated"; that
 * one atomic replacement turns the unfinished copy into a whole one. A copy
 * killed before it stays "copying" (never taken for whole: `list` shows
 * it), and the same command with the same --id makes it again. Last, the
 * "copy" op records it in the audit trail of the target's store and, if
 * it is another store, of the source's.
 *
 * The walk that fills the copy is copy_tree.c's (copy.h). The source is
 * only read. Knows the protocol's words and the session's layout as the
 * mount shows it; nothing of crypto or the store format.
 */
#include "copy.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * Read the metadata.json at @dir (a session directory) into *@doc, a JSON
 * object, and its attributes into *@st (if not NULL); 0, or an exit code
 * after saying why (@what names it: "INC-3f2a").
 */
static int read_metadata(int dir, const char *what, json_t **doc, struct stat *st)
{
	/* O_NONBLOCK: nothing but a regular file is read, and a FIFO cannot hold the open. */
	int fd = openat(dir, SFS_METADATA_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	const char *why = NULL;
	json_error_t jerr;
	struct stat own;

	*doc = NULL;
	if (fd < 0)
		return die(errno == EACCES ? SFS_EXIT_CTL_LOCKED : SFS_EXIT_FAIL,
			   "%s: cannot read %s: %s", what, SFS_METADATA_NAME,
			   errno == EACCES ? "the session is locked" : strerror(errno));
	if (!st)
		st = &own;
	if (fstat(fd, st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st->st_mode))
		why = "not a regular file";
	else if (fcntl(fd, F_SETFL, O_RDONLY) < 0) /* O_NONBLOCK off */
		why = strerror(errno);
	if (why) {
		close(fd);
		return die(SFS_EXIT_FAIL, "%s: %s: %s", what, SFS_METADATA_NAME, why);
	}
	*doc = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		return die(SFS_EXIT_FAIL, "%s: %s is not a JSON object (%s)", what,
			   SFS_METADATA_NAME, jerr.text);
	}
	return SFS_EXIT_OK;
}

/*
 * Last: the source's document @src (attributes @st) with the copy's "id",
 * "updated" now and the copy's "created" if the source had none it could
 * keep, as the copy's metadata.json; its commit (at fsync) makes the copy whole.
 */
static int write_metadata(struct copy *cp, json_t *src, const struct stat *st)
{
	json_t *doc = json_deep_copy(src), *now_doc = NULL;
	char now[32], *text = NULL;
	size_t n = 0;
	int fd = -1, rc;

	snprintf(cp->rel, sizeof(cp->rel), "%s", SFS_METADATA_NAME);
	rc = read_metadata(cp->droot, cp->id, &now_doc, NULL);
	if (rc)
		goto out;
	sfs_utc_now(now, sizeof(now));
	if (!doc || json_object_set_new(doc, "id", json_string(cp->id)) < 0 ||
	    json_object_set_new(doc, SFS_PROTO_F_UPDATED, json_string(now)) < 0 ||
	    (json_object_get(now_doc, SFS_PROTO_F_CREATED) &&
	     json_object_set(doc, SFS_PROTO_F_CREATED,
			     json_object_get(now_doc, SFS_PROTO_F_CREATED)) < 0)) {
		rc = copy_fail(cp, "build", ENOMEM);
		goto out;
	}
	n = json_dumpb(doc, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	text = n ? malloc(n + 1) : NULL;
	if (!text) {
		rc = copy_fail(cp, "build", ENOMEM);
		goto out;
	}
	json_dumpb(doc, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	text[n++] = '\n';
	fd = openat(cp->droot, SFS_METADATA_NAME, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = copy_fail(cp, "open", errno);
		goto out;
	}
	rc = copy_write_all(fd, text, n, 0);
	if (rc) {
		rc = copy_fail(cp, "write", rc);
		goto out;
	}
	rc = copy_attrs(cp, -1, fd, cp->droot, SFS_METADATA_NAME, st, false);
	/* The daemon checks and commits the document here: refused, it says why (EINVAL). */
	if (rc == 0 && fsync(fd) < 0)
		rc = copy_fail(cp, "write (refused by the daemon)", errno);
out:
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = copy_fail(cp, "close", errno);
	if (text) {
		sodium_memzero(text, n);
		free(text);
	}
	json_decref(doc);
	json_decref(now_doc);
	return rc;
}

/*
 * The source's redaction rules (the "rules" op) set on the copy, in their
 * order, so what they would remove from a line appended to the source is
 * removed from one appended to the copy too. After the events are copied:
 * those stay byte for byte as the source stored them.
 */
static int copy_rules(struct copy *cp, const struct cmd *c)
{
	char what[96];
	json_t *resp = NULL, *rule;
	size_t i;
	int rc;

	snprintf(what, sizeof(what), "cannot copy the redaction rules of %s", c->t.id);
	rc = call_at(c->mnt,
		     json_pack("{s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_RULES),
			       SFS_PROTO_F_SESSION, c->t.id),
		     what, &resp);
	json_array_foreach(json_object_get(resp, SFS_PROTO_F_RULES), i, rule)
	{
		const char *name = get_str(rule, SFS_PROTO_F_NAME),
			   *pat = get_str(rule, SFS_PROTO_F_PATTERN);
		json_t *req;

		if (rc)
			break;
		if (!name || !pat) {
			rc = die(SFS_EXIT_FAIL, "%s: the daemon's list is not one of rules", what);
			break;
		}
		req = json_is_true(json_object_get(rule, SFS_PROTO_F_BUILTIN))
			      ? json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP,
					  sfs_proto_op_name(SFS_PROTO_OP_RULES),
					  SFS_PROTO_F_SESSION, cp->id, SFS_PROTO_F_BUILTIN, name)
			      : json_pack("{s:s, s:s, s:s, s:s}", SFS_PROTO_F_OP,
					  sfs_proto_op_name(SFS_PROTO_OP_RULES),
					  SFS_PROTO_F_SESSION, cp->id, SFS_PROTO_F_NAME, name,
					  SFS_PROTO_F_PATTERN, pat);
		rc = call_at(cp->tomnt, req, what, NULL);
	}
	json_decref(resp);
	return rc;
}

/* The session directory MNT/WHERE/ID opened O_RDONLY, or -1 with errno. */
static int open_session(const char *mnt, const char *where, const char *id)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", mnt, where, id) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A request of op @op on session @id, with "by": "copy". */
static json_t *request(enum sfs_proto_op op, const char *id)
{
	return json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(op),
			 SFS_PROTO_F_SESSION, id, SFS_PROTO_F_BY, "copy");
}

/*
 * --id ID exists on the target mount: an unfinished copy of this source
 * (its metadata.json "copying" with "copy_of" the source; a locked one is
 * unlocked with the new password to see) is deleted, to be made again;
 * anything else is left as it was (locked again if it was unlocked here)
 * and refused: SFS_EXIT_CTL_EXISTS. SFS_EXIT_OK when ID is free now.
 */
static int clear_unfinished(struct copy *cp, struct cmd *c)
{
	char what[96], path[PATH_MAX + 64];
	bool unlocked = false;
	json_t *doc = NULL, *req;
	struct stat st;
	int dir = -1, rc = SFS_EXIT_OK;
	const char *where = SFS_SESSIONS_DIR;

	snprintf(path, sizeof(path), "%s/%s/%s", cp->tomnt, where, c->id);
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		where = SFS_ARCHIVE_DIR;
		snprintf(path, sizeof(path), "%s/%s/%s", cp->tomnt, where, c->id);
		if (lstat(path, &st) < 0 && errno == ENOENT)
			return SFS_EXIT_OK;
	}
	snprintf(what, sizeof(what), "cannot copy %s to %s", cp->src, c->id);
	snprintf(path, sizeof(path), "%s/%s/%s/%s", cp->tomnt, where, c->id, SFS_METADATA_NAME);
	if (lstat(path, &st) < 0 && errno == EACCES) {
		/* Locked: only the new password can tell whether it is ours. */
		req = request(SFS_PROTO_OP_UNLOCK, c->id);
		if (req)
			json_object_set_new(req, SFS_PROTO_F_PASSWORD,
					    json_stringn(c->newpw.buf, c->newpw.len));
		rc = call_at(cp->tomnt, req, what, NULL);
		if (rc == SFS_EXIT_CTL_WRONG_PASSWORD)
			rc = die(SFS_EXIT_CTL_EXISTS,
				 "%s: a session with that id already exists in %s (locked, and the "
				 "new password does not open it)",
				 what, cp->tomnt);
		if (rc)
			goto out;
		unlocked = true;
	}
	dir = open_session(cp->tomnt, where, c->id);
	if (dir >= 0 && read_metadata(dir, c->id, &doc, NULL) == SFS_EXIT_OK &&
	    strcmp(get_str(doc, SFS_PROTO_F_STATUS) ? get_str(doc, SFS_PROTO_F_STATUS) : "",
		   SFS_STATUS_COPYING) == 0 &&
	    strcmp(get_str(doc, SFS_COPY_OF) ? get_str(doc, SFS_COPY_OF) : "", cp->src) == 0) {
		fprintf(stderr, "sessionctl: %s: an unfinished copy of %s: making it again\n",
			c->id, cp->src);
		close(dir);
		dir = -1;
		rc = call_at(cp->tomnt, request(SFS_PROTO_OP_DELETE, c->id), what, NULL);
		goto out;
	}
	if (unlocked)
		call_at(cp->tomnt, request(SFS_PROTO_OP_LOCK, c->id), what, NULL);
	rc = die(SFS_EXIT_CTL_EXISTS, "%s: a session with that id already exists in %s", what,
		 cp->tomnt);
out:
	json_decref(doc);
	if (dir >= 0)
		close(dir);
	return rc;
}

/* The "store" a mount's daemon serves (hello), into @buf; "" if unknown. */
static void store_of(const char *mnt, char *buf, size_t len)
{
	json_t *resp;

	buf[0] = '\0';
	if (call_at(mnt, json_pack("{s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_HELLO)),
		    "cannot ask the daemon", &resp) == SFS_EXIT_OK) {
		snprintf(buf, len, "%s",
			 get_str(resp, SFS_PROTO_F_STORE) ? get_str(resp, SFS_PROTO_F_STORE) : "");
		json_decref(resp);
	}
}

int sfs_copy_check(struct cmd *c)
{
	struct target t;
	struct mount m;
	char path[PATH_MAX + 64];
	struct stat st;
	int rc;

	if (c->id && !sfs_id_valid(c->id))
		return die(SFS_EXIT_USAGE,
			   "bad --id '%s': want INC- and 4 to 16 lowercase hex digits", c->id);
	if (c->to) {
		rc = mount_open(c->to, &m);
		if (rc)
			return rc;
		mount_close(&m);
	}
	/* Before a password is asked: a locked source cannot be copied. */
	rc = resolve(c->args[0], &t);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s/%s/%s", t.mnt, t.where, t.id, SFS_METADATA_NAME);
	if (lstat(path, &st) < 0 && errno == EACCES)
		return die(SFS_EXIT_CTL_LOCKED,
			   "cannot copy %s: the session is locked (unlock it first)", t.id);
	return SFS_EXIT_OK;
}

int sfs_copy_run(struct cmd *c)
{
	struct copy cp = {
		.src = c->t.id, .tomnt = c->to ? c->to : c->mnt, .sroot = -1, .droot = -1};
	char what[96], sstore[PATH_MAX], dstore[PATH_MAX];
	json_t *meta = NULL, *req, *resp = NULL, *out;
	struct stat mst, rst;
	int rc;

	cp.tty = isatty(STDERR_FILENO);
	cp.buf = malloc(CHUNK);
	cp.xbuf = malloc(XATTR_LIST_MAX_ + XATTR_VALUE_MAX);
	if (!cp.buf || !cp.xbuf) {
		rc = die(SFS_EXIT_FAIL, "out of memory");
		goto out;
	}
	cp.sroot = open_session(c->mnt, c->t.where, c->t.id);
	if (cp.sroot < 0) {
		rc = die(errno == ENOENT ? SFS_EXIT_CTL_NO_SESSION : SFS_EXIT_FAIL,
			 "cannot copy %s: %s", c->t.id, strerror(errno));
		goto out;
	}
	rc = read_metadata(cp.sroot, c->t.id, &meta, &mst);
	if (rc)
		goto out;
	if (c->id) {
		rc = clear_unfinished(&cp, c);
		if (rc)
			goto out;
	}
	/* The copy, made "copying" until its metadata.json is written last. */
	snprintf(what, sizeof(what), "cannot copy %s", c->t.id);
	req = json_pack("{s:s, s:s%, s:s, s:s, s:s}", SFS_PROTO_F_OP,
			sfs_proto_op_name(SFS_PROTO_OP_NEW), SFS_PROTO_F_PASSWORD, c->newpw.buf,
			c->newpw.len, SFS_PROTO_F_NAME,
			get_str(meta, SFS_PROTO_F_NAME) ? get_str(meta, SFS_PROTO_F_NAME) : "",
			SFS_PROTO_F_COPY_OF, c->t.id, SFS_PROTO_F_BY, "copy");
	sfs_password_free(&c->newpw);
	if (req && c->id)
		json_object_set_new(req, SFS_PROTO_F_ID, json_string(c->id));
	if (req && sfs_store_utc_time_ok(get_str(meta, SFS_PROTO_F_CREATED)))
		json_object_set(req, SFS_PROTO_F_CREATED,
				json_object_get(meta, SFS_PROTO_F_CREATED));
	rc = call_at(cp.tomnt, req, what, &resp);
	if (rc)
		goto out;
	snprintf(cp.id, sizeof(cp.id), "%s", get_str(resp, SFS_PROTO_F_ID));
	cp.droot = open_session(cp.tomnt, SFS_SESSIONS_DIR, cp.id);
	if (cp.droot < 0) {
		rc = copy_fail(&cp, "open the copy", errno);
		goto out;
	}
	if (cp.tty)
		copy_count(&cp);
	rc = copy_tree(&cp);
	if (rc == 0)
		rc = copy_events(&cp);
	if (rc == 0)
		rc = copy_rules(&cp, c);
	cp.rel[0] = '\0';
	/* The session directory's attributes; its times move with metadata.json's replacements. */
	if (rc == 0 && fstat(cp.sroot, &rst) < 0)
		rc = copy_fail(&cp, "stat", errno);
	if (rc == 0)
		rc = copy_attrs(&cp, cp.sroot, cp.droot, -1, NULL, &rst, false);
	if (rc == 0)
		rc = write_metadata(&cp, meta, &mst);
	if (rc) {
		fprintf(stderr,
			"sessionctl: %s stays an unfinished copy (status \"%s\"): run the same "
			"command with --id %s to make it again, or delete it\n",
			cp.id, SFS_STATUS_COPYING, cp.id);
		goto out;
	}
	copy_progress(&cp, true);
	/* Whole: the audit trail of each store says so. */
	store_of(cp.tomnt, dstore, sizeof(dstore));
	store_of(c->mnt, sstore, sizeof(sstore));
	snprintf(what, sizeof(what), "%s copied to %s, but not recorded", c->t.id, cp.id);
	req = json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_COPY),
			SFS_PROTO_F_SESSION, cp.id, SFS_PROTO_F_FROM, c->t.id);
	rc = call_at(cp.tomnt, req, what, NULL);
	if (rc == 0 && (!dstore[0] || strcmp(sstore, dstore) != 0))
		rc = call_at(c->mnt,
			     json_pack("{s:s, s:s, s:s}", SFS_PROTO_F_OP,
				       sfs_proto_op_name(SFS_PROTO_OP_COPY), SFS_PROTO_F_SESSION,
				       c->t.id, SFS_PROTO_F_TO, cp.id),
			     what, NULL);
	if (c->json) {
		out = json_pack(
			"{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", SFS_PROTO_F_ID,
			cp.id, SFS_PROTO_F_FROM, c->t.id, "mount", cp.tomnt, "files",
			(json_int_t)cp.files, "directories", (json_int_t)cp.dirs, "symlinks",
			(json_int_t)cp.symlinks, "special", (json_int_t)cp.nodes, "hardlinks",
			(json_int_t)cp.hardlinks, "bytes", (json_int_t)cp.bytes, SFS_PROTO_F_EVENTS,
			(json_int_t)cp.events, SFS_PROTO_F_EVENTS_BYTES, (json_int_t)cp.ev_bytes);
		if (out) {
			static const char *const keep[] = {SFS_PROTO_F_KDF, SFS_PROTO_F_OPSLIMIT,
							   SFS_PROTO_F_MEMLIMIT,
							   SFS_PROTO_F_CIPHER};

			for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
				if (json_object_get(resp, keep[i]))
					json_object_set(out, keep[i],
							json_object_get(resp, keep[i]));
			json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		json_decref(out);
	} else {
		printf("%s\n", cp.id);
		fflush(stdout);
		say_protection(resp);
	}
out:
	json_decref(meta);
	json_decref(resp);
	for (size_t i = 0; i < cp.nlinks; i++)
		free(cp.links[i].rel);
	free(cp.links);
	if (cp.buf) {
		sodium_memzero(cp.buf, CHUNK);
		free(cp.buf);
	}
	if (cp.xbuf) {
		sodium_memzero(cp.xbuf, XATTR_LIST_MAX_ + XATTR_VALUE_MAX);
		free(cp.xbuf);
	}
	if (cp.sroot >= 0)
		close(cp.sroot);
	if (cp.droot >= 0)
		close(cp.droot);
	return rc;
}
