/*
 * session.c - the daemon's sessions: the registry, the reader/writer lock
 * around each, idle tracking (idle_lock, max_unlock, and when "updated" is
 * refreshed) and cache invalidation, over the session layer of lib/, which
 * does the work: session.h (the container opened with its key, its event
 * log; finding containers, choosing a new id; unlock, lock, create,
 * delete, move, passwd), metadata.h (metadata.json: touching "updated" and
 * when it is due), session_report.h (the words of what unlock found and
 * repaired; this file logs them and hands them to the caller).
 *
 * A session's keys exist only between unlock and lock; every operation on
 * its files runs inside sfs_session_enter/leave (a read lock), so lock (the
 * write lock) waits for operations in flight and then wipes the keys.
 * Knows nothing of the control protocol, JSON, the store's layout or the
 * text of a finding.
 * Direction: this file calls special.c (the special files' handles at a
 * lock, the kernel's name of a replaced metadata.json), never the reverse.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* @s was just unlocked, or unlocked again: both automatic locks start over. */
static void start_clocks(struct sfs_session *s)
{
	long long now = now_ms();

	atomic_store(&s->unlocked_at, now);
	atomic_store(&s->last_used, now);
}

static struct sfs_session *find_locked(const char *id)
{
	for (struct sfs_session *s = sfs->sessions; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

struct sfs_session *sfs_session_first(void)
{
	struct sfs_session *s;

	/*
	 * A session is linked in whole, its next already set, under sess_mu,
	 * and neither unlinked nor freed before unmount: taking the head under
	 * the lock is enough to walk the chain from it without the lock.
	 */
	pthread_mutex_lock(&sfs->sess_mu);
	s = sfs->sessions;
	pthread_mutex_unlock(&sfs->sess_mu);
	return s;
}

struct sfs_session *sfs_session_find(const char *id)
{
	struct sfs_session *s;

	pthread_mutex_lock(&sfs->sess_mu);
	s = find_locked(id);
	pthread_mutex_unlock(&sfs->sess_mu);
	return s;
}

int sfs_session_where(const char *id)
{
	return sfs_container_where(sfs->topfd, id);
}

/* A new session @id on container @cfd (duplicated), not yet in the registry; NULL on error. */
static struct sfs_session *session_new(const char *id, int cfd)
{
	struct sfs_session *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t attr;

	if (!s)
		return NULL;
	s->cfd = dup(cfd);
	if (s->cfd < 0) {
		free(s);
		return NULL;
	}
	snprintf(s->id, sizeof(s->id), "%s", id);
	pthread_rwlockattr_init(&attr);
	/* Writer preference: a lock must not starve behind a stream of reads. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->rw, &attr);
	pthread_rwlock_init(&s->ev_rw, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->meta_mu, NULL);
	pthread_mutex_init(&s->unlock_mu, NULL);
	for (int i = 0; i < SFS_XATTR_STRIPES; i++)
		pthread_mutex_init(&s->xattr_mu[i], NULL);
	sfs_container_init(&s->c, id);
	start_clocks(s);
	return s;
}

static void session_free(struct sfs_session *s)
{
	pthread_rwlock_destroy(&s->rw);
	pthread_rwlock_destroy(&s->ev_rw);
	pthread_mutex_destroy(&s->meta_mu);
	pthread_mutex_destroy(&s->unlock_mu);
	for (int i = 0; i < SFS_XATTR_STRIPES; i++)
		pthread_mutex_destroy(&s->xattr_mu[i]);
	close(s->cfd);
	free(s);
}

/* A new session took deleted session @s's id: @s follows container @cfd from now on. */
static void revive(struct sfs_session *s, int cfd)
{
	int fd;

	/* Every lookup of the session comes here: no lock unless it was deleted. */
	if (!atomic_load(&s->deleted))
		return;
	fd = dup(cfd);
	if (fd < 0)
		return;
	pthread_rwlock_wrlock(&s->rw);
	if (s->deleted) {
		/* No operation is inside @s now: none is using the old descriptor. */
		close(s->cfd);
		s->cfd = fd;
		s->deleted = false;
	} else {
		close(fd);
	}
	pthread_rwlock_unlock(&s->rw);
}

struct sfs_session *sfs_session_get(const char *id, int cfd)
{
	struct sfs_session *s, *fresh = NULL;

	s = sfs_session_find(id);
	if (s) {
		if (cfd >= 0)
			revive(s, cfd);
		return s;
	}
	if (cfd < 0)
		return NULL;
	/* Made outside sess_mu, which guards nothing but the registry. */
	fresh = session_new(id, cfd);
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&sfs->sess_mu);
	s = find_locked(id);
	if (!s) {
		fresh->next = sfs->sessions;
		sfs->sessions = s = fresh;
		fresh = NULL;
	}
	pthread_mutex_unlock(&sfs->sess_mu);
	if (fresh) {
		/* Another thread registered @id meanwhile: that one is it. */
		session_free(fresh);
		revive(s, cfd);
	}
	return s;
}

int sfs_session_enter_quiet(struct sfs_session *s, const struct sfs_keys **keys)
{
	pthread_rwlock_rdlock(&s->rw);
	if (!sfs_container_is_open(&s->c)) {
		pthread_rwlock_unlock(&s->rw);
		return -EACCES;
	}
	*keys = s->c.keys;
	return 0;
}

int sfs_session_enter(struct sfs_session *s, const struct sfs_keys **keys)
{
	int rc = sfs_session_enter_quiet(s, keys);

	if (rc == 0)
		atomic_store(&s->last_used, now_ms());
	return rc;
}

/*
 * Set "updated" to @when in @s's metadata.json, inside the session (@keys
 * its keys); 0, -EINVAL if the stored document is no object, -errno. The
 * document is read and replaced under meta_mu, which a commit and a rename
 * over metadata.json hold too: what is written back is the current
 * document, never one a rename has replaced meanwhile. On success, if
 * @rootfd_out is not NULL, the session root for sfs_meta_forget_name once
 * the caller holds no lock.
 */
static int set_updated(struct sfs_session *s, const char *when, const struct sfs_keys *keys,
		       int *rootfd_out)
{
	struct sfs_metadata m;
	int rc = sfs_metadata_open(&m, s->cfd, s->id, keys);

	if (rc < 0)
		return rc;
	sfs_loop_plaintext();
	pthread_mutex_lock(&s->meta_mu);
	rc = sfs_metadata_touch(&m, when);
	pthread_mutex_unlock(&s->meta_mu);
	if (rc == 0 && rootfd_out) {
		*rootfd_out = m.rootfd;
		m.rootfd = -1;
	}
	sfs_metadata_close(&m);
	return rc;
}

int sfs_meta_peek(struct sfs_session *s, const struct sfs_keys *keys, char **text, size_t *len)
{
	struct sfs_metadata m;
	int rc;

	*text = NULL;
	*len = 0;
	rc = sfs_metadata_open(&m, s->cfd, s->id, keys);
	if (rc < 0)
		return rc;
	sfs_loop_plaintext();
	pthread_mutex_lock(&s->meta_mu);
	rc = sfs_metadata_peek(&m, text, len, NULL);
	pthread_mutex_unlock(&s->meta_mu);
	sfs_metadata_close(&m);
	return rc;
}

int sfs_meta_set_status(struct sfs_session *s, const struct sfs_keys *keys, const char *status,
			int *rootfd_out)
{
	struct sfs_metadata_refusal why = {0};
	struct sfs_metadata m;
	long long now = (long long)time(NULL), t;
	char when[32];
	int rc = sfs_metadata_open(&m, s->cfd, s->id, keys);

	if (rc < 0)
		return rc;
	sfs_utc_format(when, sizeof(when), (time_t)now);
	sfs_loop_plaintext();
	pthread_mutex_lock(&s->meta_mu);
	rc = sfs_metadata_set_status(&m, status, when, &why);
	pthread_mutex_unlock(&s->meta_mu);
	if (why.why)
		sfs_syslog(LOG_NOTICE, "%s: metadata.json: status not set: %s", s->id, why.why);
	if (rc == 0) {
		sfs_syslog(LOG_INFO, "%s: status set to %s", s->id, status);
		/* "updated" is now: a change pending from before is in it. */
		t = atomic_load(&s->changed);
		if (t && t <= now && atomic_compare_exchange_strong(&s->changed, &t, 0))
			atomic_store(&s->changed_first, 0);
		*rootfd_out = m.rootfd;
		m.rootfd = -1;
	}
	sfs_metadata_close(&m);
	return rc;
}

void sfs_meta_refresh(struct sfs_session *s, bool force, bool notify)
{
	long long t = atomic_load(&s->changed), first = atomic_load(&s->changed_first);
	long long now = (long long)time(NULL);
	const struct sfs_keys *keys;
	char when[32];
	int rootfd = -1, rc;

	if (!sfs_metadata_touch_due(t, first, now, force))
		return;
	if (sfs_session_enter_quiet(s, &keys) < 0)
		return; /* locked: the change was written when it locked */
	sfs_utc_format(when, sizeof(when), (time_t)t);
	rc = set_updated(s, when, keys, notify ? &rootfd : NULL);
	sfs_wipe_stack(); /* the notifier thread serves no request: wipe here */
	sfs_session_leave(s);
	if (rc < 0) {
		sfs_syslog(LOG_NOTICE, "%s: metadata.json: cannot refresh \"updated\": %s", s->id,
			   strerror(-rc));
		if (rc != -EINVAL)
			return; /* try again at the next tick */
	}
	/* Done with everything up to @t; a change since stays pending. */
	if (atomic_compare_exchange_strong(&s->changed, &t, 0))
		atomic_store(&s->changed_first, 0);
	if (rootfd >= 0)
		sfs_meta_forget_name(rootfd);
}

/* Log each line of @text as "ID: line" at @prio. */
static void log_lines(int prio, const char *id, const char *text)
{
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		int n = e ? (int)(e - p) : (int)strlen(p);

		sfs_syslog(prio, "%s: %.*s", id, n, p);
		p += n + (e ? 1 : 0);
	}
}

/*
 * Log what preparing @id's tree found (lib/prepare.c, in the words of
 * lib/session_report.c); the findings about its files also go to @warn
 * (lines, see sfs_session_unlock) and its damage to @damage ("" none).
 */
static void report(const char *id, int rc, const struct sfs_session_report *r,
		   const struct sfs_log *ev, char *warn, size_t wsz, char *damage, size_t dsz)
{
	const char *top = sfs_session_where(id) == 1 ? SFS_ARCHIVE_DIR : SFS_SESSIONS_DIR;
	char container[PATH_MAX + 64], notes[256];

	sfs_session_report_notes(r, notes, sizeof(notes));
	log_lines(LOG_NOTICE, id, notes);
	snprintf(container, sizeof(container), "%s/%s/%s", sfs->store_path, top, id);
	sfs_session_report_text(rc, r, ev, container, warn, wsz, damage, dsz);
	/* Each finding to the daemon's log too. */
	log_lines(rc < 0 ? LOG_ERR : LOG_WARNING, id, warn);
}

/* Make @s's tree ready after unlock or create; called with s->rw held for writing. */
static void prepare(struct sfs_session *s, int cfd, char *warn, size_t wsz)
{
	struct sfs_session_report r;
	struct sfs_log ev;
	char damage[SFS_DAMAGE_MAX];
	uint64_t recheck;
	int rc;

	pthread_rwlock_rdlock(&s->ev_rw);
	recheck = s->ev_bad;
	pthread_rwlock_unlock(&s->ev_rw);
	struct sfs_rules rules;
	int rrc;

	rc = sfs_container_prepare(&s->c, cfd, recheck, &ev, &r);
	report(s->id, rc, &r, &ev, warn, wsz, damage, sizeof(damage));
	/* The redaction rules: what does not open keeps every append out. */
	rrc = sfs_rules_load(cfd, s->c.keys, &rules);
	if (rrc < 0) {
		size_t n = strlen(warn);

		snprintf(warn + n, wsz - n,
			 "%s%s: the redaction rules (%s in the container) cannot be read (%s): "
			 "appends to %s are refused until the file is removed",
			 n ? "\n" : "", s->id, SFS_RULES_NAME, strerror(-rrc), SFS_EVENTS_NAME);
		sfs_syslog(LOG_ERR, "%s: redaction rules cannot be read: %s", s->id,
			   strerror(-rrc));
	}
	pthread_rwlock_wrlock(&s->ev_rw);
	sfs_rules_free(&s->rules);
	s->rules = rules;
	s->rules_bad = rrc < 0;
	/* none open before: a lock closed it (drop_keys) */
	sfs_container_set_log(&s->c, &ev, rc == 0);
	/* What this unlock found replaces what was known: it rechecked that too. */
	snprintf(s->ev_damage, sizeof(s->ev_damage), "%s", damage);
	s->ev_bad = rc == 0 && r.events_damage.count ? r.events_damage.pos : 0;
	pthread_rwlock_unlock(&s->ev_rw);
}

void sfs_session_leave(struct sfs_session *s)
{
	pthread_rwlock_unlock(&s->rw);
}

/* Is @s unlocked? If so and @renew, its automatic locks start over. */
static bool is_unlocked(struct sfs_session *s, bool renew)
{
	bool yes;

	pthread_rwlock_rdlock(&s->rw);
	yes = sfs_container_is_open(&s->c);
	if (yes && renew)
		start_clocks(s);
	pthread_rwlock_unlock(&s->rw);
	return yes;
}

int sfs_session_unlock(const char *id, const char *pw, size_t pwlen, char *warn, size_t wsz)
{
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_session *s;
	int cfd, rc;
	bool done;

	warn[0] = '\0';
	cfd = sfs_container_find(sfs->topfd, id);
	if (cfd < 0)
		return cfd;
	s = sfs_session_get(id, cfd);
	if (!s) {
		close(cfd);
		return -ENOMEM;
	}
	/*
	 * The key derivation (up to seconds) runs outside s->rw: operations on
	 * the session meanwhile find it locked (EACCES) instead of waiting.
	 */
	pthread_mutex_lock(&s->unlock_mu);
	done = is_unlocked(s, false);
	if (done) {
		/* Already unlocked here; the password must still be right. */
		rc = sfs_store_session_verify(cfd, pw, pwlen);
		/*
		 * ...and a lock that came meanwhile must not go unnoticed. The
		 * right password proves as much as a lock and unlock would:
		 * idle_lock and max_unlock start over.
		 */
		done = rc < 0 || is_unlocked(s, true);
		/* Nothing is checked again: what is known stays said. */
		pthread_rwlock_rdlock(&s->ev_rw);
		if (rc == 0 && done)
			sfs_session_report_known(s->ev_damage, warn, wsz);
		pthread_rwlock_unlock(&s->ev_rw);
	}
	if (!done) {
		rc = sfs_container_unlock(sfs->topfd, id, cfd, pw, pwlen, &k);
		if (rc == 0) {
			pthread_rwlock_wrlock(&s->rw);
			if (sfs_container_is_open(&s->c)) {
				/* sessionctl new took this id meanwhile: it is unlocked */
				sfs_container_key_drop(&k);
			} else {
				sfs_container_open(&s->c, &k);
				start_clocks(s);
				prepare(s, cfd, warn, wsz);
			}
			pthread_rwlock_unlock(&s->rw);
		}
	}
	pthread_mutex_unlock(&s->unlock_mu);
	close(cfd);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: unlocked", id);
	else if (rc == -EKEYREJECTED)
		sfs_syslog(LOG_NOTICE, "%s: unlock refused: wrong password", id);
	return rc;
}

/* Wipe the keys of @s and release its busy lock; called with s->rw held for writing. */
static void drop_keys(struct sfs_session *s)
{
	pthread_rwlock_wrlock(&s->ev_rw);
	sfs_container_close_log(&s->c);
	sfs_rules_free(&s->rules);
	s->rules_bad = false;
	pthread_rwlock_unlock(&s->ev_rw);
	sfs_special_forget(s);
	sfs_container_close(&s->c); /* wipes the keys, gives the busy lock back */
}

int sfs_session_lock(struct sfs_session *s, int *open_files)
{
	bool was;

	/*
	 * The last change goes into "updated" first. No notify: lock drops
	 * every cached name of the session anyway, and the callers serve a
	 * request or are the notifier's timed work.
	 */
	sfs_meta_refresh(s, true, false);
	pthread_rwlock_wrlock(&s->rw);
	was = sfs_container_is_open(&s->c);
	if (was)
		drop_keys(s);
	*open_files = atomic_load(&s->open_files);
	pthread_rwlock_unlock(&s->rw);
	if (was)
		sfs_syslog(LOG_INFO, "%s: locked (%d open files)", s->id, *open_files);
	return was ? 0 : -EALREADY;
}

enum due { NOT_DUE, DUE_IDLE, DUE_MAX_UNLOCK };

/* Why unlocked session @s is due for an automatic lock at @now (monotonic ms). */
static enum due due(struct sfs_session *s, long long now)
{
	const struct sfs_opts *o = &sfs->opts;

