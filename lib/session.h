/*
 * session.h - a session container opened with its key: the stateful
 * session layer on top of store.h.
 *
 * A struct sfs_container is one session as a program that works on the
 * store sees it: closed (no keys) or open (its keys, its busy lock, its
 * event log with the state unlock found, and through them its metadata
 * document, metadata.h). Open it with the password (unlock) or by creating
 * a new session; close wipes the keys (sodium) and gives the busy lock back.
 * Delete, move between sessions/ and archive/, passwd and the key slots
 * (add, remove, list: several passwords and recovery keys per session)
 * work on the container in the store; so do finding a container in the
 * store's two top directories and choosing a new session's id.
 *
 * Knows the store, prepare, eventlog and metadata layers; nothing of FUSE,
 * the control protocol, the daemon's registry or its locks. The object is
 * not locked: the caller keeps its changes apart (the daemon: fs/fs.h's
 * struct sfs_session, doc/locking.md). The slow part of opening (the key
 * derivation) is done into a struct sfs_container_key first, outside the
 * object, so a caller need not hold its lock meanwhile.
 */
#ifndef SFS_SESSION_H
#define SFS_SESSION_H

#include "eventlog.h"
#include "metadata.h"
#include "redact.h"
#include "store.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

/* What opening a container gives: its keys and busy lock, not yet in an object. */
struct sfs_container_key {
	struct sfs_keys *keys; /* NULL: none */
	int lockfd;	       /* -1: none */
};

/* One session container (see above). */
struct sfs_container {
	char id[SFS_SESSION_ID_MAX + 1];
	struct sfs_keys *keys; /* NULL while closed */
	int lockfd;	       /* its busy lock while open, else -1 */
	bool ev_ok;	       /* ev is open and valid (set by sfs_container_set_log) */
	struct sfs_log ev;     /* events.jsonl from open to close (fd -1 else); its one
				* position: appends move it in place; the state stays
				* what was last known after close */
};

/* A closed container of session @id. */
void sfs_container_init(struct sfs_container *c, const char *id);

/* O_PATH descriptor of container @id in top directory @topfd (sessions/ or archive/), or -errno. */
int sfs_container_dir(int topfd, const char *id);

/*
 * A store's containers, given its two top directories: @topfd[0] its
 * sessions/, @topfd[1] its archive/ ("where" 0 and 1 below).
 *
 * sfs_container_where: where entry @id is (0, 1), or -ENOENT; @id is a
 * name in the top directory, not checked to be a session id.
 * sfs_container_find: an O_PATH descriptor of container @id wherever it
 * is, or -errno (-ENOENT none).
 * sfs_container_foreach: call @fn for every valid session id in sessions/,
 * then in archive/ (a top directory that cannot be read is skipped).
 */
int sfs_container_where(const int topfd[2], const char *id);
int sfs_container_find(const int topfd[2], const char *id);
void sfs_container_foreach(const int topfd[2], void (*fn)(const char *id, int where, void *arg),
			   void *arg);

/* O_PATH descriptor of the session root (its encrypted tree) in container @cfd, or -errno. */
int sfs_container_rootfd(int cfd);

/*
 * Unlock container @cfd, session @id of the store's top directories
 * @topfd, with @pw into @k (the key derivation: up to seconds). 0;
 * -EKEYREJECTED wrong password (nothing changes); -EBUSY unlocked by
 * another mount; -ENOENT deleted meanwhile (the container no longer has
 * its name once the busy lock is taken); -errno as
 * sfs_store_session_unlock.
 */
int sfs_container_unlock(const int topfd[2], const char *id, int cfd, const char *pw, size_t pwlen,
			 struct sfs_container_key *k);

/*
 * Create session @ns->id in @sessionsfd (store.h, sfs_store_session_create):
 * it appears whole or not at all, and is unlocked into @k. -EEXIST taken.
 */
int sfs_container_create(int sessionsfd, const struct sfs_new_session *ns,
			 struct sfs_container_key *k);

/*
 * Choosing a new session's id: "INC-" and random hex digits,
 * SFS_ID_HEX_MIN of them while the store holds fewer than a sixteenth of
 * that space, more as it fills (at most SFS_ID_HEX_MAX), so that
 * collisions stay rare. sfs_session_id_width: the digits for a store of
 * @n sessions; sfs_session_id_random: such an id into @out
 * (SFS_SESSION_ID_MAX + 1 bytes).
 */
