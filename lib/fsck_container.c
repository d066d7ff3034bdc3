/*
 * fsck_container.c - fsck.sessionfs's look at one session container: its
 * layout (key, lock, root), its key file's structure and parameters, its
 * busy lock (a session a running mount holds is skipped, never touched),
 * the unwrap of its key when the caller has the password, and what unlock
 * left (events.kept-* files) or an interrupted key-file or rules-file write
 * (.tmp.key.*, .tmp.rules.*). The tree itself is fsck_tree.c's.
 *
 * Store layer (lib/fsck.h): key files are parsed by format.c, the lock is
 * store.c's. Nothing of terminals, JSON output or FUSE.
 */
#include "format.h"
#include "fsck.h"
#include "rules.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fix_lock(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	int fd = openat(s->cfd, SFS_LOCK_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0600);

	(void)c;
	(void)arg;
	if (fd < 0)
		return sfs_neg_errno();
	close(fd);
	return sfs_fsync_dirfd(s->cfd);
}

/* The key file, without a password: structure and parameters. 0 if usable. */
static int check_keyfile(struct sfs_fsck_sess *s, char *path)
{
	unsigned char buf[SFS_KEYFILE_MAX + 1];
	struct sfs_keyfile info;
	ssize_t n = sfs_read_small(s->cfd, SFS_KEY_NAME, buf, sizeof(buf));
	int rc;

	if (n < 0) {
		sfs_fsck_add(s->c, s, path, false, "key", NULL, NULL, NULL,
			     "the key file cannot be read (%s): the session cannot be unlocked",
			     strerror((int)-n));
		return (int)n;
	}
	rc = sfs_fmt_keyfile_info(buf, (size_t)n, &info);
	if (rc == -EPROTONOSUPPORT) {
		sfs_fsck_add_state(s->c, s, path, false, "key-newer", SFS_FSCK_NOTE, 0,
				   "the key file has a newer format (version, algorithm or "
				   "cipher) than this fsck reads: its session is not checked");
		return rc;
	}
	if (rc < 0) {
		sfs_fsck_add(s->c, s, path, false, "key", NULL, NULL, NULL,
			     "not a key file (%zd bytes, wrong magic or length): the session "
			     "cannot be unlocked",
			     n);
		return rc;
	}
	/* Every password slot (a version 3 file has up to 8; recovery slots have no cost). */
	for (unsigned int i = 0; i < info.nslots; i++) {
		const struct sfs_keyslot *k = &info.slots[i];

		if (k->kdf != SFS_SLOT_ARGON2ID)
			continue;
		if (k->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
		    k->opslimit > crypto_pwhash_OPSLIMIT_MAX ||
		    k->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
		    k->memlimit > crypto_pwhash_MEMLIMIT_MAX) {
			sfs_fsck_add(
				s->c, s, path, false, "key", NULL, NULL, NULL,
				"damaged key file: Argon2id parameters out of bounds (opslimit "
				"%llu, memlimit %llu)",
				(unsigned long long)k->opslimit, (unsigned long long)k->memlimit);
			return -EUCLEAN;
		}
	}
	return 0;
}

/* Unwrap the session key with the caller's password: 0 (s->keys set), or reported. */
static int unlock(struct sfs_fsck_sess *s, const char *pw, size_t pwlen, char *path)
{
	unsigned char buf[SFS_KEYFILE_MAX + 1];
	unsigned char *master = sodium_malloc(SFS_KEY_BYTES);
	struct sfs_keyfile info;
	ssize_t n;
	int rc;

	if (!master)
		return -ENOMEM;
	n = sfs_read_small(s->cfd, SFS_KEY_NAME, buf, sizeof(buf));
	rc = n < 0 ? (int)n : sfs_fmt_keyfile_unwrap(master, buf, (size_t)n, pw, pwlen, &info);
	if (rc == 0) {
		s->keys = sfs_keys_new(master, (enum sfs_cipher)info.cipher);
		if (!s->keys)
			rc = -ENOMEM;
	}
	sodium_free(master);
	if (rc == -EKEYREJECTED)
		sfs_fsck_add_state(s->c, s, path, false, "password", SFS_FSCK_FAILED, rc,
				   "wrong password: the session's content is not authenticated");
	else if (rc == -ENOTSUP)
		sfs_fsck_add_state(s->c, s, path, false, "cipher", SFS_FSCK_FAILED, rc,
				   "this CPU cannot run the session's content cipher: its content "
				   "is not authenticated");
	else if (rc < 0)
		sfs_fsck_add_state(s->c, s, path, false, "password", SFS_FSCK_FAILED, rc,
				   "the session key cannot be unwrapped: %s", strerror(-rc));
	return rc;
}

