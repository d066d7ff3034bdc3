/*
 * fsck_meta.c - fsck.sessionfs's restore of a session's metadata.json when
 * it is missing or empty (nothing better exists): a new document with what
 * is known, the session's id and its creation time from the container
 * (its birth time where the file system keeps one, else its mtime),
 * "updated" now, status "active", no name, no tags. Written as unlock's
 * replacements are: an internal .sfs-meta-* file, fsynced, renamed over the
 * encrypted name, the session root fsynced.
 *
 * Store layer (lib/fsck.h): jansson for the document, fileio.c and tree.c
 * for the file. Nothing of terminals, JSON output or FUSE.
 */
#include "fileio.h"
#include "fsck.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The container's creation time as UTC ISO-8601 into @buf. */
static void container_time(int cfd, char *buf, size_t len)
{
	struct statx stx;
	time_t t = time(NULL);

	if (statx(cfd, "", AT_EMPTY_PATH, STATX_BTIME | STATX_MTIME, &stx) == 0)
		t = (stx.stx_mask & STATX_BTIME) ? (time_t)stx.stx_btime.tv_sec
						 : (time_t)stx.stx_mtime.tv_sec;
	sfs_utc_format(buf, len, t);
}

static int fix_metadata(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	const struct sfs_ename *en = arg;
	unsigned char dirid[SFS_ID_BYTES];
	char created[32], tmp[SFS_TMPNAME_MAX], *text = NULL, *base;
	struct sfs_attrs ra, a;
	struct sfs_file f = {.fd = -1, .keys = s->keys};
	json_t *doc = NULL;
	ssize_t n;
	int rc;

	(void)c;
	rc = sfs_tree_dir_load(s->rootfd, dirid, &ra, s->keys);
	if (rc < 0)
		return rc;
	container_time(s->cfd, created, sizeof(created));
	base = sfs_store_metadata_new(s->id, "");
	doc = base ? json_loads(base, 0, NULL) : NULL;
	free(base);
	if (doc && json_object_set_new(doc, "created", json_string(created)) == 0) {
		size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
		size_t len = json_dumpb(doc, NULL, 0, flags);

		text = len ? malloc(len + 1) : NULL;
		if (text)
			text[json_dumpb(doc, text, len, flags)] = '\0';
	}
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	sfs_tree_internal_name(tmp, SFS_META_PREFIX);
	f.fd = openat(s->rootfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f.fd < 0) {
		free(text);
		return sfs_neg_errno();
	}
	a = (struct sfs_attrs){S_IFREG | 0600, ra.uid, ra.gid, 0, SFS_KIND_BLOCKS};
	sfs_crypto_random(f.id, sizeof(f.id));
	f.fresh = true;
	rc = sfs_file_init(f.fd, f.id, &a, s->keys);
	if (rc == 0) {
		size_t len = strlen(text);

		text[len] = '\n'; /* a final newline, as sessionctl new writes */
		n = sfs_file_write(&f, text, len + 1, 0);
		rc = n < 0 ? (int)n : 0;
	}
	free(text);
	if (rc == 0 && fsync(f.fd) < 0)
		rc = sfs_neg_errno();
	close(f.fd);
	if (rc == 0 && renameat(s->rootfd, tmp, s->rootfd, en->backing) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fsync_dirfd(s->rootfd);
	if (rc < 0)
		unlinkat(s->rootfd, tmp, 0);
	return rc;
}

void sfs_fsck_metadata(struct sfs_fsck_sess *s)
{
	unsigned char dirid[SFS_ID_BYTES];
	struct sfs_attrs ra;
	struct sfs_ename en;
	struct stat st;
	uint64_t plain = 0;
	const char *what;

	if (!s->keys || sfs_tree_dir_load(s->rootfd, dirid, &ra, s->keys) < 0 ||
	    sfs_fmt_name_encrypt(&en, SFS_METADATA_NAME, dirid, s->keys) < 0)
		return;
	if (fstatat(s->rootfd, en.backing, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return;
		what = "metadata.json is missing";
	} else if (S_ISREG(st.st_mode) &&
		   (st.st_size == 0 ||
		    (sfs_fmt_plain_size((uint64_t)st.st_size, &plain) == 0 && plain == 0))) {
		what = "metadata.json is empty";
	} else {
		return;
	}
	sfs_fsck_add(s->c, s, SFS_METADATA_NAME, true, "metadata",
		     "write a new one from what is known: the id, \"created\" from the "
		     "container, \"updated\" now, status active",
		     fix_metadata, &en, "%s", what);
}
