/*
 * store.h - the sessionfs store on disk: its config, and session containers
 * (key file, lock file, encrypted root) with their life cycle.
 *
 * jansson lives here (sessionfs.conf, the first metadata.json). Knows the
 * tree, fileio, format and crypto layers; nothing of FUSE or the control
 * protocol. Errors are negative errnos with a human reason in @why when the
 * function takes one.
 */
#ifndef SFS_STORE_H
#define SFS_STORE_H

#include "crypto.h"
#include "eventlog.h"
#include "format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SFS_CONF_NAME "sessionfs.conf"
#define SFS_SESSIONS_DIR "sessions"
#define SFS_ARCHIVE_DIR "archive"
#define SFS_KEY_NAME "key"
#define SFS_LOCK_NAME "lock"
#define SFS_ROOT_NAME "root"
#define SFS_METADATA_NAME "metadata.json"
#define SFS_EVENTS_NAME "events.jsonl"

/* What sessionfs.conf says. */
struct sfs_store_config {
	int version;		/* format version, SFS_FORMAT_VERSION */
	enum sfs_kdf_level kdf; /* default Argon2id cost for new sessions */
	enum sfs_cipher cipher; /* content cipher for new sessions (where the CPU can) */
};

/*
 * Make an empty store at @path (absent, or an empty directory). 0; -EEXIST
 * already a store; -ENOTEMPTY a non-empty directory; -ENOTDIR; other -errno.
 */
int sfs_store_create(const char *path, enum sfs_kdf_level kdf, enum sfs_cipher cipher, char *why,
		     size_t whylen);

/*
 * Open the store at @path: *storefd receives an O_PATH descriptor of it.
 * 0; -ENOENT missing; -ENOTDIR; -EUCLEAN not a store (no or bad config);
 * -EPROTONOSUPPORT a newer format version or an unknown feature.
 */
int sfs_store_open(const char *path, int *storefd, struct sfs_store_config *cfg, char *why,
		   size_t whylen);

#define SFS_NEW_RECOVERY_SLOT 1 /* a new session's recovery key: slot 0 is its password */

/* What a new session starts with. */
struct sfs_new_session {
	const char *id;	      /* a valid, unused session id */
	const char *name;     /* its name, "" for none */
	const char *password; /* its password (not NUL-terminated necessarily) */
	size_t pwlen;
	enum sfs_kdf_level kdf;
	enum sfs_cipher cipher; /* how its content blocks are sealed; must be available */
	uid_t uid;		/* owner of the session root and its first files */
	gid_t gid;
	const unsigned char *recovery; /* NULL, or a recovery key (SFS_RECOVERY_KEY_BYTES)
					* for a second slot, SFS_NEW_RECOVERY_SLOT:
					* a version 3 key file */
	const char *created;	       /* metadata.json's "created" (a UTC time), NULL: now */
	const char *copy_of;	       /* `sessionctl copy`: the source's id, NULL none (below) */
};

/*
 * Create session container @ns->id in directory @parentfd (the store's
 * sessions/): key file, lock file, encrypted root with metadata.json and an
 * empty events.jsonl. It appears whole or not at all (built under a hidden
 * name, then renamed into place). On success the session is unlocked here:
 * *lockfd holds its busy lock and *keys its keys. -EEXIST if the id is taken.
 */
int sfs_store_session_create(int parentfd, const struct sfs_new_session *ns, int *lockfd,
			     struct sfs_keys **keys);

/*
 * Unlock the session whose container is @cfd: 0 with *lockfd and *keys set;
 * -EKEYREJECTED wrong password; -EBUSY unlocked by another mount;
 * -EUCLEAN / -EPROTONOSUPPORT a bad or newer key file; -errno.
 */
int sfs_store_session_unlock(int cfd, const char *password, size_t pwlen, int *lockfd,
			     struct sfs_keys **keys);

/* How a session's key is protected: what its key file says in the clear. */
struct sfs_session_params {
	enum sfs_kdf_level kdf; /* the level whose Argon2id cost it has; 0 if none */
	uint64_t opslimit;
	uint64_t memlimit; /* bytes */
	enum sfs_cipher cipher;
};

/* Read container @cfd's key file (no password needed): 0 or -errno as unlock. */
int sfs_store_session_params(int cfd, struct sfs_session_params *p);

/* What a session's container holds and when it last changed (usage.c). */
struct sfs_session_usage {
	uint64_t bytes;		 /* sizes of its backing files (directories not counted) */
	uint64_t allocated;	 /* blocks of every node, directories included, in bytes */
	struct timespec changed; /* the newest mtime of any node, the container's own included */
	uint64_t nodes;		 /* nodes counted */
};