int sfs_session_id_width(size_t n);
void sfs_session_id_random(char *out, size_t n);

/*
 * Create a session in the store of top directories @topfd (its container
 * in sessions/) as sfs_container_create, @ns's id ignored: with id @want,
 * or if @want is NULL with a random one (up to 64 tries). An id is taken
 * whether it is in sessions/ or archive/. Its id into @out_id
 * (SFS_SESSION_ID_MAX + 1 bytes). 0; -EINVAL @want is no session id;
 * -EEXIST taken (for a random id: 64 times); -errno.
 */
int sfs_container_create_new(const int topfd[2], const char *want, const struct sfs_new_session *ns,
			     char *out_id, struct sfs_container_key *k);

/* Drop @k unused (wipes the keys, releases the lock). */
void sfs_container_key_drop(struct sfs_container_key *k);

/* Open closed container @c with @k, which it takes over (@k is emptied). */
void sfs_container_open(struct sfs_container *c, struct sfs_container_key *k);

/* Is @c open (has keys)? */
bool sfs_container_is_open(const struct sfs_container *c);

/*
 * Make open container @c's tree ready (store.h, sfs_store_session_prepare)
 * into @ev and @rep: its result for sfs_container_set_log. @recheck as
 * there (a known damage's backing offset, 0 none).
 */
int sfs_container_prepare(const struct sfs_container *c, int cfd, uint64_t recheck,
			  struct sfs_log *ev, struct sfs_session_report *rep);

/* @c's log is now @ev, valid if @ok (the log it had is closed first). */
void sfs_container_set_log(struct sfs_container *c, const struct sfs_log *ev, bool ok);

/*
 * Close @c's event log (its state stays known, ev_ok false). Part of
 * sfs_container_close, for a caller that keeps the log under a lock of its
 * own.
 */
void sfs_container_close_log(struct sfs_container *c);

/* Close @c: close its log, wipe its keys, give back its busy lock. Closed: nothing. */
void sfs_container_close(struct sfs_container *c);

/* The metadata document of open container @c (whose directory is @cfd): sfs_metadata_open. */
int sfs_container_metadata(const struct sfs_container *c, int cfd, struct sfs_metadata *m);

/*
 * Deleting a container, in two steps so that the slow one runs after the
 * caller's lock: sfs_container_delete_begin renames container @id in
 * @topfd out of sight (to @gone, ".del-ID-PID", at least
 * SFS_CONTAINER_GONE_MAX bytes), sfs_container_delete_end removes it and
 * fsyncs @topfd. The caller closes the container between them (it holds
 * the busy lock until then). sfs_container_delete does all three.
 */
#define SFS_CONTAINER_GONE_MAX 64
int sfs_container_delete_begin(int topfd, const char *id, char *gone);
int sfs_container_delete_end(int topfd, const char *gone);
int sfs_container_delete(struct sfs_container *c, int topfd);

/*
 * Move container @id from top directory @fromfd to @tofd (sessions/ to
 * archive/ or back), never over another one (-EEXIST), and fsync both.
 * Unless @held (the caller has it open: its busy lock is held), the busy
 * lock is taken for the move: -EBUSY if another mount has it unlocked.
 */
int sfs_container_move(int fromfd, int tofd, const char *id, bool held);

/*
 * Re-wrap the slot of container @cfd that @old opens under @newpw (store.h,
 * sfs_store_session_passwd); that slot's index into *@index if not NULL.
 */
int sfs_container_passwd(int cfd, const char *old, size_t oldlen, const char *newpw, size_t newlen,
			 int *index);

/*
 * Key slots: up to SFS_SLOTS_MAX passwords or recovery keys each open the
 * session (each wraps the same session key; doc/format.md "Key file").
 * Adding or removing one rewrites only the key file, atomically, under its
 * edit lock (store.h, struct sfs_keyedit); the data stays as it is. Errors
 * besides -EKEYREJECTED (the proof opens no slot) and -errno:
 */
