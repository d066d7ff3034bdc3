/*
 * proto.h - the control protocol's one definition (doc/control.md): the
 * control file, the ops and what each takes, the names of request and
 * response members, the error codes with their errno mapping both ways and
 * sessionctl's exit code for each.
 *
 * The daemon (fs/ctl.c) answers with these words and sessionctl (cli/)
 * speaks them; a new op or code is added here first. Knows no FUSE, no
 * JSON library, no session: names and numbers only.
 */
#ifndef SFS_PROTO_H
#define SFS_PROTO_H

#include "exitcode.h"

/* The control file at the root of a mount, as the daemon shows it. */
#define SFS_PROTO_CTL_FILE ".sessionfs"
#define SFS_PROTO_CTL_MODE 0600
#define SFS_CURRENT_NAME "current"	  /* MOUNTPOINT/current, while `sessionctl use` names one */
#define SFS_PROTO_FSTYPE "fuse.sessionfs" /* the mount table's type of a mount */
#define SFS_PROTO_REQUEST_MAX 65536	  /* bytes of one request, in one write(2) */

/* Members of a request (a JSON object). */
#define SFS_PROTO_F_OP "op"			/* the op's name: always */
#define SFS_PROTO_F_SESSION "session"		/* a session id */
#define SFS_PROTO_F_PASSWORD "password"		/* the session's (new: to be) password */
#define SFS_PROTO_F_NEW_PASSWORD "new_password" /* passwd: the password to set */
#define SFS_PROTO_F_NAME "name"			/* new: the session's name (optional) */
#define SFS_PROTO_F_ID "id" /* new: the id wanted (optional); also in responses */
#define SFS_PROTO_F_BY "by" /* any op (optional): what acts, for the audit trail ("prune") */
#define SFS_PROTO_F_LOCKED_OK "locked_ok" /* delete: true: a locked session too (optional) */
#define SFS_PROTO_F_COPY_OF "copy_of"	  /* new: made as a copy of this id (optional) */
#define SFS_PROTO_F_FROM "from"		  /* copy: the id the session was copied from */
#define SFS_PROTO_F_TO "to"		  /* copy: the id of its copy */