	if (o->max_unlock > 0 &&
	    (double)(now - atomic_load(&s->unlocked_at)) >= o->max_unlock * 1000)
		return DUE_MAX_UNLOCK;
	if (o->idle_lock > 0 && (double)(now - atomic_load(&s->last_used)) >= o->idle_lock * 1000 &&
	    !(o->idle_waits && atomic_load(&s->open_files) > 0))
		return DUE_IDLE;
	return NOT_DUE;
}

bool sfs_session_expire(struct sfs_session *s)
{
	enum due why = NOT_DUE;
	int open_files;

	if (!is_unlocked(s, false) || due(s, now_ms()) == NOT_DUE)
		return false;
	sfs_meta_refresh(s, true, false); /* as sfs_session_lock */
	pthread_rwlock_wrlock(&s->rw);
	/* The operations in flight are done now, and have moved last_used. */
	if (sfs_container_is_open(&s->c))
		why = due(s, now_ms());
	if (why != NOT_DUE)
		drop_keys(s);
	open_files = atomic_load(&s->open_files);
	pthread_rwlock_unlock(&s->rw);
	if (why == DUE_IDLE)
		sfs_syslog(LOG_INFO, "%s: locked after %g s without an operation (%d open files)",
			   s->id, sfs->opts.idle_lock, open_files);
	else if (why == DUE_MAX_UNLOCK)
		sfs_syslog(LOG_INFO, "%s: locked after %g s unlocked (max_unlock; %d open files)",
			   s->id, sfs->opts.max_unlock, open_files);
	if (why != NOT_DUE)
		sfs_audit_lock(s->id, why == DUE_IDLE ? "idle" : "max_unlock", open_files);
	return why != NOT_DUE;
}

void sfs_session_lock_all_final(void)
{
	struct sfs_session *s, *next;

	/* The request loop and the notifier have ended: nothing else runs. */
	pthread_mutex_lock(&sfs->sess_mu);
	s = sfs->sessions;
	sfs->sessions = NULL;
	pthread_mutex_unlock(&sfs->sess_mu);
	for (; s; s = next) {
		bool was;

		next = s->next;
		/*
		 * No metadata.json refresh here: the mount is gone, and whoever
		 * unmounted may already be copying the store. Only the audit
		 * trail gets its line, outside every session. A change of the
		 * last second before unmount may be missing from "updated".
		 */
		pthread_rwlock_wrlock(&s->rw);
		was = sfs_container_is_open(&s->c);
		if (was)
			drop_keys(s);
		pthread_rwlock_unlock(&s->rw);
		/* The one write after an unmount (doc/format.md "Audit trail"). */
		if (was)
			sfs_audit_lock(s->id, "unmount", atomic_load(&s->open_files));
		session_free(s);
	}
}

void sfs_session_foreach_id(void (*fn)(const char *id, int where, void *arg), void *arg)
{
	sfs_container_foreach(sfs->topfd, fn, arg);
}

int sfs_session_create(const char *id, const char *name, const char *pw, size_t pwlen,
		       const unsigned char *recovery, const char *created, const char *copy_of,
		       char *out_id)
{
	const struct sfs_new_session ns = {
		.recovery = recovery,
		.name = name,
		.password = pw,
		.pwlen = pwlen,
		.kdf = sfs->cfg.kdf,
		.cipher = sfs->cfg.cipher,
		.uid = sfs->owner,
		.gid = sfs->owner_gid,
		.created = created,
		.copy_of = copy_of,
	};
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_session *s;
	char gen[SFS_SESSION_ID_MAX + 1], warn[SFS_WARN_MAX];
	int rc, cfd;

	/* @id, or a random unused one (lib/session.c) */
	rc = sfs_container_create_new(sfs->topfd, id, &ns, gen, &k);
	if (rc < 0)
		return rc;
	cfd = sfs_container_find(sfs->topfd, gen);
	s = cfd >= 0 ? sfs_session_get(gen, cfd) : NULL;
	if (!s) {
		if (cfd >= 0)
			close(cfd);
		sfs_container_key_drop(&k);
		return cfd < 0 ? cfd : -ENOMEM;
	}
	pthread_rwlock_wrlock(&s->rw);
	if (sfs_container_is_open(&s->c))
		drop_keys(s);
	sfs_container_open(&s->c, &k);
	start_clocks(s);
	prepare(s, cfd, warn, sizeof(warn));
	pthread_rwlock_unlock(&s->rw);
	close(cfd);
	snprintf(out_id, SFS_SESSION_ID_MAX + 1, "%s", gen);
	sfs_syslog(LOG_INFO, "%s: created", gen);
	return 0;
}

/*
 * Delete session @id, locked here, at @w (@s its registry entry, NULL if
 * this mount never looked it up; s->rw held for writing if not NULL): its
 * busy lock taken for the rename out of sight, so a session another mount
 * has unlocked is -EBUSY and stays. The name it was renamed to into @gone.
 */
static int delete_locked(struct sfs_session *s, const char *id, int w, char *gone)
{
	int cfd = sfs_container_dir(sfs->topfd[w], id), lockfd = -1, rc;

	if (cfd < 0)
		return cfd;
	rc = sfs_store_session_trylock(cfd, &lockfd);
	close(cfd);
	if (rc == 0)
		rc = sfs_container_delete_begin(sfs->topfd[w], id, gone);
	if (rc == 0 && s)
		s->deleted = true;
	sfs_store_session_release(lockfd);
	return rc;
}

int sfs_session_delete(const char *id, bool locked_ok)
{
	struct sfs_session *s = sfs_session_find(id);
	char gone[SFS_CONTAINER_GONE_MAX];
	int w, rc;

	w = sfs_session_where(id);
	if (w < 0)
		return -ENOENT;
	if (!s && !locked_ok)
		return -EACCES;
	if (!s) {
		rc = delete_locked(NULL, id, w, gone);
	} else {
		pthread_rwlock_wrlock(&s->rw);
		w = sfs_session_where(id);
		if (!sfs_container_is_open(&s->c)) {
			rc = !locked_ok ? -EACCES : w < 0 ? -ENOENT : delete_locked(s, id, w, gone);
		} else if (w < 0) {
			rc = -ENOENT;
		} else {
			/* Move it out of sight while still holding its busy lock. */
			rc = sfs_container_delete_begin(sfs->topfd[w], id, gone);
			if (rc == 0) {
				drop_keys(s);
				s->deleted = true;
			}
		}
		pthread_rwlock_unlock(&s->rw);
	}
	/* Out of sight and locked: removed without holding up its operations. */
	if (rc == 0)
		rc = sfs_container_delete_end(sfs->topfd[w], gone);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: deleted", id);
	return rc;
}

int sfs_session_passwd(const char *id, const char *old, size_t oldlen, const char *newpw,
		       size_t newlen, int *index)
{
	int cfd = sfs_container_find(sfs->topfd, id), rc;

	if (cfd < 0)
		return cfd;
	rc = sfs_container_passwd(cfd, old, oldlen, newpw, newlen, index);
	close(cfd);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: password of key slot %d changed", id, *index);
	return rc;
}

int sfs_session_slot_add(const char *id, const char *pw, size_t pwlen, struct sfs_slot_new *sn,
			 int *index)
{
	int cfd = sfs_container_find(sfs->topfd, id), rc;

	if (cfd < 0)
		return cfd;
	/* A new password gets the cost the store gives new sessions. */
	rc = sfs_kdf_params(sfs->cfg.kdf, &sn->opslimit, &sn->memlimit);
	if (rc == 0)
		rc = sfs_container_slot_add(cfd, pw, pwlen, sn, index);
	close(cfd);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: key slot %d added (%s)", id, *index,
			   sn->kdf == SFS_SLOT_RECOVERY ? "recovery key" : "password");
	return rc;
}

