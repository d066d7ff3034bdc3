/*
 * rekey.c - re-keying a session container (rekey.h): a walk of the old
 * tree that opens every node under the old keys and writes it under the
 * new ones into a container built beside, then one atomic exchange.
 *
 * Nothing is changed in place: until the exchange the old container is the
 * session, whole, and the new one a hidden directory no reader takes for a
 * session; after it the new one is. Node ids stay (names are bound to their
 * directory's id, attribute blobs and tail records to a node's id), so only
 * the sealing changes. Knows the store's layout and the tree, fileio,
 * eventlog, symlink, xattr and rules layers; nothing of FUSE or slots.
 */
#include "rekey.h"
#include "eventlog.h"
#include "fileio.h"
#include "rules.h"
#include "store.h"
#include "symlink.h"
#include "tree.h"
#include "util.h"
#include "xattr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20) /* plaintext bytes read and written at once */
#define KEPT_EVENTS "events.kept-"
#define KEPT_TORN "torn.kept-"

/* A backing node with more than one link, and where its first copy went. */
struct link {
	dev_t dev;
	ino_t ino;
	char *path; /* relative to the new root */
};

struct walk {
	const struct sfs_keys *ok, *nk; /* old and new keys */
	int oldroot, newroot;		/* O_PATH of both roots */
	struct sfs_rekey_progress *p;
	struct link *links;
	size_t nlinks, caplinks;
	/* the node ids the walk re-keyed: only their attribute blobs are copied */
	unsigned char (*ids)[SFS_ID_BYTES];
	size_t nids, capids;
	unsigned char *buf; /* CHUNK bytes of plaintext, sodium_malloc */
};

static int id_add(struct walk *w, const unsigned char id[SFS_ID_BYTES])
{
	if (w->nids == w->capids) {
		size_t cap = w->capids ? 2 * w->capids : 64;
		unsigned char(*n)[SFS_ID_BYTES] = realloc(w->ids, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->ids = n;
		w->capids = cap;
	}
	memcpy(w->ids[w->nids++], id, SFS_ID_BYTES);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SFS_ID_BYTES);
}

static const char *link_find(const struct walk *w, const struct stat *st)
{
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
			return w->links[i].path;
	return NULL;
}