/* Members of a response (a JSON object). */
#define SFS_PROTO_F_OK "ok"	  /* true, or false with code and error */
#define SFS_PROTO_F_CODE "code"	  /* a failure's code: sfs_proto_err_name() */
#define SFS_PROTO_F_ERROR "error" /* a failure's text, for people */
#define SFS_PROTO_F_VERSION "version"
#define SFS_PROTO_F_STORE "store"
#define SFS_PROTO_F_KDF "kdf" /* a KDF level's name, or SFS_PROTO_KDF_CUSTOM */
#define SFS_PROTO_F_OPSLIMIT "opslimit"
#define SFS_PROTO_F_MEMLIMIT "memlimit"
#define SFS_PROTO_F_CIPHER "cipher"
#define SFS_PROTO_F_WARNINGS "warnings"
#define SFS_PROTO_F_OPEN_FILES "open_files"
#define SFS_PROTO_F_SESSIONS "sessions" /* lock_all: a count; list: the array */
#define SFS_PROTO_F_WHERE "where"	/* list: SFS_SESSIONS_DIR or SFS_ARCHIVE_DIR */
#define SFS_PROTO_F_LOCKED "locked"
#define SFS_PROTO_F_UNLOCKED_ELSEWHERE "unlocked_elsewhere"
#define SFS_PROTO_F_EVENTS "events"
#define SFS_PROTO_F_EVENTS_BYTES "events_bytes"
#define SFS_PROTO_F_DAMAGED "damaged" /* list: [{file, what}] */
#define SFS_PROTO_F_FILE "file"
/* list: what the store tells of every session, locked or not (lib/usage.c) */
#define SFS_PROTO_F_SIZE "size"		    /* bytes of its container's backing files */
#define SFS_PROTO_F_ALLOCATED "allocated"   /* their blocks, directories included, in bytes */
#define SFS_PROTO_F_CHANGED "changed"	    /* its last change (newest mtime), UTC ISO-8601 */
#define SFS_PROTO_F_CHANGED_NS "changed_ns" /* the same in nanoseconds since the epoch */
#define SFS_PROTO_F_WHAT "what"
/* list also has metadata.json's "status", "name", "created", "updated" (lib/store.h). */
#define SFS_PROTO_F_STATUS "status"   /* also status: the one to set (optional) */
#define SFS_PROTO_F_CREATED "created" /* also new: metadata.json's "created" (optional) */
#define SFS_PROTO_F_UPDATED "updated"
#define SFS_PROTO_F_CURRENT "current" /* hello, use: the session MOUNTPOINT/current names */
/* key slots (keys, add_password, add_recovery_key, remove_slot; new, passwd) */
#define SFS_PROTO_F_SLOT "slot"			/* a slot's index: to remove; added; passwd's */
#define SFS_PROTO_F_SLOTS "slots"		/* keys: [{index, kind, kdf, ..., label}] */
#define SFS_PROTO_F_LABEL "label"		/* a slot's label (optional) */
#define SFS_PROTO_F_RECOVERY_KEY "recovery_key" /* new: true to make one; its text, once */
#define SFS_PROTO_F_INDEX "index"
#define SFS_PROTO_F_KIND "kind"			/* "password" or "recovery-key" */
#define SFS_PROTO_F_ADDED "added"		/* UTC ISO-8601 */
#define SFS_PROTO_F_LABEL_SEALED "label_sealed" /* true: locked here, label not shown */
#define SFS_PROTO_F_FORMAT "format"		/* keys: the key file's version */
/* redact: the pattern (POSIX ERE); its answer's and record's counts; the CLI's file count */
#define SFS_PROTO_F_PATTERN "pattern"
#define SFS_PROTO_F_MATCHES "matches"
#define SFS_PROTO_F_LINES "lines"
#define SFS_PROTO_F_FILE_MATCHES "file_matches"
/* rules: the rule to set ("name" and "pattern"), a built-in one, or one to remove; the list */
#define SFS_PROTO_F_BUILTIN "builtin"
#define SFS_PROTO_F_REMOVE "remove"
#define SFS_PROTO_F_RULES "rules"
/* rekey: other slots' secrets [{slot, secret}], slots to leave out [N]; what was done */
#define SFS_PROTO_F_SECRETS "secrets"
#define SFS_PROTO_F_SECRET "secret"
#define SFS_PROTO_F_DROP "drop"
#define SFS_PROTO_F_KEPT "kept"
#define SFS_PROTO_F_DROPPED "dropped"
#define SFS_PROTO_F_NODES "nodes"
#define SFS_PROTO_F_BYTES "bytes"
#define SFS_PROTO_F_CIPHER_BEFORE "cipher_before"
#define SFS_PROTO_F_UNLOCKED "unlocked"
#define SFS_PROTO_F_UNPROVEN "unproven" /* rekey refused: slot "slot" has no secret */

#define SFS_PROTO_KDF_CUSTOM "custom" /* a cost no KDF level has */