int sfs_session_slot_remove(const char *id, int index, const char *pw, size_t pwlen)
{
	int cfd = sfs_container_find(sfs->topfd, id), rc;

	if (cfd < 0)
		return cfd;
	rc = sfs_container_slot_remove(cfd, index, pw, pwlen);
	close(cfd);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: key slot %d removed", id, index);
	return rc;
}

int sfs_session_slots(const char *id, struct sfs_slot_info *out, unsigned int *n, int *version,
		      enum sfs_cipher *cipher)
{
	struct sfs_session *s = sfs_session_find(id);
	const struct sfs_keys *keys = NULL;
	int cfd = sfs_container_find(sfs->topfd, id), rc;

	if (cfd < 0)
		return cfd;
	/* Labels are sealed under the session key: shown while it is unlocked here. */
	if (s && sfs_session_enter_quiet(s, &keys) < 0)
		s = NULL;
	rc = sfs_container_slots(cfd, s ? keys : NULL, out, n, version, cipher);
	if (s)
		sfs_session_leave(s);
	close(cfd);
	return rc;
}

bool sfs_session_elsewhere(const char *id, int where)
{
	struct sfs_session *s = sfs_session_find(id);
	int cfd, rc;

	/* Unlocked here: the busy lock is ours. */
	if (s && is_unlocked(s, false))
		return false;
	cfd = sfs_container_dir(sfs->topfd[where], id);
	if (cfd < 0)
		return false;
	rc = sfs_store_session_held(cfd);
	close(cfd);
	return rc > 0;
}

