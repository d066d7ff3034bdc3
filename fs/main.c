/*
 * main.c - sessionfs: parse options, open the store, mount, serve.
 *
 * All wiring happens here: the store, the fixed inodes, the notifier thread,
 * the multi-threaded FUSE loop, and the wipe of every key at unmount.
 */
#include "exitcode.h"
#include "fs.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

struct sfs_fs *sfs;
static struct sfs_fs the_fs;

enum {
	KEY_ALLOW_OTHER = 1,
	KEY_DEFAULT_PERMISSIONS,
	KEY_DEV,
	KEY_NODEV,
	KEY_SUID,
	KEY_NOSUID,
	KEY_ALLOW_DEV,
	KEY_ALLOW_SUID,
};

/*
 * Set-id and device files. The mount is always nosuid,nodev unless asked
 * otherwise with an option only sessionfs knows: mount.fuse3 (behind
 * `mount -t fuse.sessionfs` and fstab lines) passes mount(8)'s defaults
 * "dev,suid" to every daemon, so a plain "dev" or "suid" says nothing about
 * what the user wants. They are dropped here (and logged), "nodev"/"nosuid"
 * win over the opt-ins, and main() hands libfuse the outcome as the last
 * word of the option list.
 */
static struct {
	bool allow_dev, allow_suid; /* -o sfs_allow_dev, -o sfs_allow_suid */
	bool nodev, nosuid;	    /* -o nodev, -o nosuid: always honoured */
	bool saw_dev, saw_suid;	    /* -o dev, -o suid: ignored */
} setid;

#define SFS_OPT(t, p, v)                                                                           \
	{                                                                                          \
		t, offsetof(struct sfs_opts, p), v                                                 \
	}
static const struct fuse_opt sfs_opt_spec[] = {
	SFS_OPT("idle_lock=%s", idle_str, 0),
	SFS_OPT("idle_waits_for_close", idle_waits, 1),
	SFS_OPT("max_unlock=%s", max_unlock_str, 0),
	SFS_OPT("xattr", xattr, 1),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("dev", KEY_DEV),
	FUSE_OPT_KEY("nodev", KEY_NODEV),
	FUSE_OPT_KEY("suid", KEY_SUID),
	FUSE_OPT_KEY("nosuid", KEY_NOSUID),
	FUSE_OPT_KEY("sfs_allow_dev", KEY_ALLOW_DEV),
	FUSE_OPT_KEY("sfs_allow_suid", KEY_ALLOW_SUID),
	FUSE_OPT_END,
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sessionfs [-f] [-o OPT[,OPT...]] STORE MOUNTPOINT\n"
		"Mount the sessionfs store STORE on MOUNTPOINT.\n\n"
		"sessionfs options:\n"
		"    -o idle_lock=DURATION  lock sessions with no operation for this long, open\n"
		"                           files or not (default 15m; 0 = never; a whole\n"
		"                           number of seconds, or with a unit s, m, h, d, w)\n"
		"    -o idle_waits_for_close\n"
		"                           an open file keeps its session from idle_lock\n"
		"    -o max_unlock=DURATION lock sessions unlocked this long, busy or not, open\n"
		"                           files or not (default 0: no limit)\n"
		"    -o allow_other         let other users in (implies default_permissions:\n"
		"                           the kernel checks the files' modes and owners)\n"
		"    -o sfs_allow_dev       let device nodes in sessions be opened (root only)\n"
		"    -o sfs_allow_suid      honour set-user-ID and set-group-ID bits (root only)\n"
		"                           without these two the mount is always nodev,nosuid;\n"
		"                           a plain dev or suid (mount(8)'s defaults) is ignored\n"
		"    -o xattr               user.* extended attributes inside sessions, stored\n"
		"                           encrypted (off by default: with it, the kernel asks\n"
		"                           the daemon once more before every write)\n\n");
}

/* Say which of mount(8)'s default "dev" and "suid" were dropped, if any. */
static void log_setid_ignored(void)
{
	bool dev = setid.saw_dev && !setid.allow_dev;
	bool suid = setid.saw_suid && !setid.allow_suid;

	if (dev || suid)
		sfs_syslog(LOG_NOTICE,
			   "ignored -o %s%s%s (mount(8)'s defaults): sessionfs mounts nodev,nosuid "
			   "unless given -o sfs_allow_dev or -o sfs_allow_suid",
			   dev ? "dev" : "", dev && suid ? "," : "", suid ? "suid" : "");
}

