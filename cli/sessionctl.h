/*
 * sessionctl.h - what the parts of sessionctl share: a proven mount, a
 * session named on the command line, the opened command (options,
 * arguments, mount, passwords) and the request calls.
 *
 * sessionctl.c opens every command the same way (cmd_open); commands.c
 * holds what each one then does; mount.c proves mounts and finds sessions;
 * client.c sends requests. None knows crypto or the store format; the
 * protocol's words are lib/proto.h's. Functions that return an int return
 * an exit code (lib/exitcode.h) after saying why on stderr.
 */
#ifndef SFS_SESSIONCTL_H
#define SFS_SESSIONCTL_H

#include "exitcode.h"
#include "password.h"
#include "proto.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* A mount proven to be served by a sessionfs daemon of the caller or root. */
struct mount {
	int fd;		 /* O_PATH descriptor of the mount's root directory; -1 none */
	dev_t dev;	 /* the mount's device */
	uid_t owner;	 /* who mounted it (the kernel's user_id=): the caller or 0 */
	const char *arg; /* the path as given, for messages */
};

/* A session named on the command line. */
struct target {
	char mnt[PATH_MAX];
	char id[SFS_SESSION_ID_MAX + 1];
	const char *where; /* "sessions" or "archive" */
};

#define CMD_REPEAT_MAX 16 /* times an option that adds up may be given */

/*
 * A command as cmd_open leaves it: its options read, its arguments
 * checked, the mount proven and passwords read, as its struct command says.
 */
struct cmd {
	/* Options (those the command takes). */
	const char *name, *id;		 /* new --name, --id */
	const char *pwfile, *newfile;	 /* --password-file, --new-password-file */
	bool all, json, yes;		 /* lock --all, list --json, delete --yes */
	const char *format, *output;	 /* report --format, -o */
	const char *since;		 /* audit --since */
	bool none;			 /* use --none */
	const char *sort, *status;	 /* list --sort, list and prune --status */
	bool archived, locked, unlocked; /* list --archived, --locked, --unlocked */
	const char *older_than;		 /* prune --older-than */
	const char *keep_last_arg;	 /* prune --keep-last as given */
	long long keep_last;		 /* ...read by prune's check; -1 not given */
	bool archive, delete, dry_run;	 /* prune --archive, --delete, --dry-run */
	bool add, add_recovery,
		recovery_key;		/* passwd --add, --add-recovery-key; new --recovery-key */
	const char *remove_arg, *label; /* passwd --remove N as given, --label */
	long remove_slot;		/* ...read by sfs_slot_check */
	bool no_new_password;		/* set by a check: read no c->newpw */
	const char *pattern;		/* redact --pattern, or --pattern-file's line */
	const char *pattern_file;	/* redact --pattern-file */
	struct sfs_password pat;	/* ...what it read (buf NULL when not read) */
	bool files;			/* redact --files */
	const char *rule, *builtin;	/* redact --rule, --builtin */
	const char *remove_rule;	/* redact --remove-rule */
	bool list_rules;		/* redact --list-rules */
	const char *to;			/* copy --to */
	const char *secret_args[CMD_REPEAT_MAX]; /* rekey --secret-file N=FILE as given */
	int nsecret_args;
	const char *drop_args[CMD_REPEAT_MAX]; /* rekey --drop-slot N as given */
	int ndrop_args;
	/* Arguments. */
	char **args; /* the operands */
	int nargs;
	const char *mnt;	       /* the mountpoint: the operand, or the session's */
	struct target t;	       /* the session, for a command on a SESSIONDIR */
	struct mount m;		       /* the proven mount; already closed if a password was read */
	struct sfs_password pw, newpw; /* buf NULL when not read */
	char *argv0;		       /* the command's name, for messages */
};

/* What a command's operands are (struct command.takes). */
#define CMD_MOUNTPOINT 0x1u    /* one MOUNTPOINT: proven into c->m */
#define CMD_SESSIONDIR 0x2u    /* one SESSIONDIR: found into c->t, its mount proven */
#define CMD_MANY 0x4u	       /* one or more, which the command resolves itself */
#define CMD_PASSWORD 0x8u      /* reads c->pw (--password-file or the prompt) */
#define CMD_CONFIRM 0x10u      /* ...asking it twice on a terminal */
#define CMD_NEW_PASSWORD 0x20u /* reads c->newpw too (--new-password-file), asked twice */
#define CMD_OPTIONAL 0x40u     /* with CMD_MANY: no operand is fine too */
#define CMD_ONE_MORE 0x80u     /* ...and one more operand, optional (status's STATUS) */

