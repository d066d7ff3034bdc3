/*
 * fs.h - the sessionfs daemon's shared state: the mount, its inode table and
 * its sessions, and the helpers every FUSE operation uses.
 *
 * This layer (fs/) is the only one that includes fuse_lowlevel.h. It turns
 * the core library's negative errnos into FUSE replies, after logging them.
 * Locks: doc/locking.md is the one statement of every lock of the daemon
 * and the core library, what each protects and what may be taken under
 * it, in order: session->unlock_mu, session->rw, all_mu, held_mu, fh->mu,
 * session->meta_mu, session->ev_rw, inode->io, inode->mu,
 * session->xattr_mu, fs->itable_mu, then the leaves (fs->sess_mu,
 * current.c's cur_mu, reap_mu, notify.c's mu, loop.c's L.mu, lib/'s
 * gcm_lock and parallel.c's mu). No global lock is held across I/O that
 * waits on the disk. A new lock goes there first.
 */
#ifndef SFS_FS_H
#define SFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "audit.h"
#include "crypto.h"
#include "format.h"
#include "proto.h"
#include "redact.h"
#include "rekey.h"
#include "rules.h"
#include "session.h"
#include "session_report.h"
#include "store.h"
#include "util.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#define SFS_XATTR_STRIPES 16 /* attribute locks per session (ops_xattr.c) */
/*
 * The kernel's readahead READs of a file read start to end (the mount's bdi
 * read_ahead_kb, 128): served two at once, each on its own thread (loop.c,
 * sfs_op_read).
 */
#define SFS_RA_READ (128u << 10)

/* What an inode stands for. */
enum sfs_kind {
	SFS_INODE_ROOT,	   /* the mount root */
	SFS_INODE_TOP,	   /* sessions/ or archive/ */
	SFS_INODE_CTL,	   /* the control file */
	SFS_INODE_SESSION, /* MNT/sessions/ID: the root of a session's tree */
	SFS_INODE_NODE,	   /* anything inside a session */
	SFS_INODE_CURRENT, /* MNT/current: a symlink the daemon shows (current.c) */
};

/* The session root's special files (special.c). */
enum sfs_special {
	SFS_SP_NONE,
	SFS_SP_META,   /* metadata.json */
	SFS_SP_EVENTS, /* events.jsonl */
};

/* One session as the daemon knows it. Never freed before unmount. */
struct sfs_session {
	char id[SFS_SESSION_ID_MAX + 1];
	pthread_rwlock_t rw;	   /* read: an operation using keys; write: lock/unlock */
	pthread_mutex_t unlock_mu; /* one unlock at a time (held through its KDF) */
	int cfd;		   /* O_PATH of the container; follows renames;
				    * replaced (a deleted session's id taken
				    * again) only with rw held for writing */
	atomic_bool deleted;	   /* written under rw held for writing */
	atomic_int open_files;	   /* open file handles inside the session */
	atomic_uint rekeyed;	   /* rekeys done here: an inode made before the last
				    * one is the old container's (sfs_inode_stale) */
	atomic_llong last_used;	   /* monotonic ms of the last operation (idle_lock) */
	atomic_llong unlocked_at;  /* monotonic ms of the last unlock (max_unlock) */

	/*
	 * The container opened with its keys (lib/session.h): c.keys (NULL
	 * while locked), c.lockfd (the busy lock while unlocked) and c.ev_ok
	 * are protected by rw (written at unlock and lock); c.ev, the event
	 * log known from unlock on without reading it (its one position,
	 * moved by appends in place), by ev_rw, but c.ev.size (atomic) is
	 * read by stat without.
	 */
	struct sfs_container c;
	pthread_rwlock_t ev_rw;		/* c.ev: appends exclusive, reads shared */
	char ev_damage[SFS_DAMAGE_MAX]; /* damage no crash explains, for list ("" none);
					 * kept through lock, rechecked at unlock;
					 * protected by ev_rw */
	uint64_t ev_bad;		/* backing offset of that damage (0: none); ev_rw */
	struct sfs_rules rules;		/* redaction rules applied to appends (lib/rules.h),
					 * loaded at unlock, freed at lock; ev_rw */
	bool rules_bad;			/* its rule file did not open: appends refused; ev_rw */

