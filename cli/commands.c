/*
 * commands.c - what each sessionctl command does once sessionctl.c has
 * opened it (options read, operands checked, mount proven, passwords
 * read), and the table of commands with what each takes.
 *
 * A new command is a run function here and a row in sfs_cli_commands, its
 * op a row in lib/proto.c and a handler in fs/ctl.c. Knows the protocol's
 * words (lib/proto.h) and the output formats; nothing of crypto or the store
 * format.
 */
#include "sessionctl.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The value of member @key of @o: a string or NULL, an integer or 0. */
static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long get_int(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/*
 * Say on stderr how the new session in @resp is protected: the store's
 * sessionfs.conf chose its cost and cipher and is not authenticated, so a
 * downgrade must be visible. Standard output keeps the id alone.
 */
void say_protection(json_t *resp)
{
	const char *id = get_str(resp, SFS_PROTO_F_ID);
	const char *kdf = get_str(resp, SFS_PROTO_F_KDF);
	const char *cipher = get_str(resp, SFS_PROTO_F_CIPHER);
	json_t *ops = json_object_get(resp, SFS_PROTO_F_OPSLIMIT);
	json_t *mem = json_object_get(resp, SFS_PROTO_F_MEMLIMIT);
	long long mib;

	if (!id || !kdf || !cipher || !json_is_integer(ops) || !json_is_integer(mem))
		return; /* an older daemon */
	if (strcmp(cipher, "aes256gcm") == 0)
		cipher = "AES-256-GCM";
	else if (strcmp(cipher, "xchacha20poly1305") == 0)
		cipher = "XChaCha20-Poly1305";
	mib = (long long)(json_integer_value(mem) >> 20);
	fprintf(stderr, "sessionctl: %s: Argon2id %s (opslimit %lld, memlimit %lld MiB), %s\n", id,
		kdf, (long long)json_integer_value(ops), mib, cipher);
}

static int check_new(struct cmd *c)
{
	if (c->id && !sfs_id_valid(c->id))
		return die(SFS_EXIT_USAGE,
			   "bad --id '%s': want INC- and 4 to 16 lowercase hex digits", c->id);
	return SFS_EXIT_OK;
}

static int run_new(struct cmd *c)
{
	json_t *req, *resp;
	int rc;

	req = json_pack("{s:s, s:s%, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_NEW),
			SFS_PROTO_F_PASSWORD, c->pw.buf, c->pw.len, SFS_PROTO_F_NAME,
			c->name ? c->name : "");
	sfs_password_free(&c->pw);
	if (req && c->id)
		json_object_set_new(req, SFS_PROTO_F_ID, json_string(c->id));
	if (req && c->recovery_key)
		json_object_set_new(req, SFS_PROTO_F_RECOVERY_KEY, json_true());
	rc = call_at(c->mnt, req, "cannot create a session", &resp);
	if (rc)
		return rc;
	printf("%s\n", get_str(resp, SFS_PROTO_F_ID));
	fflush(stdout);
	say_protection(resp);
	sfs_slot_print_recovery(resp, get_str(resp, SFS_PROTO_F_ID)); /* keys.c */
	json_decref(resp);
	return SFS_EXIT_OK;
}

static int run_unlock(struct cmd *c)
{
	char what[64];
	json_t *req, *resp, *w;
	size_t i;
	int rc;

	req = json_pack("{s:s, s:s, s:s%}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_UNLOCK),
			SFS_PROTO_F_SESSION, c->t.id, SFS_PROTO_F_PASSWORD, c->pw.buf, c->pw.len);
	sfs_password_free(&c->pw);
	snprintf(what, sizeof(what), "cannot unlock %s", c->t.id);
	rc = call_at(c->mnt, req, what, &resp);
	if (rc)
		return rc;
	/* Unlocked all the same: what unlock cut or found damaged is a warning, exit 0. */
	json_array_foreach(json_object_get(resp, SFS_PROTO_F_WARNINGS), i, w)
		fprintf(stderr, "sessionctl: warning: %s: %s\n", c->t.id, json_string_value(w));
	json_decref(resp);
	return SFS_EXIT_OK;
}

static int lock_one(const char *mnt, const char *id)
{
	char what[64];
	json_t *resp;
	int rc;

	snprintf(what, sizeof(what), "cannot lock %s", id);
	rc = call_at(mnt,
		     json_pack("{s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_LOCK),
			       SFS_PROTO_F_SESSION, id),
		     what, &resp);
	if (rc)
		return rc;
	printf("%s: locked (%lld open files)\n", id, get_int(resp, SFS_PROTO_F_OPEN_FILES));
	json_decref(resp);
	return SFS_EXIT_OK;
}

static int check_lock(struct cmd *c)
{
	if (c->all && c->nargs != 1)
		return die(SFS_EXIT_USAGE, "%s: wrong number of arguments (see sessionctl --help)",
			   c->argv0);
	return SFS_EXIT_OK;
}

static int run_lock(struct cmd *c)
{
	struct target t;
	json_t *resp;
	int rc = SFS_EXIT_OK;

	if (c->all) {
		rc = call_at(c->args[0],
			     json_pack("{s:s}", SFS_PROTO_F_OP,
				       sfs_proto_op_name(SFS_PROTO_OP_LOCK_ALL)),
			     "cannot lock", &resp);
		if (rc)
			return rc;
		printf("locked %lld sessions (%lld open files)\n",
		       get_int(resp, SFS_PROTO_F_SESSIONS), get_int(resp, SFS_PROTO_F_OPEN_FILES));
		json_decref(resp);
		return SFS_EXIT_OK;
	}
	/* Each SESSIONDIR on its own: a failure is reported and the rest still locked. */
	for (int i = 0; i < c->nargs; i++) {
		int r = resolve(c->args[i], &t);

		if (r == SFS_EXIT_OK)
			r = lock_one(t.mnt, t.id);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

static int check_passwd(struct cmd *c)
{
	int rc = sfs_slot_check(c); /* --add, --remove, --add-recovery-key: keys.c */

	if (rc)
		return rc;
	/* Each is read from the first line of its file: one standard input cannot give both. */
	if (c->pwfile && c->newfile && strcmp(c->pwfile, "-") == 0 && strcmp(c->newfile, "-") == 0)
		return die(SFS_EXIT_USAGE,
			   "%s: --password-file and --new-password-file cannot both be "
			   "- (standard input)",
			   c->argv0);
	return SFS_EXIT_OK;
}

static int run_passwd(struct cmd *c)
{
	char what[64];
	json_t *req;

	if (c->add || c->add_recovery || c->remove_arg)
		return sfs_slot_run(c); /* keys.c */
	req = json_pack("{s:s, s:s, s:s%, s:s%}", SFS_PROTO_F_OP,
			sfs_proto_op_name(SFS_PROTO_OP_PASSWD), SFS_PROTO_F_SESSION, c->t.id,
			SFS_PROTO_F_PASSWORD, c->pw.buf, c->pw.len, SFS_PROTO_F_NEW_PASSWORD,
			c->newpw.buf, c->newpw.len);
	sfs_password_free(&c->pw);
	sfs_password_free(&c->newpw);
	snprintf(what, sizeof(what), "cannot change the password of %s", c->t.id);
	return call_at(c->mnt, req, what, NULL);
}

/* Ask "y" on the terminal; 1 yes, 0 no or no terminal. */
static int confirm(const char *id)
{
	char ans[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");

	if (!tty)
		return 0;
	fprintf(tty, "Delete session %s and all its files? [y/N] ", id);
	fflush(tty);
	if (!fgets(ans, sizeof(ans), tty))
		ans[0] = '\0';
	fclose(tty);
	return ans[0] == 'y' || ans[0] == 'Y';
}

static int run_delete(struct cmd *c)
{
	char what[64], path[PATH_MAX];
	struct stat st;
	int rc = SFS_EXIT_OK;

	snprintf(path, sizeof(path), "%s/%s/metadata.json", c->t.where, c->t.id);
	snprintf(what, sizeof(what), "cannot delete %s", c->t.id);
	/* A locked session's files cannot be looked up: say so before asking. */
	if (fstatat(c->m.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == EACCES)
		rc = die(SFS_EXIT_CTL_LOCKED, "%s: the session is locked (unlock it first)", what);
	mount_close(&c->m);
	if (rc)
		return rc;
	if (!c->yes && !confirm(c->t.id))
		return die(SFS_EXIT_CTL_CANCELLED, "%s: not confirmed (use --yes)", what);
	return call_at(c->mnt,
		       json_pack("{s:s, s:s}", SFS_PROTO_F_OP,
				 sfs_proto_op_name(SFS_PROTO_OP_DELETE), SFS_PROTO_F_SESSION,
				 c->t.id),
		       what, NULL);
}

/* status's STATUS, if given, is one the command sets (lib/store.h). */
static int check_status(struct cmd *c)
{
	if (c->nargs == 2 && !sfs_store_status_known(c->args[1]))
		return die(SFS_EXIT_USAGE,
			   "%s: unknown status '%s': want active, paused, completed or failed",
			   c->argv0, c->args[1]);
	return SFS_EXIT_OK;
}

/*
 * Read the session's status, or set it: the daemon replaces metadata.json
 * (checked, atomic) with "status" and "updated" set. Prints the status
 * (an empty line if none is stored), or with --json {"id","status","updated"}.
 */
static int run_status(struct cmd *c)
{
	const char *set = c->nargs == 2 ? c->args[1] : NULL;
	char what[96];
	json_t *req, *resp;
	int rc;

	mount_close(&c->m);
	req = json_pack("{s:s, s:s}", SFS_PROTO_F_OP, sfs_proto_op_name(SFS_PROTO_OP_STATUS),
			SFS_PROTO_F_SESSION, c->t.id);
	if (req && set)
		json_object_set_new(req, SFS_PROTO_F_STATUS, json_string(set));
	snprintf(what, sizeof(what),
		 set ? "cannot set the status of %s" : "cannot read the status of %s", c->t.id);
	rc = call_at(c->mnt, req, what, &resp);
	if (rc)
		return rc;
	if (c->json) {
		json_t *o = json_pack("{s:s}", SFS_PROTO_F_ID, c->t.id);

		if (o) {
			json_object_set(o, SFS_PROTO_F_STATUS,
					json_object_get(resp, SFS_PROTO_F_STATUS));
			json_object_set(o, SFS_PROTO_F_UPDATED,
					json_object_get(resp, SFS_PROTO_F_UPDATED));
			json_dumpf(o, stdout, JSON_INDENT(2));
			putchar('\n');
		}
		json_decref(o);
	} else {
		const char *st = get_str(resp, SFS_PROTO_F_STATUS);

		printf("%s\n", st ? st : "");
	}
	json_decref(resp);
	return SFS_EXIT_OK;
}

/* Each command's options; --password is listed only to be refused with a reason. */
static const struct option new_opts[] = {
	{"name", required_argument, NULL, OPT_NAME},
	{"id", required_argument, NULL, OPT_ID},
	{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
	{"password", optional_argument, NULL, OPT_PASSWORD},
	{"recovery-key", no_argument, NULL, OPT_RECOVERY_KEY},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option unlock_opts[] = {
	{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
	{"password", optional_argument, NULL, OPT_PASSWORD},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option lock_opts[] = {
	{"all", no_argument, NULL, OPT_ALL},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option list_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"sort", required_argument, NULL, OPT_SORT},
	{"status", required_argument, NULL, OPT_STATUS},
	{"archived", no_argument, NULL, OPT_ARCHIVED},
	{"locked", no_argument, NULL, OPT_LOCKED},
	{"unlocked", no_argument, NULL, OPT_UNLOCKED},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option passwd_opts[] = {
	{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
	{"password", optional_argument, NULL, OPT_PASSWORD},
	{"new-password-file", required_argument, NULL, OPT_NEW_PASSWORD_FILE},
	{"add", no_argument, NULL, OPT_ADD},
	{"remove", required_argument, NULL, OPT_REMOVE},
	{"add-recovery-key", no_argument, NULL, OPT_ADD_RECOVERY_KEY},
	{"label", required_argument, NULL, OPT_LABEL},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option delete_opts[] = {
	{"yes", no_argument, NULL, OPT_YES},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option status_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option prune_opts[] = {
	{"older-than", required_argument, NULL, OPT_OLDER_THAN},
	{"status", required_argument, NULL, OPT_STATUS},
	{"keep-last", required_argument, NULL, OPT_KEEP_LAST},
	{"archive", no_argument, NULL, OPT_ARCHIVE},
	{"delete", no_argument, NULL, OPT_DELETE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"yes", no_argument, NULL, OPT_YES},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option report_opts[] = {
	{"format", required_argument, NULL, OPT_FORMAT},
	{"output", required_argument, NULL, OPT_OUTPUT},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const struct option use_opts[] = {
	{"none", no_argument, NULL, OPT_NONE},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option keys_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option audit_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"since", required_argument, NULL, OPT_SINCE},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};
static const struct option copy_opts[] = {
	{"id", required_argument, NULL, OPT_ID},
	{"to", required_argument, NULL, OPT_TO},
	{"new-password-file", required_argument, NULL, OPT_NEW_PASSWORD_FILE},
	{"password", optional_argument, NULL, OPT_PASSWORD},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const struct option rekey_opts[] = {
	{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
	{"password", optional_argument, NULL, OPT_PASSWORD},
	{"secret-file", required_argument, NULL, OPT_SECRET_FILE},
	{"drop-slot", required_argument, NULL, OPT_DROP_SLOT},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static const struct option redact_opts[] = {
	{"pattern", required_argument, NULL, OPT_PATTERN},
	{"pattern-file", required_argument, NULL, OPT_PATTERN_FILE},
	{"files", no_argument, NULL, OPT_FILES},
	{"rule", required_argument, NULL, OPT_RULE},
	{"builtin", required_argument, NULL, OPT_BUILTIN},
	{"list-rules", no_argument, NULL, OPT_LIST_RULES},
	{"remove-rule", required_argument, NULL, OPT_REMOVE_RULE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"yes", no_argument, NULL, OPT_YES},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

const struct command sfs_cli_commands[] = {
	{.name = "new",
	 .shortopts = "h",
	 .opts = new_opts,
	 .takes = CMD_MOUNTPOINT | CMD_PASSWORD | CMD_CONFIRM,
	 .prompt = "New session password: ",
	 .check = check_new,
	 .run = run_new},
	{.name = "unlock",
	 .shortopts = "h",
	 .opts = unlock_opts,
	 .takes = CMD_SESSIONDIR | CMD_PASSWORD,
	 .prompt = "Password for %s: ",
	 .run = run_unlock},
	{.name = "lock",
	 .shortopts = "h",
	 .opts = lock_opts,
	 .takes = CMD_MANY,
	 .check = check_lock,
	 .run = run_lock},
	{.name = "list",
	 .shortopts = "h",
	 .opts = list_opts,
	 .takes = CMD_MOUNTPOINT,
	 .check = sfs_list_check,
	 .run = sfs_list_run},
	{.name = "passwd",
	 .shortopts = "h",
	 .opts = passwd_opts,
	 .takes = CMD_SESSIONDIR | CMD_PASSWORD | CMD_NEW_PASSWORD,
	 .prompt = "Current password for %s: ",
	 .check = check_passwd,
	 .run = run_passwd},
	{.name = "delete",
	 .shortopts = "hy",
	 .opts = delete_opts,
	 .takes = CMD_SESSIONDIR,
	 .run = run_delete},
	{.name = "report", /* report.c */
	 .shortopts = "ho:",
	 .opts = report_opts,
	 .takes = CMD_SESSIONDIR,
	 .check = sfs_report_check,
	 .run = sfs_report_run},
	{.name = "status",
	 .shortopts = "h",
	 .opts = status_opts,
	 .takes = CMD_SESSIONDIR | CMD_ONE_MORE,
	 .check = check_status,
	 .run = run_status},
	{.name = "prune", /* prune.c */
	 .shortopts = "hy",
	 .opts = prune_opts,
	 .takes = CMD_MOUNTPOINT,
	 .check = sfs_prune_check,
	 .run = sfs_prune_run},
	{.name = "use", /* audit.c */
	 .shortopts = "h",
	 .opts = use_opts,
	 .takes = CMD_MANY | CMD_OPTIONAL,
	 .check = sfs_use_check,
	 .run = sfs_use_run},
	{.name = "audit", /* audit.c */
	 .shortopts = "h",
	 .opts = audit_opts,
	 .takes = CMD_MANY,
	 .check = sfs_audit_check,
	 .run = sfs_audit_run},
	{.name = "keys", /* keys.c */
	 .shortopts = "h",
	 .opts = keys_opts,
	 .takes = CMD_SESSIONDIR,
	 .run = sfs_keys_run},
	{.name = "redact", /* redact.c */
	 .shortopts = "hy",
	 .opts = redact_opts,
	 .takes = CMD_SESSIONDIR,
	 .check = sfs_redact_check,
	 .run = sfs_redact_run},
	{.name = "copy", /* copy.c */
	 .shortopts = "h",
	 .opts = copy_opts,
	 .takes = CMD_SESSIONDIR | CMD_NEW_PASSWORD,
	 .check = sfs_copy_check,
	 .run = sfs_copy_run,
	 .new_prompt = "Password for the copy of %s: "},
	{.name = "rekey", /* rekey.c */
	 .shortopts = "h",
	 .opts = rekey_opts,
	 .takes = CMD_SESSIONDIR | CMD_PASSWORD,
	 .prompt = "Password for %s: ",
	 .check = sfs_rekey_check,
	 .run = sfs_rekey_run},
};
const size_t sfs_cli_ncommands = sizeof(sfs_cli_commands) / sizeof(sfs_cli_commands[0]);