#define SFS_SLOT_EFULL (-EXFULL)	   /* add: all SFS_SLOTS_MAX slots in use */
#define SFS_SLOT_ENONE (-ENOKEY)	   /* remove: no slot of that index */
#define SFS_SLOT_ELAST (-EMLINK)	   /* remove: it is the session's last slot */
#define SFS_SLOT_ESELF (-ENOTUNIQ)	   /* remove: the proof opens that very slot only */
#define SFS_SLOT_ERECOVERY (-EMEDIUMTYPE)  /* passwd: the proof is a recovery key */
#define SFS_SLOT_EUNPROVEN (-EDESTADDRREQ) /* rekey: a slot with no secret given, not dropped */

/* A slot to add (sfs_container_slot_add). */
struct sfs_slot_new {
	enum sfs_slot_kdf kdf; /* a password (Argon2id) or a recovery key */
	const void *secret;    /* the password, or SFS_RECOVERY_KEY_BYTES of recovery key */
	size_t len;
	uint64_t opslimit; /* a password's Argon2id cost */
	uint64_t memlimit;
	const char *label; /* NULL or up to SFS_SLOT_LABEL_MAX printable bytes */
};

/*
 * Add slot @sn to container @cfd, proven by @pw (a password or recovery key
 * of any slot), at the lowest free index (into *@index). A version 1 or 2
 * key file becomes version 3 (its slot re-sealed with @pw, which opened
 * it). 0; -EKEYREJECTED; SFS_SLOT_EFULL (checked before the KDF); -EINVAL
 * a bad label; -errno. Nothing changes on any error.
 */
int sfs_container_slot_add(int cfd, const char *pw, size_t pwlen, const struct sfs_slot_new *sn,
			   int *index);

/*
 * Remove slot @index of container @cfd, proven by the password or recovery
 * key of another slot @pw (the same password may be in slot @index too).
 * SFS_SLOT_ENONE, SFS_SLOT_ELAST (both before the KDF), -EKEYREJECTED,
 * SFS_SLOT_ESELF (@pw opens slot @index and no other), -errno; nothing
 * changes on error.
 */
int sfs_container_slot_remove(int cfd, int index, const char *pw, size_t pwlen);

/* What `keys` shows of one slot. */
struct sfs_slot_info {
	int index;
	enum sfs_slot_kdf kdf;
	enum sfs_kdf_level level; /* the level whose cost it has; 0 none (or recovery) */
	uint64_t opslimit;
	uint64_t memlimit;
	int64_t added;	  /* seconds since the epoch; version 1 and 2: the key file's
			   * mtime (when its password was set) */
	bool label_known; /* label opened (or none can exist): @label is it */
	char label[SFS_SLOT_LABEL_MAX + 1];
};

/*
 * The slots of container @cfd into @out (SFS_SLOTS_MAX), their number into
 * *@n, the key file's version and content cipher into *@version and
 * *@cipher. Labels are sealed: opened with @keys (the session's, if it is
 * open; NULL: label_known false). 0 or -errno as sfs_store_keyfile_read.
 */
int sfs_container_slots(int cfd, const struct sfs_keys *keys, struct sfs_slot_info *out,
			unsigned int *n, int *version, enum sfs_cipher *cipher);

/*
 * A new recovery key: SFS_RECOVERY_KEY_BYTES random bytes into @key and
 * its text (format.h, sfs_fmt_recovery_encode) into @text, both buffers the
 * caller's sodium_malloc memory.
 */
void sfs_slot_recovery_new(unsigned char *key, char *text);

/* Is @label (@len bytes) one a slot may have: 1..63 bytes, no control characters? */
bool sfs_slot_label_ok(const char *label, size_t len);

/*
 * Redaction of open container @c's event log (redact.h): begin writes the
 * redacted new log beside it (sfs_log_redact_begin; -EIO if @c has no valid
 * log); commit puts it in place (sfs_log_redact_publish) and makes it @c's
 * log once renamed, closing the old one. The caller keeps appends out from
 * begin to commit.
 */
int sfs_container_redact_begin(const struct sfs_container *c, int cfd, const regex_t *re,
			       struct sfs_log_rewrite *rw, struct sfs_redact_stats *st);
int sfs_container_redact_commit(struct sfs_container *c, struct sfs_log_rewrite *rw);

#endif