/*
 * Keep other mounts from unlocking session @id (at @where) while this mount
 * moves it: 0 with *lockfd to give back with sfs_store_session_release (-1
 * if the session is unlocked here, which holds it already); -EBUSY if
 * another mount has it unlocked; -errno.
 */
static int hold(const char *id, int where, int *lockfd)
{
	struct sfs_session *s = sfs_session_find(id);
	int cfd, rc;

	*lockfd = -1;
	if (s && is_unlocked(s, false))
		return 0;
	cfd = sfs_container_dir(sfs->topfd[where], id);
	if (cfd < 0)
		return cfd;
	rc = sfs_store_session_trylock(cfd, lockfd);
	close(cfd);
	/* Held by an unlock of this mount that finished meanwhile: ours after all. */
	if (rc == -EBUSY && s && is_unlocked(s, false))
		rc = 0;
	return rc;
}

int sfs_session_move(const char *id, int from)
{
	int lockfd, rc;

	if (!sfs_id_valid(id))
		return -EPERM; /* a session's id is its name */
	rc = hold(id, from, &lockfd);
	if (rc < 0)
		return rc;
	/* Held now: by this mount's unlock, or by @lockfd for the move. */
	rc = sfs_container_move(sfs->topfd[from], sfs->topfd[!from], id, true);
	sfs_store_session_release(lockfd);
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: moved to %s/", id,
			   from ? SFS_SESSIONS_DIR : SFS_ARCHIVE_DIR);
	return rc;
}

