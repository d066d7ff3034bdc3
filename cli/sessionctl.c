/*
 * sessionctl.c - the sessionctl command: new, unlock, lock, list, passwd,
 * delete, report, status, prune, use, audit, redact, copy, spoken over a mount's control file
 * (doc/control.md).
 *
 * main() finds the command in commands.c's table and opens it here, the
 * same way for all (cmd_open): options, the number of operands, the mount
 * and session from MOUNTPOINT or SESSIONDIR, the proof that it is a
 * sessionfs daemon's mount of the caller or root (mount.c), the passwords.
 * Passwords never come from argv or the environment and are wiped after
 * use (jansson frees through a wiping allocator); none is asked before the
 * mount is proven, and no mount is held while one is typed. sessionctl
 * never dumps core. Knows the command line; nothing of crypto or the store
 * format.
 */
#include "sessionctl.h"
#include "store.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define CMD_DONE (-1) /* cmd_open: nothing left to do (--help): exit 0 */

int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("sessionctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* "sessionctl: ARG: not a sessionfs mount: WHY"; SFS_EXIT_CTL_NOT_MOUNT. */
int not_mount(const char *arg, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sessionctl: %s: not a sessionfs mount: ", arg);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return SFS_EXIT_CTL_NOT_MOUNT;
}

void usage(FILE *out)
{
	fputs("Usage: sessionctl COMMAND [OPTIONS] ARGS\n"
	      "  new    [--name NAME] [--id INC-xxxx] [--password-file F] [--recovery-key]\n"
	      "         MOUNTPOINT\n"
	      "  unlock [--password-file F] SESSIONDIR\n"
	      "  lock   SESSIONDIR...  |  lock --all MOUNTPOINT\n"
	      "  list   [--json] [--sort id|created|updated|size] [--status S] [--archived]\n"
	      "         [--locked|--unlocked] MOUNTPOINT\n"
	      "  passwd [--password-file F] [--new-password-file F] SESSIONDIR\n"
	      "  passwd --add [--label TEXT] [--password-file F] [--new-password-file F] "
	      "SESSIONDIR\n"
	      "  passwd --add-recovery-key [--label TEXT] [--password-file F] SESSIONDIR\n"
	      "  passwd --remove N [--password-file F] SESSIONDIR   (proven by another slot)\n"
	      "  keys   [--json] SESSIONDIR\n"
	      "  delete [--yes] SESSIONDIR\n"
	      "  report [--format md|json|html] [-o FILE] SESSIONDIR\n"
	      "  status [--json] SESSIONDIR [active|paused|completed|failed]\n"
	      "  prune  [--older-than DURATION] [--status S] [--keep-last N]\n"
	      "         [--archive|--delete] [--dry-run] [--yes] MOUNTPOINT\n"
	      "  use    SESSIONDIR  |  use --none [MOUNTPOINT]  |  use [--json] [MOUNTPOINT]\n"
	      "  audit  [--json] [--since T] MOUNTPOINT|STORE\n"
	      "  redact --pattern REGEX | --pattern-file F [--files] [--dry-run] [--yes] [--json]\n"
	      "         SESSIONDIR\n"
	      "  redact --rule NAME=REGEX | --builtin NAME | --remove-rule NAME | --list-rules\n"
	      "         [--json] SESSIONDIR\n"
	      "  copy   [--id INC-xxxx] [--to MOUNTPOINT] [--new-password-file F] [--json]\n"
	      "         SESSIONDIR\n"
	      "  rekey  [--password-file F] [--secret-file N=F]... [--drop-slot N]... [--json]\n"
	      "         SESSIONDIR\n"
	      "SESSIONDIR is MOUNTPOINT/sessions/INC-xxxx (or archive/INC-xxxx).\n"
	      "Passwords are asked on the terminal without echo, or read from the first\n"
	      "line of --password-file F (- for standard input); never from arguments.\n"
	      "Exit codes: see sessionctl(1).\n",
	      out);
}

/* A getopt failure (opterr is off: the message is ours, "sessionctl: ..."). */
static int bad_option(char **argv, int c)
{
	if (c == OPT_PASSWORD)
		return die(SFS_EXIT_USAGE,
			   "%s: passwords are never taken from the command line: use "
			   "--password-file F or the prompt",
			   argv[0]);
	return die(SFS_EXIT_USAGE,
		   "%s: unknown option or missing argument in '%s' (see sessionctl "
		   "--help)",
		   argv[0], argv[optind - 1]);
}

/* Read a password or explain why not; 0 or an exit code. */
static int get_password(struct sfs_password *pw, const char *file, const char *prompt, int confirm)
{
	int rc = sfs_password_read(pw, file, prompt, confirm);

	switch (rc) {
	case 0:
		return SFS_EXIT_OK;
	case -ENOTTY:
		return die(SFS_EXIT_CTL_BAD_PASSWORD,
			   "no terminal to ask the password on: use --password-file");
	case -EINVAL:
		return die(SFS_EXIT_CTL_BAD_PASSWORD, "empty password");
	case -EKEYREJECTED:
		return die(SFS_EXIT_CTL_BAD_PASSWORD, "the two passwords differ");
	case -EMSGSIZE:
		return die(SFS_EXIT_CTL_BAD_PASSWORD, "password longer than %d bytes",
			   SFS_PASSWORD_MAX - 1);
	default:
		return die(SFS_EXIT_CTL_BAD_PASSWORD, "cannot read the password from %s: %s",
			   file ? file : "tty", strerror(-rc));
	}
}

/*
 * The opening every command shares, in this order (each step's failure is
 * the exit code): options; the number of operands; the command's own
 * checks; the session a SESSIONDIR names and its mount; the proof of the
 * mount (held in c->m); the passwords, with the mount let go first (an
 * unmount while one is typed is not refused as busy: the request proves the
 * mount again, call_at). SFS_EXIT_OK, CMD_DONE after --help, or an exit
 * code; cmd_close @c in every case.
 */
static int cmd_open(const struct command *def, int argc, char **argv, struct cmd *c)
{
	char prompt[64];
	int ch, rc;

	memset(c, 0, sizeof(*c));
	c->m.fd = -1;
	c->argv0 = argv[0];
	while ((ch = getopt_long(argc, argv, def->shortopts, def->opts, NULL)) != -1) {
		switch (ch) {
		case OPT_NAME:
			c->name = optarg;
			break;
		case OPT_ID:
			c->id = optarg;
			break;
		case OPT_PASSWORD_FILE:
			c->pwfile = optarg;
			break;
		case OPT_NEW_PASSWORD_FILE:
			c->newfile = optarg;
			break;
		case OPT_ALL:
			c->all = true;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_YES:
			c->yes = true;
			break;
		case OPT_FORMAT:
			c->format = optarg;
			break;
		case OPT_OUTPUT:
			c->output = optarg;
			break;
		case OPT_SINCE:
			c->since = optarg;
			break;
		case OPT_NONE:
			c->none = true;
			break;
		case OPT_TO:
			c->to = optarg;
			break;
		case OPT_SECRET_FILE:
		case OPT_DROP_SLOT:
			if ((ch == OPT_SECRET_FILE ? c->nsecret_args : c->ndrop_args) ==
			    CMD_REPEAT_MAX)
				return die(SFS_EXIT_USAGE, "%s: too many %s options", argv[0],
					   ch == OPT_SECRET_FILE ? "--secret-file" : "--drop-slot");
			if (ch == OPT_SECRET_FILE)
				c->secret_args[c->nsecret_args++] = optarg;
			else
				c->drop_args[c->ndrop_args++] = optarg;
			break;
		case OPT_SORT:
			c->sort = optarg;
			break;
		case OPT_STATUS:
			c->status = optarg;
			break;
		case OPT_ARCHIVED:
			c->archived = true;
			break;
		case OPT_LOCKED:
			c->locked = true;
			break;
		case OPT_UNLOCKED:
			c->unlocked = true;
			break;
		case OPT_OLDER_THAN:
			c->older_than = optarg;
			break;
		case OPT_KEEP_LAST:
			c->keep_last_arg = optarg;
			break;
		case OPT_ARCHIVE:
			c->archive = true;
			break;
		case OPT_DELETE:
			c->delete = true;
			break;
		case OPT_DRY_RUN:
			c->dry_run = true;
			break;
		case OPT_ADD:
			c->add = true;
			break;
		case OPT_REMOVE:
			c->remove_arg = optarg;
			break;
		case OPT_ADD_RECOVERY_KEY:
			c->add_recovery = true;
			break;
		case OPT_LABEL:
			c->label = optarg;
			break;
		case OPT_RECOVERY_KEY:
			c->recovery_key = true;
			break;
		case OPT_PATTERN:
			c->pattern = optarg;
			break;
		case OPT_PATTERN_FILE:
			c->pattern_file = optarg;
			break;
		case OPT_FILES:
			c->files = true;
			break;
		case OPT_RULE:
			c->rule = optarg;
			break;
		case OPT_BUILTIN:
			c->builtin = optarg;
			break;
		case OPT_LIST_RULES:
			c->list_rules = true;
			break;
		case OPT_REMOVE_RULE:
			c->remove_rule = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			return CMD_DONE;
		default:
			return bad_option(argv, ch);
		}
	}
	c->args = argv + optind;
	c->nargs = argc - optind;
	if ((def->takes & CMD_MANY)	  ? c->nargs < !(def->takes & CMD_OPTIONAL)
	    : (def->takes & CMD_ONE_MORE) ? c->nargs < 1 || c->nargs > 2
					  : c->nargs != 1)
		return die(SFS_EXIT_USAGE, "%s: wrong number of arguments (see sessionctl --help)",
			   argv[0]);
	if (def->check) {
		rc = def->check(c);
		if (rc)
			return rc;
	}
	if (def->takes & CMD_SESSIONDIR) {
		rc = resolve(c->args[0], &c->t);
		if (rc)
			return rc;
		c->mnt = c->t.mnt;
	} else if (def->takes & CMD_MOUNTPOINT) {
		c->mnt = c->args[0];
	}
	if (c->mnt) {
		rc = mount_open(c->mnt, &c->m);
		if (rc)
			return rc;
	}
	if (def->takes & CMD_PASSWORD) {
		mount_close(&c->m);
		snprintf(prompt, sizeof(prompt), def->prompt, c->t.id);
		rc = get_password(&c->pw, c->pwfile, prompt, !!(def->takes & CMD_CONFIRM));
		if (rc)
			return rc;
	}
	if ((def->takes & CMD_NEW_PASSWORD) && !c->no_new_password) {
		mount_close(&c->m); /* none held while a password is typed */
		snprintf(prompt, sizeof(prompt),
			 def->new_prompt ? def->new_prompt : "New password for %s: ", c->t.id);
		return get_password(&c->newpw, c->newfile, prompt, 1);
	}
	return SFS_EXIT_OK;
}

/* Let go of what cmd_open took: the mount, the passwords (wiped). */
static void cmd_close(struct cmd *c)
{
	mount_close(&c->m);
	sfs_password_free(&c->pw);
	sfs_password_free(&c->newpw);
	sfs_password_free(&c->pat);
}

static int run(const struct command *def, int argc, char **argv)
{
	struct cmd c;
	int rc = cmd_open(def, argc, argv, &c);

	if (rc == SFS_EXIT_OK)
		rc = def->run(&c);
	else if (rc == CMD_DONE)
		rc = SFS_EXIT_OK;
	cmd_close(&c);
	return rc;
}

int main(int argc, char **argv)
{
	/* It holds passwords: no core file, no ptrace by other users, from the start. */
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	prctl(PR_SET_DUMPABLE, 0);
	if (argc < 2)
		return die(SFS_EXIT_USAGE, "missing command (see sessionctl --help)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(stdout), SFS_EXIT_OK;
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return printf("sessionctl %s\n", SFS_VERSION), SFS_EXIT_OK;
	opterr = 0;
	if (sodium_init() < 0)
		return die(SFS_EXIT_FAIL, "cannot initialise libsodium");
	sfs_store_json_wipe_on_free();
	for (size_t i = 0; i < sfs_cli_ncommands; i++)
		if (strcmp(argv[1], sfs_cli_commands[i].name) == 0)
			return run(&sfs_cli_commands[i], argc - 1, argv + 1);
	return die(SFS_EXIT_USAGE, "unknown command '%s' (see sessionctl --help)", argv[1]);
}
