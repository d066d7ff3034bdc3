/*
 * fsck.h - checking and mending a sessionfs store offline (fsck.sessionfs).
 *
 * The walk over a store: its config, each session container's layout and
 * key file, every backing entry of each session's tree (headers, sizes,
 * names, sidecars, internal leftovers, xattr blobs and tail files of nodes
 * that are gone) and, for a session whose password the caller gives, every
 * header, block, name, symlink, xattr blob, event record and metadata.json
 * authenticated. What it finds becomes a list of findings; a finding with a
 * repair is mended only as the caller's mode says (never in CHECK mode, after
 * the caller's yes in ASK mode).
 *
 * Store layer: uses the store, tree, fileio, eventlog, xattr, symlink and
 * format parsers, never parses bytes of its own; knows nothing of FUSE,
 * terminals or JSON output. A session held by a running mount (its busy lock
 * taken) is skipped and never touched; every other session is locked by the
 * walk while it is looked at.
 */
#ifndef SFS_FSCK_H
#define SFS_FSCK_H

#include "crypto.h"
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sfs_fsck_mode {
	SFS_FSCK_CHECK,	 /* -n: change nothing */
	SFS_FSCK_REPAIR, /* -y: repair without asking */
	SFS_FSCK_ASK,	 /* ask the caller per repair */
};

/* What became of a finding. */
enum sfs_fsck_state {
	SFS_FSCK_NOTE,	  /* worth knowing, not wrong: no exit bit */
	SFS_FSCK_FIXED,	  /* wrong, and repaired */
	SFS_FSCK_LEFT,	  /* wrong, left as it is (no repair, -n, or declined) */
	SFS_FSCK_SKIPPED, /* not checked: held by a running mount */
	SFS_FSCK_FAILED,  /* could not be checked or repaired: an operational error */
};

/* One finding (the JSON field names in cli/fsck.c follow these). */
struct sfs_fsck_finding {
	char session[64];	   /* "sessions/INC-3f2a", "archive/INC-...", "" the store */
	char *path;		   /* inside the session if @plain, else relative to the store */
	bool plain;		   /* @path is the decrypted path inside the session */
	const char *code;	   /* stable short name of the kind of finding */
	char *what;		   /* what is wrong */
	char *repair;		   /* what a repair does (NULL: none) */
	enum sfs_fsck_state state; /* what became of it */
	int err;		   /* the -errno of a failed repair or check (0 none) */
};

/* Progress, for a caller that shows it. */
struct sfs_fsck_progress {
	unsigned sessions;   /* sessions in the store */
	unsigned done;	     /* sessions finished */
	uint64_t bytes;	     /* backing bytes read and checked so far */
	uint64_t total;	     /* backing bytes in the sessions (if c->measure), 0 unknown */
	const char *current; /* the session being checked ("" none) */
};

struct sfs_fsck {
	/* Set by the caller. */
	const char *store;
	enum sfs_fsck_mode mode;
	/*
	 * The password of session @id (e.g. "INC-3f2a"): 1 with *pw, *len set,
	 * 0 if the caller has none for it. The walk never keeps it.
	 */
	int (*password)(void *arg, const char *id, const char **pw, size_t *len);
	/* ASK mode: may repair @f (its what and repair are set)? */
	bool (*ask)(void *arg, const struct sfs_fsck_finding *f);
	/* Each finding once its state is final (may be NULL). */
	void (*report)(void *arg, const struct sfs_fsck_finding *f);
	/* Called now and then while the walk reads (may be NULL). */
	void (*progress)(void *arg, const struct sfs_fsck_progress *p);
	void *arg;
	volatile sig_atomic_t *cancel; /* set (by a signal handler) to stop early; may be NULL */
	bool measure; /* sum the sessions' sizes first (a stat walk), for prog.total */

	/* Results. */
	struct sfs_fsck_finding *v;
	size_t n, cap;
	struct sfs_fsck_progress prog;
	bool cancelled;
	int storefd;
};

/* fsck's exit bits (fsck(8)). */
#define SFS_FSCK_EXIT_CLEAN 0
#define SFS_FSCK_EXIT_CORRECTED 1
#define SFS_FSCK_EXIT_UNCORRECTED 4
#define SFS_FSCK_EXIT_ERROR 8
#define SFS_FSCK_EXIT_USAGE 16
#define SFS_FSCK_EXIT_CANCELLED 32

/*
 * Check (and, as c->mode says, repair) the store c->store. 0 when the walk
 * ran (its findings are in c->v), or -errno when the store could not be
 * opened at all (then one finding says why).
 */
int sfs_fsck_run(struct sfs_fsck *c);