int sfs_session_rootfd(struct sfs_session *s)
{
	return sfs_container_rootfd(s->cfd);
}

/*
 * Which secret re-wraps each slot of @kf (@pw, which opened slot @proof,
 * for that slot unless it has its own), checked against what exists:
 * SFS_SLOT_ENONE a secret or drop for no slot; SFS_SLOT_EUNPROVEN a slot
 * with neither (into *@failed); SFS_SLOT_ELAST all dropped.
 */
static int rekey_plan(const struct sfs_keyfile *kf, int proof, const char *pw, size_t pwlen,
		      const char *const secrets[SFS_SLOTS_MAX], const size_t lens[SFS_SLOTS_MAX],
		      const bool drop[SFS_SLOTS_MAX], const char *use[SFS_SLOTS_MAX],
		      size_t uselen[SFS_SLOTS_MAX], struct sfs_rekey_result *r)
{
	bool exists[SFS_SLOTS_MAX] = {false};
	unsigned int kept = 0;

	for (unsigned int i = 0; i < kf->nslots; i++)
		exists[kf->slots[i].index] = true;
	for (int i = 0; i < SFS_SLOTS_MAX; i++) {
		use[i] = NULL;
		uselen[i] = 0;
		if (!exists[i] && (secrets[i] || drop[i])) {
			r->slot_failed = i;
			return SFS_SLOT_ENONE;
		}
		if (!exists[i] || drop[i]) {
			r->dropped[i] = exists[i];
			continue;
		}
		use[i] = secrets[i] ? secrets[i] : i == proof ? pw : NULL;
		uselen[i] = secrets[i] ? lens[i] : pwlen;
		if (!use[i]) {
			r->slot_failed = i;
			return SFS_SLOT_EUNPROVEN;
		}
		kept++;
	}
	return kept ? 0 : SFS_SLOT_ELAST;
}

