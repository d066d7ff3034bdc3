/*
 * fsck_tree.c - fsck.sessionfs's walk over one session's encrypted tree:
 * every backing entry by its class (format.c), directory headers and their
 * user.sfsdir copies, node headers' magic and sizes, long names' sidecars,
 * internal leftovers (.sfs-new-*, .sfs-gone-*, .sfs-meta-*, orphan
 * sidecars), and in the session root the xattr blobs (.sfsx/) and tail files
 * (.sfstail/) of nodes that are gone. With the session's keys it also
 * authenticates every name, header, content block, symlink target and xattr
 * blob, and metadata.json's rules; event logs are fsck_log.c's.
 *
 * Store layer (lib/fsck.h): every byte is parsed by tree.c, fileio.c,
 * symlink.c, xattr.c, documents.c or format.c. Nothing of terminals, JSON
 * output or FUSE. Plaintext read for checking is wiped before it is freed.
 */
#include "fileio.h"
#include "format.h"
#include "fsck.h"
#include "store.h"
#include "symlink.h"
#include "tree.h"
#include "util.h"
#include "xattr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20) /* plaintext bytes per read of a file's content */

/* What a repair that removes an entry needs. */
struct rm_arg {
	int dirfd;
	const char *name;
};

static int fix_rm(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	struct rm_arg *a = arg;
	int rc = sfs_remove_tree(a->dirfd, a->name);

	(void)c;
	(void)s;
	return rc == 0 ? sfs_fsync_dirfd(a->dirfd) : rc;
}

static void add_id(struct sfs_fsck_sess *s, const unsigned char id[SFS_ID_BYTES])
{
	if (s->nids == s->capids) {
		size_t cap = s->capids ? 2 * s->capids : 64;
		void *v = realloc(s->ids, cap * SFS_ID_BYTES);

		if (!v) {
			s->ids_incomplete = true;
			return;
		}
		s->ids = v;
		s->capids = cap;
	}
	memcpy(s->ids[s->nids++], id, SFS_ID_BYTES);
}

static bool has_id(const struct sfs_fsck_sess *s, const char *hex)
{
	unsigned char id[SFS_ID_BYTES];
	size_t n;

	if (strlen(hex) != 2 * SFS_ID_BYTES ||
	    sodium_hex2bin(id, sizeof(id), hex, strlen(hex), NULL, &n, NULL) != 0 ||
	    n != SFS_ID_BYTES)
		return false;
	for (size_t i = 0; i < s->nids; i++)
		if (memcmp(s->ids[i], id, SFS_ID_BYTES) == 0)
			return true;
	return false;
}