/* The exit bits of a finished walk. */
int sfs_fsck_exit_bits(const struct sfs_fsck *c);

/* Free the findings. */
void sfs_fsck_free(struct sfs_fsck *c);

/* --- internal to lib/fsck*.c --- */

/* The session (or store) being looked at, and the keys if it is unlocked. */
struct sfs_fsck_sess {
	struct sfs_fsck *c;
	char name[64];	       /* "sessions/INC-3f2a" */
	const char *id;	       /* "INC-3f2a" */
	int cfd;	       /* the container */
	int rootfd;	       /* its root/ (-1 if none) */
	struct sfs_keys *keys; /* NULL: no password */
	/* node ids of the tree, to tell orphan blobs and tail files */
	unsigned char (*ids)[SFS_ID_BYTES];
	size_t nids, capids;
	bool ids_incomplete; /* some node's id could not be read: no orphan is sure */
	uint64_t backing_bytes;
	struct sfs_fsck_ahead *ahead; /* fsck_ahead.c's, during the tree walk (NULL: none) */
};

/* A repair: 0 or -errno. */
typedef int (*sfs_fsck_fix_fn)(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg);

/*
 * Add a finding of session @s (NULL: the store); @fix (NULL: none) repairs
 * it as the mode says. @repair describes the repair. Returns the finding's
 * final state.
 */
enum sfs_fsck_state sfs_fsck_add(struct sfs_fsck *c, struct sfs_fsck_sess *s, const char *path,
				 bool plain, const char *code, const char *repair,
				 sfs_fsck_fix_fn fix, void *fixarg, const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));
/* The same with a fixed state (NOTE, SKIPPED, FAILED with @err). */
void sfs_fsck_add_state(struct sfs_fsck *c, struct sfs_fsck_sess *s, const char *path, bool plain,
			const char *code, enum sfs_fsck_state state, int err, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
bool sfs_fsck_stop(struct sfs_fsck *c);
void sfs_fsck_bytes(struct sfs_fsck *c, uint64_t n);

/* An entry @name of backing directory @dirfd, for a repair. */
struct sfs_fsck_entry {
	int dirfd;
	const char *name;
};
/*
 * fsck_lost.c: move entry @arg (struct sfs_fsck_entry), whose name does not
 * decrypt, into the session's lost+found as "#<backing name>" (a repair).
 */
int sfs_fsck_lost_found(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg);
/*
 * fsck_torn.c: regular file @name of @dirfd (open in @fd, its header read:
 * @id, @sparse; @size backing bytes) is torn inside its last block: report
 * it as @path, with the repair its tail record allows.
 */
void sfs_fsck_torn(struct sfs_fsck_sess *s, int dirfd, const char *name, int fd,
		   const unsigned char id[SFS_ID_BYTES], bool sparse, uint64_t size,
		   const char *path, bool plain);
/* fsck_meta.c: metadata.json of session @s (keys set) missing or empty: restore it. */
void sfs_fsck_metadata(struct sfs_fsck_sess *s);

/* fsck_log.c: kept file @name of the container (events.kept-*): re-append its lines. */
void sfs_fsck_kept(struct sfs_fsck_sess *s, const char *name);

/* fsck_container.c: one session container @name (e.g. "sessions/INC-3f2a") in @parentfd. */
int sfs_fsck_container(struct sfs_fsck *c, int parentfd, const char *area, const char *id);
/* fsck_tree.c: the tree of session @s (s->rootfd open), authenticated if s->keys. */
int sfs_fsck_tree(struct sfs_fsck_sess *s);
/*
 * fsck_ahead.c: a thread that has the files of the tree under @rootfd read
 * into the page cache a little ahead of the walk (NULL: none; the walk works
 * the same without it); the walk calls sfs_fsck_ahead_at as it comes to each
 * backing entry (fsck_tree.c's check_entry), and sfs_fsck_ahead_end when done.
 */
struct sfs_fsck_ahead *sfs_fsck_ahead_start(int rootfd);
void sfs_fsck_ahead_at(struct sfs_fsck_ahead *a);
void sfs_fsck_ahead_end(struct sfs_fsck_ahead *a);
/*
 * fsck_log.c: the event log in @fd (header read: @id) of session @s, entry
 * @name of directory @dirfd, at @path (NULL: unknown) or backing @bpath;
 * @salvage: it is the session's events.jsonl, which a repair may replace.
 */
int sfs_fsck_log(struct sfs_fsck_sess *s, int fd, const unsigned char id[SFS_ID_BYTES],
		 const char *path, const char *bpath, int dirfd, const char *name, bool salvage);

#endif