/*
 * The new key file for @e's: a new session key into @newkey, every slot
 * re-wrapped (rekey_plan) into @out (*@outlen bytes); the old key into
 * @oldkey. 0 or -errno as sfs_session_rekey.
 */
static int rekey_keyfile(const struct sfs_keyedit *e, const char *pw, size_t pwlen,
			 const char *const secrets[SFS_SLOTS_MAX], const size_t lens[SFS_SLOTS_MAX],
			 const bool drop[SFS_SLOTS_MAX], unsigned char *oldkey,
			 unsigned char *newkey, unsigned char *out, size_t *outlen,
			 struct sfs_keyfile *nkf, struct sfs_rekey_result *r)
{
	const char *use[SFS_SLOTS_MAX];
	size_t uselen[SFS_SLOTS_MAX];
	int proof, failed, rc;
	ssize_t n;

	rc = sfs_fmt_keyfile_open(oldkey, &e->kf, pw, pwlen, &proof);
	if (rc == 0)
		rc = rekey_plan(&e->kf, proof, pw, pwlen, secrets, lens, drop, use, uselen, r);
	if (rc < 0)
		return rc;
	sfs_crypto_random(newkey, SFS_KEY_BYTES);
	/* A legacy cipher-2 session moves to derived keys (cipher 3), as a new one has. */
	rc = sfs_fmt_keyfile_rekey(nkf, &e->kf, oldkey, newkey,
				   e->kf.cipher == SFS_CIPHER_AESGCM ? SFS_CIPHER_AESGCM_DERIVED
								     : 0,
				   use, uselen, &failed);
	if (rc < 0) {
		r->slot_failed = failed;
		return rc;
	}
	n = sfs_fmt_keyfile_pack(out, nkf);
	if (n < 0)
		return (int)n;
	*outlen = (size_t)n;
	for (unsigned int i = 0; i < nkf->nslots; i++)
		r->kept[nkf->slots[i].index] = true;
	r->from = (enum sfs_cipher)e->kf.cipher;
	r->to = (enum sfs_cipher)nkf->cipher;
	return 0;
}