/*
 * Walk container @cfd (any descriptor of its directory, O_PATH included):
 * no key, nothing read, no name decrypted. 0 or -errno (the figures are
 * those of the nodes reached).
 */
int sfs_store_session_usage(int cfd, struct sfs_session_usage *u);

/* Check @password against container @cfd's key file: 0, -EKEYREJECTED, -errno. */
int sfs_store_session_verify(int cfd, const char *password, size_t pwlen);

/*
 * Re-wrap the session key in the slot of container @cfd that @old opens
 * under a new password, keeping its data, KDF cost, label and the file's
 * version, and in every other password slot @old opens too (so that the old
 * password opens nothing after); atomic (tmp, fsync, rename, fsync), under
 * the key file's edit lock. -EKEYREJECTED if @old opens no slot;
 * -EMEDIUMTYPE it is a recovery key (passwd does not turn a recovery slot
 * into a password slot); nothing changes on any error. The first such
 * slot's index into *@index if not NULL.
 */
int sfs_store_session_passwd(int cfd, const char *old, size_t oldlen, const char *newpw,
			     size_t newlen, int *index);

/*
 * keyfile.c: container @cfd's key file, parsed (format.h). Read it without
 * a lock (sfs_store_keyfile_read: e->fd stays -1), or to change it: begin
 * takes its edit lock (an OFD write lock on the file, waiting for another
 * writer) and reads it; commit writes e->kf back atomically (temporary,
 * fsync, rename, fsync of the directory), the lock still held; end gives
 * the lock back and wipes e. 0 or -errno (-EUCLEAN no or not a key file,
 * -EPROTONOSUPPORT a newer one).
 */
struct sfs_keyedit {
	int fd;		       /* the locked key file; -1 none */
	struct sfs_keyfile kf; /* what it holds */
	time_t mtime;	       /* its mtime: when a version 1 or 2 file's password was set */
};
int sfs_store_keyfile_read(int cfd, struct sfs_keyedit *e);
int sfs_store_keyfile_begin(int cfd, struct sfs_keyedit *e);
int sfs_store_keyfile_commit(int cfd, const struct sfs_keyedit *e);
void sfs_store_keyfile_end(struct sfs_keyedit *e);

/* Release a session's busy lock (close). Accepts -1. */
void sfs_store_session_release(int lockfd);

/*
 * Take the busy lock of container @cfd without waiting, to do something
 * (move it) that no other mount may see half done: 0 with *lockfd (give it
 * back with sfs_store_session_release), -EBUSY if it is unlocked elsewhere.
 */
int sfs_store_session_trylock(int cfd, int *lockfd);

/*
 * Is the busy lock of container @cfd held by an open file description other
 * than any of the caller's (another mount: its OFD lock is visible from
 * every machine that shares the store's locks)? 1 yes, 0 no, -errno.
 * A session unlocked by the caller itself also answers 1.
 */
int sfs_store_session_held(int cfd);

/* What sfs_store_session_prepare found and mended, for the daemon to log. */
struct sfs_session_report {
	int swept;		 /* crash leftovers removed from the session root */
	bool events_created;	 /* events.jsonl was missing: an empty one was made */
	int events_kind;	 /* -EUCLEAN: the node kind events.jsonl has instead of a log's */
	uint64_t events_dropped; /* backing bytes of a torn tail cut off (0: none) */
	bool events_hole;	 /* ... from before a hole a power loss left */
	bool events_whole;	 /* ... records that were whole but failed (damage) */
	uint64_t events_bad_at;	 /* backing offset of a record that failed, if any */
	char events_kept[32];	 /* container file that keeps the cut bytes ("" none) */
	struct sfs_log_damage events_damage; /* damage left in place (count 0: none) */
};

/*
 * Make session container @cfd's tree ready after unlock (lib/prepare.c):
 * remove crash leftovers from its root, make events.jsonl if it is
 * missing, cut
 * what a crash left at its end (eventlog.h, sfs_log_repair; the cut bytes
 * are kept in the container as @rep->events_kept), find damage no crash
 * leaves in its last SFS_LOG_CHECK_WINDOW bytes and, if @recheck is not 0,
 * in the frame at backing offset @recheck (where a read found damage
 * before), and leave the log open in @ev, its state loaded, so nothing
 * later needs to scan it (the caller closes it, sfs_log_close; on error
 * ev->fd is -1). 0; -EBADMSG when events.jsonl is damaged in a way no crash
 * leaves and it cannot be used (nothing is cut then); -EUCLEAN when
 * events.jsonl is not a log at all (another file copied over it; left
 * untouched); -errno.
 */
