/*
 * ctl.c - the control file MOUNTPOINT/.sessionfs (doc/control.md).
 *
 * One JSON request per open file, written in one write(2) and answered by
 * the JSON response that read(2) returns. Only the mounting user and root
 * may open it. Passwords are wiped from the request buffer and from jansson
 * (which frees through a wiping allocator) as soon as they are used.
 * The protocol's words (ops, members, codes) are lib/proto.h's: the
 * handlers below are found through one table, and what a request must carry
 * is checked from proto.h's before a handler runs.
 * Knows the session functions of the daemon; no crypto, no format.
 */
#include "ctl_request.h"
#include "fs.h"
#include "proto.h"
#include "special.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* One transaction. */
struct ctl_tx {
	char *resp; /* JSON response, NUL-terminated; NULL before the request */
	size_t len;
	off_t base;	 /* file offset the request's write ended at */
	uint64_t ticket; /* invalidations the response waits for; 0 none */
};

/* The failed response for negative errno @rc (code and text: lib/proto.c). */
static json_t *fail(int rc)
{
	const char *text;
	enum sfs_proto_err code = sfs_proto_err_from_errno(rc, &text);

	return json_pack("{s:b, s:s, s:s}", SFS_PROTO_F_OK, 0, SFS_PROTO_F_CODE,
			 sfs_proto_err_name(code), SFS_PROTO_F_ERROR, text);
}

static json_t *ok(void)
{
	return json_pack("{s:b}", SFS_PROTO_F_OK, 1);
}

/* A string member, or NULL; its length in *len if asked. */
static const char *str(json_t *req, const char *key, size_t *len)
{
	json_t *v = json_object_get(req, key);

	if (!json_is_string(v))
		return NULL;
	if (len)
		*len = json_string_length(v);
	return json_string_value(v);
}

/* The members a request carries that proto.h's SFS_PROTO_TAKES_* name, checked. */
struct ctl_args {
	const char *session;  /* SFS_PROTO_TAKES_SESSION: a valid session id */
	const char *password; /* SFS_PROTO_TAKES_PASSWORD */
	size_t password_len;
	const char *new_password; /* SFS_PROTO_TAKES_NEW_PASSWORD: not empty */
	size_t new_password_len;
	struct sfs_audit_who who; /* the caller (kernel's uid and pid) and "by" if sent */
};

/*
 * Record @event of @session (NULL none) done by the request's caller in the
 * store's audit trail, with "ok" and on failure the code of negative errno
 * @rc, and the members of @extra (consumed; NULL none).
 */
static void audit(const struct ctl_args *a, const char *event, const char *session, int rc,
		  json_t *extra)
{
	if (!extra)
		extra = json_object();
	if (extra) {
		json_object_set_new(extra, "ok", json_boolean(rc == 0));
		if (rc < 0)
			json_object_set_new(extra, "error",
					    json_string(sfs_proto_err_name(
						    sfs_proto_err_from_errno(rc, NULL))));
	}
	sfs_audit(event, session, &a->who, extra);
}

/*
 * Add how session @id (in sessions/ or archive/ by @where) keeps its key to
 * @o: "kdf" (its Argon2id level, or "custom"), "opslimit", "memlimit" and
 * the content "cipher", as its key file says. Nothing if that is unreadable.
 */
static void add_params(json_t *o, const char *id, int where)
{
	struct sfs_session_params p;
	int cfd, rc;

	if (!o || where < 0 || where > 1)
		return;
	cfd = openat(sfs->topfd[where], id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0)
		return;
	rc = sfs_store_session_params(cfd, &p);
	close(cfd);
	if (rc < 0)
		return;
	json_object_set_new(o, SFS_PROTO_F_KDF,
			    json_string(p.kdf ? sfs_kdf_level_name(p.kdf) : SFS_PROTO_KDF_CUSTOM));
	json_object_set_new(o, SFS_PROTO_F_OPSLIMIT, json_integer((json_int_t)p.opslimit));
	json_object_set_new(o, SFS_PROTO_F_MEMLIMIT, json_integer((json_int_t)p.memlimit));
	json_object_set_new(o, SFS_PROTO_F_CIPHER, json_string(sfs_cipher_name(p.cipher)));
}

/* Add "current": the session MOUNTPOINT/current names, if any. */
static json_t *add_current(json_t *o)
{
	char id[SFS_SESSION_ID_MAX + 1];

	if (o && sfs_current_get(id))
		json_object_set_new(o, SFS_PROTO_F_CURRENT, json_string(id));
	return o;
}

static json_t *do_hello(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	(void)req, (void)a, (void)tx;
	return add_current(json_pack("{s:b, s:s, s:s}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_VERSION,
				     SFS_VERSION, SFS_PROTO_F_STORE, sfs->store_path));
}

/*
 * A new recovery key in sodium_malloc memory: its SFS_RECOVERY_KEY_BYTES
 * bytes, then its text at + SFS_RECOVERY_KEY_BYTES. NULL on ENOMEM.
 */
static unsigned char *recovery_new(void)
{
	unsigned char *rk = sodium_malloc(SFS_RECOVERY_KEY_BYTES + SFS_RECOVERY_TEXT_MAX);

	if (rk)
		sfs_slot_recovery_new(rk, (char *)rk + SFS_RECOVERY_KEY_BYTES);
	return rk;
}

/* Add the recovery key @rk's text to response @o (shown once, never logged). */
static json_t *add_recovery(json_t *o, const unsigned char *rk)
{
	if (o && rk)
		json_object_set_new(o, SFS_PROTO_F_RECOVERY_KEY,
				    json_string((const char *)rk + SFS_RECOVERY_KEY_BYTES));
	return o;
}