/*
 * The temporary of an atomic replacement of the container's file @file
 * (util.c's sfs_write_atomic: ".tmp.<file>.<pid>.<seq>")?
 */
static bool is_tmp_of(const char *name, const char *file)
{
	size_t n = strlen(file);

	return strncmp(name, ".tmp.", 5) == 0 && strncmp(name + 5, file, n) == 0 &&
	       name[5 + n] == '.';
}

/*
 * Is a key-file write under way (keyfile.c: its writer holds an OFD write
 * lock on the key file from its read to its rename, and its temporary exists
 * only then)? 1 yes, 0 no, or -errno. With @fd (not NULL), the key file is
 * left open in *@fd with that lock taken, so that no write starts until it is
 * closed.
 */
static int keyfile_edited(int cfd, int *fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int kfd = openat(cfd, SFS_KEY_NAME, (fd ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);

	if (kfd < 0)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	if (!fd) {
		/* F_OFD_GETLK changes nothing (-n) and needs no write access. */
		int rc = fcntl(kfd, F_OFD_GETLK, &fl) < 0 ? sfs_neg_errno() : fl.l_type != F_UNLCK;

		close(kfd);
		return rc;
	}
	if (fcntl(kfd, F_OFD_SETLK, &fl) < 0) {
		int rc = errno == EAGAIN || errno == EACCES ? 1 : sfs_neg_errno();

		close(kfd);
		return rc;
	}
	*fd = kfd;
	return 0;
}

/* What removing a container's leftover temporary needs. */
struct tmp_arg {
	int cfd;
	const char *name;
	bool key; /* a key file's: removed under the key file's edit lock */
};

static int fix_tmp(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct tmp_arg *a = arg;
	int kfd = -1, rc = 0;

	(void)c;
	(void)s;
	if (a->key) {
		rc = keyfile_edited(a->cfd, &kfd);
		if (rc)
			return rc < 0 ? rc : -EBUSY; /* a write began since: its own temporary */
	}
	if (unlinkat(a->cfd, a->name, 0) < 0 && errno != ENOENT)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fsync_dirfd(a->cfd);
	if (kfd >= 0)
		close(kfd);
	return rc;
}

/*
 * A temporary @nm of a key-file or rules-file replacement (@key says which)
 * in the container: an interrupted write, the file in place whole (the old
 * one: the change it was for was not made). A key-file temporary whose
 * write is still under way (its edit lock is held: a running mount changes
 * a locked session's key slots) is left.
 */
static void check_tmp(struct sfs_fsck_sess *s, const char *nm, const char *path, bool key)
{
	struct tmp_arg a = {s->cfd, nm, key};

	if (key && keyfile_edited(s->cfd, NULL) == 1) {
		sfs_fsck_add_state(s->c, s, path, false, "busy", SFS_FSCK_SKIPPED, 0,
				   "a key-file write under way (its edit lock is held): left as "
				   "it is");
		return;
	}
	if (key)
		sfs_fsck_add(s->c, s, path, false, "leftover", "remove it", fix_tmp, &a,
			     "an interrupted key-file write (a key slot change such as "
			     "`sessionctl passwd`, killed before its rename) left this temporary: "
			     "the key file in place is whole and that change was not made; "
			     "nothing reads it");
	else
		sfs_fsck_add(s->c, s, path, false, "leftover", "remove it", fix_tmp, &a,
			     "an interrupted write of the redaction rules (`sessionctl redact`, "
			     "killed before its rename) left this temporary: the rules file in "
			     "place is whole and that change was not made; nothing reads it");
}

/*
 * What else a container holds: events.kept-* files (the bytes unlock cut off
 * events.jsonl) and leftover temporaries of its key and rules files.
 */
static void check_container_entries(struct sfs_fsck_sess *s)
{
	int fd = openat(s->cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char path[600];

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		struct stat st;

		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
		    strcmp(nm, SFS_KEY_NAME) == 0 || strcmp(nm, SFS_LOCK_NAME) == 0 ||
		    strcmp(nm, SFS_ROOT_NAME) == 0 || strcmp(nm, SFS_RULES_NAME) == 0)
			continue; /* the rule file opens with the key: unlock checks it */
		snprintf(path, sizeof(path), "%s/%s", s->name, nm);
		if (strncmp(nm, "events.kept-", 12) == 0 && strlen(nm) > 9 &&
		    strcmp(nm + strlen(nm) - 9, ".appended") == 0) {
			sfs_fsck_add_state(
				s->c, s, path, false, "kept", SFS_FSCK_NOTE, 0,
				"bytes an unlock cut off events.jsonl, whose whole lines "
				"fsck re-appended; remove it when you no longer need it");
			continue;
		}
		if (strncmp(nm, "torn.kept-", 10) == 0) {
			sfs_fsck_add_state(
				s->c, s, path, false, "kept", SFS_FSCK_NOTE, 0,
				"the stored bytes of a torn last block that fsck put back from "
				"its tail record (ciphertext that failed authentication); remove "
				"it when you no longer need it");
			continue;
		}
		if ((is_tmp_of(nm, SFS_KEY_NAME) || is_tmp_of(nm, SFS_RULES_NAME)) &&
		    fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
			check_tmp(s, nm, path, is_tmp_of(nm, SFS_KEY_NAME));
			continue;
		}
		if (strncmp(nm, "events.kept-", 12) == 0 &&
		    fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
			if (s->rootfd >= 0)
				sfs_fsck_kept(s, nm);
			continue;
		}
		sfs_fsck_add_state(s->c, s, path, false, "unknown", SFS_FSCK_NOTE, 0,
				   "an entry sessionfs never makes in a container: ignored, left "
				   "as it is");
	}
	closedir(d);
}