int sfs_store_session_prepare(int cfd, const struct sfs_keys *keys, uint64_t recheck,
			      struct sfs_log *ev, struct sfs_session_report *rep);

/*
 * The first metadata.json of a session, as a malloc'd NUL-terminated string
 * (caller frees), or NULL on ENOMEM.
 */
char *sfs_store_metadata_new(const char *id, const char *name);

/*
 * The first metadata.json of new session @ns (as sfs_store_metadata_new,
 * with @ns->created if set). A copy's (@ns->copy_of set) says it is not
 * one yet: "status" is SFS_STATUS_COPYING and "copy_of" the source's id,
 * until `sessionctl copy` replaces the document with the source's last.
 */
#define SFS_STATUS_COPYING "copying"
#define SFS_COPY_OF "copy_of"
char *sfs_store_metadata_first(const struct sfs_new_session *ns);

/*
 * @text (a metadata.json of @len bytes) with "updated" set to @when, as a
 * malloc'd NUL-terminated string (caller frees), or NULL if @text is not a
 * JSON object (or on ENOMEM). Other members keep their order.
 */
char *sfs_store_metadata_set_updated(const char *text, size_t len, const char *when);

/*
 * @text (a metadata.json of @len bytes) with "status" set to @status and
 * "updated" to @when, as sfs_store_metadata_set_updated, into *@out (a
 * malloc'd string the caller frees): 0; -EINVAL @text is not a JSON object
 * (damage); -ENOMEM (never taken for damage).
 */
int sfs_store_metadata_set_status(const char *text, size_t len, const char *status,
				  const char *when, char **out);

/*
 * What `sessionctl list` and `status` show of a session from @text (a
 * metadata.json of @len bytes): its "status", "name", "created" and
 * "updated" members that are strings, as a JSON object into *@out (caller
 * decrefs): 0; -EINVAL @text is not a JSON object (damage); -ENOMEM
 * (never taken for damage).
 */
struct json_t;
int sfs_store_metadata_summary(const char *text, size_t len, struct json_t **out);

/*
 * documents.c: the statuses `sessionctl status` sets, those the session
 * stores before sessionfs used (active, paused, completed, failed), NULL
 * after the last; and whether @status is one of them. metadata.json itself
 * may hold any string (a user's edit, an imported document): only the
 * command is held to these, so that scripts and filters can rely on them.
 */
extern const char *const sfs_store_statuses[];
bool sfs_store_status_known(const char *status);

/* documents.c: is @line (without its newline) one JSON object? */
bool sfs_store_event_line_ok(const char *line, size_t len);

/* Is @s a UTC time as metadata.json's "created" may hold ("2025-03-01T12:00:00Z")? */
bool sfs_store_utc_time_ok(const char *s);

/*
 * documents.c: is @text a valid metadata.json for session @id replacing @old
 * (NULL if none could be read)? A JSON object; "id" the string @id;
 * "created" as in @old if @old has one; "created" and "updated" UTC times
 * ("2025-03-01T12:00:00Z", a fraction of a second and "+00:00" accepted),
 * "status" and "name" strings, "tags" an array of strings, where present,
 * unless equal to @old's (what older builds wrote stays valid); other
 * members free. NULL if so, else why not (a static string that never
 * quotes the content), with the JSON error's line in *@line (0 if none).
 */
const char *sfs_store_metadata_check(const char *id, const char *text, size_t len, const char *old,
				     size_t oldlen, int *line);

/*
 * Make jansson wipe every block it frees (requests carry passwords). Call
 * once at start, before any other jansson call.
 */
void sfs_store_json_wipe_on_free(void);

/*
 * A buffer for one short parse on one thread. While it is set on a thread
 * (sfs_store_json_arena(&a); NULL unsets it), the functions of
 * sfs_store_json_wipe_on_free() take the blocks jansson asks for there from
 * a->buf as long as they fit (the rest from malloc) and free none of them:
 * a parse costs a pointer bump per block, not a malloc, free and wipe. The
 * caller frees what it parsed before it unsets the arena, then wipes
 * a->buf[0, a->used). Under other jansson functions it changes nothing.
 */
struct sfs_json_arena {
	unsigned char *buf; /* 16-byte aligned */
	size_t cap, used;
};
void sfs_store_json_arena(struct sfs_json_arena *a);

#endif