int sfs_session_rekey(const char *id, const char *pw, size_t pwlen,
		      const char *const secrets[SFS_SLOTS_MAX], const size_t lens[SFS_SLOTS_MAX],
		      const bool drop[SFS_SLOTS_MAX], struct sfs_rekey_result *r, char *warn,
		      size_t wsz)
{
	struct sfs_keyedit e = {.fd = -1};
	struct sfs_container_key k = {.lockfd = -1};
	struct sfs_keys *oldkeys = NULL, *newkeys = NULL;
	struct sfs_keyfile *nkf = NULL;
	struct sfs_rekey_progress prog = {0};
	struct sfs_session *s;
	unsigned char *mem = NULL, kf[SFS_KEYFILE_MAX];
	char tmp[SFS_REKEY_NAME_MAX] = "";
	size_t kflen = 0;
	int cfd, where, oldlock = -1, newlock = -1, rc;

	memset(r, 0, sizeof(*r));
	r->slot_failed = -1;
	warn[0] = '\0';
	where = sfs_session_where(id);
	if (where < 0)
		return -ENOENT;
	cfd = sfs_container_find(sfs->topfd, id);
	if (cfd < 0)
		return cfd;
	s = sfs_session_get(id, cfd);
	close(cfd);
	if (!s)
		return -ENOMEM;
	/* Locked here: unlocked with the proof (wrong password, busy elsewhere: refused). */
	if (!is_unlocked(s, false)) {
		rc = sfs_session_unlock(id, pw, pwlen, warn, wsz);
		if (rc < 0)
			return rc;
		r->unlocked = true;
		warn[0] = '\0';
	}
	/* No unlock of this mount in between; no slot change of any mount (the edit lock). */
	pthread_mutex_lock(&s->unlock_mu);
	cfd = sfs_container_find(sfs->topfd, id);
	rc = cfd < 0 ? cfd : sfs_store_keyfile_begin(cfd, &e);
	mem = sodium_malloc(2 * SFS_KEY_BYTES + sizeof(*nkf));
	if (rc == 0 && !mem)
		rc = -ENOMEM;
	if (rc == 0) {
		nkf = (struct sfs_keyfile *)(mem + 2 * SFS_KEY_BYTES);
		rc = rekey_keyfile(&e, pw, pwlen, secrets, lens, drop, mem, mem + SFS_KEY_BYTES, kf,
				   &kflen, nkf, r);
	}
	if (rc == 0) {
		oldkeys = sfs_keys_new(mem, (enum sfs_cipher)e.kf.cipher);
		newkeys = sfs_keys_new(mem + SFS_KEY_BYTES, r->to);
		if (!oldkeys || !newkeys)
			rc = -ENOMEM;
	}
	if (rc < 0)
		goto out;
	/*
	 * Out of service here, its busy lock kept: the one this mount's unlock
	 * took (taken over, so no other mount can slip in), or taken now if an
	 * automatic lock came meanwhile.
	 */
	sfs_meta_refresh(s, true, false);
	pthread_rwlock_wrlock(&s->rw);
	if (sfs_container_is_open(&s->c)) {
		oldlock = s->c.lockfd;
		s->c.lockfd = -1;
		drop_keys(s);
	} else {
		rc = sfs_store_session_trylock(cfd, &oldlock);
	}
	pthread_rwlock_unlock(&s->rw);
	if (rc < 0)
		goto out;
	sfs_syslog(LOG_INFO, "%s: re-keying", id);
	rc = sfs_rekey_sweep(sfs->topfd[where], id);
	if (rc >= 0)
		rc = sfs_rekey_build(sfs->topfd[where], id, cfd, oldkeys, kf, kflen, newkeys, &prog,
				     tmp, &newlock);
	if (rc == 0) {
		/*
		 * The switch and the count under rw held for writing: a session
		 * root is opened and its inode stamped under rw held for reading
		 * (ops_node.c lookup_session), so a root inode is never stamped
		 * with the count of the other container (sfs_inode_stale).
		 */
		pthread_rwlock_wrlock(&s->rw);
		rc = sfs_rekey_switch(sfs->topfd[where], tmp, id);
		if (rc == 0)
			atomic_fetch_add(&s->rekeyed, 1);
		pthread_rwlock_unlock(&s->rw);
		if (rc < 0) {
			sfs_rekey_sweep(sfs->topfd[where], id);
			sfs_store_session_release(newlock);
			newlock = -1;
		}
	}
	r->nodes = atomic_load(&prog.nodes);
	r->bytes = atomic_load(&prog.bytes);
	/* Back in service: on the new container with the new key, or as it was. */
	pthread_rwlock_wrlock(&s->rw);
	if (rc == 0) {
		int ncfd = sfs_container_dir(sfs->topfd[where], id);

		if (ncfd >= 0) {
			close(s->cfd);
			s->cfd = ncfd;
		}
		k.keys = newkeys;
		k.lockfd = newlock;
		newkeys = NULL;
		newlock = -1;
		/* The inodes made before the switch are the old container's (counted above). */
	} else {
		k.keys = oldkeys;
		k.lockfd = oldlock;
		oldkeys = NULL;
		oldlock = -1;
	}
	sfs_container_open(&s->c, &k);
	start_clocks(s);
	prepare(s, s->cfd, warn, wsz);
	pthread_rwlock_unlock(&s->rw);
	/* The old container, now under the hidden name, goes. */
	if (rc == 0 && sfs_rekey_sweep(sfs->topfd[where], id) < 0)
		sfs_syslog(LOG_ERR, "%s: the container before re-keying could not be removed", id);
	sfs_store_session_release(oldlock);
out:
	sfs_store_keyfile_end(&e);
	pthread_mutex_unlock(&s->unlock_mu);
	if (cfd >= 0)
		close(cfd);
	sfs_keys_free(oldkeys);
	sfs_keys_free(newkeys);
	if (mem)
		sodium_free(mem);
	sodium_memzero(kf, sizeof(kf));
	if (rc == 0)
		sfs_syslog(LOG_INFO, "%s: re-keyed (%llu nodes, %llu bytes)", id,
			   (unsigned long long)r->nodes, (unsigned long long)r->bytes);
	else
		sfs_syslog(LOG_NOTICE, "%s: rekey failed: %s", id, strerror(-rc));
	return rc;
}
