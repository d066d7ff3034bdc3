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

#include <stddef.h>
#include <sys/types.h>

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
	int version;                /* format version, SFS_FORMAT_VERSION */
	enum sfs_kdf_level kdf;     /* default Argon2id cost for new sessions */
};

/*
 * Make an empty store at @path (absent, or an empty directory). 0; -EEXIST
 * already a store; -ENOTEMPTY a non-empty directory; -ENOTDIR; other -errno.
 */
int sfs_store_create(const char *path, enum sfs_kdf_level kdf, char *why, size_t whylen);

/*
 * Open the store at @path: *storefd receives an O_PATH descriptor of it.
 * 0; -ENOENT missing; -ENOTDIR; -EUCLEAN not a store (no or bad config);
 * -EPROTONOSUPPORT a newer format version or an unknown feature.
 */
int sfs_store_open(const char *path, int *storefd, struct sfs_store_config *cfg, char *why,
		   size_t whylen);

/* What a new session starts with. */
struct sfs_new_session {
	const char *id;        /* a valid, unused session id */
	const char *name;      /* its name, "" for none */
	const char *password;  /* its password (not NUL-terminated necessarily) */
	size_t pwlen;
	enum sfs_kdf_level kdf;
	uid_t uid;             /* owner of the session root and its first files */
	gid_t gid;
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

/* Check @password against container @cfd's key file: 0, -EKEYREJECTED, -errno. */
int sfs_store_session_verify(int cfd, const char *password, size_t pwlen);

/*
 * Re-wrap the session key of container @cfd under a new password, keeping
 * its data and KDF cost; atomic (tmp, fsync, rename, fsync). -EKEYREJECTED
 * if @old is wrong; nothing changes on any error.
 */
int sfs_store_session_passwd(int cfd, const char *old, size_t oldlen, const char *newpw,
			     size_t newlen);

/* Release a session's busy lock (close). Accepts -1. */
void sfs_store_session_release(int lockfd);

/*
 * The first metadata.json of a session, as a malloc'd NUL-terminated string
 * (caller frees), or NULL on ENOMEM.
 */
char *sfs_store_metadata_new(const char *id, const char *name);

/*
 * Make jansson wipe every block it frees (requests carry passwords). Call
 * once at start, before any other jansson call.
 */
void sfs_store_json_wipe_on_free(void);

#endif