/* getopt_long vals of every command's options (struct command.opts). */
enum {
	OPT_HELP = 'h',
	OPT_YES = 'y',
	OPT_NAME = 256,
	OPT_ID,
	OPT_PASSWORD_FILE,
	OPT_PASSWORD, /* --password: refused, passwords are never arguments */
	OPT_NEW_PASSWORD_FILE,
	OPT_ALL,
	OPT_JSON,
	OPT_FORMAT,
	OPT_SORT,
	OPT_STATUS,
	OPT_ARCHIVED,
	OPT_LOCKED,
	OPT_UNLOCKED,
	OPT_OLDER_THAN,
	OPT_KEEP_LAST,
	OPT_ARCHIVE,
	OPT_DELETE,
	OPT_DRY_RUN,
	OPT_OUTPUT = 'o',
	OPT_SINCE = 300,
	OPT_NONE,
	OPT_ADD = 400, /* key slots (keys.c) */
	OPT_REMOVE,
	OPT_ADD_RECOVERY_KEY,
	OPT_LABEL,
	OPT_RECOVERY_KEY,
	OPT_PATTERN,
	OPT_PATTERN_FILE,
	OPT_FILES,
	OPT_RULE,
	OPT_BUILTIN,
	OPT_LIST_RULES,
	OPT_REMOVE_RULE,
	OPT_TO,
	OPT_SECRET_FILE,
	OPT_DROP_SLOT,
};

/* One sessionctl command. */
struct command {
	const char *name;
	const char *shortopts;	     /* for getopt_long: "h" and any short option */
	const struct option *opts;   /* its long options, vals as in cmd_open */
	unsigned int takes;	     /* CMD_* bits */
	const char *prompt;	     /* for c->pw; "%s" is the session id */
	int (*check)(struct cmd *c); /* its own checks of options and operands, or NULL */
	int (*run)(struct cmd *c);   /* what it does once opened */
	const char *new_prompt;	     /* for c->newpw, "%s" the session id; NULL the default */
};

/* The commands (commands.c), and sessionctl's usage (sessionctl.c). */
extern const struct command sfs_cli_commands[];
extern const size_t sfs_cli_ncommands;
void usage(FILE *out);

/* report.c: sessionctl report (its check and run). */
int sfs_report_check(struct cmd *c);
int sfs_report_run(struct cmd *c);

/* audit.c: sessionctl audit and sessionctl use (their checks and runs). */
int sfs_audit_check(struct cmd *c);
int sfs_audit_run(struct cmd *c);
int sfs_use_check(struct cmd *c);
int sfs_use_run(struct cmd *c);
/*
 * list.c: sessionctl list (its check and run), and what prune shares with
 * it: the daemon's list of every session (each with "changed_ns" and
 * "size", locked ones included) over the proven mount @m into *@arr (a new
 * reference), and sorting by --sort's keys (id, created, updated, size).
 */
int sfs_list_check(struct cmd *c);
int sfs_list_run(struct cmd *c);
int sfs_list_fetch(const struct mount *m, json_t **arr);
void sfs_list_sort(json_t *arr, const char *key);

/*
 * keys.c: sessionctl keys (its run), passwd's slot forms (--add, --remove,
 * --add-recovery-key: sfs_slot_check from passwd's check, sfs_slot_run
 * from its run), and printing the recovery key in a response of @id.
 */
int sfs_keys_run(struct cmd *c);
int sfs_slot_check(struct cmd *c);
int sfs_slot_run(struct cmd *c);
void sfs_slot_print_recovery(json_t *resp, const char *id);

/* prune.c: sessionctl prune (its check and run). */
int sfs_prune_check(struct cmd *c);
int sfs_prune_run(struct cmd *c);

/* redact.c: sessionctl redact (its check and run). */
int sfs_redact_check(struct cmd *c);
int sfs_redact_run(struct cmd *c);
/* rekey.c: sessionctl rekey (its check and run). */
int sfs_rekey_check(struct cmd *c);
int sfs_rekey_run(struct cmd *c);
/* copy.c: sessionctl copy (its check and run). */
int sfs_copy_check(struct cmd *c);
int sfs_copy_run(struct cmd *c);
/* commands.c: say on stderr how the session a "new" response made is protected. */
void say_protection(json_t *resp);

/* Messages: "sessionctl: ...", and "sessionctl: ARG: not a sessionfs mount: ...". */
int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int not_mount(const char *arg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mount.c: prove the mount at @arg and hold it (mount_close it); find a session. */
int mount_open(const char *arg, struct mount *m);
void mount_close(struct mount *m);
int ctl_open(const struct mount *m); /* the control file's fd, or an exit code negated */
int resolve(const char *arg, struct target *t);
bool mount_root(const char *dir); /* does @dir look like a sessionfs mount's root? */

/*
 * client.c: send @req (consumed; NULL is out of memory) over the proven
 * mount @m, or over the mount at @mnt proven right before it goes; on
 * success SFS_EXIT_OK with the response in *resp if asked, on a failed
 * response the exit code its code maps to after "sessionctl: WHAT: error".
 */
int call(const struct mount *m, json_t *req, const char *what, json_t **resp);
int call_at(const char *mnt, json_t *req, const char *what, json_t **resp);
/*
 * The same over the mount at @mnt, for a caller that looks at a failed
 * response itself: SFS_EXIT_OK with the response, ok or not, in *resp; or
 * an exit code (no response) after saying why. fail_resp: the exit code of
 * failed response @resp after "sessionctl: WHAT: error".
 */
int call_any(const char *mnt, json_t *req, json_t **resp);
int fail_resp(json_t *resp, const char *what);

#endif