/* Optional member @key of @req: absent (NULL, true) or a string that @ok accepts. */
static bool optional(json_t *req, const char *key, bool (*ok)(const char *), const char **out)
{
	*out = str(req, key, NULL);
	return !json_object_get(req, key) || (*out && ok(*out));
}

static json_t *do_new(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	char id[SFS_SESSION_ID_MAX + 1];
	const char *name = str(req, SFS_PROTO_F_NAME, NULL), *want = str(req, SFS_PROTO_F_ID, NULL);
	bool recovery = json_is_true(json_object_get(req, SFS_PROTO_F_RECOVERY_KEY));
	unsigned char *rk = recovery ? recovery_new() : NULL;
	const char *created, *copy_of;
	json_t *resp;
	int rc;

	(void)tx;
	if ((want && !sfs_id_valid(want)) ||
	    !optional(req, SFS_PROTO_F_CREATED, sfs_store_utc_time_ok, &created) ||
	    !optional(req, SFS_PROTO_F_COPY_OF, sfs_id_valid, &copy_of))
		rc = -EINVAL;
	else
		rc = recovery && !rk
			     ? -ENOMEM
			     : sfs_session_create(want, name ? name : "", a->password,
						  a->password_len, rk, created, copy_of, id);
	if (!want || sfs_id_valid(want)) {
		json_t *more = json_object();

		if (more && recovery)
			json_object_set_new(more, "recovery_key", json_true());
		if (more && copy_of)
			json_object_set_new(more, SFS_PROTO_F_COPY_OF, json_string(copy_of));
		audit(a, "new", rc == 0 ? id : want, rc, more);
	}
	resp = rc < 0 ? fail(rc) : json_pack("{s:b, s:s}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_ID, id);
	if (rc == 0) {
		add_params(resp, id, sfs_session_where(id));
		add_recovery(resp, rk);
		if (rk) /* which slot it is: `new --recovery-key` says so */
			json_object_set_new(resp, SFS_PROTO_F_SLOT,
					    json_integer(SFS_NEW_RECOVERY_SLOT));
	}
	if (rk)
		sodium_free(rk);
	return resp;
}

static json_t *do_unlock(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	char *warn;
	json_t *resp, *arr;
	int rc;

	(void)req, (void)tx;
	warn = malloc(SFS_WARN_MAX);
	if (!warn)
		return fail(-ENOMEM);
	rc = sfs_session_unlock(a->session, a->password, a->password_len, warn, SFS_WARN_MAX);
	resp = rc < 0 ? fail(rc) : ok();
	/* What unlock cut or found damaged: one line each, for sessionctl to print. */
	arr = rc == 0 && warn[0] ? json_array() : NULL;
	for (char *p = warn, *e; arr && *p; p = e ? e + 1 : p + strlen(p)) {
		e = strchr(p, '\n');
		json_array_append_new(arr, json_stringn(p, e ? (size_t)(e - p) : strlen(p)));
	}
	audit(a, "unlock", a->session, rc, NULL);
	/* What unlock cut from events.jsonl or found damaged there: no plaintext. */
	if (arr)
		audit(a, "repair", a->session, 0, json_pack("{s:O}", "what", arr));
	if (arr)
		json_object_set_new(resp, SFS_PROTO_F_WARNINGS, arr);
	free(warn);
	return resp;
}

static json_t *do_lock(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	struct sfs_session *s;
	int open_files = 0;

	(void)req;
	if (sfs_session_where(a->session) < 0) {
		audit(a, "lock", a->session, -ENOENT, json_pack("{s:s}", "cause", "command"));
		return fail(-ENOENT);
	}
	s = sfs_session_find(a->session);
	if (s) {
		if (sfs_session_lock(s, &open_files) == 0)
			audit(a, "lock", s->id, 0,
			      json_pack("{s:s, s:i}", "cause", "command", "open_files",
					open_files));
		tx->ticket = sfs_notify_session(s);
	}
	return json_pack("{s:b, s:i}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_OPEN_FILES, open_files);
}

static json_t *do_lock_all(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	int total = 0, count = 0;

	(void)req;
	/* Each lock (a metadata.json refresh, fsynced) runs outside sess_mu. */
	for (struct sfs_session *s = sfs_session_first(); s; s = s->next) {
		int n;

		if (sfs_session_lock(s, &n) == 0) {
			total += n;
			count++;
			audit(a, "lock", s->id, 0,
			      json_pack("{s:s, s:i}", "cause", "command", "open_files", n));
		}
		tx->ticket = sfs_notify_session(s);
	}
	return json_pack("{s:b, s:i, s:i}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_SESSIONS, count,
			 SFS_PROTO_F_OPEN_FILES, total);
}

/*
 * The members of unlocked session @s's metadata.json that list shows, read
 * by the daemon (not through the mount: a list is no use of the session and
 * must not hold off idle_lock). Nothing if it cannot be read.
 */
static void add_metadata(json_t *o, struct sfs_session *s)
{
	const struct sfs_keys *keys;
	json_t *sum;
	size_t len;
	char *text;
	int rc;

	if (!o || !s || sfs_session_enter_quiet(s, &keys) < 0)
		return;
	rc = sfs_meta_peek(s, keys, &text, &len);
	sfs_session_leave(s);
	if (rc < 0)
		return;
	rc = sfs_store_metadata_summary(text, len, &sum);
	sodium_memzero(text, len);
	free(text);
	if (rc == 0)
		json_object_update(o, sum);
	json_decref(sum);
}

/*
 * Add what the store tells of session @id (in sessions/ or archive/ by
 * @where) without its key to @o: "size", "allocated", "changed" and
 * "changed_ns" (lib/usage.c). Nothing if its container cannot be opened.
 */
static void add_usage(json_t *o, const char *id, int where)
{
	struct sfs_session_usage u;
	char when[32];
	int cfd;

	if (!o)
		return;
	cfd = sfs_container_dir(sfs->topfd[where], id);
	if (cfd < 0)
		return;
	if (sfs_store_session_usage(cfd, &u) == 0 || u.nodes > 0) {
		sfs_utc_format(when, sizeof(when), u.changed.tv_sec);
		json_object_set_new(o, SFS_PROTO_F_SIZE, json_integer((json_int_t)u.bytes));
		json_object_set_new(o, SFS_PROTO_F_ALLOCATED,
				    json_integer((json_int_t)u.allocated));
		json_object_set_new(o, SFS_PROTO_F_CHANGED, json_string(when));
		json_object_set_new(o, SFS_PROTO_F_CHANGED_NS,
				    json_integer((json_int_t)u.changed.tv_sec * 1000000000 +
						 u.changed.tv_nsec));
	}
	close(cfd);
}

static void list_one(const char *id, int where, void *arg)
{
	struct sfs_session *s = sfs_session_find(id);
	bool locked = true, known = false;
	uint64_t events = 0, bytes = 0;
	char damage[SFS_DAMAGE_MAX] = "";
	json_t *o;

	if (s) {
		pthread_rwlock_rdlock(&s->rw);
		locked = !sfs_container_is_open(&s->c);
		pthread_rwlock_rdlock(&s->ev_rw);
		if (!locked && s->c.ev_ok) {
			events = s->c.ev.lines;
			bytes = s->c.ev.size;
			known = true;
		}
		/* Known damage stays listed while locked: the next unlock checks again. */
		if (!s->deleted)
			snprintf(damage, sizeof(damage), "%s", s->ev_damage);
		pthread_rwlock_unlock(&s->ev_rw);
		pthread_rwlock_unlock(&s->rw);
	}
	o = json_pack("{s:s, s:s, s:b}", SFS_PROTO_F_ID, id, SFS_PROTO_F_WHERE,
		      where ? SFS_ARCHIVE_DIR : SFS_SESSIONS_DIR, SFS_PROTO_F_LOCKED, locked);
	if (o && locked && sfs_session_elsewhere(id, where))
		json_object_set_new(o, SFS_PROTO_F_UNLOCKED_ELSEWHERE, json_true());
	/* Counted by the log itself: no scan of events.jsonl. */
	if (o && known) {
		json_object_set_new(o, SFS_PROTO_F_EVENTS, json_integer((json_int_t)events));
		json_object_set_new(o, SFS_PROTO_F_EVENTS_BYTES, json_integer((json_int_t)bytes));
	}
	if (!locked) {
		add_params(o, id, where);
		add_metadata(o, s);
	}
	add_usage(o, id, where);
	if (o && damage[0])
		json_object_set_new(o, SFS_PROTO_F_DAMAGED,
				    json_pack("[{s:s, s:s}]", SFS_PROTO_F_FILE, SFS_EVENTS_NAME,
					      SFS_PROTO_F_WHAT, damage));
	json_array_append_new(arg, o);
}

static json_t *do_list(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	json_t *arr = json_array();

	(void)req, (void)a, (void)tx;
	if (!arr)
		return NULL;
	sfs_session_foreach_id(list_one, arr);
	return json_pack("{s:b, s:o}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_SESSIONS, arr);
}

static json_t *do_passwd(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	int rc;

	(void)req, (void)tx;
	int slot = -1;

	rc = sfs_session_passwd(a->session, a->password, a->password_len, a->new_password,
				a->new_password_len, &slot);
	audit(a, "passwd", a->session, rc, rc == 0 ? json_pack("{s:i}", "slot", slot) : NULL);
	return rc < 0 ? fail(rc)
		      : json_pack("{s:b, s:i}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_SLOT, slot);
}

static json_t *do_delete(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	struct sfs_session *s;
	int rc;

	rc = sfs_session_delete(a->session,
				json_is_true(json_object_get(req, SFS_PROTO_F_LOCKED_OK)));
	audit(a, "delete", a->session, rc, NULL);
	if (rc == 0)
		sfs_current_forget(a->session); /* MOUNTPOINT/current would dangle */
	s = sfs_session_find(a->session);
	if (rc == 0 && s)
		tx->ticket = sfs_notify_session(s);
	return rc < 0 ? fail(rc) : ok();
}

/* MOUNTPOINT/current -> the session, locked or not; it must exist. */
static json_t *do_use(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	int rc;

	(void)req, (void)tx;
	rc = sfs_session_where(a->session) < 0 ? -ENOENT : sfs_current_set(a->session);
	audit(a, "use", a->session, rc, NULL);
	return rc < 0 ? fail(rc) : add_current(ok());
}

static json_t *do_unuse(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	(void)req, (void)tx;
	sfs_current_set(NULL);
	audit(a, "use", NULL, 0, NULL);
	return ok();
}

/*
 * Move session @a->session from sessions/ to archive/, the way `mv
 * sessions/ID archive/` does (sfs_session_move: its busy lock held, so one
 * unlocked by another mount is busy and stays). Locked or unlocked here.
 * One already in archive/ (and not in sessions/) is left there: ok.
 */
static json_t *do_archive(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	struct sfs_session *s;
	int w = sfs_session_where(a->session), rc;

	(void)req;
	if (w == 1)
		return ok();
	rc = w < 0 ? -ENOENT : sfs_session_move(a->session, 0);
	audit(a, "archive", a->session, rc, NULL); /* refused ones too, as for mv */
	if (rc < 0)
		return fail(rc);
	/* The kernel's names sessions/ID (and a negative archive/ID) go; lookups register. */
	s = sfs_session_find(a->session);
	if (s)
		tx->ticket = sfs_notify_session(s);
	return ok();
}

/*
 * Read session @a->session's status, or set it to the request's "status"
 * (one of sfs_store_statuses) with "updated" moved to now. Either way the
 * answer has the stored document's "status" and "updated" (absent if not
 * strings). Setting is a use of the session (idle_lock), reading is not.
 */
static json_t *do_status(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	const char *set = str(req, SFS_PROTO_F_STATUS, NULL);
	struct sfs_session *s;
	const struct sfs_keys *keys;
	json_t *resp, *sum = NULL;
	int rootfd = -1, rc, set_rc = 0;
	size_t len;
	char *text;

	(void)tx;
	if (json_object_get(req, SFS_PROTO_F_STATUS) && !sfs_store_status_known(set))
		rc = -EINVAL;
	else if (sfs_session_where(a->session) < 0)
		rc = -ENOENT;
	else if (!(s = sfs_session_find(a->session)))
		rc = -EACCES; /* never unlocked by this mount */
	else
		rc = set ? sfs_session_enter(s, &keys) : sfs_session_enter_quiet(s, &keys);
	if (rc == 0) {
		if (set)
			rc = set_rc = sfs_meta_set_status(s, keys, set, &rootfd);
		if (rc == 0)
			rc = sfs_meta_peek(s, keys, &text, &len);
		sfs_session_leave(s);
		/* No metadata.json stored: not "no such session". */
		rc = rc == -ENOENT ? -ENODATA : rc;
		set_rc = set_rc == -ENOENT ? -ENODATA : set_rc;
	} else {
		set_rc = rc;
	}
	/*
	 * Every set asked for is recorded, refused ones too; after leave (no
	 * lock held), and without the status itself: it is metadata.json's,
	 * which the store holds only encrypted.
	 */
	if (json_object_get(req, SFS_PROTO_F_STATUS))
		audit(a, "status", a->session, set_rc, NULL);
	if (rootfd >= 0)
		sfs_meta_forget_name(rootfd); /* no lock held, as at a commit's flush */
	if (rc < 0)
		return fail(rc);
	rc = sfs_store_metadata_summary(text, len, &sum);
	sodium_memzero(text, len);
	free(text);
	/* stored, but not an object: damage; ENOMEM is no damage */
	if (rc < 0)
		return fail(rc == -EINVAL ? SFS_METADATA_EDAMAGED : rc);
	resp = json_pack("{s:b, s:s}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_ID, a->session);
	if (resp) {
		json_object_set(resp, SFS_PROTO_F_STATUS, json_object_get(sum, SFS_PROTO_F_STATUS));
		json_object_set(resp, SFS_PROTO_F_UPDATED,
				json_object_get(sum, SFS_PROTO_F_UPDATED));
	}
	json_decref(sum);
	return resp;
}

/* The key slots of a session (lib/session.h): labels only while it is unlocked here. */
static json_t *do_keys(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	struct sfs_slot_info *sl = sodium_malloc(SFS_SLOTS_MAX * sizeof(*sl));
	json_t *arr = json_array(), *resp = NULL;
	enum sfs_cipher cipher;
	unsigned int n = 0;
	int version, rc;
	char when[32];

	(void)req, (void)tx;
	rc = !sl || !arr ? -ENOMEM : sfs_session_slots(a->session, sl, &n, &version, &cipher);
	for (unsigned int i = 0; rc == 0 && i < n; i++) {
		bool rec = sl[i].kdf == SFS_SLOT_RECOVERY;
		json_t *o = json_pack("{s:i, s:s}", SFS_PROTO_F_INDEX, sl[i].index,
				      SFS_PROTO_F_KIND, rec ? "recovery-key" : "password");

		if (o && !rec) {
			json_object_set_new(o, SFS_PROTO_F_KDF,
					    json_string(sl[i].level
								? sfs_kdf_level_name(sl[i].level)
								: SFS_PROTO_KDF_CUSTOM));
			json_object_set_new(o, SFS_PROTO_F_OPSLIMIT, json_integer(sl[i].opslimit));
			json_object_set_new(o, SFS_PROTO_F_MEMLIMIT, json_integer(sl[i].memlimit));
		}
		sfs_utc_format(when, sizeof(when), sl[i].added);
		json_object_set_new(o, SFS_PROTO_F_ADDED,
				    sl[i].added ? json_string(when) : json_null());
		json_object_set_new(o, SFS_PROTO_F_LABEL,
				    sl[i].label_known && sl[i].label[0] ? json_string(sl[i].label)
									: json_null());
		if (!sl[i].label_known)
			json_object_set_new(o, SFS_PROTO_F_LABEL_SEALED, json_true());
		json_array_append_new(arr, o);
	}
	if (rc == 0)
		resp = json_pack("{s:b, s:s, s:i, s:s, s:O}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_ID,
				 a->session, SFS_PROTO_F_FORMAT, version, SFS_PROTO_F_CIPHER,
				 sfs_cipher_name(cipher), SFS_PROTO_F_SLOTS, arr);
	json_decref(arr);
	if (sl)
		sodium_free(sl);
	return rc < 0 ? fail(rc) : resp;
}

/*
 * Add a key slot: @new_password's (add_password) or a recovery key the
 * daemon makes (add_recovery_key: its text in the response, once). The
 * audit trail gets the slot's index and kind, never a secret or a label.
 */
static json_t *add_slot(json_t *req, const struct ctl_args *a, bool recovery)
{
	const char *label = str(req, SFS_PROTO_F_LABEL, NULL);
	unsigned char *rk = recovery ? recovery_new() : NULL;
	struct sfs_slot_new sn = {.kdf = SFS_SLOT_ARGON2ID,
				  .secret = a->new_password,
				  .len = a->new_password_len,
				  .label = label};
	int slot = -1, rc = 0;
	json_t *resp;

	if (json_object_get(req, SFS_PROTO_F_LABEL) &&
	    (!label || !sfs_slot_label_ok(label, strlen(label))))
		rc = -EINVAL;
	else if (recovery && !rk)
		rc = -ENOMEM;
	if (recovery) {
		sn.kdf = SFS_SLOT_RECOVERY;
		sn.secret = rk;
		sn.len = SFS_RECOVERY_KEY_BYTES;
	}
	if (rc == 0)
		rc = sfs_session_slot_add(a->session, a->password, a->password_len, &sn, &slot);
	audit(a, "slot_add", a->session, rc,
	      rc == 0 ? json_pack("{s:i, s:s}", "slot", slot, "kind",
				  recovery ? "recovery-key" : "password")
		      : NULL);
	resp = rc < 0 ? fail(rc)
		      : json_pack("{s:b, s:i}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_SLOT, slot);
	if (rc == 0)
		add_recovery(resp, rk);
	if (rk)
		sodium_free(rk);
	return resp;
}

static json_t *do_add_password(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	(void)tx;
	return add_slot(req, a, false);
}

static json_t *do_add_recovery_key(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	(void)tx;
	return add_slot(req, a, true);
}

/* Remove slot "slot" (an integer), proven by another slot's password. */
static json_t *do_remove_slot(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	json_t *v = json_object_get(req, SFS_PROTO_F_SLOT);
	json_int_t slot = json_integer_value(v);
	int rc;

	(void)tx;
	if (!json_is_integer(v) || slot < 0 || slot >= SFS_SLOTS_MAX)
		return fail(-EINVAL);
	rc = sfs_session_slot_remove(a->session, (int)slot, a->password, a->password_len);
	audit(a, "slot_remove", a->session, rc, json_pack("{s:i}", "slot", (int)slot));
	return rc < 0 ? fail(rc) : ok();
}

/*
 * Redact session @a->session's events.jsonl: every match of the request's
 * "pattern" (POSIX ERE) becomes [REDACTED] (sfs_events_redact), and the new
 * log ends with a record of it (counts, the pattern's SHA-256, who, when;
 * never the pattern). Unlocked here only. Optional "file_matches": what the
 * caller replaced in the session's other files, for the record.
 */
static json_t *do_redact(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	const char *pattern = str(req, SFS_PROTO_F_PATTERN, NULL);
	json_t *fm = json_object_get(req, SFS_PROTO_F_FILE_MATCHES), *rec;
	char hex[SFS_REDACT_HASH_HEX], comm[32], when[32], err[128];
	struct sfs_redact_stats st = {0};
	const struct sfs_keys *keys;
	struct sfs_session *s;
	fuse_ino_t old = 0;
	int rootfd = -1, rc;
	regex_t re;

	(void)tx;
	if (!pattern || (fm && (!json_is_integer(fm) || json_integer_value(fm) < 0)))
		return fail(-EINVAL);
	if (sfs_session_where(a->session) < 0)
		return fail(-ENOENT);
	s = sfs_session_find(a->session);
	if (!s)
		return fail(-EACCES); /* never unlocked by this mount */
	rc = sfs_redact_compile(&re, pattern, err, sizeof(err));
	if (rc < 0)
		return fail(rc);
	sfs_redact_pattern_hash(pattern, hex);
	sfs_audit_comm(a->who.pid, comm, sizeof(comm));
	sfs_utc_format(when, sizeof(when), time(NULL));
	rec = json_pack("{s:s, s:s, s:s, s:I, s:s}", "type", "redaction", "ts", when,
			"pattern_sha256", hex, "uid", (json_int_t)a->who.uid, "comm", comm);
	if (rec && fm)
		json_object_set(rec, SFS_PROTO_F_FILE_MATCHES, fm);
	rc = rec ? sfs_session_enter(s, &keys) : -ENOMEM;
	if (rc == 0) {
		rc = sfs_events_redact(s, &re, rec, &st, &rootfd, &old);
		sfs_session_leave(s);
	}
	regfree(&re);
	json_decref(rec);
	/* after leave: no lock held */
	sfs_events_forget_name(rootfd, old);
	/*
	 * The audit trail lies in the store in clear: no hash of the pattern
	 * there, which for a literal secret (a password, a card number) a
	 * dictionary or a search would turn back into it. The sealed record has it.
	 */
	audit(a, "redact", a->session, rc,
	      json_pack("{s:I, s:I}", SFS_PROTO_F_MATCHES, (json_int_t)st.matches,
			SFS_PROTO_F_LINES, (json_int_t)st.changed));
	if (rc < 0)
		return fail(rc);
	return json_pack("{s:b, s:I, s:I, s:I}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_MATCHES,
			 (json_int_t)st.matches, SFS_PROTO_F_LINES, (json_int_t)st.changed,
			 SFS_PROTO_F_EVENTS, (json_int_t)st.lines);
}

/*
 * Session @a->session's redaction rules (sfs_events_rules): the list, after
 * setting "name" to "pattern", setting the built-in rule "builtin" (under
 * its own name), or removing rule "remove" (at most one of the three).
 * Unlocked here only. A change is audited as "rules" (what changed; never
 * a pattern, its hash or a rule's name).
 */
static json_t *do_rules(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	const char *name = str(req, SFS_PROTO_F_NAME, NULL),
		   *pat = str(req, SFS_PROTO_F_PATTERN, NULL);
	const char *bname = str(req, SFS_PROTO_F_BUILTIN, NULL),
		   *rm = str(req, SFS_PROTO_F_REMOVE, NULL);
	const struct sfs_rule_builtin *b = bname ? sfs_rules_builtin(bname) : NULL;
	char err[128];
	const struct sfs_keys *keys;
	struct sfs_session *s;
	json_t *list = NULL;
	int rc;

	(void)tx;
	if ((json_object_get(req, SFS_PROTO_F_NAME) && !name) ||
	    (json_object_get(req, SFS_PROTO_F_PATTERN) && !pat) ||
	    (json_object_get(req, SFS_PROTO_F_BUILTIN) && !b) ||
	    (json_object_get(req, SFS_PROTO_F_REMOVE) && !rm) || (!name != !pat) ||
	    (!!name + !!b + !!rm > 1))
		return fail(-EINVAL);
	if (b)
		name = b->name, pat = b->pattern;
	if (sfs_session_where(a->session) < 0)
		return fail(-ENOENT);
	s = sfs_session_find(a->session);
	if (!s)
		return fail(-EACCES); /* never unlocked by this mount */
	rc = sfs_session_enter(s, &keys);
	if (rc == 0) {
		rc = sfs_events_rules(s, rm ? rm : name, rm ? NULL : pat, b != NULL, &list, err,
				      sizeof(err));
		sfs_session_leave(s);
	}
	/* in clear in the store: nothing of the pattern, not its hash (do_redact) */
	if (name || rm)
		audit(a, "rules", a->session, rm && rc == -ENOENT ? 0 : rc,
		      rm ? json_pack("{s:s}", "change", "remove")
			 : json_pack("{s:s, s:b}", "change", "set", "builtin", b != NULL));
	if (rm && rc == -ENOENT) /* no such rule: nothing to remove */
		return json_pack("{s:b, s:b, s:o*}", SFS_PROTO_F_OK, 1, "removed", 0,
				 SFS_PROTO_F_RULES, list);
	if ((rc == -EINVAL || rc == -ENOSPC) && err[0])
		return json_pack("{s:b, s:s, s:s}", SFS_PROTO_F_OK, 0, SFS_PROTO_F_CODE,
				 sfs_proto_err_name(SFS_PROTO_ERR_INVALID), SFS_PROTO_F_ERROR, err);
	if (rc < 0)
		return fail(rc);
	return json_pack("{s:b, s:o}", SFS_PROTO_F_OK, 1, SFS_PROTO_F_RULES, list);
}

/*
 * Record in the audit trail that session @a->session (here, locked or not)
 * was copied "from" another id, or "to" one (exactly one of the two):
 * `sessionctl copy` sends it once the copy is whole, to the target's mount
 * and, if it is another store, to the source's. Nothing else is done.
 */
static json_t *do_copy(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	const char *from, *to;

	(void)tx;
	if (!optional(req, SFS_PROTO_F_FROM, sfs_id_valid, &from) ||
	    !optional(req, SFS_PROTO_F_TO, sfs_id_valid, &to) || !from == !to)
		return fail(-EINVAL);
	if (sfs_session_where(a->session) < 0)
		return fail(-ENOENT);
	audit(a, "copy", a->session, 0,
	      json_pack("{s:s}", from ? SFS_PROTO_F_FROM : SFS_PROTO_F_TO, from ? from : to));
	return ok();
}

/*
 * Read the rekey request's optional "secrets" ([{"slot": N, "secret": S}])
 * and "drop" ([N]) into @secrets, @lens and @drop. false: malformed (a slot
 * out of range or given twice).
 */
static bool rekey_args(json_t *req, const char *secrets[SFS_SLOTS_MAX], size_t lens[SFS_SLOTS_MAX],
		       bool drop[SFS_SLOTS_MAX])
{
	json_t *sec = json_object_get(req, SFS_PROTO_F_SECRETS);
	json_t *dr = json_object_get(req, SFS_PROTO_F_DROP), *v;
	size_t i;

	if ((sec && !json_is_array(sec)) || (dr && !json_is_array(dr)))
		return false;
	json_array_foreach(sec, i, v)
	{
		json_t *n = json_object_get(v, SFS_PROTO_F_SLOT);
		json_int_t slot = json_integer_value(n);
		const char *text = str(v, SFS_PROTO_F_SECRET, NULL);

		if (!json_is_integer(n) || slot < 0 || slot >= SFS_SLOTS_MAX || !text ||
		    secrets[slot])
			return false;
		secrets[slot] = str(v, SFS_PROTO_F_SECRET, &lens[slot]);
	}
	json_array_foreach(dr, i, v)
	{
		json_int_t slot = json_integer_value(v);

		if (!json_is_integer(v) || slot < 0 || slot >= SFS_SLOTS_MAX || drop[slot] ||
		    secrets[slot])
			return false;
		drop[slot] = true;
	}
	return true;
}

/* The indexes @set of SFS_SLOTS_MAX as a JSON array. */
static json_t *slot_list(const bool set[SFS_SLOTS_MAX])
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < SFS_SLOTS_MAX; i++)
		if (set[i])
			json_array_append_new(arr, json_integer(i));
	return arr;
}

/*
 * Re-key session @a->session (sfs_session_rekey), proven by "password";
 * the other slots' secrets in "secrets", slots to leave out in "drop". The
 * audit trail gets the slots kept and dropped, nodes and bytes, never a
 * secret.
 */
static json_t *do_rekey(json_t *req, const struct ctl_args *a, struct ctl_tx *tx)
{
	const char *secrets[SFS_SLOTS_MAX] = {NULL};
	size_t lens[SFS_SLOTS_MAX] = {0};
	bool drop[SFS_SLOTS_MAX] = {false};
	struct sfs_rekey_result r = {.slot_failed = -1};
	struct sfs_session *s;
	json_t *resp, *arr;
	char *warn;
	int rc;

	if (!rekey_args(req, secrets, lens, drop))
		return fail(-EINVAL);
	warn = malloc(SFS_WARN_MAX);
	if (!warn)
		return fail(-ENOMEM);
	rc = sfs_session_rekey(a->session, a->password, a->password_len, secrets, lens, drop, &r,
			       warn, SFS_WARN_MAX);
	audit(a, "rekey", a->session, rc,
	      rc == 0 ? json_pack("{s:o, s:o, s:I, s:I, s:s}", SFS_PROTO_F_KEPT, slot_list(r.kept),
				  SFS_PROTO_F_DROPPED, slot_list(r.dropped), SFS_PROTO_F_NODES,
				  (json_int_t)r.nodes, SFS_PROTO_F_BYTES, (json_int_t)r.bytes,
				  SFS_PROTO_F_CIPHER, sfs_cipher_name(r.to))
	      : r.slot_failed >= 0 ? json_pack("{s:i}", SFS_PROTO_F_SLOT, r.slot_failed)
				   : NULL);
	/* its caches go: every name below it changed (or it was locked a moment) */
	s = sfs_session_find(a->session);
	if (s && (rc == 0 || r.nodes || r.unlocked))
		tx->ticket = sfs_notify_session(s);
	if (rc < 0) {
		free(warn);
		resp = fail(rc);
		if (resp && r.slot_failed >= 0)
			json_object_set_new(resp, SFS_PROTO_F_SLOT, json_integer(r.slot_failed));
		if (resp && rc == SFS_SLOT_EUNPROVEN)
			json_object_set_new(resp, SFS_PROTO_F_UNPROVEN, json_true());
		return resp;
	}
	resp = json_pack("{s:b, s:s, s:o, s:o, s:I, s:I, s:s, s:s, s:b}", SFS_PROTO_F_OK, 1,
			 SFS_PROTO_F_ID, a->session, SFS_PROTO_F_KEPT, slot_list(r.kept),
			 SFS_PROTO_F_DROPPED, slot_list(r.dropped), SFS_PROTO_F_NODES,
			 (json_int_t)r.nodes, SFS_PROTO_F_BYTES, (json_int_t)r.bytes,
			 SFS_PROTO_F_CIPHER, sfs_cipher_name(r.to), SFS_PROTO_F_CIPHER_BEFORE,
			 sfs_cipher_name(r.from), SFS_PROTO_F_UNLOCKED, r.unlocked);
	arr = resp && warn[0] ? json_array() : NULL;
	for (char *p = warn, *e; arr && *p; p = e ? e + 1 : p + strlen(p)) {
		e = strchr(p, '\n');
		json_array_append_new(arr, json_stringn(p, e ? (size_t)(e - p) : strlen(p)));
	}
	if (arr)
		json_object_set_new(resp, SFS_PROTO_F_WARNINGS, arr);
	free(warn);
	return resp;
}

/*
 * One handler per op of lib/proto.h. A handler runs once dispatch has
 * checked the members the op takes (sfs_proto_op_takes) into @a; it reads
 * any optional member from @req itself, and sets tx->ticket when the
 * response must wait for cache invalidations. It returns the response, or
 * NULL when out of memory.
 */
typedef json_t *ctl_handler(json_t *req, const struct ctl_args *a, struct ctl_tx *tx);

static ctl_handler *const handlers[SFS_PROTO_OPS] = {
	[SFS_PROTO_OP_HELLO] = do_hello,
	[SFS_PROTO_OP_NEW] = do_new,
	[SFS_PROTO_OP_UNLOCK] = do_unlock,
	[SFS_PROTO_OP_LOCK] = do_lock,
	[SFS_PROTO_OP_LOCK_ALL] = do_lock_all,
	[SFS_PROTO_OP_LIST] = do_list,
	[SFS_PROTO_OP_PASSWD] = do_passwd,
	[SFS_PROTO_OP_DELETE] = do_delete,
	[SFS_PROTO_OP_USE] = do_use,
	[SFS_PROTO_OP_UNUSE] = do_unuse,
	[SFS_PROTO_OP_STATUS] = do_status,
	[SFS_PROTO_OP_ARCHIVE] = do_archive,
	[SFS_PROTO_OP_KEYS] = do_keys,
	[SFS_PROTO_OP_ADD_PASSWORD] = do_add_password,
	[SFS_PROTO_OP_ADD_RECOVERY_KEY] = do_add_recovery_key,
	[SFS_PROTO_OP_REMOVE_SLOT] = do_remove_slot,
	[SFS_PROTO_OP_REDACT] = do_redact,
	[SFS_PROTO_OP_RULES] = do_rules,
	[SFS_PROTO_OP_COPY] = do_copy,
	[SFS_PROTO_OP_REKEY] = do_rekey,
};

/*
 * Find the op's handler and the members the op takes: any missing (or not
 * a string, or a password to set that is empty) is invalid; then a session
 * id no session can have is no-such-session.
 */
static json_t *dispatch(json_t *req, struct ctl_tx *tx, const struct fuse_ctx *ctx)
{
	int op = sfs_proto_op_find(str(req, SFS_PROTO_F_OP, NULL));
	struct ctl_args a = {.who = {.uid = ctx->uid, .pid = ctx->pid}};
	unsigned int takes;

	if (op < 0 || !handlers[op])
		return fail(-EINVAL);
	/* "by" (optional, any op): what acts, as the audit trail shall say. */
	if (json_object_get(req, SFS_PROTO_F_BY)) {
		a.who.by = str(req, SFS_PROTO_F_BY, NULL);
		if (!sfs_audit_by_valid(a.who.by))
			return fail(-EINVAL);
	}
	takes = sfs_proto_op_takes((enum sfs_proto_op)op);
	if (takes & SFS_PROTO_TAKES_SESSION)
		a.session = str(req, SFS_PROTO_F_SESSION, NULL);
	if (takes & SFS_PROTO_TAKES_PASSWORD)
		a.password = str(req, SFS_PROTO_F_PASSWORD, &a.password_len);
	if (takes & SFS_PROTO_TAKES_NEW_PASSWORD)
		a.new_password = str(req, SFS_PROTO_F_NEW_PASSWORD, &a.new_password_len);
	if (((takes & SFS_PROTO_TAKES_SESSION) && !a.session) ||
	    ((takes & SFS_PROTO_TAKES_PASSWORD) && !a.password) ||
	    ((takes & SFS_PROTO_SETS_PASSWORD) && a.password_len == 0) ||
	    ((takes & SFS_PROTO_TAKES_NEW_PASSWORD) &&
	     (!a.new_password || a.new_password_len == 0)))
		return fail(-EINVAL);
	if ((takes & SFS_PROTO_TAKES_SESSION) && !sfs_id_valid(a.session))
		return fail(-ENOENT);
	return handlers[op](req, &a, tx);
}

void sfs_ctl_open(fuse_req_t req, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct ctl_tx *tx;

	if (ctx->uid != sfs->owner && ctx->uid != 0) {
		fuse_reply_err(req, EACCES);
		return;
	}
	tx = calloc(1, sizeof(*tx));
	if (!tx) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)tx;
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

void sfs_ctl_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct ctl_tx *tx = (struct ctl_tx *)(uintptr_t)fi->fh;
	json_t *rq, *resp;
	int rc;

	if (size > SFS_CTL_REQUEST_MAX || tx->resp) {
		sodium_memzero((char *)buf, size);
		fuse_reply_err(req, tx->resp ? EBUSY : EFBIG);
		return;
	}
	rc = sfs_ctl_request_parse(buf, size, &rq);
	/* The request buffer is libfuse's, and ours to wipe: it may hold a password. */
	sodium_memzero((char *)buf, size);
	resp = rc == 0 ? dispatch(rq, tx, fuse_req_ctx(req))
		       : fail(rc == -ENOMEM ? -ENOMEM : -EINVAL);
	json_decref(rq);
	tx->base = off + (off_t)size;
	tx->len = resp ? json_dumpb(resp, NULL, 0, JSON_COMPACT) : 0;
	tx->resp = tx->len ? malloc(tx->len + 1) : NULL;
	if (tx->resp) {
		json_dumpb(resp, tx->resp, tx->len, JSON_COMPACT);
		tx->resp[tx->len] = '\n';
		tx->len++;
	}
	json_decref(resp);
	if (!tx->resp) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_write(req, size);
}

void sfs_ctl_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ctl_tx *tx = (struct ctl_tx *)(uintptr_t)fi->fh;

	if (!tx->resp) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* A lock is not done until the kernel has dropped the session's caches. */
	if (tx->ticket)
		sfs_notify_wait(tx->ticket);
	/*
	 * The file reads as the request's place blanked, then the response:
	 * bytes [0, base) are spaces and [base, base + len) the response. So
	 * read(2) after the write (at base) gets the response alone, and
	 * pread(2) at 0 gets it after blanks, which JSON skips. Each offset
	 * means one byte whichever way the client reads: the kernel splits a
	 * large direct read into READs of 128 KiB that may come in any order.
	 */
	uint64_t base = (uint64_t)tx->base, end = base + tx->len, from = (uint64_t)off;
	size_t pad;

	if (off < 0 || from >= end) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > end - from)
		size = (size_t)(end - from);
	/*
	 * Reply from a copy: once the reply is sent the client may close the
	 * file, and RELEASE (on another thread) frees tx->resp.
	 */
	char *copy = malloc(size ? size : 1);

	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pad = from < base ? (size_t)(base - from < size ? base - from : size) : 0;
	memset(copy, ' ', pad);
	if (size > pad)
		memcpy(copy + pad, tx->resp + (from + pad - base), size - pad);
	fuse_reply_buf(req, copy, size);
	sodium_memzero(copy, size);
	free(copy);
}

void sfs_ctl_release(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ctl_tx *tx = (struct ctl_tx *)(uintptr_t)fi->fh;

	if (tx->resp) {
		sodium_memzero(tx->resp, tx->len);
		free(tx->resp);
	}
	free(tx);
	fuse_reply_err(req, 0);
}