/* The ops, in doc/control.md's order. */
enum sfs_proto_op {
	SFS_PROTO_OP_HELLO,
	SFS_PROTO_OP_NEW,
	SFS_PROTO_OP_UNLOCK,
	SFS_PROTO_OP_LOCK,
	SFS_PROTO_OP_LOCK_ALL,
	SFS_PROTO_OP_LIST,
	SFS_PROTO_OP_PASSWD,
	SFS_PROTO_OP_DELETE,
	SFS_PROTO_OP_USE,   /* MOUNTPOINT/current -> the session */
	SFS_PROTO_OP_UNUSE, /* no MOUNTPOINT/current */
	SFS_PROTO_OP_STATUS,
	SFS_PROTO_OP_ARCHIVE,
	SFS_PROTO_OP_KEYS,	       /* list key slots */
	SFS_PROTO_OP_ADD_PASSWORD,     /* a slot with new_password */
	SFS_PROTO_OP_ADD_RECOVERY_KEY, /* a slot with a recovery key the daemon makes */
	SFS_PROTO_OP_REMOVE_SLOT,      /* "slot", proven by another slot's password */
	SFS_PROTO_OP_REDACT, /* events.jsonl rewritten with a pattern's matches replaced */
	SFS_PROTO_OP_RULES,  /* the redaction rules applied to appends: list, set, remove */
	SFS_PROTO_OP_COPY,   /* the audit trail's record of a finished `sessionctl copy` */
	SFS_PROTO_OP_REKEY,  /* a new session key, every node sealed anew */
	SFS_PROTO_OPS	     /* how many */
};

/*
 * What a request of an op must carry besides "op" (sfs_proto_op_takes). A
 * member that is missing or not a string makes the request invalid; so does
 * an empty password that is to be set.
 */
#define SFS_PROTO_TAKES_SESSION 0x1u	  /* "session"; no id a session can have: no-such-session */
#define SFS_PROTO_TAKES_PASSWORD 0x2u	  /* "password" */
#define SFS_PROTO_TAKES_NEW_PASSWORD 0x4u /* "new_password", not empty */
#define SFS_PROTO_SETS_PASSWORD 0x8u	  /* "password" becomes the session's: not empty */

/* The op's name on the wire ("lock_all"); NULL for no op. */
const char *sfs_proto_op_name(enum sfs_proto_op op);

/* The op named @name (NULL is fine), or -EINVAL. */
int sfs_proto_op_find(const char *name);

/* SFS_PROTO_TAKES_* and SFS_PROTO_SETS_* bits of @op; 0 for no op. */
unsigned int sfs_proto_op_takes(enum sfs_proto_op op);

/* The codes of a failed response. */
enum sfs_proto_err {
	SFS_PROTO_ERR_IO,	       /* "io": anything else; the text says what */
	SFS_PROTO_ERR_WRONG_PASSWORD,  /* "wrong-password" */
	SFS_PROTO_ERR_NO_SUCH_SESSION, /* "no-such-session" */
	SFS_PROTO_ERR_BUSY,	       /* "busy": unlocked by another mount of the store */
	SFS_PROTO_ERR_LOCKED,	       /* "locked" */
	SFS_PROTO_ERR_EXISTS,	       /* "exists" */
	SFS_PROTO_ERR_INVALID,	       /* "invalid": a malformed request */
	SFS_PROTO_ERR_PERMISSION,      /* "permission": not sent by this daemon, understood */
	SFS_PROTO_ERR_UNSUPPORTED,     /* "unsupported": a key file or cipher this cannot use */
	SFS_PROTO_ERR_SLOT,	       /* "slot": a key slot change refused (full, none, last) */
	SFS_PROTO_ERRS		       /* how many */
};

/* The code's name on the wire ("no-such-session"); "io" for no code. */
const char *sfs_proto_err_name(enum sfs_proto_err err);

/* The code named @name; SFS_PROTO_ERR_IO for NULL or a name it does not know. */
enum sfs_proto_err sfs_proto_err_find(const char *name);

/*
 * The code the daemon answers a handler's negative errno @rc with, and in
 * *text (if not NULL) the text it sends: fixed for the errnos the protocol
 * knows, strerror(-rc) for others (code "io").
 */
enum sfs_proto_err sfs_proto_err_from_errno(int rc, const char **text);

/* The negative errno a code stands for (-EIO for io and no code). */
int sfs_proto_err_errno(enum sfs_proto_err err);

/* sessionctl's exit code for a failure with this code (SFS_EXIT_FAIL for io). */
enum sfs_exit sfs_proto_err_exit(enum sfs_proto_err err);

#endif
