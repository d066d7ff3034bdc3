/*
 * metadata.c - a session's metadata.json: read, check, replace crash-safely
 * (metadata.h), set "updated" and say when it is due, make the first one.
 *
 * Store layer: the document rules are documents.c's, the files fileio.c's,
 * the names tree.c's and format.c's. Knows nothing of FUSE, file handles,
 * locks or logging: whoever calls keeps replacements apart and says why a
 * document was refused.
 */
#include "metadata.h"
#include "fileio.h"
#include "store.h"
#include "tree.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sfs_metadata_open(struct sfs_metadata *m, int cfd, const char *sid, const struct sfs_keys *keys)
{
	struct sfs_attrs a;
	int rc;

	m->sid = sid;
	m->keys = keys;
	m->rootfd = openat(cfd, SFS_ROOT_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (m->rootfd < 0)
		return sfs_neg_errno();
	rc = sfs_tree_dir_load(m->rootfd, m->dirid, &a, keys);
	if (rc < 0) {
		close(m->rootfd);
		m->rootfd = -1;
	}
	return rc;
}

void sfs_metadata_close(struct sfs_metadata *m)
{
	if (m->rootfd >= 0)
		close(m->rootfd);
	m->rootfd = -1;
}

void sfs_metadata_free(char *text, size_t len)
{
	if (!text)
		return;
	sodium_memzero(text, len);
	free(text);
}

int sfs_metadata_read_fd(int fd, const struct sfs_keys *keys, struct sfs_attrs *attrs, char **text,
			 size_t *len)
{
	struct sfs_file f = {.fd = fd, .keys = keys};
	struct sfs_attrs a;
	ssize_t n;
	int rc;

	*text = NULL;
	*len = 0;
	if (!attrs)
		attrs = &a;
	rc = sfs_file_read_header(fd, f.id, attrs, keys);
	if (rc == 0 && !S_ISREG(attrs->mode))
		rc = -EINVAL; /* a FIFO, device or long symlink is no document */
	if (rc == 0)
		rc = sfs_file_size(fd, &f.size);
	if (rc == 0 && f.size + 1 > SFS_METADATA_MAX)
		rc = -EFBIG;
	if (rc < 0)
		return rc;
	*text = malloc((size_t)f.size + 1);
	if (!*text)
		return -ENOMEM;
	n = sfs_file_read(&f, *text, (size_t)f.size, 0);
	if (n < 0) {
		sfs_metadata_free(*text, (size_t)f.size + 1);
		*text = NULL;
		return (int)n;
	}
	(*text)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* The backing name of metadata.json in @m's root. */
static int backing_name(const struct sfs_metadata *m, struct sfs_ename *en)
{
	return sfs_fmt_name_encrypt(en, SFS_METADATA_NAME, m->dirid, m->keys);
}

int sfs_metadata_peek(const struct sfs_metadata *m, char **text, size_t *len,
		      struct sfs_attrs *attrs)
{
	struct sfs_ename en;
	int fd, rc;

	*text = NULL;
	*len = 0;
	rc = backing_name(m, &en);
	if (rc < 0)
		return rc;
	fd = openat(m->rootfd, en.backing, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sfs_neg_errno();
	rc = sfs_metadata_read_fd(fd, m->keys, attrs, text, len);
	close(fd);
	return rc;
}

int sfs_metadata_check(const struct sfs_metadata *m, const char *text, size_t len,
		       struct sfs_metadata_refusal *r)
{
	char *old = NULL;
	size_t oldlen = 0;

	/* A stored document that cannot be read constrains nothing. */
	if (sfs_metadata_peek(m, &old, &oldlen, NULL) < 0)
		old = NULL;
	r->line = 0;
	r->why = sfs_store_metadata_check(m->sid, text, len, old, oldlen, &r->line);
	sfs_metadata_free(old, oldlen);
	return r->why ? -EINVAL : 0;
}

/* Write @text as a new file @name (O_EXCL) in @rootfd and fsync it. */
static int write_file(int rootfd, const char *name, const char *text, size_t len,
		      const struct sfs_attrs *attrs, const struct sfs_keys *keys)
{
	struct sfs_file f = {.keys = keys};
	ssize_t n;
	int rc;

	f.fd = openat(rootfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f.fd < 0)
		return sfs_neg_errno();
	sfs_crypto_random(f.id, sizeof(f.id));
	f.fresh = true; /* just drawn: no renewal before its content (fileio.h) */
	rc = sfs_file_init(f.fd, f.id, attrs, keys);
	if (rc == 0 && len > 0) {
		n = sfs_file_write(&f, text, len, 0);
		rc = n < 0 ? (int)n : 0;
	}
	if (rc == 0 && fsync(f.fd) < 0)
		rc = sfs_neg_errno();
	close(f.fd);
	return rc;
}

/* Write @text under an internal name and rename it over metadata.json; fsync the root. */
static int publish(const struct sfs_metadata *m, const char *text, size_t len,
		   const struct sfs_attrs *attrs)
{
	struct sfs_ename en;
	char tmp[SFS_TMPNAME_MAX];
	int rc = backing_name(m, &en);

	if (rc < 0)
		return rc;
	sfs_tree_internal_name(tmp, SFS_META_PREFIX);
	rc = write_file(m->rootfd, tmp, text, len, attrs, m->keys);
	if (rc == 0 && renameat(m->rootfd, tmp, m->rootfd, en.backing) < 0)
		rc = sfs_neg_errno();
	if (rc < 0) {
		unlinkat(m->rootfd, tmp, 0);
		return rc;
	}
	return sfs_fsync_dirfd(m->rootfd);
}

int sfs_metadata_replace(const struct sfs_metadata *m, const char *text, size_t len,
			 const struct sfs_attrs *attrs, struct sfs_metadata_refusal *r)
{
	int rc = sfs_metadata_check(m, text, len, r);

	return rc < 0 ? rc : publish(m, text, len, attrs);
}

int sfs_metadata_touch(const struct sfs_metadata *m, const char *when)
{
	struct sfs_attrs attrs;
	char *doc, *text = NULL;
	size_t len;
	int rc = sfs_metadata_peek(m, &doc, &len, &attrs);

	if (rc == 0) {
		text = sfs_store_metadata_set_updated(doc, len, when);
		rc = text ? 0 : -EINVAL; /* not an object: leave it to its writer */
	}
	if (rc == 0)
		rc = publish(m, text, strlen(text), &attrs);
	sfs_metadata_free(doc, len);
	if (text)
		sfs_metadata_free(text, strlen(text));
	return rc;
}

bool sfs_metadata_touch_due(long long last, long long first, long long now, bool force)
{
	if (last == 0)
		return false;
	return force || now - last >= SFS_METADATA_SETTLE || now - first >= SFS_METADATA_MAX_DELAY;
}

int sfs_metadata_set_status(const struct sfs_metadata *m, const char *status, const char *when,
			    struct sfs_metadata_refusal *r)
{
	struct sfs_attrs attrs;
	char *doc, *text = NULL;
	size_t len;
	int rc = sfs_metadata_peek(m, &doc, &len, &attrs);

	r->why = NULL;
	r->line = 0;
	if (rc == -ENOENT)
		return -ENODATA; /* no document: not "no such session" */
	if (rc == 0) {
		rc = sfs_store_metadata_set_status(doc, len, status, when, &text);
		if (rc == -EINVAL) {
			r->why = "the stored document is not a JSON object";
			rc = SFS_METADATA_EDAMAGED;
		}
	}
	if (rc == 0)
		rc = sfs_metadata_replace(m, text, strlen(text), &attrs, r);
	sfs_metadata_free(doc, len);
	if (text)
		sfs_metadata_free(text, strlen(text));
	return rc;
}

int sfs_metadata_new_unlinked(int rootfd, const unsigned char dirid[SFS_ID_BYTES],
			      const struct sfs_attrs *attrs, const struct sfs_keys *keys,
			      unsigned char id[SFS_ID_BYTES])
{
	char tmp[SFS_TMPNAME_MAX];
	struct sfs_ename en;
	struct stat st;
	int fd, rc;

	rc = sfs_fmt_name_encrypt(&en, SFS_METADATA_NAME, dirid, keys);
	if (rc < 0)
		return rc;
	if (fstatat(rootfd, en.backing, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	sfs_tree_tmpname(tmp);
	fd = openat(rootfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sfs_neg_errno();
	/* Unlinked before anything is in it: a crash leaves nothing either. */
	if (unlinkat(rootfd, tmp, 0) < 0) {
		rc = sfs_neg_errno();
		close(fd);
		return rc;
	}
	sfs_crypto_random(id, SFS_ID_BYTES);
	rc = sfs_file_init(fd, id, attrs, keys);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int sfs_metadata_create(int rootfd, const unsigned char dirid[SFS_ID_BYTES],
			const struct sfs_new_session *ns, const struct sfs_attrs *attrs,
			const struct sfs_keys *keys)
{
	char *text = sfs_store_metadata_first(ns);
	struct sfs_ename en;
	int rc;

	if (!text)
		return -ENOMEM;
	rc = sfs_fmt_name_encrypt(&en, SFS_METADATA_NAME, dirid, keys);
	if (rc == 0)
		rc = write_file(rootfd, en.backing, text, strlen(text), attrs, keys);
	sfs_metadata_free(text, strlen(text));
	return rc;
}