	/* metadata.json (special.c) */
	pthread_mutex_t meta_mu;    /* one replacement at a time: commit, refresh,
				     * rename over it (doc/locking.md) */
	atomic_llong changed;	    /* UTC seconds of the last change not yet in
				     * metadata.json's "updated" (0: none) */
	atomic_llong changed_first; /* UTC seconds of the oldest such change */
	/* user.* attributes (ops_xattr.c): a node's load-change-store, by its id */
	pthread_mutex_t xattr_mu[SFS_XATTR_STRIPES];
	struct sfs_session *next; /* registry chain: set before the session is
				   * linked in (under fs->sess_mu), then fixed */
};

/* One inode. Its address is its FUSE inode number (the root is FUSE_ROOT_ID). */
struct sfs_inode {
	enum sfs_kind kind;
	/*
	 * The descriptor of the backing node: O_PATH, or read-write for a
	 * regular file (fd_rw). The fixed inodes keep theirs; SESSION and NODE
	 * inodes have one while cached (inode_fd.c): -1 when evicted. Written
	 * under fs->itable_mu; read with no lock by a thread that pins the
	 * inode (sfs_inode_pin, sfs_inode_hold): a pinned inode's fd and fd_rw
	 * do not change.
	 */
	int fd;
	bool fd_rw; /* fd is read-write: file handles may share it (a hold) */
	dev_t bdev; /* backing identity, the table's key */
	ino_t bino;
	mode_t type;		  /* backing: S_IFDIR, S_IFREG (file node) or S_IFLNK */
	struct sfs_session *sess; /* SESSION and NODE only */
	unsigned int rekeyed;	  /* NODE: sess->rekeyed when made (fixed): sfs_inode_stale */
	uint64_t nlookup;	  /* protected by fs->itable_mu */
	struct sfs_inode *hnext;  /* hash chain; protected by fs->itable_mu */
	/*
	 * Where a NODE's backing node is found again once its descriptor was
	 * evicted (inode_fd.c): the directory inode @parent (a lookup
	 * reference of its own) and the backing name @bname there; NULL both
	 * when it has none known (unlinked, or a name not yet given). The
	 * descriptor cache: @pins, the LRU links. All under fs->itable_mu.
	 */
	struct sfs_inode *parent;
	char *bname;
	struct sfs_inode *nnext;	       /* the names index's chain */
	struct sfs_inode *lru_prev, *lru_next; /* evictable descriptors, newest first */
	unsigned int pins; /* uses of fd in progress, and file handles sharing it */
	bool on_lru;
	bool gone;    /* unlinked for good, no descriptor: (dev, ino) lookups skip it */
	bool drop_ok; /* an ordinary file's last link unlinked: fd goes once unused */

	pthread_mutex_t mu;		   /* protects the fields below */
	bool loaded;			   /* id and attrs read from the header */
	atomic_bool bad;		   /* header failed authentication: content is EIO;
					    * written under mu, read with no lock */
	unsigned char id[SFS_ID_BYTES];	   /* file id or directory id; a regular file's
					    * changes only with io also held for writing */
	bool fresh_id;			   /* regular file: id just drawn (fileio.h); under io */
	struct sfs_attrs attrs;		   /* mode (with type), uid, gid, rdev */
	uint64_t linklen;		   /* symlinks: plaintext target length */
	_Atomic(enum sfs_special) special; /* what its name at the session root makes
					    * it: set at lookup and after a rename,
					    * read with no lock */
	atomic_int opens;		   /* open file handles */
	atomic_bool written;	  /* written since its last open (ops_file.c, keep_cache) */
	atomic_bool tail_checked; /* regular file: its tail record was looked at since
				   * the mount (ops_file.c, fileio.h "Tail records") */
	atomic_bool name_new;	  /* created or renamed by this daemon and its name not yet
				   * fsynced: the next fsync (fsyncdir) of the node fsyncs
				   * the backing directory that holds it (sfs_sync_name) */

	pthread_rwlock_t io; /* content: readers share, writers exclusive */
};

/* Mount options (-o ...). */
struct sfs_opts {
	char *store;		 /* STORE argument */
	double idle_lock;	 /* seconds; 0 = never */
	char *idle_str;		 /* idle_lock=DURATION as given */
	int idle_waits;		 /* -o idle_waits_for_close: an open file holds off idle_lock */
	double max_unlock;	 /* seconds; 0 = no limit */
	char *max_unlock_str;	 /* max_unlock=DURATION as given */
	int mountpoint_seen;	 /* MOUNTPOINT given (a third argument is a usage error) */
	int mountpoint_bad;	 /* 0, or the exit code of a MOUNTPOINT refused (main.c) */
	int xattr;		 /* -o xattr: user.* extended attributes (ops_xattr.c) */
	int allow_other;	 /* -o allow_other: implies default_permissions */
	int default_permissions; /* given, or implied by allow_other */
};