static int link_add(struct walk *w, const struct stat *st, const char *path)
{
	if (w->nlinks == w->caplinks) {
		size_t cap = w->caplinks ? 2 * w->caplinks : 16;
		struct link *n = realloc(w->links, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->links = n;
		w->caplinks = cap;
	}
	w->links[w->nlinks].path = strdup(path);
	if (!w->links[w->nlinks].path)
		return -ENOMEM;
	w->links[w->nlinks].dev = st->st_dev;
	w->links[w->nlinks].ino = st->st_ino;
	w->nlinks++;
	return 0;
}

static int set_times(int dirfd, const char *name, const struct stat *st)
{
	const struct timespec t[2] = {st->st_atim, st->st_mtim};

	return utimensat(dirfd, name, t, AT_SYMLINK_NOFOLLOW) < 0 ? sfs_neg_errno() : 0;
}

/* Content blocks of @oldfd (header read: @id, @a) into new file @newfd. */
static int copy_blocks(struct walk *w, int oldfd, int newfd, const unsigned char *id,
		       const struct sfs_attrs *a)
{
	struct sfs_file of = {.fd = oldfd, .keys = w->ok, .sparse = a->kind == SFS_KIND_SPARSE};
	struct sfs_file nf = {.fd = newfd, .keys = w->nk, .fresh = true};
	struct sfs_attrs na = *a;
	uint64_t size, off = 0, was, now, data, hole;
	int rc;

	memcpy(of.id, id, SFS_ID_BYTES);
	memcpy(nf.id, id, SFS_ID_BYTES);
	/* what the first open after a crash would put back (fileio.h, tail records) */
	rc = sfs_file_recover_tail(&of, w->oldroot, &was, &now);
	if (rc >= 0)
		rc = sfs_file_size(oldfd, &size);
	if (rc < 0)
		return rc;
	of.size = size;
	na.kind = SFS_KIND_BLOCKS; /* a write that leaves a hole makes it sparse */
	rc = sfs_file_init(newfd, id, &na, w->nk);
	while (rc == 0 && off < size) {
		rc = sfs_file_seek(&of, off, SEEK_DATA, &data);
		if (rc == -ENXIO) {
			rc = 0;
			break;
		}
		if (rc == 0)
			rc = sfs_file_seek(&of, data, SEEK_HOLE, &hole);
		for (uint64_t pos = data; rc == 0 && pos < hole;) {
			size_t want = hole - pos < CHUNK ? (size_t)(hole - pos) : CHUNK;
			ssize_t got = sfs_file_read(&of, w->buf, want, pos);

			if (got <= 0) {
				rc = got < 0 ? (int)got : -EIO;
				break;
			}
			got = sfs_file_write(&nf, w->buf, (size_t)got, pos);
			if (got < 0)
				rc = (int)got;
			else
				pos += (uint64_t)got;
			atomic_fetch_add(&w->p->bytes, (uint64_t)(got > 0 ? got : 0));
		}
		off = hole;
	}
	sodium_memzero(w->buf, CHUNK);
	/* a hole at the end */
	if (rc == 0 && nf.size < size)
		rc = sfs_file_truncate(&nf, size);
	if (rc == 0) {
		int t = sfs_file_keep_tail(newfd, size, w->newroot, id);

		rc = t < 0 ? t : 0;
	}
	return rc;
}

/* The event log of @oldfd (header read: @id, @a) into new file @newfd, in whole lines. */
static int copy_log(struct walk *w, int oldfd, int newfd, const unsigned char *id,
		    const struct sfs_attrs *a)
{
	struct sfs_log ol = {.fd = oldfd, .keys = w->ok};
	struct sfs_log nl = {.fd = newfd, .keys = w->nk, .end = SFS_HDR_BYTES};
	uint64_t off = 0, size, bad = 0;
	size_t carry = 0; /* bytes of an unfinished line at the start of w->buf */
	int rc;

	memcpy(ol.id, id, SFS_ID_BYTES);
	memcpy(nl.id, id, SFS_ID_BYTES);
	rc = sfs_log_load(&ol);
	if (rc == 0)
		rc = sfs_log_create(newfd, id, a, w->nk);
	size = atomic_load(&ol.size);
	while (rc == 0 && off < size) {
		ssize_t got = sfs_log_pread(&ol, w->buf + carry, CHUNK - carry, off, &bad);
		size_t have, cut;

		if (got <= 0) {
			rc = got < 0 ? (int)got : -EIO;
			break;
		}
		off += (uint64_t)got;
		have = carry + (size_t)got;
		/* up to the last newline; a line longer than CHUNK goes as it is */
		for (cut = have; cut > 0 && w->buf[cut - 1] != '\n'; cut--)
			;
		if (cut == 0 || off == size)
			cut = have;
		rc = sfs_log_append(&nl, w->buf, cut);
		memmove(w->buf, w->buf + cut, have - cut);
		carry = have - cut;
		atomic_fetch_add(&w->p->bytes, (uint64_t)cut);
	}
	sodium_memzero(w->buf, CHUNK);
	return rc;
}

/*
 * Regular backing file @name of @olddir (@st) as @backing of @newdir: a
 * file of blocks, a log, a long symlink or another file node.
 */
static int copy_file(struct walk *w, int olddir, const char *name, int newdir, const char *backing,
		     const struct stat *st)
{
	unsigned char id[SFS_ID_BYTES];
	struct sfs_attrs a;
	char target[PATH_MAX];
	size_t len;
	int oldfd, newfd, rc;

	oldfd = openat(olddir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (oldfd < 0)
		return sfs_neg_errno();
	newfd = openat(newdir, backing, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (newfd < 0) {
		rc = sfs_neg_errno();
		close(oldfd);
		return rc;
	}
	rc = sfs_file_read_header(oldfd, id, &a, w->ok);
	if (rc == 0)
		rc = id_add(w, id);
	if (rc == 0) {
		switch (a.mode & S_IFMT) {
		case S_IFREG:
			rc = a.kind == SFS_KIND_LOG ? copy_log(w, oldfd, newfd, id, &a)
						    : copy_blocks(w, oldfd, newfd, id, &a);
			break;
		case S_IFLNK:
			rc = sfs_symlink_read_long(oldfd, id, target, &len, w->ok);
			if (rc == 0)
				rc = sfs_file_init(newfd, id, &a, w->nk);
			if (rc == 0)
				rc = sfs_symlink_write_long(newfd, id, target, len, w->nk);
			sodium_memzero(target, sizeof(target));
			break;
		default: /* FIFO, socket, device node: the header is all */
			rc = sfs_file_init(newfd, id, &a, w->nk);
		}
	}
	if (rc == 0 && fsync(newfd) < 0)
		rc = sfs_neg_errno();
	if (rc == 0) {
		const struct timespec t[2] = {st->st_atim, st->st_mtim};

		if (futimens(newfd, t) < 0)
			rc = sfs_neg_errno();
	}
	close(newfd);
	close(oldfd);
	return rc;
}

/* Short symlink @name of @olddir as @backing of @newdir. */
static int copy_symlink(struct walk *w, int olddir, const char *name, int newdir,
			const char *backing, const struct stat *st)
{
	char target[PATH_MAX], enc[PATH_MAX];
	int fd = openat(olddir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_symlink_read_short(fd, target, w->ok);
	close(fd);
	if (rc == 0)
		rc = sfs_fmt_symlink_encode(enc, sizeof(enc), target, w->nk);
	sodium_memzero(target, sizeof(target));
	if (rc == 0 && symlinkat(enc, newdir, backing) < 0)
		rc = sfs_neg_errno();
	/* a short symlink's owner is the backing link's (only root may set another) */
	if (rc == 0 && fchownat(newdir, backing, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno != EPERM)
		rc = sfs_neg_errno();
	return rc;
}

/* The backing names of directory @dirfd (malloc'd array of malloc'd names) into *@out. */
static int list_dir(int dirfd, char ***out, size_t *n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (fd < 0)
		return sfs_neg_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		if (*n == cap) {
			char **m = realloc(*out, (cap = cap ? 2 * cap : 32) * sizeof(*m));

			if (!m)
				break;
			*out = m;
		}
		if (!((*out)[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	closedir(d);
	return de ? -ENOMEM : 0;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int walk_dir(struct walk *w, int olddir, int newdir, const unsigned char *dirid,
		    const char *rel);

/* One entry @name of @olddir (id @dirid), whose new directory is @newdir at @rel. */
static int walk_entry(struct walk *w, int olddir, int newdir, const unsigned char *dirid,
		      const char *rel, const char *name)
{
	char plain[SFS_NAME_MAX + 1], path[PATH_MAX];
	const char *first;
	struct sfs_ename en;
	struct stat st;
	int rc;

	rc = sfs_tree_name_read(olddir, name, dirid, w->ok, plain);
	if (rc == -ENOENT)
		return 0; /* not a node: an internal name, a sidecar */
	if (rc == 0 && fstatat(olddir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = sfs_fmt_name_encrypt(&en, plain, dirid, w->nk);
	sodium_memzero(plain, sizeof(plain));
	if (rc == 0 && en.is_long)
		rc = sfs_tree_name_add(newdir, &en);
	if (rc < 0)
		return rc;
	if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", en.backing) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && (first = link_find(w, &st)))
		return linkat(w->newroot, first, newdir, en.backing, 0) < 0 ? sfs_neg_errno() : 0;
	if (S_ISDIR(st.st_mode)) {
		unsigned char id[SFS_ID_BYTES];
		struct sfs_attrs a;
		int od = openat(olddir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
		    nd = -1;

		rc = od < 0 ? sfs_neg_errno() : 0;
		if (rc == 0)
			rc = sfs_tree_dir_load(od, id, &a, w->ok);
		if (rc == 0)
			rc = id_add(w, id);
		if (rc == 0 && mkdirat(newdir, en.backing, 0700) < 0)
			rc = sfs_neg_errno();
		if (rc == 0 && (nd = openat(newdir, en.backing,
					    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			rc = sfs_neg_errno();
		if (rc == 0)
			rc = sfs_tree_dir_init(nd, id, &a, w->nk);
		if (rc == 0)
			rc = walk_dir(w, od, nd, id, path);
		if (od >= 0)
			close(od);
		if (nd >= 0)
			close(nd);
	} else if (S_ISLNK(st.st_mode)) {
		rc = copy_symlink(w, olddir, name, newdir, en.backing, &st);
	} else if (S_ISREG(st.st_mode)) {
		rc = copy_file(w, olddir, name, newdir, en.backing, &st);
	} else {
		rc = -EUCLEAN; /* the store holds nothing else */
	}
	if (rc == 0)
		rc = set_times(newdir, en.backing, &st);
	if (rc == 0 && !S_ISDIR(st.st_mode) && st.st_nlink > 1)
		rc = link_add(w, &st, path);
	if (rc == 0)
		atomic_fetch_add(&w->p->nodes, 1);
	return rc;
}

/* Every node of directory @olddir (id @dirid) into @newdir (header written), at @rel. */
static int walk_dir(struct walk *w, int olddir, int newdir, const unsigned char *dirid,
		    const char *rel)
{
	char **names;
	size_t n;
	int rc = list_dir(olddir, &names, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		enum sfs_name_class c = sfs_fmt_name_class(names[i]);

		if (c == SFS_NAME_SHORT || c == SFS_NAME_LONG)
			rc = walk_entry(w, olddir, newdir, dirid, rel, names[i]);
	}
	free_list(names, n);
	return rc == 0 ? sfs_tree_dir_sync(newdir) : rc;
}

/*
 * The attribute blob of every node the walk re-keyed, from the old root's
 * .sfsx/, re-sealed under the same node id. A blob of no such node (a file
 * unlinked while open: the daemon drops its blob at the last close, which
 * for a descriptor opened before the rekey leaves the new container alone)
 * stays behind with the old container.
 */
static int copy_xattrs(struct walk *w)
{
	int dfd = openat(w->oldroot, SFS_XATTR_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char **names;
	size_t n, bin;
	int rc;

	if (dfd < 0)
		return errno == ENOENT ? 0 : sfs_neg_errno();
	rc = list_dir(dfd, &names, &n);
	close(dfd);
	qsort(w->ids, w->nids, SFS_ID_BYTES, id_cmp); /* the root's at least (fill) */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		unsigned char id[SFS_ID_BYTES];
		struct sfs_xattrs x = {0};

		/* blobs are named by 32 hex digits; anything else is a temporary */
		if (strlen(names[i]) != 2 * SFS_ID_BYTES ||
		    sodium_hex2bin(id, sizeof(id), names[i], 2 * SFS_ID_BYTES, NULL, &bin, NULL) !=
			    0 ||
		    bin != SFS_ID_BYTES || !bsearch(id, w->ids, w->nids, SFS_ID_BYTES, id_cmp))
			continue;
		rc = sfs_xattr_load(w->oldroot, id, w->ok, &x);
		if (rc == 0 && x.count)
			rc = sfs_xattr_store(w->newroot, id, w->nk, &x);
		sfs_xattrs_free(&x);
	}
	free_list(names, n);
	return rc;
}

/* Does container @cfd keep bytes under its key beside the tree (kept files)? */
static int has_kept(int cfd)
{
	char **names;
	size_t n;
	bool kept = false;
	int rc = list_dir(cfd, &names, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		kept |= strncmp(names[i], KEPT_EVENTS, strlen(KEPT_EVENTS)) == 0 ||
			strncmp(names[i], KEPT_TORN, strlen(KEPT_TORN)) == 0;
	free_list(names, n);
	return rc < 0 ? rc : kept;
}

/* The new container @cfd's root, rules and tree from the old one @oldcfd. */
static int fill(int oldcfd, int cfd, struct walk *w)
{
	unsigned char dirid[SFS_ID_BYTES];
	struct sfs_rules rules = {0};
	struct sfs_attrs a;
	struct stat st;
	int rc;

	w->oldroot = openat(oldcfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (w->oldroot < 0)
		return sfs_neg_errno();
	if (mkdirat(cfd, SFS_ROOT_NAME, 0700) < 0 ||
	    (w->newroot = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return sfs_neg_errno();
	rc = sfs_rules_load(oldcfd, w->ok, &rules);
	if (rc == 0)
		rc = sfs_rules_store(cfd, &rules, w->nk);
	sfs_rules_free(&rules);
	if (rc == 0)
		rc = sfs_tree_dir_load(w->oldroot, dirid, &a, w->ok);
	if (rc == 0)
		rc = id_add(w, dirid);
	if (rc == 0)
		rc = sfs_tree_dir_init(w->newroot, dirid, &a, w->nk);
	if (rc == 0)
		rc = walk_dir(w, w->oldroot, w->newroot, dirid, "");
	if (rc == 0)
		rc = copy_xattrs(w);
	if (rc == 0 && fstatat(oldcfd, SFS_ROOT_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = sfs_neg_errno();
	if (rc == 0)
		rc = set_times(cfd, SFS_ROOT_NAME, &st);
	if (rc == 0)
		rc = sfs_fsync_dirfd(w->newroot);
	if (rc == 0)
		rc = sfs_fsync_dirfd(cfd);
	return rc;
}

int sfs_rekey_build(int topfd, const char *id, int oldcfd, const struct sfs_keys *oldkeys,
		    const unsigned char *keyfile, size_t kflen, const struct sfs_keys *newkeys,
		    struct sfs_rekey_progress *p, char tmp[SFS_REKEY_NAME_MAX], int *lockfd)
{
	struct walk w = {.ok = oldkeys, .nk = newkeys, .oldroot = -1, .newroot = -1, .p = p};
	unsigned char rnd[6];
	char hex[13];
	int cfd = -1, rc;

	*lockfd = -1;
	tmp[0] = '\0';
	rc = has_kept(oldcfd);
	if (rc != 0)
		return rc < 0 ? rc : SFS_REKEY_EKEPT;
	w.buf = sodium_malloc(CHUNK);
	if (!w.buf)
		return -ENOMEM;
	sfs_crypto_random(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(tmp, SFS_REKEY_NAME_MAX, "%s%s-%s", SFS_REKEY_PREFIX, id, hex);
	if (mkdirat(topfd, tmp, 0700) < 0) {
		rc = sfs_neg_errno();
		tmp[0] = '\0';
		goto out;
	}
	cfd = openat(topfd, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = cfd < 0 ? sfs_neg_errno() : sfs_store_session_trylock(cfd, lockfd);
	if (rc == 0)
		rc = sfs_write_atomic(cfd, SFS_KEY_NAME, keyfile, kflen);
	if (rc == 0)
		rc = fill(oldcfd, cfd, &w);
	if (rc == 0)
		rc = sfs_fsync_dirfd(topfd);
out:
	if (rc < 0 && tmp[0]) {
		sfs_remove_tree(topfd, tmp);
		sfs_fsync_dirfd(topfd);
		sfs_store_session_release(*lockfd);
		*lockfd = -1;
		tmp[0] = '\0';
	}
	if (cfd >= 0)
		close(cfd);
	if (w.oldroot >= 0)
		close(w.oldroot);
	if (w.newroot >= 0)
		close(w.newroot);
	for (size_t i = 0; i < w.nlinks; i++)
		free(w.links[i].path);
	free(w.links);
	free(w.ids);
	sodium_free(w.buf);
	return rc;
}

int sfs_rekey_switch(int topfd, const char *tmp, const char *id)
{
	if (renameat2(topfd, tmp, topfd, id, RENAME_EXCHANGE) < 0)
		return sfs_neg_errno();
	return sfs_fsync_dirfd(topfd);
}

bool sfs_rekey_is_leftover(const char *name)
{
	return strncmp(name, SFS_REKEY_PREFIX, strlen(SFS_REKEY_PREFIX)) == 0;
}

int sfs_rekey_sweep(int topfd, const char *id)
{
	char **names, prefix[SFS_REKEY_NAME_MAX];
	size_t n, plen;
	int rc, count = 0;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s%s-", SFS_REKEY_PREFIX, id);
	rc = list_dir(topfd, &names, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (strncmp(names[i], prefix, plen) != 0 || strlen(names[i]) != plen + 12)
			continue;
		rc = sfs_remove_tree(topfd, names[i]);
		if (rc == 0)
			count++;
	}
	free_list(names, n);
	if (rc == 0 && count)
		rc = sfs_fsync_dirfd(topfd);
	return rc < 0 ? rc : count;
}