int sfs_fsck_container(struct sfs_fsck *c, int parentfd, const char *area, const char *id)
{
	struct sfs_fsck_sess s = {.c = c, .id = id, .cfd = -1, .rootfd = -1};
	char path[600];
	const char *pw;
	size_t pwlen;
	int lockfd = -1, held, rc;
	struct stat st;

	snprintf(s.name, sizeof(s.name), "%s/%s", area, id);
	c->prog.current = s.name;
	if (c->progress)
		c->progress(c->arg, &c->prog);
	s.cfd = openat(parentfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s.cfd < 0) {
		sfs_fsck_add(c, &s, s.name, false, "layout", NULL, NULL, NULL,
			     "not a directory: not a session container");
		goto out;
	}
	/* A session a running mount holds is never touched, nor read. */
	held = sfs_store_session_held(s.cfd);
	if (held == 1) {
		sfs_fsck_add_state(c, &s, s.name, false, "busy", SFS_FSCK_SKIPPED, 0,
				   "unlocked in a running mount (its busy lock is held): not "
				   "checked; lock it (sessionctl lock) and run fsck again");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", s.name, SFS_LOCK_NAME);
	rc = fstatat(s.cfd, SFS_LOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (rc == -ENOENT) {
		sfs_fsck_add(c, &s, path, false, "layout", "make an empty lock file", fix_lock,
			     NULL, "the lock file is missing");
	} else if (rc == 0 && !S_ISREG(st.st_mode)) {
		sfs_fsck_add(c, &s, path, false, "layout", NULL, NULL, NULL,
			     "the lock file is not a regular file: no mount can unlock the "
			     "session");
	}
	/* Hold the busy lock while we look, so no mount unlocks it meanwhile. */
	if (faccessat(s.cfd, SFS_LOCK_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = sfs_store_session_trylock(s.cfd, &lockfd);
		if (rc == -EBUSY) {
			sfs_fsck_add_state(c, &s, s.name, false, "busy", SFS_FSCK_SKIPPED, 0,
					   "unlocked in a running mount (its busy lock is held): "
					   "not checked");
			goto out;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", s.name, SFS_KEY_NAME);
	rc = check_keyfile(&s, path);
	if (rc == -EPROTONOSUPPORT)
		goto out;
	if (rc == 0 && c->password && c->password(c->arg, id, &pw, &pwlen) == 1)
		unlock(&s, pw, pwlen, path);
	snprintf(path, sizeof(path), "%s/%s", s.name, SFS_ROOT_NAME);
	s.rootfd = openat(s.cfd, SFS_ROOT_NAME, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s.rootfd < 0)
		sfs_fsck_add(c, &s, path, false, "layout", NULL, NULL, NULL,
			     "the session root is missing or not a directory: the session "
			     "cannot be opened");
	else
		sfs_fsck_tree(&s);
	/* After the tree: a torn tail cut now is re-appended in the same run. */
	if (!sfs_fsck_stop(c))
		check_container_entries(&s);
out:
	if (s.rootfd >= 0)
		close(s.rootfd);
	if (s.cfd >= 0)
		close(s.cfd);
	sfs_keys_free(s.keys);
	free(s.ids);
	sfs_store_session_release(lockfd);
	c->prog.done++;
	c->prog.current = "";
	if (c->progress)
		c->progress(c->arg, &c->prog);
	return 0;
}