/* The mount. */
struct sfs_fs {
	struct fuse_session *se;
	int storefd;  /* O_PATH of STORE */
	int topfd[2]; /* O_PATH of sessions/ and archive/ */
	const char *store_path;
	struct sfs_store_config cfg;
	struct sfs_opts opts;
	uid_t owner; /* the mounting user */
	gid_t owner_gid;
	double timeout; /* entry and attribute cache timeout */

	struct sfs_inode root, top[2], ctl, current;

	pthread_mutex_t itable_mu;
	struct sfs_inode **itable; /* hash buckets; protected by itable_mu */
	size_t itable_size;
	size_t itable_count;

	pthread_mutex_t sess_mu;
	struct sfs_session *sessions; /* protected by sess_mu */

	pthread_t notifier; /* sends cache invalidations; see notify.c */
};

extern struct sfs_fs *sfs;

/* Logging: to stderr in the foreground, to syslog when daemonised. */
void sfs_log_init(bool foreground);
void sfs_syslog(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * log.c: record @event (of @session, NULL for none) in the store's audit
 * trail (lib/audit.h), done by @who (NULL: the daemon itself), with the
 * members of @extra (consumed; NULL none). A failure is logged, never
 * returned: the audit records what happened, it does not undo it.
 * sfs_audit_lock: the daemon locked @session by itself, @cause "idle",
 * "max_unlock" or "unmount". Called with no lock held (it writes and fsyncs).
 */
void sfs_audit(const char *event, const char *session, const struct sfs_audit_who *who,
	       json_t *extra);
void sfs_audit_lock(const char *session, const char *cause, int open_files);

/* inode.c */
struct sfs_inode *sfs_inode_of(fuse_ino_t ino);
/*
 * Is @in a node of its session's container from before its last rekey
 * (sfs_session_rekey)? Its backing node is then the old container's,
 * sealed under the retired key and no longer the session's.
 */
bool sfs_inode_old(struct sfs_inode *in);
/*
 * Is @in old (sfs_inode_old) and not events.jsonl? Every operation on it,
 * and on its open files, fails with EIO, and no damage is logged (nothing
 * is damaged: opened again by path it is whole). An old events.jsonl is
 * read, appended, fsynced and stat-ed through the session's log, which
 * follows the rekey (same node id): those keep working, so it is not
 * stale, and so do its extended attributes (stored by node id in the
 * session's root). A setattr (chmod, chown, utimens, truncate) would
 * change the old container's node, lost: it fails with EIO (sfs_inode_old).
 */
bool sfs_inode_stale(struct sfs_inode *in);
fuse_ino_t sfs_ino_of(const struct sfs_inode *in);
int sfs_itable_init(void);
void sfs_itable_destroy(void);
/*
 * Find the inode of backing node @fd (takes ownership of @fd) or make one of
 * @kind in @sess, named @backing in directory inode @parent (both NULL: no
 * name known); adds one lookup reference and pins it for the request
 * (sfs_inode_pin). NULL on ENOMEM (fd closed).
 */
struct sfs_inode *sfs_inode_get(int fd, const struct stat *st, enum sfs_kind kind,
				struct sfs_session *sess, struct sfs_inode *parent,
				const char *backing);
void sfs_inode_unref(struct sfs_inode *in, uint64_t n);
/*
 * After the last link of backing node (@dev, @ino) is gone: if it has an
 * inode that no file handle uses, cut the backing file to its header now,
 * so its space is free at once (the O_PATH descriptor would hold it until
 * the kernel's FORGET).
 */
void sfs_inode_release_space(dev_t dev, ino_t ino);
/*
 * A read-write descriptor of regular file @in for a new file handle: the
 * inode's own (fd_rw, shared by every handle), or else a new one that the
 * handle owns. Given back with sfs_inode_rwfd_put. The descriptor or -errno.
 */
int sfs_inode_rwfd_get(struct sfs_inode *in);
void sfs_inode_rwfd_put(struct sfs_inode *in, int fd);
/*
 * A new descriptor of pinned @in's backing node opened with @flags (through
 * /proc/self/fd), or -errno.
 */
int sfs_reopen(const struct sfs_inode *in, int flags);
/*
 * Open backing node @name in directory @dirfd, of type @type (st_mode from
 * fstatat), for an inode: read-write if it is a regular file (so that
 * opening it later costs nothing), O_PATH otherwise. Never follows a
 * symlink. The descriptor or -errno.
 */
int sfs_inode_open(int dirfd, const char *name, mode_t type);
/*
 * The inode of backing node (@dev, @ino) with one more lookup reference, or
 * NULL. Not pinned: its fd may be -1.
 */
struct sfs_inode *sfs_inode_find(dev_t dev, ino_t ino);
/* FUSE inode number of backing node (@dev, @ino) if it has an inode, else 0. */
fuse_ino_t sfs_inode_number(dev_t dev, ino_t ino);
/*
 * After a rename: mark the inode of backing node (@dev, @ino), if known, as
 * @sp, and its name as not yet durable (name_new).
 */
void sfs_inode_renamed(dev_t dev, ino_t ino, enum sfs_special sp);
/* Call @fn for every inode of @sess, under the table lock (fn must not block). */
void sfs_inode_foreach(struct sfs_session *sess, void (*fn)(struct sfs_inode *, void *), void *arg);
/*
 * inode.c, for inode_fd.c, with itable_mu held: drop @n lookup references
 * of @in; at none it leaves the table, and once nothing pins it either it
 * goes on the list *@dead, which sfs_inode_bury frees (itable_mu released:
 * their descriptors are closed, their parents' references dropped).
 * sfs_itable_detach_locked: (dev, ino) lookups skip @in from now on (its
 * last link is gone and so is its descriptor: a new node may get its number).
 */
void sfs_inode_put_locked(struct sfs_inode *in, uint64_t n, struct sfs_inode **dead);
/*
 * inode.c: close @fd on the reaper thread, or now if it lags; no lock held.
 * sfs_reap_limit: at most @n (4..32) descriptors wait for it (at mount).
 */
void sfs_close_later(int fd);
void sfs_reap_limit(size_t n);
void sfs_inode_bury(struct sfs_inode *dead);
void sfs_itable_detach_locked(struct sfs_inode *in);

/*
 * inode_fd.c: the descriptor cache (the design: the comment at its top).
 * The kernel's inodes are not bounded; the descriptors the daemon holds are.
 *
 * sfs_fdc_init: size the cache from RLIMIT_NOFILE (once, at mount).
 * sfs_inode_pin: make @in's fd valid until the request ends (the op table,
 * ops.c, drops a request's pins once it is served), reopening an evicted
 * backing node through its parent and name and checking it is the same
 * node: 0, -ESTALE (gone, or another node there now), -errno. A no-op for
 * the fixed inodes. sfs_pin_mark / sfs_pin_release: drop the pins taken
 * since a mark (readdirplus pins one entry at a time). sfs_inode_hold /
 * _unhold: a pin of the caller's own (a file handle sharing fd, a
 * descriptor dup'd outside a request).
 */
void sfs_fdc_init(void);
void sfs_fdc_destroy(void); /* at unmount, after sfs_itable_destroy's frees */
int sfs_inode_pin(struct sfs_inode *in);
size_t sfs_pin_mark(void);
void sfs_pin_release(size_t mark);
int sfs_inode_hold(struct sfs_inode *in);
void sfs_inode_unhold(struct sfs_inode *in);
/*
 * Names, called with the backing directory's change done or about to be:
 * sfs_inode_name: @in is (also) @backing in @parent (a lookup, a new node);
 * sfs_inode_pin_name: the inode named @backing in @p, pinned for the
 * request (it is about to lose that name: its descriptor is kept while it
 * has none), or NULL; sfs_inode_unname: @in lost the name @backing in @p,
 * with @last its last link (an ordinary regular file's: its descriptor
 * goes once nothing uses it, inode_fd.c);
 * sfs_inode_moved: the node named @from in @p is now @to in @np, and with
 * @exchange the one named @to is now @from. All under itable_mu.
 */
int sfs_inode_name(struct sfs_inode *in, struct sfs_inode *parent, const char *backing);
struct sfs_inode *sfs_inode_pin_name(struct sfs_inode *p, const char *backing);
void sfs_inode_unname(struct sfs_inode *in, struct sfs_inode *p, const char *backing, bool last);
void sfs_inode_moved(struct sfs_inode *p, const char *from, struct sfs_inode *np, const char *to,
		     bool exchange);
/*
 * For inode.c, with itable_mu held: sfs_fdc_new: a new inode's descriptor
 * counts in the cache; sfs_fdc_adopt: an inode found again with a fresh
 * descriptor @fd of its node keeps it if it had none (1), else 0 (the
 * caller closes @fd); sfs_fdc_unhash: @in leaves the cache and the names
 * index at its last lookup reference (its fd stays open until it is freed).
 */
int sfs_fdc_adopt(struct sfs_inode *in, int fd, bool rw);
void sfs_fdc_new(struct sfs_inode *in);
void sfs_fdc_unhash(struct sfs_inode *in);
/* Make room for a pin on this thread (before itable_mu is taken): 0 or -ENOMEM. */
int sfs_pin_reserve(void);
/* Record a pin of @in taken under itable_mu (after sfs_pin_reserve). */
void sfs_pin_push(struct sfs_inode *in);
/* Evict down to the capacity (itable_mu held); closes what it evicted after. */
void sfs_fdc_trim_locked(int *out, size_t *n, size_t max);

/*
 * session.c. sess_mu guards the registry only (find, insert): no session
 * work runs under it.
 *
 * The session @id, registered now with container @cfd (duplicated) if it
 * is not known yet (a deleted one follows @cfd from now on); with @cfd -1,
 * as sfs_session_find. NULL if unknown or on ENOMEM.
 */
struct sfs_session *sfs_session_get(const char *id, int cfd);
struct sfs_session *sfs_session_find(const char *id);
/*
 * The registry's first session; walk the rest through ->next with no lock
 * held (sessions are linked whole and never unlinked before unmount).
 */
struct sfs_session *sfs_session_first(void);
/* Enter an operation on an unlocked session: 0 with keys, or -EACCES (locked). */
int sfs_session_enter(struct sfs_session *s, const struct sfs_keys **keys);
/* The same, for the daemon's own work: does not count as use for idle_lock. */
int sfs_session_enter_quiet(struct sfs_session *s, const struct sfs_keys **keys);
void sfs_session_leave(struct sfs_session *s);
/* Where a session's container is: 0 sessions/, 1 archive/, -ENOENT (sfs_container_where). */
int sfs_session_where(const char *id);
/* Call @fn for every valid session id in sessions/ (where 0) and archive/ (1) (lib/session.c). */
void sfs_session_foreach_id(void (*fn)(const char *id, int where, void *arg), void *arg);
/*
 * Unlock @id. What unlock cut from or found damaged in the session's files
 * goes to @warn (@wsz bytes) as lines "FILE: what", one per finding ("" if
 * none; lib/session_report.c's words), besides the daemon's log.
 */
int sfs_session_unlock(const char *id, const char *pw, size_t pwlen, char *warn, size_t wsz);
int sfs_session_lock(struct sfs_session *s, int *open_files);
/*
 * Lock @s if it is unlocked and due: no operation for idle_lock (open files
 * or not, unless idle_waits_for_close), or unlocked for max_unlock, open
 * files or not. Checked again under the session's lock, so an operation or
 * a re-unlock that comes meanwhile keeps it unlocked. True if it locked @s.
 */
bool sfs_session_expire(struct sfs_session *s);
void sfs_session_lock_all_final(void);
/*
 * Create session @id, or with NULL one of a random unused id (lib/session.c,
 * sfs_container_create_new), and register it unlocked; its id into @out_id.
 * @created and @copy_of (NULL for none) as struct sfs_new_session's.
 */
int sfs_session_create(const char *id, const char *name, const char *pw, size_t pwlen,
		       const unsigned char *recovery, const char *created, const char *copy_of,
		       char *out_id);
/*
 * Delete session @id for good: an unlocked one (its keys dropped), or with
 * @locked_ok one locked here too (prune), its busy lock taken for it:
 * -EBUSY if another mount has it unlocked; -EACCES locked (without
 * @locked_ok); -ENOENT; -errno.
 */
int sfs_session_delete(const char *id, bool locked_ok);
int sfs_session_passwd(const char *id, const char *old, size_t oldlen, const char *newpw,
		       size_t newlen, int *index);
/*
 * Key slots of session @id, locked or unlocked here (lib/session.h): add
 * one (a password at the store's KDF level, or a recovery key @sn), remove
 * one, list them (labels only while it is unlocked here). -ENOENT no such
 * session; else as sfs_container_slot_add, _remove, sfs_container_slots.
 */
int sfs_session_slot_add(const char *id, const char *pw, size_t pwlen, struct sfs_slot_new *sn,
			 int *index);
int sfs_session_slot_remove(const char *id, int index, const char *pw, size_t pwlen);
int sfs_session_slots(const char *id, struct sfs_slot_info *out, unsigned int *n, int *version,
		      enum sfs_cipher *cipher);
/*
 * sessionctl rekey of session @id (doc/format.md "Re-keying"): a new
 * session key, every node sealed anew in a container built beside, which
 * takes the old one's place in one atomic exchange, and every slot
 * re-wrapped with its own secret. @pw proves a slot (and unlocks the
 * session here first if it is locked here); @secrets[i] (@lens[i] bytes)
 * is slot i's secret (NULL: none; the proof's own slot needs none);
 * @drop[i] leaves slot i out. The session is locked here for the duration
 * (operations get EACCES; an unlock waits) and unlocked again after, with
 * the new key or, on failure, the old one; the caller invalidates its
 * caches. 0 with *@r filled; -EKEYREJECTED a secret opens no slot (the
 * slot in r->slot_failed, -1 the proof); -EBUSY unlocked by another mount;
 * SFS_SLOT_ENONE a secret or drop for a slot that does not exist;
 * SFS_SLOT_EUNPROVEN a slot with neither (r->slot_failed); SFS_SLOT_ELAST
 * every slot dropped; SFS_REKEY_EKEPT kept bytes under the old key;
 * -EBADMSG damage under the old key; -errno. Nothing changes on error.
 */
struct sfs_rekey_result {
	int slot_failed;	     /* the slot a refusal names, -1 none */
	bool kept[SFS_SLOTS_MAX];    /* slots re-wrapped */
	bool dropped[SFS_SLOTS_MAX]; /* slots left out */
	uint64_t nodes, bytes;	     /* what was sealed anew */
	enum sfs_cipher from, to;    /* the content cipher before and after */
	bool unlocked;		     /* the session was locked here: rekey unlocked it */
};
int sfs_session_rekey(const char *id, const char *pw, size_t pwlen,
		      const char *const secrets[SFS_SLOTS_MAX], const size_t lens[SFS_SLOTS_MAX],
		      const bool drop[SFS_SLOTS_MAX], struct sfs_rekey_result *r, char *warn,
		      size_t wsz);
/* Is session @id (in sessions/ if @where is 0, archive/ if 1) unlocked by another mount? */
bool sfs_session_elsewhere(const char *id, int where);
/*
 * Move session @id from @from (0 sessions/, 1 archive/) to the other top
 * directory (lib/session.c, sfs_container_move), its busy lock held through
 * the rename: -EBUSY if another mount has it unlocked,
 * -EEXIST if the other holds that id, -EPERM for no session id; -errno.
 */
int sfs_session_move(const char *id, int from);

/*
 * loop.c: serve requests until unmount with up to @max_threads threads (0:
 * the default), one reading at a time; 0 or -errno.
 */
int sfs_loop_run(int max_threads);
/* Called every second: a reader stuck on one request passes its place on. */
void sfs_loop_watch(void);
/*
 * The request being served is about to wait on the kernel (a notification):
 * if its thread is the reader, another thread reads the next requests.
 */
void sfs_loop_pass(void);
/* The request being served handled plaintext: the stack is wiped after it. */
void sfs_loop_plaintext(void);
/* Wipe the stack below the caller (32 KiB), where its callees left their locals. */
void sfs_wipe_stack(void);

/* An O_PATH descriptor of session @s's root in the store (its tree), or -errno. */
int sfs_session_rootfd(struct sfs_session *s);

/* notify.c: cache invalidation from a separate thread. */
int sfs_notify_start(void);
void sfs_notify_stop(void);
/* Queue invalidation of every cache of @s; returns a ticket for sfs_notify_wait. */
uint64_t sfs_notify_session(struct sfs_session *s);
void sfs_notify_wait(uint64_t ticket);

/* node.c: attributes and headers of nodes */
int sfs_node_load(struct sfs_inode *in, const struct sfs_keys *keys);
int sfs_node_stat(struct sfs_inode *in, struct stat *st);
int sfs_node_store_attrs(struct sfs_inode *in, const struct sfs_attrs *a, int fd,
			 const struct sfs_keys *keys);
/*
 * The type of @in as the mount shows it: its header's, once loaded (a
 * backing regular file may be a FIFO, socket, device node or long symlink).
 */
mode_t sfs_node_type(struct sfs_inode *in);
/* Is @in an append-only log (its header's kind, read under in->mu)? */
bool sfs_node_is_log(struct sfs_inode *in);
/* The target of symlink @in (either form) into @out: 0, -EINVAL not a symlink, -errno. */
int sfs_node_readlink(struct sfs_inode *in, char out[PATH_MAX], const struct sfs_keys *keys);
/*
 * d_type of backing entry @backing (listed as @d_type) in directory @dirfd:
 * a backing regular file is looked into only when it may be a file node of
 * another type (header only, or a long symlink's size).
 */
unsigned char sfs_node_dtype(int dirfd, const char *backing, unsigned char d_type,
			     const struct sfs_keys *keys);
/*
 * Content calls on regular file @in (lib/fileio.c), with in->io held (for
 * writing when they may write): sfs_node_file_begin() gives @f the file's
 * id, kind and freshness, and with @rn a renewal hook that moves its
 * extended attributes to a new id (fileio.h "Id renewal");
 * sfs_node_file_end(), in->io still held, keeps what the calls changed of
 * the header (a new id, the kind) in @in.
 */
struct sfs_file;
struct sfs_renewal {
	struct sfs_inode *in;
	unsigned char old_id[SFS_ID_BYTES]; /* the id before the calls */
	unsigned char new_id[SFS_ID_BYTES]; /* the id the hook was told of */
	bool copied;			    /* attributes copied to new_id */
};
void sfs_node_file_begin(struct sfs_inode *in, struct sfs_file *f, struct sfs_renewal *rn);
/*
 * Put back regular file @in's last block from its tail record if a crash
 * tore it (fileio.h "Tail records"), once per inode and mount, and log it.
 * The caller holds in->io for writing, or in->mu while loading the inode
 * (nothing uses it yet). 1 if the file changed, 0 if not, or -errno.
 */
int sfs_node_check_tail(struct sfs_inode *in, const struct sfs_keys *keys);
/*
 * Regular file @in (no special file) read as damaged because its backing
 * file is empty: the name of a file created right before a crash reached the
 * disk (the publishing rename is journaled metadata) and its header did not
 * (data, written back later). Give it a header: an empty file, mode 0600,
 * owned by the mounting user, and log it. 1 if it did, 0 if @in is not such
 * a file, or -errno.
 */
int sfs_node_headerless(struct sfs_inode *in, const struct sfs_keys *keys);
void sfs_node_file_end(struct sfs_inode *in, const struct sfs_file *f, struct sfs_renewal *rn);
/*
 * ops_xattr.c: the renewal hook of content calls (struct sfs_file.renew, @arg a struct
 * sfs_renewal): copy the file's attributes to its new id before its header
 * names it. sfs_node_xattr_renewed() then drops the copy that is not in use: the
 * old one once the id changed (@moved), else the new one.
 */
int sfs_node_xattr_renew(const struct sfs_file *f, const unsigned char new_id[SFS_ID_BYTES],
			 void *arg);
void sfs_node_xattr_renewed(const struct sfs_renewal *rn, bool moved);
void sfs_log_corrupt(const struct sfs_inode *in, const char *what, long long block);

/*
 * session.c: write the time of @s's last change into its metadata.json
 * "updated" if a change is pending and (unless @force) has settled: no
 * change for a second, or changes for five (lib/metadata.c,
 * sfs_metadata_touch_due). @notify: then drop the kernel's
 * cached name; only from a thread that holds no lock and serves no request.
 */
void sfs_meta_refresh(struct sfs_session *s, bool force, bool notify);
/* special.c: something in @s changed (metadata.json's "updated" follows, sfs_meta_refresh). */
void sfs_session_changed(struct sfs_session *s);
/*
 * session.c: the stored metadata.json of session @s, for `list`: a
 * malloc'd copy of its plaintext in *@text (*@len bytes, NUL after them;
 * the caller wipes and frees it, sfs_metadata_free). Called inside the
 * session (@keys from sfs_session_enter_quiet: looking at the list is no
 * work in the session, idle_lock). 0 or -errno.
 */
int sfs_meta_peek(struct sfs_session *s, const struct sfs_keys *keys, char **text, size_t *len);
/*
 * session.c: set @s's metadata.json "status" to @status and "updated" to
 * now, read and replaced under meta_mu through the check every new document
 * passes (sfs_metadata_set_status), inside the session (@keys). 0 with the
 * session root in *@rootfd_out for sfs_meta_forget_name once the caller
 * holds no lock; -EINVAL refused (logged), -ENODATA no document, -errno.
 */
int sfs_meta_set_status(struct sfs_session *s, const struct sfs_keys *keys, const char *status,
			int *rootfd_out);
/*
 * special.c: drop the kernel's cached name metadata.json in session root
 * @rootfd (and its attributes), and close @rootfd. Only from a thread that
 * holds no lock and serves no request.
 */
void sfs_meta_forget_name(int rootfd);
/*
 * special.c: redact @s's events.jsonl by @re (lib/redact.h) inside the
 * session (s->rw read): under ev_rw held for writing (no append meanwhile)
 * a new log is written with every line redacted and @rec (a JSON object,
 * given "matches" and "lines" here) appended as its last line, then renamed
 * over the old one, which appends and reads use no more. 0 with *@st, the
 * session root in *@rootfd_out and the replaced file's inode number in
 * *@old_out for sfs_events_forget_name once the caller holds no lock;
 * -errno with nothing changed (or *@rootfd_out >= 0 if the new log is in
 * place all the same: a failed fsync of the root after the rename).
 */
int sfs_events_redact(struct sfs_session *s, const regex_t *re, json_t *rec,
		      struct sfs_redact_stats *st, int *rootfd_out, fuse_ino_t *old_out);
/* special.c: as sfs_meta_forget_name, for events.jsonl and the replaced file's inode @old. */
void sfs_events_forget_name(int rootfd, fuse_ino_t old);
/*
 * special.c: change @s's redaction rules inside the session (s->rw read),
 * under ev_rw held for writing: set rule @name to @pattern (@builtin: it is
 * that built-in rule), or remove rule @name (@pattern NULL); with @name
 * NULL nothing changes. The rule file is read, changed and stored
 * (lib/rules.h), then the daemon's rules are the stored ones. 0 with the
 * rules as a new JSON array [{name, pattern, builtin}] in *@list; -ENOENT
 * no such rule to remove (the list in *@list all the same); -EINVAL (why
 * in @err), -ENOSPC too many (why in @err), -errno.
 */
int sfs_events_rules(struct sfs_session *s, const char *name, const char *pattern, bool builtin,
		     json_t **list, char *err, size_t errsz);
/*
 * special.c: at lock (s->rw held for writing), wipe and drop the plaintext
 * that @s's open special files hold (an unterminated events line, a
 * metadata.json being written); those file handles then fail with EIO.
 */
void sfs_special_forget(struct sfs_session *s);

/*
 * current.c: MOUNTPOINT/current. Set it to session @id (NULL: none;
 * -EINVAL for no session id); get the id named (false: none); forget @id
 * if it is the one named (a deleted session); its target "sessions/ID" or
 * "archive/ID" (-ENOENT: none); its attributes (-ENOENT: none).
 */
int sfs_current_set(const char *id);
bool sfs_current_get(char id[SFS_SESSION_ID_MAX + 1]);
void sfs_current_forget(const char *id);
int sfs_current_target(char *buf, size_t sz);
int sfs_current_stat(struct stat *st);

/* ctl.c: the control file */
void sfs_ctl_open(fuse_req_t req, struct fuse_file_info *fi);
void sfs_ctl_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void sfs_ctl_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi);
void sfs_ctl_release(fuse_req_t req, struct fuse_file_info *fi);

/* The operation tables (ops_*.c), gathered in ops.c. */
extern const struct fuse_lowlevel_ops sfs_ops;

/*
 * Free the file handles whose RELEASE never came: the kernel drops the
 * RELEASE of a handle closed just before an unmount tears the connection
 * down. Their buffers are wiped. Called once the session loop has ended.
 */
void sfs_fh_reap_all(void);

#endif