/*
 * Is a sessionfs mounted on @dir already? A second mount would stack on it
 * and hide it: lock --all would reach only the upper one, and the lower
 * one's sessions would stay unlocked out of reach. Read from
 * /proc/self/mountinfo: the mount point (field 5) and the type after " - ".
 */
static bool sessionfs_on(const char *dir)
{
	char *real = realpath(dir, NULL), *line = NULL, mnt[PATH_MAX], type[64];
	size_t cap = 0;
	bool found = false;
	FILE *f = real ? fopen("/proc/self/mountinfo", "re") : NULL;

	while (f && !found && getline(&line, &cap, f) > 0) {
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", type) != 1)
			continue;
		sfs_mountinfo_unescape(mnt);
		found = strcmp(mnt, real) == 0 && strcmp(type, SFS_PROTO_FSTYPE) == 0;
	}
	if (f)
		fclose(f);
	free(line);
	free(real);
	return found;
}

/*
 * First non-option is STORE; the second (MOUNTPOINT) is checked here, so a
 * missing one gets our message and exit code, and then left for libfuse; a
 * third is a usage error.
 */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct sfs_opts *o = data;
	struct stat st;

	(void)outargs;
	switch (key) {
	/* Both stay for libfuse; noted to add the second to the first. */
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		o->default_permissions = 1;
		return 1;
	/* These go; main() adds the outcome (see setid). */
	case KEY_DEV:
		setid.saw_dev = true;
		return 0;
	case KEY_NODEV:
		setid.nodev = true;
		return 0;
	case KEY_SUID:
		setid.saw_suid = true;
		return 0;
	case KEY_NOSUID:
		setid.nosuid = true;
		return 0;
	case KEY_ALLOW_DEV:
		setid.allow_dev = true;
		return 0;
	case KEY_ALLOW_SUID:
		setid.allow_suid = true;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		break;
	default:
		return 1;
	}
	if (!o->store) {
		o->store = strdup(arg);
		return 0;
	}
	if (o->mountpoint_seen++) {
		fprintf(stderr,
			"sessionfs: too many arguments: '%s' (want STORE MOUNTPOINT; see "
			"sessionfs --help)\n",
			arg);
		return -1;
	}
	const char *why = NULL;

	/*
	 * mount.fuse3's drop_privileges mounts by itself (dev,suid) and
	 * passes the descriptor as /dev/fd/N: refused.
	 */
	if (strncmp(arg, "/dev/fd/", 8) == 0)
		why = "a mounted descriptor (drop_privileges) is not supported: "
		      "sessionfs makes its own mounts, nosuid,nodev";
	else if (stat(arg, &st) < 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = strerror(ENOTDIR);
	if (why) {
		fprintf(stderr, "sessionfs: cannot mount on %s: %s\n", arg, why);
		o->mountpoint_bad = SFS_EXIT_FS_MOUNT;
	} else if (sessionfs_on(arg)) {
		fprintf(stderr,
			"sessionfs: cannot mount on %s: a sessionfs is mounted there "
			"already (unmount it first with fusermount3 -u)\n",
			arg);
		o->mountpoint_bad = SFS_EXIT_FS_BUSY;
	}
	return 1;
}

/* -o NAME=VALUE as a duration into *@secs (@def without it); 0, or -EINVAL said. */
static int parse_duration_opt(const char *name, const char *value, long long def, double *secs)
{
	long long v = def;

	if (value && sfs_parse_duration(value, 0, &v) < 0) {
		fprintf(stderr,
			"sessionfs: bad %s '%s': want a whole number of seconds or one with a "
			"unit (90s, 15m, 2h, 1d, 2w), or 0\n",
			name, value);
		return -EINVAL;
	}
	*secs = (double)v;
	return 0;
}

/*
 * No core dumps (they would hold keys) and room for a large descriptor
 * cache: the inodes the kernel holds keep up to half the descriptor limit
 * open (inode_fd.c), so the more the fewer reopens; any limit works. Root may raise the hard limit
 * up to fs.nr_open; anyone else gets the soft limit raised to the hard one.
 */
