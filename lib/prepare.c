/*
 * prepare.c - what unlocking a session does to its tree before anyone uses
 * it: find events.jsonl and mend what a crash left at its end (eventlog.c),
 * refuse one that is not a log (another file copied over it), make it if
 * it is missing, and remove crash leftovers from the session
 * root (and temporaries from its .sfsx, xattr.c). The result is the open
 * log with its state, so that no later open or stat of events.jsonl reads
 * the log.
 *
 * Store layer: knows the tree, eventlog, fileio, format and crypto layers;
 * nothing of FUSE or the control protocol. Runs while the caller holds the
 * session's busy lock, so no other mount writes the tree meanwhile.
 */
#include "store.h"
#include "eventlog.h"
#include "fileio.h"
#include "tree.h"
#include "util.h"
#include "xattr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Internal names that only a crash leaves in a session root (tree.c, special files). */
static bool is_leftover(const char *name)
{
	return sfs_tree_has_prefix(name, SFS_NEW_PREFIX) ||
	       sfs_tree_has_prefix(name, SFS_META_PREFIX) ||
	       sfs_tree_has_prefix(name, SFS_GONE_PREFIX);
}

/* Remove crash leftovers from session root @rootfd; how many. */
static int sweep(int rootfd)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (is_leftover(de->d_name) && sfs_remove_tree(dirfd(d), de->d_name) == 0)
			n++;
	closedir(d);
	if (n > 0)
		sfs_fsync_dirfd(rootfd);
	return n;
}

/* Build an empty log under an internal name of @rootfd: its fd, name in @tmp. */
static int new_log(int rootfd, char tmp[SFS_TMPNAME_MAX], struct sfs_log *l,
		   const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	int rc;

	sfs_tree_tmpname(tmp);
	l->fd = openat(rootfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (l->fd < 0)
		return sfs_neg_errno();
	l->keys = keys;
	l->end = SFS_HDR_BYTES;
	l->size = l->lines = 0;
	sfs_crypto_random(l->id, sizeof(l->id));
	rc = sfs_log_create(l->fd, l->id, attrs, keys);
	if (rc < 0) {
		close(l->fd);
		unlinkat(rootfd, tmp, 0);
	}
	return rc;
}

/* fsync the new log @l, rename it to @backing (over an old one if @over), fsync the dir. */
static int publish_log(int rootfd, const char *tmp, struct sfs_log *l, const char *backing,
		       bool over)
{
	int rc = fsync(l->fd) < 0 ? sfs_neg_errno() : 0;

	if (rc == 0)
		rc = over ? (renameat(rootfd, tmp, rootfd, backing) < 0 ? sfs_neg_errno() : 0)
			  : sfs_tree_publish(rootfd, tmp, backing);
	if (rc == 0)
		rc = sfs_fsync_dirfd(rootfd);
	if (rc < 0) {
		close(l->fd);
		unlinkat(rootfd, tmp, 0);
	}
	return rc;
}

int sfs_store_session_prepare(int cfd, const struct sfs_keys *keys, uint64_t recheck,
			      struct sfs_log *ev, struct sfs_session_report *rep)
{
	struct sfs_log *l = ev;
	unsigned char dirid[SFS_ID_BYTES], rnd[8];
	struct sfs_attrs dattrs, a;
	struct sfs_log_repair r;
	char tmp[SFS_TMPNAME_MAX], hex[17];
	struct sfs_ename en;
	int rootfd, rc;

	memset(rep, 0, sizeof(*rep));
	*l = (struct sfs_log){.fd = -1, .keys = keys};
	rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return sfs_neg_errno();
	rc = sfs_tree_dir_load(rootfd, dirid, &dattrs, keys);
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&en, SFS_EVENTS_NAME, dirid, keys);
	if (rc < 0)
		goto out;
	rep->swept = sweep(rootfd) + sfs_xattr_sweep(rootfd);
	l->fd = openat(rootfd, en.backing, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (l->fd < 0 && errno == ENOENT) {
		a = (struct sfs_attrs){S_IFREG | 0600, dattrs.uid, dattrs.gid, 0, SFS_KIND_LOG};
		rc = new_log(rootfd, tmp, l, &a, keys);
		if (rc == 0)
			rc = publish_log(rootfd, tmp, l, en.backing, false);
		if (rc < 0) {
			l->fd = -1;
			goto out;
		}
		rep->events_created = true;
	} else if (l->fd < 0) {
		rc = sfs_neg_errno();
		goto out;
	} else {
		rc = sfs_file_read_header(l->fd, l->id, &a, keys);
		/*
		 * Only a log is events.jsonl. Any other kind is another file of
		 * the session copied over it (doc/format.md "Older stores": no
		 * store ever held events.jsonl in another layout): damage, left
		 * as it is, never converted.
		 */
		if (rc == 0 && a.kind != SFS_KIND_LOG) {
			rep->events_kind = a.kind;
			rc = -EUCLEAN;
		}
		if (rc < 0)
			goto out;
	}
	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(rep->events_kept, sizeof(rep->events_kept), "events.kept-%s", hex);
	rc = sfs_log_repair(l, &r, cfd, rep->events_kept);
	if (!r.kept)
		rep->events_kept[0] = '\0';
	rep->events_dropped = r.dropped;
	rep->events_hole = r.hole;
	rep->events_whole = r.whole;
	rep->events_damage = r.damage;
	/* Damage a read met before, outside what the repair checked. */
	if (rc == 0 && r.damage.count == 0 && recheck)
		rc = sfs_log_check(l, recheck, &rep->events_damage);
	rep->events_bad_at = l->bad;
out:
	if (rc < 0) {
		uint64_t bad = l->bad;

		sfs_log_close(l);
		*l = (struct sfs_log){.fd = -1, .keys = keys, .bad = bad}; /* no state */
	}
	close(rootfd);
	return rc;
}