static bool is_hex_id(const char *name)
{
	if (strlen(name) != 2 * SFS_ID_BYTES)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/*
 * The temporary of fix_dirhdr's rewrite of .sfsdir (util.c's
 * sfs_write_atomic: ".tmp..sfsdir.<pid>.<seq>"), which a kill leaves.
 */
static bool is_dirhdr_tmp(const char *name)
{
	const char *p = name + 5 + strlen(SFS_DIRHDR_NAME);
	int dots = 0;

	if (strncmp(name, ".tmp.", 5) != 0 ||
	    strncmp(name + 5, SFS_DIRHDR_NAME, strlen(SFS_DIRHDR_NAME)) != 0 || *p != '.')
		return false;
	for (; *p; p++) {
		if (*p == '.' && p[1] >= '0' && p[1] <= '9')
			dots++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return dots == 2;
}

static bool is_leftover(const char *name)
{
	return sfs_tree_has_prefix(name, SFS_NEW_PREFIX) ||
	       sfs_tree_has_prefix(name, SFS_GONE_PREFIX) ||
	       sfs_tree_has_prefix(name, SFS_META_PREFIX);
}

/* The names in directory @fd (without . and ..), malloc'd; count in *@n. */
static char **list_dir(int fd, size_t *n)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	char **v = NULL;
	size_t cap = 0;
	struct dirent *de;

	*n = 0;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			char **nv = realloc(v, (cap = cap ? 2 * cap : 32) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		if (!(v[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	closedir(d);
	if (!v)
		v = calloc(1, sizeof(*v));
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Where a finding is: the plain path if known, else the backing path. */
struct where {
	const char *plain; /* NULL: unknown */
	const char *bpath; /* relative to the store */
};

#define WHERE(w) ((w)->plain ? (w)->plain : (w)->bpath), ((w)->plain != NULL)

static int fix_dirhdr(struct sfs_fsck *c, struct sfs_fsck_sess *s, void *arg)
{
	int fd = *(int *)arg;
	unsigned char copy[SFS_HDR_BYTES];

	(void)c;
	(void)s;
	if (fgetxattr(fd, SFS_DIRHDR_XATTR, copy, sizeof(copy)) != SFS_HDR_BYTES)
		return -EIO;
	return sfs_write_atomic(fd, SFS_DIRHDR_NAME, copy, sizeof(copy));
}

/*
 * The directory header of @fd: 0 with @dirid set when it is usable (with
 * keys: authenticated), or reported and -EBADMSG.
 */
static int check_dirhdr(struct sfs_fsck_sess *s, int fd, const struct where *w,
			unsigned char dirid[SFS_ID_BYTES])
{
	unsigned char hdr[SFS_HDR_BYTES + 1], copy[SFS_HDR_BYTES];
	ssize_t n = sfs_read_small(fd, SFS_DIRHDR_NAME, hdr, sizeof(hdr));
	bool ok = n == SFS_HDR_BYTES && sfs_fmt_header_id(hdr, (size_t)n, dirid) == 0;
	bool copy_ok = fgetxattr(fd, SFS_DIRHDR_XATTR, copy, sizeof(copy)) == SFS_HDR_BYTES &&
		       sfs_fmt_header_id(copy, sizeof(copy), dirid) == 0;
	struct sfs_attrs a;
	int rc;

	if (ok && s->keys) {
		rc = sfs_fmt_header_unpack(hdr, SFS_HDR_BYTES, SFS_MAGIC_DIR, dirid, &a, s->keys);
		if (rc == 0 && !S_ISDIR(a.mode))
			rc = -EBADMSG;
		ok = rc == 0;
		if (!ok && copy_ok && n == SFS_HDR_BYTES) {
			sfs_fsck_add(s->c, s, WHERE(w), "dirheader", NULL, NULL, NULL,
				     "the directory header (.sfsdir) fails authentication "
				     "(tampered or from another directory): its entries cannot be "
				     "named");
			return -EBADMSG;
		}
	}
	if (ok)
		goto good;
	if (copy_ok && s->keys) {
		rc = sfs_fmt_header_unpack(copy, SFS_HDR_BYTES, SFS_MAGIC_DIR, dirid, &a, s->keys);
		copy_ok = rc == 0 && S_ISDIR(a.mode);
	}
	if (copy_ok) {
		sfs_fsck_add(s->c, s, WHERE(w), "dirheader",
			     "write .sfsdir again from its copy in user.sfsdir", fix_dirhdr, &fd,
			     "the directory header (.sfsdir) is missing, short or not a header "
			     "(%zd bytes); its copy in user.sfsdir is good and mounts use it",
			     n < 0 ? (ssize_t)0 : n);
		goto good;
	}
	sfs_fsck_add(s->c, s, WHERE(w), "dirheader", NULL, NULL, NULL,
		     "the directory header (.sfsdir) is missing or damaged and it has no good "
		     "copy: the directory cannot be listed nor looked into");
	s->ids_incomplete = true;
	return -EBADMSG;
good:
	add_id(s, dirid);
	return 0;
}

/*
 * Read every byte of regular file @f; report blocks that fail, unless the one
 * that fails is its last, partial block and @torn is set: then *@torn is set
 * true and the caller reports the tear.
 */
static void check_content(struct sfs_fsck_sess *s, struct sfs_file *f, const struct where *w,
			  bool *torn)
{
	size_t cap = f->size < READ_CHUNK ? (size_t)f->size : READ_CHUNK;
	unsigned char *buf = malloc(cap ? cap : 1);
	uint64_t off = 0, bad = 0, first = 0;
	ssize_t n;

	if (!buf) {
		sfs_fsck_add_state(s->c, s, WHERE(w), "io", SFS_FSCK_FAILED, -ENOMEM,
				   "out of memory reading it");
		return;
	}
	while (off < f->size && !sfs_fsck_stop(s->c)) {
		size_t want = f->size - off < READ_CHUNK ? (size_t)(f->size - off) : READ_CHUNK;

		/* The disk reads the next chunk while this one is opened. */
		if (f->size - off > READ_CHUNK)
			posix_fadvise(f->fd, (off_t)sfs_fmt_block_offset((off + want) / SFS_BLOCK),
				      (off_t)(READ_CHUNK / SFS_BLOCK * SFS_CBLOCK),
				      POSIX_FADV_WILLNEED);
		n = sfs_file_read(f, buf, want, off);
		if (n == -EBADMSG) {
			uint64_t b = off / SFS_BLOCK;

			/* Find the failing blocks of this chunk one by one. */
			for (; b * SFS_BLOCK < off + want; b++) {
				size_t l = f->size - b * SFS_BLOCK < SFS_BLOCK
						   ? (size_t)(f->size - b * SFS_BLOCK)
						   : SFS_BLOCK;

				if (sfs_file_read(f, buf, l, b * SFS_BLOCK) == -EBADMSG) {
					if (bad++ == 0)
						first = b;
				}
			}
			off += want;
		} else if (n <= 0) {
			sfs_fsck_add_state(s->c, s, WHERE(w), "io", SFS_FSCK_FAILED,
					   n < 0 ? (int)n : -EIO, "cannot be read: %s",
					   strerror(n < 0 ? (int)-n : EIO));
			break;
		} else {
			off += (uint64_t)n;
		}
		sfs_fsck_bytes(s->c, (uint64_t)want + (want + SFS_BLOCK - 1) / SFS_BLOCK * 40);
	}
	sodium_memzero(buf, cap);
	free(buf);
	if (torn && bad == 1 && f->size % SFS_BLOCK != 0 && first == f->size / SFS_BLOCK) {
		*torn = true;
		return;
	}
	if (bad)
		sfs_fsck_add(s->c, s, WHERE(w), "content", NULL, NULL, NULL,
			     "%llu content block(s) fail authentication (the first is block %llu, "
			     "plaintext bytes %llu..): reads of them fail with EIO",
			     (unsigned long long)bad, (unsigned long long)first,
			     (unsigned long long)first * SFS_BLOCK);
}

/* metadata.json's text against its rules. */
static void check_metadata(struct sfs_fsck_sess *s, struct sfs_file *f, const struct where *w)
{
	char *text;
	const char *why;
	ssize_t n;
	int line = 0;

	if (f->size > (16u << 20)) {
		sfs_fsck_add(s->c, s, WHERE(w), "metadata", NULL, NULL, NULL,
			     "metadata.json is %llu bytes: too large to be checked",
			     (unsigned long long)f->size);
		return;
	}
	text = malloc(f->size + 1);
	if (!text)
		return;
	n = sfs_file_read(f, text, f->size, 0);
	if (n == (ssize_t)f->size) {
		why = sfs_store_metadata_check(s->id, text, (size_t)n, NULL, 0, &line);
		if (n > 0 && why)
			sfs_fsck_add(s->c, s, WHERE(w), "metadata", NULL, NULL, NULL,
				     "metadata.json breaks its rules: %s (line %d)", why, line);
	}
	sodium_memzero(text, f->size + 1);
	free(text);
}

/* A backing regular file: header, size and, with keys, everything in it. */
static void check_file(struct sfs_fsck_sess *s, int dirfd, const char *name, const struct stat *st,
		       const struct where *w, bool root, const char *plain)
{
	unsigned char hdr[SFS_HDR_BYTES], id[SFS_ID_BYTES];
	struct sfs_attrs a;
	uint64_t psize;
	unsigned int kind;
	int fd, rc;

	if (st->st_size == 0) {
		sfs_fsck_add_state(s->c, s, WHERE(w), "noheader", SFS_FSCK_NOTE, 0,
				   "an empty backing file (a file created and never fsynced "
				   "before a power cut): the next mount makes it an empty file");
		return;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		sfs_fsck_add_state(s->c, s, WHERE(w), "io", SFS_FSCK_FAILED, -errno,
				   "cannot be opened: %s", strerror(errno));
		s->ids_incomplete = true;
		return;
	}
	if (st->st_size < SFS_HDR_BYTES ||
	    sfs_pread_all(fd, hdr, sizeof(hdr), 0) != SFS_HDR_BYTES ||
	    sfs_fmt_header_id(hdr, sizeof(hdr), id) < 0) {
		sfs_fsck_add(s->c, s, WHERE(w), "header", NULL, NULL, NULL,
			     "no node header (%lld bytes, cut inside the header or wrong magic): "
			     "the file reads as EIO",
			     (long long)st->st_size);
		s->ids_incomplete = true;
		goto out;
	}
	add_id(s, id);
	sfs_fsck_bytes(s->c, SFS_HDR_BYTES);
	if (!s->keys) {
		/* The kind is in the clear; only a log has other sizes. */
		if ((sfs_fmt_header_kind(hdr, sizeof(hdr), &kind) < 0 || kind != SFS_KIND_LOG) &&
		    sfs_fmt_plain_size((uint64_t)st->st_size, &psize) < 0)
			sfs_fsck_add(s->c, s, WHERE(w), "size", NULL, NULL, NULL,
				     "torn inside its last block: the backing file ends %lld "
				     "stored bytes into block %lld (%lld bytes: a size no file "
				     "has); that block reads as EIO unless its tail record puts "
				     "it back (with the password fsck says whether it can)",
				     (long long)((st->st_size - SFS_HDR_BYTES) % SFS_CBLOCK),
				     (long long)((st->st_size - SFS_HDR_BYTES) / SFS_CBLOCK),
				     (long long)st->st_size);
		goto out;
	}
	rc = sfs_file_read_header(fd, id, &a, s->keys);
	if (rc < 0) {
		sfs_fsck_add(s->c, s, WHERE(w), "header", NULL, NULL, NULL,
			     "the node header fails authentication (%s): the file reads as EIO",
			     rc == -EPROTONOSUPPORT ? "unknown version or kind" : "tampered");
		goto out;
	}
	if (root && plain && strcmp(plain, SFS_EVENTS_NAME) == 0 && a.kind != SFS_KIND_LOG) {
		sfs_fsck_add(s->c, s, WHERE(w), "events", NULL, NULL, NULL,
			     "events.jsonl is not an event log (node kind %u, as when another "
			     "file is copied over it): it reads as EIO",
			     a.kind);
		goto out;
	}
	if (a.kind == SFS_KIND_LOG) {
		sfs_fsck_log(s, fd, id, w->plain, w->bpath, dirfd, name,
			     root && plain && strcmp(plain, SFS_EVENTS_NAME) == 0);
		goto out;
	}
	rc = sfs_fmt_plain_size((uint64_t)st->st_size, &psize);
	if (rc < 0) {
		if (!S_ISREG(a.mode))
			sfs_fsck_add(s->c, s, WHERE(w), "size", NULL, NULL, NULL,
				     "a size no file has (%lld bytes: cut inside a block)",
				     (long long)st->st_size);
		psize = (uint64_t)(st->st_size - SFS_HDR_BYTES) / SFS_CBLOCK * SFS_BLOCK;
	}
	switch (a.mode & S_IFMT) {
	case S_IFREG: {
		struct sfs_file f = {.fd = fd,
				     .size = psize,
				     .keys = s->keys,
				     .sparse = a.kind == SFS_KIND_SPARSE};
		struct sfs_xattrs x = {0};
		bool torn = rc < 0;

		memcpy(f.id, id, SFS_ID_BYTES);
		if (root && plain && strcmp(plain, SFS_METADATA_NAME) == 0)
			check_metadata(s, &f, w);
		check_content(s, &f, w, &torn);
		if (torn)
			sfs_fsck_torn(s, dirfd, name, fd, id, f.sparse, (uint64_t)st->st_size,
				      WHERE(w));
		rc = sfs_xattr_load(s->rootfd, id, s->keys, &x);
		sfs_xattrs_free(&x);
		/* Out of memory or descriptors, or the disk's error: not damage of the blob. */
		if (rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE || rc == -EIO)
			sfs_fsck_add_state(
				s->c, s, WHERE(w), "io", SFS_FSCK_FAILED, rc,
				"its extended attributes (.sfsx blob) cannot be read: %s",
				strerror(-rc));
		else if (rc < 0)
			sfs_fsck_add(s->c, s, WHERE(w), "xattr", NULL, NULL, NULL,
				     "its extended attributes (.sfsx blob) fail authentication "
				     "or are malformed: attribute calls on it fail with EIO");
		break;
	}
	case S_IFLNK: {
		char target[PATH_MAX];

		rc = sfs_symlink_read_long(fd, id, target, NULL, s->keys);
		sodium_memzero(target, sizeof(target));
		if (rc < 0)
			sfs_fsck_add(s->c, s, WHERE(w), "symlink", NULL, NULL, NULL,
				     "the symlink's (long) target fails authentication or has a "
				     "bad size: readlink fails with EIO");
		break;
	}
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		if (st->st_size != SFS_HDR_BYTES)
			sfs_fsck_add(s->c, s, WHERE(w), "size", NULL, NULL, NULL,
				     "a FIFO, socket or device node of %lld bytes (its header "
				     "alone is 80)",
				     (long long)st->st_size);
		break;
	default:
		sfs_fsck_add(s->c, s, WHERE(w), "header", NULL, NULL, NULL,
			     "its header says type 0%o, which a backing file cannot be",
			     a.mode & S_IFMT);
	}
out:
	close(fd);
}

static void check_dir(struct sfs_fsck_sess *s, int fd, const char *bpath, const char *ppath,
		      bool root, unsigned depth);

/* One backing entry @name of directory @fd. */
static void check_entry(struct sfs_fsck_sess *s, int fd, const char *name, const char *bpath,
			const char *ppath, bool root, bool named, const unsigned char *dirid,
			unsigned depth)
{
	char bp[PATH_MAX], pp[PATH_MAX], plain[SFS_NAME_MAX + 1];
	struct where w = {.plain = NULL, .bpath = bp};
	struct rm_arg rm = {fd, name};
	struct stat st;
	int rc;

	sfs_fsck_ahead_at(s->ahead);
	snprintf(bp, sizeof(bp), "%s/%s", bpath, name);
	switch (sfs_fmt_name_class(name)) {
	case SFS_NAME_INTERNAL:
		if (strcmp(name, SFS_DIRHDR_NAME) == 0 ||
		    (root && (strcmp(name, SFS_XATTR_DIR) == 0 || strcmp(name, SFS_TAIL_DIR) == 0)))
			return;
		if (is_leftover(name)) {
			sfs_fsck_add(s->c, s, bp, false, "leftover", "remove it", fix_rm, &rm,
				     "an internal entry a crash left (a node being built, a "
				     "directory being removed or a metadata.json being replaced): "
				     "never listed");
			return;
		}
		if (is_dirhdr_tmp(name)) {
			sfs_fsck_add(s->c, s, bp, false, "leftover", "remove it", fix_rm, &rm,
				     "the temporary of an interrupted rewrite of the directory "
				     "header (.sfsdir) from its copy by fsck -y: never listed");
			return;
		}
		sfs_fsck_add_state(s->c, s, bp, false, "unknown", SFS_FSCK_NOTE, 0,
				   "an entry sessionfs never makes: ignored, left as it is");
		return;
	case SFS_NAME_SIDECAR: {
		char node[SFS_NAME_MAX + 1];

		snprintf(node, sizeof(node), "%.*s", (int)(strlen(name) - 2), name);
		if (fstatat(fd, node, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			sfs_fsck_add(s->c, s, bp, false, "sidecar", "remove it", fix_rm, &rm,
				     "an orphan long-name sidecar (its node is gone, a crash "
				     "between removing the two): ignored by mounts");
		return;
	}
	default:
		break;
	}
	if (named) {
		rc = sfs_tree_name_read(fd, name, dirid, s->keys, plain);
		if (rc == 0) {
			snprintf(pp, sizeof(pp), "%s%s%s", ppath, *ppath ? "/" : "", plain);
			w.plain = pp;
		} else {
			struct sfs_fsck_entry ent = {fd, name};

			if (sfs_fsck_add(s->c, s, bp, false, "name",
					 "move it into the session's lost+found folder as "
					 "#<backing name>",
					 sfs_fsck_lost_found, &ent,
					 "its name fails authentication (tampered, moved from "
					 "another directory, or a long name whose sidecar is "
					 "missing or foreign): it is not listed") ==
			    SFS_FSCK_FIXED) {
				/* Not walked now: its ids are not known, so no orphan is sure. */
				s->ids_incomplete = true;
				return;
			}
		}
		sodium_memzero(plain, sizeof(plain));
	} else if (sfs_fmt_name_class(name) == SFS_NAME_LONG) {
		char side[SFS_NAME_MAX + 8], full[SFS_ENAME_MAX];
		ssize_t n;

		snprintf(side, sizeof(side), "%s%s", name, SFS_SIDECAR_SUFFIX);
		n = sfs_read_small(fd, side, full, sizeof(full) - 1);
		if (n >= 0)
			full[n] = '\0';
		if (n < 0 || !sfs_fmt_longname_matches(name, full))
			sfs_fsck_add(s->c, s, bp, false, "name", NULL, NULL, NULL,
				     "a long name whose sidecar is %s: it is not listed",
				     n < 0 ? "missing" : "foreign");
	}
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		sfs_fsck_add_state(s->c, s, bp, false, "io", SFS_FSCK_FAILED, -errno,
				   "cannot be looked at: %s", strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0) {
			sfs_fsck_add_state(s->c, s, bp, false, "io", SFS_FSCK_FAILED, -errno,
					   "cannot be opened: %s", strerror(errno));
			s->ids_incomplete = true;
			return;
		}
		check_dir(s, sub, bp, w.plain, false, depth + 1);
		close(sub);
	} else if (S_ISLNK(st.st_mode)) {
		if (s->keys) {
			char target[PATH_MAX];
			int lfd = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

			rc = lfd < 0 ? -errno : sfs_symlink_read_short(lfd, target, s->keys);
			sodium_memzero(target, sizeof(target));
			if (lfd >= 0)
				close(lfd);
			if (rc < 0)
				sfs_fsck_add(s->c, s, WHERE(&w), "symlink", NULL, NULL, NULL,
					     "the symlink's target fails authentication: readlink "
					     "fails with EIO");
		}
	} else if (S_ISREG(st.st_mode)) {
		check_file(s, fd, name, &st, &w, root,
			   w.plain ? strrchr(w.plain, '/') ? strrchr(w.plain, '/') + 1 : w.plain
				   : NULL);
	} else {
		sfs_fsck_add_state(s->c, s, bp, false, "unknown", SFS_FSCK_NOTE, 0,
				   "a device, FIFO or socket in the store, which sessionfs never "
				   "makes: ignored");
	}
}

static void check_dir(struct sfs_fsck_sess *s, int fd, const char *bpath, const char *ppath,
		      bool root, unsigned depth)
{
	unsigned char dirid[SFS_ID_BYTES];
	struct where w = {.plain = ppath ? (*ppath ? ppath : "/") : NULL, .bpath = bpath};
	bool named;
	char **names;
	size_t n;

	if (depth > 256) {
		sfs_fsck_add(s->c, s, bpath, false, "depth", NULL, NULL, NULL,
			     "nested more than 256 directories deep: not walked further");
		s->ids_incomplete = true;
		return;
	}
	named = check_dirhdr(s, fd, &w, dirid) == 0 && s->keys && ppath;
	names = list_dir(fd, &n);
	if (!names) {
		sfs_fsck_add_state(s->c, s, bpath, false, "io", SFS_FSCK_FAILED, -errno,
				   "cannot be listed: %s", strerror(errno));
		s->ids_incomplete = true;
		return;
	}
	for (size_t i = 0; i < n && !sfs_fsck_stop(s->c); i++)
		check_entry(s, fd, names[i], bpath, ppath ? ppath : "", root, named, dirid, depth);
	free_list(names, n);
}

/* .sfsx/ or .sfstail/ of the session root: blobs and tail files of nodes that are gone. */
static void check_by_id(struct sfs_fsck_sess *s, const char *dir, const char *what)
{
	char bp[PATH_MAX];
	char **names;
	size_t n;
	int fd = openat(s->rootfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	names = list_dir(fd, &n);
	for (size_t i = 0; names && i < n; i++) {
		struct rm_arg rm = {fd, names[i]};

		snprintf(bp, sizeof(bp), "%s/%s/%s/%s", s->name, SFS_ROOT_NAME, dir, names[i]);
		if (is_hex_id(names[i])) {
			if (!s->ids_incomplete && !has_id(s, names[i]))
				sfs_fsck_add(s->c, s, bp, false, "orphan", "remove it", fix_rm, &rm,
					     "%s of a node that is gone (a crash between "
					     "removing the two): nothing reads it",
					     what);
		} else if (strncmp(names[i], ".tmp.", 5) == 0) {
			sfs_fsck_add(s->c, s, bp, false, "leftover", "remove it", fix_rm, &rm,
				     "a temporary a crash left while %s was replaced", what);
		} else {
			sfs_fsck_add_state(s->c, s, bp, false, "unknown", SFS_FSCK_NOTE, 0,
					   "an entry sessionfs never makes: ignored, left as it "
					   "is");
		}
	}
	free_list(names, names ? n : 0);
	close(fd);
}

int sfs_fsck_tree(struct sfs_fsck_sess *s)
{
	char bp[PATH_MAX];

	snprintf(bp, sizeof(bp), "%s/%s", s->name, SFS_ROOT_NAME);
	/* Without keys the walk reads only headers: nothing worth reading ahead. */
	s->ahead = s->keys ? sfs_fsck_ahead_start(s->rootfd) : NULL;
	check_dir(s, s->rootfd, bp, "", true, 0);
	sfs_fsck_ahead_end(s->ahead);
	s->ahead = NULL;
	if (sfs_fsck_stop(s->c))
		return 0;
	sfs_fsck_metadata(s);
	check_by_id(s, SFS_XATTR_DIR, "the extended attributes");
	check_by_id(s, SFS_TAIL_DIR, "the tail record");
	return 0;
}