static void harden(void)
{
	struct rlimit rl = {0, 0};
	unsigned long nr_open = 0;
	FILE *f;

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	f = fopen("/proc/sys/fs/nr_open", "re");
	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (nr_open > rl.rlim_max) {
		struct rlimit up = {nr_open, nr_open};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static void fixed_inode(struct sfs_inode *in, enum sfs_kind kind, int fd)
{
	in->kind = kind;
	in->fd = fd;
	in->type = kind == SFS_INODE_CTL ? S_IFREG : kind == SFS_INODE_CURRENT ? S_IFLNK : S_IFDIR;
	in->nlookup = 1;
	pthread_mutex_init(&in->mu, NULL);
	pthread_rwlock_init(&in->io, NULL);
}

/* Open the store and set up the mount's state; an exit code. */
static int setup(const char *store)
{
	char why[512];
	int rc;

	sfs->store_path = store;
	rc = sfs_store_open(store, &sfs->storefd, &sfs->cfg, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "sessionfs: cannot mount %s: %s\n", store, why);
		if (rc == -EPROTONOSUPPORT)
			return SFS_EXIT_FS_NEWER;
		return rc == -ENOENT || rc == -ENOTDIR || rc == -EUCLEAN ? SFS_EXIT_FS_NO_STORE
									 : SFS_EXIT_FAIL;
	}
	if (!sfs_cipher_available(sfs->cfg.cipher)) {
		sfs_syslog(LOG_NOTICE,
			   "the store makes %s sessions, which this CPU cannot run: new sessions "
			   "made by this mount use xchacha20poly1305",
			   sfs_cipher_name(sfs->cfg.cipher));
		sfs->cfg.cipher = SFS_CIPHER_XCHACHA;
	}
	sfs->topfd[0] = openat(sfs->storefd, SFS_SESSIONS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	sfs->topfd[1] = openat(sfs->storefd, SFS_ARCHIVE_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sfs->topfd[0] < 0 || sfs->topfd[1] < 0) {
		fprintf(stderr, "sessionfs: cannot open %s/sessions or archive: %s\n", store,
			strerror(errno));
		return SFS_EXIT_FS_NO_STORE;
	}
	sfs->owner = getuid();
	sfs->owner_gid = getgid();
	sfs->timeout = 1.0;
	fixed_inode(&sfs->root, SFS_INODE_ROOT, sfs->storefd);
	fixed_inode(&sfs->top[0], SFS_INODE_TOP, sfs->topfd[0]);
	fixed_inode(&sfs->top[1], SFS_INODE_TOP, sfs->topfd[1]);
	fixed_inode(&sfs->ctl, SFS_INODE_CTL, -1);
	fixed_inode(&sfs->current, SFS_INODE_CURRENT, -1);
	pthread_mutex_init(&sfs->itable_mu, NULL);
	pthread_mutex_init(&sfs->sess_mu, NULL);
	if (sfs_itable_init() < 0) {
		fprintf(stderr, "sessionfs: out of memory\n");
		return SFS_EXIT_FAIL;
	}
	sfs_fdc_init(); /* after harden(): half the descriptor limit (inode_fd.c) */
	return SFS_EXIT_OK;
}

static int serve(struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *config;
	int rc;

	rc = sfs_notify_start();
	if (rc < 0) {
		sfs_syslog(LOG_ERR, "cannot start the notifier thread: %s", strerror(-rc));
		return SFS_EXIT_FAIL;
	}
	if (cmd->singlethread) {
		rc = fuse_session_loop(sfs->se);
	} else if (!cmd->clone_fd) {
		rc = sfs_loop_run(cmd->max_threads <= 100000 ? (int)cmd->max_threads : 0);
	} else {
		config = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(config, cmd->clone_fd);
		if (cmd->max_threads > 0 && cmd->max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(config, cmd->max_threads);
		if (cmd->max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(config, cmd->max_idle_threads);
		rc = fuse_session_loop_mt(sfs->se, config);
		fuse_loop_cfg_destroy(config);
	}
	sfs_notify_stop();
	return rc == 0 ? SFS_EXIT_OK : SFS_EXIT_FAIL;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	char *store = NULL, *fsname = NULL, *optstr = NULL;
	int rc = SFS_EXIT_USAGE;
	bool add_dp;

	sfs = &the_fs;
	sfs->storefd = sfs->topfd[0] = sfs->topfd[1] = -1;
	if (fuse_opt_parse(&args, &sfs->opts, sfs_opt_spec, opt_proc) == -1)
		goto out;
	if (sfs->opts.mountpoint_bad) {
		rc = sfs->opts.mountpoint_bad;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out;
	if (cmd.show_help) {
		usage(stdout);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		rc = SFS_EXIT_OK;
		goto out;
	}
	if (cmd.show_version) {
		printf("sessionfs %s (libfuse %s)\n", SFS_VERSION, fuse_pkgversion());
		rc = SFS_EXIT_OK;
		goto out;
	}
	if (!sfs->opts.store || !cmd.mountpoint) {
		usage(stderr);
		goto out;
	}
	if (parse_duration_opt("idle_lock", sfs->opts.idle_str, 15 * 60, &sfs->opts.idle_lock) <
		    0 ||
	    parse_duration_opt("max_unlock", sfs->opts.max_unlock_str, 0, &sfs->opts.max_unlock) <
		    0)
		goto out;
	rc = SFS_EXIT_FAIL;
	if (sfs_crypto_init() < 0) {
		fprintf(stderr, "sessionfs: cannot initialise libsodium\n");
		goto out;
	}
	sfs_store_json_wipe_on_free(); /* documents and requests carry plaintext */
	harden();
	store = realpath(sfs->opts.store, NULL);
	rc = setup(store ? store : sfs->opts.store);
	if (rc != SFS_EXIT_OK)
		goto out;
	rc = SFS_EXIT_FAIL;
	/*
	 * sessionfs checks no permission itself: with allow_other alone, any
	 * user could read any file of an unlocked session. The kernel checks
	 * them with default_permissions, so allow_other brings it along.
	 */
	add_dp = sfs->opts.allow_other && !sfs->opts.default_permissions;
	if (add_dp)
		sfs->opts.default_permissions = 1;
	/*
	 * Last in the list, so that nothing before it counts: libfuse applies
	 * its mount flags in order (and starts from nosuid,nodev).
	 */
	setid.allow_dev = setid.allow_dev && !setid.nodev;
	setid.allow_suid = setid.allow_suid && !setid.nosuid;
	/* Only the store path is escaped: subtype must stay an option of its own. */
	if (asprintf(&fsname, "fsname=%s", sfs->store_path) < 0 ||
	    fuse_opt_add_opt_escaped(&optstr, fsname) < 0 ||
	    fuse_opt_add_opt(&optstr, "subtype=sessionfs") < 0 ||
	    (add_dp && fuse_opt_add_opt(&optstr, "default_permissions") < 0) ||
	    fuse_opt_add_opt(&optstr, setid.allow_dev ? "dev" : "nodev") < 0 ||
	    fuse_opt_add_opt(&optstr, setid.allow_suid ? "suid" : "nosuid") < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, optstr) < 0)
		goto out;
	sfs->se = fuse_session_new(&args, &sfs_ops, sizeof(sfs_ops), NULL);
	if (!sfs->se) {
		/* libfuse said which: an unknown or malformed option (or no memory). */
		fprintf(stderr, "sessionfs: cannot mount %s: bad options (see sessionfs --help)\n",
			sfs->store_path);
		rc = SFS_EXIT_USAGE;
		goto out;
	}
	if (fuse_set_signal_handlers(sfs->se) != 0)
		goto out_destroy;
	if (fuse_session_mount(sfs->se, cmd.mountpoint) != 0) {
		rc = SFS_EXIT_FS_MOUNT;
		goto out_signals;
	}
	sfs_log_init(cmd.foreground);
	/* The mount is ready before the parent returns; threads start after the fork. */
	fuse_daemonize(cmd.foreground);
	sfs_syslog(LOG_INFO, "mounted %s on %s (%s,%s)", sfs->store_path, cmd.mountpoint,
		   setid.allow_dev ? "dev" : "nodev", setid.allow_suid ? "suid" : "nosuid");
	log_setid_ignored();
	sfs_audit("mount", NULL, NULL, NULL);
	rc = serve(&cmd);
	fuse_session_unmount(sfs->se);
out_signals:
	fuse_remove_signal_handlers(sfs->se);
out_destroy:
	fuse_session_destroy(sfs->se);
out:
	/* Handles whose RELEASE the unmount dropped: their buffers are wiped. */
	sfs_fh_reap_all();
	/* Every key is wiped here, whatever ended the loop. */
	sfs_session_lock_all_final();
	if (sfs->itable)
		sfs_itable_destroy();
	for (int i = 0; i < 2; i++)
		if (sfs->topfd[i] >= 0)
			close(sfs->topfd[i]);
	if (sfs->storefd >= 0)
		close(sfs->storefd);
	free(fsname);
	free(optstr);
	free(store);
	free(sfs->opts.store);
	free(sfs->opts.idle_str);
	free(sfs->opts.max_unlock_str);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}
